//! Fulfilment routing: which location ships which units of a cart.
//!
//! A [`FulfilmentRouter`] is a pure function of the stock it is shown, the
//! locations the cart may ship from and the destination. The engine asks it
//! before pricing (stock read like the service caches, without a lock),
//! prices each origin's units as a parcel of their own, and at checkout
//! holds exactly the routed units at their locations. The store re-checks
//! each location's stock under its lock, so a plan made on a stale reading
//! can be refused but never oversells; the checkout then reads, routes and
//! prices again ([`Engine::checkout`](crate::Engine::checkout)).
//!
//! Built-ins: [`ByPriority`] (each variant from the locations in priority
//! order, splitting when one is short), [`OneLocationFirst`] (the first
//! location that has the whole cart, else as `ByPriority`) and [`Nearest`]
//! (locations ranked by a distance the embedder supplies).

use std::collections::HashMap;

use crate::customer::Address;
use crate::error::{Error, Result};
use crate::id::{LocationId, VariantId};

use super::{Location, ReservationLine, StockLevel, StockRequest, plan_reservation};

/// What a router is shown.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RoutingRequest<'a> {
    /// What to route: one request per stock-tracked variant, with every
    /// unit of it the cart holds and its inventory policy.
    pub units: &'a [StockRequest],
    /// Each variant's stock at `locations`, in priority order (a variant
    /// with no stock anywhere may be missing).
    pub levels: &'a HashMap<VariantId, Vec<StockLevel>>,
    /// The locations the units may ship from (the sales channel's, else
    /// every one), in priority order.
    pub locations: &'a [Location],
    /// Where the parcels go, when known.
    pub destination: Option<&'a Address>,
}

impl<'a> RoutingRequest<'a> {
    /// A request (to try a router of one's own outside the engine).
    pub fn new(
        units: &'a [StockRequest],
        levels: &'a HashMap<VariantId, Vec<StockLevel>>,
        locations: &'a [Location],
        destination: Option<&'a Address>,
    ) -> Self {
        Self {
            units,
            levels,
            locations,
            destination,
        }
    }

    /// Units of `variant` that can still be held at `location` (0 when
    /// none, never negative).
    pub fn available(&self, variant: VariantId, location: LocationId) -> u32 {
        self.levels
            .get(&variant)
            .and_then(|levels| levels.iter().find(|l| l.location_id == location))
            .map_or(0, |l| {
                u32::try_from(l.available().max(0)).unwrap_or(u32::MAX)
            })
    }

    /// `locations` in priority order, as ids.
    pub fn by_priority(&self) -> Vec<LocationId> {
        self.locations.iter().map(Location::id).collect()
    }

    /// Routes by `ranking` (best first; locations not in it are not used):
    /// with `whole_cart_first`, the first location that has every unit
    /// ships them all; otherwise each variant takes from the ranked
    /// locations in turn. Units no location has are put where a backorder
    /// would go — the first ranked location that stocks the variant, else
    /// the first ranked — so pricing can go on and checkout names the
    /// shortage. The building block of the built-in routers.
    pub fn by_ranking(
        &self,
        ranking: &[LocationId],
        whole_cart_first: bool,
    ) -> Vec<ReservationLine> {
        if whole_cart_first
            && let Some(at) = ranking.iter().find(|at| {
                self.units
                    .iter()
                    .all(|u| u.quantity <= self.available(u.variant_id, **at))
            })
        {
            return self
                .units
                .iter()
                .map(|u| ReservationLine {
                    variant_id: u.variant_id,
                    location_id: *at,
                    quantity: u.quantity,
                })
                .collect();
        }
        let mut lines = Vec::new();
        for u in self.units {
            let mut left = u.quantity;
            for at in ranking {
                let take = left.min(self.available(u.variant_id, *at));
                if take > 0 {
                    lines.push(ReservationLine {
                        variant_id: u.variant_id,
                        location_id: *at,
                        quantity: take,
                    });
                    left -= take;
                }
            }
            if left == 0 {
                continue;
            }
            let stocks = |at: &&LocationId| {
                self.levels
                    .get(&u.variant_id)
                    .is_some_and(|ls| ls.iter().any(|l| l.location_id == **at))
            };
            let Some(at) = ranking.iter().find(stocks).or(ranking.first()) else {
                continue;
            };
            match lines
                .iter_mut()
                .find(|l| l.variant_id == u.variant_id && l.location_id == *at)
            {
                Some(line) => line.quantity += left,
                None => lines.push(ReservationLine {
                    variant_id: u.variant_id,
                    location_id: *at,
                    quantity: left,
                }),
            }
        }
        lines
    }
}

/// Decides which location ships which units of a cart.
///
/// Called before every pricing of a cart with stock-tracked lines (so it
/// must be fast and do no I/O), and again at checkout on a fresh reading.
pub trait FulfilmentRouter: Send + Sync {
    /// For every request in `request.units`, lines of its variant at
    /// `request.locations` adding up to its quantity.
    ///
    /// A router should not fail for lack of stock: it puts units no
    /// location has somewhere (as [`RoutingRequest::by_ranking`] does), and
    /// checkout reports the shortage.
    ///
    /// # Errors
    /// Whatever the router decides; pricing and checkout fail with it. An
    /// answer that does not cover every unit exactly, or names another
    /// location, is refused by the engine with [`Error::Invalid`]
    /// (`"fulfilment router"`).
    fn route(&self, request: &RoutingRequest<'_>) -> Result<Vec<ReservationLine>>;
}

/// Each variant from the locations in priority order, split when the
/// first is short: what the stores do without a router, with each origin
/// priced as its own parcel.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByPriority;

impl FulfilmentRouter for ByPriority {
    fn route(&self, request: &RoutingRequest<'_>) -> Result<Vec<ReservationLine>> {
        Ok(request.by_ranking(&request.by_priority(), false))
    }
}

/// The first location (by priority) that has every unit of the cart ships
/// it all; when none has, as [`ByPriority`]. Fewer parcels, at the price of
/// shipping from further down the list.
#[derive(Debug, Clone, Copy, Default)]
pub struct OneLocationFirst;

impl FulfilmentRouter for OneLocationFirst {
    fn route(&self, request: &RoutingRequest<'_>) -> Result<Vec<ReservationLine>> {
        Ok(request.by_ranking(&request.by_priority(), true))
    }
}

/// Locations ranked by a distance the embedder supplies (a table of zones,
/// great-circle distance from coordinates it keeps, a carrier's transit
/// days): nearest first, locations of unknown distance last, ties by
/// priority. Without a destination, by priority.
pub struct Nearest<F> {
    distance: F,
    whole_cart_first: bool,
}

impl<F> std::fmt::Debug for Nearest<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nearest")
            .field("whole_cart_first", &self.whole_cart_first)
            .finish_non_exhaustive()
    }
}

impl<F> Nearest<F>
where
    F: Fn(&Address, &Location) -> Option<u64> + Send + Sync,
{
    /// Ranks by `distance(destination, location)`: any unit, smaller is
    /// nearer, `None` when unknown.
    pub fn new(distance: F) -> Self {
        Self {
            distance,
            whole_cart_first: false,
        }
    }

    /// The nearest location that has every unit ships them all; when none
    /// has, each variant from the nearest locations in turn.
    #[must_use]
    pub fn one_location_first(mut self) -> Self {
        self.whole_cart_first = true;
        self
    }
}

impl<F> FulfilmentRouter for Nearest<F>
where
    F: Fn(&Address, &Location) -> Option<u64> + Send + Sync,
{
    fn route(&self, request: &RoutingRequest<'_>) -> Result<Vec<ReservationLine>> {
        let ranking = match request.destination {
            None => request.by_priority(),
            Some(to) => {
                let mut ranked: Vec<(Option<u64>, usize, LocationId)> = request
                    .locations
                    .iter()
                    .enumerate()
                    .map(|(i, l)| ((self.distance)(to, l), i, l.id()))
                    .collect();
                // Known distances first (`None` sorts last), then priority.
                ranked.sort_by_key(|(d, i, _)| (d.is_none(), *d, *i));
                ranked.into_iter().map(|(_, _, id)| id).collect()
            }
        };
        Ok(request.by_ranking(&ranking, self.whole_cart_first))
    }
}

/// Where each unit of a cart ships from: a router's checked answer and the
/// locations it names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FulfilmentPlan {
    /// Units of each variant per location, one line per pair.
    pub lines: Vec<ReservationLine>,
    /// The locations the lines name, in the order they first appear.
    pub origins: Vec<Location>,
}

impl FulfilmentPlan {
    /// The location `id` among the origins.
    pub fn origin(&self, id: LocationId) -> Option<&Location> {
        self.origins.iter().find(|l| l.id() == id)
    }

    /// Whether the plan routes exactly `units` (per variant, in any order).
    pub fn covers(&self, units: &[StockRequest]) -> bool {
        let mut want: HashMap<VariantId, u64> = HashMap::new();
        for u in units {
            *want.entry(u.variant_id).or_default() += u64::from(u.quantity);
        }
        let mut have: HashMap<VariantId, u64> = HashMap::new();
        for l in &self.lines {
            *have.entry(l.variant_id).or_default() += u64::from(l.quantity);
        }
        want == have
    }
}

/// Checks a router's answer for `request` and makes it a plan: every
/// line at a location of the request, of a variant asked for, at least one
/// unit; each variant's lines adding up to exactly what was asked. Lines of
/// the same variant and location are merged.
///
/// # Errors
/// [`Error::Invalid`] (`"fulfilment router"`) naming what is wrong.
pub(crate) fn check_route(
    request: &RoutingRequest<'_>,
    answer: Vec<ReservationLine>,
) -> Result<FulfilmentPlan> {
    let refuse = |why: String| Err(Error::invalid("fulfilment router", why));
    let mut lines: Vec<ReservationLine> = Vec::with_capacity(answer.len());
    let mut origins: Vec<Location> = Vec::new();
    for line in answer {
        if line.quantity == 0 {
            return refuse(format!("routes 0 units of variant {}", line.variant_id));
        }
        if !request
            .units
            .iter()
            .any(|u| u.variant_id == line.variant_id)
        {
            return refuse(format!(
                "routes variant {}, not in the cart",
                line.variant_id
            ));
        }
        let Some(location) = request
            .locations
            .iter()
            .find(|l| l.id() == line.location_id)
        else {
            return refuse(format!(
                "routes units to location {}, not one the cart may ship from",
                line.location_id
            ));
        };
        if !origins.iter().any(|o| o.id() == location.id()) {
            origins.push(location.clone());
        }
        match lines
            .iter_mut()
            .find(|l| l.variant_id == line.variant_id && l.location_id == line.location_id)
        {
            Some(l) => {
                l.quantity = l
                    .quantity
                    .checked_add(line.quantity)
                    .ok_or_else(|| Error::Overflow("routed units"))?;
            }
            None => lines.push(line),
        }
    }
    for u in request.units {
        let routed: u64 = lines
            .iter()
            .filter(|l| l.variant_id == u.variant_id)
            .map(|l| u64::from(l.quantity))
            .sum();
        if routed != u64::from(u.quantity) {
            return refuse(format!(
                "routes {routed} units of variant {} where the cart has {}",
                u.variant_id, u.quantity
            ));
        }
    }
    Ok(FulfilmentPlan { lines, origins })
}

/// Plans every (merged) request against `levels` — requests bound to a
/// location first, then the others from what is left — so two requests
/// for one variant never count the same units. `usable` says whether a
/// bound location exists and may be used (a channel's locations).
///
/// # Errors
/// As [`plan_reservation`]; [`Error::Invalid`] for a request bound to a
/// location it may not use.
pub(crate) fn plan_requests(
    merged: &[StockRequest],
    levels: &HashMap<VariantId, Vec<StockLevel>>,
    fallback: Option<LocationId>,
    usable: impl Fn(LocationId) -> bool,
) -> Result<Vec<ReservationLine>> {
    let mut working = levels.clone();
    let empty = Vec::new();
    let mut lines = Vec::new();
    let ordered = merged
        .iter()
        .filter(|r| r.location.is_some())
        .chain(merged.iter().filter(|r| r.location.is_none()));
    for request in ordered {
        if let Some(at) = request.location
            && !usable(at)
        {
            return Err(Error::invalid(
                "stock location",
                format!("{at} is not a location this reservation may use"),
            ));
        }
        let current = working.get(&request.variant_id).unwrap_or(&empty);
        let planned = plan_reservation(request, current, fallback)?;
        if let Some(levels) = working.get_mut(&request.variant_id) {
            for line in &planned {
                if let Some(level) = levels
                    .iter_mut()
                    .find(|l| l.location_id == line.location_id)
                {
                    level.reserved = level.reserved.saturating_add(i64::from(line.quantity));
                }
            }
        }
        lines.extend(planned);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::InventoryPolicy;

    fn setup(
        stock: &[(usize, usize, i64)],
    ) -> (
        Vec<Location>,
        Vec<VariantId>,
        HashMap<VariantId, Vec<StockLevel>>,
    ) {
        let locations: Vec<Location> = (0..3)
            .map(|i| Location::new(&format!("L{i}"), i).unwrap())
            .collect();
        let variants: Vec<VariantId> = (0..2).map(|_| VariantId::new()).collect();
        let mut levels: HashMap<VariantId, Vec<StockLevel>> = HashMap::new();
        for (v, l, n) in stock {
            levels.entry(variants[*v]).or_default().push(StockLevel {
                variant_id: variants[*v],
                location_id: locations[*l].id(),
                on_hand: *n,
                reserved: 0,
            });
        }
        (locations, variants, levels)
    }

    fn ask(v: VariantId, quantity: u32) -> StockRequest {
        StockRequest {
            variant_id: v,
            quantity,
            policy: InventoryPolicy::default(),
            channel: None,
            location: None,
        }
    }

    #[test]
    fn one_location_first_keeps_the_cart_together_where_priority_splits() {
        // L0 has only variant 0; L1 has both.
        let (locations, v, levels) = setup(&[(0, 0, 5), (0, 1, 5), (1, 1, 5)]);
        let units = [ask(v[0], 2), ask(v[1], 1)];
        let request = RoutingRequest {
            units: &units,
            levels: &levels,
            locations: &locations,
            destination: None,
        };
        let split = check_route(&request, ByPriority.route(&request).unwrap()).unwrap();
        assert_eq!(split.origins.len(), 2);
        let together = check_route(&request, OneLocationFirst.route(&request).unwrap()).unwrap();
        assert_eq!(together.origins.len(), 1);
        assert_eq!(together.origins[0].id(), locations[1].id());
        assert!(together.covers(&units));
    }

    #[test]
    fn a_short_unit_is_still_routed_and_a_wrong_answer_refused() {
        let (locations, v, levels) = setup(&[(0, 2, 1)]);
        let units = [ask(v[0], 3)];
        let request = RoutingRequest {
            units: &units,
            levels: &levels,
            locations: &locations,
            destination: None,
        };
        let plan = check_route(&request, ByPriority.route(&request).unwrap()).unwrap();
        assert_eq!(plan.lines.len(), 1, "the shortage stays where the stock is");
        assert_eq!(plan.lines[0].location_id, locations[2].id());
        assert_eq!(plan.lines[0].quantity, 3);
        let mut wrong = plan.lines.clone();
        wrong[0].quantity = 2;
        assert!(matches!(
            check_route(&request, wrong),
            Err(Error::Invalid { .. })
        ));
        let elsewhere = vec![ReservationLine {
            location_id: LocationId::new(),
            ..plan.lines[0]
        }];
        assert!(matches!(
            check_route(&request, elsewhere),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn bound_requests_never_count_the_same_units_twice() {
        let (locations, v, levels) = setup(&[(0, 0, 3), (0, 1, 3)]);
        let bound = StockRequest {
            location: Some(locations[0].id()),
            ..ask(v[0], 2)
        };
        let lines = plan_requests(&[ask(v[0], 2), bound], &levels, None, |_| true).unwrap();
        let at = |l: usize| -> u32 {
            lines
                .iter()
                .filter(|x| x.location_id == locations[l].id())
                .map(|x| x.quantity)
                .sum()
        };
        assert_eq!((at(0), at(1)), (3, 1));
        let too_many = StockRequest {
            location: Some(locations[0].id()),
            ..ask(v[0], 4)
        };
        assert!(matches!(
            plan_requests(&[too_many], &levels, None, |_| true),
            Err(Error::OutOfStock { available: 3, .. })
        ));
        assert!(matches!(
            plan_requests(&[bound], &levels, None, |_| false),
            Err(Error::Invalid { .. })
        ));
    }
}
