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
//! # Payments that wait
//!
//! A provider may answer an authorization with "the customer must act" (a
//! 3-D Secure challenge, a redirect to a wallet or bank) or "processing"
//! (confirmed later). The checkout then parks: its stock and coupon uses
//! stay reserved, the order it will place is kept with the checkout, and
//! [`Engine::start_checkout`] returns [`CheckoutStep::AwaitingPayment`]
//! with the [`PaymentSession`] to show ([`Engine::checkout`] returns
//! [`Error::PaymentPending`] carrying it). The payment completes exactly
//! once, whichever comes first and however often each arrives:
//!
//! - the buyer returns: [`Engine::complete_checkout`] (or the checkout again
//!   with the same key) asks the provider how the payment stands;
//! - the provider's event: [`Engine::apply_provider_event`] with the
//!   session's reference.
//!
//! Settling claims the waiting checkout under a lease (one settler at a
//! time), then places the order (held), parks it again (still waiting),
//! or ends it (failed, cancelled with [`Engine::cancel_checkout`], or
//! expired after [`EngineConfig::payment_session_ttl`](crate::EngineConfig::payment_session_ttl):
//! the payment is cancelled at the provider, the stock and coupon uses are
//! released, the cart stays usable). [`Engine::recover`] settles expired
//! sessions and finishes any settler that crashed.
//!
//! ```text
//!             authorize
//!   reserved ───────────▶ held ──────────────▶ placed (commit 2)
//!      │                   ▲
//!      │ requires action   │ return / event: held
//!      ▼ or processing     │
//!   awaiting ──────────────┘
//!      │  return / event: still waiting ─▶ awaiting
//!      │  failed / cancelled / expired ──▶ failed (stock and uses released)
//! ```
//!
//! Outcomes saved against the key are the order, a payment decline and an
//! out-of-stock refusal. Validation errors (an empty cart, a missing address)
//! are not saved, as at Stripe: fix the cart and retry with the same key.
//!
//! Does not know: SQL or a gateway's protocol: it sequences store commands and
//! provider calls through the ports.

use std::time::Instant;

use crate::actor::{AccessToken, Actor};
use crate::engine::fence::Fenced;
use crate::engine::{CaptureMode, Engine};
use crate::error::{Error, Result};
use crate::id::{IdempotencyKey, OrderId, PaymentId};
use crate::inventory::{Reservation, StockRequest};
use crate::order::{Effects, Order, OrderStatus};
use crate::payment::{
    AuthorizeRequest, Payment, PaymentError, PaymentProvider, PaymentSession, PaymentStatus,
    ProviderResponse, ProviderStatus, RefundRequest, VoidRequest,
};
use crate::store::{
    AwaitingPayment, BeginCheckout, CheckoutClaim, CheckoutEnd, CheckoutFailure, CheckoutState,
    Lease,
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
    /// The payment provider to pay with, by name; `None`: the engine's
    /// default ([`EngineBuilder::payment_provider`](crate::EngineBuilder::payment_provider)).
    pub provider: Option<String>,
    /// Gift cards to pay with first, in this order (at most
    /// [`MAX_GIFT_CARDS_PER_CHECKOUT`](crate::giftcard::MAX_GIFT_CARDS_PER_CHECKOUT)).
    pub gift_cards: Vec<GiftCardCode>,
    /// Whether to pay with the customer's store credit after the gift cards.
    pub store_credit: bool,
    /// The payment method among the provider's ("card", "ideal"), passed
    /// to it and recorded on the payment; at most
    /// [`MAX_PAYMENT_METHOD_LEN`] visible ASCII characters.
    pub payment_method: Option<String>,
}

/// Longest payment method name, in characters.
pub const MAX_PAYMENT_METHOD_LEN: usize = 64;

/// A gift card code as the buyer entered it: a secret, so its `Debug`
/// shows only the last four characters.
#[derive(Clone, PartialEq, Eq)]
pub struct GiftCardCode(pub String);

impl std::fmt::Debug for GiftCardCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail: String = self
            .0
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        write!(f, "GiftCardCode(…{tail})")
    }
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
            provider: None,
            gift_cards: Vec::new(),
            store_credit: false,
            payment_method: None,
        }
    }

    /// Pays with the provider's payment method `method` ("card", "ideal").
    #[must_use]
    pub fn payment_method(mut self, method: impl Into<String>) -> Self {
        self.payment_method = Some(method.into());
        self
    }

    /// Pays first with the gift card `code` (call once per card; they are
    /// redeemed in the order given, before store credit and the provider).
    #[must_use]
    pub fn gift_card(mut self, code: impl Into<String>) -> Self {
        self.gift_cards.push(GiftCardCode(code.into()));
        self
    }

    /// Pays with the provider registered as `name`.
    #[must_use]
    pub fn provider(mut self, name: impl Into<String>) -> Self {
        self.provider = Some(name.into());
        self
    }
}

crate::domain::setters!(CheckoutRequest {
    cart_id: crate::id::CartId,
    idempotency_key: IdempotencyKey,
    actor: Actor,
    store_credit: bool,
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

/// What [`Engine::start_checkout`] and [`Engine::complete_checkout`]
/// return: the order placed, or its payment still waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckoutStep {
    /// The order is placed (the same outcome [`Engine::checkout`] returns).
    Placed(Box<CheckoutOutcome>),
    /// The payment waits for the customer (show
    /// [`PaymentSession::action`]) or the provider; no order yet, the
    /// stock stays reserved until the session expires.
    AwaitingPayment(PaymentSession),
}

impl CheckoutStep {
    /// The placed outcome, if the order is placed.
    pub fn placed(self) -> Option<CheckoutOutcome> {
        match self {
            Self::Placed(outcome) => Some(*outcome),
            Self::AwaitingPayment(_) => None,
        }
    }
}

/// What [`Engine::apply_provider_event`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventOutcome {
    /// The event was applied to this order — or completed the waiting
    /// checkout that placed it.
    Order(Box<Order>),
    /// The event concerned a checkout whose payment still waits.
    Waiting(PaymentSession),
    /// The event ended a waiting checkout's payment: no order; its stock
    /// and coupon uses are released and the cart can be checked out again.
    CheckoutFailed {
        /// The checkout's idempotency key.
        checkout_key: IdempotencyKey,
        /// The failure saved against the key.
        failure: CheckoutFailure,
    },
}

impl EventOutcome {
    /// The order the event was applied to (or placed), if any.
    pub fn order(&self) -> Option<&Order> {
        match self {
            Self::Order(order) => Some(order),
            _ => None,
        }
    }

    /// The order the event was applied to (or placed), if any.
    pub fn into_order(self) -> Option<Order> {
        match self {
            Self::Order(order) => Some(*order),
            _ => None,
        }
    }
}

/// What recovery did with one stale checkout.
#[derive(Clone, Copy)]
enum Recovered {
    /// An attempt cleaned up and made retryable.
    Reset { voided: bool },
    /// A waiting payment found complete: the order placed.
    Completed,
    /// A waiting payment ended (expired, failed): stock released.
    Ended,
}

/// How settling a waiting checkout ended.
enum Settled {
    Placed(Box<Order>),
    Waiting(PaymentSession),
    Failed(CheckoutFailure),
}

/// How a checkout attempt ended.
enum Attempted {
    Placed(Box<Order>),
    Waiting(PaymentSession),
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
    /// Waiting payments found completed at the provider: their orders placed.
    pub completed_sessions: u64,
    /// Waiting payments that expired or failed: cancelled at the provider,
    /// their stock and coupon uses released.
    pub ended_sessions: u64,
}

/// A checkout's cart, priced and checked, with the stock it needs.
struct Prepared {
    cart: crate::cart::Cart,
    priced: crate::pricing::PricedCart,
    email: crate::customer::Email,
    requests: Vec<StockRequest>,
    provider: std::sync::Arc<dyn PaymentProvider>,
    /// What gift cards and store credit will pay, in order.
    tenders: Vec<PlannedTender>,
    /// The lines' variants that have a low-stock threshold, with it.
    thresholds: Vec<(crate::id::VariantId, u32)>,
}

/// A gift card or store credit to redeem, and how much.
struct PlannedTender {
    card: crate::giftcard::GiftCard,
    amount: crate::money::Money,
}

/// Plans to take from `card` as much as it holds of what is `left`.
fn take(
    planned: &mut Vec<PlannedTender>,
    card: crate::giftcard::GiftCard,
    left: &mut crate::money::Money,
) -> Result<()> {
    let amount = if card.balance().checked_cmp(left)?.is_lt() {
        card.balance()
    } else {
        *left
    };
    if amount.is_zero() || amount.is_negative() {
        return Ok(());
    }
    *left = left.checked_sub(amount)?;
    planned.push(PlannedTender { card, amount });
    Ok(())
}

/// The reference every gift card entry of one checkout attempt carries.
/// How often a checkout plans its gift cards and store credit again after
/// losing a race for a card's balance.
const MAX_REDEEM_ROUNDS: u32 = 3;

fn redeem_reference(key: &IdempotencyKey, attempt: u32) -> String {
    format!("checkout:{key}:{attempt}")
}

/// How far an attempt got, for compensation.
struct Progress {
    /// What the provider may hold.
    hold: Hold,
    /// Whether the attempt went past validation (reserved stock).
    touched: bool,
    /// The provider the attempt pays with, once chosen.
    provider: Option<std::sync::Arc<dyn PaymentProvider>>,
    /// Whether gift cards or store credit may have been redeemed.
    redeemed: bool,
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

/// The payment of an order of `total` that needs none (a free order), or
/// a placeholder until the provider's answer replaces it.
fn free_payment(total: crate::money::Money, authorize_key: String) -> Payment {
    Payment {
        id: PaymentId::new(),
        provider: crate::engine::FREE_ORDER_PROVIDER.into(),
        reference: String::new(),
        authorize_key,
        authorized: total,
        captured: total,
        refunded: crate::money::Money::zero(total.currency()),
        status: PaymentStatus::Captured,
        operations: Vec::new(),
        method: None,
    }
}

/// The payment `provider`'s answer holds (or, for a `sale`, collected):
/// refused unless it is for exactly `total` and held or sold.
fn payment_from(
    provider: &str,
    response: &ProviderResponse,
    total: crate::money::Money,
    authorize_key: String,
    sale: bool,
) -> Result<Payment> {
    let sold = sale && response.status == ProviderStatus::Captured;
    if response.amount != total || !(sold || response.status == ProviderStatus::Authorized) {
        return Err(Error::PaymentUnavailable(
            "provider answered with a different amount or status".into(),
        ));
    }
    let zero = crate::money::Money::zero(total.currency());
    let mut payment = Payment {
        id: PaymentId::new(),
        provider: provider.to_owned(),
        reference: response.reference.clone(),
        authorize_key: authorize_key.clone(),
        authorized: total,
        captured: zero,
        refunded: zero,
        status: PaymentStatus::Authorized,
        operations: Vec::new(),
        method: None,
    };
    if sold {
        // Collected by the authorize call: the books say so, with the
        // capture on record under that call's key.
        payment.captured = total;
        payment.status = PaymentStatus::Captured;
        payment.operations.push(crate::payment::PaymentOperation {
            kind: crate::payment::OperationKind::Capture,
            key: authorize_key,
            amount: total,
            state: crate::payment::OperationState::Succeeded,
            purpose: crate::payment::OperationPurpose::Direct,
            request_key: Some(CHECKOUT_CAPTURE.to_owned()),
            reason: String::new(),
            requested_by: Some(Actor::System),
            begun_at: None,
        });
    }
    Ok(payment)
}

/// What a provider event says about a waiting payment, as the answer the
/// provider would give when asked; `None` for events that do not settle it
/// (the provider is asked instead).
///
/// # Errors
/// [`Error::CurrencyMismatch`] or [`Error::Invalid`] for a captured total
/// that is not the session's amount.
fn event_hint(
    event: &crate::payment::ProviderEvent,
    session: &PaymentSession,
) -> Result<Option<ProviderResponse>> {
    use crate::payment::ProviderEventKind as K;
    let reference = event.authorization.clone();
    Ok(match &event.kind {
        K::Authorized => Some(ProviderResponse::new(
            reference,
            ProviderStatus::Authorized,
            session.amount,
        )),
        K::Captured { captured_total } => {
            if captured_total.currency() != session.amount.currency() {
                return Err(Error::CurrencyMismatch {
                    left: session.amount.currency(),
                    right: captured_total.currency(),
                });
            }
            if *captured_total != session.amount {
                return Err(Error::invalid(
                    "captured total",
                    format!(
                        "{captured_total} is not the waiting payment's {}",
                        session.amount
                    ),
                ));
            }
            Some(
                ProviderResponse::new(reference, ProviderStatus::Captured, session.amount)
                    .with_totals(Some(*captured_total), None),
            )
        }
        K::Failed { .. } => Some(ProviderResponse::new(
            reference,
            ProviderStatus::Failed,
            session.amount,
        )),
        _ => None,
    })
}

/// What a waiting payment that outlived its session is saved as.
fn expired_failure() -> CheckoutFailure {
    CheckoutFailure::PaymentDeclined {
        code: "payment_session_expired".into(),
        message: "the payment was not completed in time".into(),
    }
}

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
    /// A payment that waits for the customer or the provider is
    /// [`Error::PaymentPending`] carrying its session; use
    /// [`Engine::start_checkout`] to get it as a value instead.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the actor may not use the cart; validation
    /// errors ([`Error::EmptyCart`], [`Error::Incomplete`],
    /// [`Error::PriceChanged`], [`Error::Invalid`] — among them a provider
    /// not registered or not taking the cart's currency); [`Error::OutOfStock`],
    /// [`Error::UsageLimitReached`], [`Error::PaymentDeclined`] (saved
    /// against the key); [`Error::PaymentPending`]; [`Error::IdempotencyConflict`]
    /// for a key reused with another cart or token; [`Error::CheckoutInProgress`]
    /// when another call with the key is still running after the configured
    /// wait; store and provider errors.
    pub async fn checkout(&self, request: CheckoutRequest) -> Result<CheckoutOutcome> {
        match self.start_checkout(request).await? {
            CheckoutStep::Placed(outcome) => Ok(*outcome),
            CheckoutStep::AwaitingPayment(session) => Err(Error::PaymentPending(Box::new(session))),
        }
    }

    /// Checks out a cart as [`Engine::checkout`] does, returning a payment
    /// that waits for the customer (3-D Secure, a redirect) or the provider
    /// as [`CheckoutStep::AwaitingPayment`]. Called again with the same key
    /// it settles that payment as [`Engine::complete_checkout`] does.
    ///
    /// # Errors
    /// As [`Engine::checkout`], without [`Error::PaymentPending`].
    #[tracing::instrument(name = "checkout", skip_all, fields(cart_id = %request.cart_id, key = %request.idempotency_key))]
    pub async fn start_checkout(&self, request: CheckoutRequest) -> Result<CheckoutStep> {
        let token = request.payment_token.trim();
        if token.chars().count() > MAX_PAYMENT_TOKEN_LEN {
            return Err(Error::invalid(
                "payment token",
                format!("must be at most {MAX_PAYMENT_TOKEN_LEN} characters"),
            ));
        }
        if let Some(method) = &request.payment_method {
            let ok = !method.is_empty()
                && method.len() <= MAX_PAYMENT_METHOD_LEN
                && method.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(Error::invalid(
                    "payment method",
                    format!("must be 1 to {MAX_PAYMENT_METHOD_LEN} visible ASCII characters"),
                ));
            }
        }
        if request.gift_cards.len() > crate::giftcard::MAX_GIFT_CARDS_PER_CHECKOUT {
            return Err(Error::LimitExceeded {
                what: "gift cards per checkout",
                max: crate::giftcard::MAX_GIFT_CARDS_PER_CHECKOUT as u64,
            });
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
                    let attempted = match attempt.await {
                        Ok(attempted) => attempted,
                        Err(e) => {
                            crate::telemetry::checkout(match e {
                                Error::PaymentDeclined { .. } => "declined",
                                Error::OutOfStock { .. } => "out_of_stock",
                                _ => "failed",
                            });
                            return Err(e);
                        }
                    };
                    let order = match attempted {
                        Attempted::Placed(order) => *order,
                        Attempted::Waiting(session) => {
                            crate::telemetry::checkout("awaiting_payment");
                            return Ok(CheckoutStep::AwaitingPayment(session));
                        }
                    };
                    // The lease placed the order, so its token is the one
                    // the checkout record keeps.
                    let outcome = self.outcome(order, lease.token, &request.actor);
                    crate::telemetry::checkout(match outcome.payment {
                        PaymentOutcome::Paid => "paid",
                        PaymentOutcome::Authorized => "authorized",
                        PaymentOutcome::CapturePending => "capture_pending",
                    });
                    return Ok(CheckoutStep::Placed(Box::new(outcome)));
                }
                CheckoutClaim::Completed(order_id) => {
                    // The same key and cart prove it is the same buyer; the
                    // cart's own access rule still applies.
                    self.cart(&request.actor, request.cart_id).await?;
                    let outcome = self
                        .completed(&request.actor, &request.idempotency_key, order_id)
                        .await?;
                    return Ok(CheckoutStep::Placed(Box::new(outcome)));
                }
                CheckoutClaim::Failed(failure) => return Err(failure.into()),
                CheckoutClaim::AwaitingPayment(_) => {
                    // The buyer is back: settle the waiting payment.
                    self.cart(&request.actor, request.cart_id).await?;
                    if let Some(step) = self
                        .settle_waiting(&request.actor, &request.idempotency_key, None)
                        .await?
                    {
                        return Ok(step);
                    }
                    // Someone else took it meanwhile: look again.
                }
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

    /// The buyer is back from the payment's customer action (the shop's
    /// return URL): asks the provider how the checkout's waiting payment
    /// stands and places the order if it is held — once, however often this
    /// and the provider's event arrive. Also answers for a checkout already
    /// placed (the same outcome as a retry of [`Engine::checkout`]) or
    /// failed (its saved failure).
    ///
    /// The actor must be allowed to use the cart (the cart's owner, or the
    /// guest who holds it) and `key` must be the checkout's key for that cart.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] when `key` is not a
    /// checkout of `cart_id`; the saved failure ([`Error::PaymentDeclined`]
    /// for a payment that failed, was cancelled or expired;
    /// [`Error::OutOfStock`], [`Error::UsageLimitReached`]);
    /// [`Error::Invalid`] when the checkout has no payment waiting (run it
    /// again with [`Engine::checkout`]); [`Error::CheckoutInProgress`] while
    /// another call settles it after the configured wait; store and
    /// provider errors (the payment keeps waiting).
    #[tracing::instrument(name = "complete_checkout", skip_all, fields(cart_id = %cart_id, key = %key))]
    pub async fn complete_checkout(
        &self,
        actor: &Actor,
        cart_id: crate::id::CartId,
        key: &IdempotencyKey,
    ) -> Result<CheckoutStep> {
        if matches!(actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        self.cart(actor, cart_id).await?;
        let deadline = Instant::now() + self.inner.config.checkout_wait;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            let record = self.checkout_of_cart(key, cart_id).await?;
            match record.state {
                CheckoutState::Completed { order_id } => {
                    let outcome = self.completed(actor, key, order_id).await?;
                    return Ok(CheckoutStep::Placed(Box::new(outcome)));
                }
                CheckoutState::Failed { failure } => return Err(failure.into()),
                CheckoutState::AwaitingPayment => {
                    if let Some(step) = self.settle_waiting(actor, key, None).await? {
                        return Ok(step);
                    }
                }
                CheckoutState::InProgress if record.lease_until <= self.now() => {
                    self.recover_checkout(key).await?;
                }
                CheckoutState::InProgress => {
                    if Instant::now() >= deadline {
                        return Err(Error::CheckoutInProgress(key.to_string()));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
                CheckoutState::Retryable => {
                    return Err(Error::invalid(
                        "checkout",
                        format!("{key} has no payment waiting; check out again with the key"),
                    ));
                }
            }
        }
    }

    /// The buyer gives up a waiting payment (to pay another way): it is
    /// cancelled at the provider, the checkout ends as declined
    /// (`payment_cancelled`), and its stock and coupon uses are released
    /// at once rather than when the session expires. If the provider says
    /// the payment completed meanwhile, the hold is released too: a
    /// cancelled checkout never places an order.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] when `key` is not a
    /// checkout of `cart_id`; [`Error::Invalid`] when its payment does not
    /// wait (placed, failed, or not started); [`Error::CheckoutInProgress`]
    /// while another call settles it; the provider's error when it cannot
    /// cancel now (the payment keeps waiting).
    #[tracing::instrument(name = "cancel_checkout", skip_all, fields(cart_id = %cart_id, key = %key))]
    pub async fn cancel_checkout(
        &self,
        actor: &Actor,
        cart_id: crate::id::CartId,
        key: &IdempotencyKey,
    ) -> Result<()> {
        if matches!(actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        self.cart(actor, cart_id).await?;
        let record = self.checkout_of_cart(key, cart_id).await?;
        if record.state == CheckoutState::InProgress && record.awaiting.is_some() {
            return Err(Error::CheckoutInProgress(key.to_string()));
        }
        let claimed = self
            .inner
            .store
            .claim_awaiting(key, self.now() + self.inner.config.checkout_lease)
            .await?;
        let Some((lease, awaiting)) = claimed else {
            return Err(Error::invalid(
                "checkout",
                format!("{key} has no payment waiting"),
            ));
        };
        let failure = CheckoutFailure::PaymentDeclined {
            code: "payment_cancelled".into(),
            message: "the buyer cancelled the payment".into(),
        };
        self.end_waiting(&lease, awaiting, failure).await.map(drop)
    }

    /// The record of checkout `key`, which must be of `cart_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a key unknown or of another cart.
    async fn checkout_of_cart(
        &self,
        key: &IdempotencyKey,
        cart_id: crate::id::CartId,
    ) -> Result<crate::store::CheckoutRecord> {
        self.inner
            .store
            .checkout(key)
            .await?
            .filter(|r| r.cart_id == cart_id)
            .ok_or_else(|| Error::not_found("checkout", key))
    }

    /// The order checkout `key` placed, if its record says it did.
    ///
    /// # Errors
    /// The store's, when the record or the order cannot be read: the caller
    /// must then not give any money back.
    async fn placed_meanwhile(&self, key: &IdempotencyKey) -> Result<Option<Order>> {
        match self.inner.store.checkout(key).await? {
            Some(record) => match record.state {
                CheckoutState::Completed { order_id } => {
                    self.inner.store.order(order_id).await.map(Some)
                }
                _ => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The outcome of a checkout that placed `order_id` under `key`, as
    /// `actor` may see it.
    async fn completed(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        order_id: OrderId,
    ) -> Result<CheckoutOutcome> {
        let order = self.inner.store.order(order_id).await?;
        let lease_token = self
            .inner
            .store
            .checkout(key)
            .await?
            .map(|r| r.lease_token)
            .ok_or_else(|| Error::not_found("checkout", key))?;
        // A capture that failed the first time is tried again.
        let order = self.capture_if_immediate(order).await;
        Ok(self.outcome(order, lease_token, actor))
    }

    /// The first step of the usual checkout: prices the cart and, when the
    /// store can, claims the key and reserves in one command. `None` sends
    /// the checkout down the general path (nothing was written).
    async fn fast_start(
        &self,
        request: &CheckoutRequest,
        token: &str,
    ) -> Option<(Lease, (Prepared, Reservation))> {
        // Gift cards take the general path: checking their codes counts
        // wrong guesses, which must happen once per request.
        if !request.gift_cards.is_empty() {
            return None;
        }
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
    ) -> Result<Attempted> {
        let mut progress = Progress {
            hold: Hold::None,
            touched: start.is_some(),
            provider: None,
            redeemed: false,
        };
        let attempt = self.attempt(request, token, &lease, &mut progress, start);
        let error = match attempt.await {
            Ok(Attempted::Placed(order)) => {
                let order = self.capture_if_immediate(*order).await;
                return Ok(Attempted::Placed(Box::new(order)));
            }
            Ok(waiting) => return Ok(waiting),
            Err(e) => e,
        };
        self.after_failed_attempt(&lease, progress, error)
            .await
            .map(|order| Attempted::Placed(Box::new(order)))
    }

    /// Cleans up after an attempt (or a settling of a waiting payment) that
    /// failed with `error`: gives back what the provider may hold and ends
    /// the attempt, then returns `error` — unless the order was placed after
    /// all (a store error can hide a commit that happened), which it returns.
    ///
    /// Nothing is given back unless the attempt still holds its lease: it
    /// fences the checkout first ([`Engine::fence`]). An attempt that lost
    /// its lease (recovery took over, and may have placed the order with the
    /// same authorization) gives nothing back and changes nothing.
    async fn after_failed_attempt(
        &self,
        lease: &Lease,
        progress: Progress,
        error: Error,
    ) -> Result<Order> {
        // A store error on `place_order` may hide a commit that happened:
        // believe the record, never void a placed order's payment.
        // If the record cannot be read, nothing is given back: the attempt
        // stays in progress and recovery (which never takes over a placed
        // checkout) cleans it up.
        match self.placed_meanwhile(&lease.key).await {
            Ok(Some(order)) => return Ok(self.capture_if_immediate(order).await),
            Ok(None) => {}
            Err(_) => return Err(error),
        }
        let fenced = match self.fence(lease).await {
            Ok(fenced) => fenced,
            Err(e) => {
                // Whoever holds the lease now owns the outcome; it may have
                // placed the order meanwhile.
                tracing::warn!(key = %lease.key, %error, fence = %e, "the attempt no longer holds its checkout; it gives nothing back");
                return match self.placed_meanwhile(&lease.key).await {
                    Ok(Some(order)) => Ok(order),
                    _ => Err(error),
                };
            }
        };
        let held = !matches!(progress.hold, Hold::None);
        if held {
            tracing::warn!(key = %lease.key, %error, "checkout failed after authorizing; voiding the hold");
        }
        let released = match &progress.provider {
            Some(provider) => {
                self.release_hold(provider.as_ref(), &fenced, progress.hold)
                    .await
            }
            None => !held,
        };
        // Then the gift cards and store credit the attempt redeemed.
        if released
            && progress.redeemed
            && let Err(e) = self.release_redemptions(&fenced).await
        {
            tracing::warn!(key = %lease.key, error = %e, "redemptions could not be given back now; recovery will");
            return Err(error);
        }
        if !released {
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
        let _ended = self.inner.store.end_checkout(lease, end, self.now()).await;
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
            channel,
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
        let provider = self.provider_for(request.provider.as_deref())?;
        let tenders = self.plan_tenders(request, &cart, priced.total).await?;
        let mut remainder = priced.total;
        for t in &tenders {
            remainder = remainder.checked_sub(t.amount)?;
        }
        if !remainder.is_zero() && request.payment_token.trim().is_empty() {
            return Err(Error::Incomplete("payment token"));
        }
        if !remainder.is_zero() && !provider.accepts_currency(priced.currency) {
            return Err(Error::invalid(
                "payment provider",
                format!(
                    "`{}` does not take payments in {}",
                    provider.name(),
                    priced.currency
                ),
            ));
        }

        // In a channel that names its locations, stock comes only from them.
        let channel = channel.filter(|c| c.locations.is_some()).map(|c| c.id);
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
                    channel,
                    location: entry.stock_location,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let thresholds = requests
            .iter()
            .filter_map(|r| {
                entries
                    .get(&r.variant_id)
                    .and_then(|e| e.variant.low_stock_threshold())
                    .map(|t| (r.variant_id, t))
            })
            .collect();
        Ok(Prepared {
            cart,
            priced,
            email,
            requests,
            provider,
            tenders,
            thresholds,
        })
    }

    /// What the request's gift cards (in order), then the customer's store
    /// credit, will pay of `total`: each as much as it holds of what is
    /// left. A named gift card that is unknown, in another currency,
    /// expired or empty is refused; store credit is used when there is some.
    async fn plan_tenders(
        &self,
        request: &CheckoutRequest,
        cart: &crate::cart::Cart,
        total: crate::money::Money,
    ) -> Result<Vec<PlannedTender>> {
        use crate::giftcard::BalanceKind;
        let now = self.now();
        let mut left = total;
        let mut planned: Vec<PlannedTender> = Vec::new();
        for code in &request.gift_cards {
            let card = self
                .find_gift_card(&request.actor, Some(cart.id()), &code.0)
                .await?;
            if card.currency() != cart.currency() {
                return Err(Error::CurrencyMismatch {
                    left: cart.currency(),
                    right: card.currency(),
                });
            }
            if !card.spendable_at(now) {
                return Err(Error::invalid(
                    "gift card",
                    format!("…{} has expired", card.last4()),
                ));
            }
            if planned.iter().any(|t| t.card.id() == card.id()) {
                // The same card entered twice counts once.
                continue;
            }
            if card.balance().is_zero() {
                return Err(Error::InsufficientBalance {
                    available: card.balance(),
                    requested: left,
                });
            }
            take(&mut planned, card, &mut left)?;
        }
        if request.store_credit {
            let Some(customer) = cart.customer_id() else {
                return Err(Error::invalid(
                    "store credit",
                    "only a signed-in customer's cart can use store credit",
                ));
            };
            let cards = self.inner.store.gift_cards_of(customer).await?;
            for card in cards {
                if card.kind() == BalanceKind::StoreCredit
                    && card.currency() == cart.currency()
                    && card.spendable_at(now)
                {
                    take(&mut planned, card, &mut left)?;
                }
            }
        }
        Ok(planned)
    }

    /// Redeems the planned tenders; when a card's balance went down
    /// between planning and redeeming (another checkout spent from it), it
    /// gives back this round's redemptions, plans again from the balances
    /// as they are now and redeems that, up to [`MAX_REDEEM_ROUNDS`] times —
    /// so a lost race is not refused while the card still has money. A card
    /// that is empty by then is refused ([`Error::InsufficientBalance`]).
    async fn redeem_planned(
        &self,
        lease: &Lease,
        request: &CheckoutRequest,
        cart: &crate::cart::Cart,
        total: crate::money::Money,
        mut planned: Vec<PlannedTender>,
        progress: &mut Progress,
    ) -> Result<Vec<Payment>> {
        let mut round = 0;
        loop {
            match self.redeem(lease, &planned, progress, round).await {
                Err(Error::InsufficientBalance { .. }) if round + 1 < MAX_REDEEM_ROUNDS => {
                    crate::telemetry::compensation("redemption_replanned");
                    let fenced = self.fence(lease).await?;
                    self.release_redemptions(&fenced).await?;
                    planned = self.plan_tenders(request, cart, total).await?;
                    round += 1;
                }
                other => return other,
            }
        }
    }

    /// Redeems the planned tenders for the attempt under `lease`, in order:
    /// one ledger entry each, keyed by the attempt (and the round of
    /// [`Engine::redeem_planned`]). Returns them as the order's tender
    /// payments.
    async fn redeem(
        &self,
        lease: &Lease,
        planned: &[PlannedTender],
        progress: &mut Progress,
        round: u32,
    ) -> Result<Vec<Payment>> {
        use crate::giftcard::{EntryKind, NewEntry};
        let reference = redeem_reference(&lease.key, lease.attempt);
        let mut tenders = Vec::with_capacity(planned.len());
        for (i, t) in planned.iter().enumerate() {
            let key = if round == 0 {
                format!("{reference}:redeem:{i}")
            } else {
                format!("{reference}:redeem:{round}:{i}")
            };
            progress.redeemed = true;
            self.inner
                .store
                .post_gift_card_entry(
                    t.card.id(),
                    NewEntry::new(
                        key.clone(),
                        EntryKind::Redeem,
                        t.amount,
                        reference.clone(),
                        Actor::System,
                    ),
                    self.now(),
                )
                .await?;
            tenders.push(Payment {
                id: PaymentId::new(),
                provider: t.card.kind().provider_name().to_owned(),
                reference: t.card.id().to_string(),
                authorize_key: key,
                authorized: t.amount,
                captured: t.amount,
                refunded: crate::money::Money::zero(t.amount.currency()),
                status: PaymentStatus::Captured,
                operations: Vec::new(),
                method: None,
            });
        }
        Ok(tenders)
    }

    /// Gives back every redemption of attempt `attempt` of checkout `key`
    /// that has not been given back: a release entry each, keyed by the
    /// redemption, so running this twice gives back once.
    async fn release_redemptions(&self, fenced: &Fenced) -> Result<()> {
        use crate::giftcard::{EntryKind, NewEntry};
        let lease = fenced.lease();
        let reference = redeem_reference(&lease.key, lease.attempt);
        let entries = self.inner.store.gift_card_entries_for(&reference).await?;
        for (card, entry) in entries.iter().filter(|(_, e)| e.kind == EntryKind::Redeem) {
            let release = format!("{}:release", entry.key);
            if entries.iter().any(|(c, e)| c == card && e.key == release) {
                continue;
            }
            let amount =
                crate::money::Money::zero(entry.amount.currency()).checked_sub(entry.amount)?;
            self.inner
                .store
                .post_gift_card_entry(
                    *card,
                    NewEntry::new(
                        release,
                        EntryKind::Release,
                        amount,
                        reference.clone(),
                        Actor::System,
                    ),
                    self.now(),
                )
                .await?;
            crate::telemetry::compensation("redemption_released");
        }
        Ok(())
    }

    /// The provider registered as `name`, or the default.
    fn provider_for(&self, name: Option<&str>) -> Result<std::sync::Arc<dyn PaymentProvider>> {
        let providers = &self.inner.payments;
        match name {
            None => Ok(providers.default().clone()),
            Some(name) => providers.get(name).cloned().ok_or_else(|| {
                Error::invalid(
                    "payment provider",
                    format!(
                        "no provider named `{}` is registered",
                        name.chars()
                            .take(crate::engine::MAX_PROVIDER_NAME_LEN)
                            .collect::<String>()
                    ),
                )
            }),
        }
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
    ) -> Result<Attempted> {
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
            provider,
            tenders: planned,
            thresholds,
        } = prepared;
        // The reservation lowered what is available: announce a crossing.
        for (variant, threshold) in thresholds {
            self.check_low_stock(variant, Some(threshold)).await;
        }
        progress.provider = Some(provider.clone());
        let authorize_key = authorize_key(&lease.key, lease.attempt);
        // Gift cards, then store credit, each a ledger entry keyed by the
        // attempt; a failure later gives them back (`after_failed_attempt`,
        // or recovery, finds them by the attempt's reference).
        let tenders = self
            .redeem_planned(lease, request, &cart, priced.total, planned, progress)
            .await?;
        let mut total = priced.total;
        for t in &tenders {
            total = total.checked_sub(t.authorized())?;
        }
        let mut order = Order {
            id: OrderId::new(),
            checkout_key: lease.key.clone(),
            cart_id: cart.id(),
            customer_id: cart.customer_id(),
            email: Some(email),
            shipping_address: cart.shipping_address().cloned(),
            billing_address: cart.billing_address().or(cart.shipping_address()).cloned(),
            pricing: priced,
            payment: free_payment(total, authorize_key.clone()),
            tenders,
            channel_id: cart.channel_id(),
            reservation_id: reservation.id,
            status: OrderStatus::Placed,
            placed_at: self.now(),
            history: Vec::new(),
            shipments: Vec::new(),
            returns: Vec::new(),
            notes: Vec::new(),
            provider_events: Vec::new(),
            cancellation: None,
            access_token_hash: None,
            version: 0,
        };
        if total.is_zero() {
            // Nothing (left) to charge: no provider call.
            let order = self.finish_order(lease, order, None, &request.actor)?;
            return store
                .place_order(lease, order, self.now())
                .await
                .map(|order| Attempted::Placed(Box::new(order)));
        }
        progress.hold = Hold::Unknown;
        // With immediate capture, a provider that can collects in the
        // authorize call itself (a sale): one call and one write fewer.
        let sale =
            self.inner.config.capture == CaptureMode::Immediate && provider.captures_on_authorize();
        let started = std::time::Instant::now();
        let response = provider
            .authorize(AuthorizeRequest {
                idempotency_key: authorize_key.clone(),
                amount: total,
                payment_token: token.to_owned(),
                reference: lease.key.to_string(),
                capture: sale,
                method: request.payment_method.clone(),
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
        if response.status.is_waiting() {
            // The customer (or the provider) must act first: park the
            // checkout with its stock and the order it will place.
            let session = self.session_from(lease, provider.name(), &order, &response)?;
            order.payment.provider = provider.name().to_owned();
            order.payment.reference = response.reference.clone();
            order.payment.method = request.payment_method.clone();
            let awaiting = AwaitingPayment {
                session,
                order,
                sale,
                actor: request.actor.clone(),
            };
            self.park(lease, &awaiting).await?;
            return Ok(Attempted::Waiting(awaiting.session));
        }
        let mut payment = payment_from(provider.name(), &response, total, authorize_key, sale)?;
        payment.method = request.payment_method.clone();
        let order = self.finish_order(lease, order, Some(payment), &request.actor)?;
        store
            .place_order(lease, order, self.now())
            .await
            .map(|order| Attempted::Placed(Box::new(order)))
    }

    /// The session a waiting `response` opens for `order`.
    fn session_from(
        &self,
        lease: &Lease,
        provider: &str,
        order: &Order,
        response: &ProviderResponse,
    ) -> Result<PaymentSession> {
        if response.amount != order.payment.authorized {
            return Err(Error::PaymentUnavailable(
                "provider answered with a different amount".into(),
            ));
        }
        if let Some(action) = &response.action {
            action.validate()?;
        } else if response.status == ProviderStatus::RequiresAction {
            return Err(Error::PaymentUnavailable(
                "provider asked for a customer action without saying which".into(),
            ));
        }
        crate::validate::optional_text(
            "payment reference",
            &response.reference,
            crate::payment::MAX_EVENT_TEXT_LEN,
        )?;
        Ok(PaymentSession {
            checkout_key: lease.key.clone(),
            order_id: order.id(),
            provider: provider.to_owned(),
            reference: response.reference.clone(),
            amount: response.amount,
            status: response.status,
            action: response.action.clone(),
            expires_at: self.now() + self.session_ttl(order),
        })
    }

    /// How long the payment of `order` may wait: the session's time, or the
    /// shorter gift-card hold when the checkout redeemed gift cards or store
    /// credit ([`EngineConfig::gift_card_hold`](crate::EngineConfig::gift_card_hold)).
    fn session_ttl(&self, order: &Order) -> chrono::Duration {
        let config = &self.inner.config;
        if order.tenders.is_empty() {
            config.payment_session_ttl
        } else {
            config.payment_session_ttl.min(config.gift_card_hold)
        }
    }

    /// Parks a checkout whose payment waits: until its session expires,
    /// with its stock kept a lease longer so that recovery can settle it.
    async fn park(&self, lease: &Lease, awaiting: &AwaitingPayment) -> Result<()> {
        let until = awaiting.session.expires_at;
        self.inner
            .store
            .await_payment(
                lease,
                awaiting,
                until,
                until + self.inner.config.checkout_lease,
            )
            .await
    }

    /// Readies `order` to be placed by `lease`: its payment (`None`: the
    /// free one it carries), when it is placed, the guest's proof of
    /// ownership (derived from the placing lease) and, with immediate
    /// capture, the capture's intent (recorded by the commit that places
    /// the order — the money-path protocol — so placing and capturing take
    /// two writes, not three).
    fn finish_order(
        &self,
        lease: &Lease,
        mut order: Order,
        payment: Option<Payment>,
        actor: &Actor,
    ) -> Result<Order> {
        let now = self.now();
        if let Some(payment) = payment {
            order.payment = payment;
        }
        order.placed_at = now;
        order.access_token_hash = order
            .customer_id
            .is_none()
            .then(|| guest_token(lease.token, order.id).hash());
        order.record_placed(now, actor);
        if self.inner.config.capture == CaptureMode::Immediate
            && order.payment.status == PaymentStatus::Authorized
        {
            order.begin_capture(None, CHECKOUT_CAPTURE, now, &Actor::System)?;
        }
        Ok(order)
    }

    /// Settles the waiting checkout `key` (the buyer returned, or a
    /// provider event arrived with `hint`): `None` when it is not waiting
    /// (settled meanwhile, or someone else is settling it).
    async fn settle_waiting(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        hint: Option<ProviderResponse>,
    ) -> Result<Option<CheckoutStep>> {
        let Some((lease, settled)) = self.claim_and_settle(key, hint, None).await? else {
            return Ok(None);
        };
        match settled {
            Settled::Placed(order) => {
                crate::telemetry::checkout("session_completed");
                let outcome = self.outcome(*order, lease.token, actor);
                Ok(Some(CheckoutStep::Placed(Box::new(outcome))))
            }
            Settled::Waiting(session) => Ok(Some(CheckoutStep::AwaitingPayment(session))),
            Settled::Failed(failure) => Err(failure.into()),
        }
    }

    /// Settles a waiting payment under `lease`: places the order when the
    /// provider holds the funds, parks it again while it still waits, ends
    /// it when it failed or its session expired. `hint` is what a provider
    /// event reported; without one the provider is asked. `event` is that
    /// event's id: it is recorded on the order to be placed, so the command
    /// that places (or parks) it also records the event as applied, and a
    /// replay of the id — whatever it says — changes nothing.
    async fn settle(
        &self,
        lease: &Lease,
        mut awaiting: AwaitingPayment,
        hint: Option<ProviderResponse>,
        event: Option<&str>,
    ) -> Result<Settled> {
        if let Some(id) = event {
            awaiting.order.note_provider_event(id)?;
        }
        let Some(provider) = self.inner.payments.get(&awaiting.session.provider).cloned() else {
            self.park(lease, &awaiting).await?;
            return Err(Error::PaymentUnavailable(format!(
                "no payment provider named `{}` is registered",
                awaiting.session.provider
            )));
        };
        let authorize_key = authorize_key(&lease.key, lease.attempt);
        let answer = match hint {
            Some(hint) => Ok(Some(hint)),
            None => provider.find_authorization(&authorize_key).await,
        };
        let expired = self.now() >= awaiting.session.expires_at;
        let response = match answer {
            Err(e) => {
                // The provider cannot say now: keep waiting (recovery asks again).
                self.park(lease, &awaiting).await?;
                return Err(e.into());
            }
            Ok(None) if expired => {
                let failure = expired_failure();
                return self.end_waiting(lease, awaiting, failure).await;
            }
            Ok(None) => {
                self.park(lease, &awaiting).await?;
                return Ok(Settled::Waiting(awaiting.session));
            }
            Ok(Some(r)) => r,
        };
        match response.status {
            status if status.is_waiting() && expired => {
                self.end_waiting(lease, awaiting, expired_failure()).await
            }
            status if status.is_waiting() => {
                let mut awaiting = awaiting;
                awaiting.session.status = status;
                if let Some(action) = response.action.filter(|a| a.validate().is_ok()) {
                    awaiting.session.action = Some(action);
                }
                self.park(lease, &awaiting).await?;
                Ok(Settled::Waiting(awaiting.session))
            }
            ProviderStatus::Authorized | ProviderStatus::Captured => {
                let awaiting_again = awaiting.clone();
                let AwaitingPayment {
                    session,
                    order,
                    sale,
                    actor,
                } = awaiting;
                let progress = Progress {
                    hold: Hold::Held(response.clone()),
                    touched: true,
                    provider: Some(provider.clone()),
                    redeemed: !order.tenders.is_empty(),
                };
                let placed = match payment_from(
                    provider.name(),
                    &response,
                    session.amount,
                    authorize_key,
                    sale,
                )
                .and_then(|mut payment| {
                    payment.method = order.payment.method.clone();
                    self.finish_order(lease, order, Some(payment), &actor)
                }) {
                    Ok(order) => self.inner.store.place_order(lease, order, self.now()).await,
                    Err(e) => Err(e),
                };
                let order = match placed {
                    Ok(order) => self.capture_if_immediate(order).await,
                    Err(e @ Error::Storage { .. }) => {
                        // The funds are held and the store may be back in a
                        // moment: keep waiting rather than give the money
                        // back (a commit that happened is found by the next
                        // settle, which sees the checkout completed).
                        return match self.placed_meanwhile(&lease.key).await {
                            Ok(Some(order)) => {
                                let order = self.capture_if_immediate(order).await;
                                Ok(Settled::Placed(Box::new(order)))
                            }
                            Err(_) => Err(e),
                            Ok(None) => {
                                // If this fails too, the checkout stays in
                                // progress with its payment, and recovery
                                // settles it once the lease ends.
                                let _parked = self.park(lease, &awaiting_again).await;
                                Err(e)
                            }
                        };
                    }
                    Err(e) => self.after_failed_attempt(lease, progress, e).await?,
                };
                Ok(Settled::Placed(Box::new(order)))
            }
            _ => {
                // Failed, voided: nothing is held.
                let failure = CheckoutFailure::PaymentDeclined {
                    code: "payment_failed".into(),
                    message: "the payment failed at the provider".into(),
                };
                self.end_waiting(lease, awaiting, failure).await
            }
        }
    }

    /// Ends a waiting payment for good: cancels it at the provider (voids a
    /// hold, refunds a sale, if it completed meanwhile), then releases the
    /// stock and coupon uses and saves `failure` against the key.
    ///
    /// It fences the checkout first: a settler that lost its lease gives
    /// nothing back ([`Error::LeaseLost`]). If the provider cannot be
    /// reached after the fence, the checkout stays in progress and recovery
    /// finishes giving back once the fenced lease ends (a retry with the key
    /// then runs a new attempt).
    async fn end_waiting(
        &self,
        lease: &Lease,
        awaiting: AwaitingPayment,
        failure: CheckoutFailure,
    ) -> Result<Settled> {
        let Some(provider) = self.inner.payments.get(&awaiting.session.provider).cloned() else {
            self.park(lease, &awaiting).await?;
            return Err(Error::PaymentUnavailable(format!(
                "no payment provider named `{}` is registered",
                awaiting.session.provider
            )));
        };
        let fenced = self.fence(lease).await?;
        let key = authorize_key(&lease.key, lease.attempt);
        if let Some(held) = provider
            .find_authorization(&key)
            .await
            .map_err(Error::from)?
        {
            self.undo_hold(provider.as_ref(), &fenced, held).await?;
        }
        if !awaiting.order.tenders.is_empty() {
            self.release_redemptions(&fenced).await?;
        }
        tracing::warn!(key = %lease.key, "a waiting payment ended without an order; its stock is released");
        crate::telemetry::compensation("session_ended");
        self.inner
            .store
            .end_checkout(lease, CheckoutEnd::Failed(failure.clone()), self.now())
            .await?;
        Ok(Settled::Failed(failure))
    }

    /// Voids whatever the attempt may hold. False if that could not be done now.
    async fn release_hold(
        &self,
        provider: &dyn PaymentProvider,
        fenced: &Fenced,
        hold: Hold,
    ) -> bool {
        let lease = fenced.lease();
        let reference = match hold {
            Hold::None => return true,
            Hold::Held(r) => r,
            Hold::Unknown => match provider
                .find_authorization(&authorize_key(&lease.key, lease.attempt))
                .await
            {
                Ok(Some(r)) => r,
                Ok(None) => return true,
                Err(_) => return false,
            },
        };
        self.undo_hold(provider, fenced, reference).await.is_ok()
    }

    /// Gives back what an attempt that placed no order holds at the
    /// provider: voids a hold (or cancels a payment still waiting), refunds
    /// a sale. `Ok(false)` when there was nothing to give back.
    async fn undo_hold(
        &self,
        provider: &dyn PaymentProvider,
        fenced: &Fenced,
        held: ProviderResponse,
    ) -> Result<bool> {
        let (key, attempt) = (&fenced.lease().key, fenced.lease().attempt);
        match held.status {
            ProviderStatus::Authorized
            | ProviderStatus::RequiresAction
            | ProviderStatus::Processing => {
                provider
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
                provider
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
    /// currency, not negative and within what the payment holds.
    ///
    /// An event about a checkout's waiting payment (its
    /// [`PaymentSession::reference`]) settles that checkout: funds held
    /// (`authorized`, or `captured` for a sale) place the order, `failed`
    /// ends it and releases its stock; the buyer's return and the event may
    /// arrive in either order, any number of times, and the order is placed
    /// once.
    ///
    /// Only the provider that holds the payment (`Actor::Provider` with the
    /// name the payment records, through a verified webhook) and the system
    /// may apply events.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone else; [`Error::Invalid`],
    /// [`Error::LimitExceeded`] or [`Error::CurrencyMismatch`] for a
    /// malformed event; [`Error::NotFound`] when no order or waiting
    /// checkout has the reference (an event about a payment that is not
    /// the shop's, or an abandoned attempt's: acknowledge it);
    /// [`Error::IllegalTransition`] for an event the payment cannot take;
    /// [`Error::CheckoutInProgress`] while the buyer's return settles the
    /// same checkout (deliver the event again later).
    #[tracing::instrument(name = "apply_provider_event", skip_all, fields(event_id = %event.id))]
    pub async fn apply_provider_event(
        &self,
        actor: &Actor,
        event: &crate::payment::ProviderEvent,
    ) -> Result<EventOutcome> {
        if !matches!(actor, Actor::Provider(_) | Actor::System) {
            return Err(Error::Forbidden);
        }
        event.validate()?;
        let store = &self.inner.store;
        let deadline = Instant::now() + self.inner.config.checkout_wait;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            if let Some(order) = store
                .order_by_payment_reference(&event.authorization)
                .await?
            {
                return self.apply_event_to_order(actor, event, order).await;
            }
            let Some(record) = store
                .checkout_by_payment_reference(&event.authorization)
                .await?
            else {
                // Placed between the two reads?
                return match store
                    .order_by_payment_reference(&event.authorization)
                    .await?
                {
                    Some(order) => self.apply_event_to_order(actor, event, order).await,
                    None => Err(Error::not_found("authorization", &event.authorization)),
                };
            };
            let awaiting = record
                .awaiting
                .as_deref()
                .filter(|a| a.session.reference == event.authorization);
            let Some(awaiting) = awaiting else {
                return match record.state {
                    CheckoutState::Failed { failure } => Ok(EventOutcome::CheckoutFailed {
                        checkout_key: record.key,
                        failure,
                    }),
                    CheckoutState::Completed { .. } => {
                        // Placed meanwhile: the order has the reference,
                        // unless another attempt placed it.
                        match store
                            .order_by_payment_reference(&event.authorization)
                            .await?
                        {
                            Some(order) => self.apply_event_to_order(actor, event, order).await,
                            None => Err(Error::not_found("authorization", &event.authorization)),
                        }
                    }
                    _ => Err(Error::not_found("authorization", &event.authorization)),
                };
            };
            // A provider reports on its own payments only.
            let provider = awaiting.session.provider.clone();
            if let Actor::Provider(reporter) = actor
                && *reporter != provider
            {
                return Err(Error::Forbidden);
            }
            // An event already applied to the waiting payment changes
            // nothing, whatever it says now.
            if awaiting.order.applied_provider_event(&event.id) {
                return Ok(EventOutcome::Waiting(awaiting.session.clone()));
            }
            let hint = event_hint(event, &awaiting.session)?;
            match record.state {
                CheckoutState::AwaitingPayment => {
                    let viewer = Actor::Provider(provider);
                    match self
                        .claim_and_settle(&record.key, hint, Some(&event.id))
                        .await?
                        .map(|(_, settled)| settled)
                    {
                        Some(Settled::Placed(order)) => {
                            crate::telemetry::checkout("session_completed");
                            return Ok(EventOutcome::Order(Box::new((*order).visible_to(&viewer))));
                        }
                        Some(Settled::Waiting(session)) => {
                            return Ok(EventOutcome::Waiting(session));
                        }
                        Some(Settled::Failed(failure)) => {
                            return Ok(EventOutcome::CheckoutFailed {
                                checkout_key: record.key,
                                failure,
                            });
                        }
                        // Someone else took it meanwhile: look again.
                        None => {}
                    }
                }
                CheckoutState::InProgress if record.lease_until <= self.now() => {
                    self.recover_checkout(&record.key).await?;
                }
                _ => {
                    // The buyer's return is settling it.
                    if Instant::now() >= deadline {
                        return Err(Error::CheckoutInProgress(record.key.to_string()));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
            }
        }
    }

    /// Claims the waiting checkout `key` and settles it with `hint` (what
    /// an event reported; `None`: ask the provider). `None` when it is not
    /// waiting (settled meanwhile, or someone else is settling it).
    async fn claim_and_settle(
        &self,
        key: &IdempotencyKey,
        hint: Option<ProviderResponse>,
        event: Option<&str>,
    ) -> Result<Option<(Lease, Settled)>> {
        let claimed = self
            .inner
            .store
            .claim_awaiting(key, self.now() + self.inner.config.checkout_lease)
            .await?;
        match claimed {
            Some((lease, awaiting)) => {
                let settled = self.settle(&lease, awaiting, hint, event).await?;
                Ok(Some((lease, settled)))
            }
            None => Ok(None),
        }
    }

    /// Applies `event` to the placed `order` holding its authorization.
    async fn apply_event_to_order(
        &self,
        actor: &Actor,
        event: &crate::payment::ProviderEvent,
        order: Order,
    ) -> Result<EventOutcome> {
        // A provider reports on its own payments only.
        let name = order.payment().provider.clone();
        if let Actor::Provider(reporter) = actor
            && *reporter != name
        {
            return Err(Error::Forbidden);
        }
        let now = self.now();
        let order = self
            .update_order(order, |order| order.apply_provider_event(event, &name, now))
            .await?;
        Ok(EventOutcome::Order(Box::new(
            order.visible_to(&Actor::Provider(name)),
        )))
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
        let mut report = RecoveryReport::default();
        // Stale attempts and expired payment sessions first: a session
        // completed at the provider is placed while its stock is still held.
        loop {
            let stale = self.inner.store.stale_checkouts(self.now(), 100).await?;
            if stale.is_empty() {
                break;
            }
            let mut progressed = false;
            for record in stale {
                // One checkout the provider cannot settle now does not stop
                // the others.
                let recovered = match self.recover_checkout(&record.key).await {
                    Ok(r) => r,
                    Err(e) if record.awaiting.is_some() => {
                        tracing::warn!(key = %record.key, error = %e, "a waiting payment could not be settled now");
                        None
                    }
                    Err(e) => return Err(e),
                };
                match recovered {
                    None => {}
                    Some(Recovered::Reset { voided }) => {
                        report.reset_checkouts += 1;
                        report.voided_authorizations += u64::from(voided);
                    }
                    Some(Recovered::Completed) => report.completed_sessions += 1,
                    Some(Recovered::Ended) => report.ended_sessions += 1,
                }
                progressed |= recovered.is_some();
            }
            if !progressed {
                break;
            }
        }
        report.released_reservations = self.inner.store.release_expired(self.now()).await?;
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
                let stale = match order.pending_operation() {
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

    /// Cleans up one stale attempt. `None` if it was not stale (any more)
    /// or its payment still waits; otherwise what was done.
    async fn recover_checkout(&self, key: &IdempotencyKey) -> Result<Option<Recovered>> {
        let now = self.now();
        let Some(lease) = self
            .inner
            .store
            .claim_stale(key, now, now + self.inner.config.checkout_lease)
            .await?
        else {
            return Ok(None);
        };
        let record = self.inner.store.checkout(key).await?;
        if let Some(awaiting) = record.and_then(|r| r.awaiting) {
            // A waiting payment whose session expired, or whose settling
            // stopped half-way: settle it as a returning buyer would.
            return match self.settle(&lease, *awaiting, None, None).await? {
                Settled::Placed(_) => Ok(Some(Recovered::Completed)),
                Settled::Failed(_) => Ok(Some(Recovered::Ended)),
                Settled::Waiting(_) => Ok(None),
            };
        }
        // The attempt recorded no provider: ask each (its key is unique).
        let attempt_key = authorize_key(key, lease.attempt);
        let mut found = None;
        for provider in self.inner.payments.all() {
            if let Some(auth) = provider
                .find_authorization(&attempt_key)
                .await
                .map_err(Error::from)?
            {
                found = Some((provider.clone(), auth));
                break;
            }
        }
        // Recovery holds the lease it just took; fencing it too keeps one
        // rule for every path that gives back.
        let fenced = self.fence(&lease).await?;
        let mut voided = false;
        if let Some((provider, auth)) = found
            && self.undo_hold(provider.as_ref(), &fenced, auth).await?
        {
            voided = true;
            crate::telemetry::compensation("hold_voided");
            tracing::warn!(key = %key, attempt = lease.attempt, "recovery gave back the hold of a stale checkout");
        }
        self.release_redemptions(&fenced).await?;
        self.inner
            .store
            .end_checkout(&lease, CheckoutEnd::Retryable, self.now())
            .await?;
        Ok(Some(Recovered::Reset { voided }))
    }
}
