//! The PostgreSQL store: orders.

use super::*;

pub(super) fn status_name(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Placed => "placed",
        OrderStatus::Processing => "processing",
        OrderStatus::Completed => "completed",
        OrderStatus::Cancelled => "cancelled",
    }
}

pub(super) fn order_from_row(row: &PgRow) -> Try<Order> {
    let order: Order = doc(row, "doc", "order")?;
    let total: Decimal = col(row, "total", "order")?;
    if total != order.total().amount() {
        return Err(corrupt("order", "total column disagrees with the document"));
    }
    Ok(order)
}

#[async_trait]
impl OrderStore for PgStore {
    async fn orders_placed_by(
        &self,
        customer: Option<CustomerId>,
        email: Option<&Email>,
    ) -> Result<u64> {
        if customer.is_none() && email.is_none() {
            return Ok(0);
        }
        retry!(self, async {
            let n: i64 = sqlx::query_scalar(
                // A NULL side matches nothing.
                "SELECT count(*) FROM cw_orders WHERE customer_id = $1 OR email = $2",
            )
            .bind(customer.map(|c| c.as_uuid()))
            .bind(email.map(|e| e.as_str()))
            .fetch_one(&self.pool())
            .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    async fn order(&self, id: OrderId) -> Result<Order> {
        retry!(self, async {
            let row = sqlx::query("SELECT total, doc FROM cw_orders WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool())
                .await?
                .ok_or_else(|| Error::not_found("order", id))?;
            order_from_row(&row)
        })
    }

    async fn order_by_payment_reference(&self, reference: &str) -> Result<Option<Order>> {
        if reference.is_empty() {
            return Ok(None);
        }
        retry!(self, async {
            let row = sqlx::query("SELECT total, doc FROM cw_orders WHERE payment_reference = $1")
                .bind(reference)
                .fetch_optional(&self.pool())
                .await?;
            row.as_ref().map(order_from_row).transpose()
        })
    }

    async fn find_orders(&self, query: &OrderQuery) -> Result<Vec<Order>> {
        let limit = limit_i64(query.limit)?;
        // Listings read the replica, when there is one; recovery's queries
        // for work (pending operations, stranded captures) read the primary.
        let for_work = query.pending_work || query.placed_until.is_some();
        retry!(self, async {
            let pool = if for_work {
                self.pool()
            } else {
                self.read_pool()
            };
            let rows = sqlx::query(
                "SELECT total, doc FROM cw_orders
                 WHERE ($1::uuid IS NULL OR customer_id = $1)
                   AND ($2::text IS NULL OR status = $2)
                   AND ($3::timestamptz IS NULL OR placed_at >= $3)
                   AND ($4::timestamptz IS NULL OR placed_at < $4)
                   AND ($5::uuid IS NULL OR id < $5)
                   AND (NOT $7 OR pending_work)
                 ORDER BY id DESC LIMIT $6",
            )
            .bind(query.customer.map(|c| c.as_uuid()))
            .bind(query.status.map(status_name))
            .bind(query.placed_from)
            .bind(query.placed_until)
            .bind(query.before.map(|b| b.as_uuid()))
            .bind(limit)
            .bind(query.pending_work)
            .fetch_all(&pool)
            .await?;
            rows.iter().map(order_from_row).collect::<Try<Vec<_>>>()
        })
    }

    async fn save_order(&self, change: OrderChange, now: DateTime<Utc>) -> Result<Order> {
        retry!(self, self.save_order_try(&change, now))
    }
}

impl PgStore {
    pub(super) async fn save_order_try(
        &self,
        change: &OrderChange,
        now: DateTime<Utc>,
    ) -> Try<Order> {
        if change.ship.is_empty()
            && change.restock.is_empty()
            && change.unreserve.is_empty()
            && change.merge_reservation.is_none()
            && !change.release_reservation
        {
            return self.save_order_alone(change, now).await;
        }
        let id = change.order.id;
        let mut tx = self.pool().begin().await?;
        // Lock order: the order row, then (through release) its reservation,
        // stock rows and usage counters.
        let row = sqlx::query("SELECT total, doc FROM cw_orders WHERE id = $1 FOR UPDATE")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("order", id))?;
        let stored = order_from_row(&row)?;
        if stored.version != change.order.version {
            return Err(Error::Conflict("order").into());
        }
        let mut order = change.order.clone();
        order.saved()?;
        if let Some(extra) = change.merge_reservation {
            merge_reservation(&mut tx, order.reservation_id, extra, id).await?;
        }
        if !change.ship.is_empty() || !change.restock.is_empty() || !change.unreserve.is_empty() {
            let moves = StockMoves {
                ship: &change.ship,
                unreserve: &change.unreserve,
                restock: &change.restock,
            };
            apply_stock_moves(&mut tx, order.reservation_id, moves).await?;
        }
        if change.release_reservation {
            release_tx(&mut tx, &[order.reservation_id.as_uuid()]).await?;
        }
        let events = change
            .events
            .iter()
            .map(|k| to_json(k).map(Json))
            .collect::<Try<Vec<_>>>()?;
        let ids: Vec<Uuid> = change
            .events
            .iter()
            .map(|_| EventId::new().as_uuid())
            .collect();
        sqlx::query(
            "WITH o AS (UPDATE cw_orders SET doc = $2::json, status = $6, pending_work = $7, total = $8 WHERE id = $1)
             INSERT INTO cw_events (id, occurred_at, kind)
             SELECT e, $3, k FROM unnest($4::uuid[], $5::jsonb[]) WITH ORDINALITY AS u(e, k, n) ORDER BY n",
        )
        .bind(id.as_uuid())
        .bind(json_text(&order)?)
        .bind(now)
        .bind(&ids)
        .bind(&events)
        .bind(status_name(order.status()))
        .bind(order.has_pending_work())
        .bind(order.total().amount())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(order)
    }
}

/// Per (variant, location): total units, sorted — the lock order.
pub(super) fn per_location(lines: &[ReservationLine]) -> (Vec<Uuid>, Vec<Uuid>, Vec<i64>) {
    let mut sums: BTreeMap<(Uuid, Uuid), i64> = BTreeMap::new();
    for l in lines {
        *sums
            .entry((l.variant_id.as_uuid(), l.location_id.as_uuid()))
            .or_default() += i64::from(l.quantity);
    }
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for ((v, l), q) in sums {
        out.0.push(v);
        out.1.push(l);
        out.2.push(q);
    }
    out
}

/// Moves a pending reservation's lines into an order's reservation (the
/// stock stays reserved) and spends it. Locks the order's reservation, then
/// the pending one.
async fn merge_reservation(
    tx: &mut PgConnection,
    into: ReservationId,
    extra: ReservationId,
    order: OrderId,
) -> Try<()> {
    if into == extra {
        return Err(Error::Conflict("reservation").into());
    }
    let row = sqlx::query(
        "SELECT state, variant_ids, location_ids, quantities
         FROM cw_reservations WHERE id = $1 FOR UPDATE",
    )
    .bind(into.as_uuid())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("reservation", into))?;
    if col::<String>(&row, "state", "reservation")? == "released" {
        return Err(Error::invalid("order", "its stock was given back").into());
    }
    let mut held = reservation_lines(&row)?;
    let pending = sqlx::query(
        "SELECT variant_ids, location_ids, quantities
         FROM cw_reservations WHERE id = $1 AND state = 'pending' FOR UPDATE",
    )
    .bind(extra.as_uuid())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::Conflict("reservation"))?;
    for line in reservation_lines(&pending)? {
        match held
            .iter_mut()
            .find(|h| h.variant_id == line.variant_id && h.location_id == line.location_id)
        {
            Some(h) => {
                h.quantity = h
                    .quantity
                    .checked_add(line.quantity)
                    .ok_or(Error::Overflow("reserved units"))?;
            }
            None => held.push(line),
        }
    }
    sqlx::query(
        "WITH spent AS (
             UPDATE cw_reservations
                SET state = 'committed', expires_at = NULL, variant_ids = '{}',
                    location_ids = '{}', quantities = '{}'
              WHERE id = $5)
         UPDATE cw_reservations
            SET variant_ids = $2, location_ids = $3, quantities = $4,
                state = 'allocated', order_id = $6
          WHERE id = $1",
    )
    .bind(into.as_uuid())
    .bind(uuids(&held, |h| h.variant_id.as_uuid()))
    .bind(uuids(&held, |h| h.location_id.as_uuid()))
    .bind(
        held.iter()
            .map(|h| i64::from(h.quantity))
            .collect::<Vec<_>>(),
    )
    .bind(extra.as_uuid())
    .bind(order.as_uuid())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The stock an order change moves.
pub(super) struct StockMoves<'a> {
    /// Out of the reservation and off hand.
    pub(super) ship: &'a [ReservationLine],
    /// Out of the reservation, back to sale.
    pub(super) unreserve: &'a [ReservationLine],
    /// Back on hand.
    pub(super) restock: &'a [ReservationLine],
}

/// Shipping takes units out of the reservation and off hand; freeing takes
/// them out of the reservation only; restocking puts units back on hand.
/// Locks the reservation, then the stock rows in order.
pub(super) async fn apply_stock_moves(
    tx: &mut PgConnection,
    reservation: ReservationId,
    moves: StockMoves<'_>,
) -> Try<()> {
    let StockMoves {
        ship,
        unreserve,
        restock,
    } = moves;
    let all: Vec<ReservationLine> = ship
        .iter()
        .chain(unreserve)
        .chain(restock)
        .copied()
        .collect();
    let (av, al, _) = per_location(&all);
    let mut held = Vec::new();
    let taking = !ship.is_empty() || !unreserve.is_empty();
    if taking {
        let row = sqlx::query(
            "SELECT state, variant_ids, location_ids, quantities
             FROM cw_reservations WHERE id = $1 FOR UPDATE",
        )
        .bind(reservation.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let not_held = || Error::invalid("shipment", "the order's stock is no longer held");
        let row = row.ok_or_else(not_held)?;
        if col::<String>(&row, "state", "reservation")? != "allocated" {
            return Err(not_held().into());
        }
        held = reservation_lines(&row)?;
    }
    let locked: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT variant_id, location_id FROM cw_stock
         WHERE (variant_id, location_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))
         ORDER BY variant_id, location_id FOR UPDATE",
    )
    .bind(&av)
    .bind(&al)
    .fetch_all(&mut *tx)
    .await?;
    if locked.len() != av.len() {
        return Err(Error::not_found("stock level", "for a shipped or returned unit").into());
    }
    if taking {
        let taken: Vec<ReservationLine> = ship.iter().chain(unreserve).copied().collect();
        let (tv, tl, tq) = per_location(&taken);
        let (sv, sl, sq) = per_location(ship);
        let (uv, ul, uq) = per_location(unreserve);
        // Take the shipped and freed units out of the held lines (the row is
        // locked); a line emptied goes, and a reservation with none left is
        // spent.
        for ((v, l), q) in tv.iter().zip(&tl).zip(&tq) {
            let line = held
                .iter_mut()
                .find(|h| h.variant_id.as_uuid() == *v && h.location_id.as_uuid() == *l)
                .filter(|h| i64::from(h.quantity) >= *q);
            let (Some(line), Ok(q)) = (line, u32::try_from(*q)) else {
                return Err(Error::invalid(
                    "shipment",
                    "ships units the order does not hold there",
                )
                .into());
            };
            line.quantity -= q;
        }
        held.retain(|h| h.quantity > 0);
        sqlx::query(
            "WITH s AS (
                 UPDATE cw_stock s SET on_hand = s.on_hand - u.q, reserved = s.reserved - u.q
                 FROM unnest($2::uuid[], $3::uuid[], $4::bigint[]) AS u(v, l, q)
                 WHERE s.variant_id = u.v AND s.location_id = u.l),
             f AS (
                 UPDATE cw_stock s SET reserved = s.reserved - u.q
                 FROM unnest($8::uuid[], $9::uuid[], $10::bigint[]) AS u(v, l, q)
                 WHERE s.variant_id = u.v AND s.location_id = u.l)
             UPDATE cw_reservations
                SET variant_ids = $5, location_ids = $6, quantities = $7,
                    state = CASE WHEN cardinality($5::uuid[]) = 0 THEN 'committed' ELSE state END,
                    order_id = CASE WHEN cardinality($5::uuid[]) = 0 THEN NULL ELSE order_id END
              WHERE id = $1",
        )
        .bind(reservation.as_uuid())
        .bind(&sv)
        .bind(&sl)
        .bind(&sq)
        .bind(uuids(&held, |h| h.variant_id.as_uuid()))
        .bind(uuids(&held, |h| h.location_id.as_uuid()))
        .bind(
            held.iter()
                .map(|h| i64::from(h.quantity))
                .collect::<Vec<_>>(),
        )
        .bind(&uv)
        .bind(&ul)
        .bind(&uq)
        .execute(&mut *tx)
        .await?;
    }
    if !restock.is_empty() {
        let (rv, rl, rq) = per_location(restock);
        let moved = sqlx::query(
            "UPDATE cw_stock s SET on_hand = s.on_hand + u.q
             FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u(v, l, q)
             WHERE s.variant_id = u.v AND s.location_id = u.l AND s.on_hand + u.q <= $4",
        )
        .bind(&rv)
        .bind(&rl)
        .bind(&rq)
        .bind(MAX_ON_HAND)
        .execute(&mut *tx)
        .await?;
        if usize::try_from(moved.rows_affected()).ok() != Some(rv.len()) {
            return Err(Error::Overflow("stock on hand").into());
        }
    }
    Ok(())
}

impl PgStore {
    /// A change to the order row alone: one statement, gated on the version.
    pub(super) async fn save_order_alone(
        &self,
        change: &OrderChange,
        now: DateTime<Utc>,
    ) -> Try<Order> {
        let id = change.order.id;
        let mut order = change.order.clone();
        order.saved()?;
        let events = change
            .events
            .iter()
            .map(|k| to_json(k).map(Json))
            .collect::<Try<Vec<_>>>()?;
        let ids: Vec<Uuid> = change
            .events
            .iter()
            .map(|_| EventId::new().as_uuid())
            .collect();
        let saved: i64 = sqlx::query_scalar(
            "WITH o AS (
                 UPDATE cw_orders SET doc = $2::json, status = $6, pending_work = $8, total = $9
                 WHERE id = $1 AND (doc->>'version')::bigint = $7 RETURNING id),
             ev AS (
                 INSERT INTO cw_events (id, occurred_at, kind)
                 SELECT e, $3, k FROM unnest($4::uuid[], $5::jsonb[]) WITH ORDINALITY AS u(e, k, n)
                 WHERE EXISTS (SELECT 1 FROM o) ORDER BY n)
             SELECT count(*) FROM o",
        )
        .bind(id.as_uuid())
        .bind(json_text(&order)?)
        .bind(now)
        .bind(&ids)
        .bind(&events)
        .bind(status_name(order.status()))
        .bind(version_i64(change.order.version)?)
        .bind(order.has_pending_work())
        .bind(order.total().amount())
        .fetch_one(&self.pool())
        .await?;
        if saved == 1 {
            return Ok(order);
        }
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM cw_orders WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool())
            .await?;
        Err(match exists {
            None => Error::not_found("order", id),
            Some(_) => Error::Conflict("order"),
        }
        .into())
    }
}
