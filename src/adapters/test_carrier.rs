//! A carrier in memory, for tests and demos: live rates by weight
//! (`test:ground` 4.00 plus 1.00 a kilogram begun, 10.00 more for a
//! parcel with a side over a metre; `test:express` twice that), labels kept by idempotency key as a real carrier keeps them,
//! every call counted, faults and latency on demand.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::money::Money;
use crate::shipping::{Carrier, Label, LabelRequest, RateRequest, ShippingRate};

/// A call of [`Carrier`], for [`TestCarrier::inject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CarrierCall {
    /// [`Carrier::rates`].
    Rates,
    /// [`Carrier::purchase_label`].
    PurchaseLabel,
    /// [`Carrier::void_label`].
    VoidLabel,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CarrierFault {
    /// Fail before doing anything ([`Error::ServiceUnavailable`]).
    Unavailable,
    /// Do the work, then lose the answer ([`Error::ServiceUnavailable`]).
    LostAnswer,
    /// Refuse ([`Error::Invalid`], `"carrier"`) with this reason.
    Refuse(String),
}

/// A label as the carrier keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestLabel {
    /// The purchase as sent.
    pub request: LabelRequest,
    /// What was sold.
    pub label: Label,
    /// Whether it was voided.
    pub voided: bool,
}

#[derive(Default)]
struct State {
    rate_calls: u64,
    labels: BTreeMap<String, TestLabel>,
    faults: HashMap<CarrierCall, VecDeque<CarrierFault>>,
    latency: Duration,
}

/// The in-memory carrier, named `test`.
#[derive(Default)]
pub struct TestCarrier {
    state: Mutex<State>,
}

impl std::fmt::Debug for TestCarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCarrier").finish_non_exhaustive()
    }
}

impl TestCarrier {
    /// A carrier with no labels sold yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next call of `call` fails with `fault` (faults queue up).
    pub fn inject(&self, call: CarrierCall, fault: CarrierFault) {
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

    /// Every call waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// How many rate requests were answered.
    pub fn rate_calls(&self) -> u64 {
        self.state.lock().rate_calls
    }

    /// Every label sold, by purchase key.
    pub fn labels(&self) -> BTreeMap<String, TestLabel> {
        self.state.lock().labels.clone()
    }

    async fn begin(&self, call: CarrierCall) -> Result<Option<CarrierFault>> {
        let (latency, fault) = {
            let mut s = self.state.lock();
            let fault = s.faults.get_mut(&call).and_then(VecDeque::pop_front);
            (s.latency, fault)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match fault {
            Some(CarrierFault::Unavailable) => Err(unavailable()),
            Some(CarrierFault::Refuse(reason)) => Err(Error::invalid("carrier", reason)),
            other => Ok(other),
        }
    }
}

fn unavailable() -> Error {
    Error::ServiceUnavailable {
        service: "carrier",
        reason: "the test carrier is down".into(),
    }
}

fn answer<T>(fault: Option<CarrierFault>, value: T) -> Result<T> {
    match fault {
        Some(CarrierFault::LostAnswer) => Err(unavailable()),
        _ => Ok(value),
    }
}

/// Ground: 4.00 plus 1.00 for each kilogram begun.
fn ground(weight_grams: u64, currency: crate::money::Currency) -> Money {
    let kilos = weight_grams.div_ceil(1000);
    Money::new(Decimal::from(4) + Decimal::from(kilos), currency)
}

#[async_trait]
impl Carrier for TestCarrier {
    fn name(&self) -> &str {
        "test"
    }

    async fn rates(&self, request: &RateRequest) -> Result<Vec<ShippingRate>> {
        let fault = self.begin(CarrierCall::Rates).await?;
        self.state.lock().rate_calls += 1;
        let mut g = ground(request.weight_grams, request.currency);
        if request.parcel_mm.is_some_and(|p| p[0] > 1_000) {
            g = g.checked_add(Money::new(Decimal::TEN, request.currency))?;
        }
        let rates = vec![
            ShippingRate::new("test:ground", "Test Ground", g),
            ShippingRate::new("test:express", "Test Express", g.checked_add(g)?),
        ];
        answer(fault, rates)
    }

    async fn purchase_label(&self, request: &LabelRequest) -> Result<Label> {
        let fault = self.begin(CarrierCall::PurchaseLabel).await?;
        let label = {
            let mut s = self.state.lock();
            let n = s.labels.len() + 1;
            let currency = crate::money::Currency::USD;
            s.labels
                .entry(request.key.clone())
                .or_insert_with(|| TestLabel {
                    request: request.clone(),
                    label: Label::new(
                        format!("lbl_{n}"),
                        format!("TEST{n:08}"),
                        ground(request.weight_grams, currency),
                        format!("https://labels.example/lbl_{n}.pdf"),
                    ),
                    voided: false,
                })
                .label
                .clone()
        };
        answer(fault, label)
    }

    async fn void_label(&self, _key: &str, label: &str) -> Result<()> {
        let fault = self.begin(CarrierCall::VoidLabel).await?;
        {
            let mut s = self.state.lock();
            let l = s
                .labels
                .values_mut()
                .find(|l| l.label.id == label)
                .ok_or_else(|| Error::invalid("carrier", "no such label"))?;
            l.voided = true;
        }
        answer(fault, ())
    }
}
