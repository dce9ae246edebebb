//! The store conformance suite: accounts, sales channels and gift cards.

use super::*;

/// Sales channels: saved once per name, updated under their version, and
/// a reservation for a channel holds stock only at its locations.
pub(super) async fn channels(store: Arc<dyn Store>) -> Result<(), Failure> {
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
pub(super) async fn gift_cards(store: Arc<dyn Store>) -> Result<(), Failure> {
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

/// A customer's password hash survives a save and a read; account tokens
/// are recorded for known and unknown emails alike and used once; wrong
/// guesses racing are every one counted; a new password voids a reset
/// token. Erasure frees the email and is idempotent.
pub(super) async fn accounts(store: Arc<dyn Store>) -> Result<(), Failure> {
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
