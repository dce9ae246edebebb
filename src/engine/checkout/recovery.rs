//! Recovery: stale attempts, expired sessions, pending payment operations
//! and stranded captures.

use super::*;

impl Engine {
    /// Cleans up after crashes: releases expired stock reservations and, for
    /// every checkout attempt whose lease ended without an order, voids its
    /// payment hold, releases its stock and lets its key run again.
    ///
    /// Safe to run at any time, from any number of instances at once.
    ///
    /// # Errors
    /// the first store or provider error met; what was cleaned up before it
    /// stands, and the next run goes on.
    #[tracing::instrument(name = "recover", skip_all)]
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        // Stale attempts and expired payment sessions first: a session
        // completed at the provider is placed while its stock is still held.
        loop {
            let stale = self.inner.store.stale_checkouts(self.now(), 100).await?;
            if stale.is_empty() {
                break;
            }
            let mut progressed = false;
            for record in stale {
                // One checkout the provider cannot settle now does not stop
                // the others.
                let recovered = match self.recover_checkout(&record.key).await {
                    Ok(r) => r,
                    Err(e) if record.awaiting.is_some() => {
                        tracing::warn!(key = %record.key, error = %e, "a waiting payment could not be settled now");
                        None
                    }
                    Err(e) => return Err(e),
                };
                match recovered {
                    None => {}
                    Some(Recovered::Reset { voided }) => {
                        report.reset_checkouts += 1;
                        report.voided_authorizations += u64::from(voided);
                    }
                    Some(Recovered::Completed) => report.completed_sessions += 1,
                    Some(Recovered::Ended) => report.ended_sessions += 1,
                }
                progressed |= recovered.is_some();
            }
            if !progressed {
                break;
            }
        }
        report.released_reservations = self.inner.store.release_expired(self.now()).await?;
        self.settle_pending(&mut report).await?;
        if self.inner.config.capture == CaptureMode::Immediate {
            report.captured_orders += self.capture_stranded().await?;
        }
        Ok(report)
    }

    /// Drives every order with a payment operation or a cancellation in
    /// flight: the pending call is sent again under its own key (answered
    /// once by the provider) and its answer recorded. Returns how many
    /// orders were settled; one whose provider is still unreachable stays
    /// pending for the next run.
    pub(super) async fn settle_pending(&self, report: &mut RecoveryReport) -> Result<()> {
        // A live caller finishes its own operation; recovery takes over once
        // an operation is older than the checkout lease (racing it would be
        // safe — same provider key, settled once — but wasteful).
        let cutoff = self.now() - self.inner.config.checkout_lease;
        let mut before = None;
        loop {
            let page = self
                .inner
                .store
                .find_orders(&crate::order::OrderQuery {
                    pending_work: true,
                    before,
                    limit: 100,
                    ..Default::default()
                })
                .await?;
            for order in &page {
                if let Some(c) = order.charge_in_flight()
                    && c.tried_at.is_none_or(|t| t <= cutoff)
                {
                    let (order_id, charge) = (order.id(), c.id);
                    tracing::warn!(%order_id, "recovery finishing a charge's try");
                    if self
                        .finish_charge(order.clone(), charge, None)
                        .await
                        .is_ok()
                    {
                        report.settled_charges += 1;
                    }
                    continue;
                }
                let stale = match order.pending_operation() {
                    Some(op) => op.begun_at.is_none_or(|t| t <= cutoff),
                    None => order
                        .cancellation()
                        .is_some_and(|c| c.requested_at <= cutoff),
                };
                if !stale {
                    // Only a call to the tax service waits: send it (its
                    // key makes racing a live caller harmless).
                    if order.pending_operation().is_none() && order.cancellation().is_none() {
                        if order.tax_step().is_some() {
                            let done = Box::pin(self.drive_tax(order.clone())).await;
                            if done.tax_step().is_none() {
                                report.tax_calls += 1;
                            }
                        }
                        if order.label_step().is_some()
                            && let Ok(done) = Box::pin(self.drive_labels(order.clone())).await
                            && done.label_step().is_none()
                        {
                            report.label_calls += 1;
                        }
                    }
                    continue;
                }
                let was = order.payment().status;
                tracing::warn!(order_id = %order.id(), "recovery finishing a pending payment operation");
                // Refused by the provider (recorded) or still unreachable:
                // either way nothing more to do now.
                if let Ok(done) = self.drive(order.clone()).await {
                    if was == PaymentStatus::Authorized
                        && done.payment().status == PaymentStatus::Captured
                    {
                        report.captured_orders += 1;
                    } else {
                        report.settled_operations += 1;
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == 100 => before = Some(last.id()),
                _ => return Ok(()),
            }
        }
    }

    /// With immediate capture, an order still placed and only authorized
    /// after the checkout lease was left behind by a stopped process: capture
    /// it (a no-op if the checkout's capture already happened).
    pub(super) async fn capture_stranded(&self) -> Result<u64> {
        let cutoff = self.now() - self.inner.config.checkout_lease;
        let mut before = None;
        let mut captured = 0;
        loop {
            let page = self
                .inner
                .store
                .find_orders(&crate::order::OrderQuery {
                    status: Some(OrderStatus::Placed),
                    placed_until: Some(cutoff),
                    before,
                    limit: 100,
                    ..Default::default()
                })
                .await?;
            for order in &page {
                if order.payment().status == PaymentStatus::Authorized
                    && order
                        .payment()
                        .operation_for_request(CHECKOUT_CAPTURE)
                        .is_none()
                {
                    let done = self.finish_placed(order.clone()).await;
                    if done.payment().status != PaymentStatus::Authorized {
                        captured += 1;
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == 100 => before = Some(last.id()),
                _ => return Ok(captured),
            }
        }
    }

    /// Cleans up one stale attempt. `None` if it was not stale (any more)
    /// or its payment still waits; otherwise what was done.
    pub(super) async fn recover_checkout(&self, key: &IdempotencyKey) -> Result<Option<Recovered>> {
        let now = self.now();
        let Some(lease) = self
            .inner
            .store
            .claim_stale(key, now, now + self.inner.config.checkout_lease)
            .await?
        else {
            return Ok(None);
        };
        let record = self.inner.store.checkout(key).await?;
        if let Some(awaiting) = record.and_then(|r| r.awaiting) {
            // A waiting payment whose session expired, or whose settling
            // stopped half-way: settle it as a returning buyer would.
            return match self.settle(&lease, *awaiting, None, None).await? {
                Settled::Placed(_) => Ok(Some(Recovered::Completed)),
                Settled::Failed(_) => Ok(Some(Recovered::Ended)),
                Settled::Waiting(_) => Ok(None),
            };
        }
        // The attempt recorded no provider: ask each (its key is unique).
        let attempt_key = authorize_key(key, lease.attempt);
        let mut found = None;
        for provider in self.inner.payments.all() {
            if let Some(auth) = provider
                .find_authorization(&attempt_key)
                .await
                .map_err(Error::from)?
            {
                found = Some((provider.clone(), auth));
                break;
            }
        }
        // Recovery holds the lease it just took; fencing it too keeps one
        // rule for every path that gives back.
        let fenced = self.fence(&lease).await?;
        let mut voided = false;
        if let Some((provider, auth)) = found
            && self.undo_hold(provider.as_ref(), &fenced, auth).await?
        {
            voided = true;
            crate::telemetry::compensation("hold_voided");
            tracing::warn!(key = %key, attempt = lease.attempt, "recovery gave back the hold of a stale checkout");
        }
        self.release_redemptions(&fenced).await?;
        self.inner
            .store
            .end_checkout(&lease, CheckoutEnd::Retryable, self.now())
            .await?;
        Ok(Some(Recovered::Reset { voided }))
    }
}
