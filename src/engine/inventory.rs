//! The engine's inventory use cases: locations, stock levels and
//! adjustments, reservations and usage counters.

use super::*;

impl Engine {
    /// Creates a stock location; lower `priority` is reserved from first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad name; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_location(
        &self,
        actor: &Actor,
        name: &str,
        priority: u32,
    ) -> Result<Location> {
        self.add_location(actor, Location::new(name, priority)?)
            .await
    }

    /// Adds a location built beforehand, such as one with the address its
    /// parcels leave from ([`Location::with_address`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::AlreadyExists`] for a location id already used;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn add_location(&self, actor: &Actor, location: Location) -> Result<Location> {
        actor.require(crate::actor::Permission::Inventory)?;
        self.inner.store.insert_location(location.clone()).await?;
        self.audit(actor, "create_location", location.id()).await;
        Ok(location)
    }

    /// Sets the units on hand of a variant at a location.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a negative or too large count; [`Error::NotFound`]
    /// for an unknown variant or location; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all, fields(variant_id = %variant))]
    pub async fn set_stock(
        &self,
        actor: &Actor,
        variant: VariantId,
        location: LocationId,
        on_hand: i64,
    ) -> Result<StockLevel> {
        actor.require(crate::actor::Permission::Inventory)?;
        let level = self
            .inner
            .store
            .set_stock(variant, location, on_hand)
            .await?;
        self.audit_with(
            actor,
            "set_stock",
            format!("{variant} at {location}: on hand {on_hand}"),
            Some(crate::event::EventKind::StockChanged {
                variant_id: variant,
                location_id: location,
                on_hand: level.on_hand,
            }),
        )
        .await;
        self.check_low_stock(variant, None).await;
        Ok(level)
    }

    /// Adds (or with a negative `delta`, removes) units on hand.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Overflow`] or [`Error::Invalid`] when the result leaves the
    /// allowed range; [`Error::NotFound`] for an unknown variant or location;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(variant_id = %variant))]
    pub async fn adjust_stock(
        &self,
        actor: &Actor,
        variant: VariantId,
        location: LocationId,
        delta: i64,
    ) -> Result<StockLevel> {
        self.adjust_stock_for(actor, variant, location, delta, "")
            .await
    }

    /// [`Engine::adjust_stock`] with the reason for it (a count, damage,
    /// a delivery), kept in the audit log with the change.
    ///
    /// # Errors
    /// As [`Engine::adjust_stock`]; [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for a reason over
    /// [`MAX_TITLE_LEN`](crate::catalog::MAX_TITLE_LEN) characters.
    #[tracing::instrument(skip_all, fields(variant_id = %variant))]
    pub async fn adjust_stock_for(
        &self,
        actor: &Actor,
        variant: VariantId,
        location: LocationId,
        delta: i64,
        reason: &str,
    ) -> Result<StockLevel> {
        actor.require(crate::actor::Permission::Inventory)?;
        let reason =
            crate::validate::optional_text("reason", reason, crate::catalog::MAX_TITLE_LEN)?;
        let level = self
            .inner
            .store
            .adjust_stock(variant, location, delta)
            .await?;
        let because = if reason.is_empty() {
            String::new()
        } else {
            format!(" ({reason})")
        };
        self.audit_with(
            actor,
            "adjust_stock",
            format!("{variant} at {location}: {delta:+}{because}"),
            Some(crate::event::EventKind::StockChanged {
                variant_id: variant,
                location_id: location,
                on_hand: level.on_hand,
            }),
        )
        .await;
        self.check_low_stock(variant, None).await;
        Ok(level)
    }

    /// Sets (or with `None`, clears) a variant's low-stock threshold: fewer
    /// available units than this send
    /// [`EventKind::LowStock`](crate::event::EventKind::LowStock).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without the inventory permission;
    /// [`Error::NotFound`] for an unknown variant; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(variant_id = %variant))]
    pub async fn set_low_stock_threshold(
        &self,
        actor: &Actor,
        variant: VariantId,
        threshold: Option<u32>,
    ) -> Result<crate::catalog::Product> {
        actor.require(crate::actor::Permission::Inventory)?;
        let entries = self.inner.store.entries(&[variant]).await?;
        let entry = entries
            .get(&variant)
            .ok_or_else(|| Error::not_found("variant", variant))?;
        let product_id = entry.variant.product_id();
        let mut product = self.inner.store.product(product_id).await?;
        let mut input = crate::catalog::NewVariant::from(
            product
                .variant(variant)
                .ok_or_else(|| Error::not_found("variant", variant))?,
        );
        input.low_stock_threshold = threshold;
        product.replace_variant(variant, input)?;
        self.inner.store.update_product(product.clone()).await?;
        self.audit_catalog(
            actor,
            "set_low_stock_threshold",
            format!(
                "{variant}: {}",
                threshold.map_or_else(|| "none".to_owned(), |t| t.to_string())
            ),
            crate::event::CatalogChange::ProductUpdated { product_id },
        )
        .await;
        self.check_low_stock(variant, threshold).await;
        Ok(product)
    }

    /// Announces a crossing of `variant`'s low-stock threshold (read from
    /// the catalog when `None`): [`EventKind::LowStock`] when fewer units
    /// than the threshold are available everywhere, and
    /// [`EventKind::StockReplenished`] when a low variant is back. The store
    /// reads the level and marks the variant under one lock, in the same
    /// command that records the event, so a crossing noticed by many callers
    /// is announced once and a stale reading never undoes a newer one. Evaluated when
    /// staff set or adjust stock and when a checkout reserves; a failure to
    /// evaluate is logged, never returned.
    ///
    /// [`EventKind::LowStock`]: crate::event::EventKind::LowStock
    /// [`EventKind::StockReplenished`]: crate::event::EventKind::StockReplenished
    pub(crate) async fn check_low_stock(&self, variant: VariantId, threshold: Option<u32>) {
        let threshold = match threshold {
            Some(t) => t,
            None => match self.inner.store.entries(&[variant]).await {
                Ok(entries) => match entries
                    .get(&variant)
                    .and_then(|e| e.variant.low_stock_threshold())
                {
                    Some(t) => t,
                    None => return,
                },
                Err(error) => {
                    tracing::warn!(%error, %variant, "low stock not evaluated");
                    return;
                }
            },
        };
        if let Err(error) = self
            .inner
            .store
            .flag_low_stock(variant, threshold, self.now())
            .await
        {
            tracing::warn!(%error, %variant, "low stock not recorded");
        }
    }

    /// A variant's stock everywhere.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown variant; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(skip_all, fields(variant_id = %variant))]
    pub async fn stock(&self, variant: VariantId) -> Result<StockSummary> {
        self.inner.store.stock(variant).await
    }

    /// Each of `variants`' stock rows, in reservation order (no actor: as
    /// [`Engine::stock`]); a variant with no rows, or unknown, is left out.
    /// At most [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE) times ten
    /// variants.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] for more variants; [`Error::Storage`].
    pub async fn stock_levels(
        &self,
        variants: &[VariantId],
    ) -> Result<std::collections::HashMap<VariantId, Vec<crate::inventory::StockLevel>>> {
        crate::validate::at_most("variants", variants.len(), crate::store::MAX_PAGE_SIZE * 10)?;
        self.inner.store.stock_levels(variants).await
    }

    /// Every stock location (no actor: where goods are kept is not
    /// private), in no particular order.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails.
    pub async fn locations(&self) -> Result<Vec<crate::inventory::Location>> {
        self.inner.store.locations().await
    }

    /// Holds stock outside a checkout (a phone order, a hold for a
    /// customer): all or nothing, lapsing after the configured reservation TTL.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown variant; [`Error::OutOfStock`] (nothing
    /// is held); [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn reserve_stock(
        &self,
        actor: &Actor,
        items: &[(VariantId, u32)],
    ) -> Result<Reservation> {
        actor.require(crate::actor::Permission::Inventory)?;
        let ids: Vec<VariantId> = items.iter().map(|(v, _)| *v).collect();
        let entries = self.inner.store.entries(&ids).await?;
        let requests = items
            .iter()
            .map(|(v, q)| {
                let entry = entries
                    .get(v)
                    .ok_or_else(|| Error::not_found("variant", v))?;
                Ok(StockRequest {
                    variant_id: *v,
                    quantity: *q,
                    policy: entry.variant.inventory(),
                    channel: None,
                    location: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let now = self.now();
        self.inner
            .store
            .reserve(&requests, &[], now + self.inner.config.reservation_ttl, now)
            .await
    }

    /// How much of a usage counter (a coupon's uses, a promotion's budget) is
    /// held or used.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn usage(&self, actor: &Actor, counter: &str) -> Result<u64> {
        actor.require(crate::actor::Permission::Promotions)?;
        self.inner.store.usage(counter).await
    }

    /// Gives a reservation back.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown reservation;
    /// [`Error::IllegalTransition`] for one already committed; [`Error::Storage`]
    /// when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn release_reservation(
        &self,
        actor: &Actor,
        id: ReservationId,
    ) -> Result<Reservation> {
        actor.require(crate::actor::Permission::Inventory)?;
        self.inner.store.release(id, self.now()).await
    }

    /// Takes a reservation's units out of stock (they were shipped or handed over).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown reservation;
    /// [`Error::IllegalTransition`] for one already released; [`Error::Storage`]
    /// when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn commit_reservation(
        &self,
        actor: &Actor,
        id: ReservationId,
    ) -> Result<Reservation> {
        actor.require(crate::actor::Permission::Inventory)?;
        self.inner.store.commit(id, self.now()).await
    }
}
