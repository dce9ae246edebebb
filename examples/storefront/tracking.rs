//! The carrier's side of shipping: its signed tracking webhook, and the
//! shipments as the order page shows them.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cartwright::prelude::*;
use minijinja::context;

use crate::shop::App;

/// The carrier's tracking webhook: checked against the shared secret
/// before the body is read, then applied as the carrier.
pub async fn carrier_webhook(
    State(app): State<App>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let signature = headers
        .get("cartwright-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Ok(secret) =
        cartwright::webhook::WebhookSecret::new(String::from_utf8_lossy(&app.webhook_secret))
    else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(event) = cartwright::shipping::verify_tracking(
        &secret,
        signature,
        &body,
        chrono::Utc::now(),
        chrono::Duration::minutes(5),
    ) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match app
        .engine
        .apply_tracking_event(&Actor::Provider("test".into()), &event)
        .await
    {
        // Not a parcel of this shop's: acknowledge, so it is not resent.
        Ok(_) | Err(Error::NotFound { .. }) => StatusCode::OK.into_response(),
        Err(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The order's shipments for its page: carrier, tracking number and where
/// the parcel is (labels are for staff, in the back office).
pub fn shipments(order: &cartwright::order::Order) -> Vec<minijinja::Value> {
    order
        .shipments()
        .iter()
        .map(|s| {
            let status = match (s.delivered_at, s.tracking.last()) {
                (Some(_), _) => "Delivered".to_owned(),
                (None, Some(t)) => format!("{:?}", t.status),
                (None, None) => "Shipped".to_owned(),
            };
            context! {
                id => s.id.to_string(),
                carrier => s.carrier.clone(),
                tracking => s.tracking_number.clone(),
                status => status,
            }
        })
        .collect()
}
