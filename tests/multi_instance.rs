//! Several application instances on one store: two engines, each with its own
//! connection pool on PostgreSQL (sharing one store in memory), selling the
//! same stock and racing on the same idempotency key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::rng::Rng;

use cartwright::id::VariantId;
use cartwright::prelude::*;
use common::{Backend, Shop, address, request};

/// Buys `quantity` units through `engine` with a fresh guest cart.
async fn buy(
    engine: &Engine,
    variant: VariantId,
    quantity: u32,
    key: String,
) -> Result<cartwright::order::Order> {
    let g = Actor::Guest;
    let cart = engine.create_cart(&g, Currency::USD).await?;
    engine.add_item(&g, cart.id(), variant, quantity).await?;
    engine.set_email(&g, cart.id(), "racer@example.com").await?;
    engine
        .set_shipping_address(&g, cart.id(), address())
        .await?;
    engine
        .set_shipping_method(&g, cart.id(), "standard")
        .await?;
    engine
        .checkout(request(cart.id(), &key))
        .await
        .map(|o| o.order)
}

async fn two_engines_sell_exactly_the_last_units(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 10).await;
    let engines = [shop.engine.clone(), shop.second_engine().await];
    let mut tasks = Vec::new();
    for i in 0..60 {
        let engine = engines[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            buy(&engine, a, 1, format!("k{i}")).await
        }));
    }
    let mut placed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => placed += 1,
            Err(Error::OutOfStock { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(placed, 10);
    let stock = shop.engine.stock(a).await.unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available()),
        (10, 10, 0)
    );
    assert_eq!(shop.payments.authorizations().len(), 10);
}

async fn one_key_through_both_engines_charges_once(backend: Backend) {
    let shop = Shop::new(backend).await;
    let a = shop.product("A", "10.00", 100).await;
    let cart = shop.ready_cart(&[(a, 1)]).await;
    let engines = [shop.engine.clone(), shop.second_engine().await];
    let mut tasks = Vec::new();
    for i in 0..40 {
        let engine = engines[i % 2].clone();
        let id = cart.id();
        tasks.push(tokio::spawn(async move {
            engine.checkout(request(id, "shared-key")).await
        }));
    }
    let mut orders = std::collections::BTreeSet::new();
    for t in tasks {
        orders.insert(t.await.unwrap().unwrap().order.id());
    }
    assert_eq!(orders.len(), 1, "one order");
    assert_eq!(shop.payments.authorizations().len(), 1, "one authorization");
    let captured: Vec<_> = shop
        .payments
        .authorizations()
        .into_iter()
        .filter(|a| !a.captured.is_zero())
        .collect();
    assert_eq!(captured.len(), 1, "one capture");
    assert_eq!(shop.engine.stock(a).await.unwrap().available(), 99);
}

/// The seeds to run: `OVERSELL_SEEDS=N` runs seeds 1..=N (default: 1, 7 and
/// 42); `OVERSELL_SEED=S` replays one.
fn oversell_seeds() -> Vec<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    match (var("OVERSELL_SEED"), var("OVERSELL_SEEDS")) {
        (Some(one), _) => vec![one],
        (None, Some(n)) => (1..=n).collect(),
        (None, None) => vec![1, 7, 42],
    }
}

async fn no_oversell_and_no_false_sold_out(backend: Backend) {
    for seed in oversell_seeds() {
        let shop = Shop::new(backend).await;
        let a = shop.product("A", "1.00", 1_000).await;
        let engines = [shop.engine.clone(), shop.second_engine().await];
        let mut tasks = Vec::new();
        for task in 0..64u64 {
            let engine = engines[usize::from(task % 2 == 1)].clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng(seed * 1_000 + task);
                let mut bought = 0u64;
                let mut n = 0;
                let mut quantity = 1 + u32::try_from(rng.next() % 3).unwrap();
                loop {
                    n += 1;
                    match buy(&engine, a, quantity, format!("s{seed}-t{task}-{n}")).await {
                        Ok(order) => {
                            bought += u64::from(order.pricing().lines[0].quantity);
                            quantity = 1 + u32::try_from(rng.next() % 3).unwrap();
                        }
                        // Too few for this order: try one unit; none left: stop.
                        Err(Error::OutOfStock { .. }) if quantity > 1 => quantity = 1,
                        Err(Error::OutOfStock { .. }) => return bought,
                        Err(e) => panic!("seed {seed} task {task}: {e}"),
                    }
                }
            }));
        }
        let mut sold = 0u64;
        for t in tasks {
            sold += t.await.unwrap();
        }
        let stock = shop.engine.stock(a).await.unwrap();
        assert!(
            stock.on_hand >= 0 && stock.available() >= 0,
            "seed {seed}: {stock:?}"
        );
        let left = u64::try_from(stock.available()).unwrap();
        assert_eq!(
            sold + left,
            1_000,
            "seed {seed}: every unit is sold or left"
        );
        assert_eq!(
            left, 0,
            "seed {seed}: every task saw 'sold out' for one unit, so none may remain"
        );
        assert_eq!(u64::try_from(stock.reserved).unwrap(), sold, "seed {seed}");
    }
}

conformance!(
    two_engines_sell_exactly_the_last_units,
    one_key_through_both_engines_charges_once,
    no_oversell_and_no_false_sold_out,
);
