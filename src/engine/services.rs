//! Pricing with services: a tax service's quotes and carriers' live rates
//! are fetched before pricing and cached, so pricing stays pure.
//!
//! Pricing is run with a tax calculator and a rate source that only look
//! up the engine's caches ([`tax`](super::tax), [`carriers`](super::carriers));
//! a request they lack is noted, and that pass's result — whatever it was —
//! is thrown away. The engine then fetches every noted request at once
//! (each bounded by its timeout), caches the answers and prices again. A
//! service that cannot be reached in time fails the pricing with
//! [`Error::ServiceUnavailable`], or, where the shop chose a fallback,
//! prices without it (tax from the fallback tables; only the table rates
//! for shipping) and records why.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::shipping::ShippingRates;
use crate::tax::{TaxCalculator, TaxQuoteRequest};

/// Most pricing passes waiting for quotes and rates (a gross-amount
/// promotion may change the discounted amounts once the undiscounted
/// lines' tax is known; the rates are known after the first).
const MAX_PASSES: usize = 5;

/// What a computation that needed services gives back besides its value.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceContext {
    /// The last request tax was asked for (with a tax service only).
    pub(crate) tax_request: Option<TaxQuoteRequest>,
    /// Why the tax fallback was used instead of the service, if it was.
    pub(crate) tax_fallback: Option<String>,
    /// Why carriers' rates were left out, if they were.
    pub(crate) shipping_fallback: Option<String>,
}

impl Engine {
    /// Runs `compute` with the engine's tax and shipping rates, services'
    /// answers fetched and cached as needed (see the module).
    ///
    /// # Errors
    /// `compute`'s; [`Error::ServiceUnavailable`] when a service cannot be
    /// reached in time and no fallback is set; a service's refusal or a
    /// malformed answer.
    pub(crate) async fn with_services<T>(
        &self,
        compute: impl Fn(&dyn TaxCalculator, &dyn ShippingRates) -> Result<T>,
    ) -> Result<(T, ServiceContext)> {
        let mut ctx = ServiceContext::default();
        for _ in 0..MAX_PASSES {
            let quoted_tax = self.inner.tax_service.as_ref().map(|service| {
                let tables = match ctx.tax_fallback {
                    Some(_) => service.fallback.as_deref(),
                    None => None,
                };
                crate::engine::tax::Quoted::new(service, tables)
            });
            let tax: &dyn TaxCalculator = match &quoted_tax {
                Some(q) => q,
                None => self.inner.tax.as_ref(),
            };
            let rates = crate::engine::carriers::QuotedRates::new(
                self.inner.shipping.as_ref(),
                match ctx.shipping_fallback {
                    Some(_) => None,
                    None => self.inner.carriers.as_ref(),
                },
                self.inner.ship_from.as_ref(),
            );
            let value = compute(tax, &rates);
            let tax_misses = quoted_tax
                .as_ref()
                .map(|q| std::mem::take(&mut *q.misses.lock()))
                .unwrap_or_default();
            let rate_misses = rates.take_misses();
            if tax_misses.is_empty() && rate_misses.is_empty() {
                ctx.tax_request = quoted_tax
                    .and_then(|q| q.last.lock().take())
                    .map(std::sync::Arc::unwrap_or_clone);
                return Ok((value?, ctx));
            }
            if let Some(service) = &self.inner.tax_service
                && !tax_misses.is_empty()
            {
                match self.fetch_quotes(service, tax_misses).await {
                    Ok(()) => {}
                    Err(Error::ServiceUnavailable { reason, .. }) if service.fallback.is_some() => {
                        crate::telemetry::compensation("tax_fallback");
                        tracing::warn!(%reason, "tax service unavailable: pricing with the fallback tables");
                        ctx.tax_fallback = Some(reason);
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(carriers) = &self.inner.carriers
                && !rate_misses.is_empty()
            {
                match self.fetch_rates(carriers, rate_misses).await {
                    Ok(()) => {}
                    Err(Error::ServiceUnavailable { reason, .. }) if carriers.fallback => {
                        crate::telemetry::compensation("carrier_fallback");
                        tracing::warn!(%reason, "carrier unavailable: pricing with the table rates only");
                        ctx.shipping_fallback = Some(reason);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(Error::ServiceUnavailable {
            service: "tax provider or carrier",
            reason: "quotes did not settle".into(),
        })
    }
}
