//! The storefront in a real browser: headless Chromium driven through
//! WebDriver (chromedriver, from the operating system's packages; `.ci/run`
//! installs them). A guest buys two items with a coupon and sees the right
//! total; a customer signs up, buys and sees the order; staff, in the back
//! office the shop mounts at `/admin`, refund part
//! of it and ships it, the customer asks to return a unit from the order
//! page, and staff approve; a form with a wrong CSRF token is refused; another customer's
//! order is not found. Every page visited passes an accessibility check
//! run in the page (labels on every field, named buttons, a language and a
//! title, no keyboard traps by tabindex, images with alt text, text
//! contrast of at least 4.5:1), and a screenshot of each is written under
//! `target/storefront-screenshots/`.
//!
//! Without Chromium and chromedriver this test fails, saying how to install
//! them (the README's test command, `scripts/test.sh`, installs them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

mod common;

#[path = "../examples/storefront/session.rs"]
mod session;
#[path = "../examples/storefront/shop.rs"]
mod shop;
#[path = "../examples/storefront/start.rs"]
mod start;
#[path = "../examples/storefront/templates.rs"]
mod templates;
#[path = "../examples/storefront/tracking.rs"]
mod tracking;

use std::sync::Arc;

use cartwright::store::{MemoryStore, Store};
use fantoccini::{Client, Locator};

#[path = "common/browser.rs"]
mod web;
use web::{Tour, browser, click, driver, fill, text};

const STAFF: &str = "staff-password-for-browser";

/// From the catalog, adds the `nth` product (1-based) to the cart.
async fn add(c: &Client, base: &str, nth: usize, tour: &mut Tour) {
    c.goto(&format!("{base}/")).await.unwrap();
    click(c, &format!("main li:nth-child({nth}) a")).await;
    tour.check(c, "product").await;
    click(c, "#add").await;
}

async fn check_out(c: &Client, token: &str, tour: &mut Tour) {
    c.goto(&format!("{}/checkout", origin(c).await))
        .await
        .unwrap();
    tour.check(c, "checkout").await;
    fill(c, "email", "buyer@example.com").await;
    fill(c, "name", "Grace Hopper").await;
    fill(c, "line1", "1 Navy Way").await;
    fill(c, "city", "Arlington").await;
    fill(c, "postal", "22202").await;
    fill(c, "country", "us").await;
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .select_by_value(token)
        .await
        .unwrap();
    click(c, "#pay").await;
}

async fn origin(c: &Client) -> String {
    let url = c.current_url().await.unwrap();
    format!("{}://{}", url.scheme(), url.authority())
}

#[cfg(feature = "admin")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storefront_works_in_a_real_browser() {
    let driver = driver().await;
    let shop = start::start(Arc::new(MemoryStore::new()) as Arc<dyn Store>, STAFF)
        .await
        .unwrap();
    let base = shop.url.clone();
    let mut tour = Tour::new("storefront-screenshots");

    // A guest buys two items with a coupon.
    let guest = browser(&driver).await;
    guest.goto(&format!("{base}/")).await.unwrap();
    tour.check(&guest, "catalog").await;
    add(&guest, &base, 1, &mut tour).await;
    add(&guest, &base, 2, &mut tour).await;
    fill(&guest, "code", "WELCOME10").await;
    click(&guest, "form[action='/cart/coupon'] button").await;
    tour.check(&guest, "cart").await;
    assert_eq!(text(&guest, "#total").await, "27.00 USD");
    check_out(&guest, "tok_visa", &mut tour).await;
    tour.check(&guest, "order").await;
    assert_eq!(text(&guest, "#total").await, "32.00 USD");
    let guest_order = guest.current_url().await.unwrap().to_string();

    // Another browser cannot see that order.
    let stranger = browser(&driver).await;
    stranger.goto(&guest_order).await.unwrap();
    assert!(text(&stranger, "main").await.contains("No such order"));
    stranger.close().await.unwrap();

    // A customer signs up, buys (through 3-D Secure), and sees the order.
    let customer = browser(&driver).await;
    customer.goto(&format!("{base}/signup")).await.unwrap();
    tour.check(&customer, "signup").await;
    fill(&customer, "email", "ada@example.com").await;
    fill(&customer, "password", "correct horse battery staple").await;
    click(&customer, "#submit").await;
    add(&customer, &base, 3, &mut tour).await;
    check_out(&customer, "tok_3ds", &mut tour).await;
    tour.check(&customer, "bank").await;
    click(&customer, "#approve").await;
    tour.check(&customer, "order-after-3ds").await;
    assert_eq!(text(&customer, "#total").await, "30.00 USD");
    let order_url = customer.current_url().await.unwrap().to_string();
    customer.goto(&format!("{base}/account")).await.unwrap();
    tour.check(&customer, "account").await;
    let order_path = order_url.trim_start_matches(&base).to_owned();
    assert!(customer.source().await.unwrap().contains(&order_path));

    // A form whose CSRF token was tampered with is refused.
    customer.goto(&format!("{base}/")).await.unwrap();
    click(&customer, "main li:nth-child(1) a").await;
    customer
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(e => e.value = 'forged');",
            vec![],
        )
        .await
        .unwrap();
    click(&customer, "#add").await;
    assert!(text(&customer, "main").await.contains("This form expired"));
    tour.check(&customer, "csrf-refused").await;

    // Staff refunds part of the customer's order.
    // Staff work in the back office the shop mounts at /admin.
    let staff = browser(&driver).await;
    staff.goto(&format!("{base}/admin/login")).await.unwrap();
    tour.check(&staff, "staff-login").await;
    fill(&staff, "email", start::OWNER_EMAIL).await;
    fill(&staff, "password", STAFF).await;
    click(&staff, "#submit").await;
    tour.check(&staff, "staff-dashboard").await;
    let id = order_path.trim_start_matches("/orders/");
    let admin_order = format!("{base}/admin/orders/{id}");
    staff.goto(&admin_order).await.unwrap();
    tour.check(&staff, "staff-order").await;
    fill(&staff, "refund-amount", "5.00").await;
    fill(&staff, "refund-reason", "scratched").await;
    click(&staff, "#refund").await;
    tour.check(&staff, "refunded").await;
    assert!(text(&staff, "#payments").await.contains("5.00 USD"));
    customer.goto(&order_url).await.unwrap();
    assert_eq!(text(&customer, "#refunded").await, "5.00 USD");

    // Staff ship it; the customer asks to return a unit from the order
    // page; staff see the request with its actions.
    staff.goto(&admin_order).await.unwrap();
    fill(&staff, "carrier", "Post").await;
    click(&staff, "#ship").await;
    tour.check(&staff, "staff-order-shipped").await;
    customer.goto(&order_url).await.unwrap();
    tour.check(&customer, "return-form").await;
    click(&customer, "#return-submit").await;
    tour.check(&customer, "return-requested").await;
    assert!(text(&customer, "main").await.contains("Requested"));
    staff.goto(&admin_order).await.unwrap();
    tour.check(&staff, "staff-return-request").await;
    click(&staff, "form[action$='/approve-return'] button").await;
    tour.check(&staff, "staff-return-approved").await;
    assert!(text(&staff, "#returns").await.contains("approved"));
    staff
        .goto(&format!("{base}/admin/promotions"))
        .await
        .unwrap();
    tour.check(&staff, "staff-promotions").await;

    // The remaining pages pass the check too.
    for (path, name) in [
        ("/login", "login"),
        ("/forgot", "forgot"),
        ("/reset?token=unknown", "reset"),
        ("/cart", "empty-cart"),
    ] {
        guest.goto(&format!("{base}{path}")).await.unwrap();
        tour.check(&guest, name).await;
    }

    for c in [guest, customer, staff] {
        c.close().await.unwrap();
    }
    drop(driver);
}
