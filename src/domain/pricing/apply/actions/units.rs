//! How an action's amount reaches units: ranking lines, bundles, exact
//! shares of an amount, and caps.

use super::*;

pub(super) fn wrong_currency(m: &Money, env: &Env<'_>) -> Rejection {
    Rejection::WrongCurrency {
        expected: vec![m.currency()],
        actual: env.currency,
    }
}

pub(super) fn line_rank(i: usize, env: &Env<'_>) -> u32 {
    env.lines.get(i).map_or(u32::MAX, |l| l.rank)
}

/// Compares the per-unit value left on lines `a` and `b`.
pub(super) fn per_unit_cmp(
    a: usize,
    b: usize,
    env: &Env<'_>,
    remaining: &[i128],
) -> std::cmp::Ordering {
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
pub(super) fn take_bundles(
    sets: &[(Vec<usize>, u32)],
    count: u64,
    env: &Env<'_>,
) -> Option<Vec<u32>> {
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
pub(super) fn free_below(n: u64, size: u64, paid: u64) -> u64 {
    let per_group = size.saturating_sub(paid);
    (n / size) * per_group + (n % size).saturating_sub(paid)
}

/// Compares the per-unit value of lines `a` and `b` from `(units, amount)`
/// pairs.
pub(super) fn unspent_cmp(
    a: usize,
    b: usize,
    unspent: &dyn Fn(usize) -> (u32, i128),
) -> std::cmp::Ordering {
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
pub(super) fn buy_x_get_y(
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
pub(super) fn split(
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
pub(super) fn push_parts(effect: &mut Effect, weights: &[(usize, i128)], parts: Vec<i128>) {
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
pub(super) fn allocate(
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
pub(super) fn shares(amount: i128, weights: &[(usize, i128)], env: &Env<'_>) -> Result<Vec<i128>> {
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
pub(super) fn allocate_first(
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
pub(super) const SHIPMENT: usize = usize::MAX / 2;

/// Scales an effect down to `limit` in all, by largest remainder over its parts.
pub(crate) fn cap(effect: &mut Effect, limit: i128, env: &Env<'_>) -> Result<()> {
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
