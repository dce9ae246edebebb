//! The PostgreSQL store: events.

use super::*;

pub(super) fn event_from_row(row: &PgRow) -> Try<Event> {
    let sequence: i64 = col(row, "sequence", "event")?;
    let version: i64 = col(row, "aggregate_version", "event")?;
    let aggregate: String = col(row, "aggregate", "event")?;
    let Json(kind): Json<EventKind> = col(row, "kind", "event")?;
    let event = Event::new(
        EventId::from_uuid(col(row, "id", "event")?),
        u64::try_from(sequence).map_err(|_| corrupt("event", "negative sequence"))?,
        col(row, "occurred_at", "event")?,
        kind,
        u64::try_from(version).map_err(|_| corrupt("event", "negative version"))?,
    );
    // The aggregate is stored beside the document: they must agree.
    if event.aggregate != aggregate {
        return Err(corrupt("event", "its aggregate disagrees with its kind"));
    }
    Ok(event)
}

#[async_trait]
impl EventStore for PgStore {
    async fn pending_events(&self, consumer: &str, limit: usize) -> Result<Vec<Event>> {
        let consumer = check_consumer(consumer)?;
        let limit = limit_i64(limit)?;
        retry!(self, async {
            // Only events of transactions older than every running one: a
            // transaction still running may yet commit an event that sorts
            // earlier, and a reader must never move past it.
            let rows = sqlx::query(
                "SELECT e.sequence, e.id, e.occurred_at, e.kind, e.aggregate, e.aggregate_version
                 FROM cw_events e LEFT JOIN cw_event_cursors c ON c.consumer = $1
                 WHERE e.tx < pg_snapshot_xmin(pg_current_snapshot())
                   AND (c.consumer IS NULL OR (e.tx, e.sequence) > (c.tx, c.sequence))
                 ORDER BY e.tx, e.sequence LIMIT $2",
            )
            .bind(consumer)
            .bind(limit)
            .fetch_all(&self.pool())
            .await?;
            rows.iter().map(event_from_row).collect::<Try<Vec<_>>>()
        })
    }

    async fn ack_events(&self, consumer: &str, through: EventId) -> Result<()> {
        let consumer = check_consumer(consumer)?;
        retry!(self, async {
            let found: Option<i32> = sqlx::query_scalar(
                "WITH e AS (SELECT tx, sequence FROM cw_events WHERE id = $2),
                 up AS (
                     INSERT INTO cw_event_cursors (consumer, tx, sequence) SELECT $1, tx, sequence FROM e
                     ON CONFLICT (consumer) DO UPDATE SET tx = EXCLUDED.tx, sequence = EXCLUDED.sequence
                     WHERE (cw_event_cursors.tx, cw_event_cursors.sequence) < (EXCLUDED.tx, EXCLUDED.sequence))
                 SELECT 1 FROM e",
            )
            .bind(consumer)
            .bind(through.as_uuid())
            .fetch_optional(&self.pool())
            .await?;
            found
                .map(|_| ())
                .ok_or_else(|| Error::not_found("event", through).into())
        })
    }

    async fn admin_changes(&self, before: Option<u64>, limit: usize) -> Result<Vec<Event>> {
        let limit = limit_i64(limit)?;
        let before = before.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT e.sequence, e.id, e.occurred_at, e.kind, e.aggregate, e.aggregate_version
                 FROM cw_events e
                 WHERE e.kind->>'type' = 'admin_change' AND ($1::bigint IS NULL OR e.sequence < $1)
                 ORDER BY e.sequence DESC LIMIT $2",
            )
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool())
            .await?;
            rows.iter().map(event_from_row).collect::<Try<Vec<_>>>()
        })
    }

    async fn record_events(&self, events: Vec<EventKind>, now: DateTime<Utc>) -> Result<()> {
        retry!(self, async {
            let mut conn = self.pool().acquire().await?;
            insert_events(&mut conn, &events, now).await
        })
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64> {
        retry!(self, async {
            // Gone: what every cursor acknowledged and every relay sink
            // had (its stream is past the event, or the event is below its
            // floor and the sink never had the aggregate). With no consumer
            // at all, nothing goes.
            let done = sqlx::query(
                "DELETE FROM cw_events e
                 WHERE e.occurred_at < $1
                   AND (EXISTS (SELECT 1 FROM cw_event_cursors) OR EXISTS (SELECT 1 FROM cw_relay_floors))
                   AND NOT EXISTS (
                       SELECT 1 FROM cw_event_cursors c WHERE (e.tx, e.sequence) > (c.tx, c.sequence))
                   AND NOT EXISTS (
                       SELECT 1 FROM cw_relay_floors f
                       LEFT JOIN cw_relay_streams s ON s.sink = f.sink AND s.aggregate = e.aggregate
                       WHERE (s.sink IS NOT NULL AND s.delivered < e.aggregate_version)
                          OR (s.sink IS NULL AND e.tx >= f.tx))",
            )
            .bind(before)
            .execute(&self.pool())
            .await?;
            // A stream whose aggregate has no event left is forgotten (the
            // aggregate's next event is then its first in the outbox), and
            // handled inbox entries go with the events they were for.
            sqlx::query(
                "DELETE FROM cw_relay_streams s
                 WHERE s.parked IS NULL AND s.lease_owner IS NULL
                   AND NOT EXISTS (SELECT 1 FROM cw_events e WHERE e.aggregate = s.aggregate)",
            )
            .execute(&self.pool())
            .await?;
            sqlx::query("DELETE FROM cw_inbox WHERE handled AND lease_until < $1")
                .bind(before)
                .execute(&self.pool())
                .await?;
            Ok(done.rows_affected())
        })
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
        let limit = limit_i64(limit)?;
        retry!(self, async {
            let floor = self.relay_floor(sink).await?;
            // Of each aggregate no relay holds and that is neither parked
            // nor waiting, the events after the last delivered one, in
            // version order (a prefix: the limit cuts only between
            // versions); aggregates in the order of their first such
            // event. The lease is taken by an upsert whose condition is
            // checked again under the row's lock, so of two relays racing
            // for an aggregate one wins and the other moves on. Only
            // events from the sink's floor up are read.
            let rows = sqlx::query(
                "WITH cand AS (
                     SELECT e.sequence, e.aggregate, e.aggregate_version,
                            s.aggregate AS known, s.parked, s.next_attempt_at, s.lease_until
                     FROM cw_events e
                     LEFT JOIN cw_relay_streams s ON s.sink = $1 AND s.aggregate = e.aggregate
                     WHERE e.tx >= $6::text::xid8 AND e.aggregate_version > coalesce(s.delivered, 0)
                 ), free AS (
                     SELECT *, min(sequence) OVER (PARTITION BY aggregate) AS first_seq,
                            min(aggregate_version) OVER (PARTITION BY aggregate) AS first_version
                     FROM cand
                     WHERE known IS NULL
                        OR (parked IS NULL AND next_attempt_at <= $2
                            AND (lease_until IS NULL OR lease_until <= $2))
                 ), picked AS (
                     SELECT * FROM free ORDER BY first_seq, aggregate_version LIMIT $5
                 ), won AS (
                     INSERT INTO cw_relay_streams AS s
                         (sink, aggregate, delivered, lease_owner, lease_until, next_attempt_at)
                     SELECT DISTINCT $1, aggregate, first_version - 1, $3::uuid, $4::timestamptz, $2::timestamptz
                     FROM picked
                     ON CONFLICT (sink, aggregate) DO UPDATE
                         SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until
                         WHERE s.delivered = EXCLUDED.delivered AND s.parked IS NULL
                           AND s.next_attempt_at <= $2
                           AND (s.lease_until IS NULL OR s.lease_until <= $2)
                     RETURNING s.aggregate
                 )
                 SELECT e.sequence, e.id, e.occurred_at, e.kind, e.aggregate, e.aggregate_version
                 FROM picked p JOIN won w ON w.aggregate = p.aggregate
                 JOIN cw_events e ON e.sequence = p.sequence
                 ORDER BY p.first_seq, p.aggregate_version",
            )
            .bind(sink)
            .bind(now)
            .bind(owner)
            .bind(lease_until)
            .bind(limit)
            .bind(floor)
            .fetch_all(&self.pool())
            .await?;
            rows.iter().map(event_from_row).collect::<Try<Vec<_>>>()
        })
    }

    async fn settle_deliveries(
        &self,
        sink: &str,
        owner: Uuid,
        settled: &[(Event, DeliveryOutcome)],
    ) -> Result<Vec<bool>> {
        let sink = check_consumer(sink)?;
        let folded = crate::store::fold_settlements(settled)?;
        let n = folded.len();
        let version = |v: u64| i64::try_from(v).map_err(|_| Error::Overflow("event version"));
        let mut aggregates = Vec::with_capacity(n);
        let (mut firsts, mut delivered) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut failed, mut next_at) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut parked, mut errors) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for f in &folded {
            aggregates.push(f.aggregate.clone());
            firsts.push(version(f.first)?);
            delivered.push(f.delivered.map(version).transpose()?);
            let (at, park, error) = match &f.then {
                None => (None, None, String::new()),
                Some((_, DeliveryOutcome::Retry { at, error })) => {
                    (Some(*at), None, bounded_error(error))
                }
                Some((v, DeliveryOutcome::Park { error })) => {
                    (None, Some(version(*v)?), bounded_error(error))
                }
                Some((_, DeliveryOutcome::Delivered)) => (None, None, String::new()),
            };
            failed.push(f.then.is_some());
            next_at.push(at);
            parked.push(park);
            errors.push(error);
        }
        retry!(self, async {
            // One statement for the claim's outcomes, one row per
            // aggregate, each under its lease: an aggregate another relay
            // took over is not touched.
            let done: Vec<String> = sqlx::query_scalar(
                "UPDATE cw_relay_streams s SET
                     delivered = coalesce(u.delivered, s.delivered),
                     attempts = CASE WHEN NOT u.failed THEN 0
                                     WHEN u.delivered IS NULL THEN s.attempts + 1 ELSE 1 END,
                     next_attempt_at = coalesce(u.next_at, s.next_attempt_at),
                     parked = u.parked,
                     last_error = u.error,
                     lease_owner = NULL, lease_until = NULL
                 FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::boolean[], $6::timestamptz[], $7::bigint[], $8::text[])
                      AS u(aggregate, first, delivered, failed, next_at, parked, error)
                 WHERE s.sink = $1 AND s.aggregate = u.aggregate AND s.lease_owner = $9
                   AND s.delivered = u.first - 1
                 RETURNING s.aggregate",
            )
            .bind(sink)
            .bind(&aggregates)
            .bind(&firsts)
            .bind(&delivered)
            .bind(&failed)
            .bind(&next_at)
            .bind(&parked)
            .bind(&errors)
            .bind(owner)
            .fetch_all(&self.pool())
            .await?;
            let done: std::collections::HashSet<&str> = done.iter().map(String::as_str).collect();
            Ok(settled
                .iter()
                .map(|(e, _)| done.contains(e.aggregate.as_str()))
                .collect())
        })
    }

    async fn failed_deliveries(
        &self,
        sink: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FailedDelivery>> {
        let limit = limit_i64(limit)?;
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT sink, aggregate, parked, attempts, last_error FROM cw_relay_streams
                 WHERE parked IS NOT NULL AND ($1::text IS NULL OR sink = $1)
                 ORDER BY sink, aggregate LIMIT $2",
            )
            .bind(sink)
            .bind(limit)
            .fetch_all(&self.pool())
            .await?;
            rows.iter()
                .map(|r| {
                    let version: i64 = col(r, "parked", "delivery")?;
                    let attempts: i32 = col(r, "attempts", "delivery")?;
                    Ok(FailedDelivery {
                        sink: col(r, "sink", "delivery")?,
                        aggregate: col(r, "aggregate", "delivery")?,
                        version: u64::try_from(version)
                            .map_err(|_| corrupt("delivery", "negative version"))?,
                        attempts: u32::try_from(attempts)
                            .map_err(|_| corrupt("delivery", "negative attempts"))?,
                        error: col(r, "last_error", "delivery")?,
                    })
                })
                .collect::<Try<Vec<_>>>()
        })
    }

    async fn delivery_attempts(&self, sink: &str, aggregate: &str) -> Result<u32> {
        retry!(self, async {
            let attempts: Option<i32> = sqlx::query_scalar(
                "SELECT attempts FROM cw_relay_streams WHERE sink = $1 AND aggregate = $2",
            )
            .bind(sink)
            .bind(aggregate)
            .fetch_optional(&self.pool())
            .await?;
            u32::try_from(attempts.unwrap_or(0))
                .map_err(|_| corrupt("delivery", "negative attempts"))
        })
    }

    async fn inbox_claim(
        &self,
        consumer: &str,
        event: EventId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<InboxClaim> {
        let consumer = check_consumer(consumer)?;
        retry!(self, async {
            // Claimed by this call if new, or if an earlier claim's lease
            // ended; otherwise say how it stands.
            let claimed: Option<i32> = sqlx::query_scalar(
                "INSERT INTO cw_inbox AS i (consumer, event_id, handled, lease_until)
                 VALUES ($1, $2, false, $4)
                 ON CONFLICT (consumer, event_id) DO UPDATE SET lease_until = EXCLUDED.lease_until
                 WHERE NOT i.handled AND i.lease_until <= $3
                 RETURNING 1",
            )
            .bind(consumer)
            .bind(event.as_uuid())
            .bind(now)
            .bind(lease_until)
            .fetch_optional(&self.pool())
            .await?;
            if claimed.is_some() {
                return Ok(InboxClaim::Claimed);
            }
            let handled: Option<bool> = sqlx::query_scalar(
                "SELECT handled FROM cw_inbox WHERE consumer = $1 AND event_id = $2",
            )
            .bind(consumer)
            .bind(event.as_uuid())
            .fetch_optional(&self.pool())
            .await?;
            Ok(match handled {
                Some(true) => InboxClaim::Handled,
                _ => InboxClaim::Busy,
            })
        })
    }

    async fn inbox_finish(&self, consumer: &str, event: EventId, handled: bool) -> Result<()> {
        let consumer = check_consumer(consumer)?;
        retry!(self, async {
            let sql = if handled {
                "UPDATE cw_inbox SET handled = true WHERE consumer = $1 AND event_id = $2"
            } else {
                "DELETE FROM cw_inbox WHERE consumer = $1 AND event_id = $2 AND NOT handled"
            };
            sqlx::query(sql)
                .bind(consumer)
                .bind(event.as_uuid())
                .execute(&self.pool())
                .await?;
            Ok(())
        })
    }

    async fn replay_delivery(&self, sink: &str, aggregate: &str) -> Result<bool> {
        let sink = check_consumer(sink)?;
        retry!(self, async {
            // The floor goes down to the parked event again, in the same
            // statement, and its generation changes, so a claim that saw
            // the aggregate parked cannot raise the floor past it.
            let done = sqlx::query(
                "WITH up AS (
                     UPDATE cw_relay_streams SET parked = NULL, attempts = 0,
                            next_attempt_at = '-infinity'
                     WHERE sink = $1 AND aggregate = $2 AND parked IS NOT NULL
                     RETURNING aggregate, delivered
                 ), low AS (
                     SELECT min(e.tx) AS tx FROM cw_events e JOIN up
                       ON e.aggregate = up.aggregate AND e.aggregate_version > up.delivered
                 ), floor AS (
                     UPDATE cw_relay_floors f SET tx = least(f.tx, low.tx), generation = f.generation + 1
                     FROM low WHERE f.sink = $1 AND low.tx IS NOT NULL
                 )
                 SELECT 1 FROM up",
            )
            .bind(sink)
            .bind(aggregate)
            .fetch_optional(&self.pool())
            .await?;
            Ok(done.is_some())
        })
    }
}

use crate::store::bounded_error;

/// Writes `events` at `now`, in order, on `conn` (in the caller's
/// transaction, where it has one). Their ids are new; a retried command
/// makes new ones, as it writes anew.
pub(super) async fn insert_events(
    conn: &mut sqlx::PgConnection,
    events: &[EventKind],
    now: DateTime<Utc>,
) -> Try<()> {
    if events.is_empty() {
        return Ok(());
    }
    let kinds = events
        .iter()
        .map(|k| to_json(k).map(Json))
        .collect::<Try<Vec<_>>>()?;
    let ids: Vec<Uuid> = events.iter().map(|_| EventId::new().as_uuid()).collect();
    sqlx::query(
        "INSERT INTO cw_events (id, occurred_at, kind)
         SELECT e, $3, k FROM unnest($1::uuid[], $2::jsonb[]) WITH ORDINALITY AS u(e, k, n) ORDER BY n",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

impl PgStore {
    /// Sink `sink`'s floor, raised first as far as it can go: to the
    /// transaction of the first event the sink has not had (of an
    /// aggregate not parked for it), but never past a transaction that may
    /// still commit an event (the oldest running one). Raised by a
    /// compare-and-set on the generation, so a replay that lowered it
    /// meanwhile wins.
    async fn relay_floor(&self, sink: &str) -> Try<String> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT tx::text, generation FROM cw_relay_floors WHERE sink = $1")
                .bind(sink)
                .fetch_optional(&self.pool())
                .await?;
        let Some((floor, generation)) = row else {
            sqlx::query(
                "INSERT INTO cw_relay_floors (sink, tx) VALUES ($1, '0') ON CONFLICT DO NOTHING",
            )
            .bind(sink)
            .execute(&self.pool())
            .await?;
            return Ok("0".to_owned());
        };
        let raised: Option<String> = sqlx::query_scalar(
            "WITH next AS (
                 SELECT least(pg_snapshot_xmin(pg_current_snapshot()), coalesce((
                     SELECT e.tx FROM cw_events e
                     WHERE e.tx >= $2::text::xid8
                       AND NOT EXISTS (
                           SELECT 1 FROM cw_relay_streams s
                           WHERE s.sink = $1 AND s.aggregate = e.aggregate
                             AND (s.delivered >= e.aggregate_version OR s.parked IS NOT NULL))
                     ORDER BY e.tx, e.sequence LIMIT 1),
                     pg_snapshot_xmin(pg_current_snapshot()))) AS tx
             )
             UPDATE cw_relay_floors f SET tx = next.tx FROM next
             WHERE f.sink = $1 AND f.generation = $3 AND next.tx > f.tx
             RETURNING f.tx::text",
        )
        .bind(sink)
        .bind(&floor)
        .bind(generation)
        .fetch_optional(&self.pool())
        .await?;
        Ok(raised.unwrap_or(floor))
    }
}
