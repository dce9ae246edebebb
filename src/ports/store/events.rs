//! The event relay's port: the outbox, each sink's progress through it,
//! and consumers' inboxes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{Event, EventKind};
use crate::id::EventId;

/// Longest consumer name for the event relay, in characters.
pub const MAX_CONSUMER_LEN: usize = 100;

/// The event relay: each named consumer reads events in commit order and
/// acknowledges what it has handled. Delivery is at least once: events after
/// the last acknowledgement are delivered again until acknowledged.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// The oldest events `consumer` has not acknowledged, in delivery order,
    /// at most `limit` (≤ [`MAX_PAGE_SIZE`](super::MAX_PAGE_SIZE)). An event appears only once no
    /// command that could still commit an earlier event is running. On
    /// PostgreSQL that means every writing transaction older than the event's
    /// has ended — anywhere on the server — so a long-open writing
    /// transaction delays delivery (never reorders or loses it). Poll.
    async fn pending_events(&self, consumer: &str, limit: usize) -> Result<Vec<Event>>;
    /// Acknowledges `through` and every event delivered before it.
    /// Acknowledging an older event again is a no-op.
    async fn ack_events(&self, consumer: &str, through: EventId) -> Result<()>;
    /// Records events on their own (the audit of admin changes, written
    /// right after the change they describe).
    async fn record_events(&self, events: Vec<EventKind>, now: DateTime<Utc>) -> Result<()>;
    /// Removes events that occurred before `before` and that every consumer
    /// known to the store has acknowledged. With no consumer, nothing is
    /// removed. Returns how many were removed.
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64>;
    /// The newest [`EventKind::AdminChange`] events still held (pruning
    /// removes them with the rest), newest first, at most `limit`
    /// (≤ [`MAX_PAGE_SIZE`](super::MAX_PAGE_SIZE)), only those recorded
    /// before `before` when it is given: the back office's audit view.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) for a `limit`
    /// over the maximum; [`Error::Storage`](crate::Error::Storage).
    async fn admin_changes(&self, before: Option<u64>, limit: usize) -> Result<Vec<Event>>;

    /// Claims events for the relay's sink `sink` (at most `limit`): of each
    /// aggregate, the events `sink` has not had (from the one after the
    /// last delivered version, consecutive, in version order — the limit
    /// cuts only between versions), on aggregates no other relay holds,
    /// none of them parked or waiting for a retry; aggregates in the order
    /// of their first such event. Each aggregate claimed is leased to
    /// `owner` until `lease_until`, so several relays never deliver one
    /// event at once, and an aggregate's events go out one at a time, in
    /// version order. A relay that stops is taken over when its lease ends.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a sink name that is empty, longer than
    /// [`MAX_CONSUMER_LEN`] or not visible ASCII; [`Error::Storage`].
    async fn claim_deliveries(
        &self,
        sink: &str,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Event>>;

    /// Records what became of a claimed event at `sink`: delivered (the
    /// aggregate moves on to its next event), to be tried again at a time,
    /// or parked (its aggregate waits for staff to replay it). The
    /// aggregate's lease ends. (One event's
    /// [`settle_deliveries`](Self::settle_deliveries).)
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when `owner` no longer holds the aggregate
    /// (another relay took it over; it will deliver the event again);
    /// [`Error::Storage`].
    async fn settle_delivery(
        &self,
        sink: &str,
        owner: Uuid,
        event: &Event,
        outcome: DeliveryOutcome,
    ) -> Result<()> {
        let recorded = self
            .settle_deliveries(sink, owner, &[(event.clone(), outcome)])
            .await?;
        if recorded.first() == Some(&true) {
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }

    /// Records what became of the events of a claim for `sink`, in one
    /// atomic command per aggregate: of each aggregate, the events in
    /// version order — those delivered first, then at most one that
    /// failed (to be tried again, or parked). Says for each event whether
    /// its outcome was recorded (`false`: another relay had taken its
    /// aggregate over, as [`Error::LeaseLost`] for one). The aggregate's
    /// lease ends.
    ///
    /// # Errors
    /// [`Error::Invalid`] when one aggregate's events are not consecutive
    /// in version order or follow a failed one; [`Error::Storage`].
    async fn settle_deliveries(
        &self,
        sink: &str,
        owner: Uuid,
        settled: &[(Event, DeliveryOutcome)],
    ) -> Result<Vec<bool>>;

    /// The parked deliveries of `sink` (every sink's when `None`), oldest
    /// first, at most `limit` (≤ [`MAX_PAGE_SIZE`](super::MAX_PAGE_SIZE)).
    ///
    /// # Errors
    /// [`Error::Storage`].
    async fn failed_deliveries(
        &self,
        sink: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FailedDelivery>>;

    /// Lets a parked aggregate of `sink` go again: its event is claimed at
    /// the next round. `false` when it was not parked.
    ///
    /// # Errors
    /// [`Error::Storage`].
    async fn replay_delivery(&self, sink: &str, aggregate: &str) -> Result<bool>;

    /// How many deliveries of `aggregate`'s next event to `sink` failed in
    /// a row (0 when none).
    ///
    /// # Errors
    /// [`Error::Storage`].
    async fn delivery_attempts(&self, sink: &str, aggregate: &str) -> Result<u32>;

    /// A consumer's inbox: takes event `event` for `consumer` to handle
    /// until `lease_until`, unless it was handled already or another
    /// handler holds it. One atomic command, so two deliveries of one event
    /// racing are handled once.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a consumer name that is not 1 to
    /// [`MAX_CONSUMER_LEN`] visible ASCII characters; [`Error::Storage`].
    async fn inbox_claim(
        &self,
        consumer: &str,
        event: EventId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<InboxClaim>;

    /// Marks `event` handled by `consumer` (after [`inbox_claim`](Self::inbox_claim)
    /// said [`InboxClaim::Claimed`]), or gives the claim back when
    /// `handled` is false (the handler failed: the next delivery tries
    /// again).
    ///
    /// # Errors
    /// [`Error::Storage`].
    async fn inbox_finish(&self, consumer: &str, event: EventId, handled: bool) -> Result<()>;
}

/// What [`EventStore::inbox_claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InboxClaim {
    /// The caller handles it now.
    Claimed,
    /// It was handled before: skip it.
    Handled,
    /// Another handler holds it: skip it for now (it is delivered again if
    /// that one fails).
    Busy,
}

/// What became of one delivery attempt ([`EventStore::settle_delivery`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// The sink acknowledged it.
    Delivered,
    /// It failed; try again at `at`.
    Retry {
        /// When to try again.
        at: DateTime<Utc>,
        /// Why it failed (bounded, no secrets).
        error: String,
    },
    /// It failed for good: park the aggregate until staff replay it.
    Park {
        /// Why it failed.
        error: String,
    },
}

/// A parked delivery ([`EventStore::failed_deliveries`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedDelivery {
    /// The sink.
    pub sink: String,
    /// The aggregate that waits.
    pub aggregate: String,
    /// The version that could not be delivered.
    pub version: u64,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}

/// Longest error text a delivery keeps, in characters.
pub const MAX_DELIVERY_ERROR_LEN: usize = 500;

/// A delivery's error text cut to [`MAX_DELIVERY_ERROR_LEN`] characters,
/// as both stores keep it.
pub(crate) fn bounded_error(error: &str) -> String {
    error.chars().take(MAX_DELIVERY_ERROR_LEN).collect()
}

pub(crate) fn check_consumer(consumer: &str) -> Result<&str> {
    let ok = !consumer.is_empty()
        && consumer.chars().count() <= MAX_CONSUMER_LEN
        && consumer.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(consumer)
    } else {
        Err(Error::invalid(
            "consumer",
            format!("must be 1 to {MAX_CONSUMER_LEN} visible ASCII characters"),
        ))
    }
}

/// One aggregate's outcomes in a [`EventStore::settle_deliveries`] call:
/// the versions from `first` through `delivered` went out, and then, if
/// any, the next one failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settlement {
    pub(crate) aggregate: String,
    pub(crate) first: u64,
    pub(crate) delivered: Option<u64>,
    pub(crate) then: Option<(u64, DeliveryOutcome)>,
}

/// Folds a claim's outcomes per aggregate (in the order aggregates first
/// appear), checking the contract: one aggregate's events consecutive, in
/// version order, delivered ones first and at most one failed one last.
pub(crate) fn fold_settlements(settled: &[(Event, DeliveryOutcome)]) -> Result<Vec<Settlement>> {
    let mut out: Vec<Settlement> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let broken = |aggregate: &str| {
        Error::invalid(
            "settlement",
            format!(
                "{}: events out of order, or after a failed one",
                crate::validate::shown(aggregate)
            ),
        )
    };
    for (event, outcome) in settled {
        let slot = match at.get(event.aggregate.as_str()) {
            Some(i) => out.get_mut(*i).ok_or_else(|| broken(&event.aggregate))?,
            None => {
                at.insert(&event.aggregate, out.len());
                out.push(Settlement {
                    aggregate: event.aggregate.clone(),
                    first: event.version,
                    delivered: None,
                    then: None,
                });
                out.last_mut().ok_or_else(|| broken(&event.aggregate))?
            }
        };
        let expected = slot.delivered.map_or(slot.first, |d| d.saturating_add(1));
        if slot.then.is_some() || event.version != expected {
            return Err(broken(&event.aggregate));
        }
        match outcome {
            DeliveryOutcome::Delivered => slot.delivered = Some(event.version),
            other => slot.then = Some((event.version, other.clone())),
        }
    }
    Ok(out)
}
