//! UCP 2026-01-11 documents: checkouts, orders and the discovery profile,
//! rendered from the engine's agent sessions.

use serde_json::{Value, json};

use crate::agent::{AgentSessionStatus, Destination};
use crate::agents::AgentView;
use crate::customer::Address;
use crate::money::Money;
use crate::pricing::{Outcome, PricedCart};

use super::{UcpConfig, Version};
use crate::agentic::minor;

fn total(kind: &str, amount: Money) -> Value {
    json!({"type": kind, "amount": minor(amount)})
}

pub(crate) fn postal(address: &Address) -> Value {
    let mut out = serde_json::Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            out.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    };
    put("full_name", &address.name);
    put("street_address", &address.line1);
    put("extended_address", &address.line2);
    put("address_locality", &address.city);
    put("address_region", &address.region);
    put("postal_code", &address.postal_code);
    put("address_country", address.country.as_str());
    put("phone_number", &address.phone);
    Value::Object(out)
}

fn destination(d: &Destination) -> Value {
    let mut v = postal(&d.address);
    if let Value::Object(map) = &mut v {
        map.insert("id".into(), Value::String(d.id.clone()));
    }
    v
}

/// An option's title: the method's name, marked free when promotions make
/// it cost nothing (the order's expectation repeats it).
pub(crate) fn option_title(name: &str, price: Money) -> String {
    if price.is_zero() {
        format!("{name} (Free)")
    } else {
        name.to_owned()
    }
}

fn ucp_header(version: Version, capability: &str) -> Value {
    let capabilities: Vec<Value> = [
        capability,
        "dev.ucp.shopping.discount",
        "dev.ucp.shopping.fulfillment",
        "dev.ucp.shopping.buyer_consent",
    ]
    .iter()
    .map(|name| json!({"name": name, "version": version.as_str()}))
    .collect();
    json!({"version": version.as_str(), "capabilities": capabilities})
}

fn status(view: &AgentView, messages: &[Value]) -> &'static str {
    match view.session.status {
        AgentSessionStatus::Completed => "completed",
        AgentSessionStatus::Canceled => "canceled",
        // 3-D Secure or a redirect: the buyer must act.
        _ if view.session.awaiting_payment => "requires_escalation",
        _ => {
            let ready = match &view.priced {
                Ok(p) => {
                    !p.lines.is_empty()
                        && (!p.requires_shipping
                            || (view.session.destination().is_some()
                                && view.cart.shipping_method().is_some()))
                }
                Err(_) => false,
            };
            if ready && messages.is_empty() {
                "ready_for_complete"
            } else {
                "incomplete"
            }
        }
    }
}

fn applied_discounts(priced: &PricedCart) -> (Vec<Value>, Vec<Value>) {
    let mut applied = Vec::new();
    let mut messages = Vec::new();
    for p in &priced.promotions {
        match &p.outcome {
            Outcome::Applied { amount, .. } => {
                let mut d = json!({"title": p.name, "amount": minor(*amount)});
                if let (Some(code), Value::Object(map)) = (&p.code, &mut d) {
                    map.insert("code".into(), Value::String(code.clone()));
                } else if let Value::Object(map) = &mut d {
                    map.insert("automatic".into(), Value::Bool(true));
                }
                applied.push(d);
            }
            Outcome::NotApplied { reason } => {
                // Only codes the agent entered are worth a message; an
                // automatic offer that did not apply is not news.
                if let Some(code) = &p.code {
                    messages.push(json!({
                        "type": "warning",
                        "code": "discount_code_not_applied",
                        "path": "$.discounts.codes",
                        "content": format!("code {code} was not applied: {reason}"),
                    }));
                }
            }
            _ => {}
        }
    }
    (applied, messages)
}

/// A checkout session as UCP 2026-01-11 shows it.
pub(crate) fn checkout(config: &UcpConfig, version: Version, view: &AgentView) -> Value {
    let session = &view.session;
    let mut messages: Vec<Value> = Vec::new();
    let mut line_items = Vec::new();
    let mut totals = Vec::new();
    let mut discounts = json!({"codes": view.cart.coupon_codes()});
    match &view.priced {
        Ok(priced) => {
            for line in &priced.lines {
                line_items.push(json!({
                    "id": line.line_id.to_string(),
                    "item": {
                        "id": line.sku.as_str(),
                        "title": &*line.name,
                        "price": minor(line.unit_price),
                    },
                    "quantity": line.quantity,
                    "totals": [
                        total("subtotal", line.subtotal),
                        total("discount", line.discount),
                        total("total", line.total),
                    ],
                }));
            }
            let (applied, code_messages) = applied_discounts(priced);
            messages.extend(code_messages);
            if let Value::Object(map) = &mut discounts {
                map.insert("applied".into(), Value::Array(applied));
            }
            totals.push(total("subtotal", priced.subtotal));
            let shipping_discount = priced
                .shipping
                .as_ref()
                .map_or(Money::zero(priced.currency), |s| s.discount);
            let line_discount = priced
                .discount_total
                .checked_sub(shipping_discount)
                .unwrap_or(priced.discount_total);
            if !line_discount.is_zero() {
                totals.push(total("discount", line_discount));
            }
            if let Some(s) = &priced.shipping {
                let mut t = total("fulfillment", s.total);
                if let Value::Object(map) = &mut t {
                    map.insert("display_text".into(), Value::String(s.name.clone()));
                }
                totals.push(t);
            }
            if !priced.tax_total.is_zero() && !priced.prices_include_tax {
                totals.push(total("tax", priced.tax_total));
            }
            totals.push(total("total", priced.total));
        }
        Err(e) => {
            messages.push(json!({
                "type": "error",
                "code": "invalid",
                "content": e.to_string(),
                "severity": "recoverable",
            }));
            for line in view.cart.lines() {
                line_items.push(json!({
                    "id": line.id.to_string(),
                    "item": {"id": line.variant_id.to_string(), "title": "", "price": 0},
                    "quantity": line.quantity,
                    "totals": [],
                }));
            }
        }
    }
    let awaiting = session.status == AgentSessionStatus::Open && session.awaiting_payment;
    if awaiting {
        messages.push(json!({
            "type": "error",
            "code": "requires_3ds",
            "content": "the payment needs the buyer's authentication",
            "severity": "requires_buyer_input",
        }));
    } else if let Some(failure) = &session.last_failure
        && session.status == AgentSessionStatus::Open
    {
        messages.push(json!({
            "type": "error",
            "code": "payment_declined",
            "path": "$.payment",
            "content": failure,
            "severity": "recoverable",
        }));
    }
    let line_ids: Vec<Value> = line_items
        .iter()
        .filter_map(|l| l.get("id").cloned())
        .collect();
    let options: Vec<Value> = view
        .options
        .iter()
        .map(|(rate, price)| {
            json!({
                "id": rate.code,
                "title": option_title(&rate.name, *price),
                "totals": [total("subtotal", rate.price), total("total", *price)],
            })
        })
        .collect();
    let destinations = if session.destinations.is_empty() {
        Value::Null
    } else {
        Value::Array(session.destinations.iter().map(destination).collect())
    };
    let fulfillment = json!({
        "methods": [{
            "id": "shipping",
            "type": "shipping",
            "line_item_ids": line_ids,
            "destinations": destinations,
            "selected_destination_id": session.selected_destination,
            "groups": [{
                "id": "group_1",
                "line_item_ids": line_ids,
                "options": options,
                "selected_option_id": session.selected_option,
            }],
        }],
    });
    let mut out = json!({
        "ucp": ucp_header(version, "dev.ucp.shopping.checkout"),
        "id": session.id.to_string(),
        "status": status(view, &messages),
        "currency": session.currency.code(),
        "line_items": line_items,
        "totals": totals,
        "messages": messages,
        "links": config.links.iter().map(|(kind, url)| json!({"type": kind, "url": url})).collect::<Vec<_>>(),
        "expires_at": session.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "payment": {"handlers": config.handlers, "instruments": []},
        "discounts": discounts,
        "fulfillment": fulfillment,
    });
    if let (Some(buyer), Value::Object(map)) = (&session.buyer, &mut out) {
        let mut b = serde_json::Map::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                b.insert(k.to_owned(), Value::String(v.to_owned()));
            }
        };
        put("first_name", &buyer.first_name);
        put("last_name", &buyer.last_name);
        put("full_name", &buyer.full_name());
        put("phone_number", &buyer.phone);
        if let Some(email) = &buyer.email {
            b.insert("email".into(), Value::String(email.clone()));
        }
        if let Some(c) = &buyer.consent {
            b.insert(
                "consent".into(),
                json!({"marketing": c.marketing, "analytics": c.analytics, "sale_of_data": c.sale_of_data}),
            );
        }
        map.insert("buyer".into(), Value::Object(b));
    }
    if let (true, Value::Object(map)) = (awaiting, &mut out) {
        let url = session
            .continue_url
            .clone()
            .unwrap_or_else(|| format!("{}checkout-sessions/{}", config.base_url, session.id));
        map.insert("continue_url".into(), Value::String(url));
    }
    if let (Some(order), Value::Object(map)) = (session.order_id, &mut out) {
        map.insert(
            "order".into(),
            json!({"id": order.to_string(), "permalink_url": config.order_url(order)}),
        );
    }
    out
}

/// An order as UCP 2026-01-11 shows it.
pub(crate) fn order(config: &UcpConfig, version: Version, view: &AgentView) -> Option<Value> {
    let order = view.order.as_ref()?;
    let priced = order.pricing();
    let line_items: Vec<Value> = priced
        .lines
        .iter()
        .map(|line| {
            // The current total: units cancelled before shipping are gone.
            let current = order.ordered(line.line_id);
            let fulfilled = order.shipped(line.line_id).min(current);
            let status = crate::agentic::line_status(fulfilled, current);
            json!({
                "id": line.line_id.to_string(),
                "item": {"id": line.sku.as_str(), "title": &*line.name, "price": minor(line.unit_price)},
                "quantity": {"total": current, "fulfilled": fulfilled},
                "totals": [total("subtotal", line.subtotal), total("total", line.total)],
                "status": status,
            })
        })
        .collect();
    let mut expectations = Vec::new();
    if let Some(address) = order.shipping_address() {
        let description = priced
            .shipping
            .as_ref()
            .map(|s| option_title(&s.name, s.total));
        expectations.push(json!({
            "id": "expectation_1",
            "line_items": priced.lines.iter().map(|l| json!({"id": l.line_id.to_string(), "quantity": l.quantity})).collect::<Vec<_>>(),
            "method_type": "shipping",
            "destination": postal(address),
            "description": description,
        }));
    }
    let mut events: Vec<Value> = order
        .shipments()
        .iter()
        .map(|s| {
            let mut e = json!({
                "id": s.id.to_string(),
                "occurred_at": s.shipped_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "type": "shipped",
                "line_items": s.items.iter().map(|i| json!({"id": i.line_id.to_string(), "quantity": i.quantity})).collect::<Vec<_>>(),
                "carrier": s.carrier,
                "description": format!("Shipped with {}", s.carrier),
            });
            if let (false, Value::Object(map)) = (s.tracking_number.is_empty(), &mut e) {
                map.insert("tracking_number".into(), Value::String(s.tracking_number.clone()));
            }
            e
        })
        .collect();
    let mut adjustments = Vec::new();
    for a in &view.session.annotations {
        let kind = a.get("ucp_kind").and_then(Value::as_str);
        let mut clean = a.clone();
        if let Value::Object(map) = &mut clean {
            map.remove("ucp_kind");
        }
        match kind {
            Some("fulfillment_event") => {
                let id = clean.get("id").cloned();
                if !events.iter().any(|e| e.get("id") == id.as_ref()) {
                    events.push(clean);
                }
            }
            Some("adjustment") => adjustments.push(clean),
            _ => {}
        }
    }
    let mut totals = vec![total("subtotal", priced.subtotal)];
    if !priced.discount_total.is_zero() {
        totals.push(total("discount", priced.discount_total));
    }
    if let Some(s) = &priced.shipping {
        totals.push(total("fulfillment", s.amount));
    }
    if !priced.tax_total.is_zero() && !priced.prices_include_tax {
        totals.push(total("tax", priced.tax_total));
    }
    totals.push(total("total", priced.total));
    Some(json!({
        "ucp": ucp_header(version, "dev.ucp.shopping.order"),
        "id": order.id().to_string(),
        "checkout_id": view.session.id.to_string(),
        "permalink_url": config.order_url(order.id()),
        "line_items": line_items,
        "fulfillment": {"expectations": expectations, "events": events},
        "adjustments": adjustments,
        "totals": totals,
    }))
}
