//! The back office (feature `admin`): an axum [`Router`] of server-rendered
//! screens for staff, to mount under any path of one's own program.
//!
//! ```no_run
//! # async fn run(engine: cartwright::Engine) -> std::io::Result<()> {
//! use cartwright::admin::{AdminConfig, admin_router};
//!
//! let admin = admin_router(engine, AdminConfig::new("/admin"));
//! let app = axum::Router::new().nest("/admin", admin);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! **Screens**: a dashboard (sales per currency today, over 7 and 30 days,
//! orders by state, low stock, top products, a chart drawn as SVG on the
//! server), products (search, keyset pages, variants, prices per currency,
//! images, status), categories (a tree, moved by choosing a parent),
//! inventory (levels per location, adjustments with a reason, low-stock
//! thresholds), orders (filters, an order's whole story, capture, ship,
//! cancel, refund, return requests, notes), promotions (create and edit
//! every shape — the header in fields, the rules as JSON checked by the
//! engine, with every action and condition listed from the schema —
//! enable, disable,
//! bulk coupon codes, "what would this cart cost"), customers (search,
//! profile, addresses, orders, notes, store credit, gift cards, export,
//! erasure), price lists, sales channels, staff and roles (made and
//! changed), the audit log, settings (read-only), and catalog CSV import
//! (dry run, then apply) and export.
//!
//! **Security.** Every screen and action runs as the signed-in member's
//! [`Actor`](crate::Actor): the engine's access table decides, so a screen can never
//! grant more than the member's roles (a support agent who opens the
//! product form gets "access denied" from the engine). Sessions are the
//! engine's staff sessions ([`Engine::staff_login`]), in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` unless
//! [`AdminConfig::secure_cookies`] is turned off for plain-HTTP
//! development); they expire after
//! [`EngineConfig::staff_session_ttl`](crate::EngineConfig). Every form
//! carries a CSRF token bound to the session (the sign-in form, one bound
//! to a pre-session cookie); a missing or wrong one is refused and changes
//! nothing. Pages are sent with a `Content-Security-Policy` that allows no
//! script, no frame and nothing from elsewhere. Uploads are limited (images
//! to [`MAX_UPLOAD_BYTES`](crate::media::MAX_UPLOAD_BYTES), CSV files to
//! [`MAX_IMPORT_BYTES`](crate::catalog_csv::MAX_IMPORT_BYTES)) and a
//! larger body is refused with a page saying so.
//!
//! **Pages** are minijinja templates (auto-escaped HTML), usable without
//! JavaScript: plain forms and links, labels on every field, visible focus,
//! text contrast above 7:1.

mod catalog;
mod customers;
mod dashboard;
mod orders;
mod prices;
mod render;
mod session;
mod settings;
mod shapes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::engine::Engine;
use crate::error::Error;

pub use session::SESSION_COOKIE;

/// The largest request body the admin reads: a CSV file at its limit, with
/// room for the form around it.
const MAX_BODY_BYTES: usize = crate::catalog_csv::MAX_IMPORT_BYTES + 64 * 1024;

/// The id of `what` in a form or a path (`make` wraps the UUID in its id
/// type).
///
/// # Errors
/// [`Error::Invalid`] naming `what` and the text sent.
pub(crate) fn parse_id<T>(
    text: &str,
    what: &'static str,
    make: fn(uuid::Uuid) -> T,
) -> Result<T, Error> {
    text.trim()
        .parse::<uuid::Uuid>()
        .map(make)
        .map_err(|_| Error::invalid(what, format!("{text:?} is not an id of a {what}")))
}

/// How the admin is mounted and what it calls the shop.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdminConfig {
    /// The path the router is nested under (`"/admin"`), for links and the
    /// cookie's path.
    pub base_path: String,
    /// The shop's name, in every page's title.
    pub shop_name: String,
    /// Mark cookies `Secure` (sent over HTTPS only). On by default; turn it
    /// off only to develop over plain HTTP.
    pub secure_cookies: bool,
}

impl AdminConfig {
    /// Mounted at `base_path` (no trailing slash: `"/admin"`; `""` for
    /// the root), named "Shop", with secure cookies.
    pub fn new(base_path: impl Into<String>) -> Self {
        Self {
            base_path: base_path.into().trim_end_matches('/').to_owned(),
            shop_name: "Shop".to_owned(),
            secure_cookies: true,
        }
    }
}

crate::domain::setters!(AdminConfig { secure_cookies: bool } into { shop_name: String });

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Admin {
    pub(crate) engine: Engine,
    pub(crate) config: Arc<AdminConfig>,
    pub(crate) pages: Arc<render::Pages>,
}

/// The back office's router, with its state: nest it under
/// [`AdminConfig::base_path`].
///
/// # Panics
/// Never: the templates are part of the crate and checked by its tests.
pub fn admin_router(engine: Engine, config: AdminConfig) -> Router {
    let admin = Admin {
        engine,
        config: Arc::new(config),
        pages: Arc::new(render::Pages::new()),
    };
    Router::new()
        .route("/", get(dashboard::dashboard))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route(
            "/account/totp",
            get(session::totp_page).post(session::totp_confirm),
        )
        .route(
            "/products",
            get(catalog::products).post(catalog::create_product),
        )
        .route(
            "/products/{id}",
            get(catalog::product).post(catalog::update_product),
        )
        .route("/products/{id}/prices", post(catalog::set_price))
        .route("/products/{id}/variants", post(catalog::add_variant))
        .route("/products/{id}/images", post(catalog::upload_image))
        .route("/products/{id}/images/remove", post(catalog::remove_image))
        .route(
            "/categories",
            get(catalog::categories).post(catalog::create_category),
        )
        .route("/categories/{id}", post(catalog::change_category))
        .route("/collections", post(catalog::create_collection))
        .route("/collections/{id}", post(catalog::change_collection))
        .route("/inventory", get(catalog::inventory))
        .route("/inventory/adjust", post(catalog::adjust))
        .route("/inventory/threshold", post(catalog::threshold))
        .route("/import", get(catalog::import_page).post(catalog::import))
        .route("/catalog.csv", get(catalog::export))
        .route("/media/{key}", get(catalog::media))
        .route("/orders", get(orders::orders))
        .route("/orders/{id}", get(orders::order))
        .route("/orders/{id}/edit", post(orders::edit))
        .route("/orders/{id}/{action}", post(orders::action))
        .route("/promotions", get(settings::promotions))
        .route("/promotions/new", get(settings::new_promotion))
        .route("/promotions/save", post(settings::save_promotion))
        .route("/promotions/shape", post(settings::save_shape))
        .route(
            "/promotions/{id}/conditions/{n}/remove",
            post(settings::remove_condition),
        )
        .route("/promotions/{id}/edit", get(settings::edit_promotion))
        .route(
            "/promotions/{id}/enabled",
            post(settings::promotion_enabled),
        )
        .route("/promotions/{id}/coupons", post(settings::coupons))
        .route("/promotions/explain", get(settings::explain))
        .route(
            "/price-lists",
            get(prices::price_lists).post(prices::create_price_list),
        )
        .route(
            "/price-lists/{id}",
            get(prices::price_list).post(prices::change_price_list),
        )
        .route(
            "/channels",
            get(prices::channels).post(prices::create_channel),
        )
        .route("/channels/{id}", post(prices::change_channel))
        .route("/roles", post(settings::save_role))
        .route("/roles/{name}/delete", post(settings::delete_role))
        .route("/customers", get(customers::customers))
        .route("/customers/{id}", get(customers::customer))
        .route("/customers/{id}/export", get(customers::export))
        .route("/customers/{id}/{action}", post(customers::action))
        .route("/staff", get(settings::staff).post(settings::create_staff))
        .route("/staff/{id}", post(settings::change_staff))
        .route("/audit", get(settings::audit))
        .route("/settings", get(settings::settings))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response_with_state(
            admin.clone(),
            harden,
        ))
        .with_state(admin)
}

/// Every answer: no caching of staff pages, no script, no framing, no
/// sniffing; a body the limit refused gets a page saying so.
async fn harden(
    axum::extract::State(admin): axum::extract::State<Admin>,
    response: Response,
) -> Response {
    let mut response = if response.status() == StatusCode::PAYLOAD_TOO_LARGE
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|t| t.to_str().is_ok_and(|t| t.starts_with("text/plain")))
    {
        admin.problem(
            None,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "The upload is too large: at most {} MB.",
                MAX_BODY_BYTES / (1024 * 1024)
            ),
        )
    } else {
        response
    };
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

impl Admin {
    /// A path under the admin.
    pub(crate) fn link(&self, path: &str) -> String {
        match (self.config.base_path.as_str(), path) {
            // A nested router's root is the base itself (`/admin`).
            ("", "") => "/".to_owned(),
            (base, "/") if !base.is_empty() => base.to_owned(),
            (base, p) if p.starts_with("/?") && !base.is_empty() => {
                format!("{base}{}", p.get(1..).unwrap_or(p))
            }
            (base, p) => format!("{base}{p}"),
        }
    }

    /// A 303 to `path` under the admin, with a notice to show there.
    pub(crate) fn done(&self, path: &str, notice: &str) -> Response {
        let sep = if path.contains('?') { '&' } else { '?' };
        let to = format!(
            "{}{sep}notice={}",
            self.link(path),
            url::form_urlencoded::byte_serialize(notice.as_bytes()).collect::<String>()
        );
        (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
    }

    /// The page for an engine error: what went wrong, in words a member of
    /// staff can act on, with the right status. Nothing was changed.
    pub(crate) fn failed(&self, staff: Option<&session::Staff>, error: &Error) -> Response {
        let (status, text) = match error {
            Error::Forbidden => (
                StatusCode::FORBIDDEN,
                "Access denied: your roles do not allow this.".to_owned(),
            ),
            Error::RefundAboveLimit { .. } => (
                StatusCode::FORBIDDEN,
                format!("Refused: {error}. Ask a manager."),
            ),
            Error::NotFound { .. } => (StatusCode::NOT_FOUND, format!("Not found: {error}.")),
            Error::Invalid { .. }
            | Error::LimitExceeded { .. }
            | Error::AlreadyExists { .. }
            | Error::InvalidCredentials
            | Error::InvalidToken => (StatusCode::BAD_REQUEST, format!("{error}.")),
            Error::Conflict { .. } => (
                StatusCode::CONFLICT,
                format!("{error}: someone changed it meanwhile; reload and try again."),
            ),
            Error::Storage { .. } | Error::Busy(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The shop could not do this just now; try again.".to_owned(),
            ),
            other => (StatusCode::BAD_REQUEST, format!("{other}.")),
        };
        if matches!(error, Error::Storage { .. }) {
            tracing::warn!(%error, "an admin request failed in the store");
        }
        self.problem(staff, status, &text)
    }

    /// A page with `text` as its error.
    pub(crate) fn problem(
        &self,
        staff: Option<&session::Staff>,
        status: StatusCode,
        text: &str,
    ) -> Response {
        let page = self.pages.render(
            self,
            staff,
            "problem.html",
            minijinja::context! { title => "Not done", problem => text },
        );
        (status, page).into_response()
    }
}
