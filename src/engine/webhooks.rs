//! Webhook subscriptions: staff say where events go; the relay's webhook
//! sink (`relay::webhook`) delivers them.

use super::*;
use crate::webhook::{NewWebhook, PauseReason, WebhookId, WebhookStatus, WebhookSubscription};

impl Engine {
    /// Subscribes an address to event types, checked against
    /// [`EngineConfig::webhook_policy`]. The subscription receives the
    /// events committed from now on. Its secret is in the answer: show it
    /// to the receiving side once.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for an address the
    /// policy refuses, no or unknown event types, a description too long,
    /// or [`MAX_WEBHOOKS`](crate::webhook::MAX_WEBHOOKS) subscriptions
    /// already; [`Error::Storage`].
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        webhook: NewWebhook,
    ) -> Result<WebhookSubscription> {
        actor.require(crate::actor::Permission::Settings)?;
        let webhook = webhook.validate(&self.inner.config.webhook_policy, self.now())?;
        self.inner.store.create_webhook(&webhook).await?;
        self.audit(
            actor,
            "create_webhook",
            format!("{} {}", webhook.id, webhook.url),
        )
        .await;
        Ok(webhook)
    }

    /// Every webhook subscription, oldest first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Storage`].
    pub async fn webhooks(&self, actor: &Actor) -> Result<Vec<WebhookSubscription>> {
        actor.require(crate::actor::Permission::Settings)?;
        self.inner.store.webhooks().await
    }

    /// One webhook subscription.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`]; [`Error::Storage`].
    pub async fn webhook(&self, actor: &Actor, id: WebhookId) -> Result<WebhookSubscription> {
        actor.require(crate::actor::Permission::Settings)?;
        self.inner
            .store
            .webhook(id)
            .await?
            .ok_or_else(|| Error::not_found("webhook", id))
    }

    /// Pauses a subscription: its events wait in the outbox, in order,
    /// until it is resumed.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`]; [`Error::Storage`].
    pub async fn pause_webhook(&self, actor: &Actor, id: WebhookId) -> Result<()> {
        let status = WebhookStatus::Paused {
            since: self.now(),
            reason: PauseReason::Staff,
        };
        self.set_webhook_status(actor, id, status, "pause_webhook")
            .await
    }

    /// Resumes a paused subscription (paused by staff, or by the relay
    /// because it kept failing): its waiting events go out, in order, and
    /// its run of failures starts again from nothing. Parked deliveries
    /// stay parked until replayed ([`Engine::replay_delivery`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`]; [`Error::Storage`].
    pub async fn resume_webhook(&self, actor: &Actor, id: WebhookId) -> Result<()> {
        self.set_webhook_status(actor, id, WebhookStatus::Active, "resume_webhook")
            .await
    }

    async fn set_webhook_status(
        &self,
        actor: &Actor,
        id: WebhookId,
        status: WebhookStatus,
        action: &'static str,
    ) -> Result<()> {
        actor.require(crate::actor::Permission::Settings)?;
        if !self.inner.store.set_webhook_status(id, &status).await? {
            return Err(Error::not_found("webhook", id));
        }
        self.audit(actor, action, id).await;
        Ok(())
    }

    /// Removes a subscription; the events it had not had are no longer
    /// kept for it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`]; [`Error::Storage`].
    pub async fn delete_webhook(&self, actor: &Actor, id: WebhookId) -> Result<()> {
        actor.require(crate::actor::Permission::Settings)?;
        if !self.inner.store.delete_webhook(id).await? {
            return Err(Error::not_found("webhook", id));
        }
        self.audit(actor, "delete_webhook", id).await;
        Ok(())
    }
}
