//! Promotions as data: conditions, actions, limits, stacking and coupons.
//!
//! Everything here is plain serde data, so either store keeps it as a
//! document and users can write promotions as JSON. [`Promotion::validate`]
//! checks a promotion once, when it is saved; the pricing core then trusts
//! it (and still never panics on it).
//!
//! Does not know: carts or pricing arithmetic: it is the promotion data and
//! its validation.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::cart::normalize_code;
use crate::error::{Error, Result};
use crate::id::{CategoryId, CollectionId, CustomerGroupId, ProductId, PromotionId, VariantId};
use crate::money::{Currency, Money};
use crate::validate::required_text;

/// Most conditions (counting nested ones) in one promotion.
pub const MAX_CONDITIONS: usize = 100;
/// Most values in one condition or filter list.
pub const MAX_VALUES: usize = 1_000;
/// Deepest nesting of all-of / any-of.
pub const MAX_DEPTH: usize = 8;
/// Most tiers in a tiered discount.
pub const MAX_TIERS: usize = 50;
/// Most items in a bundle.
pub const MAX_BUNDLE_ITEMS: usize = 20;
/// Longest promotion name or combination group, in characters.
pub const MAX_NAME_LEN: usize = 200;
/// Largest quantity a promotion may name (buy X, get Y, gift units, tiers).
pub const MAX_PROMOTION_QUANTITY: u32 = 10_000;
/// Most decimal places of a percentage (`12.3456` %).
pub const MAX_PERCENT_SCALE: u32 = 6;

/// A comparison or membership operator.
///
/// Numeric conditions (amounts, counts) take `eq`, `ne`, `gt`, `gte`, `lt`
/// and `lte`. Membership conditions take `in`, `not_in`, `contains_any`,
/// `eq` and `ne`; on a field with several values (a product's categories,
/// a customer's groups) `in` and `contains_any` mean "shares at least one
/// value", `not_in` means "shares none", `eq` means "has this one value" and
/// `ne` "does not have it". `eq` and `ne` take exactly one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Op {
    /// Equal / has the value.
    Eq,
    /// Not equal / lacks the value.
    Ne,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// One of the values.
    In,
    /// None of the values.
    NotIn,
    /// Shares at least one value.
    ContainsAny,
}

impl Op {
    /// The operator as written in explanations (`>=`, `in`, ...).
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
            Self::In => "in",
            Self::NotIn => "not in",
            Self::ContainsAny => "contains any of",
        }
    }

    fn is_order(self) -> bool {
        matches!(
            self,
            Self::Eq | Self::Ne | Self::Gt | Self::Gte | Self::Lt | Self::Lte
        )
    }

    /// Compares two ordered values.
    pub(crate) fn compare<T: PartialOrd>(self, actual: &T, expected: &T) -> bool {
        match self {
            Self::Eq | Self::In | Self::ContainsAny => actual == expected,
            Self::Ne | Self::NotIn => actual != expected,
            Self::Gt => actual > expected,
            Self::Gte => actual >= expected,
            Self::Lt => actual < expected,
            Self::Lte => actual <= expected,
        }
    }

    /// Membership of a field with one value.
    pub(crate) fn member<T: PartialEq>(self, actual: &T, values: &[T]) -> bool {
        let found = values.contains(actual);
        match self {
            Self::NotIn | Self::Ne => !found,
            _ => found,
        }
    }

    /// Membership of a field with one value in a sorted list.
    pub(crate) fn member_sorted<T: Ord>(self, actual: &T, values: &[T]) -> bool {
        let found = values.binary_search(actual).is_ok();
        match self {
            Self::NotIn | Self::Ne => !found,
            _ => found,
        }
    }

    /// Membership of a field with several values in a sorted list.
    pub(crate) fn intersects_sorted<'a, T: Ord + 'a>(
        self,
        actual: impl IntoIterator<Item = &'a T>,
        values: &[T],
    ) -> bool {
        let found = actual.into_iter().any(|a| values.binary_search(a).is_ok());
        match self {
            Self::NotIn | Self::Ne => !found,
            _ => found,
        }
    }

    /// Membership of a field with several values.
    pub(crate) fn intersects<'a, T: PartialEq + 'a>(
        self,
        actual: impl IntoIterator<Item = &'a T>,
        values: &[T],
    ) -> bool {
        let found = actual.into_iter().any(|a| values.contains(a));
        match self {
            Self::NotIn | Self::Ne => !found,
            _ => found,
        }
    }
}

/// Selects cart lines (what a condition looks for or an action discounts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LineFilter {
    /// Every line.
    Any,
    /// Lines matching every filter.
    AllOf {
        /// The filters.
        filters: Vec<LineFilter>,
    },
    /// Lines matching at least one filter.
    AnyOf {
        /// The filters.
        filters: Vec<LineFilter>,
    },
    /// By product.
    Product {
        /// Membership operator.
        op: Op,
        /// The products.
        ids: Vec<ProductId>,
    },
    /// By variant.
    Variant {
        /// Membership operator.
        op: Op,
        /// The variants.
        ids: Vec<VariantId>,
    },
    /// By the product's categories, ancestors included: a filter on
    /// "Apparel" matches a product listed in "Shirts" under it.
    Category {
        /// Membership operator.
        op: Op,
        /// The categories.
        ids: Vec<CategoryId>,
    },
    /// By the product's collections.
    Collection {
        /// Membership operator.
        op: Op,
        /// The collections.
        ids: Vec<CollectionId>,
    },
    /// By the product's tags.
    Tag {
        /// Membership operator.
        op: Op,
        /// The tags.
        tags: Vec<String>,
    },
    /// By the unit price (after price lists, before promotions).
    UnitPrice {
        /// Comparison operator.
        op: Op,
        /// The amount compared with; a cart in another currency never matches.
        amount: Money,
    },
    /// By one of the variant's options, the product attributes a shop
    /// sells by ("size" = "XL", "material" in ["wool", "silk"]). Compared
    /// exactly, case included. A variant without the option matches only
    /// `not_in` and `ne`.
    Option {
        /// The option's name, as on the variant.
        name: String,
        /// Membership operator.
        op: Op,
        /// The values (each at most [`MAX_NAME_LEN`] characters).
        values: Vec<String>,
    },
    /// By the cart line's metadata ([`LineItem::metadata`](crate::cart::LineItem::metadata)):
    /// what the embedding program recorded on the line ("engraving" =
    /// "yes", "source" = "quote"). A line without the key matches only
    /// `not_in` and `ne`.
    Metadata {
        /// The metadata key.
        key: String,
        /// Membership operator.
        op: Op,
        /// The values (each at most [`MAX_NAME_LEN`] characters).
        values: Vec<String>,
    },
}

/// A condition a cart must meet for a promotion to apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Condition {
    /// Every condition holds.
    AllOf {
        /// The conditions.
        conditions: Vec<Condition>,
    },
    /// At least one condition holds.
    AnyOf {
        /// The conditions.
        conditions: Vec<Condition>,
    },
    /// The condition does not hold ("not a wholesale customer", "no item
    /// from the sale collection"). Counts towards [`MAX_DEPTH`] and
    /// [`MAX_CONDITIONS`] like `all_of` and `any_of`.
    Not {
        /// The condition that must fail.
        condition: Box<Condition>,
    },
    /// The merchandise subtotal (after price lists, before promotions).
    Subtotal {
        /// Comparison operator.
        op: Op,
        /// The amount; a cart in another currency is rejected as "wrong currency".
        amount: Money,
    },
    /// The merchandise subtotal after the promotions applied before this
    /// one (in priority order; line promotions before shipping ones) —
    /// "20 % off, then 5.00 off if what is left is still 50.00 or more".
    /// Checked when the promotion's turn comes rather than up front; under
    /// the best-for-customer policy, in each combination compared. With
    /// nothing applied before, it equals [`Subtotal`](Self::Subtotal).
    DiscountedSubtotal {
        /// Comparison operator.
        op: Op,
        /// The amount; a cart in another currency is rejected as "wrong currency".
        amount: Money,
    },
    /// The merchandise subtotal with its tax, before promotions, as the
    /// tax calculator reckons it for the cart (prices that include tax are
    /// taken as they are): "orders of 100.00 or more, tax included". The
    /// calculator is asked once more per pricing when a promotion has this
    /// condition.
    SubtotalWithTax {
        /// Comparison operator.
        op: Op,
        /// The amount; a cart in another currency is rejected as "wrong currency".
        amount: Money,
    },
    /// The number of units in the cart.
    ItemCount {
        /// Comparison operator.
        op: Op,
        /// The count.
        count: u64,
    },
    /// The cart's currency.
    Currency {
        /// Membership operator.
        op: Op,
        /// The currencies.
        currencies: Vec<Currency>,
    },
    /// The chosen shipping methods: the cart's own and each shipping
    /// group's. `in`/`eq` hold when any chosen method is listed, `not_in`/
    /// `ne` when none is; no method chosen matches only `not_in` and `ne`.
    ShippingOption {
        /// Membership operator.
        op: Op,
        /// Method codes.
        codes: Vec<String>,
    },
    /// The customer's groups (a guest is in no group).
    CustomerGroup {
        /// Membership operator.
        op: Op,
        /// The groups.
        groups: Vec<CustomerGroupId>,
    },
    /// Which order of the customer's this would be: 1 for the first order.
    /// Earlier orders are counted by the account **and** by email
    /// ([`OrderStore::orders_placed_by`](crate::store::OrderStore::orders_placed_by)):
    /// a guest with an email used before, or an account opened with the
    /// email of earlier guest orders, is not on its first order. A guest
    /// without an email yet is. Cancelled orders count (an order was
    /// placed). Two checkouts racing with the same new email may both be
    /// "first"; a per-customer limit is what makes an offer once only.
    OrderNumber {
        /// Comparison operator.
        op: Op,
        /// The order number.
        number: u32,
    },
    /// At least `min_quantity` units of lines matching `filter`.
    Lines {
        /// Which lines count.
        filter: LineFilter,
        /// Units needed (default 1).
        #[serde(default = "one")]
        min_quantity: u32,
    },
    /// Some line matching `filter` has a quantity that compares with
    /// `quantity` ("a line of at least 3 units"). No matching line fails;
    /// a hint says how many units the closest line lacks.
    LineQuantity {
        /// Which lines count.
        filter: LineFilter,
        /// Comparison operator.
        op: Op,
        /// The quantity compared with.
        quantity: u32,
    },
    /// The domain of the buyer's email (after the `@`, compared in lower
    /// case): staff of a partner company, students of a university. No
    /// email known matches only `not_in` and `ne`.
    EmailDomain {
        /// Membership operator.
        op: Op,
        /// The domains (each at most [`MAX_NAME_LEN`] characters).
        domains: Vec<String>,
    },
    /// The cart's sales channel (a cart in no channel matches only
    /// `not_in` and `ne`).
    SalesChannel {
        /// Membership operator.
        op: Op,
        /// The channels.
        channels: Vec<crate::id::ChannelId>,
    },
    /// Whether the buyer is signed in to an account (`true`) or checks out
    /// as a guest (`false`).
    SignedIn {
        /// The state required.
        signed_in: bool,
    },
    /// Whether the cart is a draft order or quote staff built (`true`) or
    /// an ordinary cart (`false`). Only staff build and change draft
    /// orders, so a promotion with `draft: true` is a **staff-only
    /// discount**: its code does nothing in a customer's own cart.
    DraftOrder {
        /// The kind of cart required.
        draft: bool,
    },
    /// A condition implemented by a registered [`PricingRule`](crate::pricing::PricingRule).
    Custom {
        /// The rule's registered name.
        rule: String,
        /// The rule's settings.
        #[serde(default)]
        settings: serde_json::Value,
    },
}

fn one() -> u32 {
    1
}

/// How many times, and for how much, a promotion may be used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// Orders that may use it, in all.
    #[serde(default)]
    pub total_uses: Option<u64>,
    /// Orders one buyer may use it on. Buyers are counted by email (an
    /// account and a guest checkout with the same email share one count),
    /// or by account when no email is known; a cart with neither cannot use it.
    #[serde(default)]
    pub per_customer: Option<u64>,
    /// The most discount money it may give, in all. What happens when a
    /// cart's discount is more than what is left: see `budget_policy`.
    #[serde(default)]
    pub budget: Option<Money>,
    /// When a cart would take more than the budget has left: give what is
    /// left (the default) or nothing.
    #[serde(default)]
    pub budget_policy: BudgetPolicy,
}

/// What a promotion whose budget is nearly spent does with a cart that
/// would take more than is left.
///
/// Worked example: a budget of 100.00 with 95.00 given; a cart that would
/// get 10.00 gets 5.00 under `Cap` (and the budget is then spent), nothing
/// under `Refuse` (the explanation says "used up", and the 5.00 stays for a
/// smaller cart). A free gift is always given whole or not at all.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BudgetPolicy {
    /// Give what is left, scaled over the lines by largest remainder, so
    /// the budget is spent to the cent. The default (cartwright's
    /// behaviour before this setting existed).
    #[default]
    Cap,
    /// Give nothing unless the whole discount fits: Medusa's campaign
    /// budgets (`computeActionForBudgetExceeded` refuses an application
    /// that would pass the limit).
    Refuse,
}

crate::domain::setters!(Limits {
    budget_policy: BudgetPolicy,
} into {
    total_uses: Option<u64>,
    per_customer: Option<u64>,
    budget: Option<Money>,
});

/// How a promotion combines with others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Stacking {
    /// Applies only alone.
    #[serde(default)]
    pub exclusive: bool,
    /// Its combination group.
    #[serde(default = "default_group")]
    pub group: String,
    /// The groups it combines with; `None` combines with every group.
    /// Two promotions combine only if each accepts the other's group.
    #[serde(default)]
    pub combines_with: Option<Vec<String>>,
}

crate::domain::setters!(Stacking { exclusive: bool } into {
    group: String,
    combines_with: Option<Vec<String>>,
});

fn default_group() -> String {
    "default".into()
}

impl Default for Stacking {
    fn default() -> Self {
        Self {
            exclusive: false,
            group: default_group(),
            combines_with: None,
        }
    }
}

impl Stacking {
    /// Whether promotions with these two stackings may both apply.
    pub fn combines(&self, other: &Stacking) -> bool {
        !self.exclusive
            && !other.exclusive
            && self.accepts(&other.group)
            && other.accepts(&self.group)
    }

    fn accepts(&self, group: &str) -> bool {
        self.combines_with
            .as_ref()
            .is_none_or(|groups| groups.iter().any(|g| g == group))
    }
}

/// A promotion: when it applies, what it gives, how often and with what else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Promotion {
    /// Its id.
    pub id: PromotionId,
    /// Shown to the customer on adjustments.
    pub name: String,
    /// Switched off promotions are ignored (and reported so for codes).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Needs a coupon code ([`Coupon`]) rather than applying by itself.
    #[serde(default)]
    pub coded: bool,
    /// Applies from this instant (inclusive).
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Applies until this instant (exclusive).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Lower applies first, and so wins where promotions exclude each
    /// other; ties go to the lower id. The same meaning as a price list's
    /// and a stock location's priority: 0 comes first.
    #[serde(default)]
    pub priority: u32,
    /// How it combines with others.
    #[serde(default)]
    pub stacking: Stacking,
    /// All must hold.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// What it gives.
    pub action: Action,
    /// Use and budget limits.
    #[serde(default)]
    pub limits: Limits,
    /// For a buy-X-get-Y action: which eligible units are rewarded, the
    /// cheapest (the default; the qualifying units then come from the
    /// dearest) or the dearest (qualifying units from the cheapest).
    /// Ignored by other actions. (On the promotion rather than the action,
    /// so code that builds `Action::BuyXGetY` keeps compiling.)
    #[serde(default)]
    pub reward_units: RewardUnits,
    /// At most this many units discounted in the whole cart, and which
    /// ones (see [`UnitCap`]); none by default. For item discounts only:
    /// percent or amount off items, fixed price, first and additional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_cap: Option<UnitCap>,
    /// Terms for carts in other currencies: the same promotion (one id,
    /// one use count, one explanation) with its amounts and thresholds
    /// given per currency, instead of one promotion per currency. At most
    /// [`MAX_CURRENCY_TERMS`], one per currency, none for a currency the
    /// promotion's own amounts are in. See [`CurrencyTerms`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_currency: Vec<CurrencyTerms>,
}

/// Most [`CurrencyTerms`] one promotion holds.
pub const MAX_CURRENCY_TERMS: usize = 50;

/// A promotion's terms for carts in one currency
/// ([`Promotion::per_currency`]): what it replaces of the promotion for
/// such a cart — its conditions, its action, its budget — each left as the
/// promotion's own when absent. Every amount in the result must be in
/// `currency` (checked when the promotion is saved).
///
/// Worked example: "5.00 off orders of 50.00 or more" written in USD, with
/// EUR terms `AmountOffOrder { amount: 4.50 EUR }` and conditions
/// `Subtotal ≥ 45.00 EUR`: a USD cart of 52.00 gets 5.00 off, a EUR cart of
/// 46.00 gets 4.50 off, a GBP cart is rejected as "wrong currency". Uses
/// are counted once for all currencies; a budget is per currency
/// (counter `promotion:<id>:budget:<CURRENCY>` for the terms' budget).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CurrencyTerms {
    /// The carts' currency these terms are for.
    pub currency: Currency,
    /// The conditions for such carts, replacing the promotion's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The action for such carts, replacing the promotion's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The budget for such carts (in `currency`), replacing the promotion's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Money>,
}

impl CurrencyTerms {
    /// Terms for `currency` that replace nothing yet.
    pub fn new(currency: Currency) -> Self {
        Self {
            currency,
            conditions: None,
            action: None,
            budget: None,
        }
    }

    /// Replaces the conditions.
    #[must_use]
    pub fn conditions(mut self, conditions: Vec<Condition>) -> Self {
        self.conditions = Some(conditions);
        self
    }

    /// Replaces the action.
    #[must_use]
    pub fn action(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }

    /// Sets the budget for carts in this currency.
    #[must_use]
    pub fn budget(mut self, budget: Money) -> Self {
        self.budget = Some(budget);
        self
    }
}

/// "At most N units discounted" across the cart, and which units get the
/// discount when more qualify: [`Promotion::unit_cap`](Promotion#structfield.unit_cap).
/// It works with an action's own per-line limit (the smaller wins on each
/// line).
///
/// Worked example: 20 % off, at most 3 units, on a cart of 2 × 30.00 and
/// 3 × 10.00: cheapest first discounts the three 10.00 units (6.00 off);
/// dearest first the two 30.00 units and one 10.00 unit (14.00 off); cart
/// order the first line's two units and one of the second line's (14.00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UnitCap {
    /// Units discounted at most, in all (1 to [`MAX_PROMOTION_QUANTITY`]).
    pub max_units: u32,
    /// Which units come first.
    #[serde(default)]
    pub order: UnitOrder,
}

impl UnitCap {
    /// At most `max_units` units, taken in `order`.
    pub fn new(max_units: u32, order: UnitOrder) -> Self {
        Self { max_units, order }
    }
}

/// Which units a [`UnitCap`] discounts first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnitOrder {
    /// The cheapest units (by what a unit still costs), ties in the
    /// canonical line order: Medusa's "once" allocation with a maximum
    /// quantity (items sorted by price, ascending). The default: a capped
    /// offer costs the shop least.
    #[default]
    CheapestFirst,
    /// The dearest units first.
    DearestFirst,
    /// The lines in cart order, each line's units before the next's.
    CartOrder,
}

fn yes() -> bool {
    true
}

impl Promotion {
    /// An enabled automatic promotion with no window, conditions or limits.
    pub fn new(name: &str, action: Action) -> Self {
        Self {
            id: PromotionId::new(),
            name: name.to_owned(),
            enabled: true,
            coded: false,
            starts_at: None,
            ends_at: None,
            priority: 0,
            stacking: Stacking::default(),
            conditions: Vec::new(),
            action,
            limits: Limits::default(),
            reward_units: RewardUnits::default(),
            unit_cap: None,
            per_currency: Vec::new(),
        }
    }

    /// Adds terms for carts in another currency (see [`CurrencyTerms`]).
    pub fn in_currency(mut self, terms: CurrencyTerms) -> Self {
        self.per_currency.push(terms);
        self
    }

    /// The promotion as it applies to a cart in `currency`: with that
    /// currency's [`CurrencyTerms`] in place (and no further terms), or as
    /// it is when it has none for `currency`.
    pub fn terms_for(&self, currency: Currency) -> std::borrow::Cow<'_, Promotion> {
        let Some(terms) = self.per_currency.iter().find(|t| t.currency == currency) else {
            return std::borrow::Cow::Borrowed(self);
        };
        let mut p = self.clone();
        p.per_currency = Vec::new();
        if let Some(conditions) = &terms.conditions {
            p.conditions = conditions.clone();
        }
        if let Some(action) = &terms.action {
            p.action = action.clone();
        }
        if let Some(budget) = terms.budget {
            p.limits.budget = Some(budget);
        }
        std::borrow::Cow::Owned(p)
    }

    /// Caps the units discounted in the whole cart (see
    /// [`Promotion::unit_cap`](Self#structfield.unit_cap)).
    pub fn unit_cap(mut self, cap: UnitCap) -> Self {
        self.unit_cap = Some(cap);
        self
    }

    /// Sets which units a buy-X-get-Y rewards (see
    /// [`Promotion::reward_units`](Self#structfield.reward_units)).
    pub fn reward_units(mut self, reward_units: RewardUnits) -> Self {
        self.reward_units = reward_units;
        self
    }

    /// Makes it need a coupon code.
    pub fn coded(mut self) -> Self {
        self.coded = true;
        self
    }

    /// Adds a condition.
    pub fn when(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Sets the priority (lower applies first; see [`Promotion::priority`](Self#structfield.priority)).
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the validity window: from `starts_at` (inclusive) to `ends_at` (exclusive).
    pub fn window(
        mut self,
        starts_at: Option<DateTime<Utc>>,
        ends_at: Option<DateTime<Utc>>,
    ) -> Self {
        self.starts_at = starts_at;
        self.ends_at = ends_at;
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how it stacks.
    pub fn stacking(mut self, stacking: Stacking) -> Self {
        self.stacking = stacking;
        self
    }

    /// Checks every field; pricing relies on a promotion having passed this.
    /// Custom rules are checked against a registry when the promotion is
    /// compiled into a [`PromotionSet`](crate::pricing::PromotionSet).
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn validate(&self) -> Result<()> {
        required_text("promotion name", &self.name, MAX_NAME_LEN)?;
        required_text("combination group", &self.stacking.group, MAX_NAME_LEN)?;
        if let Some(groups) = &self.stacking.combines_with {
            check_len("combines_with", groups.len())?;
            for g in groups {
                required_text("combination group", g, MAX_NAME_LEN)?;
            }
        }
        if let (Some(start), Some(end)) = (self.starts_at, self.ends_at)
            && end <= start
        {
            return Err(Error::invalid(
                "promotion window",
                "must end after it starts",
            ));
        }
        let mut budget = Budget::default();
        for c in &self.conditions {
            validate_condition(c, 0, &mut budget)?;
        }
        validate_action(&self.action, &mut budget)?;
        self.validate_currency_terms()?;
        if let Some(cap) = &self.unit_cap {
            check_quantity("unit_cap max_units", cap.max_units)?;
            if !matches!(
                self.action,
                Action::PercentOffItems { .. }
                    | Action::AmountOffItems { .. }
                    | Action::FixedPrice { .. }
                    | Action::FirstAndAdditional { .. }
            ) {
                return Err(Error::invalid(
                    "unit_cap",
                    "applies to percent_off_items, amount_off_items, fixed_price and \
                     first_and_additional only",
                ));
            }
        }
        if let Some(budget) = &self.limits.budget {
            positive_money("budget", budget)?;
        }
        if self.limits.total_uses == Some(0) || self.limits.per_customer == Some(0) {
            return Err(Error::invalid(
                "promotion limits",
                "a use limit must be at least 1",
            ));
        }
        Ok(())
    }

    /// Each [`CurrencyTerms`]: one per currency, not one the promotion's
    /// own amounts are in, valid as a promotion once in place, every amount
    /// in its currency.
    fn validate_currency_terms(&self) -> Result<()> {
        if self.per_currency.is_empty() {
            return Ok(());
        }
        if self.per_currency.len() > MAX_CURRENCY_TERMS {
            return Err(Error::LimitExceeded {
                what: "currency terms per promotion",
                max: MAX_CURRENCY_TERMS as u64,
            });
        }
        let own = self.amount_currencies();
        let mut seen = BTreeSet::new();
        for t in &self.per_currency {
            if !seen.insert(t.currency) {
                return Err(Error::invalid(
                    "currency terms",
                    format!("{} is given twice", t.currency),
                ));
            }
            if own.contains(&t.currency) {
                return Err(Error::invalid(
                    "currency terms",
                    format!(
                        "the promotion's own amounts are in {}; change them there",
                        t.currency
                    ),
                ));
            }
            let resolved = self.terms_for(t.currency);
            let mut budget = Budget::default();
            for c in &resolved.conditions {
                validate_condition(c, 0, &mut budget)?;
            }
            validate_action(&resolved.action, &mut budget)?;
            if let Some(b) = &resolved.limits.budget {
                positive_money("budget", b)?;
            }
            if let Some(other) = resolved
                .amount_currencies()
                .into_iter()
                .find(|c| *c != t.currency)
            {
                return Err(Error::invalid(
                    "currency terms",
                    format!(
                        "the {} terms leave an amount in {other}: give every amount in {}",
                        t.currency, t.currency
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Every currency its amounts are given in, its own and those of its
    /// [`CurrencyTerms`]; a cart in another currency cannot use it. Empty
    /// if its own terms use only percentages and counts (any currency may
    /// use it).
    pub fn currencies(&self) -> BTreeSet<Currency> {
        let mut out = self.amount_currencies();
        if out.is_empty() {
            return out;
        }
        for t in &self.per_currency {
            out.insert(t.currency);
        }
        out
    }

    /// The currencies of its own amounts (without its currency terms).
    pub(crate) fn amount_currencies(&self) -> BTreeSet<Currency> {
        let mut out = BTreeSet::new();
        for c in &self.conditions {
            condition_currencies(c, &mut out);
        }
        action_currencies(&self.action, &mut out);
        if let Some(b) = &self.limits.budget {
            out.insert(b.currency());
        }
        out
    }

    /// Whether the promotion's window contains `now`.
    pub fn window_state(&self, now: DateTime<Utc>) -> WindowState {
        match (self.starts_at, self.ends_at) {
            (Some(start), _) if now < start => WindowState::NotStarted(start),
            (_, Some(end)) if now >= end => WindowState::Ended(end),
            _ => WindowState::Open,
        }
    }
}

/// Where an instant falls in a promotion's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WindowState {
    /// Before the start.
    NotStarted(DateTime<Utc>),
    /// Within.
    Open,
    /// At or after the end.
    Ended(DateTime<Utc>),
}

mod action;
mod coupon;
mod validate;
pub use action::*;
pub use coupon::*;
pub(crate) use validate::check_percent;
use validate::*;

#[cfg(test)]
mod tests;
