//! The PostgreSQL store: giftcards.

use super::*;

#[async_trait]
impl GiftCardStore for PgStore {
    async fn insert_gift_card(&self, card: GiftCard) -> Result<()> {
        let body = to_json(&card)?;
        let events = EventKind::balance_changes(&card, 0)?;
        retry!(self, async {
            let mut tx = self.pool().begin().await?;
            sqlx::query(
                "INSERT INTO cw_gift_cards (id, code_hash, customer_id, currency, balance, version, created_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(card.id().as_uuid())
            .bind(card.code_hash())
            .bind(card.customer_id().map(|c| c.as_uuid()))
            .bind(card.currency().code())
            .bind(card.balance().amount())
            .bind(version_i64(card.version())?)
            .bind(card.created_at())
            .bind(Json(&body))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                let f = Fail::from(e);
                if sqlstate(&f).as_deref() == Some("23505") {
                    Error::AlreadyExists {
                        what: "gift card",
                        value: card.id().to_string(),
                    }
                    .into()
                } else {
                    f
                }
            })?;
            insert_events(&mut tx, &events, card.created_at()).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn gift_card(&self, id: GiftCardId) -> Result<GiftCard> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_gift_cards WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool())
                .await?
                .ok_or_else(|| Error::not_found("gift card", id))?;
            doc(&row, "doc", "gift card")
        })
    }

    async fn gift_card_by_code(&self, code_hash: &str) -> Result<Option<GiftCard>> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_gift_cards WHERE code_hash = $1")
                .bind(code_hash)
                .fetch_optional(&self.pool())
                .await?;
            row.map(|r| doc(&r, "doc", "gift card")).transpose()
        })
    }

    async fn gift_cards_of(&self, customer: CustomerId) -> Result<Vec<GiftCard>> {
        let limit = limit_i64(crate::store::MAX_PAGE_SIZE)?;
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT doc FROM cw_gift_cards WHERE customer_id = $1
                 ORDER BY created_at, id LIMIT $2",
            )
            .bind(customer.as_uuid())
            .bind(limit)
            .fetch_all(&self.pool())
            .await?;
            rows.iter().map(|r| doc(r, "doc", "gift card")).collect()
        })
    }

    async fn post_gift_card_entry(
        &self,
        id: GiftCardId,
        entry: NewEntry,
        now: DateTime<Utc>,
    ) -> Result<GiftCard> {
        retry!(self, async {
            let mut tx = self.pool().begin().await?;
            // The row lock serializes every entry on this card.
            let row = sqlx::query("SELECT doc FROM cw_gift_cards WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::not_found("gift card", id))?;
            let mut card: GiftCard = doc(&row, "doc", "gift card")?;
            let before = card.entries().len();
            if !card.post(entry.clone(), now)? {
                return Ok(card);
            }
            let events = EventKind::balance_changes(&card, before)?;
            let body = to_json(&card)?;
            sqlx::query(
                "UPDATE cw_gift_cards SET balance = $2, version = $3, doc = $4 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(card.balance().amount())
            .bind(version_i64(card.version())?)
            .bind(Json(&body))
            .execute(&mut *tx)
            .await?;
            insert_events(&mut tx, &events, now).await?;
            tx.commit().await?;
            Ok(card)
        })
    }

    async fn gift_card_entries_for(
        &self,
        reference: &str,
    ) -> Result<Vec<(GiftCardId, LedgerEntry)>> {
        let filter = serde_json::json!([{ "reference": reference }]).to_string();
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT doc FROM cw_gift_cards WHERE doc -> 'entries' @> $1::jsonb ORDER BY id",
            )
            .bind(&filter)
            .fetch_all(&self.pool())
            .await?;
            let mut found = Vec::new();
            for row in &rows {
                let card: GiftCard = doc(row, "doc", "gift card")?;
                found.extend(
                    card.entries()
                        .iter()
                        .filter(|e| e.reference == reference)
                        .map(|e| (card.id(), e.clone())),
                );
            }
            Ok(found)
        })
    }
}
