//! The in-memory store: webhook subscriptions.

use super::*;
use crate::webhook::{
    MAX_WEBHOOKS, PauseReason, WebhookId, WebhookPausing, WebhookStatus, WebhookSubscription,
};

#[async_trait]
impl crate::store::WebhookStore for MemoryStore {
    async fn create_webhook(&self, webhook: &WebhookSubscription) -> Result<()> {
        let mut s = self.lock();
        if s.webhooks.len() >= MAX_WEBHOOKS {
            return Err(Error::LimitExceeded {
                what: "webhooks",
                max: MAX_WEBHOOKS as u64,
            });
        }
        if s.webhooks.contains_key(&webhook.id) {
            return Err(Error::AlreadyExists {
                what: "webhook",
                value: webhook.id.to_string(),
            });
        }
        // Its progress starts after the outbox's last event.
        let next = s.last_sequence.saturating_add(1);
        s.floors.insert(webhook.sink_name(), next);
        s.webhooks.insert(webhook.id, webhook.clone());
        Ok(())
    }

    async fn webhook(&self, id: WebhookId) -> Result<Option<WebhookSubscription>> {
        Ok(self.lock().webhooks.get(&id).cloned())
    }

    async fn webhooks(&self) -> Result<Vec<WebhookSubscription>> {
        let mut all: Vec<WebhookSubscription> = self.lock().webhooks.values().cloned().collect();
        all.sort_by_key(|w| (w.created_at, w.id));
        Ok(all)
    }

    async fn set_webhook_status(&self, id: WebhookId, status: &WebhookStatus) -> Result<bool> {
        let mut s = self.lock();
        let Some(webhook) = s.webhooks.get_mut(&id) else {
            return Ok(false);
        };
        webhook.status = status.clone();
        if *status == WebhookStatus::Active {
            webhook.failures = 0;
            webhook.failing_since = None;
        }
        Ok(true)
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<bool> {
        let mut s = self.lock();
        let Some(webhook) = s.webhooks.remove(&id) else {
            return Ok(false);
        };
        let sink = webhook.sink_name();
        s.floors.remove(&sink);
        s.streams.retain(|(name, _), _| *name != sink);
        Ok(true)
    }

    async fn record_webhook_delivery(
        &self,
        id: WebhookId,
        delivered: bool,
        now: DateTime<Utc>,
        pausing: WebhookPausing,
    ) -> Result<Option<WebhookStatus>> {
        let mut s = self.lock();
        let Some(webhook) = s.webhooks.get_mut(&id) else {
            return Ok(None);
        };
        if delivered {
            webhook.failures = 0;
            webhook.failing_since = None;
        } else {
            webhook.failures = webhook.failures.saturating_add(1);
            let since = *webhook.failing_since.get_or_insert(now);
            if webhook.status == WebhookStatus::Active
                && webhook.failures >= pausing.failures
                && now - since >= pausing.over
            {
                webhook.status = WebhookStatus::Paused {
                    since: now,
                    reason: PauseReason::Failing,
                };
            }
        }
        Ok(Some(webhook.status.clone()))
    }
}
