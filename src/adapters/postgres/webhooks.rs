//! The PostgreSQL store: webhook subscriptions.

use super::*;
use crate::webhook::{
    MAX_WEBHOOKS, PauseReason, WebhookId, WebhookPausing, WebhookSecret, WebhookStatus,
    WebhookSubscription,
};

const COLUMNS: &str = "id, url, event_types, secret, description, created_at, paused_at, \
                       pause_reason, failing_since, failures";

fn reason_text(reason: PauseReason) -> &'static str {
    match reason {
        PauseReason::Failing => "failing",
        PauseReason::Staff => "staff",
    }
}

fn webhook_from_row(row: &PgRow) -> Try<WebhookSubscription> {
    let secret: String = col(row, "secret", "webhook")?;
    let paused_at: Option<DateTime<Utc>> = col(row, "paused_at", "webhook")?;
    let reason: Option<String> = col(row, "pause_reason", "webhook")?;
    let status = match (paused_at, reason.as_deref()) {
        (None, _) => WebhookStatus::Active,
        (Some(since), Some("failing")) => WebhookStatus::Paused {
            since,
            reason: PauseReason::Failing,
        },
        (Some(since), Some("staff")) => WebhookStatus::Paused {
            since,
            reason: PauseReason::Staff,
        },
        _ => return Err(corrupt("webhook", "unknown pause reason")),
    };
    let failures: i32 = col(row, "failures", "webhook")?;
    Ok(WebhookSubscription::from_parts(
        WebhookId::from_uuid(col(row, "id", "webhook")?),
        col(row, "url", "webhook")?,
        col(row, "event_types", "webhook")?,
        WebhookSecret::new(secret).map_err(|_| corrupt("webhook", "malformed secret"))?,
        col(row, "description", "webhook")?,
        col(row, "created_at", "webhook")?,
        status,
        col(row, "failing_since", "webhook")?,
        u32::try_from(failures).map_err(|_| corrupt("webhook", "negative failures"))?,
    ))
}

#[async_trait]
impl crate::store::WebhookStore for PgStore {
    async fn create_webhook(&self, webhook: &WebhookSubscription) -> Result<()> {
        let max = i64::try_from(MAX_WEBHOOKS).map_err(|_| Error::Overflow("webhooks"))?;
        retry!(self, async {
            // The count and the insert in one statement under a lock on the
            // table's rows, so racing creations cannot pass the limit; the
            // sink's floor starts at the oldest running transaction.
            let mut tx = self.pool().begin().await?;
            sqlx::query("LOCK TABLE cw_webhooks IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM cw_webhooks")
                .fetch_one(&mut *tx)
                .await?;
            if count >= max {
                return Err(Error::LimitExceeded {
                    what: "webhooks",
                    max: MAX_WEBHOOKS as u64,
                }
                .into());
            }
            sqlx::query(
                "INSERT INTO cw_webhooks (id, url, event_types, secret, description, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(webhook.id.as_uuid())
            .bind(&webhook.url)
            .bind(&webhook.event_types)
            .bind(webhook.secret.expose())
            .bind(&webhook.description)
            .bind(webhook.created_at)
            .execute(&mut *tx)
            .await?;
            // What the subscription does not get, in one snapshot: every
            // event of a transaction older than the oldest running one
            // (below its floor), and every other event committed now (its
            // aggregates' streams start past them). An event committed
            // later has a later version, so it is delivered.
            sqlx::query(
                "WITH f AS (
                     INSERT INTO cw_relay_floors (sink, tx)
                     VALUES ($1, pg_snapshot_xmin(pg_current_snapshot()))
                     ON CONFLICT (sink) DO UPDATE SET tx = EXCLUDED.tx
                     RETURNING tx
                 )
                 INSERT INTO cw_relay_streams (sink, aggregate, delivered, next_attempt_at)
                 SELECT $1, e.aggregate, max(e.aggregate_version), '-infinity'
                 FROM cw_events e, f WHERE e.tx >= f.tx GROUP BY e.aggregate
                 ON CONFLICT DO NOTHING",
            )
            .bind(webhook.sink_name())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn webhook(&self, id: WebhookId) -> Result<Option<WebhookSubscription>> {
        retry!(self, async {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM cw_webhooks WHERE id = $1"
            )))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool())
            .await?;
            row.as_ref().map(webhook_from_row).transpose()
        })
    }

    async fn webhooks(&self) -> Result<Vec<WebhookSubscription>> {
        let max = i64::try_from(MAX_WEBHOOKS).map_err(|_| Error::Overflow("webhooks"))?;
        retry!(self, async {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM cw_webhooks ORDER BY created_at, id LIMIT $1"
            )))
            .bind(max)
            .fetch_all(&self.pool())
            .await?;
            rows.iter().map(webhook_from_row).collect::<Try<Vec<_>>>()
        })
    }

    async fn set_webhook_status(&self, id: WebhookId, status: &WebhookStatus) -> Result<bool> {
        let (paused_at, reason) = match status {
            WebhookStatus::Paused { since, reason } => (Some(*since), Some(reason_text(*reason))),
            _ => (None, None),
        };
        retry!(self, async {
            let done = sqlx::query(
                "UPDATE cw_webhooks SET paused_at = $2, pause_reason = $3,
                        failures = CASE WHEN $2::timestamptz IS NULL THEN 0 ELSE failures END,
                        failing_since = CASE WHEN $2::timestamptz IS NULL THEN NULL ELSE failing_since END
                 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(paused_at)
            .bind(reason)
            .execute(&self.pool())
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<bool> {
        let sink = crate::webhook::sink_name(id);
        retry!(self, async {
            let mut tx = self.pool().begin().await?;
            let done = sqlx::query("DELETE FROM cw_webhooks WHERE id = $1")
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM cw_relay_streams WHERE sink = $1")
                .bind(&sink)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM cw_relay_floors WHERE sink = $1")
                .bind(&sink)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn record_webhook_delivery(
        &self,
        id: WebhookId,
        delivered: bool,
        now: DateTime<Utc>,
        pausing: WebhookPausing,
    ) -> Result<Option<WebhookStatus>> {
        let failures = i32::try_from(pausing.failures).unwrap_or(i32::MAX);
        retry!(self, async {
            // One statement: the row's lock orders racing relays' counts.
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE cw_webhooks w SET
                     failures = CASE WHEN $2 THEN 0 ELSE least(w.failures, 2147483646) + 1 END,
                     failing_since = CASE WHEN $2 THEN NULL ELSE coalesce(w.failing_since, $3) END,
                     paused_at = CASE
                         WHEN NOT $2 AND w.paused_at IS NULL AND w.failures + 1 >= $4
                              AND $3 - coalesce(w.failing_since, $3) >= $5 THEN $3
                         ELSE w.paused_at END,
                     pause_reason = CASE
                         WHEN NOT $2 AND w.paused_at IS NULL AND w.failures + 1 >= $4
                              AND $3 - coalesce(w.failing_since, $3) >= $5 THEN 'failing'
                         ELSE w.pause_reason END
                 WHERE id = $1
                 RETURNING {COLUMNS}"
            )))
            .bind(id.as_uuid())
            .bind(delivered)
            .bind(now)
            .bind(failures)
            .bind(pausing.over)
            .fetch_optional(&self.pool())
            .await?;
            Ok(row
                .as_ref()
                .map(webhook_from_row)
                .transpose()?
                .map(|w| w.status))
        })
    }
}
