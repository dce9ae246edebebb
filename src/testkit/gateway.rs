//! [`SlowProvider`]: a payment provider in front of another that answers
//! slowly, and can be told to refuse refunds, so tests can race money
//! operations the way a real gateway's latency lets them race; and
//! [`GatedProvider`], which holds chosen calls until the test lets them go.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{Gate, When};

use crate::payment::{
    AuthorizeRequest, CaptureRequest, PaymentError, PaymentProvider, ProviderResponse,
    RefundRequest, VoidRequest,
};
use async_trait::async_trait;

/// A provider that forwards to `inner` and then waits `delay_ms` before
/// answering each call that moves money (the gateway has acted; its answer
/// is slow). Its name is `"slow"`.
pub struct SlowProvider {
    /// The provider that acts.
    pub inner: Arc<dyn PaymentProvider>,
    /// Milliseconds each money-moving call waits after the gateway acted
    /// (change it at any time).
    pub delay_ms: AtomicU64,
    /// Refuse every refund as invalid (as a gateway would once the money is gone).
    pub refuse_refunds: AtomicBool,
}

impl std::fmt::Debug for SlowProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowProvider")
            .field("inner", &self.inner.name())
            .field("delay_ms", &self.delay_ms)
            .field("refuse_refunds", &self.refuse_refunds)
            .finish()
    }
}

impl SlowProvider {
    /// `inner`, answering `delay` late.
    pub fn new(inner: Arc<dyn PaymentProvider>, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner,
            delay_ms: AtomicU64::new(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            refuse_refunds: AtomicBool::new(false),
        })
    }

    async fn wait(&self) {
        let ms = self.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

#[async_trait]
impl PaymentProvider for SlowProvider {
    fn captures_on_authorize(&self) -> bool {
        self.inner.captures_on_authorize()
    }

    fn name(&self) -> &str {
        "slow"
    }
    async fn authorize(&self, r: AuthorizeRequest) -> Result<ProviderResponse, PaymentError> {
        let out = self.inner.authorize(r).await;
        self.wait().await;
        out
    }
    async fn capture(&self, r: CaptureRequest) -> Result<ProviderResponse, PaymentError> {
        let out = self.inner.capture(r).await;
        self.wait().await;
        out
    }
    async fn void(&self, r: VoidRequest) -> Result<ProviderResponse, PaymentError> {
        let out = self.inner.void(r).await;
        self.wait().await;
        out
    }
    async fn refund(&self, r: RefundRequest) -> Result<ProviderResponse, PaymentError> {
        if self.refuse_refunds.load(Ordering::SeqCst) {
            return Err(PaymentError::Invalid(
                "refund refused by the gateway".into(),
            ));
        }
        let out = self.inner.refund(r).await;
        self.wait().await;
        out
    }
    async fn find_authorization(
        &self,
        key: &str,
    ) -> Result<Option<ProviderResponse>, PaymentError> {
        self.inner.find_authorization(key).await
    }
}

/// A method of the [`PaymentProvider`] port, for [`GatedProvider::stall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderMethod {
    /// [`PaymentProvider::authorize`].
    Authorize,
    /// [`PaymentProvider::capture`].
    Capture,
    /// [`PaymentProvider::void`].
    Void,
    /// [`PaymentProvider::refund`].
    Refund,
    /// [`PaymentProvider::find_authorization`].
    FindAuthorization,
}

/// The stalls planned per method, in order.
type Stalls =
    std::collections::HashMap<ProviderMethod, std::collections::VecDeque<(When, Arc<Gate>)>>;

/// A provider that forwards to `inner` (under its name) and holds chosen
/// calls at a [`Gate`] until the test opens it: before the gateway acts
/// ([`When::Before`]) or after it acted, before its answer arrives
/// ([`When::After`]). With a [`ManualClock`](crate::clock::ManualClock) the
/// test runs out a lease meanwhile and lets another engine take over — a
/// settler, a compensation or a recovery stalled past its lease, on demand.
pub struct GatedProvider {
    inner: Arc<dyn PaymentProvider>,
    stalls: std::sync::Mutex<Stalls>,
}

impl std::fmt::Debug for GatedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatedProvider")
            .field("inner", &self.inner.name())
            .finish_non_exhaustive()
    }
}

impl GatedProvider {
    /// `inner`, with no stalls planned.
    pub fn new(inner: Arc<dyn PaymentProvider>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            stalls: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Holds the next `call` at the returned gate, `when` the gateway has
    /// acted or before. Stalls are used once each, in the order planned.
    pub fn stall(&self, call: ProviderMethod, when: When) -> Arc<Gate> {
        let gate = Gate::new();
        self.stalls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(call)
            .or_default()
            .push_back((when, gate.clone()));
        gate
    }

    async fn run<T>(&self, call: ProviderMethod, op: impl std::future::Future<Output = T>) -> T {
        let stall = self
            .stalls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(&call)
            .and_then(std::collections::VecDeque::pop_front);
        match stall {
            Some((When::Before, gate)) => {
                gate.pass().await;
                op.await
            }
            Some((When::After, gate)) => {
                let out = op.await;
                gate.pass().await;
                out
            }
            None => op.await,
        }
    }
}

#[async_trait]
impl PaymentProvider for GatedProvider {
    fn captures_on_authorize(&self) -> bool {
        self.inner.captures_on_authorize()
    }
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn accepts_currency(&self, currency: crate::money::Currency) -> bool {
        self.inner.accepts_currency(currency)
    }
    async fn authorize(&self, r: AuthorizeRequest) -> Result<ProviderResponse, PaymentError> {
        self.run(ProviderMethod::Authorize, self.inner.authorize(r))
            .await
    }
    async fn capture(&self, r: CaptureRequest) -> Result<ProviderResponse, PaymentError> {
        self.run(ProviderMethod::Capture, self.inner.capture(r))
            .await
    }
    async fn void(&self, r: VoidRequest) -> Result<ProviderResponse, PaymentError> {
        self.run(ProviderMethod::Void, self.inner.void(r)).await
    }
    async fn refund(&self, r: RefundRequest) -> Result<ProviderResponse, PaymentError> {
        self.run(ProviderMethod::Refund, self.inner.refund(r)).await
    }
    async fn find_authorization(
        &self,
        key: &str,
    ) -> Result<Option<ProviderResponse>, PaymentError> {
        self.run(
            ProviderMethod::FindAuthorization,
            self.inner.find_authorization(key),
        )
        .await
    }
}
