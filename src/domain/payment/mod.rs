//! Payments: the [`PaymentProvider`] port, the payment state machine and a
//! built-in [`TestPaymentProvider`](crate::payment::TestPaymentProvider)
//! (an adapter, in `src/adapters/test_payment.rs`).
//!
//! Every provider call carries an idempotency key. The engine derives keys
//! from the checkout's own key, so a retried checkout reaches the provider
//! with the same key and can never charge twice.
//!
//! Architecture invariant: the domain types here know nothing of storage; a
//! provider adapter knows nothing of carts or orders beyond the amounts and
//! references it is handed.

pub mod webhook;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::PaymentId;
use crate::money::Money;

pub use crate::domain::session::{
    CustomerAction, MAX_ACTION_DATA_LEN, MAX_ACTION_URL_LEN, PaymentSession, ProviderStatus,
};

/// A provider's successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderResponse {
    /// The provider's reference for the authorization (e.g. a payment intent id).
    pub reference: String,
    /// The status after the call.
    pub status: ProviderStatus,
    /// The amount this call concerned.
    pub amount: Money,
    /// Everything captured on the authorization so far, when the gateway
    /// reports it. The engine reconciles against it, so a capture reported
    /// both by this answer and by a webhook is counted once.
    pub captured_total: Option<Money>,
    /// Everything refunded on the authorization so far, when reported.
    pub refunded_total: Option<Money>,
    /// With [`ProviderStatus::RequiresAction`]: what the customer must do.
    #[serde(default)]
    pub action: Option<CustomerAction>,
}

impl ProviderResponse {
    /// An answer about `amount` on the authorization `reference`, now in
    /// `status`, without running totals (add them with
    /// [`with_totals`](Self::with_totals) when the gateway reports them).
    pub fn new(reference: impl Into<String>, status: ProviderStatus, amount: Money) -> Self {
        Self {
            reference: reference.into(),
            status,
            amount,
            captured_total: None,
            refunded_total: None,
            action: None,
        }
    }

    /// The same answer asking the customer to act (use with
    /// [`ProviderStatus::RequiresAction`]).
    #[must_use]
    pub fn with_action(mut self, action: CustomerAction) -> Self {
        self.action = Some(action);
        self
    }

    /// The same answer with the authorization's running totals.
    #[must_use]
    pub fn with_totals(mut self, captured: Option<Money>, refunded: Option<Money>) -> Self {
        self.captured_total = captured;
        self.refunded_total = refunded;
        self
    }
}

impl CustomerAction {
    /// Checks what a provider sent: a redirect is an `http(s)://` URL of at
    /// most [`MAX_ACTION_URL_LEN`] visible ASCII characters; client data is
    /// 1 to [`MAX_ACTION_DATA_LEN`] visible ASCII characters.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field and the length received.
    pub fn validate(&self) -> Result<()> {
        let (field, value, max) = match self {
            Self::Redirect { url } => ("redirect url", url, MAX_ACTION_URL_LEN),
            Self::ClientData { data } => ("client data", data, MAX_ACTION_DATA_LEN),
        };
        let visible =
            !value.is_empty() && value.len() <= max && value.bytes().all(|b| b.is_ascii_graphic());
        let scheme = match self {
            Self::Redirect { url } => url.starts_with("https://") || url.starts_with("http://"),
            Self::ClientData { .. } => true,
        };
        if visible && scheme {
            Ok(())
        } else {
            Err(Error::invalid(
                field,
                format!(
                    "must be 1 to {max} visible ASCII characters{}, got {} bytes",
                    if matches!(self, Self::Redirect { .. }) {
                        " starting with https:// or http://"
                    } else {
                        ""
                    },
                    value.len()
                ),
            ))
        }
    }
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// The payment was refused (card declined, insufficient funds). Final.
    #[error("declined ({code}): {message}")]
    Declined {
        /// The provider's decline code.
        code: String,
        /// A human-readable reason.
        message: String,
    },
    /// The provider could not be reached or failed before acting. Retrying is safe.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// No answer in time: the call may or may not have taken effect. Retrying
    /// with the same idempotency key resolves it.
    #[error("provider timed out")]
    Timeout,
    /// The authorization referred to does not exist.
    #[error("authorization not found")]
    NotFound,
    /// The request was refused as invalid (capturing more than authorized,
    /// an idempotency key reused with different parameters).
    #[error("invalid payment request: {0}")]
    Invalid(String),
}

impl From<PaymentError> for Error {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Declined { code, message } => Error::PaymentDeclined { code, message },
            PaymentError::Unavailable(m) => Error::PaymentUnavailable(m),
            PaymentError::Timeout => Error::PaymentUnavailable("provider timed out".into()),
            PaymentError::NotFound => Error::not_found("authorization", "at provider"),
            PaymentError::Invalid(m) => Error::invalid("payment request", m),
        }
    }
}

/// What a gateway reports about an authorization, delivered by webhook.
/// Events may arrive more than once and in any order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderEvent {
    /// The gateway's event id; each is applied once.
    pub id: String,
    /// The authorization it concerns.
    pub authorization: String,
    /// What happened.
    pub kind: ProviderEventKind,
}

/// What a [`ProviderEvent`] reports. Amounts are cumulative for the
/// authorization, so events can be applied in any order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum ProviderEventKind {
    /// Funds are held (informational: the order exists only once they are).
    Authorized,
    /// Funds were collected; `captured_total` so far.
    Captured {
        /// Everything captured on the authorization so far.
        captured_total: Money,
    },
    /// Funds were returned (perhaps from the gateway's dashboard).
    Refunded {
        /// Everything refunded so far.
        refunded_total: Money,
    },
    /// The authorization failed or lapsed before anything was collected.
    Failed {
        /// The gateway's reason.
        reason: String,
    },
    /// The cardholder disputed the payment.
    Disputed {
        /// The amount disputed.
        amount: Money,
        /// The gateway's reason.
        reason: String,
    },
}

/// Longest provider event id, authorization reference or event reason
/// accepted, in characters.
pub const MAX_EVENT_TEXT_LEN: usize = 255;
/// Longest reason accepted in a provider event, in characters.
pub const MAX_EVENT_REASON_LEN: usize = 2_000;

impl ProviderEvent {
    /// Event `id` (the provider's, for deduplication) about the
    /// authorization `authorization`.
    pub fn new(
        id: impl Into<String>,
        authorization: impl Into<String>,
        kind: ProviderEventKind,
    ) -> Self {
        Self {
            id: id.into(),
            authorization: authorization.into(),
            kind,
        }
    }

    /// Checks the event on its own: its id and authorization are 1 to
    /// [`MAX_EVENT_TEXT_LEN`] visible ASCII characters, reasons are at most
    /// [`MAX_EVENT_REASON_LEN`] characters without control characters.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field, or [`Error::LimitExceeded`].
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("provider event id", &self.id),
            ("provider event authorization", &self.authorization),
        ] {
            let ok = !value.is_empty()
                && value.len() <= MAX_EVENT_TEXT_LEN
                && value.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(Error::invalid(
                    field,
                    format!(
                        "must be 1 to {MAX_EVENT_TEXT_LEN} visible ASCII characters, got {} bytes",
                        value.len()
                    ),
                ));
            }
        }
        if let ProviderEventKind::Failed { reason } | ProviderEventKind::Disputed { reason, .. } =
            &self.kind
        {
            crate::validate::optional_text("provider event reason", reason, MAX_EVENT_REASON_LEN)?;
        }
        Ok(())
    }

    /// Checks the event against the payment it concerns: amounts in the
    /// payment's currency, exact in minor units, not negative, and within
    /// what the payment can hold (captured at most the authorized amount,
    /// refunded at most that, a dispute positive and at most it).
    ///
    /// # Errors
    /// [`Error::CurrencyMismatch`] or [`Error::Invalid`] with the value given.
    pub fn validate_for(&self, payment: &Payment) -> Result<()> {
        self.validate()?;
        let (field, amount, positive_only) = match &self.kind {
            ProviderEventKind::Captured { captured_total } => {
                ("captured total", *captured_total, false)
            }
            ProviderEventKind::Refunded { refunded_total } => {
                ("refunded total", *refunded_total, false)
            }
            ProviderEventKind::Disputed { amount, .. } => ("disputed amount", *amount, true),
            ProviderEventKind::Authorized | ProviderEventKind::Failed { .. } => return Ok(()),
        };
        let currency = payment.authorized.currency();
        if amount.currency() != currency {
            return Err(Error::CurrencyMismatch {
                left: currency,
                right: amount.currency(),
            });
        }
        amount.entered()?;
        let out_of_range = amount.is_negative()
            || (positive_only && amount.is_zero())
            || !amount.is_exact()
            || amount.checked_cmp(&payment.authorized)?.is_gt();
        if out_of_range {
            return Err(Error::invalid(
                field,
                format!(
                    "{amount} is not between {} and the authorized {}",
                    if positive_only { "0 (excluded)" } else { "0" },
                    payment.authorized
                ),
            ));
        }
        Ok(())
    }
}

/// Ask the provider to hold funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizeRequest {
    /// Same key, same outcome; never a second hold.
    pub idempotency_key: String,
    /// How much to hold.
    pub amount: Money,
    /// The payment method, as tokenized by the provider's client library.
    pub payment_token: String,
    /// The shop's reference (the checkout's idempotency key), for the provider's records.
    pub reference: String,
    /// Collect the funds in the same call (a sale). Only ever true for a
    /// provider whose [`PaymentProvider::captures_on_authorize`] says it
    /// can; it answers [`ProviderStatus::Captured`] when it did.
    #[serde(default)]
    pub capture: bool,
    /// The payment method the buyer chose among the provider's ("card",
    /// "ideal", "klarna"), when the checkout named one.
    #[serde(default)]
    pub method: Option<String>,
}

/// Ask the provider to collect held funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaptureRequest {
    /// Same key, same outcome; never a second capture.
    pub idempotency_key: String,
    /// The authorization's provider reference.
    pub authorization: String,
    /// How much to collect (at most what is still held).
    pub amount: Money,
}

/// Ask the provider to release a hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VoidRequest {
    /// Same key, same outcome.
    pub idempotency_key: String,
    /// The authorization's provider reference.
    pub authorization: String,
}

/// Ask the provider to return collected funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefundRequest {
    /// Same key, same outcome; never a second refund.
    pub idempotency_key: String,
    /// The authorization's provider reference.
    pub authorization: String,
    /// How much to return (at most what was captured and not yet refunded).
    pub amount: Money,
}

/// A payment gateway.
///
/// Implementations must honour idempotency keys the way real gateways do: a
/// repeated key returns the first call's outcome and has no further effect.
/// A decline is [`PaymentError::Declined`]; a failure to reach the gateway is
/// [`PaymentError::Unavailable`] or [`PaymentError::Timeout`].
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// A short stable name recorded on payments ("stripe", "test").
    fn name(&self) -> &str;

    /// Whether [`authorize`](Self::authorize) can also collect the funds
    /// in the same call when [`AuthorizeRequest::capture`] asks (a "sale"):
    /// checkouts with immediate capture then make one provider call and one
    /// write fewer. The default is `false`: the engine authorizes, then
    /// captures.
    fn captures_on_authorize(&self) -> bool {
        false
    }

    /// Whether this provider takes payments in `currency`. Checkout refuses
    /// a cart in another currency before reserving anything. The default
    /// accepts every currency.
    fn accepts_currency(&self, currency: crate::money::Currency) -> bool {
        let _ = currency;
        true
    }

    /// Holds funds — or answers [`ProviderStatus::RequiresAction`] (with
    /// [`ProviderResponse::action`]) or [`ProviderStatus::Processing`] when
    /// the payment must wait for the customer or the provider. A waiting
    /// payment is then followed by
    /// [`find_authorization`](Self::find_authorization) with the same key
    /// (when the buyer returns or the session expires) or by the provider's
    /// events, and cancelled with [`void`](Self::void).
    async fn authorize(&self, request: AuthorizeRequest) -> Result<ProviderResponse, PaymentError>;

    /// Collects held funds.
    async fn capture(&self, request: CaptureRequest) -> Result<ProviderResponse, PaymentError>;

    /// Releases a hold, or cancels a payment still waiting on the customer
    /// (so that it can no longer complete).
    async fn void(&self, request: VoidRequest) -> Result<ProviderResponse, PaymentError>;

    /// Returns collected funds.
    async fn refund(&self, request: RefundRequest) -> Result<ProviderResponse, PaymentError>;

    /// Finds the authorization made with `authorize_key`, if any, as it
    /// stands now (a waiting payment answers its current status). Recovery
    /// uses it to void holds whose authorize call never answered; a
    /// waiting checkout uses it to learn whether the customer completed.
    async fn find_authorization(
        &self,
        authorize_key: &str,
    ) -> Result<Option<ProviderResponse>, PaymentError>;
}

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PaymentStatus {
    /// Funds held, nothing collected yet.
    Authorized,
    /// Part of the hold collected.
    PartiallyCaptured,
    /// All of the hold collected.
    Captured,
    /// Part of what was collected returned.
    PartiallyRefunded,
    /// Everything collected returned.
    Refunded,
    /// The hold was released; nothing was collected.
    Voided,
    /// The provider refused or the payment failed.
    Failed,
}

impl PaymentStatus {
    /// Whether the state machine allows `self → to`.
    pub fn can_become(self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, to),
            (Authorized, PartiallyCaptured | Captured | Voided | Failed)
                | (
                    PartiallyCaptured,
                    PartiallyCaptured | Captured | PartiallyRefunded | Refunded
                )
                | (Captured, PartiallyRefunded | Refunded)
                | (PartiallyRefunded, PartiallyRefunded | Refunded)
        )
    }

    /// `self → to`, or [`Error::IllegalTransition`].
    ///
    /// # Errors
    /// [`Error::IllegalTransition`] naming both states.
    pub fn transition(self, to: PaymentStatus) -> Result<PaymentStatus> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(Error::IllegalTransition {
                entity: "payment",
                from: format!("{self:?}"),
                to: format!("{to:?}"),
            })
        }
    }
}

/// What a recorded payment operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperationKind {
    /// Collects held funds.
    Capture,
    /// Returns collected funds.
    Refund,
    /// Releases the hold.
    Void,
}

impl OperationKind {
    /// Its name, as used in provider keys and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::Refund => "refund",
            Self::Void => "void",
        }
    }
}

/// Where a recorded payment operation is.
///
/// An operation is recorded as [`OperationState::Pending`] *before* the
/// provider is called (under the order's version check), then settled as
/// succeeded or failed. A pending operation blocks every other operation on
/// the same payment, so two operations on the same money never both reach
/// the provider; recovery finishes it with the same provider key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperationState {
    /// Recorded; the provider may or may not have acted yet.
    Pending,
    /// The provider acted; the amounts are counted.
    #[default]
    Succeeded,
    /// The provider refused; nothing moved.
    Failed,
}

/// Why an operation was made, so that settling it can finish what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
#[non_exhaustive]
pub enum OperationPurpose {
    /// A capture or refund asked for by itself (a refund by amount, a
    /// capture after shipping).
    #[default]
    Direct,
    /// The refund for a return of units.
    Return(crate::id::ReturnId),
    /// Part of cancelling the order.
    Cancel,
    /// The refund for cancelled units of some lines.
    CancelLines(crate::id::LineCancellationId),
    /// Reported by the provider (an event, or an answer's cumulative total),
    /// never sent to it.
    Reported,
}

/// Longest reason kept on a payment operation, in characters.
pub const MAX_OPERATION_REASON_LEN: usize = 2_000;

/// Longest idempotency key sent to a provider, in ASCII characters.
pub const MAX_PROVIDER_KEY_LEN: usize = 255;

/// One capture, refund or void: what it moves, the key the provider sees and
/// where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PaymentOperation {
    /// What it does.
    pub kind: OperationKind,
    /// The idempotency key sent to the provider, derived from the operation
    /// itself (`<payment id>:<kind>:<sequence>`), or the event it came from.
    pub key: String,
    /// How much it moves.
    pub amount: Money,
    /// Where it is.
    #[serde(default)]
    pub state: OperationState,
    /// What it is for.
    #[serde(default)]
    pub purpose: OperationPurpose,
    /// The caller's idempotency key, when it was asked for under one: a
    /// retry with the same key finds this operation instead of making another.
    #[serde(default)]
    pub request_key: Option<String>,
    /// Why (a refund's reason, the provider's refusal), possibly empty.
    #[serde(default)]
    pub reason: String,
    /// Who asked for it (`None` for what the provider reported).
    #[serde(default)]
    pub requested_by: Option<crate::actor::Actor>,
    /// When it was recorded.
    #[serde(default)]
    pub begun_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An operation about to be recorded ([`Payment::begin`]).
pub(crate) struct Intent<'a> {
    pub(crate) kind: OperationKind,
    pub(crate) amount: Money,
    pub(crate) purpose: OperationPurpose,
    pub(crate) request_key: Option<&'a str>,
    pub(crate) reason: &'a str,
    pub(crate) actor: &'a crate::actor::Actor,
    pub(crate) at: chrono::DateTime<chrono::Utc>,
}

/// A payment attached to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Payment {
    /// Its id.
    pub(crate) id: PaymentId,
    /// The provider's name.
    pub(crate) provider: String,
    /// The provider's reference for the authorization.
    pub(crate) reference: String,
    /// The idempotency key the authorization was made with.
    pub(crate) authorize_key: String,
    /// Amount held.
    pub(crate) authorized: Money,
    /// Amount collected (succeeded captures).
    pub(crate) captured: Money,
    /// Amount returned (succeeded refunds).
    pub(crate) refunded: Money,
    /// Of what is held, the part given up and never to be collected (the
    /// share of units cancelled before capture).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) released: Option<Money>,
    /// Where it is in its life.
    pub(crate) status: PaymentStatus,
    /// Every capture, refund and void, in order, pending and failed ones too.
    pub(crate) operations: Vec<PaymentOperation>,
    /// The payment method the checkout named ("card", "ideal"), if any.
    #[serde(default)]
    pub(crate) method: Option<String>,
}

impl Payment {
    /// Its id.
    pub fn id(&self) -> PaymentId {
        self.id
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The provider's reference for the authorization.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The idempotency key the authorization was made with.
    pub fn authorize_key(&self) -> &str {
        &self.authorize_key
    }

    /// Amount held.
    pub fn authorized(&self) -> Money {
        self.authorized
    }

    /// Amount collected (succeeded captures).
    pub fn captured(&self) -> Money {
        self.captured
    }

    /// Amount returned (succeeded refunds).
    pub fn refunded(&self) -> Money {
        self.refunded
    }

    /// Of what is held, the part given up and never to be collected (the
    /// share of units cancelled before capture).
    pub fn released(&self) -> Money {
        self.released
            .unwrap_or_else(|| Money::zero(self.authorized.currency()))
    }

    /// Where it is in its life.
    pub fn status(&self) -> PaymentStatus {
        self.status
    }

    /// The payment method the checkout named, if any.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// For a payment made with a gift card or store credit: which.
    pub fn tender_kind(&self) -> Option<crate::giftcard::BalanceKind> {
        use crate::giftcard::BalanceKind;
        [BalanceKind::GiftCard, BalanceKind::StoreCredit]
            .into_iter()
            .find(|k| k.provider_name() == self.provider)
    }

    /// Every capture, refund and void, in order, pending and failed ones too.
    pub fn operations(&self) -> &[PaymentOperation] {
        &self.operations
    }
}

impl Payment {
    /// The operation whose provider key is `key`, if any.
    pub fn operation(&self, key: &str) -> Option<&PaymentOperation> {
        self.operations.iter().find(|o| o.key == key)
    }

    /// The operation asked for under the caller's `request_key`, if any.
    pub fn operation_for_request(&self, request_key: &str) -> Option<&PaymentOperation> {
        self.operations
            .iter()
            .find(|o| o.request_key.as_deref() == Some(request_key))
    }

    /// The operation in flight, if any (there is at most one).
    pub fn pending(&self) -> Option<&PaymentOperation> {
        self.operations
            .iter()
            .find(|o| o.state == OperationState::Pending)
    }

    /// Held, not yet collected and not [released](Self::released).
    ///
    /// # Errors
    /// [`Error::Overflow`] or a currency mismatch on corrupt data.
    pub fn capturable(&self) -> Result<Money> {
        if !matches!(
            self.status,
            PaymentStatus::Authorized | PaymentStatus::PartiallyCaptured
        ) {
            return Ok(Money::zero(self.authorized.currency()));
        }
        let left = self
            .authorized
            .checked_sub(self.captured)?
            .checked_sub(self.released())?;
        Ok(if left.is_negative() {
            Money::zero(left.currency())
        } else {
            left
        })
    }

    /// Gives up `amount` of what is held and not collected (`amount` at
    /// most [`capturable`](Self::capturable)); negative `amount` takes a
    /// release back. A payment partly collected whose rest is all given up
    /// is then wholly captured.
    pub(crate) fn release(&mut self, amount: Money) -> Result<()> {
        let released = self.released().checked_add(amount)?;
        if released.is_negative() {
            return Err(Error::invalid("release", "more than was released"));
        }
        self.released = (!released.is_zero()).then_some(released);
        let whole = self.captured.checked_add(released)? == self.authorized;
        match self.status {
            PaymentStatus::PartiallyCaptured if whole => self.status = PaymentStatus::Captured,
            // A release taken back: the rest is collectable again.
            PaymentStatus::Captured if !whole && self.captured != self.authorized => {
                self.status = PaymentStatus::PartiallyCaptured;
            }
            _ => {}
        }
        Ok(())
    }

    /// Collected and not yet returned.
    ///
    /// # Errors
    /// [`Error::Overflow`] or a currency mismatch on corrupt data.
    pub fn refundable(&self) -> Result<Money> {
        Ok(self.captured.checked_sub(self.refunded)?)
    }

    /// Records the intent to `kind` `amount` as a pending operation and
    /// returns its provider key. Refused while another operation is pending
    /// ([`Error::PaymentInProgress`]) or when the amount does not fit what the
    /// payment holds (a capture beyond what is authorized, a refund beyond
    /// what was captured and not refunded, a void of a captured payment).
    pub(crate) fn begin(&mut self, intent: Intent<'_>) -> Result<String> {
        let Intent {
            kind,
            amount,
            purpose,
            request_key,
            reason,
            actor,
            at,
        } = intent;
        if let Some(op) = self.pending() {
            return Err(Error::PaymentInProgress {
                operation: op.key.clone(),
            });
        }
        let reason = crate::validate::optional_text("reason", reason, MAX_OPERATION_REASON_LEN)?;
        match kind {
            OperationKind::Capture => {
                positive(amount)?;
                let capturable = self.capturable()?;
                if amount.checked_cmp(&capturable)?.is_gt() {
                    return Err(Error::invalid(
                        "capture",
                        format!("{amount} exceeds the {capturable} still authorized"),
                    ));
                }
            }
            OperationKind::Refund => {
                positive(amount)?;
                let refundable = self.refundable()?;
                if amount.checked_cmp(&refundable)?.is_gt() {
                    return Err(Error::invalid(
                        "refund",
                        format!("{amount} exceeds the {refundable} captured and not yet refunded"),
                    ));
                }
            }
            OperationKind::Void => {
                if !self.status.can_become(PaymentStatus::Voided) {
                    return Err(Error::IllegalTransition {
                        entity: "payment",
                        from: format!("{:?}", self.status),
                        to: "Voided".into(),
                    });
                }
            }
        }
        let key = format!("{}:{}:{}", self.id, kind.name(), self.operations.len() + 1);
        debug_assert!(key.len() <= MAX_PROVIDER_KEY_LEN);
        self.operations.push(PaymentOperation {
            kind,
            key: key.clone(),
            amount,
            state: OperationState::Pending,
            purpose,
            request_key: request_key.map(str::to_owned),
            reason,
            requested_by: Some(actor.clone()),
            begun_at: Some(at),
        });
        Ok(key)
    }

    /// Settles the pending operation `key` as succeeded and counts its
    /// amount. Returns it, or `None` when it was not pending (already
    /// settled: nothing changes).
    pub(crate) fn succeed(&mut self, key: &str) -> Result<Option<PaymentOperation>> {
        let Some(index) = self
            .operations
            .iter()
            .position(|o| o.key == key && o.state == OperationState::Pending)
        else {
            return Ok(None);
        };
        let op = self
            .operations
            .get(index)
            .cloned()
            .ok_or(Error::Overflow("operation index"))?;
        self.apply(op.kind, op.amount)?;
        if let Some(o) = self.operations.get_mut(index) {
            o.state = OperationState::Succeeded;
        }
        Ok(Some(op))
    }

    /// Settles the pending operation `key` as refused by the provider.
    /// Returns it, or `None` when it was not pending.
    pub(crate) fn fail(&mut self, key: &str, reason: &str) -> Result<Option<PaymentOperation>> {
        let Some(op) = self
            .operations
            .iter_mut()
            .find(|o| o.key == key && o.state == OperationState::Pending)
        else {
            return Ok(None);
        };
        op.state = OperationState::Failed;
        op.reason = reason.chars().take(MAX_OPERATION_REASON_LEN).collect();
        Ok(Some(op.clone()))
    }

    /// Counts a succeeded operation's amount and moves the status.
    fn apply(&mut self, kind: OperationKind, amount: Money) -> Result<()> {
        match kind {
            OperationKind::Capture => {
                let captured = self.captured.checked_add(amount)?;
                if captured.checked_cmp(&self.authorized)?.is_gt() {
                    return Err(Error::invalid(
                        "capture",
                        "exceeds what is still authorized",
                    ));
                }
                let to = if captured.checked_add(self.released())? == self.authorized
                    || captured == self.authorized
                {
                    PaymentStatus::Captured
                } else {
                    PaymentStatus::PartiallyCaptured
                };
                self.status = self.status.transition(to)?;
                self.captured = captured;
            }
            OperationKind::Refund => {
                let refunded = self.refunded.checked_add(amount)?;
                if refunded.checked_cmp(&self.captured)?.is_gt() {
                    return Err(Error::invalid(
                        "refund",
                        "exceeds what was captured and not yet refunded",
                    ));
                }
                let to = if refunded == self.captured {
                    PaymentStatus::Refunded
                } else {
                    PaymentStatus::PartiallyRefunded
                };
                self.status = self.status.transition(to)?;
                self.refunded = refunded;
            }
            OperationKind::Void => {
                self.status = self.status.transition(PaymentStatus::Voided)?;
            }
        }
        Ok(())
    }

    /// Brings the counted total of `kind` (capture or refund) up to the
    /// provider's reported cumulative `total`, under the event key `key`.
    /// A pending operation of the same kind that the new amount covers is
    /// settled as succeeded first (returned, so its purpose can be finished);
    /// what remains is recorded as a reported operation. A total at or below
    /// what is counted changes nothing. Returns the newly counted amount and
    /// the settled operation.
    pub(crate) fn sync_reported(
        &mut self,
        kind: OperationKind,
        key: &str,
        total: Money,
    ) -> Result<(Money, Option<PaymentOperation>)> {
        let zero = Money::zero(self.authorized.currency());
        if self.operation(key).is_some() {
            return Ok((zero, None));
        }
        let counted = match kind {
            OperationKind::Capture => self.captured,
            OperationKind::Refund => self.refunded,
            OperationKind::Void => return Ok((zero, None)),
        };
        let mut delta = total.checked_sub(counted)?;
        let mut settled = None;
        if let Some(op) = self.pending().cloned()
            && op.kind == kind
            && !delta.is_negative()
            && delta.checked_cmp(&op.amount)?.is_ge()
        {
            settled = self.succeed(&op.key)?;
            delta = delta.checked_sub(op.amount)?;
        }
        let newly = if delta.is_negative() || delta.is_zero() {
            zero
        } else {
            self.apply(kind, delta)?;
            delta
        };
        let newly_total = match &settled {
            Some(op) => newly.checked_add(op.amount)?,
            None => newly,
        };
        self.operations.push(PaymentOperation {
            kind,
            key: key.to_owned(),
            amount: newly,
            state: OperationState::Succeeded,
            purpose: OperationPurpose::Reported,
            request_key: None,
            reason: String::new(),
            requested_by: None,
            begun_at: None,
        });
        Ok((newly_total, settled))
    }

    /// Records that the gateway reports the authorization failed.
    pub(crate) fn record_failure(&mut self) -> Result<()> {
        self.status = self.status.transition(PaymentStatus::Failed)?;
        Ok(())
    }
}

fn positive(amount: Money) -> Result<()> {
    amount.entered()?;
    if amount.is_negative() || amount.is_zero() || !amount.is_exact() {
        Err(Error::invalid(
            "amount",
            "must be positive and exact in minor units",
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
