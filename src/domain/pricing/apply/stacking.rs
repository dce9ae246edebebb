//! Stacking: applying qualifying promotions in priority order, each on what
//! earlier ones left, under the apply-all or best-for-customer policy, and
//! the usage claims of those applied.

use super::actions::cap;
use super::*;
use crate::pricing::Compounding;
use crate::pricing::promotion::BudgetPolicy;

impl PromotionSet {
    /// Applies `candidates` to the lines' `remaining` amounts and the
    /// shipping amount left, under the set's policy. `before` are
    /// promotions applied in an earlier phase (for combination checks).
    pub(crate) fn apply(
        &self,
        env: &Env<'_>,
        candidates: Vec<Candidate>,
        remaining: &mut [i128],
        shipping: &mut [i128],
        before: &[u32],
        run: &mut Run,
    ) -> Result<()> {
        let mut candidates = candidates;
        if self.settings.policy == StackingPolicy::BestForCustomer && candidates.len() > 1 {
            // Those that cannot combine with what applied before are out.
            candidates.retain(|c| match self.conflict(c.index, before) {
                Some(with) => {
                    run.rejected.push((
                        Some(c.index),
                        c.code.clone(),
                        Rejection::NotCombinable { with },
                    ));
                    false
                }
                None => true,
            });
            if candidates.len() <= MAX_BEST_SEARCH
                && let Some(best) = self.best(env, &candidates, remaining, shipping, before)?
            {
                let (chosen, others): (Vec<_>, Vec<_>) = candidates
                    .into_iter()
                    .partition(|c| best.contains(&c.index));
                for c in others {
                    run.rejected
                        .push((Some(c.index), c.code, Rejection::NotBest));
                }
                candidates = chosen;
            }
        }
        let applied = self.walk(env, &candidates, remaining, shipping, before, Some(run))?;
        run.applied.extend(applied);
        Ok(())
    }

    /// The first promotion in `applied` that `index` does not combine with.
    fn conflict(&self, index: u32, applied: &[u32]) -> Option<PromotionId> {
        let me = &self.compiled(index)?.promo;
        applied.iter().find_map(|a| {
            let other = &self.compiled(*a)?.promo;
            (!me.stacking.combines(&other.stacking)).then_some(other.id)
        })
    }

    /// The compatible combination worth most; `None` if the search is too big.
    fn best(
        &self,
        env: &Env<'_>,
        candidates: &[Candidate],
        remaining: &[i128],
        shipping: &[i128],
        before: &[u32],
    ) -> Result<Option<Vec<u32>>> {
        let n = candidates.len();
        let mut compatible = vec![0_u32; n];
        for i in 0..n {
            for j in 0..n {
                let (Some(a), Some(b)) = (candidates.get(i), candidates.get(j)) else {
                    continue;
                };
                if i != j
                    && self.conflict(a.index, &[b.index]).is_none()
                    && let Some(m) = compatible.get_mut(i)
                {
                    *m |= 1 << j;
                }
            }
        }
        let all = if n >= 32 { u32::MAX } else { (1_u32 << n) - 1 };
        if compatible
            .iter()
            .enumerate()
            .all(|(i, m)| (m | (1 << i)) == all)
        {
            return Ok(Some(candidates.iter().map(|c| c.index).collect()));
        }
        let mut cliques = Vec::new();
        bron_kerbosch(0, all, 0, &compatible, &mut cliques);
        if cliques.len() > MAX_COMBINATIONS {
            return Ok(None);
        }
        let mut best: Option<(i128, u32)> = None;
        for clique in cliques {
            let chosen: Vec<Candidate> = candidates
                .iter()
                .enumerate()
                .filter(|(i, _)| clique & (1 << i) != 0)
                .map(|(_, c)| c.clone())
                .collect();
            let mut rem = remaining.to_vec();
            let mut ship = shipping.to_vec();
            let applied = self.walk(env, &chosen, &mut rem, &mut ship, before, None)?;
            let total: i128 = applied.iter().map(|a| a.effect.total()).sum();
            // Ties go to the combination whose lowest-priority-index member
            // comes first (the bit order is priority order).
            let better = match best {
                None => true,
                Some((t, c)) => {
                    total > t || (total == t && clique.reverse_bits() > c.reverse_bits())
                }
            };
            if better {
                best = Some((total, clique));
            }
        }
        Ok(best.map(|(_, clique)| {
            candidates
                .iter()
                .enumerate()
                .filter(|(i, _)| clique & (1 << i) != 0)
                .map(|(_, c)| c.index)
                .collect()
        }))
    }

    /// Applies candidates in order, each on what is left, skipping those
    /// that do not combine with one already applied.
    fn walk(
        &self,
        env: &Env<'_>,
        candidates: &[Candidate],
        remaining: &mut [i128],
        shipping: &mut [i128],
        before: &[u32],
        mut run: Option<&mut Run>,
    ) -> Result<Vec<Applied>> {
        let mut applied: Vec<Applied> = Vec::new();
        let mut ids: Vec<u32> = before.to_vec();
        let mut spent: Vec<Spent> = Vec::new();
        // Under `Compounding::Original` every promotion is computed on the
        // amounts before this phase's promotions, then held to what is left.
        let original = self.settings.compounding == Compounding::Original;
        let (base_lines, base_shipping): (Vec<i128>, Vec<i128>) = if original {
            (remaining.to_vec(), shipping.to_vec())
        } else {
            (Vec::new(), Vec::new())
        };
        for cand in candidates {
            if let Some(with) = self.conflict(cand.index, &ids) {
                if let Some(run) = run.as_deref_mut() {
                    run.rejected.push((
                        Some(cand.index),
                        cand.code.clone(),
                        Rejection::NotCombinable { with },
                    ));
                }
                continue;
            }
            let Some(c) = self.compiled(cand.index) else {
                continue;
            };
            if let Some(reason) = self.recheck(cand.index, env, remaining, run.as_deref_mut())? {
                if let Some(run) = run.as_deref_mut() {
                    run.rejected
                        .push((Some(cand.index), cand.code.clone(), reason));
                }
                continue;
            }
            let mut reject = |reason: Rejection| {
                if let Some(run) = run.as_deref_mut() {
                    run.rejected
                        .push((Some(cand.index), cand.code.clone(), reason));
                }
            };
            let computed = if original {
                self.effect(
                    (&c.promo.action, c.promo.reward_units, c.promo.unit_cap),
                    env,
                    &base_lines,
                    &spent,
                    &base_shipping,
                )?
            } else {
                self.effect(
                    (&c.promo.action, c.promo.reward_units, c.promo.unit_cap),
                    env,
                    remaining,
                    &spent,
                    shipping,
                )?
            };
            let mut effect = match computed {
                Ok(e) => e,
                Err(reason) => {
                    reject(reason);
                    continue;
                }
            };
            if original {
                // Never more than earlier promotions left.
                effect.lines.retain_mut(|(i, a)| {
                    *a = (*a).min(remaining.get(*i).copied().unwrap_or(0).max(0));
                    *a > 0
                });
                effect.shipping.retain_mut(|(k, a)| {
                    *a = (*a).min(shipping.get(*k).copied().unwrap_or(0).max(0));
                    *a > 0
                });
            }
            if let Some(left) = cand.budget_left
                && effect.total() > left
            {
                if effect.gift.is_some() || c.promo.limits.budget_policy == BudgetPolicy::Refuse {
                    // A gift is given whole or not at all; so is every
                    // discount under `BudgetPolicy::Refuse`.
                    let limit = c
                        .promo
                        .limits
                        .budget
                        .as_ref()
                        .and_then(|b| b.to_minor().ok());
                    let limit = limit.and_then(|l| u64::try_from(l).ok()).unwrap_or(0);
                    reject(Rejection::UsedUp {
                        counter: c.budget_counter(),
                        limit,
                        used: limit.saturating_sub(u64::try_from(left).unwrap_or(0)),
                    });
                    continue;
                }
                cap(&mut effect, left, env)?;
            }
            if effect.is_empty() {
                reject(Rejection::NothingToDiscount);
                continue;
            }
            Spent::book(&mut spent, &effect, remaining);
            for (line, amount) in &effect.lines {
                if let Some(r) = remaining.get_mut(*line) {
                    *r -= amount;
                }
            }
            for (k, a) in &effect.shipping {
                if let Some(left) = shipping.get_mut(*k) {
                    *left -= a;
                }
            }
            ids.push(cand.index);
            applied.push(Applied {
                index: cand.index,
                code: cand.code.clone(),
                effect,
            });
        }
        Ok(applied)
    }

    /// The usage claims of the applied promotions.
    pub(crate) fn claims(
        &self,
        applied: &[Applied],
        coupons: &[Coupon],
        customer: &CustomerFacts,
    ) -> Result<Vec<UsageClaim>> {
        let mut out = Vec::new();
        for a in applied {
            let Some(c) = self.compiled(a.index) else {
                continue;
            };
            let p = &c.promo;
            let coupon = a
                .code
                .as_ref()
                .and_then(|code| coupons.iter().find(|c| c.code == *code));
            for (counter, limit) in claims_for(p, coupon, customer) {
                // A code unlocking several promotions is used once per order.
                if let Some(counter) = counter
                    && !out.iter().any(|c: &UsageClaim| c.counter == counter)
                {
                    out.push(UsageClaim {
                        counter,
                        amount: 1,
                        limit,
                    });
                }
            }
            if let Some(b) = &p.limits.budget {
                let amount =
                    u64::try_from(a.effect.total()).map_err(|_| Error::Overflow("budget"))?;
                let limit = u64::try_from(b.to_minor()?).map_err(|_| Error::Overflow("budget"))?;
                out.push(UsageClaim {
                    counter: c.budget_counter(),
                    amount,
                    limit,
                });
            }
        }
        Ok(out)
    }
}

fn bron_kerbosch(r: u32, mut p: u32, mut x: u32, adj: &[u32], out: &mut Vec<u32>) {
    if out.len() > MAX_COMBINATIONS {
        return;
    }
    if p == 0 && x == 0 {
        out.push(r);
        return;
    }
    let pivot = (p | x).trailing_zeros() as usize;
    let candidates = p & !adj.get(pivot).copied().unwrap_or(0);
    for v in 0..32 {
        if candidates & (1 << v) == 0 {
            continue;
        }
        let nv = adj.get(v).copied().unwrap_or(0);
        bron_kerbosch(r | (1 << v), p & nv, x & nv, adj, out);
        p &= !(1 << v);
        x |= 1 << v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cliques_of_a_small_graph() {
        // 0-1 compatible, 2 alone.
        let adj = [0b010, 0b001, 0b000];
        let mut out = Vec::new();
        bron_kerbosch(0, 0b111, 0, &adj, &mut out);
        out.sort_unstable();
        assert_eq!(out, vec![0b011, 0b100]);
    }
}
