//! Exchanges and the charges for what the buyer owes on top.

use super::after_sale;
use crate::actor::Actor;
use crate::cart::Cart;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event::AfterSaleChange;
use crate::id::{
    ChargeId, ExchangeId, IdempotencyKey, LineCancellationId, LineId, OrderId, PaymentId,
    ReturnCaseId, VariantId,
};
use crate::money::Money;
use crate::order::{
    Charge, ChargeState, Exchange, ExchangeState, LineCancellation, LineQuantity, MAX_NOTE_LEN,
    Order, OrderChange, QuoteChecks, ReturnCase, ReturnCaseEntry, ReturnCaseState, ReturnReason,
    ReturnState, ShippingRefund, StaffReturn,
};
use crate::payment::{
    AuthorizeRequest, Intent, OperationKind, OperationPurpose, PaymentError, PaymentStatus,
    ProviderResponse, ProviderStatus,
};
use crate::pricing::{AutomaticPromotions, PricedCart};
use crate::validate::optional_text;

/// Most new lines one exchange adds.
pub const MAX_EXCHANGE_LINES: usize = 50;

/// An exchange to make: units back, new units out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewExchange {
    /// Units coming back, per order line (shipped, not returned or
    /// requested already).
    pub returned: Vec<LineQuantity>,
    /// New units going out: variant and quantity, at most
    /// [`MAX_EXCHANGE_LINES`].
    pub new_items: Vec<(VariantId, u32)>,
    /// Why the units come back.
    pub reason: ReturnReason,
    /// In words, at most [`MAX_NOTE_LEN`] characters (may be empty).
    pub note: String,
    /// Makes the exchange safe to retry: the same key exchanges once.
    pub key: IdempotencyKey,
    /// Settles this buyer's return request (requested, approved or
    /// received) as the exchange: its units are the ones coming back
    /// (`returned` is not used), and it keeps their value as the credit.
    pub from_request: Option<ReturnCaseId>,
}

impl NewExchange {
    /// An exchange settling the buyer's return request `case` with
    /// `new_items`, under `key`.
    pub fn for_request(
        case: ReturnCaseId,
        new_items: Vec<(VariantId, u32)>,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            returned: Vec::new(),
            new_items,
            reason: ReturnReason::Other,
            note: String::new(),
            key,
            from_request: Some(case),
        }
    }

    /// An exchange of `returned` for `new_items`, for `reason`, under `key`.
    pub fn new(
        returned: Vec<LineQuantity>,
        new_items: Vec<(VariantId, u32)>,
        reason: ReturnReason,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            returned,
            new_items,
            reason,
            note: String::new(),
            key,
            from_request: None,
        }
    }
}

crate::domain::setters!(NewExchange {} into { note: String });

/// The units a request names and what they paid, as if the request did
/// not hold them (it is the one being settled).
fn request_units(
    order: &Order,
    case: ReturnCaseId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<LineQuantity>, Money)> {
    let c = order.return_case(case)?;
    if !c.state.is_open() {
        return Err(Error::IllegalTransition {
            entity: "return request",
            from: format!("{:?}", c.state),
            to: "an exchange".into(),
        });
    }
    if c.credit.is_some() {
        return Err(Error::invalid(
            "return request",
            "it is an exchange already",
        ));
    }
    let items = c.items.clone();
    let mut probe = order.clone();
    probe.return_case_mut(case)?.state = ReturnCaseState::Canceled;
    let quote = probe.quote_return(
        &items,
        ReturnReason::Other,
        &StaffReturn(ShippingRefund::Never),
        now,
        QuoteChecks::staff(true),
    )?;
    Ok((items, quote.goods))
}

/// How a charge is paid.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChargePayment {
    /// The payment method, as tokenized by the provider's client library.
    pub token: String,
    /// The provider to pay with (the default when `None`).
    pub provider: Option<String>,
    /// The payment method chosen among the provider's ("card").
    pub method: Option<String>,
}

impl std::fmt::Debug for ChargePayment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChargePayment")
            .field("provider", &self.provider)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl ChargePayment {
    /// Pays with `token` at the default provider.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            provider: None,
            method: None,
        }
    }
}

crate::domain::setters!(ChargePayment {} into {
    provider: Option<String>,
    method: Option<String>,
});

impl Engine {
    /// Prices new units for `order` now, as a cart of their own: in the
    /// order's currency and channel, for its customer, taxed for its
    /// address, at today's catalog and price-list prices. Promotions are
    /// not applied to them: the order's keep their terms on its original
    /// lines.
    pub(super) async fn price_new_units(
        &self,
        order: &Order,
        items: &[(VariantId, u32)],
    ) -> Result<PricedCart> {
        if items.is_empty() {
            return Err(Error::invalid("new items", "name at least one"));
        }
        crate::validate::at_most("new items", items.len(), MAX_EXCHANGE_LINES)?;
        let now = self.now();
        let mut cart = Cart::new(order.pricing().currency, order.customer_id(), now);
        if let Some(channel) = order.channel_id() {
            cart = cart.in_channel(channel);
        }
        for (variant, quantity) in items {
            self.addable(&cart, *variant).await?;
            cart.add_line(*variant, *quantity)?;
        }
        if let Some(address) = order.shipping_address() {
            cart.set_shipping_address(address.clone())?;
        }
        let priced = self
            .price_with_catalog_as(&cart, &AutomaticPromotions::None)
            .await?;
        Ok(priced.cart)
    }

    /// Exchanges units for new ones in one operation (staff and the
    /// system). The returned units become a return request, approved at
    /// once; the new units are priced now (see below), added to the order
    /// with their stock reserved in the same save, and ship at once — or,
    /// when they cost more than the returned units paid, once the
    /// difference is paid ([`Engine::pay_charge`]). When they cost less,
    /// the difference is refunded when the returned units are received and
    /// refunded ([`Engine::refund_return`]: the request keeps the new
    /// units' value as a credit).
    ///
    /// New units are priced as a cart of their own in the order's
    /// currency, channel and for its customer, taxed for its address, at
    /// today's catalog and price-list prices; promotions are not applied
    /// to them (the order's keep their terms on its original lines).
    /// Idempotent by `exchange.key`.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Invalid`] for units that cannot come
    /// back or new items that are empty or too many;
    /// [`Error::NotPurchasable`] / [`Error::NoPrice`] for a new item not
    /// for sale; [`Error::OutOfStock`] (nothing is held);
    /// [`Error::IllegalTransition`] for a cancelled order;
    /// [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn create_exchange(
        &self,
        actor: &Actor,
        order_id: OrderId,
        exchange: NewExchange,
    ) -> Result<Order> {
        actor.require(crate::actor::Permission::Orders)?;
        let note = optional_text("exchange note", &exchange.note, MAX_NOTE_LEN)?;
        let key = format!("exchange:{}", exchange.key);
        let order = self.load_order(actor, order_id).await?;
        if order.exchanges().iter().any(|e| e.key == key) {
            return Ok(order.visible_to(actor));
        }
        order.ensure_returnable_order()?;
        // The units coming back are checked before anything is held.
        match exchange.from_request {
            Some(case) => {
                request_units(&order, case, self.now())?;
            }
            None => {
                order.quote_return(
                    &exchange.returned,
                    exchange.reason,
                    &StaffReturn(ShippingRefund::Never),
                    self.now(),
                    QuoteChecks::staff(true),
                )?;
            }
        }
        let priced = self.price_new_units(&order, &exchange.new_items).await?;
        let units: Vec<(VariantId, u32)> = priced
            .lines
            .iter()
            .map(|l| (l.variant_id, l.quantity))
            .collect();
        let hold = self.hold_for(&order, &units).await?;
        let now = self.now();
        let ids = (ExchangeId::new(), ReturnCaseId::new(), ChargeId::new());
        let saved = self
            .modify_order(actor, order_id, |mut order| {
                if order.exchanges().iter().any(|e| e.key == key) {
                    return Ok(None);
                }
                let (exchange_id, new_case, charge_id) = ids;
                // What the returned units paid, with nothing kept.
                let (quote, returned_value) = match exchange.from_request {
                    Some(case) => (None, request_units(&order, case, now)?.1),
                    None => {
                        let quote = order.quote_return(
                            &exchange.returned,
                            exchange.reason,
                            &StaffReturn(ShippingRefund::Never),
                            now,
                            QuoteChecks::staff(true),
                        )?;
                        let goods = quote.goods;
                        (Some(quote), goods)
                    }
                };
                let new_value = Money::sum(priced.currency, priced.lines.iter().map(|l| &l.total))?;
                let credit = if new_value.checked_cmp(&returned_value)?.is_lt() {
                    new_value
                } else {
                    returned_value
                };
                let (case_id, case_state) = match (exchange.from_request, quote) {
                    (Some(case), _) => {
                        let c = order.return_case_mut(case)?;
                        c.credit = Some(credit);
                        if c.state == ReturnCaseState::Requested {
                            c.step(ReturnCaseState::Approved, now, actor, "exchange")?;
                        }
                        (case, c.state)
                    }
                    (None, Some(quote)) => {
                        order.request_return(ReturnCase {
                            id: new_case,
                            key: format!("{key}:return"),
                            items: exchange.returned.clone(),
                            reason: exchange.reason,
                            note: note.clone(),
                            state: ReturnCaseState::Approved,
                            quote,
                            requested_by: actor.clone(),
                            requested_at: now,
                            received: Vec::new(),
                            return_id: None,
                            history: vec![ReturnCaseEntry {
                                at: now,
                                actor: actor.clone(),
                                state: ReturnCaseState::Approved,
                                note: "exchange".into(),
                            }],
                            credit: Some(credit),
                            direct: false,
                        })?;
                        (new_case, ReturnCaseState::Approved)
                    }
                    (None, None) => return Err(Error::invalid("exchange", "no units coming back")),
                };
                let new_lines: Vec<LineId> = priced.lines.iter().map(|l| l.line_id).collect();
                order.append_lines(
                    priced.lines.clone(),
                    &priced.tax_lines,
                    "exchange",
                    actor,
                    now,
                )?;
                let owed = new_value.checked_sub(returned_value)?;
                let charge = if owed.is_negative() || owed.is_zero() {
                    None
                } else {
                    order.add_charge(Charge {
                        id: charge_id,
                        amount: owed,
                        reason: "exchange".into(),
                        lines: new_lines.clone(),
                        state: ChargeState::Due,
                        attempts: 0,
                        open_try: false,
                        tried_at: None,
                        provider: None,
                        action: None,
                        last_error: String::new(),
                        payment: None,
                        at: now,
                    })?;
                    Some(charge_id)
                };
                order.record_exchange(Exchange {
                    id: exchange_id,
                    key: key.clone(),
                    return_case: case_id,
                    new_lines,
                    returned_value,
                    new_value,
                    charge,
                    state: ExchangeState::Open,
                    actor: actor.clone(),
                    at: now,
                })?;
                let events = vec![
                    after_sale(order_id, AfterSaleChange::Exchanged { exchange_id }),
                    after_sale(
                        order_id,
                        AfterSaleChange::ReturnRequest {
                            return_case_id: case_id,
                            state: case_state,
                        },
                    ),
                ];
                Ok(Some(OrderChange {
                    merge_reservation: Some(hold.id),
                    ..OrderChange::new(order).with_events(events)
                }))
            })
            .await;
        let placed = saved
            .as_ref()
            .is_ok_and(|o| o.exchanges().iter().any(|e| e.id == ids.0));
        if !placed {
            self.give_back(&hold).await;
        }
        Ok(saved?.visible_to(actor))
    }

    /// Calls an exchange off (staff and the system) while none of its new
    /// units shipped and its charge, if any, is not paid: the new lines are
    /// cancelled and their stock freed; the returned units' credit goes back
    /// to their return request (refunded in full when they arrive), which
    /// is called off if they have not been received.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::IllegalTransition`] once a new unit
    /// shipped, the charge is being paid (asked of the provider or waiting
    /// for the buyer's bank) or was paid (cancel its units instead), or the
    /// returned units were refunded already;
    /// [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn cancel_exchange(
        &self,
        actor: &Actor,
        order_id: OrderId,
        exchange: ExchangeId,
    ) -> Result<Order> {
        actor.require(crate::actor::Permission::Orders)?;
        let store = self.inner.store.clone();
        for _ in 0..self.inner.config.max_retries {
            let order = self.load_order(actor, order_id).await?;
            let e = order
                .exchanges()
                .iter()
                .find(|e| e.id == exchange)
                .cloned()
                .ok_or_else(|| Error::not_found("exchange", exchange))?;
            if e.state == ExchangeState::Canceled {
                return Ok(order.visible_to(actor));
            }
            let reservation = store.reservation(order.reservation_id()).await?;
            let items = order.whole_lines(&e.new_lines)?;
            let unreserve = super::held_stock(&order, &reservation.lines, &items)?;
            let now = self.now();
            let cancellation = LineCancellation {
                id: LineCancellationId::new(),
                key: format!("exchange-cancel:{exchange}"),
                items,
                amount: e.new_value,
                released: Money::zero(e.new_value.currency()),
                refund: Money::zero(e.new_value.currency()),
                // The returned units' credit paid for them; it goes back
                // to their return.
                shipping: None,
                credited: Some(e.new_value),
                unreserve,
                reason: "exchange called off".into(),
                actor: actor.clone(),
                at: now,
                state: ReturnState::Completed,
            };
            let version = order.version();
            let mut next = order;
            let effects = next.cancel_exchange(exchange, cancellation, now)?;
            let mut change = effects.into_change(next);
            change.events = vec![after_sale(
                order_id,
                AfterSaleChange::ExchangeCanceled {
                    exchange_id: exchange,
                },
            )];
            debug_assert_eq!(change.order.version(), version);
            match store.save_order(change, now).await {
                Err(Error::Conflict(_)) => continue,
                other => return Ok(other?.visible_to(actor)),
            }
        }
        Err(crate::engine::gave_up("order"))
    }

    /// Pays a charge on an order (its customer, a guest with its token,
    /// staff or the system), through the payment provider, collected at
    /// once. The try is recorded first under the order's version check
    /// with its own provider key (`<order>:charge:<charge>:<try>`), so two
    /// callers never pay it twice. When the provider waits for the buyer
    /// (3-D Secure), the charge shows [`ChargeState::AwaitingCustomer`]
    /// with the [`action`](Charge::action); calling again after the buyer
    /// acted finishes it with the same key, as does calling again after
    /// an answer that never came. A declined try leaves it due.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::IllegalTransition`] for a charge
    /// called off or an order cancelled; the provider's refusal
    /// ([`Error::PaymentDeclined`] and the like: the charge stays due), or
    /// [`Error::PaymentUnavailable`] (a retry finishes it);
    /// [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn pay_charge(
        &self,
        actor: &Actor,
        order_id: OrderId,
        charge: ChargeId,
        payment: ChargePayment,
    ) -> Result<Order> {
        super::require_buyer_side(actor)?;
        let provider = self.provider_for(payment.provider.as_deref())?;
        let order = self.load_order(actor, order_id).await?;
        // 1. The try, recorded before the provider hears of it.
        let order = self
            .update_order(order, |o| {
                if o.status() == crate::order::OrderStatus::Cancelled {
                    return Err(Error::IllegalTransition {
                        entity: "order",
                        from: "Cancelled".into(),
                        to: "a charge paid".into(),
                    });
                }
                let c = o.charge_mut(charge)?;
                match c.state {
                    ChargeState::Paid => Ok(None),
                    ChargeState::Canceled => Err(Error::IllegalTransition {
                        entity: "charge",
                        from: "Canceled".into(),
                        to: "Paid".into(),
                    }),
                    ChargeState::Authorizing | ChargeState::AwaitingCustomer => Ok(None),
                    ChargeState::Due => {
                        // A try that may hold money keeps its key and its
                        // provider.
                        if !c.open_try {
                            c.attempts = c.attempts.saturating_add(1);
                            c.provider = Some(provider.name().to_owned());
                        }
                        c.open_try = true;
                        c.tried_at = Some(self.now());
                        c.state = ChargeState::Authorizing;
                        c.last_error.clear();
                        Ok(Some(crate::order::Effects::default()))
                    }
                }
            })
            .await?;
        let c = order.charge(charge)?.clone();
        if !matches!(
            c.state,
            ChargeState::Authorizing | ChargeState::AwaitingCustomer
        ) {
            return Ok(order.visible_to(actor));
        }
        Ok(self
            .finish_charge(order, charge, Some(&payment))
            .await?
            .visible_to(actor))
    }

    /// Asks the provider about a charge's current try and records the
    /// answer. With `payment`, a try not known at the provider is made
    /// (under the try's own key); without it (recovery), such a try is
    /// recorded as never made and the charge is due again, its key kept for
    /// the next try.
    pub(crate) async fn finish_charge(
        &self,
        order: Order,
        charge: ChargeId,
        payment: Option<&ChargePayment>,
    ) -> Result<Order> {
        let order_id = order.id();
        let c = order.charge(charge)?.clone();
        let provider = self.provider_for(c.provider.as_deref())?;
        let key = c.provider_key(order_id);
        // 2. The provider, under the try's own key: what it knows first.
        let known = match provider.find_authorization(&key).await {
            Ok(found) => found,
            Err(e @ (PaymentError::Timeout | PaymentError::Unavailable(_))) => {
                return Err(e.into());
            }
            Err(_) => None,
        };
        let answer = match (known, payment) {
            (Some(found), _) => Ok(found),
            (None, Some(payment)) => {
                provider
                    .authorize(AuthorizeRequest {
                        idempotency_key: key.clone(),
                        amount: c.amount,
                        payment_token: payment.token.clone(),
                        reference: order_id.to_string(),
                        capture: provider.captures_on_authorize(),
                        method: payment.method.clone(),
                    })
                    .await
            }
            (None, None) => Err(PaymentError::NotFound),
        };
        // 3. The answer, recorded.
        let now = self.now();
        let outcome = match answer {
            Err(PaymentError::NotFound) if payment.is_none() => Outcome::NeverMade,
            answer => classify(answer, c.amount),
        };
        let provider_name = provider.name().to_owned();
        let method = payment.and_then(|p| p.method.clone());
        let actor = Actor::System;
        let order = self
            .update_order(order, |o| {
                let current = o.charge(charge)?.clone();
                // The same try, still open: in flight, waiting, or made due
                // by recovery before this answer came.
                let same_try = current.attempts == c.attempts && current.open_try;
                let live = matches!(
                    current.state,
                    ChargeState::Authorizing | ChargeState::AwaitingCustomer | ChargeState::Due
                );
                if !same_try || !live {
                    return Ok(None);
                }
                match &outcome {
                    Outcome::Held {
                        reference,
                        captured,
                    } => {
                        let mut paid = crate::payment::Payment {
                            id: PaymentId::new(),
                            provider: provider_name.clone(),
                            reference: reference.clone(),
                            authorize_key: key.clone(),
                            authorized: c.amount,
                            captured: if *captured {
                                c.amount
                            } else {
                                Money::zero(c.amount.currency())
                            },
                            refunded: Money::zero(c.amount.currency()),
                            released: None,
                            status: if *captured {
                                PaymentStatus::Captured
                            } else {
                                PaymentStatus::Authorized
                            },
                            operations: Vec::new(),
                            method: method.clone(),
                        };
                        // Collected at once, by the money path.
                        if !*captured {
                            paid.begin(Intent {
                                kind: OperationKind::Capture,
                                amount: c.amount,
                                purpose: OperationPurpose::Direct,
                                request_key: Some(&format!("charge:{charge}:capture")),
                                reason: "charge",
                                actor: &actor,
                                at: now,
                            })?;
                        }
                        o.charge_paid(charge, paid, now)?;
                        Ok(Some(crate::order::Effects {
                            events: vec![after_sale(
                                order_id,
                                AfterSaleChange::ChargePaid {
                                    charge_id: charge,
                                    amount: c.amount,
                                },
                            )],
                            ..crate::order::Effects::default()
                        }))
                    }
                    Outcome::Waiting(action) => {
                        let ch = o.charge_mut(charge)?;
                        ch.state = ChargeState::AwaitingCustomer;
                        ch.action = action.clone();
                        Ok(Some(crate::order::Effects::default()))
                    }
                    Outcome::Refused(reason) => {
                        let ch = o.charge_mut(charge)?;
                        ch.state = ChargeState::Due;
                        ch.open_try = false;
                        ch.action = None;
                        ch.last_error = reason.chars().take(200).collect();
                        Ok(Some(crate::order::Effects::default()))
                    }
                    Outcome::NeverMade => {
                        let ch = o.charge_mut(charge)?;
                        if ch.state != ChargeState::Authorizing {
                            return Ok(None);
                        }
                        // Due again; the key stays for the next try.
                        ch.state = ChargeState::Due;
                        ch.last_error = "the try never reached the provider".into();
                        Ok(Some(crate::order::Effects::default()))
                    }
                    Outcome::NoAnswer(_) => Ok(None),
                }
            })
            .await?;
        match outcome {
            Outcome::Refused(_) | Outcome::NoAnswer(_) => Err(outcome.into_error()),
            _ => Box::pin(self.drive(order)).await,
        }
    }
}

impl Engine {
    /// Stops a charge's try that waits for the buyer (staff and the
    /// system): a buyer who left the bank's 3-D Secure page. If the buyer
    /// completed it after all, the charge is recorded as paid and so
    /// returned; otherwise the waiting payment is cancelled at the provider
    /// and the charge is due again (a later try uses a new key). Then the
    /// order, or the exchange, can be called off.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::IllegalTransition`] unless the charge
    /// waits for the buyer; the provider's errors (the try stays as it
    /// was); [`Error::NotFound`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn stop_charge(
        &self,
        actor: &Actor,
        order_id: OrderId,
        charge: ChargeId,
    ) -> Result<Order> {
        actor.require(crate::actor::Permission::Orders)?;
        let order = self.load_order(actor, order_id).await?;
        let c = order.charge(charge)?.clone();
        if c.state != ChargeState::AwaitingCustomer {
            return Err(Error::IllegalTransition {
                entity: "charge",
                from: format!("{:?}", c.state),
                to: "stopped (only a try waiting for the buyer stops)".into(),
            });
        }
        let provider = self.provider_for(c.provider.as_deref())?;
        let key = c.provider_key(order_id);
        let known = provider.find_authorization(&key).await?;
        let voided = match known {
            Some(r)
                if matches!(
                    r.status,
                    ProviderStatus::Authorized | ProviderStatus::Captured
                ) =>
            {
                // Completed after all: record it.
                return Ok(self
                    .finish_charge(order, charge, None)
                    .await?
                    .visible_to(actor));
            }
            Some(r) => {
                provider
                    .void(crate::payment::VoidRequest {
                        idempotency_key: format!("{key}:stop"),
                        authorization: r.reference,
                    })
                    .await?;
                true
            }
            None => false,
        };
        let order = self
            .update_order(order, |o| {
                let ch = o.charge_mut(charge)?;
                if ch.state != ChargeState::AwaitingCustomer || ch.attempts != c.attempts {
                    return Ok(None);
                }
                ch.state = ChargeState::Due;
                ch.action = None;
                // A cancelled try's key is spent; one never made is kept.
                ch.open_try = !voided;
                ch.last_error = "stopped: the buyer did not finish".into();
                Ok(Some(crate::order::Effects::default()))
            })
            .await?;
        Ok(order.visible_to(actor))
    }
}

/// What a provider's answer to a charge means.
enum Outcome {
    /// Held (and collected when `captured`) under `reference`.
    Held { reference: String, captured: bool },
    /// Waiting for the buyer.
    Waiting(Option<crate::payment::CustomerAction>),
    /// Refused for good.
    Refused(String),
    /// No answer: the try stays in flight.
    NoAnswer(PaymentError),
    /// Recovery found no trace of the try at the provider.
    NeverMade,
}

impl Outcome {
    fn into_error(self) -> Error {
        match self {
            Outcome::NoAnswer(e) => e.into(),
            Outcome::Refused(reason) => PaymentError::Declined {
                code: "charge_refused".into(),
                message: reason,
            }
            .into(),
            _ => Error::Conflict("charge"),
        }
    }
}

fn classify(answer: std::result::Result<ProviderResponse, PaymentError>, amount: Money) -> Outcome {
    match answer {
        Ok(r) => match r.status {
            ProviderStatus::Authorized if r.amount == amount => Outcome::Held {
                reference: r.reference,
                captured: false,
            },
            ProviderStatus::Captured if r.amount == amount => Outcome::Held {
                reference: r.reference,
                captured: true,
            },
            ProviderStatus::RequiresAction | ProviderStatus::Processing => {
                Outcome::Waiting(r.action)
            }
            ProviderStatus::Authorized | ProviderStatus::Captured => Outcome::Refused(format!(
                "the provider held {} instead of {amount}",
                r.amount
            )),
            other => Outcome::Refused(format!("the provider answered {other:?}")),
        },
        Err(e @ (PaymentError::Timeout | PaymentError::Unavailable(_))) => Outcome::NoAnswer(e),
        Err(e) => Outcome::Refused(e.to_string()),
    }
}
