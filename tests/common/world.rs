//! A pure pricing fixture: a handful of catalog entries, no store.

use std::collections::HashMap;

use cartwright::cart::Cart;
use cartwright::catalog::{CatalogEntry, NewProduct, NewVariant, Product, Status};
use cartwright::id::{CategoryId, CollectionId, VariantId};
use cartwright::money::{Currency, Money};
use cartwright::pricing::{
    Coupon, CustomerFacts, PriceBook, PricedCart, PricingContext, Promotion, PromotionSet,
    PromotionSettings, RuleRegistry, price,
};
use cartwright::shipping::{ShippingRates, ShippingTable};
use cartwright::tax::{FlatRateTax, TaxCalculator};
use chrono::{DateTime, TimeZone, Utc};

pub fn money(s: &str, c: Currency) -> Money {
    Money::parse(s, c).unwrap()
}

pub fn usd(s: &str) -> Money {
    money(s, Currency::USD)
}

/// Catalog entries and the plugins to price them with.
pub struct World {
    pub catalog: HashMap<VariantId, CatalogEntry>,
    pub shipping: Box<dyn ShippingRates>,
    pub tax: Box<dyn TaxCalculator>,
    pub now: DateTime<Utc>,
    pub summer: CollectionId,
    pub kitchen: CategoryId,
}

/// What else a pricing call gets.
#[derive(Default)]
pub struct Extra {
    pub coupons: Vec<Coupon>,
    pub customer: CustomerFacts,
    pub usage: HashMap<String, u64>,
    pub book: PriceBook,
    pub settings: PromotionSettings,
    pub rules: RuleRegistry,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        Self {
            catalog: HashMap::new(),
            shipping: Box::new(ShippingTable::new()),
            tax: Box::new(FlatRateTax::none()),
            now: Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap(),
            summer: CollectionId::new(),
            kitchen: CategoryId::new(),
        }
    }

    /// Adds an item priced `prices` (one per currency), in `collections`
    /// and `categories`, with `tags`.
    pub fn item(
        &mut self,
        name: &str,
        prices: &[Money],
        collections: &[CollectionId],
        categories: &[CategoryId],
        tags: &[&str],
    ) -> VariantId {
        let product = Product::new(
            NewProduct::new(name)
                .status(Status::Active)
                .tags(tags.iter().map(|t| (*t).to_owned()).collect())
                .categories(categories.to_vec())
                .collections(collections.to_vec())
                .variants(vec![
                    NewVariant::shipped(format!("SKU-{name}"))
                        .prices(prices.to_vec())
                        .weight_grams(500)
                        .tax_class("standard")
                        .status(Status::Active),
                ]),
        )
        .unwrap();
        let v = product.variants()[0].clone();
        self.catalog
            .insert(v.id(), CatalogEntry::of(&product, v.id()).unwrap());
        v.id()
    }

    pub fn cart(&self, lines: &[(VariantId, u32)]) -> Cart {
        self.cart_in(Currency::USD, lines)
    }

    pub fn cart_in(&self, currency: Currency, lines: &[(VariantId, u32)]) -> Cart {
        let mut cart = Cart::new(currency, None, self.now);
        for (v, q) in lines {
            cart.add_line(*v, *q).unwrap();
        }
        cart
    }

    pub fn set(&self, promotions: Vec<Promotion>, extra: &Extra) -> PromotionSet {
        PromotionSet::new(promotions, extra.rules.clone(), extra.settings).unwrap()
    }

    /// Prices with these promotions and nothing else.
    pub fn price(&self, cart: &Cart, promotions: Vec<Promotion>) -> PricedCart {
        self.price_with(cart, promotions, &Extra::default())
    }

    pub fn price_with(&self, cart: &Cart, promotions: Vec<Promotion>, extra: &Extra) -> PricedCart {
        let set = self.set(promotions, extra);
        self.price_set(cart, &set, extra, self.now)
    }

    pub fn price_set(
        &self,
        cart: &Cart,
        set: &PromotionSet,
        extra: &Extra,
        now: DateTime<Utc>,
    ) -> PricedCart {
        let mut ctx = PricingContext::new(
            &self.catalog,
            self.shipping.as_ref(),
            self.tax.as_ref(),
            now,
        );
        ctx.promotions = set;
        ctx.price_book = &extra.book;
        ctx.customer = &extra.customer;
        ctx.coupons = &extra.coupons;
        ctx.usage = &extra.usage;
        price(cart, &ctx).unwrap()
    }
}

/// The discount each line got, in cart order, as text ("3.00").
pub fn discounts(p: &PricedCart) -> Vec<String> {
    p.lines
        .iter()
        .map(|l| l.discount.amount().to_string())
        .collect()
}
