//! The pure pricing core: `price(cart, context) -> PricedCart`.
//!
//! Architecture invariant: **pricing is pure.** No I/O, no async, no clock
//! reads (the time is an input), no global state, no randomness: the same
//! inputs give the same output, bit for bit. It knows nothing of storage or
//! payments. Everything it needs — catalog entries, price lists, promotions,
//! coupons, usage so far, the customer, the shipping and tax plugins, the
//! time — arrives in a [`PricingContext`].
//!
//! The pipeline:
//!
//! 1. **Unit prices**: the variant's price in the cart currency, then the
//!    [`PriceBook`]'s lists (customer groups, windows, quantity tiers; a sale
//!    never raises a price). Each line says where its price came from.
//! 2. **Line promotions**: the [`PromotionSet`]'s index yields the
//!    promotions that could apply; each is checked (window, currency,
//!    limits, conditions) and the [`StackingPolicy`] applies them in
//!    priority order, each on what earlier ones left. All arithmetic is in
//!    integer minor units; splits use largest remainder.
//! 3. **Shipping**: rates for the discounted merchandise, then shipping
//!    promotions (which must combine with the line promotions applied).
//! 4. **Tax** on the discounted amounts, by the [`TaxCalculator`].
//! 5. **Totals**, every promotion's [`PromotionOutcome`] and [`Hint`]s.
//!
//! Stores and the [`Engine`](crate::Engine) gather the context; the core can
//! also be called directly:
//!
//! ```
//! use std::collections::HashMap;
//! use cartwright::cart::Cart;
//! use cartwright::catalog::{CatalogEntry, NewProduct, NewVariant, Product, Status};
//! use cartwright::money::{Currency, Money};
//! use cartwright::pricing::*;
//! use cartwright::shipping::FlatRateShipping;
//! use cartwright::tax::FlatRateTax;
//! use chrono::Utc;
//!
//! # fn main() -> cartwright::Result<()> {
//! let usd = |s: &str| Money::parse(s, Currency::USD);
//! let product = Product::new(
//!     NewProduct::new("Mug")
//!         .status(Status::Active)
//!         .variant(NewVariant::shipped("MUG").price(usd("12.00")?).status(Status::Active)),
//! )?;
//! let variant = product.variants()[0].id();
//! let entry = CatalogEntry::of(&product, variant).expect("the product's variant");
//! let catalog = HashMap::from([(variant, entry)]);
//!
//! // Buy 2, get 1 free (the cheapest), from a 30.00 subtotal.
//! let promotion = Promotion::new(
//!     "3 for 2",
//!     Action::BuyXGetY {
//!         buy: LineFilter::Any,
//!         buy_quantity: 2,
//!         get: LineFilter::Any,
//!         get_quantity: 1,
//!         percent: 100.into(),
//!         max_applications: None,
//!     },
//! )
//! .when(Condition::Subtotal { op: Op::Gte, amount: usd("30.00")? });
//! let set = PromotionSet::new(vec![promotion.clone()], RuleRegistry::new(), PromotionSettings::default())?;
//!
//! let now = Utc::now();
//! let mut cart = Cart::new(Currency::USD, None, now);
//! cart.add_line(variant, 3)?;
//! let (shipping, tax) = (FlatRateShipping::new(), FlatRateTax::none());
//! let mut ctx = PricingContext::new(&catalog, &shipping, &tax, now);
//! ctx.promotions = &set;
//! let priced = price(&cart, &ctx)?;
//! assert_eq!(priced.total, usd("24.00")?);
//! assert!(priced.outcome(promotion.id).is_some_and(|o| o.applied()));
//!
//! // Two mugs (24.00) miss the threshold, and the explanation says by how much.
//! cart.set_quantity(cart.lines()[0].id, 2)?;
//! let priced = price(&cart, &ctx)?;
//! assert_eq!(priced.hints[0].missing, usd("6.00")?);
//! # Ok(())
//! # }
//! ```

mod apply;
mod explain;
#[cfg(test)]
mod fixtures;
mod price_list;
mod promotion;
mod rule;
pub(crate) mod steps;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cart::Cart;
use crate::catalog::{CatalogEntry, Sku};
use crate::error::{Error, Result};
use crate::id::{CartId, LineId, PromotionId, VariantId};
use crate::inventory::UsageClaim;
use crate::money::{Currency, Money};
use crate::shipping::{ShippingInput, ShippingRate, ShippingRates};
use crate::tax::{TaxCalculator, TaxInput, TaxLine, TaxableLine};

pub use apply::{
    Allocation, Compounding, MAX_BEST_SEARCH, MAX_CANDIDATES, MAX_COMBINATIONS, PromotionSet,
    PromotionSettings, Remainder, StackingPolicy,
};
pub use explain::{Comparison, Hint, LineAmount, Outcome, PromotionOutcome, Rejection};
pub use price_list::{
    ListPrice, MAX_PRICES_PER_LIST, PriceBook, PriceList, PriceListKind, PriceSource,
};
pub use promotion::{
    Action, AmountPer, BudgetPolicy, BundleItem, Condition, Coupon, CurrencyTerms,
    GENERATED_CODE_CHARS, GroupPrice, GroupTier, Limits, LineFilter, MAX_BUNDLE_ITEMS,
    MAX_CONDITIONS, MAX_CURRENCY_TERMS, MAX_DEPTH, MAX_GENERATED_CODES, MAX_NAME_LEN,
    MAX_PERCENT_SCALE, MAX_PROMOTION_QUANTITY, MAX_PROMOTIONS_PER_CODE, MAX_TIERS, MAX_VALUES, Op,
    PROMOTION_JSON_VERSION, Promotion, QuantityTier, Reward, RewardUnits, Stacking, SubtotalTier,
    Tiers, UnitCap, UnitOrder, WindowState, generate_codes, promotion_json_schema,
};
pub use rule::{CustomerFacts, PricingRule, RuleCart, RuleLine, RuleRegistry, Verdict};

use apply::{Env, Run, WorkLine};

static EMPTY_SET: LazyLock<PromotionSet> = LazyLock::new(PromotionSet::default);
static EMPTY_BOOK: LazyLock<PriceBook> = LazyLock::new(PriceBook::default);
static EMPTY_USAGE: LazyLock<HashMap<String, u64>> = LazyLock::new(HashMap::new);
static GUEST: LazyLock<CustomerFacts> = LazyLock::new(CustomerFacts::default);
static ALL_AUTOMATIC: AutomaticPromotions = AutomaticPromotions::All;

/// Everything pricing may look at besides the cart.
#[non_exhaustive]
pub struct PricingContext<'a> {
    /// The catalog entry of every variant in the cart (and of every gift).
    pub catalog: &'a HashMap<VariantId, CatalogEntry>,
    /// Where shipping rates come from.
    pub shipping: &'a dyn ShippingRates,
    /// How tax is computed.
    pub tax: &'a dyn TaxCalculator,
    /// The moment to price at (for validity windows).
    pub now: DateTime<Utc>,
    /// The promotions.
    pub promotions: &'a PromotionSet,
    /// The price lists.
    pub price_book: &'a PriceBook,
    /// Who is buying.
    pub customer: &'a CustomerFacts,
    /// The coupons the cart's codes name (codes without one are unknown).
    pub coupons: &'a [Coupon],
    /// How much of each limited counter is used so far (absent: none).
    pub usage: &'a HashMap<String, u64>,
    /// Which automatic promotions (those without a code) take part: all
    /// (the default), none (codes only), or only those listed.
    pub automatic: &'a AutomaticPromotions,
    /// The cart's sales channel, when it is in one: only its price lists
    /// apply (all, when it names none).
    pub channel: Option<&'a crate::channel::SalesChannel>,
    /// Who buys, as tax sees them (passed to the tax calculator).
    pub tax_customer: Option<&'a crate::tax::TaxCustomer>,
    /// Where goods ship from (passed to the tax calculator; a plan whose
    /// units all leave one location with an address names that instead).
    pub ship_from: Option<&'a crate::customer::Address>,
    /// Where each unit ships from (the engine's
    /// [`FulfilmentRouter`](crate::inventory::FulfilmentRouter) decides):
    /// each shipment's units from one location are a parcel of their own,
    /// priced from there ([`PricedCart::fulfilment`]). `None` prices each
    /// shipment as one parcel.
    pub fulfilment: Option<&'a crate::inventory::FulfilmentPlan>,
}

/// Whether a cart qualifies for one promotion (or what a code brought).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Eligibility {
    /// The promotion (none for an unknown code).
    pub promotion_id: Option<PromotionId>,
    /// Its name (the code, for an unknown one).
    pub name: String,
    /// The code that brought it in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why it does not qualify; `None` when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Rejection>,
}

impl Eligibility {
    /// Whether the cart qualifies.
    pub fn eligible(&self) -> bool {
        self.reason.is_none()
    }

    /// The eligibility of every promotion a pricing considered: one that
    /// applied, or that qualified but gave nothing, lost to a better
    /// combination or could not combine, is eligible; the rest carry their
    /// reason (window, currency, limits, conditions, codes).
    pub fn of(priced: &PricedCart) -> Vec<Eligibility> {
        priced
            .promotions
            .iter()
            .map(|o| Eligibility {
                promotion_id: o.promotion_id,
                name: o.name.clone(),
                code: o.code.clone(),
                reason: o.rejection().cloned().filter(|r| {
                    !matches!(
                        r,
                        Rejection::NothingToDiscount
                            | Rejection::NotBest
                            | Rejection::NotCombinable { .. }
                    )
                }),
            })
            .collect()
    }
}

/// Which automatic promotions — those that need no code — take part in a
/// pricing. Promotions brought in by the cart's codes always do.
///
/// For "what would this cart cost with only these offers" in a back
/// office, or a storefront that shows codes only. Checkout prices with
/// [`AutomaticPromotions::All`]; a total shown under another mode is
/// guarded at checkout by `CheckoutRequest::expected_total`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AutomaticPromotions {
    /// Every automatic promotion that qualifies.
    #[default]
    All,
    /// None: only promotions the cart's codes bring in.
    None,
    /// Only these automatic promotions (at most [`MAX_VALUES`]).
    Only {
        /// The promotions allowed.
        ids: Vec<PromotionId>,
    },
}

impl AutomaticPromotions {
    /// Whether the automatic promotion `id` takes part.
    pub fn allows(&self, id: PromotionId) -> bool {
        match self {
            Self::All => true,
            Self::None => false,
            Self::Only { ids } => ids.contains(&id),
        }
    }
}

impl std::fmt::Debug for PricingContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PricingContext")
            .field("variants", &self.catalog.len())
            .field("now", &self.now)
            .field("promotions", &self.promotions.len())
            .field("customer", &self.customer)
            .field("coupons", &self.coupons.len())
            .finish_non_exhaustive()
    }
}

impl<'a> PricingContext<'a> {
    /// A context with no promotions, price lists, coupons or usage, for a guest.
    pub fn new(
        catalog: &'a HashMap<VariantId, CatalogEntry>,
        shipping: &'a dyn ShippingRates,
        tax: &'a dyn TaxCalculator,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            catalog,
            shipping,
            tax,
            now,
            promotions: &EMPTY_SET,
            price_book: &EMPTY_BOOK,
            customer: &GUEST,
            coupons: &[],
            usage: &EMPTY_USAGE,
            automatic: &ALL_AUTOMATIC,
            channel: None,
            tax_customer: None,
            ship_from: None,
            fulfilment: None,
        }
    }
}

/// A discount applied to a line (or to shipping), and what made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Adjustment {
    /// The promotion that made it.
    pub promotion_id: Option<PromotionId>,
    /// The coupon code that brought the promotion in.
    #[serde(default)]
    pub code: Option<String>,
    /// Shown to the customer (the promotion's name).
    pub label: Arc<str>,
    /// The amount taken off (positive for a discount).
    pub amount: Money,
}

impl Adjustment {
    /// This adjustment's share of each of `quantity` units: largest
    /// remainder with equal weights, so unit *i* always gets share *i* and
    /// the shares sum exactly to the amount.
    ///
    /// # Errors
    /// [`Error::Overflow`] for a quantity beyond range.
    pub fn per_unit(&self, quantity: u32) -> Result<Vec<Money>> {
        Ok(crate::money::unit_shares(self.amount, quantity)?)
    }
}

/// One priced line, frozen into the order at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PricedLine {
    /// The cart line (gift lines get an id derived from their promotion).
    pub line_id: LineId,
    /// The variant.
    pub variant_id: VariantId,
    /// Its SKU at pricing time.
    pub sku: Sku,
    /// Its display name at pricing time.
    pub name: Arc<str>,
    /// Units.
    pub quantity: u32,
    /// The catalog price of one unit, before price lists.
    pub list_price: Money,
    /// Price of one unit, after price lists.
    pub unit_price: Money,
    /// Where `unit_price` came from.
    #[serde(default = "catalog_source")]
    pub price_source: PriceSource,
    /// `unit_price × quantity`.
    pub subtotal: Money,
    /// Discounts on this line, in the order they applied.
    pub adjustments: Vec<Adjustment>,
    /// Sum of `adjustments`.
    pub discount: Money,
    /// Tax on this line (included in `subtotal` when prices include tax).
    pub tax: Money,
    /// What the customer pays for the line: `subtotal - discount`, plus
    /// `tax` when prices exclude tax.
    pub total: Money,
    /// Whether the units ship.
    pub requires_shipping: bool,
    /// Weight of all units, in grams.
    pub weight_grams: u64,
    /// The promotion that added this line as a free gift.
    #[serde(default)]
    pub gift_of: Option<PromotionId>,
    /// The cart line's metadata (see
    /// [`LineItem::metadata`](crate::cart::LineItem::metadata)).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, String>,
}

fn catalog_source() -> PriceSource {
    PriceSource::Catalog
}

/// The chosen shipping method and its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShippingCharge {
    /// The method's code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// The method's price.
    pub amount: Money,
    /// Shipping promotions' discounts.
    #[serde(default)]
    pub adjustments: Vec<Adjustment>,
    /// Sum of `adjustments`.
    pub discount: Money,
    /// Tax on the discounted price.
    pub tax: Money,
    /// What the customer pays for shipping: `amount - discount`, plus `tax`
    /// when prices exclude tax.
    pub total: Money,
}

/// A cart with every amount worked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PricedCart {
    /// The cart priced.
    pub cart_id: CartId,
    /// The cart version priced; checkout refuses to place an order if the cart changed since.
    pub cart_version: u64,
    /// The currency of every amount.
    pub currency: Currency,
    /// The lines, in cart order, then gift lines.
    pub lines: Vec<PricedLine>,
    /// Sum of the subtotals of every line, gift lines included (a gift's
    /// value is here and again in `discount_total`, so it nets to zero).
    pub subtotal: Money,
    /// Sum of every line's discount (gift lines included) and the shipping
    /// discount.
    pub discount_total: Money,
    /// The chosen shipping of the lines in no shipping group (all lines,
    /// when the cart has no groups), if a method is chosen and one of them
    /// ships.
    pub shipping: Option<ShippingCharge>,
    /// Every shipping method offered for those lines.
    pub shipping_options: Vec<ShippingRate>,
    /// Each shipping group's shipment (see
    /// [`Cart::set_shipping_group`](crate::cart::Cart::set_shipping_group)),
    /// in the cart's group order. Totals include every group's charge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shipping_groups: Vec<GroupShipping>,
    /// Tax on lines and shipping.
    pub tax_total: Money,
    /// Whether prices (and so `subtotal`) include tax.
    #[serde(default)]
    pub prices_include_tax: bool,
    /// Tax by name, for the receipt.
    pub tax_lines: Vec<TaxLine>,
    /// `subtotal + shipping - discount_total`, plus `tax_total` when prices
    /// exclude tax (`shipping` being the method's price before its
    /// discount); never negative. Always the sum of the lines' and
    /// shipping's totals.
    pub total: Money,
    /// Whether any line ships (and so a shipping address and method are needed).
    pub requires_shipping: bool,
    /// The limited counters this pricing consumes if the cart is checked out
    /// (a coupon's uses, a promotion's uses and budget); checkout holds them
    /// atomically with the stock.
    pub usage_claims: Vec<UsageClaim>,
    /// Every promotion considered and every code entered: applied (with
    /// amounts per line) or not, with the reason.
    #[serde(default)]
    pub promotions: Vec<PromotionOutcome>,
    /// How the customer could unlock more.
    #[serde(default)]
    pub hints: Vec<Hint>,
    /// Set when the tax service could not be reached and the shop's
    /// fallback tables priced the tax instead: why (see
    /// [`EngineBuilder::tax_fallback`](crate::EngineBuilder::tax_fallback)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_fallback: Option<String>,
    /// Set when a carrier could not be reached and only the table rates
    /// were offered: why (see
    /// [`EngineBuilder::carrier_fallback`](crate::EngineBuilder::carrier_fallback)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_fallback: Option<String>,
    /// With fulfilment routing, the parcels each shipment is made of: the
    /// units leaving each location and what the chosen method costs from
    /// there. A shipment's charge is the sum of its parcels'. Empty without
    /// routing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fulfilment: Vec<Parcel>,
}

/// Units of one shipment leaving one location, priced as a parcel of
/// their own (see [`PricingContext::fulfilment`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Parcel {
    /// The shipping group it belongs to (`None`: the lines in no group).
    pub group: Option<String>,
    /// Where it leaves from (`None` for units no location holds, such as
    /// untracked ones, when the shipment has no routed units).
    pub location_id: Option<crate::id::LocationId>,
    /// Its units, per cart line.
    pub units: Vec<ParcelUnits>,
    /// The chosen method's price for this parcel, before shipping
    /// discounts (when a method is chosen).
    pub price: Option<Money>,
}

/// Units of one cart line in a [`Parcel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParcelUnits {
    /// The cart line (the order line, once placed).
    pub line_id: LineId,
    /// How many of its units.
    pub quantity: u32,
}

/// A shipping group's shipment, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupShipping {
    /// The group's name.
    pub group: String,
    /// Its lines.
    pub lines: Vec<LineId>,
    /// The methods offered for its lines.
    pub options: Vec<ShippingRate>,
    /// Its charge, if a method is chosen and one of its lines ships.
    pub charge: Option<ShippingCharge>,
}

impl PricedCart {
    /// Every shipping charge: the cart's own, then each group's.
    pub fn shipping_charges(&self) -> impl Iterator<Item = &ShippingCharge> {
        self.shipping.iter().chain(
            self.shipping_groups
                .iter()
                .filter_map(|g| g.charge.as_ref()),
        )
    }

    /// The outcome for a promotion.
    pub fn outcome(&self, promotion: PromotionId) -> Option<&PromotionOutcome> {
        self.promotions
            .iter()
            .find(|o| o.promotion_id == Some(promotion))
    }

    /// The outcome for a coupon code (as entered on the cart, normalized):
    /// the first of [`code_outcomes`](Self::code_outcomes).
    pub fn code_outcome(&self, code: &str) -> Option<&PromotionOutcome> {
        self.promotions
            .iter()
            .find(|o| o.code.as_deref() == Some(code))
    }

    /// Every outcome for a coupon code, one per promotion it unlocks (see
    /// [`Coupon::more_promotions`]); one outcome with no promotion for an
    /// unknown code.
    pub fn code_outcomes<'s>(
        &'s self,
        code: &'s str,
    ) -> impl Iterator<Item = &'s PromotionOutcome> + 's {
        self.promotions
            .iter()
            .filter(move |o| o.code.as_deref() == Some(code))
    }
}

/// Most times pricing repeats because a limited promotion turned out to be
/// used up (see [`crate::Engine`]); pricing itself never loops.
pub const MAX_USAGE_PASSES: usize = 3;

/// Prices `cart` in `ctx`.
///
/// Fails if a variant is missing from the catalog, cannot be bought or has no
/// price in the cart's currency, if the chosen shipping method is not offered,
/// if a plugin misbehaves (wrong currency, wrong number of tax lines), or on
/// overflow.
///
/// # Errors
/// [`Error::ShippingUnavailable`] for a method that does not serve the cart;
/// [`Error::NoPrice`] for a line without a price in the cart's currency;
/// [`Error::NotFound`] for a line whose catalog entry is missing;
/// [`Error::Overflow`] for amounts beyond range; errors of the tax and shipping
/// plugins.
pub fn price(cart: &Cart, ctx: &PricingContext<'_>) -> Result<PricedCart> {
    let currency = cart.currency();
    let promotions = ctx.promotions;

    // 1. Unit prices.
    let (work, list_prices) = steps::unit_prices(cart, ctx)?;
    let subtotal_minor = work
        .iter()
        .try_fold(0_i128, |acc, l| acc.checked_add(l.subtotal))
        .ok_or_else(|| Error::Overflow("subtotal"))?;
    let mut env = steps::environment(cart, ctx, &work, subtotal_minor);
    if promotions.needs_gross() {
        env.gross = Some(steps::gross_before_promotions(cart, ctx, &env)?);
    }

    // 2. Line promotions, then the priced lines (gifts last) with their
    // adjustments. `net` is each line's amount after discounts, in minor units.
    let mut run = Run::default();
    let mut remaining: Vec<i128> = work.iter().map(|l| l.subtotal).collect();
    let (line_candidates, shipping_candidates) = promotions.select(
        &env,
        cart.coupon_codes(),
        ctx.coupons,
        ctx.automatic,
        &mut run,
    )?;
    promotions.apply(
        &env,
        line_candidates,
        &mut remaining,
        &mut [],
        &[],
        &mut run,
    )?;
    let (mut lines, bought_discount) =
        steps::discounted_lines(&env, list_prices, &remaining, &run)?;
    let mut net = remaining.clone();
    let bought = lines.len();
    steps::gift_lines(&env, promotions, &run, &mut lines, &mut net)?;
    steps::attach_adjustments(&env, promotions, &run, &mut lines)?;

    // 3. Shipping, on the discounted merchandise.
    let requires_shipping = lines.iter().any(|l| l.requires_shipping);
    let plan = steps::plan_shipments(cart, &lines, requires_shipping);
    env.shipments = plan.iter().filter_map(|s| s.charged()).collect();
    let mut shipping = if requires_shipping {
        steps::shipping(
            cart,
            ctx,
            &env,
            &plan,
            (&lines, &net, &remaining),
            shipping_candidates,
            &mut run,
        )?
    } else {
        steps::Shipping::default()
    };

    // 4. Tax, on discounted amounts.
    let charges: Vec<&mut ShippingCharge> = shipping
        .charge
        .iter_mut()
        .chain(shipping.groups.iter_mut().filter_map(|g| g.charge.as_mut()))
        .collect();
    let taxed = steps::tax(cart, ctx, &env, &mut lines, &net, charges)?;

    // 5. Totals, summed in minor units.
    let mut shipping_discount = 0_i128;
    for c in shipping
        .charge
        .iter()
        .chain(shipping.groups.iter().filter_map(|g| g.charge.as_ref()))
    {
        shipping_discount = shipping_discount
            .checked_add(c.discount.to_minor()?)
            .ok_or_else(|| Error::Overflow("discount total"))?;
    }
    // Gift lines count in both: their value is in the subtotal and again,
    // as their discount, in the discount total, so they net to zero.
    // Gift lines come after the `bought` ones.
    let gifts = lines
        .get(bought..)
        .unwrap_or_default()
        .iter()
        .try_fold(0_i128, |acc, l| {
            acc.checked_add(l.subtotal.to_minor().ok()?)
        })
        .ok_or_else(|| Error::Overflow("subtotal"))?;
    let subtotal = env.money(
        subtotal_minor
            .checked_add(gifts)
            .ok_or_else(|| Error::Overflow("subtotal"))?,
    )?;
    let tax_total = env.money(taxed.tax)?;
    let discount_total = env.money(
        bought_discount
            .checked_add(gifts)
            .and_then(|d| d.checked_add(shipping_discount))
            .ok_or_else(|| Error::Overflow("discount total"))?,
    )?;
    let total = env.money(taxed.total)?;
    if total.is_negative() {
        return Err(Error::invalid("total", "would be negative"));
    }
    let usage_claims = promotions.claims(&run.applied, ctx.coupons, ctx.customer)?;
    let (outcomes, mut hints) = explain(&run, &lines, promotions, &env)?;
    hints.append(&mut shipping.hints);
    Ok(PricedCart {
        cart_id: cart.id(),
        cart_version: cart.version(),
        currency,
        lines,
        subtotal,
        discount_total,
        shipping: shipping.charge,
        shipping_options: shipping.options,
        shipping_groups: shipping.groups,
        fulfilment: shipping.parcels,
        tax_total,
        prices_include_tax: taxed.inclusive,
        tax_lines: taxed.summary,
        total,
        requires_shipping,
        usage_claims,
        promotions: outcomes,
        hints,
        tax_fallback: None,
        shipping_fallback: None,
    })
}

fn adjustment(p: &Promotion, label: Arc<str>, code: Option<&String>, amount: Money) -> Adjustment {
    Adjustment {
        promotion_id: Some(p.id),
        code: code.cloned(),
        label,
        amount,
    }
}

/// A gift line's id: derived from the promotion and the variant, so the
/// same pricing always yields the same id.
fn gift_line_id(promotion: PromotionId, variant: VariantId) -> LineId {
    let mixed = promotion.as_uuid().as_u128() ^ variant.as_uuid().as_u128().rotate_left(17);
    LineId::from_uuid(uuid::Uuid::from_u128(mixed))
}

/// Every promotion's outcome, in priority order (unknown codes last), and hints.
fn explain(
    run: &Run,
    lines: &[PricedLine],
    promotions: &PromotionSet,
    env: &Env<'_>,
) -> Result<(Vec<PromotionOutcome>, Vec<Hint>)> {
    let mut out: Vec<(u32, PromotionOutcome)> =
        Vec::with_capacity(run.applied.len() + run.rejected.len());
    for a in &run.applied {
        let Some(p) = promotions.promotion(a.index) else {
            continue;
        };
        let mut per_line = Vec::with_capacity(a.effect.lines.len());
        for (i, amount) in &a.effect.lines {
            if let Some(l) = lines.get(*i) {
                per_line.push(LineAmount {
                    line_id: l.line_id,
                    amount: env.money(*amount)?,
                });
            }
        }
        let gift = a
            .effect
            .gift
            .as_ref()
            .map(|g| gift_line_id(p.id, g.variant_id));
        out.push((
            a.index,
            PromotionOutcome {
                promotion_id: Some(p.id),
                name: p.name.clone(),
                code: a.code.clone(),
                outcome: Outcome::Applied {
                    amount: env.money(a.effect.total())?,
                    lines: per_line,
                    shipping: env.money(a.effect.shipping_total())?,
                    gift,
                },
            },
        ));
    }
    for (index, code, reason) in &run.rejected {
        let p = index.and_then(|i| promotions.promotion(i));
        out.push((
            index.unwrap_or(u32::MAX),
            PromotionOutcome {
                promotion_id: p.map(|p| p.id),
                name: p.map_or_else(|| code.clone().unwrap_or_default(), |p| p.name.clone()),
                code: code.clone(),
                outcome: Outcome::NotApplied {
                    reason: reason.clone(),
                },
            },
        ));
    }
    // A code of a promotion already considered says what that entry did:
    // applied already (automatically or through the other code), or the
    // same reason it did not.
    for (index, code) in &run.riding {
        let own = out
            .iter()
            .find(|(i, o)| i == index && o.code.as_ref() != Some(code))
            .map(|(_, o)| o.clone());
        let Some(own) = own else {
            continue;
        };
        let outcome = match own.outcome {
            Outcome::Applied { .. } => Outcome::AlreadyApplied {
                by: own.code.clone(),
            },
            Outcome::AlreadyApplied { by } => Outcome::AlreadyApplied { by },
            Outcome::NotApplied { reason } => Outcome::NotApplied { reason },
        };
        out.push((
            *index,
            PromotionOutcome {
                code: Some(code.clone()),
                outcome,
                ..own
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.code.cmp(&b.1.code)));
    for (id, name, reason) in promotions.unusable() {
        out.push((
            u32::MAX,
            PromotionOutcome {
                promotion_id: Some(*id),
                name: name.clone(),
                code: None,
                outcome: Outcome::NotApplied {
                    reason: Rejection::Unevaluable {
                        problem: reason.clone(),
                    },
                },
            },
        ));
    }
    let hints = run
        .hints
        .iter()
        .filter_map(|(index, gap)| {
            let p = promotions.promotion(*index)?;
            Some(match gap {
                apply::Gap::Money(missing) => Hint {
                    promotion_id: Some(p.id),
                    missing: *missing,
                    missing_units: None,
                    message: format!("add {missing} more for {}", p.name),
                },
                apply::Gap::Units(units) => Hint {
                    promotion_id: Some(p.id),
                    missing: Money::zero(env.currency),
                    missing_units: Some(*units),
                    message: format!(
                        "add {units} more {} for {}",
                        if *units == 1 { "item" } else { "items" },
                        p.name
                    ),
                },
            })
        })
        .collect();
    Ok((out.into_iter().map(|(_, o)| o).collect(), hints))
}
