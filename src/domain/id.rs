//! Typed identifiers.
//!
//! Each entity has its own id type, so a `ProductId` can never be passed where
//! a `VariantId` is expected. Ids are UUID version 7: time-ordered, so they
//! index well, and generated without coordination between application
//! instances.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An id or key that does not parse: the field and why. It converts into
/// [`Error::Invalid`](crate::Error::Invalid) with the same field and
/// reason. Its own type keeps this module at the bottom of the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
#[non_exhaustive]
pub struct InvalidId {
    /// What was being parsed ("product", "idempotency key", ...).
    pub field: &'static str,
    /// Why it was rejected.
    pub reason: String,
}

impl InvalidId {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

type Result<T> = std::result::Result<T, InvalidId>;

macro_rules! typed_id {
    ($(#[$doc:meta] $name:ident => $entity:literal;)*) => {$(
        #[$doc]
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            schemars::JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (for example one read from a database).
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($entity, "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|e| InvalidId::new($entity, e.to_string()))
            }
        }
    )*};
}

typed_id! {
    /// Identifies a [`Product`](crate::catalog::Product).
    ProductId => "product";
    /// Identifies a [`Promotion`](crate::pricing::Promotion).
    PromotionId => "promotion";
    /// Identifies a [`PriceList`](crate::pricing::PriceList).
    PriceListId => "price list";
    /// Identifies a [`Variant`](crate::catalog::Variant).
    VariantId => "variant";
    /// Identifies a [`Category`](crate::catalog::Category).
    CategoryId => "category";
    /// Identifies a [`Collection`](crate::catalog::Collection).
    CollectionId => "collection";
    /// Identifies a [`Customer`](crate::customer::Customer).
    CustomerId => "customer";
    /// Identifies a [`CustomerGroup`](crate::customer::CustomerGroup).
    CustomerGroupId => "customer group";
    /// Identifies an [`Address`](crate::customer::Address) in an address book.
    AddressId => "address";
    /// Identifies a [`Cart`](crate::cart::Cart).
    CartId => "cart";
    /// Identifies a [`LineItem`](crate::cart::LineItem) within a cart.
    LineId => "line";
    /// Identifies a stock [`Location`](crate::inventory::Location).
    LocationId => "location";
    /// Identifies a stock [`Reservation`](crate::inventory::Reservation).
    ReservationId => "reservation";
    /// Identifies an [`Order`](crate::order::Order).
    OrderId => "order";
    /// Identifies a [`Shipment`](crate::order::Shipment).
    ShipmentId => "shipment";
    /// Identifies a [`Return`](crate::order::Return).
    ReturnId => "return";
    /// Identifies a [`ReturnCase`](crate::order::ReturnCase) (a return request).
    ReturnCaseId => "return request";
    /// Identifies a [`LineCancellation`](crate::order::LineCancellation).
    LineCancellationId => "line cancellation";
    /// Identifies a [`Claim`](crate::order::Claim).
    ClaimId => "claim";
    /// Identifies a [`Charge`](crate::order::Charge).
    ChargeId => "charge";
    /// Identifies an [`Exchange`](crate::order::Exchange).
    ExchangeId => "exchange";
    /// Identifies an [`OrderEdit`](crate::order::OrderEdit).
    OrderEditId => "order edit";
    /// Identifies a [`Payment`](crate::payment::Payment).
    PaymentId => "payment";
    /// Identifies a [`Note`](crate::note::Note).
    NoteId => "note";
    /// Identifies an [`Event`](crate::store::Event).
    EventId => "event";
    /// Identifies a [`GiftCard`](crate::giftcard::GiftCard) (or a customer's store credit).
    GiftCardId => "gift card";
    /// Identifies a [`SalesChannel`](crate::channel::SalesChannel).
    ChannelId => "sales channel";
    /// Identifies a [`WebhookSubscription`](crate::webhook::WebhookSubscription).
    WebhookId => "webhook";
    /// Identifies an [`AgentSession`](crate::agent::AgentSession).
    AgentSessionId => "agent session";
    /// Identifies a [`StaffMember`](crate::staff::StaffMember).
    StaffId => "staff member";
}

/// A caller-chosen key that makes a request safe to retry: the same key always
/// gets the same outcome.
///
/// 1 to 255 visible ASCII characters (no spaces or control characters).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The longest key accepted.
    pub const MAX_LEN: usize = 255;

    /// Validates and wraps a key.
    ///
    /// # Errors
    /// [`InvalidId`] for an empty key, one longer than the maximum, or one
    /// with other than visible ASCII characters.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        if key.is_empty() || key.len() > Self::MAX_LEN {
            return Err(InvalidId::new(
                "idempotency key",
                format!("must be 1 to {} characters", Self::MAX_LEN),
            ));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidId::new(
                "idempotency key",
                "must be visible ASCII characters without spaces",
            ));
        }
        Ok(Self(key))
    }

    /// A fresh random key.
    pub fn random() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_parse_back() {
        let a = ProductId::new();
        let b = ProductId::new();
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<ProductId>().unwrap(), a);
        assert!("nope".parse::<ProductId>().is_err());
    }

    #[test]
    fn idempotency_keys_are_validated() {
        assert!(IdempotencyKey::new("order-123").is_ok());
        assert!(IdempotencyKey::new("").is_err());
        assert!(IdempotencyKey::new("has space").is_err());
        assert!(IdempotencyKey::new("x".repeat(256)).is_err());
    }
}
