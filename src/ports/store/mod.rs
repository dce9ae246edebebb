//! The storage ports and their adapters.
//!
//! The ports are async traits, grouped by area and joined in [`Store`]. Each
//! method is one *atomic command*: when several things must change together
//! (reserve stock for a checkout; turn a reservation into an order and
//! complete the cart) that is one method, which each adapter implements
//! atomically — the in-memory adapter under one lock, PostgreSQL in one
//! transaction. Callers never read, check and then write across two calls;
//! where they update a cart or customer they send the version they read and
//! the store refuses a stale one ([`Error::Conflict`]).
//!
//! Architecture invariant: the ports speak only domain types. Adapters know
//! nothing of the engine, pricing or payment providers.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::event::{Event, EventKind};

use crate::cart::Cart;
use crate::catalog::CatalogEntry;
use crate::channel::{ChannelId, SalesChannel};
use crate::customer::{
    AccountChange, AccountToken, Customer, CustomerGroup, CustomerQuery, Email, TokenHolder,
};
use crate::error::{Error, Result};
use crate::giftcard::{GiftCard, GiftCardId, LedgerEntry, NewEntry};
use crate::id::PromotionId;
use crate::id::{
    CartId, CustomerId, IdempotencyKey, LocationId, OrderId, ReservationId, VariantId,
};
use crate::inventory::{Location, Reservation, StockLevel, StockRequest, StockSummary, UsageClaim};
use crate::money::Currency;
use crate::order::{Order, OrderChange, OrderQuery};
use crate::pricing::{Coupon, PriceList, Promotion};

/// Most rows any list call returns.
pub const MAX_PAGE_SIZE: usize = 500;

/// Customers and groups.
#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Saves a new customer. Fails if the email is taken.
    async fn insert_customer(&self, customer: Customer) -> Result<()>;
    /// Saves a changed customer if its version is still the stored one;
    /// returns it with the version bumped. A changed email must be free:
    /// [`Error::AlreadyExists`] otherwise (nothing changes).
    async fn save_customer(&self, customer: Customer) -> Result<Customer>;
    /// One customer.
    async fn customer(&self, id: CustomerId) -> Result<Customer>;
    /// The customer with this email, if any.
    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>>;
    /// Saves a group.
    async fn insert_group(&self, group: CustomerGroup) -> Result<()>;
    /// Every group.
    async fn groups(&self) -> Result<Vec<CustomerGroup>>;
    /// Erases a customer's personal data on request, as one atomic change:
    /// the customer ([`Customer::erase`]), every cart that is theirs or
    /// carries their email ([`Cart::erase_personal_data`], version bumped),
    /// every order placed by the account or with their email
    /// ([`Order::erase_personal_data`] with
    /// [`erased_email`](crate::customer::erased_email), and the order's
    /// email wherever the store indexes it). Amounts, tax, payments and
    /// dates stay. Erasing an erased customer again changes nothing.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown customer; [`Error::Storage`] when
    /// the store fails (and nothing changed).
    async fn erase_customer(&self, id: CustomerId, now: DateTime<Utc>) -> Result<Erasure>;
    /// Customers matching `query` ([`CustomerQuery::matches`]: text in the
    /// email or the name, group, after an id), in id order, at most
    /// `query.limit` (already checked by the engine).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails.
    async fn find_customers(&self, query: &CustomerQuery) -> Result<Vec<Customer>>;

    /// Records an account token for `holder`, replacing any earlier one of
    /// its purpose, with the fingerprint of the account's password
    /// ([`password_mark`](crate::customer::password_mark), via
    /// [`AccountToken::issued_under`]). For an email that no registered
    /// account has, the very same record is made under the holder's decoy
    /// id — the same work, so the time taken tells nothing — and `None` is
    /// returned. Returns the account the token is for.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a [`TokenHolder::Customer`] that does not
    /// exist; [`Error::Storage`] when the store fails.
    async fn issue_account_token(
        &self,
        holder: TokenHolder<'_>,
        token: AccountToken,
        now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>>;

    /// Uses the live token of `change`'s purpose of account `customer`
    /// against a presented secret's digest, in one atomic command under the
    /// account's lock ([`AccountToken::check`]): a wrong secret is counted
    /// (the token is void after
    /// [`MAX_TOKEN_ATTEMPTS`](crate::customer::MAX_TOKEN_ATTEMPTS), however
    /// many guesses race); a right one is used up and `change` applied to
    /// the customer, who is saved (version bumped) and returned. Two right
    /// guesses racing: one wins.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for an unknown account, no live token or a
    /// wrong secret; [`Error::AlreadyExists`] for an email change to an
    /// email taken meanwhile (nothing changes, the token stays);
    /// [`Error::Storage`] when the store fails.
    async fn use_account_token(
        &self,
        customer: CustomerId,
        presented: &str,
        change: &AccountChange,
        now: DateTime<Utc>,
    ) -> Result<Customer>;

    /// Forgets account tokens that expired before `now` (and those a newer
    /// one replaced). Returns how many.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails.
    async fn prune_account_tokens(&self, now: DateTime<Utc>) -> Result<u64>;
}

/// What [`CustomerStore::erase_customer`] changed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Erasure {
    /// The customer as erased.
    pub customer: Customer,
    /// Carts whose personal data were erased.
    pub carts: u64,
    /// Orders whose personal data were erased.
    pub orders: u64,
}

/// Carts.
#[async_trait]
pub trait CartStore: Send + Sync {
    /// Saves a new cart.
    async fn insert_cart(&self, cart: Cart) -> Result<()>;
    /// One cart.
    async fn cart(&self, id: CartId) -> Result<Cart>;
    /// Saves changed carts, all or none, each only if its version is still
    /// the stored one; returns them with versions bumped.
    async fn save_carts(&self, carts: Vec<Cart>, now: DateTime<Utc>) -> Result<Vec<Cart>>;
    /// The customer's most recent active cart in `currency`, if any.
    async fn active_cart_for(
        &self,
        customer: CustomerId,
        currency: Currency,
    ) -> Result<Option<Cart>>;
}

/// Stock, locations and reservations.
#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// Saves a location.
    async fn insert_location(&self, location: Location) -> Result<()>;
    /// Every location, in reservation order.
    async fn locations(&self) -> Result<Vec<Location>>;
    /// Sets the units on hand (0 to [`MAX_ON_HAND`](crate::inventory::MAX_ON_HAND)).
    async fn set_stock(
        &self,
        variant: VariantId,
        location: LocationId,
        on_hand: i64,
    ) -> Result<StockLevel>;
    /// Adds `delta` (may be negative) to the units on hand, within the same bounds.
    async fn adjust_stock(
        &self,
        variant: VariantId,
        location: LocationId,
        delta: i64,
    ) -> Result<StockLevel>;
    /// One variant's stock everywhere, counting only live reservations.
    async fn stock(&self, variant: VariantId) -> Result<StockSummary>;
    /// Each of `variants`' stock rows, in reservation order, read without
    /// locks (a variant with no rows, or unknown, is left out): what
    /// fulfilment routing looks at before pricing. The default reads them
    /// one by one.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails.
    async fn stock_levels(
        &self,
        variants: &[VariantId],
    ) -> Result<HashMap<VariantId, Vec<StockLevel>>> {
        let mut out = HashMap::with_capacity(variants.len());
        for v in variants {
            match self.stock(*v).await {
                Ok(summary) if !summary.levels.is_empty() => {
                    out.insert(*v, summary.levels);
                }
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
    /// Holds stock for every request and usage for every claim until
    /// `expires_at`, all or nothing.
    async fn reserve(
        &self,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation>;
    /// How much of a usage counter is held or used (0 if never claimed).
    async fn usage(&self, counter: &str) -> Result<u64>;
    /// Gives a pending or allocated reservation back. Releasing twice is a no-op.
    async fn release(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation>;
    /// Takes a live reservation's units out of stock (they left the building).
    async fn commit(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation>;
    /// One reservation.
    async fn reservation(&self, id: ReservationId) -> Result<Reservation>;
    /// Releases every pending reservation that expired by `now`; returns how many.
    async fn release_expired(&self, now: DateTime<Utc>) -> Result<u64>;

    /// Reads `variant`'s stock everywhere and marks it low (fewer units
    /// available than `threshold`) or not, recording
    /// [`EventKind::LowStock`] or [`EventKind::StockReplenished`] in the same
    /// atomic command — only when the mark changes. The read and the mark
    /// happen under one lock per variant, so the last evaluation always sees
    /// the newest level: each crossing is announced once however many
    /// callers notice it, and a stale reading cannot undo a newer one.
    /// Returns the event recorded, if any.
    async fn flag_low_stock(
        &self,
        variant: VariantId,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<EventKind>>;
}

/// The right to run one attempt of a checkout. Every checkout command checks
/// it, so a checkout that lost its lease (to recovery) cannot change anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The checkout's idempotency key.
    pub key: IdempotencyKey,
    /// Unique to this claim.
    pub token: Uuid,
    /// Which attempt of the checkout this is (1, 2, ...). Provider keys include it.
    pub attempt: u32,
}

/// A request to start (or join) a checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeginCheckout {
    /// The caller's idempotency key.
    pub key: IdempotencyKey,
    /// The cart checked out.
    pub cart_id: CartId,
    /// The payment method token.
    pub payment_token: String,
    /// Now.
    pub now: DateTime<Utc>,
    /// How long the claim is exclusive.
    pub lease_until: DateTime<Utc>,
}

/// A final failure, saved so that a retry with the same key gets it again.
///
/// Only outcomes of an executed checkout are saved (as Stripe does):
/// validation errors leave the key free for a corrected retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum CheckoutFailure {
    /// The provider declined the payment.
    PaymentDeclined {
        /// Decline code.
        code: String,
        /// Reason.
        message: String,
    },
    /// A coupon's uses or a promotion's budget ran out.
    UsageLimitReached {
        /// The counter.
        counter: String,
        /// Its limit.
        limit: u64,
        /// How much was already used.
        used: u64,
    },
    /// Not enough stock.
    OutOfStock {
        /// The variant.
        variant_id: VariantId,
        /// Units requested.
        requested: u32,
        /// Units available.
        available: i64,
    },
}

impl CheckoutFailure {
    /// The saved form of `error`, if it is a final checkout outcome.
    pub fn from_error(error: &Error) -> Option<Self> {
        match error {
            Error::UsageLimitReached {
                counter,
                limit,
                used,
            } => Some(Self::UsageLimitReached {
                counter: counter.clone(),
                limit: *limit,
                used: *used,
            }),
            Error::PaymentDeclined { code, message } => Some(Self::PaymentDeclined {
                code: code.clone(),
                message: message.clone(),
            }),
            Error::OutOfStock {
                variant_id,
                requested,
                available,
            } => Some(Self::OutOfStock {
                variant_id: *variant_id,
                requested: *requested,
                available: *available,
            }),
            _ => None,
        }
    }
}

impl From<CheckoutFailure> for Error {
    fn from(f: CheckoutFailure) -> Self {
        match f {
            CheckoutFailure::UsageLimitReached {
                counter,
                limit,
                used,
            } => Error::UsageLimitReached {
                counter,
                limit,
                used,
            },
            CheckoutFailure::PaymentDeclined { code, message } => {
                Error::PaymentDeclined { code, message }
            }
            CheckoutFailure::OutOfStock {
                variant_id,
                requested,
                available,
            } => Error::OutOfStock {
                variant_id,
                requested,
                available,
            },
        }
    }
}

/// What [`CheckoutStore::begin_checkout`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckoutClaim {
    /// The caller now runs the checkout.
    Claimed(Lease),
    /// It already succeeded.
    Completed(OrderId),
    /// It already failed for good.
    Failed(CheckoutFailure),
    /// Someone else is running it; their lease ends at the given time.
    InProgress {
        /// When the running attempt's lease ends.
        lease_until: DateTime<Utc>,
    },
    /// Its payment waits for the customer or the provider
    /// ([`CheckoutState::AwaitingPayment`]); nothing was claimed.
    AwaitingPayment(Box<crate::payment::PaymentSession>),
}

/// How a checkout record stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum CheckoutState {
    /// An attempt is running (or crashed; see the lease).
    InProgress,
    /// The attempt's payment waits for the customer or the provider
    /// ([`CheckoutRecord::awaiting`] holds the session and the order to
    /// place); its stock stays reserved. The lease ends when the session
    /// expires.
    AwaitingPayment,
    /// The last attempt failed without a final outcome; the next call runs a new attempt.
    Retryable,
    /// The order was placed.
    Completed {
        /// The order.
        order_id: OrderId,
    },
    /// Final failure.
    Failed {
        /// Why.
        failure: CheckoutFailure,
    },
}

/// The store's record of one idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutRecord {
    /// The key.
    pub key: IdempotencyKey,
    /// The cart it was first used with.
    pub cart_id: CartId,
    /// The payment token it was first used with.
    pub payment_token: String,
    /// The current or last attempt.
    pub attempt: u32,
    /// Where it stands.
    pub state: CheckoutState,
    /// The current attempt's reservation, if one was made.
    pub reservation_id: Option<ReservationId>,
    /// The current lease's token.
    pub lease_token: Uuid,
    /// When the current lease ends.
    pub lease_until: DateTime<Utc>,
    /// When the key was first used.
    pub created_at: DateTime<Utc>,
    /// The waiting payment and the order it will place: set while the
    /// checkout is [`CheckoutState::AwaitingPayment`], and kept while an
    /// attempt that claimed it runs ([`CheckoutState::InProgress`]), so a
    /// crash there is recovered with it.
    pub awaiting: Option<Box<AwaitingPayment>>,
}

/// A checkout's payment that waits (for the customer or the provider), with
/// the order that is placed once it completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingPayment {
    /// The session shown to the buyer.
    pub session: crate::payment::PaymentSession,
    /// The order as it will be placed (its payment is filled in from the
    /// provider's final answer).
    pub order: Order,
    /// Whether the authorize call asked to collect at once (a sale).
    pub sale: bool,
    /// Who checked out (recorded on the order when it is placed).
    pub actor: crate::actor::Actor,
}

impl AwaitingPayment {
    /// The event its recording writes: the buyer must act.
    pub fn event(&self) -> EventKind {
        EventKind::PaymentActionRequired {
            cart_id: self.order.cart_id,
            amount: self.session.amount,
        }
    }

    /// Whether the order it will place is the customer `id`'s, or was
    /// checked out with `email`: erasing that customer erases it too.
    pub fn concerns(&self, id: CustomerId, email: &Email) -> bool {
        self.order.placed_by(Some(id), Some(email))
    }

    /// Erases the personal data of the order it will place, as
    /// [`Order::erase_personal_data`] does for a placed one (for store
    /// adapters' [`CustomerStore::erase_customer`]).
    pub fn erase_personal_data(&mut self, erased: &Email) {
        self.order.erase_personal_data(erased);
    }
}

/// How a checkout attempt that did not place an order ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckoutEnd {
    /// For good: retries with the key get this failure.
    Failed(CheckoutFailure),
    /// Not for good: the next call with the key runs a new attempt.
    Retryable,
    /// The attempt changed nothing (it failed validation before reserving
    /// stock or calling the provider). The store forgets the attempt — and
    /// the key itself if this was its first attempt — so a bad request
    /// leaves no trace.
    Untouched,
}

/// Checkout commands. Each is atomic and checks the [`Lease`].
#[async_trait]
pub trait CheckoutStore: Send + Sync {
    /// Claims the key, or reports how it stands.
    ///
    /// New key → claimed as attempt 1. Retryable → claimed as the next
    /// attempt. In progress → [`CheckoutClaim::InProgress`], even when its
    /// lease has expired: expired attempts are cleaned up by recovery first.
    /// The key used with another cart or payment token →
    /// [`Error::IdempotencyConflict`].
    async fn begin_checkout(&self, begin: BeginCheckout) -> Result<CheckoutClaim>;

    /// Holds stock and usage for the checkout until `expires_at`, all or
    /// nothing, releasing any earlier hold of the same checkout.
    async fn reserve_for_checkout(
        &self,
        lease: &Lease,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation>;

    /// Claims a key never seen and holds stock and usage for it until
    /// `expires_at`, in one atomic command: the usual checkout's first
    /// commit. `Ok(None)` — with nothing written — when the key exists,
    /// when the stock or a usage limit is not there, or when the store
    /// cannot do it in one command; the engine then takes the general path
    /// ([`begin_checkout`](Self::begin_checkout), then
    /// [`reserve_for_checkout`](Self::reserve_for_checkout)), which names
    /// the exact reason. The default answers `Ok(None)` always, so a store
    /// of one's own is correct without it and faster with it.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails; validation errors as
    /// [`reserve_for_checkout`](Self::reserve_for_checkout) gives them.
    async fn begin_and_reserve(
        &self,
        begin: BeginCheckout,
        requests: &[StockRequest],
        claims: &[UsageClaim],
        expires_at: DateTime<Utc>,
    ) -> Result<Option<(Lease, Reservation)>> {
        let _ = (begin, requests, claims, expires_at);
        Ok(None)
    }

    /// Places the order: the checkout's live reservation is allocated to it,
    /// the cart (still at the priced version) is completed, the customer's
    /// order count goes up, the checkout is marked completed and an
    /// [`EventKind::OrderPlaced`] event is recorded — all or nothing.
    async fn place_order(&self, lease: &Lease, order: Order, now: DateTime<Utc>) -> Result<Order>;

    /// Ends an attempt that did not place an order, releasing its reservation.
    async fn end_checkout(&self, lease: &Lease, end: CheckoutEnd, now: DateTime<Utc>)
    -> Result<()>;

    /// The record for a key.
    async fn checkout(&self, key: &IdempotencyKey) -> Result<Option<CheckoutRecord>>;

    /// Fences a running attempt before it gives anything back (voids a
    /// hold, refunds a sale, releases gift cards): succeeds only while
    /// `lease` still holds the checkout in progress, and in the same atomic
    /// command drops the waiting payment the record keeps (the order it
    /// would place) and extends the lease to `lease_until`. After it, no one
    /// can place an order for this attempt: recovery, taking over an
    /// attempt whose fencer stalled past `lease_until`, finds nothing to
    /// place and gives back the same things under the same keys.
    ///
    /// The rule it enforces: whoever no longer holds the lease gives
    /// nothing back and changes nothing; the lease holder owns the outcome.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when the lease no longer holds the checkout in
    /// progress (taken over, completed, ended); [`Error::Storage`] when the
    /// store fails.
    async fn fence_checkout(&self, lease: &Lease, lease_until: DateTime<Utc>) -> Result<()>;

    /// Parks a running attempt whose payment waits: the checkout becomes
    /// [`CheckoutState::AwaitingPayment`] with `awaiting` until `until` (the
    /// session's expiry: its lease), and its reservation is kept until
    /// `hold_until`, and its [`AwaitingPayment::event`] is recorded at
    /// `now` — in one atomic command, under the lease.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when the lease no longer holds the checkout;
    /// [`Error::ReservationExpired`] when its reservation is gone.
    async fn await_payment(
        &self,
        lease: &Lease,
        awaiting: &AwaitingPayment,
        until: DateTime<Utc>,
        hold_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Takes a waiting checkout to settle its payment: a checkout
    /// [`CheckoutState::AwaitingPayment`] becomes in progress under a new
    /// lease until `lease_until`, keeping its attempt and its waiting
    /// payment. `None` when it is not waiting (settled, or someone else is
    /// settling it).
    async fn claim_awaiting(
        &self,
        key: &IdempotencyKey,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<(Lease, AwaitingPayment)>>;

    /// The checkout whose waiting payment has the provider reference
    /// `reference` (waiting, or being settled), if any.
    async fn checkout_by_payment_reference(
        &self,
        reference: &str,
    ) -> Result<Option<CheckoutRecord>>;

    /// Checkouts in progress whose lease ended before `now`, and waiting
    /// checkouts whose session expired by `now`, oldest first.
    async fn stale_checkouts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CheckoutRecord>>;

    /// Takes over a stale checkout for cleaning up: succeeds only if it is
    /// still in progress with an expired lease, or waiting with an expired
    /// session (it becomes in progress, keeping its waiting payment).
    async fn claim_stale(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Lease>>;

    /// Forgets idempotency records first used before `before` whose
    /// checkout has ended (completed, failed or retryable; never one in
    /// progress). A retry with a forgotten key runs as a new checkout.
    /// Returns how many were removed.
    async fn prune_checkouts(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// Orders.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// One order.
    async fn order(&self, id: OrderId) -> Result<Order>;
    /// The order whose payment has this provider reference, if any.
    async fn order_by_payment_reference(&self, reference: &str) -> Result<Option<Order>>;
    /// Orders matching `query`, newest first, at most `query.limit`
    /// (1 to [`MAX_PAGE_SIZE`]).
    async fn find_orders(&self, query: &OrderQuery) -> Result<Vec<Order>>;
    /// How many orders were placed by the account `customer` **or** with
    /// the contact `email` (each order counted once, whatever its status).
    /// Pricing asks this for "order number" conditions, so that a guest, or
    /// a customer checking out as a guest with the same email, is not new
    /// every time. `None` for both answers 0.
    ///
    /// The default walks every order, a page at a time, through
    /// [`OrderStore::find_orders`]: correct for any store, and slow with
    /// many orders; the built-in stores answer from an index.
    async fn orders_placed_by(
        &self,
        customer: Option<CustomerId>,
        email: Option<&Email>,
    ) -> Result<u64> {
        if customer.is_none() && email.is_none() {
            return Ok(0);
        }
        let mut count = 0_u64;
        let mut query = OrderQuery::default().limit(MAX_PAGE_SIZE);
        loop {
            let page = self.find_orders(&query).await?;
            count += page.iter().filter(|o| o.placed_by(customer, email)).count() as u64;
            match page.last() {
                Some(last) if page.len() == MAX_PAGE_SIZE => {
                    query = query.before(Some(last.id()));
                }
                _ => return Ok(count),
            }
        }
    }
    /// Saves a changed order if its version is still the stored one, and in
    /// the same atomic command releases its reservation (stock and usage
    /// claims) when asked and records the events. Returns the order with
    /// its version bumped.
    async fn save_order(&self, change: OrderChange, now: DateTime<Utc>) -> Result<Order>;
}

mod agents;
mod catalog;
mod events;
mod staff;
mod webhooks;
pub use agents::*;
pub use catalog::*;
pub use events::*;
pub use staff::*;
pub use webhooks::*;

/// Promotions, price lists and coupon codes.
#[async_trait]
pub trait PromotionStore: CartStore + Send + Sync {
    /// Inserts or replaces a promotion (already validated) and bumps the
    /// pricing version.
    async fn save_promotion(&self, promotion: Promotion) -> Result<()>;
    /// One promotion.
    async fn promotion(&self, id: PromotionId) -> Result<Promotion>;
    /// Every promotion, by id.
    async fn promotions(&self) -> Result<Vec<Promotion>>;
    /// Inserts or replaces a price list (already validated) and bumps the
    /// pricing version.
    async fn save_price_list(&self, list: PriceList) -> Result<()>;
    /// Every price list, by id.
    async fn price_lists(&self) -> Result<Vec<PriceList>>;
    /// Inserts coupons, all or none: a code already taken is
    /// [`Error::AlreadyExists`], an unknown promotion (any a code unlocks)
    /// [`Error::NotFound`], a bad promotion list as
    /// [`Coupon::validate`](crate::pricing::Coupon::validate).
    async fn insert_coupons(&self, coupons: &[Coupon]) -> Result<()>;
    /// Everything pricing a cart reads, in one call (one round trip on
    /// PostgreSQL): the catalog entries of `variants`, the coupons with
    /// these (normalized) codes, and the pricing version — a number that
    /// changes whenever a promotion or price list changes.
    async fn pricing_inputs(
        &self,
        variants: &[VariantId],
        codes: &[String],
    ) -> Result<PricingInputs>;

    /// A cart and what pricing it reads — the catalog entries of its lines'
    /// variants and of `extra`, the coupons its codes name, the pricing
    /// version — in one call: checkout's read (one round trip on
    /// PostgreSQL). The default reads the cart, then calls
    /// [`pricing_inputs`](Self::pricing_inputs).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown cart; [`Error::Storage`] when the
    /// store fails.
    async fn cart_for_pricing(
        &self,
        cart_id: CartId,
        extra: &[VariantId],
    ) -> Result<(Cart, PricingInputs)> {
        let cart = self.cart(cart_id).await?;
        let mut ids: Vec<VariantId> = cart.lines().iter().map(|l| l.variant_id).collect();
        ids.extend_from_slice(extra);
        ids.sort_unstable();
        ids.dedup();
        let inputs = self.pricing_inputs(&ids, cart.coupon_codes()).await?;
        Ok((cart, inputs))
    }
}

/// What [`PromotionStore::pricing_inputs`] returns.
#[derive(Debug, Clone, Default)]
pub struct PricingInputs {
    /// The catalog entries found (unknown variants are left out).
    pub entries: HashMap<VariantId, CatalogEntry>,
    /// The coupons found (unknown codes are left out).
    pub coupons: Vec<Coupon>,
    /// The pricing version at the time of reading.
    pub version: u64,
}

/// Sales channels.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Saves a channel: inserts it when new (`version` 0), otherwise
    /// replaces the stored one if it is still at `channel.version`. Returns
    /// it with its version bumped.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] for a name taken by another channel;
    /// [`Error::Conflict`] for a stale version; [`Error::NotFound`] for an
    /// update of an unknown channel.
    async fn save_channel(&self, channel: SalesChannel) -> Result<SalesChannel>;

    /// One channel.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    async fn channel(&self, id: ChannelId) -> Result<SalesChannel>;

    /// Every channel, by name (at most [`MAX_PAGE_SIZE`]).
    async fn channels(&self) -> Result<Vec<SalesChannel>>;
}

/// Gift cards and store credit: cards with append-only ledgers.
#[async_trait]
pub trait GiftCardStore: Send + Sync {
    /// Stores a new card with its first entries.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when its id or code hash is taken (the
    /// value named is the id, never the code).
    async fn insert_gift_card(&self, card: GiftCard) -> Result<()>;

    /// One card, with its ledger.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    async fn gift_card(&self, id: GiftCardId) -> Result<GiftCard>;

    /// The card whose code hashes to `code_hash`, if any.
    async fn gift_card_by_code(&self, code_hash: &str) -> Result<Option<GiftCard>>;

    /// A customer's cards and store credit, oldest first (at most
    /// [`MAX_PAGE_SIZE`]).
    async fn gift_cards_of(&self, customer: CustomerId) -> Result<Vec<GiftCard>>;

    /// Posts `entry` on card `id` atomically ([`GiftCard::post`] under the
    /// card's lock or row lock, so concurrent redemptions never overdraw);
    /// returns the card as it now stands. Posting an entry whose key the
    /// card has changes nothing.
    ///
    /// # Errors
    /// As [`GiftCard::post`]; [`Error::NotFound`].
    async fn post_gift_card_entry(
        &self,
        id: GiftCardId,
        entry: NewEntry,
        now: DateTime<Utc>,
    ) -> Result<GiftCard>;

    /// Every entry whose reference is `reference`, with its card, for
    /// recovery (what a checkout attempt redeemed).
    async fn gift_card_entries_for(
        &self,
        reference: &str,
    ) -> Result<Vec<(GiftCardId, LedgerEntry)>>;
}

/// Everything the engine needs from storage. Implemented automatically for
/// any type that implements every port.
pub trait Store:
    CatalogStore
    + CustomerStore
    + CartStore
    + InventoryStore
    + CheckoutStore
    + OrderStore
    + EventStore
    + PromotionStore
    + GiftCardStore
    + ChannelStore
    + WebhookStore
    + AgentStore
    + StaffStore
{
}

impl<T> Store for T where
    T: CatalogStore
        + CustomerStore
        + CartStore
        + InventoryStore
        + CheckoutStore
        + OrderStore
        + EventStore
        + PromotionStore
        + GiftCardStore
        + ChannelStore
        + WebhookStore
        + AgentStore
        + StaffStore
{
}

pub(crate) fn check_limit(limit: usize) -> Result<usize> {
    if limit == 0 || limit > MAX_PAGE_SIZE {
        Err(Error::LimitExceeded {
            what: "page size",
            max: MAX_PAGE_SIZE as u64,
        })
    } else {
        Ok(limit)
    }
}
