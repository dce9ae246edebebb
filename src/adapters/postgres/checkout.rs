//! The PostgreSQL store: checkout.

use super::*;

pub(super) fn checkout_from_row(row: &PgRow) -> Try<CheckoutRecord> {
    let e = "checkout";
    let state: String = col(row, "state", e)?;
    let order_id: Option<Uuid> = col(row, "order_id", e)?;
    let failure: Option<Json<CheckoutFailure>> = col(row, "failure", e)?;
    let state = match (state.as_str(), order_id, failure) {
        ("in_progress", _, _) => CheckoutState::InProgress,
        ("awaiting_payment", _, _) => CheckoutState::AwaitingPayment,
        ("retryable", _, _) => CheckoutState::Retryable,
        ("completed", Some(o), _) => CheckoutState::Completed {
            order_id: OrderId::from_uuid(o),
        },
        ("failed", _, Some(Json(f))) => CheckoutState::Failed { failure: f },
        (other, _, _) => return Err(corrupt(e, format!("impossible state {other}"))),
    };
    let key: String = col(row, "key", e)?;
    let attempt: i32 = col(row, "attempt", e)?;
    Ok(CheckoutRecord {
        key: IdempotencyKey::new(key).map_err(|err| corrupt(e, err))?,
        cart_id: CartId::from_uuid(col(row, "cart_id", e)?),
        payment_token: col(row, "payment_token", e)?,
        attempt: u32::try_from(attempt).map_err(|_| corrupt(e, "attempt out of range"))?,
        state,
        reservation_id: col::<Option<Uuid>>(row, "reservation_id", e)?
            .map(ReservationId::from_uuid),
        lease_token: col(row, "lease_token", e)?,
        lease_until: col(row, "lease_until", e)?,
        created_at: col(row, "created_at", e)?,
        awaiting: col::<Option<Json<AwaitingPayment>>>(row, "awaiting", e)?
            .map(|Json(a)| Box::new(a)),
    })
}

pub(super) fn attempt_i32(attempt: u32) -> Result<i32> {
    i32::try_from(attempt).map_err(|_| Error::Overflow("checkout attempts"))
}

impl PgStore {
    pub(super) async fn begin_try(&self, b: &BeginCheckout) -> Try<CheckoutClaim> {
        let token = Uuid::new_v4();
        let inserted: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO cw_checkouts (key, cart_id, payment_token, attempt, state, lease_token, lease_until, created_at)
             VALUES ($1, $2, $3, 1, 'in_progress', $4, $5, $6)
             ON CONFLICT (key) DO NOTHING RETURNING lease_token",
        )
        .bind(b.key.as_str())
        .bind(b.cart_id.as_uuid())
        .bind(&b.payment_token)
        .bind(token)
        .bind(b.lease_until)
        .bind(b.now)
        .fetch_optional(&self.pool())
        .await?;
        if inserted.is_some() {
            return Ok(CheckoutClaim::Claimed(Lease {
                key: b.key.clone(),
                token,
                attempt: 1,
            }));
        }
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("SELECT * FROM cw_checkouts WHERE key = $1 FOR UPDATE")
            .bind(b.key.as_str())
            .fetch_optional(&mut *tx)
            .await?
            // Deleted between the two statements (an untouched attempt ended): try again.
            .ok_or_else(|| Error::Conflict("checkout"))?;
        let record = checkout_from_row(&row)?;
        if record.cart_id != b.cart_id || record.payment_token != b.payment_token {
            return Err(Error::IdempotencyConflict(b.key.to_string()).into());
        }
        let claim = match record.state {
            CheckoutState::Completed { order_id } => CheckoutClaim::Completed(order_id),
            CheckoutState::Failed { failure } => CheckoutClaim::Failed(failure),
            CheckoutState::InProgress => CheckoutClaim::InProgress {
                lease_until: record.lease_until,
            },
            CheckoutState::AwaitingPayment => match record.awaiting {
                Some(a) => CheckoutClaim::AwaitingPayment(Box::new(a.session)),
                None => return Err(corrupt("checkout", "waiting without its payment")),
            },
            CheckoutState::Retryable => {
                let attempt = record
                    .attempt
                    .checked_add(1)
                    .ok_or_else(|| Error::Overflow("checkout attempts"))?;
                sqlx::query(
                    "UPDATE cw_checkouts SET attempt = $2, state = 'in_progress', lease_token = $3, lease_until = $4
                     WHERE key = $1",
                )
                .bind(b.key.as_str())
                .bind(attempt_i32(attempt)?)
                .bind(token)
                .bind(b.lease_until)
                .execute(&mut *tx)
                .await?;
                CheckoutClaim::Claimed(Lease {
                    key: b.key.clone(),
                    token,
                    attempt,
                })
            }
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Locks the checkout row if `lease` still holds it; returns its reservation.
    pub(super) async fn leased(tx: &mut PgConnection, lease: &Lease) -> Try<(Option<Uuid>, i32)> {
        let row: Option<(Option<Uuid>, i32)> = sqlx::query_as(
            "SELECT reservation_id, attempt FROM cw_checkouts
             WHERE key = $1 AND lease_token = $2 AND state = 'in_progress' FOR UPDATE",
        )
        .bind(lease.key.as_str())
        .bind(lease.token)
        .fetch_optional(&mut *tx)
        .await?;
        row.ok_or(Fail::Domain(Error::LeaseLost))
    }

    pub(super) async fn reserve_for_checkout_try(
        &self,
        lease: &Lease,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Try<Reservation> {
        let mut tx = self.pool().begin().await?;
        let (previous, _) = Self::leased(&mut tx, lease).await?;
        if let Some(prev) = previous {
            release_tx(&mut tx, &[prev]).await?;
        }
        let r = reserve_tx(&mut tx, requests, claims, Some(&lease.key), expires_at, now).await?;
        tx.commit().await?;
        Ok(r)
    }

    pub(super) async fn place_try(
        &self,
        lease: &Lease,
        order: &Order,
        now: DateTime<Utc>,
    ) -> Try<Order> {
        let body = json_text(order)?;
        let mut events = order.placed_events().into_iter();
        let placed_event = events
            .next()
            .ok_or_else(|| corrupt("order", "placing it records no event"))?;
        let event = to_json(&placed_event)?;
        // The events after the first (the provider's authorization).
        let more: Vec<_> = events.map(|k| to_json(&k).map(Json)).collect::<Try<_>>()?;
        let more_ids: Vec<Uuid> = more.iter().map(|_| EventId::new().as_uuid()).collect();
        let now_json = to_json(&now)?;
        // One call of `cw_place_order` (migration 0015): every write is
        // gated on the lease, the live reservation and the cart's version,
        // so it all happens or none does. The events after the first are
        // inserted in the same statement, from its one row: they cannot be
        // written without the order, and come after its first event.
        let sql = if more.is_empty() {
            "SELECT cw_place_order($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::json, $13, $14, $15, $16, $17)"
        } else {
            "WITH placed AS MATERIALIZED (
                 SELECT cw_place_order($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::json, $13, $14, $15, $16, $17) AS done
             )
             INSERT INTO cw_events (id, occurred_at, kind)
             SELECT u.e, $3, u.k FROM placed CROSS JOIN LATERAL
                 unnest($18::uuid[], $19::jsonb[]) WITH ORDINALITY AS u(e, k, n)
             ORDER BY u.n"
        };
        let query = sqlx::query(sql)
            .bind(lease.key.as_str())
            .bind(lease.token)
            .bind(now)
            .bind(order.reservation_id.as_uuid())
            .bind(order.id.as_uuid())
            .bind(Json(&now_json))
            .bind(order.cart_id.as_uuid())
            .bind(version_i64(order.pricing.cart_version)?)
            .bind(order.customer_id.map(|c| c.as_uuid()))
            .bind(order.pricing.currency.code())
            .bind(order.total().amount())
            .bind(&body)
            .bind(EventId::new().as_uuid())
            .bind(Json(&event))
            .bind(&order.payment.reference)
            .bind(order.has_pending_work())
            .bind(order.email().map(|e| e.as_str()));
        let query = if more.is_empty() {
            query
        } else {
            query.bind(&more_ids).bind(&more)
        };
        let placed = query.execute(&self.pool()).await;
        // Nothing was written when it raised: find out why.
        let Err(e) = placed else {
            return Ok(order.clone());
        };
        let fail = Fail::from(e);
        match sqlstate(&fail).as_deref() {
            Some("CW003") => Err(self.why_not_leased(lease, order, now).await?.into()),
            Some("CW004") => Err(self.why_cart_refused(order).await?.into()),
            _ => Err(fail),
        }
    }

    pub(super) async fn why_not_leased(
        &self,
        lease: &Lease,
        order: &Order,
        now: DateTime<Utc>,
    ) -> Try<Error> {
        let row = sqlx::query(
            "SELECT c.state, c.lease_token, c.reservation_id, r.state AS r_state, r.expires_at
             FROM cw_checkouts c LEFT JOIN cw_reservations r ON r.id = c.reservation_id WHERE c.key = $1",
        )
        .bind(lease.key.as_str())
        .fetch_optional(&self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Error::LeaseLost);
        };
        let state: String = col(&row, "state", "checkout")?;
        let token: Uuid = col(&row, "lease_token", "checkout")?;
        if state != "in_progress" || token != lease.token {
            return Ok(Error::LeaseLost);
        }
        let reservation: Option<Uuid> = col(&row, "reservation_id", "checkout")?;
        match reservation {
            None => Ok(Error::ReservationExpired),
            Some(r) if r != order.reservation_id.as_uuid() => Ok(Error::invalid(
                "order",
                "does not carry the checkout's reservation",
            )),
            Some(_) => {
                let r_state: Option<String> = col(&row, "r_state", "reservation")?;
                let expires: Option<DateTime<Utc>> = col(&row, "expires_at", "reservation")?;
                if r_state.as_deref() != Some("pending") || expires.is_none_or(|e| e <= now) {
                    Ok(Error::ReservationExpired)
                } else {
                    Ok(Error::Conflict("checkout"))
                }
            }
        }
    }

    pub(super) async fn why_cart_refused(&self, order: &Order) -> Try<Error> {
        let row = sqlx::query("SELECT active, version FROM cw_carts WHERE id = $1")
            .bind(order.cart_id.as_uuid())
            .fetch_optional(&self.pool())
            .await?;
        let Some(row) = row else {
            return Ok(Error::not_found("cart", order.cart_id));
        };
        if !col::<bool>(&row, "active", "cart")? {
            return Ok(Error::CartNotActive {
                cart_id: order.cart_id,
            });
        }
        if let Some(c) = order.customer_id {
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM cw_customers WHERE id = $1")
                    .bind(c.as_uuid())
                    .fetch_optional(&self.pool())
                    .await?;
            if exists.is_none() {
                return Ok(Error::UnknownCustomer(c));
            }
        }
        Ok(Error::Conflict("cart"))
    }

    pub(super) async fn end_try(&self, lease: &Lease, end: &CheckoutEnd) -> Try<()> {
        let mut tx = self.pool().begin().await?;
        let (reservation, attempt) = Self::leased(&mut tx, lease).await?;
        if matches!(end, CheckoutEnd::Untouched) && reservation.is_none() && attempt == 1 {
            sqlx::query("DELETE FROM cw_checkouts WHERE key = $1")
                .bind(lease.key.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(());
        }
        if let Some(r) = reservation {
            release_tx(&mut tx, &[r]).await?;
        }
        let (state, failure, attempt) = match end {
            CheckoutEnd::Failed(f) => ("failed", Some(to_json(f)?), attempt),
            CheckoutEnd::Retryable => ("retryable", None, attempt),
            CheckoutEnd::Untouched if reservation.is_none() => {
                ("retryable", None, (attempt - 1).max(1))
            }
            CheckoutEnd::Untouched => ("retryable", None, attempt),
        };
        sqlx::query(
            "UPDATE cw_checkouts SET state = $2, failure = $3, reservation_id = NULL, attempt = $4,
                    awaiting = NULL
             WHERE key = $1",
        )
        .bind(lease.key.as_str())
        .bind(state)
        .bind(failure.map(Json))
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl PgStore {
    /// One attempt of [`CheckoutStore::begin_and_reserve`]: one call of the
    /// server-side function `cw_begin_and_reserve` (migrations 0004, 0005, 0014).
    pub(super) async fn begin_and_reserve_try(
        &self,
        b: &BeginCheckout,
        tracked: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
    ) -> Try<Option<(Lease, Reservation)>> {
        let token = Uuid::new_v4();
        let id = ReservationId::new();
        let to_i64 = |n: u64| i64::try_from(n).map_err(|_| Error::Overflow("usage claim"));
        let answer: std::result::Result<Option<Vec<Uuid>>, sqlx::Error> = sqlx::query_scalar(
            "SELECT cw_begin_and_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(b.key.as_str())
        .bind(b.cart_id.as_uuid())
        .bind(&b.payment_token)
        .bind(token)
        .bind(b.lease_until)
        .bind(b.now)
        .bind(id.as_uuid())
        .bind(expires_at)
        .bind(
            tracked
                .iter()
                .map(|r| r.variant_id.as_uuid())
                .collect::<Vec<_>>(),
        )
        .bind(
            tracked
                .iter()
                .map(|r| r.location.map(|l| l.as_uuid()))
                .collect::<Vec<_>>(),
        )
        .bind(
            tracked
                .iter()
                .map(|r| i64::from(r.quantity))
                .collect::<Vec<_>>(),
        )
        .bind(claims.iter().map(|c| c.counter.clone()).collect::<Vec<_>>())
        .bind(
            claims
                .iter()
                .map(|c| to_i64(c.amount))
                .collect::<Result<Vec<_>>>()?,
        )
        .bind(
            claims
                .iter()
                .map(|c| to_i64(c.limit))
                .collect::<Result<Vec<_>>>()?,
        )
        .fetch_one(&self.pool())
        .await;
        let locations = match answer {
            Ok(Some(locations)) => locations,
            Ok(None) => return Err(corrupt("checkout", "no answer from cw_begin_and_reserve")),
            // The key exists (23505), the stock is short (CW001) or a usage
            // limit would be passed (CW002): nothing was written.
            Err(sqlx::Error::Database(d))
                if matches!(d.code().as_deref(), Some("23505" | "CW001" | "CW002")) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if locations.len() != tracked.len() {
            return Err(corrupt("reservation", "one location per line expected"));
        }
        let lines = tracked
            .iter()
            .zip(locations)
            .map(|(r, location)| ReservationLine {
                variant_id: r.variant_id,
                location_id: LocationId::from_uuid(location),
                quantity: r.quantity,
            })
            .collect();
        let lease = Lease {
            key: b.key.clone(),
            token,
            attempt: 1,
        };
        let reservation = Reservation {
            id,
            checkout_key: Some(b.key.clone()),
            lines,
            claims: claims.to_vec(),
            state: ReservationState::Pending { expires_at },
            created_at: b.now,
        };
        Ok(Some((lease, reservation)))
    }
}

#[async_trait]
impl CheckoutStore for PgStore {
    async fn begin_and_reserve(
        &self,
        begin: BeginCheckout,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
    ) -> Result<Option<(Lease, Reservation)>> {
        if expires_at <= begin.now {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let merged = crate::inventory::merge_requests(requests)?;
        // A channel's locations, and backorders that may need a fallback
        // location: the general path.
        if merged.iter().any(|r| {
            r.channel.is_some()
                || r.policy
                    == (crate::catalog::InventoryPolicy::Tracked {
                        allow_backorder: true,
                    })
        }) {
            return Ok(None);
        }
        let mut tracked: Vec<StockRequest> = merged
            .into_iter()
            .filter(|r| r.policy != crate::catalog::InventoryPolicy::Untracked)
            .collect();
        // Locked in id order, as the general path locks.
        tracked.sort_by_key(|r| (r.variant_id, r.location));
        let claims = crate::inventory::merge_claims(claims)?;
        let _permit = self.reservation_permit().await?;
        retry!(
            self,
            self.begin_and_reserve_try(&begin, &tracked, &claims, expires_at)
        )
    }

    async fn begin_checkout(&self, begin: BeginCheckout) -> Result<CheckoutClaim> {
        let mut tries = 0;
        loop {
            match retry!(self, self.begin_try(&begin)) {
                // The record vanished between two statements; look again.
                Err(Error::Conflict("checkout")) if tries < self.retries => tries += 1,
                other => return other,
            }
        }
    }

    async fn reserve_for_checkout(
        &self,
        lease: &Lease,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        let _permit = self.reservation_permit().await?;
        retry!(
            self,
            self.reserve_for_checkout_try(lease, requests, claims, expires_at, now)
        )
    }

    async fn place_order(&self, lease: &Lease, order: Order, now: DateTime<Utc>) -> Result<Order> {
        retry!(self, async {
            self.place_try(lease, &order, now).await.map_err(|f| {
                if sqlstate(&f).as_deref() == Some("23505") {
                    Error::AlreadyExists {
                        what: "order",
                        value: order.id.to_string(),
                    }
                    .into()
                } else {
                    f
                }
            })
        })
    }

    async fn end_checkout(
        &self,
        lease: &Lease,
        end: CheckoutEnd,
        _now: DateTime<Utc>,
    ) -> Result<()> {
        retry!(self, self.end_try(lease, &end))
    }

    async fn checkout(&self, key: &IdempotencyKey) -> Result<Option<CheckoutRecord>> {
        retry!(self, async {
            let row = sqlx::query("SELECT * FROM cw_checkouts WHERE key = $1")
                .bind(key.as_str())
                .fetch_optional(&self.pool())
                .await?;
            row.as_ref().map(checkout_from_row).transpose()
        })
    }

    async fn prune_checkouts(&self, before: DateTime<Utc>) -> Result<u64> {
        retry!(self, async {
            let done = sqlx::query(
                "DELETE FROM cw_checkouts WHERE created_at < $1
                 AND state NOT IN ('in_progress', 'awaiting_payment')",
            )
            .bind(before)
            .execute(&self.pool())
            .await?;
            Ok(done.rows_affected())
        })
    }

    async fn stale_checkouts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CheckoutRecord>> {
        let limit = limit_i64(limit)?;
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT * FROM cw_checkouts
                 WHERE state IN ('in_progress', 'awaiting_payment') AND lease_until <= $1
                 ORDER BY lease_until, key LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool())
            .await?;
            rows.iter().map(checkout_from_row).collect::<Try<Vec<_>>>()
        })
    }

    async fn claim_stale(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        retry!(self, async {
            let token = Uuid::new_v4();
            let attempt: Option<i32> = sqlx::query_scalar(
                "UPDATE cw_checkouts SET state = 'in_progress', lease_token = $2, lease_until = $3
                 WHERE key = $1 AND state IN ('in_progress', 'awaiting_payment')
                   AND lease_until <= $4
                 RETURNING attempt",
            )
            .bind(key.as_str())
            .bind(token)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(&self.pool())
            .await?;
            attempt
                .map(|a| {
                    Ok(Lease {
                        key: key.clone(),
                        token,
                        attempt: u32::try_from(a)
                            .map_err(|_| corrupt("checkout", "attempt out of range"))?,
                    })
                })
                .transpose()
        })
    }

    async fn fence_checkout(&self, lease: &Lease, lease_until: DateTime<Utc>) -> Result<()> {
        retry!(self, async {
            let fenced = sqlx::query(
                "UPDATE cw_checkouts SET awaiting = NULL, lease_until = $3
                 WHERE key = $1 AND lease_token = $2 AND state = 'in_progress'",
            )
            .bind(lease.key.as_str())
            .bind(lease.token)
            .bind(lease_until)
            .execute(&self.pool())
            .await?;
            if fenced.rows_affected() == 1 {
                Ok(())
            } else {
                Err(Error::LeaseLost.into())
            }
        })
    }

    async fn await_payment(
        &self,
        lease: &Lease,
        awaiting: &AwaitingPayment,
        until: DateTime<Utc>,
        hold_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let body = to_json(awaiting)?;
        let event = [awaiting.event()];
        retry!(self, async {
            let mut tx = self.pool().begin().await?;
            let (reservation, _) = Self::leased(&mut tx, lease).await?;
            let reservation = reservation.ok_or(Fail::Domain(Error::ReservationExpired))?;
            let kept = sqlx::query(
                "UPDATE cw_reservations SET expires_at = greatest(expires_at, $2)
                 WHERE id = $1 AND state = 'pending'",
            )
            .bind(reservation)
            .bind(hold_until)
            .execute(&mut *tx)
            .await?;
            if kept.rows_affected() != 1 {
                return Err(Error::ReservationExpired.into());
            }
            sqlx::query(
                "UPDATE cw_checkouts SET state = 'awaiting_payment', lease_until = $2,
                        awaiting = $3, payment_reference = $4
                 WHERE key = $1",
            )
            .bind(lease.key.as_str())
            .bind(until)
            .bind(Json(&body))
            .bind(&awaiting.session.reference)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                let f = Fail::from(e);
                if sqlstate(&f).as_deref() == Some("23505") {
                    Error::AlreadyExists {
                        what: "payment session",
                        value: awaiting.session.reference.clone(),
                    }
                    .into()
                } else {
                    f
                }
            })?;
            insert_events(&mut tx, &event, now).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn claim_awaiting(
        &self,
        key: &IdempotencyKey,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<(Lease, AwaitingPayment)>> {
        retry!(self, async {
            let token = Uuid::new_v4();
            let row: Option<(i32, Option<Json<AwaitingPayment>>)> = sqlx::query_as(
                "UPDATE cw_checkouts SET state = 'in_progress', lease_token = $2, lease_until = $3
                 WHERE key = $1 AND state = 'awaiting_payment'
                 RETURNING attempt, awaiting",
            )
            .bind(key.as_str())
            .bind(token)
            .bind(lease_until)
            .fetch_optional(&self.pool())
            .await?;
            let Some((attempt, awaiting)) = row else {
                return Ok(None);
            };
            let Json(awaiting) =
                awaiting.ok_or_else(|| corrupt("checkout", "waiting without its payment"))?;
            let attempt =
                u32::try_from(attempt).map_err(|_| corrupt("checkout", "attempt out of range"))?;
            Ok(Some((
                Lease {
                    key: key.clone(),
                    token,
                    attempt,
                },
                awaiting,
            )))
        })
    }

    async fn checkout_by_payment_reference(
        &self,
        reference: &str,
    ) -> Result<Option<CheckoutRecord>> {
        retry!(self, async {
            let row = sqlx::query("SELECT * FROM cw_checkouts WHERE payment_reference = $1")
                .bind(reference)
                .fetch_optional(&self.pool())
                .await?;
            row.as_ref().map(checkout_from_row).transpose()
        })
    }
}
