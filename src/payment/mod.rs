//! Payments: the [`PaymentProvider`] port, the payment state machine and a
//! built-in [`TestPaymentProvider`].
//!
//! Every provider call carries an idempotency key. The engine derives keys
//! from the checkout's own key, so a retried checkout reaches the provider
//! with the same key and can never charge twice.
//!
//! Architecture invariant: the domain types here know nothing of storage; a
//! provider adapter knows nothing of carts or orders beyond the amounts and
//! references it is handed.

mod test_provider;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::PaymentId;
use crate::money::Money;

pub use test_provider::{Fault, Operation, ProviderCall, TestAuthorization, TestPaymentProvider};

/// What the provider says about an authorization after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderStatus {
    /// Funds are held.
    Authorized,
    /// Some or all of the hold was collected.
    Captured,
    /// The hold was released.
    Voided,
    /// Some or all of the capture was returned.
    Refunded,
}

/// A provider's successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Ask the provider to hold funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    /// Same key, same outcome; never a second hold.
    pub idempotency_key: String,
    /// How much to hold.
    pub amount: Money,
    /// The payment method, as tokenized by the provider's client library.
    pub payment_token: String,
    /// The shop's reference (the checkout's idempotency key), for the provider's records.
    pub reference: String,
}

/// Ask the provider to collect held funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct VoidRequest {
    /// Same key, same outcome.
    pub idempotency_key: String,
    /// The authorization's provider reference.
    pub authorization: String,
}

/// Ask the provider to return collected funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    /// Holds funds.
    async fn authorize(&self, request: AuthorizeRequest) -> Result<ProviderResponse, PaymentError>;

    /// Collects held funds.
    async fn capture(&self, request: CaptureRequest) -> Result<ProviderResponse, PaymentError>;

    /// Releases a hold.
    async fn void(&self, request: VoidRequest) -> Result<ProviderResponse, PaymentError>;

    /// Returns collected funds.
    async fn refund(&self, request: RefundRequest) -> Result<ProviderResponse, PaymentError>;

    /// Finds the authorization made with `authorize_key`, if any. Recovery
    /// uses it to void holds whose authorize call never answered.
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

/// What a recorded payment operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperationKind {
    /// Collected held funds.
    Capture,
    /// Returned collected funds.
    Refund,
    /// Released the hold.
    Void,
}

/// One capture, refund or void, with the idempotency key it was made under:
/// a retry with the same key finds it here and does nothing again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentOperation {
    /// What it did.
    pub kind: OperationKind,
    /// The key it was made under (also sent to the provider).
    pub key: String,
    /// How much it moved.
    pub amount: Money,
}

/// A payment attached to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Its id.
    pub id: PaymentId,
    /// The provider's name.
    pub provider: String,
    /// The provider's reference for the authorization.
    pub reference: String,
    /// The idempotency key the authorization was made with.
    pub authorize_key: String,
    /// Amount held.
    pub authorized: Money,
    /// Amount collected.
    pub captured: Money,
    /// Amount returned.
    pub refunded: Money,
    /// Where it is in its life.
    pub status: PaymentStatus,
    /// Every capture, refund and void, in order.
    pub operations: Vec<PaymentOperation>,
}

impl Payment {
    /// The operation made under `key`, if any.
    pub fn operation(&self, key: &str) -> Option<&PaymentOperation> {
        self.operations.iter().find(|o| o.key == key)
    }

    /// Held and not yet collected.
    pub fn capturable(&self) -> Result<Money> {
        if matches!(self.status, PaymentStatus::Voided | PaymentStatus::Failed) {
            return Ok(Money::zero(self.authorized.currency()));
        }
        self.authorized.checked_sub(self.captured)
    }

    /// Collected and not yet returned.
    pub fn refundable(&self) -> Result<Money> {
        self.captured.checked_sub(self.refunded)
    }

    /// Records a capture of `amount` (at most [`Payment::capturable`]).
    pub fn record_capture(&mut self, key: &str, amount: Money) -> Result<()> {
        positive(amount)?;
        if amount.checked_cmp(&self.capturable()?)?.is_gt() {
            return Err(Error::invalid(
                "capture",
                "exceeds what is still authorized",
            ));
        }
        let captured = self.captured.checked_add(amount)?;
        let to = if captured == self.authorized {
            PaymentStatus::Captured
        } else {
            PaymentStatus::PartiallyCaptured
        };
        self.status = self.status.transition(to)?;
        self.captured = captured;
        self.push(OperationKind::Capture, key, amount);
        Ok(())
    }

    /// Records a refund of `amount` (at most [`Payment::refundable`]).
    pub fn record_refund(&mut self, key: &str, amount: Money) -> Result<()> {
        positive(amount)?;
        if amount.checked_cmp(&self.refundable()?)?.is_gt() {
            return Err(Error::invalid(
                "refund",
                "exceeds what was captured and not yet refunded",
            ));
        }
        let refunded = self.refunded.checked_add(amount)?;
        let to = if refunded == self.captured {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::PartiallyRefunded
        };
        self.status = self.status.transition(to)?;
        self.refunded = refunded;
        self.push(OperationKind::Refund, key, amount);
        Ok(())
    }

    /// Records that the (wholly uncaptured) hold was released.
    pub fn record_void(&mut self, key: &str) -> Result<()> {
        self.status = self.status.transition(PaymentStatus::Voided)?;
        let amount = self.authorized;
        self.push(OperationKind::Void, key, amount);
        Ok(())
    }

    /// Brings the captured amount up to the gateway's reported `total` under
    /// `key`; returns what was newly recorded (zero when a webhook or an
    /// earlier answer already accounted for it — the key is remembered either
    /// way, so a retry is a no-op).
    pub fn sync_captured(&mut self, key: &str, total: Money) -> Result<Money> {
        let zero = Money::zero(self.authorized.currency());
        if self.operation(key).is_some() {
            return Ok(zero);
        }
        let delta = total.checked_sub(self.captured)?;
        if delta.is_negative() || delta.is_zero() {
            self.push(OperationKind::Capture, key, zero);
            return Ok(zero);
        }
        self.record_capture(key, delta)?;
        Ok(delta)
    }

    /// Brings the refunded amount up to the gateway's reported `total`, as
    /// [`Payment::sync_captured`] does for captures.
    pub fn sync_refunded(&mut self, key: &str, total: Money) -> Result<Money> {
        let zero = Money::zero(self.authorized.currency());
        if self.operation(key).is_some() {
            return Ok(zero);
        }
        let delta = total.checked_sub(self.refunded)?;
        if delta.is_negative() || delta.is_zero() {
            self.push(OperationKind::Refund, key, zero);
            return Ok(zero);
        }
        self.record_refund(key, delta)?;
        Ok(delta)
    }

    /// Records that the gateway reports the authorization failed.
    pub fn record_failure(&mut self) -> Result<()> {
        self.status = self.status.transition(PaymentStatus::Failed)?;
        Ok(())
    }

    fn push(&mut self, kind: OperationKind, key: &str, amount: Money) {
        self.operations.push(PaymentOperation {
            kind,
            key: key.to_owned(),
            amount,
        });
    }
}

fn positive(amount: Money) -> Result<()> {
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
mod tests {
    use super::PaymentStatus::*;

    #[test]
    fn payment_transitions() {
        assert!(Authorized.transition(Captured).is_ok());
        assert!(Authorized.transition(PartiallyCaptured).is_ok());
        assert!(PartiallyCaptured.transition(Captured).is_ok());
        assert!(Authorized.transition(Voided).is_ok());
        assert!(Captured.transition(Refunded).is_ok());
        assert!(Captured.transition(Voided).is_err());
        assert!(Voided.transition(Captured).is_err());
        assert!(Captured.transition(Captured).is_err());
        assert!(Refunded.transition(PartiallyRefunded).is_err());
    }
}
