//! Webhook subscriptions, as the relay's webhook sink and staff use them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::webhook::{WebhookId, WebhookPausing, WebhookStatus, WebhookSubscription};

/// Webhook subscriptions.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Saves a new subscription. The relay delivers it the events committed
    /// from now on, not the outbox's older ones.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) when
    /// [`MAX_WEBHOOKS`](crate::webhook::MAX_WEBHOOKS) exist already;
    /// [`Error::Storage`](crate::Error::Storage).
    async fn create_webhook(&self, webhook: &WebhookSubscription) -> Result<()>;

    /// One subscription.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn webhook(&self, id: WebhookId) -> Result<Option<WebhookSubscription>>;

    /// Every subscription, oldest first (at most
    /// [`MAX_WEBHOOKS`](crate::webhook::MAX_WEBHOOKS)).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn webhooks(&self) -> Result<Vec<WebhookSubscription>>;

    /// Pauses or resumes a subscription (resuming clears its failures).
    /// `false` when there is none.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn set_webhook_status(&self, id: WebhookId, status: &WebhookStatus) -> Result<bool>;

    /// Removes a subscription and the relay's progress for it. `false`
    /// when there is none.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn delete_webhook(&self, id: WebhookId) -> Result<bool>;

    /// Records one delivery to subscription `id` at `now`: a success clears
    /// its run of failures; a failure extends it and, when the run reaches
    /// `pausing`, pauses the subscription (one atomic command, so racing
    /// relays count every failure). Returns the subscription's status
    /// afterwards (`None` when it is gone).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage).
    async fn record_webhook_delivery(
        &self,
        id: WebhookId,
        delivered: bool,
        now: DateTime<Utc>,
        pausing: WebhookPausing,
    ) -> Result<Option<WebhookStatus>>;
}
