//! A gateway that works through the test gateway but stops after one chosen
//! operation until the test says go on, so a test can act while a checkout or
//! a capture is in flight.
#![allow(dead_code)]

use std::sync::Arc;

use async_trait::async_trait;
use cartwright::payment::{
    AuthorizeRequest, CaptureRequest, Operation, PaymentError, PaymentProvider, ProviderResponse,
    RefundRequest, TestPaymentProvider, VoidRequest,
};
use tokio::sync::Notify;

pub struct PausingProvider {
    inner: Arc<TestPaymentProvider>,
    pause_on: Operation,
    /// Notified once the paused operation has taken effect at the gateway.
    pub reached: Notify,
    /// Notify to let the paused call answer.
    pub resume: Notify,
}

impl PausingProvider {
    pub fn new(inner: Arc<TestPaymentProvider>, pause_on: Operation) -> Arc<Self> {
        Arc::new(Self {
            inner,
            pause_on,
            reached: Notify::new(),
            resume: Notify::new(),
        })
    }

    async fn after<T>(&self, op: Operation, out: T) -> T {
        if op == self.pause_on {
            self.reached.notify_one();
            self.resume.notified().await;
        }
        out
    }
}

#[async_trait]
impl PaymentProvider for PausingProvider {
    fn name(&self) -> &str {
        "pausing"
    }
    async fn authorize(&self, r: AuthorizeRequest) -> Result<ProviderResponse, PaymentError> {
        let out = self.inner.authorize(r).await;
        self.after(Operation::Authorize, out).await
    }
    async fn capture(&self, r: CaptureRequest) -> Result<ProviderResponse, PaymentError> {
        let out = self.inner.capture(r).await;
        self.after(Operation::Capture, out).await
    }
    async fn void(&self, r: VoidRequest) -> Result<ProviderResponse, PaymentError> {
        let out = self.inner.void(r).await;
        self.after(Operation::Void, out).await
    }
    async fn refund(&self, r: RefundRequest) -> Result<ProviderResponse, PaymentError> {
        let out = self.inner.refund(r).await;
        self.after(Operation::Refund, out).await
    }
    async fn find_authorization(
        &self,
        key: &str,
    ) -> Result<Option<ProviderResponse>, PaymentError> {
        self.inner.find_authorization(key).await
    }
}
