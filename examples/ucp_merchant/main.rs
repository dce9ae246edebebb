//! A UCP merchant: the conformance suite's flower shop on cartwright.
//!
//! Loads the suite's `flower_shop` CSV data (products, stock, customers and
//! their addresses, discount codes, free-shipping promotions, shipping
//! rates) into the engine — again at every start, so stock and addresses
//! begin from the files — and serves the Universal Commerce Protocol
//! (`cartwright::agentic::ucp`) with order webhooks through the relay.
//!
//! ```text
//! cargo run --example ucp_merchant --features ucp            # memory store
//! DATABASE_URL=postgres://… cargo run --example ucp_merchant --features ucp,postgres
//! ../shared/ucp/run.sh http://127.0.0.1:8182 "$UCP_SIMULATION_SECRET"
//! ```
//!
//! | variable | default |
//! |---|---|
//! | `UCP_MERCHANT_ADDR` | `127.0.0.1:8182` |
//! | `UCP_DATA_DIR` | `../shared/ucp/conformance/test_data/flower_shop` |
//! | `UCP_SIMULATION_SECRET` | `super-secret-sim-key` |
//! | `DATABASE_URL` | unset: the memory store |
//! | `UCP_MERCHANT_SMOKE` | unset; when set, answer one request and stop (CI) |
//!
//! The suite's agents do not authenticate, so every caller is the platform
//! `conformance-agent` ([`UcpConfig::trust_every_agent`]); the suite expects
//! a buyer's saved addresses by e-mail ([`AddressBook::ByEmail`]) and
//! orders to destinations given only as a country, so this example allows
//! both — a real shop keeps the secure defaults. `POST
//! /testing/simulate-shipping/{order}` (behind the `Simulation-Secret`
//! header) ships an order, as the suite's webhook test needs; it belongs to
//! this example only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cartwright::agentic::CredentialHandler;
use cartwright::agentic::ucp::{AddressBook, UcpConfig, UcpMerchant};
use cartwright::agents::AgentPayment;
use cartwright::catalog::{NewProduct, NewVariant, Status};
use cartwright::customer::NewAddress;
use cartwright::fulfillment::ShipmentRequest;
use cartwright::money::{Currency, Money};
use cartwright::payment::TestPaymentProvider;
use cartwright::pricing::{Action, Condition, LineFilter, Op, Promotion, Reward};
use cartwright::shipping::{ShippingInput, ShippingRate, ShippingRates};
use cartwright::store::{MemoryStore, Store};
use cartwright::webhook::WebhookPolicy;
use cartwright::{Actor, Engine, EngineConfig, Error, Result};
use rust_decimal::Decimal;

/// The suite's shipping rates: for each service level, the row for the
/// destination's country, else the `default` row.
struct CsvRates {
    rows: Vec<RateRow>,
}

struct RateRow {
    id: String,
    country: String,
    level: String,
    price: i64,
    title: String,
}

impl ShippingRates for CsvRates {
    fn rates(&self, input: &ShippingInput<'_>) -> Result<Vec<ShippingRate>> {
        let Some(country) = input.destination.map(|a| a.country.as_str().to_owned()) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<ShippingRate> = Vec::new();
        let mut levels: Vec<&str> = Vec::new();
        for row in &self.rows {
            if !levels.contains(&row.level.as_str()) {
                levels.push(&row.level);
            }
        }
        for level in levels {
            let of_level = || self.rows.iter().filter(move |r| r.level == level);
            let row = of_level()
                .find(|r| r.country == country)
                .or_else(|| of_level().find(|r| r.country == "default"));
            if let Some(r) = row {
                out.push(ShippingRate::new(
                    &r.id,
                    &r.title,
                    Money::from_minor(r.price, input.currency),
                ));
            }
        }
        Ok(out)
    }
}

/// The suite's `mock_payment_handler`: `success_token` pays, `fail_token`
/// is declined, and a card is "tokenized" at a simulated vault (the card
/// number never reaches the engine).
struct MockHandler;

impl CredentialHandler for MockHandler {
    fn payment(&self, _handler: &str, credential: &serde_json::Value) -> Result<AgentPayment> {
        let kind = credential
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("");
        let token = match (kind, credential.get("token").and_then(|t| t.as_str())) {
            ("card", _) => "tok_visa",
            (_, Some("fail_token")) => "tok_decline",
            (_, Some(_)) => "tok_visa",
            _ => return Err(Error::invalid("credential", "a token or a card is needed")),
        };
        Ok(AgentPayment::new(token).method(Some("card".to_owned())))
    }
}

fn csv_rows(dir: &Path, file: &str) -> Result<Vec<csv::StringRecord>> {
    let path = dir.join(file);
    let mut reader = csv::Reader::from_path(&path)
        .map_err(|e| Error::invalid("data file", format!("{}: {e}", path.display())))?;
    reader
        .records()
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid("data file", format!("{}: {e}", path.display())))
}

fn field(row: &csv::StringRecord, i: usize) -> String {
    row.get(i).unwrap_or_default().trim().to_owned()
}

fn amount(row: &csv::StringRecord, i: usize) -> Result<i64> {
    field(row, i)
        .parse()
        .map_err(|_| Error::invalid("amount", field(row, i)))
}

/// Loads (or reloads) the flower shop.
async fn load(engine: &Engine, dir: &Path) -> Result<()> {
    let system = Actor::System;
    let usd = Currency::USD;
    let stock: Vec<(String, i64)> = csv_rows(dir, "inventory.csv")?
        .iter()
        .map(|r| Ok((field(r, 0), amount(r, 1)?)))
        .collect::<Result<_>>()?;
    let mut warehouse = None;
    let mut roses = None;
    for row in csv_rows(dir, "products.csv")? {
        let (sku, title, price) = (field(&row, 0), field(&row, 1), amount(&row, 2)?);
        let variant = match engine.variant_by_sku(&sku).await {
            Ok(entry) => entry.variant.id(),
            Err(Error::NotFound { .. }) => {
                let product = engine
                    .create_product(
                        &system,
                        NewProduct::new(title.as_str())
                            .status(Status::Active)
                            .variants(vec![
                                NewVariant::shipped(sku.as_str())
                                    .prices(vec![Money::from_minor(price, usd)])
                                    .status(Status::Active),
                            ]),
                    )
                    .await?;
                product
                    .variants()
                    .first()
                    .map(|v| v.id())
                    .ok_or_else(|| Error::invalid("product", "no variant"))?
            }
            Err(e) => return Err(e),
        };
        if sku == "bouquet_roses" {
            roses = Some(variant);
        }
        let location = match warehouse {
            Some(l) => l,
            None => {
                let found = engine
                    .stock(variant)
                    .await?
                    .levels
                    .first()
                    .map(|l| l.location_id);
                let l = match found {
                    Some(l) => l,
                    None => engine
                        .create_location(&system, "Flower shop", 0)
                        .await?
                        .id(),
                };
                warehouse = Some(l);
                l
            }
        };
        let on_hand = stock.iter().find(|(s, _)| *s == sku).map_or(0, |s| s.1);
        engine
            .set_stock(&system, variant, location, on_hand)
            .await?;
    }
    // Codes and promotions are loaded once: a second start finds them.
    let existing = engine.promotions(&system).await?;
    let has = |name: &str| existing.iter().any(|p| p.name == name);
    for row in csv_rows(dir, "discounts.csv")? {
        let (code, kind, value, title) = (
            field(&row, 0),
            field(&row, 1),
            amount(&row, 2)?,
            field(&row, 3),
        );
        if has(&title) {
            continue;
        }
        let action = match kind.as_str() {
            "percentage" => Action::PercentOffOrder {
                percent: Decimal::from(value),
                max_discount: None,
            },
            _ => Action::AmountOffOrder {
                amount: Money::from_minor(value, usd),
            },
        };
        let promotion = engine
            .save_promotion(&system, Promotion::new(&title, action).coded())
            .await?;
        engine
            .create_coupon(&system, promotion.id, &code, None)
            .await?;
    }
    let free_standard = || Action::Shipping {
        reward: Reward::Percent {
            percent: Decimal::ONE_HUNDRED,
        },
        methods: vec!["std-ship".into()],
    };
    for row in csv_rows(dir, "promotions.csv")? {
        let title = field(&row, 4);
        if has(&title) {
            continue;
        }
        let condition = if !field(&row, 2).is_empty() {
            Condition::Subtotal {
                op: Op::Gte,
                amount: Money::from_minor(amount(&row, 2)?, usd),
            }
        } else {
            let items: Vec<String> = serde_json::from_str(&field(&row, 3)).unwrap_or_default();
            let mut ids = Vec::new();
            for sku in items {
                if let Ok(entry) = engine.variant_by_sku(&sku).await {
                    ids.push(entry.variant.id());
                }
            }
            if ids.is_empty() {
                ids.extend(roses);
            }
            Condition::Lines {
                filter: LineFilter::Variant { op: Op::In, ids },
                min_quantity: 1,
            }
        };
        engine
            .save_promotion(
                &system,
                Promotion::new(&title, free_standard()).when(condition),
            )
            .await?;
    }
    let addresses = csv_rows(dir, "addresses.csv")?;
    for row in csv_rows(dir, "customers.csv")? {
        let (id, name, email) = (field(&row, 0), field(&row, 1), field(&row, 2));
        let customer = engine.guest(&email).await?;
        for a in addresses.iter().filter(|a| field(a, 1) == id) {
            let reference = field(a, 0);
            if customer
                .addresses()
                .iter()
                .any(|s| s.reference == reference)
            {
                continue;
            }
            let address = NewAddress::new(
                name.as_str(),
                field(a, 2),
                field(a, 3),
                field(a, 5),
                field(a, 6),
            )
            .region(field(a, 4))
            .reference(reference);
            engine.add_address(&system, customer.id(), address).await?;
        }
    }
    Ok(())
}

async fn engine(data: &Path) -> Result<Engine> {
    let rates = csv_rows(data, "shipping_rates.csv")?
        .iter()
        .map(|r| {
            Ok(RateRow {
                id: field(r, 0),
                country: field(r, 1),
                level: field(r, 2),
                price: amount(r, 3)?,
                title: field(r, 4),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let store: Arc<dyn Store> = match std::env::var("DATABASE_URL").ok() {
        #[cfg(feature = "postgres")]
        Some(url) => Arc::new(cartwright::store::PgStore::connect(&url).await?),
        #[cfg(not(feature = "postgres"))]
        Some(_) => {
            return Err(Error::invalid(
                "DATABASE_URL",
                "build with --features postgres to use PostgreSQL",
            ));
        }
        None => Arc::new(MemoryStore::new()),
    };
    // The suite's agent profile and webhook receiver listen on loopback.
    let local = ["127.0.0.0/8".parse(), "::1/128".parse()]
        .into_iter()
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::invalid("network", "loopback"))?;
    let policy = WebhookPolicy::default()
        .allow_http(true)
        .allowed_networks(local);
    Engine::builder()
        .store(store)
        .payment_provider(Arc::new(TestPaymentProvider::named("mock_payment_handler")))
        .shipping(Arc::new(CsvRates { rows: rates }))
        .no_tax()
        .config(EngineConfig::default().webhook_policy(policy))
        .build()
}

fn handlers() -> Vec<serde_json::Value> {
    let handler = |id: &str, name: &str, config: serde_json::Value| {
        serde_json::json!({
            "id": id,
            "name": name,
            "version": "2026-01-11",
            "spec": "https://ucp.dev/specification/payment-handler",
            "config_schema": "https://ucp.dev/schemas/payment-handler-config.json",
            "instrument_schemas": ["https://ucp.dev/schemas/shopping/types/card_payment_instrument.json"],
            "config": config,
        })
    };
    vec![
        handler(
            "shop_pay",
            "com.shopify.shop_pay",
            serde_json::json!({"shop_id": "c0cadcca-4558-4e24-b65f-f87781ebe194"}),
        ),
        handler(
            "google_pay",
            "google.pay",
            serde_json::json!({"merchant_name": "Flower Shop"}),
        ),
        handler(
            "mock_payment_handler",
            "dev.ucp.mock_payment",
            serde_json::json!({"supported_tokens": ["success_token", "fail_token"]}),
        ),
    ]
}

#[derive(Clone)]
struct Simulation {
    engine: Engine,
    secret: String,
}

/// Ships every unit of an order, as the suite's webhook test asks.
async fn simulate_shipping(
    State(sim): State<Simulation>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    use subtle::ConstantTimeEq;
    let given = headers
        .get("simulation-secret")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if given.is_empty() || !bool::from(given.as_bytes().ct_eq(sim.secret.as_bytes())) {
        return (StatusCode::FORBIDDEN, r#"{"detail":"forbidden"}"#.into());
    }
    let Ok(order_id) = id.parse() else {
        return (
            StatusCode::NOT_FOUND,
            r#"{"detail":"no such order"}"#.into(),
        );
    };
    let system = Actor::System;
    let order = match sim.engine.order(&system, order_id).await {
        Ok(o) => o,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                r#"{"detail":"no such order"}"#.into(),
            );
        }
    };
    let request = ShipmentRequest::new(order.left_to_ship())
        .carrier("Mock Carrier")
        .tracking_number(format!("TRACK-{}", order_id.as_uuid().simple()));
    match sim.engine.ship(&system, order_id, request).await {
        Ok(_) => (StatusCode::OK, r#"{"status":"shipped"}"#.into()),
        Err(e) => (
            StatusCode::CONFLICT,
            serde_json::json!({"detail": e.to_string()}).to_string(),
        ),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let addr = std::env::var("UCP_MERCHANT_ADDR").unwrap_or_else(|_| "127.0.0.1:8182".into());
    // Beside the project by default; a clone elsewhere on this machine
    // finds the suite's data at /work/shared.
    let data = match std::env::var("UCP_DATA_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => ["../shared", "/work/shared"]
            .iter()
            .map(|root| PathBuf::from(root).join("ucp/conformance/test_data/flower_shop"))
            .find(|d| d.is_dir())
            .unwrap_or_else(|| PathBuf::from("../shared/ucp/conformance/test_data/flower_shop")),
    };
    let secret =
        std::env::var("UCP_SIMULATION_SECRET").unwrap_or_else(|_| "super-secret-sim-key".into());
    let engine = engine(&data).await?;
    load(&engine, &data).await?;
    let base = format!("http://{addr}/")
        .parse()
        .map_err(|_| Error::invalid("UCP_MERCHANT_ADDR", addr.clone()))?;
    let mut config = UcpConfig::new(base)
        .trust_every_agent("conformance-agent")
        .credentials(Arc::new(MockHandler))
        .address_book(AddressBook::ByEmail)
        .require_street_address(false)
        .link("terms_of_service", &format!("http://{addr}/terms"));
    for h in handlers() {
        config = config.handler(h);
    }
    let merchant = UcpMerchant::new(engine.clone(), config)?;
    // The conformance suite's agents listen for webhooks only while their
    // own test runs, all on one port: a delivery refused after a test ended
    // would be retried into a later test's server, where a test waiting
    // for "an event" takes another test's (even a retry after a second or
    // two lands there). This demo parks an event at its first refusal
    // (`replay_delivery` sends it again); a shop keeps the default
    // schedule of retries over hours.
    let mut relay_config = cartwright::relay::RelayConfig::default();
    relay_config.retry_schedule = Vec::new();
    let relay = cartwright::relay::Relay::new(engine.clone(), vec![merchant.webhook_sink()])?
        .with_config(relay_config)?;
    tokio::spawn(relay.run(Duration::from_millis(100)));
    let sim = Simulation {
        engine: engine.clone(),
        secret,
    };
    let app = merchant.router().merge(
        axum::Router::new()
            .route("/testing/simulate-shipping/{id}", post(simulate_shipping))
            .with_state(sim),
    );
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| Error::invalid("UCP_MERCHANT_ADDR", format!("{addr}: {e}")))?;
    println!("UCP merchant listening on http://{addr}/");
    if std::env::var_os("UCP_MERCHANT_SMOKE").is_some() {
        // CI: serve, answer one discovery request, stop.
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let profile: serde_json::Value = reqwest::get(format!("http://{addr}/.well-known/ucp"))
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Error::invalid("smoke request", e.to_string()))?
            .json()
            .await
            .map_err(|e| Error::invalid("smoke request", e.to_string()))?;
        server.abort();
        println!(
            "profile version {}",
            profile.pointer("/ucp/version").cloned().unwrap_or_default()
        );
        return Ok(());
    }
    axum::serve(listener, app)
        .await
        .map_err(|e| Error::invalid("server", e.to_string()))
}
