//! The session cookie: who is signed in, their cart, their guest orders'
//! proofs and the CSRF token — signed with HMAC-SHA256 so a client cannot
//! change it. The `Actor` the engine sees is built only from a verified
//! session, never from request input.

use cartwright::id::{CartId, CustomerId, OrderId};
use cartwright::prelude::*;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The cookie's name.
pub const COOKIE: &str = "cw_session";
/// Guest orders whose proofs a session keeps (the newest).
const MAX_ORDERS: usize = 10;

/// What the session cookie carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// The signed-in customer.
    pub customer: Option<CustomerId>,
    /// The current cart.
    pub cart: Option<CartId>,
    /// Guest orders and their access tokens (proof of ownership).
    pub orders: Vec<(OrderId, String)>,
    /// The CSRF token every form and API write must repeat.
    pub csrf: String,
}

impl Session {
    /// A new anonymous session with a fresh CSRF token.
    pub fn new() -> Self {
        Self {
            csrf: uuid::Uuid::new_v4().simple().to_string(),
            ..Self::default()
        }
    }

    /// Who the engine sees.
    pub fn actor(&self) -> Actor {
        match self.customer {
            Some(id) => Actor::Customer(id),
            None => Actor::Guest,
        }
    }

    /// The actor for one of this session's guest orders: a guest holding
    /// its token, or the session's own actor.
    pub fn actor_for_order(&self, order: OrderId) -> Actor {
        match self.orders.iter().find(|(id, _)| *id == order) {
            Some((_, token)) if self.customer.is_none() => {
                Actor::GuestWithToken(cartwright::actor::AccessToken::new(token.clone()))
            }
            _ => self.actor(),
        }
    }

    /// Remembers a guest order's proof.
    pub fn remember_order(&mut self, order: OrderId, token: String) {
        self.orders.retain(|(id, _)| *id != order);
        self.orders.push((order, token));
        if self.orders.len() > MAX_ORDERS {
            self.orders.remove(0);
        }
    }

    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        !self.csrf.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }

    /// The cookie value: hex JSON, a dot, hex HMAC.
    pub fn seal(&self, key: &[u8]) -> String {
        let body = hex::encode(serde_json::to_vec(self).unwrap_or_default());
        format!("{body}.{}", hex::encode(mac(key, body.as_bytes())))
    }

    /// The session in a cookie value, if its signature holds.
    pub fn open(value: &str, key: &[u8]) -> Option<Self> {
        let (body, tag) = value.split_once('.')?;
        let tag = hex::decode(tag).ok()?;
        let mut check = Hmac::<Sha256>::new_from_slice(key).ok()?;
        check.update(body.as_bytes());
        check.verify_slice(&tag).ok()?;
        serde_json::from_slice(&hex::decode(body).ok()?).ok()
    }
}

fn mac(key: &[u8], body: &[u8]) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(body);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}
