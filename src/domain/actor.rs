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
//! | what | guest | guest with the order's token | the owner | another customer | staff | system | provider | agent | staff permission |
//! |---|---|---|---|---|---|---|---|---|---|
//! | catalog reads, `media` (uploaded images), `register`, `login`, `guest`, `stock`, `stock_levels`, `locations`, `catalog_entries` (no actor) | yes | yes | yes | yes | yes | yes | yes | yes | — |
//! | create a cart | yes | yes | yes | yes | yes | yes | no | yes | — |
//! | a guest cart (read, edit, price, check out; complete or cancel its waiting payment) | yes | yes | — | yes | yes | yes | no | yes | — |
//! | a customer's cart (the same) | no | no | yes | no | yes | yes | no | no | orders or customers |
//! | merge a guest cart into one's own | no | no | yes | — | no | no | no | no | — |
//! | add a custom-priced line to any cart | no | no | no | no | yes | yes | no | no | orders |
//! | draft orders: create, change (the cart calls), send as a quote, withdraw | no | no | no | no | yes | yes | no | no | orders |
//! | a sent quote: read and pay (the customer it is for; a guest with its payment link token); nobody changes it | no | yes | yes | no | yes | yes | no | no | orders |
//! | a customer's record, addresses, profile, asking for an email-verification or email-change token | no | no | yes | no | yes | yes | no | no | customers |
//! | find customers, remove one from a group | no | no | no | no | yes | yes | no | no | customers |
//! | change one's password (with the current one) | no | no | yes | no | no | no | no | no | — |
//! | export a customer's data | no | no | yes | no | yes | yes | no | no | customers |
//! | erase a customer on request | no | no | no | no | yes | yes | no | no | customers |
//! | reset a password, verify or change an email with a token (no actor: the token is the proof) | yes | yes | yes | yes | yes | yes | yes | yes | — |
//! | a customer's order: read, cancel (the order or units of lines), customer note; return requests (quote, request, call off); pay a charge | no | no | yes | no | yes | yes | no | no | orders (refunds to give money back) |
//! | a guest's order: read, cancel (the order or units of lines); return requests (quote, request, call off); pay a charge | no | yes | — | no | yes | yes | no | no | orders (refunds to give money back) |
//! | list orders | no | no | own only | no | all | all | no | no | orders |
//! | internal notes, groups (`customer_groups`, `create_group`, …) | no | no | no | no | yes | yes | no | no | orders (an order's), customers (a customer's, groups) |
//! | capture, ship, deliver, return, settle; approve, reject, receive and refund return requests; claims; exchanges (make, call off), stop a charge's try the buyer abandoned; edit an order (customers too where `EngineConfig::customer_order_edits` allows) | no | no | no | no | yes | yes | no | no | orders (refunds to give money back) |
//! | issue gift cards, grant store credit | no | no | no | no | yes | yes | no | no | gift cards |
//! | sales channels: create, change | no | no | no | no | yes | yes | no | no | settings |
//! | sales channels: read (no actor); create a cart in one | yes | yes | yes | yes | yes | yes | no | yes | — |
//! | check a gift card's balance by its code (wrong codes counted) | yes | yes | yes | yes | yes | yes | no | yes | — |
//! | a customer's store credit and cards (balance, ledger) | no | no | yes | no | yes | yes | no | no | gift cards |
//! | refund by amount | no | no | no | no | yes | no | no | no | refunds |
//! | catalog (with `upload_image`, `remove_image`, `import_catalog`, `export_catalog`), stock (with `adjust_stock_for`, `set_low_stock_threshold`), locations, promotions, coupons, price lists (changes and admin reads) | no | no | no | no | yes | yes | no | no | catalog; inventory (stock, locations); promotions (promotions, coupons, price lists) |
//! | event outbox, usage counters, the relay's parked deliveries (list, replay), webhook subscriptions (create, read, pause, resume, delete) | no | no | no | no | yes | yes | no | no | settings (usage counters: promotions) |
//! | apply a payment provider event (settling a waiting checkout's payment too) | no | no | no | no | no | yes | its own payments | no | — |
//! | open an agent session; its own sessions (read, update, complete, cancel), their orders (read, annotate), its request keys | no | no | no | no | no | no | no | its own | — |
//! | another agent's sessions and orders (`agent_session`, `agent_view`, `agent_order`, `annotate_agent_order`; 404, not 403) | no | no | no | no | read | read | no | no | orders |
//! | staff accounts and roles: create, list, change roles, switch off, reset two-factor; roles: install the built-ins, save, delete; the audit log (`audit_log`) | no | no | no | no | yes | yes | no | no | staff |
//! | sign in as staff, turn a session into its actor, sign out (no actor: the credentials or the token are the proof) | yes | yes | yes | yes | yes | yes | yes | yes | — |
//! | one's own two-factor enrolment and password; one's own account | no | no | no | no | the member | no | no | no | — |
//!
//! The staff column is [`Actor::Staff`] (every permission) and a signed-in
//! [`Actor::StaffMember`] whose roles grant the row's *staff permission*
//! ([`Permission`]); money given back (a refund, or the refund a
//! cancellation, return, claim or edit makes) also needs
//! [`Permission::Refunds`] and at most the roles' ceiling in its currency
//! ([`Error::RefundAboveLimit`](crate::Error::RefundAboveLimit) otherwise).
//! `tests/access.rs` runs every row with every built-in role.
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

use std::collections::{BTreeMap, BTreeSet};

use crate::id::{CustomerId, StaffId};
use crate::money::{Currency, Money};

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
    /// A member of staff the embedding program vouches for, named for the
    /// history, with every permission (its own tools and jobs, a shop
    /// without staff accounts). Signed-in staff with roles are
    /// [`StaffMember`](Self::StaffMember).
    Staff(String),
    /// A signed-in member of staff, with what their roles allow
    /// ([`StaffAccess`](StaffAccess)). Built by
    /// [`Engine::staff_actor`](crate::Engine::staff_actor) from a session
    /// token, never from request input.
    StaffMember(Box<StaffAccess>),
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
    /// True for the back office: staff (with any role) and the system.
    /// What a call lets them do is [`allows`](Self::allows); this only
    /// says whose view of a record they get (internal notes, for one).
    /// The provider is not privileged.
    pub fn is_privileged(&self) -> bool {
        matches!(self, Self::Staff(_) | Self::StaffMember(_) | Self::System)
    }

    /// Whether this actor may work in `permission`'s area: the system and
    /// [`Staff`](Self::Staff) always, a [`StaffMember`](Self::StaffMember)
    /// when a role of theirs grants it, nobody else.
    pub fn allows(&self, permission: Permission) -> bool {
        match self {
            Self::Staff(_) | Self::System => true,
            Self::StaffMember(access) => access.may(permission),
            _ => false,
        }
    }

    /// Refuses everyone [`allows`](Self::allows) does not let in.
    ///
    /// # Errors
    /// [`Error::Forbidden`](crate::Error::Forbidden).
    pub(crate) fn require(&self, permission: Permission) -> crate::Result<()> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(crate::Error::Forbidden)
        }
    }

    /// Refuses a refund of `amount` this actor may not make: a signed-in
    /// member of staff needs [`Permission::Refunds`](Permission::Refunds)
    /// and the amount within their ceiling. Everyone else was let in by
    /// the call's own row of the table.
    ///
    /// # Errors
    /// [`Error::Forbidden`](crate::Error::Forbidden) without the permission;
    /// [`Error::RefundAboveLimit`](crate::Error::RefundAboveLimit) past the
    /// ceiling.
    pub(crate) fn check_refund(&self, amount: crate::money::Money) -> crate::Result<()> {
        match self {
            Self::StaffMember(access) if !access.may(Permission::Refunds) => {
                Err(crate::Error::Forbidden)
            }
            Self::StaffMember(access) if !access.may_refund(amount) => {
                Err(crate::Error::RefundAboveLimit {
                    amount,
                    limit: access
                        .refund_ceiling
                        .as_ref()
                        .and_then(|c| c.get(&amount.currency()).copied()),
                })
            }
            _ => Ok(()),
        }
    }

    /// The signed-in member of staff acting, if one is.
    pub fn staff_id(&self) -> Option<crate::id::StaffId> {
        match self {
            Self::StaffMember(access) => Some(access.staff_id),
            _ => None,
        }
    }

    /// True when this actor may act on a cart owned by `owner` (`None`
    /// meaning a guest cart, which whoever holds its id may use).
    pub fn may_use_cart(&self, owner: Option<CustomerId>) -> bool {
        match (self, owner) {
            (Self::Provider(_), _) => false,
            (_, None) => true,
            (Self::Customer(me), Some(owner)) => *me == owner,
            (actor, Some(_)) => {
                actor.allows(Permission::Orders) || actor.allows(Permission::Customers)
            }
        }
    }

    /// True when this actor may act on an order owned by `owner`: the
    /// customer who placed it, or for a guest order (`owner` `None`) a guest
    /// presenting a token whose hash is `token_hash`; staff and the system
    /// always.
    pub fn may_use_order(&self, owner: Option<CustomerId>, token_hash: Option<&str>) -> bool {
        match (self, owner) {
            (a, _) if a.allows(Permission::Orders) => true,
            (Self::Customer(me), Some(owner)) => *me == owner,
            (Self::GuestWithToken(token), None) => token_hash.is_some_and(|h| token.matches(h)),
            _ => false,
        }
    }

    /// True when this actor may act on a customer's record.
    pub fn may_use_customer(&self, customer: CustomerId) -> bool {
        match self {
            Self::Customer(me) => *me == customer,
            other => other.allows(Permission::Customers),
        }
    }
}

/// An area of the shop a role may work in. Reading what is public (the
/// catalog, a channel) needs none.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Permission {
    /// Products, variants, prices in the catalog, categories, collections,
    /// images.
    Catalog,
    /// Stock levels, locations, holds and low-stock thresholds.
    Inventory,
    /// Orders and carts: read, notes, capture, ship, deliver, cancel,
    /// returns, claims, exchanges, edits, draft orders and quotes, labels.
    /// Whatever gives money back needs [`Refunds`](Self::Refunds) too.
    Orders,
    /// Giving money back (a refund by amount; the refund of a cancellation,
    /// a return, a claim or an edit), each refund at most the role's
    /// ceiling in its currency.
    Refunds,
    /// Promotions, coupons and price lists.
    Promotions,
    /// Customer records, groups, notes, tax details, data export and
    /// erasure.
    Customers,
    /// Gift cards and store credit.
    GiftCards,
    /// Sales channels, webhooks, the event outbox and relay, usage counters,
    /// maintenance.
    Settings,
    /// Staff accounts and roles.
    Staff,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 9] = [
        Permission::Catalog,
        Permission::Inventory,
        Permission::Orders,
        Permission::Refunds,
        Permission::Promotions,
        Permission::Customers,
        Permission::GiftCards,
        Permission::Settings,
        Permission::Staff,
    ];

    /// Its name, as serialized (`"gift_cards"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Catalog => "catalog",
            Self::Inventory => "inventory",
            Self::Orders => "orders",
            Self::Refunds => "refunds",
            Self::Promotions => "promotions",
            Self::Customers => "customers",
            Self::GiftCards => "gift_cards",
            Self::Settings => "settings",
            Self::Staff => "staff",
        }
    }
}

/// What a signed-in member of staff may do: the union of their roles.
/// Built by the engine from a session
/// ([`Engine::staff_actor`](crate::Engine::staff_actor)), never from
/// request input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct StaffAccess {
    /// Who.
    pub staff_id: StaffId,
    /// Their name, for the history.
    pub name: String,
    /// What their roles allow together.
    pub permissions: BTreeSet<Permission>,
    /// The highest refund ceiling among their roles that may refund, per
    /// currency (`None`: no ceiling).
    pub refund_ceiling: Option<BTreeMap<Currency, Money>>,
}

impl StaffAccess {
    /// Whether their roles grant `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// Whether one refund of `amount` is within their roles' ceiling.
    pub fn may_refund(&self, amount: Money) -> bool {
        self.may(Permission::Refunds)
            && match &self.refund_ceiling {
                None => true,
                Some(limits) => limits
                    .get(&amount.currency())
                    .is_some_and(|max| amount.checked_cmp(max).is_ok_and(|o| !o.is_gt())),
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
