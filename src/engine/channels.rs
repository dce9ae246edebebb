//! Sales channels: the engine calls that keep them and put carts in them
//! (see [`crate::channel`] for what a channel restricts).
//!
//! Does not know: SQL; channels live behind the
//! [`ChannelStore`](crate::store::ChannelStore) port.

use crate::actor::Actor;
use crate::cart::Cart;
use crate::channel::{ChannelId, SalesChannel};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::money::Currency;

impl Engine {
    /// Creates or updates a sales channel (staff and the system); an
    /// update carries the version it read. Recorded as an admin change.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Invalid`] or [`Error::LimitExceeded`]
    /// for a bad name or sizes; [`Error::AlreadyExists`] for a name taken;
    /// [`Error::Conflict`] for a stale version.
    #[tracing::instrument(name = "save_channel", skip_all, fields(channel_id = %channel.id))]
    pub async fn save_channel(&self, actor: &Actor, channel: SalesChannel) -> Result<SalesChannel> {
        actor.require(crate::actor::Permission::Settings)?;
        let saved = self.inner.store.save_channel(channel).await?;
        self.audit_catalog(
            actor,
            "save_channel",
            saved.id,
            crate::event::CatalogChange::ChannelChanged {
                channel_id: saved.id,
            },
        )
        .await;
        Ok(saved)
    }

    /// One sales channel (no actor: storefronts read their channel).
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn channel(&self, id: ChannelId) -> Result<SalesChannel> {
        self.inner.store.channel(id).await
    }

    /// Every sales channel, by name.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub async fn channels(&self) -> Result<Vec<SalesChannel>> {
        self.inner.store.channels().await
    }

    /// Creates a cart in sales channel `channel`: only its products can be
    /// added, its price lists and promotions apply, and its stock comes
    /// from its locations. Anyone but a provider.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] for an unknown channel;
    /// [`Error::Invalid`] for an inactive channel or a currency it does
    /// not sell in.
    pub async fn create_cart_in(
        &self,
        actor: &Actor,
        channel: ChannelId,
        currency: Currency,
    ) -> Result<Cart> {
        if matches!(actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        let ch = self.inner.store.channel(channel).await?;
        if !ch.active {
            return Err(Error::invalid(
                "sales channel",
                format!("{} is not active", ch.name),
            ));
        }
        if !ch.currencies.contains(&currency) {
            return Err(Error::invalid(
                "currency",
                format!("{currency} is not sold in {}", ch.name),
            ));
        }
        let owner = match actor {
            Actor::Customer(id) => Some(*id),
            _ => None,
        };
        let cart = Cart::new(currency, owner, self.now()).in_channel(channel);
        self.inner.store.insert_cart(cart.clone()).await?;
        Ok(cart)
    }

    /// The channel `cart` is in, if any.
    pub(crate) async fn cart_channel(&self, cart: &Cart) -> Result<Option<SalesChannel>> {
        match cart.channel_id() {
            Some(id) => self.inner.store.channel(id).await.map(Some),
            None => Ok(None),
        }
    }
}
