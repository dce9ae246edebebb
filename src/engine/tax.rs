//! Tax from a service: quotes fetched before pricing and cached, so
//! pricing stays pure; the fallback when the service is down.
//!
//! Pricing asks its [`TaxCalculator`] for tax (once for the undiscounted
//! lines when a promotion needs gross amounts, once for the discounted
//! lines and shipping). With a [`TaxProvider`], that calculator is a lookup
//! in the engine's quote cache ([`Quoted`]): an answer cached for exactly
//! that request is used; a request not cached is noted (and answered with
//! zero tax for this pass). The engine then fetches every noted request
//! from the provider at once — bounded by
//! [`EngineConfig::tax_timeout`](crate::EngineConfig::tax_timeout) —
//! checks and caches the answers, and prices again. An unchanged cart
//! therefore prices with no call; a change of address, lines, amounts or
//! customer makes a new request and one call.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::money::Money;
use crate::order::{Order, TaxStep};
use crate::tax::{
    TaxAddress, TaxBreakdown, TaxCalculator, TaxCustomer, TaxInput, TaxProvider, TaxQuoteRequest,
};

/// Most quotes the cache keeps.
const QUOTE_CACHE_ENTRIES: u64 = 10_000;

/// A quote: the request and the service's answer.
struct CachedQuote {
    request: Arc<TaxQuoteRequest>,
    answer: TaxBreakdown,
}

/// Quotes by the digest of their request (checked against the request
/// itself on every hit, so a collision is a miss, never a wrong tax).
type QuoteCache = moka::sync::Cache<u64, Arc<CachedQuote>>;

/// The tax service, its fallback and its quotes.
pub(crate) struct TaxService {
    pub(crate) provider: Arc<dyn TaxProvider>,
    pub(crate) fallback: Option<Arc<dyn TaxCalculator>>,
    cache: QuoteCache,
    hasher: foldhash::fast::RandomState,
}

impl TaxService {
    pub(crate) fn new(
        provider: Arc<dyn TaxProvider>,
        fallback: Option<Arc<dyn TaxCalculator>>,
        ttl: std::time::Duration,
    ) -> Self {
        Self {
            provider,
            fallback,
            cache: moka::sync::Cache::builder()
                .max_capacity(QUOTE_CACHE_ENTRIES)
                .time_to_live(ttl)
                .build(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The digest of a calculator's input, read in place (no copy).
    fn digest_input(&self, input: &TaxInput<'_>) -> u64 {
        let place = Place::of_address;
        let none = TaxCustomer::default();
        self.digest(
            input.currency,
            input
                .lines
                .iter()
                .map(|l| (l.line_id, l.variant_id, l.tax_class, l.quantity, l.amount)),
            input.shipping,
            [input.address.map(place), input.ship_from.map(place)],
            input.customer.unwrap_or(&none),
            input.channel,
        )
    }

    /// The digest of a request: the same as its input's.
    fn digest_request(&self, r: &TaxQuoteRequest) -> u64 {
        let place = Place::of_tax;
        self.digest(
            r.currency,
            r.lines.iter().map(|l| {
                (
                    l.line_id,
                    l.variant_id,
                    l.tax_code.as_str(),
                    l.quantity,
                    l.amount,
                )
            }),
            r.shipping,
            [
                r.ship_to.as_ref().map(place),
                r.ship_from.as_ref().map(place),
            ],
            &r.customer,
            r.channel,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn digest<'a>(
        &self,
        currency: crate::money::Currency,
        lines: impl Iterator<Item = (crate::id::LineId, crate::id::VariantId, &'a str, u32, Money)>,
        shipping: Option<Money>,
        places: [Option<Place<'_>>; 2],
        customer: &TaxCustomer,
        channel: Option<crate::id::ChannelId>,
    ) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = self.hasher.build_hasher();
        currency.hash(&mut h);
        for line in lines {
            line.hash(&mut h);
        }
        h.write_u8(0xff);
        shipping.hash(&mut h);
        places.hash(&mut h);
        customer.hash(&mut h);
        channel.hash(&mut h);
        h.finish()
    }
}

/// An address's taxing facts, borrowed.
#[derive(Hash)]
struct Place<'a>(
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    crate::customer::Country,
);

impl Place<'_> {
    fn of_address(a: &crate::customer::Address) -> Place<'_> {
        Place(
            &a.line1,
            &a.line2,
            &a.city,
            &a.region,
            &a.postal_code,
            a.country,
        )
    }

    fn of_tax(a: &TaxAddress) -> Place<'_> {
        Place(
            &a.line1,
            &a.line2,
            &a.city,
            &a.region,
            &a.postal_code,
            a.country,
        )
    }
}

/// Whether `request` is exactly what `input` asks.
fn same_request(request: &TaxQuoteRequest, input: &TaxInput<'_>) -> bool {
    let same_place = |t: Option<&TaxAddress>, a: Option<&crate::customer::Address>| match (t, a) {
        (None, None) => true,
        (Some(t), Some(a)) => {
            t.line1 == a.line1
                && t.line2 == a.line2
                && t.city == a.city
                && t.region == a.region
                && t.postal_code == a.postal_code
                && t.country == a.country
        }
        _ => false,
    };
    let none = TaxCustomer::default();
    request.currency == input.currency
        && request.shipping == input.shipping
        && request.channel == input.channel
        && request.customer == *input.customer.unwrap_or(&none)
        && same_place(request.ship_to.as_ref(), input.address)
        && same_place(request.ship_from.as_ref(), input.ship_from)
        && request.lines.len() == input.lines.len()
        && request.lines.iter().zip(&input.lines).all(|(r, l)| {
            r.line_id == l.line_id
                && r.variant_id == l.variant_id
                && r.tax_code == l.tax_class
                && r.quantity == l.quantity
                && r.amount == l.amount
        })
}

/// A calculator answering from the quote cache, noting what it lacks; it
/// also remembers the last request it was asked (the discounted lines and
/// shipping: what a placed order commits).
pub(crate) struct Quoted<'a> {
    service: &'a TaxService,
    /// Answers instead of the cache (the fallback), when set.
    tables: Option<&'a dyn TaxCalculator>,
    pub(crate) misses: Mutex<Vec<TaxQuoteRequest>>,
    pub(crate) last: Mutex<Option<Arc<TaxQuoteRequest>>>,
}

impl<'a> Quoted<'a> {
    pub(crate) fn new(service: &'a TaxService, tables: Option<&'a dyn TaxCalculator>) -> Self {
        Self {
            service,
            tables,
            misses: Mutex::new(Vec::new()),
            last: Mutex::new(None),
        }
    }
}

impl TaxCalculator for Quoted<'_> {
    fn tax(&self, input: &TaxInput<'_>) -> Result<TaxBreakdown> {
        if let Some(tables) = self.tables {
            *self.last.lock() = Some(Arc::new(TaxQuoteRequest::from_input(input)));
            return tables.tax(input);
        }
        let digest = self.service.digest_input(input);
        if let Some(hit) = self.service.cache.get(&digest)
            && same_request(&hit.request, input)
        {
            *self.last.lock() = Some(hit.request.clone());
            return Ok(hit.answer.clone());
        }
        let request = TaxQuoteRequest::from_input(input);
        self.misses.lock().push(request.clone());
        *self.last.lock() = Some(Arc::new(request));
        let zero = Money::zero(input.currency);
        Ok(TaxBreakdown::new(vec![zero; input.lines.len()], zero))
    }
}

impl Engine {
    /// Who buys, as tax sees them: the customer's groups, tax id and
    /// exemption (none for a guest).
    ///
    /// # Errors
    /// [`Error::Storage`]; [`Error::NotFound`] for a customer gone.
    pub(crate) async fn tax_customer(
        &self,
        customer: Option<crate::id::CustomerId>,
    ) -> Result<crate::tax::TaxCustomer> {
        let Some(id) = customer else {
            return Ok(crate::tax::TaxCustomer::default());
        };
        let c = self.inner.store.customer(id).await?;
        Ok(crate::tax::TaxCustomer::of(&c))
    }

    /// Fetches `requests` from the provider at once, each checked and
    /// cached.
    pub(crate) async fn fetch_quotes(
        &self,
        service: &TaxService,
        requests: Vec<TaxQuoteRequest>,
    ) -> Result<()> {
        let timeout = self.inner.config.tax_timeout;
        let calls = requests.into_iter().map(|request| async move {
            let started = std::time::Instant::now();
            let answer = tokio::time::timeout(timeout, service.provider.quote(&request)).await;
            let answer = match answer {
                Ok(a) => a,
                Err(_) => Err(Error::ServiceUnavailable {
                    service: "tax provider",
                    reason: format!("no answer within {} ms", timeout.as_millis()),
                }),
            };
            crate::telemetry::provider_call(
                "tax_quote",
                if answer.is_ok() { "ok" } else { "error" },
                started.elapsed(),
            );
            let answer = answer?;
            request.check_answer(&answer)?;
            let digest = service.digest_request(&request);
            service.cache.insert(
                digest,
                Arc::new(CachedQuote {
                    request: Arc::new(request),
                    answer,
                }),
            );
            Ok::<(), Error>(())
        });
        for result in futures_util::future::join_all(calls).await {
            result?;
        }
        Ok(())
    }
}

/// Most tax calls one drive makes (a commit, then adjustments).
const MAX_TAX_STEPS: usize = 64;

impl Engine {
    /// Sends the calls `order`'s tax document is waiting for — commit,
    /// adjustments, void — each under its own key, recording each answer
    /// (see [`TaxDocument`](crate::order::TaxDocument)). A service that
    /// cannot be reached leaves the call pending for the next drive or
    /// recovery; a refusal is recorded. Never fails: the order is what
    /// the store holds after the last recorded answer.
    pub(crate) async fn drive_tax(&self, mut order: Order) -> Order {
        let Some(service) = &self.inner.tax_service else {
            return order;
        };
        let timeout = self.inner.config.tax_timeout;
        for _ in 0..MAX_TAX_STEPS {
            let Some(step) = order.tax_step() else {
                return order;
            };
            let started = std::time::Instant::now();
            let call = async {
                match &step {
                    TaxStep::Commit(request) => service
                        .provider
                        .commit(request)
                        .await
                        .map(|c| Some(c.reference)),
                    TaxStep::Adjust(request) => {
                        service.provider.adjust(request).await.map(|()| None)
                    }
                    TaxStep::Void { key, reference } => {
                        service.provider.void(key, reference).await.map(|()| None)
                    }
                }
            };
            let answer = match tokio::time::timeout(timeout, call).await {
                Ok(a) => a,
                Err(_) => Err(Error::ServiceUnavailable {
                    service: "tax provider",
                    reason: format!("no answer within {} ms", timeout.as_millis()),
                }),
            };
            crate::telemetry::provider_call(
                "tax_document",
                if answer.is_ok() { "ok" } else { "error" },
                started.elapsed(),
            );
            let answer = match answer {
                Ok(reference) => Ok(reference),
                Err(e @ Error::ServiceUnavailable { .. }) => {
                    tracing::warn!(order_id = %order.id(), error = %e, "tax call left pending; a retry or recovery sends it");
                    return order;
                }
                Err(e) => {
                    crate::telemetry::compensation("tax_refused");
                    tracing::warn!(order_id = %order.id(), error = %e, "the tax service refused a call");
                    Err(e.to_string())
                }
            };
            let id = order.id();
            let recorded = self
                .update_order(order.clone(), |o| {
                    if o.tax_step().as_ref() != Some(&step) {
                        return Ok(None);
                    }
                    o.tax_answered(&step, answer.clone());
                    Ok(Some(crate::order::Effects::default()))
                })
                .await;
            order = match recorded {
                Ok(o) => o,
                Err(_) => match self.inner.store.order(id).await {
                    Ok(o) => o,
                    Err(_) => return order,
                },
            };
        }
        order
    }
}
