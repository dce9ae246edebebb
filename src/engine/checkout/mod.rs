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
    /// Charges whose try was left in flight (its caller stopped): its
    /// answer looked up at the provider and recorded.
    pub settled_charges: u64,
    /// Orders whose waiting calls to the tax service (a commit, an
    /// adjustment, a void) were sent and answered.
    pub tax_calls: u64,
    /// Orders whose waiting calls to a carrier (a label bought or voided)
    /// were sent and answered.
    pub label_calls: u64,
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
    /// What the tax service quoted, when tax comes from one.
    tax_request: Option<crate::tax::TaxQuoteRequest>,
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
        released: None,
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
        released: None,
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

mod attempt;
mod capture;
mod recovery;
mod sessions;
