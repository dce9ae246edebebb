//! Who is making a call, and what each kind of caller may do.
//!
//! Every engine call that touches something owned, or changes the shop,
//! takes the acting [`Actor`] and checks it against one table. The embedding
//! program builds an `Actor` only from an authenticated session (a logged-in
//! customer, a signed-in member of staff, a verified webhook), never from
//! request input.
//!
//! # The access table
//!
//! | what | guest | guest with the order's token | the owner | another customer | staff | system | provider | agent |
//! |---|---|---|---|---|---|---|---|---|
//! | catalog reads, `register`, `login`, `guest`, `stock` (no actor) | yes | yes | yes | yes | yes | yes | yes | yes |
//! | create a cart | yes | yes | yes | yes | yes | yes | no | yes |
//! | a guest cart (read, edit, price, check out; complete or cancel its waiting payment) | yes | yes | — | yes | yes | yes | no | yes |
//! | a customer's cart (the same) | no | no | yes | no | yes | yes | no | no |
//! | merge a guest cart into one's own | no | no | yes | — | no | no | no | no |
//! | add a custom-priced line to any cart | no | no | no | no | yes | yes | no | no |
//! | draft orders: create, change (the cart calls), send as a quote, withdraw | no | no | no | no | yes | yes | no | no |
//! | a sent quote: read and pay (the customer it is for; a guest with its payment link token); nobody changes it | no | yes | yes | no | yes | yes | no | no |
//! | a customer's record, addresses, profile, asking for an email-verification or email-change token | no | no | yes | no | yes | yes | no | no |
//! | find customers, remove one from a group | no | no | no | no | yes | yes | no | no |
//! | change one's password (with the current one) | no | no | yes | no | no | no | no | no |
//! | export a customer's data | no | no | yes | no | yes | yes | no | no |
//! | erase a customer on request | no | no | no | no | yes | yes | no | no |
//! | reset a password, verify or change an email with a token (no actor: the token is the proof) | yes | yes | yes | yes | yes | yes | yes | yes |
//! | a customer's order: read, cancel (the order or units of lines), customer note; return requests (quote, request, call off); pay a charge | no | no | yes | no | yes | yes | no | no |
//! | a guest's order: read, cancel (the order or units of lines); return requests (quote, request, call off); pay a charge | no | yes | — | no | yes | yes | no | no |
//! | list orders | no | no | own only | no | all | all | no | no |
//! | internal notes, groups | no | no | no | no | yes | yes | no | no |
//! | capture, ship, deliver, return, settle; approve, reject, receive and refund return requests; claims; exchanges (make, call off), stop a charge's try the buyer abandoned; edit an order (customers too where `EngineConfig::customer_order_edits` allows) | no | no | no | no | yes | yes | no | no |
//! | issue gift cards, grant store credit | no | no | no | no | yes | yes | no | no |
//! | sales channels: create, change | no | no | no | no | yes | yes | no | no |
//! | sales channels: read (no actor); create a cart in one | yes | yes | yes | yes | yes | yes | no | yes |
//! | check a gift card's balance by its code (wrong codes counted) | yes | yes | yes | yes | yes | yes | no | yes |
//! | a customer's store credit and cards (balance, ledger) | no | no | yes | no | yes | yes | no | no |
//! | refund by amount | no | no | no | no | yes | no | no | no |
//! | catalog, stock, locations, promotions, coupons, price lists (changes and admin reads) | no | no | no | no | yes | yes | no | no |
//! | event outbox, usage counters, the relay's parked deliveries (list, replay), webhook subscriptions (create, read, pause, resume, delete) | no | no | no | no | yes | yes | no | no |
//! | apply a payment provider event (settling a waiting checkout's payment too) | no | no | no | no | no | yes | its own payments | no |
//! | open an agent session; its own sessions (read, update, complete, cancel), their orders (read, annotate), its request keys | no | no | no | no | no | no | no | its own |
//! | another agent's sessions and orders (`agent_session`, `agent_view`, `agent_order`, `annotate_agent_order`; 404, not 403) | no | no | no | no | read | read | no | no |
//!
//! An agent platform ([`Actor::Agent`]) is named by the embedding program
//! from its own authentication (a bearer key, a verified signature); it
//! uses the cart of its session as a guest uses a guest cart, and to
//! anyone else its sessions do not exist.
//!
//! `Engine::recover` takes no actor: it is the system's own call, and it
//! only finishes or undoes what is already recorded (stale checkouts,
//! pending payment operations, expired reservations), so it reaches no
//! one's data. `Engine::store` bypasses the table; it is for adapters and
//! tools, never for request handlers.
//!
//! Refused calls return [`Error::Forbidden`](crate::Error::Forbidden) and
//! change nothing. Staff and the system are *privileged*; the provider is
//! not: it may only report payment events.
//!
//! Does not know: how a caller was authenticated: the embedding program builds
//! the actor from its own session.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::id::CustomerId;

/// The party on whose behalf an operation runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
#[non_exhaustive]
pub enum Actor {
    /// A shopper who has not logged in. May use guest carts whose id they hold.
    Guest,
    /// A shopper who has not logged in, presenting the access token that
    /// checkout issued for their guest order: may read and cancel that order.
    GuestWithToken(AccessToken),
    /// A logged-in customer. May use their own carts and orders and guest carts.
    Customer(CustomerId),
    /// A member of staff, named for the history.
    Staff(String),
    /// The engine itself, or the embedding program's own jobs (recovery,
    /// expiry, seeding).
    System,
    /// A payment provider, through its verified webhooks: may only apply
    /// payment events.
    Provider(String),
    /// An AI agent platform (named by the shop, authenticated by the
    /// embedding program: a bearer key, a signed request), buying for a
    /// buyer through an agentic protocol. Reaches guest carts as a guest
    /// does, and only the agent sessions it opened and their orders.
    Agent(String),
}

impl Actor {
    /// True for staff and the system, who may see every customer's data.
    /// The provider is not privileged.
    pub fn is_privileged(&self) -> bool {
        matches!(self, Self::Staff(_) | Self::System)
    }

    /// Refuses everyone but staff and the system.
    ///
    /// # Errors
    /// [`Error::Forbidden`](crate::Error::Forbidden).
    pub(crate) fn require_privileged(&self) -> crate::Result<()> {
        if self.is_privileged() {
            Ok(())
        } else {
            Err(crate::Error::Forbidden)
        }
    }

    /// True when this actor may act on a cart owned by `owner` (`None`
    /// meaning a guest cart, which whoever holds its id may use).
    pub fn may_use_cart(&self, owner: Option<CustomerId>) -> bool {
        match (self, owner) {
            (Self::Provider(_), _) => false,
            (_, None) => true,
            (Self::Customer(me), Some(owner)) => *me == owner,
            (actor, Some(_)) => actor.is_privileged(),
        }
    }

    /// True when this actor may act on an order owned by `owner`: the
    /// customer who placed it, or for a guest order (`owner` `None`) a guest
    /// presenting a token whose hash is `token_hash`; staff and the system
    /// always.
    pub fn may_use_order(&self, owner: Option<CustomerId>, token_hash: Option<&str>) -> bool {
        match (self, owner) {
            (a, _) if a.is_privileged() => true,
            (Self::Customer(me), Some(owner)) => *me == owner,
            (Self::GuestWithToken(token), None) => token_hash.is_some_and(|h| token.matches(h)),
            _ => false,
        }
    }

    /// True when this actor may act on a customer's record.
    pub fn may_use_customer(&self, customer: CustomerId) -> bool {
        match self {
            Self::Customer(me) => *me == customer,
            other => other.is_privileged(),
        }
    }
}

/// Proof of ownership of a guest order: issued once by checkout, stored by
/// the engine only as a SHA-256 hash, compared in constant time. Its `Debug`
/// never shows it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token received from the guest (for example from a link or a
    /// cookie). Any text is accepted; a wrong one simply proves nothing.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token, to hand to the guest.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A token derived from secret material only the engine holds (64 hex
    /// characters).
    pub(crate) fn derive(secret: &[u8], subject: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"cartwright order access token v1\0");
        h.update(secret);
        h.update(subject);
        Self(hex::encode(h.finalize()))
    }

    /// The hash stored in place of the token (64 hex characters).
    pub(crate) fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// Whether this token's hash is `stored`, compared in constant time.
    fn matches(&self, stored: &str) -> bool {
        self.hash().as_bytes().ct_eq(stored.as_bytes()).into()
    }

    /// As `matches`, for other modules.
    pub(crate) fn matches_hash(&self, stored: &str) -> bool {
        self.matches(stored)
    }

    /// A fresh random token (64 hex characters, 244 random bits).
    pub(crate) fn random() -> Self {
        Self(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_prove_guest_orders_only() {
        let token = AccessToken::derive(b"secret", b"order");
        let hash = token.hash();
        let holder = Actor::GuestWithToken(token.clone());
        assert!(holder.may_use_order(None, Some(&hash)));
        assert!(!holder.may_use_order(None, None));
        assert!(!Actor::GuestWithToken(AccessToken::new("x")).may_use_order(None, Some(&hash)));
        assert!(!holder.may_use_order(Some(CustomerId::new()), Some(&hash)));
        assert!(!Actor::Guest.may_use_order(None, Some(&hash)));
        assert!(!Actor::Customer(CustomerId::new()).may_use_order(None, Some(&hash)));
        assert!(!Actor::Provider("p".into()).may_use_order(None, Some(&hash)));
        assert!(Actor::Staff("s".into()).may_use_order(None, Some(&hash)));
        assert_eq!(format!("{token:?}"), "AccessToken(…)");
        assert_eq!(token.as_str().len(), 64);
    }
}
