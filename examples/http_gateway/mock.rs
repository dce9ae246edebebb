//! A stand-in for a card gateway's HTTP API, small enough to read: the
//! server the adapter in `adapter.rs` talks to in the example and in
//! `tests/http_gateway.rs`. It behaves like the real thing where it
//! matters to an adapter: an API key, idempotency keys (a replay answers
//! the first response; the same key with other parameters is refused),
//! declines as HTTP 402, 3-D Secure as `requires_action` with a redirect,
//! and webhooks signed with HMAC-SHA256 (`cartwright::payment::webhook`).
//! Faults can be planned: the next calls answer 503, or stall.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// One payment as the gateway keeps it.
#[derive(Debug, Clone)]
pub struct MockPayment {
    pub id: String,
    pub idempotency_key: String,
    pub amount: i64,
    pub currency: String,
    pub captured: i64,
    pub refunded: i64,
    /// `authorized`, `requires_action`, `canceled` or `failed`.
    pub status: String,
    pub sale: bool,
}

impl MockPayment {
    fn json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "status": if self.status == "authorized" && self.captured > 0 { "captured" } else { self.status.as_str() },
            "amount": self.amount,
            "currency": self.currency,
            "captured": self.captured,
            "refunded": self.refunded,
        });
        if self.status == "requires_action"
            && let Some(fields) = v.as_object_mut()
        {
            fields.insert(
                "next_action".into(),
                json!({
                    "type": "redirect",
                    "url": format!("https://bank.example/3ds/{}", self.id),
                }),
            );
        }
        v
    }
}

#[derive(Default)]
struct Inner {
    payments: Vec<MockPayment>,
    /// Idempotency key → (fingerprint, status, body).
    replies: HashMap<String, (String, u16, Value)>,
    fail_next: u32,
    stall_next: Option<Duration>,
    events: u64,
}

#[derive(Clone)]
struct Mock {
    inner: Arc<Mutex<Inner>>,
    api_key: String,
    webhook_secret: Vec<u8>,
    webhook_url: Option<String>,
}

/// A running mock gateway.
pub struct MockGateway {
    /// Where it listens: `http://127.0.0.1:<port>`.
    pub base_url: String,
    mock: Mock,
}

impl MockGateway {
    /// Starts a gateway on a free local port, accepting `api_key`, signing
    /// webhooks with `webhook_secret` and posting them to `webhook_url`.
    ///
    /// # Errors
    /// When no local port can be bound.
    pub async fn start(
        api_key: &str,
        webhook_secret: &[u8],
        webhook_url: Option<String>,
    ) -> std::io::Result<Self> {
        let mock = Mock {
            inner: Arc::default(),
            api_key: api_key.to_owned(),
            webhook_secret: webhook_secret.to_vec(),
            webhook_url,
        };
        let app = Router::new()
            .route("/v1/payments", post(create).get(find))
            .route("/v1/payments/{id}/capture", post(capture))
            .route("/v1/payments/{id}/cancel", post(cancel))
            .route("/v1/payments/{id}/refunds", post(refund))
            .route("/test/payments/{id}/authenticate", post(authenticate))
            .route("/health", get(|| async { "ok" }))
            .with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            mock,
        })
    }

    /// The next `n` API calls answer 503 before doing anything.
    pub fn fail_next(&self, n: u32) {
        self.mock.inner.lock().fail_next = n;
    }

    /// The next API call does its work, then stalls for `delay` before it
    /// answers (longer than the adapter's timeout: the answer is lost).
    pub fn stall_next(&self, delay: Duration) {
        self.mock.inner.lock().stall_next = Some(delay);
    }

    /// Every payment, in order.
    pub fn payments(&self) -> Vec<MockPayment> {
        self.mock.inner.lock().payments.clone()
    }
}

type Reply = (StatusCode, Json<Value>);

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
}

/// The checks and the idempotency every API call shares; `work` runs once
/// per idempotency key.
async fn api(
    mock: &Mock,
    headers: &HeaderMap,
    fingerprint: String,
    work: impl FnOnce(&mut Inner) -> Reply,
) -> Reply {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", mock.api_key));
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "bad API key");
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (reply, stall) = {
        let mut inner = mock.inner.lock();
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again");
        }
        let stall = inner.stall_next.take();
        let reply = match key.as_ref().and_then(|k| inner.replies.get(k).cloned()) {
            Some((seen, status, body)) if seen == fingerprint => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                Json(body),
            ),
            Some(_) => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "the key was used with other parameters",
            ),
            None => {
                let (status, Json(body)) = work(&mut inner);
                // Answers are remembered, refusals of bad requests are not.
                if let Some(k) = key
                    && (status.is_success() || status == StatusCode::PAYMENT_REQUIRED)
                {
                    inner
                        .replies
                        .insert(k, (fingerprint, status.as_u16(), body.clone()));
                }
                (status, Json(body))
            }
        };
        (reply, stall)
    };
    if let Some(delay) = stall {
        tokio::time::sleep(delay).await;
    }
    reply
}

#[derive(Deserialize)]
struct Create {
    amount: i64,
    currency: String,
    token: String,
    #[serde(default)]
    capture: bool,
}

async fn create(State(mock): State<Mock>, headers: HeaderMap, Json(body): Json<Create>) -> Reply {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let fingerprint = format!(
        "create:{}:{}:{}:{}",
        body.amount, body.currency, body.token, body.capture
    );
    api(&mock, &headers, fingerprint, |inner| {
        if body.amount <= 0 {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_amount",
                "amount must be positive",
            );
        }
        if body.token == "tok_decline" {
            return error(
                StatusCode::PAYMENT_REQUIRED,
                "card_declined",
                "Your card was declined.",
            );
        }
        let three_ds = body.token == "tok_3ds";
        let payment = MockPayment {
            id: format!("pay_{}", inner.payments.len() + 1),
            idempotency_key: key,
            amount: body.amount,
            currency: body.currency.clone(),
            captured: if body.capture && !three_ds {
                body.amount
            } else {
                0
            },
            refunded: 0,
            status: if three_ds {
                "requires_action"
            } else {
                "authorized"
            }
            .to_owned(),
            sale: body.capture,
        };
        let reply = payment.json();
        inner.payments.push(payment);
        (StatusCode::OK, Json(reply))
    })
    .await
}

#[derive(Deserialize)]
struct FindQuery {
    idempotency_key: String,
}

async fn find(State(mock): State<Mock>, headers: HeaderMap, Query(q): Query<FindQuery>) -> Reply {
    // A read: no idempotency key, never remembered.
    let mut headers = headers;
    headers.remove("idempotency-key");
    api(&mock, &headers, String::new(), |inner| {
        match inner
            .payments
            .iter()
            .find(|p| p.idempotency_key == q.idempotency_key)
        {
            Some(p) => (StatusCode::OK, Json(p.json())),
            None => error(StatusCode::NOT_FOUND, "not_found", "no such payment"),
        }
    })
    .await
}

#[derive(Deserialize)]
struct AmountBody {
    amount: i64,
}

fn payment<'a>(inner: &'a mut Inner, id: &str) -> Result<&'a mut MockPayment, Reply> {
    inner
        .payments
        .iter_mut()
        .find(|p| p.id == id)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "not_found", "no such payment"))
}

async fn capture(
    State(mock): State<Mock>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<AmountBody>,
) -> Reply {
    api(
        &mock,
        &headers,
        format!("capture:{id}:{}", body.amount),
        |inner| {
            let p = match payment(inner, &id) {
                Ok(p) => p,
                Err(e) => return e,
            };
            if p.status != "authorized" || body.amount <= 0 || p.captured + body.amount > p.amount {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_capture",
                    "cannot capture that",
                );
            }
            p.captured += body.amount;
            (StatusCode::OK, Json(p.json()))
        },
    )
    .await
}

async fn cancel(State(mock): State<Mock>, Path(id): Path<String>, headers: HeaderMap) -> Reply {
    api(&mock, &headers, format!("cancel:{id}"), |inner| {
        let p = match payment(inner, &id) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if p.captured > 0 {
            return error(
                StatusCode::BAD_REQUEST,
                "already_captured",
                "refund it instead",
            );
        }
        p.status = "canceled".into();
        (StatusCode::OK, Json(p.json()))
    })
    .await
}

async fn refund(
    State(mock): State<Mock>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<AmountBody>,
) -> Reply {
    api(
        &mock,
        &headers,
        format!("refund:{id}:{}", body.amount),
        |inner| {
            let p = match payment(inner, &id) {
                Ok(p) => p,
                Err(e) => return e,
            };
            if body.amount <= 0 || p.refunded + body.amount > p.captured {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_refund",
                    "cannot refund that",
                );
            }
            p.refunded += body.amount;
            (StatusCode::OK, Json(p.json()))
        },
    )
    .await
}

#[derive(Deserialize)]
struct Authenticate {
    succeed: bool,
}

/// The customer at the bank's 3-D Secure page (not part of the API an
/// adapter uses): the payment is authorized (or collected, for a sale) or
/// fails, and the gateway sends its signed webhook. Answers the event and
/// its signature header, as delivered.
async fn authenticate(
    State(mock): State<Mock>,
    Path(id): Path<String>,
    Json(body): Json<Authenticate>,
) -> Reply {
    let event = {
        let mut inner = mock.inner.lock();
        inner.events += 1;
        let n = inner.events;
        let p = match payment(&mut inner, &id) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if p.status != "requires_action" {
            return error(
                StatusCode::BAD_REQUEST,
                "no_action",
                "nothing to authenticate",
            );
        }
        let kind = if !body.succeed {
            p.status = "failed".into();
            "payment.failed"
        } else if p.sale {
            p.status = "authorized".into();
            p.captured = p.amount;
            "payment.captured"
        } else {
            p.status = "authorized".into();
            "payment.authorized"
        };
        json!({"id": format!("evt_{n}"), "type": kind, "payment": p.json()})
    };
    let raw = event.to_string();
    let now = chrono::Utc::now().timestamp();
    let signature = cartwright::payment::webhook::sign(&mock.webhook_secret, now, raw.as_bytes())
        .unwrap_or_default();
    if let Some(url) = &mock.webhook_url {
        let _ = reqwest::Client::new()
            .post(url)
            .header("gateway-signature", &signature)
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await;
    }
    (
        StatusCode::OK,
        Json(json!({"event": raw, "signature": signature})),
    )
}
