//! Signed webhooks: how a gateway proves that an event is its own, and how
//! the embedding program checks it before it calls
//! [`Engine::apply_provider_event`](crate::Engine::apply_provider_event).
//!
//! The scheme is the common one (Stripe's, among others): the gateway sends
//! a header `t=<unix seconds>,v1=<hex>` where the hex is HMAC-SHA256, keyed
//! by a secret shared with the shop, of `"<t>.<raw body>"`. [`verify`]
//! recomputes it over the raw bytes received (never over re-serialized
//! JSON), compares in constant time, and refuses a timestamp outside the
//! tolerance, so a captured request cannot be replayed later. Within the
//! tolerance a replay is harmless: the engine applies each event once.
//!
//! Several `v1=` entries are accepted (a gateway rolling its secret signs
//! with both). A gateway with another scheme needs its own check; the
//! constant-time comparison and the tolerance are what to keep.
//!
//! Does not know: HTTP, or any gateway's event format.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// Longest signature header accepted, in bytes.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 1_024;

/// How far a signed timestamp may be from now by default: five minutes.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Result<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret)
        .map_err(|_| Error::invalid("webhook secret", "cannot key an HMAC"))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The signature header for `body` sent at `timestamp` (unix seconds),
/// keyed by `secret`: what a gateway (or a test) sends.
///
/// # Errors
/// [`Error::Invalid`] for an empty secret.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> Result<String> {
    if secret.is_empty() {
        return Err(Error::invalid("webhook secret", "must not be empty"));
    }
    let tag = mac(secret, timestamp, body)?.finalize().into_bytes();
    Ok(format!("t={timestamp},v1={}", hex::encode(tag)))
}

/// Checks that `header` signs `body` with `secret`, at a time within
/// `tolerance` of `now`. Call it with the raw request body, before parsing.
///
/// # Errors
/// [`Error::Invalid`] (field `webhook signature`) when the header is
/// missing parts, too long, malformed, too old or too far in the future, or
/// when no signature matches. The reason never echoes the secret or the
/// expected signature.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: chrono::Duration,
) -> Result<()> {
    let refuse = |reason: &str| Err(Error::invalid("webhook signature", reason));
    if secret.is_empty() {
        return Err(Error::invalid("webhook secret", "must not be empty"));
    }
    if header.len() > MAX_SIGNATURE_HEADER_LEN {
        return refuse("the header is too long");
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => {
                if let Ok(bytes) = hex::decode(s) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return refuse("no timestamp");
    };
    if signatures.is_empty() {
        return refuse("no v1 signature");
    }
    let Some(sent) = DateTime::<Utc>::from_timestamp(timestamp, 0) else {
        return refuse("the timestamp is out of range");
    };
    let skew = (now - sent).abs();
    if skew > tolerance {
        return refuse("the timestamp is outside the tolerance (a replay, or a clock far off)");
    }
    let expected = mac(secret, timestamp, body)?;
    // `verify_slice` compares in constant time.
    if signatures
        .iter()
        .any(|s| expected.clone().verify_slice(s).is_ok())
    {
        Ok(())
    } else {
        refuse("no signature matches")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn tolerance() -> chrono::Duration {
        chrono::Duration::seconds(DEFAULT_TOLERANCE_SECS)
    }

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() -> Result<()> {
        let t = now().timestamp();
        let header = sign(b"whsec", t, b"{\"id\":\"evt_1\"}")?;
        verify(b"whsec", &header, b"{\"id\":\"evt_1\"}", now(), tolerance())?;
        for (secret, body) in [
            (&b"other"[..], &b"{\"id\":\"evt_1\"}"[..]),
            (b"whsec", b"{\"id\":\"evt_2\"}"),
            (b"whsec", b"{\"id\":\"evt_1\"} "),
        ] {
            assert!(verify(secret, &header, body, now(), tolerance()).is_err());
        }
        Ok(())
    }

    #[test]
    fn old_future_and_malformed_headers_are_refused() -> Result<()> {
        let body = b"{}";
        let old = sign(b"k", now().timestamp() - 301, body)?;
        let future = sign(b"k", now().timestamp() + 301, body)?;
        let rotated = format!(
            "{},v1=00{}",
            sign(b"k", now().timestamp(), body)?,
            "ab".repeat(31)
        );
        assert!(verify(b"k", &old, body, now(), tolerance()).is_err());
        assert!(verify(b"k", &future, body, now(), tolerance()).is_err());
        verify(b"k", &rotated, body, now(), tolerance())?;
        for header in [
            String::new(),
            "t=abc,v1=00".to_owned(),
            format!("t={}", now().timestamp()),
            format!("t={},v1=zz", now().timestamp()),
            format!("t={},v1={}", now().timestamp(), "0".repeat(2_000)),
            format!("t={},v1=00", i64::MAX),
        ] {
            assert!(
                verify(b"k", &header, body, now(), tolerance()).is_err(),
                "{header}"
            );
        }
        assert!(sign(b"", 0, body).is_err());
        Ok(())
    }
}
