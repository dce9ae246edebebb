//! Staff accounts and roles, on both stores: roles are enforced by the
//! engine itself (a support agent cannot change a price, a warehouse worker
//! cannot refund, a refund above the role's ceiling is refused, each
//! refused call changing nothing); sessions expire, end on sign-out,
//! deactivation and a new password; two-factor codes are asked for and
//! good once; wrong sign-ins lock the account; the shop cannot lock itself
//! out; every change is in the audit log under the member who made it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::clock::Clock;
use cartwright::engine::staff::{NewStaff, totp_code_at};
use cartwright::event::EventKind;
use cartwright::money_path::ManualRefund;
use cartwright::prelude::*;
use cartwright::pricing::{PriceList, PriceListKind};
use cartwright::staff::{Permission, Role};
use common::{Backend, Shop, key, usd};

const PASSWORD: &str = "correct horse battery";

/// A shop with the built-in roles (support refunding up to 20.00 USD), an
/// owner, and one member per other role; their actors, signed in.
struct World {
    shop: Shop,
    owner: Actor,
    support: Actor,
    warehouse: Actor,
    marketing: Actor,
}

async fn sign_in(shop: &Shop, email: &str) -> Actor {
    let login = shop
        .engine
        .staff_login(email, PASSWORD, None)
        .await
        .unwrap();
    shop.engine.staff_actor(&login.token).await.unwrap()
}

async fn world(backend: Backend) -> World {
    let shop = Shop::new(backend).await;
    shop.engine
        .install_builtin_roles(&Actor::System, &[usd("20.00")])
        .await
        .unwrap();
    for (email, role) in [
        ("owner@shop.test", "owner"),
        ("support@shop.test", "support"),
        ("warehouse@shop.test", "warehouse"),
        ("marketing@shop.test", "marketing"),
    ] {
        shop.engine
            .create_staff(
                &Actor::System,
                NewStaff::new(email, role, PASSWORD, &[role]),
            )
            .await
            .unwrap();
    }
    World {
        owner: sign_in(&shop, "owner@shop.test").await,
        support: sign_in(&shop, "support@shop.test").await,
        warehouse: sign_in(&shop, "warehouse@shop.test").await,
        marketing: sign_in(&shop, "marketing@shop.test").await,
        shop,
    }
}

async fn roles_are_enforced_by_the_engine(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let a = w.shop.product("A", "30.00", 10).await;
    let list = || {
        PriceList::new("Sale", PriceListKind::Sale, 0, Currency::USD).with_price(a, 1, usd("25.00"))
    };
    // Prices: marketing yes, support and warehouse no.
    let before = w.shop.snapshot().await;
    for who in [&w.support, &w.warehouse] {
        let refused = e.save_price_list(who, list()).await;
        assert!(matches!(refused, Err(Error::Forbidden)), "{refused:?}");
        let product = e.variant_by_sku("A").await.unwrap().variant.product_id();
        let refused = e.set_product_status(who, product, Status::Draft).await;
        assert!(matches!(refused, Err(Error::Forbidden)), "{refused:?}");
    }
    assert!(
        w.shop.snapshot().await == before,
        "refused calls changed nothing"
    );
    e.save_price_list(&w.marketing, list()).await.unwrap();
    // Stock: warehouse yes, marketing no.
    e.set_stock(&w.warehouse, a, w.shop.warehouse, 12)
        .await
        .unwrap();
    assert!(matches!(
        e.set_stock(&w.marketing, a, w.shop.warehouse, 0).await,
        Err(Error::Forbidden)
    ));
    // Customers: support yes, warehouse no.
    let customer = w.shop.customer("c@example.com").await.id();
    e.customer(&w.support, customer).await.unwrap();
    assert!(matches!(
        e.customer(&w.warehouse, customer).await,
        Err(Error::Forbidden)
    ));

    // An order of 25.00 + 5.00 shipping + 10 % tax = 33.00, paid.
    let cart = w.shop.ready_cart(&[(a, 1)]).await;
    let order = w.shop.place(cart.id(), "o1").await;
    assert_eq!(order.total(), usd("33.00"));
    // The warehouse ships but cannot refund; the refused refund changes nothing.
    e.order(&w.warehouse, order.id()).await.unwrap();
    let before = w.shop.snapshot().await;
    let refund = |amount: &str, k: &str| ManualRefund::new(usd(amount), "goodwill", key(k));
    let refused = e
        .refund(&w.warehouse, order.id(), refund("5.00", "r1"))
        .await;
    assert!(matches!(refused, Err(Error::Forbidden)), "{refused:?}");
    let refused = e.cancel(&w.warehouse, order.id(), "changed mind").await;
    assert!(matches!(refused, Err(Error::Forbidden)), "{refused:?}");
    // Support refunds up to its ceiling, not above.
    let above = e
        .refund(&w.support, order.id(), refund("20.01", "r2"))
        .await;
    assert!(
        matches!(above, Err(Error::RefundAboveLimit { limit: Some(l), .. }) if l == usd("20.00")),
        "{above:?}"
    );
    assert!(
        w.shop.snapshot().await == before,
        "refused refunds changed nothing"
    );
    let refunded = e
        .refund(&w.support, order.id(), refund("20.00", "r3"))
        .await
        .unwrap();
    assert_eq!(refunded.payment().refunded(), usd("20.00"));
    // Cancelling gives back the other 13.00: within support's ceiling.
    let cancelled = e.cancel(&w.support, order.id(), "asked").await.unwrap();
    assert_eq!(cancelled.payment().refunded(), usd("33.00"));
    // The history names the member of staff who refunded.
    let by_support = cancelled
        .history()
        .iter()
        .any(|h| matches!(&h.actor, Actor::StaffMember(s) if s.name == "support"));
    assert!(by_support, "{:?}", cancelled.history());
    // The owner can do what every role can.
    e.save_price_list(&w.owner, list()).await.unwrap();
    e.set_stock(&w.owner, a, w.shop.warehouse, 3).await.unwrap();
    // The audit log records the member behind each change.
    let events = e.pending_events(&w.owner, "audit-view", 500).await.unwrap();
    let audited = events.iter().any(|ev| {
        matches!(&ev.kind, EventKind::AdminChange { actor: Actor::StaffMember(s), action, .. }
            if s.name == "warehouse" && action == "set_stock")
    });
    assert!(audited);
    // The audit view lists them newest first, in pages, for the owner only.
    let log = e.audit_log(&w.owner, None, 2).await.unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[0].sequence > log[1].sequence);
    assert!(matches!(&log[0].kind, EventKind::AdminChange { action, .. } if action == "set_stock"));
    let older = e
        .audit_log(&w.owner, Some(log[1].sequence), 500)
        .await
        .unwrap();
    assert!(older.iter().all(
        |ev| ev.sequence < log[1].sequence && matches!(ev.kind, EventKind::AdminChange { .. })
    ));
    assert!(older.iter().any(|ev| matches!(&ev.kind,
        EventKind::AdminChange { actor: Actor::StaffMember(s), action, .. }
            if s.name == "warehouse" && action == "set_stock")));
    assert!(matches!(
        e.audit_log(&w.support, None, 10).await,
        Err(Error::Forbidden)
    ));
    // Nobody but those with the staff permission sees or changes staff.
    for who in [&w.support, &w.warehouse, &w.marketing] {
        assert!(matches!(e.list_staff(who).await, Err(Error::Forbidden)));
        assert!(matches!(
            e.install_builtin_roles(who, &[]).await,
            Err(Error::Forbidden)
        ));
    }
    assert_eq!(e.list_staff(&w.owner).await.unwrap().len(), 4);
}

async fn sessions_expire_and_end(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let login = e
        .staff_login("support@shop.test", PASSWORD, None)
        .await
        .unwrap();
    assert!(
        format!("{login:?}").find(&login.token).is_none(),
        "the token is not in Debug"
    );
    let actor = e.staff_actor(&login.token).await.unwrap();
    let id = actor.staff_id().unwrap();
    // A role given takes effect at the next request.
    assert!(!actor.allows(Permission::Inventory));
    e.set_staff_roles(&w.owner, id, vec!["support".into(), "warehouse".into()])
        .await
        .unwrap();
    assert!(
        e.staff_actor(&login.token)
            .await
            .unwrap()
            .allows(Permission::Inventory)
    );
    // Eight hours later the session is over.
    w.shop.clock.advance(chrono::Duration::hours(8));
    assert!(matches!(
        e.staff_actor(&login.token).await,
        Err(Error::InvalidToken)
    ));
    // Signing out ends a session; switching an account off ends them all.
    let a = e
        .staff_login("support@shop.test", PASSWORD, None)
        .await
        .unwrap();
    let b = e
        .staff_login("support@shop.test", PASSWORD, None)
        .await
        .unwrap();
    e.staff_logout(&a.token).await.unwrap();
    assert!(matches!(
        e.staff_actor(&a.token).await,
        Err(Error::InvalidToken)
    ));
    e.staff_actor(&b.token).await.unwrap();
    // (The owner's session started before the clock moved on: sign in again.)
    let owner = sign_in(&w.shop, "owner@shop.test").await;
    e.set_staff_active(&owner, id, false).await.unwrap();
    assert!(matches!(
        e.staff_actor(&b.token).await,
        Err(Error::InvalidToken)
    ));
    assert!(matches!(
        e.staff_login("support@shop.test", PASSWORD, None).await,
        Err(Error::InvalidCredentials)
    ));
    e.set_staff_active(&owner, id, true).await.unwrap();
    // A new password ends every session of the member's.
    let c = e
        .staff_login("support@shop.test", PASSWORD, None)
        .await
        .unwrap();
    let me = e.staff_actor(&c.token).await.unwrap();
    assert!(matches!(
        e.change_staff_password(&me, "wrong password", "a new password")
            .await,
        Err(Error::InvalidCredentials)
    ));
    e.change_staff_password(&me, PASSWORD, "a new password")
        .await
        .unwrap();
    assert!(matches!(
        e.staff_actor(&c.token).await,
        Err(Error::InvalidToken)
    ));
    e.staff_login("support@shop.test", "a new password", None)
        .await
        .unwrap();
    assert!(matches!(
        e.staff_actor("not a token").await,
        Err(Error::InvalidToken)
    ));
}

async fn two_factor_codes_are_asked_for_and_good_once(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let enrolment = e.begin_totp(&w.support).await.unwrap();
    assert!(
        enrolment.uri.starts_with("otpauth://totp/"),
        "{}",
        enrolment.uri
    );
    assert!(enrolment.uri.contains(&enrolment.secret));
    // Until a code confirms it, sign-in asks for none.
    e.staff_login("support@shop.test", PASSWORD, None)
        .await
        .unwrap();
    assert!(matches!(
        e.confirm_totp(&w.support, "000000").await,
        Err(Error::InvalidCredentials)
    ));
    let now = w.shop.clock.now();
    let code = totp_code_at(&enrolment.secret, now).unwrap();
    let member = e.confirm_totp(&w.support, &code).await.unwrap();
    assert!(member.two_factor());
    // Now the password alone is not enough, and a code is good once.
    assert!(matches!(
        e.staff_login("support@shop.test", PASSWORD, None).await,
        Err(Error::Incomplete("one-time code"))
    ));
    assert!(matches!(
        e.staff_login("support@shop.test", PASSWORD, Some(&code))
            .await,
        Err(Error::InvalidCredentials)
    ));
    w.shop.clock.advance(chrono::Duration::seconds(30));
    let next = totp_code_at(&enrolment.secret, w.shop.clock.now()).unwrap();
    assert!(matches!(
        e.staff_login("support@shop.test", "wrong password", Some(&next))
            .await,
        Err(Error::InvalidCredentials)
    ));
    e.staff_login("support@shop.test", PASSWORD, Some(&next))
        .await
        .unwrap();
    assert!(matches!(
        e.staff_login("support@shop.test", PASSWORD, Some(&next))
            .await,
        Err(Error::InvalidCredentials)
    ));
    // A code from long ago is refused.
    w.shop.clock.advance(chrono::Duration::seconds(30));
    let old = totp_code_at(&enrolment.secret, now - chrono::Duration::minutes(10)).unwrap();
    assert!(matches!(
        e.staff_login("support@shop.test", PASSWORD, Some(&old))
            .await,
        Err(Error::InvalidCredentials)
    ));
    // Enrolling twice is refused; the owner resets a lost phone.
    assert!(matches!(
        e.begin_totp(&w.support).await,
        Err(Error::Invalid { .. })
    ));
    let id = w.support.staff_id().unwrap();
    assert!(matches!(
        e.reset_totp(&w.warehouse, id).await,
        Err(Error::Forbidden)
    ));
    e.reset_totp(&w.owner, id).await.unwrap();
    e.staff_login("support@shop.test", PASSWORD, None)
        .await
        .unwrap();
}

async fn wrong_sign_ins_lock_the_account(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    for _ in 0..cartwright::staff::MAX_FAILED_SIGN_INS {
        assert!(matches!(
            e.staff_login("support@shop.test", "wrong password", None)
                .await,
            Err(Error::InvalidCredentials)
        ));
    }
    // Locked: even the right password is refused, the same way.
    assert!(matches!(
        e.staff_login("support@shop.test", PASSWORD, None).await,
        Err(Error::InvalidCredentials)
    ));
    w.shop.clock.advance(chrono::Duration::minutes(
        cartwright::staff::LOCKOUT_MINUTES,
    ));
    e.staff_login("support@shop.test", PASSWORD, None)
        .await
        .unwrap();
    // An unknown email is answered as a wrong password.
    assert!(matches!(
        e.staff_login("nobody@shop.test", PASSWORD, None).await,
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        e.staff_login("not an email", PASSWORD, None).await,
        Err(Error::InvalidCredentials)
    ));
}

async fn the_shop_cannot_lock_itself_out(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let owner_id = w.owner.staff_id().unwrap();
    let refused = e.set_staff_active(&w.owner, owner_id, false).await;
    assert!(matches!(refused, Err(Error::Invalid { .. })), "{refused:?}");
    let refused = e
        .set_staff_roles(&w.owner, owner_id, vec!["support".into()])
        .await;
    assert!(matches!(refused, Err(Error::Invalid { .. })), "{refused:?}");
    let weakened = Role::new("owner", [Permission::Orders]).unwrap();
    assert!(matches!(
        e.save_role(&w.owner, weakened).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        e.delete_role(&w.owner, "support").await,
        Err(Error::Invalid { .. })
    ));
    // With a second owner, the first may step down.
    let second = e
        .create_staff(
            &w.owner,
            NewStaff::new("second@shop.test", "Second", PASSWORD, &["owner"]),
        )
        .await
        .unwrap();
    e.set_staff_roles(&w.owner, owner_id, vec!["support".into()])
        .await
        .unwrap();
    // The former owner's next request (a new actor from their session)
    // has only support's permissions.
    let stepped_down = sign_in(&w.shop, "owner@shop.test").await;
    assert!(matches!(
        e.list_staff(&stepped_down).await,
        Err(Error::Forbidden)
    ));
    assert!(second.roles == vec!["owner".to_owned()]);
}

async fn bad_input_is_refused_and_changes_nothing(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let before = w.shop.snapshot().await;
    for new in [
        NewStaff::new("not an email", "X", PASSWORD, &["support"]),
        NewStaff::new("x@shop.test", "", PASSWORD, &["support"]),
        NewStaff::new("x@shop.test", &"n".repeat(201), PASSWORD, &["support"]),
        NewStaff::new("x@shop.test", "X", "short", &["support"]),
        NewStaff::new("x@shop.test", "X", PASSWORD, &["no-such-role"]),
        NewStaff::new("x@shop.test", "X", PASSWORD, &[]),
        NewStaff::new("x@shop.test", "X", PASSWORD, &["support", "support"]),
    ] {
        let refused = e.create_staff(&w.owner, new.clone()).await;
        assert!(
            matches!(
                refused,
                Err(Error::Invalid { .. } | Error::LimitExceeded { .. })
            ),
            "{new:?}: {refused:?}"
        );
    }
    let taken = e
        .create_staff(
            &w.owner,
            NewStaff::new("SUPPORT@shop.test", "Again", PASSWORD, &["support"]),
        )
        .await;
    assert!(
        matches!(taken, Err(Error::AlreadyExists { .. })),
        "{taken:?}"
    );
    assert!(Role::new("Has Spaces", []).is_err());
    assert!(Role::support(&[usd("0.00")]).is_err());
    assert!(w.shop.snapshot().await == before, "nothing changed");
}

/// Someone who knows a member's email and guesses cannot lock the member
/// out of a device they signed in on (OWASP's device cookies): the
/// account locks for every other device, the known one keeps its own
/// count, its token is spent and replaced at each sign-in, and its own
/// wrong guesses get it forgotten.
async fn guesses_elsewhere_do_not_lock_a_members_device(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let email = "support@shop.test";
    let first = e.staff_login(email, PASSWORD, None).await.unwrap();
    assert_eq!(first.device.len(), 64);
    assert!(
        !format!("{first:?}").contains(&first.device),
        "never logged"
    );
    // Someone else guesses until the account locks.
    for _ in 0..cartwright::staff::MAX_FAILED_SIGN_INS {
        assert!(matches!(
            e.staff_login(email, "a guess", None).await,
            Err(Error::InvalidCredentials)
        ));
    }
    assert!(matches!(
        e.staff_login(email, PASSWORD, None).await,
        Err(Error::InvalidCredentials)
    ));
    // A made-up device token is no device: still locked.
    assert!(matches!(
        e.staff_login_from(email, PASSWORD, None, Some(&"f".repeat(64)))
            .await,
        Err(Error::InvalidCredentials)
    ));
    // The member's own device signs in, and gets a new token.
    let second = e
        .staff_login_from(email, PASSWORD, None, Some(&first.device))
        .await
        .unwrap();
    assert_ne!(second.device, first.device);
    e.staff_actor(&second.token).await.unwrap();
    // The spent token is no longer a device; the account is still
    // locked to everyone else.
    assert!(matches!(
        e.staff_login_from(email, PASSWORD, None, Some(&first.device))
            .await,
        Err(Error::InvalidCredentials)
    ));
    // The device's own wrong tries count against it alone: the account's
    // lock is untouched, and after too many the device is forgotten.
    for _ in 0..cartwright::staff::MAX_FAILED_SIGN_INS {
        assert!(matches!(
            e.staff_login_from(email, "a typo", None, Some(&second.device))
                .await,
            Err(Error::InvalidCredentials)
        ));
    }
    assert!(matches!(
        e.staff_login_from(email, PASSWORD, None, Some(&second.device))
            .await,
        Err(Error::InvalidCredentials)
    ));
    // The lock ends as before.
    w.shop.clock.advance(chrono::Duration::minutes(
        cartwright::staff::LOCKOUT_MINUTES,
    ));
    let third = e.staff_login(email, PASSWORD, None).await.unwrap();
    // A member is remembered on a bounded number of devices: the least
    // recently used is forgotten first.
    let mut devices = vec![third.device.clone()];
    for _ in 0..cartwright::staff::MAX_TRUSTED_DEVICES {
        devices.push(e.staff_login(email, PASSWORD, None).await.unwrap().device);
    }
    for _ in 0..cartwright::staff::MAX_FAILED_SIGN_INS {
        let _ = e.staff_login(email, "a guess", None).await;
    }
    assert!(matches!(
        e.staff_login_from(email, PASSWORD, None, Some(&devices[0]))
            .await,
        Err(Error::InvalidCredentials)
    ));
    e.staff_login_from(email, PASSWORD, None, devices.last().map(String::as_str))
        .await
        .unwrap();
}

conformance!(
    guesses_elsewhere_do_not_lock_a_members_device,
    roles_are_enforced_by_the_engine,
    sessions_expire_and_end,
    two_factor_codes_are_asked_for_and_good_once,
    wrong_sign_ins_lock_the_account,
    the_shop_cannot_lock_itself_out,
    bad_input_is_refused_and_changes_nothing,
);
