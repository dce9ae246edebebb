//! Shipping labels bought from a carrier for a shipment, and what the
//! carrier reports on the parcel since.
//!
//! A purchase (and a void) is recorded on the shipment first, under the
//! order's version check, with its own idempotency key
//! (`<order>:<shipment>:label:<n>`), then sent, then its answer recorded —
//! the money-path protocol — so a retry, a crash between the steps or two
//! engines buy one label, and recovery finishes a purchase whose answer
//! never came. A refused purchase may be tried again (a new `n`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Order;
use crate::error::{Error, Result};
use crate::id::ShipmentId;
use crate::shipping::{Label, LabelRequest, TrackingStatus};

/// Most tracking updates one shipment keeps (the oldest go first).
pub const MAX_TRACKING_UPDATES: usize = 100;

/// Where a label stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LabelState {
    /// Recorded; being bought.
    Purchasing,
    /// Bought.
    Purchased,
    /// Being voided.
    Voiding,
    /// Voided at the carrier.
    Voided,
    /// The carrier refused to sell it (see [`ShipmentLabel::error`]).
    Refused,
}

/// A shipment's label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShipmentLabel {
    /// The carrier's name.
    pub carrier: String,
    /// The method bought (a rate's code).
    pub method: String,
    /// The purchase's idempotency key.
    pub key: String,
    /// Which try this is (1 for the first).
    pub attempt: u32,
    /// Where it stands.
    pub state: LabelState,
    /// The label, once bought: id, tracking number, cost, URL.
    pub label: Option<Label>,
    /// The carrier's refusal (the engine's words), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// When it was asked for.
    pub at: DateTime<Utc>,
}

/// A carrier's report on a parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackingUpdate {
    /// Where it is.
    pub status: TrackingStatus,
    /// The carrier's words.
    pub detail: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The next call a label needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabelStep {
    /// The shipment.
    pub shipment: ShipmentId,
    /// The carrier to call.
    pub carrier: String,
    /// What to send.
    pub call: LabelCall,
}

/// A call to a carrier about a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LabelCall {
    /// Buy it.
    Purchase(Box<LabelRequest>),
    /// Void it.
    Void {
        /// The void's idempotency key.
        key: String,
        /// The carrier's label id.
        label: String,
    },
}

impl Order {
    /// Records that a label is to be bought for `shipment` from `carrier`
    /// by `method`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a shipment not in the order;
    /// [`Error::IllegalTransition`] when it has a label being bought,
    /// bought or being voided, or was delivered; [`Error::Invalid`] for an
    /// empty or over-long method.
    pub(crate) fn begin_label(
        &mut self,
        shipment: ShipmentId,
        carrier: &str,
        method: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let method = crate::validate::required_text(
            "label method",
            method,
            crate::cart::MAX_METHOD_CODE_LEN,
        )?;
        let order = self.id;
        let s = self.shipment_mut(shipment)?;
        if s.delivered_at.is_some() {
            return Err(Error::IllegalTransition {
                entity: "label",
                from: "delivered".into(),
                to: "Purchasing".into(),
            });
        }
        let attempt = match &s.label {
            None => 1,
            Some(l) if matches!(l.state, LabelState::Refused | LabelState::Voided) => {
                l.attempt.saturating_add(1)
            }
            Some(l) => {
                return Err(Error::IllegalTransition {
                    entity: "label",
                    from: format!("{:?}", l.state),
                    to: "Purchasing".into(),
                });
            }
        };
        s.label = Some(ShipmentLabel {
            carrier: carrier.to_owned(),
            method,
            key: format!("{order}:{shipment}:label:{attempt}"),
            attempt,
            state: LabelState::Purchasing,
            label: None,
            error: String::new(),
            at,
        });
        Ok(())
    }

    /// Records that `shipment`'s label is to be voided.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::IllegalTransition`] unless its label
    /// is bought and the parcel not yet delivered.
    pub(crate) fn begin_void_label(&mut self, shipment: ShipmentId) -> Result<()> {
        let s = self.shipment_mut(shipment)?;
        let delivered = s.delivered_at.is_some();
        match &mut s.label {
            Some(l) if l.state == LabelState::Purchased && !delivered => {
                l.state = LabelState::Voiding;
                Ok(())
            }
            other => Err(Error::IllegalTransition {
                entity: "label",
                from: other
                    .as_ref()
                    .map_or("none".into(), |l| format!("{:?}", l.state)),
                to: "Voiding".into(),
            }),
        }
    }

    /// The next call a label of this order needs, if any.
    pub(crate) fn label_step(&self) -> Option<LabelStep> {
        self.shipments.iter().find_map(|s| {
            let l = s.label.as_ref()?;
            let call = match l.state {
                LabelState::Purchasing => LabelCall::Purchase(Box::new(LabelRequest {
                    key: l.key.clone(),
                    reference: format!("{}:{}", self.id, s.id),
                    method: l.method.clone(),
                    weight_grams: s
                        .items
                        .iter()
                        .filter_map(|i| {
                            let line = self.line(i.line_id).ok()?;
                            Some(
                                line.weight_grams / u64::from(line.quantity.max(1))
                                    * u64::from(i.quantity),
                            )
                        })
                        .sum(),
                    origin: None,
                    destination: self.shipping_address.clone(),
                })),
                LabelState::Voiding => LabelCall::Void {
                    key: format!("{}:void", l.key),
                    label: l.label.as_ref().map(|x| x.id.clone()).unwrap_or_default(),
                },
                _ => return None,
            };
            Some(LabelStep {
                shipment: s.id,
                carrier: l.carrier.clone(),
                call,
            })
        })
    }

    /// Records a carrier's answer to `step`: the label bought, or a
    /// refusal.
    pub(crate) fn label_answered(
        &mut self,
        step: &LabelStep,
        answer: std::result::Result<Option<Label>, String>,
    ) -> Result<()> {
        let s = self.shipment_mut(step.shipment)?;
        let Some(l) = s.label.as_mut() else {
            return Ok(());
        };
        match (&step.call, l.state, answer) {
            (LabelCall::Purchase(_), LabelState::Purchasing, Ok(Some(label))) => {
                s.carrier = l.carrier.clone();
                s.tracking_number = label.tracking_number.clone();
                l.label = Some(label);
                l.state = LabelState::Purchased;
            }
            (LabelCall::Purchase(_), LabelState::Purchasing, Err(e)) => {
                l.state = LabelState::Refused;
                l.error = e;
            }
            (LabelCall::Void { .. }, LabelState::Voiding, Ok(_)) => {
                l.state = LabelState::Voided;
                s.tracking_number = String::new();
            }
            (LabelCall::Void { .. }, LabelState::Voiding, Err(e)) => {
                // The carrier keeps it: it stays bought.
                l.state = LabelState::Purchased;
                l.error = e;
            }
            _ => {}
        }
        Ok(())
    }

    /// Records a carrier's report on `shipment`'s parcel; `true` when it
    /// says the parcel was delivered and the shipment was not yet (the
    /// caller then records the delivery). A report older than the last
    /// one kept is ignored.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a shipment not in the order.
    pub(crate) fn track(&mut self, shipment: ShipmentId, update: TrackingUpdate) -> Result<bool> {
        let s = self.shipment_mut(shipment)?;
        if s.tracking.iter().any(|u| u == &update) {
            return Ok(false);
        }
        let delivered = update.status == TrackingStatus::Delivered && s.delivered_at.is_none();
        s.tracking.push(update);
        s.tracking.sort_by_key(|u| u.at);
        if s.tracking.len() > MAX_TRACKING_UPDATES {
            s.tracking.remove(0);
        }
        Ok(delivered)
    }

    fn shipment_mut(&mut self, id: ShipmentId) -> Result<&mut super::Shipment> {
        self.shipments
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::not_found("shipment", id))
    }
}
