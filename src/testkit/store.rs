//! The store conformance suite.
//!
//! Does not know: the store it checks beyond the `Store` ports.

use std::future::Future;
use std::sync::Arc;

use super::{Failure, Report, ensure, step};
use crate::actor::Actor;
use crate::catalog::{InventoryPolicy, NewProduct, NewVariant, Status};
use crate::checkout::CheckoutRequest;
use crate::customer::NewAddress;
use crate::engine::Engine;
use crate::error::Error;
use crate::event::EventKind;
use crate::id::{IdempotencyKey, VariantId};
use crate::inventory::{StockRequest, UsageClaim};
use crate::money::{Currency, Money};
use crate::order::{OrderChange, OrderQuery};
use crate::shipping::FlatRateShipping;
use crate::store::Store;

/// Runs the store conformance suite: `make` must give a fresh, empty store
/// on every call (for PostgreSQL, for example, a new schema). Through the
/// engine and the port it checks what the engine relies on: catalog round
/// trips and duplicate SKUs named by value; reservations all or nothing and
/// never oversold under concurrency; usage limits exact under concurrency;
/// idempotent checkouts; checkout's one-call read
/// ([`PromotionStore::cart_for_pricing`](crate::store::PromotionStore::cart_for_pricing))
/// equal to the separate reads; the combined first commit of a checkout
/// ([`CheckoutStore::begin_and_reserve`](crate::store::CheckoutStore::begin_and_reserve))
/// all or nothing, once per key and never oversold, whatever location a
/// request hints at (a store that does not offer it passes by answering
/// `None`); earlier orders counted by email
/// ([`OrderStore::orders_placed_by`](crate::store::OrderStore::orders_placed_by));
/// order saves refused on a stale version; the event relay per consumer; pruning.
///
/// # Errors
/// The first [`Failure`]: which check, and what was seen.
pub async fn store_conformance<F, Fut>(make: F) -> Result<Report, Failure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let mut report = Report::default();
    catalog(make().await).await?;
    report.checks += 1;
    reservations(make().await).await?;
    report.checks += 1;
    usage_limits(make().await).await?;
    report.checks += 1;
    checkout_and_orders(make().await).await?;
    report.checks += 1;
    first_commit(make().await).await?;
    report.checks += 1;
    cart_for_pricing(make().await).await?;
    report.checks += 1;
    accounts(make().await).await?;
    report.checks += 1;
    waiting_payments(make().await).await?;
    report.checks += 1;
    gift_cards(make().await).await?;
    report.checks += 1;
    channels(make().await).await?;
    report.checks += 1;
    Ok(report)
}

/// Sales channels: saved once per name, updated under their version, and
/// a reservation for a channel holds stock only at its locations.
async fn channels(store: Arc<dyn Store>) -> Result<(), Failure> {
    use crate::channel::SalesChannel;
    const CHECK: &str = "sales channels";
    let e = engine(store.clone(), CHECK)?;
    let a = product(&e, "CH", 5, CHECK).await?;
    let side = step(CHECK, e.create_location(&Actor::System, "Side", 9).await)?;
    step(CHECK, e.set_stock(&Actor::System, a, side.id(), 1).await)?;
    let mut channel = SalesChannel::new("Kit", &[Currency::USD], chrono::Utc::now());
    channel.locations = Some(std::collections::BTreeSet::from([side.id()]));
    let saved = step(CHECK, store.save_channel(channel.clone()).await)?;
    let again = store.save_channel(channel).await;
    ensure(
        matches!(again, Err(Error::Conflict(_) | Error::AlreadyExists { .. })),
        CHECK,
        || format!("saving a new channel twice answered {again:?}"),
    )?;
    let read = step(CHECK, store.channel(saved.id).await)?;
    ensure(read == saved, CHECK, || {
        "the channel reads back changed".into()
    })?;
    let request = |quantity| StockRequest {
        variant_id: a,
        quantity,
        policy: InventoryPolicy::Tracked {
            allow_backorder: false,
        },
        channel: Some(saved.id),
        location: None,
    };
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::minutes(5);
    let too_many = store.reserve(&[request(2)], &[], later, now).await;
    ensure(
        matches!(too_many, Err(Error::OutOfStock { .. })),
        CHECK,
        || format!("2 units from a channel location holding 1 answered {too_many:?}"),
    )?;
    let held = step(CHECK, store.reserve(&[request(1)], &[], later, now).await)?;
    ensure(
        held.lines.iter().all(|l| l.location_id == side.id()),
        CHECK,
        || format!("a channel's reservation took {:?}", held.lines),
    )
}

/// Gift cards: found by code hash, entries posted once per key, a
/// redemption beyond the balance refused with nothing changed, many
/// concurrent redemptions never overdrawing, entries found by reference.
async fn gift_cards(store: Arc<dyn Store>) -> Result<(), Failure> {
    use crate::giftcard::{BalanceKind, EntryKind, GiftCard, NewEntry};
    const CHECK: &str = "gift cards";
    let now = chrono::Utc::now();
    let mut card = step(
        CHECK,
        GiftCard::new(
            BalanceKind::GiftCard,
            Some("KITK-ITKI-TKIT-KIT1"),
            Currency::USD,
            None,
            None,
            now,
        ),
    )?;
    step(
        CHECK,
        card.post(
            NewEntry::new("issue", EntryKind::Issue, usd(10_00), "kit", Actor::System),
            now,
        ),
    )?;
    let id = card.id();
    let hash = card.code_hash().unwrap_or_default().to_owned();
    step(CHECK, store.insert_gift_card(card.clone()).await)?;
    let dup = store.insert_gift_card(card).await;
    ensure(
        matches!(dup, Err(Error::AlreadyExists { .. })),
        CHECK,
        || format!("a second insert answered {dup:?}"),
    )?;
    let found = step(CHECK, store.gift_card_by_code(&hash).await)?;
    ensure(found.is_some_and(|c| c.id() == id), CHECK, || {
        "the card is not found by its code hash".into()
    })?;
    // Twenty redemptions of 1.00 race for 10.00: exactly ten succeed.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .post_gift_card_entry(
                    id,
                    NewEntry::new(
                        format!("redeem-{i}"),
                        EntryKind::Redeem,
                        usd(1_00),
                        format!("kit-ref-{}", i % 2),
                        Actor::System,
                    ),
                    now,
                )
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match step(CHECK, task.await)? {
            Ok(_) => won += 1,
            Err(Error::InsufficientBalance { .. }) => {}
            Err(e) => {
                return Err(Failure {
                    check: CHECK,
                    detail: format!("a redemption answered {e:?}"),
                });
            }
        }
    }
    let card = step(CHECK, store.gift_card(id).await)?;
    ensure(won == 10 && card.balance().is_zero(), CHECK, || {
        format!(
            "{won} redemptions of 1.00 from 10.00 succeeded, balance {}",
            card.balance()
        )
    })?;
    // A replayed entry counts once; a refused one changes nothing.
    let again = step(
        CHECK,
        store
            .post_gift_card_entry(
                id,
                NewEntry::new("issue", EntryKind::Issue, usd(10_00), "kit", Actor::System),
                now,
            )
            .await,
    )?;
    ensure(
        again.balance().is_zero() && again.entries().len() == 11,
        CHECK,
        || format!("a replayed entry changed the card: {}", again.balance()),
    )?;
    let entries = step(CHECK, store.gift_card_entries_for("kit-ref-0").await)?;
    ensure(
        !entries.is_empty()
            && entries
                .iter()
                .all(|(c, e)| *c == id && e.reference == "kit-ref-0"),
        CHECK,
        || format!("entries by reference: {entries:?}"),
    )
}

/// A checkout whose payment waits: parked with its stock, found by its
/// provider reference, never pruned, offered to recovery only once its
/// session expired, claimed by one settler at a time, and placed once when
/// many returns race.
async fn waiting_payments(store: Arc<dyn Store>) -> Result<(), Failure> {
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

/// A customer's password hash survives a save and a read; account tokens
/// are recorded for known and unknown emails alike and used once; wrong
/// guesses racing are every one counted; a new password voids a reset
/// token. Erasure frees the email and is idempotent.
async fn accounts(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "account tokens";
    let e = engine(store.clone(), CHECK)?;
    let ann = step(
        CHECK,
        e.register(crate::engine::NewCustomer::new(
            "ann@example.com",
            "kit-password-1",
        ))
        .await,
    )?;
    let unknown = step(CHECK, e.request_password_reset("nobody@example.com").await)?;
    ensure(unknown.is_none(), CHECK, || {
        "a reset token for an email no account has".to_owned()
    })?;
    let reset = || async {
        match step(CHECK, e.request_password_reset("ann@example.com").await)? {
            Some(issued) => Ok(issued),
            None => Err(Failure {
                check: CHECK,
                detail: "no reset token for a registered email".to_owned(),
            }),
        }
    };
    let stored = step(CHECK, store.customer(ann.id()).await)?;
    ensure(stored.password_hash().is_some(), CHECK, || {
        "the password hash was lost".to_owned()
    })?;
    // Wrong guesses racing: every one counted, so the token is void after
    // MAX_TOKEN_ATTEMPTS of them, and one fewer leaves it working.
    for guesses in [
        crate::customer::MAX_TOKEN_ATTEMPTS - 1,
        crate::customer::MAX_TOKEN_ATTEMPTS,
    ] {
        let issued = reset().await?;
        let (id, _) = issued.token.split_once('.').unwrap_or_default();
        let mut tasks = Vec::new();
        for n in 0..guesses {
            let (e, guess) = (e.clone(), format!("{id}.{n:064x}"));
            tasks.push(tokio::spawn(async move {
                e.reset_password(&guess, "kit-password-x", false).await
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.map_err(|j| Failure {
                check: CHECK,
                detail: format!("a guess panicked: {j}"),
            })?);
        }
        ensure(
            results
                .iter()
                .all(|r| matches!(r, Err(crate::Error::InvalidToken))),
            CHECK,
            || format!("a wrong guess was not refused as a wrong token: {results:?}"),
        )?;
        let used = e
            .reset_password(&issued.token, "kit-password-2", false)
            .await;
        let void = guesses >= crate::customer::MAX_TOKEN_ATTEMPTS;
        ensure(used.is_err() == void, CHECK, || {
            format!("after {guesses} wrong guesses at once the right token answered {used:?}")
        })?;
    }
    // Used once.
    let issued = reset().await?;
    step(
        CHECK,
        e.reset_password(&issued.token, "kit-password-3", false)
            .await,
    )?;
    let again = e
        .reset_password(&issued.token, "kit-password-4", false)
        .await;
    ensure(again.is_err(), CHECK, || "a token served twice".to_owned())?;
    step(CHECK, e.login("ann@example.com", "kit-password-3").await)?;
    // A new password voids a reset token issued before it.
    let issued = reset().await?;
    step(
        CHECK,
        e.change_password(
            &crate::Actor::Customer(ann.id()),
            ann.id(),
            "kit-password-3",
            "kit-password-5",
        )
        .await,
    )?;
    let stale = e
        .reset_password(&issued.token, "kit-password-6", false)
        .await;
    ensure(stale.is_err(), CHECK, || {
        "a reset token outlived a password change".to_owned()
    })?;
    step(CHECK, e.login("ann@example.com", "kit-password-5").await)?;
    step(
        CHECK,
        store
            .prune_account_tokens(chrono::Utc::now() + chrono::Duration::days(1))
            .await,
    )?;

    // Erasure: the record loses the email, which is free again.
    let erased = step(
        CHECK,
        store.erase_customer(ann.id(), chrono::Utc::now()).await,
    )?;
    ensure(erased.customer.erased(), CHECK, || {
        "an erased customer is not marked erased".to_owned()
    })?;
    let email = step(CHECK, crate::customer::Email::new("ann@example.com"))?;
    let found = step(CHECK, store.customer_by_email(&email).await)?;
    ensure(found.is_none(), CHECK, || {
        "the erased email still finds the customer".to_owned()
    })?;
    let again = step(
        CHECK,
        store.erase_customer(ann.id(), chrono::Utc::now()).await,
    )?;
    ensure(again.carts == 0 && again.orders == 0, CHECK, || {
        "erasing twice changed records again".to_owned()
    })
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

fn engine(store: Arc<dyn Store>, check: &'static str) -> Result<Engine, Failure> {
    let shipping = step(
        check,
        FlatRateShipping::new().with_method("std", "Standard", &[usd(5_00)]),
    )?;
    step(
        check,
        Engine::builder()
            .store(store)
            .shipping(Arc::new(shipping))
            .test_payment_provider()
            .no_tax()
            .build(),
    )
}

/// A guest cart with `quantity` of `variant`, an email, an address and
/// the standard shipping method: ready to check out.
async fn ready_cart(
    e: &Engine,
    variant: VariantId,
    quantity: u32,
    check: &'static str,
) -> Result<crate::cart::Cart, Failure> {
    let guest = Actor::Guest;
    let cart = step(check, e.create_cart(&guest, Currency::USD).await)?;
    step(
        check,
        e.add_item(&guest, cart.id(), variant, quantity).await,
    )?;
    step(
        check,
        e.set_email(&guest, cart.id(), "kit@example.com").await,
    )?;
    let address = NewAddress::default()
        .name("Kit")
        .line1("1 Main St")
        .city("Springfield")
        .country("US");
    step(
        check,
        e.set_shipping_address(&guest, cart.id(), address).await,
    )?;
    step(check, e.set_shipping_method(&guest, cart.id(), "std").await)
}

async fn product(
    engine: &Engine,
    sku: &str,
    stock: i64,
    check: &'static str,
) -> Result<VariantId, Failure> {
    let system = Actor::System;
    let p = step(
        check,
        engine
            .create_product(
                &system,
                NewProduct::new(format!("Product {sku}"))
                    .status(Status::Active)
                    .variants(vec![
                        NewVariant::shipped(sku)
                            .prices(vec![usd(10_00)])
                            .status(Status::Active),
                    ]),
            )
            .await,
    )?;
    let variant = p
        .variants()
        .first()
        .map(crate::catalog::Variant::id)
        .ok_or_else(|| Failure {
            check,
            detail: "the product has no variant".into(),
        })?;
    let location = step(
        check,
        engine
            .create_location(&system, &format!("L-{sku}"), 0)
            .await,
    )?;
    step(
        check,
        engine
            .set_stock(&system, variant, location.id(), stock)
            .await,
    )?;
    Ok(variant)
}

async fn catalog(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "catalog";
    let e = engine(store, CHECK)?;
    let v = product(&e, "MUG", 3, CHECK).await?;
    let entry = step(CHECK, e.variant_by_sku("mug").await)?;
    ensure(entry.variant.id() == v, CHECK, || {
        "SKU lookup found another variant".into()
    })?;
    let again = e
        .create_product(
            &Actor::System,
            NewProduct::new("Copy")
                .variants(vec![NewVariant::digital("MUG").prices(vec![usd(1_00)])]),
        )
        .await;
    ensure(
        matches!(&again, Err(Error::AlreadyExists { what: "sku", value }) if value == "MUG"),
        CHECK,
        || format!("a taken SKU answered {again:?}, expected AlreadyExists {{ sku, \"MUG\" }}"),
    )
}

async fn reservations(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "reservations";
    let e = engine(store, CHECK)?;
    let a = product(&e, "A", 5, CHECK).await?;
    let b = product(&e, "B", 1, CHECK).await?;
    let system = Actor::System;
    // All or nothing.
    let short = e.reserve_stock(&system, &[(a, 2), (b, 2)]).await;
    ensure(
        matches!(short, Err(Error::OutOfStock { .. })),
        CHECK,
        || format!("reserving more than is on hand answered {short:?}"),
    )?;
    let left = step(CHECK, e.stock(a).await)?.available();
    ensure(left == 5, CHECK, || {
        format!("a refused reservation held {} units", 5 - left)
    })?;
    // Never oversold: 12 racing for 5.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            e.reserve_stock(&Actor::System, &[(a, 1)]).await
        }));
    }
    let mut held = 0;
    for t in tasks {
        if step(CHECK, t.await)?.is_ok() {
            held += 1;
        }
    }
    let left = step(CHECK, e.stock(a).await)?.available();
    ensure(held == 5 && left == 0, CHECK, || {
        format!("12 racing reservations of 5 units: {held} held, {left} left")
    })
}

/// Checkout's read: the cart and its pricing inputs in one call are what
/// reading them one by one gives.
async fn cart_for_pricing(store: Arc<dyn Store>) -> Result<(), Failure> {
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
async fn first_commit(store: Arc<dyn Store>) -> Result<(), Failure> {
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
    // A location hint (`StockRequest::location`) is only a hint: pointing
    // at a location without the units, or at no location at all, never
    // holds units where they are not; the units come from a location that
    // had them.
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
        let held = step(
            CHECK,
            store
                .begin_and_reserve(begin(&format!("hint-{i}"))?, &[hinted(hint)], &[], until)
                .await,
        )?;
        let after = step(CHECK, e.stock(b).await)?.levels;
        if let Some((_, reservation)) = &held {
            let from_stock = reservation.lines.iter().all(|l| {
                before.iter().any(|b| {
                    b.location_id == l.location_id
                        && b.on_hand - b.reserved >= i64::from(l.quantity)
                })
            });
            ensure(from_stock, CHECK, || {
                format!(
                    "1 unit hinted at {hint} was held as {:?}; the levels were {before:?}",
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

async fn usage_limits(store: Arc<dyn Store>) -> Result<(), Failure> {
    const CHECK: &str = "usage limits";
    let e = engine(store.clone(), CHECK)?;
    let a = product(&e, "U", 100, CHECK).await?;
    let now = chrono::Utc::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let request = StockRequest {
                variant_id: a,
                quantity: 1,
                policy: InventoryPolicy::Tracked {
                    allow_backorder: false,
                },
                channel: None,
                location: None,
            };
            let claim = UsageClaim {
                counter: "conformance:uses".into(),
                amount: 1,
                limit: 3,
            };
            store
                .reserve(
                    &[request],
                    &[claim],
                    now + chrono::Duration::minutes(5),
                    now,
                )
                .await
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        if let Ok(r) = step(CHECK, t.await)? {
            held.push(r);
        }
    }
    let used = step(CHECK, store.usage("conformance:uses").await)?;
    ensure(held.len() == 3 && used == 3, CHECK, || {
        format!(
            "8 racing claims on a limit of 3: {} held, usage {used}",
            held.len()
        )
    })?;
    if let Some(r) = held.first() {
        step(CHECK, store.release(r.id, now).await)?;
    }
    let used = step(CHECK, store.usage("conformance:uses").await)?;
    ensure(used == 2, CHECK, || {
        format!("usage {used} after a release, expected 2")
    })
}

async fn checkout_and_orders(store: Arc<dyn Store>) -> Result<(), Failure> {
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
