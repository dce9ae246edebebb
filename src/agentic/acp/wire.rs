//! ACP request bodies turned into the engine's agent-session updates:
//! line items, codes, buyer, fulfilment details, selected options.

use serde_json::Value;

use super::{AcpMerchant, Answer, DETAILS, answer_for};
use crate::agent::{AgentBuyer, Destination};
use crate::agents::AgentUpdate;
use crate::customer::{Address, NewAddress};
use crate::error::Error;
use crate::id::VariantId;

impl AcpMerchant {
    /// The engine update a create or update body asks for.
    pub(super) async fn update_from(
        &self,
        request: &Value,
        current: Option<&crate::agent::AgentSession>,
    ) -> std::result::Result<AgentUpdate, Answer> {
        let engine = &self.inner.engine;
        let mut update = AgentUpdate::default();
        // `line_items` as the schema names them; `items` as the spec's own
        // examples do.
        if let Some(items) = request.get("line_items").or_else(|| request.get("items")) {
            let items = items
                .as_array()
                .ok_or_else(|| Answer::invalid("invalid", "line_items must be a list"))?;
            if items.len() > crate::agents::MAX_AGENT_LINES {
                return Err(Answer::invalid(
                    "invalid",
                    format!("at most {} line items", crate::agents::MAX_AGENT_LINES),
                ));
            }
            let mut lines: Vec<(VariantId, u32)> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let sku = item.get("id").and_then(Value::as_str).ok_or_else(|| {
                    Answer::invalid("missing", format!("$.line_items[{i}].id is required"))
                })?;
                let quantity = match item.get("quantity") {
                    None => 1,
                    Some(q) => q
                        .as_u64()
                        .and_then(|q| u32::try_from(q).ok())
                        .filter(|q| *q >= 1)
                        .ok_or_else(|| {
                            Answer::invalid(
                                "invalid",
                                format!("$.line_items[{i}].quantity must be a positive integer"),
                            )
                        })?,
                };
                let entry = match engine.variant_by_sku(sku).await {
                    Ok(e) => e,
                    Err(Error::NotFound { .. } | Error::Invalid { .. }) => {
                        return Err(Answer::invalid(
                            "not_found",
                            format!("item {} not found", crate::validate::shown(sku)),
                        ));
                    }
                    Err(e) => return Err(answer_for(&e)),
                };
                let variant = entry.variant.id();
                match lines.iter_mut().find(|(v, _)| *v == variant) {
                    Some((_, q)) => *q = q.saturating_add(quantity),
                    None => lines.push((variant, quantity)),
                }
            }
            update = update.lines(Some(lines));
        }
        let codes = request
            .get("discounts")
            .and_then(|d| d.get("codes"))
            .or_else(|| request.get("coupons"));
        if let Some(codes) = codes {
            let codes = codes
                .as_array()
                .ok_or_else(|| Answer::invalid("invalid", "discount codes must be a list"))?;
            let codes = codes
                .iter()
                .map(|c| {
                    c.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| Answer::invalid("invalid", "a discount code is text"))
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            update = update.codes(Some(codes));
        }
        let mut buyer = match request.get("buyer").filter(|b| b.is_object()) {
            Some(b) => Some(buyer_from(b)?),
            None => None,
        };
        if let Some(details) = request.get("fulfillment_details").filter(|d| d.is_object()) {
            let address = details.get("address").filter(|a| a.is_object());
            if let Some(a) = address {
                let text = |k: &str| {
                    a.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let name = if text("name").is_empty() {
                    details
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                } else {
                    text("name")
                };
                let input = NewAddress::new(
                    name,
                    text("line_one"),
                    text("city"),
                    text("postal_code"),
                    text("country").to_ascii_uppercase(),
                )
                .line2(text("line_two"))
                .region(text("state"))
                .phone(
                    details
                        .get("phone_number")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                );
                let address = Address::new(input).map_err(|e| {
                    Answer::invalid("invalid", format!("$.fulfillment_details.address: {e}"))
                })?;
                let destination = Destination::new(DETAILS, address).map_err(|e| answer_for(&e))?;
                update = update
                    .destinations(Some(vec![destination]))
                    .selected_destination(Some(Some(DETAILS.to_owned())));
            }
            if let Some(email) = details.get("email").and_then(Value::as_str) {
                let known = buyer
                    .clone()
                    .or_else(|| current.and_then(|s| s.buyer.clone()))
                    .unwrap_or_default();
                if known.email.is_none() {
                    buyer = Some(
                        known
                            .email(Some(email.to_owned()))
                            .validated()
                            .map_err(|e| answer_for(&e))?,
                    );
                }
            }
        }
        if let Some(b) = buyer {
            update = update.buyer(Some(b));
        }
        if let Some(selected) = request.get("selected_fulfillment_options") {
            let first = selected
                .as_array()
                .ok_or_else(|| {
                    Answer::invalid("invalid", "selected_fulfillment_options must be a list")
                })?
                .first();
            let option = match first {
                Some(o) => Some(
                    o.get("option_id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            Answer::invalid(
                                "missing",
                                "$.selected_fulfillment_options[0].option_id is required",
                            )
                        })?
                        .to_owned(),
                ),
                None => None,
            };
            update = update.selected_option(Some(option));
        }
        Ok(update)
    }
}

pub(super) fn buyer_from(b: &Value) -> std::result::Result<AgentBuyer, Answer> {
    let text = |k: &str| {
        b.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut buyer = AgentBuyer::default()
        .first_name(text("first_name"))
        .last_name(text("last_name"))
        .phone(text("phone_number"));
    if buyer.first_name.is_empty() && buyer.last_name.is_empty() {
        let full = text("full_name");
        let (first, last) = full.split_once(' ').unwrap_or((full.as_str(), ""));
        buyer = buyer.first_name(first).last_name(last);
    }
    if let Some(email) = b.get("email").and_then(Value::as_str) {
        buyer = buyer.email(Some(email.to_owned()));
    }
    buyer
        .validated()
        .map_err(|e| Answer::invalid("invalid", format!("$.buyer: {e}")))
}
