//! Maintenance the embedding program cannot forget: one call, spawned once.
//!
//! ```no_run
//! # async fn run(engine: cartwright::Engine) {
//! // At start-up, next to the web server:
//! tokio::spawn(engine.clone().maintenance(std::time::Duration::from_secs(30)));
//! # }
//! ```
//!
//! Each round runs [`Engine::recover`] (expired reservations released,
//! crashed checkouts cleaned up, pending payment operations and
//! cancellations finished, stranded captures made) and prunes idempotency
//! records and delivered events older than
//! [`EngineConfig::retention`](crate::EngineConfig::retention), and account
//! tokens that expired. Every step is
//! safe to run from any number of instances at once. A round that fails is
//! logged (`tracing` warning) and retried at the next tick; rounds are
//! spread with jitter so instances started together do not run in step.
//!
//! Does not know: what recovery does inside each area; it only schedules and
//! reports it.

use std::time::Duration as StdDuration;

use crate::actor::Actor;
use crate::checkout::RecoveryReport;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// What one maintenance round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceReport {
    /// What recovery did.
    pub recovery: RecoveryReport,
    /// Idempotency records forgotten.
    pub pruned_checkouts: u64,
    /// Delivered events removed.
    pub pruned_events: u64,
    /// Account tokens removed: expired, or replaced by a newer one.
    pub pruned_account_tokens: u64,
    /// Agents' request keys forgotten (claimed before the retention).
    pub pruned_agent_requests: u64,
}

/// Shortest interval [`Engine::maintenance`] accepts; shorter ones are raised to it.
pub const MIN_MAINTENANCE_INTERVAL: StdDuration = StdDuration::from_millis(100);

impl Engine {
    /// Runs one maintenance round now (staff or the system only).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the first store or provider error met (the
    /// steps before it have taken effect; the next round goes on).
    #[tracing::instrument(name = "maintenance", skip_all)]
    pub async fn run_maintenance(&self, actor: &Actor) -> Result<MaintenanceReport> {
        actor.require(crate::actor::Permission::Settings)?;
        let recovery = self.recover().await?;
        let cutoff = self.now() - self.inner.config.retention;
        let pruned_checkouts = self.inner.store.prune_checkouts(cutoff).await?;
        let pruned_events = self.inner.store.prune_events(cutoff).await?;
        let pruned_account_tokens = self.inner.store.prune_account_tokens(self.now()).await?;
        let pruned_agent_requests = self.inner.store.prune_requests(cutoff).await?;
        Ok(MaintenanceReport {
            recovery,
            pruned_checkouts,
            pruned_events,
            pruned_account_tokens,
            pruned_agent_requests,
        })
    }

    /// Runs maintenance every `interval` (at least
    /// [`MIN_MAINTENANCE_INTERVAL`], each wait spread by up to ±20 %
    /// jitter), forever. Spawn it once per process; dropping the future
    /// stops it. Needs a tokio runtime with time enabled.
    pub fn maintenance(self, interval: StdDuration) -> impl Future<Output = ()> + Send + 'static {
        let interval = interval.max(MIN_MAINTENANCE_INTERVAL);
        async move {
            loop {
                tokio::time::sleep(jittered(interval)).await;
                match self.run_maintenance(&Actor::System).await {
                    Ok(report) => {
                        if report != MaintenanceReport::default() {
                            tracing::info!(?report, "maintenance round");
                        }
                    }
                    Err(error) => warn_failed(&error),
                }
            }
        }
    }
}

fn warn_failed(error: &Error) {
    tracing::warn!(%error, "maintenance round failed; retrying at the next tick");
}

/// `interval` spread by up to ±20 %, from a fresh random value.
fn jittered(interval: StdDuration) -> StdDuration {
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    // A fraction in [0.8, 1.2), in thousandths.
    let thousandths = 800 + random % 400;
    interval.mul_f64(thousandths as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_fifth() {
        let base = StdDuration::from_secs(10);
        for _ in 0..1_000 {
            let j = jittered(base);
            assert!(j >= StdDuration::from_secs(8) && j < StdDuration::from_secs(12));
        }
    }
}
