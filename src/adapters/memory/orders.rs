//! The in-memory store: orders.

use super::*;

#[async_trait]
impl OrderStore for MemoryStore {
    /// Scans every order (the memory store keeps no index by email).
    async fn orders_placed_by(
        &self,
        customer: Option<CustomerId>,
        email: Option<&Email>,
    ) -> Result<u64> {
        if customer.is_none() && email.is_none() {
            return Ok(0);
        }
        let s = self.lock();
        let n = s
            .orders
            .values()
            .filter(|o| o.placed_by(customer, email))
            .count();
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    async fn order(&self, id: OrderId) -> Result<Order> {
        self.lock()
            .orders
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("order", id))
    }

    async fn order_by_payment_reference(&self, reference: &str) -> Result<Option<Order>> {
        if reference.is_empty() {
            return Ok(None);
        }
        let s = self.lock();
        Ok(s.payment_refs
            .get(reference)
            .and_then(|id| s.orders.get(id))
            .cloned())
    }

    async fn find_orders(&self, query: &OrderQuery) -> Result<Vec<Order>> {
        let limit = check_limit(query.limit)?;
        let s = self.lock();
        let candidates: Box<dyn Iterator<Item = &Order>> = match query.customer {
            Some(c) => Box::new(
                s.customer_orders
                    .get(&c)
                    .into_iter()
                    .flat_map(|ids| ids.iter().rev())
                    .filter_map(|id| s.orders.get(id)),
            ),
            None => Box::new(s.orders.values().rev()),
        };
        Ok(candidates
            .filter(|o| query.matches(o))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn save_order(&self, change: OrderChange, now: DateTime<Utc>) -> Result<Order> {
        let mut s = self.lock();
        let id = change.order.id;
        let stored = s
            .orders
            .get(&id)
            .ok_or_else(|| Error::not_found("order", id))?;
        if stored.version != change.order.version {
            return Err(Error::Conflict("order"));
        }
        let mut order = change.order;
        order.saved()?;
        // Work out every stock and reservation change before making any.
        let mut held = match s.reservations.get(&order.reservation_id) {
            Some(r) => r.clone(),
            None => return Err(Error::not_found("reservation", order.reservation_id)),
        };
        // Units added to the order join its reservation from a pending one.
        let merged = match change.merge_reservation {
            Some(extra) => {
                let pending = s.reservations.get(&extra).filter(|r| {
                    extra != held.id && matches!(r.state, ReservationState::Pending { .. })
                });
                let Some(pending) = pending else {
                    return Err(Error::Conflict("reservation"));
                };
                if matches!(held.state, ReservationState::Released) {
                    return Err(Error::invalid("order", "its stock was given back"));
                }
                for line in &pending.lines {
                    match held.lines.iter_mut().find(|h| {
                        h.variant_id == line.variant_id && h.location_id == line.location_id
                    }) {
                        Some(h) => {
                            h.quantity = h
                                .quantity
                                .checked_add(line.quantity)
                                .ok_or(Error::Overflow("reserved units"))?;
                        }
                        None => held.lines.push(*line),
                    }
                }
                held.state = ReservationState::Allocated { order_id: id };
                let mut spent = pending.clone();
                spent.lines.clear();
                spent.state = ReservationState::Committed;
                Some(spent)
            }
            None => None,
        };
        let mut levels: HashMap<(VariantId, LocationId), Level> = HashMap::new();
        // Shipped units leave the reservation and the shelf; freed units
        // leave the reservation only.
        let taken = change
            .ship
            .iter()
            .map(|l| (l, true))
            .chain(change.unreserve.iter().map(|l| (l, false)));
        for (line, shipped) in taken {
            if !matches!(held.state, ReservationState::Allocated { .. }) {
                return Err(Error::invalid(
                    "shipment",
                    "the order's stock is no longer held",
                ));
            }
            let q = line.quantity;
            let from = held
                .lines
                .iter_mut()
                .find(|l| {
                    l.variant_id == line.variant_id
                        && l.location_id == line.location_id
                        && l.quantity >= q
                })
                .ok_or_else(|| {
                    Error::invalid("shipment", "ships units the order does not hold there")
                })?;
            from.quantity -= q;
            let key = (line.variant_id, line.location_id);
            let level = match levels.get(&key) {
                Some(l) => *l,
                None => s
                    .stock
                    .get(&key)
                    .copied()
                    .ok_or_else(|| Error::not_found("stock level", line.variant_id))?,
            };
            levels.insert(
                key,
                Level {
                    on_hand: level.on_hand - if shipped { i64::from(q) } else { 0 },
                    reserved: level.reserved - i64::from(q),
                },
            );
        }
        held.lines.retain(|l| l.quantity > 0);
        let took = !change.ship.is_empty() || !change.unreserve.is_empty();
        if took && held.lines.is_empty() {
            held.state = ReservationState::Committed;
        }
        for line in &change.restock {
            let key = (line.variant_id, line.location_id);
            let level = match levels.get(&key) {
                Some(l) => *l,
                None => s
                    .stock
                    .get(&key)
                    .copied()
                    .ok_or_else(|| Error::not_found("stock level", line.variant_id))?,
            };
            let on_hand = level
                .on_hand
                .checked_add(i64::from(line.quantity))
                .filter(|v| *v <= MAX_ON_HAND)
                .ok_or_else(|| Error::Overflow("stock on hand"))?;
            levels.insert(key, Level { on_hand, ..level });
        }
        s.stock.extend(levels);
        s.reservations.insert(held.id, held);
        if let Some(spent) = merged {
            s.reservations.insert(spent.id, spent);
        }
        if change.release_reservation {
            s.release_reservation(order.reservation_id);
        }
        for kind in change.events {
            s.push_event(kind, now);
        }
        s.orders.insert(id, order.clone());
        Ok(order)
    }
}
