//! What each action takes off: the integer arithmetic of every built-in
//! action and the exact splits (largest remainder, canonical ties).

use super::*;
use crate::money::allocate_minor_ranked;

impl PromotionSet {
    /// What `action` would take off, given what is left.
    pub(super) fn effect(
        &self,
        action: &Action,
        env: &Env<'_>,
        remaining: &[i128],
        shipping: i128,
    ) -> Result<std::result::Result<Effect, Rejection>> {
        let mode = env.rounding;
        let mut effect = Effect::default();
        let selected = |f: &LineFilter| -> Vec<usize> { lines_matching(f, env) };
        let rem = |i: usize| remaining.get(i).copied().unwrap_or(0);
        let line = |i: usize| env.lines.get(i);
        // The value of `units` of line `i`, floored: computed as
        // (r / q)·u + (r mod q)·u / q, which cannot overflow for u ≤ q.
        let value = |i: usize, units: u32| -> i128 {
            match line(i) {
                Some(l) if l.quantity > 0 => {
                    let (r, q, u) = (
                        rem(i),
                        i128::from(l.quantity),
                        i128::from(units.min(l.quantity)),
                    );
                    (r / q) * u + (r % q) * u / q
                }
                _ => 0,
            }
        };
        let units_of = |i: usize, max: &Option<u32>| -> u32 {
            let q = line(i).map_or(0, |l| l.quantity);
            max.map_or(q, |m| q.min(m))
        };
        match action {
            Action::PercentOffItems {
                target,
                percent,
                max_discount,
                max_quantity_per_line,
            } => {
                let f = Fraction::percent(*percent)?;
                for i in selected(target) {
                    let q = line(i).map_or(0, |l| l.quantity);
                    let d = f.of(rem(i), units_of(i, max_quantity_per_line), q, mode)?;
                    effect.lines.push((i, d));
                }
                if let Some(cap_amount) = max_discount.as_ref().and_then(|m| env.minor(m))
                    && effect.total() > cap_amount
                {
                    cap(&mut effect, cap_amount, env)?;
                }
            }
            Action::AmountOffItems {
                target,
                amount,
                per,
                max_quantity_per_line,
            } => {
                let Some(amount) = env.minor(amount) else {
                    return Ok(Err(wrong_currency(amount, env)));
                };
                let lines = selected(target);
                match per {
                    AmountPer::Unit | AmountPer::Line => {
                        for i in lines {
                            let units = units_of(i, max_quantity_per_line);
                            let ask = if *per == AmountPer::Unit {
                                amount
                                    .checked_mul(i128::from(units))
                                    .ok_or_else(|| Error::Overflow("discount"))?
                            } else {
                                amount
                            };
                            effect.lines.push((i, ask.min(value(i, units))));
                        }
                    }
                    AmountPer::Split => {
                        let weights: Vec<(usize, i128)> = lines
                            .iter()
                            .map(|i| (*i, value(*i, units_of(*i, max_quantity_per_line))))
                            .collect();
                        split(&mut effect, amount, &weights, env)?;
                    }
                }
            }
            Action::PercentOffOrder {
                percent,
                max_discount,
            } => {
                let f = Fraction::percent(*percent)?;
                let base: i128 = remaining.iter().sum();
                let mut total = f.of(base, 1, 1, mode)?;
                if let Some(cap_amount) = max_discount.as_ref().and_then(|m| env.minor(m)) {
                    total = total.min(cap_amount);
                }
                let weights: Vec<(usize, i128)> = remaining.iter().copied().enumerate().collect();
                split(&mut effect, total, &weights, env)?;
            }
            Action::AmountOffOrder { amount } => {
                let Some(amount) = env.minor(amount) else {
                    return Ok(Err(wrong_currency(amount, env)));
                };
                let weights: Vec<(usize, i128)> = remaining.iter().copied().enumerate().collect();
                split(&mut effect, amount, &weights, env)?;
            }
            Action::FixedPrice {
                target,
                price,
                max_quantity_per_line,
            } => {
                let Some(price) = env.minor(price) else {
                    return Ok(Err(wrong_currency(price, env)));
                };
                for i in selected(target) {
                    let units = units_of(i, max_quantity_per_line);
                    let at = price
                        .checked_mul(i128::from(units))
                        .ok_or_else(|| Error::Overflow("fixed price"))?;
                    effect.lines.push((i, (value(i, units) - at).max(0)));
                }
            }
            Action::Bundle {
                items,
                price,
                max_bundles,
            } => {
                let Some(price) = env.minor(price) else {
                    return Ok(Err(wrong_currency(price, env)));
                };
                let sets: Vec<(Vec<usize>, u32)> = items
                    .iter()
                    .map(|item| {
                        let mut lines = selected(&item.filter);
                        // Most valuable units first.
                        lines.sort_by(|a, b| {
                            per_unit_cmp(*b, *a, env, remaining)
                                .then(line_rank(*a, env).cmp(&line_rank(*b, env)))
                        });
                        (lines, item.quantity)
                    })
                    .collect();
                let upper = sets
                    .iter()
                    .map(|(lines, q)| {
                        let units: u64 = lines
                            .iter()
                            .map(|i| u64::from(line(*i).map_or(0, |l| l.quantity)))
                            .sum();
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
                if let Some(taken) = take_bundles(&sets, lo, env).filter(|_| lo > 0) {
                    let weights: Vec<(usize, i128)> = taken
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| **t > 0)
                        .map(|(i, t)| (i, value(i, *t)))
                        .collect();
                    let worth: i128 = weights.iter().map(|(_, w)| w).sum();
                    let at = price
                        .checked_mul(i128::from(lo))
                        .ok_or_else(|| Error::Overflow("bundle price"))?;
                    split(&mut effect, (worth - at).max(0), &weights, env)?;
                }
            }
            Action::BuyXGetY {
                buy,
                buy_quantity,
                get,
                get_quantity,
                percent,
                max_applications,
            } => {
                let f = Fraction::percent(*percent)?;
                let got = buy_x_get_y(
                    env,
                    remaining,
                    &selected(buy),
                    *buy_quantity,
                    &selected(get),
                    *get_quantity,
                    *max_applications,
                );
                for (i, units) in got.into_iter().enumerate() {
                    if units > 0 {
                        let q = line(i).map_or(0, |l| l.quantity);
                        effect.lines.push((i, f.of(rem(i), units, q, mode)?));
                    }
                }
            }
            Action::Tiered { target, tiers } => {
                let lines = selected(target);
                let reward = match tiers {
                    Tiers::Subtotal { tiers } => {
                        let measure: i128 = lines
                            .iter()
                            .filter_map(|i| line(*i))
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
                        let measure: u64 = lines
                            .iter()
                            .filter_map(|i| line(*i))
                            .map(|l| u64::from(l.quantity))
                            .sum();
                        tiers
                            .iter()
                            .filter(|t| t.min <= measure)
                            .max_by_key(|t| t.min)
                            .map(|t| &t.reward)
                    }
                };
                match reward {
                    None => return Ok(Err(Rejection::NothingToDiscount)),
                    Some(Reward::Percent { percent }) => {
                        let f = Fraction::percent(*percent)?;
                        for i in lines {
                            effect.lines.push((i, f.of(rem(i), 1, 1, mode)?));
                        }
                    }
                    Some(Reward::Amount { amount }) => {
                        let Some(amount) = env.minor(amount) else {
                            return Ok(Err(wrong_currency(amount, env)));
                        };
                        let weights: Vec<(usize, i128)> =
                            lines.iter().map(|i| (*i, rem(*i))).collect();
                        split(&mut effect, amount, &weights, env)?;
                    }
                }
            }
            Action::Shipping { reward, methods } => {
                let chosen = env.shipping_method.unwrap_or_default();
                if shipping <= 0 || (!methods.is_empty() && !methods.iter().any(|m| m == chosen)) {
                    return Ok(Err(Rejection::NothingToDiscount));
                }
                effect.shipping = match reward {
                    Reward::Percent { percent } => {
                        Fraction::percent(*percent)?.of(shipping, 1, 1, mode)?
                    }
                    Reward::Amount { amount } => match env.minor(amount) {
                        Some(a) => a.min(shipping),
                        None => return Ok(Err(wrong_currency(amount, env))),
                    },
                };
            }
            Action::Gift {
                variant_id,
                quantity,
            } => {
                let unit = env
                    .catalog
                    .get(variant_id)
                    .filter(|e| e.purchasable().is_ok())
                    .and_then(|e| e.variant.price(env.currency))
                    .and_then(|p| p.to_minor().ok());
                let Some(unit) = unit else {
                    return Ok(Err(Rejection::GiftUnavailable {
                        variant_id: *variant_id,
                    }));
                };
                effect.gift = Some(Gift {
                    variant_id: *variant_id,
                    quantity: *quantity,
                    unit,
                });
            }
            Action::Custom { rule, settings } => {
                let Some(r) = self.rules.get(rule) else {
                    return Ok(Err(Rejection::UnknownRule { rule: rule.clone() }));
                };
                let cart = env.rule_cart(remaining)?;
                // A custom rule that fails or answers nonsense is skipped
                // with the reason, never failing pricing.
                let unevaluable =
                    |reason: String| Ok(Err(Rejection::Unevaluable { problem: reason }));
                let proposed = match r.action(settings, &cart) {
                    Ok(p) => p,
                    Err(e) => return unevaluable(format!("rule `{rule}` failed: {e}")),
                };
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
                    let a = minor.clamp(0, rem(i));
                    effect.lines.push((i, a));
                }
            }
        }
        // Merge repeated lines, drop zeros, never take more than is left —
        // in place: most actions already list each line once, in order.
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
            *a = (*a).clamp(0, rem(*i).max(0));
            *a > 0
        });
        effect.shipping = effect.shipping.clamp(0, shipping.max(0));
        Ok(Ok(effect))
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

/// Units discounted per line: the cheapest `get` units, each group of
/// `get_quantity` paid for by `buy_quantity` of the dearest `buy` units.
fn buy_x_get_y(
    env: &Env<'_>,
    remaining: &[i128],
    buy: &[usize],
    buy_quantity: u32,
    get: &[usize],
    get_quantity: u32,
    max_applications: Option<u32>,
) -> Vec<u32> {
    let n = env.lines.len();
    let mut used = vec![0_u32; n];
    let mut got = vec![0_u32; n];
    let mut gets = get.to_vec();
    gets.sort_by(|a, b| {
        per_unit_cmp(*a, *b, env, remaining).then(line_rank(*a, env).cmp(&line_rank(*b, env)))
    });
    let mut buys = buy.to_vec();
    buys.sort_by(|a, b| {
        per_unit_cmp(*b, *a, env, remaining).then(line_rank(*a, env).cmp(&line_rank(*b, env)))
    });
    let qty = |i: usize| env.lines.get(i).map_or(0, |l| l.quantity);
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

/// Splits `amount` (capped at the weights' sum) over `weights` by largest
/// remainder; each part stays within its weight.
fn split(
    effect: &mut Effect,
    amount: i128,
    weights: &[(usize, i128)],
    env: &Env<'_>,
) -> Result<()> {
    let total = weights
        .iter()
        .try_fold(0_i128, |acc, (_, w)| acc.checked_add((*w).max(0)))
        .ok_or_else(|| Error::Overflow("allocation"))?;
    let amount = amount.min(total);
    if amount <= 0 {
        return Ok(());
    }
    // Ties go to the canonical line order, so line order never changes a result.
    let raw = weights
        .iter()
        .map(|(_, w)| u64::try_from((*w).max(0)).map_err(|_| Error::Overflow("allocation")))
        .collect::<Result<Vec<u64>>>()?;
    let rank = |k: usize| {
        weights
            .get(k)
            .and_then(|(i, _)| env.lines.get(*i))
            .map_or(u64::MAX, |l| u64::from(l.rank))
    };
    let parts = allocate_minor_ranked(amount, &raw, rank)?;
    effect.lines.reserve(parts.len());
    effect.lines.extend(
        weights
            .iter()
            .map(|(i, _)| *i)
            .zip(parts)
            .filter(|(_, p)| *p > 0),
    );
    Ok(())
}

/// Scales an effect down to `limit` in all, by largest remainder over its parts.
pub(super) fn cap(effect: &mut Effect, limit: i128, env: &Env<'_>) -> Result<()> {
    let mut weights: Vec<(usize, i128)> = effect.lines.clone();
    weights.push((usize::MAX, effect.shipping));
    let mut scaled = Effect::default();
    split(&mut scaled, limit, &weights, env)?;
    effect.shipping = scaled
        .lines
        .iter()
        .find(|(i, _)| *i == usize::MAX)
        .map_or(0, |(_, a)| *a);
    scaled.lines.retain(|(i, _)| *i != usize::MAX);
    effect.lines = scaled.lines;
    Ok(())
}
