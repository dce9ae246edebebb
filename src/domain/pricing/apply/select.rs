//! Finding the promotions that could apply to a cart and checking them:
//! window, currency, limits and conditions, with the comparisons recorded.

use super::*;
use crate::id::CustomerGroupId;
use crate::pricing::AutomaticPromotions;
use crate::pricing::Compounding;

impl PromotionSet {
    /// The promotion's name, shared by every adjustment it makes.
    pub(crate) fn label(&self, index: u32) -> std::sync::Arc<str> {
        self.compiled(index)
            .map_or_else(|| "".into(), |c| std::sync::Arc::clone(&c.label))
    }

    pub(crate) fn promotion(&self, index: u32) -> Option<&Promotion> {
        self.compiled(index).map(|c| &c.promo)
    }

    /// Finds the promotions that could apply to the cart, checks their
    /// windows, currencies, limits and conditions, and splits them into
    /// line-level and shipping candidates (each in priority order).
    pub(crate) fn select(
        &self,
        env: &Env<'_>,
        codes: &[String],
        coupons: &[Coupon],
        automatic: &AutomaticPromotions,
        run: &mut Run,
    ) -> Result<(Vec<Candidate>, Vec<Candidate>)> {
        let mut found: Vec<(u32, Option<&str>)> = Vec::new();
        // Each distinct key in the cart once (the index holds every key a
        // promotion names, so every anchor key is in it).
        for id in env.index.ids.keys() {
            if let Some(list) = self.by_uuid.get(id) {
                found.extend(list.iter().map(|i| (*i, None)));
            }
        }
        for tag in env.index.tags.keys() {
            if let Some(list) = self.by_tag.get(*tag) {
                found.extend(list.iter().map(|i| (*i, None)));
            }
        }
        if let Some((_, list)) = self.by_currency.iter().find(|(c, _)| *c == env.currency) {
            found.extend(list.iter().map(|i| (*i, None)));
        }
        found.extend(self.always.iter().map(|i| (*i, None)));
        // Automatic promotions of other currencies only: reported, never
        // evaluated.
        if !matches!(automatic, AutomaticPromotions::None) {
            for (index, served) in &self.currency_only {
                if served.contains(&env.currency) {
                    continue;
                }
                let Some(c) = self.compiled(*index) else {
                    continue;
                };
                if c.promo.coded || !automatic.allows(c.promo.id) {
                    continue;
                }
                // What the same promotion behind a code is told, from its
                // fields alone (its conditions are not evaluated).
                if let Some(reason) = Self::precheck(c, env) {
                    run.rejected.push((Some(*index), None, reason));
                }
            }
        }
        // Automatic ones the request leaves out are not considered at all.
        match automatic {
            AutomaticPromotions::All => {}
            AutomaticPromotions::None => found.clear(),
            AutomaticPromotions::Only { .. } => found.retain(|(i, _)| {
                self.compiled(*i)
                    .is_some_and(|c| automatic.allows(c.promo.id))
            }),
        }
        for code in codes {
            let Some(coupon) = coupons.iter().find(|c| c.code == *code) else {
                run.rejected
                    .push((None, Some(code.clone()), Rejection::UnknownCode));
                continue;
            };
            let before = found.len();
            for id in coupon.promotions() {
                if let Some(index) = self.by_id.get(&id) {
                    // The entry for the cart's currency (its own, or its terms').
                    let index = self
                        .compiled(*index)
                        .and_then(|c| c.variants.iter().find(|(cur, _)| *cur == env.currency))
                        .map_or(*index, |(_, i)| *i);
                    found.push((index, Some(code.as_str())));
                }
            }
            if found.len() == before {
                run.rejected
                    .push((None, Some(code.clone()), Rejection::UnknownCode));
            }
        }
        // Priority order is index order; a code sorts after the automatic
        // entry of the same promotion, and only the first entry counts.
        found.sort_unstable();
        if found.len() > MAX_CANDIDATES {
            // Never silent: each one left out says why.
            for (index, code) in found.drain(MAX_CANDIDATES..) {
                run.rejected.push((
                    Some(index),
                    code.map(str::to_owned),
                    Rejection::TooManyCandidates {
                        max: MAX_CANDIDATES as u64,
                    },
                ));
            }
        }
        let mut lines = Vec::new();
        let mut shipping = Vec::new();
        let mut last: Option<u32> = None;
        for (index, code) in found {
            if last == Some(index) {
                if let Some(code) = code {
                    // A code of a promotion already considered (automatic,
                    // or through another code): it says what that entry
                    // did, never a refusal while its discount is on the cart.
                    run.riding.push((index, code.to_owned()));
                }
                continue;
            }
            last = Some(index);
            let Some(c) = self.compiled(index) else {
                continue;
            };
            // A promotion's other currencies' entries are not this cart's.
            if !c.serves(env.currency) || (c.promo.coded && code.is_none()) {
                continue;
            }
            let code = code.map(str::to_owned);
            let coupon = code
                .as_ref()
                .and_then(|code| coupons.iter().find(|c| c.code == *code));
            match self.check(c, index, env, coupon, run)? {
                Ok(budget_left) => {
                    let cand = Candidate {
                        index,
                        code,
                        budget_left,
                    };
                    if c.shipping {
                        shipping.push(cand);
                    } else {
                        lines.push(cand);
                    }
                }
                Err(reason) => run.rejected.push((Some(index), code, reason)),
            }
        }
        Ok((lines, shipping))
    }

    /// What refuses a promotion before anything of the cart is looked at:
    /// switched off, outside its window, amounts in another currency.
    fn precheck(c: &Compiled, env: &Env<'_>) -> Option<Rejection> {
        let p = &c.promo;
        if !p.enabled {
            return Some(Rejection::Disabled);
        }
        match p.window_state(env.now) {
            WindowState::NotStarted(starts_at) => return Some(Rejection::NotStarted { starts_at }),
            WindowState::Ended(ended_at) => return Some(Rejection::Expired { ended_at }),
            WindowState::Open => {}
        }
        if !c.currencies.is_empty() && !c.currencies.contains(&env.currency) {
            return Some(Rejection::WrongCurrency {
                expected: c.currencies.clone(),
                actual: env.currency,
            });
        }
        None
    }

    /// Window, currency, limits and conditions. `Ok(Ok(budget left))` if it qualifies.
    fn check(
        &self,
        c: &Compiled,
        index: u32,
        env: &Env<'_>,
        coupon: Option<&Coupon>,
        run: &mut Run,
    ) -> Result<std::result::Result<Option<i128>, Rejection>> {
        let p = &c.promo;
        if let Some(reason) = Self::precheck(c, env) {
            return Ok(Err(reason));
        }
        for (counter, limit) in claims_for(p, coupon, env.customer) {
            let Some(counter) = counter else {
                return Ok(Err(Rejection::NeedsCustomer));
            };
            let used = env.usage.get(&counter).copied().unwrap_or(0);
            if used >= limit {
                return Ok(Err(Rejection::UsedUp {
                    counter,
                    limit,
                    used,
                }));
            }
        }
        let budget_left = match &p.limits.budget {
            Some(b) => {
                let counter = c.budget_counter();
                let limit = u64::try_from(b.to_minor()?).map_err(|_| Error::Overflow("budget"))?;
                let used = env.usage.get(&counter).copied().unwrap_or(0);
                let left = i128::from(limit) - i128::from(used);
                if left <= 0 {
                    return Ok(Err(Rejection::UsedUp {
                        counter,
                        limit,
                        used,
                    }));
                }
                Some(left)
            }
            None => None,
        };
        // Conditions on the discounted subtotal wait for the walk.
        let stage = Stage {
            subtotal: env.subtotal,
            discounted: None,
        };
        let conditions = p
            .conditions
            .iter()
            .filter(|cond| !c.deferred || !super::reads_discounted(cond));
        match self.conditions(conditions, env, stage, index, Some(run))? {
            Some(reason) => Ok(Err(reason)),
            None => Ok(Ok(budget_left)),
        }
    }

    /// Checks `conditions` at `stage`: `None` if all hold, else the
    /// rejection, with a hint in `run` when one gap the customer can fill
    /// (an amount or units) is all that is missing.
    pub(crate) fn conditions<'c>(
        &self,
        conditions: impl Iterator<Item = &'c Condition>,
        env: &Env<'_>,
        stage: Stage,
        index: u32,
        run: Option<&mut Run>,
    ) -> Result<Option<Rejection>> {
        let mut fails = Vec::new();
        let mut ok = true;
        for cond in conditions {
            if !self.condition(cond, env, stage, &mut fails)? {
                ok = false;
            }
        }
        if ok {
            return Ok(None);
        }
        if let (Some(run), [only]) = (run, fails.as_slice()) {
            if let Some(missing) = only.missing {
                run.hints.push((index, Gap::Money(missing)));
            } else if let Some(units) = only.missing_units {
                run.hints.push((index, Gap::Units(units)));
            }
        }
        Ok(Some(Rejection::ConditionsNotMet { comparisons: fails }))
    }

    /// The conditions a promotion checks when its turn comes in the walk,
    /// on the cart as earlier promotions left it (`remaining`): the
    /// deferred ones (on the discounted subtotal) always, and all of them
    /// under [`Compounding::DiscountedRecheck`].
    pub(crate) fn recheck(
        &self,
        index: u32,
        env: &Env<'_>,
        remaining: &[i128],
        run: Option<&mut Run>,
    ) -> Result<Option<Rejection>> {
        let Some(c) = self.compiled(index) else {
            return Ok(None);
        };
        let all = self.settings.compounding == Compounding::DiscountedRecheck;
        if !all && !c.deferred {
            return Ok(None);
        }
        let discounted = remaining
            .iter()
            .try_fold(0_i128, |acc, r| acc.checked_add(*r))
            .ok_or_else(|| Error::Overflow("subtotal"))?;
        let stage = Stage {
            subtotal: if all { discounted } else { env.subtotal },
            discounted: Some(discounted),
        };
        let conditions = c
            .promo
            .conditions
            .iter()
            .filter(|cond| all || super::reads_discounted(cond));
        self.conditions(conditions, env, stage, index, run)
    }

    /// Whether `c` holds, pushing every failed comparison to `fails` (for
    /// "any of", only when none holds).
    fn condition(
        &self,
        c: &Condition,
        env: &Env<'_>,
        stage: Stage,
        fails: &mut Vec<Comparison>,
    ) -> Result<bool> {
        let failed = match c {
            Condition::AllOf { conditions } => {
                let mut ok = true;
                for c in conditions {
                    if !self.condition(c, env, stage, fails)? {
                        ok = false;
                    }
                }
                return Ok(ok);
            }
            Condition::AnyOf { conditions } => {
                let mut local = Vec::new();
                for c in conditions {
                    if self.condition(c, env, stage, &mut local)? {
                        return Ok(true);
                    }
                }
                fails.extend(local);
                return Ok(false);
            }
            Condition::Subtotal { op, amount } => {
                subtotal("subtotal", *op, amount, stage.subtotal, env)
            }
            Condition::SubtotalWithTax { op, amount } => {
                let gross = env.gross.as_ref().map_or(env.subtotal, |g| g.iter().sum());
                subtotal("subtotal with tax", *op, amount, gross, env)
            }
            Condition::DiscountedSubtotal { op, amount } => subtotal(
                "subtotal after earlier discounts",
                *op,
                amount,
                stage.discounted.unwrap_or(stage.subtotal),
                env,
            ),
            Condition::ItemCount { op, count } => {
                let ok = op.compare(&env.items, count);
                (!ok).then(|| {
                    let mut c = failed("item count", *op, count, env.items);
                    c.missing_units = units_short(*op, env.items, *count);
                    c
                })
            }
            Condition::Not { condition } => {
                // Holds when the inner one fails; the inner's own failures
                // are not reasons here.
                let mut inner = Vec::new();
                let held = self.condition(condition, env, stage, &mut inner)?;
                held.then(|| {
                    let what = serde_json::to_value(condition.as_ref())
                        .ok()
                        .and_then(|v| v.get("type").and_then(|t| t.as_str().map(str::to_owned)))
                        .unwrap_or_else(|| "condition".to_owned());
                    // Reads "lines condition met is not = not met".
                    failed(&format!("{what} condition"), Op::Eq, "not met", "met")
                })
            }
            Condition::Currency { op, currencies } => {
                let ok = op.member(&env.currency, currencies);
                (!ok).then(|| failed("currency", *op, list(currencies), env.currency))
            }
            Condition::ShippingOption { op, codes } => shipping_option(*op, codes, env),
            Condition::CustomerGroup { op, groups } => customer_group(*op, groups, env),
            Condition::OrderNumber { op, number } => {
                let this = u64::from(env.customer.orders_placed) + 1;
                let ok = op.compare(&this, &u64::from(*number));
                (!ok).then(|| failed("order number", *op, number, this))
            }
            Condition::Lines {
                filter,
                min_quantity,
            } => {
                let units: u64 = lines_matching(filter, env)
                    .into_iter()
                    .filter_map(|i| env.lines.get(i))
                    .map(|l| u64::from(l.quantity))
                    .sum();
                let ok = units >= u64::from(*min_quantity);
                (!ok).then(|| {
                    let mut c = failed("units of matching items", Op::Gte, min_quantity, units);
                    c.missing_units = Some(u64::from(*min_quantity) - units);
                    c
                })
            }
            Condition::LineQuantity {
                filter,
                op,
                quantity,
            } => line_quantity(filter, *op, *quantity, env),
            Condition::EmailDomain { op, domains } => {
                let domain = env
                    .customer
                    .email
                    .as_deref()
                    .and_then(|e| e.rsplit_once('@'))
                    .map(|(_, d)| d.trim().to_lowercase());
                let ok = super::text_member(*op, domain.as_ref(), domains);
                (!ok).then(|| {
                    let actual = domain.unwrap_or_else(|| "no email".to_owned());
                    failed("email domain", *op, domains.join(", "), actual)
                })
            }
            Condition::SalesChannel { op, channels } => {
                let ok = op.intersects(env.channel.iter(), channels);
                (!ok).then(|| {
                    let actual = env
                        .channel
                        .map_or_else(|| "no channel".to_owned(), |c| c.to_string());
                    failed("sales channel", *op, list(channels), actual)
                })
            }
            Condition::SignedIn { signed_in } => {
                let actual = env.customer.id.is_some();
                (actual != *signed_in).then(|| failed("signed in", Op::Eq, signed_in, actual))
            }
            Condition::DraftOrder { draft } => {
                let actual = env.draft_order;
                (actual != *draft).then(|| failed("draft order", Op::Eq, draft, actual))
            }
            Condition::Custom { rule, settings } => self.custom_condition(rule, settings, env)?,
        };
        let pass = failed.is_none();
        fails.extend(failed);
        Ok(pass)
    }

    /// A registered rule's verdict; an unknown rule fails.
    fn custom_condition(
        &self,
        rule: &str,
        settings: &serde_json::Value,
        env: &Env<'_>,
    ) -> Result<Option<Comparison>> {
        let Some(r) = self.rules.get(rule) else {
            return Ok(Some(failed(rule, Op::Eq, "a registered rule", "none")));
        };
        let subtotals: Vec<i128> = env.lines.iter().map(|l| l.subtotal).collect();
        Ok(match r.condition(settings, &env.rule_cart(&subtotals)?) {
            Verdict::Met => None,
            Verdict::NotMet(c) => Some(c),
        })
    }
}

/// A comparison that failed (built only when one did: it allocates).
fn failed(subject: &str, op: Op, expected: impl ToString, actual: impl ToString) -> Comparison {
    Comparison::new(subject, op, expected.to_string(), actual.to_string())
}

/// For a minimum count not reached (`gte`, `gt`, `eq` from below): how many
/// more units reach it.
fn units_short(op: Op, have: u64, want: u64) -> Option<u64> {
    match op {
        Op::Gte | Op::Eq if have < want => Some(want - have),
        Op::Gt if have <= want => Some(want - have + 1),
        _ => None,
    }
}

/// The subtotal against a threshold in the cart's currency (another
/// currency never holds), saying what is missing to reach it.
fn subtotal(
    subject: &str,
    op: Op,
    amount: &Money,
    actual: i128,
    env: &Env<'_>,
) -> Option<Comparison> {
    let expected = env.minor(amount);
    let ok = expected.is_some_and(|e| op.compare(&actual, &e));
    if ok {
        return None;
    }
    let mut c = failed(subject, op, amount, env.show(actual));
    c.missing = match (op, expected) {
        (Op::Gte, Some(e)) => env.money(e - actual).ok(),
        (Op::Gt, Some(e)) => env.money(e - actual + 1).ok(),
        _ => None,
    };
    Some(c)
}

/// The amounts conditions compare with: the subtotal (before promotions,
/// or after earlier ones under [`Compounding::DiscountedRecheck`]) and, in
/// the walk, the subtotal after earlier promotions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stage {
    pub subtotal: i128,
    pub discounted: Option<i128>,
}

/// Whether some line matching `filter` has a quantity that compares with
/// `want`; when none does, how many units the closest line lacks.
fn line_quantity(filter: &LineFilter, op: Op, want: u32, env: &Env<'_>) -> Option<Comparison> {
    let quantities: Vec<u64> = lines_matching(filter, env)
        .into_iter()
        .filter_map(|i| env.lines.get(i))
        .map(|l| u64::from(l.quantity))
        .collect();
    let want = u64::from(want);
    if quantities.iter().any(|q| op.compare(q, &want)) {
        return None;
    }
    let best = quantities.iter().copied().max().unwrap_or(0);
    let mut c = failed("quantity of a matching line", op, want, best);
    c.missing_units = units_short(op, best, want);
    Some(c)
}

/// The chosen shipping method against a list; no method chosen only
/// satisfies "not in" and "not equal".
fn shipping_option(op: Op, codes: &[String], env: &Env<'_>) -> Option<Comparison> {
    // Any chosen method in the list (none chosen: only "not in" holds).
    let found = env.chosen_methods().any(|m| codes.iter().any(|c| c == m));
    let ok = match op {
        Op::NotIn | Op::Ne => !found,
        _ => found,
    };
    (!ok).then(|| {
        let chosen: Vec<&str> = env.chosen_methods().collect();
        let actual = if chosen.is_empty() {
            "none".to_owned()
        } else {
            chosen.join(", ")
        };
        failed("shipping option", op, codes.join(", "), actual)
    })
}

/// The customer's groups against a list.
fn customer_group(op: Op, groups: &[CustomerGroupId], env: &Env<'_>) -> Option<Comparison> {
    let ok = op.intersects(&env.customer.groups, groups);
    if ok {
        return None;
    }
    let actual = if env.customer.groups.is_empty() {
        "no group".to_owned()
    } else {
        list(&env.customer.groups.iter().collect::<Vec<_>>())
    };
    Some(failed("customer group", op, list(groups), actual))
}

fn list<T: std::fmt::Display>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
