//! The event relay: from the outbox to the shop's other systems, at least
//! once, each aggregate's events in order.
//!
//! A [`Relay`] holds [`Sink`]s (a webhook endpoint, a message broker, a
//! search indexer — anything that takes an event and acknowledges it). Each
//! round, for each sink, it claims events from the store
//! ([`EventStore::claim_deliveries`](crate::store::EventStore::claim_deliveries)):
//! of every aggregate (`order:<id>`, `customer:<id>`, …) the events the
//! sink has not had, in version order, under a lease, so that several
//! application instances can each run a relay without delivering an event
//! twice in normal operation and without reordering one aggregate's
//! events. It hands them to the sink as CloudEvents 1.0 envelopes
//! ([`Event::cloud_event`]) — an aggregate's one after another, stopping at
//! the first that fails, [`RelayConfig::concurrency`] aggregates at a time —
//! and records the outcomes only after the sink answered, in one store
//! command per claim: delivered (the aggregate moves on), failed (tried again on
//! the [`RelayConfig::retry_schedule`], with jitter), or — after the last
//! retry, or at once for an error the sink calls permanent — parked: that
//! aggregate waits for staff ([`Engine::failed_deliveries`],
//! [`Engine::replay_delivery`]) while every other aggregate goes on. A
//! relay that stops mid-delivery is taken over when its lease ends; the
//! sink then sees the event again, with the same id (consumers drop
//! duplicates by it).
//!
//! ```no_run
//! # async fn run(engine: cartwright::Engine, sink: std::sync::Arc<dyn cartwright::relay::Sink>) -> cartwright::Result<()> {
//! let relay = cartwright::relay::Relay::new(engine, vec![sink])?;
//! tokio::spawn(relay.run(std::time::Duration::from_secs(1)));
//! # Ok(())
//! # }
//! ```
//!
//! Does not know: how a sink reaches its system; only what it answered.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::Duration;
use futures_util::future::join_all;
use tracing::Instrument;
use uuid::Uuid;

use crate::actor::Actor;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event::{DEFAULT_EVENT_SOURCE, Event};
use crate::store::{DeliveryOutcome, FailedDelivery, MAX_DELIVERY_ERROR_LEN};

/// Most sinks one relay holds.
pub const MAX_SINKS: usize = 32;

/// Most events one relay claims for a sink per round.
pub const MAX_RELAY_BATCH: usize = crate::store::MAX_PAGE_SIZE;

/// Why a sink did not take an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct SinkError {
    /// What happened (bounded when recorded; no secrets).
    pub message: String,
    /// Whether trying again cannot help (the event is parked at once).
    pub permanent: bool,
}

impl SinkError {
    /// A failure worth trying again (a timeout, an outage, a 5xx).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure trying again cannot mend (the receiver refused the event).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Where events go: one endpoint, topic or system.
#[async_trait]
pub trait Sink: Send + Sync {
    /// A name, unique among the relay's sinks and stable across restarts
    /// (its progress is kept under it): 1 to
    /// [`MAX_CONSUMER_LEN`](crate::store::MAX_CONSUMER_LEN) visible ASCII
    /// characters.
    fn name(&self) -> &str;

    /// Whether this sink wants `event` (by its type, say). An event it does
    /// not want counts as delivered to it. The default takes every event.
    fn accepts(&self, event: &Event) -> bool {
        let _ = event;
        true
    }

    /// Delivers one event, `envelope` being its CloudEvents form; returns
    /// once the receiving system has acknowledged it.
    ///
    /// # Errors
    /// A [`SinkError`]: transient (tried again later) or permanent (parked).
    async fn deliver(&self, event: &Event, envelope: &serde_json::Value) -> Result<(), SinkError>;
}

/// How a relay runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayConfig {
    /// Events claimed per sink per round (default 100, at most
    /// [`MAX_RELAY_BATCH`]).
    pub batch: usize,
    /// How long a claim is the relay's own (default 60 s); a delivery is
    /// cut off at half of it, so no other relay takes over while it runs.
    pub lease: Duration,
    /// The pauses before each retry of a failed delivery; after the last,
    /// the event is parked. Default: 30 s, 2 min, 10 min, 30 min, 1 h, 2 h,
    /// 4 h, 8 h — about 16 hours in all. Each pause is spread by ±20 %.
    pub retry_schedule: Vec<Duration>,
    /// The CloudEvents `source` (default [`DEFAULT_EVENT_SOURCE`]).
    pub source: String,
    /// How many deliveries to one sink run at once (default 16, at most
    /// [`MAX_RELAY_BATCH`]). They are always of different aggregates: one
    /// aggregate's events still go one at a time, in order.
    pub concurrency: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch: 100,
            lease: Duration::seconds(60),
            retry_schedule: [30, 120, 600, 1_800, 3_600, 7_200, 14_400, 28_800]
                .into_iter()
                .map(Duration::seconds)
                .collect(),
            source: DEFAULT_EVENT_SOURCE.to_owned(),
            concurrency: 16,
        }
    }
}

crate::domain::setters!(RelayConfig {
    batch: usize,
    lease: Duration,
    retry_schedule: Vec<Duration>,
    source: String,
    concurrency: usize,
} into {});

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayReport {
    /// Events a sink acknowledged.
    pub delivered: u64,
    /// Events a sink did not want (counted as delivered to it).
    pub skipped: u64,
    /// Failed deliveries to be tried again.
    pub retried: u64,
    /// Deliveries parked for staff.
    pub parked: u64,
    /// Outcomes not recorded because another relay had taken the
    /// aggregate over (it delivers the event again).
    pub lost_leases: u64,
}

impl RelayReport {
    /// Counts what became of one delivery (`attempted`: `None` when the
    /// sink did not want the event) and names it for the metrics.
    fn count(&mut self, outcome: &DeliveryOutcome, attempted: Option<bool>) -> &'static str {
        match (outcome, attempted) {
            (_, None) => {
                self.skipped += 1;
                "skipped"
            }
            (DeliveryOutcome::Delivered, _) => {
                self.delivered += 1;
                "delivered"
            }
            (DeliveryOutcome::Retry { .. }, _) => {
                self.retried += 1;
                "retried"
            }
            _ => {
                self.parked += 1;
                "parked"
            }
        }
    }
}

/// Relays the outbox to sinks. See the module docs.
pub struct Relay {
    engine: Engine,
    sinks: Vec<Arc<dyn Sink>>,
    config: RelayConfig,
    owner: Uuid,
    #[cfg(feature = "webhooks")]
    webhooks: Option<webhook::WebhookSender>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field(
                "sinks",
                &self.sinks.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay for `sinks` on `engine`'s store, with the default
    /// [`RelayConfig`].
    ///
    /// # Errors
    /// [`Error::Invalid`] for no sink, a sink name that is not 1 to
    /// [`MAX_CONSUMER_LEN`](crate::store::MAX_CONSUMER_LEN) visible ASCII
    /// characters, or two sinks of one name; [`Error::LimitExceeded`] past
    /// [`MAX_SINKS`].
    pub fn new(engine: Engine, sinks: Vec<Arc<dyn Sink>>) -> Result<Self> {
        if sinks.is_empty() {
            return Err(Error::invalid("sinks", "a relay needs at least one sink"));
        }
        crate::validate::at_most("sinks", sinks.len(), MAX_SINKS)?;
        let mut names = std::collections::BTreeSet::new();
        for sink in &sinks {
            let name = crate::store::check_consumer(sink.name())
                .map_err(|_| Error::invalid("sink name", crate::validate::shown(sink.name())))?;
            if !names.insert(name.to_owned()) {
                return Err(Error::AlreadyExists {
                    what: "sink",
                    value: name.to_owned(),
                });
            }
        }
        let mut relay = Self::empty(engine);
        relay.sinks = sinks;
        Ok(relay)
    }

    /// A relay with no sink yet.
    fn empty(engine: Engine) -> Self {
        Self {
            engine,
            sinks: Vec::new(),
            config: RelayConfig::default(),
            owner: Uuid::new_v4(),
            #[cfg(feature = "webhooks")]
            webhooks: None,
        }
    }

    /// Runs with `config`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a batch or a concurrency of 0 or above
    /// [`MAX_RELAY_BATCH`], a
    /// lease under one second, or a negative retry pause.
    pub fn with_config(mut self, config: RelayConfig) -> Result<Self> {
        if config.batch == 0 || config.batch > MAX_RELAY_BATCH {
            return Err(Error::invalid(
                "relay batch",
                format!("{}: must be 1 to {MAX_RELAY_BATCH}", config.batch),
            ));
        }
        if config.concurrency == 0 || config.concurrency > MAX_RELAY_BATCH {
            return Err(Error::invalid(
                "relay concurrency",
                format!("{}: must be 1 to {MAX_RELAY_BATCH}", config.concurrency),
            ));
        }
        if config.lease < Duration::seconds(1) {
            return Err(Error::invalid("relay lease", "must be at least one second"));
        }
        if config.retry_schedule.iter().any(|d| *d < Duration::zero()) {
            return Err(Error::invalid(
                "retry schedule",
                "pauses must not be negative",
            ));
        }
        crate::validate::at_most("retry schedule", config.retry_schedule.len(), 100)?;
        crate::validate::required_text("event source", &config.source, 200)?;
        self.config = config;
        Ok(self)
    }

    /// One round: for each sink, claims what it has not had and delivers
    /// it, recording each outcome.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails (what was recorded before
    /// stands; the next round goes on).
    #[tracing::instrument(name = "relay", skip_all, fields(owner = %self.owner))]
    pub async fn run_once(&self) -> Result<RelayReport> {
        let mut report = RelayReport::default();
        for sink in &self.sinks {
            self.run_sink(sink.as_ref(), &mut report, |_| async { true })
                .await?;
        }
        #[cfg(feature = "webhooks")]
        if let Some(sender) = &self.webhooks {
            self.run_webhooks(sender, &mut report).await?;
        }
        Ok(report)
    }

    /// Claims what `sink` has not had and delivers it, recording each
    /// outcome; after each delivery attempt, `go_on` says whether to go on
    /// with the sink this round.
    async fn run_sink<F, Fut>(
        &self,
        sink: &dyn Sink,
        report: &mut RelayReport,
        go_on: F,
    ) -> Result<()>
    where
        F: Fn(Option<bool>) -> Fut,
        Fut: Future<Output = bool>,
    {
        let store = self.engine.store();
        let now = self.engine.now();
        let events = store
            .claim_deliveries(
                sink.name(),
                self.owner,
                now,
                now + self.config.lease,
                self.config.batch,
            )
            .await?;
        // A claim holds each aggregate's next events in version order: they
        // go out one after another, stopping at the first that fails, and
        // `concurrency` aggregates at a time. The claim's outcomes are
        // recorded in one store command at its end (or where the sink is
        // paused). A relay that stops before that is taken over when its
        // lease ends, and the claim's events go out again, same ids.
        let mut chains: Vec<Vec<Event>> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for event in events {
            match index.get(&event.aggregate) {
                Some(&i) => {
                    if let Some(chain) = chains.get_mut(i) {
                        chain.push(event);
                    }
                }
                None => {
                    index.insert(event.aggregate.clone(), chains.len());
                    chains.push(vec![event]);
                }
            }
        }
        // Nothing new is started past half the lease (a delivery may take
        // the other half), so the outcomes are recorded while the claim is
        // still this relay's; what was not started goes back when the
        // lease ends.
        let half = (self.config.lease / 2)
            .to_std()
            .unwrap_or(StdDuration::from_secs(1));
        let deadline = std::time::Instant::now() + half;
        let mut settled = Vec::new();
        let mut rest = chains.as_slice();
        while !rest.is_empty() && std::time::Instant::now() < deadline {
            let (window, tail) = rest.split_at(rest.len().min(self.config.concurrency));
            rest = tail;
            let answers = join_all(
                window
                    .iter()
                    .map(|chain| self.deliver_chain(sink, chain, deadline)),
            )
            .await;
            let mut stop = false;
            for (event, outcome, attempted) in answers.into_iter().flatten() {
                let label = report.count(&outcome, attempted);
                crate::telemetry::relay_delivery(sink.name(), label);
                settled.push((event, outcome));
                if !go_on(attempted).await {
                    stop = true;
                }
            }
            if stop {
                // The rest of the claim goes back when its lease ends.
                break;
            }
        }
        if settled.is_empty() {
            return Ok(());
        }
        let recorded = store
            .settle_deliveries(sink.name(), self.owner, &settled)
            .await?;
        for _ in recorded.iter().filter(|r| !**r) {
            report.lost_leases += 1;
            crate::telemetry::relay_delivery(sink.name(), "lease_lost");
        }
        Ok(())
    }

    /// Each active webhook subscription as a sink; a failure counts
    /// towards pausing it, and once paused it gets nothing more.
    #[cfg(feature = "webhooks")]
    async fn run_webhooks(
        &self,
        sender: &webhook::WebhookSender,
        report: &mut RelayReport,
    ) -> Result<()> {
        let store = self.engine.store();
        let pausing = self.engine.config().webhook_pausing;
        for subscription in store.webhooks().await? {
            if subscription.status != crate::webhook::WebhookStatus::Active {
                continue;
            }
            let endpoint = sender.endpoint(subscription);
            let id = endpoint.subscription().id;
            let engine = &self.engine;
            self.run_sink(&endpoint, report, |attempted| async move {
                let Some(delivered) = attempted else {
                    return true;
                };
                match engine
                    .store()
                    .record_webhook_delivery(id, delivered, engine.now(), pausing)
                    .await
                {
                    Ok(Some(crate::webhook::WebhookStatus::Active)) => true,
                    Ok(Some(crate::webhook::WebhookStatus::Paused {
                        reason: crate::webhook::PauseReason::Failing,
                        ..
                    })) => {
                        crate::telemetry::webhook_paused();
                        tracing::warn!(webhook = %id, "a webhook endpoint kept failing and was paused");
                        false
                    }
                    Ok(Some(_)) => false,
                    Ok(None) => false,
                    // Counting failed: delivering goes on.
                    Err(_) => true,
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Delivers one aggregate's claimed events in order, up to the first
    /// that fails (or `deadline`, after the first); says what became of
    /// each one tried.
    async fn deliver_chain(
        &self,
        sink: &dyn Sink,
        chain: &[Event],
        deadline: std::time::Instant,
    ) -> Vec<(Event, DeliveryOutcome, Option<bool>)> {
        let mut out = Vec::with_capacity(chain.len());
        for event in chain {
            if !out.is_empty() && std::time::Instant::now() >= deadline {
                break;
            }
            let span = tracing::info_span!(
                "relay.deliver",
                sink = sink.name(),
                event_id = %event.id,
                event_type = event.kind.type_name(),
                aggregate = %event.aggregate,
                version = event.version,
            );
            let (outcome, attempted) = self.deliver(sink, event).instrument(span).await;
            let failed = !matches!(outcome, DeliveryOutcome::Delivered);
            out.push((event.clone(), outcome, attempted));
            if failed {
                break;
            }
        }
        out
    }

    /// Delivers one event to one sink and says what to record, and
    /// whether the sink took it (`None`: it did not want it).
    async fn deliver(&self, sink: &dyn Sink, event: &Event) -> (DeliveryOutcome, Option<bool>) {
        if !sink.accepts(event) {
            return (DeliveryOutcome::Delivered, None);
        }
        let envelope = event.cloud_event(&self.config.source);
        let limit = (self.config.lease / 2)
            .to_std()
            .unwrap_or(StdDuration::from_secs(1));
        let started = std::time::Instant::now();
        let answer = match tokio::time::timeout(limit, sink.deliver(event, &envelope)).await {
            Ok(answer) => answer,
            Err(_) => Err(SinkError::transient("the sink did not answer in time")),
        };
        let lag = answer
            .is_ok()
            .then(|| (self.engine.now() - event.occurred_at).to_std().ok())
            .flatten();
        crate::telemetry::relay_call(sink.name(), started.elapsed(), lag);
        let error = match answer {
            Ok(()) => return (DeliveryOutcome::Delivered, Some(true)),
            Err(e) => e,
        };
        let message: String = error.message.chars().take(MAX_DELIVERY_ERROR_LEN).collect();
        tracing::warn!(sink = sink.name(), event_id = %event.id, aggregate = %event.aggregate, error = %message, "a sink refused an event");
        let attempts = self.attempts_so_far(sink.name(), event).await;
        let outcome = match self.config.retry_schedule.get(attempts) {
            Some(pause) if !error.permanent => DeliveryOutcome::Retry {
                at: self.engine.now() + jittered(*pause),
                error: message,
            },
            _ => DeliveryOutcome::Park { error: message },
        };
        (outcome, Some(false))
    }

    /// How often delivering `event`'s aggregate to `sink` failed in a row.
    async fn attempts_so_far(&self, sink: &str, event: &Event) -> usize {
        // The store keeps the count with the stream; the relay asks for it
        // only when a delivery failed.
        match self
            .engine
            .store()
            .delivery_attempts(sink, &event.aggregate)
            .await
        {
            Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Err(_) => 0,
        }
    }

    /// Runs rounds every `interval` (at least 10 ms, spread by ±20 %),
    /// forever; a round that fails is logged and the next one goes on.
    /// Spawn it once per process; dropping the future stops it.
    pub fn run(self, interval: StdDuration) -> impl Future<Output = ()> + Send + 'static {
        let interval = interval.max(StdDuration::from_millis(10));
        async move {
            loop {
                if let Err(error) = self.run_once().await {
                    tracing::warn!(%error, "a relay round failed; the next one goes on");
                }
                let pause = jittered(Duration::from_std(interval).unwrap_or(Duration::seconds(1)));
                tokio::time::sleep(pause.to_std().unwrap_or(interval)).await;
            }
        }
    }
}

/// `d` spread by ±20 %.
fn jittered(d: Duration) -> Duration {
    let millis = d.num_milliseconds().max(0);
    let spread = millis / 5;
    if spread == 0 {
        return d;
    }
    let random =
        i64::try_from(uuid::Uuid::new_v4().as_u128() % (2 * spread as u128 + 1)).unwrap_or(0);
    Duration::milliseconds(millis - spread + random)
}

impl Engine {
    /// Deliveries parked for staff: of `sink`, or of every sink.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::LimitExceeded`] for a `limit` of 0 or above
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE); [`Error::Storage`].
    pub async fn failed_deliveries(
        &self,
        actor: &Actor,
        sink: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FailedDelivery>> {
        actor.require(crate::actor::Permission::Settings)?;
        crate::store::check_limit(limit)?;
        self.inner.store.failed_deliveries(sink, limit).await
    }

    /// Lets a parked aggregate go to `sink` again (staff, once the
    /// receiving side is mended); recorded with who asked. `false` when it
    /// was not parked.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a malformed sink name; [`Error::Storage`].
    pub async fn replay_delivery(
        &self,
        actor: &Actor,
        sink: &str,
        aggregate: &str,
    ) -> Result<bool> {
        actor.require(crate::actor::Permission::Settings)?;
        crate::validate::at_most("aggregate", aggregate.chars().count(), 200)?;
        let replayed = self.inner.store.replay_delivery(sink, aggregate).await?;
        if replayed {
            self.audit(actor, "replay_delivery", format!("{sink} {aggregate}"))
                .await;
        }
        Ok(replayed)
    }
}

/// A consumer's inbox, kept by the store: handles each event once by its
/// id, however often it is delivered (at least once, from the relay or a
/// broker). An event is recorded handled only when its handler succeeded;
/// one whose handler failed, or stopped past the lease, is handled again at
/// its next delivery — so a handler's own effects should be idempotent or
/// made in the same system as the record.
///
/// ```no_run
/// # async fn run(engine: cartwright::Engine, event: cartwright::event::Event) -> cartwright::Result<()> {
/// let inbox = cartwright::relay::Inbox::new(engine, "warehouse")?;
/// let done = inbox
///     .handle(event.id, async { Ok::<_, std::io::Error>(/* tell the warehouse */ ()) })
///     .await?;
/// // `None`: handled before (or being handled elsewhere): nothing ran.
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Inbox {
    engine: Engine,
    consumer: String,
    lease: Duration,
}

impl Inbox {
    /// The inbox of `consumer` (1 to
    /// [`MAX_CONSUMER_LEN`](crate::store::MAX_CONSUMER_LEN) visible ASCII
    /// characters); a handler holds an event for at most 5 minutes.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed consumer name.
    pub fn new(engine: Engine, consumer: &str) -> Result<Self> {
        let consumer = crate::store::check_consumer(consumer)?.to_owned();
        Ok(Self {
            engine,
            consumer,
            lease: Duration::minutes(5),
        })
    }

    /// Runs `handler` for event `event` unless it was handled already or
    /// another handler holds it (`Ok(None)`, nothing ran). Its result comes
    /// back as `Ok(Some(..))`; the event is recorded handled only when it
    /// is `Ok`.
    ///
    /// # Errors
    /// [`Error::Storage`] when the inbox cannot be read or written (the
    /// handler did not run, or its success was not recorded and it may run
    /// again).
    pub async fn handle<T, E>(
        &self,
        event: crate::id::EventId,
        handler: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<Option<std::result::Result<T, E>>> {
        let store = self.engine.store();
        let now = self.engine.now();
        match store
            .inbox_claim(&self.consumer, event, now, now + self.lease)
            .await?
        {
            crate::store::InboxClaim::Claimed => {}
            _ => return Ok(None),
        }
        let outcome = handler.await;
        store
            .inbox_finish(&self.consumer, event, outcome.is_ok())
            .await?;
        Ok(Some(outcome))
    }
}

#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "webhooks")]
pub mod webhook;
