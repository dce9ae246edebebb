//! Price lists: prices that replace the catalog price for some customers, at
//! some times, from some quantities.
//!
//! Does not know: promotions, tax or shipping: it sets unit prices only.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{CustomerGroupId, PriceListId, VariantId};
use crate::money::{Currency, Money};
use crate::validate::required_text;

/// Most prices in one list.
pub const MAX_PRICES_PER_LIST: usize = 100_000;

/// What kind of list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PriceListKind {
    /// Replaces the price it overrides, up or down (a wholesale list).
    Standard,
    /// A sale: replaces the price it overrides only when lower; never raises a price.
    Sale,
}

/// One price in a list: from `min_quantity` units on a line, each costs `price`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListPrice {
    /// The variant.
    pub variant_id: VariantId,
    /// The tier starts at this many units on one line (1 for every quantity).
    pub min_quantity: u32,
    /// The unit price; must be in the list's currency.
    pub price: Money,
}

/// Prices for some customers, at some times, in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PriceList {
    /// Its id.
    pub id: PriceListId,
    /// Its name, shown in explanations.
    pub name: String,
    /// Standard or sale.
    pub kind: PriceListKind,
    /// Lower wins, as everywhere in cartwright (promotions, stock
    /// locations): a list with priority 0 overrides one with priority 5.
    /// Ties go to the lower id.
    pub priority: u32,
    /// The currency of its prices; carts in other currencies ignore it.
    pub currency: Currency,
    /// Only for customers in one of these groups; empty means everyone.
    #[serde(default)]
    pub customer_groups: BTreeSet<CustomerGroupId>,
    /// From this instant (inclusive).
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Until this instant (exclusive).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Its prices.
    pub prices: Vec<ListPrice>,
}

impl PriceList {
    /// An empty list for everyone, always valid.
    pub fn new(name: &str, kind: PriceListKind, priority: u32, currency: Currency) -> Self {
        Self {
            id: PriceListId::new(),
            name: name.to_owned(),
            kind,
            priority,
            currency,
            customer_groups: BTreeSet::new(),
            starts_at: None,
            ends_at: None,
            prices: Vec::new(),
        }
    }

    /// Adds a price from `min_quantity` units.
    pub fn with_price(mut self, variant_id: VariantId, min_quantity: u32, price: Money) -> Self {
        self.prices.push(ListPrice {
            variant_id,
            min_quantity,
            price,
        });
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn validate(&self) -> Result<()> {
        required_text(
            "price list name",
            &self.name,
            super::promotion::MAX_NAME_LEN,
        )?;
        if self.prices.len() > MAX_PRICES_PER_LIST {
            return Err(Error::LimitExceeded {
                what: "prices per list",
                max: MAX_PRICES_PER_LIST as u64,
            });
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at)
            && e <= s
        {
            return Err(Error::invalid(
                "price list window",
                "must end after it starts",
            ));
        }
        for p in &self.prices {
            if p.min_quantity == 0 {
                return Err(Error::invalid("min_quantity", "must be at least 1"));
            }
            if p.price.currency() != self.currency {
                return Err(Error::CurrencyMismatch {
                    left: self.currency,
                    right: p.price.currency(),
                });
            }
            p.price.entered()?;
            if p.price.is_negative() {
                return Err(Error::invalid("list price", "must not be negative"));
            }
        }
        Ok(())
    }

    fn open_at(&self, now: DateTime<Utc>) -> bool {
        self.starts_at.is_none_or(|s| now >= s) && self.ends_at.is_none_or(|e| now < e)
    }
}

/// Where a line's unit price came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PriceSource {
    /// The variant's own price.
    Catalog,
    /// A price list.
    PriceList {
        /// The list.
        id: PriceListId,
        /// Its name.
        name: String,
        /// The quantity tier that matched.
        min_quantity: u32,
        /// Whether it is a sale list.
        sale: bool,
    },
    /// A price the embedding program set for the line
    /// ([`CustomPrice`](crate::cart::CustomPrice)).
    Custom {
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    list: usize,
    min_quantity: u32,
    price: Money,
}

/// Price lists compiled for lookup by variant.
#[derive(Debug, Clone, Default)]
pub struct PriceBook {
    lists: Vec<PriceList>,
    by_variant: HashMap<VariantId, Vec<Entry>>,
}

impl PriceBook {
    /// Compiles `lists` (each validated).
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn new(mut lists: Vec<PriceList>) -> Result<Self> {
        for l in &lists {
            l.validate()?;
        }
        // Apply order: the highest priority number first, so that lower ones
        // (and, on a tie, the lower id) override.
        lists.sort_by(|a, b| b.priority.cmp(&a.priority).then(b.id.cmp(&a.id)));
        let mut by_variant: HashMap<VariantId, Vec<Entry>> = HashMap::new();
        for (index, list) in lists.iter().enumerate() {
            for p in &list.prices {
                by_variant.entry(p.variant_id).or_default().push(Entry {
                    list: index,
                    min_quantity: p.min_quantity,
                    price: p.price,
                });
            }
        }
        Ok(Self { lists, by_variant })
    }

    /// Whether there are no lists.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// The unit price of `quantity` units of a variant whose catalog price is
    /// `base`, for a customer in `groups`, at `now`.
    ///
    /// Lists apply from the highest priority number to the lowest (so the
    /// lowest wins), each replacing the price so far with its highest quantity tier reached; a sale list
    /// replaces it only when lower.
    pub fn unit_price(
        &self,
        variant: VariantId,
        base: Money,
        quantity: u32,
        groups: &BTreeSet<CustomerGroupId>,
        now: DateTime<Utc>,
    ) -> (Money, PriceSource) {
        self.unit_price_in(variant, base, quantity, groups, now, None)
    }

    /// As [`unit_price`](Self::unit_price), in a sales channel: only the
    /// lists the channel uses apply.
    pub fn unit_price_in(
        &self,
        variant: VariantId,
        base: Money,
        quantity: u32,
        groups: &BTreeSet<CustomerGroupId>,
        now: DateTime<Utc>,
        channel: Option<&crate::channel::SalesChannel>,
    ) -> (Money, PriceSource) {
        let mut price = base;
        let mut source = PriceSource::Catalog;
        let Some(entries) = self.by_variant.get(&variant) else {
            return (price, source);
        };
        let mut i = 0;
        while let Some(first) = entries.get(i) {
            // The entries of one list are adjacent; take its best tier.
            let mut best: Option<&Entry> = None;
            let mut j = i;
            while let Some(e) = entries.get(j).filter(|e| e.list == first.list) {
                if e.min_quantity <= quantity
                    && best.is_none_or(|b| e.min_quantity > b.min_quantity)
                {
                    best = Some(e);
                }
                j += 1;
            }
            i = j;
            let (Some(entry), Some(list)) = (best, self.lists.get(first.list)) else {
                continue;
            };
            if list.currency != base.currency()
                || channel.is_some_and(|c| !c.uses_price_list(list.id))
                || !list.open_at(now)
                || (!list.customer_groups.is_empty() && list.customer_groups.is_disjoint(groups))
            {
                continue;
            }
            let sale = list.kind == PriceListKind::Sale;
            if sale && entry.price.amount() >= price.amount() {
                continue;
            }
            price = entry.price;
            source = PriceSource::PriceList {
                id: list.id,
                name: list.name.clone(),
                min_quantity: entry.min_quantity,
                sale,
            };
        }
        (price, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::USD)
    }

    #[test]
    fn tiers_groups_windows_and_sales() {
        let v = VariantId::new();
        let vip = CustomerGroupId::new();
        let now = Utc::now();
        let wholesale = {
            let mut l = PriceList::new("wholesale", PriceListKind::Standard, 9, Currency::USD)
                .with_price(v, 1, usd(900))
                .with_price(v, 10, usd(800));
            l.customer_groups.insert(vip);
            l
        };
        let sale = PriceList::new("sale", PriceListKind::Sale, 8, Currency::USD).with_price(
            v,
            1,
            usd(850),
        );
        let raise = PriceList::new("oops", PriceListKind::Sale, 7, Currency::USD).with_price(
            v,
            1,
            usd(5000),
        );
        let mut later = PriceList::new("later", PriceListKind::Standard, 1, Currency::USD)
            .with_price(v, 1, usd(1));
        later.starts_at = Some(now + chrono::Duration::seconds(1));
        let book = PriceBook::new(vec![raise, later, sale, wholesale]).unwrap();
        let groups: BTreeSet<_> = [vip].into();
        let none = BTreeSet::new();

        // Everyone: the sale beats the catalog; the raising "sale" is ignored.
        assert_eq!(book.unit_price(v, usd(1000), 1, &none, now).0, usd(850));
        // VIP, 1 unit: wholesale 9.00, then the sale (8.50) is lower.
        assert_eq!(book.unit_price(v, usd(1000), 1, &groups, now).0, usd(850));
        // VIP, 10 units: wholesale tier 8.00; the sale would raise it, so not.
        let (p, src) = book.unit_price(v, usd(1000), 10, &groups, now);
        assert_eq!(p, usd(800));
        assert!(matches!(
            src,
            PriceSource::PriceList {
                min_quantity: 10,
                sale: false,
                ..
            }
        ));
        // Another currency: the catalog price.
        let eur = Money::from_minor(1000, Currency::EUR);
        assert_eq!(
            book.unit_price(v, eur, 10, &groups, now).1,
            PriceSource::Catalog
        );
        // The future list opens one second later.
        let at = now + chrono::Duration::seconds(1);
        assert_eq!(book.unit_price(v, usd(1000), 1, &none, at).0, usd(1));
    }

    #[test]
    fn the_lower_priority_wins_as_for_promotions_and_locations() {
        let v = VariantId::new();
        let now = Utc::now();
        let first = PriceList::new("first", PriceListKind::Standard, 0, Currency::USD).with_price(
            v,
            1,
            usd(700),
        );
        let second = PriceList::new("second", PriceListKind::Standard, 5, Currency::USD)
            .with_price(v, 1, usd(600));
        let none = BTreeSet::new();
        for lists in [
            vec![first.clone(), second.clone()],
            vec![second.clone(), first.clone()],
        ] {
            let book = PriceBook::new(lists).unwrap();
            assert_eq!(book.unit_price(v, usd(1000), 1, &none, now).0, usd(700));
        }
    }
}
