//! The tax service port: [`TaxProvider`], for tax computed by a service
//! (Avalara, TaxJar, Stripe Tax, a shop's own) rather than a table.
//!
//! Pricing stays pure: the engine asks the provider for a quote *before*
//! pricing — with the whole context, in a [`TaxQuoteRequest`] — caches the
//! answer by the request's [fingerprint](TaxQuoteRequest::fingerprint),
//! and hands it to pricing as data. Pricing an unchanged cart asks
//! nothing; a change of address, lines, amounts or customer asks again.
//!
//! After the sale the provider keeps the books of tax: a document is
//! [committed](TaxProvider::commit) for every placed order,
//! [voided](TaxProvider::void) when the order is cancelled and
//! [adjusted](TaxProvider::adjust) as money moves after it (refunds,
//! added lines, a new shipping method). Each call is recorded on the order
//! first and sent under its own idempotency key — the protocol money moves
//! follow — so a retry, a crash between the steps or two engines settle it
//! exactly once, and recovery finishes a call whose answer never came.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{TaxBreakdown, TaxInput};
use crate::customer::Address;
use crate::error::{Error, Result};
use crate::id::{ChannelId, CustomerGroupId, CustomerId, LineId, OrderId, VariantId};
use crate::money::{Currency, Money};

/// An address as tax sees it: where, not who (no name, phone or id, so
/// a request carries no more personal data than tax needs, and equal
/// places quote alike).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaxAddress {
    /// First address line.
    pub line1: String,
    /// Second address line.
    pub line2: String,
    /// City or town.
    pub city: String,
    /// State, province or region, upper-case (may be empty).
    pub region: String,
    /// Postal code.
    pub postal_code: String,
    /// Country.
    pub country: crate::customer::Country,
}

impl From<&Address> for TaxAddress {
    fn from(a: &Address) -> Self {
        Self {
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country,
        }
    }
}

impl TaxAddress {
    /// The place as an [`Address`] with no recipient (to hand to a
    /// [`TaxCalculator`](super::TaxCalculator)).
    pub fn to_address(&self) -> Address {
        Address {
            id: crate::id::AddressId::from_uuid(uuid::Uuid::nil()),
            name: String::new(),
            line1: self.line1.clone(),
            line2: self.line2.clone(),
            city: self.city.clone(),
            region: self.region.clone(),
            postal_code: self.postal_code.clone(),
            country: self.country,
            phone: String::new(),
            reference: String::new(),
        }
    }
}

/// Who buys, as tax sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaxCustomer {
    /// The account, when signed in.
    pub id: Option<CustomerId>,
    /// Its groups (a "wholesale" group may be exempt).
    pub groups: Vec<CustomerGroupId>,
    /// Its exemption certificate, if it has one.
    pub exemption: Option<String>,
    /// Its tax id or VAT number, if it gave one.
    pub tax_id: Option<String>,
}

impl TaxCustomer {
    /// The customer as tax sees them: groups, exemption, tax id.
    pub fn of(customer: &crate::customer::Customer) -> Self {
        Self {
            id: Some(customer.id()),
            groups: customer.groups().iter().copied().collect(),
            exemption: Some(customer.tax_exemption().to_owned()).filter(|e| !e.is_empty()),
            tax_id: Some(customer.tax_id().to_owned()).filter(|t| !t.is_empty()),
        }
    }
}

/// One line to quote: what it is and what it costs after discounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuoteLine {
    /// The cart or order line.
    pub line_id: LineId,
    /// The variant.
    pub variant_id: VariantId,
    /// Its product tax code (the variant's tax class).
    pub tax_code: String,
    /// Units.
    pub quantity: u32,
    /// The amount after discounts (tax included when prices include it).
    pub amount: Money,
}

/// What a tax service is asked: every fact tax may depend on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaxQuoteRequest {
    /// The currency of every amount.
    pub currency: Currency,
    /// The lines.
    pub lines: Vec<QuoteLine>,
    /// The shipping charges together, after their discounts.
    pub shipping: Option<Money>,
    /// Where the goods go (or the billing address).
    pub ship_to: Option<TaxAddress>,
    /// Where they ship from, when the shop set an origin.
    pub ship_from: Option<TaxAddress>,
    /// Who buys.
    pub customer: TaxCustomer,
    /// The sales channel.
    pub channel: Option<ChannelId>,
}

impl TaxQuoteRequest {
    /// The request for a calculator's `input` (the same facts, owned).
    pub fn from_input(input: &TaxInput<'_>) -> Self {
        Self {
            currency: input.currency,
            lines: input
                .lines
                .iter()
                .map(|l| QuoteLine {
                    line_id: l.line_id,
                    variant_id: l.variant_id,
                    tax_code: l.tax_class.to_owned(),
                    quantity: l.quantity,
                    amount: l.amount,
                })
                .collect(),
            shipping: input.shipping,
            ship_to: input.address.map(TaxAddress::from),
            ship_from: input.ship_from.map(TaxAddress::from),
            customer: input.customer.cloned().unwrap_or_default(),
            channel: input.channel,
        }
    }

    /// A digest of every fact in the request (SHA-256 of its canonical
    /// JSON, hex): equal requests have equal fingerprints. The engine's
    /// quote cache is keyed by it, and it is a natural idempotency key
    /// for a provider that wants one.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(json))
    }

    /// Checks a provider's answer to this request: one tax per line, in
    /// the request's currency, exact and not negative.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong (`"tax provider"`);
    /// [`Error::CurrencyMismatch`].
    pub fn check_answer(&self, answer: &TaxBreakdown) -> Result<()> {
        if answer.lines.len() != self.lines.len() {
            return Err(Error::invalid(
                "tax provider",
                format!(
                    "answered {} lines for {} asked",
                    answer.lines.len(),
                    self.lines.len()
                ),
            ));
        }
        for tax in answer
            .lines
            .iter()
            .chain(std::iter::once(&answer.shipping))
            .chain(answer.summary.iter().map(|t| &t.amount))
        {
            if tax.currency() != self.currency {
                return Err(Error::CurrencyMismatch {
                    left: self.currency,
                    right: tax.currency(),
                });
            }
            if tax.is_negative() {
                return Err(Error::invalid("tax provider", "answered a negative tax"));
            }
            tax.entered()?;
        }
        Ok(())
    }
}

/// A placed order's tax, to commit as a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaxCommitRequest {
    /// The idempotency key: the same key commits one document.
    pub key: String,
    /// The order.
    pub order_id: OrderId,
    /// The lines, shipping, addresses and customer, as quoted.
    pub quote: TaxQuoteRequest,
    /// The tax charged on each line, in order.
    pub line_tax: Vec<Money>,
    /// The tax charged on shipping.
    pub shipping_tax: Money,
    /// The order's total tax.
    pub tax_total: Money,
    /// When the order was placed.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A committed document: the provider's reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaxCommitted {
    /// The provider's id for the document.
    pub reference: String,
}

impl TaxCommitted {
    /// A document known by `reference`.
    pub fn new(reference: impl Into<String>) -> Self {
        Self {
            reference: reference.into(),
        }
    }
}

/// A change to a committed document as money moves after the sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaxAdjustmentRequest {
    /// The idempotency key: the same key adjusts once.
    pub key: String,
    /// The document's reference.
    pub reference: String,
    /// The money that moved, tax included: negative for money given back,
    /// positive for money added.
    pub amount: Money,
    /// Of which tax (same sign).
    pub tax: Money,
    /// Why ("refund", "lines added", "shipping method").
    pub reason: String,
}

/// A tax service. Implementations must honour idempotency keys the way
/// real services do: a repeated key returns the first call's outcome and
/// has no further effect. A failure to reach the service is
/// [`Error::Unavailable`](crate::error::Error) or a timeout (the engine
/// retries later); any other error is a refusal.
#[async_trait]
pub trait TaxProvider: Send + Sync {
    /// A short stable name recorded on orders ("avalara", "test").
    fn name(&self) -> &str;

    /// Tax for each line and for shipping. Called before pricing; the
    /// answer is checked ([`TaxQuoteRequest::check_answer`]) and cached.
    ///
    /// # Errors
    /// The service's: unreachable, or a refusal of the request (an address
    /// it cannot tax, say).
    async fn quote(&self, request: &TaxQuoteRequest) -> Result<TaxBreakdown>;

    /// Commits a placed order's tax as a document.
    ///
    /// # Errors
    /// As [`quote`](Self::quote).
    async fn commit(&self, request: &TaxCommitRequest) -> Result<TaxCommitted>;

    /// Voids a committed document (the order was cancelled). `key` is the
    /// call's idempotency key.
    ///
    /// # Errors
    /// As [`quote`](Self::quote).
    async fn void(&self, key: &str, reference: &str) -> Result<()>;

    /// Adjusts a committed document.
    ///
    /// # Errors
    /// As [`quote`](Self::quote).
    async fn adjust(&self, request: &TaxAdjustmentRequest) -> Result<()>;
}
