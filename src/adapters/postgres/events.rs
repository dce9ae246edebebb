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

    async fn record_events(&self, events: Vec<EventKind>, now: DateTime<Utc>) -> Result<()> {
        let kinds = events
            .iter()
            .map(|k| to_json(k).map(Json))
            .collect::<Try<Vec<_>>>()?;
        let ids: Vec<Uuid> = events.iter().map(|_| EventId::new().as_uuid()).collect();
        retry!(self, async {
            sqlx::query(
                "INSERT INTO cw_events (id, occurred_at, kind)
                 SELECT e, $3, k FROM unnest($1::uuid[], $2::jsonb[]) WITH ORDINALITY AS u(e, k, n) ORDER BY n",
            )
            .bind(&ids)
            .bind(&kinds)
            .bind(now)
            .execute(&self.pool())
            .await?;
            Ok(())
        })
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64> {
        retry!(self, async {
            let done = sqlx::query(
                "DELETE FROM cw_events e
                 WHERE e.occurred_at < $1
                   AND EXISTS (SELECT 1 FROM cw_event_cursors)
                   AND NOT EXISTS (
                       SELECT 1 FROM cw_event_cursors c WHERE (e.tx, e.sequence) > (c.tx, c.sequence))",
            )
            .bind(before)
            .execute(&self.pool())
            .await?;
            Ok(done.rows_affected())
        })
    }
}
