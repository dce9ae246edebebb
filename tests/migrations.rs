//! Upgrading a database keeps what it holds: rows written under an earlier
//! schema read back the same through the store after the newer migrations.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::id::ReservationId;
use cartwright::inventory::ReservationState;
use cartwright::order::OrderChange;
use cartwright::store::{InventoryStore, OrderStore, PgStore};
use common::pg;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A pool on a fresh schema migrated up to `version` only.
async fn schema_at(version: i64) -> PgPool {
    let schema = pg::fresh_schema().await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(pg::options(&schema))
        .await
        .unwrap();
    let migrator = sqlx::migrate::Migrator::new(std::path::Path::new("migrations"))
        .await
        .unwrap();
    migrator.run_to(version, &pool).await.unwrap();
    pool
}

/// Migration 0014 moved reservation lines from rows of their own into
/// arrays on the reservation. A reservation held before the upgrade keeps
/// its lines, in their order, and can still be released.
#[tokio::test]
async fn reservations_held_before_inline_lines_keep_their_lines() {
    let pool = schema_at(13).await;

    // Under the schema of migration 0013: a pending reservation of two
    // lines (stock held for them) and a released one of one line.
    let held = uuid::Uuid::now_v7();
    let released = uuid::Uuid::now_v7();
    let location = uuid::Uuid::now_v7();
    let (v1, v2) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    sqlx::query(
        "INSERT INTO cw_reservations (id, checkout_key, state, expires_at, created_at)
         VALUES ($1, NULL, 'pending', now() + interval '1 hour', now()),
                ($2, NULL, 'released', NULL, now())",
    )
    .bind(held)
    .bind(released)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO cw_reservation_lines (reservation_id, line_no, variant_id, location_id, quantity)
         VALUES ($1, 1, $3, $4, 2), ($1, 2, $5, $4, 5), ($2, 1, $3, $4, 1)",
    )
    .bind(held)
    .bind(released)
    .bind(v2)
    .bind(location)
    .bind(v1)
    .execute(&pool)
    .await
    .unwrap();

    // The store applies the rest.
    let store = PgStore::from_pool(pool.clone()).await.unwrap();
    let r = store
        .reservation(ReservationId::from_uuid(held))
        .await
        .unwrap();
    let lines: Vec<(uuid::Uuid, uuid::Uuid, u32)> = r
        .lines
        .iter()
        .map(|l| (l.variant_id.as_uuid(), l.location_id.as_uuid(), l.quantity))
        .collect();
    assert_eq!(lines, vec![(v2, location, 2), (v1, location, 5)]);
    assert!(matches!(r.state, ReservationState::Pending { .. }));
    let gone = store
        .reservation(ReservationId::from_uuid(released))
        .await
        .unwrap();
    assert_eq!(gone.lines.len(), 1);
    assert_eq!(gone.state, ReservationState::Released);

    // The old table is gone; the held reservation releases through the
    // new layout.
    let old: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('cw_reservation_lines')::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(old, None);
    let after = store
        .release(ReservationId::from_uuid(held), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(after.state, ReservationState::Released);
    assert_eq!(after.lines.len(), 2);
}

/// Migration 0017 stores order documents as `json` instead of `jsonb`. An
/// order stored before the upgrade reads back the same, and saving it still
/// checks its version (read inside the document).
#[tokio::test]
async fn orders_stored_as_jsonb_read_and_save_after_the_upgrade() {
    // An order as the engine places it (on the memory store).
    let shop = common::Shop::new(common::Backend::Memory).await;
    let variant = shop.product("MIG-1", "12.50", 5).await;
    let cart = shop.ready_cart(&[(variant, 2)]).await;
    let placed = shop.place(cart.id(), "migrate-order").await;
    let order = shop
        .engine
        .order(&cartwright::Actor::System, placed.id())
        .await
        .unwrap();

    // Stored under the schema of migration 0016, as `jsonb`.
    let pool = schema_at(16).await;
    sqlx::query(
        "INSERT INTO cw_orders (id, customer_id, checkout_key, currency, total, placed_at, status,
                                payment_reference, doc, pending_work, email)
         VALUES ($1, NULL, 'migrate-order', 'USD', $2, now(), 'placed', $3, $4::jsonb, $5, $6)",
    )
    .bind(order.id().as_uuid())
    .bind(order.total().amount())
    .bind(order.payment().reference())
    .bind(serde_json::to_string(&order).unwrap())
    .bind(order.has_pending_work())
    .bind(order.email().map(|e| e.as_str().to_owned()))
    .execute(&pool)
    .await
    .unwrap();

    // The store applies the rest and reads the same order back.
    let store = PgStore::from_pool(pool.clone()).await.unwrap();
    let kind: String = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = 'cw_orders'::regclass AND attname = 'doc'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kind, "json");
    let read = store.order(order.id()).await.unwrap();
    assert_eq!(read, order);

    // Saving checks the stored version: the first save of this version
    // lands, a second one from the same version is a conflict.
    let now = chrono::Utc::now();
    let saved = store
        .save_order(OrderChange::new(order.clone()), now)
        .await
        .unwrap();
    assert_eq!(saved.version(), order.version() + 1);
    let stale = store.save_order(OrderChange::new(order.clone()), now).await;
    assert!(
        matches!(stale, Err(cartwright::Error::Conflict(_))),
        "{stale:?}"
    );
    assert_eq!(store.order(order.id()).await.unwrap(), saved);
}

/// Migration 0018 moves account tokens out of the customer row into a
/// table of their own. A reset token issued before the upgrade still works
/// after it, once, and a wrong guess against it is counted.
#[tokio::test]
async fn reset_tokens_issued_before_the_upgrade_still_work_once() {
    use cartwright::customer::token_digest;

    // A customer as the engine registers them (on the memory store).
    let shop = common::Shop::new(common::Backend::Memory).await;
    let ann = shop.customer("ann@example.com").await;
    let ann = shop.engine.store().customer(ann.id()).await.unwrap();
    let secret = "ab".repeat(32);

    // Stored under the schema of migration 0017, its token beside it.
    let pool = schema_at(17).await;
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    let tokens = serde_json::json!([{
        "purpose": "password_reset",
        "hash": token_digest(&secret),
        "expires_at": expires,
        "attempts": 1
    }]);
    sqlx::query(
        "INSERT INTO cw_customers (id, email, version, password_hash, doc, tokens)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ann.id().as_uuid())
    .bind(ann.email().as_str())
    .bind(i64::try_from(ann.version()).unwrap())
    .bind(ann.password_hash().unwrap().as_phc())
    .bind(sqlx::types::Json(serde_json::to_value(&ann).unwrap()))
    .bind(sqlx::types::Json(tokens))
    .execute(&pool)
    .await
    .unwrap();

    // The store applies the rest; the column is gone, the token moved.
    let store = PgStore::from_pool(pool.clone()).await.unwrap();
    let column: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM pg_attribute WHERE attrelid = 'cw_customers'::regclass
         AND attname = 'tokens' AND NOT attisdropped",
    )
    .fetch_optional(&pool)
    .await
    .unwrap();
    assert_eq!(column, None);
    let engine = cartwright::Engine::builder()
        .store(std::sync::Arc::new(store))
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap();
    let token = format!("{}.{secret}", ann.id().as_uuid().simple());
    let wrong = format!("{}.{}", ann.id().as_uuid().simple(), "cd".repeat(32));
    assert!(
        engine
            .reset_password(&wrong, "new-password-1", false)
            .await
            .is_err()
    );
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM cw_account_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        attempts, 2,
        "the attempt before the upgrade and the wrong guess"
    );
    engine
        .reset_password(&token, "new-password-1", false)
        .await
        .unwrap();
    engine
        .login("ann@example.com", "new-password-1")
        .await
        .unwrap();
    assert!(
        engine
            .reset_password(&token, "new-password-2", false)
            .await
            .is_err()
    );
}

/// Migration 0019 numbers events per aggregate. Events recorded before the
/// upgrade get their aggregate and versions in commit order, and the next
/// one of the same aggregate goes on from there.
#[tokio::test]
async fn events_recorded_before_the_upgrade_are_numbered() {
    use cartwright::event::EventKind;
    use cartwright::store::EventStore;

    let pool = schema_at(18).await;
    let order_id = cartwright::id::OrderId::new();
    let kinds = [
        EventKind::OrderCancelled { order_id },
        EventKind::PaymentVoided { order_id },
    ];
    for kind in &kinds {
        sqlx::query("INSERT INTO cw_events (id, occurred_at, kind) VALUES ($1, now(), $2)")
            .bind(uuid::Uuid::now_v7())
            .bind(sqlx::types::Json(serde_json::to_value(kind).unwrap()))
            .execute(&pool)
            .await
            .unwrap();
    }
    let store = PgStore::from_pool(pool.clone()).await.unwrap();
    store
        .record_events(
            vec![EventKind::OrderCancelled { order_id }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    // An event is handed out once every older transaction has ended;
    // other tests on the server can delay that a moment.
    let mut events = Vec::new();
    for _ in 0..400 {
        events = store.pending_events("upgrade", 10).await.unwrap();
        if events.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let versions: Vec<(String, u64)> = events
        .iter()
        .map(|e| (e.aggregate.clone(), e.version))
        .collect();
    let subject = format!("order:{order_id}");
    assert_eq!(
        versions,
        [(subject.clone(), 1), (subject.clone(), 2), (subject, 3)]
    );
}
