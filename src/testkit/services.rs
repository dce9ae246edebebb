//! The tax-service and carrier conformance suites.
//!
//! Does not know: the service it checks beyond its port.

use std::sync::Arc;

use super::{Failure, Report, ensure, step};
use crate::customer::Address;
use crate::id::{LineId, OrderId, VariantId};
use crate::money::{Currency, Money};
use crate::shipping::{Carrier, LabelRequest, RateRequest};
use crate::tax::{
    QuoteLine, TaxAddress, TaxAdjustmentRequest, TaxCommitRequest, TaxCustomer, TaxProvider,
    TaxQuoteRequest,
};

/// Runs the tax-service conformance suite against `provider`, quoting two
/// lines and shipping to `ship_to` in `currency`. Checks what the engine
/// relies on: an answer has one tax per line, in the request's currency,
/// exact and not negative; the same request quotes the same; a commit,
/// an adjustment and a void under a key act once, and the same key again
/// answers the same (a commit, the same reference). Each run uses fresh
/// keys.
///
/// # Errors
/// The first [`Failure`]: which check, and what was seen.
pub async fn tax_provider_conformance(
    provider: Arc<dyn TaxProvider>,
    ship_to: TaxAddress,
    currency: Currency,
) -> Result<Report, Failure> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let key = |name: &str| format!("conformance-{run}-{name}");
    let money = |minor: i64| Money::from_minor(minor, currency);
    let mut report = Report::default();
    let line = |amount: i64, code: &str| QuoteLine {
        line_id: LineId::new(),
        variant_id: VariantId::new(),
        tax_code: code.to_owned(),
        quantity: 2,
        amount: money(amount),
    };
    let request = TaxQuoteRequest {
        currency,
        lines: vec![line(20_00, "standard"), line(5_50, "standard")],
        shipping: Some(money(4_99)),
        ship_to: Some(ship_to),
        ship_from: None,
        customer: TaxCustomer::default(),
        channel: None,
    };

    // A quote the engine can use, and the same again.
    let first = step("quote", provider.quote(&request).await)?;
    step("quote answer", request.check_answer(&first))?;
    let again = step("quote again", provider.quote(&request).await)?;
    ensure(
        again.lines == first.lines && again.shipping == first.shipping,
        "quote again",
        || format!("{:?} then {:?}", first.lines, again.lines),
    )?;
    report.checks += 1;

    // Commit, and the same key again: one document.
    let tax_total = first
        .lines
        .iter()
        .chain(std::iter::once(&first.shipping))
        .try_fold(money(0), |acc, t| acc.checked_add(*t))
        .map_err(|e| Failure {
            check: "quote answer",
            detail: e.to_string(),
        })?;
    let commit = TaxCommitRequest {
        key: key("commit"),
        order_id: OrderId::new(),
        quote: request.clone(),
        line_tax: first.lines.clone(),
        shipping_tax: first.shipping,
        tax_total,
        at: chrono::Utc::now(),
    };
    let committed = step("commit", provider.commit(&commit).await)?;
    ensure(!committed.reference.is_empty(), "commit", || {
        "an empty reference".into()
    })?;
    let recommitted = step("commit replay", provider.commit(&commit).await)?;
    ensure(
        recommitted.reference == committed.reference,
        "commit replay",
        || format!("a second document {} for one key", recommitted.reference),
    )?;
    report.checks += 1;

    // An adjustment, twice under one key.
    let adjust = TaxAdjustmentRequest {
        key: key("adjust"),
        reference: committed.reference.clone(),
        amount: money(-5_50),
        tax: Money::zero(currency),
        reason: "refund".into(),
    };
    step("adjust", provider.adjust(&adjust).await)?;
    step("adjust replay", provider.adjust(&adjust).await)?;
    report.checks += 1;

    // A void, twice under one key.
    step(
        "void",
        provider.void(&key("void"), &committed.reference).await,
    )?;
    step(
        "void replay",
        provider.void(&key("void"), &committed.reference).await,
    )?;
    report.checks += 1;
    Ok(report)
}

/// Runs the carrier conformance suite against `carrier`, for a 1 kg
/// parcel worth 30.00 in `currency` from `origin` to `destination`.
/// Checks what the engine relies on: rates in the request's currency,
/// exact, not negative, with distinct codes; the same request rates the
/// same; a label bought under a key is bought once (the same key answers
/// the same label), with a tracking number; a void under a key acts once.
/// Each run uses fresh keys.
///
/// # Errors
/// The first [`Failure`]: which check, and what was seen.
pub async fn carrier_conformance(
    carrier: Arc<dyn Carrier>,
    origin: Option<TaxAddress>,
    destination: Address,
    currency: Currency,
) -> Result<Report, Failure> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let key = |name: &str| format!("conformance-{run}-{name}");
    let mut report = Report::default();
    let request = RateRequest {
        currency,
        value: Money::from_minor(30_00, currency),
        weight_grams: 1_000,
        items: 2,
        parcel_mm: Some([300, 200, 100]),
        volume_cm3: 12_000,
        origin: origin.clone(),
        destination: Some(TaxAddress::from(&destination)),
    };
    let rates = step("rates", carrier.rates(&request).await)?;
    step("rates answer", request.check_answer(&rates))?;
    ensure(!rates.is_empty(), "rates", || {
        "no rate for a 1 kg parcel".into()
    })?;
    let mut codes: Vec<&str> = rates.iter().map(|r| r.code.as_str()).collect();
    codes.sort_unstable();
    let all = codes.len();
    codes.dedup();
    ensure(codes.len() == all, "rates", || {
        format!("codes repeat: {codes:?}")
    })?;
    let again = step("rates again", carrier.rates(&request).await)?;
    ensure(again == rates, "rates again", || {
        format!("{rates:?} then {again:?}")
    })?;
    report.checks += 1;

    let method = codes.first().map(|c| (*c).to_owned()).unwrap_or_default();
    let purchase = LabelRequest {
        key: key("label"),
        reference: format!("{}:{}", OrderId::new(), crate::id::ShipmentId::new()),
        method,
        weight_grams: 1_000,
        origin,
        destination: Some(destination),
    };
    let label = step("purchase", carrier.purchase_label(&purchase).await)?;
    ensure(!label.tracking_number.is_empty(), "purchase", || {
        "no tracking number".into()
    })?;
    ensure(!label.cost.is_negative(), "purchase", || {
        format!("a negative cost {}", label.cost)
    })?;
    let replay = step("purchase replay", carrier.purchase_label(&purchase).await)?;
    ensure(replay.id == label.id, "purchase replay", || {
        format!("a second label {} for one key", replay.id)
    })?;
    report.checks += 1;

    step("void", carrier.void_label(&key("void"), &label.id).await)?;
    step(
        "void replay",
        carrier.void_label(&key("void"), &label.id).await,
    )?;
    report.checks += 1;
    Ok(report)
}
