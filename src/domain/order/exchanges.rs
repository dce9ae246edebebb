//! Exchanges, and the two things they add to an order: lines priced after
//! the sale, and charges for what the buyer owes on top.
//!
//! **Added lines.** New units are priced when they are added (see the
//! engine's `create_exchange`) and appended to the order's lines; the
//! order's totals grow by exactly their totals, and the pricing as it was
//! before is kept in [`Order::pricing_versions`], so the frozen history
//! keeps every version. Existing lines never change: their shares, and so
//! every refund already made or still to come, stay as they were.
//!
//! **Charges.** When added units cost more than what the buyer hands back,
//! the difference is a [`Charge`] on the order, paid through the payment
//! provider (possibly after the buyer's action, such as 3-D Secure). The
//! lines it pays for do not ship until it is paid. Once paid it is one
//! more [`Payment`](crate::payment::Payment) of the order
//! ([`Order::payments`]), collected at once; refunds spread over it as over
//! any payment.
//!
//! **Exchanges.** Units go back (a return request, approved at once) and new
//! units go out. What the returned units paid is a credit: it pays for the
//! new units first, and only what is left of it is refunded when the units
//! are received (refund = their shares − the credit, never below zero);
//! what the credit does not cover is charged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LineQuantity, Order, OrderChangeKind, OrderStatus};
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::id::{ChargeId, ExchangeId, LineId, PaymentId, ReturnCaseId};
use crate::money::Money;
use crate::payment::CustomerAction;
use crate::pricing::{PricedCart, PricedLine};

/// Most earlier pricings an order keeps.
pub const MAX_PRICING_VERSIONS: usize = 50;

/// Most charges one order keeps.
pub const MAX_CHARGES: usize = 50;

/// The order's pricing as it was before a change, and why it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PricingVersion {
    /// When it was replaced.
    pub at: DateTime<Utc>,
    /// Who replaced it.
    pub actor: Actor,
    /// Why ("exchange", "order edit").
    pub cause: String,
    /// The pricing as it was.
    pub pricing: PricedCart,
}

/// Where a charge is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChargeState {
    /// Owed; nothing asked of the provider yet (or the last try failed).
    Due,
    /// Asked of the provider; its answer is not recorded yet.
    Authorizing,
    /// The provider waits for the buyer (see [`Charge::action`]).
    AwaitingCustomer,
    /// Paid: see [`Charge::payment`].
    Paid,
    /// Called off (the exchange it was for was cancelled).
    Canceled,
}

/// An amount the buyer owes on top of what the order took at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Charge {
    /// Its id.
    pub id: ChargeId,
    /// How much.
    pub amount: Money,
    /// Why ("exchange").
    pub reason: String,
    /// The lines it pays for: they ship once it is paid.
    pub lines: Vec<LineId>,
    /// Where it is.
    pub state: ChargeState,
    /// Tries so far; the provider key of try *n* is
    /// `<order id>:charge:<charge id>:<n>`.
    pub attempts: u32,
    /// Whether the current try's key may hold an authorization at the
    /// provider: true from the moment it is asked until the provider
    /// refuses it. The next try reuses an open try's key (the provider
    /// answers it once), so a try whose answer was lost never becomes a
    /// second hold.
    #[serde(default)]
    pub open_try: bool,
    /// When the current try was asked of the provider.
    #[serde(default)]
    pub tried_at: Option<DateTime<Utc>>,
    /// The provider asked (set with the first try).
    pub provider: Option<String>,
    /// What the buyer must do, while the provider waits for them.
    pub action: Option<CustomerAction>,
    /// Why the last try failed (may be empty).
    pub last_error: String,
    /// The payment it became, once paid.
    pub payment: Option<PaymentId>,
    /// When it was made.
    pub at: DateTime<Utc>,
}

impl Charge {
    /// The provider key of the current try.
    pub fn provider_key(&self, order: crate::id::OrderId) -> String {
        format!("{order}:charge:{}:{}", self.id, self.attempts)
    }
}

/// Where an exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExchangeState {
    /// Made: the new units ship (once its charge, if any, is paid), the old
    /// ones are expected back.
    Open,
    /// Called off before its new units shipped.
    Canceled,
}

/// Units returned and new units sent in one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Exchange {
    /// Its id.
    pub id: ExchangeId,
    /// The idempotency key it was made under.
    pub key: String,
    /// The return request for the units coming back (approved at once).
    pub return_case: ReturnCaseId,
    /// The new lines.
    pub new_lines: Vec<LineId>,
    /// What the returned units paid (their frozen shares).
    pub returned_value: Money,
    /// What the new units cost now.
    pub new_value: Money,
    /// The charge for the difference, when the new units cost more.
    pub charge: Option<ChargeId>,
    /// Where it is.
    pub state: ExchangeState,
    /// Who made it.
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

impl Exchange {
    /// `new_value − returned_value`: charged when positive, refunded (when
    /// the units arrive) when negative.
    ///
    /// # Errors
    /// [`Error::Overflow`] on corrupt data.
    pub fn difference(&self) -> Result<Money> {
        Ok(self.new_value.checked_sub(self.returned_value)?)
    }
}

impl Order {
    /// Its pricings before each change after the sale, oldest first (the
    /// current one is [`Order::pricing`]).
    pub fn pricing_versions(&self) -> &[PricingVersion] {
        &self.pricing_versions
    }

    /// Its charges, oldest first.
    pub fn charges(&self) -> &[Charge] {
        &self.charges
    }

    /// One charge.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a charge not on this order.
    pub fn charge(&self, id: ChargeId) -> Result<&Charge> {
        self.charges
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| Error::not_found("charge", id))
    }

    pub(crate) fn charge_mut(&mut self, id: ChargeId) -> Result<&mut Charge> {
        self.charges
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| Error::not_found("charge", id))
    }

    /// Its exchanges, oldest first.
    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }

    /// A charge whose try is in flight, if any: recovery finishes it once
    /// it is older than the checkout lease.
    pub(crate) fn charge_in_flight(&self) -> Option<&Charge> {
        self.charges
            .iter()
            .find(|c| c.state == ChargeState::Authorizing)
    }

    /// Whether `line` waits for a charge to be paid before it ships.
    pub fn awaits_payment(&self, line: LineId) -> bool {
        self.charges.iter().any(|c| {
            c.lines.contains(&line)
                && matches!(
                    c.state,
                    ChargeState::Due | ChargeState::Authorizing | ChargeState::AwaitingCustomer
                )
        })
    }

    /// Appends lines priced after the sale: the totals grow by theirs, the
    /// pricing before is kept as a version. A completed order reopens.
    pub(crate) fn append_lines(
        &mut self,
        lines: Vec<PricedLine>,
        tax_lines: &[crate::tax::TaxLine],
        cause: &str,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<()> {
        crate::validate::at_most(
            "order lines",
            self.pricing.lines.len() + lines.len(),
            super::MAX_ORDER_LINES,
        )?;
        crate::validate::at_most(
            "pricing versions",
            self.pricing_versions.len() + 1,
            MAX_PRICING_VERSIONS,
        )?;
        let before = self.pricing.clone();
        let p = &mut self.pricing;
        for line in &lines {
            if line.subtotal.currency() != p.currency || line.total.is_negative() {
                return Err(Error::invalid("new line", "priced in another currency"));
            }
            p.subtotal = p.subtotal.checked_add(line.subtotal)?;
            p.discount_total = p.discount_total.checked_add(line.discount)?;
            p.tax_total = p.tax_total.checked_add(line.tax)?;
            p.total = p.total.checked_add(line.total)?;
            p.requires_shipping |= line.requires_shipping;
        }
        for t in tax_lines {
            match p
                .tax_lines
                .iter_mut()
                .find(|m| m.name == t.name && m.rate == t.rate)
            {
                Some(m) => m.amount = m.amount.checked_add(t.amount)?,
                None => p.tax_lines.push(t.clone()),
            }
        }
        let added = Money::sum(p.currency, lines.iter().map(|l| &l.total))?;
        let added_tax = Money::sum(p.currency, lines.iter().map(|l| &l.tax))?;
        p.lines.extend(lines);
        self.tax_addition(added, added_tax, cause, at)?;
        self.pricing_versions.push(PricingVersion {
            at,
            actor: actor.clone(),
            cause: cause.to_owned(),
            pricing: before,
        });
        if self.status == OrderStatus::Completed {
            self.move_to(OrderStatus::Processing, at, actor, "units to ship again")?;
        }
        Ok(())
    }

    /// Records a charge owed for `lines`.
    pub(crate) fn add_charge(&mut self, charge: Charge) -> Result<()> {
        crate::validate::at_most("charges on an order", self.charges.len() + 1, MAX_CHARGES)?;
        if charge.amount.is_negative() || charge.amount.is_zero() {
            return Err(Error::invalid("charge", "must be positive"));
        }
        self.charges.push(charge);
        Ok(())
    }

    /// Records a paid charge as one more payment of the order.
    pub(crate) fn charge_paid(
        &mut self,
        id: ChargeId,
        payment: crate::payment::Payment,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let amount = payment.captured();
        let payment_id = payment.id();
        let c = self.charge_mut(id)?;
        if c.state == ChargeState::Paid {
            return Ok(());
        }
        c.state = ChargeState::Paid;
        c.action = None;
        c.payment = Some(payment_id);
        let actor = Actor::System;
        self.tenders.push(payment);
        self.record(
            at,
            &actor,
            OrderChangeKind::PaymentCaptured { amount },
            "charge",
        );
        Ok(())
    }

    /// Records an exchange.
    pub(crate) fn record_exchange(&mut self, exchange: Exchange) -> Result<()> {
        crate::validate::at_most(
            "exchanges on an order",
            self.exchanges.len() + 1,
            super::MAX_CLAIMS,
        )?;
        self.record(
            exchange.at,
            &exchange.actor,
            OrderChangeKind::Exchanged {
                exchange: exchange.id,
            },
            "",
        );
        self.exchanges.push(exchange);
        Ok(())
    }

    /// Calls off an exchange whose new units have not shipped and whose
    /// charge (if any) was not paid: its new lines are cancelled with
    /// nothing to give back (the returned units' credit paid for them, and
    /// that credit goes back to the return: refunded in full when the
    /// units arrive, or the request is called off while they have not been
    /// received), its charge is called off. Returns the cancellation to
    /// save (its stock to free).
    pub(crate) fn cancel_exchange(
        &mut self,
        id: ExchangeId,
        cancellation: super::LineCancellation,
        at: DateTime<Utc>,
    ) -> Result<super::Effects> {
        let exchange = self
            .exchanges
            .iter()
            .find(|e| e.id == id)
            .cloned()
            .ok_or_else(|| Error::not_found("exchange", id))?;
        if exchange.state != ExchangeState::Open {
            return Err(Error::IllegalTransition {
                entity: "exchange",
                from: format!("{:?}", exchange.state),
                to: "Canceled".into(),
            });
        }
        if exchange.new_lines.iter().any(|l| self.shipped(*l) > 0) {
            return Err(Error::IllegalTransition {
                entity: "exchange",
                from: "shipped".into(),
                to: "Canceled".into(),
            });
        }
        if let Some(charge) = exchange.charge {
            let c = self.charge_mut(charge)?;
            match c.state {
                ChargeState::Due => c.state = ChargeState::Canceled,
                ChargeState::Canceled => {}
                other => {
                    return Err(Error::IllegalTransition {
                        entity: "charge",
                        from: format!("{other:?}"),
                        to: "Canceled (it is being paid; once paid, cancel its units)".into(),
                    });
                }
            }
        }
        let actor = cancellation.actor.clone();
        if self.return_case(exchange.return_case)?.state == super::ReturnCaseState::Refunded {
            return Err(Error::IllegalTransition {
                entity: "exchange",
                from: "its return refunded".into(),
                to: "Canceled (refund by amount instead)".into(),
            });
        }
        let case = self.return_case_mut(exchange.return_case)?;
        case.credit = None;
        if matches!(
            case.state,
            super::ReturnCaseState::Requested | super::ReturnCaseState::Approved
        ) {
            case.step(
                super::ReturnCaseState::Canceled,
                at,
                &actor,
                "exchange called off",
            )?;
        }
        if let Some(e) = self.exchanges.iter_mut().find(|e| e.id == id) {
            e.state = ExchangeState::Canceled;
        }
        crate::validate::at_most(
            "line cancellations on an order",
            self.line_cancellations.len() + 1,
            super::MAX_LINE_CANCELLATIONS,
        )?;
        let effects = super::Effects {
            unreserve: cancellation.unreserve.clone(),
            ..super::Effects::default()
        };
        self.record(
            at,
            &actor,
            OrderChangeKind::LinesCancelled {
                cancellation: cancellation.id,
                amount: cancellation.amount,
            },
            "exchange called off",
        );
        self.line_cancellations.push(cancellation);
        Ok(effects)
    }

    /// Items as `LineQuantity` for lines wholly (all their units).
    pub(crate) fn whole_lines(&self, lines: &[LineId]) -> Result<Vec<LineQuantity>> {
        lines
            .iter()
            .map(|l| {
                Ok(LineQuantity {
                    line_id: *l,
                    quantity: self.line(*l)?.quantity,
                })
            })
            .collect()
    }
}
