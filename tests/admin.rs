//! The mountable admin over HTTP, on both stores, signed in as each
//! built-in role through its own sign-in form: every screen renders for
//! the owner; a support agent cannot change a price, a warehouse worker
//! cannot refund, a refund above the role's ceiling is refused (each a
//! clear page, nothing changed); forged CSRF tokens, expired and signed-out
//! sessions, a 100 MB upload, a file that is not an image, a path in a
//! file name and a bad CSV file are refused with a page saying why and
//! change nothing; uploads are served with cache headers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Cursor;
use std::sync::Arc;

use cartwright::admin::{AdminConfig, admin_router};
use cartwright::engine::staff::NewStaff;
use cartwright::prelude::*;
use common::{Backend, Shop, usd};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

const PASSWORD: &str = "correct horse battery";

/// What the shop holds that staff could change (orders, the catalog,
/// stock); sessions and sign-in counters are left out.
async fn business(w: &World) -> String {
    let e = &w.shop.engine;
    format!(
        "{:?}\n{:?}\n{:?}",
        e.order(&Actor::System, w.order).await.unwrap(),
        e.product(w.product).await.unwrap(),
        e.stock(e.variant_by_sku("MUG").await.unwrap().variant.id())
            .await
            .unwrap(),
    )
}

struct World {
    shop: Shop,
    base: String,
    order: cartwright::id::OrderId,
    product: cartwright::id::ProductId,
}

async fn world(backend: Backend) -> World {
    serve(Shop::new(backend).await).await
}

/// Staff of every role, a product, an order of two mugs, and the admin
/// served for `shop`.
async fn serve(shop: Shop) -> World {
    let e = &shop.engine;
    e.install_builtin_roles(&Actor::System, &[usd("20.00")])
        .await
        .unwrap();
    for role in ["owner", "support", "warehouse", "marketing", "manager"] {
        e.create_staff(
            &Actor::System,
            NewStaff::new(&format!("{role}@shop.test"), role, PASSWORD, &[role]),
        )
        .await
        .unwrap();
    }
    let variant = shop.product("MUG", "30.00", 10).await;
    let product = e.variant_by_sku("MUG").await.unwrap().variant.product_id();
    let cart = shop.ready_cart(&[(variant, 2)]).await;
    let order = shop.place(cart.id(), "admin-order").await.id();
    let app = axum::Router::new().nest(
        "/admin",
        admin_router(
            e.clone(),
            AdminConfig::new("/admin")
                .secure_cookies(false)
                .shop_name("Test shop"),
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/admin", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    World {
        shop,
        base,
        order,
        product,
    }
}

/// A browser-like client: cookies kept, redirects not followed (so each
/// answer can be looked at).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the first `name="csrf"` field in a page.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &page[at + 19..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn sign_in(w: &World, role: &str) -> (reqwest::Client, String) {
    let c = client();
    let form = c.get(format!("{}/login", w.base)).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let page = form.text().await.unwrap();
    let done = c
        .post(format!("{}/login", w.base))
        .form(&[
            ("csrf", csrf(&page).as_str()),
            ("email", &format!("{role}@shop.test")),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "{role} signs in");
    let cookie = done
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("cw_admin="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let home = c.get(w.base.clone()).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let token = csrf(&home.text().await.unwrap());
    (c, token)
}

async fn get(c: &reqwest::Client, url: String) -> (StatusCode, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post(c: &reqwest::Client, url: String, form: &[(&str, &str)]) -> (StatusCode, String) {
    let r = c.post(url).form(form).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 99]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn every_screen_renders_for_the_owner(backend: Backend) {
    let w = world(backend).await;
    let (c, _) = sign_in(&w, "owner").await;
    for path in [
        "".to_owned(),
        "/products".to_owned(),
        format!("/products/{}", w.product),
        "/categories".to_owned(),
        "/inventory".to_owned(),
        "/import".to_owned(),
        "/orders".to_owned(),
        format!("/orders/{}", w.order),
        "/promotions".to_owned(),
        "/promotions/new".to_owned(),
        "/price-lists".to_owned(),
        "/channels".to_owned(),
        "/customers".to_owned(),
        "/staff".to_owned(),
        "/audit".to_owned(),
        "/settings".to_owned(),
    ] {
        let r = c.get(format!("{}{path}", w.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let page = r.text().await.unwrap();
        assert!(page.contains("<html lang=\"en\">"), "{path}");
        assert!(page.contains("Signed in as owner"), "{path}");
    }
    let total = w
        .shop
        .engine
        .order(&Actor::System, w.order)
        .await
        .unwrap()
        .total();
    let shown = format!("{} USD", total.amount());
    let (_, dash) = get(&c, w.base.clone()).await;
    assert!(
        dash.contains(&shown),
        "today's sales ({shown}) on the dashboard: {dash}"
    );
    assert!(dash.contains("<svg"), "a chart");
    let (_, order) = get(&c, format!("{}/orders/{}", w.base, w.order)).await;
    assert!(order.contains("MUG") && order.contains(&shown));
    // Order search: by id straight to the order, by a customer's email to
    // their orders, a search that finds no customer a clear "not found".
    let r = c
        .get(format!("{}/orders?q={}", w.base, w.order))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains(&w.order.to_string())
    );
    w.shop.customer("findme@example.com").await;
    let (status, page) = get(&c, format!("{}/orders?q=findme@example", w.base)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("No orders."),
        "the guest's order is not theirs: {page}"
    );
    let (status, _) = get(&c, format!("{}/orders?q=nobody-at-all", w.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let csv = c
        .get(format!("{}/catalog.csv", w.base))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.text().await.unwrap().contains("MUG"));
}

async fn roles_are_enforced_through_the_screens(backend: Backend) {
    let w = world(backend).await;
    let variant = w.shop.engine.variant_by_sku("MUG").await.unwrap().variant;
    let before = business(&w).await;

    // A support agent cannot change a price.
    let (support, token) = sign_in(&w, "support").await;
    let (status, page) = post(
        &support,
        format!("{}/products/{}/prices", w.base, w.product),
        &[
            ("csrf", &token),
            ("variant", &variant.id().to_string()),
            ("amount", "1.00"),
            ("currency", "USD"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("Access denied"), "{page}");
    // Nor open the product form's areas it has no permission for.
    let (status, _) = get(&support, format!("{}/products/{}", w.base, w.product)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A refund above support's ceiling (20.00 USD) is refused.
    let (status, page) = post(
        &support,
        format!("{}/orders/{}/refund", w.base, w.order),
        &[
            ("csrf", &token),
            ("amount", "25.00"),
            ("reason", "too much"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("above the limit"), "{page}");
    // The warehouse worker cannot refund at all.
    let (warehouse, wtoken) = sign_in(&w, "warehouse").await;
    let (status, page) = post(
        &warehouse,
        format!("{}/orders/{}/refund", w.base, w.order),
        &[("csrf", &wtoken), ("amount", "1.00"), ("reason", "no")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    // Marketing sees no orders.
    let (marketing, _) = sign_in(&w, "marketing").await;
    let (status, _) = get(&marketing, format!("{}/orders", w.base)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, nav) = get(&marketing, w.base.clone()).await;
    assert!(
        !nav.contains("/admin/orders\""),
        "marketing's menu has no orders"
    );
    assert!(business(&w).await == before, "nothing changed");

    // Within the ceiling, support refunds; the history names them.
    let (status, _) = post(
        &support,
        format!("{}/orders/{}/refund", w.base, w.order),
        &[
            ("csrf", &token),
            ("amount", "5.00"),
            ("reason", "scratched"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let order = w.shop.engine.order(&Actor::System, w.order).await.unwrap();
    assert_eq!(order.payment().refunded(), usd("5.00"));
    let (_, page) = get(&support, format!("{}/orders/{}", w.base, w.order)).await;
    assert!(page.contains("support"), "the history names the member");
    // The owner's price change lands and is in the audit log under them.
    let (owner, otoken) = sign_in(&w, "owner").await;
    let (status, _) = post(
        &owner,
        format!("{}/products/{}/prices", w.base, w.product),
        &[
            ("csrf", &otoken),
            ("variant", &variant.id().to_string()),
            ("amount", "31.50"),
            ("currency", "USD"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let now = w.shop.engine.variant_by_sku("MUG").await.unwrap().variant;
    assert_eq!(now.price(Currency::USD), Some(usd("31.50")));
    let (_, audit) = get(&owner, format!("{}/audit", w.base)).await;
    assert!(
        audit.contains("update product") && audit.contains("owner"),
        "{audit}"
    );
}

async fn forged_and_expired_requests_change_nothing(backend: Backend) {
    let w = world(backend).await;
    let (owner, token) = sign_in(&w, "owner").await;
    let before = business(&w).await;
    let cancel = format!("{}/orders/{}/cancel", w.base, w.order);
    for forged in ["", "0000", &token[..token.len() - 1]] {
        let (status, page) =
            post(&owner, cancel.clone(), &[("csrf", forged), ("reason", "x")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{forged:?}");
        assert!(page.contains("security token"), "{page}");
    }
    // Another session's token is not this one's.
    let (_, other_token) = sign_in(&w, "manager").await;
    let (status, _) = post(
        &owner,
        cancel.clone(),
        &[("csrf", &other_token), ("reason", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // No session at all: to the sign-in page.
    let (status, _) = post(
        &client(),
        cancel.clone(),
        &[("csrf", &token), ("reason", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // A forged sign-in form.
    let (status, page) = post(
        &client(),
        format!("{}/login", w.base),
        &[
            ("csrf", "guess"),
            ("email", "owner@shop.test"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("form expired"), "{page}");
    // The session expires after the configured time.
    w.shop.clock.advance(chrono::Duration::hours(9));
    let r = owner
        .post(cancel.clone())
        .form(&[("csrf", token.as_str()), ("reason", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(
        to.starts_with("/admin/login") && to.contains("session"),
        "{to}"
    );
    assert!(business(&w).await == before, "nothing changed");

    // Signing out ends the session.
    let (owner, token) = sign_in(&w, "owner").await;
    let (status, _) = post(&owner, format!("{}/logout", w.base), &[("csrf", &token)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = get(&owner, format!("{}/orders", w.base)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

async fn uploads_and_imports_are_checked(backend: Backend) {
    let w = world(backend).await;
    let (owner, token) = sign_in(&w, "owner").await;
    let url = format!("{}/products/{}/images", w.base, w.product);
    let before = business(&w).await;
    let send = |bytes: Vec<u8>, name: &'static str, mime: &'static str, csrf: String| {
        let owner = owner.clone();
        let url = url.clone();
        async move {
            let form = Form::new().text("csrf", csrf).text("alt", "A mug").part(
                "image",
                Part::bytes(bytes).file_name(name).mime_str(mime).unwrap(),
            );
            let r = owner.post(url).multipart(form).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    // 100 MB: refused from its declared length, before it is read. The
    // answer is a page saying so; a client still sending may instead see
    // the connection closed under it (the server does not read on).
    let big = Form::new().text("csrf", token.clone()).part(
        "image",
        Part::bytes(vec![0; 100 * 1024 * 1024])
            .file_name("big.png")
            .mime_str("image/png")
            .unwrap(),
    );
    match owner.post(url.clone()).multipart(big).send().await {
        Ok(r) => {
            assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
            let page = r.text().await.unwrap();
            assert!(page.contains("too large"), "{page}");
        }
        Err(e) => assert!(e.is_request(), "{e:?}"),
    }
    // Not an image.
    let (status, page) = send(
        b"<?php system($_GET['c']); ?>".to_vec(),
        "shell.php.png",
        "image/png",
        token.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not a PNG, JPEG or WebP"), "{page}");
    // A forged token.
    let (status, _) = send(png(4, 4), "a.png", "image/png", "forged".into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(business(&w).await == before, "nothing changed");
    // A path in the file name is never used.
    let (status, _) = send(
        png(6, 5),
        "../../../etc/passwd.png",
        "image/png",
        token.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let product = w.shop.engine.product(w.product).await.unwrap();
    let image = &product.images()[0];
    assert!(
        !image.url.contains("passwd") && !image.url.contains(".."),
        "{}",
        image.url
    );
    // Served with cache headers and an ETag that answers 304.
    let key = image.media.clone().unwrap().to_string();
    let served = owner
        .get(format!("{}/media/{key}", w.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert!(
        served.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    let etag = served.headers()["etag"].to_str().unwrap().to_owned();
    let again = owner
        .get(format!("{}/media/{key}", w.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let missing = owner
        .get(format!("{}/media/..%2F..%2Fetc%2Fpasswd", w.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // CSV: a dry run shows every row's errors; an apply with errors
    // changes nothing; a good file imports once.
    let before = business(&w).await;
    let import = |csv: &'static str, mode: &'static str| {
        let owner = owner.clone();
        let url = format!("{}/import", w.base);
        let token = token.clone();
        async move {
            let form = Form::new().text("csrf", token).text("mode", mode).part(
                "file",
                Part::bytes(csv.as_bytes().to_vec())
                    .file_name("c.csv")
                    .mime_str("text/csv")
                    .unwrap(),
            );
            let r = owner.post(url).multipart(form).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let bad = "product_title,sku,price:USD,colour\nCup,CUP-1,abc,red\nCup,CUP-1,1.00,red\n";
    for mode in ["dry-run", "apply"] {
        let (status, page) = import(bad, mode).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
        assert!(page.contains("Not imported"), "{page}");
        assert!(
            page.contains("<td>1</td>")
                && page.contains("<td>2</td>")
                && page.contains("<td>3</td>"),
            "{page}"
        );
    }
    assert!(business(&w).await == before, "nothing changed");
    let good = "product_title,sku,price:USD\nCup,CUP-1,4.00\n";
    let (status, page) = import(good, "apply").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Imported"), "{page}");
    assert_eq!(
        w.shop
            .engine
            .variant_by_sku("CUP-1")
            .await
            .unwrap()
            .variant
            .price(Currency::USD),
        Some(usd("4.00"))
    );
}

async fn promotions_are_made_and_changed_in_the_editor(backend: Backend) {
    let w = world(backend).await;
    let (marketing, token) = sign_in(&w, "marketing").await;
    let (status, page) = get(&marketing, format!("{}/promotions/new", w.base)).await;
    assert_eq!(status, StatusCode::OK);
    // Every action and condition shape is listed, from the schema.
    for shape in [
        "percent_off_items",
        "amount_off_order",
        "buy_x_get_y",
        "bundle",
        "tiered",
        "first_and_additional",
        "subtotal",
        "customer_group",
        "email_domain",
        "any_of",
    ] {
        assert!(page.contains(&format!("<code>{shape}</code>")), "{shape}");
    }
    let rules = r#"{"action": {"type": "percent_off_order", "percent": "15"},
                    "conditions": [{"type": "subtotal", "op": "gte", "amount": {"amount": "40.00", "currency": "USD"}}]}"#;
    let r = marketing
        .post(format!("{}/promotions/save", w.base))
        .form(&[
            ("csrf", token.as_str()),
            ("name", "Fifteen off forty"),
            ("enabled", "1"),
            ("priority", "3"),
            ("rules", rules),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let all = w.shop.engine.promotions(&Actor::System).await.unwrap();
    let made = all.iter().find(|p| p.name == "Fifteen off forty").unwrap();
    assert!(made.enabled && !made.coded && made.priority == 3);
    assert_eq!(made.conditions.len(), 1);
    // Edited: the same promotion, switched to codes.
    let (status, page) = get(
        &marketing,
        format!("{}/promotions/{}/edit", w.base, made.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("percent_off_order"));
    let (status, _) = post(
        &marketing,
        format!("{}/promotions/save", w.base),
        &[
            ("csrf", &token),
            ("id", &made.id.to_string()),
            ("name", "Fifteen off forty"),
            ("coded", "1"),
            ("enabled", "1"),
            ("rules", rules),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let again = w
        .shop
        .engine
        .promotion(&Actor::System, made.id)
        .await
        .unwrap();
    assert!(again.coded);
    assert_eq!(
        w.shop
            .engine
            .promotions(&Actor::System)
            .await
            .unwrap()
            .len(),
        all.len()
    );
    // Bad rules: the page says why; nothing is saved.
    for bad in [
        "not json",
        r#"{"action": {"type": "percent_off_order", "percent": "150"}}"#,
        r#"{"action": {"type": "no_such_action"}}"#,
        r#"{"conditions": []}"#,
    ] {
        let (status, page) = post(
            &marketing,
            format!("{}/promotions/save", w.base),
            &[("csrf", &token), ("name", "Broken"), ("rules", bad)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.contains("Not saved"), "{bad}: {page}");
    }
    assert_eq!(
        w.shop
            .engine
            .promotions(&Actor::System)
            .await
            .unwrap()
            .len(),
        all.len()
    );
    // Support may not.
    let (support, stoken) = sign_in(&w, "support").await;
    let (status, _) = post(
        &support,
        format!("{}/promotions/save", w.base),
        &[("csrf", &stoken), ("name", "Mine"), ("rules", rules)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn orders_are_shipped_with_labels_edited_and_exchanged(backend: Backend) {
    let shop = Shop::with(
        backend,
        common::ShopOptions {
            shipping: Some(Arc::new(common::ManyMethods)),
            carriers: vec![Arc::new(cartwright::shipping::TestCarrier::new())],
            carrier_fallback: true,
            ..common::ShopOptions::default()
        },
    )
    .await;
    let w = serve(shop).await;
    let e = &w.shop.engine;
    let cup = w.shop.product("CUP", "10.00", 10).await;
    let (c, token) = sign_in(&w, "manager").await;

    // Edit before it ships: one more mug, express shipping. A preview
    // first, then the edit with the difference it showed.
    let mug = e.variant_by_sku("MUG").await.unwrap().variant.id();
    let before = e.order(&Actor::System, w.order).await.unwrap();
    let (status, preview) = post(
        &c,
        format!("{}/orders/{}/edit", w.base, w.order),
        &[
            ("csrf", &token),
            ("add", &mug.to_string()),
            ("add_quantity", "1"),
            ("method", "express"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert!(
        preview.contains("Express") && preview.contains("Difference"),
        "{preview}"
    );
    assert_eq!(
        e.order(&Actor::System, w.order).await.unwrap(),
        before,
        "a preview changes nothing"
    );
    let marker = "name=\"expected\" value=\"";
    let at = preview.find(marker).unwrap() + marker.len();
    let expected = &preview[at..at + preview[at..].find('"').unwrap()];
    let (status, page) = post(
        &c,
        format!("{}/orders/{}/edit", w.base, w.order),
        &[
            ("csrf", &token),
            ("add", &mug.to_string()),
            ("add_quantity", "1"),
            ("method", "express"),
            ("expected", expected),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let edited = e.order(&Actor::System, w.order).await.unwrap();
    let units: u32 = edited.pricing().lines.iter().map(|l| l.quantity).sum();
    assert_eq!(units, 3);
    assert_eq!(edited.pricing().shipping.as_ref().unwrap().code, "express");
    // A stale difference is refused.
    let (status, _) = post(
        &c,
        format!("{}/orders/{}/edit", w.base, w.order),
        &[
            ("csrf", &token),
            ("add", &mug.to_string()),
            ("expected", "0.01"),
        ],
    )
    .await;
    assert_ne!(status, StatusCode::SEE_OTHER);
    // The buyer pays what the edit added; then it ships with a label.
    for charge in edited.charges().iter().map(|ch| ch.id) {
        e.pay_charge(
            &Actor::System,
            w.order,
            charge,
            cartwright::after_sale::ChargePayment::new("tok_visa"),
        )
        .await
        .unwrap();
    }
    let (status, page) = post(
        &c,
        format!("{}/orders/{}/ship", w.base, w.order),
        &[
            ("csrf", &token),
            ("carrier", "test"),
            ("label", "1"),
            ("method", "test:ground"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (_, page) = get(&c, format!("{}/orders/{}", w.base, w.order)).await;
    assert!(page.contains(">Print</a>"), "{page}");
    assert!(page.contains("<td class=\"tracking\">TEST"), "{page}");
    // After it ships: one mug exchanged for a cup.
    let line = e
        .order(&Actor::System, w.order)
        .await
        .unwrap()
        .pricing()
        .lines[0]
        .line_id;
    let (status, page) = post(
        &c,
        format!("{}/orders/{}/exchange", w.base, w.order),
        &[
            ("csrf", &token),
            ("line", &line.to_string()),
            ("quantity", "1"),
            ("variant", &cup.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(
        e.order(&Actor::System, w.order)
            .await
            .unwrap()
            .exchanges()
            .len(),
        1
    );
    // Bad input changes nothing.
    let now = e.order(&Actor::System, w.order).await.unwrap();
    for (action, form) in [
        (
            "exchange",
            vec![("line", "nope"), ("quantity", "1"), ("variant", "x")],
        ),
        (
            "exchange",
            vec![
                ("line", &line.to_string() as &str),
                ("quantity", "0"),
                ("variant", "x"),
            ],
        ),
        ("edit", vec![("add", "not-a-variant")]),
        (
            "edit",
            vec![
                ("remove_line", &line.to_string() as &str),
                ("remove_quantity", "-1"),
            ],
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &token));
        let (status, _) = post(&c, format!("{}/orders/{}/{action}", w.base, w.order), &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{action} {form:?}");
    }
    assert_eq!(e.order(&Actor::System, w.order).await.unwrap(), now);
}

async fn variants_collections_and_gift_cards(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let (owner, token) = sign_in(&w, "owner").await;
    // A variant added on the product page.
    let (status, page) = post(
        &owner,
        format!("{}/products/{}/variants", w.base, w.product),
        &[
            ("csrf", &token),
            ("sku", "MUG-XL"),
            ("title", "Extra large"),
            ("price", "35.00"),
            ("currency", "USD"),
            ("status", "active"),
            ("shipped", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let xl = e.variant_by_sku("MUG-XL").await.unwrap();
    assert_eq!(xl.variant.product_id(), w.product);
    assert_eq!(xl.variant.price(Currency::USD), Some(usd("35.00")));
    // A SKU taken is refused.
    let (status, _) = post(
        &owner,
        format!("{}/products/{}/variants", w.base, w.product),
        &[
            ("csrf", &token),
            ("sku", "MUG"),
            ("price", "1.00"),
            ("currency", "USD"),
            ("status", "draft"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A collection, and the product put in it.
    let (status, _) = post(
        &owner,
        format!("{}/collections", w.base),
        &[("csrf", &token), ("title", "Summer")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let summer = e.collections().await.unwrap()[0].id();
    let product = e.product(w.product).await.unwrap();
    let (status, page) = post(
        &owner,
        format!("{}/products/{}", w.base, w.product),
        &[
            ("csrf", &token),
            ("title", product.title()),
            ("description", "Now in summer"),
            ("status", "active"),
            ("collection", &summer.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let product = e.product(w.product).await.unwrap();
    assert!(product.collections().contains(&summer));
    assert_eq!(product.description(), "Now in summer");

    // Support issues a gift card to a customer; its code is shown once, in
    // the page, and works.
    let customer = w.shop.customer("gc@example.com").await;
    let (support, stoken) = sign_in(&w, "support").await;
    let r = support
        .post(format!("{}/customers/{}/gift-card", w.base, customer.id()))
        .form(&[
            ("csrf", stoken.as_str()),
            ("amount", "15.00"),
            ("currency", "USD"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    let at = page.find("id=\"card-code\">").unwrap() + "id=\"card-code\">".len();
    let code = &page[at..at + page[at..].find('<').unwrap()];
    assert_eq!(
        e.gift_card_balance(&Actor::Guest, code)
            .await
            .unwrap()
            .balance,
        usd("15.00"),
        "the code shown is the card's"
    );
    // Marketing may not issue one.
    let (marketing, mtoken) = sign_in(&w, "marketing").await;
    let (status, _) = post(
        &marketing,
        format!("{}/customers/{}/gift-card", w.base, customer.id()),
        &[("csrf", &mtoken), ("amount", "15.00"), ("currency", "USD")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn price_lists_channels_and_roles(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let (owner, token) = sign_in(&w, "owner").await;
    // A price list with a price for the mug from two units.
    let (status, page) = post(
        &owner,
        format!("{}/price-lists", w.base),
        &[
            ("csrf", &token),
            ("name", "Wholesale"),
            ("kind", "standard"),
            ("currency", "USD"),
            ("priority", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let list = e.price_lists(&Actor::System).await.unwrap()[0].clone();
    let url = format!("{}/price-lists/{}", w.base, list.id);
    let (status, page) = post(
        &owner,
        url.clone(),
        &[
            ("csrf", &token),
            ("do", "set"),
            ("sku", "MUG"),
            ("min", "2"),
            ("amount", "25.00"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let list = e.price_lists(&Actor::System).await.unwrap()[0].clone();
    assert_eq!(list.prices.len(), 1);
    assert_eq!(list.prices[0].min_quantity, 2);
    assert_eq!(list.prices[0].price, usd("25.00"));
    let (status, page) = get(&owner, url.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("MUG") && page.contains("25.00 USD"), "{page}");
    // Bad input: an unknown SKU, a price in no currency, nothing changes.
    for form in [
        vec![("do", "set"), ("sku", "NOPE"), ("amount", "1.00")],
        vec![("do", "set"), ("sku", "MUG"), ("amount", "abc")],
        vec![
            ("do", "set"),
            ("sku", "MUG"),
            ("min", "0"),
            ("amount", "1.00"),
        ],
    ] {
        let mut form = form;
        form.push(("csrf", &token));
        let (status, _) = post(&owner, url.clone(), &form).await;
        assert_ne!(status, StatusCode::SEE_OTHER, "{form:?}");
    }
    assert_eq!(e.price_lists(&Actor::System).await.unwrap()[0], list);
    let (status, _) = post(
        &owner,
        url.clone(),
        &[
            ("csrf", &token),
            ("do", "remove"),
            ("variant", &list.prices[0].variant_id.to_string()),
            ("min", "2"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        e.price_lists(&Actor::System).await.unwrap()[0]
            .prices
            .is_empty()
    );

    // A channel, switched off.
    let (status, _) = post(
        &owner,
        format!("{}/channels", w.base),
        &[
            ("csrf", &token),
            ("name", "Wholesale shop"),
            ("currencies", "USD, EUR"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let channel = e.channels().await.unwrap()[0].clone();
    assert_eq!(channel.currencies.len(), 2);
    let (status, _) = post(
        &owner,
        format!("{}/channels/{}", w.base, channel.id),
        &[("csrf", &token), ("active", "0")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!e.channel(channel.id).await.unwrap().active);

    // A role of one's own, given to a member: packers may see orders and
    // stock, and nothing else.
    let (status, page) = post(
        &owner,
        format!("{}/roles", w.base),
        &[
            ("csrf", &token),
            ("name", "packer"),
            ("permission", "orders"),
            ("permission", "inventory"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let packer = e
        .roles(&Actor::System)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == "packer")
        .unwrap();
    assert_eq!(packer.permissions.len(), 2);
    let member = e
        .list_staff(&Actor::System)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.name == "marketing")
        .unwrap();
    let (status, _) = post(
        &owner,
        format!("{}/staff/{}", w.base, member.id),
        &[("csrf", &token), ("do", "roles"), ("role", "packer")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (marketing, _) = sign_in(&w, "marketing").await;
    let (status, _) = get(&marketing, format!("{}/orders", w.base)).await;
    assert_eq!(status, StatusCode::OK, "a packer sees orders");
    let (status, _) = get(&marketing, format!("{}/promotions", w.base)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "and no longer promotions");
    // A bad role: an unknown permission, a bad ceiling; the owner role
    // cannot lose the right to manage staff.
    for form in [
        vec![("name", "odd"), ("permission", "everything")],
        vec![
            ("name", "odd"),
            ("permission", "refunds"),
            ("ceiling", "lots"),
        ],
        vec![("name", "owner"), ("permission", "orders")],
    ] {
        let mut form = form;
        form.push(("csrf", &token));
        let (status, _) = post(&owner, format!("{}/roles", w.base), &form).await;
        assert_ne!(status, StatusCode::SEE_OTHER, "{form:?}");
    }
    assert!(
        e.roles(&Actor::System)
            .await
            .unwrap()
            .iter()
            .all(|r| r.name != "odd")
    );
    // Support may not touch price lists, channels or roles.
    let (support, stoken) = sign_in(&w, "support").await;
    for path in ["/price-lists", "/channels", "/roles"] {
        let (status, _) = post(
            &support,
            format!("{}{path}", w.base),
            &[
                ("csrf", &stoken),
                ("name", "x"),
                ("currency", "USD"),
                ("currencies", "USD"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
}

async fn every_promotion_shape_has_a_form(backend: Backend) {
    let w = world(backend).await;
    let e = &w.shop.engine;
    let (marketing, token) = sign_in(&w, "marketing").await;
    // A new promotion from the percent-off-order form.
    let (status, page) = post(
        &marketing,
        format!("{}/promotions/shape", w.base),
        &[
            ("csrf", &token),
            ("part", "action"),
            ("shape", "percent_off_order"),
            ("name", "Twelve off"),
            ("f.percent", "12"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let made = e
        .promotions(&Actor::System)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.name == "Twelve off")
        .unwrap();
    assert!(
        serde_json::to_string(&made.action)
            .unwrap()
            .contains("percent_off_order")
    );
    // Its page has a form for every action and every condition.
    let (status, page) = get(
        &marketing,
        format!("{}/promotions/{}/edit", w.base, made.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let schema = cartwright::pricing::promotion_json_schema();
    for def in ["Action", "Condition"] {
        let shapes = schema["$defs"][def]["oneOf"].as_array().unwrap();
        assert!(shapes.len() >= 10, "{def}");
        for shape in shapes {
            let name = shape["properties"]["type"]["const"].as_str().unwrap();
            assert!(
                page.contains(&format!("name=\"shape\" value=\"{name}\"")),
                "a form for {def} {name}"
            );
        }
    }
    // A condition from its form: a subtotal of at least 40.00 USD.
    let (status, page) = post(
        &marketing,
        format!("{}/promotions/shape", w.base),
        &[
            ("csrf", &token),
            ("part", "condition"),
            ("shape", "subtotal"),
            ("id", &made.id.to_string()),
            ("f.op", "gte"),
            ("f.amount.amount", "40.00"),
            ("f.amount.currency", "USD"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let now = e.promotion(&Actor::System, made.id).await.unwrap();
    assert_eq!(now.conditions.len(), 1);
    // The action replaced from another form: buy two, get one free.
    let (status, page) = post(
        &marketing,
        format!("{}/promotions/shape", w.base),
        &[
            ("csrf", &token),
            ("part", "action"),
            ("shape", "amount_off_order"),
            ("id", &made.id.to_string()),
            ("f.amount.amount", "5.00"),
            ("f.amount.currency", "USD"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let now = e.promotion(&Actor::System, made.id).await.unwrap();
    assert!(
        serde_json::to_string(&now.action)
            .unwrap()
            .contains("amount_off_order")
    );
    assert_eq!(now.conditions.len(), 1, "conditions kept");
    // Bad forms change nothing: a missing required field, a bad number,
    // an unknown shape, bad JSON, a percent over 100.
    for form in [
        vec![("part", "action"), ("shape", "percent_off_order")],
        vec![("part", "action"), ("shape", "no_such_shape")],
        vec![
            ("part", "action"),
            ("shape", "percent_off_order"),
            ("f.percent", "250"),
        ],
        vec![
            ("part", "action"),
            ("shape", "percent_off_items"),
            ("f.percent", "5"),
            ("f.target", "{not json"),
        ],
        vec![
            ("part", "condition"),
            ("shape", "item_count"),
            ("f.op", "gte"),
            ("f.count", "-3"),
        ],
    ] {
        let mut form = form;
        let id = made.id.to_string();
        form.push(("id", &id));
        form.push(("csrf", &token));
        let (status, _) = post(&marketing, format!("{}/promotions/shape", w.base), &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
    }
    assert_eq!(e.promotion(&Actor::System, made.id).await.unwrap(), now);
    // The condition removed.
    let (status, _) = post(
        &marketing,
        format!("{}/promotions/{}/conditions/0/remove", w.base, made.id),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        e.promotion(&Actor::System, made.id)
            .await
            .unwrap()
            .conditions
            .is_empty()
    );
}

/// The browser a member signed in with keeps a device cookie: someone
/// guessing their password elsewhere locks the account to every other
/// browser, not to theirs.
async fn a_members_browser_is_not_locked_out_by_guesses(backend: Backend) {
    let w = world(backend).await;
    let (support, _) = sign_in(&w, "support").await;
    for _ in 0..cartwright::staff::MAX_FAILED_SIGN_INS {
        assert!(
            w.shop
                .engine
                .staff_login("support@shop.test", "a guess", None)
                .await
                .is_err()
        );
    }
    let base = w.base.clone();
    let try_sign_in = |c: reqwest::Client| {
        let login = format!("{base}/login");
        async move {
            let page = c
                .get(login.clone())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let answer = c
                .post(login)
                .form(&[
                    ("csrf", csrf(&page).as_str()),
                    ("email", "support@shop.test"),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            let device = answer
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .find(|v| v.starts_with("cw_admin_device="));
            (answer.status(), device)
        }
    };
    // Another browser: locked out, told so in the page.
    let (status, device) = try_sign_in(client()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(device, None);
    // Hers: in, with a new device cookie (HttpOnly, SameSite=Strict).
    let (status, device) = try_sign_in(support.clone()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let device = device.expect("a new device cookie");
    assert!(
        device.contains("HttpOnly") && device.contains("SameSite=Strict"),
        "{device}"
    );
    let (status, _) = get(&support, format!("{}/orders", w.base)).await;
    assert_eq!(status, StatusCode::OK);
}

conformance!(
    a_members_browser_is_not_locked_out_by_guesses,
    every_promotion_shape_has_a_form,
    price_lists_channels_and_roles,
    variants_collections_and_gift_cards,
    orders_are_shipped_with_labels_edited_and_exchanged,
    promotions_are_made_and_changed_in_the_editor,
    every_screen_renders_for_the_owner,
    roles_are_enforced_through_the_screens,
    forged_and_expired_requests_change_nothing,
    uploads_and_imports_are_checked,
);
