//! A [`Sink`] that publishes to a RabbitMQ exchange (feature `rabbitmq`,
//! with lapin): the routing key is the event's type
//! (`cartwright.order.placed.v1`, so a topic exchange can route
//! `cartwright.order.#`), the body the CloudEvents envelope, the message
//! persistent (delivery mode 2) with the event's id as `message_id` and
//! the aggregate and its version as headers. Published *mandatory* on a
//! channel with publisher confirms: an event counts as delivered only once
//! the broker confirmed it, and a message no queue would take (no binding
//! for its type) fails instead of vanishing.
//!
//! The exchange, its queues and bindings are the shop's to declare; this
//! sink only publishes. A broken connection is made again at the next
//! delivery, so a broker restart costs retries, never an event.

use async_trait::async_trait;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use super::{Sink, SinkError};
use crate::error::{Error, Result};
use crate::event::Event;

/// Publishes events to a RabbitMQ exchange.
pub struct RabbitMqSink {
    name: String,
    uri: String,
    exchange: String,
    channel: Mutex<Option<(Connection, Channel)>>,
}

impl std::fmt::Debug for RabbitMqSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URI may carry a password.
        f.debug_struct("RabbitMqSink")
            .field("name", &self.name)
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

async fn open(uri: &str) -> std::result::Result<(Connection, Channel), lapin::Error> {
    let connection = Connection::connect(uri, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok((connection, channel))
}

impl RabbitMqSink {
    /// Connects to the broker at `uri` (`amqp://user:password@host:5672/%2f`)
    /// and publishes to `exchange`; `name` is the sink's name for the relay.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an exchange name that is empty, longer than
    /// 127 characters or not letters, digits, `-`, `_`, `.` and `:`
    /// (AMQP's rule); [`Error::Storage`] when the broker cannot be reached.
    pub async fn connect(name: &str, uri: &str, exchange: &str) -> Result<Self> {
        let valid = !exchange.is_empty()
            && exchange.len() <= 127
            && exchange
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !valid {
            return Err(Error::invalid("exchange", crate::validate::shown(exchange)));
        }
        let opened = open(uri).await.map_err(|e| Error::Storage {
            message: "the RabbitMQ broker cannot be reached".into(),
            source: Some(std::sync::Arc::new(e)),
        })?;
        Ok(Self {
            name: name.to_owned(),
            uri: uri.to_owned(),
            exchange: exchange.to_owned(),
            channel: Mutex::new(Some(opened)),
        })
    }

    /// The channel, opened again if the connection broke.
    async fn channel(&self) -> std::result::Result<Channel, SinkError> {
        let mut held = self.channel.lock().await;
        if let Some((connection, channel)) = held.as_ref()
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        *held = None;
        let (connection, channel) = open(&self.uri)
            .await
            .map_err(|e| SinkError::transient(format!("RabbitMQ cannot be reached: {e}")))?;
        *held = Some((connection, channel.clone()));
        Ok(channel)
    }
}

#[async_trait]
impl Sink for RabbitMqSink {
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
        let mut headers = FieldTable::default();
        headers.insert(
            ShortString::from("cw-aggregate"),
            AMQPValue::LongString(event.aggregate.clone().into()),
        );
        headers.insert(
            ShortString::from("cw-aggregate-version"),
            AMQPValue::LongLongInt(i64::try_from(event.version).unwrap_or(i64::MAX)),
        );
        let properties = BasicProperties::default()
            .with_message_id(event.id.to_string().into())
            .with_delivery_mode(2)
            .with_content_type("application/cloudevents+json".into())
            .with_type(event.kind.type_name().into())
            .with_app_id("cartwright".into())
            .with_timestamp(u64::try_from(event.occurred_at.timestamp()).unwrap_or(0))
            .with_headers(headers);
        let channel = self.channel().await?;
        let broken =
            |e: lapin::Error| SinkError::transient(format!("RabbitMQ did not take the event: {e}"));
        let confirm = channel
            .basic_publish(
                self.exchange.as_str().into(),
                event.kind.type_name().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &payload,
                properties,
            )
            .await
            .map_err(broken)?
            .await
            .map_err(broken)?;
        match confirm {
            lapin::Confirmation::Ack(None) => Ok(()),
            lapin::Confirmation::Ack(Some(_)) => Err(SinkError::transient(format!(
                "no queue is bound to {} for {}",
                self.exchange,
                event.kind.type_name()
            ))),
            lapin::Confirmation::Nack(_) => {
                Err(SinkError::transient("the broker refused the event (nack)"))
            }
            lapin::Confirmation::NotRequested => Err(SinkError::transient(
                "the channel lost its publisher confirms",
            )),
        }
    }
}
