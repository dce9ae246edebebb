//! The admin in a real browser (headless Chromium through chromedriver),
//! signed in through its form as each built-in role: every area the role
//! may use is visited, checked for accessibility (labels, names, language,
//! title, no keyboard traps, alt text, contrast of at least 4.5:1) and
//! photographed under `target/admin-screenshots/`; a support agent cannot
//! change a price, a warehouse worker cannot refund, a refund above the
//! support role's ceiling is refused, each with a clear page, and the
//! owner's changes land.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

mod common;
#[path = "common/browser.rs"]
mod web;

use cartwright::admin::{AdminConfig, admin_router};
use cartwright::engine::staff::NewStaff;
use cartwright::prelude::*;
use common::{Backend, Shop, usd};
use fantoccini::{Client, Locator};
use web::{Tour, browser, click, driver, fill, text};

const PASSWORD: &str = "correct horse battery";

async fn sign_in(c: &Client, base: &str, role: &str, tour: &mut Tour) {
    c.goto(&format!("{base}/login")).await.unwrap();
    tour.check(c, &format!("{role}-sign-in")).await;
    fill(c, "email", &format!("{role}@shop.test")).await;
    fill(c, "password", PASSWORD).await;
    click(c, "#submit").await;
    assert!(
        text(c, "header")
            .await
            .contains(&format!("Signed in as {role}")),
        "{role} is signed in"
    );
    tour.check(c, &format!("{role}-dashboard")).await;
}

/// Visits `path` and checks the page.
async fn visit(c: &Client, base: &str, path: &str, name: &str, tour: &mut Tour) -> String {
    c.goto(&format!("{base}{path}")).await.unwrap();
    tour.check(c, name).await;
    text(c, "main").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_role_uses_the_admin_in_a_real_browser() {
    let shop = Shop::new(Backend::Memory).await;
    let e = shop.engine.clone();
    e.install_builtin_roles(&Actor::System, &[usd("20.00")])
        .await
        .unwrap();
    for role in ["owner", "manager", "support", "warehouse", "marketing"] {
        e.create_staff(
            &Actor::System,
            NewStaff::new(&format!("{role}@shop.test"), role, PASSWORD, &[role]),
        )
        .await
        .unwrap();
    }
    let variant = shop.product("MUG", "30.00", 10).await;
    let product = e.variant_by_sku("MUG").await.unwrap().variant.product_id();
    e.set_low_stock_threshold(&Actor::System, variant, Some(20))
        .await
        .unwrap();
    let cart = shop.ready_cart(&[(variant, 2)]).await;
    let order = shop.place(cart.id(), "browser-order").await.id();
    e.create_category(&Actor::System, "Kitchen", None)
        .await
        .unwrap();
    let promotion = e
        .save_promotion(&Actor::System, common::ten_percent_coded())
        .await
        .unwrap();
    shop.customer("ada@example.com").await;

    let app = axum::Router::new().nest(
        "/admin",
        admin_router(e.clone(), AdminConfig::new("/admin").secure_cookies(false)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/admin", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let driver = driver().await;
    let mut tour = Tour::new("admin-screenshots");

    // The owner goes everywhere and changes a price.
    let owner = browser(&driver).await;
    sign_in(&owner, &base, "owner", &mut tour).await;
    let dash = text(&owner, "main").await;
    assert!(dash.contains("MUG"), "top products and low stock: {dash}");
    for (path, name) in [
        ("/products", "products"),
        (&format!("/products/{product}") as &str, "product"),
        ("/categories", "categories"),
        ("/inventory", "inventory"),
        ("/import", "import"),
        ("/orders", "orders"),
        (&format!("/orders/{order}"), "order"),
        ("/promotions", "promotions"),
        ("/promotions/new", "promotion-editor"),
        (
            &format!("/promotions/{}/edit", promotion.id),
            "promotion-forms",
        ),
        ("/price-lists", "price-lists"),
        ("/channels", "channels"),
        ("/customers", "customers"),
        ("/staff", "staff"),
        ("/audit", "audit"),
        ("/settings", "settings"),
    ] {
        visit(&owner, &base, path, &format!("owner-{name}"), &mut tour).await;
    }
    visit(
        &owner,
        &base,
        &format!("/products/{product}"),
        "owner-product-again",
        &mut tour,
    )
    .await;
    fill(&owner, &format!("amount-{variant}"), "32.00").await;
    click(&owner, "#price-MUG").await;
    tour.check(&owner, "owner-price-set").await;
    assert!(text(&owner, "#variants").await.contains("32.00 USD"));
    assert_eq!(
        e.variant_by_sku("MUG")
            .await
            .unwrap()
            .variant
            .price(Currency::USD),
        Some(usd("32.00"))
    );
    // A customer's profile.
    let main = visit(
        &owner,
        &base,
        "/customers?q=ada",
        "owner-customer-search",
        &mut tour,
    )
    .await;
    assert!(main.contains("ada@example.com"));
    click(&owner, "#customers a").await;
    tour.check(&owner, "owner-customer").await;

    // Support: no price changes; refunds only up to 20.00 USD.
    let support = browser(&driver).await;
    sign_in(&support, &base, "support", &mut tour).await;
    let denied = visit(
        &support,
        &base,
        &format!("/products/{product}"),
        "support-product-denied",
        &mut tour,
    )
    .await;
    assert!(denied.contains("Access denied"), "{denied}");
    visit(
        &support,
        &base,
        &format!("/orders/{order}"),
        "support-order",
        &mut tour,
    )
    .await;
    fill(&support, "refund-amount", "25.00").await;
    fill(&support, "refund-reason", "too much").await;
    click(&support, "#refund").await;
    tour.check(&support, "support-refund-refused").await;
    assert!(text(&support, "main").await.contains("above the limit"));
    visit(
        &support,
        &base,
        &format!("/orders/{order}"),
        "support-order-again",
        &mut tour,
    )
    .await;
    fill(&support, "refund-amount", "5.00").await;
    fill(&support, "refund-reason", "scratched").await;
    click(&support, "#refund").await;
    tour.check(&support, "support-refunded").await;
    assert!(text(&support, "#payments").await.contains("5.00 USD"));

    // Warehouse: ships, cannot refund.
    let warehouse = browser(&driver).await;
    sign_in(&warehouse, &base, "warehouse", &mut tour).await;
    visit(
        &warehouse,
        &base,
        &format!("/orders/{order}"),
        "warehouse-order",
        &mut tour,
    )
    .await;
    fill(&warehouse, "refund-amount", "1.00").await;
    fill(&warehouse, "refund-reason", "no").await;
    click(&warehouse, "#refund").await;
    tour.check(&warehouse, "warehouse-refund-refused").await;
    assert!(text(&warehouse, "main").await.contains("Access denied"));
    visit(
        &warehouse,
        &base,
        &format!("/orders/{order}"),
        "warehouse-order-again",
        &mut tour,
    )
    .await;
    fill(&warehouse, "carrier", "UPS").await;
    click(&warehouse, "#ship").await;
    tour.check(&warehouse, "warehouse-shipped").await;
    assert!(text(&warehouse, "#shipments").await.contains("UPS"));
    visit(
        &warehouse,
        &base,
        "/inventory",
        "warehouse-inventory",
        &mut tour,
    )
    .await;

    // Marketing: promotions, no orders in the menu or behind it.
    let marketing = browser(&driver).await;
    sign_in(&marketing, &base, "marketing", &mut tour).await;
    let menu = text(&marketing, "header nav").await;
    assert!(
        menu.contains("Promotions") && !menu.contains("Orders"),
        "{menu}"
    );
    visit(
        &marketing,
        &base,
        "/promotions",
        "marketing-promotions",
        &mut tour,
    )
    .await;
    let denied = visit(
        &marketing,
        &base,
        "/orders",
        "marketing-orders-denied",
        &mut tour,
    )
    .await;
    assert!(denied.contains("Access denied"));

    // The manager signs out; the session is gone.
    let manager = browser(&driver).await;
    sign_in(&manager, &base, "manager", &mut tour).await;
    click(&manager, "#logout").await;
    tour.check(&manager, "manager-signed-out").await;
    manager.goto(&format!("{base}/orders")).await.unwrap();
    assert!(
        manager
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/login")
    );
    assert!(manager.find(Locator::Id("password")).await.is_ok());

    let order = e.order(&Actor::System, order).await.unwrap();
    assert_eq!(
        order.payment().refunded(),
        usd("5.00"),
        "only the refund within the ceiling"
    );
    for c in [owner, support, warehouse, marketing, manager] {
        c.close().await.unwrap();
    }
    drop(driver);
}
