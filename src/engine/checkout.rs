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
//!
//! Does not know: SQL or a gateway's protocol: it sequences store commands and
//! provider calls through the ports.

use std::time::Instant;

use crate::actor::{AccessToken, Actor};
use crate::engine::{CaptureMode, Engine};
use crate::error::{Error, Result};
use crate::id::{IdempotencyKey, OrderId, PaymentId};
use crate::inventory::{Reservation, StockRequest};
use crate::order::{Effects, Order, OrderStatus};
use crate::payment::{
    AuthorizeRequest, Payment, PaymentError, PaymentStatus, ProviderResponse, ProviderStatus,
    RefundRequest, VoidRequest,
};
use crate::store::{
    BeginCheckout, CheckoutClaim, CheckoutEnd, CheckoutFailure, CheckoutState, Lease,
};

/// Longest payment token accepted, in characters.
pub const MAX_PAYMENT_TOKEN_LEN: usize = 255;

/// A request to check out a cart.
#[derive(Debug, Clone)]
#[non_exhaustive]
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

impl CheckoutRequest {
    /// `actor` checks out `cart_id` under `idempotency_key`, paying with
    /// `payment_token`, with no expected total.
    pub fn new(
        cart_id: crate::id::CartId,
        idempotency_key: IdempotencyKey,
        payment_token: impl Into<String>,
        actor: Actor,
    ) -> Self {
        Self {
            cart_id,
            idempotency_key,
            payment_token: payment_token.into(),
            actor,
            expected_total: None,
        }
    }
}

crate::domain::setters!(CheckoutRequest {
    cart_id: crate::id::CartId,
    idempotency_key: IdempotencyKey,
    actor: Actor,
} into {
    payment_token: String,
    expected_total: Option<crate::money::Money>,
});

/// How a placed order's payment stands when checkout returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PaymentOutcome {
    /// Placed and paid: captured (or nothing to pay).
    Paid,
    /// Placed and authorized; capture is left to the shop
    /// ([`CaptureMode::Manual`]).
    Authorized,
    /// Placed and authorized, but the immediate capture got no answer: it is
    /// recorded as pending and a retry with the same key, [`Engine::capture`]
    /// or recovery finishes it.
    CapturePending,
}

/// What [`Engine::checkout`] returns: the same for every call with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckoutOutcome {
    /// The placed order (as the caller may see it).
    pub order: Order,
    /// How its payment stands.
    pub payment: PaymentOutcome,
    /// For a guest order: the proof of ownership to hand to the guest
    /// ([`Actor::GuestWithToken`]); the engine keeps only its hash.
    pub access_token: Option<AccessToken>,
}

/// The access token of a guest order: derived from the winning attempt's
/// lease token (random, held only in the checkout's idempotency record,
/// which retention prunes) and the order id, so every retry with the key
/// gets the same token while the order stores only its hash.
fn guest_token(lease_token: uuid::Uuid, order: OrderId) -> AccessToken {
    AccessToken::derive(lease_token.as_bytes(), order.as_uuid().as_bytes())
}

/// What [`Engine::recover`] cleaned up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Orders whose pending payment operation (capture, refund, void) or
    /// cancellation was finished.
    pub settled_operations: u64,
}

/// A checkout's cart, priced and checked, with the stock it needs.
struct Prepared {
    cart: crate::cart::Cart,
    priced: crate::pricing::PricedCart,
    email: crate::customer::Email,
    requests: Vec<StockRequest>,
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

/// The key of the refund that undoes a sale (authorized and collected in
/// one call) whose checkout did not complete.
fn unsell_key(key: &IdempotencyKey, attempt: u32) -> String {
    format!("{key}:{attempt}:refund")
}

/// The request key of the capture a checkout makes with immediate capture.
const CHECKOUT_CAPTURE: &str = "checkout:capture";

impl Engine {
    /// Checks out a cart: see the [module documentation](crate::checkout).
    ///
    /// Returns the placed order, how its payment stands and, for a guest
    /// order, the access token that proves ownership of it
    /// ([`Actor::GuestWithToken`]) — the same outcome for every call with
    /// the same key. With [`CaptureMode::Immediate`] the payment is captured
    /// before returning; if that capture gets no answer the outcome says
    /// [`PaymentOutcome::CapturePending`] and a retry with the same key
    /// (or [`Engine::capture`], or recovery) tries it again.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the actor may not use the cart; validation
    /// errors ([`Error::EmptyCart`], [`Error::Incomplete`],
    /// [`Error::PriceChanged`], [`Error::Invalid`]); [`Error::OutOfStock`],
    /// [`Error::UsageLimitReached`], [`Error::PaymentDeclined`] (saved
    /// against the key); [`Error::IdempotencyConflict`] for a key reused with
    /// another cart or token; [`Error::CheckoutInProgress`] when another call
    /// with the key is still running after the configured wait; store and
    /// provider errors.
    #[tracing::instrument(name = "checkout", skip_all, fields(cart_id = %request.cart_id, key = %request.idempotency_key))]
    pub async fn checkout(&self, request: CheckoutRequest) -> Result<CheckoutOutcome> {
        let token = request.payment_token.trim();
        if token.is_empty() || token.chars().count() > MAX_PAYMENT_TOKEN_LEN {
            return Err(Error::invalid(
                "payment token",
                format!("must be 1 to {MAX_PAYMENT_TOKEN_LEN} characters"),
            ));
        }
        if matches!(request.actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        let deadline = Instant::now() + self.inner.config.checkout_wait;
        let mut pause = std::time::Duration::from_millis(5);
        // The usual case, a key never seen: price first, then claim the key
        // and reserve in one store command. Anything else (a retry, a race,
        // stock that moved, a store without the combined command) takes the
        // general path below, which claims the key first.
        let mut fast = self.fast_start(&request, token).await;
        loop {
            let now = self.now();
            let (claim, start) = match fast.take() {
                Some((lease, start)) => (CheckoutClaim::Claimed(lease), Some(start)),
                None => {
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
                    (claim, None)
                }
            };
            match claim {
                CheckoutClaim::Claimed(lease) => {
                    let attempt = self.run_attempt(&request, token, lease.clone(), start);
                    let order = match attempt.await {
                        Ok(order) => order,
                        Err(e) => {
                            crate::telemetry::checkout(match e {
                                Error::PaymentDeclined { .. } => "declined",
                                Error::OutOfStock { .. } => "out_of_stock",
                                _ => "failed",
                            });
                            return Err(e);
                        }
                    };
                    let outcome = self.outcome(order, lease.token, &request.actor);
                    crate::telemetry::checkout(match outcome.payment {
                        PaymentOutcome::Paid => "paid",
                        PaymentOutcome::Authorized => "authorized",
                        PaymentOutcome::CapturePending => "capture_pending",
                    });
                    return Ok(outcome);
                }
                CheckoutClaim::Completed(order_id) => {
                    // The same key and cart prove it is the same buyer; the
                    // cart's own access rule still applies.
                    self.cart(&request.actor, request.cart_id).await?;
                    let order = self.inner.store.order(order_id).await?;
                    let lease_token = self
                        .inner
                        .store
                        .checkout(&request.idempotency_key)
                        .await?
                        .map(|r| r.lease_token)
                        .ok_or_else(|| Error::not_found("checkout", &request.idempotency_key))?;
                    // A capture that failed the first time is tried again.
                    let order = self.capture_if_immediate(order).await;
                    return Ok(self.outcome(order, lease_token, &request.actor));
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

    /// The first step of the usual checkout: prices the cart and, when the
    /// store can, claims the key and reserves in one command. `None` sends
    /// the checkout down the general path (nothing was written).
    async fn fast_start(
        &self,
        request: &CheckoutRequest,
        token: &str,
    ) -> Option<(Lease, (Prepared, Reservation))> {
        // A retry of a finished checkout finds its cart completed: the
        // general path answers it from the record.
        let prepared = self.prepare(request).await.ok()?;
        let now = self.now();
        let begin = BeginCheckout {
            key: request.idempotency_key.clone(),
            cart_id: request.cart_id,
            payment_token: token.to_owned(),
            now,
            lease_until: now + self.inner.config.checkout_lease,
        };
        let (lease, reservation) = self
            .inner
            .store
            .begin_and_reserve(
                begin,
                &prepared.requests,
                &prepared.priced.usage_claims,
                now + self.inner.config.reservation_ttl,
            )
            .await
            .ok()??;
        Some((lease, (prepared, reservation)))
    }

    /// What a checkout call returns for `order`.
    fn outcome(&self, order: Order, lease_token: uuid::Uuid, actor: &Actor) -> CheckoutOutcome {
        let payment = match order.payment().status {
            PaymentStatus::Authorized if self.inner.config.capture == CaptureMode::Immediate => {
                PaymentOutcome::CapturePending
            }
            PaymentStatus::Authorized => PaymentOutcome::Authorized,
            _ => PaymentOutcome::Paid,
        };
        let access_token = order
            .customer_id()
            .is_none()
            .then(|| guest_token(lease_token, order.id()));
        CheckoutOutcome {
            order: order.visible_to(actor),
            payment,
            access_token,
        }
    }

    async fn run_attempt(
        &self,
        request: &CheckoutRequest,
        token: &str,
        lease: Lease,
        start: Option<(Prepared, Reservation)>,
    ) -> Result<Order> {
        let mut progress = Progress {
            hold: Hold::None,
            touched: start.is_some(),
        };
        let attempt = self.attempt(request, token, &lease, &mut progress, start);
        let error = match attempt.await {
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
        let held = !matches!(progress.hold, Hold::None);
        if held {
            tracing::warn!(key = %lease.key, %error, "checkout failed after authorizing; voiding the hold");
        }
        if !self.release_hold(&lease, progress.hold).await {
            // The hold could not be voided now; the attempt stays in progress
            // and recovery voids it once the lease ends.
            tracing::warn!(key = %lease.key, "the hold could not be voided now; recovery will");
            return Err(error);
        }
        if held {
            crate::telemetry::compensation("hold_voided");
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

    /// Everything a checkout checks and computes before it writes: the
    /// cart (active, not empty, complete), its pricing (at the total the
    /// customer was shown, no code used up) and the stock it needs.
    async fn prepare(&self, request: &CheckoutRequest) -> Result<Prepared> {
        let ready = |cart: &crate::cart::Cart| {
            cart.ensure_active()?;
            if cart.lines().is_empty() {
                return Err(Error::EmptyCart);
            }
            Ok(())
        };
        let (cart, priced) = self
            .cart_and_price(&request.actor, request.cart_id, ready)
            .await?;
        let crate::promotions::Priced {
            cart: priced,
            catalog: entries,
            email,
        } = priced;
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
            // Every shipment that ships something needs its method: the
            // lines in no group, and each group's.
            let ungrouped_ships = priced.lines.iter().any(|l| {
                l.requires_shipping
                    && !priced
                        .shipping_groups
                        .iter()
                        .any(|g| g.lines.contains(&l.line_id))
            });
            let group_unset = priced.shipping_groups.iter().any(|g| {
                g.charge.is_none()
                    && priced
                        .lines
                        .iter()
                        .any(|l| l.requires_shipping && g.lines.contains(&l.line_id))
            });
            if (ungrouped_ships && priced.shipping.is_none()) || group_unset {
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
        Ok(Prepared {
            cart,
            priced,
            email,
            requests,
        })
    }

    /// The forward path. On error, `progress` says what must be undone.
    /// `start` is what the combined claim-and-reserve command did already.
    async fn attempt(
        &self,
        request: &CheckoutRequest,
        token: &str,
        lease: &Lease,
        progress: &mut Progress,
        start: Option<(Prepared, Reservation)>,
    ) -> Result<Order> {
        let store = &self.inner.store;
        let (prepared, reservation) = match start {
            Some(started) => started,
            None => {
                let prepared = self.prepare(request).await?;
                let now = self.now();
                progress.touched = true;
                let reservation = store
                    .reserve_for_checkout(
                        lease,
                        &prepared.requests,
                        &prepared.priced.usage_claims,
                        now + self.inner.config.reservation_ttl,
                        now,
                    )
                    .await?;
                (prepared, reservation)
            }
        };
        let Prepared {
            cart,
            priced,
            email,
            requests: _,
        } = prepared;
        let now = self.now();
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
            // With immediate capture, a provider that can collects in the
            // authorize call itself (a sale): one call and one write fewer.
            let sale = self.inner.config.capture == CaptureMode::Immediate
                && provider.captures_on_authorize();
            let started = std::time::Instant::now();
            let response = provider
                .authorize(AuthorizeRequest {
                    idempotency_key: authorize_key.clone(),
                    amount: priced.total,
                    payment_token: token.to_owned(),
                    reference: lease.key.to_string(),
                    capture: sale,
                })
                .await;
            crate::telemetry::provider_call(
                "authorize",
                crate::telemetry::result_label(&response),
                started.elapsed(),
            );
            let response = match response {
                Ok(r) => r,
                Err(e @ PaymentError::Declined { .. }) => {
                    progress.hold = Hold::None;
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            progress.hold = Hold::Held(response.clone());
            let sold = sale && response.status == ProviderStatus::Captured;
            if response.amount != priced.total
                || !(sold || response.status == ProviderStatus::Authorized)
            {
                return Err(Error::PaymentUnavailable(
                    "provider answered with a different amount or status".into(),
                ));
            }
            let zero = crate::money::Money::zero(priced.currency);
            let mut payment = Payment {
                id: PaymentId::new(),
                provider: provider.name().to_owned(),
                reference: response.reference,
                authorize_key: authorize_key.clone(),
                authorized: priced.total,
                captured: zero,
                refunded: zero,
                status: PaymentStatus::Authorized,
                operations: Vec::new(),
            };
            if sold {
                // Collected by the authorize call: the books say so, with
                // the capture on record under that call's key.
                payment.captured = priced.total;
                payment.status = PaymentStatus::Captured;
                payment.operations.push(crate::payment::PaymentOperation {
                    kind: crate::payment::OperationKind::Capture,
                    key: authorize_key,
                    amount: priced.total,
                    state: crate::payment::OperationState::Succeeded,
                    purpose: crate::payment::OperationPurpose::Direct,
                    request_key: Some(CHECKOUT_CAPTURE.to_owned()),
                    reason: String::new(),
                    requested_by: Some(Actor::System),
                    begun_at: Some(self.now()),
                });
            }
            payment
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
            cancellation: None,
            access_token_hash: None,
            version: 0,
        };
        if order.customer_id.is_none() {
            order.access_token_hash = Some(guest_token(lease.token, order.id).hash());
        }
        let actor = request.actor.clone();
        order.record_placed(now, &actor);
        if self.inner.config.capture == CaptureMode::Immediate
            && order.payment.status == PaymentStatus::Authorized
        {
            // The capture's intent is recorded by the commit that places the
            // order (the money-path protocol: recorded before the provider
            // is called), so placing and capturing take two writes, not three.
            order.begin_capture(None, CHECKOUT_CAPTURE, now, &Actor::System)?;
        }
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
        self.undo_hold(&lease.key, lease.attempt, reference)
            .await
            .is_ok()
    }

    /// Gives back what an attempt that placed no order holds at the
    /// provider: voids a hold, refunds a sale. `Ok(false)` when there was
    /// nothing to give back.
    async fn undo_hold(
        &self,
        key: &IdempotencyKey,
        attempt: u32,
        held: ProviderResponse,
    ) -> Result<bool> {
        match held.status {
            ProviderStatus::Authorized => {
                self.inner
                    .payments
                    .void(VoidRequest {
                        idempotency_key: void_key(key, attempt),
                        authorization: held.reference,
                    })
                    .await?;
                Ok(true)
            }
            ProviderStatus::Captured => {
                let refunded = held
                    .refunded_total
                    .unwrap_or_else(|| crate::money::Money::zero(held.amount.currency()));
                let left = held
                    .captured_total
                    .unwrap_or(held.amount)
                    .checked_sub(refunded)?;
                if left.is_zero() || left.is_negative() {
                    return Ok(false);
                }
                self.inner
                    .payments
                    .refund(RefundRequest {
                        idempotency_key: unsell_key(key, attempt),
                        authorization: held.reference,
                        amount: left,
                    })
                    .await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn capture_if_immediate(&self, order: Order) -> Order {
        if self.inner.config.capture != CaptureMode::Immediate
            || order.payment().status() != PaymentStatus::Authorized
        {
            return order;
        }
        // A failed capture leaves the order authorized with the capture
        // pending or failed; a retry of the checkout, `capture` or recovery
        // finishes it.
        let id = order.id();
        if order.payment().pending().is_some() {
            // Placed with its capture recorded as pending: call the provider.
            return match Box::pin(self.drive(order.clone())).await {
                Ok(captured) => captured,
                Err(_) => self.inner.store.order(id).await.unwrap_or(order),
            };
        }
        let now = self.now();
        match self
            .run_operation(order.clone(), |o| {
                Ok(
                    o.begin_capture(None, CHECKOUT_CAPTURE, now, &Actor::System)?
                        .map(|_| Effects::default()),
                )
            })
            .await
        {
            Ok(captured) => captured,
            Err(_) => self.inner.store.order(id).await.unwrap_or(order),
        }
    }

    /// Captures everything still authorized on an order (staff and the
    /// system only), by the [money-path protocol](crate::money_path).
    /// Idempotent: a second call finds the first capture and changes nothing.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`], [`Error::IllegalTransition`]
    /// on a closed order, [`Error::PaymentInProgress`] while another
    /// operation is in flight, or the provider's error.
    #[tracing::instrument(name = "capture", skip_all, fields(order_id = %order_id))]
    pub async fn capture(&self, actor: &Actor, order_id: OrderId) -> Result<Order> {
        self.capture_with(actor, order_id, None, "capture".to_owned())
            .await
    }

    /// Captures `amount` (everything still authorized when `None`) under the
    /// caller's idempotency key (staff and the system only). Several partial
    /// captures may follow each other up to the authorized amount; the same
    /// key twice captures once.
    ///
    /// # Errors
    /// As [`Engine::capture`]; [`Error::Invalid`] when the amount exceeds
    /// what is still authorized.
    #[tracing::instrument(name = "capture_partial", skip_all, fields(order_id = %order_id))]
    pub async fn capture_partial(
        &self,
        actor: &Actor,
        order_id: OrderId,
        amount: Option<crate::money::Money>,
        key: &IdempotencyKey,
    ) -> Result<Order> {
        self.capture_with(actor, order_id, amount, format!("capture:{key}"))
            .await
    }

    async fn capture_with(
        &self,
        actor: &Actor,
        order_id: OrderId,
        amount: Option<crate::money::Money>,
        request_key: String,
    ) -> Result<Order> {
        if !actor.is_privileged() {
            return Err(Error::Forbidden);
        }
        let order = self.load_order(actor, order_id).await?;
        let now = self.now();
        let order = self
            .run_operation(order, |o| {
                Ok(o.begin_capture(amount, &request_key, now, actor)?
                    .map(|_| Effects::default()))
            })
            .await?;
        Ok(order.visible_to(actor))
    }

    /// Applies a payment provider's event to the order holding its
    /// authorization: once per event id, in any order of arrival, and without
    /// ever counting a capture or refund twice (amounts are cumulative
    /// totals; one that covers a pending operation settles it). The event is
    /// validated first: ids and texts bounded, amounts in the payment's
    /// currency, not negative and within what the payment holds. An event
    /// for an unknown authorization is [`Error::NotFound`] and changes
    /// nothing.
    ///
    /// Only the provider that holds the payment (`Actor::Provider` with the
    /// name the payment records, through a verified webhook) and the system
    /// may apply events.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone else; [`Error::Invalid`],
    /// [`Error::LimitExceeded`] or [`Error::CurrencyMismatch`] for a
    /// malformed event, [`Error::NotFound`],
    /// [`Error::IllegalTransition`] for an event the payment cannot take.
    #[tracing::instrument(name = "apply_provider_event", skip_all, fields(event_id = %event.id))]
    pub async fn apply_provider_event(
        &self,
        actor: &Actor,
        event: &crate::payment::ProviderEvent,
    ) -> Result<Order> {
        if !matches!(actor, Actor::Provider(_) | Actor::System) {
            return Err(Error::Forbidden);
        }
        event.validate()?;
        let name = self.inner.payments.name().to_owned();
        let order = self
            .inner
            .store
            .order_by_payment_reference(&event.authorization)
            .await?
            .ok_or_else(|| Error::not_found("authorization", &event.authorization))?;
        // A provider reports on its own payments only.
        if let Actor::Provider(reporter) = actor
            && *reporter != order.payment().provider
        {
            return Err(Error::Forbidden);
        }
        let now = self.now();
        let order = self
            .update_order(order, |order| order.apply_provider_event(event, &name, now))
            .await?;
        Ok(order.visible_to(&Actor::Provider(name)))
    }

    /// Cancels an order that has not shipped: voids the payment hold (or
    /// refunds what was captured) by the [money-path
    /// protocol](crate::money_path), then gives the stock and any coupon
    /// uses back, and records why. The order's customer (a guest with the
    /// order's access token) or staff may cancel. Idempotent: cancelling a
    /// cancelled order returns it unchanged; a cancellation interrupted by
    /// a provider outage is finished by the next call or by recovery.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::IllegalTransition`] once anything has
    /// shipped; [`Error::PaymentInProgress`] while another operation is in
    /// flight; the provider's error.
    #[tracing::instrument(name = "cancel", skip_all, fields(order_id = %order_id))]
    pub async fn cancel(&self, actor: &Actor, order_id: OrderId, reason: &str) -> Result<Order> {
        if matches!(actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        let order = self.load_order(actor, order_id).await?;
        let now = self.now();
        let order = self
            .run_operation(order, |o| {
                if o.status() == OrderStatus::Cancelled || o.cancellation().is_some() {
                    return Ok(None);
                }
                o.begin_cancel(reason, now, actor)?;
                Ok(Some(Effects::default()))
            })
            .await?;
        Ok(order.visible_to(actor))
    }

    /// Cleans up after crashes: releases expired stock reservations and, for
    /// every checkout attempt whose lease ended without an order, voids its
    /// payment hold, releases its stock and lets its key run again.
    ///
    /// Safe to run at any time, from any number of instances at once.
    ///
    /// # Errors
    /// the first store or provider error met; what was cleaned up before it
    /// stands, and the next run goes on.
    #[tracing::instrument(name = "recover", skip_all)]
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
        self.settle_pending(&mut report).await?;
        if self.inner.config.capture == CaptureMode::Immediate {
            report.captured_orders += self.capture_stranded().await?;
        }
        Ok(report)
    }

    /// Drives every order with a payment operation or a cancellation in
    /// flight: the pending call is sent again under its own key (answered
    /// once by the provider) and its answer recorded. Returns how many
    /// orders were settled; one whose provider is still unreachable stays
    /// pending for the next run.
    async fn settle_pending(&self, report: &mut RecoveryReport) -> Result<()> {
        // A live caller finishes its own operation; recovery takes over once
        // an operation is older than the checkout lease (racing it would be
        // safe — same provider key, settled once — but wasteful).
        let cutoff = self.now() - self.inner.config.checkout_lease;
        let mut before = None;
        loop {
            let page = self
                .inner
                .store
                .find_orders(&crate::order::OrderQuery {
                    pending_work: true,
                    before,
                    limit: 100,
                    ..Default::default()
                })
                .await?;
            for order in &page {
                let stale = match order.payment().pending() {
                    Some(op) => op.begun_at.is_none_or(|t| t <= cutoff),
                    None => order
                        .cancellation()
                        .is_some_and(|c| c.requested_at <= cutoff),
                };
                if !stale {
                    continue;
                }
                let was = order.payment().status;
                tracing::warn!(order_id = %order.id(), "recovery finishing a pending payment operation");
                // Refused by the provider (recorded) or still unreachable:
                // either way nothing more to do now.
                if let Ok(done) = self.drive(order.clone()).await {
                    if was == PaymentStatus::Authorized
                        && done.payment().status == PaymentStatus::Captured
                    {
                        report.captured_orders += 1;
                    } else {
                        report.settled_operations += 1;
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == 100 => before = Some(last.id()),
                _ => return Ok(()),
            }
        }
    }

    /// With immediate capture, an order still placed and only authorized
    /// after the checkout lease was left behind by a stopped process: capture
    /// it (a no-op if the checkout's capture already happened).
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
                if order.payment().status == PaymentStatus::Authorized
                    && order
                        .payment()
                        .operation_for_request(CHECKOUT_CAPTURE)
                        .is_none()
                {
                    let done = self.capture_if_immediate(order.clone()).await;
                    if done.payment().status != PaymentStatus::Authorized {
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
            && self.undo_hold(key, lease.attempt, auth).await?
        {
            voided = true;
            crate::telemetry::compensation("hold_voided");
            tracing::warn!(key = %key, attempt = lease.attempt, "recovery gave back the hold of a stale checkout");
        }
        self.inner
            .store
            .end_checkout(&lease, CheckoutEnd::Retryable, self.now())
            .await?;
        Ok(Some(voided))
    }
}
