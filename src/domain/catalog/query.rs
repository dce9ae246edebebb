//! Product listing and search: which products a storefront or staff page
//! shows, in what order, a page at a time.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Product, Status};
use crate::error::{Error, Result};
use crate::id::{CategoryId, CollectionId, ProductId};
use crate::money::{Currency, Money};

/// Longest search text, in characters.
pub const MAX_PRODUCT_SEARCH_TEXT: usize = 100;
/// Most words of a search text that count.
pub const MAX_SEARCH_WORDS: usize = 8;

/// The order of a product listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProductSort {
    /// Newest first (ids are time-ordered).
    #[default]
    Newest,
    /// By title, A to Z (ties by id).
    Title,
}

/// Where the next page of a listing starts: the last product of the
/// previous one ([`ProductCursor::after`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCursor {
    /// The last product's title.
    pub title: String,
    /// The last product's id.
    pub id: ProductId,
}

impl ProductCursor {
    /// The cursor after `product`.
    pub fn after(product: &Product) -> Self {
        Self {
            title: product.title().to_owned(),
            id: product.id(),
        }
    }
}

/// Prices in one currency between two bounds (each optional, inclusive):
/// a product matches when one of its variants' prices does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PriceRange {
    /// The currency.
    pub currency: Currency,
    /// The lowest price, if any.
    pub min: Option<Money>,
    /// The highest price, if any.
    pub max: Option<Money>,
}

impl PriceRange {
    /// Prices in `currency` from `min` to `max`.
    ///
    /// # Errors
    /// [`Error::CurrencyMismatch`] for a bound in another currency;
    /// [`Error::Invalid`] for a minimum above the maximum.
    pub fn new(currency: Currency, min: Option<Money>, max: Option<Money>) -> Result<Self> {
        for bound in [min, max].into_iter().flatten() {
            if bound.currency() != currency {
                return Err(Error::CurrencyMismatch {
                    left: currency,
                    right: bound.currency(),
                });
            }
        }
        if let (Some(lo), Some(hi)) = (min, max)
            && lo.amount() > hi.amount()
        {
            return Err(Error::invalid("price range", format!("{lo} is above {hi}")));
        }
        Ok(Self { currency, min, max })
    }

    fn contains(&self, price: Money) -> bool {
        price.currency() == self.currency
            && self.min.is_none_or(|m| price.amount() >= m.amount())
            && self.max.is_none_or(|m| price.amount() <= m.amount())
    }
}

/// Which products a listing shows ([`crate::Engine::find_products`]).
/// Every filter given must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProductQuery {
    /// Words of the title (each a prefix of one of its words, any case),
    /// or the start of a variant's SKU.
    pub text: Option<String>,
    /// In this category or one under it.
    pub category: Option<CategoryId>,
    /// In this collection.
    pub collection: Option<CollectionId>,
    /// With this tag (any case).
    pub tag: Option<String>,
    /// With this status (shoppers only ever see active products).
    pub status: Option<Status>,
    /// Priced in a range in one currency.
    pub price: Option<PriceRange>,
    /// The order.
    pub sort: ProductSort,
    /// Start after this product (the previous page's last).
    pub after: Option<ProductCursor>,
    /// At most this many (1 to [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE)).
    pub limit: usize,
}

impl ProductQuery {
    /// Every product, newest first, `limit` at a time.
    pub fn new(limit: usize) -> Self {
        Self {
            text: None,
            category: None,
            collection: None,
            tag: None,
            status: None,
            price: None,
            sort: ProductSort::default(),
            after: None,
            limit,
        }
    }

    /// Matching `text` (title words or a SKU's start).
    #[must_use]
    pub fn text(mut self, text: &str) -> Self {
        self.text = Some(text.to_owned());
        self
    }

    /// In `category` or below.
    #[must_use]
    pub fn category(mut self, category: CategoryId) -> Self {
        self.category = Some(category);
        self
    }

    /// In `collection`.
    #[must_use]
    pub fn collection(mut self, collection: CollectionId) -> Self {
        self.collection = Some(collection);
        self
    }

    /// With `tag`.
    #[must_use]
    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = Some(tag.to_owned());
        self
    }

    /// With `status`.
    #[must_use]
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    /// Priced in `range`.
    #[must_use]
    pub fn price(mut self, range: PriceRange) -> Self {
        self.price = Some(range);
        self
    }

    /// In `sort` order.
    #[must_use]
    pub fn sort(mut self, sort: ProductSort) -> Self {
        self.sort = sort;
        self
    }

    /// After `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: ProductCursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// The search words: lower-case runs of letters and digits, at most
    /// [`MAX_SEARCH_WORDS`].
    pub fn words(&self) -> Vec<String> {
        words(self.text.as_deref().unwrap_or_default())
            .into_iter()
            .take(MAX_SEARCH_WORDS)
            .collect()
    }

    /// The SKU prefix the text may be: trimmed, upper-case (`None` when
    /// empty).
    pub fn sku_prefix(&self) -> Option<String> {
        self.text
            .as_deref()
            .map(|t| t.trim().to_uppercase())
            .filter(|t| !t.is_empty())
    }

    /// The tag as stored (trimmed, lower-case).
    pub fn tag_key(&self) -> Option<String> {
        self.tag.as_deref().map(|t| t.trim().to_lowercase())
    }

    /// Whether `product`, whose categories with their ancestors are
    /// `ancestry`, matches: the meaning every store gives a query.
    pub fn matches(&self, product: &Product, ancestry: &BTreeSet<CategoryId>) -> bool {
        let text_ok = match self.sku_prefix() {
            None => true,
            Some(prefix) => {
                let title_words = words(product.title());
                let wanted = self.words();
                let by_title = !wanted.is_empty()
                    && wanted
                        .iter()
                        .all(|w| title_words.iter().any(|t| t.starts_with(w.as_str())));
                by_title
                    || product
                        .variants()
                        .iter()
                        .any(|v| v.sku().as_str().starts_with(&prefix))
            }
        };
        text_ok
            && self.category.is_none_or(|c| ancestry.contains(&c))
            && self
                .collection
                .is_none_or(|c| product.collections().contains(&c))
            && self.tag_key().is_none_or(|t| product.tags().contains(&t))
            && self.status.is_none_or(|s| product.status() == s)
            && self.price.is_none_or(|r| {
                product
                    .variants()
                    .iter()
                    .filter_map(|v| v.price(r.currency))
                    .any(|p| r.contains(p))
            })
            && self.after.as_ref().is_none_or(|a| match self.sort {
                ProductSort::Newest => product.id() < a.id,
                ProductSort::Title => (product.title(), product.id()) > (a.title.as_str(), a.id),
            })
    }
}

/// Lower-case runs of letters and digits: how titles are searched (the
/// PostgreSQL store's `simple` text-search configuration splits alike).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}
