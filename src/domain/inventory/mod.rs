//! Stock per variant and location, and reservations.
//!
//! Stock follows the two-phase pattern of a ledger: a checkout first
//! *reserves* units (a hold that expires), then the hold is *allocated* to the
//! placed order, and finally *committed* when the units leave the building —
//! or *released* at any point before that. `available = on_hand - reserved`,
//! where `reserved` counts pending and allocated holds.
//!
//! Architecture invariant: this module decides *how* to split a request over
//! locations ([`plan_reservation`]); it never touches storage. The store
//! applies a plan atomically, so stock is never oversold.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::InventoryPolicy;
use crate::error::{Error, Result};
use crate::id::{IdempotencyKey, LocationId, OrderId, ReservationId, VariantId};
use crate::validate::required_text;

mod routing;

pub use routing::{
    ByPriority, FulfilmentPlan, FulfilmentRouter, Nearest, OneLocationFirst, RoutingRequest,
};
pub(crate) use routing::{check_route, plan_requests};

/// Most units that can be on hand at one location for one variant.
pub const MAX_ON_HAND: i64 = 1_000_000_000;
/// Most units of one variant in one reservation.
pub const MAX_RESERVE_QUANTITY: u32 = 1_000_000;

/// A place stock is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    id: LocationId,
    name: String,
    priority: u32,
    /// Where parcels leave from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<crate::customer::Address>,
}

impl Location {
    /// A location; lower `priority` is reserved from first.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn new(name: &str, priority: u32) -> Result<Self> {
        Ok(Self {
            id: LocationId::new(),
            name: required_text("location name", name, 200)?,
            priority,
            address: None,
        })
    }

    /// The same location, shipping from `address`: the origin carriers'
    /// rate requests and tax quotes name for the units routed here (see
    /// [`FulfilmentRouter`]), and what [`Nearest`] measures from.
    #[must_use]
    pub fn with_address(mut self, address: crate::customer::Address) -> Self {
        self.address = Some(address);
        self
    }

    /// Where parcels leave from, when known.
    pub fn address(&self) -> Option<&crate::customer::Address> {
        self.address.as_ref()
    }
    /// Its id.
    pub fn id(&self) -> LocationId {
        self.id
    }
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Reservation order: lower first, then by id.
    pub fn priority(&self) -> u32 {
        self.priority
    }
}

/// Stock of one variant at one location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StockLevel {
    /// The variant.
    pub variant_id: VariantId,
    /// The location.
    pub location_id: LocationId,
    /// Units physically there (may go below zero only through backorders).
    pub on_hand: i64,
    /// Units held by checkouts in progress and by placed orders not yet shipped.
    pub reserved: i64,
}

impl StockLevel {
    /// Units that can still be reserved (negative when backordered).
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// One variant's stock summed over locations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StockSummary {
    /// The variant.
    pub variant_id: VariantId,
    /// Per location, in reservation order.
    pub levels: Vec<StockLevel>,
    /// Units on hand everywhere.
    pub on_hand: i64,
    /// Units reserved everywhere.
    pub reserved: i64,
}

impl StockSummary {
    /// A variant's summary from its levels (in reservation order).
    pub fn new(variant_id: VariantId, levels: Vec<StockLevel>) -> Self {
        Self {
            variant_id,
            on_hand: levels.iter().map(|l| l.on_hand).sum(),
            reserved: levels.iter().map(|l| l.reserved).sum(),
            levels,
        }
    }

    /// Units that can still be reserved everywhere.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// The low-stock mark `summary` gives against `threshold` (`true`: fewer
/// units available everywhere than the threshold) and the event that
/// announces a change to it. Both stores decide with this under their own
/// lock, from the level they read there.
pub(crate) fn low_stock_mark(
    summary: &StockSummary,
    threshold: u32,
) -> (bool, crate::event::EventKind) {
    let available = summary.available();
    let variant_id = summary.variant_id;
    if available < i64::from(threshold) {
        let event = crate::event::EventKind::LowStock {
            variant_id,
            available,
            threshold,
        };
        (true, event)
    } else {
        let event = crate::event::EventKind::StockReplenished {
            variant_id,
            available,
            threshold,
        };
        (false, event)
    }
}

/// Checks a number of units on hand: 0 to [`MAX_ON_HAND`].
pub(crate) fn check_on_hand(on_hand: i64) -> Result<i64> {
    if (0..=MAX_ON_HAND).contains(&on_hand) {
        Ok(on_hand)
    } else {
        Err(Error::invalid(
            "on hand",
            format!("must be between 0 and {MAX_ON_HAND}"),
        ))
    }
}

/// Part of a reservation: units of a variant held at a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReservationLine {
    /// The variant.
    pub variant_id: VariantId,
    /// Where the units are held.
    pub location_id: LocationId,
    /// How many units.
    pub quantity: u32,
}

/// The life of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum ReservationState {
    /// Held for a checkout until `expires_at`.
    Pending {
        /// When the hold lapses if no order is placed.
        expires_at: DateTime<Utc>,
    },
    /// Held for a placed order until it ships or is cancelled.
    Allocated {
        /// The order.
        order_id: OrderId,
    },
    /// The units left stock (on hand reduced).
    Committed,
    /// The hold was given back.
    Released,
}

/// A hold on stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reservation {
    /// Its id.
    pub id: ReservationId,
    /// The checkout that made it, if any.
    pub checkout_key: Option<IdempotencyKey>,
    /// What is held where. Untracked variants have no lines.
    pub lines: Vec<ReservationLine>,
    /// Usage held on limited counters (coupon uses, promotion budgets).
    #[serde(default)]
    pub claims: Vec<UsageClaim>,
    /// Where it is in its life.
    pub state: ReservationState,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl Reservation {
    /// True when the hold still counts against stock at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        match self.state {
            ReservationState::Pending { expires_at } => expires_at > now,
            ReservationState::Allocated { .. } => true,
            ReservationState::Committed | ReservationState::Released => false,
        }
    }
}

/// Longest usage counter name, in characters.
pub const MAX_COUNTER_LEN: usize = 400;
/// Most usage claims in one reservation.
pub const MAX_CLAIMS: usize = 50;

/// A claim of `amount` more uses of a limited counter, held by a reservation
/// alongside its stock: a coupon code's uses (`amount` 1), a promotion's uses
/// per customer, or a promotion's budget (`amount` in minor units).
///
/// The counter may never go above `limit`. Releasing the reservation gives
/// the amount back; placing the order keeps it. The store knows nothing about
/// what a counter means; pricing names them (for example `"code:SAVE10"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UsageClaim {
    /// The counter's name: 1 to [`MAX_COUNTER_LEN`] visible ASCII characters.
    pub counter: String,
    /// How much to add (at least 1).
    pub amount: u64,
    /// The most the counter may reach.
    pub limit: u64,
}

impl UsageClaim {
    /// A claim of `amount` on `counter`, which may reach `limit`. Checked
    /// when a store holds it.
    pub fn new(counter: impl Into<String>, amount: u64, limit: u64) -> Self {
        Self {
            counter: counter.into(),
            amount,
            limit,
        }
    }
}

/// Validates claims and adds up those on the same counter (keeping the
/// smallest limit), sorted by counter — the order stores lock them in.
///
/// # Errors
/// [`Error::LimitExceeded`] for too many claims; [`Error::Invalid`] for a
/// bad counter name or amount; [`Error::Overflow`] when the amounts on one
/// counter add past range.
pub fn merge_claims(claims: &[UsageClaim]) -> Result<Vec<UsageClaim>> {
    if claims.len() > MAX_CLAIMS {
        return Err(Error::LimitExceeded {
            what: "usage claims in a reservation",
            max: MAX_CLAIMS as u64,
        });
    }
    let max = i64::MAX as u64;
    let mut merged: std::collections::BTreeMap<&str, UsageClaim> =
        std::collections::BTreeMap::new();
    for c in claims {
        let name_ok = !c.counter.is_empty()
            && c.counter.chars().count() <= MAX_COUNTER_LEN
            && c.counter.bytes().all(|b| b.is_ascii_graphic());
        if !name_ok {
            return Err(Error::invalid(
                "usage counter",
                format!("must be 1 to {MAX_COUNTER_LEN} visible ASCII characters"),
            ));
        }
        if c.amount == 0 || c.amount > max || c.limit > max {
            return Err(Error::invalid(
                "usage claim",
                "amount must be at least 1, and amount and limit at most i64::MAX",
            ));
        }
        match merged.get_mut(c.counter.as_str()) {
            Some(m) => {
                m.amount = m
                    .amount
                    .checked_add(c.amount)
                    .filter(|a| *a <= max)
                    .ok_or_else(|| Error::Overflow("usage claim"))?;
                m.limit = m.limit.min(c.limit);
            }
            None => {
                merged.insert(&c.counter, c.clone());
            }
        }
    }
    Ok(merged.into_values().collect())
}

/// Checks one claim against the counter's current value; returns the new value.
///
/// # Errors
/// [`Error::UsageLimitReached`] when the claim does not fit the limit.
pub fn apply_claim(claim: &UsageClaim, used: u64) -> Result<u64> {
    match used.checked_add(claim.amount) {
        Some(next) if next <= claim.limit => Ok(next),
        _ => Err(Error::UsageLimitReached {
            counter: claim.counter.clone(),
            limit: claim.limit,
            used,
        }),
    }
}

/// A request to hold units of one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRequest {
    /// The variant.
    pub variant_id: VariantId,
    /// How many units (at least 1).
    pub quantity: u32,
    /// The variant's inventory policy.
    pub policy: InventoryPolicy,
    /// Reserve only at this sales channel's locations (the engine sets it
    /// when the cart's channel names its locations; the store reads them in
    /// the command that reserves).
    #[serde(default)]
    pub channel: Option<crate::id::ChannelId>,
    /// Hold the units at this location only (the plan of a
    /// [`FulfilmentRouter`], or a variant's only stock location): the
    /// store checks the stock there under its lock and refuses with
    /// [`Error::OutOfStock`] when it is short, rather than taking units
    /// elsewhere. `None` lets the store take them from the first locations
    /// with stock, by priority.
    #[serde(default)]
    pub location: Option<LocationId>,
}

/// The levels at the `allowed` locations (every level when `None`), in
/// their order.
pub fn levels_within(
    levels: &[StockLevel],
    allowed: Option<&std::collections::BTreeSet<LocationId>>,
) -> Vec<StockLevel> {
    levels
        .iter()
        .filter(|l| allowed.is_none_or(|a| a.contains(&l.location_id)))
        .cloned()
        .collect()
}

/// Validates requests and adds up those for the same variant and
/// location, keeping the order in which they first appear.
///
/// # Errors
/// [`Error::Invalid`] for a quantity of 0; [`Error::Overflow`] when the
/// quantities for one variant add past range; [`Error::LimitExceeded`] for
/// too many lines.
pub fn merge_requests(requests: &[StockRequest]) -> Result<Vec<StockRequest>> {
    let mut merged: Vec<StockRequest> = Vec::with_capacity(requests.len());
    for r in requests {
        if r.quantity == 0 {
            return Err(Error::invalid("quantity", "must be at least 1"));
        }
        if merged.iter().any(|m| m.channel != r.channel) {
            return Err(Error::invalid(
                "stock requests",
                "one reservation is for one sales channel",
            ));
        }
        match merged
            .iter_mut()
            .find(|m| m.variant_id == r.variant_id && m.location == r.location)
        {
            Some(m) => {
                m.quantity = m
                    .quantity
                    .checked_add(r.quantity)
                    .ok_or_else(|| Error::Overflow("reserved quantity"))?;
            }
            None => merged.push(*r),
        }
    }
    let mut per_variant: std::collections::HashMap<VariantId, u32> =
        std::collections::HashMap::with_capacity(merged.len());
    for r in &merged {
        let n = per_variant.entry(r.variant_id).or_default();
        *n = n.saturating_add(r.quantity);
    }
    if per_variant.values().any(|n| *n > MAX_RESERVE_QUANTITY) {
        return Err(Error::LimitExceeded {
            what: "units of one variant in a reservation",
            max: u64::from(MAX_RESERVE_QUANTITY),
        });
    }
    Ok(merged)
}

/// Splits a request over locations.
///
/// `levels` are the variant's existing stock rows in reservation order
/// (location priority, then id). Units come from the first locations with
/// stock — only from the request's own location when it names one. With
/// backorders allowed, what cannot be covered goes to the first of those
/// locations (the request's own) — or, when the variant has no stock rows
/// at all, to `fallback` (the first location overall). Untracked variants
/// need no stock and get an empty plan.
///
/// # Errors
/// [`Error::OutOfStock`] naming the variant, what was asked and what is
/// available; [`Error::Invalid`] or [`Error::Overflow`] for bad quantities;
/// [`Error::NotFound`] when there is no location to backorder at.
pub fn plan_reservation(
    request: &StockRequest,
    levels: &[StockLevel],
    fallback: Option<LocationId>,
) -> Result<Vec<ReservationLine>> {
    let allow_backorder = match request.policy {
        InventoryPolicy::Untracked => return Ok(Vec::new()),
        InventoryPolicy::Tracked { allow_backorder } => allow_backorder,
    };
    let bound: Vec<StockLevel>;
    let (levels, fallback) = match request.location {
        Some(at) => {
            bound = levels
                .iter()
                .filter(|l| l.location_id == at)
                .copied()
                .collect();
            (bound.as_slice(), Some(at))
        }
        None => (levels, fallback),
    };
    let mut remaining = request.quantity;
    let mut plan = Vec::new();
    for level in levels {
        if remaining == 0 {
            break;
        }
        let available = u32::try_from(level.available().max(0)).unwrap_or(u32::MAX);
        let take = remaining.min(available);
        if take > 0 {
            plan.push(ReservationLine {
                variant_id: request.variant_id,
                location_id: level.location_id,
                quantity: take,
            });
            remaining -= take;
        }
    }
    if remaining == 0 {
        return Ok(plan);
    }
    if !allow_backorder {
        return Err(Error::OutOfStock {
            variant_id: request.variant_id,
            requested: request.quantity,
            available: levels.iter().map(|l| l.available().max(0)).sum(),
        });
    }
    let location = levels
        .first()
        .map(|l| l.location_id)
        .or(fallback)
        .ok_or_else(|| Error::invalid("inventory", "no stock location exists for a backorder"))?;
    match plan.iter_mut().find(|l| l.location_id == location) {
        Some(line) => line.quantity += remaining,
        None => plan.push(ReservationLine {
            variant_id: request.variant_id,
            location_id: location,
            quantity: remaining,
        }),
    }
    Ok(plan)
}

/// Whether planning `request` against `levels` may need the fallback location.
pub fn needs_fallback(request: &StockRequest, levels: &[StockLevel]) -> bool {
    request.location.is_none()
        && levels.is_empty()
        && request.policy
            == (InventoryPolicy::Tracked {
                allow_backorder: true,
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(loc: LocationId, on_hand: i64, reserved: i64, v: VariantId) -> StockLevel {
        StockLevel {
            variant_id: v,
            location_id: loc,
            on_hand,
            reserved,
        }
    }

    #[test]
    fn plan_takes_from_locations_in_order() {
        let v = VariantId::new();
        let (a, b) = (LocationId::new(), LocationId::new());
        let req = StockRequest {
            variant_id: v,
            quantity: 5,
            policy: InventoryPolicy::default(),
            channel: None,
            location: None,
        };
        let plan = plan_reservation(&req, &[level(a, 3, 1, v), level(b, 10, 0, v)], None).unwrap();
        assert_eq!(
            plan.iter()
                .map(|l| (l.location_id, l.quantity))
                .collect::<Vec<_>>(),
            vec![(a, 2), (b, 3)]
        );
    }

    #[test]
    fn plan_fails_whole_or_backorders() {
        let v = VariantId::new();
        let a = LocationId::new();
        let mut req = StockRequest {
            variant_id: v,
            quantity: 5,
            policy: InventoryPolicy::default(),
            channel: None,
            location: None,
        };
        let err = plan_reservation(&req, &[level(a, 3, 0, v)], None).unwrap_err();
        assert!(matches!(
            err,
            Error::OutOfStock {
                requested: 5,
                available: 3,
                ..
            }
        ));
        req.policy = InventoryPolicy::Tracked {
            allow_backorder: true,
        };
        let plan = plan_reservation(&req, &[level(a, 3, 0, v)], None).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].quantity, 5);
        req.policy = InventoryPolicy::Untracked;
        assert!(plan_reservation(&req, &[], None).unwrap().is_empty());
        req.policy = InventoryPolicy::Tracked {
            allow_backorder: true,
        };
        assert!(
            plan_reservation(&req, &[], None).is_err(),
            "a backorder needs a location"
        );
        assert_eq!(
            plan_reservation(&req, &[], Some(a)).unwrap()[0].location_id,
            a
        );
    }
}
