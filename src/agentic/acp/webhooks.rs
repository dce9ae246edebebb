//! ACP order webhooks: a relay sink that posts each platform's orders to
//! the address the shop configured for it, signed with
//! `Merchant-Signature: t=<unix seconds>,v1=<HMAC-SHA256 hex>` over
//! `timestamp + "." + body`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::AcpMerchant;
use crate::agent::AgentProtocol;
use crate::event::{Event, EventKind};
use crate::relay::{Sink, SinkError};

/// Delivers agent platforms' order events (see
/// [`AcpMerchant::webhook_sink`]).
pub struct AcpWebhookSink {
    merchant: AcpMerchant,
}

impl std::fmt::Debug for AcpWebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpWebhookSink").finish_non_exhaustive()
    }
}

impl AcpWebhookSink {
    pub(super) fn new(merchant: AcpMerchant) -> Self {
        Self { merchant }
    }
}

fn order_of(kind: &EventKind) -> Option<(&'static str, crate::id::OrderId)> {
    match kind {
        EventKind::OrderPlaced { order_id, .. } => Some(("order_create", *order_id)),
        EventKind::OrderShipped { order_id, .. }
        | EventKind::OrderCancelled { order_id, .. }
        | EventKind::PaymentRefunded { order_id, .. }
        // Returns, claims, exchanges, edits and cancelled units change the
        // order's lines and quantities.
        | EventKind::AfterSale { order_id, .. } => Some(("order_update", *order_id)),
        _ => None,
    }
}

#[async_trait]
impl Sink for AcpWebhookSink {
    fn name(&self) -> &str {
        "acp-order-webhooks"
    }

    fn accepts(&self, event: &Event) -> bool {
        order_of(&event.kind).is_some()
    }

    async fn deliver(&self, event: &Event, _envelope: &Value) -> Result<(), SinkError> {
        let Some((kind, order)) = order_of(&event.kind) else {
            return Ok(());
        };
        let inner = &self.merchant.inner;
        let Some(view) =
            crate::agentic::agent_order_of(&inner.engine, order, AgentProtocol::Acp).await?
        else {
            return Ok(());
        };
        let Some((url, secret)) = inner
            .config
            .platforms
            .iter()
            .find(|p| p.name == view.session.agent)
            .and_then(|p| p.webhook.clone())
        else {
            return Ok(());
        };
        // An agent's order that cannot be written is parked where staff
        // see it (`failed_deliveries`), never passed over as sent.
        let Some(data) = super::render::order(&inner.config, &view) else {
            return Err(SinkError::permanent("the order cannot be written"));
        };
        let body = serde_json::to_vec(&json!({"type": kind, "data": data}))
            .map_err(|e| SinkError::permanent(format!("the order cannot be written: {e}")))?;
        let now = chrono::Utc::now();
        let headers = [
            (
                "Merchant-Signature",
                crate::webhook::sign(&secret, now.timestamp(), &body),
            ),
            (
                "Timestamp",
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            ("Request-Id", event.id.to_string()),
        ];
        crate::agentic::post_order_event(&inner.client, &inner.engine, &url, &headers, body).await
    }
}
