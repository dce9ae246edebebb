//! A promotion's checks: limits, nesting and the currencies it names.

use super::*;

/// Counts conditions and filters while a promotion is validated.
#[derive(Default)]
pub(super) struct Budget {
    conditions: usize,
}

impl Budget {
    /// One more condition or filter, at nesting `depth`.
    pub(super) fn enter(&mut self, depth: usize) -> Result<()> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(Error::LimitExceeded {
                what: "conditions per promotion",
                max: MAX_CONDITIONS as u64,
            });
        }
        if depth > MAX_DEPTH {
            return Err(Error::LimitExceeded {
                what: "condition nesting",
                max: MAX_DEPTH as u64,
            });
        }
        Ok(())
    }
}

pub(super) fn check_len(field: &'static str, len: usize) -> Result<()> {
    if len > MAX_VALUES {
        return Err(Error::LimitExceeded {
            what: field,
            max: MAX_VALUES as u64,
        });
    }
    Ok(())
}

pub(super) fn check_list<T>(field: &'static str, op: Op, values: &[T]) -> Result<()> {
    check_len(field, values.len())?;
    match op {
        Op::In | Op::NotIn | Op::ContainsAny if !values.is_empty() => Ok(()),
        Op::Eq | Op::Ne if values.len() == 1 => Ok(()),
        Op::Eq | Op::Ne => Err(Error::invalid(field, "eq and ne take exactly one value")),
        Op::In | Op::NotIn | Op::ContainsAny => {
            Err(Error::invalid(field, "needs at least one value"))
        }
        _ => Err(Error::invalid(
            field,
            format!("operator `{}` does not apply to a list", op.symbol()),
        )),
    }
}

pub(super) fn check_order(field: &'static str, op: Op) -> Result<()> {
    if op.is_order() {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("operator `{}` does not apply to a number", op.symbol()),
        ))
    }
}

pub(super) fn positive_money(field: &'static str, m: &Money) -> Result<()> {
    m.entered()?;
    if m.is_negative() || m.is_zero() {
        return Err(Error::invalid(field, "must be above zero"));
    }
    Ok(())
}

pub(super) fn non_negative_money(field: &'static str, m: &Money) -> Result<()> {
    m.entered()?;
    if m.is_negative() {
        return Err(Error::invalid(field, "must not be negative"));
    }
    Ok(())
}

pub(crate) fn check_percent(p: Decimal) -> Result<()> {
    if p.is_sign_negative() || p > Decimal::ONE_HUNDRED || p.scale() > MAX_PERCENT_SCALE {
        return Err(Error::invalid(
            "percent",
            format!("{p}: must be between 0 and 100 with at most {MAX_PERCENT_SCALE} decimals"),
        ));
    }
    Ok(())
}

pub(super) fn check_quantity(field: &'static str, q: u32) -> Result<()> {
    if q == 0 || q > MAX_PROMOTION_QUANTITY {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {MAX_PROMOTION_QUANTITY}"),
        ));
    }
    Ok(())
}

pub(super) fn validate_filter(f: &LineFilter, depth: usize, budget: &mut Budget) -> Result<()> {
    budget.enter(depth)?;
    match f {
        LineFilter::Any => Ok(()),
        LineFilter::AllOf { filters } | LineFilter::AnyOf { filters } => {
            if filters.is_empty() {
                return Err(Error::invalid(
                    "line filter",
                    "all_of / any_of need at least one filter",
                ));
            }
            for f in filters {
                validate_filter(f, depth + 1, budget)?;
            }
            Ok(())
        }
        LineFilter::Product { op, ids } => check_list("product filter", *op, ids),
        LineFilter::Variant { op, ids } => check_list("variant filter", *op, ids),
        LineFilter::Category { op, ids } => check_list("category filter", *op, ids),
        LineFilter::Collection { op, ids } => check_list("collection filter", *op, ids),
        LineFilter::Tag { op, tags } => check_list("tag filter", *op, tags),
        LineFilter::UnitPrice { op, amount } => {
            check_order("unit price filter", *op)?;
            non_negative_money("unit price filter", amount)
        }
        LineFilter::Option { name, op, values } => {
            required_text("option name", name, MAX_NAME_LEN)?;
            check_texts("option filter", *op, values)
        }
        LineFilter::Metadata { key, op, values } => {
            required_text("metadata key", key, MAX_NAME_LEN)?;
            check_texts("metadata filter", *op, values)
        }
    }
}

/// A list of short texts: the list as [`check_list`], each value at most
/// [`MAX_NAME_LEN`] characters.
pub(super) fn check_texts(field: &'static str, op: Op, values: &[String]) -> Result<()> {
    check_list(field, op, values)?;
    match values.iter().find(|v| v.chars().count() > MAX_NAME_LEN) {
        Some(long) => Err(Error::invalid(
            field,
            format!(
                "value of {} characters: at most {MAX_NAME_LEN}",
                long.chars().count()
            ),
        )),
        None => Ok(()),
    }
}

pub(super) fn validate_condition(c: &Condition, depth: usize, budget: &mut Budget) -> Result<()> {
    budget.enter(depth)?;
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            if conditions.is_empty() {
                return Err(Error::invalid(
                    "condition",
                    "all_of / any_of need at least one condition",
                ));
            }
            for c in conditions {
                validate_condition(c, depth + 1, budget)?;
            }
            Ok(())
        }
        Condition::Not { condition } => validate_condition(condition, depth + 1, budget),
        Condition::Subtotal { op, amount }
        | Condition::DiscountedSubtotal { op, amount }
        | Condition::SubtotalWithTax { op, amount } => {
            check_order("subtotal condition", *op)?;
            non_negative_money("subtotal condition", amount)
        }
        Condition::ItemCount { op, .. } => check_order("item count condition", *op),
        Condition::OrderNumber { op, .. } => check_order("order number condition", *op),
        Condition::Currency { op, currencies } => check_list("currency condition", *op, currencies),
        Condition::ShippingOption { op, codes } => {
            check_list("shipping option condition", *op, codes)
        }
        Condition::CustomerGroup { op, groups } => {
            check_list("customer group condition", *op, groups)
        }
        Condition::Lines {
            filter,
            min_quantity,
        } => {
            check_quantity("min_quantity", *min_quantity)?;
            validate_filter(filter, depth + 1, budget)
        }
        Condition::LineQuantity { filter, op, .. } => {
            check_order("line quantity condition", *op)?;
            validate_filter(filter, depth + 1, budget)
        }
        Condition::EmailDomain { op, domains } => {
            check_texts("email domain condition", *op, domains)
        }
        Condition::SignedIn { .. } | Condition::DraftOrder { .. } => Ok(()),
        Condition::SalesChannel { op, channels } => {
            check_list("sales channel condition", *op, channels)
        }
        Condition::Custom { rule, .. } => required_text("rule name", rule, MAX_NAME_LEN).map(drop),
    }
}

pub(super) fn validate_reward(r: &Reward) -> Result<()> {
    match r {
        Reward::Percent { percent } => check_percent(*percent),
        Reward::Amount { amount } | Reward::AmountEach { amount } => {
            positive_money("reward amount", amount)
        }
    }
}

pub(super) fn validate_action(a: &Action, budget: &mut Budget) -> Result<()> {
    let max_q = |q: &Option<u32>| q.map_or(Ok(()), |q| check_quantity("max_quantity_per_line", q));
    match a {
        Action::PercentOffItems {
            target,
            percent,
            max_discount,
            max_quantity_per_line,
        } => {
            validate_filter(target, 0, budget)?;
            check_percent(*percent)?;
            max_q(max_quantity_per_line)?;
            max_discount
                .as_ref()
                .map_or(Ok(()), |m| positive_money("max_discount", m))
        }
        Action::AmountOffItems {
            target,
            amount,
            max_quantity_per_line,
            ..
        } => {
            validate_filter(target, 0, budget)?;
            max_q(max_quantity_per_line)?;
            positive_money("amount", amount)
        }
        Action::PercentOffOrder {
            percent,
            max_discount,
        } => {
            check_percent(*percent)?;
            max_discount
                .as_ref()
                .map_or(Ok(()), |m| positive_money("max_discount", m))
        }
        Action::AmountOffOrder { amount } => positive_money("amount", amount),
        Action::FixedPrice {
            target,
            price,
            max_quantity_per_line,
        } => {
            validate_filter(target, 0, budget)?;
            max_q(max_quantity_per_line)?;
            non_negative_money("fixed price", price)
        }
        Action::Bundle {
            items,
            price,
            max_bundles,
        } => {
            validate_bundle(items, budget)?;
            max_q(max_bundles)?;
            non_negative_money("bundle price", price)
        }
        Action::BuyXGetY {
            buy,
            buy_quantity,
            get,
            get_quantity,
            percent,
            max_applications,
            ..
        } => {
            validate_filter(buy, 0, budget)?;
            validate_filter(get, 0, budget)?;
            check_quantity("buy_quantity", *buy_quantity)?;
            check_quantity("get_quantity", *get_quantity)?;
            max_q(max_applications)?;
            check_percent(*percent)
        }
        Action::FixedTotal { target, price } => {
            validate_filter(target, 0, budget)?;
            non_negative_money("fixed total", price)
        }
        Action::QuantityGroup {
            target,
            size,
            price,
            max_groups,
        } => {
            validate_filter(target, 0, budget)?;
            check_quantity("group size", *size)?;
            if *size < 2 {
                return Err(Error::invalid("group size", "must be at least 2"));
            }
            max_q(max_groups)?;
            match price {
                GroupPrice::Fixed { amount } => non_negative_money("group price", amount),
                GroupPrice::PayFor { units } => {
                    if *units == 0 || *units >= *size {
                        return Err(Error::invalid(
                            "pay_for units",
                            format!(
                                "{units}: must be 1 to {} (the group size less one)",
                                size - 1
                            ),
                        ));
                    }
                    Ok(())
                }
                GroupPrice::AmountOffEach { amount } => {
                    positive_money("amount off each grouped unit", amount)
                }
                GroupPrice::PercentOffEach { percent } => check_percent(*percent),
                GroupPrice::TieredPercentOffEach { tiers } => {
                    if tiers.is_empty() || tiers.len() > MAX_TIERS {
                        return Err(Error::invalid(
                            "group tiers",
                            format!("need 1 to {MAX_TIERS} tiers"),
                        ));
                    }
                    for t in tiers {
                        if t.groups == 0 {
                            return Err(Error::invalid("group tier", "groups must be at least 1"));
                        }
                        check_percent(t.percent)?;
                    }
                    Ok(())
                }
            }
        }
        Action::FirstAndAdditional {
            target,
            first,
            additional,
            max_units,
        } => {
            validate_filter(target, 0, budget)?;
            max_q(max_units)?;
            validate_reward(first)?;
            validate_reward(additional)
        }
        Action::Tiered { target, tiers } => {
            validate_filter(target, 0, budget)?;
            if matches!(tiers, Tiers::ShippingAmount { .. }) {
                return Err(Error::invalid(
                    "tiers",
                    "tiers by a shipping charge's amount apply to shipping only (tiered_shipping)",
                ));
            }
            validate_tiers(tiers)
        }
        Action::Shipping { reward, methods } => {
            check_len("shipping methods", methods.len())?;
            validate_reward(reward)
        }
        Action::TieredShipping {
            target,
            tiers,
            methods,
        } => {
            validate_filter(target, 0, budget)?;
            check_len("shipping methods", methods.len())?;
            validate_tiers(tiers)
        }
        Action::Gift { quantity, .. } => check_quantity("gift quantity", *quantity),
        Action::Custom { rule, .. } => required_text("rule name", rule, MAX_NAME_LEN).map(drop),
    }
}

/// A bundle has 1 to [`MAX_BUNDLE_ITEMS`] parts, each a valid filter and
/// quantity.
pub(super) fn validate_bundle(items: &[BundleItem], budget: &mut Budget) -> Result<()> {
    if items.is_empty() || items.len() > MAX_BUNDLE_ITEMS {
        return Err(Error::invalid(
            "bundle",
            format!("needs 1 to {MAX_BUNDLE_ITEMS} items"),
        ));
    }
    for item in items {
        validate_filter(&item.filter, 0, budget)?;
        check_quantity("bundle item quantity", item.quantity)?;
    }
    Ok(())
}

/// 1 to [`MAX_TIERS`] tiers, each with a valid threshold and reward.
pub(super) fn validate_tiers(tiers: &Tiers) -> Result<()> {
    let n = match tiers {
        Tiers::Subtotal { tiers } => {
            for t in tiers {
                non_negative_money("tier threshold", &t.min)?;
                validate_reward(&t.reward)?;
            }
            tiers.len()
        }
        Tiers::Quantity { tiers } => {
            for t in tiers {
                validate_reward(&t.reward)?;
            }
            tiers.len()
        }
        Tiers::ShippingAmount { tiers } => {
            for t in tiers {
                non_negative_money("tier threshold", &t.min)?;
                validate_reward(&t.reward)?;
            }
            tiers.len()
        }
    };
    if n == 0 || n > MAX_TIERS {
        return Err(Error::invalid(
            "tiers",
            format!("need 1 to {MAX_TIERS} tiers"),
        ));
    }
    Ok(())
}

pub(super) fn filter_currencies(f: &LineFilter, out: &mut BTreeSet<Currency>) {
    match f {
        LineFilter::AllOf { filters } | LineFilter::AnyOf { filters } => {
            filters.iter().for_each(|f| filter_currencies(f, out));
        }
        LineFilter::UnitPrice { amount, .. } => {
            out.insert(amount.currency());
        }
        _ => {}
    }
}

pub(super) fn condition_currencies(c: &Condition, out: &mut BTreeSet<Currency>) {
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            conditions.iter().for_each(|c| condition_currencies(c, out));
        }
        Condition::Not { condition } => condition_currencies(condition, out),
        Condition::Subtotal { amount, .. }
        | Condition::DiscountedSubtotal { amount, .. }
        | Condition::SubtotalWithTax { amount, .. } => {
            out.insert(amount.currency());
        }
        Condition::Lines { filter, .. } | Condition::LineQuantity { filter, .. } => {
            filter_currencies(filter, out)
        }
        _ => {}
    }
}

pub(super) fn reward_currency(r: &Reward, out: &mut BTreeSet<Currency>) {
    if let Reward::Amount { amount } | Reward::AmountEach { amount } = r {
        out.insert(amount.currency());
    }
}

pub(super) fn action_currencies(a: &Action, out: &mut BTreeSet<Currency>) {
    let mut add = |m: &Money| {
        out.insert(m.currency());
    };
    match a {
        Action::PercentOffItems {
            target,
            max_discount,
            ..
        } => {
            if let Some(m) = max_discount {
                add(m);
            }
            filter_currencies(target, out);
        }
        Action::AmountOffItems { target, amount, .. } => {
            add(amount);
            filter_currencies(target, out);
        }
        Action::PercentOffOrder { max_discount, .. } => {
            if let Some(m) = max_discount {
                add(m);
            }
        }
        Action::AmountOffOrder { amount } => add(amount),
        Action::FixedPrice { target, price, .. } => {
            add(price);
            filter_currencies(target, out);
        }
        Action::Bundle { items, price, .. } => {
            add(price);
            items.iter().for_each(|i| filter_currencies(&i.filter, out));
        }
        Action::BuyXGetY { buy, get, .. } => {
            filter_currencies(buy, out);
            filter_currencies(get, out);
        }
        Action::FixedTotal { target, price } => {
            add(price);
            filter_currencies(target, out);
        }
        Action::QuantityGroup { target, price, .. } => {
            if let GroupPrice::Fixed { amount } | GroupPrice::AmountOffEach { amount } = price {
                add(amount);
            }
            filter_currencies(target, out);
        }
        Action::FirstAndAdditional {
            target,
            first,
            additional,
            ..
        } => {
            reward_currency(first, out);
            reward_currency(additional, out);
            filter_currencies(target, out);
        }
        Action::Tiered { target, tiers } | Action::TieredShipping { target, tiers, .. } => {
            filter_currencies(target, out);
            match tiers {
                Tiers::Subtotal { tiers } | Tiers::ShippingAmount { tiers } => {
                    for t in tiers {
                        out.insert(t.min.currency());
                        reward_currency(&t.reward, out);
                    }
                }
                Tiers::Quantity { tiers } => {
                    tiers.iter().for_each(|t| reward_currency(&t.reward, out));
                }
            }
        }
        Action::Shipping { reward, .. } => reward_currency(reward, out),
        Action::Gift { .. } | Action::Custom { .. } => {}
    }
}
