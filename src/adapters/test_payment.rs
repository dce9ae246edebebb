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
    /// Whether the hold was released (or the waiting payment cancelled).
    pub voided: bool,
    /// While the payment waits: [`ProviderStatus::RequiresAction`] or
    /// [`ProviderStatus::Processing`]; `None` once funds are held.
    pub waiting: Option<ProviderStatus>,
    /// Whether the payment failed after the customer acted.
    pub failed: bool,
    /// The token it was made with (which decides how a wait ends).
    pub payment_token: String,
    /// Whether the authorize call asked to collect at once.
    pub sale: bool,
}

impl TestAuthorization {
    /// Its status as a gateway would report it.
    pub fn status(&self) -> ProviderStatus {
        if self.voided {
            ProviderStatus::Voided
        } else if self.failed {
            ProviderStatus::Failed
        } else if let Some(waiting) = self.waiting {
            waiting
        } else if !self.refunded.is_zero() {
            ProviderStatus::Refunded
        } else if !self.captured.is_zero() {
            ProviderStatus::Captured
        } else {
            ProviderStatus::Authorized
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    Authorize(Money, String),
    Capture(String, Money),
    Void(String),
    Refund(String, Money),
}

type Outcome = Result<ProviderResponse, PaymentError>;

struct State {
    /// The name recorded on payments.
    name: String,
    /// The currencies taken; `None`: every currency.
    currencies: Option<Vec<crate::money::Currency>>,
    /// How long `tok_slow` authorizations take.
    slow: std::time::Duration,
    /// Events issued so far (for their ids).
    events: u64,
    /// Whether authorize calls that ask to capture do (sales).
    sales: bool,
    by_key: HashMap<String, (Fingerprint, Outcome)>,
    auths: Vec<TestAuthorization>,
    calls: Vec<ProviderCall>,
    faults: HashMap<Operation, VecDeque<Fault>>,
    declined_amounts: HashSet<Money>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            name: "test".into(),
            currencies: None,
            slow: std::time::Duration::from_millis(200),
            events: 0,
            sales: false,
            by_key: HashMap::new(),
            auths: Vec::new(),
            calls: Vec::new(),
            faults: HashMap::new(),
            declined_amounts: HashSet::new(),
        }
    }
}

/// A gateway simulator that keeps everything in memory.
///
/// The payment token decides the outcome, so examples and tests stay
/// deterministic:
///
/// | token | outcome |
/// |---|---|
/// | `tok_visa` (or any other) | authorized |
/// | `tok_decline` | declined, code `card_declined` |
/// | `tok_insufficient_funds` | declined, code `insufficient_funds` |
/// | `tok_3ds` | needs a redirect (3-D Secure); [`complete_action`](Self::complete_action) approves it |
/// | `tok_3ds_sdk` | needs the client library (client data); then as `tok_3ds` |
/// | `tok_3ds_fail` | needs a redirect; completing it fails |
/// | `tok_event_only` | processing (a bank transfer): nothing for the customer to do; [`confirm`](Self::confirm) authorizes it |
/// | `tok_slow` | authorized after [`set_slow_delay`](Self::set_slow_delay) (200 ms by default) |
/// | `tok_timeout` | authorized, but the first answer is lost ([`PaymentError::Timeout`]); a replay answers |
///
/// - Amounts registered with [`TestPaymentProvider::decline_amount`] are
///   declined too.
/// - [`TestPaymentProvider::inject`] makes the next call of an operation fail
///   transiently or time out after taking effect.
/// - Idempotency keys behave as at a real gateway: a replay returns the first
///   outcome; the same key with different parameters is refused.
/// - Every call is recorded, so tests can prove a customer was charged once.
/// - [`named`](Self::named) and [`accept_only`](Self::accept_only) make
///   several distinct providers for one engine.
pub struct TestPaymentProvider {
    state: Mutex<State>,
    /// The name, fixed at creation (`name()` hands out a reference).
    name: String,
}

impl std::fmt::Debug for TestPaymentProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPaymentProvider")
            .finish_non_exhaustive()
    }
}

impl Default for TestPaymentProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPaymentProvider {
    /// A provider named `"test"` that approves everything until told otherwise.
    pub fn new() -> Self {
        Self::named("test")
    }

    /// A provider recorded on payments as `name` (its references start
    /// with it too, so several test providers never share one).
    pub fn named(name: impl Into<String>) -> Self {
        let name = name.into();
        let state = State {
            name: name.clone(),
            ..State::default()
        };
        Self {
            state: Mutex::new(state),
            name,
        }
    }

    /// Takes payments only in these currencies (every currency by default).
    pub fn accept_only(&self, currencies: &[crate::money::Currency]) {
        self.state().currencies = Some(currencies.to_vec());
    }

    /// How long a `tok_slow` authorization takes.
    pub fn set_slow_delay(&self, delay: std::time::Duration) {
        self.state().slow = delay;
    }

    /// The customer completes the action a waiting payment asked for
    /// (`tok_3ds`, `tok_3ds_sdk`: funds are held, or collected if the
    /// authorize call asked for a sale; `tok_3ds_fail`: the payment fails).
    /// Returns the event the gateway sends about it, to deliver to
    /// [`Engine::apply_provider_event`](crate::Engine::apply_provider_event)
    /// as often and as late as a test likes.
    ///
    /// # Errors
    /// [`PaymentError::NotFound`] for an unknown reference;
    /// [`PaymentError::Invalid`] when the payment does not wait for the
    /// customer (already completed, cancelled, or processing).
    pub fn complete_action(
        &self,
        reference: &str,
    ) -> Result<crate::payment::ProviderEvent, PaymentError> {
        self.finish_wait(reference, ProviderStatus::RequiresAction)
    }

    /// The provider confirms a processing payment (`tok_event_only`): funds
    /// are held. Returns the event it sends, as
    /// [`complete_action`](Self::complete_action) does.
    ///
    /// # Errors
    /// As [`complete_action`](Self::complete_action), for a payment that is
    /// not processing.
    pub fn confirm(&self, reference: &str) -> Result<crate::payment::ProviderEvent, PaymentError> {
        self.finish_wait(reference, ProviderStatus::Processing)
    }

    fn finish_wait(
        &self,
        reference: &str,
        expected: ProviderStatus,
    ) -> Result<crate::payment::ProviderEvent, PaymentError> {
        use crate::payment::{ProviderEvent, ProviderEventKind};
        let mut state = self.state();
        state.events += 1;
        let id = format!("{}_evt_{}", state.name, state.events);
        let auth = find(&mut state, reference)?;
        if auth.voided || auth.waiting != Some(expected) {
            return Err(PaymentError::Invalid(format!(
                "payment {reference} does not wait for that"
            )));
        }
        auth.waiting = None;
        let kind = if auth.payment_token == "tok_3ds_fail" {
            auth.failed = true;
            ProviderEventKind::Failed {
                reason: "the customer failed authentication".into(),
            }
        } else if auth.sale {
            auth.captured = auth.amount;
            ProviderEventKind::Captured {
                captured_total: auth.amount,
            }
        } else {
            ProviderEventKind::Authorized
        };
        Ok(ProviderEvent::new(id, reference, kind))
    }

    /// An event about `reference` with id `id`, for tests that replay or
    /// forge events (a refund made in the gateway's dashboard, a dispute).
    pub fn event(
        reference: &str,
        id: &str,
        kind: crate::payment::ProviderEventKind,
    ) -> crate::payment::ProviderEvent {
        crate::payment::ProviderEvent::new(id, reference, kind)
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
            .filter(|a| a.status() == ProviderStatus::Authorized)
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
    /// `forced` is a fault the call's own parameters ask for.
    fn call(
        &self,
        operation: Operation,
        key: &str,
        amount: Option<Money>,
        fingerprint: Fingerprint,
        forced: Option<Fault>,
        apply: impl FnOnce(&mut State) -> Outcome,
    ) -> Outcome {
        let mut state = self.state();
        let queued = state
            .faults
            .get_mut(&operation)
            .and_then(VecDeque::pop_front);
        // A forced fault applies to a key's first call only.
        let forced = forced.filter(|_| !state.by_key.contains_key(key));
        let fault = queued.or(forced);
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
    let response = ProviderResponse::new(auth.reference.clone(), status, amount)
        .with_totals(Some(auth.captured), Some(auth.refunded));
    if status != ProviderStatus::RequiresAction {
        return response;
    }
    let action = if auth.payment_token == "tok_3ds_sdk" {
        crate::payment::CustomerAction::ClientData {
            data: format!("{}_secret", auth.reference),
        }
    } else {
        crate::payment::CustomerAction::Redirect {
            url: format!("https://pay.test.invalid/3ds/{}", auth.reference),
        }
    };
    response.with_action(action)
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
        &self.name
    }

    fn accepts_currency(&self, currency: crate::money::Currency) -> bool {
        self.state()
            .currencies
            .as_ref()
            .is_none_or(|c| c.contains(&currency))
    }

    async fn authorize(&self, r: AuthorizeRequest) -> Result<ProviderResponse, PaymentError> {
        if r.payment_token == "tok_slow" {
            let delay = self.state().slow;
            tokio::time::sleep(delay).await;
        }
        let forced = (r.payment_token == "tok_timeout").then_some(Fault::TimeoutAfterProcessing);
        let fp = Fingerprint::Authorize(r.amount, r.payment_token.clone());
        self.call(
            Operation::Authorize,
            &r.idempotency_key,
            Some(r.amount),
            fp,
            forced,
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
                if state
                    .currencies
                    .as_ref()
                    .is_some_and(|c| !c.contains(&r.amount.currency()))
                {
                    return Err(PaymentError::Invalid(format!(
                        "{} is not accepted",
                        r.amount.currency()
                    )));
                }
                let zero = Money::zero(r.amount.currency());
                let sale = r.capture && state.sales;
                let waiting = match r.payment_token.as_str() {
                    "tok_3ds" | "tok_3ds_sdk" | "tok_3ds_fail" => {
                        Some(ProviderStatus::RequiresAction)
                    }
                    "tok_event_only" => Some(ProviderStatus::Processing),
                    _ => None,
                };
                let collect = sale && waiting.is_none();
                let auth = TestAuthorization {
                    reference: format!("{}_auth_{}", state.name, state.auths.len() + 1),
                    authorize_key: r.idempotency_key.clone(),
                    amount: r.amount,
                    captured: if collect { r.amount } else { zero },
                    refunded: zero,
                    voided: false,
                    waiting,
                    failed: false,
                    payment_token: r.payment_token.clone(),
                    sale,
                };
                let status = auth.status();
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
            None,
            |state| {
                let auth = find(state, &r.authorization)?;
                if auth.voided || auth.failed || auth.waiting.is_some() {
                    return Err(PaymentError::Invalid(
                        "nothing is held on this authorization".into(),
                    ));
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
        self.call(
            Operation::Void,
            &r.idempotency_key,
            None,
            fp,
            None,
            |state| {
                let auth = find(state, &r.authorization)?;
                if !auth.captured.is_zero() {
                    return Err(PaymentError::Invalid(
                        "authorization was already captured".into(),
                    ));
                }
                auth.voided = true;
                auth.waiting = None;
                Ok(respond(auth, ProviderStatus::Voided, auth.amount))
            },
        )
    }

    async fn refund(&self, r: RefundRequest) -> Result<ProviderResponse, PaymentError> {
        let fp = Fingerprint::Refund(r.authorization.clone(), r.amount);
        self.call(
            Operation::Refund,
            &r.idempotency_key,
            Some(r.amount),
            fp,
            None,
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
                // A refund does not change what the authorization is: it
                // was collected.
                let status = match a.status() {
                    ProviderStatus::Refunded => ProviderStatus::Captured,
                    other => other,
                };
                respond(a, status, a.amount)
            }))
    }
}
