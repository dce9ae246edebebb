//! Building and starting the shop: the engine on the in-memory store, or on
//! PostgreSQL when a database URL is given; a seeded catalog; the server
//! with graceful shutdown and maintenance on a timer.

use std::sync::Arc;
use std::time::Duration;

use cartwright::payment::TestPaymentProvider;
use cartwright::prelude::*;
use cartwright::store::{MemoryStore, Store};

use crate::shop::App;

/// A running shop.
pub struct Running {
    /// Where it listens, `http://127.0.0.1:<port>`.
    pub url: String,
    /// The engine behind it.
    pub engine: Engine,
    /// Stops the server and its maintenance loop when sent (or dropped).
    pub stop: tokio::sync::oneshot::Sender<()>,
    /// The server task.
    pub task: tokio::task::JoinHandle<()>,
}

/// The engine: `store`, the test gateway, two flat shipping rates
/// (standard and express) and the test carrier's live rates and labels, no
/// tax.
///
/// # Errors
/// As [`EngineBuilder::build`](cartwright::EngineBuilder::build).
pub fn engine(store: Arc<dyn Store>, gateway: Arc<TestPaymentProvider>) -> Result<Engine> {
    Engine::builder()
        .store(store)
        .payment_provider(gateway)
        .shipping(Arc::new(
            FlatRateShipping::new()
                .with_method(
                    "standard",
                    "Standard",
                    &[Money::parse("5.00", Currency::USD)?],
                )?
                .with_method(
                    "express",
                    "Express",
                    &[Money::parse("15.00", Currency::USD)?],
                )?,
        ))
        .carrier(Arc::new(cartwright::shipping::TestCarrier::new()))
        .no_tax()
        .build()
}

/// The store: PostgreSQL at `database_url`, or in memory.
///
/// # Errors
/// When PostgreSQL cannot be reached or migrated.
pub async fn store(database_url: Option<&str>) -> Result<Arc<dyn Store>> {
    match database_url {
        #[cfg(feature = "postgres")]
        Some(url) => Ok(Arc::new(cartwright::store::PgStore::connect(url).await?)),
        #[cfg(not(feature = "postgres"))]
        Some(_) => Err(Error::invalid(
            "DATABASE_URL",
            "build with --features postgres to use PostgreSQL",
        )),
        None => Ok(Arc::new(MemoryStore::new())),
    }
}

/// A small catalog and a coupon, unless the store has products already
/// (another instance seeded it).
///
/// # Errors
/// The engine's.
pub async fn seed(engine: &Engine, stock: i64) -> Result<()> {
    if !engine.products(None, 1).await?.is_empty() {
        return Ok(());
    }
    let system = Actor::System;
    let warehouse = engine.create_location(&system, "Warehouse", 0).await?;
    let home = engine.create_category(&system, "Home", None).await?;
    let kitchen = engine
        .create_category(&system, "Kitchen", Some(home.id()))
        .await?;
    let bags = engine.create_category(&system, "Bags", None).await?;
    let prints = engine
        .create_category(&system, "Prints", Some(home.id()))
        .await?;
    for (title, sku, price, category) in [
        ("Enamel mug", "MUG", "12.00", kitchen.id()),
        ("Cotton tote bag", "TOTE", "18.00", bags.id()),
        ("Letterpress poster", "POSTER", "25.00", prints.id()),
    ] {
        let product = engine
            .create_product(
                &system,
                NewProduct::new(title)
                    .status(Status::Active)
                    .categories(vec![category])
                    .variants(vec![
                        NewVariant::shipped(sku)
                            .prices(vec![Money::parse(price, Currency::USD)?])
                            .status(Status::Active),
                    ]),
            )
            .await?;
        for v in product.variants() {
            engine
                .set_stock(&system, v.id(), warehouse.id(), stock)
                .await?;
        }
    }
    let welcome = engine
        .save_promotion(
            &system,
            cartwright::pricing::Promotion::new(
                "Welcome: 10 % off",
                cartwright::pricing::Action::PercentOffItems {
                    target: cartwright::pricing::LineFilter::Any,
                    percent: rust_decimal::Decimal::TEN,
                    max_discount: None,
                    max_quantity_per_line: None,
                },
            )
            .coded(),
        )
        .await?;
    match engine
        .create_coupon(&system, welcome.id, "WELCOME10", None)
        .await
    {
        Ok(_) | Err(Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Serves `app` on `listener` until `stop`, running maintenance (recovery,
/// expiry, pruning) every `every`.
pub fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    every: Duration,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = app.engine.clone();
    let engine_for_agents = app.engine.clone();
    let base = listener
        .local_addr()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    let task = tokio::spawn(async move {
        let maintenance = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(error) = engine.run_maintenance(&Actor::System).await {
                    tracing::warn!(%error, "maintenance run failed; the next one goes on");
                }
            }
        });
        let secure = app.secure_cookies;
        let images = engine_for_agents.clone();
        let routes = agents(app.router(), &engine_for_agents, &base).route(
            "/media/{key}",
            axum::routing::get(
                move |axum::extract::Path(key): axum::extract::Path<String>,
                      headers: axum::http::HeaderMap| {
                    let images = images.clone();
                    async move { media(&images, &key, &headers).await }
                },
            ),
        );
        let routes = back_office(routes, &engine_for_agents, secure);
        let server = axum::serve(listener, routes).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(error) = server.await {
            tracing::warn!(%error, "server stopped");
        }
        maintenance.abort();
    });
    (stop, task)
}

/// Starts a shop on a free local port over `store`, signing sessions with
/// a random key.
///
/// # Errors
/// When no port can be bound, or the engine cannot be built or seeded.
pub async fn start(store: Arc<dyn Store>, staff_password: &str) -> Result<Running> {
    start_with(store, staff_password, None).await
}

/// As [`start`], signing sessions with `cookie_key` when given (instances
/// behind one address share it).
///
/// # Errors
/// As [`start`].
pub async fn start_with(
    store: Arc<dyn Store>,
    staff_password: &str,
    cookie_key: Option<&[u8]>,
) -> Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::invalid("listener", e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::invalid("listener", e.to_string()))?;
    let url = format!("http://{addr}");
    let gateway = Arc::new(TestPaymentProvider::new());
    let engine = engine(store, gateway.clone())?;
    seed(&engine, 20).await?;
    #[cfg(feature = "admin")]
    seed_staff(&engine, staff_password).await?;
    #[cfg(not(feature = "admin"))]
    let _ = staff_password;
    // Behind HTTPS, cookies must be `Secure`: the embedding says so.
    let secure = std::env::var("SECURE_COOKIES").as_deref() == Ok("1");
    let mut app = App::new(engine.clone(), gateway, &url, secure);
    if let Some(key) = cookie_key {
        app = app.with_cookie_key(key);
    }
    let (stop, task) = serve(listener, app, Duration::from_secs(30));
    Ok(Running {
        url,
        engine,
        stop,
        task,
    })
}

/// AI agents buy here too, when the example is built with the protocols'
/// features (`--features ucp,acp`): UCP under `/ucp/` (its discovery profile
/// at `/.well-known/ucp`) and ACP under `/acp/`. Agents authenticate with
/// a bearer key each (`UCP_AGENT_KEY`, `ACP_AGENT_KEY`; random ones are
/// printed when unset); a relay sends both protocols' order webhooks.
#[cfg(all(feature = "ucp", feature = "acp"))]
fn agents(shop: axum::Router, engine: &Engine, base: &str) -> axum::Router {
    use cartwright::agentic::BearerKeys;
    use cartwright::agentic::acp::{AcpConfig, AcpMerchant, AcpPlatform};
    use cartwright::agentic::ucp::{UcpConfig, UcpMerchant};

    let key = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            let k = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            println!("{name}={k}");
            k
        })
    };
    let built = (|| -> Result<(UcpMerchant, AcpMerchant)> {
        let ucp_base = format!("{base}/ucp/")
            .parse()
            .map_err(|_| Error::invalid("base url", base.to_owned()))?;
        let ucp = UcpMerchant::new(
            engine.clone(),
            UcpConfig::new(ucp_base).auth(Arc::new(
                BearerKeys::new().with_key(&key("UCP_AGENT_KEY"), "ucp-agent")?,
            )),
        )?;
        let acp_base = format!("{base}/acp/")
            .parse()
            .map_err(|_| Error::invalid("base url", base.to_owned()))?;
        let acp = AcpMerchant::new(
            engine.clone(),
            AcpConfig::new(acp_base)
                .platform(AcpPlatform::new("acp-agent", &key("ACP_AGENT_KEY"))?),
        )?;
        Ok((ucp, acp))
    })();
    let (ucp, acp) = match built {
        Ok(both) => both,
        Err(error) => {
            tracing::warn!(%error, "the agentic protocols are not served");
            return shop;
        }
    };
    match cartwright::relay::Relay::new(
        engine.clone(),
        vec![ucp.webhook_sink(), acp.webhook_sink()],
    ) {
        Ok(relay) => {
            tokio::spawn(relay.run(Duration::from_secs(1)));
        }
        Err(error) => tracing::warn!(%error, "agent order webhooks are not sent"),
    }
    let profile = ucp.profile();
    shop.route(
        "/.well-known/ucp",
        axum::routing::get(move || {
            let profile = profile.clone();
            async move { axum::Json(profile) }
        }),
    )
    .nest("/ucp", ucp.router())
    .nest("/acp", acp.router())
}

/// Product images uploaded in the back office, with the cache headers a
/// key that never changes allows.
async fn media(
    engine: &Engine,
    key: &str,
    headers: &axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    match engine.media(key).await {
        Ok(image) => {
            let etag = image.etag();
            let cached = headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v.as_bytes() == etag.as_bytes());
            let meta = [
                (
                    header::CACHE_CONTROL,
                    cartwright::media::CACHE_CONTROL.to_owned(),
                ),
                (header::ETAG, etag),
                (header::CONTENT_TYPE, image.content_type.to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            ];
            if cached {
                (StatusCode::NOT_MODIFIED, meta).into_response()
            } else {
                (meta, image.bytes).into_response()
            }
        }
        Err(Error::Invalid { .. } | Error::NotFound { .. }) => {
            StatusCode::NOT_FOUND.into_response()
        }
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// The back office, with the `admin` feature: `cartwright::admin` under
/// `/admin`, for the staff accounts the engine keeps (an owner is made at
/// start: `owner@shop.example` with the staff password).
#[cfg(feature = "admin")]
fn back_office(shop: axum::Router, engine: &Engine, secure: bool) -> axum::Router {
    use cartwright::admin::{AdminConfig, admin_router};
    shop.nest(
        "/admin",
        admin_router(
            engine.clone(),
            AdminConfig::new("/admin")
                .secure_cookies(secure)
                .shop_name("Cartwright shop"),
        ),
    )
}

/// Without the `admin` feature there is no back office.
#[cfg(not(feature = "admin"))]
fn back_office(shop: axum::Router, _engine: &Engine, _secure: bool) -> axum::Router {
    shop
}

/// The built-in roles and an owner account, once.
#[cfg(feature = "admin")]
async fn seed_staff(engine: &Engine, password: &str) -> Result<()> {
    engine
        .install_builtin_roles(&Actor::System, &[Money::parse("100.00", Currency::USD)?])
        .await?;
    let owner =
        cartwright::engine::staff::NewStaff::new(OWNER_EMAIL, "Owner", password, &["owner"]);
    match engine.create_staff(&Actor::System, owner).await {
        Ok(_) | Err(Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The owner's sign-in for the back office.
pub const OWNER_EMAIL: &str = "owner@shop.example";

/// Without the protocols' features the shop serves people only.
#[cfg(not(all(feature = "ucp", feature = "acp")))]
fn agents(shop: axum::Router, _engine: &Engine, _base: &str) -> axum::Router {
    shop
}
