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

/// How a fixed amount off items is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AmountPer {
    /// The amount off every discounted unit.
    Unit,
    /// The amount off each selected line, once.
    Line,
    /// One amount in all, split across the selected lines by their value.
    Split,
}

/// A percentage or an amount off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Reward {
    /// A percentage (`10` for 10 %) of each selected line.
    Percent {
        /// 0 to 100.
        percent: Decimal,
    },
    /// An amount in all, split across the selected lines by their value
    /// (on shipping: across the charges, by what each costs). In
    /// [`Action::FirstAndAdditional`], an amount off each unit.
    Amount {
        /// The amount.
        amount: Money,
    },
    /// An amount off **each**: each shipping charge the promotion targets
    /// ([`Action::Shipping`], [`Action::TieredShipping`]) or each selected
    /// line ([`Action::Tiered`]), never more than what it costs. Worked
    /// example: 3.00 off each of a 5.99 and a 2.00 shipping charge → 3.00
    /// and 2.00 (the second is free, not below zero). Matches Solidus's flat
    /// rate on shipments (applied to each shipment) and Medusa's `each`
    /// allocation of a fixed shipping discount.
    AmountEach {
        /// The amount off each.
        amount: Money,
    },
}

/// One tier of a subtotal-based tiered discount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubtotalTier {
    /// The tier applies from this subtotal of the selected lines.
    pub min: Money,
    /// What it gives.
    pub reward: Reward,
}

/// One tier of a quantity-based tiered discount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantityTier {
    /// The tier applies from this many units of the selected lines.
    pub min: u64,
    /// What it gives.
    pub reward: Reward,
}

/// The thresholds of a tiered discount; the highest tier reached applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "basis", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Tiers {
    /// By the subtotal of the selected lines.
    Subtotal {
        /// The tiers, any order.
        tiers: Vec<SubtotalTier>,
    },
    /// By the units of the selected lines.
    Quantity {
        /// The tiers, any order.
        tiers: Vec<QuantityTier>,
    },
    /// By each shipping charge's own amount (as earlier shipping promotions
    /// left it): each charge gets the reward of the highest tier it reaches.
    /// Only in [`Action::TieredShipping`]. Worked example: tiers "from
    /// 10.00: 50 %" and "from 20.00: free" on a 12.00 and a 25.00 charge →
    /// 6.00 and 25.00 off; a 6.00 charge gets nothing.
    ShippingAmount {
        /// The tiers, any order; `min` is the charge's amount.
        tiers: Vec<SubtotalTier>,
    },
}

/// Which units of a [`Action::BuyXGetY`] are the reward.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RewardUnits {
    /// The cheapest eligible units are discounted, paid for by the dearest
    /// (Medusa's and Solidus's buy-X-get-Y; the usual "get the cheapest
    /// free").
    #[default]
    Cheapest,
    /// The dearest eligible units are discounted, paid for by the cheapest
    /// ("buy one, get the dearer one half price").
    Dearest,
}

/// What one group of a [`Action::QuantityGroup`] costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum GroupPrice {
    /// The group costs this much ("every 3 for 10.00").
    Fixed {
        /// The price of one group.
        amount: Money,
    },
    /// The group costs its `units` dearest units ("3 for the price of 2":
    /// `units: 2`); fewer than the group's size.
    PayFor {
        /// Units paid for in each group.
        units: u32,
    },
    /// An amount off each unit in a complete group ("5.00 off each shirt
    /// when you buy them in threes"), never below zero.
    AmountOffEach {
        /// Off each grouped unit.
        amount: Money,
    },
    /// A percentage off each unit in a complete group.
    PercentOffEach {
        /// 0 to 100.
        percent: Decimal,
    },
    /// A percentage off each unit in a complete group, by how many complete
    /// groups the cart holds: the highest tier reached applies.
    TieredPercentOffEach {
        /// The tiers, any order.
        tiers: Vec<GroupTier>,
    },
}

/// One tier of [`GroupPrice::TieredPercentOffEach`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupTier {
    /// The tier applies from this many complete groups (at least 1).
    pub groups: u32,
    /// Off each grouped unit, 0 to 100.
    pub percent: Decimal,
}

/// One part of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleItem {
    /// Which lines supply this part.
    pub filter: LineFilter,
    /// Units of it in one bundle.
    pub quantity: u32,
}

/// What a promotion gives.
///
/// **Discounts larger than their target.** A percent above 100 (or below
/// 0) is refused when the promotion is saved, with an error naming the
/// value. A fixed amount larger than what it targets is accepted and
/// **capped** at what the target still costs: no line, unit or shipping
/// charge ever goes below zero, and the explanation shows the amount
/// actually taken. So 50.00 off an item
/// of 30.00 takes 30.00, and a fixed price or fixed total above what the
/// items cost takes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Action {
    /// A percentage off each selected line, optionally capped in total.
    PercentOffItems {
        /// Which lines.
        target: LineFilter,
        /// 0 to 100.
        percent: Decimal,
        /// The most the whole promotion takes off.
        #[serde(default)]
        max_discount: Option<Money>,
        /// The most units discounted per line.
        #[serde(default)]
        max_quantity_per_line: Option<u32>,
    },
    /// A fixed amount off the selected lines.
    AmountOffItems {
        /// Which lines.
        target: LineFilter,
        /// The amount.
        amount: Money,
        /// Per unit, per line, or split across the lines.
        per: AmountPer,
        /// The most units discounted per line.
        #[serde(default)]
        max_quantity_per_line: Option<u32>,
    },
    /// A percentage off the whole order (split across lines), optionally capped.
    PercentOffOrder {
        /// 0 to 100.
        percent: Decimal,
        /// The most it takes off.
        #[serde(default)]
        max_discount: Option<Money>,
    },
    /// A fixed amount off the whole order, split across lines.
    AmountOffOrder {
        /// The amount.
        amount: Money,
    },
    /// The selected units cost `price` each (never raising a price).
    FixedPrice {
        /// Which lines.
        target: LineFilter,
        /// The price of one unit.
        price: Money,
        /// The most units at that price per line.
        #[serde(default)]
        max_quantity_per_line: Option<u32>,
    },
    /// A set of items together for one price (most valuable units first).
    Bundle {
        /// The parts of one bundle.
        items: Vec<BundleItem>,
        /// The price of one whole bundle.
        price: Money,
        /// The most bundles per cart.
        #[serde(default)]
        max_bundles: Option<u32>,
    },
    /// Buy `buy_quantity` of `buy`, get `get_quantity` of `get` at `percent`
    /// off (100 = free). The cheapest eligible units are discounted; the
    /// qualifying units are taken from the most expensive. Repeats up to
    /// `max_applications` times (unbounded if absent).
    ///
    /// **Only units still payable count.** A unit that a buy-X-get-Y has
    /// rewarded (at any percent) is spent: a later buy-X-get-Y neither
    /// counts it towards `buy_quantity` nor rewards it again. So with three
    /// units and two "buy 2 get 1 free" promotions, the first frees one unit
    /// and the second, finding two payable units, gives nothing. Units that
    /// only qualified stay payable. Other actions discount every unit of a
    /// line alike (a spent unit's remaining cost shrinks with the rest).
    BuyXGetY {
        /// What must be bought.
        buy: LineFilter,
        /// How many.
        buy_quantity: u32,
        /// What is discounted.
        get: LineFilter,
        /// How many.
        get_quantity: u32,
        /// 0 to 100; 100 makes them free.
        percent: Decimal,
        /// How often it may repeat.
        #[serde(default)]
        max_applications: Option<u32>,
    },
    /// All selected units together cost `price` ("these items for 50.00
    /// in total"; with `target: any`, "the whole order for X"). The
    /// discount is what they cost beyond `price`, split over the selected
    /// lines in proportion to what each still costs; it never raises a
    /// price. Worked example: two mugs at 30.00 and a plate at 40.00 (100.00)
    /// for 80.00 → 20.00 off: 6.00, 6.00 and 8.00.
    FixedTotal {
        /// Which lines.
        target: LineFilter,
        /// What all their units cost together.
        price: Money,
    },
    /// Units of the selected lines in groups of `size`, each group at a
    /// price: "every 3 for 10.00" ([`GroupPrice::Fixed`]) or "3 for the
    /// price of 2" ([`GroupPrice::PayFor`]). Repeats as many times as the
    /// cart holds full groups, up to `max_groups`.
    ///
    /// With a group price ([`GroupPrice::Fixed`], [`GroupPrice::PayFor`])
    /// groups are filled with the dearest units first (so the customer gets
    /// the most), and within a group the cheapest units are the ones not
    /// paid for; units left over (fewer than `size`) are the cheapest and
    /// pay in full. A group never costs more than its units. Worked example,
    /// "3 for the price of 2" on units at 10, 8, 8, 5, 4: the group 10, 8, 8
    /// frees one 8 (8.00 off); 5 and 4 pay in full.
    ///
    /// With a discount off each grouped unit ([`GroupPrice::AmountOffEach`],
    /// [`GroupPrice::PercentOffEach`], [`GroupPrice::TieredPercentOffEach`])
    /// groups are filled from the lines with the most units first (ties in
    /// canonical line order), as Solidus's quantity-group benefit
    /// (`AdjustLineItemQuantityGroups`) fills them; only units in complete
    /// groups are discounted. Worked example, 5.00 off each shirt in groups
    /// of 3, on 2 red, 1 white and 1 blue shirts at 20.00: one group of 2
    /// red and 1 white (10.00 and 5.00 off); the blue one pays in full.
    QuantityGroup {
        /// Which lines.
        target: LineFilter,
        /// Units in one group (at least 2).
        size: u32,
        /// What one group costs.
        price: GroupPrice,
        /// The most groups per cart (unbounded if absent).
        #[serde(default)]
        max_groups: Option<u32>,
    },
    /// On each selected line, the first unit gets `first` and each
    /// additional unit gets `additional`, for at most `max_units` units of
    /// the line (all if absent). An amount is off each unit, never below
    /// zero. Matches Solidus's flexible-rate calculator (first item,
    /// additional items, max items). Worked example: a line of 4 at 10.00,
    /// first 50 % off, additional 2.00 off, `max_units: 3` → 5.00 + 2.00 +
    /// 2.00 = 9.00 off; the fourth unit pays in full.
    FirstAndAdditional {
        /// Which lines.
        target: LineFilter,
        /// The first unit's discount.
        first: Reward,
        /// Each further unit's discount.
        additional: Reward,
        /// The most units discounted per line.
        #[serde(default)]
        max_units: Option<u32>,
    },
    /// A discount that grows with the subtotal or quantity of selected lines.
    Tiered {
        /// Which lines count and are discounted.
        target: LineFilter,
        /// The thresholds.
        tiers: Tiers,
    },
    /// Free or cheaper shipping, on every shipping charge of the cart (its
    /// own and each shipping group's) whose method is listed: a percent off
    /// each, an amount shared across them by what each costs (largest
    /// remainder). Worked example: 6.00 off a 5.99 and a 12.00 charge →
    /// 2.00 and 4.00.
    Shipping {
        /// `percent: 100` is free shipping.
        reward: Reward,
        /// Only these methods (any method if empty).
        #[serde(default)]
        methods: Vec<String>,
    },
    /// Cheaper shipping by tiers: the highest tier the selected lines
    /// reach (by their subtotal before promotions, or by their units)
    /// gives its reward on the shipping. Worked example: tiers "from
    /// 50.00: 50 %" and "from 100.00: free" on a 75.00 cart with 8.00
    /// shipping → 4.00 off; at 120.00 → 8.00 off. With
    /// [`Tiers::ShippingAmount`] each charge picks its own tier by its own
    /// amount (`target` is then not used).
    TieredShipping {
        /// Which lines count towards the tiers.
        target: LineFilter,
        /// The thresholds and their rewards on the shipping.
        tiers: Tiers,
        /// Only these methods (any method if empty).
        #[serde(default)]
        methods: Vec<String>,
    },
    /// A free gift line added to the order.
    Gift {
        /// The gift.
        variant_id: VariantId,
        /// Units of it.
        quantity: u32,
    },
    /// An action implemented by a registered [`PricingRule`](crate::pricing::PricingRule).
    Custom {
        /// The rule's registered name.
        rule: String,
        /// The rule's settings.
        #[serde(default)]
        settings: serde_json::Value,
    },
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

/// Counts conditions and filters while a promotion is validated.
#[derive(Default)]
struct Budget {
    conditions: usize,
}

impl Budget {
    /// One more condition or filter, at nesting `depth`.
    fn enter(&mut self, depth: usize) -> Result<()> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(Error::LimitExceeded {
                what: "conditions per promotion",
                max: MAX_CONDITIONS as u64,
            });
        }
        if depth > MAX_DEPTH {
            return Err(Error::LimitExceeded {
                what: "condition nesting",
                max: MAX_DEPTH as u64,
            });
        }
        Ok(())
    }
}

fn check_len(field: &'static str, len: usize) -> Result<()> {
    if len > MAX_VALUES {
        return Err(Error::LimitExceeded {
            what: field,
            max: MAX_VALUES as u64,
        });
    }
    Ok(())
}

fn check_list<T>(field: &'static str, op: Op, values: &[T]) -> Result<()> {
    check_len(field, values.len())?;
    match op {
        Op::In | Op::NotIn | Op::ContainsAny if !values.is_empty() => Ok(()),
        Op::Eq | Op::Ne if values.len() == 1 => Ok(()),
        Op::Eq | Op::Ne => Err(Error::invalid(field, "eq and ne take exactly one value")),
        Op::In | Op::NotIn | Op::ContainsAny => {
            Err(Error::invalid(field, "needs at least one value"))
        }
        _ => Err(Error::invalid(
            field,
            format!("operator `{}` does not apply to a list", op.symbol()),
        )),
    }
}

fn check_order(field: &'static str, op: Op) -> Result<()> {
    if op.is_order() {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("operator `{}` does not apply to a number", op.symbol()),
        ))
    }
}

fn positive_money(field: &'static str, m: &Money) -> Result<()> {
    m.entered()?;
    if m.is_negative() || m.is_zero() {
        return Err(Error::invalid(field, "must be above zero"));
    }
    Ok(())
}

fn non_negative_money(field: &'static str, m: &Money) -> Result<()> {
    m.entered()?;
    if m.is_negative() {
        return Err(Error::invalid(field, "must not be negative"));
    }
    Ok(())
}

pub(crate) fn check_percent(p: Decimal) -> Result<()> {
    if p.is_sign_negative() || p > Decimal::ONE_HUNDRED || p.scale() > MAX_PERCENT_SCALE {
        return Err(Error::invalid(
            "percent",
            format!("{p}: must be between 0 and 100 with at most {MAX_PERCENT_SCALE} decimals"),
        ));
    }
    Ok(())
}

fn check_quantity(field: &'static str, q: u32) -> Result<()> {
    if q == 0 || q > MAX_PROMOTION_QUANTITY {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {MAX_PROMOTION_QUANTITY}"),
        ));
    }
    Ok(())
}

fn validate_filter(f: &LineFilter, depth: usize, budget: &mut Budget) -> Result<()> {
    budget.enter(depth)?;
    match f {
        LineFilter::Any => Ok(()),
        LineFilter::AllOf { filters } | LineFilter::AnyOf { filters } => {
            if filters.is_empty() {
                return Err(Error::invalid(
                    "line filter",
                    "all_of / any_of need at least one filter",
                ));
            }
            for f in filters {
                validate_filter(f, depth + 1, budget)?;
            }
            Ok(())
        }
        LineFilter::Product { op, ids } => check_list("product filter", *op, ids),
        LineFilter::Variant { op, ids } => check_list("variant filter", *op, ids),
        LineFilter::Category { op, ids } => check_list("category filter", *op, ids),
        LineFilter::Collection { op, ids } => check_list("collection filter", *op, ids),
        LineFilter::Tag { op, tags } => check_list("tag filter", *op, tags),
        LineFilter::UnitPrice { op, amount } => {
            check_order("unit price filter", *op)?;
            non_negative_money("unit price filter", amount)
        }
        LineFilter::Option { name, op, values } => {
            required_text("option name", name, MAX_NAME_LEN)?;
            check_texts("option filter", *op, values)
        }
        LineFilter::Metadata { key, op, values } => {
            required_text("metadata key", key, MAX_NAME_LEN)?;
            check_texts("metadata filter", *op, values)
        }
    }
}

/// A list of short texts: the list as [`check_list`], each value at most
/// [`MAX_NAME_LEN`] characters.
fn check_texts(field: &'static str, op: Op, values: &[String]) -> Result<()> {
    check_list(field, op, values)?;
    match values.iter().find(|v| v.chars().count() > MAX_NAME_LEN) {
        Some(long) => Err(Error::invalid(
            field,
            format!(
                "value of {} characters: at most {MAX_NAME_LEN}",
                long.chars().count()
            ),
        )),
        None => Ok(()),
    }
}

fn validate_condition(c: &Condition, depth: usize, budget: &mut Budget) -> Result<()> {
    budget.enter(depth)?;
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            if conditions.is_empty() {
                return Err(Error::invalid(
                    "condition",
                    "all_of / any_of need at least one condition",
                ));
            }
            for c in conditions {
                validate_condition(c, depth + 1, budget)?;
            }
            Ok(())
        }
        Condition::Not { condition } => validate_condition(condition, depth + 1, budget),
        Condition::Subtotal { op, amount }
        | Condition::DiscountedSubtotal { op, amount }
        | Condition::SubtotalWithTax { op, amount } => {
            check_order("subtotal condition", *op)?;
            non_negative_money("subtotal condition", amount)
        }
        Condition::ItemCount { op, .. } => check_order("item count condition", *op),
        Condition::OrderNumber { op, .. } => check_order("order number condition", *op),
        Condition::Currency { op, currencies } => check_list("currency condition", *op, currencies),
        Condition::ShippingOption { op, codes } => {
            check_list("shipping option condition", *op, codes)
        }
        Condition::CustomerGroup { op, groups } => {
            check_list("customer group condition", *op, groups)
        }
        Condition::Lines {
            filter,
            min_quantity,
        } => {
            check_quantity("min_quantity", *min_quantity)?;
            validate_filter(filter, depth + 1, budget)
        }
        Condition::LineQuantity { filter, op, .. } => {
            check_order("line quantity condition", *op)?;
            validate_filter(filter, depth + 1, budget)
        }
        Condition::EmailDomain { op, domains } => {
            check_texts("email domain condition", *op, domains)
        }
        Condition::SignedIn { .. } => Ok(()),
        Condition::SalesChannel { op, channels } => {
            check_list("sales channel condition", *op, channels)
        }
        Condition::Custom { rule, .. } => required_text("rule name", rule, MAX_NAME_LEN).map(drop),
    }
}

fn validate_reward(r: &Reward) -> Result<()> {
    match r {
        Reward::Percent { percent } => check_percent(*percent),
        Reward::Amount { amount } | Reward::AmountEach { amount } => {
            positive_money("reward amount", amount)
        }
    }
}

fn validate_action(a: &Action, budget: &mut Budget) -> Result<()> {
    let max_q = |q: &Option<u32>| q.map_or(Ok(()), |q| check_quantity("max_quantity_per_line", q));
    match a {
        Action::PercentOffItems {
            target,
            percent,
            max_discount,
            max_quantity_per_line,
        } => {
            validate_filter(target, 0, budget)?;
            check_percent(*percent)?;
            max_q(max_quantity_per_line)?;
            max_discount
                .as_ref()
                .map_or(Ok(()), |m| positive_money("max_discount", m))
        }
        Action::AmountOffItems {
            target,
            amount,
            max_quantity_per_line,
            ..
        } => {
            validate_filter(target, 0, budget)?;
            max_q(max_quantity_per_line)?;
            positive_money("amount", amount)
        }
        Action::PercentOffOrder {
            percent,
            max_discount,
        } => {
            check_percent(*percent)?;
            max_discount
                .as_ref()
                .map_or(Ok(()), |m| positive_money("max_discount", m))
        }
        Action::AmountOffOrder { amount } => positive_money("amount", amount),
        Action::FixedPrice {
            target,
            price,
            max_quantity_per_line,
        } => {
            validate_filter(target, 0, budget)?;
            max_q(max_quantity_per_line)?;
            non_negative_money("fixed price", price)
        }
        Action::Bundle {
            items,
            price,
            max_bundles,
        } => {
            validate_bundle(items, budget)?;
            max_q(max_bundles)?;
            non_negative_money("bundle price", price)
        }
        Action::BuyXGetY {
            buy,
            buy_quantity,
            get,
            get_quantity,
            percent,
            max_applications,
            ..
        } => {
            validate_filter(buy, 0, budget)?;
            validate_filter(get, 0, budget)?;
            check_quantity("buy_quantity", *buy_quantity)?;
            check_quantity("get_quantity", *get_quantity)?;
            max_q(max_applications)?;
            check_percent(*percent)
        }
        Action::FixedTotal { target, price } => {
            validate_filter(target, 0, budget)?;
            non_negative_money("fixed total", price)
        }
        Action::QuantityGroup {
            target,
            size,
            price,
            max_groups,
        } => {
            validate_filter(target, 0, budget)?;
            check_quantity("group size", *size)?;
            if *size < 2 {
                return Err(Error::invalid("group size", "must be at least 2"));
            }
            max_q(max_groups)?;
            match price {
                GroupPrice::Fixed { amount } => non_negative_money("group price", amount),
                GroupPrice::PayFor { units } => {
                    if *units == 0 || *units >= *size {
                        return Err(Error::invalid(
                            "pay_for units",
                            format!(
                                "{units}: must be 1 to {} (the group size less one)",
                                size - 1
                            ),
                        ));
                    }
                    Ok(())
                }
                GroupPrice::AmountOffEach { amount } => {
                    positive_money("amount off each grouped unit", amount)
                }
                GroupPrice::PercentOffEach { percent } => check_percent(*percent),
                GroupPrice::TieredPercentOffEach { tiers } => {
                    if tiers.is_empty() || tiers.len() > MAX_TIERS {
                        return Err(Error::invalid(
                            "group tiers",
                            format!("need 1 to {MAX_TIERS} tiers"),
                        ));
                    }
                    for t in tiers {
                        if t.groups == 0 {
                            return Err(Error::invalid("group tier", "groups must be at least 1"));
                        }
                        check_percent(t.percent)?;
                    }
                    Ok(())
                }
            }
        }
        Action::FirstAndAdditional {
            target,
            first,
            additional,
            max_units,
        } => {
            validate_filter(target, 0, budget)?;
            max_q(max_units)?;
            validate_reward(first)?;
            validate_reward(additional)
        }
        Action::Tiered { target, tiers } => {
            validate_filter(target, 0, budget)?;
            if matches!(tiers, Tiers::ShippingAmount { .. }) {
                return Err(Error::invalid(
                    "tiers",
                    "tiers by a shipping charge's amount apply to shipping only (tiered_shipping)",
                ));
            }
            validate_tiers(tiers)
        }
        Action::Shipping { reward, methods } => {
            check_len("shipping methods", methods.len())?;
            validate_reward(reward)
        }
        Action::TieredShipping {
            target,
            tiers,
            methods,
        } => {
            validate_filter(target, 0, budget)?;
            check_len("shipping methods", methods.len())?;
            validate_tiers(tiers)
        }
        Action::Gift { quantity, .. } => check_quantity("gift quantity", *quantity),
        Action::Custom { rule, .. } => required_text("rule name", rule, MAX_NAME_LEN).map(drop),
    }
}

/// A bundle has 1 to [`MAX_BUNDLE_ITEMS`] parts, each a valid filter and
/// quantity.
fn validate_bundle(items: &[BundleItem], budget: &mut Budget) -> Result<()> {
    if items.is_empty() || items.len() > MAX_BUNDLE_ITEMS {
        return Err(Error::invalid(
            "bundle",
            format!("needs 1 to {MAX_BUNDLE_ITEMS} items"),
        ));
    }
    for item in items {
        validate_filter(&item.filter, 0, budget)?;
        check_quantity("bundle item quantity", item.quantity)?;
    }
    Ok(())
}

/// 1 to [`MAX_TIERS`] tiers, each with a valid threshold and reward.
fn validate_tiers(tiers: &Tiers) -> Result<()> {
    let n = match tiers {
        Tiers::Subtotal { tiers } => {
            for t in tiers {
                non_negative_money("tier threshold", &t.min)?;
                validate_reward(&t.reward)?;
            }
            tiers.len()
        }
        Tiers::Quantity { tiers } => {
            for t in tiers {
                validate_reward(&t.reward)?;
            }
            tiers.len()
        }
        Tiers::ShippingAmount { tiers } => {
            for t in tiers {
                non_negative_money("tier threshold", &t.min)?;
                validate_reward(&t.reward)?;
            }
            tiers.len()
        }
    };
    if n == 0 || n > MAX_TIERS {
        return Err(Error::invalid(
            "tiers",
            format!("need 1 to {MAX_TIERS} tiers"),
        ));
    }
    Ok(())
}

fn filter_currencies(f: &LineFilter, out: &mut BTreeSet<Currency>) {
    match f {
        LineFilter::AllOf { filters } | LineFilter::AnyOf { filters } => {
            filters.iter().for_each(|f| filter_currencies(f, out));
        }
        LineFilter::UnitPrice { amount, .. } => {
            out.insert(amount.currency());
        }
        _ => {}
    }
}

fn condition_currencies(c: &Condition, out: &mut BTreeSet<Currency>) {
    match c {
        Condition::AllOf { conditions } | Condition::AnyOf { conditions } => {
            conditions.iter().for_each(|c| condition_currencies(c, out));
        }
        Condition::Not { condition } => condition_currencies(condition, out),
        Condition::Subtotal { amount, .. }
        | Condition::DiscountedSubtotal { amount, .. }
        | Condition::SubtotalWithTax { amount, .. } => {
            out.insert(amount.currency());
        }
        Condition::Lines { filter, .. } | Condition::LineQuantity { filter, .. } => {
            filter_currencies(filter, out)
        }
        _ => {}
    }
}

fn reward_currency(r: &Reward, out: &mut BTreeSet<Currency>) {
    if let Reward::Amount { amount } | Reward::AmountEach { amount } = r {
        out.insert(amount.currency());
    }
}

fn action_currencies(a: &Action, out: &mut BTreeSet<Currency>) {
    let mut add = |m: &Money| {
        out.insert(m.currency());
    };
    match a {
        Action::PercentOffItems {
            target,
            max_discount,
            ..
        } => {
            if let Some(m) = max_discount {
                add(m);
            }
            filter_currencies(target, out);
        }
        Action::AmountOffItems { target, amount, .. } => {
            add(amount);
            filter_currencies(target, out);
        }
        Action::PercentOffOrder { max_discount, .. } => {
            if let Some(m) = max_discount {
                add(m);
            }
        }
        Action::AmountOffOrder { amount } => add(amount),
        Action::FixedPrice { target, price, .. } => {
            add(price);
            filter_currencies(target, out);
        }
        Action::Bundle { items, price, .. } => {
            add(price);
            items.iter().for_each(|i| filter_currencies(&i.filter, out));
        }
        Action::BuyXGetY { buy, get, .. } => {
            filter_currencies(buy, out);
            filter_currencies(get, out);
        }
        Action::FixedTotal { target, price } => {
            add(price);
            filter_currencies(target, out);
        }
        Action::QuantityGroup { target, price, .. } => {
            if let GroupPrice::Fixed { amount } | GroupPrice::AmountOffEach { amount } = price {
                add(amount);
            }
            filter_currencies(target, out);
        }
        Action::FirstAndAdditional {
            target,
            first,
            additional,
            ..
        } => {
            reward_currency(first, out);
            reward_currency(additional, out);
            filter_currencies(target, out);
        }
        Action::Tiered { target, tiers } | Action::TieredShipping { target, tiers, .. } => {
            filter_currencies(target, out);
            match tiers {
                Tiers::Subtotal { tiers } | Tiers::ShippingAmount { tiers } => {
                    for t in tiers {
                        out.insert(t.min.currency());
                        reward_currency(&t.reward, out);
                    }
                }
                Tiers::Quantity { tiers } => {
                    tiers.iter().for_each(|t| reward_currency(&t.reward, out));
                }
            }
        }
        Action::Shipping { reward, .. } => reward_currency(reward, out),
        Action::Gift { .. } | Action::Custom { .. } => {}
    }
}

/// The version of a promotion's JSON form. Additions that old readers can
/// ignore or that have defaults (a new optional field, a new action or
/// condition type) keep the version; a change that would make a stored
/// promotion read differently bumps it, with a note in the CHANGELOG.
pub const PROMOTION_JSON_VERSION: u32 = 1;

/// The JSON Schema (draft 2020-12) of a promotion's JSON form, generated
/// from the types, so an admin UI can validate a promotion before saving
/// it. Its `$id` carries [`PROMOTION_JSON_VERSION`]. The schema checks the
/// shape (field names, types, enums, required fields); the limits and
/// cross-field rules of [`Promotion::validate`] still apply on save. The
/// published copy is `schemas/promotion.schema.json`; a test keeps the two
/// equal.
pub fn promotion_json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Promotion);
    schema.insert(
        "$id".into(),
        format!("urn:cartwright:promotion:v{PROMOTION_JSON_VERSION}").into(),
    );
    schema.into()
}

/// A coupon code for a coded promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Coupon {
    /// The normalized code (see [`normalize_code`]).
    pub code: String,
    /// The promotion it unlocks.
    pub promotion_id: PromotionId,
    /// Orders that may use this code, in all (`Some(1)`: single use). One
    /// order uses the code once, however many promotions it unlocks.
    #[serde(default)]
    pub max_uses: Option<u64>,
    /// Further promotions the same code unlocks, beside `promotion_id`
    /// ("WELCOME" gives 10 % off and free shipping): each is considered,
    /// applied or rejected with its own reason, as if it had its own code.
    /// At most [`MAX_PROMOTIONS_PER_CODE`] in all, no repeats; each must
    /// be coded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_promotions: Vec<PromotionId>,
}

/// Most promotions one coupon code unlocks ([`Coupon::more_promotions`]
/// plus its `promotion_id`).
pub const MAX_PROMOTIONS_PER_CODE: usize = 20;

impl Coupon {
    /// A code for `promotion`, normalized; `max_uses` of `Some(1)` makes it single use.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed code (see
    /// [`normalize_code`](crate::cart::normalize_code)).
    pub fn new(code: &str, promotion_id: PromotionId, max_uses: Option<u64>) -> Result<Self> {
        Self::new_with(
            code,
            promotion_id,
            max_uses,
            &crate::cart::CodePolicy::default(),
        )
    }

    /// A code for `promotion`, normalized under `policy` (see
    /// [`CodePolicy`](crate::cart::CodePolicy)).
    ///
    /// # Errors
    /// As [`Coupon::new`].
    pub fn new_with(
        code: &str,
        promotion_id: PromotionId,
        max_uses: Option<u64>,
        policy: &crate::cart::CodePolicy,
    ) -> Result<Self> {
        if max_uses == Some(0) {
            return Err(Error::invalid("coupon max_uses", "must be at least 1"));
        }
        Ok(Self {
            code: crate::cart::normalize_code_with(code, policy)?,
            promotion_id,
            max_uses,
            more_promotions: Vec::new(),
        })
    }

    /// One code for several promotions: the first of `promotions` is
    /// [`promotion_id`](Self::promotion_id), the rest
    /// [`more_promotions`](Self::more_promotions). The code's `max_uses`
    /// counts orders, not promotions.
    ///
    /// # Errors
    /// As [`Coupon::new`]; [`Error::Invalid`] for no promotion, a promotion
    /// named twice (naming it), or more than [`MAX_PROMOTIONS_PER_CODE`].
    pub fn for_promotions(
        code: &str,
        promotions: &[PromotionId],
        max_uses: Option<u64>,
        policy: &crate::cart::CodePolicy,
    ) -> Result<Self> {
        let Some((first, rest)) = promotions.split_first() else {
            return Err(Error::invalid(
                "coupon promotions",
                "name at least one promotion",
            ));
        };
        let mut coupon = Self::new_with(code, *first, max_uses, policy)?;
        coupon.more_promotions = rest.to_vec();
        coupon.validate()?;
        Ok(coupon)
    }

    /// Every promotion the code unlocks: `promotion_id`, then
    /// `more_promotions`.
    pub fn promotions(&self) -> impl Iterator<Item = PromotionId> + '_ {
        std::iter::once(self.promotion_id).chain(self.more_promotions.iter().copied())
    }

    /// Checks the promotion list (a coupon read from JSON or built by hand).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past [`MAX_PROMOTIONS_PER_CODE`];
    /// [`Error::Invalid`] for a promotion named twice, naming it.
    pub fn validate(&self) -> Result<()> {
        let count = self.more_promotions.len().saturating_add(1);
        if count > MAX_PROMOTIONS_PER_CODE {
            return Err(Error::LimitExceeded {
                what: "promotions per coupon code",
                max: MAX_PROMOTIONS_PER_CODE as u64,
            });
        }
        let mut seen = BTreeSet::new();
        for id in self.promotions() {
            if !seen.insert(id) {
                return Err(Error::invalid(
                    "coupon promotions",
                    format!("{id} is named twice"),
                ));
            }
        }
        Ok(())
    }
}

/// Alphabet of generated codes: Crockford's base 32 (no I, L, O, U), so codes
/// read aloud or typed by hand are not confused.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random characters in a generated code: 16 × 5 = 80 bits.
pub const GENERATED_CODE_CHARS: usize = 16;
/// Most codes one [`generate_codes`] call makes.
pub const MAX_GENERATED_CODES: usize = 100_000;

/// Makes `count` distinct, unguessable codes: `prefix` (normalized, may be
/// empty) followed by 16 characters from the operating system's random
/// source (80 bits each), grouped by dashes. Not part of the pure pricing
/// core: it draws randomness.
///
/// # Errors
/// [`Error::Invalid`] for a malformed prefix; [`Error::LimitExceeded`] for more
/// codes than allowed at once.
pub fn generate_codes(prefix: &str, count: usize) -> Result<Vec<String>> {
    if count == 0 || count > MAX_GENERATED_CODES {
        return Err(Error::invalid(
            "code count",
            format!("must be 1 to {MAX_GENERATED_CODES}"),
        ));
    }
    let prefix = if prefix.trim().is_empty() {
        String::new()
    } else {
        let p = normalize_code(prefix)?;
        if p.len() + GENERATED_CODE_CHARS + 4 > crate::cart::MAX_CODE_LEN {
            return Err(Error::invalid("code prefix", "is too long"));
        }
        format!("{p}-")
    };
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        // Two v4 UUIDs give 244 random bits from the OS; 80 are used.
        let bytes = uuid::Uuid::new_v4().as_u128() ^ uuid::Uuid::new_v4().as_u128().rotate_left(64);
        let mut code = prefix.clone();
        for i in 0..GENERATED_CODE_CHARS {
            if i > 0 && i % 4 == 0 {
                code.push('-');
            }
            let index = usize::try_from((bytes >> (i * 5)) & 31).unwrap_or(0);
            code.push(char::from(*CODE_ALPHABET.get(index).unwrap_or(&b'0')));
        }
        if seen.insert(code.clone()) {
            out.push(code);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_distinct_normalized_and_long() {
        let codes = generate_codes("spring", 2_000).unwrap();
        let unique: BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 2_000);
        for c in &codes {
            assert!(c.starts_with("SPRING-"));
            assert_eq!(normalize_code(c).unwrap(), *c);
            assert_eq!(c.len(), "SPRING-".len() + GENERATED_CODE_CHARS + 3);
        }
        assert!(generate_codes("", 0).is_err());
        assert!(generate_codes("bad code", 1).is_err());
    }

    #[test]
    fn stacking_needs_both_sides_to_accept() {
        let a = Stacking {
            group: "items".into(),
            combines_with: Some(vec!["shipping".into()]),
            ..Stacking::default()
        };
        let b = Stacking {
            group: "shipping".into(),
            ..Stacking::default()
        };
        let c = Stacking {
            group: "items".into(),
            ..Stacking::default()
        };
        assert!(a.combines(&b));
        assert!(!a.combines(&c), "a does not accept its own group");
        assert!(b.combines(&c));
        let x = Stacking {
            exclusive: true,
            ..Stacking::default()
        };
        assert!(!x.combines(&b));
    }

    #[test]
    fn validation_rejects_bad_promotions() {
        let ok = Promotion::new(
            "ten",
            Action::PercentOffOrder {
                percent: Decimal::TEN,
                max_discount: None,
            },
        );
        ok.validate().unwrap();
        let mut bad = ok.clone();
        bad.action = Action::PercentOffOrder {
            percent: Decimal::new(1001, 1),
            max_discount: None,
        };
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.conditions.push(Condition::Subtotal {
            op: Op::In,
            amount: Money::from_minor(100, Currency::USD),
        });
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.conditions.push(Condition::Currency {
            op: Op::Eq,
            currencies: vec![Currency::USD, Currency::EUR],
        });
        assert!(bad.validate().is_err());
        let mut bad = ok;
        bad.starts_at = Some(Utc::now());
        bad.ends_at = bad.starts_at;
        assert!(bad.validate().is_err());
    }
}
