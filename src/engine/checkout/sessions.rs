//! Payments that wait: parking a checkout, settling it on the buyer's
//! return or the provider's event, ending it (behind the lease fence).

use super::*;

impl Engine {
    /// The buyer is back from the payment's customer action (the shop's
    /// return URL): asks the provider how the checkout's waiting payment
    /// stands and places the order if it is held — once, however often this
    /// and the provider's event arrive. Also answers for a checkout already
    /// placed (the same outcome as a retry of [`Engine::checkout`]) or
    /// failed (its saved failure).
    ///
    /// The actor must be allowed to use the cart (the cart's owner, or the
    /// guest who holds it) and `key` must be the checkout's key for that cart.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] when `key` is not a
    /// checkout of `cart_id`; the saved failure ([`Error::PaymentDeclined`]
    /// for a payment that failed, was cancelled or expired;
    /// [`Error::OutOfStock`], [`Error::UsageLimitReached`]);
    /// [`Error::Invalid`] when the checkout has no payment waiting (run it
    /// again with [`Engine::checkout`]); [`Error::CheckoutInProgress`] while
    /// another call settles it after the configured wait; store and
    /// provider errors (the payment keeps waiting).
    #[tracing::instrument(name = "complete_checkout", skip_all, fields(cart_id = %cart_id, key = %key))]
    pub async fn complete_checkout(
        &self,
        actor: &Actor,
        cart_id: crate::id::CartId,
        key: &IdempotencyKey,
    ) -> Result<CheckoutStep> {
        if matches!(actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        self.cart(actor, cart_id).await?;
        let deadline = Instant::now() + self.inner.config.checkout_wait;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            let record = self.checkout_of_cart(key, cart_id).await?;
            match record.state {
                CheckoutState::Completed { order_id } => {
                    let outcome = self.completed(actor, key, order_id).await?;
                    return Ok(CheckoutStep::Placed(Box::new(outcome)));
                }
                CheckoutState::Failed { failure } => return Err(failure.into()),
                CheckoutState::AwaitingPayment => {
                    if let Some(step) = self.settle_waiting(actor, key, None).await? {
                        return Ok(step);
                    }
                }
                CheckoutState::InProgress if record.lease_until <= self.now() => {
                    self.recover_checkout(key).await?;
                }
                CheckoutState::InProgress => {
                    if Instant::now() >= deadline {
                        return Err(Error::CheckoutInProgress(key.to_string()));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
                CheckoutState::Retryable => {
                    return Err(Error::invalid(
                        "checkout",
                        format!("{key} has no payment waiting; check out again with the key"),
                    ));
                }
            }
        }
    }

    /// The buyer gives up a waiting payment (to pay another way): it is
    /// cancelled at the provider, the checkout ends as declined
    /// (`payment_cancelled`), and its stock and coupon uses are released
    /// at once rather than when the session expires. If the provider says
    /// the payment completed meanwhile, the hold is released too: a
    /// cancelled checkout never places an order.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] when `key` is not a
    /// checkout of `cart_id`; [`Error::Invalid`] when its payment does not
    /// wait (placed, failed, or not started); [`Error::CheckoutInProgress`]
    /// while another call settles it; the provider's error when it cannot
    /// cancel now (the payment keeps waiting).
    #[tracing::instrument(name = "cancel_checkout", skip_all, fields(cart_id = %cart_id, key = %key))]
    pub async fn cancel_checkout(
        &self,
        actor: &Actor,
        cart_id: crate::id::CartId,
        key: &IdempotencyKey,
    ) -> Result<()> {
        if matches!(actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        self.cart(actor, cart_id).await?;
        let record = self.checkout_of_cart(key, cart_id).await?;
        if record.state == CheckoutState::InProgress && record.awaiting.is_some() {
            return Err(Error::CheckoutInProgress(key.to_string()));
        }
        let claimed = self
            .inner
            .store
            .claim_awaiting(key, self.now() + self.inner.config.checkout_lease)
            .await?;
        let Some((lease, awaiting)) = claimed else {
            return Err(Error::invalid(
                "checkout",
                format!("{key} has no payment waiting"),
            ));
        };
        let failure = CheckoutFailure::PaymentDeclined {
            code: "payment_cancelled".into(),
            message: "the buyer cancelled the payment".into(),
        };
        self.end_waiting(&lease, awaiting, failure).await.map(drop)
    }

    /// The session a waiting `response` opens for `order`.
    pub(super) fn session_from(
        &self,
        lease: &Lease,
        provider: &str,
        order: &Order,
        response: &ProviderResponse,
    ) -> Result<PaymentSession> {
        if response.amount != order.payment.authorized {
            return Err(Error::PaymentUnavailable(
                "provider answered with a different amount".into(),
            ));
        }
        if let Some(action) = &response.action {
            action.validate()?;
        } else if response.status == ProviderStatus::RequiresAction {
            return Err(Error::PaymentUnavailable(
                "provider asked for a customer action without saying which".into(),
            ));
        }
        crate::validate::optional_text(
            "payment reference",
            &response.reference,
            crate::payment::MAX_EVENT_TEXT_LEN,
        )?;
        Ok(PaymentSession {
            checkout_key: lease.key.clone(),
            order_id: order.id(),
            provider: provider.to_owned(),
            reference: response.reference.clone(),
            amount: response.amount,
            status: response.status,
            action: response.action.clone(),
            expires_at: self.now() + self.session_ttl(order),
        })
    }

    /// How long the payment of `order` may wait: the session's time, or the
    /// shorter gift-card hold when the checkout redeemed gift cards or store
    /// credit ([`EngineConfig::gift_card_hold`](crate::EngineConfig::gift_card_hold)).
    pub(super) fn session_ttl(&self, order: &Order) -> chrono::Duration {
        let config = &self.inner.config;
        if order.tenders.is_empty() {
            config.payment_session_ttl
        } else {
            config.payment_session_ttl.min(config.gift_card_hold)
        }
    }

    /// Parks a checkout whose payment waits: until its session expires,
    /// with its stock kept a lease longer so that recovery can settle it.
    pub(super) async fn park(&self, lease: &Lease, awaiting: &AwaitingPayment) -> Result<()> {
        let until = awaiting.session.expires_at;
        self.inner
            .store
            .await_payment(
                lease,
                awaiting,
                until,
                until + self.inner.config.checkout_lease,
                self.now(),
            )
            .await
    }

    /// Readies `order` to be placed by `lease`: its payment (`None`: the
    /// free one it carries), when it is placed, the guest's proof of
    /// ownership (derived from the placing lease) and, with immediate
    /// capture, the capture's intent (recorded by the commit that places
    /// the order — the money-path protocol — so placing and capturing take
    /// two writes, not three).
    pub(super) fn finish_order(
        &self,
        lease: &Lease,
        mut order: Order,
        payment: Option<Payment>,
        actor: &Actor,
    ) -> Result<Order> {
        let now = self.now();
        if let Some(payment) = payment {
            order.payment = payment;
        }
        order.placed_at = now;
        order.access_token_hash = order
            .customer_id
            .is_none()
            .then(|| guest_token(lease.token, order.id).hash());
        order.record_placed(now, actor);
        if self.inner.config.capture == CaptureMode::Immediate
            && order.payment.status == PaymentStatus::Authorized
        {
            order.begin_capture(None, CHECKOUT_CAPTURE, now, &Actor::System)?;
        }
        Ok(order)
    }

    /// Settles the waiting checkout `key` (the buyer returned, or a
    /// provider event arrived with `hint`): `None` when it is not waiting
    /// (settled meanwhile, or someone else is settling it).
    pub(super) async fn settle_waiting(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        hint: Option<ProviderResponse>,
    ) -> Result<Option<CheckoutStep>> {
        let Some((lease, settled)) = self.claim_and_settle(key, hint, None).await? else {
            return Ok(None);
        };
        match settled {
            Settled::Placed(order) => {
                crate::telemetry::checkout("session_completed");
                let outcome = self.outcome(*order, lease.token, actor);
                Ok(Some(CheckoutStep::Placed(Box::new(outcome))))
            }
            Settled::Waiting(session) => Ok(Some(CheckoutStep::AwaitingPayment(session))),
            Settled::Failed(failure) => Err(failure.into()),
        }
    }

    /// Settles a waiting payment under `lease`: places the order when the
    /// provider holds the funds, parks it again while it still waits, ends
    /// it when it failed or its session expired. `hint` is what a provider
    /// event reported; without one the provider is asked. `event` is that
    /// event's id: it is recorded on the order to be placed, so the command
    /// that places (or parks) it also records the event as applied, and a
    /// replay of the id — whatever it says — changes nothing.
    pub(super) async fn settle(
        &self,
        lease: &Lease,
        mut awaiting: AwaitingPayment,
        hint: Option<ProviderResponse>,
        event: Option<&str>,
    ) -> Result<Settled> {
        if let Some(id) = event {
            awaiting.order.note_provider_event(id)?;
        }
        let Some(provider) = self.inner.payments.get(&awaiting.session.provider).cloned() else {
            self.park(lease, &awaiting).await?;
            return Err(Error::PaymentUnavailable(format!(
                "no payment provider named `{}` is registered",
                awaiting.session.provider
            )));
        };
        let authorize_key = authorize_key(&lease.key, lease.attempt);
        let answer = match hint {
            Some(hint) => Ok(Some(hint)),
            None => provider.find_authorization(&authorize_key).await,
        };
        let expired = self.now() >= awaiting.session.expires_at;
        let response = match answer {
            Err(e) => {
                // The provider cannot say now: keep waiting (recovery asks again).
                self.park(lease, &awaiting).await?;
                return Err(e.into());
            }
            Ok(None) if expired => {
                let failure = expired_failure();
                return self.end_waiting(lease, awaiting, failure).await;
            }
            Ok(None) => {
                self.park(lease, &awaiting).await?;
                return Ok(Settled::Waiting(awaiting.session));
            }
            Ok(Some(r)) => r,
        };
        match response.status {
            status if status.is_waiting() && expired => {
                self.end_waiting(lease, awaiting, expired_failure()).await
            }
            status if status.is_waiting() => {
                let mut awaiting = awaiting;
                awaiting.session.status = status;
                if let Some(action) = response.action.filter(|a| a.validate().is_ok()) {
                    awaiting.session.action = Some(action);
                }
                self.park(lease, &awaiting).await?;
                Ok(Settled::Waiting(awaiting.session))
            }
            ProviderStatus::Authorized | ProviderStatus::Captured => {
                let awaiting_again = awaiting.clone();
                let AwaitingPayment {
                    session,
                    order,
                    sale,
                    actor,
                } = awaiting;
                let progress = Progress {
                    hold: Hold::Held(response.clone()),
                    touched: true,
                    provider: Some(provider.clone()),
                    redeemed: !order.tenders.is_empty(),
                };
                let placed = match payment_from(
                    provider.name(),
                    &response,
                    session.amount,
                    authorize_key,
                    sale,
                )
                .and_then(|mut payment| {
                    payment.method = order.payment.method.clone();
                    self.finish_order(lease, order, Some(payment), &actor)
                }) {
                    Ok(order) => self.inner.store.place_order(lease, order, self.now()).await,
                    Err(e) => Err(e),
                };
                let order = match placed {
                    Ok(order) => self.finish_placed(order).await,
                    Err(e @ Error::Storage { .. }) => {
                        // The funds are held and the store may be back in a
                        // moment: keep waiting rather than give the money
                        // back (a commit that happened is found by the next
                        // settle, which sees the checkout completed).
                        return match self.placed_meanwhile(&lease.key).await {
                            Ok(Some(order)) => {
                                let order = self.finish_placed(order).await;
                                Ok(Settled::Placed(Box::new(order)))
                            }
                            Err(_) => Err(e),
                            Ok(None) => {
                                // If this fails too, the checkout stays in
                                // progress with its payment, and recovery
                                // settles it once the lease ends.
                                let _parked = self.park(lease, &awaiting_again).await;
                                Err(e)
                            }
                        };
                    }
                    Err(e) => self.after_failed_attempt(lease, progress, e).await?,
                };
                Ok(Settled::Placed(Box::new(order)))
            }
            _ => {
                // Failed, voided: nothing is held.
                let failure = CheckoutFailure::PaymentDeclined {
                    code: "payment_failed".into(),
                    message: "the payment failed at the provider".into(),
                };
                self.end_waiting(lease, awaiting, failure).await
            }
        }
    }

    /// Ends a waiting payment for good: cancels it at the provider (voids a
    /// hold, refunds a sale, if it completed meanwhile), then releases the
    /// stock and coupon uses and saves `failure` against the key.
    ///
    /// It fences the checkout first: a settler that lost its lease gives
    /// nothing back ([`Error::LeaseLost`]). If the provider cannot be
    /// reached after the fence, the checkout stays in progress and recovery
    /// finishes giving back once the fenced lease ends (a retry with the key
    /// then runs a new attempt).
    pub(super) async fn end_waiting(
        &self,
        lease: &Lease,
        awaiting: AwaitingPayment,
        failure: CheckoutFailure,
    ) -> Result<Settled> {
        let Some(provider) = self.inner.payments.get(&awaiting.session.provider).cloned() else {
            self.park(lease, &awaiting).await?;
            return Err(Error::PaymentUnavailable(format!(
                "no payment provider named `{}` is registered",
                awaiting.session.provider
            )));
        };
        let fenced = self.fence(lease).await?;
        let key = authorize_key(&lease.key, lease.attempt);
        if let Some(held) = provider
            .find_authorization(&key)
            .await
            .map_err(Error::from)?
        {
            self.undo_hold(provider.as_ref(), &fenced, held).await?;
        }
        if !awaiting.order.tenders.is_empty() {
            self.release_redemptions(&fenced).await?;
        }
        tracing::warn!(key = %lease.key, "a waiting payment ended without an order; its stock is released");
        crate::telemetry::compensation("session_ended");
        self.inner
            .store
            .end_checkout(lease, CheckoutEnd::Failed(failure.clone()), self.now())
            .await?;
        Ok(Settled::Failed(failure))
    }

    /// Voids whatever the attempt may hold. False if that could not be done now.
    pub(super) async fn release_hold(
        &self,
        provider: &dyn PaymentProvider,
        fenced: &Fenced,
        hold: Hold,
    ) -> bool {
        let lease = fenced.lease();
        let reference = match hold {
            Hold::None => return true,
            Hold::Held(r) => r,
            Hold::Unknown => match provider
                .find_authorization(&authorize_key(&lease.key, lease.attempt))
                .await
            {
                Ok(Some(r)) => r,
                Ok(None) => return true,
                Err(_) => return false,
            },
        };
        self.undo_hold(provider, fenced, reference).await.is_ok()
    }

    /// Gives back what an attempt that placed no order holds at the
    /// provider: voids a hold (or cancels a payment still waiting), refunds
    /// a sale. `Ok(false)` when there was nothing to give back.
    pub(super) async fn undo_hold(
        &self,
        provider: &dyn PaymentProvider,
        fenced: &Fenced,
        held: ProviderResponse,
    ) -> Result<bool> {
        let (key, attempt) = (&fenced.lease().key, fenced.lease().attempt);
        match held.status {
            ProviderStatus::Authorized
            | ProviderStatus::RequiresAction
            | ProviderStatus::Processing => {
                provider
                    .void(VoidRequest {
                        idempotency_key: void_key(key, attempt),
                        authorization: held.reference,
                    })
                    .await?;
                Ok(true)
            }
            ProviderStatus::Captured => {
                let refunded = held
                    .refunded_total
                    .unwrap_or_else(|| crate::money::Money::zero(held.amount.currency()));
                let left = held
                    .captured_total
                    .unwrap_or(held.amount)
                    .checked_sub(refunded)?;
                if left.is_zero() || left.is_negative() {
                    return Ok(false);
                }
                provider
                    .refund(RefundRequest {
                        idempotency_key: unsell_key(key, attempt),
                        authorization: held.reference,
                        amount: left,
                    })
                    .await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Applies a payment provider's event to the order holding its
    /// authorization: once per event id, in any order of arrival, and without
    /// ever counting a capture or refund twice (amounts are cumulative
    /// totals; one that covers a pending operation settles it). The event is
    /// validated first: ids and texts bounded, amounts in the payment's
    /// currency, not negative and within what the payment holds.
    ///
    /// An event about a checkout's waiting payment (its
    /// [`PaymentSession::reference`]) settles that checkout: funds held
    /// (`authorized`, or `captured` for a sale) place the order, `failed`
    /// ends it and releases its stock; the buyer's return and the event may
    /// arrive in either order, any number of times, and the order is placed
    /// once.
    ///
    /// Only the provider that holds the payment (`Actor::Provider` with the
    /// name the payment records, through a verified webhook) and the system
    /// may apply events.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone else; [`Error::Invalid`],
    /// [`Error::LimitExceeded`] or [`Error::CurrencyMismatch`] for a
    /// malformed event; [`Error::NotFound`] when no order or waiting
    /// checkout has the reference (an event about a payment that is not
    /// the shop's, or an abandoned attempt's: acknowledge it);
    /// [`Error::IllegalTransition`] for an event the payment cannot take;
    /// [`Error::CheckoutInProgress`] while the buyer's return settles the
    /// same checkout (deliver the event again later).
    #[tracing::instrument(name = "apply_provider_event", skip_all, fields(event_id = %event.id))]
    pub async fn apply_provider_event(
        &self,
        actor: &Actor,
        event: &crate::payment::ProviderEvent,
    ) -> Result<EventOutcome> {
        if !matches!(actor, Actor::Provider(_) | Actor::System) {
            return Err(Error::Forbidden);
        }
        event.validate()?;
        let store = &self.inner.store;
        let deadline = Instant::now() + self.inner.config.checkout_wait;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            if let Some(order) = store
                .order_by_payment_reference(&event.authorization)
                .await?
            {
                return self.apply_event_to_order(actor, event, order).await;
            }
            let Some(record) = store
                .checkout_by_payment_reference(&event.authorization)
                .await?
            else {
                // Placed between the two reads?
                return match store
                    .order_by_payment_reference(&event.authorization)
                    .await?
                {
                    Some(order) => self.apply_event_to_order(actor, event, order).await,
                    None => Err(Error::not_found("authorization", &event.authorization)),
                };
            };
            let awaiting = record
                .awaiting
                .as_deref()
                .filter(|a| a.session.reference == event.authorization);
            let Some(awaiting) = awaiting else {
                return match record.state {
                    CheckoutState::Failed { failure } => Ok(EventOutcome::CheckoutFailed {
                        checkout_key: record.key,
                        failure,
                    }),
                    CheckoutState::Completed { .. } => {
                        // Placed meanwhile: the order has the reference,
                        // unless another attempt placed it.
                        match store
                            .order_by_payment_reference(&event.authorization)
                            .await?
                        {
                            Some(order) => self.apply_event_to_order(actor, event, order).await,
                            None => Err(Error::not_found("authorization", &event.authorization)),
                        }
                    }
                    _ => Err(Error::not_found("authorization", &event.authorization)),
                };
            };
            // A provider reports on its own payments only.
            let provider = awaiting.session.provider.clone();
            if let Actor::Provider(reporter) = actor
                && *reporter != provider
            {
                return Err(Error::Forbidden);
            }
            // An event already applied to the waiting payment changes
            // nothing, whatever it says now.
            if awaiting.order.applied_provider_event(&event.id) {
                return Ok(EventOutcome::Waiting(awaiting.session.clone()));
            }
            let hint = event_hint(event, &awaiting.session)?;
            match record.state {
                CheckoutState::AwaitingPayment => {
                    let viewer = Actor::Provider(provider);
                    match self
                        .claim_and_settle(&record.key, hint, Some(&event.id))
                        .await?
                        .map(|(_, settled)| settled)
                    {
                        Some(Settled::Placed(order)) => {
                            crate::telemetry::checkout("session_completed");
                            return Ok(EventOutcome::Order(Box::new((*order).visible_to(&viewer))));
                        }
                        Some(Settled::Waiting(session)) => {
                            return Ok(EventOutcome::Waiting(session));
                        }
                        Some(Settled::Failed(failure)) => {
                            return Ok(EventOutcome::CheckoutFailed {
                                checkout_key: record.key,
                                failure,
                            });
                        }
                        // Someone else took it meanwhile: look again.
                        None => {}
                    }
                }
                CheckoutState::InProgress if record.lease_until <= self.now() => {
                    self.recover_checkout(&record.key).await?;
                }
                _ => {
                    // The buyer's return is settling it.
                    if Instant::now() >= deadline {
                        return Err(Error::CheckoutInProgress(record.key.to_string()));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
            }
        }
    }

    /// Claims the waiting checkout `key` and settles it with `hint` (what
    /// an event reported; `None`: ask the provider). `None` when it is not
    /// waiting (settled meanwhile, or someone else is settling it).
    pub(super) async fn claim_and_settle(
        &self,
        key: &IdempotencyKey,
        hint: Option<ProviderResponse>,
        event: Option<&str>,
    ) -> Result<Option<(Lease, Settled)>> {
        let claimed = self
            .inner
            .store
            .claim_awaiting(key, self.now() + self.inner.config.checkout_lease)
            .await?;
        match claimed {
            Some((lease, awaiting)) => {
                let settled = self.settle(&lease, awaiting, hint, event).await?;
                Ok(Some((lease, settled)))
            }
            None => Ok(None),
        }
    }

    /// Applies `event` to the placed `order` holding its authorization.
    pub(super) async fn apply_event_to_order(
        &self,
        actor: &Actor,
        event: &crate::payment::ProviderEvent,
        order: Order,
    ) -> Result<EventOutcome> {
        // A provider reports on its own payments only.
        let name = order.payment().provider.clone();
        if let Actor::Provider(reporter) = actor
            && *reporter != name
        {
            return Err(Error::Forbidden);
        }
        let now = self.now();
        let order = self
            .update_order(order, |order| order.apply_provider_event(event, &name, now))
            .await?;
        Ok(EventOutcome::Order(Box::new(
            order.visible_to(&Actor::Provider(name)),
        )))
    }
}
