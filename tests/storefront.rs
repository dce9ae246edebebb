//! The reference web shop (`examples/storefront/`), driven over HTTP like a
//! browser would: a guest buys with a coupon, a customer signs up and sees
//! their order, staff refunds part of it, a 3-D Secure payment completes
//! through the bank's page and the signed webhook, the JSON API, CSRF and
//! other customers' orders refused, forged webhooks refused, and two
//! instances on one PostgreSQL database selling the last unit once.
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
use reqwest::StatusCode;

const STAFF: &str = "staff-password-for-tests";

/// A browser: a cookie jar and the shop's address.
struct Browser {
    http: reqwest::Client,
    base: String,
}

/// What a page answered: its status, where it ended up, its HTML.
struct Page {
    status: StatusCode,
    url: String,
    body: String,
}

impl Page {
    /// The value of the first `name="<name>" value="…"` in the page.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    /// Every `href="<prefix>…"` target in the page.
    fn links(&self, prefix: &str) -> Vec<String> {
        let marker = format!("href=\"{prefix}");
        self.body
            .match_indices(&marker)
            .map(|(i, _)| {
                let start = i + "href=\"".len();
                let end = self.body[start..].find('"').unwrap() + start;
                self.body[start..end].to_owned()
            })
            .collect()
    }

    /// The text of the element with `id="<id>"`.
    fn text(&self, id: &str) -> String {
        let marker = format!("id=\"{id}\">");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no #{id} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('<').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        Self::page(r).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        Self::page(r).await
    }

    async fn page(r: reqwest::Response) -> Page {
        Page {
            status: r.status(),
            url: r.url().path().to_owned(),
            body: r.text().await.unwrap(),
        }
    }

    /// Adds one of the product at `link` to the cart.
    async fn add(&self, link: &str, quantity: &str) {
        let product = self.get(link).await;
        let page = self
            .post(
                "/cart/add",
                &[
                    ("csrf", &product.field("csrf")),
                    ("variant", &product.field("variant")),
                    ("quantity", quantity),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    }

    /// Checks out the cart with `token`; the page it ends on.
    async fn checkout(&self, token: &str) -> Page {
        let form = self.get("/checkout").await;
        self.post(
            "/checkout",
            &[
                ("csrf", &form.field("csrf")),
                ("key", &form.field("key")),
                ("email", "buyer@example.com"),
                ("name", "Grace Hopper"),
                ("line1", "1 Navy Way"),
                ("city", "Arlington"),
                ("postal", "22202"),
                ("country", "us"),
                ("method", "standard"),
                ("token", token),
            ],
        )
        .await
    }
}

/// Signs the owner in to the back office the shop mounts at `/admin`:
/// the browser, and the session's CSRF token.
#[cfg(feature = "admin")]
async fn back_office(running: &start::Running) -> (Browser, String) {
    let staff = Browser::new(&running.url);
    let form = staff.get("/admin/login").await;
    let home = staff
        .post(
            "/admin/login",
            &[
                ("csrf", &form.field("csrf")),
                ("email", start::OWNER_EMAIL),
                ("password", STAFF),
            ],
        )
        .await;
    assert!(home.body.contains("Signed in as Owner"), "{}", home.body);
    let csrf = home.field("csrf");
    (staff, csrf)
}

async fn shop() -> start::Running {
    start::start(Arc::new(MemoryStore::new()) as Arc<dyn Store>, STAFF)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_buys_two_items_with_a_coupon() {
    let running = shop().await;
    let guest = Browser::new(&running.url);
    let catalog = guest.get("/").await;
    let products = catalog.links("/products/");
    assert_eq!(products.len(), 3, "{}", catalog.body);
    // A category shows what is in it and under it: Home holds the mug
    // (Kitchen) and the poster (Prints).
    assert_eq!(catalog.links("/?category=").len(), 4, "{}", catalog.body);
    let home = running
        .engine
        .categories()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name() == "Home")
        .unwrap();
    let home = guest.get(&format!("/?category={}", home.id())).await;
    assert_eq!(home.links("/products/").len(), 2, "{}", home.body);
    guest.add(&products[0], "1").await; // the mug, 12.00
    guest.add(&products[1], "1").await; // the tote, 18.00
    let cart = guest.get("/cart").await;
    let page = guest
        .post(
            "/cart/coupon",
            &[("csrf", &cart.field("csrf")), ("code", "welcome10")],
        )
        .await;
    assert_eq!(page.url, "/cart");
    assert_eq!(page.text("total"), "27.00 USD", "10 % off 30.00");
    assert!(
        page.body.contains("Welcome: 10 % off: applied"),
        "{}",
        page.body
    );
    let order = guest.checkout("tok_visa").await;
    assert!(
        order.url.starts_with("/orders/"),
        "{} {}",
        order.url,
        order.body
    );
    assert_eq!(order.text("total"), "32.00 USD", "with 5.00 shipping");
    assert_eq!(order.text("status"), "Processing", "{}", order.body);
    // The same order page again, from the same browser (its guest token).
    let again = guest.get(&order.url).await;
    assert_eq!(again.status, StatusCode::OK);
    // Another browser cannot see it: not found, not forbidden.
    let stranger = Browser::new(&running.url);
    assert_eq!(stranger.get(&order.url).await.status, StatusCode::NOT_FOUND);
}

#[cfg(feature = "admin")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_signs_up_buys_and_staff_refunds_part() {
    let running = shop().await;
    let me = Browser::new(&running.url);
    let form = me.get("/signup").await;
    let page = me
        .post(
            "/signup",
            &[
                ("csrf", &form.field("csrf")),
                ("email", "ada@example.com"),
                ("password", "correct horse battery staple"),
            ],
        )
        .await;
    assert_eq!(page.url, "/account", "{}", page.body);
    let products = me.get("/").await.links("/products/");
    me.add(&products[2], "2").await; // two posters, 50.00
    let order = me.checkout("tok_visa").await;
    assert_eq!(order.text("total"), "55.00 USD");
    let account = me.get("/account").await;
    assert!(account.body.contains(&order.url), "{}", account.body);

    // Staff: a wrong password is refused; then sign in to the back
    // office and refund 10.00 of it.
    let staff = Browser::new(&running.url);
    let form = staff.get("/admin/login").await;
    let wrong = staff
        .post(
            "/admin/login",
            &[
                ("csrf", &form.field("csrf")),
                ("email", start::OWNER_EMAIL),
                ("password", "guess"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let (staff, csrf) = back_office(&running).await;
    let id = order.url.trim_start_matches("/orders/");
    let refunded = staff
        .post(
            &format!("/admin/orders/{id}/refund"),
            &[
                ("csrf", &csrf),
                ("amount", "10.00"),
                ("reason", "scratched"),
            ],
        )
        .await;
    assert!(refunded.body.contains("Refunded."), "{}", refunded.body);
    assert!(refunded.body.contains("10.00 USD"), "{}", refunded.body);
    // The customer sees it too.
    assert_eq!(me.get(&order.url).await.text("refunded"), "10.00 USD");
    // A customer is not staff.
    let orders = me.get("/admin/orders").await;
    assert_eq!(orders.url, "/admin/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_sessions_csrf_token_are_refused() {
    let running = shop().await;
    // The session cookie cannot be read by scripts or sent cross-site.
    let first = reqwest::get(format!("{}/", running.url)).await.unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    // A cookie whose signature does not hold is a new, empty session.
    let (value, _) = cookie.split_once(';').unwrap();
    let tampered = format!("{}00", value);
    let page = reqwest::Client::new()
        .get(format!("{}/cart", running.url))
        .header("cookie", tampered)
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("Your cart is empty"));
    let guest = Browser::new(&running.url);
    let products = guest.get("/").await.links("/products/");
    let product = guest.get(&products[0]).await;
    let forged = guest
        .post(
            "/cart/add",
            &[
                ("csrf", "not-the-token"),
                ("variant", &product.field("variant")),
                ("quantity", "1"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(guest.get("/cart").await.body.contains("Your cart is empty"));
    // A token from another session does not work either.
    let other = Browser::new(&running.url);
    let theirs = other.get(&products[0]).await.field("csrf");
    let forged = guest
        .post(
            "/cart/add",
            &[
                ("csrf", &theirs),
                ("variant", &product.field("variant")),
                ("quantity", "1"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3ds_payment_completes_through_the_bank_and_the_webhook() {
    let running = shop().await;
    let guest = Browser::new(&running.url);
    let products = guest.get("/").await.links("/products/");
    guest.add(&products[0], "1").await;
    let bank = guest.checkout("tok_3ds").await;
    assert!(
        bank.url.starts_with("/bank/3ds/"),
        "{} {}",
        bank.url,
        bank.body
    );
    let reference = bank.url.trim_start_matches("/bank/3ds/").to_owned();
    let order = guest
        .post(
            &format!("/bank/3ds/{reference}"),
            &[("key", &bank.field("key"))],
        )
        .await;
    assert!(
        order.url.starts_with("/orders/"),
        "{} {}",
        order.url,
        order.body
    );
    assert_eq!(order.text("total"), "23.00 USD", "the tote and shipping");
    // The webhook placed it (the bank posted it before the customer came
    // back); the return found it placed: one order.
    let placed = running
        .engine
        .find_orders(
            &cartwright::Actor::System,
            &cartwright::order::OrderQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!(placed.orders.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_stale_webhooks_are_refused() {
    let running = shop().await;
    let http = reqwest::Client::new();
    let body = br#"{"id":"evt_x","authorization":"test_auth_1","kind":{"type":"authorized"}}"#;
    let post = |signature: String| {
        http.post(format!("{}/webhooks/test", running.url))
            .header("cartwright-signature", signature)
            .body(body.to_vec())
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    let forged = cartwright::payment::webhook::sign(b"not the secret", now, body).unwrap();
    assert_eq!(
        post(forged).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let stale =
        cartwright::payment::webhook::sign(b"whsec_storefront_demo_secret", now - 3_600, body)
            .unwrap();
    assert_eq!(post(stale).await.unwrap().status(), StatusCode::BAD_REQUEST);
    let good =
        cartwright::payment::webhook::sign(b"whsec_storefront_demo_secret", now, body).unwrap();
    assert_eq!(
        post(good).await.unwrap().status(),
        StatusCode::OK,
        "signed, about no payment of ours: acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_api_adds_checks_out_and_reports_errors_in_one_shape() {
    let running = shop().await;
    let api = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let url = |p: &str| format!("{}{p}", running.url);
    let cart: serde_json::Value = api
        .get(url("/api/cart"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = cart["csrf"].as_str().unwrap().to_owned();
    let variant = running
        .engine
        .variant_by_sku("MUG")
        .await
        .unwrap()
        .variant
        .id()
        .to_string();
    // Without the CSRF header: refused, in the error shape.
    let refused = api
        .post(url("/api/cart/items"))
        .json(&serde_json::json!({ "variant_id": variant, "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf");
    // A quantity of zero: 422, code "invalid".
    let bad = api
        .post(url("/api/cart/items"))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "variant_id": variant, "quantity": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("quantity")
    );
    let added = api
        .post(url("/api/cart/items"))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "variant_id": variant, "quantity": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);
    let checkout = |token: &'static str, key: &'static str| {
        api.post(url("/api/checkout"))
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({
                "key": key,
                "payment_token": token,
                "email": "api@example.com",
                "address": { "name": "Api", "line1": "1 Main", "city": "Town", "postal": "1", "country": "us" },
            }))
            .send()
    };
    let declined = checkout("tok_decline", "api-1").await.unwrap();
    assert_eq!(declined.status(), StatusCode::PAYMENT_REQUIRED);
    let body: serde_json::Value = declined.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payment_declined");
    let placed = checkout("tok_visa", "api-2").await.unwrap();
    assert_eq!(placed.status(), StatusCode::OK);
    let body: serde_json::Value = placed.json().await.unwrap();
    assert!(body["order"].as_str().is_some(), "{body}");
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_database_sell_the_last_unit_once() {
    let schema = common::pg::fresh_schema().await;
    // Two instances with nothing shared but the database and the key that
    // signs sessions.
    let key = [7u8; 32];
    let one = start::start_with(
        Arc::new(common::pg::store(&schema, 4).await) as Arc<dyn Store>,
        STAFF,
        Some(&key),
    )
    .await
    .unwrap();
    let two = start::start_with(
        Arc::new(common::pg::store(&schema, 4).await) as Arc<dyn Store>,
        STAFF,
        Some(&key),
    )
    .await
    .unwrap();
    // One poster left.
    let poster = one
        .engine
        .variant_by_sku("POSTER")
        .await
        .unwrap()
        .variant
        .id();
    let stock = one.engine.stock(poster).await.unwrap();
    let location = stock.levels[0].location_id;
    one.engine
        .set_stock(&cartwright::Actor::System, poster, location, 1)
        .await
        .unwrap();
    let a = Browser::new(&one.url);
    let b = Browser::new(&two.url);
    let product = one
        .engine
        .variant_by_sku("POSTER")
        .await
        .unwrap()
        .variant
        .product_id();
    let pa = format!("/products/{product}");
    let pb = pa.clone();
    a.add(&pa, "1").await;
    b.add(&pb, "1").await;
    // A session made by one instance is honoured by the other.
    let a_on_two = Browser {
        http: a.http.clone(),
        base: two.url.clone(),
    };
    assert!(
        a_on_two
            .get("/cart")
            .await
            .body
            .contains("Letterpress poster")
    );
    let (ra, rb) = tokio::join!(a.checkout("tok_visa"), b.checkout("tok_visa"));
    let placed = [&ra, &rb]
        .iter()
        .filter(|p| p.url.starts_with("/orders/"))
        .count();
    assert_eq!(placed, 1, "{} / {}", ra.url, rb.url);
    let refused = if ra.url.starts_with("/orders/") {
        &rb
    } else {
        &ra
    };
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_through_the_pages() {
    let running = shop().await;
    let me = Browser::new(&running.url);
    let form = me.get("/signup").await;
    me.post(
        "/signup",
        &[
            ("csrf", &form.field("csrf")),
            ("email", "lin@example.com"),
            ("password", "first password here"),
        ],
    )
    .await;
    let later = Browser::new(&running.url);
    let form = later.get("/forgot").await;
    // An email with an account and one without answer alike.
    let mut answers = Vec::new();
    for email in ["lin@example.com", "nobody@example.com"] {
        let page = later
            .post(
                "/forgot",
                &[("csrf", &form.field("csrf")), ("email", email)],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK);
        answers.push(page.body.replace(&form.field("csrf"), ""));
    }
    assert_eq!(answers[0], answers[1]);
    // The mail the shop would send carries the token; here it is asked for
    // again, as the mailer would receive it.
    let issued = running
        .engine
        .request_password_reset("lin@example.com")
        .await
        .unwrap()
        .unwrap();
    let reset = later.get(&format!("/reset?token={}", issued.token)).await;
    let page = later
        .post(
            "/reset",
            &[
                ("csrf", &reset.field("csrf")),
                ("token", &issued.token),
                ("password", "second password here"),
            ],
        )
        .await;
    assert_eq!(page.url, "/account", "{}", page.body);
    // The token works once.
    let again = later
        .post(
            "/reset",
            &[
                ("csrf", &reset.field("csrf")),
                ("token", &issued.token),
                ("password", "third password here"),
            ],
        )
        .await;
    assert_ne!(again.url, "/account");
    running
        .engine
        .login("lin@example.com", "second password here")
        .await
        .unwrap();
}

/// The shop serves AI agents too: the UCP discovery profile at the root,
/// UCP and ACP under their paths, each behind a bearer key.
#[cfg(all(feature = "ucp", feature = "acp"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_reach_the_shop_through_ucp_and_acp() {
    let running = shop().await;
    let http = reqwest::Client::new();
    let profile: serde_json::Value = http
        .get(format!("{}/.well-known/ucp", running.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        profile["ucp"]["services"]["dev.ucp.shopping"]["rest"]["endpoint"],
        format!("{}/ucp/", running.url)
    );
    let unauthenticated = http
        .post(format!("{}/ucp/checkout-sessions", running.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let acp = http
        .post(format!("{}/acp/checkout_sessions", running.url))
        .header("API-Version", "2026-04-17")
        .header("Idempotency-Key", "k")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(acp.status(), 401);
    let _ = running.stop.send(());
}

#[cfg(feature = "admin")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_asks_to_return_and_staff_refund_it() {
    let running = shop().await;
    let me = Browser::new(&running.url);
    let form = me.get("/signup").await;
    me.post(
        "/signup",
        &[
            ("csrf", &form.field("csrf")),
            ("email", "rhea@example.com"),
            ("password", "correct horse battery staple"),
        ],
    )
    .await;
    let products = me.get("/").await.links("/products/");
    me.add(&products[2], "2").await; // two posters, 25.00 each
    let order = me.checkout("tok_visa").await;
    let id = order.url.trim_start_matches("/orders/").to_owned();
    // Nothing shipped: nothing to return yet.
    assert!(!order.body.contains("id=\"return-form\""), "{}", order.body);

    let (staff, csrf) = back_office(&running).await;
    let shipped = staff
        .post(
            &format!("/admin/orders/{id}/ship"),
            &[
                ("csrf", &csrf),
                ("carrier", "test"),
                ("label", "1"),
                ("method", "test:ground"),
            ],
        )
        .await;
    assert!(
        shipped.url.starts_with(&format!("/admin/orders/{id}")),
        "{}",
        shipped.body
    );
    // Shipping bought a label from the carrier: its tracking number, and
    // for staff the label to print.
    assert!(
        shipped
            .body
            .contains("<td class=\"tracking\">TEST00000001</td>"),
        "{}",
        shipped.body
    );
    assert!(shipped.body.contains(">Print</a>"), "{}", shipped.body);
    // The carrier reports the delivery through its signed webhook.
    let at = shipped.body.find("data-shipment=\"").unwrap() + "data-shipment=\"".len();
    let shipment = &shipped.body[at..at + 36];
    let report = serde_json::to_vec(&cartwright::shipping::TrackingEvent::new(
        format!("{id}:{shipment}"),
        cartwright::shipping::TrackingStatus::Delivered,
        chrono::Utc::now(),
    ))
    .unwrap();
    let client = reqwest::Client::new();
    let forged = client
        .post(format!("{}/webhooks/carrier", running.url))
        .header("cartwright-signature", "t=1,v1=00")
        .body(report.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let signature = cartwright::payment::webhook::sign(
        b"whsec_storefront_demo_secret",
        chrono::Utc::now().timestamp(),
        &report,
    )
    .unwrap();
    let delivered = client
        .post(format!("{}/webhooks/carrier", running.url))
        .header("cartwright-signature", signature)
        .body(report)
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 200);
    let page = me.get(&order.url).await;
    assert!(
        page.body.contains("<td class=\"parcel\">Delivered</td>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(">Print</a>"), "labels are for staff");

    // The customer asks to return one poster from the order page.
    let page = me.get(&order.url).await;
    assert!(page.body.contains("id=\"return-form\""), "{}", page.body);
    let select = page.body.split("id=\"return-line\"").nth(1).unwrap();
    let start = select.find("value=\"").unwrap() + "value=\"".len();
    let line = &select[start..start + select[start..].find('"').unwrap()];
    let asked = me
        .post(
            &format!("{}/return", order.url),
            &[
                ("csrf", &page.field("csrf")),
                ("line", line),
                ("quantity", "1"),
                ("reason", "size_or_fit"),
                ("note", "too big"),
            ],
        )
        .await;
    assert_eq!(asked.url, order.url, "{}", asked.body);
    assert!(asked.body.contains(">Requested<"), "{}", asked.body);
    // More than is left is refused with the engine's words.
    let refused = me
        .post(
            &format!("{}/return", order.url),
            &[
                ("csrf", &page.field("csrf")),
                ("line", line),
                ("quantity", "2"),
                ("reason", "other"),
            ],
        )
        .await;
    assert!(refused.body.contains("role=\"alert\""), "{}", refused.body);

    // Staff approve, receive it back on the shelf, and refund it.
    let page = staff.get(&format!("/admin/orders/{id}")).await;
    let case = page.field("case");
    for action in ["approve-return", "receive-return", "refund-return"] {
        let done = staff
            .post(
                &format!("/admin/orders/{id}/{action}"),
                &[("csrf", &csrf), ("case", &case), ("restock", "yes")],
            )
            .await;
        assert!(
            done.url.starts_with(&format!("/admin/orders/{id}")),
            "{action}: {}",
            done.body
        );
    }
    let page = me.get(&order.url).await;
    assert!(page.body.contains(">Refunded<"), "{}", page.body);
    assert_eq!(page.text("refunded"), "25.00 USD");
}

#[cfg(feature = "admin")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_exchange_and_edit_orders_and_the_buyer_pays_the_difference() {
    let running = shop().await;
    let me = Browser::new(&running.url);
    let form = me.get("/signup").await;
    me.post(
        "/signup",
        &[
            ("csrf", &form.field("csrf")),
            ("email", "xavi@example.com"),
            ("password", "correct horse battery staple"),
        ],
    )
    .await;
    let products = me.get("/").await.links("/products/");
    me.add(&products[2], "1").await; // a poster, 25.00
    let order = me.checkout("tok_visa").await;
    let id = order.url.trim_start_matches("/orders/").to_owned();

    let (staff, csrf) = back_office(&running).await;

    // Before it ships, staff add a unit of the first product and move the
    // order to express shipping: a preview, then the confirmation with the
    // difference shown.
    let page = staff.get(&format!("/admin/orders/{id}")).await;
    assert!(
        page.body.contains("<option value=\"express\">"),
        "{}",
        page.body
    );
    let add = page.body.split("id=\"edit-add\"").nth(1).unwrap();
    let add = add.split("<option value=\"").nth(2).unwrap();
    let variant = &add[..add.find('"').unwrap()];
    let preview = staff
        .post(
            &format!("/admin/orders/{id}/edit"),
            &[("csrf", &csrf), ("add", variant), ("method", "express")],
        )
        .await;
    assert!(
        preview.body.contains("id=\"edit-confirm\""),
        "{}",
        preview.body
    );
    assert!(
        preview
            .body
            .contains("Shipping: Express (15.00 USD) instead of Standard (5.00 USD)"),
        "{}",
        preview.body
    );
    let expected = preview.field("expected");
    let edited = staff
        .post(
            &format!("/admin/orders/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("add", variant),
                ("method", "express"),
                ("expected", &expected),
            ],
        )
        .await;
    assert!(edited.body.contains("Order edited."), "{}", edited.body);
    assert!(me.get(&order.url).await.body.contains("To pay"));

    // The buyer pays the difference from the order page.
    let page = me.get(&order.url).await;
    let marker = "/charges/";
    let at = page.body.find(marker).unwrap() + marker.len();
    let charge = &page.body[at..at + page.body[at..].find('/').unwrap()];
    let paid = me
        .post(
            &format!("{}/charges/{charge}/pay", order.url),
            &[("csrf", &page.field("csrf")), ("token", "tok_visa")],
        )
        .await;
    assert!(paid.body.contains(">Paid<"), "{}", paid.body);

    // Everything ships; staff exchange the poster for one unit of the
    // first product (a cheaper one: nothing to pay).
    staff
        .post(
            &format!("/admin/orders/{id}/ship"),
            &[("csrf", &csrf), ("carrier", "test")],
        )
        .await;
    let page = staff.get(&format!("/admin/orders/{id}")).await;
    let line = page.body.split("id=\"exchange-line\"").nth(1).unwrap();
    let line = line.split("value=\"").nth(1).unwrap();
    let line = &line[..line.find('"').unwrap()];
    let exchanged = staff
        .post(
            &format!("/admin/orders/{id}/exchange"),
            &[
                ("csrf", &csrf),
                ("line", line),
                ("quantity", "1"),
                ("variant", variant),
            ],
        )
        .await;
    assert!(
        exchanged.body.contains("Exchange recorded."),
        "{}",
        exchanged.body
    );
    let page = me.get(&order.url).await;
    assert!(page.body.contains(">Approved<"), "{}", page.body);
}

/// The storefront mounts the back office: the owner signs in at `/admin`,
/// uploads a product image there, and the shop serves it under `/media/`
/// with long-lived caching.
#[cfg(feature = "admin")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_back_office_is_mounted_and_its_images_are_served() {
    let running = shop().await;
    let staff = Browser::new(&running.url);
    let form = staff.get("/admin/login").await;
    assert_eq!(form.status, StatusCode::OK);
    let home = staff
        .post(
            "/admin/login",
            &[
                ("csrf", &form.field("csrf")),
                ("email", start::OWNER_EMAIL),
                ("password", STAFF),
            ],
        )
        .await;
    assert!(home.body.contains("Signed in as Owner"), "{}", home.body);
    let products = staff.get("/admin/products").await;
    // minijinja escapes `/` in attributes as `&#x2f;`.
    let body = products.body.replace("&#x2f;", "/");
    let at = body.find("href=\"/admin/products/").unwrap() + "href=\"".len();
    let product = body[at..at + body[at..].find('"').unwrap()].to_owned();
    let page = staff.get(&product).await;
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(8, 8, image::Rgb([10, 20, 30]))
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let upload = reqwest::multipart::Form::new()
        .text("csrf", page.field("csrf"))
        .text("alt", "The poster")
        .part(
            "image",
            reqwest::multipart::Part::bytes(png.into_inner())
                .file_name("poster.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let done = staff
        .http
        .post(format!("{}{product}/images", running.url))
        .multipart(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.status(),
        StatusCode::OK,
        "followed to the product page"
    );
    let id = product.trim_start_matches("/admin/products/");
    let stored = running
        .engine
        .product(cartwright::id::ProductId::from_uuid(id.parse().unwrap()))
        .await
        .unwrap();
    let url = stored.images()[0].url.clone();
    assert!(url.starts_with("/media/"), "{url}");
    let image = reqwest::get(format!("{}{url}", running.url)).await.unwrap();
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert!(
        image.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let _ = running.stop.send(());
}
