//! The web shop: the engine behind an axum router. Pages are server-rendered
//! (minijinja); a JSON API sits beside them; a webhook endpoint takes the
//! test gateway's signed events.
//!
//! What every embedding must get right, and where it is here:
//! - the `Actor` comes only from a signed session ([`crate::session`]);
//! - every form and API write repeats the session's CSRF token;
//! - guest orders are reached only with the token checkout issued;
//! - the webhook is verified (HMAC, timestamp tolerance) before
//!   `apply_provider_event`;
//! - errors map to statuses in one place ([`status_of`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cartwright::checkout::CheckoutStep;
use cartwright::id::{CartId, LineId, OrderId, ProductId, VariantId};
use cartwright::order::ChargeState;
use cartwright::payment::{CustomerAction, TestPaymentProvider};
use cartwright::prelude::*;
use minijinja::{Environment, context};
use serde::Deserialize;

use crate::session::{COOKIE, Session};

/// The provider's name, as its webhooks report.
pub const GATEWAY: &str = "test";
/// Where the test gateway sends customers for 3-D Secure; the shop serves
/// a stand-in for the bank at `/bank/3ds/…`.
const TEST_BANK: &str = "https://pay.test.invalid/3ds/";

/// The shop's shared state.
#[derive(Clone)]
pub struct App {
    /// The engine.
    pub engine: Engine,
    /// The test gateway (to stand in for the bank's page).
    pub gateway: Arc<TestPaymentProvider>,
    /// Signs session cookies.
    pub cookie_key: Arc<[u8]>,
    /// Shared with the gateway: signs its webhooks.
    pub webhook_secret: Arc<[u8]>,
    /// Whether cookies are marked `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// Where this shop listens, for the bank stand-in's webhook.
    pub base_url: Arc<str>,
    templates: Arc<Environment<'static>>,
}

/// Maps the library's errors to HTTP: the one table.
///
/// | error | status |
/// |---|---|
/// | `Forbidden` | 403 (404 for another's order: its existence is not revealed) |
/// | `NotFound` | 404 |
/// | `Invalid`, `LimitExceeded`, `Incomplete`, `EmptyCart`, `NotInChannel`, `CurrencyMismatch` | 422 |
/// | `OutOfStock`, `UsageLimitReached`, `PriceChanged`, `CartNotActive`, `IdempotencyConflict`, `AlreadyExists` | 409 |
/// | `PaymentDeclined`, `InsufficientBalance` | 402 |
/// | `TooManyAttempts`, `Busy` | 429 |
/// | retryable (`PaymentUnavailable`, `CheckoutInProgress`, `Conflict`, `Storage`, …) | 503 |
/// | anything else | 500 |
pub fn status_of(error: &Error) -> (StatusCode, &'static str) {
    match error {
        Error::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        Error::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
        Error::Invalid { .. }
        | Error::LimitExceeded { .. }
        | Error::Incomplete(_)
        | Error::EmptyCart
        | Error::NotInChannel { .. }
        | Error::CurrencyMismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        Error::OutOfStock { .. } => (StatusCode::CONFLICT, "out_of_stock"),
        Error::UsageLimitReached { .. }
        | Error::PriceChanged { .. }
        | Error::CartNotActive { .. }
        | Error::IdempotencyConflict(_)
        | Error::AlreadyExists { .. } => (StatusCode::CONFLICT, "conflict"),
        Error::PaymentDeclined { .. } | Error::InsufficientBalance { .. } => {
            (StatusCode::PAYMENT_REQUIRED, "payment_declined")
        }
        Error::TooManyAttempts { .. } | Error::Busy(_) => {
            (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
        }
        e if e.is_retryable() => (StatusCode::SERVICE_UNAVAILABLE, "try_again"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// A user-facing message for an error (never database text: the library's
/// messages carry only the user's values).
fn message(error: &Error) -> String {
    match error {
        Error::Storage { .. } => "Something went wrong on our side; please try again.".into(),
        other => other.to_string(),
    }
}

impl App {
    /// The same shop signing sessions with `key` (at least 32 bytes):
    /// every instance behind one address must share it, so a session made
    /// by one is honoured by the others.
    #[must_use]
    pub fn with_cookie_key(mut self, key: &[u8]) -> Self {
        if key.len() >= 32 {
            self.cookie_key = Arc::from(key);
        }
        self
    }

    /// The shop around `engine`, signing sessions with a random key (one
    /// instance; see [`App::with_cookie_key`] for several).
    pub fn new(
        engine: Engine,
        gateway: Arc<TestPaymentProvider>,
        base_url: &str,
        secure_cookies: bool,
    ) -> Self {
        let mut env = Environment::new();
        for (name, source) in crate::templates::TEMPLATES {
            // The templates are part of the program: a broken one is a bug
            // found by the first test run.
            if let Err(e) = env.add_template(name, source) {
                eprintln!("template {name}: {e}");
            }
        }
        let random = || {
            let mut k = uuid::Uuid::new_v4().as_bytes().to_vec();
            k.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            Arc::<[u8]>::from(k)
        };
        Self {
            engine,
            gateway,
            cookie_key: random(),
            webhook_secret: Arc::from(&b"whsec_storefront_demo_secret"[..]),
            secure_cookies,
            base_url: Arc::from(base_url),
            templates: Arc::new(env),
        }
    }

    /// Every route.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(catalog))
            .route("/products/{id}", get(product))
            .route("/cart", get(cart_page))
            .route("/cart/add", post(cart_add))
            .route("/cart/update", post(cart_update))
            .route("/cart/coupon", post(cart_coupon))
            .route("/checkout", get(checkout_page).post(checkout_submit))
            .route("/checkout/return", get(checkout_return))
            .route("/bank/3ds/{reference}", get(bank_page).post(bank_approve))
            .route("/orders/{id}", get(order_page))
            .route("/orders/{id}/return", post(return_request))
            .route("/orders/{id}/charges/{charge}/pay", post(pay_charge))
            .route("/account", get(account))
            .route("/signup", get(signup_page).post(signup))
            .route("/login", get(login_page).post(login))
            .route("/logout", post(logout))
            .route("/forgot", get(forgot_page).post(forgot))
            .route("/reset", get(reset_page).post(reset))
            .route("/api/cart", get(api_cart))
            .route("/api/cart/items", post(api_add))
            .route("/api/checkout", post(api_checkout))
            .route("/webhooks/test", post(webhook))
            .route("/webhooks/carrier", post(crate::tracking::carrier_webhook))
            .with_state(self)
    }

    fn session(&self, headers: &HeaderMap) -> Session {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .and_then(|(_, v)| Session::open(v, &self.cookie_key))
            .unwrap_or_else(Session::new)
    }

    fn cookie(&self, session: &Session) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let value = format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
            session.seal(&self.cookie_key)
        );
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    fn page(&self, session: &Session, name: &str, ctx: minijinja::Value) -> Response {
        self.page_with(session, StatusCode::OK, name, ctx, None)
    }

    fn page_with(
        &self,
        session: &Session,
        status: StatusCode,
        name: &str,
        ctx: minijinja::Value,
        error: Option<String>,
    ) -> Response {
        let base = context! {
            csrf => session.csrf.clone(),
            signed_in => session.customer.is_some(),
            error => error,
        };
        let html = self
            .templates
            .get_template(name)
            .and_then(|t| t.render(context! { ..ctx, ..base }))
            .unwrap_or_else(|e| format!("template error: {e}"));
        (
            status,
            [(header::SET_COOKIE, self.cookie(session))],
            Html(html),
        )
            .into_response()
    }

    fn redirect(&self, session: &Session, to: &str) -> Response {
        let location = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
        (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, location),
                (header::SET_COOKIE, self.cookie(session)),
            ],
        )
            .into_response()
    }

    fn error_page(&self, session: &Session, error: &Error) -> Response {
        let (status, _) = status_of(error);
        self.page_with(
            session,
            status,
            "layout.html",
            context! {},
            Some(message(error)),
        )
    }

    /// The session's cart, created (and remembered) when it has none.
    async fn ensure_cart(&self, session: &mut Session) -> Result<CartId> {
        let actor = session.actor();
        if let Some(id) = session.cart
            && let Ok(cart) = self.engine.cart(&actor, id).await
            && cart.ensure_active().is_ok()
        {
            return Ok(id);
        }
        let cart = self.engine.create_cart(&actor, Currency::USD).await?;
        session.cart = Some(cart.id());
        Ok(cart.id())
    }
}

/// A form write: the session and the form, whose CSRF token was checked
/// against the session's before the handler runs (refused with 403
/// otherwise).
struct Posted<T> {
    session: Session,
    form: T,
}

/// A form that carries the CSRF token.
trait CsrfForm {
    fn csrf(&self) -> &str;
}

macro_rules! csrf_forms {
    ($($form:ty),* $(,)?) => {
        $(impl CsrfForm for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}

csrf_forms!(
    AddForm,
    UpdateForm,
    CouponForm,
    CheckoutForm,
    AccountForm,
    LogoutForm,
    ForgotForm,
    ResetForm,
    ReturnForm,
    PayForm,
);

impl<T> axum::extract::FromRequest<App> for Posted<T>
where
    T: serde::de::DeserializeOwned + CsrfForm + Send,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, app: &App) -> Result<Self, Response> {
        let session = app.session(req.headers());
        let form = match Form::<T>::from_request(req, app).await {
            Ok(Form(form)) => form,
            Err(rejection) => {
                return Err(app.page_with(
                    &session,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "layout.html",
                    context! {},
                    Some(rejection.body_text()),
                ));
            }
        };
        if !session.csrf_ok(form.csrf()) {
            return Err(app.page_with(
                &session,
                StatusCode::FORBIDDEN,
                "layout.html",
                context! {},
                Some("This form expired; please go back and try again.".into()),
            ));
        }
        Ok(Self { session, form })
    }
}

fn money(m: Money) -> String {
    m.to_string()
}

/// Whether a promotion applied, or why not ("subtotal 45.00 USD is not >= 50.00 USD").
fn explain(p: &cartwright::pricing::PromotionOutcome) -> String {
    match p.rejection() {
        None => format!("{}: applied", p.name),
        Some(why) => format!("{}: not applied ({why})", p.name),
    }
}

/// An order as a line of a list.
fn order_row(o: &cartwright::order::Order) -> minijinja::Value {
    context! {
        id => o.id().to_string(),
        total => money(o.total()),
        status => format!("{:?}", o.status()),
    }
}

#[derive(Deserialize)]
struct CatalogQuery {
    #[serde(default)]
    category: Option<String>,
}

async fn catalog(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<CatalogQuery>,
) -> Response {
    let session = app.session(&headers);
    let categories = match app.engine.categories().await {
        Ok(c) => c,
        Err(e) => return app.error_page(&session, &e),
    };
    let mut query =
        cartwright::catalog::ProductQuery::new(50).sort(cartwright::catalog::ProductSort::Title);
    let chosen = q
        .category
        .as_deref()
        .and_then(|c| c.parse::<uuid::Uuid>().ok())
        .map(cartwright::id::CategoryId::from_uuid);
    if let Some(c) = chosen {
        query = query.category(c);
    }
    let page = match app.engine.find_products(&session.actor(), &query).await {
        Ok(p) => p,
        Err(e) => return app.error_page(&session, &e),
    };
    let list: Vec<_> = page
        .products
        .iter()
        .filter(|p| p.status() == Status::Active)
        .map(|p| {
            let price = p
                .variants()
                .first()
                .and_then(|v| v.price(Currency::USD))
                .map(money)
                .unwrap_or_default();
            context! { id => p.id().to_string(), title => p.title().to_owned(), price => price }
        })
        .collect();
    let categories: Vec<_> = categories
        .iter()
        .map(|c| {
            context! {
                id => c.id().to_string(),
                name => c.name().to_owned(),
                current => Some(c.id()) == chosen,
            }
        })
        .collect();
    app.page(
        &session,
        "catalog.html",
        context! { products => list, categories => categories },
    )
}

async fn product(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let session = app.session(&headers);
    let Ok(id) = id.parse::<uuid::Uuid>().map(ProductId::from_uuid) else {
        return app.error_page(&session, &Error::invalid("product", "not an id"));
    };
    match app.engine.product(id).await {
        Ok(p) if p.status() == Status::Active => {
            let Some(v) = p.variants().first() else {
                return app.error_page(&session, &Error::invalid("product", "no variant"));
            };
            app.page(
                &session,
                "product.html",
                context! {
                    title => p.title().to_owned(),
                    price => v.price(Currency::USD).map(money).unwrap_or_default(),
                    variant => v.id().to_string(),
                },
            )
        }
        Ok(_) => app.error_page(&session, &Error::invalid("product", "not for sale")),
        Err(e) => app.error_page(&session, &e),
    }
}

#[derive(Deserialize)]
struct AddForm {
    csrf: String,
    variant: String,
    quantity: u32,
}

async fn cart_add(
    State(app): State<App>,
    Posted {
        mut session,
        form: f,
    }: Posted<AddForm>,
) -> Response {
    let Ok(variant) = f.variant.parse::<uuid::Uuid>().map(VariantId::from_uuid) else {
        return app.error_page(&session, &Error::invalid("variant", "not an id"));
    };
    let added = async {
        let cart = app.ensure_cart(&mut session).await?;
        app.engine
            .add_item(&session.actor(), cart, variant, f.quantity)
            .await
    }
    .await;
    match added {
        Ok(_) => app.redirect(&session, "/cart"),
        Err(e) => app.error_page(&session, &e),
    }
}

#[derive(Deserialize)]
struct UpdateForm {
    csrf: String,
    line: String,
    quantity: u32,
}

async fn cart_update(
    State(app): State<App>,
    Posted { session, form: f }: Posted<UpdateForm>,
) -> Response {
    let (Some(cart), Ok(line)) = (
        session.cart,
        f.line.parse::<uuid::Uuid>().map(LineId::from_uuid),
    ) else {
        return app.redirect(&session, "/cart");
    };
    let actor = session.actor();
    let done = if f.quantity == 0 {
        app.engine.remove_line(&actor, cart, line).await
    } else {
        app.engine
            .set_quantity(&actor, cart, line, f.quantity)
            .await
    };
    match done {
        Ok(_) => app.redirect(&session, "/cart"),
        Err(e) => app.error_page(&session, &e),
    }
}

#[derive(Deserialize)]
struct CouponForm {
    csrf: String,
    code: String,
}

async fn cart_coupon(
    State(app): State<App>,
    Posted {
        mut session,
        form: f,
    }: Posted<CouponForm>,
) -> Response {
    let added = async {
        let cart = app.ensure_cart(&mut session).await?;
        app.engine
            .add_coupon_code(&session.actor(), cart, &f.code)
            .await
    }
    .await;
    match added {
        Ok(_) => app.redirect(&session, "/cart"),
        Err(e) => app.error_page(&session, &e),
    }
}

async fn cart_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let session = app.session(&headers);
    let Some(cart) = session.cart else {
        return app.page(
            &session,
            "cart.html",
            context! { lines => Vec::<u8>::new() },
        );
    };
    let priced = match app.engine.price_cart(&session.actor(), cart).await {
        Ok(p) => p,
        Err(e) => return app.error_page(&session, &e),
    };
    let lines: Vec<_> = priced
        .lines
        .iter()
        .map(|l| {
            context! {
                line => l.line_id.to_string(),
                name => l.name.to_string(),
                quantity => l.quantity,
                discount => money(l.discount),
                total => money(l.total),
            }
        })
        .collect();
    let promotions: Vec<String> = priced.promotions.iter().map(explain).collect();
    let hints: Vec<String> = priced.hints.iter().map(|h| h.message.clone()).collect();
    let shipping = priced
        .shipping
        .as_ref()
        .map(|s| money(s.amount))
        .unwrap_or_else(|| "chosen at checkout".into());
    app.page(
        &session,
        "cart.html",
        context! {
            lines => lines,
            subtotal => money(priced.subtotal),
            discount => money(priced.discount_total),
            shipping => shipping,
            tax => money(priced.tax_total),
            total => money(priced.total),
            promotions => promotions,
            hints => hints,
        },
    )
}

async fn checkout_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let session = app.session(&headers);
    let Some(cart) = session.cart else {
        return app.redirect(&session, "/cart");
    };
    let actor = session.actor();
    let (total, email) = match app.engine.price_cart(&actor, cart).await {
        Ok(p) => {
            let email = app
                .engine
                .cart(&actor, cart)
                .await
                .ok()
                .and_then(|c| c.email().map(|e| e.as_str().to_owned()))
                .unwrap_or_default();
            (money(p.total), email)
        }
        Err(e) => return app.error_page(&session, &e),
    };
    // One idempotency key per checkout form: a double submit pays once.
    let key = format!("web-{}", uuid::Uuid::new_v4().simple());
    app.page(
        &session,
        "checkout.html",
        context! { total => total, key => key, email => email },
    )
}

#[derive(Deserialize)]
struct CheckoutForm {
    csrf: String,
    key: String,
    email: String,
    name: String,
    line1: String,
    city: String,
    postal: String,
    country: String,
    method: String,
    token: String,
}

async fn checkout_submit(
    State(app): State<App>,
    Posted {
        mut session,
        form: f,
    }: Posted<CheckoutForm>,
) -> Response {
    let Some(cart) = session.cart else {
        return app.redirect(&session, "/cart");
    };
    let actor = session.actor();
    let step = async {
        let key = IdempotencyKey::new(f.key.clone())?;
        app.engine.set_email(&actor, cart, &f.email).await?;
        app.engine
            .set_shipping_address(
                &actor,
                cart,
                NewAddress::new(&f.name, &f.line1, &f.city, &f.postal, &f.country),
            )
            .await?;
        app.engine
            .set_shipping_method(&actor, cart, &f.method)
            .await?;
        app.engine
            .start_checkout(CheckoutRequest::new(
                cart,
                key,
                f.token.clone(),
                actor.clone(),
            ))
            .await
    }
    .await;
    finish_step(&app, &mut session, step, &f.key)
}

/// Where a checkout step sends the buyer: the order, or the customer action.
fn finish_step(
    app: &App,
    session: &mut Session,
    step: Result<CheckoutStep>,
    key: &str,
) -> Response {
    match step {
        Ok(CheckoutStep::Placed(outcome)) => {
            if let Some(token) = &outcome.access_token {
                session.remember_order(outcome.order.id(), token.as_str().to_owned());
            }
            session.cart = None;
            app.redirect(session, &format!("/orders/{}", outcome.order.id()))
        }
        Ok(CheckoutStep::AwaitingPayment(s)) => match &s.action {
            Some(CustomerAction::Redirect { url }) => {
                // The test gateway's bank is not reachable: the shop serves
                // a stand-in for it.
                let to = match url.strip_prefix(TEST_BANK) {
                    Some(reference) => format!("/bank/3ds/{reference}?key={key}"),
                    None => url.clone(),
                };
                app.redirect(session, &to)
            }
            _ => app.page(session, "waiting.html", context! { key => key.to_owned() }),
        },
        Ok(_) => app.redirect(session, "/cart"),
        Err(e) => app.error_page(session, &e),
    }
}

#[derive(Deserialize)]
struct KeyQuery {
    key: String,
}

async fn checkout_return(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> Response {
    let mut session = app.session(&headers);
    let Some(cart) = session.cart else {
        return app.redirect(&session, "/account");
    };
    let step = match IdempotencyKey::new(q.key.clone()) {
        Ok(key) => {
            app.engine
                .complete_checkout(&session.actor(), cart, &key)
                .await
        }
        Err(e) => Err(e.into()),
    };
    finish_step(&app, &mut session, step, &q.key)
}

async fn bank_page(
    State(app): State<App>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Response {
    let session = app.session(&headers);
    app.page(
        &session,
        "bank.html",
        context! { reference => reference, key => q.key },
    )
}

#[derive(Deserialize)]
struct BankForm {
    key: String,
}

/// The stand-in bank: the customer approves; the gateway sends its signed
/// webhook to the shop's endpoint (as a real gateway would, over HTTP);
/// the customer comes back to the return URL.
async fn bank_approve(
    State(app): State<App>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Form(f): Form<BankForm>,
) -> Response {
    let session = app.session(&headers);
    if let Ok(event) = app.gateway.complete_action(&reference) {
        let body = serde_json::to_vec(&event).unwrap_or_default();
        let now = chrono::Utc::now().timestamp();
        if let Ok(signature) = cartwright::payment::webhook::sign(&app.webhook_secret, now, &body) {
            let _ = reqwest::Client::new()
                .post(format!("{}/webhooks/test", app.base_url))
                .header("cartwright-signature", signature)
                .body(body)
                .send()
                .await;
        }
    }
    app.redirect(&session, &format!("/checkout/return?key={}", f.key))
}

async fn order_page(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = app.session(&headers);
    let Ok(id) = id.parse::<uuid::Uuid>().map(OrderId::from_uuid) else {
        return app.error_page(&session, &Error::invalid("order", "not an id"));
    };
    match app.engine.order(&session.actor_for_order(id), id).await {
        Ok(o) => {
            let history: Vec<String> = o
                .history()
                .iter()
                .map(|h| format!("{}: {:?}", h.at.format("%Y-%m-%d %H:%M"), h.change))
                .collect();
            let lines: Vec<_> = o
                .pricing()
                .lines
                .iter()
                .map(|l| {
                    context! {
                        id => l.line_id.to_string(),
                        name => l.name.to_string(),
                        quantity => l.quantity,
                        returnable => o.returnable(l.line_id),
                    }
                })
                .collect();
            let returns: Vec<_> = o
                .return_cases()
                .iter()
                .map(|c| {
                    context! {
                        id => c.id.to_string(),
                        state => format!("{:?}", c.state),
                        units => c.items.iter().map(|i| i.quantity).sum::<u32>(),
                        refund => money(c.quote.refund),
                        reason => format!("{:?}", c.reason),
                    }
                })
                .collect();
            let charges: Vec<_> = o
                .charges()
                .iter()
                .map(|c| {
                    context! {
                        id => c.id.to_string(),
                        amount => money(c.amount),
                        reason => c.reason.clone(),
                        state => format!("{:?}", c.state),
                        payable => matches!(c.state, ChargeState::Due | ChargeState::AwaitingCustomer),
                    }
                })
                .collect();
            let can_return = o
                .pricing()
                .lines
                .iter()
                .any(|l| o.returnable(l.line_id) > 0);
            let can_ship = o.cancellation().is_none()
                && o.pricing()
                    .lines
                    .iter()
                    .any(|l| o.ordered(l.line_id) > o.shipped(l.line_id));
            app.page(
                &session,
                "order.html",
                context! {
                    id => o.id().to_string(),
                    status => format!("{:?}", o.status()),
                    payment => format!("{:?}", o.payment().status()),
                    total => money(o.total()),
                    refunded => money(o.payment().refunded()),
                    history => history,
                    lines => lines,
                    returns => returns,
                    can_return => can_return,
                    any_returnable => can_return,
                    can_ship => can_ship,
                    charges => charges,
                    shipments => crate::tracking::shipments(&o),
                    shipping_method => o.pricing().shipping.as_ref().map(|s| s.code.clone()).unwrap_or_default(),
                    // The methods offered at checkout, while one may still be chosen.
                    methods => if o.shipments().is_empty() && o.pricing().shipping_groups.is_empty() {
                        o.pricing().shipping_options.iter().map(|r| r.code.clone()).collect()
                    } else {
                        Vec::new()
                    },
                },
            )
        }
        // Another's order is "not found": its existence is not revealed.
        Err(Error::Forbidden | Error::NotFound { .. }) => app.page_with(
            &session,
            StatusCode::NOT_FOUND,
            "layout.html",
            context! {},
            Some("No such order.".into()),
        ),
        Err(e) => app.error_page(&session, &e),
    }
}

async fn account(State(app): State<App>, headers: HeaderMap) -> Response {
    let session = app.session(&headers);
    let Some(me) = session.customer else {
        return app.redirect(&session, "/login");
    };
    match app
        .engine
        .orders_for_customer(&session.actor(), me, None, 50)
        .await
    {
        Ok(orders) => {
            let list: Vec<_> = orders.iter().map(order_row).collect();
            app.page(&session, "account.html", context! { orders => list })
        }
        Err(e) => app.error_page(&session, &e),
    }
}

fn form_page(
    app: &App,
    session: &Session,
    heading: &str,
    action: &str,
    fields: &[(&str, &str, &str)],
    notice: Option<String>,
) -> Response {
    let fields: Vec<_> = fields
        .iter()
        .map(|(name, label, kind)| context! { name => *name, label => *label, kind => *kind, value => "" })
        .collect();
    app.page(
        session,
        "form.html",
        context! { heading => heading, action => action, fields => fields, notice => notice },
    )
}

const ACCOUNT_FIELDS: &[(&str, &str, &str)] = &[
    ("email", "Email", "email"),
    ("password", "Password", "password"),
];

async fn signup_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let session = app.session(&headers);
    form_page(&app, &session, "Sign up", "/signup", ACCOUNT_FIELDS, None)
}

async fn login_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let session = app.session(&headers);
    form_page(&app, &session, "Log in", "/login", ACCOUNT_FIELDS, None)
}

#[derive(Deserialize)]
struct AccountForm {
    csrf: String,
    email: String,
    password: String,
}

/// Signs `customer` in: a fresh session (and CSRF token), their guest cart
/// merged into theirs.
async fn sign_in(app: &App, old: &Session, customer: cartwright::id::CustomerId) -> Session {
    let mut session = Session::new();
    session.customer = Some(customer);
    let me = session.actor();
    session.cart = match old.cart {
        Some(guest) => app
            .engine
            .merge_guest_cart(&me, guest)
            .await
            .ok()
            .map(|c| c.id()),
        None => None,
    };
    session
}

async fn signup(
    State(app): State<App>,
    Posted { session, form: f }: Posted<AccountForm>,
) -> Response {
    match app
        .engine
        .register(NewCustomer::new(&f.email, &f.password))
        .await
    {
        Ok(c) => {
            let session = sign_in(&app, &session, c.id()).await;
            app.redirect(&session, "/account")
        }
        Err(e) => app.error_page(&session, &e),
    }
}

async fn login(
    State(app): State<App>,
    Posted { session, form: f }: Posted<AccountForm>,
) -> Response {
    match app.engine.login(&f.email, &f.password).await {
        Ok(c) => {
            let session = sign_in(&app, &session, c.id()).await;
            app.redirect(&session, "/account")
        }
        Err(e) => app.error_page(&session, &e),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

/// Logging out takes a CSRF-checked form too (a link could be forged).
async fn logout(State(app): State<App>, _: Posted<LogoutForm>) -> Response {
    app.redirect(&Session::new(), "/")
}

async fn forgot_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let session = app.session(&headers);
    form_page(
        &app,
        &session,
        "Reset my password",
        "/forgot",
        &[("email", "Email", "email")],
        None,
    )
}

#[derive(Deserialize)]
struct ForgotForm {
    csrf: String,
    email: String,
}

async fn forgot(
    State(app): State<App>,
    Posted { session, form: f }: Posted<ForgotForm>,
) -> Response {
    // The same answer whether the email has an account or not. A real shop
    // mails the link; this demo logs it.
    if let Ok(Some(issued)) = app.engine.request_password_reset(&f.email).await {
        tracing::info!(link = %format!("/reset?token={}", issued.token), "password reset link (demo: would be mailed)");
    }
    form_page(
        &app,
        &session,
        "Reset my password",
        "/forgot",
        &[("email", "Email", "email")],
        Some("If the email has an account, a reset link is on its way.".into()),
    )
}

#[derive(Deserialize)]
struct TokenQuery {
    token: String,
}

async fn reset_page(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    let session = app.session(&headers);
    let fields: Vec<_> = vec![
        context! { name => "password", label => "New password", kind => "password", value => "" },
    ];
    let hidden =
        context! { name => "token", label => "Reset code", kind => "text", value => q.token };
    app.page(
        &session,
        "form.html",
        context! { heading => "Choose a new password", action => "/reset", fields => [hidden].into_iter().chain(fields).collect::<Vec<_>>() },
    )
}

#[derive(Deserialize)]
struct ResetForm {
    csrf: String,
    token: String,
    password: String,
}

async fn reset(State(app): State<App>, Posted { session, form: f }: Posted<ResetForm>) -> Response {
    match app.engine.reset_password(&f.token, &f.password, true).await {
        Ok(c) => {
            let session = sign_in(&app, &session, c.id()).await;
            app.redirect(&session, "/account")
        }
        Err(e) => app.error_page(&session, &e),
    }
}

/// A buyer's return request from the order page.
#[derive(Deserialize)]
struct ReturnForm {
    csrf: String,
    line: String,
    quantity: String,
    reason: String,
    #[serde(default)]
    note: String,
}

fn return_reason(name: &str) -> cartwright::order::ReturnReason {
    use cartwright::order::ReturnReason as R;
    match name {
        "damaged" => R::Damaged,
        "defective" => R::Defective,
        "wrong_item" => R::WrongItem,
        "not_as_described" => R::NotAsDescribed,
        "size_or_fit" => R::SizeOrFit,
        "no_longer_needed" => R::NoLongerNeeded,
        _ => R::Other,
    }
}

/// The buyer pays a charge (an exchange's or an edit's difference).
#[derive(Deserialize)]
struct PayForm {
    csrf: String,
    token: String,
}

async fn pay_charge(
    State(app): State<App>,
    Path((id, charge)): Path<(String, String)>,
    Posted { session, form: f }: Posted<PayForm>,
) -> Response {
    let (Ok(id), Ok(charge)) = (
        id.parse::<uuid::Uuid>().map(OrderId::from_uuid),
        charge
            .parse::<uuid::Uuid>()
            .map(cartwright::id::ChargeId::from_uuid),
    ) else {
        return app.error_page(&session, &Error::invalid("charge", "not an id"));
    };
    let pay = cartwright::after_sale::ChargePayment::new(f.token);
    match app
        .engine
        .pay_charge(&session.actor_for_order(id), id, charge, pay)
        .await
    {
        // A card that needs the bank's check shows as waiting on the order
        // page; paying again after the check finishes the same try.
        Ok(_) => app.redirect(&session, &format!("/orders/{id}")),
        Err(e) => app.error_page(&session, &e),
    }
}

/// "Return items" on the order page: asks for a return; the shop's policy
/// answers at once.
async fn return_request(
    State(app): State<App>,
    Path(id): Path<String>,
    Posted { session, form: f }: Posted<ReturnForm>,
) -> Response {
    let Ok(id) = id.parse::<uuid::Uuid>().map(OrderId::from_uuid) else {
        return app.error_page(&session, &Error::invalid("order", "not an id"));
    };
    let Ok(line) = f
        .line
        .parse::<uuid::Uuid>()
        .map(cartwright::id::LineId::from_uuid)
    else {
        return app.error_page(&session, &Error::invalid("line", "not an id"));
    };
    let Ok(quantity) = f.quantity.trim().parse::<u32>() else {
        return app.error_page(&session, &Error::invalid("quantity", "not a number"));
    };
    let key = match IdempotencyKey::new(format!("return-{}", uuid::Uuid::new_v4().simple())) {
        Ok(k) => k,
        Err(e) => return app.error_page(&session, &e.into()),
    };
    let items = vec![cartwright::order::LineQuantity {
        line_id: line,
        quantity,
    }];
    let ask =
        cartwright::order::NewReturnCase::new(items, return_reason(&f.reason), key).note(f.note);
    match app
        .engine
        .request_return(&session.actor_for_order(id), id, ask)
        .await
    {
        Ok(_) => app.redirect(&session, &format!("/orders/{id}")),
        Err(e) => app.error_page(&session, &e),
    }
}

// ----- the JSON API ----------------------------------------------------------

/// An API error: `{"error": {"code": …, "message": …}}` with the status of
/// [`status_of`].
fn api_error(error: &Error) -> Response {
    let (status, code) = status_of(error);
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message(error) } })),
    )
        .into_response()
}

/// API writes repeat the session's CSRF token in `X-CSRF-Token`.
fn api_csrf(session: &Session, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    (!session.csrf_ok(token)).then(|| {
        (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({ "error": { "code": "csrf", "message": "missing or wrong CSRF token" } })),
        )
            .into_response()
    })
}

fn api_reply(app: &App, session: &Session, body: serde_json::Value) -> Response {
    ([(header::SET_COOKIE, app.cookie(session))], Json(body)).into_response()
}

async fn api_cart(State(app): State<App>, headers: HeaderMap) -> Response {
    let session = app.session(&headers);
    let Some(cart) = session.cart else {
        return api_reply(
            &app,
            &session,
            serde_json::json!({ "lines": [], "csrf": session.csrf }),
        );
    };
    match app.engine.price_cart(&session.actor(), cart).await {
        Ok(p) => api_reply(
            &app,
            &session,
            serde_json::json!({ "cart": cart.to_string(), "priced": p, "csrf": session.csrf }),
        ),
        Err(e) => api_error(&e),
    }
}

#[derive(Deserialize)]
struct ApiAdd {
    variant_id: VariantId,
    quantity: u32,
}

async fn api_add(State(app): State<App>, headers: HeaderMap, Json(body): Json<ApiAdd>) -> Response {
    let mut session = app.session(&headers);
    if let Some(refused) = api_csrf(&session, &headers) {
        return refused;
    }
    let added = async {
        let cart = app.ensure_cart(&mut session).await?;
        app.engine
            .add_item(&session.actor(), cart, body.variant_id, body.quantity)
            .await
    }
    .await;
    match added {
        Ok(cart) => api_reply(
            &app,
            &session,
            serde_json::json!({ "cart": cart.id().to_string() }),
        ),
        Err(e) => api_error(&e),
    }
}

#[derive(Deserialize)]
struct ApiCheckout {
    key: String,
    payment_token: String,
    email: String,
    address: BTreeMap<String, String>,
}

async fn api_checkout(
    State(app): State<App>,
    headers: HeaderMap,
    Json(body): Json<ApiCheckout>,
) -> Response {
    let mut session = app.session(&headers);
    if let Some(refused) = api_csrf(&session, &headers) {
        return refused;
    }
    let Some(cart) = session.cart else {
        return api_error(&Error::EmptyCart);
    };
    let actor = session.actor();
    let field = |k: &str| body.address.get(k).cloned().unwrap_or_default();
    let step = async {
        let key = IdempotencyKey::new(body.key.clone())?;
        app.engine.set_email(&actor, cart, &body.email).await?;
        app.engine
            .set_shipping_address(
                &actor,
                cart,
                NewAddress::new(
                    field("name"),
                    field("line1"),
                    field("city"),
                    field("postal"),
                    field("country"),
                ),
            )
            .await?;
        app.engine
            .set_shipping_method(&actor, cart, "standard")
            .await?;
        app.engine
            .start_checkout(CheckoutRequest::new(
                cart,
                key,
                body.payment_token.clone(),
                actor.clone(),
            ))
            .await
    }
    .await;
    match step {
        Ok(CheckoutStep::Placed(outcome)) => {
            if let Some(token) = &outcome.access_token {
                session.remember_order(outcome.order.id(), token.as_str().to_owned());
            }
            session.cart = None;
            api_reply(
                &app,
                &session,
                serde_json::json!({
                    "order": outcome.order.id().to_string(),
                    "total": outcome.order.total(),
                }),
            )
        }
        Ok(CheckoutStep::AwaitingPayment(s)) => {
            api_reply(&app, &session, serde_json::json!({ "awaiting_payment": s }))
        }
        Ok(_) => api_error(&Error::EmptyCart),
        Err(e) => api_error(&e),
    }
}

// ----- the webhook -------------------------------------------------------------

/// The test gateway's events: the signature is checked over the raw body
/// (and its timestamp within five minutes) before the event is parsed; the
/// engine applies each event once, so a replay within the tolerance is
/// harmless.
async fn webhook(State(app): State<App>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let signature = headers
        .get("cartwright-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if cartwright::payment::webhook::verify(
        &app.webhook_secret,
        signature,
        &body,
        chrono::Utc::now(),
        chrono::Duration::seconds(cartwright::payment::webhook::DEFAULT_TOLERANCE_SECS),
    )
    .is_err()
    {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Ok(event) = serde_json::from_slice::<cartwright::payment::ProviderEvent>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match app
        .engine
        .apply_provider_event(&Actor::Provider(GATEWAY.into()), &event)
        .await
    {
        // Not a payment of this shop's: acknowledge, so it is not resent.
        Ok(_) | Err(Error::NotFound { .. }) => StatusCode::OK.into_response(),
        Err(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

trait NotFoundAction {
    fn not_found_action() -> Error;
}

impl NotFoundAction for Error {
    fn not_found_action() -> Error {
        Error::invalid(
            "action",
            "must be capture, ship, cancel, refund, or approve-, reject-, receive- or refund-return",
        )
    }
}
