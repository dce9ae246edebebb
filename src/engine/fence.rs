//! The rule every compensating path keeps: **whoever no longer holds the
//! lease gives nothing back and changes nothing; the lease holder owns the
//! outcome.**
//!
//! A checkout attempt (or a settler of a waiting payment, or recovery) that
//! decides to give back what it took — void an authorization, refund a
//! sale, release gift-card redemptions — must first *fence* its lease
//! ([`CheckoutStore::fence_checkout`](crate::store::CheckoutStore::fence_checkout)):
//! one store command that succeeds only while the lease still holds the
//! checkout, and that drops the order a waiting payment would place, so
//! that from then on no one else can place it: recovery, taking over once
//! the fenced lease ends, finds an attempt with nothing to place and gives
//! back the same things under the same keys. The functions that give back take
//! a [`Fenced`], which only [`Engine::fence`] makes: a path that skips the
//! fence does not compile.
//!
//! Without it, a settler that stalled past its lease could void the
//! authorization of an order that recovery, on another instance, had just
//! placed with it.
//!
//! Does not know: what is given back; that is the checkout's business.

use crate::engine::Engine;
use crate::error::Result;
use crate::store::Lease;

/// Proof that the caller held its checkout's lease when it fenced it, and
/// that no one else can place an order for the attempt any more. Made only by
/// [`Engine::fence`].
#[derive(Debug)]
pub(crate) struct Fenced {
    lease: Lease,
}

impl Fenced {
    /// The lease fenced.
    pub(crate) fn lease(&self) -> &Lease {
        &self.lease
    }
}

impl Engine {
    /// Fences `lease` before giving anything back: its lease is extended by
    /// `checkout_lease`, time to give back; recovery takes over after that.
    ///
    /// # Errors
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) when the lease no
    /// longer holds the checkout (the holder decides, and the caller must
    /// give nothing back); [`Error::Storage`](crate::Error::Storage).
    pub(crate) async fn fence(&self, lease: &Lease) -> Result<Fenced> {
        self.inner
            .store
            .fence_checkout(lease, self.now() + self.inner.config.checkout_lease)
            .await?;
        Ok(Fenced {
            lease: lease.clone(),
        })
    }
}
