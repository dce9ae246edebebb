//! UCP order webhooks: a relay sink that posts an agent's orders to the
//! webhook address from its profile, signed with a detached JWS (RFC 7797,
//! ES256) in the `Request-Signature` header, the key published in the
//! discovery profile's `signing_keys`.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use serde_json::{Value, json};

use super::{UcpMerchant, Version};
use crate::event::{Event, EventKind};
use crate::relay::{Sink, SinkError};

/// An ES256 key that signs order webhooks, published as a JWK.
#[derive(Clone)]
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let key = p256::ecdsa::SigningKey::random(&mut password_hash::rand_core::OsRng);
        Self::named(key)
    }

    /// The key in a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) when it is not a P-256 key.
    pub fn from_pkcs8_pem(pem: &str) -> crate::Result<Self> {
        use p256::pkcs8::DecodePrivateKey;
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map_err(|_| crate::Error::invalid("signing key", "not a P-256 PKCS#8 key"))?;
        Ok(Self::named(key))
    }

    fn named(key: p256::ecdsa::SigningKey) -> Self {
        use sha2::Digest;
        let point = key.verifying_key().to_encoded_point(true);
        let kid = hex::encode(sha2::Sha256::digest(point.as_bytes()))
            .chars()
            .take(16)
            .collect();
        Self { key, kid }
    }

    /// The key's id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, for `signing_keys`.
    pub fn jwk(&self) -> Value {
        let public = p256::PublicKey::from(self.key.verifying_key());
        let mut jwk: Value = serde_json::from_str(&public.to_jwk_string()).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut jwk {
            map.insert("kid".into(), Value::String(self.kid.clone()));
            map.insert("use".into(), Value::String("sig".into()));
            map.insert("alg".into(), Value::String("ES256".into()));
        }
        jwk
    }

    /// A detached JWS over `body` with an unencoded payload (RFC 7797):
    /// `header..signature`.
    pub fn sign_detached(&self, body: &[u8]) -> String {
        let header = json!({"alg": "ES256", "kid": self.kid, "b64": false, "crit": ["b64"]});
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        let mut input = Vec::with_capacity(header.len() + 1 + body.len());
        input.extend_from_slice(header.as_bytes());
        input.push(b'.');
        input.extend_from_slice(body);
        let signature: p256::ecdsa::Signature = self.key.sign(&input);
        format!("{header}..{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// Checks a detached JWS made by [`SigningKey::sign_detached`] with this
    /// key (for tests and receivers in Rust).
    pub fn verify_detached(&self, jws: &str, body: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        let Some((header, signature)) = jws.split_once("..") else {
            return false;
        };
        let Ok(raw) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let Ok(signature) = p256::ecdsa::Signature::from_slice(&raw) else {
            return false;
        };
        let mut input = Vec::with_capacity(header.len() + 1 + body.len());
        input.extend_from_slice(header.as_bytes());
        input.push(b'.');
        input.extend_from_slice(body);
        self.key.verifying_key().verify(&input, &signature).is_ok()
    }
}

/// Delivers agents' orders to their webhook addresses (see
/// [`UcpMerchant::webhook_sink`]). Orders no agent placed, and agents that
/// gave no address, are passed over.
pub struct UcpWebhookSink {
    merchant: UcpMerchant,
}

impl std::fmt::Debug for UcpWebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UcpWebhookSink").finish_non_exhaustive()
    }
}

impl UcpWebhookSink {
    pub(super) fn new(merchant: UcpMerchant) -> Self {
        Self { merchant }
    }
}

/// The UCP event type of an engine event about an order.
fn event_type(kind: &EventKind) -> Option<(&'static str, crate::id::OrderId)> {
    match kind {
        EventKind::OrderPlaced { order_id, .. } => Some(("order_placed", *order_id)),
        EventKind::OrderShipped { order_id, .. } => Some(("order_shipped", *order_id)),
        EventKind::OrderCancelled { order_id, .. } => Some(("order_canceled", *order_id)),
        EventKind::PaymentRefunded { order_id, .. } => Some(("order_refunded", *order_id)),
        // Returns, claims, exchanges, edits and cancelled units change the
        // order's lines and quantities.
        EventKind::AfterSale { order_id, .. } => Some(("order_updated", *order_id)),
        _ => None,
    }
}

#[async_trait]
impl Sink for UcpWebhookSink {
    fn name(&self) -> &str {
        "ucp-order-webhooks"
    }

    fn accepts(&self, event: &Event) -> bool {
        event_type(&event.kind).is_some()
    }

    async fn deliver(&self, event: &Event, _envelope: &Value) -> Result<(), SinkError> {
        let Some((kind, order)) = event_type(&event.kind) else {
            return Ok(());
        };
        let engine = self.merchant.engine();
        let Some(view) =
            crate::agentic::agent_order_of(engine, order, crate::agent::AgentProtocol::Ucp).await?
        else {
            return Ok(());
        };
        let Some(url) = view.session.webhook_url.clone() else {
            return Ok(());
        };
        // An agent's order that cannot be written is parked where staff
        // see it (`failed_deliveries`), never passed over as sent.
        let order_json = self
            .merchant
            .render_order(Version::latest(), &view)
            .map_err(|_| SinkError::permanent("the order cannot be written"))?;
        let body = json!({
            "event_type": kind,
            "event_id": event.id.to_string(),
            "checkout_id": view.session.id.to_string(),
            "order": order_json,
        });
        let body = serde_json::to_vec(&body)
            .map_err(|e| SinkError::permanent(format!("the order cannot be written: {e}")))?;
        let signature = self.merchant.inner.config.signing_key.sign_detached(&body);
        let headers = [
            ("Request-Signature", signature),
            (
                "UCP-Agent",
                format!("version=\"{}\"", Version::latest().as_str()),
            ),
            ("Webhook-Id", event.id.to_string()),
        ];
        crate::agentic::post_order_event(&self.merchant.inner.client, engine, &url, &headers, body)
            .await
    }
}

impl UcpWebhookSink {
    /// The sink behind an `Arc`, for a relay.
    pub fn shared(self) -> Arc<dyn Sink> {
        Arc::new(self)
    }
}
