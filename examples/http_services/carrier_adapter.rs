//! A carrier reached over HTTP: the template to copy when connecting a
//! real one (UPS, DHL, EasyPost, Shippo). Everything carrier-specific is
//! in this file; the engine sees only the `Carrier` port.
//!
//! The same jobs as the tax template (`tax_adapter.rs`): money as minor
//! units; places for rates, the recipient only on a label; the engine's
//! key as `Idempotency-Key` on label purchases and voids; 5xx, failures
//! and timeouts as `Error::ServiceUnavailable`, 4xx as a refusal in the
//! adapter's words. Rate codes are prefixed with the carrier's name, so
//! they never clash with the shop's table rates.
#![allow(dead_code)]

use std::time::Duration;

use async_trait::async_trait;
use cartwright::error::{Error, Result};
use cartwright::money::Money;
use cartwright::shipping::{Carrier, Label, LabelRequest, RateRequest, ShippingRate};
use serde::Deserialize;
use serde_json::json;

/// A carrier reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpCarrier {
    base_url: String,
    api_key: String,
    client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct WireRate {
    service: String,
    name: String,
    price: i64,
}

#[derive(Debug, Deserialize)]
struct WireLabel {
    id: String,
    tracking_number: String,
    cost: i64,
    currency: String,
    url: String,
}

fn unavailable(why: impl std::fmt::Display) -> Error {
    Error::ServiceUnavailable {
        service: "carrier",
        reason: why.to_string(),
    }
}

impl HttpCarrier {
    /// The carrier at `base_url`, called with `api_key`, each call bounded
    /// by `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| unavailable(format!("client: {e}")))?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            client,
        })
    }

    async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: serde_json::Value,
    ) -> Result<reqwest::Response> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        if status.is_server_error() {
            return Err(unavailable(format!("the carrier answered {status}")));
        }
        if status.is_client_error() {
            return Err(Error::invalid(
                "carrier",
                format!("the carrier refused the request ({status})"),
            ));
        }
        Ok(response)
    }
}

#[async_trait]
impl Carrier for HttpCarrier {
    fn name(&self) -> &str {
        "httpship"
    }

    async fn rates(&self, r: &RateRequest) -> Result<Vec<ShippingRate>> {
        let place = |a: &cartwright::tax::TaxAddress| json!({"postal_code": a.postal_code, "region": a.region, "country": a.country.as_str()});
        let body = json!({
            "currency": r.currency.code(),
            "weight_grams": r.weight_grams,
            "parcel_mm": r.parcel_mm,
            "value": i64::try_from(r.value.to_minor()?).map_err(|_| Error::Overflow("value"))?,
            "from": r.origin.as_ref().map(place),
            "to": r.destination.as_ref().map(place),
        });
        let wire: Vec<WireRate> = self
            .post("/v1/rates", None, body)
            .await?
            .json()
            .await
            .map_err(|_| Error::invalid("carrier", "an answer that is not a list of rates"))?;
        Ok(wire
            .into_iter()
            .map(|w| {
                ShippingRate::new(
                    format!("httpship:{}", w.service),
                    w.name,
                    Money::from_minor(w.price, r.currency),
                )
            })
            .collect())
    }

    async fn purchase_label(&self, r: &LabelRequest) -> Result<Label> {
        let service = r.method.strip_prefix("httpship:").unwrap_or(&r.method);
        let to = r.destination.as_ref().map(|a| {
            json!({
                "name": a.name, "line1": a.line1, "line2": a.line2, "city": a.city,
                "region": a.region, "postal_code": a.postal_code,
                "country": a.country.as_str(), "phone": a.phone,
            })
        });
        let body = json!({
            "service": service,
            "reference": r.reference,
            "weight_grams": r.weight_grams,
            "to": to,
        });
        let wire: WireLabel = self
            .post("/v1/labels", Some(&r.key), body)
            .await?
            .json()
            .await
            .map_err(|_| Error::invalid("carrier", "an answer that is not a label"))?;
        let currency = cartwright::money::Currency::from_code(&wire.currency)?;
        Ok(Label::new(
            wire.id,
            wire.tracking_number,
            Money::from_minor(wire.cost, currency),
            wire.url,
        ))
    }

    async fn void_label(&self, key: &str, label: &str) -> Result<()> {
        self.post(&format!("/v1/labels/{label}/void"), Some(key), json!({}))
            .await
            .map(drop)
    }
}
