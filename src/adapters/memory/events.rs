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

    async fn admin_changes(&self, before: Option<u64>, limit: usize) -> Result<Vec<Event>> {
        let limit = check_limit(limit)?;
        let s = self.lock();
        Ok(s.events
            .iter()
            .rev()
            .filter(|e| matches!(e.kind, EventKind::AdminChange { .. }))
            .filter(|e| before.is_none_or(|b| e.sequence < b))
            .take(limit)
            .cloned()
            .collect())
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
        if s.cursors.is_empty() && s.floors.is_empty() {
            return Ok(0);
        }
        let acknowledged = s.cursors.values().copied().min().unwrap_or(usize::MAX);
        // Delivered to a relay sink: its stream is past the event, or the
        // event is older than the sink and the sink never had its aggregate.
        let delivered_everywhere = |s: &State, e: &Event| {
            s.floors.iter().all(|(sink, floor)| {
                match s.streams.get(&(sink.clone(), e.aggregate.clone())) {
                    Some(st) => st.delivered >= e.version,
                    None => e.sequence < *floor,
                }
            })
        };
        // Cursors are positions: what goes is before every one of them,
        // so each moves back by the number gone.
        let go: Vec<bool> = s
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| i < acknowledged && e.occurred_at < before && delivered_everywhere(&s, e))
            .collect();
        let gone = go.iter().filter(|g| **g).count();
        let mut pruned: HashSet<String> = HashSet::new();
        let mut kept = Vec::with_capacity(s.events.len() - gone);
        for (event, go) in std::mem::take(&mut s.events).into_iter().zip(go) {
            if go {
                pruned.insert(event.aggregate);
            } else {
                kept.push(event);
            }
        }
        s.events = kept;
        for cursor in s.cursors.values_mut() {
            *cursor = cursor.saturating_sub(gone);
        }
        // A stream whose aggregate has no event left is forgotten: the
        // aggregate's next event is its first in the outbox.
        let remaining: HashSet<&str> = s.events.iter().map(|e| e.aggregate.as_str()).collect();
        let forget: Vec<(String, String)> = s
            .streams
            .iter()
            .filter(|((_, aggregate), st)| {
                pruned.contains(aggregate)
                    && !remaining.contains(aggregate.as_str())
                    && st.parked.is_none()
                    && st.lease.is_none()
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in forget {
            s.streams.remove(&key);
        }
        s.inbox
            .retain(|_, slot| !matches!(slot, Some(Inbox::Handled(at)) if *at < before));
        Ok(gone as u64)
    }

    async fn claim_deliveries(
        &self,
        sink: &str,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let sink = check_consumer(sink)?;
        let limit = check_limit(limit)?;
        let mut s = self.lock();
        let floor = *s.floors.entry(sink.to_owned()).or_insert(0);
        let start = s.events.partition_point(|e| e.sequence < floor);
        let mut claimed: Vec<Event> = Vec::new();
        // Per aggregate: whether it is free (decided at its first event
        // not delivered yet; events are in version order within one).
        let mut free: HashMap<&str, bool> = HashMap::new();
        for e in s.events.iter().skip(start) {
            if claimed.len() >= limit {
                break;
            }
            let stream = s.streams.get(&(sink.to_owned(), e.aggregate.clone()));
            if e.version <= stream.map_or(0, |st| st.delivered) {
                continue;
            }
            let take = *free.entry(&e.aggregate).or_insert_with(|| {
                stream.is_none_or(|st| {
                    st.parked.is_none()
                        && st.next_at <= now
                        && st.lease.is_none_or(|(_, until)| until <= now)
                })
            });
            if take {
                claimed.push(e.clone());
            }
        }
        let mut leased: HashSet<&str> = HashSet::new();
        for e in &claimed {
            if !leased.insert(&e.aggregate) {
                continue;
            }
            let stream = s
                .streams
                .entry((sink.to_owned(), e.aggregate.clone()))
                .or_insert_with(|| Stream {
                    delivered: e.version - 1,
                    lease: None,
                    next_at: now,
                    attempts: 0,
                    parked: None,
                    last_error: String::new(),
                });
            stream.lease = Some((owner, lease_until));
        }
        Ok(claimed)
    }

    async fn settle_deliveries(
        &self,
        sink: &str,
        owner: Uuid,
        settled: &[(Event, DeliveryOutcome)],
    ) -> Result<Vec<bool>> {
        let sink = check_consumer(sink)?;
        let folded = crate::store::fold_settlements(settled)?;
        let mut s = self.lock();
        let mut recorded: HashSet<String> = HashSet::new();
        for f in folded {
            let Some(stream) = s.streams.get_mut(&(sink.to_owned(), f.aggregate.clone())) else {
                continue;
            };
            let holds = stream.lease.is_some_and(|(o, _)| o == owner)
                && stream.delivered.saturating_add(1) == f.first;
            if !holds {
                continue;
            }
            stream.lease = None;
            if let Some(delivered) = f.delivered {
                stream.delivered = delivered;
                stream.attempts = 0;
                stream.last_error.clear();
            }
            match f.then {
                None => {}
                Some((_, DeliveryOutcome::Retry { at, error })) => {
                    stream.attempts = stream.attempts.saturating_add(1);
                    stream.next_at = at;
                    stream.last_error = bounded_error(&error);
                }
                Some((version, DeliveryOutcome::Park { error })) => {
                    stream.attempts = stream.attempts.saturating_add(1);
                    stream.parked = Some(version);
                    stream.last_error = bounded_error(&error);
                }
                Some((_, DeliveryOutcome::Delivered)) => {}
            }
            recorded.insert(f.aggregate);
        }
        Ok(settled
            .iter()
            .map(|(e, _)| recorded.contains(&e.aggregate))
            .collect())
    }

    async fn failed_deliveries(
        &self,
        sink: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FailedDelivery>> {
        let limit = check_limit(limit)?;
        let s = self.lock();
        let mut out: Vec<FailedDelivery> = s
            .streams
            .iter()
            .filter(|((name, _), _)| sink.is_none_or(|want| want == name))
            .filter_map(|((name, aggregate), st)| {
                st.parked.map(|version| FailedDelivery {
                    sink: name.clone(),
                    aggregate: aggregate.clone(),
                    version,
                    attempts: st.attempts,
                    error: st.last_error.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.sink, &a.aggregate).cmp(&(&b.sink, &b.aggregate)));
        out.truncate(limit);
        Ok(out)
    }

    async fn delivery_attempts(&self, sink: &str, aggregate: &str) -> Result<u32> {
        let s = self.lock();
        Ok(s.streams
            .get(&(sink.to_owned(), aggregate.to_owned()))
            .map_or(0, |st| st.attempts))
    }

    async fn inbox_claim(
        &self,
        consumer: &str,
        event: EventId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<InboxClaim> {
        let consumer = check_consumer(consumer)?;
        let mut s = self.lock();
        let slot = s.inbox.entry((consumer.to_owned(), event)).or_insert(None);
        Ok(match slot {
            Some(Inbox::Handled(_)) => InboxClaim::Handled,
            Some(Inbox::Claimed(until)) if *until > now => InboxClaim::Busy,
            _ => {
                *slot = Some(Inbox::Claimed(lease_until));
                InboxClaim::Claimed
            }
        })
    }

    async fn inbox_finish(&self, consumer: &str, event: EventId, handled: bool) -> Result<()> {
        let consumer = check_consumer(consumer)?;
        let mut s = self.lock();
        let key = (consumer.to_owned(), event);
        if handled {
            let until = match s.inbox.get(&key) {
                Some(Some(Inbox::Claimed(until) | Inbox::Handled(until))) => *until,
                _ => DateTime::<Utc>::MAX_UTC,
            };
            s.inbox.insert(key, Some(Inbox::Handled(until)));
        } else if matches!(s.inbox.get(&key), Some(Some(Inbox::Claimed(_)))) {
            s.inbox.remove(&key);
        }
        Ok(())
    }

    async fn replay_delivery(&self, sink: &str, aggregate: &str) -> Result<bool> {
        let sink = check_consumer(sink)?;
        let mut s = self.lock();
        match s.streams.get_mut(&(sink.to_owned(), aggregate.to_owned())) {
            Some(st) if st.parked.is_some() => {
                st.parked = None;
                st.attempts = 0;
                st.next_at = DateTime::<Utc>::MIN_UTC;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

use crate::store::bounded_error;
