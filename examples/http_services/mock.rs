//! A mock tax service and a mock carrier on one local port, so the HTTP
//! templates run end to end without the internet. They keep what real
//! services keep: documents and labels by idempotency key, one answer per
//! key; and they fail on demand (`down`) with 503.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// What the mocks hold.
#[derive(Default)]
pub struct Books {
    /// Tax documents: id → (tax, voided, adjustments by key).
    pub documents: HashMap<String, (i64, bool, HashMap<String, i64>)>,
    /// Commits by idempotency key → document id.
    pub commits: HashMap<String, String>,
    /// Labels by idempotency key → the label as answered.
    pub labels: HashMap<String, Value>,
    /// Voided labels.
    pub voided: Vec<String>,
    /// Quotes and rate requests answered.
    pub quotes: u64,
    pub rates: u64,
    /// While set, every call answers 503.
    pub down: bool,
}

/// The mocks' state, shared with the example and its tests.
pub type Shared = Arc<Mutex<Books>>;

const API_KEY: &str = "sk_test_services";

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {API_KEY}"))
}

fn key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn guard(books: &Shared, headers: &HeaderMap) -> Option<Response> {
    if books.lock().down {
        return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    if !authorized(headers) {
        return Some(StatusCode::UNAUTHORIZED.into_response());
    }
    None
}

/// Sales tax by state, in basis points: New York 8.88 %, California
/// 7.25 %, elsewhere 5 %; none for an exemption; shipping taxed alike.
fn rate_bp(region: &str) -> i64 {
    match region {
        "NY" => 888,
        "CA" => 725,
        _ => 500,
    }
}

async fn quote(
    State(books): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refusal) = guard(&books, &headers) {
        return refusal;
    }
    let region = body
        .pointer("/ship_to/region")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if body.pointer("/ship_to/postal_code").and_then(Value::as_str) == Some("00000") {
        return (StatusCode::UNPROCESSABLE_ENTITY, "address not found").into_response();
    }
    let bp = if body.get("exemption").is_some_and(Value::is_string) {
        0
    } else {
        rate_bp(region)
    };
    let tax = |amount: i64| (amount * bp + 5_000) / 10_000;
    let lines: Vec<i64> = body
        .get("lines")
        .and_then(Value::as_array)
        .map(|ls| {
            ls.iter()
                .map(|l| tax(l.get("amount").and_then(Value::as_i64).unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let shipping = tax(body.get("shipping").and_then(Value::as_i64).unwrap_or(0));
    let total: i64 = lines.iter().sum::<i64>() + shipping;
    books.lock().quotes += 1;
    let taxes = if total == 0 {
        json!([])
    } else {
        json!([{"name": format!("Sales tax {region}"), "rate": format!("{}", bp as f64 / 10_000.0), "amount": total}])
    };
    Json(json!({"lines": lines, "shipping": shipping, "taxes": taxes})).into_response()
}

async fn commit(
    State(books): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refusal) = guard(&books, &headers) {
        return refusal;
    }
    let Some(k) = key(&headers) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut b = books.lock();
    let id = match b.commits.get(&k) {
        Some(id) => id.clone(),
        None => {
            let id = format!("tx_{}", b.commits.len() + 1);
            b.commits.insert(k, id.clone());
            let tax = body.get("tax").and_then(Value::as_i64).unwrap_or(0);
            b.documents.insert(id.clone(), (tax, false, HashMap::new()));
            id
        }
    };
    Json(json!({"id": id})).into_response()
}

async fn void(State(books): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refusal) = guard(&books, &headers) {
        return refusal;
    }
    match books.lock().documents.get_mut(&id) {
        Some(doc) => {
            doc.1 = true;
            StatusCode::OK.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn adjust(
    State(books): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refusal) = guard(&books, &headers) {
        return refusal;
    }
    let Some(k) = key(&headers) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match books.lock().documents.get_mut(&id) {
        Some(doc) if !doc.1 => {
            doc.2
                .entry(k)
                .or_insert(body.get("tax").and_then(Value::as_i64).unwrap_or(0));
            StatusCode::OK.into_response()
        }
        Some(_) => (StatusCode::CONFLICT, "voided").into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Ground: 5.00 plus 1.50 a kilogram begun; air twice that.
async fn rates(
    State(books): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refusal) = guard(&books, &headers) {
        return refusal;
    }
    let kilos = body
        .get("weight_grams")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .div_euclid(1000)
        + 1;
    let ground = 500 + 150 * kilos;
    books.lock().rates += 1;
    Json(json!([
        {"service": "ground", "name": "Mock Ground", "price": ground},
        {"service": "air", "name": "Mock Air", "price": ground * 2},
    ]))
    .into_response()
}

async fn label(
    State(books): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refusal) = guard(&books, &headers) {
        return refusal;
    }
    let Some(k) = key(&headers) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if body
        .pointer("/to/name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "a label needs a recipient",
        )
            .into_response();
    }
    let mut b = books.lock();
    let n = b.labels.len() + 1;
    let label = b
        .labels
        .entry(k)
        .or_insert_with(|| {
            json!({
                "id": format!("lbl_{n}"),
                "tracking_number": format!("MOCK{n:010}"),
                "cost": 650,
                "currency": "USD",
                "url": format!("https://labels.mock/lbl_{n}.pdf"),
                "reference": body.get("reference").cloned().unwrap_or(Value::Null),
            })
        })
        .clone();
    Json(label).into_response()
}

async fn void_label(
    State(books): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = guard(&books, &headers) {
        return refusal;
    }
    let mut b = books.lock();
    if b.labels
        .values()
        .any(|l| l.get("id").and_then(Value::as_str) == Some(id.as_str()))
    {
        if !b.voided.contains(&id) {
            b.voided.push(id);
        }
        StatusCode::OK.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// Starts both mocks on a local port; their base URL, API key and state.
pub async fn start() -> std::io::Result<(String, &'static str, Shared)> {
    let books: Shared = Arc::default();
    let app = Router::new()
        .route("/v1/quotes", post(quote))
        .route("/v1/transactions", post(commit))
        .route("/v1/transactions/{id}/void", post(void))
        .route("/v1/transactions/{id}/adjustments", post(adjust))
        .route("/v1/rates", post(rates))
        .route("/v1/labels", post(label))
        .route("/v1/labels/{id}/void", post(void_label))
        .with_state(books.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, API_KEY, books))
}
