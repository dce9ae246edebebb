//! A tax service in memory, for tests and demos: quotes from any
//! [`TaxCalculator`] (a [`TaxTable`](crate::tax::TaxTable), say), documents
//! kept by idempotency key as a real service keeps them, every call
//! recorded, and faults and latency on demand.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::money::Money;
use crate::tax::{
    TaxAdjustmentRequest, TaxBreakdown, TaxCalculator, TaxCommitRequest, TaxCommitted, TaxInput,
    TaxProvider, TaxQuoteRequest, TaxableLine, provider::TaxAddress,
};

/// A call of [`TaxProvider`], for [`TestTaxProvider::inject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaxCall {
    /// [`TaxProvider::quote`].
    Quote,
    /// [`TaxProvider::commit`].
    Commit,
    /// [`TaxProvider::void`].
    Void,
    /// [`TaxProvider::adjust`].
    Adjust,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaxFault {
    /// Fail before doing anything ([`Error::ServiceUnavailable`]).
    Unavailable,
    /// Do the work, then lose the answer ([`Error::ServiceUnavailable`]):
    /// the worst case a real network gives.
    LostAnswer,
    /// Refuse the request ([`Error::Invalid`], `"tax provider"`) with this
    /// reason.
    Refuse(String),
}

/// A committed document, as the service keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaxDocumentRecord {
    /// Its reference.
    pub reference: String,
    /// The commit as sent.
    pub commit: TaxCommitRequest,
    /// Whether it was voided.
    pub voided: bool,
    /// Its adjustments, by key.
    pub adjustments: BTreeMap<String, TaxAdjustmentRequest>,
}

impl TaxDocumentRecord {
    /// The tax it holds now: committed, plus its adjustments; zero once
    /// voided.
    ///
    /// # Errors
    /// [`Error::Overflow`].
    pub fn tax(&self) -> Result<Money> {
        if self.voided {
            return Ok(Money::zero(self.commit.tax_total.currency()));
        }
        let mut tax = self.commit.tax_total;
        for a in self.adjustments.values() {
            tax = tax.checked_add(a.tax)?;
        }
        Ok(tax)
    }
}

#[derive(Default)]
struct State {
    quotes: HashMap<String, u64>,
    quote_calls: u64,
    documents: BTreeMap<String, TaxDocumentRecord>,
    faults: HashMap<TaxCall, VecDeque<TaxFault>>,
    latency: Duration,
}

/// The in-memory tax service.
pub struct TestTaxProvider {
    calculator: Arc<dyn TaxCalculator>,
    state: Mutex<State>,
}

impl std::fmt::Debug for TestTaxProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestTaxProvider").finish_non_exhaustive()
    }
}

impl TestTaxProvider {
    /// A service quoting with `calculator`.
    pub fn new(calculator: Arc<dyn TaxCalculator>) -> Self {
        Self {
            calculator,
            state: Mutex::new(State::default()),
        }
    }

    /// The next call of `call` fails with `fault` (faults queue up).
    pub fn inject(&self, call: TaxCall, fault: TaxFault) {
        self.state
            .lock()
            .faults
            .entry(call)
            .or_default()
            .push_back(fault);
    }

    /// Forgets the faults not yet used.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Every call waits this long first (a slow network).
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// How many quotes were asked, in all.
    pub fn quote_calls(&self) -> u64 {
        self.state.lock().quote_calls
    }

    /// How many times a request with this fingerprint was quoted.
    pub fn quotes_of(&self, fingerprint: &str) -> u64 {
        self.state
            .lock()
            .quotes
            .get(fingerprint)
            .copied()
            .unwrap_or(0)
    }

    /// Every committed document, by its commit key.
    pub fn documents(&self) -> BTreeMap<String, TaxDocumentRecord> {
        self.state.lock().documents.clone()
    }

    async fn begin(&self, call: TaxCall) -> Result<Option<TaxFault>> {
        let (latency, fault) = {
            let mut s = self.state.lock();
            let fault = s.faults.get_mut(&call).and_then(VecDeque::pop_front);
            (s.latency, fault)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match fault {
            Some(TaxFault::Unavailable) => Err(unavailable()),
            Some(TaxFault::Refuse(reason)) => Err(Error::invalid("tax provider", reason)),
            other => Ok(other),
        }
    }
}

fn unavailable() -> Error {
    Error::ServiceUnavailable {
        service: "tax provider",
        reason: "the test tax service is down".into(),
    }
}

/// Lost answers: the work is done, the caller hears nothing.
fn answer<T>(fault: Option<TaxFault>, value: T) -> Result<T> {
    match fault {
        Some(TaxFault::LostAnswer) => Err(unavailable()),
        _ => Ok(value),
    }
}

#[async_trait]
impl TaxProvider for TestTaxProvider {
    fn name(&self) -> &str {
        "test"
    }

    async fn quote(&self, request: &TaxQuoteRequest) -> Result<TaxBreakdown> {
        let fault = self.begin(TaxCall::Quote).await?;
        let lines = request
            .lines
            .iter()
            .map(|l| TaxableLine {
                line_id: l.line_id,
                variant_id: l.variant_id,
                tax_class: &l.tax_code,
                quantity: l.quantity,
                amount: l.amount,
            })
            .collect();
        let ship_to = request.ship_to.as_ref().map(TaxAddress::to_address);
        let ship_from = request.ship_from.as_ref().map(TaxAddress::to_address);
        let input = TaxInput {
            currency: request.currency,
            lines,
            shipping: request.shipping,
            address: ship_to.as_ref(),
            ship_from: ship_from.as_ref(),
            customer: Some(&request.customer),
            channel: request.channel,
        };
        let breakdown = self.calculator.tax(&input)?;
        {
            let mut s = self.state.lock();
            s.quote_calls += 1;
            *s.quotes.entry(request.fingerprint()).or_default() += 1;
        }
        answer(fault, breakdown)
    }

    async fn commit(&self, request: &TaxCommitRequest) -> Result<TaxCommitted> {
        let fault = self.begin(TaxCall::Commit).await?;
        let reference = {
            let mut s = self.state.lock();
            let n = s.documents.len();
            s.documents
                .entry(request.key.clone())
                .or_insert_with(|| TaxDocumentRecord {
                    reference: format!("taxdoc_{n}"),
                    commit: request.clone(),
                    voided: false,
                    adjustments: BTreeMap::new(),
                })
                .reference
                .clone()
        };
        answer(fault, TaxCommitted::new(reference))
    }

    async fn void(&self, _key: &str, reference: &str) -> Result<()> {
        let fault = self.begin(TaxCall::Void).await?;
        {
            let mut s = self.state.lock();
            let doc = s
                .documents
                .values_mut()
                .find(|d| d.reference == reference)
                .ok_or_else(|| Error::invalid("tax provider", "no such document"))?;
            doc.voided = true;
        }
        answer(fault, ())
    }

    async fn adjust(&self, request: &TaxAdjustmentRequest) -> Result<()> {
        let fault = self.begin(TaxCall::Adjust).await?;
        {
            let mut s = self.state.lock();
            let doc = s
                .documents
                .values_mut()
                .find(|d| d.reference == request.reference)
                .ok_or_else(|| Error::invalid("tax provider", "no such document"))?;
            if doc.voided {
                return Err(Error::invalid("tax provider", "the document is voided"));
            }
            doc.adjustments
                .entry(request.key.clone())
                .or_insert_with(|| request.clone());
        }
        answer(fault, ())
    }
}
