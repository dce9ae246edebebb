//! The crate's error type.
//!
//! Domain errors (a variant is out of stock, a payment was declined, two
//! currencies were mixed) are kept apart from infrastructure errors (the store
//! failed): branch on [`Error::is_retryable`] or match the variants.
//!
//! Does not know: which store or provider produced an error beyond its
//! variant; database text never reaches a message.

use std::sync::Arc;

use crate::id::{CartId, CustomerId, InvalidId, VariantId};
use crate::money::{Currency, Money, MoneyError};

/// A `Result` whose error defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in cartwright.
///
/// Every operation that fails with one of these changed nothing, unless the
/// variant's documentation says otherwise.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch {
        /// The currency of the left operand (or of the cart).
        left: Currency,
        /// The currency of the right operand.
        right: Currency,
    },
    /// A calculation went beyond the range of the numeric type.
    #[error("arithmetic overflow while computing {0}")]
    Overflow(&'static str),
    /// A currency code is not an ISO 4217 currency with minor units.
    #[error("unknown or unsupported currency `{0}`")]
    UnknownCurrency(String),
    /// An amount has more decimal places than its currency's minor unit.
    #[error("amount {amount} has more decimal places than {currency} allows")]
    NotMinorUnits {
        /// The amount as text.
        amount: String,
        /// Its currency.
        currency: Currency,
    },
    /// An input value is malformed or out of range.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The name of the offending field.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A documented limit would be exceeded.
    #[error("limit exceeded: {what} may be at most {max}")]
    LimitExceeded {
        /// What is limited.
        what: &'static str,
        /// The documented maximum.
        max: u64,
    },
    /// An entity does not exist (or is not visible to the caller).
    #[error("{entity} {id} not found")]
    NotFound {
        /// The kind of entity.
        entity: &'static str,
        /// Its identifier as text.
        id: String,
    },
    /// A unique value is already taken.
    #[error("{what} `{value}` already exists")]
    AlreadyExists {
        /// What must be unique.
        what: &'static str,
        /// The duplicate value.
        value: String,
    },
    /// The variant exists but cannot be bought (draft or archived).
    #[error("variant {variant_id} cannot be bought: {reason}")]
    NotPurchasable {
        /// The variant.
        variant_id: VariantId,
        /// Why.
        reason: &'static str,
    },
    /// The variant has no price in the requested currency.
    #[error("variant {variant_id} has no price in {currency}")]
    NoPrice {
        /// The variant.
        variant_id: VariantId,
        /// The currency asked for.
        currency: Currency,
    },
    /// The email and password do not match an account. Deliberately says
    /// nothing about which of the two was wrong.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// An account token (password reset, email verification) that is
    /// malformed, unknown, used, expired, worn out by wrong guesses, or for
    /// another purpose — one answer for all, so a guess learns nothing.
    #[error("the link is invalid or has expired")]
    InvalidToken,
    /// The caller may not read or change this resource.
    #[error("access denied")]
    Forbidden,
    /// A refund larger than the acting member of staff's roles allow in
    /// its currency ([`Role::refund_ceiling`](crate::staff::Role)).
    #[error("a refund of {amount} is above the limit of {}", limit.map_or_else(|| "nothing".to_owned(), |l| l.to_string()))]
    RefundAboveLimit {
        /// The refund asked for.
        amount: Money,
        /// The most the member may refund at once in its currency (`None`:
        /// nothing).
        limit: Option<Money>,
    },
    /// The cart has been checked out or merged and can no longer change.
    #[error("cart {cart_id} is no longer active")]
    CartNotActive {
        /// The cart.
        cart_id: CartId,
    },
    /// A cart with no lines cannot be checked out.
    #[error("the cart is empty")]
    EmptyCart,
    /// Checkout needs something the cart does not have yet.
    #[error("the cart has no {0}")]
    Incomplete(&'static str),
    /// The chosen shipping method is not offered for this cart.
    #[error("shipping method `{0}` is not available for this cart")]
    ShippingUnavailable(String),
    /// Not enough stock to reserve.
    #[error("variant {variant_id} is out of stock: requested {requested}, available {available}")]
    OutOfStock {
        /// The variant.
        variant_id: VariantId,
        /// Units requested.
        requested: u32,
        /// Units available when the request was made.
        available: i64,
    },
    /// A limited counter (a coupon's uses, a promotion's budget) would go
    /// past its limit.
    #[error("usage limit reached for {counter}: {used} of {limit} used")]
    UsageLimitReached {
        /// The counter.
        counter: String,
        /// Its limit.
        limit: u64,
        /// How much was already used.
        used: u64,
    },
    /// The cart's total at checkout is not the total the caller expected
    /// ([`CheckoutRequest::expected_total`](crate::CheckoutRequest::expected_total)):
    /// a promotion or price changed since the customer saw it. Nothing was
    /// reserved or charged; show the new total and retry.
    #[error("the total changed from {expected} to {actual}")]
    PriceChanged {
        /// What the caller expected.
        expected: Money,
        /// What checkout priced.
        actual: Money,
    },
    /// The payment provider declined the payment. Final for this request.
    #[error("payment declined ({code}): {message}")]
    PaymentDeclined {
        /// The provider's decline code.
        code: String,
        /// A human-readable reason.
        message: String,
    },
    /// The payment provider could not be reached or failed; retrying later is safe.
    #[error("payment provider unavailable: {0}")]
    PaymentUnavailable(String),
    /// A service the engine depends on (the tax provider, a carrier) could
    /// not be reached or did not answer in time; retrying later is safe.
    /// Nothing was changed.
    #[error("{service} unavailable: {reason}")]
    ServiceUnavailable {
        /// Which ("tax provider", "carrier").
        service: &'static str,
        /// What went wrong (the engine's words, never the service's).
        reason: String,
    },
    /// The product is not sold in the cart's sales channel. Nothing changed.
    #[error("product {product_id} is not sold in sales channel {channel_id}")]
    NotInChannel {
        /// The product.
        product_id: crate::id::ProductId,
        /// The channel.
        channel_id: crate::id::ChannelId,
    },
    /// A gift card or store credit holds less than a redemption asked for.
    /// Nothing was taken from it.
    #[error("insufficient balance: {requested} asked for, {available} available")]
    InsufficientBalance {
        /// What the balance holds.
        available: Money,
        /// What was asked for.
        requested: Money,
    },
    /// Too many wrong guesses (of gift card codes) from one source: wait
    /// before trying again. Nothing changed.
    #[error("too many failed attempts at {what}; try again later")]
    TooManyAttempts {
        /// What was guessed.
        what: &'static str,
    },
    /// The checkout's payment waits for the customer (a 3-D Secure
    /// challenge, a redirect) or the provider: no order yet, the stock stays
    /// reserved. Show the session's action to the buyer, then complete it
    /// ([`Engine::complete_checkout`](crate::Engine::complete_checkout));
    /// [`Engine::start_checkout`](crate::Engine::start_checkout) returns the
    /// same as a value. Changed: the checkout is recorded as waiting.
    #[error("the payment waits for the customer or the provider before the order is placed")]
    PaymentPending(Box<crate::domain::session::PaymentSession>),
    /// A state machine was asked for a transition it does not allow.
    #[error("{entity} cannot go from {from} to {to}")]
    IllegalTransition {
        /// The state machine.
        entity: &'static str,
        /// The current state.
        from: String,
        /// The requested state.
        to: String,
    },
    /// Another capture, refund or void of the same payment is recorded and
    /// not yet settled; only one may be in flight. Retry once it settles (the
    /// engine, or recovery, finishes it).
    #[error("payment operation `{operation}` is still in progress")]
    PaymentInProgress {
        /// The provider key of the operation in flight.
        operation: String,
    },
    /// Too many callers at once for a bounded resource (password hashing);
    /// retry after a short wait.
    #[error("too busy: {0}; retry shortly")]
    Busy(&'static str),
    /// The idempotency key was already used for a different request.
    #[error("idempotency key `{0}` was used for a different request")]
    IdempotencyConflict(String),
    /// Another call with the same idempotency key is still running.
    #[error("a checkout with idempotency key `{0}` is still in progress")]
    CheckoutInProgress(String),
    /// A checkout lost its lease to another caller or to recovery and stopped.
    #[error("the checkout lease was lost; retry with the same idempotency key")]
    LeaseLost,
    /// A stock reservation expired before the order could be placed.
    #[error("the stock reservation expired before the order was placed")]
    ReservationExpired,
    /// A concurrent change won; re-read and try again.
    #[error("concurrent modification of {0}; re-read and retry")]
    Conflict(&'static str),
    /// The customer is not the owner of the cart or order, or has no account.
    #[error("customer {0} not found")]
    UnknownCustomer(CustomerId),
    /// Stored data is unreadable or contradicts itself (a row edited by hand,
    /// a number beyond range). Not retryable: the data must be repaired.
    #[error("corrupt {entity} data in the store: {reason}")]
    CorruptData {
        /// What was being read.
        entity: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The storage backend failed. Nothing is known to have changed; retrying is safe.
    #[error("storage error: {message}")]
    Storage {
        /// What failed.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl From<MoneyError> for Error {
    fn from(e: MoneyError) -> Self {
        match e {
            MoneyError::CurrencyMismatch { left, right } => Self::CurrencyMismatch { left, right },
            MoneyError::Overflow(what) => Self::Overflow(what),
            MoneyError::UnknownCurrency(code) => Self::UnknownCurrency(code),
            MoneyError::NotMinorUnits { amount, currency } => {
                Self::NotMinorUnits { amount, currency }
            }
            MoneyError::Invalid { field, reason } => Self::Invalid { field, reason },
        }
    }
}

impl From<InvalidId> for Error {
    fn from(e: InvalidId) -> Self {
        Self::Invalid {
            field: e.field,
            reason: e.reason,
        }
    }
}

impl Error {
    /// Shorthand for [`Error::Invalid`] (for plugins, such as custom pricing rules, that reject input).
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub(crate) fn not_found(entity: &'static str, id: impl std::fmt::Display) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// True when the same call may succeed if simply retried later: the
    /// failure was in infrastructure or a race, not in the request itself.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::PaymentUnavailable(_)
                | Self::ServiceUnavailable { .. }
                | Self::CheckoutInProgress(_)
                | Self::PaymentInProgress { .. }
                | Self::Busy(_)
                | Self::LeaseLost
                | Self::ReservationExpired
                | Self::Conflict(_)
                | Self::Storage { .. }
        )
    }
}
