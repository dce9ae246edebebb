//! Seeded random sequences of partial captures, shipments and returns: no
//! cent appears or disappears, refunds never exceed captures, and returning
//! everything gives back exactly what was captured.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::fulfillment::{ReturnRequest, ShipmentRequest};
use cartwright::id::IdempotencyKey;
use cartwright::order::{LineQuantity, ShippingRefund};
use cartwright::prelude::*;
use cartwright::pricing::{Action, LineFilter, Promotion};
use common::{Backend, Shop, ShopOptions};

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

async fn money_is_conserved(backend: Backend) {
    for seed in 1..=6u64 {
        let mut rng = Rng(seed);
        let shop = Shop::with(
            backend,
            ShopOptions {
                capture: CaptureMode::Manual,
                ..Default::default()
            },
        )
        .await;
        let mut lines = Vec::new();
        for i in 0..1 + rng.below(4) {
            let price = format!("{}.{:02}", 1 + rng.below(50), rng.below(100));
            lines.push((
                shop.product(&format!("P{i}"), &price, 100).await,
                1 + rng.below(5) as u32,
            ));
        }
        if seed % 2 == 1 {
            // Discounts with uneven splits flow through captures and refunds.
            shop.engine
                .save_promotion(
                    &Actor::System,
                    Promotion::new(
                        "13% off",
                        Action::PercentOffOrder {
                            percent: 13.into(),
                            max_discount: None,
                        },
                    ),
                )
                .await
                .unwrap();
            shop.engine
                .save_promotion(
                    &Actor::System,
                    Promotion::new(
                        "3 for 2",
                        Action::BuyXGetY {
                            buy: LineFilter::Any,
                            buy_quantity: 2,
                            get: LineFilter::Any,
                            get_quantity: 1,
                            percent: 100.into(),
                            max_applications: None,
                        },
                    )
                    .priority(1),
                )
                .await
                .unwrap();
        }
        let cart = shop.ready_cart(&lines).await;
        let order = shop.place(cart.id(), "k").await;
        if seed % 2 == 1 {
            assert!(!order.pricing().discount_total.is_zero());
        }
        let total = order.total();
        let staff = Actor::Staff("prop".into());

        // Partial captures up to the total.
        let mut n = 0;
        loop {
            let left = shop
                .engine
                .order(&staff, order.id())
                .await
                .unwrap()
                .payment()
                .capturable()
                .unwrap();
            if left.is_zero() {
                break;
            }
            n += 1;
            let minor = left.to_minor().unwrap();
            let amount = if rng.below(3) == 0 {
                None
            } else {
                Some(Money::from_minor(
                    1 + (rng.below(minor as u64) as i64),
                    Currency::USD,
                ))
            };
            shop.engine
                .capture_partial(
                    &staff,
                    order.id(),
                    amount,
                    &IdempotencyKey::new(format!("c{n}")).unwrap(),
                )
                .await
                .unwrap();
        }
        // Ship everything in random pieces.
        let order = shop.engine.order(&staff, order.id()).await.unwrap();
        for line in &order.pricing().lines {
            let mut left = line.quantity;
            while left > 0 {
                let q = 1 + rng.below(u64::from(left)) as u32;
                shop.engine
                    .ship(
                        &staff,
                        order.id(),
                        ShipmentRequest::new(vec![LineQuantity {
                            line_id: line.line_id,
                            quantity: q,
                        }])
                        .carrier("DHL")
                        .tracking_number(String::new())
                        .location(None),
                    )
                    .await
                    .unwrap();
                left -= q;
            }
        }
        // Return everything in random pieces; check the books after each step.
        let mut r = 0;
        for line in &order.pricing().lines {
            let mut left = line.quantity;
            while left > 0 {
                let q = 1 + rng.below(u64::from(left)) as u32;
                r += 1;
                let o = shop
                    .engine
                    .return_items(
                        &staff,
                        order.id(),
                        ReturnRequest::new(
                            vec![LineQuantity {
                                line_id: line.line_id,
                                quantity: q,
                            }],
                            IdempotencyKey::new(format!("r{r}")).unwrap(),
                        )
                        .restock(rng.below(2) == 0)
                        .shipping(ShippingRefund::WhenAllReturned),
                    )
                    .await
                    .unwrap();
                let p = o.payment();
                assert!(
                    p.refunded().checked_cmp(&p.captured()).unwrap().is_le(),
                    "seed {seed}"
                );
                let auth = &shop.payments.authorizations()[0];
                assert_eq!(
                    (auth.captured, auth.refunded),
                    (p.captured(), p.refunded()),
                    "seed {seed}: the books agree with the gateway"
                );
                left -= q;
            }
        }
        let o = shop.engine.order(&staff, order.id()).await.unwrap();
        assert_eq!(o.payment().captured(), total, "seed {seed}");
        assert_eq!(
            o.payment().refunded(),
            total,
            "seed {seed}: every cent captured came back"
        );
        let sum: Money = Money::sum(Currency::USD, o.returns().iter().map(|r| &r.refund)).unwrap();
        assert_eq!(sum, total, "seed {seed}");
    }
}

conformance!(money_is_conserved);
