//! A payment that waits: what a provider says about an authorization and
//! what the customer must do before it completes. Re-exported from
//! [`payment`](crate::payment); kept apart so that [`Error`](crate::Error)
//! can carry a [`PaymentSession`] without an import cycle.

use serde::{Deserialize, Serialize};

use crate::money::Money;

/// What the provider says about an authorization after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderStatus {
    /// Funds are held.
    Authorized,
    /// Some or all of the hold was collected.
    Captured,
    /// The hold was released.
    Voided,
    /// Some or all of the capture was returned.
    Refunded,
    /// Nothing is held yet: the customer must act first (a 3-D Secure
    /// challenge, a redirect to a wallet or bank); the answer's
    /// [`action`](crate::payment::ProviderResponse::action) says what.
    RequiresAction,
    /// Nothing is held yet and the customer has nothing more to do: the
    /// provider confirms later, by event or when asked (a bank transfer,
    /// a payment under review).
    Processing,
    /// The payment failed after the customer acted, or lapsed; nothing is held.
    Failed,
}

impl ProviderStatus {
    /// Whether the payment is waiting (on the customer or the provider)
    /// before anything is held.
    pub fn is_waiting(self) -> bool {
        matches!(self, Self::RequiresAction | Self::Processing)
    }
}

/// What the customer must do before a payment can complete, as the
/// provider asks for it (Stripe's `next_action`, Adyen's action object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum CustomerAction {
    /// Send the customer to `url` (a bank's 3-D Secure page, a wallet, a
    /// bank); the provider sends them back to the shop afterwards.
    Redirect {
        /// Where to send the customer: `https://` or `http://`, at most
        /// [`MAX_ACTION_URL_LEN`] visible ASCII characters.
        url: String,
    },
    /// Hand `data` to the provider's client library in the page (a client
    /// secret, a challenge token), which runs the step without leaving the
    /// shop. Treat it as a secret: show it only to the buyer.
    ClientData {
        /// Opaque to the engine; at most [`MAX_ACTION_DATA_LEN`] visible
        /// ASCII characters.
        data: String,
    },
}

/// Longest redirect URL accepted from a provider, in characters.
pub const MAX_ACTION_URL_LEN: usize = 2_048;
/// Longest client data accepted from a provider, in characters.
pub const MAX_ACTION_DATA_LEN: usize = 4_096;

/// A checkout's payment that waits for the customer or the provider before
/// the order is placed: what the shop shows the buyer, and what the engine
/// keeps until the payment completes, fails or expires.
///
/// While it waits, the cart's stock and coupon uses stay reserved. It
/// completes exactly once — by the buyer returning
/// ([`Engine::complete_checkout`](crate::Engine::complete_checkout), or the
/// checkout again with the same key) or by the provider's event
/// ([`Engine::apply_provider_event`](crate::Engine::apply_provider_event)),
/// whichever comes first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PaymentSession {
    /// The checkout's idempotency key.
    pub checkout_key: crate::id::IdempotencyKey,
    /// The id the order will have once the payment completes.
    pub order_id: crate::id::OrderId,
    /// The provider's name.
    pub provider: String,
    /// The provider's reference for the payment; its events name it.
    pub reference: String,
    /// What will be held.
    pub amount: Money,
    /// [`ProviderStatus::RequiresAction`] or [`ProviderStatus::Processing`].
    pub status: ProviderStatus,
    /// What the customer must do; `None` while the provider processes.
    pub action: Option<CustomerAction>,
    /// When the engine gives up waiting: the payment is cancelled at the
    /// provider and the stock released ([`Engine::recover`](crate::Engine::recover)).
    pub expires_at: chrono::DateTime<chrono::Utc>,
}
