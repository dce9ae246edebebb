//! Agent checkout sessions: the engine side of the agentic protocols.
//!
//! An agent platform ([`Actor::Agent`]) opens a session over a new cart,
//! sets what the cart should hold in one call per protocol update
//! ([`Engine::update_agent_session`]: lines, codes, buyer, destinations,
//! selections — applied to the cart in one versioned write), prices it with
//! the engine's pricing, and completes it with the engine's own checkout
//! (the same idempotency, stock reservation, money path and payment
//! sessions). Only the platform that opened a session reaches it, and the
//! order it placed; to anyone else it does not exist ([`Error::NotFound`]).

use std::collections::BTreeMap;

use crate::actor::Actor;
use crate::agent::{
    AgentBuyer, AgentProtocol, AgentSession, AgentSessionId, AgentSessionStatus, Destination,
    check_agent_name,
};
use crate::cart::Cart;
use crate::checkout::{CheckoutRequest, CheckoutStep};
use crate::error::{Error, Result};
use crate::id::{IdempotencyKey, OrderId, VariantId};
use crate::inventory::StockSummary;
use crate::money::{Currency, Money};
use crate::order::Order;
use crate::pricing::PricedCart;
use crate::shipping::ShippingRate;

use super::{Engine, gave_up, pause_before_retry};

/// Most lines an agent update sets.
pub const MAX_AGENT_LINES: usize = 100;

/// What an agent wants its session to hold. Every field left `None` stays
/// as it is; a field given replaces the old value whole (the protocols'
/// updates are replacements).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AgentUpdate {
    /// The cart's lines: variant and units (each 1 to
    /// [`MAX_QUANTITY_PER_LINE`](crate::cart::MAX_QUANTITY_PER_LINE)), at most
    /// [`MAX_AGENT_LINES`]; a variant listed twice is an error.
    pub lines: Option<Vec<(VariantId, u32)>>,
    /// The discount codes entered (unknown ones stay on the cart and are
    /// explained as not applied).
    pub codes: Option<Vec<String>>,
    /// The buyer (the e-mail goes on the cart).
    pub buyer: Option<AgentBuyer>,
    /// The destinations offered.
    pub destinations: Option<Vec<Destination>>,
    /// The destination selected, by its id (`Some(None)` clears it).
    pub selected_destination: Option<Option<String>>,
    /// The shipping option selected, by method code (`Some(None)` clears
    /// it).
    pub selected_option: Option<Option<String>>,
    /// Where the agent wants order events.
    pub webhook_url: Option<String>,
}

crate::domain::setters!(AgentUpdate {
    lines: Option<Vec<(VariantId, u32)>>,
    codes: Option<Vec<String>>,
    buyer: Option<AgentBuyer>,
    destinations: Option<Vec<Destination>>,
    selected_destination: Option<Option<String>>,
    selected_option: Option<Option<String>>,
    webhook_url: Option<String>,
} into {});

/// How an agent pays when it completes a session: a delegated credential
/// the payment provider understands (a vaulted token, a network token).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentPayment {
    /// The provider registered under this name (the default one when
    /// `None`).
    pub provider: Option<String>,
    /// The token passed to the provider.
    pub token: String,
    /// The payment method among the provider's ("card").
    pub method: Option<String>,
    /// The total the buyer was shown: checkout refuses another
    /// ([`Error::PriceChanged`]).
    pub expected_total: Option<Money>,
}

impl std::fmt::Debug for AgentPayment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentPayment")
            .field("provider", &self.provider)
            .field("method", &self.method)
            .field("expected_total", &self.expected_total)
            .finish_non_exhaustive()
    }
}

impl AgentPayment {
    /// Pays with `token` at the default provider.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            provider: None,
            token: token.into(),
            method: None,
            expected_total: None,
        }
    }
}

crate::domain::setters!(AgentPayment {} into {
    provider: Option<String>,
    method: Option<String>,
    expected_total: Option<Money>,
});

/// A session with its cart, priced: what the protocols render.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentView {
    /// The session.
    pub session: AgentSession,
    /// Its cart.
    pub cart: Cart,
    /// The cart priced by the engine (an error when it cannot be priced
    /// as it stands: a method the destination no longer offers, say).
    pub priced: std::result::Result<PricedCart, Error>,
    /// Every shipping option offered for the selected destination, with
    /// its price once the cart's promotions are applied (free shipping
    /// makes it zero), in the rate source's order.
    pub options: Vec<(ShippingRate, Money)>,
    /// The order, once the session is completed.
    pub order: Option<Order>,
}

impl Engine {
    /// Opens an agent session over a new cart in `currency`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless an agent platform is acting;
    /// [`Error::Invalid`] for an agent name that is not 1 to
    /// [`MAX_AGENT_NAME_LEN`](crate::agent::MAX_AGENT_NAME_LEN) visible
    /// ASCII characters; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn open_agent_session(
        &self,
        actor: &Actor,
        protocol: AgentProtocol,
        currency: Currency,
    ) -> Result<AgentSession> {
        let Actor::Agent(agent) = actor else {
            return Err(Error::Forbidden);
        };
        check_agent_name(agent)?;
        let cart = self.create_cart(actor, currency).await?;
        let session = AgentSession::open(
            agent,
            protocol,
            cart.id(),
            currency,
            self.now(),
            self.inner.config.agent_session_ttl,
        );
        self.inner.store.create_agent_session(&session).await?;
        tracing::debug!(agent_session_id = %session.id, "agent session opened");
        Ok(session)
    }

    /// One session, as its agent (or staff, or the system) may see it.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown session or one another agent
    /// opened (and for customers and guests); [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(agent_session_id = %id))]
    pub async fn agent_session(&self, actor: &Actor, id: AgentSessionId) -> Result<AgentSession> {
        let session = self
            .inner
            .store
            .agent_session(id)
            .await?
            .ok_or_else(|| Error::not_found("agent session", id))?;
        let mine = match actor {
            Actor::Agent(agent) => *agent == session.agent,
            other => other.allows(crate::actor::Permission::Orders),
        };
        if !mine {
            return Err(Error::not_found("agent session", id));
        }
        Ok(session)
    }

    /// The session, for a change: only the agent that opened it may make
    /// one (staff and the system read it; to anyone else it does not exist).
    async fn own_agent_session(&self, actor: &Actor, id: AgentSessionId) -> Result<AgentSession> {
        let session = self.agent_session(actor, id).await?;
        match actor {
            Actor::Agent(agent) if *agent == session.agent => Ok(session),
            _ => Err(Error::Forbidden),
        }
    }

    /// The session with its cart, priced, and its shipping options each
    /// priced with the cart's promotions. Access as
    /// [`Engine::agent_session`].
    ///
    /// # Errors
    /// As [`Engine::agent_session`].
    #[tracing::instrument(skip_all, fields(agent_session_id = %id))]
    pub async fn agent_view(&self, actor: &Actor, id: AgentSessionId) -> Result<AgentView> {
        let session = self.agent_session(actor, id).await?;
        self.view_of(session).await
    }

    async fn view_of(&self, mut session: AgentSession) -> Result<AgentView> {
        let cart = self.inner.store.cart(session.cart_id).await?;
        // The order (with its cart's completion) and the session's record
        // of it are two commits: between them, or when a process stopped
        // after the first, or a waiting payment was settled without the
        // agent asking again, the cart already names the order. It is the
        // session's order: shown so, to the agent and to its webhooks.
        if session.order_id.is_none()
            && let crate::cart::CartStatus::Completed { order_id } = cart.status()
        {
            complete(&mut session, order_id);
        }
        let order = match session.order_id {
            Some(order) => Some(self.inner.store.order(order).await?),
            None => None,
        };
        let priced = self.price(&cart).await;
        let mut options = Vec::new();
        if let Ok(p) = &priced
            && cart.shipping_address().is_some()
        {
            for rate in &p.shipping_options {
                let mut trial = cart.clone();
                // Priced as if chosen; never saved.
                if trial.set_shipping_method(&rate.code).is_err() {
                    continue;
                }
                let price = match self.price(&trial).await {
                    Ok(t) => t.shipping.as_ref().map_or(rate.price, |s| s.total),
                    Err(_) => continue,
                };
                options.push((rate.clone(), price));
            }
        }
        Ok(AgentView {
            session,
            cart,
            priced,
            options,
            order,
        })
    }

    /// Sets what the session's cart holds ([`AgentUpdate`]): lines, codes,
    /// the buyer's e-mail, the selected destination as the shipping
    /// address and the selected option as the shipping method, in one
    /// versioned write of the cart, then the session. Lines are checked
    /// against the catalog (for sale, priced in the cart's currency) and
    /// against the stock available now (a tracked variant without
    /// back-orders), so an agent learns at once what cannot be bought;
    /// stock is reserved only when the session is completed. A shipping
    /// option the new destination does not offer is dropped.
    ///
    /// # Errors
    /// As [`Engine::agent_session`]; [`Error::IllegalTransition`] once it
    /// is completed or canceled, or expired; [`Error::NotFound`] for an
    /// unknown variant or destination id; [`Error::NotPurchasable`],
    /// [`Error::NoPrice`], [`Error::OutOfStock`]; [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for bad input (a zero quantity, a variant
    /// listed twice, a malformed e-mail or code, too many destinations),
    /// naming it; [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`]. Nothing changes on an error.
    #[tracing::instrument(skip_all, fields(agent_session_id = %id))]
    pub async fn update_agent_session(
        &self,
        actor: &Actor,
        id: AgentSessionId,
        update: AgentUpdate,
    ) -> Result<AgentView> {
        if let Some(buyer) = &update.buyer {
            buyer.clone().validated()?;
        }
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let mut session = self.own_agent_session(actor, id).await?;
            self.require_live(&session)?;
            let mut next = session.clone();
            apply_session_fields(&mut next, &update)?;
            next.validate()?;
            let cart = self.inner.store.cart(session.cart_id).await?;
            if let Some(lines) = &update.lines {
                self.check_agent_lines(&cart, lines).await?;
            }
            let destination = next.destination().map(|d| d.address.clone());
            let email = next.buyer.as_ref().and_then(|b| b.email.clone());
            let policy = self.inner.promotion_settings.codes;
            let cart = self
                .modify_cart(actor, session.cart_id, |c| {
                    if let Some(lines) = &update.lines {
                        set_lines(c, lines)?;
                    }
                    if let Some(codes) = &update.codes {
                        for old in c.coupon_codes().to_vec() {
                            c.remove_coupon_code_with(&old, &policy)?;
                        }
                        for code in codes {
                            c.add_coupon_code_with(code, &policy)?;
                        }
                    }
                    if let Some(email) = &email {
                        c.set_email(crate::customer::Email::new(email)?)?;
                    }
                    if let Some(address) = &destination {
                        c.set_shipping_address(address.clone())?;
                    }
                    match &next.selected_option {
                        Some(code) => c.set_shipping_method(code)?,
                        None => c.clear_shipping_method()?,
                    }
                    Ok(())
                })
                .await?;
            // An option the destination does not offer is dropped, not kept
            // to fail at completion.
            if next.selected_option.is_some()
                && matches!(self.price(&cart).await, Err(Error::ShippingUnavailable(_)))
            {
                next.selected_option = None;
                self.modify_cart(actor, session.cart_id, Cart::clear_shipping_method)
                    .await?;
            }
            next.version = session.version.saturating_add(1);
            next.updated_at = self.now();
            match self.inner.store.save_agent_session(&next).await {
                Ok(()) => {
                    session = next;
                    return self.view_of(session).await;
                }
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(gave_up("agent session"))
    }

    /// Checks an agent's lines before they go on the cart: each variant
    /// may be added, and enough is in stock now.
    async fn check_agent_lines(&self, cart: &Cart, lines: &[(VariantId, u32)]) -> Result<()> {
        crate::validate::at_most("agent lines", lines.len(), MAX_AGENT_LINES)?;
        let mut seen = std::collections::HashSet::new();
        for (variant, quantity) in lines {
            if !seen.insert(*variant) {
                return Err(Error::invalid(
                    "line items",
                    format!("{variant} listed twice"),
                ));
            }
            if *quantity == 0 {
                return Err(Error::invalid("quantity", "must be at least 1"));
            }
            let entry = self.addable(cart, *variant).await?;
            if entry.variant.price(cart.currency()).is_none() {
                return Err(Error::NoPrice {
                    variant_id: *variant,
                    currency: cart.currency(),
                });
            }
            if let crate::catalog::InventoryPolicy::Tracked {
                allow_backorder: false,
            } = entry.variant.inventory()
            {
                let stock: StockSummary = self.inner.store.stock(*variant).await?;
                if stock.available() < i64::from(*quantity) {
                    return Err(Error::OutOfStock {
                        variant_id: *variant,
                        requested: *quantity,
                        available: stock.available().max(0),
                    });
                }
            }
            crate::cart::check_quantity(*quantity)?;
        }
        Ok(())
    }

    fn require_live(&self, session: &AgentSession) -> Result<()> {
        session.require_open("changed")?;
        if session.expires_at <= self.now() {
            return Err(Error::IllegalTransition {
                entity: "agent session",
                from: "expired".into(),
                to: "changed".into(),
            });
        }
        Ok(())
    }

    /// Completes a session: the engine's checkout of its cart under a key
    /// derived from the session (so retrying, from any instance, never
    /// charges twice), paying with the agent's delegated credential. A
    /// placed order completes the session; a payment that waits for the
    /// buyer (3-D Secure) leaves it open with the payment session returned;
    /// a declined payment leaves it open for another credential (the next
    /// attempt checks out under a new key). Completing a completed session
    /// returns its order again.
    ///
    /// # Errors
    /// As [`Engine::agent_session`]; [`Error::IllegalTransition`] for a
    /// canceled or expired session; [`Error::Incomplete`] when the cart
    /// ships and no destination or option is selected; every error of
    /// [`Engine::start_checkout`] ([`Error::OutOfStock`],
    /// [`Error::PaymentDeclined`], [`Error::PriceChanged`], …).
    #[tracing::instrument(skip_all, fields(agent_session_id = %id))]
    pub async fn complete_agent_session(
        &self,
        actor: &Actor,
        id: AgentSessionId,
        payment: AgentPayment,
    ) -> Result<(AgentView, CheckoutStep)> {
        let session = self.own_agent_session(actor, id).await?;
        if session.status != AgentSessionStatus::Completed {
            self.require_live(&session)?;
            let cart = self.inner.store.cart(session.cart_id).await?;
            if cart.status() == crate::cart::CartStatus::Active {
                let priced = self.price(&cart).await?;
                if priced.requires_shipping {
                    if session.destination().is_none() || cart.shipping_address().is_none() {
                        return Err(Error::Incomplete("shipping address"));
                    }
                    if cart.shipping_method().is_none() {
                        return Err(Error::Incomplete("shipping method"));
                    }
                }
            }
        }
        let cart = self.inner.store.cart(session.cart_id).await?;
        if cart.status() == crate::cart::CartStatus::Active && cart.email().is_none() {
            // No e-mail from the buyer: the agent platform is the buyer's
            // channel (its webhooks); the order records an address that
            // can never be delivered to.
            let placeholder = crate::customer::Email::new(&format!(
                "agent-session-{}@agent.invalid",
                session.id.as_uuid().simple()
            ))?;
            self.modify_cart(actor, session.cart_id, |c| c.set_email(placeholder.clone()))
                .await?;
        }
        let key = IdempotencyKey::new(format!(
            "agent-session:{}:{}",
            session.id.as_uuid().simple(),
            session.failed_attempts
        ))?;
        // A payment that waited for the buyer is settled with the provider
        // (the buyer may have acted since); otherwise the checkout runs, or
        // returns its outcome again for the same key.
        // A completed session's key holds its order; a waiting one's, its
        // payment: both are read back whatever credential comes now.
        let settled = session.status == AgentSessionStatus::Completed
            || (session.awaiting_payment && session.status == AgentSessionStatus::Open);
        let attempt = if settled {
            Box::pin(self.complete_checkout(actor, session.cart_id, &key)).await
        } else {
            let mut request =
                CheckoutRequest::new(session.cart_id, key.clone(), payment.token, actor.clone());
            request.provider = payment.provider;
            request.payment_method = payment.method;
            request.expected_total = payment.expected_total;
            match Box::pin(self.start_checkout(request)).await {
                // The key holds another credential's attempt: one racing
                // this call, or one whose end was not yet recorded on the
                // session. Its outcome decides.
                Err(Error::IdempotencyConflict(_)) => {
                    match Box::pin(self.complete_checkout(actor, session.cart_id, &key)).await {
                        Err(e) if ended_without_charge(&e) => Err(e),
                        Err(Error::Invalid { .. }) | Err(Error::CheckoutInProgress(_)) => {
                            Err(Error::Conflict("agent session"))
                        }
                        other => other,
                    }
                }
                other => other,
            }
        };
        let step = match attempt {
            Ok(step) => step,
            Err(e) if ended_without_charge(&e) => {
                // The attempt is over and took nothing: the next completion
                // checks out under a new key (the old one keeps its failure).
                let failure = e.to_string();
                self.settle_agent_session(actor, id, |s| {
                    s.failed_attempts = s.failed_attempts.saturating_add(1);
                    s.last_failure = Some(failure.clone());
                    s.awaiting_payment = false;
                    s.continue_url = None;
                })
                .await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let session = match &step {
            CheckoutStep::Placed(outcome) => {
                let order = outcome.order.id;
                self.settle_agent_session(actor, id, |s| complete(s, order))
                    .await?
            }
            CheckoutStep::AwaitingPayment(waiting) => {
                let url = match &waiting.action {
                    Some(crate::payment::CustomerAction::Redirect { url }) => Some(url.clone()),
                    _ => None,
                };
                self.settle_agent_session(actor, id, |s| {
                    s.awaiting_payment = true;
                    s.continue_url = url.clone();
                })
                .await?
            }
        };
        Ok((self.view_of(session).await?, step))
    }

    /// Saves a change the engine decided (a completion, a failed
    /// attempt), whatever state the session is in, retrying on conflicts.
    async fn settle_agent_session(
        &self,
        actor: &Actor,
        id: AgentSessionId,
        f: impl Fn(&mut AgentSession),
    ) -> Result<AgentSession> {
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let session = self.agent_session(actor, id).await?;
            let mut next = session.clone();
            f(&mut next);
            if next == session {
                return Ok(session);
            }
            next.version = session.version.saturating_add(1);
            next.updated_at = self.now();
            match self.inner.store.save_agent_session(&next).await {
                Ok(()) => return Ok(next),
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(gave_up("agent session"))
    }

    /// Cancels an open session; its cart is left as it is, never checked
    /// out. Canceling a canceled session returns it unchanged.
    ///
    /// # Errors
    /// As [`Engine::agent_session`]; [`Error::IllegalTransition`] for a
    /// completed session; [`Error::PaymentPending`]-free: a session whose
    /// payment waits for the buyer is canceled with the waiting checkout
    /// ([`Engine::cancel_checkout`]) — [`Error::Conflict`] when concurrent
    /// changes keep winning; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(agent_session_id = %id))]
    pub async fn cancel_agent_session(
        &self,
        actor: &Actor,
        id: AgentSessionId,
    ) -> Result<AgentView> {
        let session = self.own_agent_session(actor, id).await?;
        match session.status {
            AgentSessionStatus::Canceled => return self.view_of(session).await,
            AgentSessionStatus::Completed => {
                return Err(Error::IllegalTransition {
                    entity: "agent session",
                    from: "completed".into(),
                    to: "canceled".into(),
                });
            }
            _ => {}
        }
        let key = IdempotencyKey::new(format!(
            "agent-session:{}:{}",
            session.id.as_uuid().simple(),
            session.failed_attempts
        ))?;
        // A payment waiting for the buyer is given up first, so no order
        // appears after the session says canceled.
        match self.cancel_checkout(actor, session.cart_id, &key).await {
            Ok(()) | Err(Error::NotFound { .. } | Error::Invalid { .. }) => {}
            Err(e) => return Err(e),
        }
        // A checkout that placed its order completed the cart: the session
        // is completed, whatever it says yet.
        let cart = self.inner.store.cart(session.cart_id).await?;
        if cart.status() != crate::cart::CartStatus::Active {
            return Err(Error::IllegalTransition {
                entity: "agent session",
                from: "completed".into(),
                to: "canceled".into(),
            });
        }
        let session = self
            .settle_agent_session(actor, id, |s| {
                if s.status == AgentSessionStatus::Open {
                    s.status = AgentSessionStatus::Canceled;
                }
            })
            .await?;
        if session.status != AgentSessionStatus::Canceled {
            return Err(Error::IllegalTransition {
                entity: "agent session",
                from: session.status_name().into(),
                to: "canceled".into(),
            });
        }
        self.view_of(session).await
    }

    /// The order an agent's session placed, with the session.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown order, one no agent placed, or
    /// one another agent placed (and for customers and guests; staff use
    /// [`Engine::order`]); [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(order_id = %order))]
    pub async fn agent_order(&self, actor: &Actor, order: OrderId) -> Result<AgentView> {
        let found = match self.inner.store.order(order).await {
            Ok(o) => o,
            Err(Error::NotFound { .. }) => return Err(Error::not_found("order", order)),
            Err(e) => return Err(e),
        };
        let session = self
            .inner
            .store
            .agent_session_for_cart(found.cart_id())
            .await?
            .filter(|s| s.order_id.is_none_or(|o| o == order))
            .ok_or_else(|| Error::not_found("order", order))?;
        let session = self
            .agent_session(actor, session.id)
            .await
            .map_err(|_| Error::not_found("order", order))?;
        // A session whose own record of the order is not yet written is
        // the order's when its cart became this order (`view_of`).
        let view = self.view_of(session).await?;
        if view.order.as_ref().map(|o| o.id) != Some(order) {
            return Err(Error::not_found("order", order));
        }
        Ok(view)
    }

    /// Records protocol annotations on an agent's order (fulfilment events,
    /// adjustments the platform reports): kept with the session and
    /// returned with the order; they change nothing the engine decides
    /// (no money, stock or shipment moves). Replaces the earlier ones.
    ///
    /// # Errors
    /// As [`Engine::agent_order`]; [`Error::LimitExceeded`] beyond
    /// [`MAX_ANNOTATIONS`](crate::agent::MAX_ANNOTATIONS) or
    /// [`MAX_ANNOTATION_BYTES`](crate::agent::MAX_ANNOTATION_BYTES) each.
    #[tracing::instrument(skip_all, fields(order_id = %order))]
    pub async fn annotate_agent_order(
        &self,
        actor: &Actor,
        order: OrderId,
        annotations: Vec<serde_json::Value>,
    ) -> Result<AgentView> {
        let view = self.agent_order(actor, order).await?;
        self.own_agent_session(actor, view.session.id).await?;
        let mut check = view.session.clone();
        check.annotations = annotations.clone();
        check.validate()?;
        let session = self
            .settle_agent_session(actor, view.session.id, |s| {
                s.annotations = annotations.clone();
            })
            .await?;
        self.view_of(session).await
    }

    /// Claims an agent's request key (the protocols' `Idempotency-Key`)
    /// for a request whose digest is `fingerprint`, before the request
    /// runs: keys are the agent's own (two agents' keys never meet) and
    /// kept by the store, so a replay on another instance or after a
    /// restart gets the first answer. A claim whose answer never came is
    /// taken over after a minute.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless an agent platform is acting;
    /// [`Error::Invalid`] for a key that is not 1 to
    /// [`MAX_REQUEST_KEY_LEN`](crate::agent::MAX_REQUEST_KEY_LEN) visible
    /// ASCII characters or a fingerprint over 128 characters;
    /// [`Error::Storage`].
    pub async fn claim_agent_request(
        &self,
        actor: &Actor,
        key: &str,
        fingerprint: &str,
    ) -> Result<crate::store::RequestState> {
        let scope = request_scope(actor)?;
        check_request_key(key)?;
        if fingerprint.len() > 128 {
            return Err(Error::invalid(
                "request fingerprint",
                "at most 128 characters",
            ));
        }
        let now = self.now();
        let claim = crate::store::RequestClaim {
            scope: &scope,
            key,
            fingerprint,
            now,
            stale_before: now - chrono::Duration::minutes(1),
        };
        self.inner.store.claim_request(&claim).await
    }

    /// Records the answer to a request claimed with
    /// [`Engine::claim_agent_request`].
    ///
    /// # Errors
    /// As [`Engine::claim_agent_request`]; [`Error::LimitExceeded`] for a
    /// body over [`MAX_STORED_RESPONSE_BYTES`](crate::agent::MAX_STORED_RESPONSE_BYTES).
    pub async fn finish_agent_request(
        &self,
        actor: &Actor,
        key: &str,
        response: &crate::agent::StoredResponse,
    ) -> Result<()> {
        let scope = request_scope(actor)?;
        check_request_key(key)?;
        crate::validate::at_most(
            "stored response bytes",
            response.body.len(),
            crate::agent::MAX_STORED_RESPONSE_BYTES,
        )?;
        self.inner
            .store
            .finish_request(&scope, key, response, self.now())
            .await
    }

    /// Gives up a claimed request key without an answer (the request
    /// failed in a way worth retrying): the next request with it runs.
    ///
    /// # Errors
    /// As [`Engine::claim_agent_request`].
    pub async fn release_agent_request(&self, actor: &Actor, key: &str) -> Result<()> {
        let scope = request_scope(actor)?;
        check_request_key(key)?;
        self.inner.store.release_request(&scope, key).await
    }

    /// The addresses stored for the customer (account or guest record)
    /// with this e-mail, for an agentic protocol whose shop chose to offer a
    /// buyer's saved addresses by e-mail. No access check: the caller
    /// decides that policy.
    #[cfg(feature = "ucp")]
    pub(crate) async fn addresses_by_email(
        &self,
        email: &str,
    ) -> Result<Vec<crate::customer::Address>> {
        let email = crate::customer::Email::new(email)?;
        Ok(self
            .inner
            .store
            .customer_by_email(&email)
            .await?
            .map(|c| c.addresses().to_vec())
            .unwrap_or_default())
    }

    /// Keeps `address` in the book of the customer with this e-mail (a
    /// guest record is made for a new e-mail), unless the same place is
    /// there already; returns the stored address (with its id and
    /// reference).
    #[cfg(feature = "ucp")]
    pub(crate) async fn remember_address_by_email(
        &self,
        email: &str,
        address: crate::customer::Address,
    ) -> Result<crate::customer::Address> {
        let parsed = crate::customer::Email::new(email)?;
        let customer = match self.inner.store.customer_by_email(&parsed).await? {
            Some(c) => c,
            None => match self.guest(email).await {
                Ok(c) => c,
                // Made by a racing call meanwhile.
                Err(Error::AlreadyExists { .. }) => self
                    .inner
                    .store
                    .customer_by_email(&parsed)
                    .await?
                    .ok_or_else(|| Error::not_found("customer", parsed.as_str()))?,
                Err(e) => return Err(e),
            },
        };
        if let Some(found) = customer.addresses().iter().find(|a| a.same_place(&address)) {
            return Ok(found.clone());
        }
        let saved = self
            .modify_customer(&Actor::System, customer.id(), |c| {
                if c.addresses().iter().any(|a| a.same_place(&address)) {
                    return Ok(());
                }
                c.add_address(address.clone()).map(|_| ())
            })
            .await?;
        saved
            .addresses()
            .iter()
            .find(|a| a.same_place(&address))
            .cloned()
            .ok_or(Error::Conflict("customer"))
    }
}

/// Whether a checkout error means the attempt ended with nothing charged or
/// held, so a new attempt may use a new key. Errors that may leave a payment
/// in flight (the provider unreachable, a checkout still running, a lost
/// lease, the store failing) keep the key: retrying it is what finds out.
fn ended_without_charge(e: &Error) -> bool {
    matches!(
        e,
        Error::PaymentDeclined { .. }
            | Error::OutOfStock { .. }
            | Error::UsageLimitReached { .. }
            | Error::PriceChanged { .. }
            | Error::NotPurchasable { .. }
            | Error::NoPrice { .. }
            | Error::NotInChannel { .. }
            | Error::EmptyCart
            | Error::Incomplete(_)
            | Error::ShippingUnavailable(_)
            | Error::InsufficientBalance { .. }
    )
}

fn complete(session: &mut AgentSession, order: OrderId) {
    session.status = AgentSessionStatus::Completed;
    session.order_id = Some(order);
    session.awaiting_payment = false;
    session.continue_url = None;
}

/// Applies an update's session fields (not the cart's).
fn apply_session_fields(next: &mut AgentSession, update: &AgentUpdate) -> Result<()> {
    if let Some(buyer) = &update.buyer {
        next.buyer = Some(buyer.clone().validated()?);
    }
    if let Some(destinations) = &update.destinations {
        crate::validate::at_most(
            "destinations",
            destinations.len(),
            crate::agent::MAX_DESTINATIONS,
        )?;
        next.destinations = destinations.clone();
    }
    if let Some(selected) = &update.selected_destination {
        if let Some(id) = selected
            && !next.destinations.iter().any(|d| d.id == *id)
        {
            return Err(Error::not_found("destination", crate::validate::shown(id)));
        }
        if *selected != next.selected_destination {
            // Another place: the options are offered afresh.
            next.selected_option = None;
        }
        next.selected_destination = selected.clone();
    } else if let Some(id) = &next.selected_destination
        && !next.destinations.iter().any(|d| d.id == *id)
    {
        next.selected_destination = None;
        next.selected_option = None;
    }
    if let Some(option) = &update.selected_option {
        next.selected_option = option.clone();
    }
    if next.selected_destination.is_none() {
        next.selected_option = None;
    }
    if let Some(url) = &update.webhook_url {
        next.webhook_url = Some(url.clone());
    }
    Ok(())
}

/// Makes the cart's lines exactly `lines`: other variants' lines go,
/// quantities are set, new variants are added.
fn set_lines(cart: &mut Cart, lines: &[(VariantId, u32)]) -> Result<()> {
    let wanted: BTreeMap<VariantId, u32> = lines.iter().copied().collect();
    let existing: Vec<(crate::id::LineId, VariantId)> =
        cart.lines().iter().map(|l| (l.id, l.variant_id)).collect();
    let mut kept = std::collections::HashSet::new();
    for (line, variant) in existing {
        match wanted.get(&variant) {
            Some(quantity) if kept.insert(variant) => cart.set_quantity(line, *quantity)?,
            _ => cart.remove_line(line)?,
        }
    }
    for (variant, quantity) in lines {
        if !kept.contains(variant) {
            cart.add_line(*variant, *quantity)?;
        }
    }
    Ok(())
}

fn request_scope(actor: &Actor) -> Result<String> {
    match actor {
        Actor::Agent(agent) => {
            check_agent_name(agent)?;
            Ok(format!("agent:{agent}"))
        }
        _ => Err(Error::Forbidden),
    }
}

fn check_request_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > crate::agent::MAX_REQUEST_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::invalid(
            "idempotency key",
            crate::validate::shown(key),
        ));
    }
    Ok(())
}
