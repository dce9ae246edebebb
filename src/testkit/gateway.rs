//! [`SlowProvider`]: a payment provider in front of another that answers
//! slowly, and can be told to refuse refunds, so tests can race money
//! operations the way a real gateway's latency lets them race.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

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
