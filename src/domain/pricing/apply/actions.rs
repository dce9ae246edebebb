//! What each action takes off: the integer arithmetic of every built-in
//! action and the exact splits (largest remainder, canonical ties).

use super::*;
use crate::money::allocate_minor_ranked;
use crate::pricing::{
    Allocation, BundleItem, Compounding, GroupPrice, PricingRule, Remainder, RewardUnits, UnitCap,
    UnitOrder,
};
use rust_decimal::Decimal;

/// What an action's arithmetic answers: an effect, a reason it does not
/// apply, or an error (overflow, a bad percent).
type Answer = Result<std::result::Result<Effect, Rejection>>;

impl PromotionSet {
    /// What `action` would take off, given what is left: one named step
    /// per action, then [`tidy`] makes the effect canonical.
    pub(super) fn effect(
        &self,
        (action, reward_units, unit_cap): (&Action, RewardUnits, Option<UnitCap>),
        env: &Env<'_>,
        remaining: &[i128],
        spent: &[Spent],
        shipping: &[i128],
    ) -> Answer {
        let on = Left {
            env,
            remaining,
            spent,
            unit_cap,
        };
        let answer = match action {
            Action::PercentOffItems {
                target,
                percent,
                max_discount,
                max_quantity_per_line,
            } => on.percent_off_items(
                target,
                *percent,
                max_discount.as_ref(),
                *max_quantity_per_line,
            ),
            Action::AmountOffItems {
                target,
                amount,
                per,
                max_quantity_per_line,
            } => on.amount_off_items(target, amount, *per, *max_quantity_per_line),
            Action::PercentOffOrder {
                percent,
                max_discount,
            } => on.percent_off_order(*percent, max_discount.as_ref()),
            Action::AmountOffOrder { amount } => on.amount_off_order(amount),
            Action::FixedPrice {
                target,
                price,
                max_quantity_per_line,
            } => on.fixed_price(target, price, *max_quantity_per_line),
            Action::Bundle {
                items,
                price,
                max_bundles,
            } => on.bundle(items, price, *max_bundles),
            Action::BuyXGetY {
                buy,
                buy_quantity,
                get,
                get_quantity,
                percent,
                max_applications,
            } => on.buy_x_get_y(
                (buy, *buy_quantity),
                (get, *get_quantity),
                *percent,
                (*max_applications, reward_units),
            ),
            Action::FixedTotal { target, price } => on.fixed_total(target, price),
            Action::QuantityGroup {
                target,
                size,
                price,
                max_groups,
            } => on.quantity_group(target, *size, price, *max_groups),
            Action::FirstAndAdditional {
                target,
                first,
                additional,
                max_units,
            } => on.first_and_additional(target, first, additional, *max_units),
            Action::Tiered { target, tiers } => on.tiered(target, tiers),
            Action::Shipping { reward, methods } => on.shipping(reward, methods, shipping),
            Action::TieredShipping {
                tiers: Tiers::ShippingAmount { tiers },
                methods,
                ..
            } => on.shipping_by_own_amount(tiers, methods, shipping),
            Action::TieredShipping {
                target,
                tiers,
                methods,
            } => match on.tier_reached(&on.selected(target), tiers) {
                Some(reward) => on.shipping(reward, methods, shipping),
                None => Ok(Err(Rejection::NothingToDiscount)),
            },
            Action::Gift {
                variant_id,
                quantity,
            } => on.gift(*variant_id, *quantity),
            Action::Custom { rule, settings } => match self.rules.get(rule) {
                Some(r) => on.custom(rule, r.as_ref(), settings),
                None => Ok(Err(Rejection::UnknownRule { rule: rule.clone() })),
            },
        }?;
        Ok(answer.map(|effect| on.tidy(effect, shipping)))
    }
}

/// The cart as earlier promotions left it: what each action's arithmetic
/// works on. `remaining[i]` is what line `i` still costs, in minor units.
struct Left<'e, 'a> {
    env: &'e Env<'a>,
    remaining: &'e [i128],
    /// Units earlier buy-X-get-Y promotions rewarded, per line.
    spent: &'e [Spent],
    /// The promotion's cap on units discounted in the whole cart.
    unit_cap: Option<UnitCap>,
}

impl Left<'_, '_> {
    /// What line `i` still costs.
    fn rem(&self, i: usize) -> i128 {
        self.remaining.get(i).copied().unwrap_or(0)
    }

    /// Line `i`'s quantity.
    fn quantity(&self, i: usize) -> u32 {
        self.env.lines.get(i).map_or(0, |l| l.quantity)
    }

    /// Line `i`'s units no buy-X-get-Y has rewarded yet, and what they
    /// still cost.
    fn unspent(&self, i: usize) -> (u32, i128) {
        let s = self.spent.get(i).copied().unwrap_or_default();
        (
            self.quantity(i).saturating_sub(s.units),
            (self.rem(i) - s.cost).max(0),
        )
    }

    /// The lines `f` selects.
    fn selected(&self, f: &LineFilter) -> Vec<usize> {
        lines_matching(f, self.env)
    }

    /// The value of `units` of line `i`, floored: computed as
    /// (r / q)·u + (r mod q)·u / q, which cannot overflow for u ≤ q. Under
    /// [`Compounding::FullPriceUnitsFirst`], the units at their price, up
    /// to what the line has left.
    fn value(&self, i: usize, units: u32) -> i128 {
        match self.quantity(i) {
            0 => 0,
            q => {
                let (r, q, u) = (self.rem(i), i128::from(q), i128::from(units.min(q)));
                if self.env.compounding == Compounding::FullPriceUnitsFirst {
                    let unit = self.env.lines.get(i).map_or(0, |l| l.unit);
                    return unit.saturating_mul(u).min(r);
                }
                (r / q) * u + (r % q) * u / q
            }
        }
    }

    /// The units of line `i` an action may discount, up to `max` per line.
    fn units_of(&self, i: usize, max: Option<u32>) -> u32 {
        let q = self.quantity(i);
        max.map_or(q, |m| q.min(m))
    }

    /// The units each of `lines` may have discounted: up to `max` per
    /// line, and under the promotion's [`UnitCap`] at most its units in
    /// all, given in its order (ties in the canonical line order).
    fn allowance(&self, lines: &[usize], max: Option<u32>) -> Vec<(usize, u32)> {
        let Some(cap) = self.unit_cap else {
            return lines.iter().map(|i| (*i, self.units_of(*i, max))).collect();
        };
        let mut order = lines.to_vec();
        let env = self.env;
        match cap.order {
            UnitOrder::CheapestFirst => order.sort_by(|a, b| {
                per_unit_cmp(*a, *b, env, self.remaining)
                    .then(line_rank(*a, env).cmp(&line_rank(*b, env)))
            }),
            UnitOrder::DearestFirst => order.sort_by(|a, b| {
                per_unit_cmp(*b, *a, env, self.remaining)
                    .then(line_rank(*a, env).cmp(&line_rank(*b, env)))
            }),
            // `lines` are in cart order already.
            UnitOrder::CartOrder => {}
        }
        let mut left = cap.max_units;
        let mut out: Vec<(usize, u32)> = order
            .into_iter()
            .map(|i| {
                let units = self.units_of(i, max).min(left);
                left -= units;
                (i, units)
            })
            .filter(|(_, u)| *u > 0)
            .collect();
        out.sort_unstable_by_key(|(i, _)| *i);
        out
    }

    /// Every line with what it still costs: the weights of an order-level split.
    fn whole_order(&self) -> Vec<(usize, i128)> {
        self.remaining
            .iter()
            .copied()
            .enumerate()
            .filter(|(i, _)| self.env.lines.get(*i).is_some_and(|l| l.promotable))
            .collect()
    }

    /// A percent of each selected line's discountable units, capped in total.
    fn percent_off_items(
        &self,
        target: &LineFilter,
        percent: Decimal,
        max_discount: Option<&Money>,
        max_per_line: Option<u32>,
    ) -> Answer {
        let f = Fraction::percent(percent)?;
        let mut effect = Effect::default();
        let by_unit = self.env.compounding == Compounding::FullPriceUnitsFirst;
        for (i, units) in self.allowance(&self.selected(target), max_per_line) {
            let d = if by_unit {
                f.of(self.value(i, units), 1, 1, self.env.rounding)?
            } else {
                f.of(self.rem(i), units, self.quantity(i), self.env.rounding)?
            };
            effect.lines.push((i, d));
        }
        if let Some(cap_amount) = max_discount.and_then(|m| self.env.minor(m))
            && effect.total() > cap_amount
        {
            cap(&mut effect, cap_amount, self.env)?;
        }
        Ok(Ok(effect))
    }

    /// An amount off each unit, off each line, or split over the lines.
    fn amount_off_items(
        &self,
        target: &LineFilter,
        amount: &Money,
        per: AmountPer,
        max_per_line: Option<u32>,
    ) -> Answer {
        let Some(amount) = self.env.minor(amount) else {
            return Ok(Err(wrong_currency(amount, self.env)));
        };
        let mut effect = Effect::default();
        let lines = self.allowance(&self.selected(target), max_per_line);
        match per {
            AmountPer::Unit | AmountPer::Line => {
                for (i, units) in lines {
                    let ask = if per == AmountPer::Unit {
                        amount
                            .checked_mul(i128::from(units))
                            .ok_or_else(|| Error::Overflow("discount"))?
                    } else {
                        amount
                    };
                    effect.lines.push((i, ask.min(self.value(i, units))));
                }
            }
            AmountPer::Split => {
                let weights: Vec<(usize, i128)> = lines
                    .iter()
                    .map(|(i, units)| (*i, self.value(*i, *units)))
                    .collect();
                split(&mut effect, amount, &weights, self.env)?;
            }
        }
        Ok(Ok(effect))
    }

    /// A percent of the whole order, capped, split over the lines.
    fn percent_off_order(&self, percent: Decimal, max_discount: Option<&Money>) -> Answer {
        let f = Fraction::percent(percent)?;
        let base: i128 = self.remaining.iter().sum();
        let mut total = f.of(base, 1, 1, self.env.rounding)?;
        if let Some(cap_amount) = max_discount.and_then(|m| self.env.minor(m)) {
            total = total.min(cap_amount);
        }
        let mut effect = Effect::default();
        split(&mut effect, total, &self.whole_order(), self.env)?;
        Ok(Ok(effect))
    }

    /// An amount off the whole order, split over the lines.
    fn amount_off_order(&self, amount: &Money) -> Answer {
        let Some(amount) = self.env.minor(amount) else {
            return Ok(Err(wrong_currency(amount, self.env)));
        };
        let mut effect = Effect::default();
        split(&mut effect, amount, &self.whole_order(), self.env)?;
        Ok(Ok(effect))
    }

    /// Each selected unit (up to a number per line) at a fixed price.
    fn fixed_price(&self, target: &LineFilter, price: &Money, max_per_line: Option<u32>) -> Answer {
        let Some(price) = self.env.minor(price) else {
            return Ok(Err(wrong_currency(price, self.env)));
        };
        let mut effect = Effect::default();
        for (i, units) in self.allowance(&self.selected(target), max_per_line) {
            let at = price
                .checked_mul(i128::from(units))
                .ok_or_else(|| Error::Overflow("fixed price"))?;
            effect.lines.push((i, (self.value(i, units) - at).max(0)));
        }
        Ok(Ok(effect))
    }

    /// All selected units together at `price`: what they cost beyond it,
    /// split by what each line still costs.
    fn fixed_total(&self, target: &LineFilter, price: &Money) -> Answer {
        let Some(price) = self.env.minor(price) else {
            return Ok(Err(wrong_currency(price, self.env)));
        };
        let weights: Vec<(usize, i128)> = self
            .selected(target)
            .into_iter()
            .map(|i| (i, self.rem(i)))
            .collect();
        let worth = weights
            .iter()
            .try_fold(0_i128, |acc, (_, w)| acc.checked_add((*w).max(0)))
            .ok_or_else(|| Error::Overflow("fixed total"))?;
        let mut effect = Effect::default();
        split(&mut effect, (worth - price).max(0), &weights, self.env)?;
        Ok(Ok(effect))
    }

    /// Groups of `size` units, dearest first, each at `price`.
    fn quantity_group(
        &self,
        target: &LineFilter,
        size: u32,
        price: &GroupPrice,
        max_groups: Option<u32>,
    ) -> Answer {
        let env = self.env;
        let fixed = match price {
            GroupPrice::Fixed { amount } => match env.minor(amount) {
                Some(a) => Some(a),
                None => return Ok(Err(wrong_currency(amount, env))),
            },
            GroupPrice::PayFor { .. } => None,
            GroupPrice::AmountOffEach { .. }
            | GroupPrice::PercentOffEach { .. }
            | GroupPrice::TieredPercentOffEach { .. } => {
                return self.grouped_units_off(target, size, price, max_groups);
            }
        };
        let mut lines = self.selected(target);
        // Dearest units first; ties in canonical line order.
        lines.sort_by(|a, b| {
            per_unit_cmp(*b, *a, env, self.remaining)
                .then(line_rank(*a, env).cmp(&line_rank(*b, env)))
        });
        let (size64, groups) = self.complete_groups(&lines, size, max_groups);
        if groups == 0 {
            return Ok(Ok(Effect::default()));
        }
        // Walk the units in that order: `taken[i]` units of line i are in a
        // group, `free[i]` of them are a group's unpaid (cheapest) ones.
        let paid = match price {
            GroupPrice::PayFor { units } => u64::from(*units),
            _ => size64,
        };
        let mut taken: Vec<(usize, u32, u32)> = Vec::new();
        let mut position = 0_u64;
        let end = groups.saturating_mul(size64);
        for i in lines {
            if position >= end {
                break;
            }
            let q = u64::from(self.quantity(i));
            let take = q.min(end - position);
            // Units at positions p with p mod size ≥ paid are free.
            let free =
                free_below(position + take, size64, paid) - free_below(position, size64, paid);
            let take = u32::try_from(take).map_err(|_| Error::Overflow("group units"))?;
            let free = u32::try_from(free).map_err(|_| Error::Overflow("group units"))?;
            taken.push((i, take, free));
            position += u64::from(take);
        }
        let mut effect = Effect::default();
        match fixed {
            Some(at) => {
                let weights: Vec<(usize, i128)> = taken
                    .iter()
                    .map(|(i, t, _)| (*i, self.value(*i, *t)))
                    .collect();
                let worth: i128 = weights.iter().map(|(_, w)| w).sum();
                let at = at
                    .checked_mul(i128::from(groups))
                    .ok_or_else(|| Error::Overflow("group price"))?;
                split(&mut effect, (worth - at).max(0), &weights, env)?;
            }
            None => {
                for (i, _, free) in taken {
                    if free > 0 {
                        effect.lines.push((i, self.value(i, free)));
                    }
                }
            }
        }
        Ok(Ok(effect))
    }

    /// The group size and how many complete groups `lines` hold, at most
    /// `max_groups`.
    fn complete_groups(&self, lines: &[usize], size: u32, max_groups: Option<u32>) -> (u64, u64) {
        let units: u64 = lines.iter().map(|i| u64::from(self.quantity(*i))).sum();
        let size64 = u64::from(size.max(1));
        let groups = (units / size64).min(max_groups.map_or(u64::MAX, u64::from));
        (size64, groups)
    }

    /// A discount off each unit in a complete group of `size`: groups are
    /// filled from the lines with the most units first (ties in canonical
    /// line order), as Solidus's quantity-group benefit fills them.
    fn grouped_units_off(
        &self,
        target: &LineFilter,
        size: u32,
        price: &GroupPrice,
        max_groups: Option<u32>,
    ) -> Answer {
        let env = self.env;
        let mut lines = self.selected(target);
        lines.sort_by(|a, b| {
            self.quantity(*b)
                .cmp(&self.quantity(*a))
                .then(line_rank(*a, env).cmp(&line_rank(*b, env)))
        });
        let (size64, groups) = self.complete_groups(&lines, size, max_groups);
        if groups == 0 {
            return Ok(Ok(Effect::default()));
        }
        enum Off {
            Percent(Fraction),
            Amount(i128),
        }
        let off = match price {
            GroupPrice::AmountOffEach { amount } => match env.minor(amount) {
                Some(a) => Off::Amount(a),
                None => return Ok(Err(wrong_currency(amount, env))),
            },
            GroupPrice::PercentOffEach { percent } => Off::Percent(Fraction::percent(*percent)?),
            GroupPrice::TieredPercentOffEach { tiers } => {
                match tiers
                    .iter()
                    .filter(|t| u64::from(t.groups) <= groups)
                    .max_by_key(|t| t.groups)
                {
                    Some(t) => Off::Percent(Fraction::percent(t.percent)?),
                    None => return Ok(Err(Rejection::NothingToDiscount)),
                }
            }
            GroupPrice::Fixed { .. } | GroupPrice::PayFor { .. } => {
                return Ok(Err(Rejection::NothingToDiscount));
            }
        };
        let mut left = groups.saturating_mul(size64);
        let mut effect = Effect::default();
        for i in lines {
            if left == 0 {
                break;
            }
            let grouped = u64::from(self.quantity(i)).min(left);
            left -= grouped;
            let grouped = u32::try_from(grouped).map_err(|_| Error::Overflow("group units"))?;
            let worth = self.value(i, grouped);
            let part = match &off {
                Off::Percent(f) => f.of(worth, 1, 1, env.rounding)?,
                Off::Amount(a) => a
                    .checked_mul(i128::from(grouped))
                    .ok_or_else(|| Error::Overflow("unit discount"))?
                    .min(worth),
            };
            if part > 0 {
                effect.lines.push((i, part));
            }
        }
        Ok(Ok(effect))
    }

    /// Per selected line: `first` on one unit, `additional` on each further
    /// unit, up to `max_units` units.
    fn first_and_additional(
        &self,
        target: &LineFilter,
        first: &Reward,
        additional: &Reward,
        max_units: Option<u32>,
    ) -> Answer {
        let env = self.env;
        let mut effect = Effect::default();
        for (i, units) in self.allowance(&self.selected(target), max_units) {
            if units == 0 {
                continue;
            }
            let one = self.value(i, 1);
            let rest = self.value(i, units) - one;
            let mut off = 0_i128;
            for (reward, n, worth) in [(first, 1_u32, one), (additional, units - 1, rest)] {
                if n == 0 {
                    continue;
                }
                off += match reward {
                    Reward::Percent { percent } => {
                        Fraction::percent(*percent)?.of(worth, 1, 1, env.rounding)?
                    }
                    // Here an amount is off each unit either way.
                    Reward::Amount { amount } | Reward::AmountEach { amount } => {
                        let Some(a) = env.minor(amount) else {
                            return Ok(Err(wrong_currency(amount, env)));
                        };
                        a.checked_mul(i128::from(n))
                            .ok_or_else(|| Error::Overflow("unit discount"))?
                            .min(worth)
                    }
                };
            }
            effect.lines.push((i, off));
        }
        Ok(Ok(effect))
    }

    /// As many complete bundles as the cart holds (up to `max_bundles`),
    /// each at `price`, taking the most valuable units first.
    fn bundle(&self, items: &[BundleItem], price: &Money, max_bundles: Option<u32>) -> Answer {
        let env = self.env;
        let Some(price) = env.minor(price) else {
            return Ok(Err(wrong_currency(price, env)));
        };
        let sets: Vec<(Vec<usize>, u32)> = items
            .iter()
            .map(|item| {
                let mut lines = self.selected(&item.filter);
                // Most valuable units first.
                lines.sort_by(|a, b| {
                    per_unit_cmp(*b, *a, env, self.remaining)
                        .then(line_rank(*a, env).cmp(&line_rank(*b, env)))
                });
                (lines, item.quantity)
            })
            .collect();
        let upper = sets
            .iter()
            .map(|(lines, q)| {
                let units: u64 = lines.iter().map(|i| u64::from(self.quantity(*i))).sum();
                units / u64::from((*q).max(1))
            })
            .min()
            .unwrap_or(0)
            .min(max_bundles.map_or(u64::MAX, u64::from));
        // The largest feasible count (overlapping parts may share units).
        let (mut lo, mut hi) = (0_u64, upper);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if take_bundles(&sets, mid, env).is_some() {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let mut effect = Effect::default();
        if let Some(taken) = take_bundles(&sets, lo, env).filter(|_| lo > 0) {
            let weights: Vec<(usize, i128)> = taken
                .iter()
                .enumerate()
                .filter(|(_, t)| **t > 0)
                .map(|(i, t)| (i, self.value(i, *t)))
                .collect();
            let worth: i128 = weights.iter().map(|(_, w)| w).sum();
            let at = price
                .checked_mul(i128::from(lo))
                .ok_or_else(|| Error::Overflow("bundle price"))?;
            split(&mut effect, (worth - at).max(0), &weights, env)?;
        }
        Ok(Ok(effect))
    }

    /// For every `buy` units bought, `get` units at a percent off (the
    /// cheapest first), up to `max_applications` times.
    fn buy_x_get_y(
        &self,
        buy: (&LineFilter, u32),
        get: (&LineFilter, u32),
        percent: Decimal,
        (max_applications, reward_units): (Option<u32>, RewardUnits),
    ) -> Answer {
        let f = Fraction::percent(percent)?;
        // Only units still unspent count and can be rewarded (see `Spent`).
        // Asked per line as needed: nothing is built for lines the
        // promotion does not select.
        let unspent = |i: usize| self.unspent(i);
        let got = buy_x_get_y(
            self.env,
            &unspent,
            &self.selected(buy.0),
            buy.1,
            &self.selected(get.0),
            get.1,
            (max_applications, reward_units),
        );
        let mut effect = Effect::default();
        for (i, units) in got.into_iter().enumerate() {
            if units > 0 {
                let (q, r) = unspent(i);
                let d = f.of(r, units, q, self.env.rounding)?;
                // What the rewarded units cost before: (r / q)·u + (r mod q)·u / q.
                let (qi, u) = (i128::from(q.max(1)), i128::from(units.min(q)));
                let value = (r / qi) * u + (r % qi) * u / qi;
                effect.lines.push((i, d));
                effect.spent.push((i, units, value));
            }
        }
        Ok(Ok(effect))
    }

    /// The reward of the highest tier `lines` reach: by their subtotal
    /// (after price lists, before promotions) or by their units.
    fn tier_reached<'t>(&self, lines: &[usize], tiers: &'t Tiers) -> Option<&'t Reward> {
        let env = self.env;
        match tiers {
            Tiers::Subtotal { tiers } => {
                let measure: i128 = lines
                    .iter()
                    .filter_map(|i| env.lines.get(*i))
                    .map(|l| l.subtotal)
                    .sum();
                tiers
                    .iter()
                    .filter_map(|t| env.minor(&t.min).map(|m| (m, &t.reward)))
                    .filter(|(m, _)| *m <= measure)
                    .max_by_key(|(m, _)| *m)
                    .map(|(_, r)| r)
            }
            Tiers::Quantity { tiers } => {
                let measure: u64 = lines.iter().map(|i| u64::from(self.quantity(*i))).sum();
                tiers
                    .iter()
                    .filter(|t| t.min <= measure)
                    .max_by_key(|t| t.min)
                    .map(|t| &t.reward)
            }
            // By each shipping charge: not a tier of the lines (refused
            // for line tiers when the promotion is saved).
            Tiers::ShippingAmount { .. } => None,
        }
    }

    /// The reward of the highest tier the selected lines reach.
    fn tiered(&self, target: &LineFilter, tiers: &Tiers) -> Answer {
        let env = self.env;
        let lines = self.selected(target);
        let reward = self.tier_reached(&lines, tiers);
        let mut effect = Effect::default();
        match reward {
            None => return Ok(Err(Rejection::NothingToDiscount)),
            Some(Reward::Percent { percent }) => {
                let f = Fraction::percent(*percent)?;
                for i in lines {
                    effect
                        .lines
                        .push((i, f.of(self.rem(i), 1, 1, env.rounding)?));
                }
            }
            Some(Reward::Amount { amount }) => {
                let Some(amount) = env.minor(amount) else {
                    return Ok(Err(wrong_currency(amount, env)));
                };
                let weights: Vec<(usize, i128)> =
                    lines.iter().map(|i| (*i, self.rem(*i))).collect();
                split(&mut effect, amount, &weights, env)?;
            }
            Some(Reward::AmountEach { amount }) => {
                let Some(amount) = env.minor(amount) else {
                    return Ok(Err(wrong_currency(amount, env)));
                };
                for i in lines {
                    effect.lines.push((i, amount.min(self.rem(i))));
                }
            }
        }
        Ok(Ok(effect))
    }

    /// A percent or an amount off the shipping charges of the listed
    /// methods (every charge when none are listed): a percent off each, an
    /// amount shared across them by what each still costs.
    fn shipping(&self, reward: &Reward, methods: &[String], shipping: &[i128]) -> Answer {
        let env = self.env;
        let targets: Vec<(usize, i128)> = shipping
            .iter()
            .enumerate()
            .filter(|(k, left)| {
                **left > 0
                    && (methods.is_empty()
                        || env
                            .shipments
                            .get(*k)
                            .is_some_and(|m| methods.iter().any(|x| x == m)))
            })
            .map(|(k, left)| (k, *left))
            .collect();
        if targets.is_empty() {
            return Ok(Err(Rejection::NothingToDiscount));
        }
        let mut effect = Effect::default();
        match reward {
            Reward::Percent { percent } => {
                let f = Fraction::percent(*percent)?;
                for (k, left) in targets {
                    effect.shipping.push((k, f.of(left, 1, 1, env.rounding)?));
                }
            }
            Reward::Amount { amount } => {
                let Some(a) = env.minor(amount) else {
                    return Ok(Err(wrong_currency(amount, env)));
                };
                // Shares by largest remainder; shipments rank after lines.
                let weights: Vec<(usize, i128)> =
                    targets.iter().map(|(k, l)| (SHIPMENT + k, *l)).collect();
                let parts = shares(a, &weights, env)?;
                effect
                    .shipping
                    .extend(targets.iter().map(|(k, _)| *k).zip(parts));
            }
            Reward::AmountEach { amount } => {
                let Some(a) = env.minor(amount) else {
                    return Ok(Err(wrong_currency(amount, env)));
                };
                for (k, left) in targets {
                    effect.shipping.push((k, a.min(left)));
                }
            }
        }
        Ok(Ok(effect))
    }

    /// Tiers by each shipping charge's own amount (as earlier shipping
    /// promotions left it): each charge of the listed methods gets the
    /// reward of the highest tier it reaches — a percent of it, or an
    /// amount off it (never more than it costs).
    fn shipping_by_own_amount(
        &self,
        tiers: &[crate::pricing::SubtotalTier],
        methods: &[String],
        shipping: &[i128],
    ) -> Answer {
        let env = self.env;
        let mut effect = Effect::default();
        for (k, left) in shipping.iter().enumerate() {
            let listed = methods.is_empty()
                || env
                    .shipments
                    .get(k)
                    .is_some_and(|m| methods.iter().any(|x| x == m));
            if *left <= 0 || !listed {
                continue;
            }
            let reached = tiers
                .iter()
                .filter_map(|t| env.minor(&t.min).map(|m| (m, &t.reward)))
                .filter(|(m, _)| *m <= *left)
                .max_by_key(|(m, _)| *m)
                .map(|(_, r)| r);
            let off = match reached {
                None => continue,
                Some(Reward::Percent { percent }) => {
                    Fraction::percent(*percent)?.of(*left, 1, 1, env.rounding)?
                }
                Some(Reward::Amount { amount } | Reward::AmountEach { amount }) => {
                    let Some(a) = env.minor(amount) else {
                        return Ok(Err(wrong_currency(amount, env)));
                    };
                    a.min(*left)
                }
            };
            effect.shipping.push((k, off));
        }
        if effect.shipping.is_empty() {
            return Ok(Err(Rejection::NothingToDiscount));
        }
        Ok(Ok(effect))
    }

    /// A free unit of a variant that can be bought and has a price in the
    /// cart's currency.
    fn gift(&self, variant_id: VariantId, quantity: u32) -> Answer {
        let unit = self
            .env
            .catalog
            .get(&variant_id)
            .filter(|e| e.purchasable().is_ok())
            .and_then(|e| e.variant.price(self.env.currency))
            .and_then(|p| p.to_minor().ok());
        let Some(unit) = unit else {
            return Ok(Err(Rejection::GiftUnavailable { variant_id }));
        };
        Ok(Ok(Effect {
            gift: Some(Gift {
                variant_id,
                quantity,
                unit,
            }),
            ..Effect::default()
        }))
    }

    /// What a registered rule proposes, checked: a rule that fails or
    /// answers nonsense is skipped with the reason, never failing pricing.
    fn custom(&self, rule: &str, r: &dyn PricingRule, settings: &serde_json::Value) -> Answer {
        let env = self.env;
        let cart = env.rule_cart(self.remaining)?;
        let unevaluable = |reason: String| Ok(Err(Rejection::Unevaluable { problem: reason }));
        let proposed = match r.action(settings, &cart) {
            Ok(p) => p,
            Err(e) => return unevaluable(format!("rule `{rule}` failed: {e}")),
        };
        let mut effect = Effect::default();
        for (line_id, amount) in proposed {
            let Some(i) = env.lines.iter().position(|l| l.id == line_id) else {
                return unevaluable(format!("rule `{rule}` discounted an unknown line"));
            };
            if amount.currency() != env.currency {
                return unevaluable(format!(
                    "rule `{rule}` answered in {} for a {} cart",
                    amount.currency(),
                    env.currency
                ));
            }
            let Ok(minor) = amount.to_minor() else {
                return unevaluable(format!("rule `{rule}` answered an inexact amount"));
            };
            effect.lines.push((i, minor.clamp(0, self.rem(i))));
        }
        Ok(Ok(effect))
    }

    /// The effect made canonical: repeated lines merged, zeros dropped,
    /// never more than is left — in place, since most actions already list
    /// each line once, in order.
    fn tidy(&self, mut effect: Effect, shipping: &[i128]) -> Effect {
        if !effect.lines.is_sorted_by_key(|(i, _)| *i) {
            effect.lines.sort_unstable_by_key(|(i, _)| *i);
        }
        effect.lines.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += later.1;
            }
            same
        });
        effect.lines.retain_mut(|(i, a)| {
            *a = (*a).clamp(0, self.rem(*i).max(0));
            *a > 0
        });
        effect.shipping.retain_mut(|(k, a)| {
            *a = (*a).clamp(0, shipping.get(*k).copied().unwrap_or(0).max(0));
            *a > 0
        });
        effect
    }
}

fn wrong_currency(m: &Money, env: &Env<'_>) -> Rejection {
    Rejection::WrongCurrency {
        expected: vec![m.currency()],
        actual: env.currency,
    }
}

fn line_rank(i: usize, env: &Env<'_>) -> u32 {
    env.lines.get(i).map_or(u32::MAX, |l| l.rank)
}

/// Compares the per-unit value left on lines `a` and `b`.
fn per_unit_cmp(a: usize, b: usize, env: &Env<'_>, remaining: &[i128]) -> std::cmp::Ordering {
    let get = |i: usize| {
        let q = env
            .lines
            .get(i)
            .map_or(1, |l| i128::from(l.quantity.max(1)));
        (remaining.get(i).copied().unwrap_or(0), q)
    };
    let ((ra, qa), (rb, qb)) = (get(a), get(b));
    ra.saturating_mul(qb).cmp(&rb.saturating_mul(qa))
}

/// Units taken per line for `count` bundles, or `None` if not feasible.
fn take_bundles(sets: &[(Vec<usize>, u32)], count: u64, env: &Env<'_>) -> Option<Vec<u32>> {
    let mut taken = vec![0_u32; env.lines.len()];
    for (lines, q) in sets {
        let mut need = count.checked_mul(u64::from(*q))?;
        for i in lines {
            if need == 0 {
                break;
            }
            let l = env.lines.get(*i)?;
            let t = taken.get_mut(*i)?;
            let avail = u64::from(l.quantity - *t);
            let take = avail.min(need);
            *t += u32::try_from(take).ok()?;
            need -= take;
        }
        if need > 0 {
            return None;
        }
    }
    Some(taken)
}

/// How many positions `p` in `0..n` have `p mod size ≥ paid`: the unpaid
/// units among the first `n` units of groups of `size`.
fn free_below(n: u64, size: u64, paid: u64) -> u64 {
    let per_group = size.saturating_sub(paid);
    (n / size) * per_group + (n % size).saturating_sub(paid)
}

/// Compares the per-unit value of lines `a` and `b` from `(units, amount)`
/// pairs.
fn unspent_cmp(a: usize, b: usize, unspent: &dyn Fn(usize) -> (u32, i128)) -> std::cmp::Ordering {
    let get = |i: usize| {
        let (q, r) = unspent(i);
        (r, i128::from(q.max(1)))
    };
    let ((ra, qa), (rb, qb)) = (get(a), get(b));
    ra.saturating_mul(qb).cmp(&rb.saturating_mul(qa))
}

/// Units discounted per line: the cheapest `get` units, each group of
/// `get_quantity` paid for by `buy_quantity` of the dearest `buy` units.
/// `unspent` is each line's units still unspent and what they cost.
fn buy_x_get_y(
    env: &Env<'_>,
    unspent: &dyn Fn(usize) -> (u32, i128),
    buy: &[usize],
    buy_quantity: u32,
    get: &[usize],
    get_quantity: u32,
    (max_applications, reward_units): (Option<u32>, RewardUnits),
) -> Vec<u32> {
    let n = env.lines.len();
    let mut used = vec![0_u32; n];
    let mut got = vec![0_u32; n];
    // Rewards from the cheapest (or dearest) units, qualifiers from the
    // other end; ties in canonical line order.
    let dearest_gets = reward_units == RewardUnits::Dearest;
    let order = |a: &usize, b: &usize, dearest: bool| {
        let by_value = if dearest {
            unspent_cmp(*b, *a, unspent)
        } else {
            unspent_cmp(*a, *b, unspent)
        };
        by_value.then(line_rank(*a, env).cmp(&line_rank(*b, env)))
    };
    let mut gets = get.to_vec();
    gets.sort_by(|a, b| order(a, b, dearest_gets));
    let mut buys = buy.to_vec();
    buys.sort_by(|a, b| order(a, b, !dearest_gets));
    let qty = |i: usize| unspent(i).0;
    let (mut gc, mut bc) = (0_usize, 0_usize);
    let mut apps = 0_u32;
    while max_applications.is_none_or(|m| apps < m) {
        let mut tentative: Vec<(usize, u32, bool)> = Vec::new();
        let mut need = get_quantity;
        let mut k = gc;
        while need > 0 {
            let Some(&i) = gets.get(k) else { break };
            let avail = qty(i) - used.get(i).copied().unwrap_or(0);
            let take = avail.min(need);
            if take > 0 {
                if let Some(u) = used.get_mut(i) {
                    *u += take;
                }
                tentative.push((i, take, true));
                need -= take;
            }
            if need > 0 {
                k += 1;
            }
        }
        let got_gets = need == 0;
        let mut need = buy_quantity;
        let mut m = bc;
        while got_gets && need > 0 {
            let Some(&i) = buys.get(m) else { break };
            let avail = qty(i) - used.get(i).copied().unwrap_or(0);
            let take = avail.min(need);
            if take > 0 {
                if let Some(u) = used.get_mut(i) {
                    *u += take;
                }
                tentative.push((i, take, false));
                need -= take;
            }
            if need > 0 {
                m += 1;
            }
        }
        if !got_gets || need > 0 {
            for (i, take, _) in tentative {
                if let Some(u) = used.get_mut(i) {
                    *u -= take;
                }
            }
            break;
        }
        for (i, take, is_get) in tentative {
            if is_get && let Some(g) = got.get_mut(i) {
                *g += take;
            }
        }
        gc = k;
        bc = m;
        apps += 1;
    }
    got
}

/// Splits `amount` over lines in proportion to what each still costs
/// (`weights`, each line's remaining value), under the settings' basis
/// ([`Allocation`]): each part stays within what its line still costs.
fn split(
    effect: &mut Effect,
    amount: i128,
    weights: &[(usize, i128)],
    env: &Env<'_>,
) -> Result<()> {
    let gross = match (env.allocation, &env.gross) {
        (Allocation::Gross, Some(gross)) => gross,
        _ => return allocate(effect, amount, weights, env),
    };
    // A line's share scales with its tax: remaining × gross / net.
    let mut scaled = Vec::with_capacity(weights.len());
    for (i, w) in weights {
        let net = env.lines.get(*i).map_or(0, |l| l.subtotal);
        let g = gross.get(*i).copied().unwrap_or(net);
        let s = if net > 0 {
            w.checked_mul(g)
                .ok_or_else(|| Error::Overflow("allocation"))?
                / net
        } else {
            *w
        };
        scaled.push((*i, s));
    }
    // Allocate by the scaled weights, then hold each part to its line;
    // what a line cannot hold goes, by the same rule, to those with room.
    let amount = amount.min(weights.iter().map(|(_, w)| (*w).max(0)).sum());
    let mut parts = shares(amount, &scaled, env)?;
    let mut over = 0_i128;
    let mut room = Vec::with_capacity(weights.len());
    for ((i, w), part) in weights.iter().zip(parts.iter_mut()) {
        let cap = (*w).max(0);
        over += (*part - cap).max(0);
        *part = (*part).min(cap);
        room.push((*i, cap - *part));
    }
    if over > 0 {
        for (part, more) in parts.iter_mut().zip(shares(over, &room, env)?) {
            *part += more;
        }
    }
    push_parts(effect, weights, parts);
    Ok(())
}

/// Adds each line's part above zero to `effect`.
fn push_parts(effect: &mut Effect, weights: &[(usize, i128)], parts: Vec<i128>) {
    effect.lines.reserve(parts.len());
    effect.lines.extend(
        weights
            .iter()
            .map(|(i, _)| *i)
            .zip(parts)
            .filter(|(_, p)| *p > 0),
    );
}

/// Splits `amount` (capped at the weights' sum) over `weights` exactly;
/// each part stays within its weight. The minor units left over go by the
/// settings' [`Remainder`] rule.
fn allocate(
    effect: &mut Effect,
    amount: i128,
    weights: &[(usize, i128)],
    env: &Env<'_>,
) -> Result<()> {
    let parts = shares(amount, weights, env)?;
    push_parts(effect, weights, parts);
    Ok(())
}

/// The parts of [`allocate`], one per weight (zeros included).
fn shares(amount: i128, weights: &[(usize, i128)], env: &Env<'_>) -> Result<Vec<i128>> {
    let total = weights
        .iter()
        .try_fold(0_i128, |acc, (_, w)| acc.checked_add((*w).max(0)))
        .ok_or_else(|| Error::Overflow("allocation"))?;
    let amount = amount.min(total);
    if amount <= 0 {
        return Ok(vec![0; weights.len()]);
    }
    // Ties go to the canonical line order, so line order never changes a result.
    let raw = weights
        .iter()
        .map(|(_, w)| u64::try_from((*w).max(0)).map_err(|_| Error::Overflow("allocation")))
        .collect::<Result<Vec<u64>>>()?;
    let parts = match env.remainder {
        Remainder::LargestRemainder => {
            let rank = |k: usize| {
                weights
                    .get(k)
                    .and_then(|(i, _)| env.lines.get(*i))
                    .map_or(u64::MAX, |l| u64::from(l.rank))
            };
            allocate_minor_ranked(amount, &raw, rank)?
        }
        Remainder::FirstLines => {
            let lines: Vec<usize> = weights.iter().map(|(i, _)| *i).collect();
            allocate_first(amount, &raw, &lines, total)?
        }
    };
    Ok(parts)
}

/// Floors of the proportional shares of `amount` (at most `total`, the
/// weights' sum, above zero), then one minor unit each to the weights above
/// zero of the first lines in cart order (`lines`: each weight's line
/// index), until the amount is met. A part never passes its weight: with
/// `amount < total`, a share's floor is below it.
fn allocate_first(
    amount: i128,
    weights: &[u64],
    lines: &[usize],
    total: i128,
) -> Result<Vec<i128>> {
    let mut parts = Vec::with_capacity(weights.len());
    let mut assigned = 0_i128;
    for w in weights {
        let part = amount
            .checked_mul(i128::from(*w))
            .ok_or_else(|| Error::Overflow("allocation"))?
            / total;
        assigned += part;
        parts.push(part);
    }
    let mut left = amount - assigned;
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|k| lines.get(*k).copied().unwrap_or(usize::MAX));
    for k in order {
        if left <= 0 {
            break;
        }
        if let (Some(part), Some(w)) = (parts.get_mut(k), weights.get(k))
            && *w > 0
            && *part < i128::from(*w)
        {
            *part += 1;
            left -= 1;
        }
    }
    Ok(parts)
}

/// Where shipment indices start when shipments and lines share one split:
/// after every line, so lines come first in every order.
const SHIPMENT: usize = usize::MAX / 2;

/// Scales an effect down to `limit` in all, by largest remainder over its parts.
pub(super) fn cap(effect: &mut Effect, limit: i128, env: &Env<'_>) -> Result<()> {
    let mut weights: Vec<(usize, i128)> = effect.lines.clone();
    weights.extend(effect.shipping.iter().map(|(k, a)| (SHIPMENT + k, *a)));
    let mut scaled = Effect::default();
    allocate(&mut scaled, limit, &weights, env)?;
    effect.shipping = scaled
        .lines
        .iter()
        .filter(|(i, _)| *i >= SHIPMENT)
        .map(|(i, a)| (i - SHIPMENT, *a))
        .collect();
    scaled.lines.retain(|(i, _)| *i < SHIPMENT);
    effect.lines = scaled.lines;
    Ok(())
}

#[cfg(test)]
mod tests;
