//! Carriers: live rates fetched before pricing and cached (see
//! [`services`](super::services)), labels bought by the money-path
//! protocol, tracking reports applied to shipments.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::actor::Actor;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event::{AfterSaleChange, EventKind};
use crate::id::{OrderId, ShipmentId};
use crate::order::{Effects, LabelCall, LabelStep, Order, TrackingUpdate};
use crate::shipping::{
    Carrier, RateRequest, ShippingInput, ShippingRate, ShippingRates, TrackingEvent, TrackingStatus,
};

/// Most rate requests the cache keeps, over every carrier.
const RATE_CACHE_ENTRIES: u64 = 10_000;

/// Most label calls one drive makes.
const MAX_LABEL_STEPS: usize = 16;

/// The shop's carriers and their rates.
pub(crate) struct Carriers {
    pub(crate) list: Vec<Arc<dyn Carrier>>,
    pub(crate) fallback: bool,
    cache: moka::sync::Cache<(usize, RateRequest), Arc<Vec<ShippingRate>>>,
}

impl Carriers {
    pub(crate) fn new(
        list: Vec<Arc<dyn Carrier>>,
        fallback: bool,
        ttl: std::time::Duration,
    ) -> Self {
        Self {
            list,
            fallback,
            cache: moka::sync::Cache::builder()
                .max_capacity(RATE_CACHE_ENTRIES)
                .time_to_live(ttl)
                .build(),
        }
    }

    fn named(&self, name: &str) -> Result<&Arc<dyn Carrier>> {
        self.list
            .iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| Error::invalid("carrier", format!("no carrier named {name:?}")))
    }
}

/// The shop's table rates plus every carrier's cached live rates, noting
/// the requests it lacks.
pub(crate) struct QuotedRates<'a> {
    tables: &'a dyn ShippingRates,
    carriers: Option<&'a Carriers>,
    origin: Option<&'a crate::customer::Address>,
    misses: Mutex<Vec<(usize, RateRequest)>>,
}

impl<'a> QuotedRates<'a> {
    pub(crate) fn new(
        tables: &'a dyn ShippingRates,
        carriers: Option<&'a Carriers>,
        origin: Option<&'a crate::customer::Address>,
    ) -> Self {
        Self {
            tables,
            carriers,
            origin,
            misses: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn take_misses(&self) -> Vec<(usize, RateRequest)> {
        std::mem::take(&mut *self.misses.lock())
    }
}

impl ShippingRates for QuotedRates<'_> {
    fn rates(&self, input: &ShippingInput<'_>) -> Result<Vec<ShippingRate>> {
        let mut out = self.tables.rates(input)?;
        let Some(carriers) = self.carriers else {
            return Ok(out);
        };
        let request = RateRequest::from_input(input, input.ship_from.or(self.origin));
        for i in 0..carriers.list.len() {
            let key = (i, request.clone());
            match carriers.cache.get(&key) {
                Some(rates) => {
                    // One code, one method: a carrier's code that another
                    // rate has would make the chosen method ambiguous.
                    if let Some(clash) = rates.iter().find(|r| out.iter().any(|o| o.code == r.code))
                    {
                        return Err(Error::invalid(
                            "carrier",
                            format!("rate code {:?} is offered twice", clash.code),
                        ));
                    }
                    out.extend(rates.iter().cloned());
                }
                None => self.misses.lock().push(key),
            }
        }
        Ok(out)
    }
}

/// `Err(ServiceUnavailable)` for a call that did not answer in time.
async fn bounded<T>(
    timeout: std::time::Duration,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(answer) => answer,
        Err(_) => Err(Error::ServiceUnavailable {
            service: "carrier",
            reason: format!("no answer within {} ms", timeout.as_millis()),
        }),
    }
}

impl Engine {
    /// Fetches `requests` from their carriers at once, each checked and
    /// cached.
    pub(crate) async fn fetch_rates(
        &self,
        carriers: &Carriers,
        requests: Vec<(usize, RateRequest)>,
    ) -> Result<()> {
        let timeout = self.inner.config.carrier_timeout;
        let calls = requests.into_iter().map(|(i, request)| async move {
            let carrier = carriers
                .list
                .get(i)
                .ok_or_else(|| Error::invalid("carrier", "unknown"))?;
            let started = std::time::Instant::now();
            let answer = bounded(timeout, carrier.rates(&request)).await;
            crate::telemetry::provider_call(
                "carrier_rates",
                if answer.is_ok() { "ok" } else { "error" },
                started.elapsed(),
            );
            let rates = answer?;
            request.check_answer(&rates)?;
            carriers.cache.insert((i, request), Arc::new(rates));
            Ok::<(), Error>(())
        });
        for result in futures_util::future::join_all(calls).await {
            result?;
        }
        Ok(())
    }

    /// Buys a shipping label for a shipment from `carrier`, by `method`
    /// (staff and the system): recorded on the shipment first, bought
    /// under its own idempotency key, then the label (tracking number,
    /// cost, URL) recorded and the shipment's carrier and tracking number
    /// set from it. Calling again while it is being bought, or once it is
    /// bought, changes nothing; after a refusal or a void it buys anew.
    /// A carrier that cannot be reached leaves the purchase recorded:
    /// [`Engine::recover`] finishes it.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] for an unknown order or
    /// shipment; [`Error::Invalid`] for an unknown carrier or an empty
    /// method; [`Error::IllegalTransition`] for a delivered shipment;
    /// [`Error::ServiceUnavailable`] when the carrier did not answer (the
    /// purchase stays recorded); the carrier's refusal as
    /// [`Error::Invalid`] (recorded on the label).
    #[tracing::instrument(skip_all, fields(order_id = %order_id, shipment_id = %shipment))]
    pub async fn purchase_label(
        &self,
        actor: &Actor,
        order_id: OrderId,
        shipment: ShipmentId,
        carrier: &str,
        method: &str,
    ) -> Result<Order> {
        actor.require(crate::actor::Permission::Orders)?;
        let carriers = self
            .inner
            .carriers
            .as_ref()
            .ok_or_else(|| Error::invalid("carrier", "the shop has no carrier"))?;
        let name = carriers.named(carrier)?.name().to_owned();
        let order = self.load_order(actor, order_id).await?;
        let now = self.now();
        let order = self
            .update_order(order, |o| {
                let live = o
                    .shipments()
                    .iter()
                    .find(|s| s.id == shipment)
                    .and_then(|s| s.label.as_ref())
                    .is_some_and(|l| {
                        matches!(
                            l.state,
                            crate::order::LabelState::Purchasing
                                | crate::order::LabelState::Purchased
                        )
                    });
                if live {
                    return Ok(None);
                }
                o.begin_label(shipment, &name, method, now)?;
                Ok(Some(Effects::default()))
            })
            .await?;
        let order = Box::pin(self.drive_labels(order)).await?;
        Ok(order.visible_to(actor))
    }

    /// Voids a shipment's bought label not yet delivered (staff and the
    /// system), by the same protocol.
    ///
    /// # Errors
    /// As [`Engine::purchase_label`]; [`Error::IllegalTransition`] unless
    /// the label is bought and the parcel not delivered.
    #[tracing::instrument(skip_all, fields(order_id = %order_id, shipment_id = %shipment))]
    pub async fn void_label(
        &self,
        actor: &Actor,
        order_id: OrderId,
        shipment: ShipmentId,
    ) -> Result<Order> {
        actor.require(crate::actor::Permission::Orders)?;
        let order = self.load_order(actor, order_id).await?;
        let order = self
            .update_order(order, |o| {
                let voiding = o
                    .shipments()
                    .iter()
                    .find(|s| s.id == shipment)
                    .and_then(|s| s.label.as_ref())
                    .is_some_and(|l| l.state == crate::order::LabelState::Voiding);
                if voiding {
                    return Ok(None);
                }
                o.begin_void_label(shipment)?;
                Ok(Some(Effects::default()))
            })
            .await?;
        let order = Box::pin(self.drive_labels(order)).await?;
        Ok(order.visible_to(actor))
    }

    /// Applies a carrier's report on a parcel (the carrier, as
    /// [`Actor::Provider`], or the system): kept on the shipment; a
    /// delivery records the shipment delivered
    /// ([`EventKind::ShipmentDelivered`]); other reports emit
    /// [`AfterSaleChange::ShipmentTracked`]. The same report twice
    /// changes nothing. Verify the webhook first
    /// ([`verify_tracking`](crate::shipping::verify_tracking)).
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone else, and for a carrier reporting on
    /// another carrier's label; [`Error::Invalid`] for a
    /// reference that is not `<order>:<shipment>` or a detail over 500
    /// characters; [`Error::NotFound`] for an order or shipment that does
    /// not exist; [`Error::Storage`].
    #[tracing::instrument(skip_all)]
    pub async fn apply_tracking_event(
        &self,
        actor: &Actor,
        event: &TrackingEvent,
    ) -> Result<Order> {
        if !matches!(actor, Actor::Provider(_) | Actor::System) {
            return Err(Error::Forbidden);
        }
        let (order_id, shipment) = event.target()?;
        let order = self.inner.store.order(order_id).await?;
        // A carrier reports on its own labels only.
        if let Actor::Provider(name) = actor
            && order
                .shipments()
                .iter()
                .find(|s| s.id == shipment)
                .and_then(|s| s.label.as_ref())
                .is_some_and(|l| &l.carrier != name)
        {
            return Err(Error::Forbidden);
        }
        let update = TrackingUpdate {
            status: event.status,
            detail: event.detail.clone(),
            at: event.at,
        };
        let now = self.now();
        self.update_order(order, |o| {
            if o.shipments()
                .iter()
                .find(|s| s.id == shipment)
                .is_some_and(|s| s.tracking.contains(&update))
            {
                return Ok(None);
            }
            let delivered = o.track(shipment, update.clone())?;
            let event = if delivered {
                o.deliver(shipment, now, actor)?;
                EventKind::ShipmentDelivered {
                    order_id,
                    shipment_id: shipment,
                }
            } else {
                EventKind::AfterSale {
                    order_id,
                    change: AfterSaleChange::ShipmentTracked {
                        shipment_id: shipment,
                        status: match update.status {
                            TrackingStatus::InTransit => "in_transit",
                            TrackingStatus::Delivered => "delivered",
                            _ => "exception",
                        }
                        .into(),
                    },
                }
            };
            Ok(Some(Effects {
                events: vec![event],
                ..Effects::default()
            }))
        })
        .await
    }

    /// Sends the calls `order`'s labels are waiting for, recording each
    /// answer; a carrier that cannot be reached leaves the call recorded
    /// for the next drive or recovery.
    ///
    /// # Errors
    /// [`Error::ServiceUnavailable`] when a carrier did not answer; the
    /// carrier's refusal as [`Error::Invalid`] (recorded first).
    pub(crate) async fn drive_labels(&self, mut order: Order) -> Result<Order> {
        let Some(carriers) = &self.inner.carriers else {
            return Ok(order);
        };
        let timeout = self.inner.config.carrier_timeout;
        for _ in 0..MAX_LABEL_STEPS {
            let Some(step) = order.label_step() else {
                return Ok(order);
            };
            let carrier = carriers.named(&step.carrier)?;
            let answer = match &step.call {
                LabelCall::Purchase(request) => bounded(timeout, carrier.purchase_label(request))
                    .await
                    .map(Some),
                LabelCall::Void { key, label } => bounded(timeout, carrier.void_label(key, label))
                    .await
                    .map(|()| None),
            };
            let refusal = match answer {
                Err(e @ Error::ServiceUnavailable { .. }) => {
                    tracing::warn!(order_id = %order.id(), error = %e, "label call left recorded; a retry or recovery sends it");
                    return Err(e);
                }
                Err(e) => Some(e),
                Ok(label) => {
                    if let Some(l) = &label {
                        l.cost.entered()?;
                    }
                    let id = order.id();
                    let events = label
                        .as_ref()
                        .map(|l| EventKind::AfterSale {
                            order_id: id,
                            change: AfterSaleChange::LabelPurchased {
                                shipment_id: step.shipment,
                                tracking_number: l.tracking_number.clone(),
                            },
                        })
                        .into_iter()
                        .collect::<Vec<_>>();
                    order = self.record_label(order, &step, Ok(label), events).await?;
                    None
                }
            };
            if let Some(e) = refusal {
                crate::telemetry::compensation("label_refused");
                self.record_label(order, &step, Err(e.to_string()), Vec::new())
                    .await?;
                return Err(e);
            }
        }
        Ok(order)
    }

    async fn record_label(
        &self,
        order: Order,
        step: &LabelStep,
        answer: std::result::Result<Option<crate::shipping::Label>, String>,
        events: Vec<EventKind>,
    ) -> Result<Order> {
        self.update_order(order, |o| {
            if o.label_step().as_ref() != Some(step) {
                return Ok(None);
            }
            o.label_answered(step, answer.clone())?;
            Ok(Some(Effects {
                events: events.clone(),
                ..Effects::default()
            }))
        })
        .await
    }
}
