//! Small catalogs for the pricing steps' unit tests.

use std::collections::HashMap;

use crate::catalog::{CatalogEntry, NewProduct, NewVariant, Product, Status};
use crate::id::VariantId;
use crate::money::{Currency, Money};

/// An amount in US dollars (zero for text that is not one).
pub(crate) fn usd(s: &str) -> Money {
    Money::parse(s, Currency::USD).unwrap_or_else(|_| Money::zero(Currency::USD))
}

/// A catalog of one-variant products at the given prices (an empty
/// price list means no USD price).
pub(crate) fn catalog(prices: &[&str]) -> (HashMap<VariantId, CatalogEntry>, Vec<VariantId>) {
    let mut catalog = HashMap::new();
    let mut ids = Vec::new();
    for (n, price) in prices.iter().enumerate() {
        let product = Product::new(NewProduct {
            title: format!("Product {n}"),
            status: Status::Active,
            variants: vec![NewVariant {
                sku: format!("SKU-{n}"),
                prices: if price.is_empty() {
                    vec![]
                } else {
                    vec![usd(price)]
                },
                status: Status::Active,
                ..NewVariant::digital("")
            }],
            ..NewProduct::default()
        })
        .map_err(|e| e.to_string());
        let Ok(product) = product else {
            continue;
        };
        for v in product.variants() {
            if let Some(entry) = CatalogEntry::of(&product, v.id()) {
                ids.push(v.id());
                catalog.insert(v.id(), entry);
            }
        }
    }
    (catalog, ids)
}
