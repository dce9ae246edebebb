//! Counters and histograms through the [`metrics`](https://docs.rs/metrics)
//! facade, behind the `metrics` feature (without it every call here is a
//! no-op). The library installs no recorder: the embedding program picks
//! one (Prometheus, StatsD, …).
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `cartwright_checkouts_total` | counter | `outcome`: `paid`, `authorized`, `capture_pending`, `declined`, `out_of_stock`, `failed` |
//! | `cartwright_compensations_total` | counter | `kind`: `operation_refused`, `hold_voided`, `redemption_released`, `redemption_replanned`, `session_ended` |
//! | `cartwright_provider_calls_total` | counter | `operation`, `result`: `ok`, `declined`, `unavailable`, `refused` |
//! | `cartwright_provider_call_seconds` | histogram | `operation` |
//! | `cartwright_pricing_seconds` | histogram | — |
//! | `cartwright_db_failovers_total` | counter | — (the PostgreSQL store moved to a new primary; counted by the store) |
//! | `cartwright_relay_deliveries_total` | counter | `sink`, `outcome`: `delivered`, `skipped`, `retried`, `parked`, `lease_lost` |
//! | `cartwright_relay_delivery_seconds` | histogram | `sink`: how long the sink took to acknowledge (or refuse) |
//! | `cartwright_relay_lag_seconds` | histogram | `sink`: from the event's time to the sink's acknowledgement |
//! | `cartwright_webhooks_paused_total` | counter | — (an endpoint that kept failing was paused) |
//!
//! Sink names are labels: a relay holds at most
//! [`MAX_SINKS`](crate::relay::MAX_SINKS) sinks and a shop at most
//! [`MAX_WEBHOOKS`](crate::webhook::MAX_WEBHOOKS) webhook subscriptions
//! (`webhook:<id>`), so their number is bounded.
//!
//! Does not know: where metrics go: the application installs a recorder, or
//! none.

use std::time::Duration;

/// A checkout ended with `outcome`.
pub(crate) fn checkout(outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("cartwright_checkouts_total", "outcome" => outcome).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = outcome;
}

/// Something was undone: a refused payment operation, a voided hold.
pub(crate) fn compensation(kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("cartwright_compensations_total", "kind" => kind).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

/// A provider call of `operation` answered `result` after `took`.
pub(crate) fn provider_call(operation: &'static str, result: &'static str, took: Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(
            "cartwright_provider_calls_total",
            "operation" => operation,
            "result" => result
        )
        .increment(1);
        metrics::histogram!("cartwright_provider_call_seconds", "operation" => operation)
            .record(took.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (operation, result, took);
}

/// Pricing a cart took `took`.
pub(crate) fn pricing(took: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("cartwright_pricing_seconds").record(took.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = took;
}

/// The relay recorded `outcome` for an event at `sink`.
pub(crate) fn relay_delivery(sink: &str, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "cartwright_relay_deliveries_total",
        "sink" => sink.to_owned(),
        "outcome" => outcome
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (sink, outcome);
}

/// A sink answered after `took`; when it acknowledged, the event had
/// waited `lag` since it happened.
pub(crate) fn relay_call(sink: &str, took: Duration, lag: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        metrics::histogram!("cartwright_relay_delivery_seconds", "sink" => sink.to_owned())
            .record(took.as_secs_f64());
        if let Some(lag) = lag {
            metrics::histogram!("cartwright_relay_lag_seconds", "sink" => sink.to_owned())
                .record(lag.as_secs_f64());
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (sink, took, lag);
}

/// A webhook endpoint that kept failing was paused.
#[cfg(feature = "webhooks")]
pub(crate) fn webhook_paused() {
    #[cfg(feature = "metrics")]
    metrics::counter!("cartwright_webhooks_paused_total").increment(1);
}

/// The label for a provider's answer.
pub(crate) fn result_label<T>(answer: &Result<T, crate::payment::PaymentError>) -> &'static str {
    use crate::payment::PaymentError as E;
    match answer {
        Ok(_) => "ok",
        Err(E::Declined { .. }) => "declined",
        Err(E::Unavailable(_) | E::Timeout) => "unavailable",
        Err(_) => "refused",
    }
}
