//! A promotion's actions: what it gives, and to which units.

use super::*;

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
