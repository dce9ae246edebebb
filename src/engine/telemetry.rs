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
