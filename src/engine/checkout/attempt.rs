//! A checkout attempt: claiming the key, checking and pricing, taking
//! stock, gift cards and store credit, authorizing, placing the order; and
//! giving back what a failed attempt took (behind the lease fence).

use super::*;

/// Most times one attempt routes and prices again after the store refused
/// routed units that moved since they were read.
const MAX_REROUTES: u32 = 2;

impl Engine {
    /// Checks out a cart: see the [module documentation](crate::checkout).
    ///
    /// Returns the placed order, how its payment stands and, for a guest
    /// order, the access token that proves ownership of it
    /// ([`Actor::GuestWithToken`]) — the same outcome for every call with
    /// the same key. With [`CaptureMode::Immediate`] the payment is captured
    /// before returning; if that capture gets no answer the outcome says
    /// [`PaymentOutcome::CapturePending`] and a retry with the same key
    /// (or [`Engine::capture`], or recovery) tries it again.
    ///
    /// A payment that waits for the customer or the provider is
    /// [`Error::PaymentPending`] carrying its session; use
    /// [`Engine::start_checkout`] to get it as a value instead.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the actor may not use the cart; validation
    /// errors ([`Error::EmptyCart`], [`Error::Incomplete`],
    /// [`Error::PriceChanged`], [`Error::Invalid`] — among them a provider
    /// not registered or not taking the cart's currency); [`Error::OutOfStock`],
    /// [`Error::UsageLimitReached`], [`Error::PaymentDeclined`] (saved
    /// against the key); [`Error::PaymentPending`]; [`Error::IdempotencyConflict`]
    /// for a key reused with another cart or token; [`Error::CheckoutInProgress`]
    /// when another call with the key is still running after the configured
    /// wait; store and provider errors.
    pub async fn checkout(&self, request: CheckoutRequest) -> Result<CheckoutOutcome> {
        match self.start_checkout(request).await? {
            CheckoutStep::Placed(outcome) => Ok(*outcome),
            CheckoutStep::AwaitingPayment(session) => Err(Error::PaymentPending(Box::new(session))),
        }
    }

    /// Checks out a cart as [`Engine::checkout`] does, returning a payment
    /// that waits for the customer (3-D Secure, a redirect) or the provider
    /// as [`CheckoutStep::AwaitingPayment`]. Called again with the same key
    /// it settles that payment as [`Engine::complete_checkout`] does.
    ///
    /// # Errors
    /// As [`Engine::checkout`], without [`Error::PaymentPending`].
    #[tracing::instrument(name = "checkout", skip_all, fields(cart_id = %request.cart_id, key = %request.idempotency_key))]
    pub async fn start_checkout(&self, request: CheckoutRequest) -> Result<CheckoutStep> {
        let token = request.payment_token.trim();
        if token.chars().count() > MAX_PAYMENT_TOKEN_LEN {
            return Err(Error::invalid(
                "payment token",
                format!("must be at most {MAX_PAYMENT_TOKEN_LEN} characters"),
            ));
        }
        if let Some(method) = &request.payment_method {
            let ok = !method.is_empty()
                && method.len() <= MAX_PAYMENT_METHOD_LEN
                && method.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(Error::invalid(
                    "payment method",
                    format!("must be 1 to {MAX_PAYMENT_METHOD_LEN} visible ASCII characters"),
                ));
            }
        }
        if request.gift_cards.len() > crate::giftcard::MAX_GIFT_CARDS_PER_CHECKOUT {
            return Err(Error::LimitExceeded {
                what: "gift cards per checkout",
                max: crate::giftcard::MAX_GIFT_CARDS_PER_CHECKOUT as u64,
            });
        }
        if matches!(request.actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        let deadline = Instant::now() + self.inner.config.checkout_wait;
        let mut pause = std::time::Duration::from_millis(5);
        // The usual case, a key never seen: price first, then claim the key
        // and reserve in one store command. Anything else (a retry, a race,
        // stock that moved, a store without the combined command) takes the
        // general path below, which claims the key first.
        let mut fast = self.fast_start(&request, token).await;
        loop {
            let now = self.now();
            let (claim, start) = match fast.take() {
                Some((lease, start)) => (CheckoutClaim::Claimed(lease), Some(start)),
                None => {
                    let claim = self
                        .inner
                        .store
                        .begin_checkout(BeginCheckout {
                            key: request.idempotency_key.clone(),
                            cart_id: request.cart_id,
                            payment_token: token.to_owned(),
                            now,
                            lease_until: now + self.inner.config.checkout_lease,
                        })
                        .await?;
                    (claim, None)
                }
            };
            match claim {
                CheckoutClaim::Claimed(lease) => {
                    let attempt = self.run_attempt(&request, token, lease.clone(), start);
                    let attempted = match attempt.await {
                        Ok(attempted) => attempted,
                        Err(e) => {
                            crate::telemetry::checkout(match e {
                                Error::PaymentDeclined { .. } => "declined",
                                Error::OutOfStock { .. } => "out_of_stock",
                                _ => "failed",
                            });
                            return Err(e);
                        }
                    };
                    let order = match attempted {
                        Attempted::Placed(order) => *order,
                        Attempted::Waiting(session) => {
                            crate::telemetry::checkout("awaiting_payment");
                            return Ok(CheckoutStep::AwaitingPayment(session));
                        }
                    };
                    // The lease placed the order, so its token is the one
                    // the checkout record keeps.
                    let outcome = self.outcome(order, lease.token, &request.actor);
                    crate::telemetry::checkout(match outcome.payment {
                        PaymentOutcome::Paid => "paid",
                        PaymentOutcome::Authorized => "authorized",
                        PaymentOutcome::CapturePending => "capture_pending",
                    });
                    return Ok(CheckoutStep::Placed(Box::new(outcome)));
                }
                CheckoutClaim::Completed(order_id) => {
                    // The same key and cart prove it is the same buyer; the
                    // cart's own access rule still applies.
                    self.cart(&request.actor, request.cart_id).await?;
                    let outcome = self
                        .completed(&request.actor, &request.idempotency_key, order_id)
                        .await?;
                    return Ok(CheckoutStep::Placed(Box::new(outcome)));
                }
                CheckoutClaim::Failed(failure) => return Err(failure.into()),
                CheckoutClaim::AwaitingPayment(_) => {
                    // The buyer is back: settle the waiting payment.
                    self.cart(&request.actor, request.cart_id).await?;
                    if let Some(step) = self
                        .settle_waiting(&request.actor, &request.idempotency_key, None)
                        .await?
                    {
                        return Ok(step);
                    }
                    // Someone else took it meanwhile: look again.
                }
                CheckoutClaim::InProgress { lease_until } => {
                    if lease_until <= now {
                        // The running attempt died: clean it up, then run anew.
                        self.recover_checkout(&request.idempotency_key).await?;
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::CheckoutInProgress(
                            request.idempotency_key.to_string(),
                        ));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
            }
        }
    }

    /// The record of checkout `key`, which must be of `cart_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a key unknown or of another cart.
    pub(super) async fn checkout_of_cart(
        &self,
        key: &IdempotencyKey,
        cart_id: crate::id::CartId,
    ) -> Result<crate::store::CheckoutRecord> {
        self.inner
            .store
            .checkout(key)
            .await?
            .filter(|r| r.cart_id == cart_id)
            .ok_or_else(|| Error::not_found("checkout", key))
    }

    /// The order checkout `key` placed, if its record says it did.
    ///
    /// # Errors
    /// The store's, when the record or the order cannot be read: the caller
    /// must then not give any money back.
    pub(super) async fn placed_meanwhile(&self, key: &IdempotencyKey) -> Result<Option<Order>> {
        match self.inner.store.checkout(key).await? {
            Some(record) => match record.state {
                CheckoutState::Completed { order_id } => {
                    self.inner.store.order(order_id).await.map(Some)
                }
                _ => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The outcome of a checkout that placed `order_id` under `key`, as
    /// `actor` may see it.
    pub(super) async fn completed(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        order_id: OrderId,
    ) -> Result<CheckoutOutcome> {
        let order = self.inner.store.order(order_id).await?;
        let lease_token = self
            .inner
            .store
            .checkout(key)
            .await?
            .map(|r| r.lease_token)
            .ok_or_else(|| Error::not_found("checkout", key))?;
        // A capture that failed the first time is tried again.
        let order = self.finish_placed(order).await;
        Ok(self.outcome(order, lease_token, actor))
    }

    /// The first step of the usual checkout: prices the cart and, when the
    /// store can, claims the key and reserves in one command. `None` sends
    /// the checkout down the general path (nothing was written).
    pub(super) async fn fast_start(
        &self,
        request: &CheckoutRequest,
        token: &str,
    ) -> Option<(Lease, (Prepared, Reservation))> {
        // Gift cards take the general path: checking their codes counts
        // wrong guesses, which must happen once per request.
        if !request.gift_cards.is_empty() {
            return None;
        }
        // A retry of a finished checkout finds its cart completed: the
        // general path answers it from the record.
        let prepared = Box::pin(self.prepare(request)).await.ok()?;
        let now = self.now();
        let begin = BeginCheckout {
            key: request.idempotency_key.clone(),
            cart_id: request.cart_id,
            payment_token: token.to_owned(),
            now,
            lease_until: now + self.inner.config.checkout_lease,
        };
        let (lease, reservation) = self
            .inner
            .store
            .begin_and_reserve(
                begin,
                &prepared.requests,
                &prepared.priced.usage_claims,
                now + self.inner.config.reservation_ttl,
            )
            .await
            .ok()??;
        Some((lease, (prepared, reservation)))
    }

    /// What a checkout call returns for `order`.
    pub(super) fn outcome(
        &self,
        order: Order,
        lease_token: uuid::Uuid,
        actor: &Actor,
    ) -> CheckoutOutcome {
        let payment = match order.payment().status {
            PaymentStatus::Authorized if self.inner.config.capture == CaptureMode::Immediate => {
                PaymentOutcome::CapturePending
            }
            PaymentStatus::Authorized => PaymentOutcome::Authorized,
            _ => PaymentOutcome::Paid,
        };
        let access_token = order
            .customer_id()
            .is_none()
            .then(|| guest_token(lease_token, order.id()));
        CheckoutOutcome {
            order: order.visible_to(actor),
            payment,
            access_token,
        }
    }

    pub(super) async fn run_attempt(
        &self,
        request: &CheckoutRequest,
        token: &str,
        lease: Lease,
        start: Option<(Prepared, Reservation)>,
    ) -> Result<Attempted> {
        let mut progress = Progress {
            hold: Hold::None,
            touched: start.is_some(),
            provider: None,
            redeemed: false,
        };
        let attempt = self.attempt(request, token, &lease, &mut progress, start);
        let error = match attempt.await {
            Ok(Attempted::Placed(order)) => {
                let order = self.finish_placed(*order).await;
                return Ok(Attempted::Placed(Box::new(order)));
            }
            Ok(waiting) => return Ok(waiting),
            Err(e) => e,
        };
        self.after_failed_attempt(&lease, progress, error)
            .await
            .map(|order| Attempted::Placed(Box::new(order)))
    }

    /// Cleans up after an attempt (or a settling of a waiting payment) that
    /// failed with `error`: gives back what the provider may hold and ends
    /// the attempt, then returns `error` — unless the order was placed after
    /// all (a store error can hide a commit that happened), which it returns.
    ///
    /// Nothing is given back unless the attempt still holds its lease: it
    /// fences the checkout first ([`Engine::fence`]). An attempt that lost
    /// its lease (recovery took over, and may have placed the order with the
    /// same authorization) gives nothing back and changes nothing.
    pub(super) async fn after_failed_attempt(
        &self,
        lease: &Lease,
        progress: Progress,
        error: Error,
    ) -> Result<Order> {
        // A store error on `place_order` may hide a commit that happened:
        // believe the record, never void a placed order's payment.
        // If the record cannot be read, nothing is given back: the attempt
        // stays in progress and recovery (which never takes over a placed
        // checkout) cleans it up.
        match self.placed_meanwhile(&lease.key).await {
            Ok(Some(order)) => return Ok(self.finish_placed(order).await),
            Ok(None) => {}
            Err(_) => return Err(error),
        }
        let fenced = match self.fence(lease).await {
            Ok(fenced) => fenced,
            Err(e) => {
                // Whoever holds the lease now owns the outcome; it may have
                // placed the order meanwhile.
                tracing::warn!(key = %lease.key, %error, fence = %e, "the attempt no longer holds its checkout; it gives nothing back");
                return match self.placed_meanwhile(&lease.key).await {
                    Ok(Some(order)) => Ok(order),
                    _ => Err(error),
                };
            }
        };
        let held = !matches!(progress.hold, Hold::None);
        if held {
            tracing::warn!(key = %lease.key, %error, "checkout failed after authorizing; voiding the hold");
        }
        let released = match &progress.provider {
            Some(provider) => {
                self.release_hold(provider.as_ref(), &fenced, progress.hold)
                    .await
            }
            None => !held,
        };
        // Then the gift cards and store credit the attempt redeemed.
        if released
            && progress.redeemed
            && let Err(e) = self.release_redemptions(&fenced).await
        {
            tracing::warn!(key = %lease.key, error = %e, "redemptions could not be given back now; recovery will");
            return Err(error);
        }
        if !released {
            // The hold could not be voided now; the attempt stays in progress
            // and recovery voids it once the lease ends.
            tracing::warn!(key = %lease.key, "the hold could not be voided now; recovery will");
            return Err(error);
        }
        if held {
            crate::telemetry::compensation("hold_voided");
        }
        let end = match CheckoutFailure::from_error(&error) {
            Some(failure) => CheckoutEnd::Failed(failure),
            None if progress.touched => CheckoutEnd::Retryable,
            None => CheckoutEnd::Untouched,
        };
        // If this fails (lease lost, store down) the attempt stays in
        // progress and recovery ends it; the caller still gets the real error.
        let _ended = self.inner.store.end_checkout(lease, end, self.now()).await;
        Err(error)
    }

    /// Everything a checkout checks and computes before it writes: the
    /// cart (active, not empty, complete), its pricing (at the total the
    /// customer was shown, no code used up) and the stock it needs.
    pub(super) async fn prepare(&self, request: &CheckoutRequest) -> Result<Prepared> {
        let ready = |cart: &crate::cart::Cart| {
            cart.ensure_active()?;
            if cart.lines().is_empty() {
                return Err(Error::EmptyCart);
            }
            Ok(())
        };
        let (cart, priced) = self
            .cart_and_price(&request.actor, request.cart_id, ready)
            .await?;
        let crate::promotions::Priced {
            cart: priced,
            catalog: entries,
            email,
            channel,
            tax_request,
            fulfilment,
        } = priced;
        // A quote is paid before it expires, at the total it was sent with.
        cart.check_quote_payable(&request.actor, priced.total, self.now())?;
        if let Some(expected) = request.expected_total
            && expected != priced.total
        {
            return Err(Error::PriceChanged {
                expected,
                actual: priced.total,
            });
        }
        // A code the customer entered that ran out meanwhile fails the
        // checkout rather than silently charging full price.
        for code in cart.coupon_codes() {
            if let Some(crate::pricing::Rejection::UsedUp {
                counter,
                limit,
                used,
            }) = priced.code_outcome(code).and_then(|o| o.rejection())
            {
                return Err(Error::UsageLimitReached {
                    counter: counter.clone(),
                    limit: *limit,
                    used: *used,
                });
            }
        }
        if priced.requires_shipping {
            if cart.shipping_address().is_none() {
                return Err(Error::Incomplete("shipping address"));
            }
            // Every shipment that ships something needs its method: the
            // lines in no group, and each group's.
            let ungrouped_ships = priced.lines.iter().any(|l| {
                l.requires_shipping
                    && !priced
                        .shipping_groups
                        .iter()
                        .any(|g| g.lines.contains(&l.line_id))
            });
            let group_unset = priced.shipping_groups.iter().any(|g| {
                g.charge.is_none()
                    && priced
                        .lines
                        .iter()
                        .any(|l| l.requires_shipping && g.lines.contains(&l.line_id))
            });
            if (ungrouped_ships && priced.shipping.is_none()) || group_unset {
                return Err(Error::Incomplete("shipping method"));
            }
        }
        let email = email.ok_or(Error::Incomplete("email"))?;
        let provider = self.provider_for(request.provider.as_deref())?;
        let tenders = self.plan_tenders(request, &cart, priced.total).await?;
        let mut remainder = priced.total;
        for t in &tenders {
            remainder = remainder.checked_sub(t.amount)?;
        }
        if !remainder.is_zero() && request.payment_token.trim().is_empty() {
            return Err(Error::Incomplete("payment token"));
        }
        if !remainder.is_zero() && !provider.accepts_currency(priced.currency) {
            return Err(Error::invalid(
                "payment provider",
                format!(
                    "`{}` does not take payments in {}",
                    provider.name(),
                    priced.currency
                ),
            ));
        }

        // In a channel that names its locations, stock comes only from them.
        let channel = channel.filter(|c| c.locations.is_some()).map(|c| c.id);
        // Every priced line, free gifts included, needs stock: the routed
        // units held exactly where they were priced from.
        let mut routed: Vec<crate::inventory::ReservationLine> =
            fulfilment.map(|f| f.lines).unwrap_or_default();
        let mut requests = Vec::with_capacity(priced.lines.len());
        for l in &priced.lines {
            let entry = entries
                .get(&l.variant_id)
                .ok_or_else(|| Error::not_found("variant", l.variant_id))?;
            let ask = |quantity, location| StockRequest {
                variant_id: l.variant_id,
                quantity,
                policy: entry.variant.inventory(),
                channel,
                location,
            };
            let mut left = l.quantity;
            for r in routed.iter_mut().filter(|r| r.variant_id == l.variant_id) {
                let take = left.min(r.quantity);
                if take > 0 {
                    r.quantity -= take;
                    left -= take;
                    requests.push(ask(take, Some(r.location_id)));
                }
            }
            if left > 0 {
                requests.push(ask(left, entry.stock_location));
            }
        }
        let thresholds = requests
            .iter()
            .filter_map(|r| {
                entries
                    .get(&r.variant_id)
                    .and_then(|e| e.variant.low_stock_threshold())
                    .map(|t| (r.variant_id, t))
            })
            .collect();
        Ok(Prepared {
            cart,
            priced,
            email,
            requests,
            provider,
            tenders,
            thresholds,
            tax_request,
        })
    }

    /// What the request's gift cards (in order), then the customer's store
    /// credit, will pay of `total`: each as much as it holds of what is
    /// left. A named gift card that is unknown, in another currency,
    /// expired or empty is refused; store credit is used when there is some.
    pub(super) async fn plan_tenders(
        &self,
        request: &CheckoutRequest,
        cart: &crate::cart::Cart,
        total: crate::money::Money,
    ) -> Result<Vec<PlannedTender>> {
        use crate::giftcard::BalanceKind;
        let now = self.now();
        let mut left = total;
        let mut planned: Vec<PlannedTender> = Vec::new();
        for code in &request.gift_cards {
            let card = self
                .find_gift_card(&request.actor, Some(cart.id()), &code.0)
                .await?;
            if card.currency() != cart.currency() {
                return Err(Error::CurrencyMismatch {
                    left: cart.currency(),
                    right: card.currency(),
                });
            }
            if !card.spendable_at(now) {
                return Err(Error::invalid(
                    "gift card",
                    format!("…{} has expired", card.last4()),
                ));
            }
            if planned.iter().any(|t| t.card.id() == card.id()) {
                // The same card entered twice counts once.
                continue;
            }
            if card.balance().is_zero() {
                return Err(Error::InsufficientBalance {
                    available: card.balance(),
                    requested: left,
                });
            }
            take(&mut planned, card, &mut left)?;
        }
        if request.store_credit {
            let Some(customer) = cart.customer_id() else {
                return Err(Error::invalid(
                    "store credit",
                    "only a signed-in customer's cart can use store credit",
                ));
            };
            let cards = self.inner.store.gift_cards_of(customer).await?;
            for card in cards {
                if card.kind() == BalanceKind::StoreCredit
                    && card.currency() == cart.currency()
                    && card.spendable_at(now)
                {
                    take(&mut planned, card, &mut left)?;
                }
            }
        }
        Ok(planned)
    }

    /// Redeems the planned tenders; when a card's balance went down
    /// between planning and redeeming (another checkout spent from it), it
    /// gives back this round's redemptions, plans again from the balances
    /// as they are now and redeems that, up to [`MAX_REDEEM_ROUNDS`] times —
    /// so a lost race is not refused while the card still has money. A card
    /// that is empty by then is refused ([`Error::InsufficientBalance`]).
    pub(super) async fn redeem_planned(
        &self,
        lease: &Lease,
        request: &CheckoutRequest,
        cart: &crate::cart::Cart,
        total: crate::money::Money,
        mut planned: Vec<PlannedTender>,
        progress: &mut Progress,
    ) -> Result<Vec<Payment>> {
        let mut round = 0;
        loop {
            match self.redeem(lease, &planned, progress, round).await {
                Err(Error::InsufficientBalance { .. }) if round + 1 < MAX_REDEEM_ROUNDS => {
                    crate::telemetry::compensation("redemption_replanned");
                    let fenced = self.fence(lease).await?;
                    self.release_redemptions(&fenced).await?;
                    planned = self.plan_tenders(request, cart, total).await?;
                    round += 1;
                }
                other => return other,
            }
        }
    }

    /// Redeems the planned tenders for the attempt under `lease`, in order:
    /// one ledger entry each, keyed by the attempt (and the round of
    /// [`Engine::redeem_planned`]). Returns them as the order's tender
    /// payments.
    pub(super) async fn redeem(
        &self,
        lease: &Lease,
        planned: &[PlannedTender],
        progress: &mut Progress,
        round: u32,
    ) -> Result<Vec<Payment>> {
        use crate::giftcard::{EntryKind, NewEntry};
        let reference = redeem_reference(&lease.key, lease.attempt);
        let mut tenders = Vec::with_capacity(planned.len());
        for (i, t) in planned.iter().enumerate() {
            let key = if round == 0 {
                format!("{reference}:redeem:{i}")
            } else {
                format!("{reference}:redeem:{round}:{i}")
            };
            progress.redeemed = true;
            self.inner
                .store
                .post_gift_card_entry(
                    t.card.id(),
                    NewEntry::new(
                        key.clone(),
                        EntryKind::Redeem,
                        t.amount,
                        reference.clone(),
                        Actor::System,
                    ),
                    self.now(),
                )
                .await?;
            tenders.push(Payment {
                id: PaymentId::new(),
                provider: t.card.kind().provider_name().to_owned(),
                reference: t.card.id().to_string(),
                authorize_key: key,
                authorized: t.amount,
                captured: t.amount,
                refunded: crate::money::Money::zero(t.amount.currency()),
                released: None,
                status: PaymentStatus::Captured,
                operations: Vec::new(),
                method: None,
            });
        }
        Ok(tenders)
    }

    /// Gives back every redemption of attempt `attempt` of checkout `key`
    /// that has not been given back: a release entry each, keyed by the
    /// redemption, so running this twice gives back once.
    pub(super) async fn release_redemptions(&self, fenced: &Fenced) -> Result<()> {
        use crate::giftcard::{EntryKind, NewEntry};
        let lease = fenced.lease();
        let reference = redeem_reference(&lease.key, lease.attempt);
        let entries = self.inner.store.gift_card_entries_for(&reference).await?;
        for (card, entry) in entries.iter().filter(|(_, e)| e.kind == EntryKind::Redeem) {
            let release = format!("{}:release", entry.key);
            if entries.iter().any(|(c, e)| c == card && e.key == release) {
                continue;
            }
            let amount =
                crate::money::Money::zero(entry.amount.currency()).checked_sub(entry.amount)?;
            self.inner
                .store
                .post_gift_card_entry(
                    *card,
                    NewEntry::new(
                        release,
                        EntryKind::Release,
                        amount,
                        reference.clone(),
                        Actor::System,
                    ),
                    self.now(),
                )
                .await?;
            crate::telemetry::compensation("redemption_released");
        }
        Ok(())
    }

    /// The provider registered as `name`, or the default.
    pub(crate) fn provider_for(
        &self,
        name: Option<&str>,
    ) -> Result<std::sync::Arc<dyn PaymentProvider>> {
        let providers = &self.inner.payments;
        match name {
            None => Ok(providers.default().clone()),
            Some(name) => providers.get(name).cloned().ok_or_else(|| {
                Error::invalid(
                    "payment provider",
                    format!(
                        "no provider named `{}` is registered",
                        name.chars()
                            .take(crate::engine::MAX_PROVIDER_NAME_LEN)
                            .collect::<String>()
                    ),
                )
            }),
        }
    }

    /// The forward path. On error, `progress` says what must be undone.
    /// A routed reservation refused for stock that moved since it was
    /// read is routed and priced again, at most [`MAX_REROUTES`] times.
    /// `start` is what the combined claim-and-reserve command did already.
    pub(super) async fn attempt(
        &self,
        request: &CheckoutRequest,
        token: &str,
        lease: &Lease,
        progress: &mut Progress,
        start: Option<(Prepared, Reservation)>,
    ) -> Result<Attempted> {
        let store = &self.inner.store;
        let (prepared, reservation) = match start {
            Some(started) => started,
            None => {
                let mut prepared = Box::pin(self.prepare(request)).await?;
                let mut rerouted = 0;
                loop {
                    let now = self.now();
                    progress.touched = true;
                    let held = store
                        .reserve_for_checkout(
                            lease,
                            &prepared.requests,
                            &prepared.priced.usage_claims,
                            now + self.inner.config.reservation_ttl,
                            now,
                        )
                        .await;
                    match held {
                        Ok(reservation) => break (prepared, reservation),
                        // Routed units were short where the plan read
                        // them: read, route and price again, while that
                        // changes the plan.
                        Err(e @ Error::OutOfStock { .. })
                            if self.inner.router.is_some() && rerouted < MAX_REROUTES =>
                        {
                            let before = std::mem::take(&mut prepared.requests);
                            prepared = Box::pin(self.prepare(request)).await?;
                            if prepared.requests == before {
                                return Err(e);
                            }
                            rerouted += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        let Prepared {
            cart,
            priced,
            email,
            requests: _,
            provider,
            tenders: planned,
            thresholds,
            tax_request,
        } = prepared;
        // The reservation lowered what is available: announce a crossing.
        for (variant, threshold) in thresholds {
            self.check_low_stock(variant, Some(threshold)).await;
        }
        progress.provider = Some(provider.clone());
        let authorize_key = authorize_key(&lease.key, lease.attempt);
        // Gift cards, then store credit, each a ledger entry keyed by the
        // attempt; a failure later gives them back (`after_failed_attempt`,
        // or recovery, finds them by the attempt's reference).
        let tenders = self
            .redeem_planned(lease, request, &cart, priced.total, planned, progress)
            .await?;
        let mut total = priced.total;
        for t in &tenders {
            total = total.checked_sub(t.authorized())?;
        }
        let mut order = Order {
            id: OrderId::new(),
            checkout_key: lease.key.clone(),
            cart_id: cart.id(),
            customer_id: cart.customer_id(),
            email: Some(email),
            shipping_address: cart.shipping_address().cloned(),
            billing_address: cart.billing_address().or(cart.shipping_address()).cloned(),
            pricing: priced,
            payment: free_payment(total, authorize_key.clone()),
            tenders,
            channel_id: cart.channel_id(),
            reservation_id: reservation.id,
            status: OrderStatus::Placed,
            placed_at: self.now(),
            history: Vec::new(),
            shipments: Vec::new(),
            returns: Vec::new(),
            return_cases: Vec::new(),
            line_cancellations: Vec::new(),
            claims: Vec::new(),
            exchanges: Vec::new(),
            charges: Vec::new(),
            pricing_versions: Vec::new(),
            edits: Vec::new(),
            notes: Vec::new(),
            provider_events: Vec::new(),
            tax_document: None,
            cancellation: None,
            access_token_hash: None,
            version: 0,
        };
        if let (Some(service), Some(request)) = (&self.inner.tax_service, tax_request) {
            order.tax_document = Some(crate::order::TaxDocument::new(
                service.provider.name(),
                &order,
                request,
            ));
        }
        if total.is_zero() {
            // Nothing (left) to charge: no provider call.
            let order = self.finish_order(lease, order, None, &request.actor)?;
            return store
                .place_order(lease, order, self.now())
                .await
                .map(|order| Attempted::Placed(Box::new(order)));
        }
        progress.hold = Hold::Unknown;
        // With immediate capture, a provider that can collects in the
        // authorize call itself (a sale): one call and one write fewer.
        let sale =
            self.inner.config.capture == CaptureMode::Immediate && provider.captures_on_authorize();
        let started = std::time::Instant::now();
        let response = provider
            .authorize(AuthorizeRequest {
                idempotency_key: authorize_key.clone(),
                amount: total,
                payment_token: token.to_owned(),
                reference: lease.key.to_string(),
                capture: sale,
                method: request.payment_method.clone(),
            })
            .await;
        crate::telemetry::provider_call(
            "authorize",
            crate::telemetry::result_label(&response),
            started.elapsed(),
        );
        let response = match response {
            Ok(r) => r,
            Err(e @ PaymentError::Declined { .. }) => {
                progress.hold = Hold::None;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        progress.hold = Hold::Held(response.clone());
        if response.status.is_waiting() {
            // The customer (or the provider) must act first: park the
            // checkout with its stock and the order it will place.
            let session = self.session_from(lease, provider.name(), &order, &response)?;
            order.payment.provider = provider.name().to_owned();
            order.payment.reference = response.reference.clone();
            order.payment.method = request.payment_method.clone();
            let awaiting = AwaitingPayment {
                session,
                order,
                sale,
                actor: request.actor.clone(),
            };
            self.park(lease, &awaiting).await?;
            return Ok(Attempted::Waiting(awaiting.session));
        }
        let mut payment = payment_from(provider.name(), &response, total, authorize_key, sale)?;
        payment.method = request.payment_method.clone();
        let order = self.finish_order(lease, order, Some(payment), &request.actor)?;
        store
            .place_order(lease, order, self.now())
            .await
            .map(|order| Attempted::Placed(Box::new(order)))
    }
}
