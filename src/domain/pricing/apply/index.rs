//! Which lines and promotions a cart change can touch: the keys a
//! promotion is indexed by, and the lines a filter selects.

use super::*;

pub(super) fn watch_filter(f: &LineFilter, ids: &mut FastSet<Uuid>, tags: &mut FastSet<String>) {
    match f {
        LineFilter::AllOf { filters } | LineFilter::AnyOf { filters } => {
            filters.iter().for_each(|f| watch_filter(f, ids, tags));
        }
        LineFilter::Product { ids: v, .. } => ids.extend(v.iter().map(|i| i.as_uuid())),
        LineFilter::Variant { ids: v, .. } => ids.extend(v.iter().map(|i| i.as_uuid())),
        LineFilter::Category { ids: v, .. } => ids.extend(v.iter().map(|i| i.as_uuid())),
        LineFilter::Collection { ids: v, .. } => ids.extend(v.iter().map(|i| i.as_uuid())),
        LineFilter::Tag { tags: t, .. } => tags.extend(t.iter().cloned()),
        LineFilter::Any
        | LineFilter::UnitPrice { .. }
        | LineFilter::Option { .. }
        | LineFilter::Metadata { .. } => {}
    }
}

pub(super) fn watch_condition(c: &Condition, ids: &mut FastSet<Uuid>, tags: &mut FastSet<String>) {
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            conditions
                .iter()
                .for_each(|c| watch_condition(c, ids, tags));
        }
        Condition::Not { condition } => watch_condition(condition, ids, tags),
        Condition::Lines { filter, .. } | Condition::LineQuantity { filter, .. } => {
            watch_filter(filter, ids, tags)
        }
        _ => {}
    }
}

pub(super) fn action_filters(a: &Action) -> Vec<&LineFilter> {
    match a {
        Action::PercentOffItems { target, .. }
        | Action::AmountOffItems { target, .. }
        | Action::FixedPrice { target, .. }
        | Action::FixedTotal { target, .. }
        | Action::QuantityGroup { target, .. }
        | Action::FirstAndAdditional { target, .. }
        | Action::Tiered { target, .. }
        | Action::TieredShipping { target, .. } => vec![target],
        Action::Bundle { items, .. } => items.iter().map(|i| &i.filter).collect(),
        Action::BuyXGetY { buy, get, .. } => vec![buy, get],
        _ => Vec::new(),
    }
}

/// The lines that may match `f`, from the cart index, when `f` names ids or
/// tags it must have (`None`: any line may match).
pub(super) fn indexed_lines(f: &LineFilter, index: &CartIndex<'_>) -> Option<Vec<u32>> {
    let positive = |op: &Op| matches!(op, Op::In | Op::Eq | Op::ContainsAny);
    let by_ids = |ids: &mut dyn Iterator<Item = Uuid>| {
        let mut out = Vec::new();
        for id in ids {
            if let Some(lines) = index.ids.get(&id) {
                out.extend_from_slice(lines);
            }
        }
        out
    };
    let mut out = match f {
        LineFilter::Product { op, ids } if positive(op) => {
            by_ids(&mut ids.iter().map(|i| i.as_uuid()))
        }
        LineFilter::Variant { op, ids } if positive(op) => {
            by_ids(&mut ids.iter().map(|i| i.as_uuid()))
        }
        LineFilter::Category { op, ids } if positive(op) => {
            by_ids(&mut ids.iter().map(|i| i.as_uuid()))
        }
        LineFilter::Collection { op, ids } if positive(op) => {
            by_ids(&mut ids.iter().map(|i| i.as_uuid()))
        }
        LineFilter::Tag { op, tags } if positive(op) => {
            let mut out = Vec::new();
            for t in tags {
                if let Some(lines) = index.tags.get(t.as_str()) {
                    out.extend_from_slice(lines);
                }
            }
            out
        }
        LineFilter::AllOf { filters } => {
            return filters.iter().find_map(|f| indexed_lines(f, index));
        }
        LineFilter::AnyOf { filters } => {
            let mut out = Vec::new();
            for f in filters {
                out.extend(indexed_lines(f, index)?);
            }
            out
        }
        _ => return None,
    };
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// The indices of the lines matching `f`, in line order.
pub(crate) fn lines_matching(f: &LineFilter, env: &Env<'_>) -> Vec<usize> {
    match indexed_lines(f, &env.index) {
        Some(candidates) => candidates
            .into_iter()
            .map(|i| i as usize)
            .filter(|i| {
                env.lines
                    .get(*i)
                    .is_some_and(|l| l.promotable && matches(f, l, env))
            })
            .collect(),
        None => env
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.promotable && matches(f, l, env))
            .map(|(i, _)| i)
            .collect(),
    }
}

/// Keys at least one of which a cart must have for `f` to match a line.
pub(super) fn filter_keys(f: &LineFilter) -> Option<Vec<Key>> {
    let positive = |op: Op| matches!(op, Op::In | Op::Eq | Op::ContainsAny);
    match f {
        LineFilter::Product { op, ids } if positive(*op) => {
            Some(ids.iter().map(|i| Key::Id(i.as_uuid())).collect())
        }
        LineFilter::Variant { op, ids } if positive(*op) => {
            Some(ids.iter().map(|i| Key::Id(i.as_uuid())).collect())
        }
        LineFilter::Category { op, ids } if positive(*op) => {
            Some(ids.iter().map(|i| Key::Id(i.as_uuid())).collect())
        }
        LineFilter::Collection { op, ids } if positive(*op) => {
            Some(ids.iter().map(|i| Key::Id(i.as_uuid())).collect())
        }
        LineFilter::Tag { op, tags } if positive(*op) => {
            Some(tags.iter().map(|t| Key::Tag(t.clone())).collect())
        }
        LineFilter::AllOf { filters } => best(filters.iter().filter_map(filter_keys)),
        LineFilter::AnyOf { filters } => union(filters.iter().map(filter_keys)),
        _ => None,
    }
}

pub(super) fn condition_keys(c: &Condition) -> Option<Vec<Key>> {
    match c {
        Condition::Lines { filter, .. }
        | Condition::LineQuantity {
            filter,
            op: Op::Gt | Op::Gte | Op::Eq,
            ..
        } => filter_keys(filter),
        Condition::Currency {
            op: Op::In | Op::Eq | Op::ContainsAny,
            currencies,
        } => Some(currencies.iter().map(|c| Key::Currency(*c)).collect()),
        Condition::AllOf { conditions } => best(conditions.iter().filter_map(condition_keys)),
        Condition::AnyOf { conditions } => union(conditions.iter().map(condition_keys)),
        _ => None,
    }
}

/// Keys are ranked: item keys before currency keys, then fewer keys.
pub(super) fn rank(keys: &[Key]) -> (bool, usize) {
    (
        keys.iter().any(|k| matches!(k, Key::Currency(_))),
        keys.len(),
    )
}

pub(super) fn best(options: impl Iterator<Item = Vec<Key>>) -> Option<Vec<Key>> {
    options.min_by_key(|k| rank(k))
}

pub(super) fn union(options: impl Iterator<Item = Option<Vec<Key>>>) -> Option<Vec<Key>> {
    let mut all = Vec::new();
    for o in options {
        all.extend(o?);
    }
    all.sort();
    all.dedup();
    Some(all)
}

pub(super) fn anchor(c: &Compiled) -> Option<Vec<Key>> {
    let p = &c.promo;
    let mut options: Vec<Vec<Key>> = p.conditions.iter().filter_map(condition_keys).collect();
    match &p.action {
        Action::PercentOffItems { target, .. }
        | Action::AmountOffItems { target, .. }
        | Action::FixedPrice { target, .. }
        | Action::FixedTotal { target, .. }
        | Action::QuantityGroup { target, .. }
        | Action::FirstAndAdditional { target, .. }
        | Action::Tiered { target, .. } => options.extend(filter_keys(target)),
        Action::BuyXGetY { buy, get, .. } => {
            options.extend(filter_keys(buy));
            options.extend(filter_keys(get));
        }
        Action::Bundle { items, .. } => {
            options.extend(items.iter().filter_map(|i| filter_keys(&i.filter)))
        }
        _ => {}
    }
    if !c.currencies.is_empty() {
        options.push(c.currencies.iter().map(|c| Key::Currency(*c)).collect());
    }
    best(options.into_iter()).map(|mut k| {
        k.sort();
        k.dedup();
        k
    })
}

// ----- the working state -----------------------------------------------
