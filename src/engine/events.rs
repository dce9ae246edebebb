//! The engine's outbox use cases: reading and acknowledging events.

use super::*;

impl Engine {
    /// The events `consumer` has not acknowledged yet, oldest first (see
    /// [`EventStore`](crate::store::EventStore)).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad consumer name or limit; [`Error::Storage`]
    /// when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn pending_events(
        &self,
        actor: &Actor,
        consumer: &str,
        limit: usize,
    ) -> Result<Vec<Event>> {
        actor.require(crate::actor::Permission::Settings)?;
        self.inner.store.pending_events(consumer, limit).await
    }

    /// Acknowledges every event up to and including `through` for `consumer`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad consumer name; [`Error::NotFound`] for an
    /// unknown event; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn ack_events(&self, actor: &Actor, consumer: &str, through: EventId) -> Result<()> {
        actor.require(crate::actor::Permission::Settings)?;
        self.inner.store.ack_events(consumer, through).await
    }
}
