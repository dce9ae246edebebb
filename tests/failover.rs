//! A database failover in the middle of checkouts. The test runs a
//! PostgreSQL primary and a synchronous streaming standby of its own
//! (`synchronous_commit = remote_apply`), two engines on a store that names
//! both hosts, concurrent checkouts on both; it stops the primary as a
//! crash would and promotes the standby half-way. Then: every checkout
//! answered `Ok` is an order on the new primary; every interrupted key
//! finishes on retry after `recover()`; no key has two orders; the books
//! equal the gateway; no stock leaked; both engines keep working without a
//! restart. A read replica serves listings, never a checkout.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cartwright::id::{CartId, OrderId};
use cartwright::prelude::*;
use cartwright::store::{PgOptions, PgStore, Store};
use common::cluster::Cluster;
use common::{Backing, Shop, ShopOptions};

fn options() -> PgOptions {
    PgOptions::default()
        .max_connections(6)
        .acquire_timeout(Duration::from_secs(2))
}

/// Both engines' checkouts, each key's last answer.
type Answers = Arc<Mutex<HashMap<String, Result<OrderId, String>>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkouts_survive_a_failover_with_nothing_lost_or_doubled() {
    let cluster = Cluster::start().await;
    let url = cluster.url();
    let store_a = PgStore::connect_with(&url, &options()).await.unwrap();
    let shop = Shop::on(Backing::Postgres(store_a), ShopOptions::default()).await;
    let store_b = PgStore::connect_with(&url, &options()).await.unwrap();
    let engine_b = common::build_engine(
        Arc::new(store_b) as Arc<dyn Store>,
        &shop.payments,
        &shop.clock,
        &ShopOptions::default(),
    );
    let engines = [shop.engine.clone(), engine_b.clone()];
    let v = shop.product("FAIL-1", "10.00", 500).await;
    // Every cart exists before the failover; each key is checked out once
    // by a task (and retried after).
    let mut carts: Vec<(String, CartId)> = Vec::new();
    for i in 0..48 {
        carts.push((
            format!("fo-{i}"),
            shop.ready_cart(&[(v, 1 + i % 2)]).await.id(),
        ));
    }
    let answers: Answers = Arc::new(Mutex::new(HashMap::new()));
    let mut tasks = Vec::new();
    for (t, chunk) in carts.chunks(6).enumerate() {
        let engine = engines[t % 2].clone();
        let chunk = chunk.to_vec();
        let answers = answers.clone();
        tasks.push(tokio::spawn(async move {
            for (key, cart) in chunk {
                let request = common::request(cart, &key);
                let answer = engine
                    .checkout(request)
                    .await
                    .map(|o| o.order.id())
                    .map_err(|e| e.to_string());
                answers.lock().unwrap().insert(key, answer);
            }
        }));
    }
    // Half-way: the primary crashes, the standby is promoted.
    loop {
        if answers.lock().unwrap().len() >= 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop_primary();
        cluster.promote_standby();
        cluster
    })
    .await
    .unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let first: HashMap<String, Result<OrderId, String>> = answers.lock().unwrap().clone();
    let failed = first.values().filter(|a| a.is_err()).count();
    eprintln!(
        "failover: {} of {} checkouts answered Ok before retries, {failed} failed",
        first.len() - failed,
        first.len()
    );

    // Every checkout answered Ok is an order on the new primary.
    for (key, answer) in &first {
        if let Ok(id) = answer {
            let order = shop
                .engine
                .order(&Actor::System, *id)
                .await
                .unwrap_or_else(|e| panic!("{key}: the order answered Ok is gone: {e}"));
            assert_eq!(order.checkout_key().as_str(), key);
        }
    }
    // Every interrupted key finishes on retry after recovery (the leases
    // of attempts the failover cut short have to end first).
    let mut finished: HashMap<String, OrderId> = HashMap::new();
    for round in 0..10 {
        shop.clock.advance(chrono::Duration::minutes(3));
        let _ = engines[round % 2].recover().await;
        for (key, cart) in &carts {
            if finished.contains_key(key) {
                continue;
            }
            let engine = &engines[round % 2];
            if let Ok(outcome) = engine.checkout(common::request(*cart, key)).await {
                finished.insert(key.clone(), outcome.order.id());
            }
        }
        if finished.len() == carts.len() {
            break;
        }
    }
    assert_eq!(
        finished.len(),
        carts.len(),
        "keys that never finished: {:?}",
        carts
            .iter()
            .filter(|(k, _)| !finished.contains_key(k))
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    );
    // The same key returns the very order answered before.
    for (key, answer) in &first {
        if let Ok(id) = answer {
            assert_eq!(finished[key], *id, "{key} has another order now");
        }
    }
    // One order per key.
    let pool = shop_pool(&shop);
    let doubled: Vec<(String, i64)> = sqlx::query_as(
        "SELECT checkout_key, count(*) FROM cw_orders GROUP BY 1 HAVING count(*) > 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(doubled.is_empty(), "keys with two orders: {doubled:?}");
    // The books equal the gateway: each order's authorization held and
    // captured as the order says; every other authorization given back.
    let auths = shop.payments.authorizations();
    let mut units = 0_i64;
    for (key, id) in &finished {
        let order = shop.engine.order(&Actor::System, *id).await.unwrap();
        let auth = auths
            .iter()
            .find(|a| a.reference == order.payment().reference())
            .unwrap_or_else(|| panic!("{key}: no authorization at the gateway"));
        assert!(!auth.voided, "{key}: the order's hold was voided");
        assert_eq!(auth.captured, order.payment().captured(), "{key}");
        units += order
            .pricing()
            .lines
            .iter()
            .map(|l| i64::from(l.quantity))
            .sum::<i64>();
    }
    for auth in &auths {
        let owned = held_by_an_order(&shop, &finished, &auth.reference).await;
        if !owned {
            assert!(
                auth.voided || auth.refunded == auth.captured,
                "authorization {} is held by no order: {auth:?}",
                auth.reference
            );
        }
    }
    // No stock leaked: what is reserved is exactly the orders' units.
    let stock = shop.engine.stock(v).await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (500, units));
    // Both engines keep working, without a restart.
    for (i, engine) in engines.iter().enumerate() {
        let cart = shop.ready_cart(&[(v, 1)]).await;
        engine
            .checkout(common::request(cart.id(), &format!("after-{i}")))
            .await
            .unwrap();
    }
    drop(cluster);
}

/// Whether one of the finished orders holds the authorization `reference`.
async fn held_by_an_order(
    shop: &Shop,
    finished: &HashMap<String, OrderId>,
    reference: &str,
) -> bool {
    for id in finished.values() {
        let order = shop.engine.order(&Actor::System, *id).await.unwrap();
        if order.payment().reference() == reference {
            return true;
        }
    }
    false
}

fn shop_pool(shop: &Shop) -> sqlx::PgPool {
    match &shop.backing {
        Backing::Postgres(pg) => pg.pool(),
        Backing::Memory(_) => unreachable!("a PostgreSQL shop"),
    }
}

/// With a read replica, listings read it and checkout never does. The
/// "replica" here is another schema holding different data, so what each
/// read saw shows where it went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_read_the_replica_and_checkout_never_does() {
    let primary = common::pg::fresh_schema().await;
    let replica = common::pg::fresh_schema().await;
    let url = |schema: &str| {
        format!(
            "{}/{}?options=-c%20search_path%3D{schema}",
            common::pg::admin_url().rsplit_once('/').unwrap().0,
            common::pg::TEST_DATABASE
        )
    };
    // The replica's data: one product only it has.
    let on_replica = Shop::on(
        Backing::Postgres(PgStore::connect(&url(&replica)).await.unwrap()),
        ShopOptions::default(),
    )
    .await;
    on_replica.product("ONLY-ON-REPLICA", "1.00", 1).await;
    let store = PgStore::connect_with(
        &url(&primary),
        &PgOptions::default().read_replica(Some(url(&replica))),
    )
    .await
    .unwrap();
    let shop = Shop::on(Backing::Postgres(store), ShopOptions::default()).await;
    let v = shop.product("ON-PRIMARY", "10.00", 5).await;
    // Listings and search read the replica.
    let listed = shop
        .engine
        .find_products(&Actor::Guest, &cartwright::catalog::ProductQuery::new(50))
        .await
        .unwrap();
    let skus: Vec<String> = listed
        .products
        .iter()
        .flat_map(|p| p.variants().iter().map(|v| v.sku().as_str().to_owned()))
        .collect();
    assert_eq!(skus, ["ONLY-ON-REPLICA"], "listings come from the replica");
    // Checkout reads the primary: the cart, its product and stock are there.
    let cart = shop.ready_cart(&[(v, 2)]).await;
    let order = shop.place(cart.id(), "replica-k").await;
    assert_eq!(order.pricing().lines[0].variant_id, v);
    assert_eq!(shop.engine.stock(v).await.unwrap().reserved, 2);
    // Staff order listings read the replica too (which has no orders), while
    // reading the order itself — under its version — reads the primary.
    let page = shop
        .engine
        .find_orders(
            &Actor::Staff("wes".into()),
            &cartwright::order::OrderQuery::default(),
        )
        .await
        .unwrap();
    assert!(
        page.orders.is_empty(),
        "order listings come from the replica"
    );
    shop.engine.order(&Actor::System, order.id()).await.unwrap();
}

/// A URL naming several hosts is split, each host tried in order for the
/// primary; a malformed one is a typed error that does not echo the URL.
#[tokio::test]
async fn multi_host_urls_are_checked() {
    for bad in [
        "postgres://u:secret@/db",
        "postgres://u:secret@a:1,,b:2/db",
        "no-scheme-secret",
    ] {
        match PgStore::connect(bad).await {
            Err(Error::Invalid { reason, .. }) => assert!(!reason.contains("secret"), "{reason}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    let many = format!(
        "postgres://u@{}/db",
        (0..20)
            .map(|i| format!("h{i}:5432"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(matches!(
        PgStore::connect(&many).await,
        Err(Error::LimitExceeded { .. })
    ));
}

/// Every write transaction of the store is retried on a serialization
/// failure (40001) and a deadlock (40P01): a trigger on every table (found
/// in the catalog) raises one or the other on one write in twenty, and a
/// day of the shop's work — catalog, accounts, carts, checkout with a
/// coupon and a gift card, a waiting payment, capture, shipment, return,
/// refund, cancellation, events, erasure — must go through untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transaction_is_retried_on_serialization_failures_and_deadlocks() {
    use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
    use cartwright::order::LineQuantity;

    let shop = Shop::new(common::Backend::Postgres).await;
    let pool = shop_pool(&shop);
    sqlx::raw_sql(
        "CREATE SEQUENCE cw_test_writes;
         CREATE FUNCTION cw_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
         DECLARE n bigint := nextval('cw_test_writes');
         BEGIN
             IF n % 20 = 7 THEN
                 RAISE EXCEPTION 'injected' USING ERRCODE =
                     CASE WHEN (n / 20) % 2 = 0 THEN '40001' ELSE '40P01' END;
             END IF;
             RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
         END $$;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables
         WHERE schemaname = current_schema() AND tablename LIKE 'cw\\_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tables.len() > 20, "{tables:?}");
    for table in &tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TRIGGER cw_test_fault BEFORE INSERT OR UPDATE OR DELETE ON {table}
             FOR EACH ROW EXECUTE FUNCTION cw_test_fault()"
        )))
        .execute(&pool)
        .await
        .unwrap();
    }

    let staff = Actor::Staff("wes".into());
    let key = |k: &str| cartwright::id::IdempotencyKey::new(k).unwrap();
    let v = shop.product("RETRY-1", "10.00", 50).await;
    let w = shop.product("RETRY-2", "4.00", 50).await;
    let promo = shop
        .engine
        .save_promotion(&Actor::System, common::ten_percent_coded())
        .await
        .unwrap();
    shop.engine
        .create_coupon(&Actor::System, promo.id, "SAVE10", Some(100))
        .await
        .unwrap();
    let code = shop
        .engine
        .issue_gift_card(
            &staff,
            cartwright::giftcards::NewGiftCard::new(common::usd("5.00")),
            &key("gc"),
        )
        .await
        .unwrap()
        .code;
    let ann = shop.customer("ann@example.com").await;
    let me = Actor::Customer(ann.id());
    shop.engine
        .add_address(&me, ann.id(), common::address())
        .await
        .unwrap();
    let reset = shop
        .engine
        .request_password_reset("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    shop.engine
        .reset_password(&reset.token, "another-pass-1", false)
        .await
        .unwrap();
    shop.engine
        .grant_store_credit(&staff, ann.id(), common::usd("2.00"), "sorry", &key("sc"))
        .await
        .unwrap();
    for round in 0..6 {
        let cart = shop.engine.create_cart(&me, Currency::USD).await.unwrap();
        shop.engine.add_item(&me, cart.id(), v, 2).await.unwrap();
        shop.engine.add_item(&me, cart.id(), w, 1).await.unwrap();
        shop.engine
            .add_coupon_code(&me, cart.id(), "save10")
            .await
            .unwrap();
        shop.complete_details(&me, cart.id()).await;
        let mut request =
            CheckoutRequest::new(cart.id(), key(&format!("r{round}")), "tok_visa", me.clone());
        if round == 0 {
            request = request.gift_card(&code).store_credit(true);
        }
        let order = shop.engine.checkout(request).await.unwrap().order;
        let line = order.pricing().lines[0].line_id;
        match round % 3 {
            0 => {
                shop.engine
                    .ship(
                        &staff,
                        order.id(),
                        ShipmentRequest::new(vec![LineQuantity {
                            line_id: line,
                            quantity: 2,
                        }])
                        .carrier("UPS")
                        .tracking_number(String::new())
                        .location(None),
                    )
                    .await
                    .unwrap();
                shop.engine
                    .return_items(
                        &staff,
                        order.id(),
                        ReturnRequest::new(
                            vec![LineQuantity {
                                line_id: line,
                                quantity: 1,
                            }],
                            key(&format!("ret{round}")),
                        ),
                    )
                    .await
                    .unwrap();
            }
            1 => {
                shop.engine
                    .refund(
                        &staff,
                        order.id(),
                        cartwright::money_path::ManualRefund::new(
                            common::usd("1.00"),
                            "goodwill",
                            key(&format!("ref{round}")),
                        ),
                    )
                    .await
                    .unwrap();
            }
            _ => {
                shop.engine
                    .cancel(&staff, order.id(), "changed mind")
                    .await
                    .unwrap();
            }
        }
    }
    // A payment that waits, then completes.
    let cart = shop.ready_cart(&[(v, 1)]).await;
    let step = shop
        .engine
        .start_checkout(CheckoutRequest::new(
            cart.id(),
            key("w"),
            "tok_3ds",
            Actor::Guest,
        ))
        .await
        .unwrap();
    let cartwright::checkout::CheckoutStep::AwaitingPayment(session) = step else {
        panic!("expected a waiting payment");
    };
    shop.payments.complete_action(&session.reference).unwrap();
    shop.engine
        .complete_checkout(&Actor::Guest, cart.id(), &key("w"))
        .await
        .unwrap();
    let events = common::pending(&shop.engine, "retry-test", 100).await;
    shop.engine
        .ack_events(&Actor::System, "retry-test", events.last().unwrap().id)
        .await
        .unwrap();
    shop.engine.run_maintenance(&Actor::System).await.unwrap();
    shop.engine.erase_customer(&staff, ann.id()).await.unwrap();

    let writes: i64 = sqlx::query_scalar("SELECT last_value FROM cw_test_writes")
        .fetch_one(&pool)
        .await
        .unwrap();
    eprintln!(
        "retries: {writes} writes, {} of them failed (40001 and 40P01) and were retried",
        writes / 20
    );
    assert!(
        writes / 20 >= 10,
        "only {writes} writes: the workload did too little"
    );
}
