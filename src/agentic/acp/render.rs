//! ACP 2026-04-17 documents: checkout sessions, errors and orders,
//! rendered from the engine's agent sessions. Every object is built with
//! only the fields the JSON Schemas allow (they forbid others).

use serde_json::{Map, Value, json};

use crate::agent::AgentSessionStatus;
use crate::agents::AgentView;
use crate::customer::Address;
use crate::money::Money;
use crate::pricing::{Outcome, Rejection};

use super::{AcpConfig, VERSION};

fn minor(m: Money) -> i64 {
    crate::agentic::minor(m)
}

fn total(kind: &str, text: &str, amount: Money) -> Value {
    json!({"type": kind, "display_text": text, "amount": minor(amount)})
}

/// A protocol error (`Error` schema).
pub(crate) fn error(kind: &str, code: &str, message: &str) -> Value {
    json!({"type": kind, "code": code, "message": message})
}

fn put(map: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// An address as ACP's `Address` (every required field present, empty
/// when the engine has none).
pub(crate) fn address(a: &Address) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(a.name.clone()));
    m.insert("line_one".into(), Value::String(a.line1.clone()));
    put(&mut m, "line_two", &a.line2);
    m.insert("city".into(), Value::String(a.city.clone()));
    m.insert("state".into(), Value::String(a.region.clone()));
    m.insert(
        "country".into(),
        Value::String(a.country.as_str().to_owned()),
    );
    m.insert("postal_code".into(), Value::String(a.postal_code.clone()));
    Value::Object(m)
}

fn discount_code(reason: &Rejection) -> &'static str {
    match reason {
        Rejection::UnknownCode => "discount_code_invalid",
        Rejection::Expired { .. } => "discount_code_expired",
        Rejection::UsedUp { .. } => "discount_code_usage_limit_reached",
        Rejection::NotCombinable { .. } | Rejection::NotBest => {
            "discount_code_combination_disallowed"
        }
        Rejection::ConditionsNotMet { .. } | Rejection::NothingToDiscount => {
            "discount_code_minimum_not_met"
        }
        Rejection::NeedsCustomer => "discount_code_user_not_logged_in",
        Rejection::AlreadyApplied => "discount_code_already_applied",
        _ => "discount_code_invalid",
    }
}

/// A checkout session as ACP 2026-04-17 shows it.
pub(crate) fn session(config: &AcpConfig, view: &AgentView) -> Value {
    let s = &view.session;
    let awaiting = s.status == AgentSessionStatus::Open && s.awaiting_payment;
    let mut messages: Vec<Value> = Vec::new();
    let mut line_items = Vec::new();
    let mut totals = Vec::new();
    let mut applied = Vec::new();
    let mut rejected = Vec::new();
    let mut item_ids = Vec::new();
    match &view.priced {
        Ok(p) => {
            for line in &p.lines {
                item_ids.push(Value::String(line.line_id.to_string()));
                line_items.push(json!({
                    "id": line.line_id.to_string(),
                    "item": {"id": line.sku.as_str(), "name": &*line.name, "unit_amount": minor(line.unit_price)},
                    "quantity": line.quantity,
                    "name": &*line.name,
                    "unit_amount": minor(line.unit_price),
                    "sku": line.sku.as_str(),
                    "totals": [
                        total("subtotal", "Subtotal", line.subtotal),
                        total("discount", "Discount", line.discount),
                        total("total", "Total", line.total),
                    ],
                }));
            }
            for o in &p.promotions {
                match &o.outcome {
                    Outcome::Applied { amount, .. } => {
                        let id = o.promotion_id.map(|i| i.to_string()).unwrap_or_default();
                        let mut d = json!({
                            "id": id,
                            "coupon": {"id": id, "name": o.name},
                            "amount": minor(*amount),
                            "automatic": o.code.is_none(),
                        });
                        if let (Some(code), Value::Object(m)) = (&o.code, &mut d) {
                            m.insert("code".into(), Value::String(code.clone()));
                        }
                        applied.push(d);
                    }
                    Outcome::NotApplied { reason } => {
                        if let Some(code) = &o.code {
                            let reason_code = discount_code(reason);
                            rejected.push(json!({"code": code, "reason": reason_code, "message": reason.to_string()}));
                            messages.push(json!({
                                "type": "warning",
                                "code": reason_code,
                                "param": "$.discounts.codes",
                                "content_type": "plain",
                                "content": format!("code {code} was not applied: {reason}"),
                            }));
                        }
                    }
                    _ => {}
                }
            }
            totals.push(total("subtotal", "Subtotal", p.subtotal));
            let shipping_discount = p
                .shipping
                .as_ref()
                .map_or(Money::zero(p.currency), |c| c.discount);
            let line_discount = p
                .discount_total
                .checked_sub(shipping_discount)
                .unwrap_or(p.discount_total);
            if !line_discount.is_zero() {
                totals.push(total("discount", "Discount", line_discount));
            }
            if let Some(c) = &p.shipping {
                totals.push(total("fulfillment", &c.name, c.total));
            }
            if !p.tax_total.is_zero() && !p.prices_include_tax {
                totals.push(total("tax", "Tax", p.tax_total));
            }
            totals.push(total("total", "Total", p.total));
        }
        Err(e) => messages.push(json!({
            "type": "error",
            "code": "invalid",
            "content_type": "plain",
            "content": e.to_string(),
        })),
    }
    if let (Some(failure), AgentSessionStatus::Open) = (&s.last_failure, s.status) {
        messages.push(json!({
            "type": "error",
            "code": "payment_declined",
            "param": "$.payment_data",
            "content_type": "plain",
            "content": failure,
        }));
    }
    let options: Vec<Value> = view
        .options
        .iter()
        .map(|(rate, price)| {
            json!({
                "type": "shipping",
                "id": rate.code,
                "title": rate.name,
                "totals": [total("fulfillment", &rate.name, *price)],
            })
        })
        .collect();
    let ready = view.priced.as_ref().is_ok_and(|p| {
        !p.lines.is_empty()
            && (!p.requires_shipping
                || (s.destination().is_some_and(|d| d.address.is_complete())
                    && view.cart.shipping_method().is_some()))
    });
    let status = match s.status {
        AgentSessionStatus::Completed => "completed",
        AgentSessionStatus::Canceled => "canceled",
        _ if awaiting => "authentication_required",
        _ if ready => "ready_for_payment",
        _ => "not_ready_for_payment",
    };
    if status == "not_ready_for_payment" && view.priced.as_ref().is_ok_and(|p| p.requires_shipping)
    {
        if s.destination().is_none() {
            messages.push(json!({"type": "error", "code": "missing", "param": "$.fulfillment_details.address", "content_type": "plain", "content": "a shipping address is needed"}));
        } else if view.cart.shipping_method().is_none() {
            messages.push(json!({"type": "error", "code": "missing", "param": "$.selected_fulfillment_options", "content_type": "plain", "content": "a fulfillment option is needed"}));
        }
    }
    let stamp =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut out = json!({
        "id": s.id.to_string(),
        "protocol": {"version": VERSION},
        "capabilities": {
            "payment": {"handlers": config.handlers},
            "interventions": {"supported": ["3ds"]},
        },
        "status": status,
        "currency": s.currency.code().to_ascii_lowercase(),
        "line_items": line_items,
        "fulfillment_options": options,
        "totals": totals,
        "messages": messages,
        "links": config.links.iter().map(|(kind, url)| json!({"type": kind, "url": url})).collect::<Vec<_>>(),
        "created_at": stamp(s.created_at),
        "updated_at": stamp(s.updated_at),
        "expires_at": stamp(s.expires_at),
        "discounts": {"codes": view.cart.coupon_codes(), "applied": applied, "rejected": rejected},
    });
    let Value::Object(map) = &mut out else {
        return out;
    };
    if let Some(option) = &s.selected_option {
        map.insert(
            "selected_fulfillment_options".into(),
            json!([{"type": "shipping", "option_id": option, "item_ids": item_ids}]),
        );
    }
    let email = s.buyer.as_ref().and_then(|b| b.email.clone());
    if let Some(d) = s.destination() {
        let mut details = Map::new();
        put(&mut details, "name", &d.address.name);
        put(&mut details, "phone_number", &d.address.phone);
        if let Some(e) = &email {
            details.insert("email".into(), Value::String(e.clone()));
        }
        details.insert("address".into(), address(&d.address));
        map.insert("fulfillment_details".into(), Value::Object(details));
    }
    if let (Some(buyer), Some(email)) = (&s.buyer, &email) {
        let mut b = Map::new();
        put(&mut b, "first_name", &buyer.first_name);
        put(&mut b, "last_name", &buyer.last_name);
        put(&mut b, "full_name", &buyer.full_name());
        b.insert("email".into(), Value::String(email.clone()));
        put(&mut b, "phone_number", &buyer.phone);
        map.insert("buyer".into(), Value::Object(b));
    }
    if let (true, Some(url)) = (awaiting, &s.continue_url) {
        map.insert("continue_url".into(), Value::String(url.clone()));
    }
    if awaiting {
        map.insert(
            "messages".into(),
            json!([{"type": "error", "code": "requires_3ds", "param": "$.payment_data",
                "content_type": "plain", "content": "the payment needs the buyer's authentication; complete again once they have"}]),
        );
    }
    if let Some(order) = order(config, view) {
        map.insert("order".into(), order);
    }
    out
}

/// The order a session placed, as ACP's `Order`.
pub(crate) fn order(config: &AcpConfig, view: &AgentView) -> Option<Value> {
    let order = view.order.as_ref()?;
    let priced = order.pricing();
    let line_items: Vec<Value> = priced
        .lines
        .iter()
        .map(|l| {
            // Current: what is still active after cancellations and returns.
            let current = order
                .ordered(l.line_id)
                .saturating_sub(order.returned(l.line_id));
            let fulfilled = order
                .shipped(l.line_id)
                .saturating_sub(order.returned(l.line_id))
                .min(current);
            let status = if current == 0 {
                "removed"
            } else {
                crate::agentic::line_status(fulfilled, current)
            };
            json!({
                "id": l.line_id.to_string(),
                "title": &*l.name,
                "quantity": {"ordered": l.quantity, "current": current, "fulfilled": fulfilled},
                "unit_price": minor(l.unit_price),
                "subtotal": minor(l.subtotal),
                "status": status,
            })
        })
        .collect();
    let fulfillments: Vec<Value> = order
        .shipments()
        .iter()
        .map(|s| {
            let mut f = json!({
                "id": s.id.to_string(),
                "type": "shipping",
                "status": if s.delivered_at.is_some() { "delivered" } else { "shipped" },
                "line_items": s.items.iter().map(|i| json!({"id": i.line_id.to_string(), "quantity": i.quantity})).collect::<Vec<_>>(),
                "carrier": s.carrier,
            });
            if let (false, Value::Object(m)) = (s.tracking_number.is_empty(), &mut f) {
                m.insert("tracking_number".into(), Value::String(s.tracking_number.clone()));
            }
            if let (Some(a), Value::Object(m)) = (order.shipping_address(), &mut f) {
                m.insert("destination".into(), address(a));
            }
            f
        })
        .collect();
    let status = match order.status() {
        crate::order::OrderStatus::Cancelled => "canceled",
        crate::order::OrderStatus::Completed => "completed",
        _ if !order.shipments().is_empty() => "shipped",
        _ => "confirmed",
    };
    let mut totals = vec![total("subtotal", "Subtotal", priced.subtotal)];
    if !priced.discount_total.is_zero() {
        totals.push(total("discount", "Discount", priced.discount_total));
    }
    if let Some(s) = &priced.shipping {
        totals.push(total("fulfillment", &s.name, s.amount));
    }
    if !priced.tax_total.is_zero() && !priced.prices_include_tax {
        totals.push(total("tax", "Tax", priced.tax_total));
    }
    totals.push(total("total", "Total", priced.total));
    Some(json!({
        "type": "order",
        "id": order.id().to_string(),
        "checkout_session_id": view.session.id.to_string(),
        "permalink_url": config.order_url(order.id()),
        "status": status,
        "line_items": line_items,
        "fulfillments": fulfillments,
        "totals": totals,
    }))
}
