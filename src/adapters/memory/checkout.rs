//! The in-memory store: checkout.

use super::*;

#[async_trait]
impl CheckoutStore for MemoryStore {
    async fn begin_checkout(&self, b: BeginCheckout) -> Result<CheckoutClaim> {
        let mut s = self.lock();
        let Some(record) = s.checkouts.get_mut(&b.key) else {
            return Ok(CheckoutClaim::Claimed(s.claim_new(b, None)));
        };
        if record.cart_id != b.cart_id || record.payment_token != b.payment_token {
            return Err(Error::IdempotencyConflict(b.key.to_string()));
        }
        match &record.state {
            CheckoutState::Completed { order_id } => Ok(CheckoutClaim::Completed(*order_id)),
            CheckoutState::Failed { failure } => Ok(CheckoutClaim::Failed(failure.clone())),
            CheckoutState::InProgress => Ok(CheckoutClaim::InProgress {
                lease_until: record.lease_until,
            }),
            CheckoutState::AwaitingPayment => match &record.awaiting {
                Some(a) => Ok(CheckoutClaim::AwaitingPayment(Box::new(a.session.clone()))),
                None => Err(Error::CorruptData {
                    entity: "checkout",
                    reason: "waiting without its payment".into(),
                }),
            },
            CheckoutState::Retryable => {
                let attempt = record
                    .attempt
                    .checked_add(1)
                    .ok_or_else(|| Error::Overflow("checkout attempts"))?;
                let token = Uuid::new_v4();
                record.attempt = attempt;
                record.state = CheckoutState::InProgress;
                record.lease_token = token;
                record.lease_until = b.lease_until;
                Ok(CheckoutClaim::Claimed(Lease {
                    key: b.key,
                    token,
                    attempt,
                }))
            }
        }
    }

    async fn begin_and_reserve(
        &self,
        b: BeginCheckout,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
    ) -> Result<Option<(Lease, Reservation)>> {
        let mut s = self.lock();
        if s.checkouts.contains_key(&b.key) {
            return Ok(None);
        }
        s.release_expired(b.now);
        // All or nothing: a reservation that cannot be made changed nothing.
        let reservation = match s.reserve(requests, claims, Some(b.key.clone()), expires_at, b.now)
        {
            Ok(r) => r,
            Err(Error::OutOfStock { .. } | Error::UsageLimitReached { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let lease = s.claim_new(b, Some(reservation.id));
        Ok(Some((lease, reservation)))
    }

    async fn reserve_for_checkout(
        &self,
        lease: &Lease,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        let mut s = self.lock();
        let previous = s.leased(lease)?.reservation_id;
        s.release_expired(now);
        let undo = previous.and_then(|id| s.reservations.get(&id).cloned());
        if let Some(prev) = previous {
            s.release_reservation(prev);
        }
        match s.reserve(requests, claims, Some(lease.key.clone()), expires_at, now) {
            Ok(reservation) => {
                if let Some(record) = s.checkouts.get_mut(&lease.key) {
                    record.reservation_id = Some(reservation.id);
                }
                Ok(reservation)
            }
            Err(e) => {
                // Put the earlier hold back exactly as it was.
                if let Some(old) = undo {
                    s.restore_reservation(old);
                }
                Err(e)
            }
        }
    }

    async fn place_order(&self, lease: &Lease, order: Order, now: DateTime<Utc>) -> Result<Order> {
        // The stored copy is made before the lock, which is held for the
        // checks and the writes only.
        let stored = order.clone();
        let mut s = self.lock();
        let record = s.leased(lease)?.clone();
        s.release_expired(now);
        let reservation_id = record
            .reservation_id
            .ok_or_else(|| Error::ReservationExpired)?;
        if order.reservation_id != reservation_id {
            return Err(Error::invalid(
                "order",
                "does not carry the checkout's reservation",
            ));
        }
        match s.reservations.get(&reservation_id) {
            Some(r) if r.is_live(now) => {}
            _ => return Err(Error::ReservationExpired),
        }
        let cart = s
            .carts
            .get(&order.cart_id)
            .ok_or_else(|| Error::not_found("cart", order.cart_id))?;
        cart.ensure_active()?;
        if cart.version() != order.pricing.cart_version {
            return Err(Error::Conflict("cart"));
        }
        if s.orders.contains_key(&order.id) {
            return Err(Error::AlreadyExists {
                what: "order",
                value: order.id.to_string(),
            });
        }
        let mut cart = cart.clone();
        cart.complete(order.id);
        cart.saved(now)?;
        let mut customer = match order.customer_id {
            Some(id) => Some(
                s.customers
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| Error::UnknownCustomer(id))?,
            ),
            None => None,
        };
        if let Some(c) = customer.as_mut() {
            c.count_order();
            c.saved()?;
        }
        // Every check passed: apply.
        if let Some(r) = s.reservations.get_mut(&reservation_id)
            && let ReservationState::Pending { expires_at } = r.state
        {
            s.pending.remove(&(expires_at, reservation_id));
        }
        if let Some(r) = s.reservations.get_mut(&reservation_id) {
            r.state = ReservationState::Allocated { order_id: order.id };
        }
        s.carts.insert(cart.id(), cart);
        if let Some(c) = customer {
            s.customer_orders
                .entry(c.id())
                .or_default()
                .insert(order.id);
            s.customers.insert(c.id(), c);
        }
        s.clear_awaiting(&lease.key);
        if let Some(rec) = s.checkouts.get_mut(&lease.key) {
            rec.state = CheckoutState::Completed { order_id: order.id };
        }
        for event in order.placed_events() {
            s.push_event(event, now);
        }
        if !order.payment.reference.is_empty() {
            s.payment_refs
                .insert(order.payment.reference.clone(), order.id);
        }
        s.orders.insert(order.id, stored);
        Ok(order)
    }

    async fn end_checkout(
        &self,
        lease: &Lease,
        end: CheckoutEnd,
        _now: DateTime<Utc>,
    ) -> Result<()> {
        let mut s = self.lock();
        let record = s.leased(lease)?;
        let reservation = record.reservation_id;
        if matches!(end, CheckoutEnd::Untouched) && reservation.is_none() && record.attempt == 1 {
            s.checkouts.remove(&lease.key);
            return Ok(());
        }
        if let Some(r) = reservation {
            s.release_reservation(r);
        }
        s.clear_awaiting(&lease.key);
        if let Some(rec) = s.checkouts.get_mut(&lease.key) {
            rec.reservation_id = None;
            rec.state = match end {
                CheckoutEnd::Failed(failure) => CheckoutState::Failed { failure },
                CheckoutEnd::Retryable => CheckoutState::Retryable,
                CheckoutEnd::Untouched => {
                    if reservation.is_none() {
                        // This attempt's provider key was never used.
                        rec.attempt = rec.attempt.saturating_sub(1).max(1);
                    }
                    CheckoutState::Retryable
                }
            };
        }
        Ok(())
    }

    async fn checkout(&self, key: &IdempotencyKey) -> Result<Option<CheckoutRecord>> {
        Ok(self.lock().checkouts.get(key).cloned())
    }

    async fn prune_checkouts(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut s = self.lock();
        let was = s.checkouts.len();
        s.checkouts.retain(|_, r| {
            r.created_at >= before
                || matches!(
                    r.state,
                    CheckoutState::InProgress | CheckoutState::AwaitingPayment
                )
        });
        let State {
            checkouts,
            session_refs,
            checkout_refs,
            ..
        } = &mut *s;
        session_refs.retain(|_, key| checkouts.contains_key(key));
        checkout_refs.retain(|key, _| checkouts.contains_key(key));
        Ok((was - s.checkouts.len()) as u64)
    }

    async fn stale_checkouts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CheckoutRecord>> {
        let limit = check_limit(limit)?;
        let s = self.lock();
        let mut stale: Vec<CheckoutRecord> = s
            .checkouts
            .values()
            .filter(|r| {
                matches!(
                    r.state,
                    CheckoutState::InProgress | CheckoutState::AwaitingPayment
                ) && r.lease_until <= now
            })
            .cloned()
            .collect();
        stale.sort_by_key(|r| (r.lease_until, r.key.clone()));
        stale.truncate(limit);
        Ok(stale)
    }

    async fn claim_stale(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        let mut s = self.lock();
        let Some(r) = s.checkouts.get_mut(key) else {
            return Ok(None);
        };
        let open = matches!(
            r.state,
            CheckoutState::InProgress | CheckoutState::AwaitingPayment
        );
        if !open || r.lease_until > now {
            return Ok(None);
        }
        r.state = CheckoutState::InProgress;
        r.lease_token = Uuid::new_v4();
        r.lease_until = lease_until;
        Ok(Some(Lease {
            key: key.clone(),
            token: r.lease_token,
            attempt: r.attempt,
        }))
    }

    async fn fence_checkout(&self, lease: &Lease, lease_until: DateTime<Utc>) -> Result<()> {
        let mut s = self.lock();
        s.leased(lease)?;
        if let Some(record) = s.checkouts.get_mut(&lease.key) {
            record.awaiting = None;
            record.lease_until = lease_until;
        }
        Ok(())
    }

    async fn await_payment(
        &self,
        lease: &Lease,
        awaiting: &AwaitingPayment,
        until: DateTime<Utc>,
        hold_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut s = self.lock();
        let record = s.leased(lease)?;
        let reservation = record.reservation_id.ok_or(Error::ReservationExpired)?;
        let expires_at = match s.reservations.get(&reservation).map(|r| &r.state) {
            Some(ReservationState::Pending { expires_at }) => *expires_at,
            _ => return Err(Error::ReservationExpired),
        };
        if let Some(taken) = s.session_refs.get(&awaiting.session.reference)
            && *taken != lease.key
        {
            return Err(Error::AlreadyExists {
                what: "payment session",
                value: awaiting.session.reference.clone(),
            });
        }
        // Keep the stock until the session can be settled.
        let keep = expires_at.max(hold_until);
        s.pending.remove(&(expires_at, reservation));
        s.pending.insert((keep, reservation));
        if let Some(r) = s.reservations.get_mut(&reservation) {
            r.state = ReservationState::Pending { expires_at: keep };
        }
        let reference = awaiting.session.reference.clone();
        if let Some(old) = s.checkout_refs.insert(lease.key.clone(), reference.clone())
            && old != reference
        {
            s.session_refs.remove(&old);
        }
        s.session_refs.insert(reference, lease.key.clone());
        if let Some(rec) = s.checkouts.get_mut(&lease.key) {
            rec.state = CheckoutState::AwaitingPayment;
            rec.lease_until = until;
            rec.awaiting = Some(Box::new(awaiting.clone()));
        }
        s.push_event(awaiting.event(), now);
        Ok(())
    }

    async fn claim_awaiting(
        &self,
        key: &IdempotencyKey,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<(Lease, AwaitingPayment)>> {
        let mut s = self.lock();
        let Some(r) = s.checkouts.get_mut(key) else {
            return Ok(None);
        };
        if r.state != CheckoutState::AwaitingPayment {
            return Ok(None);
        }
        let Some(awaiting) = r.awaiting.as_deref().cloned() else {
            return Ok(None);
        };
        r.state = CheckoutState::InProgress;
        r.lease_token = Uuid::new_v4();
        r.lease_until = lease_until;
        Ok(Some((
            Lease {
                key: key.clone(),
                token: r.lease_token,
                attempt: r.attempt,
            },
            awaiting,
        )))
    }

    async fn checkout_by_payment_reference(
        &self,
        reference: &str,
    ) -> Result<Option<CheckoutRecord>> {
        let s = self.lock();
        Ok(s.session_refs
            .get(reference)
            .and_then(|key| s.checkouts.get(key))
            .cloned())
    }
}
