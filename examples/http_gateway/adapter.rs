//! A payment provider adapter that talks HTTP to a gateway: the template
//! to copy when connecting a real one. Everything gateway-specific is in
//! this file; the engine sees only the `PaymentProvider` port.
//!
//! The jobs every adapter has, and how this one does them:
//!
//! 1. **Money**: cartwright's exact `Money` becomes integer minor units and
//!    an ISO code; answers are converted back and checked (a currency or
//!    amount the adapter did not expect is an error, never rounded).
//! 2. **Idempotency**: the engine's key goes in the `Idempotency-Key`
//!    header of every call that moves money, so a retry after a lost answer
//!    is answered by the gateway, never charged twice.
//! 3. **Errors**: 402 is a decline (final); 404 not found; other 4xx an
//!    invalid request; 5xx, connection failures and timeouts are
//!    retryable — a timeout as `PaymentError::Timeout`, because the call
//!    may have taken effect.
//! 4. **Customer actions**: `requires_action` with a redirect becomes
//!    `ProviderStatus::RequiresAction` and a `CustomerAction`.
//! 5. **Webhooks**: [`HttpGateway::parse_webhook`] checks the HMAC
//!    signature over the raw body (with a timestamp tolerance against
//!    replays) before turning the gateway's event into a `ProviderEvent`.
//!
//! For a real gateway, enable a TLS feature of `reqwest` (`rustls-tls`),
//! keep the API key and webhook secret out of the code, and map that
//! gateway's statuses and error codes here.
#![allow(dead_code)]

use std::time::Duration;

use async_trait::async_trait;
use cartwright::money::{Currency, Money};
use cartwright::payment::{
    AuthorizeRequest, CaptureRequest, CustomerAction, PaymentError, PaymentProvider, ProviderEvent,
    ProviderEventKind, ProviderResponse, ProviderStatus, RefundRequest, VoidRequest,
};
use serde::Deserialize;
use serde_json::json;

/// A gateway reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    name: String,
    base_url: String,
    api_key: String,
    client: reqwest::Client,
}

/// A payment as the gateway answers it.
#[derive(Debug, Deserialize)]
struct Wire {
    id: String,
    status: String,
    amount: i64,
    currency: String,
    captured: i64,
    refunded: i64,
    next_action: Option<NextAction>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum NextAction {
    Redirect { url: String },
    UseSdk { client_secret: String },
}

#[derive(Debug, Deserialize)]
struct WireError {
    error: WireErrorBody,
}

#[derive(Debug, Deserialize)]
struct WireErrorBody {
    code: String,
    message: String,
}

/// A gateway's webhook body.
#[derive(Debug, Deserialize)]
struct WireEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    payment: Wire,
}

fn minor(amount: Money) -> Result<i64, PaymentError> {
    amount
        .to_minor()
        .ok()
        .and_then(|m| i64::try_from(m).ok())
        .ok_or_else(|| PaymentError::Invalid(format!("{amount} is not in minor units")))
}

fn money(minor: i64, code: &str, expected: Currency) -> Result<Money, PaymentError> {
    let currency = Currency::from_code(&code.to_uppercase())
        .map_err(|_| PaymentError::Unavailable(format!("the gateway answered currency {code}")))?;
    if currency != expected {
        return Err(PaymentError::Unavailable(format!(
            "the gateway answered in {currency}, not {expected}"
        )));
    }
    Ok(Money::from_minor(minor, currency))
}

impl Wire {
    /// The answer as the engine reads it, about `amount` of this call.
    fn response(self, amount: Money) -> Result<ProviderResponse, PaymentError> {
        let currency = amount.currency();
        let status = match self.status.as_str() {
            "authorized" => ProviderStatus::Authorized,
            "captured" => ProviderStatus::Captured,
            "requires_action" => ProviderStatus::RequiresAction,
            "processing" => ProviderStatus::Processing,
            "canceled" => ProviderStatus::Voided,
            "failed" => ProviderStatus::Failed,
            other => {
                return Err(PaymentError::Unavailable(format!(
                    "the gateway answered status {other}"
                )));
            }
        };
        let captured = money(self.captured, &self.currency, currency)?;
        let refunded = money(self.refunded, &self.currency, currency)?;
        let mut response = ProviderResponse::new(self.id, status, amount)
            .with_totals(Some(captured), Some(refunded));
        if let Some(action) = self.next_action {
            response = response.with_action(match action {
                NextAction::Redirect { url } => CustomerAction::Redirect { url },
                NextAction::UseSdk { client_secret } => CustomerAction::ClientData {
                    data: client_secret,
                },
            });
        }
        Ok(response)
    }
}

impl HttpGateway {
    /// A gateway at `base_url`, registered in the engine as `name`, calling
    /// with `api_key` and giving up on an answer after `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        name: &str,
        base_url: &str,
        api_key: &str,
        timeout: Duration,
    ) -> Result<Self, PaymentError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| PaymentError::Unavailable(e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            client,
        })
    }

    /// Sends one call; `key` goes in the `Idempotency-Key` header.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        key: Option<&str>,
    ) -> Result<Wire, PaymentError> {
        let mut request = request.bearer_auth(&self.api_key);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let answer = request.send().await.map_err(|e| {
            if e.is_timeout() {
                PaymentError::Timeout
            } else {
                PaymentError::Unavailable("the gateway could not be reached".into())
            }
        })?;
        let status = answer.status();
        let body = answer.bytes().await.map_err(|e| {
            if e.is_timeout() {
                PaymentError::Timeout
            } else {
                PaymentError::Unavailable("the gateway's answer was cut off".into())
            }
        })?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|_| {
                PaymentError::Unavailable("the gateway's answer is not a payment".into())
            });
        }
        let error = serde_json::from_slice::<WireError>(&body).ok();
        let (code, message) = error
            .map(|e| (e.error.code, e.error.message))
            .unwrap_or_else(|| ("unknown".into(), status.to_string()));
        Err(match status.as_u16() {
            402 => PaymentError::Declined { code, message },
            404 => PaymentError::NotFound,
            500..=599 => PaymentError::Unavailable(format!("the gateway answered {status}")),
            _ => PaymentError::Invalid(format!("{code}: {message}")),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Checks a webhook's signature (header `gateway-signature`) over the
    /// raw `body`, then reads the gateway's event as a [`ProviderEvent`]
    /// for [`Engine::apply_provider_event`](cartwright::Engine::apply_provider_event)
    /// with `Actor::Provider(<this gateway's name>)`.
    ///
    /// # Errors
    /// `cartwright::Error::Invalid` for a bad signature, a stale timestamp or
    /// a body that is not one of the gateway's events.
    pub fn parse_webhook(
        secret: &[u8],
        signature: &str,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> cartwright::Result<ProviderEvent> {
        cartwright::payment::webhook::verify(
            secret,
            signature,
            body,
            now,
            chrono::Duration::seconds(cartwright::payment::webhook::DEFAULT_TOLERANCE_SECS),
        )?;
        let event: WireEvent = serde_json::from_slice(body)
            .map_err(|_| cartwright::Error::invalid("webhook body", "not a gateway event"))?;
        let currency = Currency::from_code(&event.payment.currency.to_uppercase())?;
        let kind = match event.kind.as_str() {
            "payment.authorized" => ProviderEventKind::Authorized,
            "payment.captured" => ProviderEventKind::Captured {
                captured_total: Money::from_minor(event.payment.captured, currency),
            },
            "payment.refunded" => ProviderEventKind::Refunded {
                refunded_total: Money::from_minor(event.payment.refunded, currency),
            },
            "payment.failed" => ProviderEventKind::Failed {
                reason: "the customer did not complete the payment".into(),
            },
            other => {
                return Err(cartwright::Error::invalid(
                    "webhook type",
                    format!(
                        "{} is not handled",
                        other.chars().take(64).collect::<String>()
                    ),
                ));
            }
        };
        Ok(ProviderEvent::new(event.id, event.payment.id, kind))
    }
}

#[async_trait]
impl PaymentProvider for HttpGateway {
    fn name(&self) -> &str {
        &self.name
    }

    async fn authorize(&self, r: AuthorizeRequest) -> Result<ProviderResponse, PaymentError> {
        let body = json!({
            "amount": minor(r.amount)?,
            "currency": r.amount.currency().code(),
            "token": r.payment_token,
            "capture": r.capture,
            "reference": r.reference,
        });
        let request = self.client.post(self.url("/v1/payments")).json(&body);
        self.send(request, Some(&r.idempotency_key))
            .await?
            .response(r.amount)
    }

    async fn capture(&self, r: CaptureRequest) -> Result<ProviderResponse, PaymentError> {
        let path = format!("/v1/payments/{}/capture", r.authorization);
        let request = self
            .client
            .post(self.url(&path))
            .json(&json!({ "amount": minor(r.amount)? }));
        self.send(request, Some(&r.idempotency_key))
            .await?
            .response(r.amount)
    }

    async fn void(&self, r: VoidRequest) -> Result<ProviderResponse, PaymentError> {
        let path = format!("/v1/payments/{}/cancel", r.authorization);
        let wire = self
            .send(self.client.post(self.url(&path)), Some(&r.idempotency_key))
            .await?;
        let currency = Currency::from_code(&wire.currency.to_uppercase())
            .map_err(|_| PaymentError::Unavailable("unknown currency".into()))?;
        let amount = Money::from_minor(wire.amount, currency);
        wire.response(amount)
    }

    async fn refund(&self, r: RefundRequest) -> Result<ProviderResponse, PaymentError> {
        let path = format!("/v1/payments/{}/refunds", r.authorization);
        let request = self
            .client
            .post(self.url(&path))
            .json(&json!({ "amount": minor(r.amount)? }));
        let mut response = self
            .send(request, Some(&r.idempotency_key))
            .await?
            .response(r.amount)?;
        response.status = ProviderStatus::Refunded;
        Ok(response)
    }

    async fn find_authorization(
        &self,
        authorize_key: &str,
    ) -> Result<Option<ProviderResponse>, PaymentError> {
        let request = self
            .client
            .get(self.url("/v1/payments"))
            .query(&[("idempotency_key", authorize_key)]);
        let wire = match self.send(request, None).await {
            Ok(wire) => wire,
            Err(PaymentError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let currency = Currency::from_code(&wire.currency.to_uppercase())
            .map_err(|_| PaymentError::Unavailable("unknown currency".into()))?;
        let amount = Money::from_minor(wire.amount, currency);
        wire.response(amount).map(Some)
    }
}
