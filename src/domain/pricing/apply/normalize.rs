//! Promotions made ready for matching when a set is compiled: values
//! normalized (lower-cased, sorted, de-duplicated) and what each condition
//! reads worked out, custom rules checked against the registry.
//!
//! Does not know: carts; it prepares promotion data once per compile.

use super::super::promotion::{Action, Condition, LineFilter, Promotion};
use super::super::rule::RuleRegistry;
use crate::error::{Error, Result};

/// Whether `c`, or a condition inside it, reads the customer's order count.
pub(super) fn counts_orders(c: &Condition) -> bool {
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            conditions.iter().any(counts_orders)
        }
        Condition::Not { condition } => counts_orders(condition),
        Condition::OrderNumber { .. } | Condition::Custom { .. } => true,
        _ => false,
    }
}

/// Whether `c` reads the subtotal with tax (anywhere inside).
pub(super) fn reads_gross(c: &Condition) -> bool {
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            conditions.iter().any(reads_gross)
        }
        Condition::Not { condition } => reads_gross(condition),
        Condition::SubtotalWithTax { .. } => true,
        _ => false,
    }
}

/// Whether `c` reads the subtotal after earlier promotions (anywhere inside).
pub(crate) fn reads_discounted(c: &Condition) -> bool {
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            conditions.iter().any(reads_discounted)
        }
        Condition::Not { condition } => reads_discounted(condition),
        Condition::DiscountedSubtotal { .. } => true,
        _ => false,
    }
}

pub(super) fn check_rules(p: &Promotion, rules: &RuleRegistry) -> Result<()> {
    fn cond(c: &Condition, rules: &RuleRegistry) -> Result<()> {
        match c {
            Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
                conditions.iter().try_for_each(|c| cond(c, rules))
            }
            Condition::Not { condition } => cond(condition, rules),
            Condition::Custom { rule, settings } => match rules.get(rule) {
                Some(r) => r.validate(settings),
                None => Err(Error::not_found("pricing rule", rule)),
            },
            _ => Ok(()),
        }
    }
    let mut all = vec![std::borrow::Cow::Borrowed(p)];
    all.extend(p.per_currency.iter().map(|t| p.terms_for(t.currency)));
    for p in &all {
        p.conditions.iter().try_for_each(|c| cond(c, rules))?;
        if let Action::Custom { rule, settings } = &p.action {
            match rules.get(rule) {
                Some(r) => r.validate(settings)?,
                None => return Err(Error::not_found("pricing rule", rule)),
            }
        }
    }
    Ok(())
}

/// Normalizes a filter for matching: tags lower-cased, every value list
/// sorted and de-duplicated (so [`matches`] can binary-search it).
fn lowercase_filter(f: &mut LineFilter) {
    match f {
        LineFilter::AllOf { filters } | LineFilter::AnyOf { filters } => {
            filters.iter_mut().for_each(lowercase_filter);
        }
        LineFilter::Tag { tags, .. } => {
            for t in tags.iter_mut() {
                *t = t.trim().to_lowercase();
            }
            tags.sort_unstable();
            tags.dedup();
        }
        LineFilter::Product { ids, .. } => sorted(ids),
        LineFilter::Variant { ids, .. } => sorted(ids),
        LineFilter::Category { ids, .. } => sorted(ids),
        LineFilter::Collection { ids, .. } => sorted(ids),
        LineFilter::Option { values, .. } | LineFilter::Metadata { values, .. } => sorted(values),
        LineFilter::Any | LineFilter::UnitPrice { .. } => {}
    }
}

fn sorted<T: Ord>(v: &mut Vec<T>) {
    v.sort_unstable();
    v.dedup();
}

pub(super) fn lowercase_condition(c: &mut Condition) {
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            conditions.iter_mut().for_each(lowercase_condition);
        }
        Condition::Not { condition } => lowercase_condition(condition),
        Condition::Lines { filter, .. } | Condition::LineQuantity { filter, .. } => {
            lowercase_filter(filter)
        }
        Condition::EmailDomain { domains, .. } => {
            for d in domains.iter_mut() {
                *d = d.trim().trim_start_matches('@').to_lowercase();
            }
            sorted(domains);
        }
        _ => {}
    }
}

pub(super) fn lowercase_action(a: &mut Action) {
    match a {
        Action::PercentOffItems { target, .. }
        | Action::AmountOffItems { target, .. }
        | Action::FixedPrice { target, .. }
        | Action::FixedTotal { target, .. }
        | Action::QuantityGroup { target, .. }
        | Action::FirstAndAdditional { target, .. }
        | Action::Tiered { target, .. }
        | Action::TieredShipping { target, .. } => lowercase_filter(target),
        Action::Bundle { items, .. } => items
            .iter_mut()
            .for_each(|i| lowercase_filter(&mut i.filter)),
        Action::BuyXGetY { buy, get, .. } => {
            lowercase_filter(buy);
            lowercase_filter(get);
        }
        _ => {}
    }
}
