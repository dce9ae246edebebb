//! Fulfilment routing on the engine: which location ships which units,
//! worked out before pricing and held exactly at checkout (see
//! [`inventory::FulfilmentRouter`](crate::inventory::FulfilmentRouter)).
//!
//! The router looks at stock read without locks, like the service caches:
//! pricing is never slowed by a lock, and a plan made on a stale reading is
//! refused by the store's own check at checkout (the units are bound to
//! their locations), after which the checkout routes and prices again.

use std::collections::HashMap;

use crate::catalog::{CatalogEntry, InventoryPolicy};
use crate::channel::SalesChannel;
use crate::customer::Address;
use crate::engine::Engine;
use crate::error::Result;
use crate::id::VariantId;
use crate::inventory::{FulfilmentPlan, Location, RoutingRequest, StockRequest};

/// The stock-tracked units among `lines` (variant and quantity), one
/// request per variant in first-seen order, for routing.
pub(crate) fn tracked_units(
    lines: impl IntoIterator<Item = (VariantId, u32)>,
    catalog: &HashMap<VariantId, CatalogEntry>,
) -> Vec<StockRequest> {
    let mut units: Vec<StockRequest> = Vec::new();
    for (variant, quantity) in lines {
        let Some(entry) = catalog.get(&variant) else {
            continue;
        };
        let policy = entry.variant.inventory();
        if policy == InventoryPolicy::Untracked || quantity == 0 {
            continue;
        }
        match units.iter_mut().find(|u| u.variant_id == variant) {
            Some(u) => u.quantity = u.quantity.saturating_add(quantity),
            None => units.push(StockRequest {
                variant_id: variant,
                quantity,
                policy,
                channel: None,
                location: None,
            }),
        }
    }
    units
}

/// Whether `a` and `b` ask for the same units of the same variants.
pub(crate) fn same_units(a: &[StockRequest], b: &[StockRequest]) -> bool {
    let key = |units: &[StockRequest]| {
        let mut k: Vec<(VariantId, u32)> =
            units.iter().map(|u| (u.variant_id, u.quantity)).collect();
        k.sort_unstable();
        k
    };
    key(a) == key(b)
}

impl Engine {
    /// The shop's router's plan for `units` shipping to `destination`
    /// from the locations `channel` allows; `None` without a router, units
    /// or locations.
    ///
    /// # Errors
    /// The router's own; [`Error::Invalid`](crate::Error::Invalid)
    /// (`"fulfilment router"`) for an answer that does not route every unit
    /// exactly to an allowed location; [`Error::Storage`](crate::Error::Storage).
    pub(crate) async fn route_units(
        &self,
        units: &[StockRequest],
        channel: Option<&SalesChannel>,
        destination: Option<&Address>,
    ) -> Result<Option<FulfilmentPlan>> {
        let Some(router) = &self.inner.router else {
            return Ok(None);
        };
        if units.is_empty() {
            return Ok(None);
        }
        let store = &self.inner.store;
        let allowed = channel.and_then(|c| c.locations.as_ref());
        let locations: Vec<Location> = store
            .locations()
            .await?
            .into_iter()
            .filter(|l| allowed.is_none_or(|a| a.contains(&l.id())))
            .collect();
        if locations.is_empty() {
            return Ok(None);
        }
        let ids: Vec<VariantId> = units.iter().map(|u| u.variant_id).collect();
        let levels: HashMap<_, _> = store
            .stock_levels(&ids)
            .await?
            .into_iter()
            .map(|(v, levels)| (v, crate::inventory::levels_within(&levels, allowed)))
            .collect();
        let request = RoutingRequest {
            units,
            levels: &levels,
            locations: &locations,
            destination,
        };
        let answer = router.route(&request)?;
        crate::inventory::check_route(&request, answer).map(Some)
    }
}
