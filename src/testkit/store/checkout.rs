//! The store conformance suite: checkout: waiting payments, the one-call read, the first commit, orders.

use super::*;

/// A checkout whose payment waits: parked with its stock, found by its
/// provider reference, never pruned, offered to recovery only once its
/// session expired, claimed by one settler at a time, and placed once when
/// many returns race.
pub(super) async fn waiting_payments(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "waiting payments";
    let gateway = Arc::new(crate::payment::TestPaymentProvider::new());
    let shipping = step(
        CHECK,
        FlatRateShipping::new().with_method("std", "Standard", &[usd(5_00)]),
    )?;
    let e = step(
        CHECK,
        Engine::builder()
            .store(store.clone())
            .shipping(Arc::new(shipping))
            .payment_provider(gateway.clone())
            .no_tax()
            .build(),
    )?;
    let a = product(&e, "W", 1, CHECK).await?;
    let guest = Actor::Guest;
    let cart = ready_cart(&e, a, 1, CHECK).await?;
    let key = step(CHECK, IdempotencyKey::new("conformance-waiting"))?;
    let request = CheckoutRequest::new(cart.id(), key.clone(), "tok_3ds", guest.clone());
    let step_one = step(CHECK, e.start_checkout(request).await)?;
    let crate::checkout::CheckoutStep::AwaitingPayment(session) = step_one else {
        return Err(Failure {
            check: CHECK,
            detail: format!("a 3-D Secure card did not wait: {step_one:?}"),
        });
    };
    let record = step(CHECK, store.checkout(&key).await)?;
    ensure(
        record.as_ref().is_some_and(|r| {
            r.state == crate::store::CheckoutState::AwaitingPayment
                && r.awaiting.as_ref().is_some_and(|w| w.session == session)
        }),
        CHECK,
        || format!("the parked checkout reads back as {record:?}"),
    )?;
    let found = step(
        CHECK,
        store
            .checkout_by_payment_reference(&session.reference)
            .await,
    )?;
    ensure(found.is_some_and(|r| r.key == key), CHECK, || {
        "the waiting checkout is not found by its reference".into()
    })?;
    let stock = step(CHECK, e.stock(a).await)?;
    ensure(stock.reserved == 1, CHECK, || {
        format!(
            "{} units reserved while waiting, expected 1",
            stock.reserved
        )
    })?;
    let expires = session.expires_at;
    let early = step(
        CHECK,
        store
            .stale_checkouts(expires - chrono::Duration::seconds(1), 10)
            .await,
    )?;
    ensure(early.iter().all(|r| r.key != key), CHECK, || {
        "a waiting checkout was offered to recovery before its session expired".into()
    })?;
    let late = step(CHECK, store.stale_checkouts(expires, 10).await)?;
    ensure(late.iter().any(|r| r.key == key), CHECK, || {
        "an expired session was not offered to recovery".into()
    })?;
    let pruned = step(
        CHECK,
        store
            .prune_checkouts(expires + chrono::Duration::days(365))
            .await,
    )?;
    ensure(pruned == 0, CHECK, || {
        "a waiting checkout was pruned".into()
    })?;

    // One settler at a time.
    let lease_until = chrono::Utc::now() + chrono::Duration::minutes(1);
    let claimed = step(CHECK, store.claim_awaiting(&key, lease_until).await)?;
    let second = step(CHECK, store.claim_awaiting(&key, lease_until).await)?;
    ensure(claimed.is_some() && second.is_none(), CHECK, || {
        "a waiting checkout was claimed twice, or not at all".into()
    })?;
    if let Some((lease, awaiting)) = claimed {
        step(
            CHECK,
            store
                .await_payment(
                    &lease,
                    &awaiting,
                    expires,
                    expires + chrono::Duration::minutes(2),
                    chrono::Utc::now(),
                )
                .await,
        )?;
    }

    // The customer acts; many returns race: one order.
    step(CHECK, gateway.complete_action(&session.reference))?;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (e, key) = (e.clone(), key.clone());
        let cart = cart.id();
        tasks.push(tokio::spawn(async move {
            e.complete_checkout(&Actor::Guest, cart, &key).await
        }));
    }
    for task in tasks {
        let done = step(CHECK, task.await)?;
        if let Ok(done) = done {
            let placed = done.placed().map(|o| o.order.id());
            ensure(placed == Some(session.order_id), CHECK, || {
                format!("a return answered {placed:?}")
            })?;
        }
    }
    let placed = step(CHECK, e.complete_checkout(&guest, cart.id(), &key).await)?;
    ensure(
        placed
            .placed()
            .is_some_and(|o| o.order.id() == session.order_id),
        CHECK,
        || "the completed payment placed no order".into(),
    )?;
    let holds = gateway.authorizations();
    ensure(holds.len() == 1, CHECK, || {
        format!("{} authorizations, expected 1", holds.len())
    })?;
    let claimed = step(CHECK, store.claim_awaiting(&key, lease_until).await)?;
    ensure(claimed.is_none(), CHECK, || {
        "a placed checkout could be claimed as waiting".into()
    })
}

/// Checkout's read: the cart and its pricing inputs in one call are what
/// reading them one by one gives.
pub(super) async fn cart_for_pricing(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "a cart and its pricing inputs in one read";
    let e = engine(store.clone(), CHECK)?;
    let a = product(&e, "A", 5, CHECK).await?;
    let b = product(&e, "B", 5, CHECK).await?;
    let gift = product(&e, "GIFT", 5, CHECK).await?;
    let system = Actor::System;
    let promotion = crate::pricing::Promotion::new(
        "Ten off",
        crate::pricing::Action::PercentOffOrder {
            percent: 10.into(),
            max_discount: None,
        },
    )
    .coded();
    let promotion = step(CHECK, e.save_promotion(&system, promotion).await)?;
    step(
        CHECK,
        e.create_coupon(&system, promotion.id, "TEN", None).await,
    )?;
    let cart = step(CHECK, e.create_cart(&Actor::Guest, Currency::USD).await)?;
    for v in [a, b] {
        step(CHECK, e.add_item(&Actor::Guest, cart.id(), v, 2).await)?;
    }
    step(
        CHECK,
        e.add_coupon_code(&Actor::Guest, cart.id(), "ten").await,
    )?;
    step(
        CHECK,
        e.add_coupon_code(&Actor::Guest, cart.id(), "NOSUCHCODE")
            .await,
    )?;

    let (read, inputs) = step(CHECK, store.cart_for_pricing(cart.id(), &[gift]).await)?;
    let alone = step(CHECK, store.cart(cart.id()).await)?;
    let mut ids = vec![a, b, gift];
    ids.sort_unstable();
    let expected = step(
        CHECK,
        store.pricing_inputs(&ids, alone.coupon_codes()).await,
    )?;
    let mut got: Vec<VariantId> = inputs.entries.keys().copied().collect();
    got.sort_unstable();
    ensure(read == alone, CHECK, || {
        "the cart read differs from `cart`".into()
    })?;
    ensure(got == ids, CHECK, || {
        format!("entries for {got:?}, expected {ids:?}")
    })?;
    ensure(
        inputs.coupons == expected.coupons && inputs.coupons.len() == 1,
        CHECK,
        || {
            format!(
                "coupons {:?}, expected {:?}",
                inputs.coupons, expected.coupons
            )
        },
    )?;
    ensure(inputs.version == expected.version, CHECK, || {
        format!(
            "pricing version {}, expected {}",
            inputs.version, expected.version
        )
    })?;
    let unknown = store.cart_for_pricing(crate::id::CartId::new(), &[]).await;
    ensure(
        matches!(unknown, Err(Error::NotFound { .. })),
        CHECK,
        || format!("an unknown cart answered {unknown:?}"),
    )
}

/// The combined first commit: claims a new key and holds its stock, all or
/// nothing; `None` (nothing written) for a key that exists or stock that is
/// not there; never oversold when many keys race for the last units.
pub(super) async fn first_commit(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "claim and reserve in one command";
    let e = engine(store.clone(), CHECK)?;
    let a = product(&e, "A", 5, CHECK).await?;
    let now = chrono::Utc::now();
    let begin = |key: &str| -> Result<crate::store::BeginCheckout, Failure> {
        Ok(crate::store::BeginCheckout {
            key: step(CHECK, IdempotencyKey::new(key))?,
            cart_id: crate::id::CartId::new(),
            payment_token: "tok_visa".into(),
            now,
            lease_until: now + chrono::Duration::minutes(2),
        })
    };
    let request = move |quantity: u32| StockRequest {
        variant_id: a,
        quantity,
        policy: InventoryPolicy::Tracked {
            allow_backorder: false,
        },
        channel: None,
        location: None,
    };
    let until = now + chrono::Duration::minutes(10);
    let available = |e: &Engine| {
        let e = e.clone();
        async move { step(CHECK, e.stock(a).await).map(|s| s.available()) }
    };
    // Too much: nothing written, the key still free.
    let short = step(
        CHECK,
        store
            .begin_and_reserve(begin("short")?, &[request(6)], &[], until)
            .await,
    )?;
    ensure(short.is_none(), CHECK, || {
        "reserved more than is on hand".into()
    })?;
    ensure(available(&e).await? == 5, CHECK, || {
        "a refused first commit held stock".into()
    })?;
    let record = step(
        CHECK,
        store
            .checkout(&step(CHECK, IdempotencyKey::new("short"))?)
            .await,
    )?;
    ensure(record.is_none(), CHECK, || {
        "a refused first commit claimed the key".into()
    })?;
    // Enough: claimed and held, or not offered at all.
    let first = step(
        CHECK,
        store
            .begin_and_reserve(begin("k")?, &[request(2)], &[], until)
            .await,
    )?;
    if let Some((lease, reservation)) = first {
        let held: u32 = reservation.lines.iter().map(|l| l.quantity).sum();
        ensure(lease.attempt == 1 && held == 2, CHECK, || {
            format!("attempt {} held {held} units, not 2", lease.attempt)
        })?;
        ensure(available(&e).await? == 3, CHECK, || {
            "the stock was not held".into()
        })?;
        // The same key again: nothing more.
        let again = step(
            CHECK,
            store
                .begin_and_reserve(begin("k")?, &[request(1)], &[], until)
                .await,
        )?;
        ensure(again.is_none(), CHECK, || "one key claimed twice".into())?;
        ensure(available(&e).await? == 3, CHECK, || {
            "a second claim held stock".into()
        })?;
    } else {
        return Ok(());
    }
    // Split over locations exactly as a reservation is: the first location
    // by priority first.
    let b = product(&e, "B", 1, CHECK).await?;
    let overflow = step(
        CHECK,
        e.create_location(&Actor::System, "Overflow", 9).await,
    )?;
    step(
        CHECK,
        e.set_stock(&Actor::System, b, overflow.id(), 5).await,
    )?;
    let split = StockRequest {
        variant_id: b,
        quantity: 3,
        policy: InventoryPolicy::Tracked {
            allow_backorder: false,
        },
        channel: None,
        location: None,
    };
    let held = step(
        CHECK,
        store
            .begin_and_reserve(begin("split")?, &[split], &[], until)
            .await,
    )?;
    if let Some((_, reservation)) = held {
        let mut lines: Vec<(bool, u32)> = reservation
            .lines
            .iter()
            .map(|l| (l.location_id == overflow.id(), l.quantity))
            .collect();
        lines.sort();
        ensure(lines == [(false, 1), (true, 2)], CHECK, || {
            format!("3 units over locations holding 1 and 5 were taken as {lines:?}")
        })?;
    }
    // A bound location (`StockRequest::location`) holds units there only:
    // pointing at a location without the units, or at no location at all,
    // holds nothing (`None`, or an error naming the location) — never
    // units elsewhere, never units a location did not have.
    let first_location = step(CHECK, e.stock(b).await)?
        .levels
        .iter()
        .map(|l| l.location_id)
        .find(|l| *l != overflow.id())
        .ok_or_else(|| Failure {
            check: CHECK,
            detail: "B lost its first location".into(),
        })?;
    let hinted = |location| StockRequest {
        location: Some(location),
        quantity: 1,
        ..split
    };
    for (i, hint) in [
        first_location,
        first_location,
        crate::id::LocationId::new(),
        overflow.id(),
    ]
    .into_iter()
    .enumerate()
    {
        let before = step(CHECK, e.stock(b).await)?.levels;
        let held = match store
            .begin_and_reserve(begin(&format!("hint-{i}"))?, &[hinted(hint)], &[], until)
            .await
        {
            Err(crate::Error::Invalid { .. }) => None,
            other => step(CHECK, other)?,
        };
        let after = step(CHECK, e.stock(b).await)?.levels;
        if held.is_none() {
            ensure(after == before, CHECK, || {
                format!("a refused hold at {hint} changed the stock: {before:?} → {after:?}")
            })?;
        }
        if let Some((_, reservation)) = &held {
            let from_stock = reservation.lines.iter().all(|l| {
                l.location_id == hint
                    && before.iter().any(|b| {
                        b.location_id == l.location_id
                            && b.on_hand - b.reserved >= i64::from(l.quantity)
                    })
            });
            ensure(from_stock, CHECK, || {
                format!(
                    "1 unit bound to {hint} was held as {:?}; the levels were {before:?}",
                    reservation.lines
                )
            })?;
        }
        ensure(after.iter().all(|l| l.reserved <= l.on_hand), CHECK, || {
            format!("a hint at {hint} oversold a location: {after:?}")
        })?;
    }
    // Never oversold: 10 keys racing for the last 3 units.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let begin = begin(&format!("race-{i}"))?;
        tasks.push(tokio::spawn(async move {
            store
                .begin_and_reserve(begin, &[request(1)], &[], until)
                .await
        }));
    }
    let mut held = 0;
    for t in tasks {
        if step(CHECK, step(CHECK, t.await)?)?.is_some() {
            held += 1;
        }
    }
    let left = available(&e).await?;
    ensure(held <= 3 && held + left == 3, CHECK, || {
        format!("10 keys racing for 3 units: {held} held, {left} left")
    })
}

pub(super) async fn checkout_and_orders(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "checkout and orders";
    let e = engine(store.clone(), CHECK)?;
    let a = product(&e, "C", 5, CHECK).await?;
    let guest = Actor::Guest;
    let cart = ready_cart(&e, a, 2, CHECK).await?;
    let key = step(CHECK, IdempotencyKey::new("conformance-checkout"))?;
    let request = CheckoutRequest::new(cart.id(), key, "tok_visa", guest);
    let first = step(CHECK, e.checkout(request.clone()).await)?;
    let again = step(CHECK, e.checkout(request).await)?;
    ensure(first.order.id() == again.order.id(), CHECK, || {
        "the same key placed two orders".into()
    })?;
    let page = step(
        CHECK,
        e.find_orders(&Actor::System, &OrderQuery::default()).await,
    )?;
    ensure(page.orders.len() == 1, CHECK, || {
        format!("{} orders found, expected 1", page.orders.len())
    })?;

    // Earlier orders, counted by email (the guest's) and by nobody.
    let kit = step(CHECK, crate::customer::Email::new("KIT@example.com"))?;
    let other = step(CHECK, crate::customer::Email::new("other@example.com"))?;
    for (email, want) in [(Some(&kit), 1), (Some(&other), 0), (None, 0)] {
        let n = step(CHECK, store.orders_placed_by(None, email).await)?;
        ensure(n == want, CHECK, || {
            format!("orders_placed_by({email:?}) answered {n}, expected {want}")
        })?;
    }

    // A save from a stale copy is refused.
    let stored = step(CHECK, store.order(first.order.id()).await)?;
    let now = chrono::Utc::now();
    step(
        CHECK,
        store
            .save_order(OrderChange::new(stored.clone()), now)
            .await,
    )?;
    let stale = store.save_order(OrderChange::new(stored), now).await;
    ensure(matches!(stale, Err(Error::Conflict(_))), CHECK, || {
        format!("a stale save answered {stale:?}")
    })?;

    // The relay: each consumer acknowledges on its own.
    let mut events = Vec::new();
    for _ in 0..100 {
        events = step(CHECK, store.pending_events("kit", 100).await)?;
        if events
            .iter()
            .any(|ev| matches!(ev.kind, EventKind::OrderPlaced { .. }))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let last = events.last().map(|ev| ev.id).ok_or_else(|| Failure {
        check: CHECK,
        detail: "no event relayed for the placed order".into(),
    })?;
    step(CHECK, store.ack_events("kit", last).await)?;
    let after = step(CHECK, store.pending_events("kit", 100).await)?;
    ensure(after.iter().all(|ev| ev.id != last), CHECK, || {
        "an acknowledged event was relayed again".into()
    })?;
    let other = step(CHECK, store.pending_events("kit-2", 100).await)?;
    ensure(other.iter().any(|ev| ev.id == last), CHECK, || {
        "one consumer's acknowledgement hid events from another".into()
    })?;

    // Pruning forgets ended checkouts and delivered events, nothing else.
    let later = now + chrono::Duration::days(1);
    let pruned = step(CHECK, store.prune_checkouts(later).await)?;
    ensure(pruned >= 1, CHECK, || "no ended checkout was pruned".into())?;
    step(CHECK, store.ack_events("kit-2", last).await)?;
    let removed = step(CHECK, store.prune_events(later).await)?;
    ensure(removed >= 1, CHECK, || {
        "no delivered event was pruned".into()
    })?;
    step(CHECK, store.order(first.order.id()).await).map(drop)
}
