//! The PostgreSQL store: carts.

use super::*;

pub(super) fn cart_from_row(row: &PgRow) -> Try<Cart> {
    let cart: Cart = doc(row, "doc", "cart")?;
    let version: i64 = col(row, "version", "cart")?;
    let active: bool = col(row, "active", "cart")?;
    if u64::try_from(version).ok() != Some(cart.version())
        || active != (cart.status() == CartStatus::Active)
    {
        return Err(corrupt("cart", "columns disagree with the document"));
    }
    Ok(cart)
}

/// Pricing inputs from rows of three kinds: 0 a variant with its
/// product's summary, 1 a coupon, 2 the pricing version.
pub(super) fn pricing_inputs_from_rows(rows: Vec<PgRow>) -> Try<PricingInputs> {
    let mut out = PricingInputs::default();
    let mut version = None;
    for row in rows {
        let kind: i32 = col(&row, "kind", "pricing inputs")?;
        match kind {
            0 => {
                let variant: crate::catalog::Variant = doc(&row, "variant", "variant")?;
                let summary: ProductSummary = doc(&row, "summary", "product")?;
                let mut entry = summary.entry(variant);
                // The variant's stock locations; with exactly one, checkout
                // takes stock there without looking (with several, commit 1
                // finds the first by priority itself).
                entry.stock_location = match col::<Option<Vec<Uuid>>>(
                    &row,
                    "stock_locations",
                    "variant",
                )?
                .as_deref()
                {
                    Some([only]) => Some(LocationId::from_uuid(*only)),
                    _ => None,
                };
                out.entries.insert(entry.variant.id(), entry);
            }
            1 => out.coupons.push(coupon_from_row(&row)?),
            _ => {
                let v: i64 = col(&row, "version", "pricing version")?;
                version =
                    Some(u64::try_from(v).map_err(|_| corrupt("pricing version", "negative"))?);
            }
        }
    }
    out.version = version.ok_or_else(|| corrupt("pricing version", "missing row"))?;
    Ok(out)
}

pub(super) fn cart_error(f: Fail, cart: &Cart) -> Fail {
    match sqlstate(&f).as_deref() {
        Some("23503") => match cart.customer_id() {
            Some(c) => Error::UnknownCustomer(c).into(),
            None => f,
        },
        Some("23505") => Error::AlreadyExists {
            what: "cart",
            value: cart.id().to_string(),
        }
        .into(),
        _ => f,
    }
}

impl PgStore {
    /// [`CustomerStore::erase_customer`] in one transaction: the customer's
    /// row locked, then its carts and orders (by account or by email), each
    /// rewritten through the domain's erasure.
    pub(super) async fn use_account_token_try(
        &self,
        customer: CustomerId,
        presented: &str,
        change: &AccountChange,
        now: DateTime<Utc>,
    ) -> Try<Customer> {
        let mut tx = self.pool().begin().await?;
        // The customer's row lock orders every use of its tokens: racing
        // guesses are counted one after the other, a right one wins once.
        let Some(row) = sqlx::query("SELECT * FROM cw_customers WHERE id = $1 FOR UPDATE")
            .bind(customer.as_uuid())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Err(Error::InvalidToken.into());
        };
        let stored = customer_from_row(&row)?;
        let Some(row) = sqlx::query(
            "SELECT * FROM cw_account_tokens WHERE customer_id = $1 AND purpose = $2
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(customer.as_uuid())
        .bind(change.purpose().name())
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Err(Error::InvalidToken.into());
        };
        let seq: i64 = col(&row, "seq", "account token")?;
        let mut token = account_token_from_row(&row)?;
        match token.check(&stored, presented, now) {
            crate::customer::TokenCheck::Accepted => {}
            crate::customer::TokenCheck::Wrong => {
                sqlx::query("UPDATE cw_account_tokens SET attempts = $2 WHERE seq = $1")
                    .bind(seq)
                    .bind(i32::try_from(token.attempts()).unwrap_or(i32::MAX))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Err(Error::InvalidToken.into());
            }
            _ => return Err(Error::InvalidToken.into()),
        }
        let mut next = stored.clone();
        change.apply(&mut next, &token)?;
        next.saved()?;
        if !update_customer(&mut tx, &next, version_i64(stored.version())?).await? {
            return Err(Error::Conflict("customer").into());
        }
        sqlx::query("DELETE FROM cw_account_tokens WHERE customer_id = $1 AND purpose = $2")
            .bind(customer.as_uuid())
            .bind(change.purpose().name())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(next)
    }

    pub(super) async fn erase_customer_try(
        &self,
        id: CustomerId,
        now: DateTime<Utc>,
    ) -> Try<crate::store::Erasure> {
        let mut tx = self.pool().begin().await?;
        // A payment still waiting keeps the order it will place: lock those
        // checkouts first (checkouts come first in the lock order).
        let waiting = sqlx::query(
            "SELECT key, awaiting FROM cw_checkouts
             WHERE awaiting IS NOT NULL
               AND (awaiting->'order'->>'customer_id' = $1
                    OR awaiting->'order'->>'email' = (SELECT email FROM cw_customers WHERE id = $2))
             ORDER BY key FOR UPDATE",
        )
        .bind(id.as_uuid().to_string())
        .bind(id.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT * FROM cw_customers WHERE id = $1 FOR UPDATE")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("customer", id))?;
        let mut customer = customer_from_row(&row)?;
        if customer.erased() {
            return Ok(crate::store::Erasure {
                customer,
                carts: 0,
                orders: 0,
            });
        }
        let old = customer.email().as_str().to_owned();
        let erased = crate::customer::erased_email(id);
        customer.erase();
        customer.saved()?;
        sqlx::query(
            "UPDATE cw_customers SET email = $2, version = $3, password_hash = NULL, doc = $4
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(customer.email().as_str())
        .bind(version_i64(customer.version())?)
        .bind(Json(to_json(&customer)?))
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT id, active, version, doc FROM cw_carts
             WHERE customer_id = $1 OR doc->>'email' = $2 ORDER BY id FOR UPDATE",
        )
        .bind(id.as_uuid())
        .bind(&old)
        .fetch_all(&mut *tx)
        .await?;
        let carts = rows.len() as u64;
        for row in rows {
            let mut cart = cart_from_row(&row)?;
            cart.erase_personal_data();
            cart.saved(now)?;
            sqlx::query(
                "UPDATE cw_carts SET version = $2, updated_at = $3, doc = $4 WHERE id = $1",
            )
            .bind(cart.id().as_uuid())
            .bind(version_i64(cart.version())?)
            .bind(now)
            .bind(Json(to_json(&cart)?))
            .execute(&mut *tx)
            .await?;
        }
        let rows = sqlx::query(
            "SELECT total, doc FROM cw_orders
             WHERE customer_id = $1 OR email = $2 ORDER BY id FOR UPDATE",
        )
        .bind(id.as_uuid())
        .bind(&old)
        .fetch_all(&mut *tx)
        .await?;
        let orders = rows.len() as u64;
        for row in rows {
            let mut order = order_from_row(&row)?;
            order.erase_personal_data(&erased);
            order.saved()?;
            sqlx::query("UPDATE cw_orders SET doc = $2::json, email = $3 WHERE id = $1")
                .bind(order.id().as_uuid())
                .bind(json_text(&order)?)
                .bind(order.email().map(|e| e.as_str().to_owned()))
                .execute(&mut *tx)
                .await?;
        }
        // Agent sessions of the buyer's e-mail or over an erased cart.
        let rows = sqlx::query(
            "SELECT s.doc FROM cw_agent_sessions s
             WHERE lower(s.doc->'buyer'->>'email') = lower($2)
                OR s.cart_id IN (SELECT id FROM cw_carts WHERE customer_id = $1 OR doc->>'email' = $2)
             ORDER BY s.id FOR UPDATE OF s",
        )
        .bind(id.as_uuid())
        .bind(&old)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let mut session: crate::agent::AgentSession = doc(&row, "doc", "agent session")?;
            session.erase_personal_data();
            sqlx::query("UPDATE cw_agent_sessions SET version = $2, doc = $3 WHERE id = $1")
                .bind(session.id.as_uuid())
                .bind(version_i64(session.version)?)
                .bind(Json(to_json(&session)?))
                .execute(&mut *tx)
                .await?;
        }
        for row in waiting {
            let key: String = col(&row, "key", "checkout")?;
            let Json(mut awaiting): Json<AwaitingPayment> = col(&row, "awaiting", "checkout")?;
            awaiting.erase_personal_data(&erased);
            sqlx::query("UPDATE cw_checkouts SET awaiting = $2 WHERE key = $1")
                .bind(&key)
                .bind(Json(to_json(&awaiting)?))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(crate::store::Erasure {
            customer,
            carts,
            orders,
        })
    }

    pub(super) async fn save_carts_try(
        &self,
        carts: &[Cart],
        now: DateTime<Utc>,
    ) -> Try<Vec<Cart>> {
        let mut tx = self.pool().begin().await?;
        let mut order: Vec<&Cart> = carts.iter().collect();
        order.sort_by_key(|c| c.id());
        let mut saved = Vec::with_capacity(carts.len());
        for cart in order {
            let mut next = cart.clone();
            next.saved(now)?;
            let updated = sqlx::query(
                "UPDATE cw_carts SET version = $3, customer_id = $4, active = $5, updated_at = $6, doc = $7
                 WHERE id = $1 AND version = $2 AND active",
            )
            .bind(cart.id().as_uuid())
            .bind(version_i64(cart.version())?)
            .bind(version_i64(next.version())?)
            .bind(next.customer_id().map(|c| c.as_uuid()))
            .bind(next.status() == CartStatus::Active)
            .bind(now)
            .bind(Json(to_json(&next)?))
            .execute(&mut *tx)
            .await
            .map_err(|e| cart_error(e.into(), cart))?;
            if updated.rows_affected() != 1 {
                let row = sqlx::query("SELECT active, version FROM cw_carts WHERE id = $1")
                    .bind(cart.id().as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
                return Err(match row {
                    None => Error::not_found("cart", cart.id()),
                    Some(r) if !col::<bool>(&r, "active", "cart")? => {
                        Error::CartNotActive { cart_id: cart.id() }
                    }
                    Some(_) => Error::Conflict("cart"),
                }
                .into());
            }
            saved.push(next);
        }
        tx.commit().await?;
        // Hand them back in the order they were given.
        let mut by_id: HashMap<CartId, Cart> = saved.into_iter().map(|c| (c.id(), c)).collect();
        Ok(carts.iter().filter_map(|c| by_id.remove(&c.id())).collect())
    }
}

#[async_trait]
impl CartStore for PgStore {
    async fn insert_cart(&self, cart: Cart) -> Result<()> {
        retry!(self, async {
            sqlx::query(
                "INSERT INTO cw_carts (id, customer_id, currency, active, version, updated_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(cart.id().as_uuid())
            .bind(cart.customer_id().map(|c| c.as_uuid()))
            .bind(cart.currency().code())
            .bind(cart.status() == CartStatus::Active)
            .bind(version_i64(cart.version())?)
            .bind(cart.updated_at())
            .bind(Json(to_json(&cart)?))
            .execute(&self.pool())
            .await
            .map(|_| ())
            .map_err(|e| cart_error(e.into(), &cart))
        })
    }

    async fn cart(&self, id: CartId) -> Result<Cart> {
        retry!(self, async {
            let row = sqlx::query("SELECT active, version, doc FROM cw_carts WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool())
                .await?
                .ok_or_else(|| Error::not_found("cart", id))?;
            cart_from_row(&row)
        })
    }

    async fn save_carts(&self, carts: Vec<Cart>, now: DateTime<Utc>) -> Result<Vec<Cart>> {
        retry!(self, self.save_carts_try(&carts, now))
    }

    async fn active_cart_for(
        &self,
        customer: CustomerId,
        currency: Currency,
    ) -> Result<Option<Cart>> {
        retry!(self, async {
            let row = sqlx::query(
                "SELECT active, version, doc FROM cw_carts
                 WHERE customer_id = $1 AND currency = $2 AND active
                 ORDER BY updated_at DESC, id DESC LIMIT 1",
            )
            .bind(customer.as_uuid())
            .bind(currency.code())
            .fetch_optional(&self.pool())
            .await?;
            row.as_ref().map(cart_from_row).transpose()
        })
    }
}
