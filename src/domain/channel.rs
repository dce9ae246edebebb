//! Sales channels: one shop selling through a web store, an app and a
//! marketplace, each with its own assortment, currencies, price lists and
//! stock locations.
//!
//! A cart belongs to at most one channel, chosen when it is created
//! ([`Engine::create_cart_in`](crate::Engine::create_cart_in)); its order
//! keeps it. A cart in no channel (the default) sees everything, as before
//! channels existed. In a channel:
//!
//! - only the channel's products can be added, priced or checked out
//!   ([`Error::NotInChannel`]);
//! - the cart's currency is one of the channel's;
//! - only the channel's price lists apply (all, when it names none);
//! - a promotion can be limited to channels
//!   ([`Condition::SalesChannel`](crate::pricing::Condition::SalesChannel));
//! - stock is reserved only at the channel's locations (all, when it names
//!   none), checked by the store in the same atomic command that reserves.
//!
//! Does not know: carts, pricing or storage beyond the ids it lists.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::id::ChannelId;
use crate::id::{LocationId, PriceListId, ProductId};
use crate::money::Currency;

/// Longest channel name, in characters.
pub const MAX_CHANNEL_NAME_LEN: usize = 100;
/// Most products one channel lists by id (a channel of everything lists none).
pub const MAX_CHANNEL_PRODUCTS: usize = 100_000;
/// Most currencies, price lists or locations one channel names.
pub const MAX_CHANNEL_ITEMS: usize = 100;

/// A sales channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SalesChannel {
    /// Its id.
    pub id: ChannelId,
    /// Its name ("Web store", "iOS app"), unique.
    pub name: String,
    /// The currencies its carts may be in (at least one).
    pub currencies: BTreeSet<Currency>,
    /// The products it sells; `None`: every product.
    pub products: Option<BTreeSet<ProductId>>,
    /// The price lists that apply in it; `None`: every price list.
    pub price_lists: Option<BTreeSet<PriceListId>>,
    /// The stock locations it sells from; `None`: every location.
    pub locations: Option<BTreeSet<LocationId>>,
    /// Whether carts can be created in it.
    pub active: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Bumped by every save (optimistic concurrency).
    pub version: u64,
}

impl SalesChannel {
    /// An active channel named `name` selling everything in `currencies`.
    pub fn new(name: impl Into<String>, currencies: &[Currency], now: DateTime<Utc>) -> Self {
        Self {
            id: ChannelId::new(),
            name: name.into(),
            currencies: currencies.iter().copied().collect(),
            products: None,
            price_lists: None,
            locations: None,
            active: true,
            created_at: now,
            version: 0,
        }
    }

    /// Checks names and sizes.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty or too long name or no currency;
    /// [`Error::LimitExceeded`] past [`MAX_CHANNEL_PRODUCTS`] or
    /// [`MAX_CHANNEL_ITEMS`].
    pub fn validate(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_CHANNEL_NAME_LEN {
            return Err(Error::invalid(
                "channel name",
                format!("must be 1 to {MAX_CHANNEL_NAME_LEN} characters"),
            ));
        }
        if self.currencies.is_empty() {
            return Err(Error::invalid("channel currencies", "name at least one"));
        }
        let too_many = |what: &'static str, n: usize, max: usize| {
            if n > max {
                Err(Error::LimitExceeded {
                    what,
                    max: max as u64,
                })
            } else {
                Ok(())
            }
        };
        too_many(
            "channel products",
            self.products.as_ref().map_or(0, BTreeSet::len),
            MAX_CHANNEL_PRODUCTS,
        )?;
        too_many(
            "channel currencies",
            self.currencies.len(),
            MAX_CHANNEL_ITEMS,
        )?;
        too_many(
            "channel price lists",
            self.price_lists.as_ref().map_or(0, BTreeSet::len),
            MAX_CHANNEL_ITEMS,
        )?;
        too_many(
            "channel locations",
            self.locations.as_ref().map_or(0, BTreeSet::len),
            MAX_CHANNEL_ITEMS,
        )
    }

    /// Whether it sells `product`.
    pub fn sells(&self, product: ProductId) -> bool {
        self.products.as_ref().is_none_or(|p| p.contains(&product))
    }

    /// Whether `list` applies in it.
    pub fn uses_price_list(&self, list: PriceListId) -> bool {
        self.price_lists.as_ref().is_none_or(|l| l.contains(&list))
    }

    /// Whether it sells from `location`.
    pub fn sells_from(&self, location: LocationId) -> bool {
        self.locations
            .as_ref()
            .is_none_or(|l| l.contains(&location))
    }

    /// Refuses `product` unless the channel sells it.
    ///
    /// # Errors
    /// [`Error::NotInChannel`].
    pub fn ensure_sells(&self, product: ProductId) -> Result<()> {
        if self.sells(product) {
            Ok(())
        } else {
            Err(Error::NotInChannel {
                product_id: product,
                channel_id: self.id,
            })
        }
    }
}
