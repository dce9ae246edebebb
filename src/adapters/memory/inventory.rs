//! The in-memory store: inventory.

use super::*;

#[async_trait]
impl InventoryStore for MemoryStore {
    async fn insert_location(&self, location: Location) -> Result<()> {
        let mut s = self.lock();
        if s.locations.iter().any(|l| l.id() == location.id()) {
            return Err(Error::AlreadyExists {
                what: "location",
                value: location.id().to_string(),
            });
        }
        s.locations.push(location);
        s.locations.sort_by_key(|l| (l.priority(), l.id()));
        Ok(())
    }

    async fn locations(&self) -> Result<Vec<Location>> {
        Ok(self.lock().locations.clone())
    }

    async fn set_stock(
        &self,
        variant: VariantId,
        location: LocationId,
        on_hand: i64,
    ) -> Result<StockLevel> {
        let on_hand = crate::inventory::check_on_hand(on_hand)?;
        let mut s = self.lock();
        if !s.variants.contains_key(&variant) {
            return Err(Error::not_found("variant", variant));
        }
        if !s.locations.iter().any(|l| l.id() == location) {
            return Err(Error::not_found("location", location));
        }
        let level = s.stock.entry((variant, location)).or_default();
        level.on_hand = on_hand;
        Ok(StockLevel {
            variant_id: variant,
            location_id: location,
            on_hand,
            reserved: level.reserved,
        })
    }

    async fn adjust_stock(
        &self,
        variant: VariantId,
        location: LocationId,
        delta: i64,
    ) -> Result<StockLevel> {
        let mut s = self.lock();
        if !s.variants.contains_key(&variant) {
            return Err(Error::not_found("variant", variant));
        }
        if !s.locations.iter().any(|l| l.id() == location) {
            return Err(Error::not_found("location", location));
        }
        let current = s
            .stock
            .get(&(variant, location))
            .copied()
            .unwrap_or_default();
        let on_hand = crate::inventory::check_on_hand(
            current
                .on_hand
                .checked_add(delta)
                .ok_or_else(|| Error::Overflow("stock"))?,
        )?;
        let level = s.stock.entry((variant, location)).or_default();
        level.on_hand = on_hand;
        Ok(StockLevel {
            variant_id: variant,
            location_id: location,
            on_hand,
            reserved: level.reserved,
        })
    }

    async fn stock(&self, variant: VariantId) -> Result<StockSummary> {
        let s = self.lock();
        if !s.variants.contains_key(&variant) {
            return Err(Error::not_found("variant", variant));
        }
        let levels = s.levels(variant);
        Ok(StockSummary::new(variant, levels))
    }

    async fn reserve(
        &self,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        let mut s = self.lock();
        s.release_expired(now);
        s.reserve(requests, claims, None, expires_at, now)
    }

    async fn usage(&self, counter: &str) -> Result<u64> {
        Ok(self.lock().usage.get(counter).copied().unwrap_or(0))
    }

    async fn release(&self, id: ReservationId, _now: DateTime<Utc>) -> Result<Reservation> {
        let mut s = self.lock();
        if !s.reservations.contains_key(&id) {
            return Err(Error::not_found("reservation", id));
        }
        s.release_reservation(id);
        s.reservations
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", id))
    }

    async fn commit(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        let mut s = self.lock();
        s.release_expired(now);
        let r = s
            .reservations
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", id))?;
        match r.state {
            ReservationState::Pending { expires_at } => {
                s.pending.remove(&(expires_at, id));
            }
            ReservationState::Allocated { .. } => {}
            ReservationState::Released => return Err(Error::ReservationExpired),
            ReservationState::Committed => return Ok(r),
        }
        for line in &r.lines {
            if let Some(level) = s.stock.get_mut(&(line.variant_id, line.location_id)) {
                level.reserved -= i64::from(line.quantity);
                level.on_hand -= i64::from(line.quantity);
            }
        }
        let stored = s
            .reservations
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("reservation", id))?;
        stored.state = ReservationState::Committed;
        Ok(stored.clone())
    }

    async fn reservation(&self, id: ReservationId) -> Result<Reservation> {
        self.lock()
            .reservations
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", id))
    }

    async fn release_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        Ok(self.lock().release_expired(now))
    }

    async fn flag_low_stock(
        &self,
        variant: VariantId,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<EventKind>> {
        let mut s = self.lock();
        if !s.variants.contains_key(&variant) {
            return Err(Error::not_found("variant", variant));
        }
        let summary = StockSummary::new(variant, s.levels(variant));
        let (low, event) = crate::inventory::low_stock_mark(&summary, threshold);
        let changed = if low {
            s.low_stock.insert(variant)
        } else {
            s.low_stock.remove(&variant)
        };
        if !changed {
            return Ok(None);
        }
        s.push_event(event.clone(), now);
        Ok(Some(event))
    }
}
