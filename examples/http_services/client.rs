//! What both templates share: a JSON client for one service that sends the
//! API key, the engine's idempotency key where there is one, and maps
//! the answer's status — 5xx, connection failures and timeouts to
//! `Error::ServiceUnavailable` (the engine retries or falls back), 4xx to a
//! refusal in the adapter's words (never the service's text). Answers are
//! read up to `MAX_ANSWER_BYTES`.
#![allow(dead_code)]

use std::time::Duration;

use cartwright::error::{Error, Result};

/// Largest answer read from a service.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// A service reached over HTTP with JSON.
#[derive(Debug, Clone)]
pub struct JsonClient {
    service: &'static str,
    base_url: String,
    api_key: String,
    client: reqwest::Client,
}

impl JsonClient {
    /// `service` ("tax provider", "carrier") at `base_url`, called with
    /// `api_key`, each call bounded by `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        service: &'static str,
        base_url: &str,
        api_key: &str,
        timeout: Duration,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| unavailable(service, format!("client: {e}")))?;
        Ok(Self {
            service,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            client,
        })
    }

    /// Posts `body` to `path` (with `key` as `Idempotency-Key`) and reads
    /// the answer as `T`.
    ///
    /// # Errors
    /// As the module says; an answer too long or not a `T` is a refusal.
    pub async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: Option<&str>,
        body: serde_json::Value,
    ) -> Result<T> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| unavailable(self.service, e))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(unavailable(self.service, format!("it answered {status}")));
        }
        if status.is_client_error() {
            return Err(Error::invalid(
                self.service,
                format!("the service refused the request ({status})"),
            ));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(self.service, e))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Error::invalid(self.service, "an answer too long"));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            bytes.extend_from_slice(b"null");
        }
        serde_json::from_slice(&bytes)
            .map_err(|_| Error::invalid(self.service, "an answer of the wrong shape"))
    }
}

fn unavailable(service: &'static str, why: impl std::fmt::Display) -> Error {
    Error::ServiceUnavailable {
        service,
        reason: why.to_string(),
    }
}
