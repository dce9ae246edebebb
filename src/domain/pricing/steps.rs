//! The steps of [`price`](super::price), each a function with one job, in
//! the order the pipeline runs them. Amounts stay in integer minor units
//! and become [`Money`] once per field.
//!
//! This module knows nothing of how promotions are chosen or applied
//! (that is [`apply`](super::apply)); it turns their results into priced
//! lines, shipping and tax.

use super::*;
use crate::id::LocationId;
use crate::inventory::ReservationLine;

/// What promotions look at: the cart's facts, its work lines and their
/// index.
pub(super) fn environment<'a>(
    cart: &'a Cart,
    ctx: &PricingContext<'a>,
    work: &'a [WorkLine<'a>],
    subtotal: i128,
) -> Env<'a> {
    Env {
        currency: cart.currency(),
        lines: work,
        subtotal,
        items: cart.item_count(),
        shipping_method: cart.shipping_method(),
        customer: ctx.customer,
        channel: cart.channel_id(),
        draft_order: cart.quote().is_some(),
        now: ctx.now,
        catalog: ctx.catalog,
        usage: ctx.usage,
        rounding: ctx.promotions.settings().rounding,
        index: ctx.promotions.index_cart(work),
        shipping_groups: cart.shipping_groups(),
        shipments: Vec::new(),
        gross: None,
        allocation: ctx.promotions.settings().allocation,
        compounding: ctx.promotions.settings().compounding,
        remainder: ctx.promotions.settings().remainder,
    }
}

/// Each line's amount with its tax before promotions: the tax calculator
/// asked about the undiscounted lines, without shipping.
///
/// # Errors
/// As [`tax`]: a calculator that answers a different number of lines,
/// another currency, an inexact or negative tax, or fails.
pub(super) fn gross_before_promotions(
    cart: &Cart,
    ctx: &PricingContext<'_>,
    env: &Env<'_>,
) -> Result<Vec<i128>> {
    let lines = env
        .lines
        .iter()
        .map(|l| {
            Ok(TaxableLine {
                line_id: l.id,
                variant_id: l.entry.variant.id(),
                tax_class: l.entry.variant.tax_class(),
                quantity: l.quantity,
                amount: env.money(l.subtotal)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let breakdown = ctx.tax.tax(&TaxInput {
        currency: env.currency,
        lines,
        shipping: None,
        address: cart.shipping_address().or(cart.billing_address()),
        ship_from: ctx.ship_from,
        customer: ctx.tax_customer,
        channel: cart.channel_id(),
    })?;
    if breakdown.lines.len() != env.lines.len() {
        return Err(Error::invalid(
            "tax calculator",
            "returned a different number of lines than it was given",
        ));
    }
    env.lines
        .iter()
        .zip(&breakdown.lines)
        .map(|(l, tax)| {
            if breakdown.prices_include_tax {
                return Ok(l.subtotal);
            }
            l.subtotal
                .checked_add(checked_tax(*tax, env.currency)?)
                .ok_or_else(|| Error::Overflow("subtotal with tax"))
        })
        .collect()
}

/// Each line's catalog price and the price it sells at, with the source.
pub(super) type ListPrices = Vec<(Money, Money, PriceSource)>;

/// Step 1: every line's unit price (catalog, then price lists), its
/// subtotal and its rank in a canonical order by variant.
///
/// # Errors
/// [`Error::NotFound`] for a line whose catalog entry is missing, the
/// entry's reason it cannot be bought, [`Error::NoPrice`] for a variant
/// without a price in the cart's currency, [`Error::Overflow`].
pub(super) fn unit_prices<'a>(
    cart: &'a Cart,
    ctx: &PricingContext<'a>,
) -> Result<(Vec<WorkLine<'a>>, ListPrices)> {
    let currency = cart.currency();
    let mut work = Vec::with_capacity(cart.lines().len());
    let mut prices = Vec::with_capacity(cart.lines().len());
    for line in cart.lines() {
        let entry = ctx
            .catalog
            .get(&line.variant_id)
            .ok_or_else(|| Error::not_found("variant", line.variant_id))?;
        entry.purchasable()?;
        let (base, unit_price, source) = match &line.custom_price {
            // A price the embedding program set: no price list applies,
            // and the catalog price (if any) is the list price shown.
            Some(custom) => {
                if custom.unit.currency() != currency {
                    return Err(Error::CurrencyMismatch {
                        left: currency,
                        right: custom.unit.currency(),
                    });
                }
                let base = entry.variant.price(currency).unwrap_or(custom.unit);
                let source = PriceSource::Custom {
                    reason: custom.reason.clone(),
                };
                (base, custom.unit, source)
            }
            None => {
                let base = entry
                    .variant
                    .price(currency)
                    .ok_or_else(|| Error::NoPrice {
                        variant_id: line.variant_id,
                        currency,
                    })?;
                let (unit_price, source) = if ctx.price_book.is_empty() {
                    (base, PriceSource::Catalog)
                } else {
                    ctx.price_book.unit_price_in(
                        line.variant_id,
                        base,
                        line.quantity,
                        &ctx.customer.groups,
                        ctx.now,
                        ctx.channel,
                    )
                };
                (base, unit_price, source)
            }
        };
        let unit = unit_price.to_minor()?;
        let subtotal = unit
            .checked_mul(i128::from(line.quantity))
            .ok_or_else(|| Error::Overflow("line subtotal"))?;
        work.push(WorkLine {
            id: line.id,
            entry,
            quantity: line.quantity,
            unit,
            subtotal,
            rank: 0,
            metadata: &line.metadata,
            promotable: line.custom_price.as_ref().is_none_or(|c| c.promotions),
        });
        prices.push((base, unit_price, source));
    }
    rank_by_variant(&mut work)?;
    Ok((work, prices))
}

/// Gives each line its place in the order of variant ids, so that the
/// order of lines in the cart never changes a result.
fn rank_by_variant(work: &mut [WorkLine<'_>]) -> Result<()> {
    let mut order: Vec<(VariantId, usize)> = work
        .iter()
        .enumerate()
        .map(|(i, l)| (l.entry.variant.id(), i))
        .collect();
    // Lines of one variant differ in metadata (else they would be one
    // line): compared only on a tie.
    order.sort_unstable_by(|(va, a), (vb, b)| {
        va.cmp(vb).then_with(|| {
            let meta = |i: &usize| work.get(*i).map(|l| l.metadata);
            meta(a).cmp(&meta(b))
        })
    });
    for (rank, (_, i)) in order.into_iter().enumerate() {
        if let Some(l) = work.get_mut(i) {
            l.rank = u32::try_from(rank).map_err(|_| Error::Overflow("lines"))?;
        }
    }
    Ok(())
}

/// Step 2: the bought lines, priced after the line promotions (`remaining`
/// is what each line still costs), with room for their adjustments; and
/// the discount on them in minor units. Tax and totals come later.
///
/// # Errors
/// [`Error::Overflow`].
pub(super) fn discounted_lines(
    env: &Env<'_>,
    list_prices: ListPrices,
    remaining: &[i128],
    run: &Run,
) -> Result<(Vec<PricedLine>, i128)> {
    let zero = Money::zero(env.currency);
    let mut adjustment_counts = vec![0_usize; env.lines.len()];
    for applied in &run.applied {
        for (i, _) in &applied.effect.lines {
            if let Some(c) = adjustment_counts.get_mut(*i) {
                *c += 1;
            }
        }
    }
    let mut lines = Vec::with_capacity(env.lines.len());
    let mut discount_sum = 0_i128;
    for (((w, (base, unit_price, source)), left), count) in env
        .lines
        .iter()
        .zip(list_prices)
        .zip(remaining)
        .zip(adjustment_counts)
    {
        let entry = w.entry;
        discount_sum += w.subtotal - left;
        lines.push(PricedLine {
            line_id: w.id,
            variant_id: entry.variant.id(),
            sku: entry.variant.sku().clone(),
            name: entry.display_name(),
            quantity: w.quantity,
            list_price: base,
            unit_price,
            price_source: source,
            subtotal: env.money(w.subtotal)?,
            adjustments: Vec::with_capacity(count),
            discount: env.money(w.subtotal - left)?,
            tax: zero,
            total: env.money(*left)?,
            requires_shipping: entry.variant.requires_shipping(),
            weight_grams: line_weight(entry, w.quantity)?,
            gift_of: None,
            metadata: w.metadata.clone(),
        });
    }
    Ok((lines, discount_sum))
}

/// A line's weight: the variant's weight times the quantity, checked.
fn line_weight(entry: &CatalogEntry, quantity: u32) -> Result<u64> {
    u64::from(entry.variant.weight_grams())
        .checked_mul(u64::from(quantity))
        .ok_or_else(|| Error::Overflow("line weight"))
}

/// Step 2, gifts: a free line for every applied gift promotion, after the
/// bought lines, each fully discounted by its promotion (`net` 0).
///
/// # Errors
/// [`Error::NotFound`] for a gift whose catalog entry is missing,
/// [`Error::Overflow`].
pub(super) fn gift_lines(
    env: &Env<'_>,
    promotions: &PromotionSet,
    run: &Run,
    lines: &mut Vec<PricedLine>,
    net: &mut Vec<i128>,
) -> Result<()> {
    let zero = Money::zero(env.currency);
    for applied in &run.applied {
        let (Some(gift), Some(p)) = (&applied.effect.gift, promotions.promotion(applied.index))
        else {
            continue;
        };
        let entry = env
            .catalog
            .get(&gift.variant_id)
            .ok_or_else(|| Error::not_found("variant", gift.variant_id))?;
        let unit_price = env.money(gift.unit)?;
        let subtotal = unit_price.checked_mul_qty(gift.quantity)?;
        net.push(0);
        lines.push(PricedLine {
            line_id: gift_line_id(p.id, gift.variant_id),
            variant_id: gift.variant_id,
            sku: entry.variant.sku().clone(),
            name: entry.display_name(),
            quantity: gift.quantity,
            list_price: unit_price,
            unit_price,
            price_source: PriceSource::Catalog,
            subtotal,
            adjustments: vec![adjustment(
                p,
                promotions.label(applied.index),
                applied.code.as_ref(),
                subtotal,
            )],
            discount: subtotal,
            tax: zero,
            total: zero,
            requires_shipping: entry.variant.requires_shipping(),
            weight_grams: line_weight(entry, gift.quantity)?,
            gift_of: Some(p.id),
            metadata: std::collections::BTreeMap::new(),
        });
    }
    Ok(())
}

/// Step 2, explanations on the lines: each applied promotion's share of
/// each bought line, in the order the promotions applied.
///
/// # Errors
/// [`Error::Overflow`].
pub(super) fn attach_adjustments(
    env: &Env<'_>,
    promotions: &PromotionSet,
    run: &Run,
    lines: &mut [PricedLine],
) -> Result<()> {
    for applied in &run.applied {
        let Some(p) = promotions.promotion(applied.index) else {
            continue;
        };
        for (i, amount) in &applied.effect.lines {
            if let Some(line) = lines.get_mut(*i) {
                line.adjustments.push(adjustment(
                    p,
                    promotions.label(applied.index),
                    applied.code.as_ref(),
                    env.money(*amount)?,
                ));
            }
        }
    }
    Ok(())
}

/// What step 3 decides: the rates offered and the charge (after shipping
/// promotions, before tax) of the lines in no group, each group's, and
/// free-shipping hints.
#[derive(Default)]
pub(super) struct Shipping {
    pub options: Vec<ShippingRate>,
    pub charge: Option<ShippingCharge>,
    pub groups: Vec<GroupShipping>,
    pub hints: Vec<Hint>,
    pub parcels: Vec<crate::pricing::Parcel>,
}

/// One shipment of a cart: the lines in no group (`group: None`) or one
/// shipping group's, with the method chosen and whether any of its lines
/// ships.
pub(super) struct Planned<'c> {
    pub group: Option<&'c crate::cart::ShippingGroup>,
    pub method: Option<&'c str>,
    pub ships: bool,
}

impl<'c> Planned<'c> {
    /// The method, when the shipment is charged (a method is chosen and
    /// something in it ships).
    pub fn charged(&self) -> Option<&'c str> {
        self.method.filter(|_| self.ships)
    }

    /// Whether priced line `l` of `cart` is one of this shipment's lines
    /// that ship.
    fn holds(&self, cart: &Cart, l: &PricedLine) -> bool {
        l.requires_shipping
            && match self.group {
                None => cart.shipping_group_of(l.line_id).is_none(),
                Some(g) => g.lines.contains(&l.line_id),
            }
    }
}

/// The cart's shipments: the lines in no group (gift lines among them)
/// when any of them ships — or when the cart has no groups and anything
/// ships — then each group, in the cart's order.
pub(super) fn plan_shipments<'c>(
    cart: &'c Cart,
    lines: &[PricedLine],
    requires_shipping: bool,
) -> Vec<Planned<'c>> {
    let groups = cart.shipping_groups();
    let mut plan = Vec::with_capacity(groups.len() + 1);
    let mut main = Planned {
        group: None,
        method: cart.shipping_method(),
        ships: false,
    };
    main.ships = if groups.is_empty() {
        requires_shipping
    } else {
        lines.iter().any(|l| main.holds(cart, l))
    };
    if main.ships {
        plan.push(main);
    }
    for g in groups {
        let mut planned = Planned {
            group: Some(g),
            method: g.method.as_deref(),
            ships: false,
        };
        planned.ships = lines.iter().any(|l| planned.holds(cart, l));
        plan.push(planned);
    }
    plan
}

/// Step 3: for each planned shipment, the rates for its discounted lines
/// and the chosen method's price; then the shipping promotions on every
/// charge at once (they must combine with the line promotions already
/// applied), and free-shipping hints for the lines in no group. `bought`
/// is the priced lines, their net amounts and what the line promotions
/// left of each bought line.
///
/// # Errors
/// [`Error::ShippingUnavailable`] for a chosen method not offered; a rate
/// in another currency, inexact or negative; the plugin's own errors;
/// [`Error::Overflow`].
pub(super) fn shipping(
    cart: &Cart,
    ctx: &PricingContext<'_>,
    env: &Env<'_>,
    plan: &[Planned<'_>],
    bought: (&[PricedLine], &[i128], &[i128]),
    candidates: Vec<apply::Candidate>,
    run: &mut Run,
) -> Result<Shipping> {
    let (lines, net, remaining) = bought;
    let mut out = Shipping::default();
    // Routed units not yet given to a parcel, per variant and location.
    let mut unrouted: Vec<ReservationLine> =
        ctx.fulfilment.map(|f| f.lines.clone()).unwrap_or_default();
    // Each shipment's rates, and the rate of each charged one.
    let mut rates: Vec<ShippingRate> = Vec::new();
    let mut offered: Vec<Vec<ShippingRate>> = Vec::with_capacity(plan.len());
    for shipment in plan {
        let held: Vec<usize> = (0..lines.len())
            .filter(|i| lines.get(*i).is_some_and(|l| shipment.holds(cart, l)))
            .collect();
        let parcels = parcels_of(&held, lines, &mut unrouted);
        let shares = shares_of(&parcels, lines, net)?;
        let mut inputs = Vec::with_capacity(parcels.len());
        for ((origin, units), shares) in parcels.iter().zip(&shares) {
            inputs.push(parcel_input(cart, ctx, env, lines, *origin, units, shares)?);
        }
        let mut per_parcel = Vec::with_capacity(inputs.len());
        for input in &inputs {
            let options = ctx.shipping.rates(input)?;
            for rate in &options {
                check_rate(rate, env.currency)?;
            }
            per_parcel.push(options);
        }
        let options = combine_rates(&per_parcel)?;
        if let Some(code) = shipment.charged() {
            let rate = options
                .iter()
                .find(|r| r.code == code)
                .cloned()
                .ok_or_else(|| Error::ShippingUnavailable(code.to_owned()))?;
            rates.push(rate);
        }
        if shipment.group.is_none()
            && let Some(input) = inputs.first()
        {
            free_shipping_hints(&options, input, shipment.method, &mut out.hints)?;
        }
        if ctx.fulfilment.is_some() {
            for ((origin, units), options) in parcels.iter().zip(&per_parcel) {
                let price = shipment
                    .charged()
                    .and_then(|code| options.iter().find(|r| r.code == code))
                    .map(|r| r.price);
                let units = units
                    .iter()
                    .filter_map(|(i, n)| {
                        lines.get(*i).map(|l| crate::pricing::ParcelUnits {
                            line_id: l.line_id,
                            quantity: *n,
                        })
                    })
                    .collect();
                out.parcels.push(crate::pricing::Parcel {
                    group: shipment.group.map(|g| g.name.clone()),
                    location_id: *origin,
                    units,
                    price,
                });
            }
        }
        offered.push(options);
    }
    let mut charges =
        shipping_charges(rates, env, ctx.promotions, remaining, candidates, run)?.into_iter();
    for (shipment, options) in plan.iter().zip(offered) {
        let charge = match shipment.charged() {
            Some(_) => charges.next(),
            None => None,
        };
        match shipment.group {
            None => {
                out.options = options;
                out.charge = charge;
            }
            Some(g) => out.groups.push(GroupShipping {
                group: g.name.clone(),
                lines: g.lines.clone(),
                options,
                charge,
            }),
        }
    }
    Ok(out)
}

/// A parcel being planned: where from, and `(line index, units)`.
type PlannedParcel = (Option<LocationId>, Vec<(usize, u32)>);

/// Units of one shipment per origin: `(location, [(line index, units)])`,
/// in the order the origins first appear. Each held line's units come from
/// the routed units of its variant still unclaimed (`unrouted`, used up as
/// they are given); units no route holds (untracked ones, or every unit
/// without routing) join the first parcel, or make one of their own.
fn parcels_of(
    held: &[usize],
    lines: &[PricedLine],
    unrouted: &mut [ReservationLine],
) -> Vec<PlannedParcel> {
    let mut parcels: Vec<PlannedParcel> = Vec::new();
    let mut loose: Vec<(usize, u32)> = Vec::new();
    for &i in held {
        let Some(line) = lines.get(i) else { continue };
        let mut left = line.quantity;
        for routed in unrouted
            .iter_mut()
            .filter(|r| r.variant_id == line.variant_id)
        {
            let take = left.min(routed.quantity);
            if take == 0 {
                continue;
            }
            routed.quantity -= take;
            left -= take;
            let at = Some(routed.location_id);
            match parcels.iter_mut().find(|(o, _)| *o == at) {
                Some((_, units)) => units.push((i, take)),
                None => parcels.push((at, vec![(i, take)])),
            }
        }
        if left > 0 {
            loose.push((i, left));
        }
    }
    if !loose.is_empty() {
        match parcels.first_mut() {
            Some((_, units)) => units.extend(loose),
            None => parcels.push((None, loose)),
        }
    }
    parcels
}

/// Each parcel's share of its lines' discounted amounts and weights, per
/// unit entry: by units, rounded down, the parcel holding a line's last
/// units taking what is left, so the shares of a line add up exactly.
fn shares_of(
    parcels: &[PlannedParcel],
    lines: &[PricedLine],
    net: &[i128],
) -> Result<Vec<Vec<(i128, u64)>>> {
    // Per line: units, amount and weight given so far.
    let mut given: HashMap<usize, (u32, i128, u64)> = HashMap::new();
    let mut out = Vec::with_capacity(parcels.len());
    for (_, units) in parcels {
        let mut shares = Vec::with_capacity(units.len());
        for &(i, n) in units {
            let (Some(l), Some(amount)) = (lines.get(i), net.get(i)) else {
                shares.push((0, 0));
                continue;
            };
            let so_far = given.entry(i).or_insert((0, 0, 0));
            let units_after = so_far.0.saturating_add(n);
            let share = if units_after >= l.quantity {
                (amount - so_far.1, l.weight_grams.saturating_sub(so_far.2))
            } else {
                let q = i128::from(l.quantity);
                let a = amount
                    .checked_mul(i128::from(n))
                    .ok_or(Error::Overflow("shipment subtotal"))?
                    / q;
                let w = u128::from(l.weight_grams) * u128::from(n) / u128::from(l.quantity);
                (a, u64::try_from(w).unwrap_or(u64::MAX))
            };
            *so_far = (
                units_after,
                so_far.1 + share.0,
                so_far.2.saturating_add(share.1),
            );
            shares.push(share);
        }
        out.push(shares);
    }
    Ok(out)
}

/// What a rate source is asked for one parcel: its units' shares of
/// amount and weight (`shares`, as [`shares_of`] gives them) and its size.
fn parcel_input<'a>(
    cart: &'a Cart,
    ctx: &PricingContext<'a>,
    env: &Env<'_>,
    lines: &[PricedLine],
    origin: Option<LocationId>,
    units: &[(usize, u32)],
    shares: &[(i128, u64)],
) -> Result<ShippingInput<'a>> {
    let (mut discounted, mut weight, mut items) = (0_i128, 0_u64, 0_u64);
    let (mut parcel, mut volume): (Option<[u32; 3]>, u64) = (None, 0);
    for (&(i, n), &(amount, grams)) in units.iter().zip(shares) {
        let Some(l) = lines.get(i) else { continue };
        if let Some(dims) = ctx
            .catalog
            .get(&l.variant_id)
            .and_then(|e| e.variant.dimensions_mm())
        {
            crate::shipping::add_units(&mut parcel, &mut volume, dims, n);
        }
        discounted = discounted
            .checked_add(amount)
            .ok_or_else(|| Error::Overflow("shipment subtotal"))?;
        weight = weight
            .checked_add(grams)
            .ok_or_else(|| Error::Overflow("cart weight"))?;
        items = items.saturating_add(u64::from(n));
    }
    Ok(ShippingInput {
        currency: env.currency,
        subtotal: env.money(discounted)?,
        weight_grams: weight,
        items,
        destination: cart.shipping_address(),
        parcel_mm: parcel,
        volume_cm3: volume,
        origin,
        ship_from: origin
            .and_then(|o| ctx.fulfilment.and_then(|f| f.origin(o)))
            .and_then(|l| l.address()),
    })
}

/// A shipment's methods from its parcels' rates: with one parcel, its
/// rates; with several, the methods every parcel offers (in the first
/// parcel's order), each at the sum of its prices, without free-shipping
/// thresholds (each parcel applied its own).
fn combine_rates(per_parcel: &[Vec<ShippingRate>]) -> Result<Vec<ShippingRate>> {
    let Some((first, rest)) = per_parcel.split_first() else {
        return Ok(Vec::new());
    };
    if rest.is_empty() {
        return Ok(first.clone());
    }
    let mut out = Vec::with_capacity(first.len());
    'methods: for rate in first {
        let mut price = rate.price;
        for other in rest {
            let Some(same) = other.iter().find(|r| r.code == rate.code) else {
                continue 'methods;
            };
            price = price.checked_add(same.price)?;
        }
        out.push(ShippingRate::new(
            rate.code.clone(),
            rate.name.clone(),
            price,
        ));
    }
    Ok(out)
}

/// A shipping plugin's rate must be in the cart's currency, exact and not
/// negative.
pub(crate) fn check_rate(rate: &ShippingRate, currency: Currency) -> Result<()> {
    if rate.price.currency() != currency {
        return Err(Error::CurrencyMismatch {
            left: currency,
            right: rate.price.currency(),
        });
    }
    rate.price.entered()?;
    if rate.price.is_negative() {
        return Err(Error::invalid("shipping rate", "must not be negative"));
    }
    Ok(())
}

/// The charges of the chosen `rates` (one per charged shipment, in order)
/// after the shipping promotions among `candidates`, each explained as an
/// adjustment on the charges it discounted.
fn shipping_charges(
    rates: Vec<ShippingRate>,
    env: &Env<'_>,
    promotions: &PromotionSet,
    remaining: &[i128],
    candidates: Vec<apply::Candidate>,
    run: &mut Run,
) -> Result<Vec<ShippingCharge>> {
    let before: Vec<u32> = run.applied.iter().map(|a| a.index).collect();
    let first = run.applied.len();
    let mut left = rates
        .iter()
        .map(|r| r.price.to_minor())
        .collect::<std::result::Result<Vec<i128>, _>>()?;
    let mut line_left = remaining.to_vec();
    if !rates.is_empty() {
        promotions.apply(env, candidates, &mut line_left, &mut left, &before, run)?;
    }
    let mut out = Vec::with_capacity(rates.len());
    for (k, rate) in rates.into_iter().enumerate() {
        let mut adjustments = Vec::new();
        for applied in run.applied.iter().skip(first) {
            let Some(p) = promotions.promotion(applied.index) else {
                continue;
            };
            for (_, amount) in applied.effect.shipping.iter().filter(|(s, _)| *s == k) {
                adjustments.push(adjustment(
                    p,
                    promotions.label(applied.index),
                    applied.code.as_ref(),
                    env.money(*amount)?,
                ));
            }
        }
        let charged = left.get(k).copied().unwrap_or(0);
        let discount = rate.price.checked_sub(env.money(charged)?)?;
        out.push(ShippingCharge {
            code: rate.code,
            name: rate.name,
            amount: rate.price,
            adjustments,
            discount,
            tax: Money::zero(env.currency),
            total: env.money(charged)?,
        });
    }
    Ok(out)
}

/// "Add X more for free shipping" for the chosen method (or every method
/// offered when none is chosen) that is free from a threshold not reached.
fn free_shipping_hints(
    options: &[ShippingRate],
    input: &ShippingInput<'_>,
    chosen: Option<&str>,
    hints: &mut Vec<Hint>,
) -> Result<()> {
    for rate in options {
        if chosen.is_some_and(|c| c != rate.code) || rate.price.is_zero() {
            continue;
        }
        let Some(threshold) = rate.free_from else {
            continue;
        };
        if threshold.currency() != input.currency {
            continue;
        }
        let missing = threshold.checked_sub(input.subtotal)?;
        if !missing.is_negative() && !missing.is_zero() {
            hints.push(Hint {
                promotion_id: None,
                missing,
                missing_units: None,
                message: format!("add {missing} more for free {}", rate.name),
            });
        }
    }
    Ok(())
}

/// What step 4 decides besides each line's and the shipping's tax: the
/// sums in minor units and the calculator's summary.
pub(super) struct Taxed {
    pub tax: i128,
    pub total: i128,
    pub inclusive: bool,
    pub summary: Vec<TaxLine>,
}

/// Step 4: tax on the discounted amounts (`net`) and the shipping charge,
/// written into each line and the charge with their totals.
///
/// # Errors
/// A calculator that answers a different number of lines, another
/// currency, an inexact or negative tax; the calculator's own errors;
/// [`Error::Overflow`].
pub(super) fn tax(
    cart: &Cart,
    ctx: &PricingContext<'_>,
    env: &Env<'_>,
    lines: &mut [PricedLine],
    net: &[i128],
    mut shipping: Vec<&mut ShippingCharge>,
) -> Result<Taxed> {
    let currency = env.currency;
    let mut taxable = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let entry = match env.lines.get(i) {
            Some(w) => Some(w.entry),
            None => ctx.catalog.get(&l.variant_id),
        };
        taxable.push(TaxableLine {
            line_id: l.line_id,
            variant_id: l.variant_id,
            tax_class: entry.map_or("standard", |e| e.variant.tax_class()),
            quantity: l.quantity,
            amount: env.money(net.get(i).copied().unwrap_or(0))?,
        });
    }
    let breakdown = ctx.tax.tax(&TaxInput {
        currency,
        lines: taxable,
        // Every charge together; the tax on it is split back below.
        shipping: if shipping.is_empty() {
            None
        } else {
            Some(env.money(charged_sum(&shipping)?)?)
        },
        address: cart.shipping_address().or(cart.billing_address()),
        ship_from: ctx.ship_from,
        customer: ctx.tax_customer,
        channel: cart.channel_id(),
    })?;
    if breakdown.lines.len() != lines.len() {
        return Err(Error::invalid(
            "tax calculator",
            "returned a different number of lines than it was given",
        ));
    }
    let inclusive = breakdown.prices_include_tax;
    let (mut tax_sum, mut total_sum) = (0_i128, 0_i128);
    for ((line, tax), n) in lines.iter_mut().zip(&breakdown.lines).zip(net) {
        let tax_minor = checked_tax(*tax, currency)?;
        let line_total = if inclusive { *n } else { n + tax_minor };
        line.tax = *tax;
        line.total = env.money(line_total)?;
        tax_sum += tax_minor;
        total_sum += line_total;
    }
    if !shipping.is_empty() {
        let tax_minor = checked_tax(breakdown.shipping, currency)?;
        // Each charge's share of the shipping tax, by what it costs,
        // exactly (largest remainder, ties to the earlier charge); one
        // charge takes it all.
        let shares = if shipping.len() == 1 {
            None
        } else {
            let weights = shipping
                .iter()
                .map(|s| {
                    let m = s.total.to_minor()?;
                    u64::try_from(m.max(0)).map_err(|_| Error::Overflow("shipping"))
                })
                .collect::<Result<Vec<u64>>>()?;
            Some(if weights.iter().all(|w| *w == 0) {
                let mut v = vec![0; weights.len()];
                if let Some(first) = v.first_mut() {
                    *first = tax_minor;
                }
                v
            } else {
                crate::money::allocate_minor_ranked(tax_minor, &weights, |k| k as u64)?
            })
        };
        for (k, s) in shipping.iter_mut().enumerate() {
            let share = match &shares {
                None => tax_minor,
                Some(v) => v.get(k).copied().unwrap_or(0),
            };
            let charged = s.total.to_minor()?;
            let ship_total = if inclusive { charged } else { charged + share };
            s.tax = env.money(share)?;
            s.total = env.money(ship_total)?;
            tax_sum += share;
            total_sum += ship_total;
        }
    }
    Ok(Taxed {
        tax: tax_sum,
        total: total_sum,
        inclusive,
        summary: breakdown.summary,
    })
}

/// What every shipping charge costs together, before tax, in minor units.
fn charged_sum(charges: &[&mut ShippingCharge]) -> Result<i128> {
    charges.iter().try_fold(0_i128, |acc, c| {
        acc.checked_add(c.total.to_minor()?)
            .ok_or_else(|| Error::Overflow("shipping"))
    })
}

/// A calculator's tax in minor units, checked: the cart's currency, exact,
/// not negative.
pub(crate) fn checked_tax(tax: Money, currency: Currency) -> Result<i128> {
    if tax.currency() != currency {
        return Err(Error::CurrencyMismatch {
            left: currency,
            right: tax.currency(),
        });
    }
    let minor = tax.to_minor()?;
    if minor < 0 {
        return Err(Error::invalid("tax calculator", "returned a negative tax"));
    }
    Ok(minor)
}

#[cfg(test)]
#[path = "steps_tests.rs"]
mod tests;
