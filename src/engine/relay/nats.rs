//! A [`Sink`] that publishes to NATS JetStream (feature
//! `nats`): one subject per event type (`<prefix>.<type>`, such as
//! `shop.events.cartwright.order.placed.v1`), the CloudEvents envelope as
//! the payload, the event's id as `Nats-Msg-Id` — so JetStream drops a
//! duplicate within the stream's window — and the aggregate and its
//! version as headers. An event counts as delivered only once JetStream
//! acknowledged it (stored it in a stream).
//!
//! The stream itself (its subjects, retention, duplicate window) is the
//! shop's to create; this sink only publishes.

use async_trait::async_trait;

use super::{Sink, SinkError};
use crate::error::{Error, Result};
use crate::event::Event;

/// Publishes events to NATS JetStream.
pub struct NatsSink {
    name: String,
    prefix: String,
    jetstream: async_nats::jetstream::Context,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl NatsSink {
    /// Connects to the NATS server at `url` and publishes under
    /// `<prefix>.<event type>`; `name` is the sink's name for the relay.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty prefix or one with spaces or
    /// wildcards; [`Error::Storage`] when the server cannot be reached.
    pub async fn connect(name: &str, url: &str, prefix: &str) -> Result<Self> {
        let valid = !prefix.is_empty()
            && prefix.len() <= 200
            && prefix
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '*' && c != '>');
        if !valid {
            return Err(Error::invalid(
                "subject prefix",
                crate::validate::shown(prefix),
            ));
        }
        let client = async_nats::connect(url).await.map_err(|e| Error::Storage {
            message: "the NATS server cannot be reached".into(),
            source: Some(std::sync::Arc::new(e)),
        })?;
        Ok(Self {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            jetstream: async_nats::jetstream::new(client),
        })
    }

    /// The subject an event is published under.
    pub fn subject(&self, event: &Event) -> String {
        format!("{}.{}", self.prefix, event.kind.type_name())
    }
}

#[async_trait]
impl Sink for NatsSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(
        &self,
        event: &Event,
        envelope: &serde_json::Value,
    ) -> std::result::Result<(), SinkError> {
        let payload = serde_json::to_vec(envelope)
            .map_err(|e| SinkError::permanent(format!("the event cannot be written: {e}")))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.to_string().as_str());
        headers.insert("Cw-Aggregate", event.aggregate.as_str());
        headers.insert("Cw-Aggregate-Version", event.version.to_string().as_str());
        let ack = self
            .jetstream
            .publish_with_headers(self.subject(event), headers, payload.into())
            .await
            .map_err(|e| SinkError::transient(format!("NATS publish failed: {e}")))?;
        ack.await
            .map_err(|e| SinkError::transient(format!("JetStream did not acknowledge: {e}")))?;
        Ok(())
    }
}
