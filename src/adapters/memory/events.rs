//! The in-memory store: events.

use super::*;

#[async_trait]
impl EventStore for MemoryStore {
    async fn pending_events(&self, consumer: &str, limit: usize) -> Result<Vec<Event>> {
        let consumer = check_consumer(consumer)?;
        let limit = check_limit(limit)?;
        let s = self.lock();
        let start = s.cursors.get(consumer).copied().unwrap_or(0);
        Ok(s.events.iter().skip(start).take(limit).cloned().collect())
    }

    async fn ack_events(&self, consumer: &str, through: EventId) -> Result<()> {
        let consumer = check_consumer(consumer)?;
        let mut s = self.lock();
        let position = s
            .events
            .iter()
            .position(|e| e.id == through)
            .ok_or_else(|| Error::not_found("event", through))?;
        let cursor = s.cursors.entry(consumer.to_owned()).or_default();
        *cursor = (*cursor).max(position + 1);
        Ok(())
    }

    async fn record_events(&self, events: Vec<EventKind>, now: DateTime<Utc>) -> Result<()> {
        let mut s = self.lock();
        for kind in events {
            s.push_event(kind, now);
        }
        Ok(())
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut s = self.lock();
        let Some(delivered) = s.cursors.values().copied().min() else {
            return Ok(0);
        };
        // Cursors are positions: only a prefix can go.
        let gone = s
            .events
            .iter()
            .take(delivered)
            .take_while(|e| e.occurred_at < before)
            .count();
        s.events.drain(..gone);
        for cursor in s.cursors.values_mut() {
            *cursor -= gone;
        }
        Ok(gone as u64)
    }
}
