//! A payment provider for tests and examples that behaves like a real gateway.
//!
//! Does not know: orders, stores or the engine: it is a gateway that holds
//! authorizations in memory.

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};

use async_trait::async_trait;

use crate::domain::payment::{
    AuthorizeRequest, CaptureRequest, PaymentError, PaymentProvider, ProviderResponse,
    ProviderStatus, RefundRequest, VoidRequest,
};
use crate::money::Money;

/// A provider operation, for fault injection and call records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`PaymentProvider::authorize`].
    Authorize,
    /// [`PaymentProvider::capture`].
    Capture,
    /// [`PaymentProvider::void`].
    Void,
    /// [`PaymentProvider::refund`].
    Refund,
}

/// A failure to inject into the next call of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Fail before doing anything ([`PaymentError::Unavailable`]).
    Unavailable,
    /// Do the work, then lose the answer ([`PaymentError::Timeout`]): the
    /// worst case a real network gives.
    TimeoutAfterProcessing,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderCall {
    /// Which operation.
    pub operation: Operation,
    /// The idempotency key sent.
    pub idempotency_key: String,
    /// The amount, where the operation has one.
    pub amount: Option<Money>,
    /// Whether the call took effect now (false for replays, faults and refusals).
    pub took_effect: bool,
}

/// The provider's view of one authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestAuthorization {
    /// Its reference.
    pub reference: String,
    /// The key it was made with.
    pub authorize_key: String,
    /// Amount held.
    pub amount: Money,
    /// Amount collected.
    pub captured: Money,
    /// Amount returned.
    pub refunded: Money,
    /// Whether the hold was released.
    pub voided: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    Authorize(Money, String),
    Capture(String, Money),
    Void(String),
    Refund(String, Money),
}

type Outcome = Result<ProviderResponse, PaymentError>;

#[derive(Default)]
struct State {
    /// Whether authorize calls that ask to capture do (sales).
    sales: bool,
    by_key: HashMap<String, (Fingerprint, Outcome)>,
    auths: Vec<TestAuthorization>,
    calls: Vec<ProviderCall>,
    faults: HashMap<Operation, VecDeque<Fault>>,
    declined_amounts: HashSet<Money>,
}

/// A gateway simulator that keeps everything in memory.
///
/// - Token `"tok_visa"` (or any other) authorizes; `"tok_decline"` is declined
///   with code `card_declined`, `"tok_insufficient_funds"` with
///   `insufficient_funds`; amounts registered with
///   [`TestPaymentProvider::decline_amount`] are declined too.
/// - [`TestPaymentProvider::inject`] makes the next call of an operation fail
///   transiently or time out after taking effect.
/// - Idempotency keys behave as at a real gateway: a replay returns the first
///   outcome; the same key with different parameters is refused.
/// - Every call is recorded, so tests can prove a customer was charged once.
#[derive(Default)]
pub struct TestPaymentProvider {
    state: Mutex<State>,
}

impl std::fmt::Debug for TestPaymentProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPaymentProvider")
            .finish_non_exhaustive()
    }
}

impl TestPaymentProvider {
    /// A provider that approves everything until told otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes authorize calls that ask to capture collect at once, as a
    /// gateway that supports sales does (off by default).
    pub fn allow_sales(&self, on: bool) {
        self.state().sales = on;
    }

    fn state(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Declines every authorization of exactly `amount`.
    pub fn decline_amount(&self, amount: Money) {
        self.state().declined_amounts.insert(amount);
    }

    /// Makes the next call of `operation` fail with `fault` (queued in order).
    pub fn inject(&self, operation: Operation, fault: Fault) {
        self.state()
            .faults
            .entry(operation)
            .or_default()
            .push_back(fault);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<ProviderCall> {
        self.state().calls.clone()
    }

    /// Every authorization made so far.
    pub fn authorizations(&self) -> Vec<TestAuthorization> {
        self.state().auths.clone()
    }

    /// Authorizations that still hold funds (not voided, not fully captured).
    pub fn open_holds(&self) -> Vec<TestAuthorization> {
        self.state()
            .auths
            .iter()
            .filter(|a| !a.voided && a.captured.is_zero())
            .cloned()
            .collect()
    }

    fn record(
        state: &mut State,
        operation: Operation,
        key: &str,
        amount: Option<Money>,
        took_effect: bool,
    ) {
        state.calls.push(ProviderCall {
            operation,
            idempotency_key: key.to_owned(),
            amount,
            took_effect,
        });
    }

    /// The shared shape of every call: faults, replay, then the operation.
    fn call(
        &self,
        operation: Operation,
        key: &str,
        amount: Option<Money>,
        fingerprint: Fingerprint,
        apply: impl FnOnce(&mut State) -> Outcome,
    ) -> Outcome {
        let mut state = self.state();
        let fault = state
            .faults
            .get_mut(&operation)
            .and_then(VecDeque::pop_front);
        if fault == Some(Fault::Unavailable) {
            Self::record(&mut state, operation, key, amount, false);
            return Err(PaymentError::Unavailable("injected fault".into()));
        }
        if let Some((seen, outcome)) = state.by_key.get(key).cloned() {
            Self::record(&mut state, operation, key, amount, false);
            if seen != fingerprint {
                return Err(PaymentError::Invalid(
                    "idempotency key reused with different parameters".into(),
                ));
            }
            return if fault.is_some() {
                Err(PaymentError::Timeout)
            } else {
                outcome
            };
        }
        let outcome = apply(&mut state);
        let took_effect = outcome.is_ok();
        // Refusals of invalid requests are not remembered, as at real gateways;
        // successes and declines are.
        if !matches!(
            outcome,
            Err(PaymentError::Invalid(_)) | Err(PaymentError::NotFound)
        ) {
            state
                .by_key
                .insert(key.to_owned(), (fingerprint, outcome.clone()));
        }
        Self::record(&mut state, operation, key, amount, took_effect);
        if fault.is_some() {
            return Err(PaymentError::Timeout);
        }
        outcome
    }
}

fn find<'a>(
    state: &'a mut State,
    reference: &str,
) -> Result<&'a mut TestAuthorization, PaymentError> {
    state
        .auths
        .iter_mut()
        .find(|a| a.reference == reference)
        .ok_or(PaymentError::NotFound)
}

/// The answer for `auth`, with its cumulative totals.
fn respond(auth: &TestAuthorization, status: ProviderStatus, amount: Money) -> ProviderResponse {
    ProviderResponse {
        reference: auth.reference.clone(),
        status,
        amount,
        captured_total: Some(auth.captured),
        refunded_total: Some(auth.refunded),
    }
}

fn invalid(e: impl std::fmt::Display) -> PaymentError {
    PaymentError::Invalid(e.to_string())
}

#[async_trait]
impl PaymentProvider for TestPaymentProvider {
    fn captures_on_authorize(&self) -> bool {
        self.state().sales
    }

    fn name(&self) -> &str {
        "test"
    }

    async fn authorize(&self, r: AuthorizeRequest) -> Result<ProviderResponse, PaymentError> {
        let fp = Fingerprint::Authorize(r.amount, r.payment_token.clone());
        self.call(
            Operation::Authorize,
            &r.idempotency_key,
            Some(r.amount),
            fp,
            |state| {
                if r.amount.is_negative() || r.amount.is_zero() || !r.amount.is_exact() {
                    return Err(PaymentError::Invalid(
                        "amount must be positive and exact".into(),
                    ));
                }
                let decline = match r.payment_token.as_str() {
                    "tok_decline" => Some(("card_declined", "Your card was declined.")),
                    "tok_insufficient_funds" => {
                        Some(("insufficient_funds", "Your card has insufficient funds."))
                    }
                    _ if state.declined_amounts.contains(&r.amount) => {
                        Some(("card_declined", "Declined for this amount."))
                    }
                    _ => None,
                };
                if let Some((code, message)) = decline {
                    return Err(PaymentError::Declined {
                        code: code.into(),
                        message: message.into(),
                    });
                }
                let zero = Money::zero(r.amount.currency());
                let sale = r.capture && state.sales;
                let auth = TestAuthorization {
                    reference: format!("test_auth_{}", state.auths.len() + 1),
                    authorize_key: r.idempotency_key.clone(),
                    amount: r.amount,
                    captured: if sale { r.amount } else { zero },
                    refunded: zero,
                    voided: false,
                };
                let status = if sale {
                    ProviderStatus::Captured
                } else {
                    ProviderStatus::Authorized
                };
                let response = respond(&auth, status, r.amount);
                state.auths.push(auth);
                Ok(response)
            },
        )
    }

    async fn capture(&self, r: CaptureRequest) -> Result<ProviderResponse, PaymentError> {
        let fp = Fingerprint::Capture(r.authorization.clone(), r.amount);
        self.call(
            Operation::Capture,
            &r.idempotency_key,
            Some(r.amount),
            fp,
            |state| {
                let auth = find(state, &r.authorization)?;
                if auth.voided {
                    return Err(PaymentError::Invalid("authorization was voided".into()));
                }
                let remaining = auth.amount.checked_sub(auth.captured).map_err(invalid)?;
                if r.amount.is_negative()
                    || r.amount.is_zero()
                    || r.amount.checked_cmp(&remaining).map_err(invalid)?.is_gt()
                {
                    return Err(PaymentError::Invalid(
                        "capture exceeds the authorized amount".into(),
                    ));
                }
                auth.captured = auth.captured.checked_add(r.amount).map_err(invalid)?;
                Ok(respond(auth, ProviderStatus::Captured, r.amount))
            },
        )
    }

    async fn void(&self, r: VoidRequest) -> Result<ProviderResponse, PaymentError> {
        let fp = Fingerprint::Void(r.authorization.clone());
        self.call(Operation::Void, &r.idempotency_key, None, fp, |state| {
            let auth = find(state, &r.authorization)?;
            if !auth.captured.is_zero() {
                return Err(PaymentError::Invalid(
                    "authorization was already captured".into(),
                ));
            }
            auth.voided = true;
            Ok(respond(auth, ProviderStatus::Voided, auth.amount))
        })
    }

    async fn refund(&self, r: RefundRequest) -> Result<ProviderResponse, PaymentError> {
        let fp = Fingerprint::Refund(r.authorization.clone(), r.amount);
        self.call(
            Operation::Refund,
            &r.idempotency_key,
            Some(r.amount),
            fp,
            |state| {
                let auth = find(state, &r.authorization)?;
                let refundable = auth.captured.checked_sub(auth.refunded).map_err(invalid)?;
                if r.amount.is_negative()
                    || r.amount.is_zero()
                    || r.amount.checked_cmp(&refundable).map_err(invalid)?.is_gt()
                {
                    return Err(PaymentError::Invalid(
                        "refund exceeds the captured amount".into(),
                    ));
                }
                auth.refunded = auth.refunded.checked_add(r.amount).map_err(invalid)?;
                Ok(respond(auth, ProviderStatus::Refunded, r.amount))
            },
        )
    }

    async fn find_authorization(
        &self,
        authorize_key: &str,
    ) -> Result<Option<ProviderResponse>, PaymentError> {
        let state = self.state();
        Ok(state
            .auths
            .iter()
            .find(|a| a.authorize_key == authorize_key)
            .map(|a| {
                let status = if a.voided {
                    ProviderStatus::Voided
                } else if !a.captured.is_zero() {
                    ProviderStatus::Captured
                } else {
                    ProviderStatus::Authorized
                };
                respond(a, status, a.amount)
            }))
    }
}
