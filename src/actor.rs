//! Who is making a call. Used for access checks and recorded in histories.

use serde::{Deserialize, Serialize};

use crate::id::CustomerId;

/// The party on whose behalf an operation runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
#[non_exhaustive]
pub enum Actor {
    /// A shopper who has not logged in. May use guest carts whose id they hold.
    Guest,
    /// A logged-in customer. May use their own carts and orders and guest carts.
    Customer(CustomerId),
    /// A member of staff, named for the history.
    Staff(String),
    /// The engine itself (recovery, expiry).
    System,
    /// A payment provider, through its webhooks.
    Provider(String),
}

impl Actor {
    /// True for staff and the system, who may see every customer's data.
    pub fn is_privileged(&self) -> bool {
        matches!(self, Self::Staff(_) | Self::System | Self::Provider(_))
    }

    /// True when this actor may act on something owned by `owner`
    /// (`None` meaning a guest-owned resource).
    pub fn may_access(&self, owner: Option<CustomerId>) -> bool {
        match (self, owner) {
            (_, None) => true,
            (Self::Customer(me), Some(owner)) => *me == owner,
            (actor, Some(_)) => actor.is_privileged(),
        }
    }
}
