//! Bad data in the database gives a typed error, never a panic.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::prelude::*;
use cartwright::store::PgStore;
use common::{Backend, Backing, Shop, request};

fn pg(shop: &Shop) -> &PgStore {
    match &shop.backing {
        Backing::Postgres(pg) => pg,
        Backing::Memory(_) => unreachable!("postgres tests run on postgres"),
    }
}

/// A connection URL for the test database with `schema` as its search
/// path, after the query parameters in `extra` (each ending in `&`).
fn schema_url(schema: &str, extra: &str) -> String {
    let base = common::pg::admin_url();
    let (server, _) = base.rsplit_once('/').unwrap();
    format!(
        "{server}/{}?{extra}options=-c%20search_path%3D{schema}",
        common::pg::TEST_DATABASE
    )
}

async fn exec(shop: &Shop, sql: &'static str) {
    sqlx::query(sql).execute(&pg(shop).pool()).await.unwrap();
}

#[tokio::test]
async fn corrupt_documents_are_typed_errors() {
    let shop = Shop::new(Backend::Postgres).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;

    // An order total edited by hand no longer matches its frozen pricing.
    exec(&shop, "UPDATE cw_orders SET total = total + 1").await;
    let err = shop
        .engine
        .order(&Actor::Guest, order.id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CorruptData {
                entity: "order",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_retryable());

    // A NUMERIC beyond rust_decimal's range.
    exec(&shop, "UPDATE cw_orders SET total = 1e40").await;
    let err = shop
        .engine
        .order(&Actor::Guest, order.id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CorruptData {
                entity: "order",
                ..
            }
        ),
        "{err}"
    );

    // Documents that are not a variant or a product at all.
    exec(&shop, r#"UPDATE cw_variants SET doc = '{"sku": 5}'"#).await;
    let err = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CorruptData {
                entity: "variant",
                ..
            }
        ),
        "{err}"
    );
    exec(&shop, r#"UPDATE cw_products SET doc = '{"title": 5}'"#).await;
    let product = shop.engine.products(None, 10).await;
    assert!(
        matches!(
            product,
            Err(Error::CorruptData {
                entity: "product",
                ..
            })
        ),
        "{product:?}"
    );

    // A cart whose version column disagrees with its document.
    let other = shop
        .engine
        .create_cart(&Actor::Guest, Currency::USD)
        .await
        .unwrap();
    exec(&shop, "UPDATE cw_carts SET version = version + 7").await;
    let err = shop
        .engine
        .cart(&Actor::Guest, other.id())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::CorruptData { entity: "cart", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn impossible_states_are_typed_errors() {
    let shop = Shop::new(Backend::Postgres).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    shop.engine.checkout(request(cart.id(), "k")).await.unwrap();

    // A checkout failure that no longer parses.
    exec(
        &shop,
        "ALTER TABLE cw_checkouts DROP CONSTRAINT cw_checkouts_row_valid",
    )
    .await;
    exec(&shop, "UPDATE cw_checkouts SET state = 'failed', failure = '{\"kind\": \"gremlins\"}', order_id = NULL").await;
    let err = shop
        .engine
        .checkout(request(cart.id(), "k"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CorruptData {
                entity: "checkout",
                ..
            }
        ),
        "{err}"
    );

    // A customer whose email column disagrees with the document.
    let ann = shop.customer("ann@example.com").await;
    exec(&shop, "UPDATE cw_customers SET email = 'someone@else.com'").await;
    let err = shop
        .engine
        .customer(&Actor::System, ann.id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CorruptData {
                entity: "customer",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn missing_rows_are_typed_errors() {
    let shop = Shop::new(Backend::Postgres).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let order = shop.place(cart.id(), "k").await;
    exec(&shop, "DELETE FROM cw_orders").await;
    // The checkout says completed but its order is gone.
    let err = shop
        .engine
        .checkout(request(cart.id(), "k"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                entity: "order",
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        shop.engine.order(&Actor::Guest, order.id()).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn an_unreachable_database_is_a_retryable_storage_error() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://nobody@127.0.0.1:1/nothing")
        .unwrap();
    let err = PgStore::from_pool(pool).await.unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn corrupt_promotions_and_coupons_are_typed_errors() {
    use cartwright::pricing::{Action, LineFilter, Promotion};
    let shop = Shop::new(Backend::Postgres).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let promo = shop
        .engine
        .save_promotion(
            &Actor::System,
            Promotion::new(
                "ten",
                Action::PercentOffItems {
                    target: LineFilter::Any,
                    percent: 10.into(),
                    max_discount: None,
                    max_quantity_per_line: None,
                },
            )
            .coded(),
        )
        .await
        .unwrap();
    shop.engine
        .create_coupon(&Actor::System, promo.id, "TEN", None)
        .await
        .unwrap();
    shop.engine
        .add_coupon_code(&Actor::Guest, cart.id(), "TEN")
        .await
        .unwrap();
    assert_eq!(
        shop.engine
            .price_cart(&Actor::Guest, cart.id())
            .await
            .unwrap()
            .discount_total,
        common::usd("1.00")
    );

    // A coupon's use limit edited to an impossible value is refused by the
    // table; a negative one read back would be corrupt.
    let refused = sqlx::query("UPDATE cw_coupons SET max_uses = -1")
        .execute(&pg(&shop).pool())
        .await;
    assert!(refused.is_err(), "the CHECK constraint keeps it out");

    // A promotion document edited by hand into something that is not a
    // promotion: pricing fails with a typed error, nothing panics.
    exec(
        &shop,
        "UPDATE cw_promotions SET doc = jsonb_set(doc, '{action}', '\"free lunch\"')",
    )
    .await;
    exec(&shop, "UPDATE cw_pricing_version SET version = version + 1").await;
    let err = shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CorruptData {
                entity: "promotion",
                ..
            }
        ),
        "{err}"
    );
    // And a checkout refuses before touching anything.
    let before = shop.snapshot().await;
    assert!(shop.engine.checkout(request(cart.id(), "k")).await.is_err());
    let after = shop.snapshot().await;
    assert!(after == before, "a failed pricing changed the store");
}

/// `PgOptions` reach the pool and the server: a pool of no connections is
/// refused, and a statement past `statement_timeout` is cancelled.
#[tokio::test]
async fn pool_options_apply() {
    use cartwright::store::PgOptions;
    let schema = common::pg::fresh_schema().await;
    let url = schema_url(&schema, "");
    let none = PgStore::connect_with(&url, &PgOptions::default().max_connections(0)).await;
    assert!(matches!(
        none,
        Err(Error::Invalid {
            field: "max_connections",
            ..
        })
    ));

    let options = PgOptions::default()
        .max_connections(2)
        // Long enough for a catalog lookup on a busy machine, far below
        // the sleep below.
        .statement_timeout(std::time::Duration::from_millis(500))
        .max_retries(2);
    let store = PgStore::connect_with(&url, &options).await.unwrap();
    // Migrated into the schema named by the URL (one cheap lookup, not a
    // scan of every test schema's tables).
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(format!("{schema}.cw_orders"))
        .fetch_one(&store.pool())
        .await
        .unwrap();
    assert!(table.is_some(), "no cw_orders in {schema}");
    let slow = sqlx::query("SELECT pg_sleep(5)")
        .execute(&store.pool())
        .await;
    let err = slow.unwrap_err().to_string();
    assert!(err.contains("statement timeout"), "{err}");
}

/// The database refuses rows no code path writes, whatever wrote them: the
/// checkout's and the reservation's rules (migration 0016) hold for hand-
/// written SQL too.
#[tokio::test]
async fn impossible_rows_are_refused_by_the_database() {
    let shop = Shop::new(Backend::Postgres).await;
    let a = shop.product("A", "10.00", 5).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    shop.engine.checkout(request(cart.id(), "k")).await.unwrap();
    let refused = [
        // Completed without an order, and an order without completion.
        "UPDATE cw_checkouts SET order_id = NULL",
        "UPDATE cw_checkouts SET state = 'retryable'",
        // Failed without a failure; waiting without a session.
        "UPDATE cw_checkouts SET state = 'failed', order_id = NULL",
        "UPDATE cw_checkouts SET state = 'awaiting_payment', order_id = NULL",
        // An unknown state; no attempt.
        "UPDATE cw_checkouts SET state = 'done'",
        "UPDATE cw_checkouts SET attempt = 0",
        // A pending reservation without an expiry; allocated without an order.
        "UPDATE cw_reservations SET state = 'pending'",
        "UPDATE cw_reservations SET order_id = NULL",
        "UPDATE cw_reservations SET state = 'lost'",
    ];
    for sql in refused {
        let err = sqlx::query(sql)
            .execute(&pg(&shop).pool())
            .await
            .expect_err(sql);
        let code = err
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("23514"), "{sql}: {err}");
    }
    // The rows are as the checkout left them.
    let (state, order): (String, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT state, order_id FROM cw_checkouts")
            .fetch_one(&pg(&shop).pool())
            .await
            .unwrap();
    assert_eq!(state, "completed");
    assert!(order.is_some());
}

/// `PgOptions::ping_idle_after`: a connection idle for longer is checked
/// before use and replaced when its server process has gone; one reused
/// sooner is not checked, so a connection that died meanwhile may fail one
/// command, with a retryable error that changes nothing, and the next
/// command gets a fresh connection.
#[tokio::test]
async fn idle_connections_are_checked_before_use() {
    use cartwright::store::{InventoryStore, PgOptions};
    let schema = common::pg::fresh_schema().await;
    let connect = |app: &str, idle: std::time::Duration| {
        let url = schema_url(&schema, &format!("application_name={app}&"));
        async move {
            PgStore::connect_with(
                &url,
                &PgOptions::default()
                    .max_connections(1)
                    .ping_idle_after(idle),
            )
            .await
            .unwrap()
        }
    };
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&common::pg::admin_url())
        .await
        .unwrap();
    let kill = |app: String| {
        let admin = admin.clone();
        async move {
            let killed: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(app)
            .fetch_all(&admin)
            .await
            .unwrap();
            assert_eq!(killed, vec![true], "one connection to end");
        }
    };

    // Checked after 10 ms idle: the dead connection is replaced unseen.
    let app = format!("cw_ping_{}", uuid::Uuid::new_v4().simple());
    let checked = connect(&app, std::time::Duration::from_millis(10)).await;
    checked.locations().await.unwrap();
    kill(app).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(checked.locations().await.unwrap().is_empty());

    // Not checked within an hour: the dead connection may fail one command
    // (sqlx sometimes notices the server's goodbye on its own), and then
    // only with a retryable error; the next one runs on a new connection.
    let app = format!("cw_ping_{}", uuid::Uuid::new_v4().simple());
    let trusting = connect(&app, std::time::Duration::from_secs(3600)).await;
    trusting.locations().await.unwrap();
    kill(app).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    match trusting.locations().await {
        Ok(locations) => assert!(locations.is_empty()),
        Err(err) => assert!(err.is_retryable(), "{err}"),
    }
    assert!(trusting.locations().await.unwrap().is_empty());
}

/// `PgOptions::max_concurrent_reservations`: 0 is refused; with one permit,
/// a dozen concurrent checkouts of the same variant all complete (the
/// permit is held for the first commit only, never across the provider
/// call), and the stock adds up.
#[tokio::test]
async fn one_reservation_permit_serves_concurrent_checkouts() {
    use cartwright::catalog::{NewProduct, NewVariant, Status};
    use cartwright::store::PgOptions;
    use std::sync::Arc;
    let schema = common::pg::fresh_schema().await;
    let url = schema_url(&schema, "");
    let zero =
        PgStore::connect_with(&url, &PgOptions::default().max_concurrent_reservations(0)).await;
    assert!(matches!(
        zero,
        Err(Error::Invalid {
            field: "max_concurrent_reservations",
            ..
        })
    ));
    let store = PgStore::connect_with(&url, &PgOptions::default().max_concurrent_reservations(1))
        .await
        .unwrap();
    let engine = Engine::builder()
        .store(Arc::new(store))
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap();
    let staff = Actor::Staff("ann".into());
    let product = engine
        .create_product(
            &staff,
            NewProduct::new("Key").status(Status::Active).variant(
                NewVariant::digital("KEY")
                    .price(Money::parse("3.00", Currency::USD).unwrap())
                    .status(Status::Active),
            ),
        )
        .await
        .unwrap();
    let variant = product.variants()[0].id();
    let location = engine.create_location(&staff, "Main", 0).await.unwrap();
    engine
        .set_stock(&staff, variant, location.id(), 20)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let guest = Actor::Guest;
            let cart = engine.create_cart(&guest, Currency::USD).await.unwrap();
            engine
                .add_item(&guest, cart.id(), variant, 1)
                .await
                .unwrap();
            engine
                .set_email(&guest, cart.id(), "key@example.com")
                .await
                .unwrap();
            engine
                .checkout(CheckoutRequest::new(
                    cart.id(),
                    IdempotencyKey::new(format!("permit-{i}")).unwrap(),
                    "tok_visa",
                    guest,
                ))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stock = engine.stock(variant).await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (20, 12));
}
