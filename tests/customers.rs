//! Customers through the public API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::customer::{CustomerKind, CustomerQuery};
use cartwright::id::{CartId, CustomerId};
use cartwright::prelude::*;
use common::{Backend, Shop, address};

fn new(email: &str, password: &str) -> NewCustomer {
    NewCustomer::new(email, password).name("Ann")
}

async fn register_and_log_in_with_normalized_email(backend: Backend) {
    let shop = Shop::new(backend).await;
    let ann = shop
        .engine
        .register(new("  Ann@Example.COM ", "s3cret-pass"))
        .await
        .unwrap();
    assert_eq!(ann.email().as_str(), "ann@example.com");
    assert_eq!(ann.kind(), CustomerKind::Registered);
    let logged_in = shop
        .engine
        .login("ANN@example.com", "s3cret-pass")
        .await
        .unwrap();
    assert_eq!(logged_in.id(), ann.id());
    // The plain password appears nowhere in the store.
    assert!(!format!("{:?}", shop.snapshot().await).contains("s3cret-pass"));
}

async fn wrong_password_and_unknown_email_look_the_same(backend: Backend) {
    let shop = Shop::new(backend).await;
    shop.engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let wrong = shop
        .engine
        .login("ann@example.com", "not-it-at-all")
        .await
        .unwrap_err();
    let unknown = shop
        .engine
        .login("bob@example.com", "s3cret-pass")
        .await
        .unwrap_err();
    let malformed = shop
        .engine
        .login("not an email", "s3cret-pass")
        .await
        .unwrap_err();
    assert!(matches!(wrong, Error::InvalidCredentials));
    assert!(matches!(unknown, Error::InvalidCredentials));
    assert!(matches!(malformed, Error::InvalidCredentials));
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert_eq!(shop.snapshot().await, before);
}

async fn duplicate_and_invalid_registrations_change_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    shop.engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let before = shop.snapshot().await;
    assert!(matches!(
        shop.engine
            .register(new("ANN@example.com", "other-pass"))
            .await,
        Err(Error::AlreadyExists { what: "email", .. })
    ));
    assert!(
        shop.engine
            .register(new("bob@example.com", "short"))
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .register(new("bob@example.com", &"x".repeat(129)))
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .register(new("bob", "s3cret-pass"))
            .await
            .is_err()
    );
    assert!(
        shop.engine
            .register(new(&format!("{}@x.io", "b".repeat(300)), "s3cret-pass"))
            .await
            .is_err()
    );
    assert_eq!(shop.snapshot().await, before);
}

async fn guests_can_later_register(backend: Backend) {
    let shop = Shop::new(backend).await;
    let guest = shop.engine.guest("gus@example.com").await.unwrap();
    assert_eq!(guest.kind(), CustomerKind::Guest);
    assert_eq!(
        shop.engine.guest("GUS@example.com").await.unwrap().id(),
        guest.id()
    );
    // A guest cannot log in.
    assert!(matches!(
        shop.engine
            .login("gus@example.com", "anything-at-all")
            .await,
        Err(Error::InvalidCredentials)
    ));
    let account = shop
        .engine
        .register(new("gus@example.com", "s3cret-pass"))
        .await
        .unwrap();
    assert_eq!(account.id(), guest.id(), "the guest became the account");
    assert_eq!(account.kind(), CustomerKind::Registered);
    shop.engine
        .login("gus@example.com", "s3cret-pass")
        .await
        .unwrap();
    assert!(shop.engine.guest("gus@example.com").await.is_err());
}

async fn address_book_and_groups(backend: Backend) {
    let shop = Shop::new(backend).await;
    let ann = shop
        .engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let me = Actor::Customer(ann.id());
    let (c, home) = shop
        .engine
        .add_address(&me, ann.id(), address())
        .await
        .unwrap();
    assert_eq!(c.default_shipping().unwrap().id, home);
    assert_eq!(c.address(home).unwrap().country.as_str(), "US");
    assert_eq!(c.address(home).unwrap().region, "VA");
    let (c, _work) = shop
        .engine
        .add_address(&me, ann.id(), address())
        .await
        .unwrap();
    assert_eq!(c.addresses().len(), 2);
    let c = shop
        .engine
        .remove_address(&me, ann.id(), home)
        .await
        .unwrap();
    assert_eq!(c.addresses().len(), 1);
    assert!(c.default_shipping().is_none());

    let bad = address().country("USA");
    let before = shop.snapshot().await;
    assert!(shop.engine.add_address(&me, ann.id(), bad).await.is_err());
    assert_eq!(shop.snapshot().await, before);

    let vip = shop
        .engine
        .create_group(&Actor::System, "VIP")
        .await
        .unwrap();
    assert!(matches!(
        shop.engine.add_to_group(&me, ann.id(), vip.id()).await,
        Err(Error::Forbidden)
    ));
    let c = shop
        .engine
        .add_to_group(&Actor::Staff("sam".into()), ann.id(), vip.id())
        .await
        .unwrap();
    assert!(c.groups().contains(&vip.id()));
    assert!(
        shop.engine
            .create_group(&Actor::System, "vip")
            .await
            .is_err(),
        "group names are unique"
    );
}

async fn customers_see_only_themselves(backend: Backend) {
    let shop = Shop::new(backend).await;
    let ann = shop
        .engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let bob = shop
        .engine
        .register(new("bob@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let as_bob = Actor::Customer(bob.id());
    assert!(matches!(
        shop.engine.customer(&as_bob, ann.id()).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        shop.engine.add_address(&as_bob, ann.id(), address()).await,
        Err(Error::Forbidden)
    ));
    assert!(shop.engine.customer(&as_bob, bob.id()).await.is_ok());
}

async fn concurrent_address_additions_are_all_kept(backend: Backend) {
    let shop = Shop::new(backend).await;
    let ann = shop
        .engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap()
        .id();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let engine = shop.engine.clone();
        tasks.push(tokio::spawn(async move {
            // Each task retries a lost race a bounded number of times; under
            // heavy contention a few may give up with a Conflict.
            engine
                .add_address(&Actor::Customer(ann), ann, address())
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let stored = shop.engine.customer(&Actor::System, ann).await.unwrap();
    assert_eq!(
        stored.addresses().len(),
        ok,
        "no successful change was lost"
    );
}

/// A reset with `token` is refused as an invalid token.
async fn refused(shop: &Shop, token: &str) {
    let err = shop
        .engine
        .reset_password(token, "brand-new-pass", false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidToken), "{token}: {err:?}");
}

async fn a_password_is_changed_with_the_current_one_and_ends_every_session(backend: Backend) {
    let shop = Shop::new(backend).await;
    let ann = shop
        .engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let me = Actor::Customer(ann.id());
    let epoch = ann.sign_in_epoch();
    // Only Ann, and only with her current password.
    for actor in [
        Actor::Customer(CustomerId::new()),
        Actor::Staff("wes".into()),
        Actor::Guest,
    ] {
        let err = shop
            .engine
            .change_password(&actor, ann.id(), "s3cret-pass", "new-pass-123")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden), "{actor:?}: {err:?}");
    }
    let before = shop.snapshot().await;
    let err = shop
        .engine
        .change_password(&me, ann.id(), "wrong-one-here", "new-pass-123")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err:?}");
    let err = shop
        .engine
        .change_password(&me, ann.id(), "s3cret-pass", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    assert_eq!(shop.snapshot().await, before, "refusals change nothing");

    let changed = shop
        .engine
        .change_password(&me, ann.id(), "s3cret-pass", "new-pass-123")
        .await
        .unwrap();
    assert_ne!(changed.sign_in_epoch(), epoch, "every session ends");
    assert!(
        shop.engine
            .login("ann@example.com", "s3cret-pass")
            .await
            .is_err()
    );
    shop.engine
        .login("ann@example.com", "new-pass-123")
        .await
        .unwrap();
}

async fn a_forgotten_password_is_reset_once_with_a_token(backend: Backend) {
    let shop = Shop::new(backend).await;
    let ann = shop
        .engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let bob = shop
        .engine
        .register(new("bob@example.com", "bobs-pass-1"))
        .await
        .unwrap();
    shop.engine.guest("guest@example.com").await.unwrap();
    // An unknown email, a guest's and a malformed one answer alike: None.
    for email in ["nobody@example.com", "guest@example.com", "not an email"] {
        assert!(
            shop.engine
                .request_password_reset(email)
                .await
                .unwrap()
                .is_none(),
            "{email}"
        );
    }
    let issued = shop
        .engine
        .request_password_reset(" ANN@example.com ")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (issued.customer_id, issued.email.as_str()),
        (ann.id(), "ann@example.com")
    );
    // The secret is stored only as a hash, and Debug never shows it.
    let secret = issued.token.split_once('.').unwrap().1.to_owned();
    assert!(!format!("{:?}", shop.snapshot().await).contains(&secret));
    assert!(!format!("{issued:?}").contains(&secret));

    // Used for another account: refused, and counted against neither.
    let for_bob = format!("{}.{secret}", bob.id().as_uuid().simple());
    let err = shop
        .engine
        .reset_password(&for_bob, "taken-over-1", true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidToken), "{err:?}");
    // Malformed tokens: refused unread.
    for bad in [
        "",
        "nonsense",
        &format!("{}.zz", ann.id()),
        &"9".repeat(1000),
    ] {
        refused(&shop, bad).await;
    }
    // A password the policy refuses leaves the token usable.
    let err = shop
        .engine
        .reset_password(&issued.token, "x", true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");

    let reset = shop
        .engine
        .reset_password(&issued.token, "brand-new-pass", true)
        .await
        .unwrap();
    assert!(
        reset.email_verified(),
        "reading the mail proves the address"
    );
    assert_ne!(reset.sign_in_epoch(), ann.sign_in_epoch());
    shop.engine
        .login("ann@example.com", "brand-new-pass")
        .await
        .unwrap();
    // Once only.
    let err = shop
        .engine
        .reset_password(&issued.token, "again-and-again", true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidToken), "{err:?}");
    shop.engine
        .login("ann@example.com", "brand-new-pass")
        .await
        .unwrap();
}

async fn reset_tokens_expire_and_wear_out_under_guessing(backend: Backend) {
    let shop = Shop::new(backend).await;
    shop.engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let reset = || async {
        shop.engine
            .request_password_reset("ann@example.com")
            .await
            .unwrap()
            .unwrap()
    };
    // Expired after the configured hour.
    let issued = reset().await;
    shop.clock.advance(chrono::Duration::minutes(61));
    refused(&shop, &issued.token).await;

    // A newer token replaces the older one.
    let older = reset().await;
    let newer = reset().await;
    refused(&shop, &older.token).await;

    // Guessing: five wrong secrets void the token; then even the right one fails.
    let (id, _) = newer.token.split_once('.').unwrap();
    for n in 0..cartwright::customer::MAX_TOKEN_ATTEMPTS {
        refused(&shop, &format!("{id}.{n:064x}")).await;
    }
    refused(&shop, &newer.token).await;
    shop.engine
        .login("ann@example.com", "s3cret-pass")
        .await
        .unwrap();

    // Two uses of one token at once: exactly one sets the password.
    let issued = reset().await;
    let (a, b) = tokio::join!(
        shop.engine
            .reset_password(&issued.token, "first-winner-1", false),
        shop.engine
            .reset_password(&issued.token, "second-winner-2", false),
    );
    let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{a:?} {b:?}");
    let winner = if a.is_ok() {
        "first-winner-1"
    } else {
        "second-winner-2"
    };
    shop.engine.login("ann@example.com", winner).await.unwrap();
}

async fn an_email_is_verified_with_a_token(backend: Backend) {
    let shop = Shop::new(backend).await;
    let ann = shop
        .engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    assert!(!ann.email_verified());
    let err = shop
        .engine
        .request_email_verification(&Actor::Customer(CustomerId::new()), ann.id())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden), "{err:?}");
    let issued = shop
        .engine
        .request_email_verification(&Actor::Customer(ann.id()), ann.id())
        .await
        .unwrap();
    // A reset token does not verify, nor a verification token reset.
    refused(&shop, &issued.token).await;
    let verified = shop.engine.verify_email(&issued.token).await.unwrap();
    assert!(verified.email_verified());
    let err = shop.engine.verify_email(&issued.token).await.unwrap_err();
    assert!(matches!(err, Error::InvalidToken), "{err:?}");
    // Staff may ask for one to be sent too.
    shop.engine
        .request_email_verification(&Actor::Staff("wes".into()), ann.id())
        .await
        .unwrap();
}

/// Zelda's details: each must vanish from the store when she is erased.
const ZELDA: [&str; 6] = [
    "zelda@example.com",
    "Zelda Quixote",
    "77 Quasar Lane",
    "Xanadu",
    "555-0199",
    "X9Q-7ZW",
];

fn zelda_address() -> cartwright::customer::NewAddress {
    cartwright::customer::NewAddress::new(
        "Zelda Quixote",
        "77 Quasar Lane",
        "Xanadu",
        "X9Q-7ZW",
        "us",
    )
    .region("ca")
    .phone("555-0199")
}

/// A cart of `actor`'s with one unit of `v`, Zelda's email and address.
async fn zelda_cart(shop: &Shop, actor: &Actor, v: cartwright::id::VariantId) -> CartId {
    let cart = shop.engine.create_cart(actor, Currency::USD).await.unwrap();
    shop.engine.add_item(actor, cart.id(), v, 1).await.unwrap();
    shop.engine
        .set_email(actor, cart.id(), "zelda@example.com")
        .await
        .unwrap();
    shop.engine
        .set_shipping_address(actor, cart.id(), zelda_address())
        .await
        .unwrap();
    shop.engine
        .set_shipping_method(actor, cart.id(), "standard")
        .await
        .unwrap();
    cart.id()
}

async fn a_customer_is_exported_and_erased_leaving_the_books(backend: Backend) {
    let shop = Shop::new(backend).await;
    let v = shop.product("TEE", "20.00", 10).await;
    let zelda = shop
        .engine
        .register(NewCustomer::new("zelda@example.com", "s3cret-pass").name("Zelda Quixote"))
        .await
        .unwrap();
    let me = Actor::Customer(zelda.id());
    let staff = Actor::Staff("wes".into());
    shop.engine
        .add_address(&me, zelda.id(), zelda_address())
        .await
        .unwrap();
    shop.engine
        .add_customer_note(
            &staff,
            zelda.id(),
            "Zelda Quixote prefers calls at 555-0199",
            cartwright::note::Visibility::Internal,
        )
        .await
        .unwrap();
    // An order with the account, one as a guest with her email, a cart left open.
    let mine = zelda_cart(&shop, &me, v).await;
    let placed = shop
        .engine
        .checkout(CheckoutRequest::new(
            mine,
            cartwright::id::IdempotencyKey::new("zelda-1").unwrap(),
            "tok_visa",
            me.clone(),
        ))
        .await
        .unwrap()
        .order;
    let as_guest = zelda_cart(&shop, &Actor::Guest, v).await;
    let guest_order = shop.place(as_guest, "zelda-2").await;
    zelda_cart(&shop, &Actor::Guest, v).await;
    // A 3-D Secure payment of hers still waits: the checkout record keeps
    // the order it will place, with her address.
    let waiting = zelda_cart(&shop, &me, v).await;
    let step = shop
        .engine
        .start_checkout(CheckoutRequest::new(
            waiting,
            cartwright::id::IdempotencyKey::new("zelda-3ds").unwrap(),
            "tok_3ds",
            me.clone(),
        ))
        .await
        .unwrap();
    let cartwright::checkout::CheckoutStep::AwaitingPayment(session) = step else {
        panic!("expected a waiting payment, got {step:?}");
    };
    // Someone else, who must be left alone.
    let other_cart = shop.ready_cart(&[(v, 1)]).await;
    let other = shop.place(other_cart.id(), "other-1").await;

    // Her store credit is part of what is held about her.
    shop.engine
        .grant_store_credit(
            &staff,
            zelda.id(),
            common::usd("2.00"),
            "sorry",
            &cartwright::id::IdempotencyKey::new("zelda-credit").unwrap(),
        )
        .await
        .unwrap();
    // The export: hers to read, no one else's.
    let export = shop.engine.export_customer(&me, zelda.id()).await.unwrap();
    assert_eq!(export.gift_cards.len(), 1);
    assert_eq!(export.gift_cards[0].balance(), common::usd("2.00"));
    let json = serde_json::to_string(&export).unwrap();
    assert!(json.contains("zelda@example.com") && json.contains(&placed.id().to_string()));
    assert!(!json.contains("s3cret-pass") && !json.contains("argon2"));
    let err = shop
        .engine
        .export_customer(&Actor::Customer(CustomerId::new()), zelda.id())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden), "{err:?}");

    // Erasure is for staff; she cannot erase herself through the engine.
    let err = shop
        .engine
        .erase_customer(&me, zelda.id())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden), "{err:?}");
    let erasure = shop
        .engine
        .erase_customer(&staff, zelda.id())
        .await
        .unwrap();
    assert_eq!((erasure.carts, erasure.orders), (4, 2));
    assert!(erasure.customer.erased());

    // Her details are nowhere in the store — every map, every table,
    // nothing hidden — while the other buyer's are.
    let everything = shop.everything().await;
    assert!(everything.contains("buyer@example.com") && everything.contains("1 Navy Way"));
    for detail in ZELDA {
        assert!(!everything.contains(detail), "{detail} is still stored");
    }
    // The waiting payment can no longer place an order for the erased cart:
    // it is given back, and nothing of hers comes back with it.
    shop.payments.complete_action(&session.reference).unwrap();
    let completed = shop
        .engine
        .complete_checkout(
            &me,
            waiting,
            &cartwright::id::IdempotencyKey::new("zelda-3ds").unwrap(),
        )
        .await;
    assert!(completed.is_err(), "{completed:?}");
    let hold = shop
        .payments
        .authorizations()
        .into_iter()
        .find(|a| a.reference == session.reference)
        .unwrap();
    assert!(hold.voided, "the waiting payment is given back: {hold:?}");
    let everything = shop.everything().await;
    for detail in ZELDA {
        assert!(!everything.contains(detail), "{detail} is stored again");
    }
    // The books are whole: the orders, their totals, payments and the tax jurisdiction.
    for (before, id) in [(&placed, placed.id()), (&guest_order, guest_order.id())] {
        let after = shop.engine.order(&Actor::System, id).await.unwrap();
        assert_eq!(after.total(), before.total());
        assert_eq!(after.payment().captured(), before.payment().captured());
        let address = after.shipping_address().unwrap();
        assert_eq!(
            (address.country.as_str(), address.region.as_str()),
            ("US", "CA")
        );
        assert!(address.line1.is_empty());
    }
    assert_eq!(
        shop.engine.order(&Actor::System, other.id()).await.unwrap(),
        other
    );
    // She cannot sign in; her email may open a new account.
    assert!(
        shop.engine
            .login("zelda@example.com", "s3cret-pass")
            .await
            .is_err()
    );
    let again = shop
        .engine
        .register(NewCustomer::new("zelda@example.com", "new-pass-123"))
        .await
        .unwrap();
    assert_ne!(again.id(), zelda.id());
    // Erasing again changes nothing more.
    let twice = shop
        .engine
        .erase_customer(&staff, zelda.id())
        .await
        .unwrap();
    assert_eq!((twice.carts, twice.orders), (0, 0));
    assert_eq!(twice.customer, erasure.customer);
}

async fn a_profile_changes_and_a_new_email_counts_once_confirmed(backend: Backend) {
    let shop = Shop::new(backend).await;
    let ann = shop.customer("ann@example.com").await;
    shop.customer("taken@example.com").await;
    let me = Actor::Customer(ann.id());
    // Name and phone: hers or staff's to change, validated, all or nothing.
    let err = shop
        .engine
        .update_profile(
            &Actor::Customer(CustomerId::new()),
            ann.id(),
            Some("X"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden), "{err:?}");
    let err = shop
        .engine
        .update_profile(&me, ann.id(), Some("Ann B"), Some(&"9".repeat(41)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid { .. } | Error::LimitExceeded { .. }),
        "{err:?}"
    );
    let c = shop
        .engine
        .update_profile(&me, ann.id(), Some("Ann B"), Some("+44 20 7946 0000"))
        .await
        .unwrap();
    assert_eq!((c.name(), c.phone()), ("Ann B", "+44 20 7946 0000"));

    // A new email: sent to the new address, the old one counts until then.
    let issued = shop
        .engine
        .request_email_change(&me, ann.id(), " Ann.New@Example.com ")
        .await
        .unwrap();
    assert_eq!(issued.email.as_str(), "ann.new@example.com");
    assert_eq!(
        shop.engine
            .customer(&me, ann.id())
            .await
            .unwrap()
            .email()
            .as_str(),
        "ann@example.com"
    );
    // A verification or reset token does not change it.
    let err = shop.engine.verify_email(&issued.token).await.unwrap_err();
    assert!(matches!(err, Error::InvalidToken), "{err:?}");
    let changed = shop
        .engine
        .confirm_email_change(&issued.token)
        .await
        .unwrap();
    assert_eq!(changed.email().as_str(), "ann.new@example.com");
    assert!(changed.email_verified());
    shop.engine
        .login("ann.new@example.com", "password1")
        .await
        .unwrap();
    assert!(
        shop.engine
            .login("ann@example.com", "password1")
            .await
            .is_err()
    );
    // The old address is free again; a taken one is refused at confirmation.
    shop.customer("ann@example.com").await;
    let issued = shop
        .engine
        .request_email_change(&me, ann.id(), "taken@example.com")
        .await
        .unwrap();
    let err = shop
        .engine
        .confirm_email_change(&issued.token)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(
        shop.engine
            .customer(&me, ann.id())
            .await
            .unwrap()
            .email()
            .as_str(),
        "ann.new@example.com"
    );
}

async fn staff_find_customers_by_text_and_group_a_page_at_a_time(backend: Backend) {
    let shop = Shop::new(backend).await;
    let staff = Actor::Staff("wes".into());
    let vip = shop.engine.create_group(&staff, "VIP").await.unwrap();
    let mut ids = Vec::new();
    for n in 0..7 {
        let c = shop.customer(&format!("shopper{n}@example.com")).await;
        shop.engine
            .update_profile(&staff, c.id(), Some(&format!("Shopper Number{n}")), None)
            .await
            .unwrap();
        if n % 2 == 0 {
            shop.engine
                .add_to_group(&staff, c.id(), vip.id())
                .await
                .unwrap();
        }
        ids.push(c.id());
    }
    shop.customer("odd_one%@example.com").await;
    ids.sort();

    // Everyone, three at a time, in id order, each once.
    let mut seen = Vec::new();
    let mut query = CustomerQuery::new(3).text("shopper");
    loop {
        let page = shop.engine.find_customers(&staff, &query).await.unwrap();
        seen.extend(page.customers.iter().map(|c| c.id()));
        match page.next_after {
            Some(after) => query = query.after(after),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // By name, any case; by group; both.
    let page = shop
        .engine
        .find_customers(&staff, &CustomerQuery::new(50).text("NUMBER3"))
        .await
        .unwrap();
    assert_eq!(page.customers.len(), 1);
    assert_eq!(page.customers[0].name(), "Shopper Number3");
    let vips = shop
        .engine
        .find_customers(&staff, &CustomerQuery::new(50).group(vip.id()))
        .await
        .unwrap();
    assert_eq!(vips.customers.len(), 4);
    // Wildcards in the text are plain characters.
    for text in ["%", "_", "odd_one%"] {
        let page = shop
            .engine
            .find_customers(&staff, &CustomerQuery::new(50).text(text))
            .await
            .unwrap();
        assert!(
            page.customers
                .iter()
                .all(|c| c.email().as_str().contains(text)),
            "{text}: {:?}",
            page.customers
        );
        assert_eq!(page.customers.len(), 1, "{text}");
    }
    // Out of a group again.
    let first = vips.customers[0].id();
    let c = shop
        .engine
        .remove_from_group(&staff, first, vip.id())
        .await
        .unwrap();
    assert!(!c.groups().contains(&vip.id()));
    // Staff only; bounded.
    for actor in [Actor::Guest, Actor::Customer(ids[0])] {
        let err = shop
            .engine
            .find_customers(&actor, &CustomerQuery::new(10))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden), "{err:?}");
        let err = shop
            .engine
            .remove_from_group(&actor, first, vip.id())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden), "{err:?}");
    }
    for bad in [
        CustomerQuery::new(0),
        CustomerQuery::new(501),
        CustomerQuery::new(5).text(&"x".repeat(101)),
    ] {
        assert!(
            shop.engine.find_customers(&staff, &bad).await.is_err(),
            "{bad:?}"
        );
    }
}

async fn account_changes_reach_the_outbox_without_personal_data(backend: Backend) {
    use cartwright::event::CustomerChange;
    use cartwright::store::EventKind;
    let shop = Shop::new(backend).await;
    let ann = shop
        .engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let me = Actor::Customer(ann.id());
    shop.engine
        .update_profile(&me, ann.id(), Some("Ann Other"), None)
        .await
        .unwrap();
    let issued = shop
        .engine
        .request_email_verification(&me, ann.id())
        .await
        .unwrap();
    shop.engine.verify_email(&issued.token).await.unwrap();
    shop.engine
        .change_password(&me, ann.id(), "s3cret-pass", "another-pass-1")
        .await
        .unwrap();
    shop.engine
        .erase_customer(&Actor::Staff("wes".into()), ann.id())
        .await
        .unwrap();
    // The location, five account changes and the erasure's audit record.
    let changes: Vec<CustomerChange> = common::pending(&shop.engine, "mailer", 7)
        .await
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::CustomerChanged {
                customer_id,
                change,
            } if customer_id == ann.id() => Some(change),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            CustomerChange::Registered,
            CustomerChange::ProfileUpdated,
            CustomerChange::EmailVerified,
            CustomerChange::PasswordChanged,
            CustomerChange::Erased,
        ]
    );
    let all = format!("{:?}", common::pending(&shop.engine, "mailer", 6).await);
    assert!(!all.contains("ann@example.com") && !all.contains("Ann Other"));
}

/// Wrong guesses racing are every one counted: twenty at once void the
/// token (the issue saw most of them answer `Conflict` uncounted on
/// PostgreSQL, and the real token survive); one fewer than the limit
/// leaves it working.
async fn racing_wrong_guesses_are_all_counted(backend: Backend) {
    let shop = Shop::new(backend).await;
    shop.engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    for (guesses, void) in [
        (20, true),
        (cartwright::customer::MAX_TOKEN_ATTEMPTS, true),
        (cartwright::customer::MAX_TOKEN_ATTEMPTS - 1, false),
    ] {
        let issued = shop
            .engine
            .request_password_reset("ann@example.com")
            .await
            .unwrap()
            .unwrap();
        let (id, _) = issued.token.split_once('.').unwrap();
        let tasks: Vec<_> = (0..guesses)
            .map(|n| {
                let engine = shop.engine.clone();
                let guess = format!("{id}.{n:064x}");
                tokio::spawn(
                    async move { engine.reset_password(&guess, "taken-over-1", true).await },
                )
            })
            .collect();
        for task in tasks {
            let answer = task.await.unwrap();
            assert!(matches!(answer, Err(Error::InvalidToken)), "{answer:?}");
        }
        let real = shop
            .engine
            .reset_password(&issued.token, "brand-new-pass", false)
            .await;
        assert_eq!(
            real.is_err(),
            void,
            "after {guesses} racing wrong guesses: {real:?}"
        );
    }
    // The password is the one the last token set, never a guesser's.
    shop.engine
        .login("ann@example.com", "brand-new-pass")
        .await
        .unwrap();
    assert!(
        shop.engine
            .login("ann@example.com", "taken-over-1")
            .await
            .is_err()
    );
}

/// Asking for a reset takes the same time whether the email has an
/// account or not: calls interleaved, medians within 10 %.
async fn a_reset_request_takes_as_long_for_an_unknown_email(backend: Backend) {
    let shop = Shop::new(backend).await;
    shop.engine
        .register(new("ann@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let samples = match backend {
        Backend::Memory => 4_000,
        #[cfg(feature = "postgres")]
        Backend::Postgres => 400,
    };
    let median = |mut v: Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    // The machine is shared and noisy: a round passes when its medians are
    // within 10 %; a real leak (the issue measured 300 µs against 80 µs)
    // fails every round.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for n in 0..samples {
            // Alternate which goes first, so neither gains from the other.
            let order = if n % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for is_known in order {
                let email = if is_known {
                    "ann@example.com"
                } else {
                    "nobody@example.com"
                };
                let start = std::time::Instant::now();
                let issued = shop.engine.request_password_reset(email).await.unwrap();
                let took = start.elapsed();
                assert_eq!(issued.is_some(), is_known);
                if is_known {
                    known.push(took);
                } else {
                    unknown.push(took);
                }
            }
        }
        let (k, u) = (median(known), median(unknown));
        let ratio = k.as_secs_f64() / u.as_secs_f64();
        rounds.push((k, u, ratio));
        if (0.9..=1.1).contains(&ratio) {
            eprintln!("reset request medians, known vs unknown: {rounds:?}");
            return;
        }
    }
    panic!("known vs unknown email medians differ by more than 10 %: {rounds:?}");
}

conformance!(
    racing_wrong_guesses_are_all_counted,
    a_reset_request_takes_as_long_for_an_unknown_email,
    account_changes_reach_the_outbox_without_personal_data,
    a_profile_changes_and_a_new_email_counts_once_confirmed,
    staff_find_customers_by_text_and_group_a_page_at_a_time,
    a_customer_is_exported_and_erased_leaving_the_books,
    a_password_is_changed_with_the_current_one_and_ends_every_session,
    a_forgotten_password_is_reset_once_with_a_token,
    reset_tokens_expire_and_wear_out_under_guessing,
    an_email_is_verified_with_a_token,
    register_and_log_in_with_normalized_email,
    wrong_password_and_unknown_email_look_the_same,
    duplicate_and_invalid_registrations_change_nothing,
    guests_can_later_register,
    address_book_and_groups,
    customers_see_only_themselves,
    concurrent_address_additions_are_all_kept,
);

/// A burst of log-ins runs at most the configured number of hashes at once;
/// the rest wait, and past the wait get a typed "busy" error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_hashing_is_bounded() {
    let config = cartwright::EngineConfig::default()
        .max_concurrent_password_hashes(1)
        .password_hash_wait(std::time::Duration::from_millis(1));
    let engine = Engine::builder()
        .config(config)
        .test_payment_provider()
        .no_tax()
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .login(&format!("nobody{i}@example.com"), "wrong-password")
                .await
        }));
    }
    let (mut busy, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Err(Error::Busy(_)) => busy += 1,
            Err(Error::InvalidCredentials) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(busy > 0, "some log-ins were turned away");
    assert!(refused > 0, "some log-ins ran");
    assert!(Error::Busy("x").is_retryable());
    // A zero-slot configuration is refused.
    let zero = cartwright::EngineConfig::default().max_concurrent_password_hashes(0);
    assert!(
        Engine::builder()
            .config(zero)
            .test_payment_provider()
            .no_tax()
            .build()
            .is_err()
    );
}
