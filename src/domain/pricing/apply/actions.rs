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

mod units;
pub(crate) use units::cap;
use units::*;

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

#[cfg(test)]
mod tests;
