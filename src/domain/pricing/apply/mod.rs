//! The promotion engine: a compiled, indexed [`PromotionSet`], condition
//! checks, the actions' arithmetic and the stacking policies.
//!
//! All arithmetic here is on integers in the cart currency's minor units
//! (`i128`), so every amount is exact and the hot path does no decimal work.
//! Percentages are exact fractions `mantissa / (100 × 10^scale)`, rounded
//! once per amount with the set's [`RoundingMode`].
//!
//! Here: compiling and indexing the set, the per-cart index and the working
//! state. `select` finds and checks candidates, `actions` computes what each
//! action takes off, `stacking` applies them under the policy.

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

mod actions;
mod index;
mod normalize;
mod select;
mod stacking;

use index::*;
pub(crate) use normalize::reads_discounted;
use normalize::{check_rules, counts_orders, lowercase_action, lowercase_condition, reads_gross};

type FastMap<K, V> = foldhash::HashMap<K, V>;
type FastSet<K> = foldhash::HashSet<K>;

/// Most applicable promotions the best-combination search compares; with
/// more, the set falls back to applying in priority order.
pub const MAX_BEST_SEARCH: usize = 16;
/// Most combinations the best-combination search evaluates.
pub const MAX_COMBINATIONS: usize = 64;
/// Most promotions (automatic and coded) one cart may consider; past it the
/// candidates last in priority order (the highest numbers) are left out,
/// each reported as [`Rejection::TooManyCandidates`](crate::pricing::Rejection).
pub const MAX_CANDIDATES: usize = 10_000;

/// Which qualifying promotions apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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

/// What a promotion sees of those applied before it (in priority order,
/// line promotions before shipping ones).
///
/// Worked example: "10 % off everything" (priority 0) and "5.00 off orders
/// of 50.00 or more" (priority 1) on a 52.00 cart:
/// - [`Discounted`](Self::Discounted): 5.20 off, then 5.00 off the 46.80
///   left (the condition was met by the 52.00 cart) — 10.20 in all;
/// - [`Original`](Self::Original): each computed on 52.00 as if alone —
///   5.20 and 5.00, 10.20 (percentages differ: two 10 % promotions take
///   10.40, not 9.88);
/// - [`DiscountedRecheck`](Self::DiscountedRecheck): after the 5.20, the cart
///   is at 46.80 and the 50.00 condition fails: 5.20 in all.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Compounding {
    /// Each promotion works on what the earlier ones left; conditions are
    /// checked once, on the cart before promotions. Medusa's behaviour
    /// (each promotion computed on the line's amount minus what earlier
    /// ones applied). The default, and cartwright's behaviour before this
    /// setting existed.
    #[default]
    Discounted,
    /// Each promotion is computed on the amounts before any promotion, as
    /// if it were alone, and takes at most what is still left (no line or
    /// shipping charge goes below zero). Solidus's behaviour (its
    /// calculators compute on the line item's undiscounted amount).
    Original,
    /// As `Discounted`, and each promotion's conditions are checked again
    /// when its turn comes, on the cart as the earlier ones left it: a
    /// subtotal condition then reads the subtotal after their discounts.
    /// Vendure's behaviour (it re-tests each promotion before applying it,
    /// since an earlier one may have changed the order total).
    DiscountedRecheck,
    /// As `Discounted`, but a promotion that discounts some units of a
    /// line values them at their price (after price lists) as long as the
    /// line has that much left: earlier discounts count against the line's
    /// other units first. 10 % off one unit of a line of three at 50.00,
    /// after 30.00 off the line, takes 5.00 (the unit is still worth 50.00)
    /// where `Discounted` takes 4.00 (a third of the 120.00 left). Medusa's
    /// behaviour for items with a maximum quantity (the amount applies to
    /// the smaller of the units' price and what is left of the item).
    FullPriceUnitsFirst,
}

/// What one amount split over several lines (an order discount, an amount
/// split across items, a bundle's or group's saving) is proportional to.
///
/// Worked example: 10.00 off an order of a book at 50.00 (0 % tax) and a
/// lamp at 50.00 (25 % tax, so 62.50 with tax): by `Net` 5.00 and 5.00; by
/// `Gross` 50.00 : 62.50, so 4.44 and 5.56. With one tax rate for every line,
/// or prices that include tax, the two agree.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Allocation {
    /// By what each line still costs before tax. Medusa's default (a
    /// promotion that is not tax-inclusive splits by the items' subtotals)
    /// and Solidus's (by the line items' amounts). The default.
    #[default]
    Net,
    /// By what each line still costs with its tax (before promotions, the
    /// tax calculator is asked once for each line's tax, and the line's
    /// share scales with it). Vendure's behaviour (order discounts prorated
    /// by each line's price with tax) and Medusa's for tax-inclusive
    /// promotions.
    Gross,
}

/// Where the minor units left over when a split does not divide exactly go.
///
/// Worked example: 0.10 over three equal lines: each gets 0.03, and the
/// 0.01 left goes to the line with the largest remainder (all equal, so the
/// first in the canonical order, by variant) under `LargestRemainder`, or to
/// the first line in cart order under `FirstLines`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Remainder {
    /// One each to the largest fractional remainders, ties by the canonical
    /// line order (so the order of lines in the cart never moves a cent).
    /// Vendure's `prorate`. The default.
    #[default]
    LargestRemainder,
    /// One each to the first lines in cart order (that have a share): the
    /// Ruby `money` gem's classic `allocate`, which Solidus's distributed
    /// order discounts use. Reordering a cart's lines may move a cent
    /// between them, and so — when a later promotion rounds per line — a
    /// cent of the discount total.
    FirstLines,
}

/// How a [`PromotionSet`] applies its promotions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PromotionSettings {
    /// The stacking policy.
    pub policy: StackingPolicy,
    /// How percentage discounts are rounded to minor units.
    pub rounding: RoundingMode,
    /// How coupon codes are accepted and compared.
    #[serde(default)]
    pub codes: crate::cart::CodePolicy,
    /// What a promotion sees of those applied before it.
    #[serde(default)]
    pub compounding: Compounding,
    /// What a split amount is proportional to.
    #[serde(default)]
    pub allocation: Allocation,
    /// Where the minor units left over by a split go.
    #[serde(default)]
    pub remainder: Remainder,
}

crate::domain::setters!(PromotionSettings {
    policy: StackingPolicy,
    rounding: RoundingMode,
    codes: crate::cart::CodePolicy,
    compounding: Compounding,
    allocation: Allocation,
    remainder: Remainder,
} into {});

#[derive(Debug, Clone)]
struct Compiled {
    promo: Promotion,
    label: std::sync::Arc<str>,
    currencies: Vec<Currency>,
    shipping: bool,
    /// Some condition reads the subtotal after earlier promotions: checked
    /// in the stacking walk, when the promotion's turn comes.
    deferred: bool,
    /// For an entry made from [`CurrencyTerms`](crate::pricing::CurrencyTerms):
    /// the one currency whose carts it serves.
    only: Option<Currency>,
    /// For a promotion's own entry: the currencies its terms serve instead
    /// (each with its own entry, at the index given).
    variants: Vec<(Currency, u32)>,
}

impl Compiled {
    fn new(mut p: Promotion, only: Option<Currency>) -> Self {
        for c in &mut p.conditions {
            lowercase_condition(c);
        }
        lowercase_action(&mut p.action);
        let currencies = p.amount_currencies().into_iter().collect();
        let shipping = matches!(
            p.action,
            Action::Shipping { .. } | Action::TieredShipping { .. }
        );
        let deferred = p.conditions.iter().any(reads_discounted);
        Self {
            label: p.name.as_str().into(),
            promo: p,
            currencies,
            shipping,
            deferred,
            only,
            variants: Vec::new(),
        }
    }

    /// Whether this entry is the one for carts in `currency`.
    fn serves(&self, currency: Currency) -> bool {
        match self.only {
            Some(only) => only == currency,
            None => !self.variants.iter().any(|(c, _)| *c == currency),
        }
    }

    /// The name of the counter of its budget: per currency for an entry
    /// made from currency terms.
    pub(crate) fn budget_counter(&self) -> String {
        match self.only {
            Some(currency) => format!("promotion:{}:budget:{currency}", self.promo.id),
            None => budget_counter(self.promo.id),
        }
    }
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
    /// Whether a promotion's conditions need the customer's order count
    /// (an "order number" condition, or a custom rule, which may read it).
    counts_orders: bool,
    /// Whether pricing needs each line's tax before promotions (gross
    /// allocation, or a "subtotal with tax" condition).
    needs_gross: bool,
    /// Every id and tag any filter names: the keys a cart is indexed by.
    watched_ids: FastSet<Uuid>,
    watched_tags: FastSet<String>,
    /// Promotions left out because they cannot be evaluated (id, name, why).
    unusable: Vec<(PromotionId, String, String)>,
    /// Automatic promotions found by their currency alone, with every
    /// currency they serve (their own and their terms'): a cart in any
    /// other currency is told they are for another currency, without
    /// evaluating them.
    currency_only: Vec<(u32, Vec<Currency>)>,
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
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] for two promotions with one id;
    /// [`Error::Overflow`] past the promotion count (a promotion that does not
    /// validate is left out, not an error).
    pub fn new(
        promotions: Vec<Promotion>,
        rules: RuleRegistry,
        settings: PromotionSettings,
    ) -> Result<Self> {
        let mut promos = Vec::with_capacity(promotions.len());
        let mut unusable = Vec::new();
        for p in promotions {
            // One bad promotion (stored data that no longer validates, a rule
            // this engine does not know) is left out, never fails pricing.
            if let Err(e) = Self::check_one(&p, &rules) {
                unusable.push((p.id, p.name.clone(), e.to_string()));
                continue;
            }
            // Each currency's terms are an entry of their own, beside it.
            for t in &p.per_currency {
                promos.push(Compiled::new(
                    p.terms_for(t.currency).into_owned(),
                    Some(t.currency),
                ));
            }
            promos.push(Compiled::new(p, None));
        }
        // Priority order; a promotion's own entry before its currency terms.
        promos.sort_by(|a, b| {
            a.promo
                .priority
                .cmp(&b.promo.priority)
                .then(a.promo.id.cmp(&b.promo.id))
                .then(a.only.cmp(&b.only))
        });
        // Link each own entry to its terms' entries (they follow it).
        for base in 0..promos.len() {
            if promos.get(base).is_none_or(|c| c.only.is_some()) {
                continue;
            }
            let mut variants = Vec::new();
            let mut next = base + 1;
            while let Some(v) = promos.get(next) {
                match (v.only, promos.get(base)) {
                    (Some(currency), Some(b)) if v.promo.id == b.promo.id => {
                        let index =
                            u32::try_from(next).map_err(|_| Error::Overflow("promotion count"))?;
                        variants.push((currency, index));
                    }
                    _ => break,
                }
                next += 1;
            }
            if let Some(b) = promos.get_mut(base) {
                b.variants = variants;
            }
        }
        let mut set = Self {
            rules,
            settings,
            ..Self::default()
        };
        let mut gifts = BTreeSet::new();
        for (index, c) in promos.iter().enumerate() {
            let index = u32::try_from(index).map_err(|_| Error::Overflow("promotion count"))?;
            if c.only.is_none() && set.by_id.insert(c.promo.id, index).is_some() {
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
                Some(keys)
                    if c.only.is_none()
                        && !keys.is_empty()
                        && keys.iter().all(|k| matches!(k, Key::Currency(_))) =>
                {
                    let mut served: Vec<Currency> = c.currencies.clone();
                    served.extend(c.variants.iter().map(|(cur, _)| *cur));
                    served.sort_by_key(|c| c.code());
                    served.dedup();
                    set.currency_only.push((index, served));
                    for key in keys {
                        if let Key::Currency(cur) = key {
                            match set.by_currency.iter_mut().find(|(c, _)| *c == cur) {
                                Some((_, v)) => v.push(index),
                                None => set.by_currency.push((cur, vec![index])),
                            }
                        }
                    }
                }
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
        set.needs_gross = settings.allocation == Allocation::Gross;
        for c in &promos {
            set.needs_gross |= c.promo.conditions.iter().any(reads_gross);
            set.counts_orders |= matches!(c.promo.action, Action::Custom { .. })
                || c.promo.conditions.iter().any(counts_orders);
            for cond in &c.promo.conditions {
                watch_condition(cond, &mut set.watched_ids, &mut set.watched_tags);
            }
            for f in action_filters(&c.promo.action) {
                watch_filter(f, &mut set.watched_ids, &mut set.watched_tags);
            }
        }
        set.promos = promos;
        set.gifts = gifts.into_iter().collect();
        unusable.sort();
        set.unusable = unusable;
        Ok(set)
    }

    /// Checks one promotion as compiling does: its own validation and the
    /// custom rules it names against `rules`.
    ///
    /// # Errors
    /// [`Error::Invalid`] and kin from validation; [`Error::NotFound`] for
    /// an unregistered rule.
    pub fn check_one(promotion: &Promotion, rules: &RuleRegistry) -> Result<()> {
        promotion.validate()?;
        check_rules(promotion, rules)
    }

    /// Promotions left out of the set because they cannot be evaluated:
    /// id, name and why. Pricing reports each as
    /// [`Rejection::Unevaluable`](crate::pricing::Rejection::Unevaluable).
    pub fn unusable(&self) -> &[(PromotionId, String, String)] {
        &self.unusable
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
        self.by_id.len()
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

    /// Whether pricing with this set needs the customer's order count
    /// ([`CustomerFacts::orders_placed`](crate::pricing::CustomerFacts)):
    /// a promotion has an "order number" condition or a custom rule.
    pub fn counts_orders(&self) -> bool {
        self.counts_orders
    }

    /// Whether pricing with this set asks the tax calculator for each
    /// line's tax before promotions ([`Allocation::Gross`], or a
    /// [`Condition::SubtotalWithTax`]).
    pub(crate) fn needs_gross(&self) -> bool {
        self.needs_gross
    }

    fn compiled(&self, index: u32) -> Option<&Compiled> {
        self.promos.get(index as usize)
    }
}

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
    /// The line's place in a canonical order (by variant, then metadata),
    /// used to break ties so that the order of lines in the cart never
    /// changes a result.
    pub rank: u32,
    /// The cart line's metadata (copied to the priced line).
    pub metadata: &'a std::collections::BTreeMap<String, String>,
    /// Whether promotions may target the line (false for a custom-priced
    /// line that keeps its price).
    pub promotable: bool,
}

/// Everything fixed while promotions apply.
pub(crate) struct Env<'a> {
    pub currency: Currency,
    pub lines: &'a [WorkLine<'a>],
    pub subtotal: i128,
    pub items: u64,
    pub shipping_method: Option<&'a str>,
    /// The cart's shipping groups (their methods are what "shipping
    /// option" conditions read, beside `shipping_method`).
    pub shipping_groups: &'a [crate::cart::ShippingGroup],
    /// The method of each charged shipment, in shipment order (the cart's
    /// own first, then its groups'): set before the shipping phase, and
    /// what a shipping promotion's `methods` filter picks from.
    pub shipments: Vec<&'a str>,
    pub customer: &'a CustomerFacts,
    /// The cart's sales channel, if any.
    pub channel: Option<crate::id::ChannelId>,
    /// Whether the cart is a draft order staff built.
    pub draft_order: bool,
    pub now: DateTime<Utc>,
    pub catalog: &'a HashMap<VariantId, CatalogEntry>,
    pub usage: &'a HashMap<String, u64>,
    pub rounding: RoundingMode,
    pub index: CartIndex<'a>,
    /// Each line's amount with its tax, before promotions, when the set
    /// needs it ([`PromotionSet::needs_gross`]).
    pub gross: Option<Vec<i128>>,
    pub allocation: Allocation,
    pub remainder: Remainder,
    pub compounding: Compounding,
}

impl Env<'_> {
    /// Every shipping method chosen on the cart: its own, then each group's.
    pub(crate) fn chosen_methods(&self) -> impl Iterator<Item = &str> {
        self.shipping_method.into_iter().chain(
            self.shipping_groups
                .iter()
                .filter_map(|g| g.method.as_deref()),
        )
    }

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

pub(crate) use crate::money::div_round;

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
    /// `(shipment index, minor units)` off each shipping charge.
    pub shipping: Vec<(usize, i128)>,
    pub gift: Option<Gift>,
    /// Units a buy-X-get-Y rewarded: `(line index, units, what those units
    /// cost before this reward)`. They are spent for every later
    /// buy-X-get-Y (see [`Spent`]).
    pub spent: Vec<(usize, u32, i128)>,
}

/// The units of one line that buy-X-get-Y promotions have rewarded, and
/// what those units still cost, in minor units.
///
/// The rule: a rewarded unit is spent. A later buy-X-get-Y neither counts
/// it towards its `buy` quantity nor rewards it again, whatever the first
/// reward's percent; the units it works on, and their value, are the
/// line's unspent ones. (Units that only qualified stay unspent.) Other
/// actions discount every unit of a line alike, so the cost of spent units
/// shrinks in proportion when they take something off the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Spent {
    pub units: u32,
    pub cost: i128,
}

impl Spent {
    /// Books `effect` on `spent` (one entry per line): rewarded units
    /// become spent with what they still cost after the reward; other
    /// amounts shrink the spent units' cost in proportion. `before` is each
    /// line's remaining amount before the effect. `spent` stays empty (all
    /// unspent) until the first reward.
    pub(crate) fn book(spent: &mut Vec<Spent>, effect: &Effect, before: &[i128]) {
        // Nothing is spent until a buy-X-get-Y rewards: no allocation before.
        if spent.is_empty() {
            if effect.spent.is_empty() {
                return;
            }
            spent.resize(before.len(), Spent::default());
        }
        for (line, amount) in &effect.lines {
            let Some(s) = spent.get_mut(*line) else {
                continue;
            };
            if let Some((_, units, value)) = effect.spent.iter().find(|(l, _, _)| l == line) {
                s.units = s.units.saturating_add(*units);
                s.cost = s.cost.saturating_add((value - amount).max(0));
            } else if s.cost > 0 {
                let was = before.get(*line).copied().unwrap_or(0);
                if was > 0 {
                    // cost × (was − amount) / was, without overflow: cost ≤ was.
                    let after = (was - amount).max(0);
                    s.cost = (s.cost / was) * after + (s.cost % was) * after / was;
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Gift {
    pub variant_id: VariantId,
    pub quantity: u32,
    pub unit: i128,
}

impl Effect {
    /// What it takes off all shipping charges.
    pub(crate) fn shipping_total(&self) -> i128 {
        self.shipping.iter().map(|(_, a)| a).sum()
    }

    pub(crate) fn total(&self) -> i128 {
        let lines: i128 = self.lines.iter().map(|(_, a)| a).sum();
        let gift = self
            .gift
            .as_ref()
            .map_or(0, |g| g.unit.saturating_mul(i128::from(g.quantity)));
        lines + self.shipping_total() + gift
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
    /// Codes that name a promotion already considered for the cart —
    /// automatically or through another code (the entry's index, the
    /// code): each says what that entry did.
    pub riding: Vec<(u32, String)>,
    pub hints: Vec<(u32, Gap)>,
}

/// What a hint asks the customer to add.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Gap {
    Money(Money),
    Units(u64),
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
        LineFilter::Option { name, op, values } => {
            text_member(*op, l.entry.variant.options().get(name), values)
        }
        LineFilter::Metadata { key, op, values } => text_member(*op, l.metadata.get(key), values),
    }
}

/// A text that may be absent against a sorted list: absent satisfies only
/// "not in" and "not equal".
pub(crate) fn text_member(op: Op, actual: Option<&String>, values: &[String]) -> bool {
    match actual {
        Some(v) => op.member_sorted(v, values),
        None => matches!(op, Op::NotIn | Op::Ne),
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
) -> Vec<(Option<String>, u64)> {
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
    out
}

#[cfg(test)]
mod tests;
