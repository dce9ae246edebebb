//! Capturing and cancelling placed orders.

use super::*;

impl Engine {
    /// A placed order's last steps: captured when capture is immediate,
    /// and its tax document committed (both left to recovery when a
    /// provider cannot be reached).
    pub(super) async fn finish_placed(&self, order: Order) -> Order {
        let order = Box::pin(self.capture_placed(order)).await;
        Box::pin(self.drive_tax(order)).await
    }

    async fn capture_placed(&self, order: Order) -> Order {
        if self.inner.config.capture != CaptureMode::Immediate
            || order.payment().status() != PaymentStatus::Authorized
        {
            return order;
        }
        // A failed capture leaves the order authorized with the capture
        // pending or failed; a retry of the checkout, `capture` or recovery
        // finishes it.
        let id = order.id();
        if order.payment().pending().is_some() {
            // Placed with its capture recorded as pending: call the provider.
            return match Box::pin(self.drive(order.clone())).await {
                Ok(captured) => captured,
                Err(_) => self.inner.store.order(id).await.unwrap_or(order),
            };
        }
        let now = self.now();
        match self
            .run_operation(order.clone(), |o| {
                Ok(
                    o.begin_capture(None, CHECKOUT_CAPTURE, now, &Actor::System)?
                        .map(|_| Effects::default()),
                )
            })
            .await
        {
            Ok(captured) => captured,
            Err(_) => self.inner.store.order(id).await.unwrap_or(order),
        }
    }

    /// Captures everything still authorized on an order (staff and the
    /// system only), by the [money-path protocol](crate::money_path).
    /// Idempotent: a second call finds the first capture and changes nothing.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`], [`Error::IllegalTransition`]
    /// on a closed order, [`Error::PaymentInProgress`] while another
    /// operation is in flight, or the provider's error.
    #[tracing::instrument(name = "capture", skip_all, fields(order_id = %order_id))]
    pub async fn capture(&self, actor: &Actor, order_id: OrderId) -> Result<Order> {
        self.capture_with(actor, order_id, None, "capture".to_owned())
            .await
    }

    /// Captures `amount` (everything still authorized when `None`) under the
    /// caller's idempotency key (staff and the system only). Several partial
    /// captures may follow each other up to the authorized amount; the same
    /// key twice captures once.
    ///
    /// # Errors
    /// As [`Engine::capture`]; [`Error::Invalid`] when the amount exceeds
    /// what is still authorized.
    #[tracing::instrument(name = "capture_partial", skip_all, fields(order_id = %order_id))]
    pub async fn capture_partial(
        &self,
        actor: &Actor,
        order_id: OrderId,
        amount: Option<crate::money::Money>,
        key: &IdempotencyKey,
    ) -> Result<Order> {
        self.capture_with(actor, order_id, amount, format!("capture:{key}"))
            .await
    }

    pub(super) async fn capture_with(
        &self,
        actor: &Actor,
        order_id: OrderId,
        amount: Option<crate::money::Money>,
        request_key: String,
    ) -> Result<Order> {
        if !actor.allows(crate::actor::Permission::Orders) {
            return Err(Error::Forbidden);
        }
        let order = self.load_order(actor, order_id).await?;
        let now = self.now();
        let order = self
            .run_operation(order, |o| {
                Ok(o.begin_capture(amount, &request_key, now, actor)?
                    .map(|_| Effects::default()))
            })
            .await?;
        Ok(order.visible_to(actor))
    }

    /// Cancels an order that has not shipped: voids the payment hold (or
    /// refunds what was captured) by the [money-path
    /// protocol](crate::money_path), then gives the stock and any coupon
    /// uses back, and records why. The order's customer (a guest with the
    /// order's access token) or staff may cancel. Idempotent: cancelling a
    /// cancelled order returns it unchanged; a cancellation interrupted by
    /// a provider outage is finished by the next call or by recovery.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::IllegalTransition`] once anything has
    /// shipped; [`Error::PaymentInProgress`] while another operation is in
    /// flight; the provider's error.
    #[tracing::instrument(name = "cancel", skip_all, fields(order_id = %order_id))]
    pub async fn cancel(&self, actor: &Actor, order_id: OrderId, reason: &str) -> Result<Order> {
        if matches!(actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        let order = self.load_order(actor, order_id).await?;
        let now = self.now();
        let order = self
            .run_operation(order, |o| {
                if o.status() == OrderStatus::Cancelled || o.cancellation().is_some() {
                    return Ok(None);
                }
                o.begin_cancel(reason, now, actor)?;
                Ok(Some(Effects::default()))
            })
            .await?;
        Ok(order.visible_to(actor))
    }
}
