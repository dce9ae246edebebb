//! The carrier port: [`Carrier`], for live rates, labels and tracking from
//! a carrier's service (UPS, DHL, an aggregator such as EasyPost or
//! Shippo, a shop's own).
//!
//! Pricing stays pure: the engine asks each carrier for rates *before*
//! pricing — with a [`RateRequest`] built from what pricing will ask its
//! rate source — caches the answer by the request, and hands it to pricing
//! as data, beside the shop's table rates. An unchanged cart asks nothing.
//!
//! A label is bought for a shipment under the money-path protocol: recorded
//! on the order first with its own idempotency key, then bought, then its
//! answer (tracking number, cost, label URL) recorded; recovery finishes a
//! purchase whose answer never came. Tracking comes back as
//! [`TrackingEvent`]s the embedding program receives from the carrier
//! (verified with [`verify_tracking`]) and hands to
//! [`Engine::apply_tracking_event`](crate::Engine::apply_tracking_event).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ShippingInput, ShippingRate};
use crate::error::{Error, Result};
use crate::id::{OrderId, ShipmentId};
use crate::money::{Currency, Money};
use crate::tax::TaxAddress;

/// What a carrier is asked for rates: one parcel of the lines that ship.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateRequest {
    /// The currency rates must be in.
    pub currency: Currency,
    /// The merchandise value of what ships.
    pub value: Money,
    /// Its weight, in grams.
    pub weight_grams: u64,
    /// Units that ship.
    pub items: u64,
    /// The smallest box any one unit fits in, longest side first, in
    /// millimetres, when sizes are known.
    #[serde(default)]
    pub parcel_mm: Option<[u32; 3]>,
    /// The units' volume together, in cubic centimetres.
    #[serde(default)]
    pub volume_cm3: u64,
    /// Where from (the shop's origin), when set.
    pub origin: Option<TaxAddress>,
    /// Where to.
    pub destination: Option<TaxAddress>,
}

impl RateRequest {
    /// The request for what pricing asks a rate source, shipped from
    /// `origin`.
    pub fn from_input(
        input: &ShippingInput<'_>,
        origin: Option<&crate::customer::Address>,
    ) -> Self {
        Self {
            currency: input.currency,
            value: input.subtotal,
            weight_grams: input.weight_grams,
            items: input.items,
            parcel_mm: input.parcel_mm,
            volume_cm3: input.volume_cm3,
            origin: origin.map(TaxAddress::from),
            destination: input.destination.map(TaxAddress::from),
        }
    }

    /// Checks a carrier's answer: each rate in the request's currency,
    /// exact, not negative, with a code and a name.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"carrier"`) naming what is wrong;
    /// [`Error::CurrencyMismatch`].
    pub fn check_answer(&self, rates: &[ShippingRate]) -> Result<()> {
        crate::validate::at_most("carrier rates", rates.len(), MAX_CARRIER_RATES)?;
        for (i, rate) in rates.iter().enumerate() {
            if rates.iter().skip(i + 1).any(|r| r.code == rate.code) {
                return Err(Error::invalid(
                    "carrier",
                    format!("answered the rate code {:?} twice", rate.code),
                ));
            }
            if rate.price.currency() != self.currency {
                return Err(Error::CurrencyMismatch {
                    left: self.currency,
                    right: rate.price.currency(),
                });
            }
            rate.price.entered()?;
            if rate.price.is_negative() {
                return Err(Error::invalid("carrier", "answered a negative rate"));
            }
            crate::validate::required_text(
                "carrier rate code",
                &rate.code,
                crate::cart::MAX_METHOD_CODE_LEN,
            )?;
            crate::validate::required_text("carrier rate name", &rate.name, 200)?;
        }
        Ok(())
    }
}

/// Most rates one carrier may answer.
pub const MAX_CARRIER_RATES: usize = 50;

/// A label to buy for a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LabelRequest {
    /// The idempotency key: the same key buys one label.
    pub key: String,
    /// Echoed back on tracking events: `<order>:<shipment>`.
    pub reference: String,
    /// The method (a rate's code).
    pub method: String,
    /// The parcel.
    pub weight_grams: u64,
    /// Where from.
    pub origin: Option<TaxAddress>,
    /// Where to (with the recipient: a label needs a name).
    pub destination: Option<crate::customer::Address>,
}

/// A bought label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Label {
    /// The carrier's id for the label.
    pub id: String,
    /// The tracking number.
    pub tracking_number: String,
    /// What it cost the shop.
    pub cost: Money,
    /// Where to print it.
    pub url: String,
}

impl Label {
    /// A label `id` with its tracking number, cost and URL.
    pub fn new(
        id: impl Into<String>,
        tracking_number: impl Into<String>,
        cost: Money,
        url: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            tracking_number: tracking_number.into(),
            cost,
            url: url.into(),
        }
    }
}

/// Where a parcel is, as its carrier reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TrackingStatus {
    /// On its way.
    InTransit,
    /// Delivered.
    Delivered,
    /// Held up: a failed delivery, damage, an address problem.
    Exception,
}

/// A carrier's report on a parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackingEvent {
    /// The label's reference, `<order>:<shipment>`.
    pub reference: String,
    /// Where the parcel is.
    pub status: TrackingStatus,
    /// The carrier's words (at most 500 characters).
    #[serde(default)]
    pub detail: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

impl TrackingEvent {
    /// A report that the parcel labelled `reference` is `status` since
    /// `at`, with no detail.
    pub fn new(reference: impl Into<String>, status: TrackingStatus, at: DateTime<Utc>) -> Self {
        Self {
            reference: reference.into(),
            status,
            detail: String::new(),
            at,
        }
    }

    /// The same report with the carrier's words.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The order and shipment the event is about.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`"tracking reference"`) when the reference is not
    /// `<order>:<shipment>`; [`Error::LimitExceeded`] for a detail over 500
    /// characters.
    pub fn target(&self) -> Result<(OrderId, ShipmentId)> {
        crate::validate::optional_text("tracking detail", &self.detail, 500)?;
        let bad = || {
            Error::invalid(
                "tracking reference",
                format!(
                    "{:?} is not <order>:<shipment>",
                    self.reference.chars().take(100).collect::<String>()
                ),
            )
        };
        let (order, shipment) = self.reference.split_once(':').ok_or_else(bad)?;
        Ok((
            order.parse().map_err(|_| bad())?,
            shipment.parse().map_err(|_| bad())?,
        ))
    }
}

/// Checks a carrier's signed tracking webhook (`t=<unix>,v1=<hex
/// HMAC-SHA256 of "<t>.<body>">`, the scheme of
/// [`webhook::verify`](crate::webhook::verify)) and reads its event.
///
/// # Errors
/// [`Error::Invalid`] for a bad, old or missing signature (nothing read),
/// or a body that is not a [`TrackingEvent`] as JSON.
pub fn verify_tracking(
    secret: &crate::webhook::WebhookSecret,
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: chrono::Duration,
) -> Result<TrackingEvent> {
    crate::webhook::verify(secret, header, body, now, tolerance)?;
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid("tracking event", format!("not a tracking event: {e}")))
}

/// A carrier's service. Implementations must honour idempotency keys the
/// way real services do. A failure to reach the service is
/// [`Error::ServiceUnavailable`]; any other error is a refusal.
#[async_trait]
pub trait Carrier: Send + Sync {
    /// A short stable name recorded on labels ("ups", "test").
    fn name(&self) -> &str;

    /// Live rates for a parcel. Codes must be unique among every rate the
    /// shop offers (prefix them with the carrier's name).
    ///
    /// # Errors
    /// The service's.
    async fn rates(&self, request: &RateRequest) -> Result<Vec<ShippingRate>>;

    /// Buys a label.
    ///
    /// # Errors
    /// The service's.
    async fn purchase_label(&self, request: &LabelRequest) -> Result<Label>;

    /// Voids a label not yet used (`key` is the call's idempotency key).
    ///
    /// # Errors
    /// The service's.
    async fn void_label(&self, key: &str, label: &str) -> Result<()>;
}
