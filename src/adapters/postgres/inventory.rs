//! The PostgreSQL store: inventory.

use super::*;

pub(super) fn level_from_row(row: &PgRow) -> Try<StockLevel> {
    Ok(StockLevel {
        variant_id: VariantId::from_uuid(col(row, "variant_id", "stock")?),
        location_id: LocationId::from_uuid(col(row, "location_id", "stock")?),
        on_hand: col(row, "on_hand", "stock")?,
        reserved: col(row, "reserved", "stock")?,
    })
}

pub(super) fn stock_fk_error(f: Fail, variant: VariantId, location: LocationId) -> Fail {
    match constraint(&f).as_deref() {
        Some("cw_stock_variant_id_fkey") => Error::not_found("variant", variant).into(),
        Some("cw_stock_location_id_fkey") => Error::not_found("location", location).into(),
        _ => f,
    }
}

/// Locks stock rows of `variants` (sorted by variant, then location) and
/// returns them grouped per variant in reservation order.
pub(super) async fn lock_levels(
    tx: &mut PgConnection,
    variants: &[Uuid],
) -> Try<HashMap<VariantId, Vec<StockLevel>>> {
    if variants.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT s.variant_id, s.location_id, s.on_hand, s.reserved, l.priority
         FROM cw_stock s JOIN cw_locations l ON l.id = s.location_id
         WHERE s.variant_id = ANY($1)
         ORDER BY s.variant_id, s.location_id
         FOR UPDATE OF s",
    )
    .bind(variants)
    .fetch_all(&mut *tx)
    .await?;
    let mut grouped: HashMap<VariantId, Vec<(i32, StockLevel)>> = HashMap::new();
    for row in &rows {
        let level = level_from_row(row)?;
        let priority: i32 = col(row, "priority", "location")?;
        grouped
            .entry(level.variant_id)
            .or_default()
            .push((priority, level));
    }
    Ok(grouped
        .into_iter()
        .map(|(v, mut levels)| {
            levels.sort_by_key(|(p, l)| (*p, l.location_id));
            (v, levels.into_iter().map(|(_, l)| l).collect())
        })
        .collect())
}

/// Releases reservations (pending or allocated) and gives their units back.
/// Locks the reservations, then their stock rows in the fixed order.
pub(super) async fn release_tx(tx: &mut PgConnection, ids: &[Uuid]) -> Try<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let live: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM cw_reservations WHERE id = ANY($1) AND state IN ('pending', 'allocated')
         ORDER BY id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    if live.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "SELECT 1 FROM cw_stock s
         WHERE (s.variant_id, s.location_id) IN
               (SELECT u.v, u.l FROM cw_reservations r,
                       unnest(r.variant_ids, r.location_ids) AS u(v, l)
                 WHERE r.id = ANY($1))
         ORDER BY s.variant_id, s.location_id FOR UPDATE",
    )
    .bind(&live)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "SELECT 1 FROM cw_usage_counters
         WHERE counter IN (SELECT counter FROM cw_reservation_claims WHERE reservation_id = ANY($1))
         ORDER BY counter FOR UPDATE",
    )
    .bind(&live)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "WITH r AS (
             UPDATE cw_reservations SET state = 'released', expires_at = NULL, order_id = NULL
             WHERE id = ANY($1) RETURNING id, variant_ids, location_ids, quantities),
         uc AS (
             UPDATE cw_usage_counters c SET used = c.used - q.a
             FROM (SELECT cl.counter, sum(cl.amount) AS a FROM cw_reservation_claims cl
                   JOIN r ON r.id = cl.reservation_id GROUP BY 1) q
             WHERE c.counter = q.counter),
         q AS (
             SELECT u.v, u.l, sum(u.q) AS q
             FROM r, unnest(r.variant_ids, r.location_ids, r.quantities) AS u(v, l, q) GROUP BY 1, 2)
         UPDATE cw_stock s SET reserved = s.reserved - q.q
         FROM q WHERE s.variant_id = q.v AND s.location_id = q.l",
    )
    .bind(&live)
    .execute(&mut *tx)
    .await?;
    Ok(live.len() as u64)
}

/// Releases expired pending reservations that hold any of `variants`,
/// skipping those another transaction is working on.
pub(super) async fn release_expired_for(
    tx: &mut PgConnection,
    variants: &[Uuid],
    now: DateTime<Utc>,
) -> Try<u64> {
    let expired: Vec<Uuid> = sqlx::query_scalar(
        "SELECT r.id FROM cw_reservations r
         WHERE r.state = 'pending' AND r.expires_at <= $2
           AND r.variant_ids && $1
         ORDER BY r.id FOR UPDATE SKIP LOCKED",
    )
    .bind(variants)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    release_tx(tx, &expired).await
}

/// Plans and writes a reservation inside `tx`. With `checkout`, the
/// checkout record is pointed at it in the same statement.
pub(super) async fn reserve_tx(
    tx: &mut PgConnection,
    requests: &[StockRequest],
    claims: &[UsageClaim],
    checkout: Option<&IdempotencyKey>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Try<Reservation> {
    if expires_at <= now {
        return Err(Error::invalid("expires_at", "must be in the future").into());
    }
    let merged = merge_requests(requests)?;
    let mut tracked: Vec<Uuid> = merged
        .iter()
        .filter(|r| r.policy != crate::catalog::InventoryPolicy::Untracked)
        .map(|r| r.variant_id.as_uuid())
        .collect();
    tracked.sort();
    // A channel's requests are held only at its locations, read in this
    // transaction (a channel changed meanwhile waits for it).
    let channel = match merged.iter().find_map(|r| r.channel) {
        Some(c) => {
            let row = sqlx::query("SELECT doc FROM cw_channels WHERE id = $1 FOR SHARE")
                .bind(c.as_uuid())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::not_found("sales channel", c))?;
            Some(doc::<SalesChannel>(&row, "doc", "sales channel")?)
        }
        None => None,
    };
    let allowed = channel.as_ref().and_then(|c| c.locations.as_ref());
    let within =
        |levels: HashMap<VariantId, Vec<StockLevel>>| -> HashMap<VariantId, Vec<StockLevel>> {
            levels
                .into_iter()
                .map(|(v, l)| (v, crate::inventory::levels_within(&l, allowed)))
                .collect()
        };
    let mut levels = within(lock_levels(tx, &tracked).await?);
    let empty = Vec::new();
    let fallback = if merged
        .iter()
        .any(|r| needs_fallback(r, levels.get(&r.variant_id).unwrap_or(&empty)))
    {
        let ids: Option<Vec<Uuid>> = allowed.map(|a| a.iter().map(|l| l.as_uuid()).collect());
        sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM cw_locations WHERE ($1::uuid[] IS NULL OR id = ANY($1))
             ORDER BY priority, id LIMIT 1",
        )
        .bind(ids)
        .fetch_optional(&mut *tx)
        .await?
        .map(LocationId::from_uuid)
    } else {
        None
    };
    // A location a request is bound to must exist and be the channel's.
    let bound: Vec<Uuid> = merged
        .iter()
        .filter_map(|r| r.location.map(|l| l.as_uuid()))
        .collect();
    let existing: Vec<Uuid> = if bound.is_empty() {
        Vec::new()
    } else {
        sqlx::query_scalar("SELECT id FROM cw_locations WHERE id = ANY($1)")
            .bind(&bound)
            .fetch_all(&mut *tx)
            .await?
    };
    let usable =
        |l: LocationId| allowed.is_none_or(|a| a.contains(&l)) && existing.contains(&l.as_uuid());
    let plan = |levels: &HashMap<VariantId, Vec<StockLevel>>| -> Result<Vec<ReservationLine>> {
        crate::inventory::plan_requests(&merged, levels, fallback, usable)
    };
    let lines = match plan(&levels) {
        Ok(lines) => lines,
        Err(Error::OutOfStock { .. }) if release_expired_for(tx, &tracked, now).await? > 0 => {
            // Expired holds were in the way; count again without them.
            levels = within(lock_levels(tx, &tracked).await?);
            plan(&levels)?
        }
        Err(e) => return Err(e.into()),
    };

    let mut per_level: BTreeMap<(Uuid, Uuid), i64> = BTreeMap::new();
    for l in &lines {
        *per_level
            .entry((l.variant_id.as_uuid(), l.location_id.as_uuid()))
            .or_default() += i64::from(l.quantity);
    }
    let (sv, sl, sq): (Vec<Uuid>, Vec<Uuid>, Vec<i64>) = per_level
        .iter()
        .map(|((v, l), q)| (*v, *l, *q))
        .fold((vec![], vec![], vec![]), |mut acc, (v, l, q)| {
            acc.0.push(v);
            acc.1.push(l);
            acc.2.push(q);
            acc
        });
    let claims = merge_claims(claims)?;
    let counters: Vec<String> = claims.iter().map(|c| c.counter.clone()).collect();
    if !claims.is_empty() {
        // Make sure every counter has a row, then lock them in name order.
        sqlx::query("INSERT INTO cw_usage_counters (counter, used) SELECT unnest($1::text[]), 0 ON CONFLICT DO NOTHING")
            .bind(&counters)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT counter, used FROM cw_usage_counters WHERE counter = ANY($1) ORDER BY counter FOR UPDATE",
        )
        .bind(&counters)
        .fetch_all(&mut *tx)
        .await?;
        let used: HashMap<String, i64> = rows.into_iter().collect();
        for claim in &claims {
            let current = used.get(&claim.counter).copied().unwrap_or(0);
            let current =
                u64::try_from(current).map_err(|_| corrupt("usage counter", "negative"))?;
            apply_claim(claim, current)?;
        }
    }
    let reservation = Reservation {
        id: ReservationId::new(),
        checkout_key: checkout.cloned(),
        lines,
        claims,
        state: ReservationState::Pending { expires_at },
        created_at: now,
    };
    let amounts = reservation
        .claims
        .iter()
        .map(|c| i64::try_from(c.amount).map_err(|_| Error::Overflow("usage claim")))
        .collect::<Result<Vec<_>>>()?;
    let limits = reservation
        .claims
        .iter()
        .map(|c| i64::try_from(c.limit).map_err(|_| Error::Overflow("usage claim")))
        .collect::<Result<Vec<_>>>()?;
    sqlx::query(
        "WITH s AS (
             INSERT INTO cw_stock (variant_id, location_id, on_hand, reserved)
             SELECT v, l, 0, q FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u(v, l, q)
             ON CONFLICT (variant_id, location_id) DO UPDATE SET reserved = cw_stock.reserved + EXCLUDED.reserved),
         r AS (
             INSERT INTO cw_reservations (id, checkout_key, state, expires_at, created_at,
                                          variant_ids, location_ids, quantities)
             VALUES ($4, $5, 'pending', $6, $7, $8, $9, $10)),
         cl AS (
             INSERT INTO cw_reservation_claims (reservation_id, counter, amount, limit_value)
             SELECT $4, k, a, m FROM unnest($11::text[], $12::bigint[], $13::bigint[]) AS u(k, a, m)),
         uc AS (
             UPDATE cw_usage_counters c SET used = c.used + u.a
             FROM unnest($11::text[], $12::bigint[]) AS u(k, a) WHERE c.counter = u.k)
         UPDATE cw_checkouts SET reservation_id = $4 WHERE key = $5",
    )
    .bind(&sv)
    .bind(&sl)
    .bind(&sq)
    .bind(reservation.id.as_uuid())
    .bind(checkout.map(IdempotencyKey::as_str))
    .bind(expires_at)
    .bind(now)
    .bind(uuids(&reservation.lines, |l| l.variant_id.as_uuid()))
    .bind(uuids(&reservation.lines, |l| l.location_id.as_uuid()))
    .bind(reservation.lines.iter().map(|l| i64::from(l.quantity)).collect::<Vec<_>>())
    .bind(&counters)
    .bind(&amounts)
    .bind(&limits)
    .execute(&mut *tx)
    .await?;
    Ok(reservation)
}

/// A reservation's lines, kept inline as three arrays of one length
/// (migration 0014).
pub(super) fn reservation_lines(row: &PgRow) -> Try<Vec<ReservationLine>> {
    let variants: Vec<Uuid> = col(row, "variant_ids", "reservation")?;
    let locations: Vec<Uuid> = col(row, "location_ids", "reservation")?;
    let quantities: Vec<i64> = col(row, "quantities", "reservation")?;
    if variants.len() != locations.len() || variants.len() != quantities.len() {
        return Err(corrupt("reservation", "lines of unequal length"));
    }
    variants
        .into_iter()
        .zip(locations)
        .zip(quantities)
        .map(|((variant, location), quantity)| {
            Ok(ReservationLine {
                variant_id: VariantId::from_uuid(variant),
                location_id: LocationId::from_uuid(location),
                quantity: u32::try_from(quantity)
                    .map_err(|_| corrupt("reservation", "quantity out of range"))?,
            })
        })
        .collect()
}

pub(super) async fn load_reservation(
    conn: &mut PgConnection,
    id: ReservationId,
) -> Try<Reservation> {
    let row = sqlx::query(
        "SELECT checkout_key, state, expires_at, order_id, created_at,
                variant_ids, location_ids, quantities
         FROM cw_reservations WHERE id = $1",
    )
    .bind(id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found("reservation", id))?;
    let lines = reservation_lines(&row)?;
    let claims = sqlx::query(
        "SELECT counter, amount, limit_value FROM cw_reservation_claims
         WHERE reservation_id = $1 ORDER BY counter",
    )
    .bind(id.as_uuid())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let amount: i64 = col(r, "amount", "reservation")?;
        let limit: i64 = col(r, "limit_value", "reservation")?;
        Ok(UsageClaim {
            counter: col(r, "counter", "reservation")?,
            amount: u64::try_from(amount).map_err(|_| corrupt("reservation", "negative claim"))?,
            limit: u64::try_from(limit).map_err(|_| corrupt("reservation", "negative limit"))?,
        })
    })
    .collect::<Try<Vec<_>>>()?;
    let state: String = col(&row, "state", "reservation")?;
    let expires_at: Option<DateTime<Utc>> = col(&row, "expires_at", "reservation")?;
    let order_id: Option<Uuid> = col(&row, "order_id", "reservation")?;
    let state = match (state.as_str(), expires_at, order_id) {
        ("pending", Some(expires_at), _) => ReservationState::Pending { expires_at },
        ("allocated", _, Some(o)) => ReservationState::Allocated {
            order_id: OrderId::from_uuid(o),
        },
        ("committed", _, _) => ReservationState::Committed,
        ("released", _, _) => ReservationState::Released,
        (other, _, _) => return Err(corrupt("reservation", format!("impossible state {other}"))),
    };
    let key: Option<String> = col(&row, "checkout_key", "reservation")?;
    Ok(Reservation {
        id,
        checkout_key: key
            .map(IdempotencyKey::new)
            .transpose()
            .map_err(|e| corrupt("reservation", e))?,
        lines,
        claims,
        state,
        created_at: col(&row, "created_at", "reservation")?,
    })
}

impl PgStore {
    pub(super) async fn stock_try(&self, variant: VariantId) -> Try<StockSummary> {
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM cw_variants WHERE id = $1")
            .bind(variant.as_uuid())
            .fetch_optional(&self.pool())
            .await?;
        if exists.is_none() {
            return Err(Error::not_found("variant", variant).into());
        }
        let rows = sqlx::query(
            "SELECT s.variant_id, s.location_id, s.on_hand, s.reserved
             FROM cw_stock s JOIN cw_locations l ON l.id = s.location_id
             WHERE s.variant_id = $1 ORDER BY l.priority, l.id",
        )
        .bind(variant.as_uuid())
        .fetch_all(&self.pool())
        .await?;
        let levels = rows.iter().map(level_from_row).collect::<Try<Vec<_>>>()?;
        Ok(StockSummary::new(variant, levels))
    }

    pub(super) async fn adjust_try(
        &self,
        variant: VariantId,
        location: LocationId,
        delta: i64,
    ) -> Try<StockLevel> {
        let mut tx = self.pool().begin().await?;
        let current: Option<(i64, i64)> = sqlx::query_as(
            "SELECT on_hand, reserved FROM cw_stock WHERE variant_id = $1 AND location_id = $2 FOR UPDATE",
        )
        .bind(variant.as_uuid())
        .bind(location.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let (on_hand, reserved) = current.unwrap_or((0, 0));
        let next = crate::inventory::check_on_hand(
            on_hand
                .checked_add(delta)
                .ok_or_else(|| Error::Overflow("stock"))?,
        )?;
        sqlx::query(
            "INSERT INTO cw_stock (variant_id, location_id, on_hand, reserved) VALUES ($1, $2, $3, 0)
             ON CONFLICT (variant_id, location_id) DO UPDATE SET on_hand = EXCLUDED.on_hand",
        )
        .bind(variant.as_uuid())
        .bind(location.as_uuid())
        .bind(next)
        .execute(&mut *tx)
        .await
        .map_err(|e| stock_fk_error(e.into(), variant, location))?;
        tx.commit().await?;
        Ok(StockLevel {
            variant_id: variant,
            location_id: location,
            on_hand: next,
            reserved,
        })
    }

    pub(super) async fn release_try(&self, id: ReservationId) -> Try<Reservation> {
        let mut tx = self.pool().begin().await?;
        load_reservation(&mut tx, id).await?;
        release_tx(&mut tx, &[id.as_uuid()]).await?;
        let r = load_reservation(&mut tx, id).await?;
        tx.commit().await?;
        Ok(r)
    }

    pub(super) async fn commit_try(
        &self,
        id: ReservationId,
        now: DateTime<Utc>,
    ) -> Try<Reservation> {
        let mut tx = self.pool().begin().await?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM cw_reservations WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
        if state.is_none() {
            return Err(Error::not_found("reservation", id).into());
        }
        let r = load_reservation(&mut tx, id).await?;
        match r.state {
            ReservationState::Committed => return Ok(r),
            ReservationState::Released => return Err(Error::ReservationExpired.into()),
            ReservationState::Pending { expires_at } if expires_at <= now => {
                release_tx(&mut tx, &[id.as_uuid()]).await?;
                tx.commit().await?;
                return Err(Error::ReservationExpired.into());
            }
            ReservationState::Pending { .. } | ReservationState::Allocated { .. } => {}
        }
        sqlx::query(
            "SELECT 1 FROM cw_stock s
             WHERE (s.variant_id, s.location_id) IN
                   (SELECT u.v, u.l FROM cw_reservations r,
                           unnest(r.variant_ids, r.location_ids) AS u(v, l)
                     WHERE r.id = $1)
             ORDER BY s.variant_id, s.location_id FOR UPDATE",
        )
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "WITH r AS (
                 UPDATE cw_reservations SET state = 'committed', expires_at = NULL, order_id = NULL
                 WHERE id = $1 RETURNING variant_ids, location_ids, quantities),
             q AS (
                 SELECT u.v, u.l, sum(u.q) AS q
                 FROM r, unnest(r.variant_ids, r.location_ids, r.quantities) AS u(v, l, q)
                 GROUP BY 1, 2)
             UPDATE cw_stock s SET reserved = s.reserved - q.q, on_hand = s.on_hand - q.q
             FROM q WHERE s.variant_id = q.v AND s.location_id = q.l",
        )
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        let r = load_reservation(&mut tx, id).await?;
        tx.commit().await?;
        Ok(r)
    }

    pub(super) async fn release_expired_batch(&self, now: DateTime<Utc>) -> Try<u64> {
        let mut tx = self.pool().begin().await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM cw_reservations WHERE state = 'pending' AND expires_at <= $1
             ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let n = release_tx(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(n)
    }
}

#[async_trait]
impl InventoryStore for PgStore {
    async fn insert_location(&self, location: Location) -> Result<()> {
        let priority =
            i32::try_from(location.priority()).map_err(|_| Error::Overflow("priority"))?;
        retry!(self, async {
            let result =
                sqlx::query("INSERT INTO cw_locations (id, priority, doc) VALUES ($1, $2, $3)")
                    .bind(location.id().as_uuid())
                    .bind(priority)
                    .bind(Json(to_json(&location)?))
                    .execute(&self.pool())
                    .await;
            result
                .map(|_| ())
                .map_err(|e| already_exists(e.into(), "location", location.id().to_string()))
        })
    }

    async fn locations(&self) -> Result<Vec<Location>> {
        retry!(
            self,
            self.all_docs(
                "SELECT doc FROM cw_locations ORDER BY priority, id",
                "location"
            )
        )
    }

    async fn set_stock(
        &self,
        variant: VariantId,
        location: LocationId,
        on_hand: i64,
    ) -> Result<StockLevel> {
        let on_hand = crate::inventory::check_on_hand(on_hand)?;
        retry!(self, async {
            let row = sqlx::query(
                "INSERT INTO cw_stock (variant_id, location_id, on_hand, reserved) VALUES ($1, $2, $3, 0)
                 ON CONFLICT (variant_id, location_id) DO UPDATE SET on_hand = EXCLUDED.on_hand
                 RETURNING variant_id, location_id, on_hand, reserved",
            )
            .bind(variant.as_uuid())
            .bind(location.as_uuid())
            .bind(on_hand)
            .fetch_one(&self.pool())
            .await
            .map_err(|e| stock_fk_error(e.into(), variant, location))?;
            level_from_row(&row)
        })
    }

    async fn adjust_stock(
        &self,
        variant: VariantId,
        location: LocationId,
        delta: i64,
    ) -> Result<StockLevel> {
        retry!(self, self.adjust_try(variant, location, delta))
    }

    async fn stock(&self, variant: VariantId) -> Result<StockSummary> {
        retry!(self, self.stock_try(variant))
    }

    async fn stock_levels(
        &self,
        variants: &[VariantId],
    ) -> Result<HashMap<VariantId, Vec<StockLevel>>> {
        let ids: Vec<Uuid> = variants.iter().map(|v| v.as_uuid()).collect();
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT s.variant_id, s.location_id, s.on_hand, s.reserved
                 FROM cw_stock s JOIN cw_locations l ON l.id = s.location_id
                 WHERE s.variant_id = ANY($1) ORDER BY s.variant_id, l.priority, l.id",
            )
            .bind(&ids)
            .fetch_all(&self.pool())
            .await?;
            let mut out: HashMap<VariantId, Vec<StockLevel>> = HashMap::new();
            for row in &rows {
                let level = level_from_row(row)?;
                out.entry(level.variant_id).or_default().push(level);
            }
            Ok(out)
        })
    }

    async fn reserve(
        &self,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        retry!(self, async {
            let mut tx = self.pool().begin().await?;
            let r = reserve_tx(&mut tx, requests, claims, None, expires_at, now).await?;
            tx.commit().await?;
            Ok::<_, Fail>(r)
        })
    }

    async fn usage(&self, counter: &str) -> Result<u64> {
        retry!(self, async {
            let used: Option<i64> =
                sqlx::query_scalar("SELECT used FROM cw_usage_counters WHERE counter = $1")
                    .bind(counter)
                    .fetch_optional(&self.pool())
                    .await?;
            u64::try_from(used.unwrap_or(0)).map_err(|_| corrupt("usage counter", "negative"))
        })
    }

    async fn release(&self, id: ReservationId, _now: DateTime<Utc>) -> Result<Reservation> {
        retry!(self, self.release_try(id))
    }

    async fn commit(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        retry!(self, self.commit_try(id, now))
    }

    async fn reservation(&self, id: ReservationId) -> Result<Reservation> {
        retry!(self, async {
            let mut conn = self.pool().acquire().await?;
            load_reservation(&mut conn, id).await
        })
    }

    async fn release_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = retry!(self, self.release_expired_batch(now))?;
            total += n;
            if n < 200 {
                return Ok(total);
            }
        }
    }

    async fn flag_low_stock(
        &self,
        variant: VariantId,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<EventKind>> {
        retry!(self, self.flag_low_stock_try(variant, threshold, now))
    }
}

impl PgStore {
    /// [`InventoryStore::flag_low_stock`]: the variant's row is locked
    /// (`FOR NO KEY UPDATE`, which reservations' foreign-key checks do not
    /// wait for) before the level is read, so evaluations of one variant
    /// run one after another, each reading the newest committed level.
    async fn flag_low_stock_try(
        &self,
        variant: VariantId,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> Try<Option<EventKind>> {
        let mut tx = self.pool().begin().await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM cw_variants WHERE id = $1 FOR NO KEY UPDATE")
                .bind(variant.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(Error::not_found("variant", variant).into());
        }
        let rows = sqlx::query(
            "SELECT s.variant_id, s.location_id, s.on_hand, s.reserved
             FROM cw_stock s WHERE s.variant_id = $1",
        )
        .bind(variant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        let levels = rows.iter().map(level_from_row).collect::<Try<Vec<_>>>()?;
        let summary = StockSummary::new(variant, levels);
        let (low, event) = crate::inventory::low_stock_mark(&summary, threshold);
        let kind = to_json(&event)?;
        let sql = if low {
            "WITH changed AS (INSERT INTO cw_low_stock (variant_id) VALUES ($1)
                              ON CONFLICT DO NOTHING RETURNING variant_id),
                  ev AS (INSERT INTO cw_events (id, occurred_at, kind)
                         SELECT $2, $3, $4 WHERE EXISTS (SELECT 1 FROM changed) RETURNING sequence)
             SELECT count(*) FROM changed"
        } else {
            "WITH changed AS (DELETE FROM cw_low_stock WHERE variant_id = $1 RETURNING variant_id),
                  ev AS (INSERT INTO cw_events (id, occurred_at, kind)
                         SELECT $2, $3, $4 WHERE EXISTS (SELECT 1 FROM changed) RETURNING sequence)
             SELECT count(*) FROM changed"
        };
        let n: i64 = sqlx::query_scalar(sql)
            .bind(variant.as_uuid())
            .bind(EventId::new().as_uuid())
            .bind(now)
            .bind(Json(&kind))
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((n == 1).then_some(event))
    }
}
