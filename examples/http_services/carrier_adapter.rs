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

use crate::client::JsonClient;
use serde_json::json;

/// A carrier reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpCarrier {
    http: JsonClient,
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

impl HttpCarrier {
    /// The carrier at `base_url`, called with `api_key`, each call bounded
    /// by `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<Self> {
        Ok(Self {
            http: JsonClient::new("carrier", base_url, api_key, timeout)?,
        })
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
        let wire: Vec<WireRate> = self.http.post("/v1/rates", None, body).await?;
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
        let wire: WireLabel = self.http.post("/v1/labels", Some(&r.key), body).await?;
        let currency = cartwright::money::Currency::from_code(&wire.currency)?;
        Ok(Label::new(
            wire.id,
            wire.tracking_number,
            Money::from_minor(wire.cost, currency),
            wire.url,
        ))
    }

    async fn void_label(&self, key: &str, label: &str) -> Result<()> {
        self.http
            .post::<serde_json::Value>(&format!("/v1/labels/{label}/void"), Some(key), json!({}))
            .await
            .map(drop)
    }
}
