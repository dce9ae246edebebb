//! Orders: the frozen result of a checkout.
//!
//! An order keeps the prices, adjustments, tax, shipping and totals exactly as
//! they were priced at checkout ([`PricedCart`]), with the addresses and the
//! customer. Nothing recomputes them later.
//!
//! After placement an order moves through its [`OrderStatus`] and its
//! payment's [`PaymentStatus`]; every change is
//! a pure method here that also appends a [`HistoryEntry`] (when, who, what),
//! and the store saves the result with a version check in one atomic command
//! ([`OrderStore::save_order`](crate::store::OrderStore::save_order)).
//!
//! Architecture invariant: plain data and pure transitions; nothing here
//! talks to a store or a provider.
//!
//! Does not know: storage or payment providers: it decides what may happen to
//! an order; the engine calls the provider and the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::customer::{Address, Email};
use crate::domain::payment::{Payment, PaymentStatus};
use crate::error::{Error, Result};
use crate::id::{
    CartId, CustomerId, IdempotencyKey, LineId, OrderId, ReservationId, ReturnId, ShipmentId,
};
use crate::inventory::ReservationLine;
use crate::money::Money;
use crate::note::Note;
use crate::pricing::PricedCart;

mod cancel_lines;
mod claims;
mod edits;
mod exchanges;
mod labels;
mod operations;
mod returns;
mod shipping;
mod tax_document;

pub use cancel_lines::{LineCancellation, MAX_LINE_CANCELLATIONS};
pub use claims::{Claim, ClaimReason, ClaimResolution, MAX_CLAIMS, MAX_ORDER_LINES};
pub(crate) use edits::EditedShipment;
pub use edits::{MAX_ORDER_EDITS, OrderEdit, ShippingChange};
pub use exchanges::{
    Charge, ChargeState, Exchange, ExchangeState, MAX_CHARGES, MAX_PRICING_VERSIONS, PricingVersion,
};
pub(crate) use labels::{LabelCall, LabelStep};
pub use labels::{LabelState, MAX_TRACKING_UPDATES, ShipmentLabel, TrackingUpdate};
pub(crate) use operations::{Effects, Settlement};
pub(crate) use returns::StaffReturn;
pub use returns::{
    Eligibility, ItemCondition, MAX_RETURN_CASES, MAX_RETURN_WINDOW_DAYS, NewReturnCase,
    QuoteChecks, QuotedLine, ReceivedUnits, ReturnCase, ReturnCaseEntry, ReturnCaseState,
    ReturnFees, ReturnPolicy, ReturnQuote, ReturnReason, ReturnShipping, StandardReturnPolicy,
};
pub(crate) use tax_document::TaxStep;
pub use tax_document::{
    MAX_TAX_ADJUSTMENTS, TaxAdjustment, TaxAdjustmentState, TaxDocument, TaxDocumentState,
};

/// Longest cancellation reason or history note, in characters.
pub const MAX_NOTE_LEN: usize = 2_000;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrderStatus {
    /// Placed and paid for (authorized or captured); not yet handled.
    Placed,
    /// Being handled: payment collected or goods on their way.
    Processing,
    /// Everything done.
    Completed,
    /// Called off before anything shipped; payment voided or refunded.
    Cancelled,
}

impl OrderStatus {
    /// Whether the state machine allows `self → to`.
    pub fn can_become(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Placed, Processing | Completed | Cancelled)
                | (Processing, Completed | Cancelled)
                | (Completed, Processing)
        )
    }

    /// `self → to`, or [`Error::IllegalTransition`].
    ///
    /// # Errors
    /// [`Error::IllegalTransition`] naming both states.
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(Error::IllegalTransition {
                entity: "order",
                from: format!("{self:?}"),
                to: format!("{to:?}"),
            })
        }
    }
}

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum OrderChangeKind {
    /// The order was placed.
    Placed {
        /// Its total.
        total: Money,
    },
    /// Payment was collected.
    PaymentCaptured {
        /// How much.
        amount: Money,
    },
    /// Collected payment was returned.
    PaymentRefunded {
        /// How much.
        amount: Money,
    },
    /// The payment hold was released.
    PaymentVoided,
    /// The order was edited.
    Edited {
        /// The edit.
        edit: crate::id::OrderEditId,
    },
    /// Units were exchanged for others.
    Exchanged {
        /// The exchange.
        exchange: crate::id::ExchangeId,
    },
    /// A claim was made (damaged, missing or wrong units).
    Claimed {
        /// The claim.
        claim: crate::id::ClaimId,
        /// How it is settled.
        resolution: ClaimResolution,
    },
    /// Units of some lines were called off before they shipped.
    LinesCancelled {
        /// The cancellation.
        cancellation: crate::id::LineCancellationId,
        /// What they were charged (released from the hold or refunded).
        amount: Money,
    },
    /// Units left in a shipment.
    Shipped {
        /// The shipment.
        shipment: ShipmentId,
    },
    /// A shipment arrived.
    Delivered {
        /// The shipment.
        shipment: ShipmentId,
    },
    /// Units came back.
    Returned {
        /// The return.
        return_id: ReturnId,
        /// Refunded for it.
        refund: Money,
    },
    /// The payment provider reported the authorization failed.
    PaymentFailed,
    /// The provider refused a capture, refund or void; nothing moved.
    PaymentOperationFailed {
        /// What was refused.
        kind: crate::domain::payment::OperationKind,
        /// How much it would have moved.
        amount: Money,
    },
    /// The cardholder disputed the payment.
    PaymentDisputed {
        /// How much.
        amount: Money,
    },
    /// The order moved to another status.
    StatusChanged {
        /// From.
        from: OrderStatus,
        /// To.
        to: OrderStatus,
    },
}

/// How far an order's goods have gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FulfillmentStatus {
    /// Nothing shipped yet.
    Unfulfilled,
    /// Some units shipped.
    PartiallyFulfilled,
    /// Every unit shipped.
    Fulfilled,
    /// Every unit shipped and every shipment delivered.
    Delivered,
    /// Some shipped units came back.
    PartiallyReturned,
    /// Every unit came back.
    Returned,
}

/// Units of one order line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineQuantity {
    /// The order line (its cart line id).
    pub line_id: LineId,
    /// How many units.
    pub quantity: u32,
}

/// Units that left together, with the carrier's details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Shipment {
    /// Its id.
    pub id: ShipmentId,
    /// What left.
    pub items: Vec<LineQuantity>,
    /// Where the units left stock.
    pub stock: Vec<ReservationLine>,
    /// The carrier ("UPS").
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// When.
    pub shipped_at: DateTime<Utc>,
    /// When the carrier delivered it, once known.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Its label, when one was bought from a carrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<ShipmentLabel>,
    /// What the carrier reported on the parcel, oldest first (at most
    /// [`MAX_TRACKING_UPDATES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracking: Vec<TrackingUpdate>,
}

/// How shipping is refunded when goods come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ShippingRefund {
    /// Shipping is never refunded.
    #[default]
    Never,
    /// Shipping (with its tax) is refunded with the return that brings back
    /// the order's last unit.
    WhenAllReturned,
}

/// Units that came back and what was refunded for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Return {
    /// Its id.
    pub id: ReturnId,
    /// The idempotency key it was made under.
    pub key: String,
    /// What came back.
    pub items: Vec<LineQuantity>,
    /// Units put back on hand, by location (empty without restock).
    pub restocked: Vec<ReservationLine>,
    /// The refund: those units' frozen share of their lines' totals, plus
    /// shipping by the policy.
    pub refund: Money,
    /// Of which shipping.
    pub shipping_refund: Money,
    /// When.
    pub at: DateTime<Utc>,
    /// Whether its refund has gone through.
    #[serde(default)]
    pub state: ReturnState,
}

/// Where a return is: its refund is recorded before the provider is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReturnState {
    /// Its refund is in flight; its units count as returned.
    Pending,
    /// Refunded (or nothing to refund) and restocked.
    #[default]
    Completed,
    /// The provider refused the refund; its units count as not returned.
    Failed,
}

/// A cancellation asked for and not yet finished: the payment is being
/// voided or refunded first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cancellation {
    /// Why.
    pub reason: String,
    /// Who asked.
    pub actor: Actor,
    /// When.
    pub requested_at: DateTime<Utc>,
}

pub use crate::money::unit_shares;

/// One line of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: Actor,
    /// What.
    pub change: OrderChangeKind,
    /// Why, in words (may be empty).
    pub cause: String,
}

/// A placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub(crate) id: OrderId,
    pub(crate) checkout_key: IdempotencyKey,
    pub(crate) cart_id: CartId,
    pub(crate) customer_id: Option<CustomerId>,
    pub(crate) email: Option<Email>,
    pub(crate) pricing: PricedCart,
    pub(crate) shipping_address: Option<Address>,
    pub(crate) billing_address: Option<Address>,
    pub(crate) payment: Payment,
    /// What gift cards and store credit paid, one payment each (collected
    /// at checkout), in the order they were redeemed.
    #[serde(default)]
    pub(crate) tenders: Vec<Payment>,
    /// The sales channel it was sold in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) channel_id: Option<crate::id::ChannelId>,
    pub(crate) reservation_id: ReservationId,
    pub(crate) status: OrderStatus,
    pub(crate) placed_at: DateTime<Utc>,
    pub(crate) history: Vec<HistoryEntry>,
    pub(crate) shipments: Vec<Shipment>,
    pub(crate) returns: Vec<Return>,
    /// Return requests, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) return_cases: Vec<ReturnCase>,
    /// Units called off before they shipped, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) line_cancellations: Vec<LineCancellation>,
    /// Claims (damaged, missing, wrong units), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) claims: Vec<Claim>,
    /// Exchanges, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) exchanges: Vec<Exchange>,
    /// Amounts owed on top of the checkout's, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) charges: Vec<Charge>,
    /// The pricing before each change after the sale, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) pricing_versions: Vec<PricingVersion>,
    /// Confirmed edits, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) edits: Vec<OrderEdit>,
    pub(crate) notes: Vec<Note>,
    pub(crate) provider_events: Vec<String>,
    #[serde(default)]
    pub(crate) cancellation: Option<Cancellation>,
    /// SHA-256 of the guest's access token, hex (guest orders only).
    #[serde(default)]
    pub(crate) access_token_hash: Option<String>,
    /// Its tax document at the tax service, when tax comes from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tax_document: Option<TaxDocument>,
    pub(crate) version: u64,
}

impl Order {
    /// Its id.
    pub fn id(&self) -> OrderId {
        self.id
    }
    /// The idempotency key of the checkout that placed it.
    pub fn checkout_key(&self) -> &IdempotencyKey {
        &self.checkout_key
    }
    /// The cart it came from.
    pub fn cart_id(&self) -> CartId {
        self.cart_id
    }
    /// The customer, if it was not a guest checkout.
    pub fn customer_id(&self) -> Option<CustomerId> {
        self.customer_id
    }
    /// The contact email.
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }
    /// Whether the account `customer` or the contact `email` placed this
    /// order (what [`OrderStore::orders_placed_by`](crate::store::OrderStore::orders_placed_by)
    /// counts); `None` matches nothing.
    pub fn placed_by(&self, customer: Option<CustomerId>, email: Option<&Email>) -> bool {
        (customer.is_some() && self.customer_id == customer)
            || (email.is_some() && self.email.as_ref() == email)
    }
    /// The frozen pricing: lines, adjustments, tax, shipping and totals.
    pub fn pricing(&self) -> &PricedCart {
        &self.pricing
    }
    /// The grand total charged.
    pub fn total(&self) -> Money {
        self.pricing.total
    }
    /// Where it ships.
    pub fn shipping_address(&self) -> Option<&Address> {
        self.shipping_address.as_ref()
    }
    /// Where it is billed.
    pub fn billing_address(&self) -> Option<&Address> {
        self.billing_address.as_ref()
    }
    /// The payment with the provider (for an order paid wholly by gift
    /// cards or store credit: a payment of nothing).
    pub fn payment(&self) -> &Payment {
        &self.payment
    }

    /// What gift cards and store credit paid, in the order redeemed: one
    /// [`Payment`] each, its provider `gift_card` or `store_credit` and its
    /// reference the card's id.
    pub fn tenders(&self) -> &[Payment] {
        &self.tenders
    }

    /// The sales channel it was sold in, if any.
    pub fn channel_id(&self) -> Option<crate::id::ChannelId> {
        self.channel_id
    }

    /// The events its placing records, in order: placed, and — when the
    /// provider holds the amount for a later capture (manual capture) —
    /// the authorization. With immediate capture the capture's own event
    /// follows at once and says as much, so a checkout records two events
    /// either way.
    pub(crate) fn placed_events(&self) -> Vec<crate::event::EventKind> {
        let mut events = vec![crate::event::EventKind::OrderPlaced {
            order_id: self.id,
            total: self.total(),
            channel_id: self.channel_id,
        }];
        let authorized = self.payment.authorized();
        let capturing = self
            .payment
            .pending()
            .is_some_and(|op| op.kind == crate::payment::OperationKind::Capture);
        if !authorized.is_zero()
            && !authorized.is_negative()
            && self.payment.captured().is_zero()
            && !capturing
        {
            events.push(crate::event::EventKind::PaymentAuthorized {
                order_id: self.id,
                amount: authorized,
            });
        }
        events
    }

    /// Every payment of the order: the provider's first, then the tenders.
    pub fn payments(&self) -> impl Iterator<Item = &Payment> {
        std::iter::once(&self.payment).chain(self.tenders.iter())
    }

    /// The operation in flight on any of its payments (at most one is
    /// driven at a time), the provider's first.
    pub(crate) fn pending_operation(&self) -> Option<&crate::domain::payment::PaymentOperation> {
        self.payments().find_map(Payment::pending)
    }

    /// The payment holding the operation `key`.
    pub(crate) fn payment_holding(&self, key: &str) -> Option<&Payment> {
        self.payments().find(|p| p.operation(key).is_some())
    }

    fn payment_holding_mut(&mut self, key: &str) -> Option<&mut Payment> {
        if self.payment.operation(key).is_some() {
            return Some(&mut self.payment);
        }
        self.tenders.iter_mut().find(|p| p.operation(key).is_some())
    }
    /// The stock reservation allocated to it.
    pub fn reservation_id(&self) -> ReservationId {
        self.reservation_id
    }
    /// Where it is in its life.
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    /// When it was placed.
    pub fn placed_at(&self) -> DateTime<Utc> {
        self.placed_at
    }
    /// Everything that happened to it, oldest first.
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }
    /// Bumped by the store on every save; used to detect concurrent changes.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Its shipments, oldest first.
    pub fn shipments(&self) -> &[Shipment] {
        &self.shipments
    }
    /// Its returns, oldest first.
    pub fn returns(&self) -> &[Return] {
        &self.returns
    }
    /// Its notes (only those visible to the caller, when read through the engine).
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    pub(crate) fn add_note(&mut self, note: Note) -> Result<()> {
        crate::note::push(&mut self.notes, note)
    }

    /// The order as `actor` may see it: internal notes only for staff.
    pub(crate) fn visible_to(mut self, actor: &Actor) -> Self {
        crate::note::visible_to(&mut self.notes, actor);
        self
    }

    /// Units of a line returned so far (returns whose refund is in flight
    /// included; refused ones not).
    pub fn returned(&self, line: LineId) -> u32 {
        Self::count(
            self.returns
                .iter()
                .filter(|r| r.state != ReturnState::Failed)
                .flat_map(|r| &r.items),
            line,
        )
    }

    /// A cancellation asked for and not yet finished, if any.
    pub fn cancellation(&self) -> Option<&Cancellation> {
        self.cancellation.as_ref()
    }

    /// Whether a payment operation, a cancellation or a call to the tax
    /// service is in flight (the engine or recovery finishes it).
    pub fn has_pending_work(&self) -> bool {
        self.pending_operation().is_some()
            || (self.cancellation.is_some() && self.status != OrderStatus::Cancelled)
            || self.charge_in_flight().is_some()
            || self.tax_step().is_some()
            || self.label_step().is_some()
    }

    fn count<'a>(items: impl Iterator<Item = &'a LineQuantity>, line: LineId) -> u32 {
        items
            .filter(|i| i.line_id == line)
            .fold(0u32, |acc, i| acc.saturating_add(i.quantity))
    }

    /// One of its lines, by its (cart) line id.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a line not in the order.
    pub fn line(&self, line: LineId) -> Result<&crate::pricing::PricedLine> {
        self.pricing
            .lines
            .iter()
            .find(|l| l.line_id == line)
            .ok_or_else(|| Error::not_found("order line", line))
    }

    /// Sum over its lines of `units(line)`.
    fn total_units(&self, units: impl Fn(&crate::pricing::PricedLine) -> u32) -> u64 {
        self.pricing.lines.iter().map(|l| u64::from(units(l))).sum()
    }

    /// How far the goods have gone.
    pub fn fulfillment(&self) -> FulfillmentStatus {
        let ordered = self.total_units(|l| self.ordered(l.line_id));
        let shipped = self.total_units(|l| self.shipped(l.line_id));
        let returned = self.total_units(|l| self.returned(l.line_id));
        if returned > 0 {
            if returned == ordered {
                FulfillmentStatus::Returned
            } else {
                FulfillmentStatus::PartiallyReturned
            }
        } else if shipped == 0 {
            FulfillmentStatus::Unfulfilled
        } else if shipped < ordered {
            FulfillmentStatus::PartiallyFulfilled
        } else if self.shipments.iter().all(|s| s.delivered_at.is_some()) {
            FulfillmentStatus::Delivered
        } else {
            FulfillmentStatus::Fulfilled
        }
    }

    /// Checks requested units line by line: each line exists, appears once,
    /// and `available(line)` units are not exceeded.
    fn check_items(
        &self,
        items: &[LineQuantity],
        what: &'static str,
        available: impl Fn(&Self, LineId, u32) -> u32,
    ) -> Result<()> {
        if items.is_empty() {
            return Err(Error::invalid(what, "name at least one line"));
        }
        for (i, item) in items.iter().enumerate() {
            if item.quantity == 0 {
                return Err(Error::invalid("quantity", "must be at least 1"));
            }
            if items.iter().skip(i + 1).any(|o| o.line_id == item.line_id) {
                return Err(Error::invalid(what, "a line appears twice"));
            }
            let line = self.line(item.line_id)?;
            let left = available(self, item.line_id, line.quantity);
            if item.quantity > left {
                return Err(Error::invalid(
                    what,
                    format!(
                        "{} unit(s) of line {} asked for, but only {left} left for this",
                        item.quantity, item.line_id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Works out the refund for returning `items`: each returned unit's frozen
    /// share of its line total, plus shipping by `policy`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty request, a line named twice, a quantity
    /// of 0 or more units than shipped and not yet returned or named by an
    /// open return request ([`Order::returnable`]);
    /// [`Error::NotFound`] for an unknown line; [`Error::Overflow`].
    pub fn refund_for(
        &self,
        items: &[LineQuantity],
        policy: ShippingRefund,
    ) -> Result<(Money, Money)> {
        self.check_items(items, "return", |o, line, _| o.returnable(line))?;
        let currency = self.pricing.currency;
        let mut goods = Money::zero(currency);
        for item in items {
            let line = self.line(item.line_id)?;
            let shares = unit_shares(line.total, line.quantity)?;
            let first = usize::try_from(self.returned(item.line_id))
                .map_err(|_| Error::Overflow("units"))?;
            let count = usize::try_from(item.quantity).map_err(|_| Error::Overflow("units"))?;
            for share in shares.iter().skip(first).take(count) {
                goods = goods.checked_add(*share)?;
            }
        }
        let ordered = self.total_units(|l| self.ordered(l.line_id));
        let returned_after = self.total_units(|l| self.returned(l.line_id))
            + items.iter().map(|i| u64::from(i.quantity)).sum::<u64>();
        // What was paid for shipping — every shipment's charge after its
        // discounts, with its tax — never the undiscounted price.
        let shipping = match policy {
            ShippingRefund::WhenAllReturned if returned_after == ordered => self
                .pricing
                .shipping_charges()
                .try_fold(Money::zero(currency), |acc, s| acc.checked_add(s.total))?,
            _ => Money::zero(currency),
        };
        Ok((goods.checked_add(shipping)?, shipping))
    }

    /// Erases the buyer's personal data, for storage adapters implementing
    /// [`CustomerStore::erase_customer`](crate::store::CustomerStore::erase_customer):
    /// the email becomes `email` (the erased customer's placeholder), the
    /// addresses keep only their country and region (the tax jurisdiction),
    /// notes, the buyer's words on return requests and line metadata go. What the books need stays: lines,
    /// amounts, tax, payments, refunds, shipments, returns, dates and the
    /// history of changes.
    pub fn erase_personal_data(&mut self, email: &Email) {
        if self.email.is_some() {
            self.email = Some(email.clone());
        }
        for a in [&mut self.shipping_address, &mut self.billing_address]
            .into_iter()
            .flatten()
        {
            a.erase();
        }
        self.notes.clear();
        for case in &mut self.return_cases {
            case.note.clear();
        }
        for claim in &mut self.claims {
            claim.note.clear();
        }
        for line in &mut self.pricing.lines {
            line.metadata.clear();
        }
    }

    /// For storage adapters: records a successful save.
    ///
    /// # Errors
    /// [`Error::Overflow`] when the version counter is exhausted.
    pub fn saved(&mut self) -> Result<()> {
        self.version = self
            .version
            .checked_add(1)
            .ok_or_else(|| Error::Overflow("order version"))?;
        Ok(())
    }

    fn record(&mut self, at: DateTime<Utc>, actor: &Actor, change: OrderChangeKind, cause: &str) {
        self.history.push(HistoryEntry {
            at,
            actor: actor.clone(),
            change,
            cause: cause.to_owned(),
        });
    }

    fn move_to(
        &mut self,
        to: OrderStatus,
        at: DateTime<Utc>,
        actor: &Actor,
        cause: &str,
    ) -> Result<()> {
        let from = self.status;
        self.status = from.transition(to)?;
        self.record(
            at,
            actor,
            OrderChangeKind::StatusChanged { from, to },
            cause,
        );
        Ok(())
    }

    fn ensure_open(&self) -> Result<()> {
        match self.status {
            OrderStatus::Placed | OrderStatus::Processing => Ok(()),
            other => Err(Error::IllegalTransition {
                entity: "order",
                from: format!("{other:?}"),
                to: "a further change".into(),
            }),
        }
    }

    pub(crate) fn record_placed(&mut self, at: DateTime<Utc>, actor: &Actor) {
        let total = self.total();
        self.record(at, actor, OrderChangeKind::Placed { total }, "");
    }

    fn captured(&mut self, amount: Money, at: DateTime<Utc>, actor: &Actor) -> Result<()> {
        if amount.is_zero() {
            return Ok(());
        }
        self.record(at, actor, OrderChangeKind::PaymentCaptured { amount }, "");
        if self.status == OrderStatus::Placed {
            self.move_to(OrderStatus::Processing, at, actor, "payment captured")?;
        }
        self.complete_if_done(at, actor)
    }

    /// An open order whose every unit has shipped and whose payment is fully
    /// captured is completed.
    fn complete_if_done(&mut self, at: DateTime<Utc>, actor: &Actor) -> Result<()> {
        let shipped = matches!(
            self.fulfillment(),
            FulfillmentStatus::Fulfilled | FulfillmentStatus::Delivered
        );
        // Collected in full: a refund since (cancelled units, a goodwill
        // refund) leaves it collected.
        let collected = matches!(
            self.payment.status,
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded
        );
        if self.status != OrderStatus::Completed && shipped && collected {
            self.ensure_open()?;
            self.move_to(OrderStatus::Completed, at, actor, "shipped and paid")?;
        }
        Ok(())
    }

    /// Records that a shipment arrived.
    pub(crate) fn deliver(
        &mut self,
        shipment: ShipmentId,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<()> {
        let s = self
            .shipments
            .iter_mut()
            .find(|s| s.id == shipment)
            .ok_or_else(|| Error::not_found("shipment", shipment))?;
        if s.delivered_at.is_some() {
            return Ok(());
        }
        s.delivered_at = Some(at);
        self.record(at, actor, OrderChangeKind::Delivered { shipment }, "");
        Ok(())
    }
}

impl OrderChange {
    /// A change to the order alone: no stock moves, no events.
    pub fn new(order: Order) -> Self {
        Self {
            order,
            release_reservation: false,
            ship: Vec::new(),
            restock: Vec::new(),
            unreserve: Vec::new(),
            merge_reservation: None,
            events: Vec::new(),
        }
    }

    /// Adds events to record with the change.
    pub fn with_events(mut self, events: Vec<crate::event::EventKind>) -> Self {
        self.events = events;
        self
    }
}

/// Which orders to find; every field narrows the search. The default finds
/// every order, [`DEFAULT_PAGE_SIZE`] at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrderQuery {
    /// Only this customer's orders (customers can only ask for their own).
    pub customer: Option<CustomerId>,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only orders placed at or after this time.
    pub placed_from: Option<DateTime<Utc>>,
    /// Only orders placed before this time.
    pub placed_until: Option<DateTime<Utc>>,
    /// Only orders older than this one (the previous page's last id).
    pub before: Option<OrderId>,
    /// At most this many (1 to [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE);
    /// [`DEFAULT_PAGE_SIZE`] by default).
    pub limit: usize,
    /// Only orders with a payment operation or a cancellation in flight
    /// ([`Order::has_pending_work`]).
    pub pending_work: bool,
}

crate::domain::setters!(OrderQuery {
    limit: usize,
    pending_work: bool,
} into {
    customer: Option<CustomerId>,
    status: Option<OrderStatus>,
    placed_from: Option<DateTime<Utc>>,
    placed_until: Option<DateTime<Utc>>,
    before: Option<OrderId>,
});

/// The page size of [`OrderQuery::default`].
pub const DEFAULT_PAGE_SIZE: usize = 50;

impl Default for OrderQuery {
    fn default() -> Self {
        Self {
            customer: None,
            status: None,
            placed_from: None,
            placed_until: None,
            before: None,
            limit: DEFAULT_PAGE_SIZE,
            pending_work: false,
        }
    }
}

impl OrderQuery {
    /// Whether `order` matches (every field but `before` and `limit`).
    pub fn matches(&self, order: &Order) -> bool {
        self.customer.is_none_or(|c| order.customer_id == Some(c))
            && self.status.is_none_or(|s| order.status == s)
            && self.placed_from.is_none_or(|t| order.placed_at >= t)
            && self.placed_until.is_none_or(|t| order.placed_at < t)
            && self.before.is_none_or(|b| order.id < b)
            && (!self.pending_work || order.has_pending_work())
    }
}

/// A change to an order and what must happen with it, saved atomically by
/// [`OrderStore::save_order`](crate::store::OrderStore::save_order).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrderChange {
    /// The order as it should be; its version must still be the stored one.
    pub order: Order,
    /// Give back the order's stock reservation and its usage claims.
    pub release_reservation: bool,
    /// Units that left stock: taken out of the order's reservation and off
    /// hand at their locations.
    pub ship: Vec<ReservationLine>,
    /// Units put back on hand at their locations.
    pub restock: Vec<ReservationLine>,
    /// Units no longer needed (cancelled before they shipped): taken out of
    /// the order's reservation and back to sale at their locations.
    pub unreserve: Vec<ReservationLine>,
    /// A pending reservation (made by
    /// [`InventoryStore::reserve`](crate::store::InventoryStore::reserve))
    /// whose units join the order's reservation, for units added to the
    /// order (replacements): its lines move over, the stock stays reserved,
    /// and it is spent. Gone or no longer pending, the change fails whole
    /// with [`Error::Conflict`]`("reservation")`.
    pub merge_reservation: Option<crate::id::ReservationId>,
    /// Events to record with the change.
    pub events: Vec<crate::event::EventKind>,
}
