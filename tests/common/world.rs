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
        let priced = price(cart, &ctx).unwrap();
        explanations_agree_with_amounts(&priced);
        priced
    }
}

/// No explanation contradicts the amounts: every applied outcome's amount
/// is its adjustments (per line and on shipping), and no promotion that has
/// an adjustment on the cart is reported as refused. Every cart the peer
/// cases, the worked examples and the property tests price is checked.
pub fn explanations_agree_with_amounts(p: &PricedCart) {
    use cartwright::pricing::Outcome;
    use rust_decimal::Decimal;
    let adjusted = |id, line: Option<cartwright::id::LineId>| -> Decimal {
        p.lines
            .iter()
            .filter(|l| line.is_none_or(|want| l.line_id == want))
            .flat_map(|l| l.adjustments.iter())
            .filter(|a| a.promotion_id == Some(id))
            .map(|a| a.amount.amount())
            .sum()
    };
    let on_shipping = |id| -> Decimal {
        p.shipping_charges()
            .flat_map(|c| c.adjustments.iter())
            .filter(|a| a.promotion_id == Some(id))
            .map(|a| a.amount.amount())
            .sum()
    };
    for o in &p.promotions {
        let Some(id) = o.promotion_id else { continue };
        match &o.outcome {
            Outcome::Applied {
                amount,
                lines,
                shipping,
                ..
            } => {
                for l in lines {
                    assert_eq!(
                        l.amount.amount(),
                        adjusted(id, Some(l.line_id)),
                        "{}: its line amount is not its adjustments",
                        o.name
                    );
                }
                assert_eq!(
                    shipping.amount(),
                    on_shipping(id),
                    "{}: its shipping amount is not its adjustments",
                    o.name
                );
                // Its whole amount is every adjustment it made (a gift's
                // value is the gift line's adjustment).
                assert_eq!(
                    amount.amount(),
                    adjusted(id, None) + on_shipping(id),
                    "{}: its amount is not what it took",
                    o.name
                );
            }
            Outcome::NotApplied { reason } => {
                let took = adjusted(id, None) + on_shipping(id);
                assert!(
                    took.is_zero(),
                    "{} (code {:?}) is refused ({reason}) while it took {took}",
                    o.name,
                    o.code
                );
            }
            _ => {}
        }
    }
}

/// The discount each line got, in cart order, as text ("3.00").
pub fn discounts(p: &PricedCart) -> Vec<String> {
    p.lines
        .iter()
        .map(|l| l.discount.amount().to_string())
        .collect()
}
