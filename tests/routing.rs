//! Fulfilment routing, on both stores: the built-in routers choose where
//! units ship from; each origin's units are priced as a parcel of their own
//! (from that location's address) and the charges add up; checkout holds
//! exactly the routed units there, routes again when stock moved since it
//! was read (never overselling, never charging another total than the one
//! shown), and a router's wrong answer is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::{Arc, Mutex};

use cartwright::clock::Clock;
use cartwright::customer::{Address, NewAddress};
use cartwright::fulfillment::ShipmentRequest;
use cartwright::id::{LocationId, VariantId};
use cartwright::inventory::{
    ByPriority, FulfilmentRouter, Location, Nearest, OneLocationFirst, ReservationLine,
    RoutingRequest, StockRequest,
};
use cartwright::prelude::*;
use cartwright::shipping::{ShippingInput, ShippingRate, ShippingRates};
use common::{Backend, Shop, ShopOptions, request, usd};

/// What one parcel was priced with.
#[derive(Debug, Clone, PartialEq)]
struct Asked {
    origin: Option<LocationId>,
    from: Option<String>,
    subtotal: Money,
    items: u64,
    weight: u64,
}

/// `standard` 5.00 a parcel; `zone` 3.00 from a location in the
/// destination's country, 20.00 from abroad, 8.00 from an unknown place.
/// Records every parcel asked about.
#[derive(Default)]
struct OriginRates {
    asked: Mutex<Vec<Asked>>,
}

impl ShippingRates for OriginRates {
    fn rates(&self, input: &ShippingInput<'_>) -> cartwright::Result<Vec<ShippingRate>> {
        self.asked.lock().unwrap().push(Asked {
            origin: input.origin,
            from: input.ship_from.map(|a| a.country.to_string()),
            subtotal: input.subtotal,
            items: input.items,
            weight: input.weight_grams,
        });
        let zone = match (input.ship_from, input.destination) {
            (Some(from), Some(to)) if from.country == to.country => "3.00",
            (Some(_), _) => "20.00",
            (None, _) => "8.00",
        };
        Ok(vec![
            ShippingRate::new("standard", "Standard", usd("5.00")),
            ShippingRate::new("zone", "Zone", usd(zone)),
        ])
    }
}

fn place(country: &str) -> Address {
    Address::new(NewAddress::new("Dock", "1 Quay", "Town", "12345", country)).unwrap()
}

struct World {
    shop: Shop,
    rates: Arc<OriginRates>,
    /// Warehouse (the shop's, priority 0, no address), East (1, in the
    /// US), West (2, in Germany).
    east: LocationId,
    west: LocationId,
}

async fn world(backend: Backend, router: Arc<dyn FulfilmentRouter>) -> World {
    world_with(backend, router, false).await
}

/// As [`world`], with a fault injector in front of the store when `faulty`.
async fn world_with(backend: Backend, router: Arc<dyn FulfilmentRouter>, faulty: bool) -> World {
    let rates = Arc::new(OriginRates::default());
    let options = ShopOptions {
        shipping: Some(rates.clone()),
        router: Some(router),
        faulty,
        ..ShopOptions::default()
    };
    let shop = Shop::with(backend, options).await;
    let add = |name: &str, priority: u32, country: &str| {
        Location::new(name, priority)
            .unwrap()
            .with_address(place(country))
    };
    let east = shop
        .engine
        .add_location(&Actor::System, add("East", 1, "us"))
        .await
        .unwrap()
        .id();
    let west = shop
        .engine
        .add_location(&Actor::System, add("West", 2, "de"))
        .await
        .unwrap()
        .id();
    World {
        shop,
        rates,
        east,
        west,
    }
}

impl World {
    /// A product at 10.00 (100 g) with `stock` units at (warehouse, east, west).
    async fn product(&self, sku: &str, stock: [i64; 3]) -> VariantId {
        let v = self.shop.product(sku, "10.00", stock[0]).await;
        for (at, n) in [(self.east, stock[1]), (self.west, stock[2])] {
            if n > 0 {
                self.shop
                    .engine
                    .set_stock(&Actor::System, v, at, n)
                    .await
                    .unwrap();
            }
        }
        v
    }

    /// Units reserved of `v` per location (warehouse, east, west).
    async fn reserved(&self, v: VariantId) -> [i64; 3] {
        let stock = self.shop.engine.stock(v).await.unwrap();
        let at = |l: LocationId| {
            stock
                .levels
                .iter()
                .find(|x| x.location_id == l)
                .map_or(0, |x| x.reserved)
        };
        [at(self.shop.warehouse), at(self.east), at(self.west)]
    }
}

fn expecting(mut req: CheckoutRequest, total: Money) -> CheckoutRequest {
    req.expected_total = Some(total);
    req
}

fn origins(priced: &cartwright::pricing::PricedCart) -> Vec<Option<LocationId>> {
    priced.fulfilment.iter().map(|p| p.location_id).collect()
}

async fn priority_splits_and_prices_each_parcel(backend: Backend) {
    let w = world(backend, Arc::new(ByPriority)).await;
    let a = w.product("A", [5, 0, 5]).await;
    let b = w.product("B", [0, 0, 5]).await;
    let cart = w.shop.ready_cart(&[(a, 2), (b, 1)]).await;
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert_eq!(origins(&p), vec![Some(w.shop.warehouse), Some(w.west)]);
    // Two parcels at 5.00 each, taxed 10 %.
    let charge = p.shipping.as_ref().unwrap();
    assert_eq!(charge.amount, usd("10.00"));
    assert_eq!(charge.total, usd("11.00"));
    assert_eq!(
        p.fulfilment
            .iter()
            .map(|x| x.price.unwrap())
            .collect::<Vec<_>>(),
        vec![usd("5.00"), usd("5.00")]
    );
    assert_eq!(p.total, usd("44.00"));
    let order = w.shop.place(cart.id(), "split").await;
    assert_eq!(order.pricing().fulfilment, p.fulfilment);
    assert_eq!(w.reserved(a).await, [2, 0, 0]);
    assert_eq!(w.reserved(b).await, [0, 0, 1]);
    // Each parcel ships from where it was routed.
    for parcel in &p.fulfilment {
        let order = w
            .shop
            .engine
            .ship(
                &Actor::Staff("ship".into()),
                order.id(),
                ShipmentRequest::parcel(parcel).carrier("UPS"),
            )
            .await
            .unwrap();
        let shipped = order.shipments().last().unwrap();
        assert!(
            shipped
                .stock
                .iter()
                .all(|l| Some(l.location_id) == parcel.location_id)
        );
    }
    let stock = w.shop.engine.stock(a).await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (8, 0));
}

async fn one_location_first_keeps_the_cart_together(backend: Backend) {
    let w = world(backend, Arc::new(OneLocationFirst)).await;
    let a = w.product("A", [5, 0, 5]).await;
    let b = w.product("B", [0, 0, 5]).await;
    let cart = w.shop.ready_cart(&[(a, 2), (b, 1)]).await;
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert_eq!(origins(&p), vec![Some(w.west)]);
    assert_eq!(p.shipping.as_ref().unwrap().amount, usd("5.00"));
    w.shop.place(cart.id(), "together").await;
    assert_eq!(w.reserved(a).await, [0, 0, 2]);
    assert_eq!(w.reserved(b).await, [0, 0, 1]);
    // Nobody has it all: split by priority.
    let c = w.product("C", [0, 3, 0]).await;
    let cart = w.shop.ready_cart(&[(a, 1), (c, 1)]).await;
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert_eq!(origins(&p), vec![Some(w.shop.warehouse), Some(w.east)]);
}

/// 0 from a location in the destination's country, 1 from elsewhere, none
/// when the location has no address.
fn same_country(to: &Address, at: &Location) -> Option<u64> {
    at.address()
        .map(|from| if from.country == to.country { 0 } else { 1 })
}

async fn nearest_ships_from_the_nearest_and_prices_from_there(backend: Backend) {
    let w = world(backend, Arc::new(Nearest::new(same_country))).await;
    let a = w.product("A", [5, 5, 5]).await;
    let cart = w.shop.ready_cart(&[(a, 2)]).await;
    w.shop
        .engine
        .set_shipping_method(&Actor::Guest, cart.id(), "zone")
        .await
        .unwrap();
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    // The buyer is in the US: East, priced from its US address.
    assert_eq!(origins(&p), vec![Some(w.east)]);
    assert_eq!(p.shipping.as_ref().unwrap().amount, usd("3.00"));
    let last = w.rates.asked.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.origin, Some(w.east));
    assert_eq!(last.from.as_deref(), Some("US"));
    // East runs short: the next known distance (West, abroad) before the
    // warehouse of unknown distance.
    w.shop
        .engine
        .set_stock(&Actor::System, a, w.east, 1)
        .await
        .unwrap();
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert_eq!(origins(&p), vec![Some(w.east), Some(w.west)]);
    assert_eq!(p.shipping.as_ref().unwrap().amount, usd("23.00"));
    let order = w
        .shop
        .engine
        .checkout(expecting(request(cart.id(), "near"), p.total))
        .await
        .unwrap()
        .order;
    assert_eq!(order.total(), p.total);
    assert_eq!(w.reserved(a).await, [0, 1, 1]);
}

async fn a_split_line_shares_its_amount_and_weight_exactly(backend: Backend) {
    let w = world(backend, Arc::new(ByPriority)).await;
    let a = w.product("A", [2, 0, 5]).await;
    let cart = w.shop.ready_cart(&[(a, 3)]).await;
    w.rates.asked.lock().unwrap().clear();
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    let asked = w.rates.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(
        asked
            .iter()
            .map(|x| (x.origin, x.subtotal, x.items, x.weight))
            .collect::<Vec<_>>(),
        vec![
            (Some(w.shop.warehouse), usd("20.00"), 2, 200),
            (Some(w.west), usd("10.00"), 1, 100),
        ]
    );
    let units: Vec<u32> = p
        .fulfilment
        .iter()
        .map(|x| x.units.iter().map(|u| u.quantity).sum())
        .collect();
    assert_eq!(units, vec![2, 1]);
    // An untracked line rides with the first parcel.
    let free = w
        .shop
        .product_with(
            "U",
            NewVariant::shipped("")
                .prices(vec![usd("1.00")])
                .inventory(InventoryPolicy::Untracked)
                .status(Status::Active),
        )
        .await
        .variants()[0]
        .id();
    w.shop
        .engine
        .add_item(&Actor::Guest, cart.id(), free, 1)
        .await
        .unwrap();
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert_eq!(p.fulfilment.len(), 2);
    assert_eq!(p.fulfilment[0].units.len(), 2);
}

async fn stock_that_moved_is_routed_again_at_checkout(backend: Backend) {
    let w = world(backend, Arc::new(ByPriority)).await;
    let a = w.product("A", [2, 0, 5]).await;
    let cart = w.shop.ready_cart(&[(a, 2)]).await;
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert_eq!(origins(&p), vec![Some(w.shop.warehouse)]);
    // The warehouse sells out after the buyer saw the price: the same
    // total from West, so the checkout goes through from there.
    w.shop
        .engine
        .set_stock(&Actor::System, a, w.shop.warehouse, 0)
        .await
        .unwrap();
    let order = w
        .shop
        .engine
        .checkout(expecting(request(cart.id(), "moved"), p.total))
        .await
        .unwrap()
        .order;
    assert_eq!(origins(order.pricing()), vec![Some(w.west)]);
    assert_eq!(w.reserved(a).await, [0, 0, 2]);

    // Where the new origin costs more, the total shown is not charged.
    let cart = w.shop.ready_cart(&[(a, 1)]).await;
    w.shop
        .engine
        .set_shipping_method(&Actor::Guest, cart.id(), "zone")
        .await
        .unwrap();
    w.shop
        .engine
        .set_stock(&Actor::System, a, w.east, 1)
        .await
        .unwrap();
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert_eq!(origins(&p), vec![Some(w.east)]);
    w.shop
        .engine
        .set_stock(&Actor::System, a, w.east, 0)
        .await
        .unwrap();
    let e = w
        .shop
        .engine
        .checkout(expecting(request(cart.id(), "dearer"), p.total))
        .await;
    assert!(matches!(e, Err(Error::PriceChanged { .. })), "{e:?}");
    assert_eq!(w.reserved(a).await, [0, 0, 2], "nothing more held");
    assert_eq!(w.shop.payments.authorizations().len(), 1, "nothing charged");
}

async fn stock_taken_during_the_checkout_is_routed_around(backend: Backend) {
    use cartwright::testkit::{StoreCommand, When};
    let w = world_with(backend, Arc::new(ByPriority), true).await;
    let a = w.product("A", [2, 0, 5]).await;
    let cart = w.shop.ready_cart(&[(a, 2)]).await;
    let faults = w.shop.faults.clone().unwrap();
    // The general path: routed (to the warehouse), then held at the gate
    // while someone else buys the warehouse's units.
    faults.inject(StoreCommand::BeginAndReserve, When::Before);
    let gate = faults.stall(StoreCommand::ReserveForCheckout);
    let engine = w.shop.engine.clone();
    let id = cart.id();
    let run = tokio::spawn(async move { engine.checkout(request(id, "gate")).await });
    gate.arrived().await;
    w.shop
        .engine
        .reserve_stock(&Actor::System, &[(a, 2)])
        .await
        .unwrap();
    assert_eq!(w.reserved(a).await, [2, 0, 0]);
    gate.open();
    let order = run.await.unwrap().unwrap().order;
    assert_eq!(origins(order.pricing()), vec![Some(w.west)]);
    assert_eq!(w.reserved(a).await, [2, 0, 2]);
}

async fn concurrent_routed_checkouts_never_oversell(backend: Backend) {
    let w = world(backend, Arc::new(OneLocationFirst)).await;
    let a = w.product("A", [2, 2, 2]).await;
    let mut carts = Vec::new();
    for _ in 0..6 {
        carts.push(w.shop.ready_cart(&[(a, 1)]).await.id());
    }
    // Every cart priced first: all routed to the warehouse.
    for c in &carts {
        w.shop.engine.price_cart(&Actor::Guest, *c).await.unwrap();
    }
    let runs = carts.iter().enumerate().map(|(i, c)| {
        let engine = w.shop.engine.clone();
        let c = *c;
        tokio::spawn(async move { engine.checkout(request(c, &format!("race-{i}"))).await })
    });
    let mut placed = 0;
    for run in runs {
        match run.await.unwrap() {
            Ok(_) => placed += 1,
            Err(Error::OutOfStock { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    // As many buyers as units: each is sold one, wherever it is.
    assert_eq!(placed, 6, "every unit sold, none twice");
    let late = w.shop.ready_cart(&[(a, 1)]).await;
    let e = w.shop.engine.checkout(request(late.id(), "late")).await;
    assert!(matches!(e, Err(Error::OutOfStock { .. })), "{e:?}");
    assert_eq!(w.reserved(a).await, [2, 2, 2]);
    let stock = w.shop.engine.stock(a).await.unwrap();
    assert!(stock.levels.iter().all(|l| l.available() >= 0));
}

/// Routes every unit to a location that is not the shop's, or to the
/// first location one unit short.
struct Wrong {
    short: bool,
}

impl FulfilmentRouter for Wrong {
    fn route(&self, request: &RoutingRequest<'_>) -> cartwright::Result<Vec<ReservationLine>> {
        if self.short {
            let mut lines = request.by_ranking(&request.by_priority()[..1], false);
            lines[0].quantity -= 1;
            Ok(lines)
        } else {
            Ok(request.by_ranking(&[LocationId::new()], false))
        }
    }
}

async fn a_wrong_route_is_refused(backend: Backend) {
    for short in [false, true] {
        let shop = Shop::with(
            backend,
            ShopOptions {
                router: Some(Arc::new(Wrong { short })),
                ..ShopOptions::default()
            },
        )
        .await;
        let a = shop.product("A", "10.00", 5).await;
        let cart = shop.ready_cart(&[(a, 2)]).await;
        let e = shop.engine.price_cart(&Actor::Guest, cart.id()).await;
        assert!(
            matches!(
                &e,
                Err(Error::Invalid {
                    field: "fulfilment router",
                    ..
                })
            ),
            "{e:?}"
        );
        let e = shop.engine.checkout(request(cart.id(), "wrong")).await;
        assert!(matches!(&e, Err(Error::Invalid { .. })), "{e:?}");
        assert!(shop.payments.authorizations().is_empty());
        assert_eq!(shop.engine.stock(a).await.unwrap().reserved, 0);
    }
}

async fn the_store_holds_bound_units_only_where_bound(backend: Backend) {
    let w = world(backend, Arc::new(ByPriority)).await;
    let a = w.product("A", [2, 0, 5]).await;
    let store = common::raw_store(&w.shop.backing);
    let now = w.shop.clock.now();
    let at = |location, quantity| StockRequest {
        variant_id: a,
        quantity,
        policy: InventoryPolicy::default(),
        channel: None,
        location,
    };
    let later = now + chrono::Duration::minutes(10);
    // Three at the warehouse is one too many, though West has five.
    let e = store
        .reserve(&[at(Some(w.shop.warehouse), 3)], &[], later, now)
        .await;
    assert!(
        matches!(e, Err(Error::OutOfStock { available: 2, .. })),
        "{e:?}"
    );
    let e = store
        .reserve(&[at(Some(LocationId::new()), 1)], &[], later, now)
        .await;
    assert!(matches!(e, Err(Error::Invalid { .. })), "{e:?}");
    assert_eq!(w.reserved(a).await, [0, 0, 0], "nothing held");
    // Bound and unbound units of one variant never count a unit twice.
    let r = store
        .reserve(
            &[at(None, 4), at(Some(w.shop.warehouse), 2)],
            &[],
            later,
            now,
        )
        .await
        .unwrap();
    assert_eq!(r.lines.iter().map(|l| l.quantity).sum::<u32>(), 6);
    assert_eq!(w.reserved(a).await, [2, 0, 4]);
}

async fn a_channel_routes_only_from_its_locations(backend: Backend) {
    let w = world(backend, Arc::new(OneLocationFirst)).await;
    let a = w.product("A", [5, 5, 5]).await;
    let product = w.shop.engine.variant_by_sku("A").await.unwrap();
    let mut channel =
        cartwright::channel::SalesChannel::new("EU", &[Currency::USD], chrono::Utc::now());
    channel.products = Some([product.variant.product_id()].into());
    channel.locations = Some([w.west].into());
    let channel = w
        .shop
        .engine
        .save_channel(&Actor::System, channel)
        .await
        .unwrap();
    let cart = w
        .shop
        .engine
        .create_cart_in(&Actor::Guest, channel.id, Currency::USD)
        .await
        .unwrap();
    w.shop
        .engine
        .add_item(&Actor::Guest, cart.id(), a, 2)
        .await
        .unwrap();
    w.shop.complete_details(&Actor::Guest, cart.id()).await;
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    assert_eq!(origins(&p), vec![Some(w.west)]);
    w.shop.place(cart.id(), "eu").await;
    assert_eq!(w.reserved(a).await, [0, 0, 2]);
}

conformance!(
    priority_splits_and_prices_each_parcel,
    one_location_first_keeps_the_cart_together,
    nearest_ships_from_the_nearest_and_prices_from_there,
    a_split_line_shares_its_amount_and_weight_exactly,
    stock_that_moved_is_routed_again_at_checkout,
    concurrent_routed_checkouts_never_oversell,
    stock_taken_during_the_checkout_is_routed_around,
    a_wrong_route_is_refused,
    the_store_holds_bound_units_only_where_bound,
    a_channel_routes_only_from_its_locations,
);

/// Random stock over three locations and a random cart of three variants:
/// every shipped unit is in exactly one parcel, the charge is the sum of
/// the parcels' prices, and checkout either holds exactly the priced
/// parcels' units where they were priced from, or (short of stock
/// everywhere) holds nothing.
async fn random_routes_keep_units_and_money(
    together: bool,
    stock: Vec<[i64; 3]>,
    quantities: Vec<u32>,
) {
    let router: Arc<dyn FulfilmentRouter> = if together {
        Arc::new(OneLocationFirst)
    } else {
        Arc::new(ByPriority)
    };
    let w = world(Backend::Memory, router).await;
    let mut variants = Vec::new();
    for (i, s) in stock.iter().enumerate() {
        variants.push(w.product(&format!("V{i}"), *s).await);
    }
    let lines: Vec<(VariantId, u32)> = variants
        .iter()
        .zip(&quantities)
        .filter(|(_, q)| **q > 0)
        .map(|(v, q)| (*v, *q))
        .collect();
    if lines.is_empty() {
        return;
    }
    let cart = w.shop.ready_cart(&lines).await;
    w.shop
        .engine
        .set_shipping_method(&Actor::Guest, cart.id(), "zone")
        .await
        .unwrap();
    let p = w
        .shop
        .engine
        .price_cart(&Actor::Guest, cart.id())
        .await
        .unwrap();
    for line in &p.lines {
        let parcelled: u32 = p
            .fulfilment
            .iter()
            .flat_map(|x| &x.units)
            .filter(|u| u.line_id == line.line_id)
            .map(|u| u.quantity)
            .sum();
        assert_eq!(parcelled, line.quantity);
    }
    let mut sum = usd("0.00");
    for x in &p.fulfilment {
        sum = sum.checked_add(x.price.unwrap()).unwrap();
    }
    assert_eq!(sum, p.shipping.as_ref().unwrap().amount);
    let enough = quantities
        .iter()
        .zip(&stock)
        .all(|(q, s)| i64::from(*q) <= s.iter().sum::<i64>());
    let placed = w.shop.engine.checkout(request(cart.id(), "random")).await;
    for (i, v) in variants.iter().enumerate() {
        let reserved = w.reserved(*v).await;
        let stock = w.shop.engine.stock(*v).await.unwrap();
        assert!(stock.levels.iter().all(|l| l.available() >= 0));
        let priced: [i64; 3] = [w.shop.warehouse, w.east, w.west].map(|at| {
            p.fulfilment
                .iter()
                .filter(|x| x.location_id == Some(at))
                .flat_map(|x| &x.units)
                .filter(|u| {
                    p.lines
                        .iter()
                        .any(|l| l.line_id == u.line_id && l.variant_id == *v)
                })
                .map(|u| i64::from(u.quantity))
                .sum()
        });
        match &placed {
            Ok(_) => assert_eq!(reserved, priced, "variant {i}"),
            Err(_) => assert_eq!(reserved, [0, 0, 0], "variant {i}"),
        }
    }
    assert_eq!(placed.is_ok(), enough, "{:?}", placed.as_ref().err());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
    #[test]
    fn random_routes_keep_units_and_money_in_memory(
        together in proptest::prelude::any::<bool>(),
        stock in proptest::collection::vec(proptest::array::uniform3(0i64..4), 3),
        quantities in proptest::collection::vec(0u32..5, 3),
    ) {
        runtime().block_on(random_routes_keep_units_and_money(together, stock, quantities));
    }
}
