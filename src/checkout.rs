//! The checkout saga: price → reserve → authorize → place → capture.
//!
//! Each step that changes the store is one atomic command guarded by a
//! [`Lease`]; each provider call carries an idempotency key derived from the
//! checkout's key and attempt number. So:
//!
//! - the same key always gets the same outcome, and never a second charge;
//! - concurrent calls with one key run the checkout once (the others wait
//!   for its outcome);
//! - a declined payment releases the stock and leaves the cart as it was;
//! - a failure after authorization voids it;
//! - a crash at any point is cleaned up by [`Engine::recover`] (or by the next
//!   call with the same key): the hold is voided, the stock released, and the
//!   key may run again as a new attempt; an order placed but not yet captured
//!   (immediate capture) is captured.
//!
//! Outcomes saved against the key are the order, a payment decline and an
//! out-of-stock refusal. Validation errors (an empty cart, a missing address)
//! are not saved, as at Stripe: fix the cart and retry with the same key.

use std::time::Instant;

use crate::actor::Actor;
use crate::engine::{CaptureMode, Engine};
use crate::error::{Error, Result};
use crate::id::{IdempotencyKey, OrderId, PaymentId};
use crate::inventory::StockRequest;
use crate::order::{Order, OrderChange, OrderStatus};
use crate::payment::{
    AuthorizeRequest, CaptureRequest, Payment, PaymentError, PaymentStatus, ProviderResponse,
    ProviderStatus, VoidRequest,
};
use crate::store::{
    BeginCheckout, CheckoutClaim, CheckoutEnd, CheckoutFailure, CheckoutState, EventKind, Lease,
};

/// Longest payment token accepted, in characters.
pub const MAX_PAYMENT_TOKEN_LEN: usize = 255;

/// A request to check out a cart.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// The cart.
    pub cart_id: crate::id::CartId,
    /// Makes the request safe to retry; use a new key for a new attempt to pay
    /// (for example with another card).
    pub idempotency_key: IdempotencyKey,
    /// The payment method token from the provider's client library.
    pub payment_token: String,
    /// Who is checking out.
    pub actor: Actor,
    /// The total the customer was shown. If set and the cart prices to
    /// anything else at checkout (a promotion ended, a code was used up
    /// meanwhile), checkout fails with [`Error::PriceChanged`] before
    /// reserving or charging anything.
    pub expected_total: Option<crate::money::Money>,
}

/// What [`Engine::recover`] cleaned up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Expired stock reservations released.
    pub released_reservations: u64,
    /// Stale checkout attempts cleaned up (made retryable).
    pub reset_checkouts: u64,
    /// Payment holds voided along the way.
    pub voided_authorizations: u64,
    /// Orders whose immediate capture had not happened (the process stopped
    /// between placing and capturing), captured now.
    pub captured_orders: u64,
}

/// How far an attempt got, for compensation.
struct Progress {
    /// What the provider may hold.
    hold: Hold,
    /// Whether the attempt went past validation (reserved stock).
    touched: bool,
}

/// How far an attempt got with the provider.
enum Hold {
    /// Nothing can be held.
    None,
    /// The authorize call's outcome is unknown.
    Unknown,
    /// Funds are held under this reference.
    Held(ProviderResponse),
}

fn authorize_key(key: &IdempotencyKey, attempt: u32) -> String {
    format!("{key}:{attempt}:authorize")
}

fn void_key(key: &IdempotencyKey, attempt: u32) -> String {
    format!("{key}:{attempt}:void")
}

fn capture_key(key: &IdempotencyKey) -> String {
    format!("{key}:capture")
}

impl Engine {
    /// Checks out a cart: see the [module documentation](crate::checkout).
    ///
    /// Returns the placed order — the same order for every call with the same
    /// key. With [`CaptureMode::Immediate`] the payment is captured before
    /// returning; if that capture fails the order stays authorized and
    /// [`Engine::capture`] can be called again later.
    pub async fn checkout(&self, request: CheckoutRequest) -> Result<Order> {
        let token = request.payment_token.trim();
        if token.is_empty() || token.chars().count() > MAX_PAYMENT_TOKEN_LEN {
            return Err(Error::invalid(
                "payment token",
                format!("must be 1 to {MAX_PAYMENT_TOKEN_LEN} characters"),
            ));
        }
        let deadline = Instant::now() + self.inner.config.checkout_wait;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            let now = self.now();
            let claim = self
                .inner
                .store
                .begin_checkout(BeginCheckout {
                    key: request.idempotency_key.clone(),
                    cart_id: request.cart_id,
                    payment_token: token.to_owned(),
                    now,
                    lease_until: now + self.inner.config.checkout_lease,
                })
                .await?;
            match claim {
                CheckoutClaim::Claimed(lease) => {
                    return self.run_attempt(&request, token, lease).await;
                }
                CheckoutClaim::Completed(order_id) => {
                    return self.order(&request.actor, order_id).await;
                }
                CheckoutClaim::Failed(failure) => return Err(failure.into()),
                CheckoutClaim::InProgress { lease_until } => {
                    if lease_until <= now {
                        // The running attempt died: clean it up, then run anew.
                        self.recover_checkout(&request.idempotency_key).await?;
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::CheckoutInProgress(
                            request.idempotency_key.to_string(),
                        ));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
            }
        }
    }

    async fn run_attempt(
        &self,
        request: &CheckoutRequest,
        token: &str,
        lease: Lease,
    ) -> Result<Order> {
        let mut progress = Progress {
            hold: Hold::None,
            touched: false,
        };
        let error = match self.attempt(request, token, &lease, &mut progress).await {
            Ok(order) => return Ok(self.capture_if_immediate(order).await),
            Err(e) => e,
        };
        // A store error on `place_order` may hide a commit that happened:
        // believe the record, never void a placed order's payment.
        if let Ok(Some(record)) = self.inner.store.checkout(&lease.key).await
            && let CheckoutState::Completed { order_id } = record.state
        {
            let order = self.inner.store.order(order_id).await?;
            return Ok(self.capture_if_immediate(order).await);
        }
        if !self.release_hold(&lease, progress.hold).await {
            // The hold could not be voided now; the attempt stays in progress
            // and recovery voids it once the lease ends.
            return Err(error);
        }
        let end = match CheckoutFailure::from_error(&error) {
            Some(failure) => CheckoutEnd::Failed(failure),
            None if progress.touched => CheckoutEnd::Retryable,
            None => CheckoutEnd::Untouched,
        };
        // If this fails (lease lost, store down) the attempt stays in
        // progress and recovery ends it; the caller still gets the real error.
        let _ended = self.inner.store.end_checkout(&lease, end, self.now()).await;
        Err(error)
    }

    /// The forward path. On error, `progress` says what must be undone.
    async fn attempt(
        &self,
        request: &CheckoutRequest,
        token: &str,
        lease: &Lease,
        progress: &mut Progress,
    ) -> Result<Order> {
        let store = &self.inner.store;
        let cart = self.cart(&request.actor, request.cart_id).await?;
        cart.ensure_active()?;
        if cart.lines().is_empty() {
            return Err(Error::EmptyCart);
        }
        let crate::promotions::Priced {
            cart: priced,
            catalog: entries,
            email,
        } = self.price_with_catalog(&cart).await?;
        if let Some(expected) = request.expected_total
            && expected != priced.total
        {
            return Err(Error::PriceChanged {
                expected,
                actual: priced.total,
            });
        }
        // A code the customer entered that ran out meanwhile fails the
        // checkout rather than silently charging full price.
        for code in cart.coupon_codes() {
            if let Some(crate::pricing::Rejection::UsedUp {
                counter,
                limit,
                used,
            }) = priced.code_outcome(code).and_then(|o| o.rejection())
            {
                return Err(Error::UsageLimitReached {
                    counter: counter.clone(),
                    limit: *limit,
                    used: *used,
                });
            }
        }
        if priced.requires_shipping {
            if cart.shipping_address().is_none() {
                return Err(Error::Incomplete("shipping address"));
            }
            if priced.shipping.is_none() {
                return Err(Error::Incomplete("shipping method"));
            }
        }
        let email = email.ok_or(Error::Incomplete("email"))?;

        // Every priced line, free gifts included, needs stock.
        let requests = priced
            .lines
            .iter()
            .map(|l| {
                let entry = entries
                    .get(&l.variant_id)
                    .ok_or_else(|| Error::not_found("variant", l.variant_id))?;
                Ok(StockRequest {
                    variant_id: l.variant_id,
                    quantity: l.quantity,
                    policy: entry.variant.inventory(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let now = self.now();
        progress.touched = true;
        let reservation = store
            .reserve_for_checkout(
                lease,
                &requests,
                &priced.usage_claims,
                now + self.inner.config.reservation_ttl,
                now,
            )
            .await?;

        let provider = &self.inner.payments;
        let authorize_key = authorize_key(&lease.key, lease.attempt);
        let payment = if priced.total.is_zero() {
            // Nothing to charge: a free order needs no provider call.
            Payment {
                id: PaymentId::new(),
                provider: "none".into(),
                reference: String::new(),
                authorize_key,
                authorized: priced.total,
                captured: priced.total,
                refunded: crate::money::Money::zero(priced.currency),
                status: PaymentStatus::Captured,
                operations: Vec::new(),
            }
        } else {
            progress.hold = Hold::Unknown;
            let response = provider
                .authorize(AuthorizeRequest {
                    idempotency_key: authorize_key.clone(),
                    amount: priced.total,
                    payment_token: token.to_owned(),
                    reference: lease.key.to_string(),
                })
                .await;
            let response = match response {
                Ok(r) => r,
                Err(e @ PaymentError::Declined { .. }) => {
                    progress.hold = Hold::None;
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            progress.hold = Hold::Held(response.clone());
            if response.amount != priced.total || response.status != ProviderStatus::Authorized {
                return Err(Error::PaymentUnavailable(
                    "provider answered with a different amount or status".into(),
                ));
            }
            Payment {
                id: PaymentId::new(),
                provider: provider.name().to_owned(),
                reference: response.reference,
                authorize_key,
                authorized: priced.total,
                captured: crate::money::Money::zero(priced.currency),
                refunded: crate::money::Money::zero(priced.currency),
                status: PaymentStatus::Authorized,
                operations: Vec::new(),
            }
        };

        let mut order = Order {
            id: OrderId::new(),
            checkout_key: lease.key.clone(),
            cart_id: cart.id(),
            customer_id: cart.customer_id(),
            email: Some(email),
            shipping_address: cart.shipping_address().cloned(),
            billing_address: cart.billing_address().or(cart.shipping_address()).cloned(),
            pricing: priced,
            payment,
            reservation_id: reservation.id,
            status: OrderStatus::Placed,
            placed_at: now,
            history: Vec::new(),
            shipments: Vec::new(),
            returns: Vec::new(),
            notes: Vec::new(),
            provider_events: Vec::new(),
            version: 0,
        };
        let actor = request.actor.clone();
        order.record_placed(now, &actor);
        store.place_order(lease, order, self.now()).await
    }

    /// Voids whatever the attempt may hold. False if that could not be done now.
    async fn release_hold(&self, lease: &Lease, hold: Hold) -> bool {
        let reference = match hold {
            Hold::None => return true,
            Hold::Held(r) => r,
            Hold::Unknown => match self
                .inner
                .payments
                .find_authorization(&authorize_key(&lease.key, lease.attempt))
                .await
            {
                Ok(Some(r)) => r,
                Ok(None) => return true,
                Err(_) => return false,
            },
        };
        if reference.status != ProviderStatus::Authorized {
            return reference.status == ProviderStatus::Voided;
        }
        self.inner
            .payments
            .void(VoidRequest {
                idempotency_key: void_key(&lease.key, lease.attempt),
                authorization: reference.reference,
            })
            .await
            .is_ok()
    }

    async fn capture_if_immediate(&self, order: Order) -> Order {
        if self.inner.config.capture != CaptureMode::Immediate
            || order.payment().status != PaymentStatus::Authorized
        {
            return order;
        }
        // A failed capture leaves the order authorized; `capture` can be retried.
        let key = capture_key(order.checkout_key());
        match self
            .capture_order(order.clone(), None, &key, &Actor::System)
            .await
        {
            Ok(captured) => captured,
            Err(_) => order,
        }
    }

    /// Captures everything still authorized on an order (staff and the
    /// system only). Idempotent: the provider is called with the same key
    /// every time and the capture is recorded once.
    pub async fn capture(&self, actor: &Actor, order_id: OrderId) -> Result<Order> {
        let order = self.load_order(actor, order_id).await?;
        let key = capture_key(order.checkout_key());
        self.capture_order(order, None, &key, actor).await
    }

    /// Captures `amount` (everything still authorized when `None`) under the
    /// caller's idempotency key (staff and the system only). Several partial
    /// captures may follow each other up to the authorized amount; the same
    /// key twice captures once.
    pub async fn capture_partial(
        &self,
        actor: &Actor,
        order_id: OrderId,
        amount: Option<crate::money::Money>,
        key: &IdempotencyKey,
    ) -> Result<Order> {
        let order = self.load_order(actor, order_id).await?;
        self.capture_order(order, amount, &format!("{}:capture:{key}", order_id), actor)
            .await
    }

    async fn capture_order(
        &self,
        mut order: Order,
        amount: Option<crate::money::Money>,
        key: &str,
        actor: &Actor,
    ) -> Result<Order> {
        if !actor.is_privileged() {
            return Err(Error::Forbidden);
        }
        if order.payment().operation(key).is_some() {
            return Ok(order);
        }
        // The amount is fixed once: a retry must send the provider the same request.
        let amount = match amount {
            Some(a) => a,
            None => order.payment().capturable()?,
        };
        if amount.is_zero() && order.payment().status == PaymentStatus::Captured {
            return Ok(order);
        }
        // Check locally before asking the provider.
        order.clone().capture(key, amount, self.now(), actor)?;
        let response = self
            .inner
            .payments
            .capture(CaptureRequest {
                idempotency_key: key.to_owned(),
                authorization: order.payment().reference.clone(),
                amount,
            })
            .await?;
        for _ in 0..self.inner.config.max_retries {
            if order.payment().operation(key).is_some() {
                return Ok(order);
            }
            let mut next = order.clone();
            next.capture_reported(key, response.captured_total, amount, self.now(), actor)?;
            let captured = next
                .payment()
                .captured
                .checked_sub(order.payment().captured)?;
            let events = if captured.is_zero() {
                Vec::new()
            } else {
                vec![EventKind::PaymentCaptured {
                    order_id: order.id(),
                    amount: captured,
                }]
            };
            let change = OrderChange::new(next).with_events(events);
            match self.inner.store.save_order(change, self.now()).await {
                // Someone else changed the order meanwhile (a webhook may have
                // recorded this very capture): reconcile again.
                Err(Error::Conflict(_)) => order = self.inner.store.order(order.id()).await?,
                other => return other,
            }
        }
        Err(Error::Conflict("order"))
    }

    /// Applies a payment provider's webhook event to the order holding its
    /// authorization: once per event id, in any order of arrival, and without
    /// ever counting a capture or refund twice. An event for an unknown
    /// authorization is [`Error::NotFound`] and changes nothing.
    pub async fn apply_provider_event(
        &self,
        event: &crate::payment::ProviderEvent,
    ) -> Result<Order> {
        let id_ok = !event.id.is_empty()
            && event.id.len() <= 255
            && event.id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok {
            return Err(Error::invalid(
                "provider event id",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        let name = self.inner.payments.name().to_owned();
        let provider = Actor::Provider(name.clone());
        let id = self
            .inner
            .store
            .order_by_payment_reference(&event.authorization)
            .await?
            .ok_or_else(|| Error::not_found("authorization", &event.authorization))?
            .id();
        self.modify_order(&provider, id, |mut order| {
            let before = order.payment().clone();
            if !order.apply_provider_event(event, &name, self.now())? {
                return Ok(None);
            }
            let after = order.payment().clone();
            let mut events = Vec::new();
            let captured = after.captured.checked_sub(before.captured)?;
            if !captured.is_zero() {
                events.push(EventKind::PaymentCaptured {
                    order_id: id,
                    amount: captured,
                });
            }
            let refunded = after.refunded.checked_sub(before.refunded)?;
            if !refunded.is_zero() {
                events.push(EventKind::PaymentRefunded {
                    order_id: id,
                    amount: refunded,
                });
            }
            Ok(Some(OrderChange::new(order).with_events(events)))
        })
        .await
    }

    /// Cancels an order that has not shipped: releases the payment hold (or
    /// refunds what was captured), gives the stock and any coupon uses back,
    /// and records why. The order's customer or staff may cancel.
    /// Idempotent: cancelling a cancelled order returns it unchanged.
    pub async fn cancel(&self, actor: &Actor, order_id: OrderId, reason: &str) -> Result<Order> {
        let mut order = self.load_order(actor, order_id).await?;
        if matches!(actor, Actor::Guest) {
            return Err(Error::Forbidden);
        }
        for _ in 0..self.inner.config.max_retries {
            if order.status() == OrderStatus::Cancelled {
                return Ok(order.visible_to(actor));
            }
            let payment = order.payment().clone();
            let refund_key = format!("{order_id}:cancel:refund");
            let void_key = format!("{order_id}:cancel:void");
            let refundable = payment.refundable()?;
            let refund = (!refundable.is_zero()).then_some((refund_key.as_str(), refundable));
            let void = (payment.status == PaymentStatus::Authorized).then_some(void_key.as_str());
            let mut next = order.clone();
            next.cancel(reason, refund, void, self.now(), actor)?;
            if let Some((key, amount)) = refund {
                self.inner
                    .payments
                    .refund(crate::payment::RefundRequest {
                        idempotency_key: key.to_owned(),
                        authorization: payment.reference.clone(),
                        amount,
                    })
                    .await?;
            }
            if let Some(key) = void {
                self.inner
                    .payments
                    .void(VoidRequest {
                        idempotency_key: key.to_owned(),
                        authorization: payment.reference.clone(),
                    })
                    .await?;
            }
            let mut events = vec![EventKind::OrderCancelled { order_id }];
            if let Some((_, amount)) = refund {
                events.push(EventKind::PaymentRefunded { order_id, amount });
            }
            if void.is_some() {
                events.push(EventKind::PaymentVoided { order_id });
            }
            let change = OrderChange {
                release_reservation: true,
                ..OrderChange::new(next).with_events(events)
            };
            match self.inner.store.save_order(change, self.now()).await {
                Err(Error::Conflict(_)) => order = self.inner.store.order(order_id).await?,
                other => return other.map(|o| o.visible_to(actor)),
            }
        }
        Err(Error::Conflict("order"))
    }

    /// Cleans up after crashes: releases expired stock reservations and, for
    /// every checkout attempt whose lease ended without an order, voids its
    /// payment hold, releases its stock and lets its key run again.
    ///
    /// Safe to run at any time, from any number of instances at once.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport {
            released_reservations: self.inner.store.release_expired(self.now()).await?,
            ..RecoveryReport::default()
        };
        loop {
            let stale = self.inner.store.stale_checkouts(self.now(), 100).await?;
            if stale.is_empty() {
                break;
            }
            let mut progressed = false;
            for record in stale {
                if let Some(voided) = self.recover_checkout(&record.key).await? {
                    progressed = true;
                    report.reset_checkouts += 1;
                    report.voided_authorizations += u64::from(voided);
                }
            }
            if !progressed {
                break;
            }
        }
        if self.inner.config.capture == CaptureMode::Immediate {
            report.captured_orders = self.capture_stranded().await?;
        }
        Ok(report)
    }

    /// With immediate capture, an order still placed and only authorized
    /// after the checkout lease was left behind by a stopped process: capture
    /// it under its checkout's capture key (a no-op if it already happened).
    async fn capture_stranded(&self) -> Result<u64> {
        let cutoff = self.now() - self.inner.config.checkout_lease;
        let mut before = None;
        let mut captured = 0;
        loop {
            let page = self
                .inner
                .store
                .find_orders(&crate::order::OrderQuery {
                    status: Some(OrderStatus::Placed),
                    placed_until: Some(cutoff),
                    before,
                    limit: 100,
                    ..Default::default()
                })
                .await?;
            for order in &page {
                if order.payment().status == PaymentStatus::Authorized {
                    let key = capture_key(order.checkout_key());
                    // A capture the gateway refuses now is left for staff.
                    if self
                        .capture_order(order.clone(), None, &key, &Actor::System)
                        .await
                        .is_ok()
                    {
                        captured += 1;
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == 100 => before = Some(last.id()),
                _ => return Ok(captured),
            }
        }
    }

    /// Cleans up one stale attempt. `None` if it was not stale (any more);
    /// otherwise whether a hold was voided.
    async fn recover_checkout(&self, key: &IdempotencyKey) -> Result<Option<bool>> {
        let now = self.now();
        let Some(lease) = self
            .inner
            .store
            .claim_stale(key, now, now + self.inner.config.checkout_lease)
            .await?
        else {
            return Ok(None);
        };
        let found = self
            .inner
            .payments
            .find_authorization(&authorize_key(key, lease.attempt))
            .await
            .map_err(Error::from)?;
        let mut voided = false;
        if let Some(auth) = found
            && auth.status == ProviderStatus::Authorized
        {
            self.inner
                .payments
                .void(VoidRequest {
                    idempotency_key: void_key(key, lease.attempt),
                    authorization: auth.reference,
                })
                .await
                .map_err(Error::from)?;
            voided = true;
        }
        self.inner
            .store
            .end_checkout(&lease, CheckoutEnd::Retryable, self.now())
            .await?;
        Ok(Some(voided))
    }
}
