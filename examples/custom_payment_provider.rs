//! Plugging in your own payment gateway.
//!
//! `AcmePay` stands in for a real gateway's HTTP API (kept in-process so the
//! example runs offline). The adapter shows the three jobs every provider
//! adapter has:
//!
//! 1. convert cartwright's exact `Money` into the gateway's format (here:
//!    integer minor units and a lower-case currency code);
//! 2. pass the idempotency key through, so retries never charge twice;
//! 3. map the gateway's answers onto `PaymentError`: a decline is final,
//!    a 5xx or timeout is retryable.
//!
//! Run with `cargo run --example custom_payment_provider`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cartwright::money::Money;
use cartwright::payment::{
    AuthorizeRequest, CaptureRequest, PaymentError, PaymentProvider, ProviderResponse,
    ProviderStatus, RefundRequest, VoidRequest,
};
use cartwright::prelude::*;

// ---- the gateway's side (what would be behind HTTPS) ----------------------

#[derive(Clone, Debug)]
struct AcmeCharge {
    id: String,
    amount_minor: i64,
    currency: String,
    captured_minor: i64,
    state: &'static str,
}

#[derive(Debug)]
enum AcmeHttpError {
    /// HTTP 402 with a decline code.
    PaymentRequired(String),
    /// HTTP 404.
    NotFound,
    /// HTTP 400.
    BadRequest(String),
}

#[derive(Default)]
struct AcmeApi {
    charges: Mutex<HashMap<String, AcmeCharge>>,
    by_idempotency_key: Mutex<HashMap<String, String>>,
}

impl AcmeApi {
    fn create_charge(
        &self,
        key: &str,
        amount_minor: i64,
        currency: &str,
        card: &str,
    ) -> Result<AcmeCharge, AcmeHttpError> {
        let mut keys = self
            .by_idempotency_key
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut charges = self.charges.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = keys.get(key) {
            return charges.get(id).cloned().ok_or(AcmeHttpError::NotFound);
        }
        if card.ends_with("0002") {
            return Err(AcmeHttpError::PaymentRequired("do_not_honor".into()));
        }
        let charge = AcmeCharge {
            id: format!("ch_{}", charges.len() + 1),
            amount_minor,
            currency: currency.into(),
            captured_minor: 0,
            state: "requires_capture",
        };
        keys.insert(key.into(), charge.id.clone());
        charges.insert(charge.id.clone(), charge.clone());
        Ok(charge)
    }

    fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut AcmeCharge) -> Result<(), AcmeHttpError>,
    ) -> Result<AcmeCharge, AcmeHttpError> {
        let mut charges = self.charges.lock().unwrap_or_else(|e| e.into_inner());
        let charge = charges.get_mut(id).ok_or(AcmeHttpError::NotFound)?;
        f(charge)?;
        Ok(charge.clone())
    }

    fn find_by_key(&self, key: &str) -> Option<AcmeCharge> {
        let keys = self
            .by_idempotency_key
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let charges = self.charges.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(key).and_then(|id| charges.get(id)).cloned()
    }
}

// ---- the adapter: cartwright's PaymentProvider for AcmePay --------------

struct AcmePay {
    api: AcmeApi,
}

/// `Money` → the gateway's integer minor units and currency code.
fn to_acme(amount: &Money) -> Result<(i64, String), PaymentError> {
    let minor = amount
        .to_minor()
        .map_err(|e| PaymentError::Invalid(e.to_string()))?;
    let minor =
        i64::try_from(minor).map_err(|_| PaymentError::Invalid("amount too large".into()))?;
    Ok((minor, amount.currency().code().to_lowercase()))
}

/// The gateway's charge → cartwright's response.
fn from_acme(charge: &AcmeCharge, amount: Money) -> ProviderResponse {
    let status = match charge.state {
        "requires_capture" => ProviderStatus::Authorized,
        "canceled" => ProviderStatus::Voided,
        "refunded" => ProviderStatus::Refunded,
        _ => ProviderStatus::Captured,
    };
    let currency = amount.currency();
    // AcmePay reports what was captured so far; cartwright reconciles on it.
    ProviderResponse::new(charge.id.clone(), status, amount).with_totals(
        Some(Money::from_minor(charge.captured_minor, currency)),
        None,
    )
}

fn map_error(e: AcmeHttpError) -> PaymentError {
    match e {
        AcmeHttpError::PaymentRequired(code) => PaymentError::Declined {
            message: format!("AcmePay declined the card ({code})"),
            code,
        },
        AcmeHttpError::NotFound => PaymentError::NotFound,
        AcmeHttpError::BadRequest(m) => PaymentError::Invalid(m),
    }
}

#[async_trait]
impl PaymentProvider for AcmePay {
    fn name(&self) -> &str {
        "acmepay"
    }

    async fn authorize(&self, r: AuthorizeRequest) -> Result<ProviderResponse, PaymentError> {
        let (minor, currency) = to_acme(&r.amount)?;
        let charge = self
            .api
            .create_charge(&r.idempotency_key, minor, &currency, &r.payment_token)
            .map_err(map_error)?;
        Ok(from_acme(&charge, r.amount))
    }

    async fn capture(&self, r: CaptureRequest) -> Result<ProviderResponse, PaymentError> {
        let (minor, _) = to_acme(&r.amount)?;
        let charge = self
            .api
            .update(&r.authorization, |c| {
                if c.captured_minor + minor > c.amount_minor {
                    return Err(AcmeHttpError::BadRequest(
                        "amount exceeds authorization".into(),
                    ));
                }
                c.captured_minor += minor;
                c.state = "succeeded";
                Ok(())
            })
            .map_err(map_error)?;
        Ok(from_acme(&charge, r.amount))
    }

    async fn void(&self, r: VoidRequest) -> Result<ProviderResponse, PaymentError> {
        let charge = self
            .api
            .update(&r.authorization, |c| {
                if c.captured_minor > 0 {
                    return Err(AcmeHttpError::BadRequest("charge already captured".into()));
                }
                c.state = "canceled";
                Ok(())
            })
            .map_err(map_error)?;
        let currency = Currency::from_code(&charge.currency)
            .map_err(|e| PaymentError::Invalid(e.to_string()))?;
        Ok(from_acme(
            &charge,
            Money::from_minor(charge.amount_minor, currency),
        ))
    }

    async fn refund(&self, r: RefundRequest) -> Result<ProviderResponse, PaymentError> {
        let charge = self
            .api
            .update(&r.authorization, |c| {
                c.state = "refunded";
                Ok(())
            })
            .map_err(map_error)?;
        Ok(from_acme(&charge, r.amount))
    }

    async fn find_authorization(
        &self,
        key: &str,
    ) -> Result<Option<ProviderResponse>, PaymentError> {
        Ok(self.api.find_by_key(key).and_then(|c| {
            let currency = Currency::from_code(&c.currency).ok()?;
            Some(from_acme(&c, Money::from_minor(c.amount_minor, currency)))
        }))
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let engine = Engine::builder()
        .payment_provider(Arc::new(AcmePay {
            api: AcmeApi::default(),
        }))
        .no_tax()
        .build()?;

    engine
        .create_product(
            &Actor::System,
            NewProduct::new("Field guide (PDF)")
                .status(Status::Active)
                .variants(vec![
                    NewVariant::digital("GUIDE")
                        .prices(vec![Money::parse("9.99", Currency::EUR)?])
                        .inventory(InventoryPolicy::Untracked)
                        .status(Status::Active),
                ]),
        )
        .await?;
    let guide = engine.variant_by_sku("GUIDE").await?.variant.id();

    let guest = Actor::Guest;
    for (card, last4, key) in [
        ("4000000000000002", "0002", "try-1"),
        ("4242424242424242", "4242", "try-2"),
    ] {
        let cart = engine.create_cart(&guest, Currency::EUR).await?;
        engine.add_item(&guest, cart.id(), guide, 1).await?;
        engine
            .set_email(&guest, cart.id(), "reader@example.org")
            .await?;
        let result = engine
            .checkout(CheckoutRequest::new(
                cart.id(),
                IdempotencyKey::new(key)?,
                card,
                guest.clone(),
            ))
            .await;
        match result {
            Ok(CheckoutOutcome { order, .. }) => println!(
                "card …{}: order {} paid {} via {} ({}, {:?})",
                last4,
                order.id(),
                order.total(),
                order.payment().provider(),
                order.payment().reference(),
                order.payment().status()
            ),
            Err(Error::PaymentDeclined { code, message }) => {
                println!("card …{}: declined [{code}] {message}", last4);
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}
