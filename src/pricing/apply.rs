//! The promotion engine: a compiled, indexed [`PromotionSet`], condition
//! checks, the actions' arithmetic and the stacking policies.
//!
//! All arithmetic here is on integers in the cart currency's minor units
//! (`i128`), so every amount is exact and the hot path does no decimal work.
//! Percentages are exact fractions `mantissa / (100 × 10^scale)`, rounded
//! once per amount with the set's [`RoundingMode`].

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::CatalogEntry;
use crate::error::{Error, Result};
use crate::id::{LineId, PromotionId, VariantId};
use crate::inventory::UsageClaim;
use crate::money::{Currency, Money, RoundingMode};

use super::explain::{Comparison, Rejection};
use super::promotion::{
    Action, AmountPer, Condition, Coupon, LineFilter, Op, Promotion, Reward, Tiers, WindowState,
};
use super::rule::{CustomerFacts, RuleCart, RuleLine, RuleRegistry, Verdict};

type FastMap<K, V> = foldhash::HashMap<K, V>;
type FastSet<K> = foldhash::HashSet<K>;

/// Most applicable promotions the best-combination search compares; with
/// more, the set falls back to applying in priority order.
pub const MAX_BEST_SEARCH: usize = 16;
/// Most combinations the best-combination search evaluates.
pub const MAX_COMBINATIONS: usize = 64;
/// Most promotions (automatic and coded) one cart may consider.
pub const MAX_CANDIDATES: usize = 10_000;

/// Which qualifying promotions apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackingPolicy {
    /// Every qualifying promotion, in priority order, each on what earlier
    /// ones left, skipping any that does not combine with one already applied.
    #[default]
    ApplyAll,
    /// The combination of compatible promotions that takes the most off for
    /// the customer (ties: the one earliest in priority order). Compares up
    /// to [`MAX_COMBINATIONS`] combinations of up to [`MAX_BEST_SEARCH`]
    /// promotions; beyond that it applies in priority order.
    BestForCustomer,
}

/// How a [`PromotionSet`] applies its promotions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PromotionSettings {
    /// The stacking policy.
    pub policy: StackingPolicy,
    /// How percentage discounts are rounded to minor units.
    pub rounding: RoundingMode,
}

#[derive(Debug, Clone)]
struct Compiled {
    promo: Promotion,
    label: std::sync::Arc<str>,
    currencies: Vec<Currency>,
    shipping: bool,
}

/// Promotions compiled for pricing: validated, in priority order, and
/// indexed by what they target, so pricing a cart looks only at promotions
/// that could apply to it.
///
/// Automatic promotions are indexed by the variants, products, categories,
/// collections and tags their conditions or targets require (the most
/// selective one), else by the currency their amounts are in, else they are
/// considered for every cart. Coded promotions are found by their coupons.
#[derive(Debug, Clone, Default)]
pub struct PromotionSet {
    promos: Vec<Compiled>,
    by_id: FastMap<PromotionId, u32>,
    by_uuid: FastMap<Uuid, Vec<u32>>,
    by_tag: FastMap<String, Vec<u32>>,
    by_currency: Vec<(Currency, Vec<u32>)>,
    always: Vec<u32>,
    rules: RuleRegistry,
    settings: PromotionSettings,
    gifts: Vec<VariantId>,
    /// Every id and tag any filter names: the keys a cart is indexed by.
    watched_ids: FastSet<Uuid>,
    watched_tags: FastSet<String>,
}

/// A cart's lines by the ids and tags the promotion set watches, so a
/// filter naming a few variants looks at those lines only.
#[derive(Debug, Default)]
pub(crate) struct CartIndex<'a> {
    ids: FastMap<Uuid, Vec<u32>>,
    tags: FastMap<&'a str, Vec<u32>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Id(Uuid),
    Tag(String),
    Currency(Currency),
}

impl PromotionSet {
    /// Compiles `promotions`: each is validated, and every custom rule it
    /// names must be in `rules` with settings that rule accepts.
    pub fn new(
        promotions: Vec<Promotion>,
        rules: RuleRegistry,
        settings: PromotionSettings,
    ) -> Result<Self> {
        let mut promos = Vec::with_capacity(promotions.len());
        for mut p in promotions {
            p.validate()?;
            check_rules(&p, &rules)?;
            for c in &mut p.conditions {
                lowercase_condition(c);
            }
            lowercase_action(&mut p.action);
            let currencies = p.currencies().into_iter().collect();
            let shipping = matches!(p.action, Action::Shipping { .. });
            promos.push(Compiled {
                label: p.name.as_str().into(),
                promo: p,
                currencies,
                shipping,
            });
        }
        promos.sort_by(|a, b| {
            a.promo
                .priority
                .cmp(&b.promo.priority)
                .then(a.promo.id.cmp(&b.promo.id))
        });
        let mut set = Self {
            rules,
            settings,
            ..Self::default()
        };
        let mut gifts = BTreeSet::new();
        for (index, c) in promos.iter().enumerate() {
            let index = u32::try_from(index).map_err(|_| Error::Overflow("promotion count"))?;
            if set.by_id.insert(c.promo.id, index).is_some() {
                return Err(Error::AlreadyExists {
                    what: "promotion",
                    value: c.promo.id.to_string(),
                });
            }
            if let Action::Gift { variant_id, .. } = &c.promo.action {
                gifts.insert(*variant_id);
            }
            if c.promo.coded {
                continue;
            }
            match anchor(c) {
                None => set.always.push(index),
                Some(keys) => {
                    for key in keys {
                        match key {
                            Key::Id(id) => set.by_uuid.entry(id).or_default().push(index),
                            Key::Tag(t) => set.by_tag.entry(t).or_default().push(index),
                            Key::Currency(cur) => {
                                match set.by_currency.iter_mut().find(|(c, _)| *c == cur) {
                                    Some((_, v)) => v.push(index),
                                    None => set.by_currency.push((cur, vec![index])),
                                }
                            }
                        }
                    }
                }
            }
        }
        for c in &promos {
            for cond in &c.promo.conditions {
                watch_condition(cond, &mut set.watched_ids, &mut set.watched_tags);
            }
            for f in action_filters(&c.promo.action) {
                watch_filter(f, &mut set.watched_ids, &mut set.watched_tags);
            }
        }
        set.promos = promos;
        set.gifts = gifts.into_iter().collect();
        Ok(set)
    }

    /// Indexes a cart's lines by the keys this set watches.
    pub(crate) fn index_cart<'a>(&self, lines: &'a [WorkLine<'a>]) -> CartIndex<'a> {
        let mut index = CartIndex::default();
        if self.promos.is_empty() {
            return index;
        }
        for (i, line) in lines.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let e = line.entry;
            let ids = [e.variant.id().as_uuid(), e.variant.product_id().as_uuid()]
                .into_iter()
                .chain(e.categories.iter().map(|c| c.as_uuid()))
                .chain(e.collections.iter().map(|c| c.as_uuid()));
            for id in ids {
                if self.watched_ids.contains(&id) {
                    index.ids.entry(id).or_default().push(i);
                }
            }
            for tag in &e.tags {
                if self.watched_tags.contains(tag.as_str()) {
                    index.tags.entry(tag.as_str()).or_default().push(i);
                }
            }
        }
        index
    }

    /// How many promotions it holds.
    pub fn len(&self) -> usize {
        self.promos.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.promos.is_empty()
    }

    /// The promotion with this id.
    pub fn get(&self, id: PromotionId) -> Option<&Promotion> {
        let index = *self.by_id.get(&id)?;
        self.promos.get(index as usize).map(|c| &c.promo)
    }

    /// How it applies promotions.
    pub fn settings(&self) -> PromotionSettings {
        self.settings
    }

    /// Every variant a promotion may give as a gift (pricing needs their
    /// catalog entries).
    pub fn gift_variants(&self) -> &[VariantId] {
        &self.gifts
    }

    fn compiled(&self, index: u32) -> Option<&Compiled> {
        self.promos.get(index as usize)
    }
}

fn check_rules(p: &Promotion, rules: &RuleRegistry) -> Result<()> {
    fn cond(c: &Condition, rules: &RuleRegistry) -> Result<()> {
        match c {
            Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
                conditions.iter().try_for_each(|c| cond(c, rules))
            }
            Condition::Custom { rule, settings } => match rules.get(rule) {
                Some(r) => r.validate(settings),
                None => Err(Error::not_found("pricing rule", rule)),
            },
            _ => Ok(()),
        }
    }
    p.conditions.iter().try_for_each(|c| cond(c, rules))?;
    if let Action::Custom { rule, settings } = &p.action {
        match rules.get(rule) {
            Some(r) => r.validate(settings)?,
            None => return Err(Error::not_found("pricing rule", rule)),
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
        LineFilter::Any | LineFilter::UnitPrice { .. } => {}
    }
}

fn sorted<T: Ord>(v: &mut Vec<T>) {
    v.sort_unstable();
    v.dedup();
}

fn lowercase_condition(c: &mut Condition) {
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            conditions.iter_mut().for_each(lowercase_condition);
        }
        Condition::Lines { filter, .. } => lowercase_filter(filter),
        _ => {}
    }
}

fn lowercase_action(a: &mut Action) {
    match a {
        Action::PercentOffItems { target, .. }
        | Action::AmountOffItems { target, .. }
        | Action::FixedPrice { target, .. }
        | Action::Tiered { target, .. } => lowercase_filter(target),
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

fn watch_filter(f: &LineFilter, ids: &mut FastSet<Uuid>, tags: &mut FastSet<String>) {
    match f {
        LineFilter::AllOf { filters } | LineFilter::AnyOf { filters } => {
            filters.iter().for_each(|f| watch_filter(f, ids, tags));
        }
        LineFilter::Product { ids: v, .. } => ids.extend(v.iter().map(|i| i.as_uuid())),
        LineFilter::Variant { ids: v, .. } => ids.extend(v.iter().map(|i| i.as_uuid())),
        LineFilter::Category { ids: v, .. } => ids.extend(v.iter().map(|i| i.as_uuid())),
        LineFilter::Collection { ids: v, .. } => ids.extend(v.iter().map(|i| i.as_uuid())),
        LineFilter::Tag { tags: t, .. } => tags.extend(t.iter().cloned()),
        LineFilter::Any | LineFilter::UnitPrice { .. } => {}
    }
}

fn watch_condition(c: &Condition, ids: &mut FastSet<Uuid>, tags: &mut FastSet<String>) {
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            conditions
                .iter()
                .for_each(|c| watch_condition(c, ids, tags));
        }
        Condition::Lines { filter, .. } => watch_filter(filter, ids, tags),
        _ => {}
    }
}

fn action_filters(a: &Action) -> Vec<&LineFilter> {
    match a {
        Action::PercentOffItems { target, .. }
        | Action::AmountOffItems { target, .. }
        | Action::FixedPrice { target, .. }
        | Action::Tiered { target, .. } => vec![target],
        Action::Bundle { items, .. } => items.iter().map(|i| &i.filter).collect(),
        Action::BuyXGetY { buy, get, .. } => vec![buy, get],
        _ => Vec::new(),
    }
}

/// The lines that may match `f`, from the cart index, when `f` names ids or
/// tags it must have (`None`: any line may match).
fn indexed_lines(f: &LineFilter, index: &CartIndex<'_>) -> Option<Vec<u32>> {
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
            .filter(|i| env.lines.get(*i).is_some_and(|l| matches(f, l, env)))
            .collect(),
        None => env
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| matches(f, l, env))
            .map(|(i, _)| i)
            .collect(),
    }
}

/// Keys at least one of which a cart must have for `f` to match a line.
fn filter_keys(f: &LineFilter) -> Option<Vec<Key>> {
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

fn condition_keys(c: &Condition) -> Option<Vec<Key>> {
    match c {
        Condition::Lines { filter, .. } => filter_keys(filter),
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
fn rank(keys: &[Key]) -> (bool, usize) {
    (
        keys.iter().any(|k| matches!(k, Key::Currency(_))),
        keys.len(),
    )
}

fn best(options: impl Iterator<Item = Vec<Key>>) -> Option<Vec<Key>> {
    options.min_by_key(|k| rank(k))
}

fn union(options: impl Iterator<Item = Option<Vec<Key>>>) -> Option<Vec<Key>> {
    let mut all = Vec::new();
    for o in options {
        all.extend(o?);
    }
    all.sort();
    all.dedup();
    Some(all)
}

fn anchor(c: &Compiled) -> Option<Vec<Key>> {
    let p = &c.promo;
    let mut options: Vec<Vec<Key>> = p.conditions.iter().filter_map(condition_keys).collect();
    match &p.action {
        Action::PercentOffItems { target, .. }
        | Action::AmountOffItems { target, .. }
        | Action::FixedPrice { target, .. }
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

/// A line as the promotion engine sees it.
#[derive(Debug, Clone)]
pub(crate) struct WorkLine<'a> {
    pub id: LineId,
    pub entry: &'a CatalogEntry,
    pub quantity: u32,
    /// Unit price in minor units, after price lists.
    pub unit: i128,
    /// `unit × quantity`.
    pub subtotal: i128,
    /// The line's place in a canonical order (by variant), used to break
    /// ties so that the order of lines in the cart never changes a result.
    pub rank: u32,
}

/// Everything fixed while promotions apply.
pub(crate) struct Env<'a> {
    pub currency: Currency,
    pub lines: &'a [WorkLine<'a>],
    pub subtotal: i128,
    pub items: u64,
    pub shipping_method: Option<&'a str>,
    pub customer: &'a CustomerFacts,
    pub now: DateTime<Utc>,
    pub catalog: &'a HashMap<VariantId, CatalogEntry>,
    pub usage: &'a HashMap<String, u64>,
    pub rounding: RoundingMode,
    pub index: CartIndex<'a>,
}

impl Env<'_> {
    fn minor(&self, m: &Money) -> Option<i128> {
        if m.currency() != self.currency {
            return None;
        }
        m.to_minor().ok()
    }

    pub(crate) fn money(&self, minor: i128) -> Result<Money> {
        let amount =
            rust_decimal::Decimal::try_from_i128_with_scale(minor, self.currency.minor_units())
                .map_err(|_| Error::Overflow("minor units"))?;
        Ok(Money::new(amount, self.currency))
    }

    fn show(&self, minor: i128) -> String {
        self.money(minor)
            .map_or_else(|_| minor.to_string(), |m| m.to_string())
    }

    fn rule_cart(&self, remaining: &[i128]) -> Result<RuleCart<'_>> {
        let lines = self
            .lines
            .iter()
            .zip(remaining)
            .map(|(l, r)| {
                Ok(RuleLine {
                    line_id: l.id,
                    entry: l.entry,
                    quantity: l.quantity,
                    unit_price: self.money(l.unit)?,
                    remaining: self.money(*r)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RuleCart {
            currency: self.currency,
            lines,
            subtotal: self.money(self.subtotal)?,
            shipping_method: self.shipping_method,
            customer: self.customer,
            now: self.now,
        })
    }
}

/// Rounds `n / d` (d > 0) to an integer with `mode`.
pub(crate) fn div_round(n: i128, d: i128, mode: RoundingMode) -> i128 {
    if d <= 0 {
        return 0;
    }
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d);
    if r == 0 {
        return q;
    }
    let up = q + 1;
    let twice = r.saturating_mul(2);
    let tie = twice == d;
    let above_half = twice > d;
    match mode {
        RoundingMode::Floor => q,
        RoundingMode::Ceiling => up,
        RoundingMode::TowardZero => {
            if n >= 0 {
                q
            } else {
                up
            }
        }
        RoundingMode::AwayFromZero => {
            if n >= 0 {
                up
            } else {
                q
            }
        }
        RoundingMode::HalfUp if tie => {
            if n >= 0 {
                up
            } else {
                q
            }
        }
        RoundingMode::HalfDown if tie => {
            if n >= 0 {
                q
            } else {
                up
            }
        }
        RoundingMode::HalfEven if tie => {
            if q % 2 == 0 {
                q
            } else {
                up
            }
        }
        _ => {
            if above_half {
                up
            } else {
                q
            }
        }
    }
}

/// A percentage as an exact fraction.
#[derive(Clone, Copy)]
struct Fraction {
    num: i128,
    den: i128,
}

impl Fraction {
    fn percent(p: rust_decimal::Decimal) -> Result<Self> {
        super::promotion::check_percent(p)?;
        let den = 100_i128
            .checked_mul(10_i128.pow(p.scale()))
            .ok_or_else(|| Error::Overflow("percent"))?;
        Ok(Self {
            num: p.mantissa(),
            den,
        })
    }

    /// `amount × units / quantity × self`, rounded.
    fn of(self, amount: i128, units: u32, quantity: u32, mode: RoundingMode) -> Result<i128> {
        let n = amount
            .checked_mul(i128::from(units))
            .and_then(|v| v.checked_mul(self.num))
            .ok_or_else(|| Error::Overflow("percent discount"))?;
        let d = self
            .den
            .checked_mul(i128::from(quantity.max(1)))
            .ok_or_else(|| Error::Overflow("percent discount"))?;
        Ok(div_round(n, d, mode).clamp(0, amount.max(0)))
    }
}

/// What one promotion takes off.
#[derive(Debug, Clone, Default)]
pub(crate) struct Effect {
    /// `(line index, minor units)`, each above zero.
    pub lines: Vec<(usize, i128)>,
    pub shipping: i128,
    pub gift: Option<Gift>,
}

#[derive(Debug, Clone)]
pub(crate) struct Gift {
    pub variant_id: VariantId,
    pub quantity: u32,
    pub unit: i128,
}

impl Effect {
    pub(crate) fn total(&self) -> i128 {
        let lines: i128 = self.lines.iter().map(|(_, a)| a).sum();
        let gift = self
            .gift
            .as_ref()
            .map_or(0, |g| g.unit.saturating_mul(i128::from(g.quantity)));
        lines + self.shipping + gift
    }

    fn is_empty(&self) -> bool {
        self.total() <= 0 && self.gift.is_none()
    }
}

/// A promotion selected for a cart, with what its limits leave.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub index: u32,
    pub code: Option<String>,
    budget_left: Option<i128>,
}

/// A promotion that applied.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub index: u32,
    pub code: Option<String>,
    pub effect: Effect,
}

/// What the promotions did to a cart.
#[derive(Debug, Default)]
pub(crate) struct Run {
    pub applied: Vec<Applied>,
    pub rejected: Vec<(Option<u32>, Option<String>, Rejection)>,
    pub hints: Vec<(u32, Money)>,
}

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
        for code in codes {
            let Some(coupon) = coupons.iter().find(|c| c.code == *code) else {
                run.rejected
                    .push((None, Some(code.clone()), Rejection::UnknownCode));
                continue;
            };
            match self.by_id.get(&coupon.promotion_id) {
                Some(index) => found.push((*index, Some(code.as_str()))),
                None => run
                    .rejected
                    .push((None, Some(code.clone()), Rejection::UnknownCode)),
            }
        }
        // Priority order is index order; a code sorts after the automatic
        // entry of the same promotion, and only the first entry counts.
        found.sort_unstable();
        if found.len() > MAX_CANDIDATES {
            found.truncate(MAX_CANDIDATES);
        }
        let mut lines = Vec::new();
        let mut shipping = Vec::new();
        let mut last: Option<u32> = None;
        for (index, code) in found {
            if last == Some(index) {
                if let Some(code) = code {
                    run.rejected.push((
                        Some(index),
                        Some(code.to_owned()),
                        Rejection::AlreadyApplied,
                    ));
                }
                continue;
            }
            last = Some(index);
            let Some(c) = self.compiled(index) else {
                continue;
            };
            if c.promo.coded && code.is_none() {
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
        if !p.enabled {
            return Ok(Err(Rejection::Disabled));
        }
        match p.window_state(env.now) {
            WindowState::NotStarted(starts_at) => {
                return Ok(Err(Rejection::NotStarted { starts_at }));
            }
            WindowState::Ended(ended_at) => return Ok(Err(Rejection::Expired { ended_at })),
            WindowState::Open => {}
        }
        if !c.currencies.is_empty() && !c.currencies.contains(&env.currency) {
            return Ok(Err(Rejection::WrongCurrency {
                expected: c.currencies.clone(),
                actual: env.currency,
            }));
        }
        for (counter, limit) in claims_for(p, coupon, env.customer, 1)? {
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
                let counter = budget_counter(p.id);
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
        let mut fails = Vec::new();
        let mut ok = true;
        for cond in &p.conditions {
            if !self.condition(cond, env, &mut fails)? {
                ok = false;
            }
        }
        if !ok {
            if let [only] = fails.as_slice()
                && let Some(missing) = only.missing
            {
                run.hints.push((index, missing));
            }
            return Ok(Err(Rejection::ConditionsNotMet { comparisons: fails }));
        }
        Ok(Ok(budget_left))
    }

    fn condition(&self, c: &Condition, env: &Env<'_>, fails: &mut Vec<Comparison>) -> Result<bool> {
        let cmp = |subject: &str, op: Op, expected: String, actual: String| Comparison {
            subject: subject.to_owned(),
            op,
            expected,
            actual,
            missing: None,
        };
        let pass = match c {
            Condition::AllOf { conditions } => {
                let mut ok = true;
                for c in conditions {
                    if !self.condition(c, env, fails)? {
                        ok = false;
                    }
                }
                return Ok(ok);
            }
            Condition::AnyOf { conditions } => {
                let mut local = Vec::new();
                for c in conditions {
                    if self.condition(c, env, &mut local)? {
                        return Ok(true);
                    }
                }
                fails.extend(local);
                return Ok(false);
            }
            Condition::Subtotal { op, amount } => {
                let expected = env.minor(amount);
                let ok = expected.is_some_and(|e| op.compare(&env.subtotal, &e));
                if !ok {
                    let mut c = cmp("subtotal", *op, amount.to_string(), env.show(env.subtotal));
                    c.missing = match (op, expected) {
                        (Op::Gte, Some(e)) => env.money(e - env.subtotal).ok(),
                        (Op::Gt, Some(e)) => env.money(e - env.subtotal + 1).ok(),
                        _ => None,
                    };
                    fails.push(c);
                }
                ok
            }
            Condition::ItemCount { op, count } => {
                let ok = op.compare(&env.items, count);
                if !ok {
                    fails.push(cmp(
                        "item count",
                        *op,
                        count.to_string(),
                        env.items.to_string(),
                    ));
                }
                ok
            }
            Condition::Currency { op, currencies } => {
                let ok = op.member(&env.currency, currencies);
                if !ok {
                    fails.push(cmp(
                        "currency",
                        *op,
                        list(currencies),
                        env.currency.to_string(),
                    ));
                }
                ok
            }
            Condition::ShippingOption { op, codes } => {
                let ok = match env.shipping_method {
                    Some(m) => op.intersects(std::iter::once(&m.to_owned()), codes),
                    None => matches!(op, Op::NotIn | Op::Ne),
                };
                if !ok {
                    let actual = env.shipping_method.unwrap_or("none").to_owned();
                    fails.push(cmp("shipping option", *op, codes.join(", "), actual));
                }
                ok
            }
            Condition::CustomerGroup { op, groups } => {
                let ok = op.intersects(&env.customer.groups, groups);
                if !ok {
                    let actual = if env.customer.groups.is_empty() {
                        "no group".to_owned()
                    } else {
                        list(&env.customer.groups.iter().collect::<Vec<_>>())
                    };
                    fails.push(cmp("customer group", *op, list(groups), actual));
                }
                ok
            }
            Condition::OrderNumber { op, number } => {
                let this = u64::from(env.customer.orders_placed) + 1;
                let ok = op.compare(&this, &u64::from(*number));
                if !ok {
                    fails.push(cmp(
                        "order number",
                        *op,
                        number.to_string(),
                        this.to_string(),
                    ));
                }
                ok
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
                if !ok {
                    fails.push(cmp(
                        "units of matching items",
                        Op::Gte,
                        min_quantity.to_string(),
                        units.to_string(),
                    ));
                }
                ok
            }
            Condition::Custom { rule, settings } => {
                let Some(r) = self.rules.get(rule) else {
                    fails.push(cmp(rule, Op::Eq, "a registered rule".into(), "none".into()));
                    return Ok(false);
                };
                let subtotals: Vec<i128> = env.lines.iter().map(|l| l.subtotal).collect();
                match r.condition(settings, &env.rule_cart(&subtotals)?) {
                    Verdict::Met => true,
                    Verdict::NotMet(c) => {
                        fails.push(c);
                        false
                    }
                }
            }
        };
        Ok(pass)
    }

    /// Applies `candidates` to the lines' `remaining` amounts and the
    /// shipping amount left, under the set's policy. `before` are
    /// promotions applied in an earlier phase (for combination checks).
    pub(crate) fn apply(
        &self,
        env: &Env<'_>,
        candidates: Vec<Candidate>,
        remaining: &mut [i128],
        shipping: &mut i128,
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
                && let Some(best) = self.best(env, &candidates, remaining, *shipping, before)?
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
        shipping: i128,
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
            let mut ship = shipping;
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
        shipping: &mut i128,
        before: &[u32],
        mut run: Option<&mut Run>,
    ) -> Result<Vec<Applied>> {
        let mut applied: Vec<Applied> = Vec::new();
        let mut ids: Vec<u32> = before.to_vec();
        for cand in candidates {
            let mut reject = |reason: Rejection| {
                if let Some(run) = run.as_deref_mut() {
                    run.rejected
                        .push((Some(cand.index), cand.code.clone(), reason));
                }
            };
            if let Some(with) = self.conflict(cand.index, &ids) {
                reject(Rejection::NotCombinable { with });
                continue;
            }
            let Some(c) = self.compiled(cand.index) else {
                continue;
            };
            let mut effect = match self.effect(&c.promo.action, env, remaining, *shipping)? {
                Ok(e) => e,
                Err(reason) => {
                    reject(reason);
                    continue;
                }
            };
            if let Some(left) = cand.budget_left
                && effect.total() > left
            {
                if effect.gift.is_some() {
                    // A gift is given whole or not at all.
                    let limit = c
                        .promo
                        .limits
                        .budget
                        .as_ref()
                        .and_then(|b| b.to_minor().ok());
                    let limit = limit.and_then(|l| u64::try_from(l).ok()).unwrap_or(0);
                    reject(Rejection::UsedUp {
                        counter: budget_counter(c.promo.id),
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
            for (line, amount) in &effect.lines {
                if let Some(r) = remaining.get_mut(*line) {
                    *r -= amount;
                }
            }
            *shipping -= effect.shipping;
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
            let Some(p) = self.promotion(a.index) else {
                continue;
            };
            let coupon = a
                .code
                .as_ref()
                .and_then(|code| coupons.iter().find(|c| c.code == *code));
            for (counter, limit) in claims_for(p, coupon, customer, 1)? {
                if let Some(counter) = counter {
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
                    counter: budget_counter(p.id),
                    amount,
                    limit,
                });
            }
        }
        Ok(out)
    }

    /// What `action` would take off, given what is left.
    fn effect(
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
        // The value of `units` of line `i`, floored to minor units.
        let value = |i: usize, units: u32| -> i128 {
            match line(i) {
                Some(l) if l.quantity > 0 => rem(i) * i128::from(units) / i128::from(l.quantity),
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
                for (line_id, amount) in r.action(settings, &cart)? {
                    let Some(i) = env.lines.iter().position(|l| l.id == line_id) else {
                        return Err(Error::invalid(
                            "pricing rule",
                            format!("`{rule}` discounted an unknown line"),
                        ));
                    };
                    if amount.currency() != env.currency {
                        return Err(Error::CurrencyMismatch {
                            left: env.currency,
                            right: amount.currency(),
                        });
                    }
                    let a = amount.to_minor()?.clamp(0, rem(i));
                    effect.lines.push((i, a));
                }
            }
        }
        // Merge repeated lines, drop zeros, never take more than is left.
        effect.lines.sort_by_key(|(i, _)| *i);
        let mut merged: Vec<(usize, i128)> = Vec::with_capacity(effect.lines.len());
        for (i, a) in effect.lines.drain(..) {
            match merged.last_mut() {
                Some((j, b)) if *j == i => *b += a,
                _ => merged.push((i, a)),
            }
        }
        merged.retain_mut(|(i, a)| {
            *a = (*a).clamp(0, rem(*i).max(0));
            *a > 0
        });
        effect.lines = merged;
        effect.shipping = effect.shipping.clamp(0, shipping.max(0));
        Ok(Ok(effect))
    }
}

fn list<T: std::fmt::Display>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn wrong_currency(m: &Money, env: &Env<'_>) -> Rejection {
    Rejection::WrongCurrency {
        expected: vec![m.currency()],
        actual: env.currency,
    }
}

/// Whether line `l` matches `f`.
pub(crate) fn matches(f: &LineFilter, l: &WorkLine<'_>, env: &Env<'_>) -> bool {
    match f {
        LineFilter::Any => true,
        LineFilter::AllOf { filters } => filters.iter().all(|f| matches(f, l, env)),
        LineFilter::AnyOf { filters } => filters.iter().any(|f| matches(f, l, env)),
        // Value lists are sorted when the set is compiled.
        LineFilter::Product { op, ids } => op.member_sorted(&l.entry.variant.product_id(), ids),
        LineFilter::Variant { op, ids } => op.member_sorted(&l.entry.variant.id(), ids),
        LineFilter::Category { op, ids } => op.intersects_sorted(&l.entry.categories, ids),
        LineFilter::Collection { op, ids } => op.intersects_sorted(&l.entry.collections, ids),
        LineFilter::Tag { op, tags } => op.intersects_sorted(&l.entry.tags, tags),
        LineFilter::UnitPrice { op, amount } => {
            env.minor(amount).is_some_and(|e| op.compare(&l.unit, &e))
        }
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
    // Largest remainder: each part gets the floor of its share, the minor
    // units left over go to the largest remainders, ties to the lower rank
    // (the canonical line order, so line order never changes a result).
    let mut parts: Vec<(usize, i128)> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, u32, usize)> = Vec::with_capacity(weights.len());
    let mut assigned = 0_i128;
    let small = i64::try_from(total).is_ok() && i64::try_from(amount).is_ok();
    for (k, (i, w)) in weights.iter().enumerate() {
        let w = (*w).max(0);
        let product = amount
            .checked_mul(w)
            .ok_or_else(|| Error::Overflow("allocation"))?;
        // Most amounts fit in 64 bits, where division is far cheaper.
        let (part, rem) = match (small, u64::try_from(product)) {
            (true, Ok(p)) => {
                let t = total as u64;
                (i128::from(p / t), i128::from(p % t))
            }
            _ => (product / total, product % total),
        };
        assigned += part;
        parts.push((*i, part));
        let rank = env.lines.get(*i).map_or(u32::MAX, |l| l.rank);
        remainders.push((rem, rank, k));
    }
    let leftover = usize::try_from(amount - assigned).unwrap_or(0);
    let order = |a: &(i128, u32, usize), b: &(i128, u32, usize)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
    if leftover > 0 && leftover < remainders.len() {
        remainders.select_nth_unstable_by(leftover - 1, order);
    }
    for (_, _, k) in remainders.iter().take(leftover) {
        if let Some(p) = parts.get_mut(*k) {
            p.1 += 1;
        }
    }
    effect.lines.reserve(parts.len());
    effect
        .lines
        .extend(parts.into_iter().filter(|(_, p)| *p > 0));
    Ok(())
}

/// Scales an effect down to `limit` in all, by largest remainder over its parts.
fn cap(effect: &mut Effect, limit: i128, env: &Env<'_>) -> Result<()> {
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

pub(crate) fn budget_counter(id: PromotionId) -> String {
    format!("promotion:{id}:budget")
}

/// Counters a use of `p` (through `coupon`) claims, with their limits.
/// `None` as a counter means a per-customer limit with no customer to count.
fn claims_for(
    p: &Promotion,
    coupon: Option<&Coupon>,
    customer: &CustomerFacts,
    _amount: u64,
) -> Result<Vec<(Option<String>, u64)>> {
    let mut out = Vec::new();
    if let Some(limit) = p.limits.total_uses {
        out.push((Some(format!("promotion:{}:uses", p.id)), limit));
    }
    if let Some(limit) = p.limits.per_customer {
        // Buyers are counted by email whenever it is known, so an account
        // and a guest checkout with the same address share one count. The
        // email is hashed (UUID v5) to keep it out of the counter's name.
        let who = match (&customer.email, &customer.id) {
            (Some(email), _) => {
                let key =
                    Uuid::new_v5(&Uuid::NAMESPACE_URL, email.trim().to_lowercase().as_bytes());
                Some(format!("promotion:{}:buyer:{key}", p.id))
            }
            (None, Some(id)) => Some(format!("promotion:{}:customer:{id}", p.id)),
            (None, None) => None,
        };
        out.push((who, limit));
    }
    if let Some(limit) = coupon.and_then(|c| c.max_uses) {
        out.push((coupon.map(|c| format!("coupon:{}:uses", c.code)), limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn div_round_follows_each_mode() {
        use RoundingMode::*;
        let cases = [
            // n, d, half_up, half_even, half_down, toward_zero, away, floor, ceiling
            (5, 2, 3, 2, 2, 2, 3, 2, 3),
            (7, 2, 4, 4, 3, 3, 4, 3, 4),
            (7, 3, 2, 2, 2, 2, 3, 2, 3),
            (8, 3, 3, 3, 3, 2, 3, 2, 3),
            (-5, 2, -3, -2, -2, -2, -3, -3, -2),
            (6, 3, 2, 2, 2, 2, 2, 2, 2),
        ];
        for (n, d, hu, he, hd, tz, az, fl, ce) in cases {
            assert_eq!(div_round(n, d, HalfUp), hu, "{n}/{d} half up");
            assert_eq!(div_round(n, d, HalfEven), he, "{n}/{d} half even");
            assert_eq!(div_round(n, d, HalfDown), hd, "{n}/{d} half down");
            assert_eq!(div_round(n, d, TowardZero), tz, "{n}/{d} toward zero");
            assert_eq!(div_round(n, d, AwayFromZero), az, "{n}/{d} away");
            assert_eq!(div_round(n, d, Floor), fl, "{n}/{d} floor");
            assert_eq!(div_round(n, d, Ceiling), ce, "{n}/{d} ceiling");
        }
    }

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
