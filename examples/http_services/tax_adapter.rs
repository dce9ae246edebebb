//! A tax service reached over HTTP: the template to copy when connecting
//! a real one (Avalara, TaxJar, Stripe Tax). Everything service-specific
//! is in this file; the engine sees only the `TaxProvider` port.
//!
//! The jobs every tax adapter has, and how this one does them:
//!
//! 1. **Money**: amounts travel as integer minor units with the ISO code;
//!    answers are converted back exactly (the engine then checks them:
//!    one tax per line, the cart's currency, not negative).
//! 2. **Only what tax needs**: places, not people (`TaxAddress` carries no
//!    name or phone); the customer's exemption and tax id.
//! 3. **Idempotency**: commits, adjustments and voids send the engine's
//!    key as `Idempotency-Key`, so a retry after a lost answer is answered
//!    by the service, never recorded twice.
//! 4. **Errors**: 5xx, connection failures and timeouts are
//!    `Error::ServiceUnavailable` (the engine retries, or falls back to
//!    tables where the shop chose it); 4xx is a refusal, reported in the
//!    adapter's words, never the service's text.
#![allow(dead_code)]

use std::time::Duration;

use async_trait::async_trait;
use cartwright::error::{Error, Result};
use cartwright::money::Money;
use cartwright::tax::{
    TaxAdjustmentRequest, TaxBreakdown, TaxCommitRequest, TaxCommitted, TaxLine, TaxProvider,
    TaxQuoteRequest,
};
use serde::Deserialize;

use crate::client::JsonClient;
use serde_json::json;

/// A tax service reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpTax {
    http: JsonClient,
}

#[derive(Debug, Deserialize)]
struct WireQuote {
    lines: Vec<i64>,
    shipping: i64,
    taxes: Vec<WireTax>,
}

#[derive(Debug, Deserialize)]
struct WireTax {
    name: String,
    rate: String,
    amount: i64,
}

#[derive(Debug, Deserialize)]
struct WireDocument {
    id: String,
}

fn minor(m: &Money) -> Result<i64> {
    i64::try_from(m.to_minor()?).map_err(|_| Error::Overflow("amount"))
}

impl HttpTax {
    /// The service at `base_url`, called with `api_key`, each call bounded
    /// by `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<Self> {
        Ok(Self {
            http: JsonClient::new("tax provider", base_url, api_key, timeout)?,
        })
    }
}

#[async_trait]
impl TaxProvider for HttpTax {
    fn name(&self) -> &str {
        "httptax"
    }

    async fn quote(&self, r: &TaxQuoteRequest) -> Result<TaxBreakdown> {
        let lines = r
            .lines
            .iter()
            .map(|l| {
                Ok(json!({
                    "ref": l.line_id.to_string(),
                    "tax_code": l.tax_code,
                    "quantity": l.quantity,
                    "amount": minor(&l.amount)?,
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        let place = |a: &cartwright::tax::TaxAddress| {
            json!({
                "line1": a.line1, "city": a.city, "region": a.region,
                "postal_code": a.postal_code, "country": a.country.as_str(),
            })
        };
        let body = json!({
            "currency": r.currency.code(),
            "lines": lines,
            "shipping": r.shipping.as_ref().map(minor).transpose()?,
            "ship_to": r.ship_to.as_ref().map(place),
            "ship_from": r.ship_from.as_ref().map(place),
            "exemption": r.customer.exemption,
            "tax_id": r.customer.tax_id,
        });
        let wire: WireQuote = self.http.post("/v1/quotes", None, body).await?;
        let money = |m: i64| Money::from_minor(m, r.currency);
        let taxes =
            wire.taxes
                .into_iter()
                .map(|t| {
                    let rate = t.rate.parse().map_err(|_| {
                        Error::invalid("tax provider", "a rate that is not a number")
                    })?;
                    Ok(TaxLine::new(t.name, rate, money(t.amount)))
                })
                .collect::<Result<Vec<_>>>()?;
        Ok(TaxBreakdown::new(
            wire.lines.into_iter().map(money).collect(),
            money(wire.shipping),
        )
        .with_summary(taxes))
    }

    async fn commit(&self, r: &TaxCommitRequest) -> Result<TaxCommitted> {
        let body = json!({
            "order": r.order_id.to_string(),
            "currency": r.quote.currency.code(),
            "tax": minor(&r.tax_total)?,
            "date": r.at.to_rfc3339(),
        });
        let doc: WireDocument = self
            .http
            .post("/v1/transactions", Some(&r.key), body)
            .await?;
        Ok(TaxCommitted::new(doc.id))
    }

    async fn void(&self, key: &str, reference: &str) -> Result<()> {
        self.http
            .post::<serde_json::Value>(
                &format!("/v1/transactions/{reference}/void"),
                Some(key),
                json!({}),
            )
            .await
            .map(drop)
    }

    async fn adjust(&self, r: &TaxAdjustmentRequest) -> Result<()> {
        let body = json!({
            "amount": minor(&r.amount)?,
            "tax": minor(&r.tax)?,
            "reason": r.reason,
        });
        self.http
            .post::<serde_json::Value>(
                &format!("/v1/transactions/{}/adjustments", r.reference),
                Some(&r.key),
                body,
            )
            .await
            .map(drop)
    }
}
