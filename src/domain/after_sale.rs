//! The states after-sale work reports in events as well as on orders: kept
//! apart from both so that the event module does not depend on the order
//! module (which records events).
//!
//! Does not know: orders or events; plain enums.

use serde::{Deserialize, Serialize};

/// The state of a return request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReturnCaseState {
    /// Asked for; waiting for staff.
    Requested,
    /// Staff said yes; waiting for the units.
    Approved,
    /// Staff said no (see the history for why).
    Rejected,
    /// The units arrived; waiting for the refund.
    Received,
    /// Refunded (the request names the return that holds its money).
    Refunded,
    /// Called off by the buyer or staff before the units arrived.
    Canceled,
}

impl ReturnCaseState {
    /// Whether the case still holds its units (requested, approved or
    /// received).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Requested | Self::Approved | Self::Received)
    }
}

/// How a claim is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClaimResolution {
    /// Refund the units' frozen shares.
    Refund,
    /// Send the same units again, at no charge.
    Replace,
}
