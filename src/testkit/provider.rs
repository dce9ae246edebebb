//! The payment-provider conformance suite.
//!
//! Does not know: the gateway it checks beyond the `PaymentProvider` port.

use std::sync::Arc;

use super::{Failure, Report, ensure, step};
use crate::money::{Currency, Money};
use crate::payment::{
    AuthorizeRequest, CaptureRequest, PaymentError, PaymentProvider, ProviderStatus, RefundRequest,
    VoidRequest,
};

/// Runs the payment-provider conformance suite against `provider`, using
/// `approve` as a payment token the provider approves and `decline` as one
/// it declines. Checks what the engine relies on: idempotency keys replay
/// the first outcome and never act twice; declines are
/// [`PaymentError::Declined`]; captures stay within the authorization and
/// refunds within the captures; a void releases an uncaptured hold;
/// `find_authorization` finds a hold by its key. Each run uses fresh keys.
///
/// # Errors
/// The first [`Failure`]: which check, and what was seen.
pub async fn provider_conformance(
    provider: Arc<dyn PaymentProvider>,
    approve: &str,
    decline: &str,
) -> Result<Report, Failure> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let key = |name: &str| format!("conformance-{run}-{name}");
    let usd = |minor: i64| Money::from_minor(minor, Currency::USD);
    let mut report = Report::default();

    // Authorize, and the same key again: one hold, the same answer.
    let request = AuthorizeRequest {
        idempotency_key: key("auth"),
        amount: usd(10_00),
        payment_token: approve.to_owned(),
        reference: key("order"),
        capture: false,
        method: None,
    };
    let first = step("authorize", provider.authorize(request.clone()).await)?;
    ensure(
        first.status == ProviderStatus::Authorized,
        "authorize",
        || format!("status {:?}, expected Authorized", first.status),
    )?;
    ensure(first.amount == usd(10_00), "authorize", || {
        format!("amount {}, expected 10.00 USD", first.amount)
    })?;
    let again = step("authorize replay", provider.authorize(request).await)?;
    ensure(
        again.reference == first.reference,
        "authorize replay",
        || format!("a second hold {} for one key", again.reference),
    )?;
    report.checks += 1;

    // find_authorization finds the hold by its key.
    let found = step(
        "find_authorization",
        provider.find_authorization(&key("auth")).await,
    )?;
    ensure(
        found.as_ref().map(|r| r.reference.as_str()) == Some(first.reference.as_str()),
        "find_authorization",
        || format!("found {found:?}"),
    )?;
    let missing = step(
        "find_authorization",
        provider.find_authorization(&key("never-used")).await,
    )?;
    ensure(missing.is_none(), "find_authorization", || {
        format!("found {missing:?} for a key never used")
    })?;
    report.checks += 1;

    // A decline is Declined, not an outage.
    let declined = provider
        .authorize(AuthorizeRequest {
            idempotency_key: key("declined"),
            amount: usd(10_00),
            payment_token: decline.to_owned(),
            reference: key("order-2"),
            capture: false,
            method: None,
        })
        .await;
    ensure(
        matches!(declined, Err(PaymentError::Declined { .. })),
        "decline",
        || format!("answered {declined:?}"),
    )?;
    report.checks += 1;

    // Captures within the hold, once per key.
    let capture = |k: &str, minor: i64| CaptureRequest {
        idempotency_key: key(k),
        authorization: first.reference.clone(),
        amount: usd(minor),
    };
    step("capture", provider.capture(capture("cap-1", 4_00)).await)?;
    step(
        "capture replay",
        provider.capture(capture("cap-1", 4_00)).await,
    )?;
    let too_much = provider.capture(capture("cap-2", 7_00)).await;
    ensure(too_much.is_err(), "capture beyond the hold", || {
        format!("captured 4.00 + 7.00 of 10.00: {too_much:?}")
    })?;
    let rest = step("capture", provider.capture(capture("cap-3", 6_00)).await)?;
    if let Some(total) = rest.captured_total {
        ensure(total == usd(10_00), "captured total", || {
            format!("reported {total}, expected 10.00 USD (the replay must not count)")
        })?;
    }
    report.checks += 1;

    // Refunds within the captures, once per key.
    let refund = |k: &str, minor: i64| RefundRequest {
        idempotency_key: key(k),
        authorization: first.reference.clone(),
        amount: usd(minor),
    };
    step("refund", provider.refund(refund("ref-1", 3_00)).await)?;
    let replay = step(
        "refund replay",
        provider.refund(refund("ref-1", 3_00)).await,
    )?;
    if let Some(total) = replay.refunded_total {
        ensure(total == usd(3_00), "refund replay", || {
            format!("refunded total {total} after a replay, expected 3.00 USD")
        })?;
    }
    let beyond = provider.refund(refund("ref-2", 8_00)).await;
    ensure(beyond.is_err(), "refund beyond the captures", || {
        format!("refunded 3.00 + 8.00 of 10.00: {beyond:?}")
    })?;
    report.checks += 1;

    // A void releases an uncaptured hold.
    let hold = step(
        "void",
        provider
            .authorize(AuthorizeRequest {
                idempotency_key: key("auth-void"),
                amount: usd(5_00),
                payment_token: approve.to_owned(),
                reference: key("order-3"),
                capture: false,
                method: None,
            })
            .await,
    )?;
    let voided = step(
        "void",
        provider
            .void(VoidRequest {
                idempotency_key: key("void"),
                authorization: hold.reference.clone(),
            })
            .await,
    )?;
    ensure(voided.status == ProviderStatus::Voided, "void", || {
        format!("status {:?}, expected Voided", voided.status)
    })?;
    let late = provider
        .capture(CaptureRequest {
            idempotency_key: key("cap-voided"),
            authorization: hold.reference,
            amount: usd(1_00),
        })
        .await;
    ensure(late.is_err(), "capture after void", || {
        format!("captured a voided hold: {late:?}")
    })?;
    report.checks += 1;

    // A provider that sells (collects in the authorize call) does so once
    // per key, and what it sold can be refunded.
    if provider.captures_on_authorize() {
        let sale = AuthorizeRequest {
            idempotency_key: key("sale"),
            amount: usd(7_00),
            payment_token: approve.to_owned(),
            reference: key("order-4"),
            capture: true,
            method: None,
        };
        let sold = step("sale", provider.authorize(sale.clone()).await)?;
        ensure(
            sold.status == ProviderStatus::Captured
                && sold.captured_total.is_none_or(|t| t == usd(7_00)),
            "sale",
            || {
                format!(
                    "a sale answered {:?}, captured {:?}",
                    sold.status, sold.captured_total
                )
            },
        )?;
        let again = step("sale replay", provider.authorize(sale).await)?;
        ensure(again.reference == sold.reference, "sale replay", || {
            "the same sale key made a second sale".into()
        })?;
        let back = step(
            "refund of a sale",
            provider
                .refund(RefundRequest {
                    idempotency_key: key("sale-refund"),
                    authorization: sold.reference,
                    amount: usd(7_00),
                })
                .await,
        )?;
        ensure(
            back.refunded_total.is_none_or(|t| t == usd(7_00)),
            "refund of a sale",
            || {
                format!(
                    "refunded total {:?}, expected 7.00 USD",
                    back.refunded_total
                )
            },
        )?;
        report.checks += 1;
    }
    Ok(report)
}

/// Runs the customer-action checks against a provider that can ask the
/// customer to act (3-D Secure, a redirect): `needs_action` is a payment
/// token whose authorization waits for the customer, and `complete` makes
/// the customer complete the payment with the given reference (the
/// provider's sandbox hook). Checks what waiting checkouts rely on: the
/// authorization answers [`ProviderStatus::RequiresAction`] with a valid
/// [`CustomerAction`](crate::payment::CustomerAction) and holds nothing; a
/// replay of its key answers the same payment; `find_authorization` reports
/// it waiting, then held once the customer completed it; nothing can be
/// captured before; a void cancels a waiting payment so that it never
/// becomes held.
///
/// # Errors
/// The first [`Failure`]: which check, and what was seen.
pub async fn session_conformance<F, Fut>(
    provider: Arc<dyn PaymentProvider>,
    needs_action: &str,
    complete: F,
) -> Result<Report, Failure>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    const CHECK: &str = "customer action";
    let run = uuid::Uuid::new_v4().simple().to_string();
    let key = |name: &str| format!("conformance-{run}-{name}");
    let usd = |minor: i64| Money::from_minor(minor, Currency::USD);
    let mut report = Report::default();
    let authorize = |k: &str| AuthorizeRequest {
        idempotency_key: key(k),
        amount: usd(12_00),
        payment_token: needs_action.to_owned(),
        reference: key("order"),
        capture: false,
        method: None,
    };

    let first = step(CHECK, provider.authorize(authorize("s1")).await)?;
    ensure(
        first.status == ProviderStatus::RequiresAction,
        CHECK,
        || format!("status {:?}, expected RequiresAction", first.status),
    )?;
    let action_ok = first.action.as_ref().is_some_and(|a| a.validate().is_ok());
    ensure(action_ok, CHECK, || {
        format!("the action {:?} is missing or invalid", first.action)
    })?;
    ensure(
        first.captured_total.is_none_or(|t| t.is_zero()),
        CHECK,
        || "a waiting payment reports a capture".into(),
    )?;
    let again = step(CHECK, provider.authorize(authorize("s1")).await)?;
    ensure(again.reference == first.reference, CHECK, || {
        format!("a second payment {} for one key", again.reference)
    })?;
    let waiting = step(CHECK, provider.find_authorization(&key("s1")).await)?;
    ensure(
        waiting.as_ref().is_some_and(|r| r.status.is_waiting()),
        CHECK,
        || format!("a waiting payment is found as {waiting:?}"),
    )?;
    let early = provider
        .capture(CaptureRequest {
            idempotency_key: key("early-capture"),
            authorization: first.reference.clone(),
            amount: usd(12_00),
        })
        .await;
    ensure(early.is_err(), CHECK, || {
        format!("captured a payment the customer has not completed: {early:?}")
    })?;
    report.checks += 1;

    step(CHECK, complete(first.reference.clone()).await)?;
    let held = step(CHECK, provider.find_authorization(&key("s1")).await)?;
    ensure(
        held.as_ref().is_some_and(|r| {
            r.status == ProviderStatus::Authorized && r.reference == first.reference
        }),
        CHECK,
        || format!("after the customer completed it the payment is {held:?}"),
    )?;
    step(
        CHECK,
        provider
            .capture(CaptureRequest {
                idempotency_key: key("capture"),
                authorization: first.reference.clone(),
                amount: usd(12_00),
            })
            .await,
    )?;
    report.checks += 1;

    // A void cancels a waiting payment for good.
    let second = step(CHECK, provider.authorize(authorize("s2")).await)?;
    step(
        CHECK,
        provider
            .void(VoidRequest {
                idempotency_key: key("cancel"),
                authorization: second.reference.clone(),
            })
            .await,
    )?;
    let _late = complete(second.reference.clone()).await;
    let after = step(CHECK, provider.find_authorization(&key("s2")).await)?;
    ensure(
        after.as_ref().is_some_and(|r| {
            !matches!(
                r.status,
                ProviderStatus::Authorized | ProviderStatus::Captured
            )
        }),
        CHECK,
        || format!("a cancelled payment became {after:?}"),
    )?;
    report.checks += 1;
    Ok(report)
}
