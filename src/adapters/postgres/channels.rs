//! The PostgreSQL store: channels.

use super::*;

#[async_trait]
impl ChannelStore for PgStore {
    async fn save_channel(&self, channel: SalesChannel) -> Result<SalesChannel> {
        channel.validate()?;
        let mut saved = channel.clone();
        saved.version += 1;
        let body = to_json(&saved)?;
        let name = channel.name.trim().to_lowercase();
        retry!(self, async {
            let done = if channel.version == 0 {
                sqlx::query(
                    "INSERT INTO cw_channels (id, name, version, created_at, doc)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(channel.id.as_uuid())
                .bind(&name)
                .bind(version_i64(saved.version)?)
                .bind(channel.created_at)
                .bind(Json(&body))
                .execute(&self.pool())
                .await
            } else {
                sqlx::query(
                    "UPDATE cw_channels SET name = $2, version = $3, doc = $4
                     WHERE id = $1 AND version = $5",
                )
                .bind(channel.id.as_uuid())
                .bind(&name)
                .bind(version_i64(saved.version)?)
                .bind(Json(&body))
                .bind(version_i64(channel.version)?)
                .execute(&self.pool())
                .await
            };
            let done = done.map_err(|e| {
                let f = Fail::from(e);
                if sqlstate(&f).as_deref() == Some("23505") {
                    Error::AlreadyExists {
                        what: "sales channel",
                        value: channel.name.clone(),
                    }
                    .into()
                } else {
                    f
                }
            })?;
            if done.rows_affected() == 1 {
                return Ok(saved.clone());
            }
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM cw_channels WHERE id = $1")
                .bind(channel.id.as_uuid())
                .fetch_optional(&self.pool())
                .await?;
            Err(match exists {
                Some(_) => Error::Conflict("sales channel"),
                None => Error::not_found("sales channel", channel.id),
            }
            .into())
        })
    }

    async fn channel(&self, id: ChannelId) -> Result<SalesChannel> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_channels WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool())
                .await?
                .ok_or_else(|| Error::not_found("sales channel", id))?;
            doc(&row, "doc", "sales channel")
        })
    }

    async fn channels(&self) -> Result<Vec<SalesChannel>> {
        let limit = limit_i64(crate::store::MAX_PAGE_SIZE)?;
        retry!(self, async {
            let rows =
                sqlx::query("SELECT doc FROM cw_channels ORDER BY doc->>'name', id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool())
                    .await?;
            rows.iter()
                .map(|r| doc(r, "doc", "sales channel"))
                .collect()
        })
    }
}
