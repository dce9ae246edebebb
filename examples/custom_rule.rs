//! Custom pricing rules: a condition and an action written in your own
//! code, registered by name, and used by promotions stored as data.
//!
//! - `distinct_products` (condition): the cart holds at least `min`
//!   different products.
//! - `priciest_unit` (action): `percent` off one unit of the most expensive
//!   line.
//!
//! Run with `cargo run --example custom_rule`.

use std::sync::Arc;

use cartwright::id::LineId;
use cartwright::prelude::*;
use cartwright::pricing::{
    Action, Comparison, Condition, Op, PricingRule, Promotion, RuleCart, Verdict,
};
use rust_decimal::Decimal;
use serde::Deserialize;

/// "At least `min` different products in the cart."
struct DistinctProducts;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DistinctSettings {
    min: usize,
}

impl PricingRule for DistinctProducts {
    fn name(&self) -> &str {
        "distinct_products"
    }

    fn validate(&self, settings: &serde_json::Value) -> Result<()> {
        let s: DistinctSettings = serde_json::from_value(settings.clone())
            .map_err(|e| Error::invalid("distinct_products settings", e.to_string()))?;
        if s.min == 0 {
            return Err(Error::invalid(
                "distinct_products settings",
                "min must be at least 1",
            ));
        }
        Ok(())
    }

    fn condition(&self, settings: &serde_json::Value, cart: &RuleCart<'_>) -> Verdict {
        // Settings were validated when the promotion was saved.
        let min = settings
            .get("min")
            .and_then(|m| m.as_u64())
            .unwrap_or(u64::MAX);
        let mut products: Vec<_> = cart
            .lines
            .iter()
            .map(|l| l.entry.variant.product_id())
            .collect();
        products.sort_unstable();
        products.dedup();
        let have = products.len() as u64;
        if have >= min {
            Verdict::Met
        } else {
            Verdict::NotMet(Comparison::new(
                "different products",
                Op::Gte,
                min.to_string(),
                have.to_string(),
            ))
        }
    }
}

/// "`percent` off one unit of the most expensive line", rounded down.
struct PriciestUnit;

impl PricingRule for PriciestUnit {
    fn name(&self) -> &str {
        "priciest_unit"
    }

    fn validate(&self, settings: &serde_json::Value) -> Result<()> {
        let percent = percent(settings)?;
        if percent <= Decimal::ZERO || percent > Decimal::ONE_HUNDRED {
            return Err(Error::invalid(
                "priciest_unit settings",
                "percent must be in (0, 100]",
            ));
        }
        Ok(())
    }

    fn action(
        &self,
        settings: &serde_json::Value,
        cart: &RuleCart<'_>,
    ) -> Result<Vec<(LineId, Money)>> {
        let percent = percent(settings)?;
        let Some(line) = cart.lines.iter().max_by(|a, b| {
            a.unit_price
                .amount()
                .cmp(&b.unit_price.amount())
                .then(b.line_id.cmp(&a.line_id))
        }) else {
            return Ok(Vec::new());
        };
        // One unit's share of what is left of the line, then the percentage.
        let unit_left = line.remaining.amount() / Decimal::from(line.quantity);
        let off = Money::new(unit_left * percent / Decimal::ONE_HUNDRED, cart.currency)
            .round(RoundingMode::Floor);
        Ok(vec![(line.line_id, off)])
    }
}

fn percent(settings: &serde_json::Value) -> Result<Decimal> {
    settings
        .get("percent")
        .and_then(|p| p.as_str())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Error::invalid("priciest_unit settings", "percent must be a decimal string"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let usd = |s: &str| Money::parse(s, Currency::USD);
    let engine = Engine::builder()
        .pricing_rule(Arc::new(DistinctProducts))
        .pricing_rule(Arc::new(PriciestUnit))
        .test_payment_provider()
        .no_tax()
        .build()?;

    // Promotions are data: this one could as well be read from JSON.
    let promotion: Promotion = serde_json::from_value(serde_json::json!({
        "id": cartwright::id::PromotionId::new(),
        "name": "Mix & match: 50% off your priciest item",
        "conditions": [
            { "type": "custom", "rule": "distinct_products", "settings": { "min": 3 } }
        ],
        "action": { "type": "custom", "rule": "priciest_unit", "settings": { "percent": "50" } }
    }))
    .map_err(|e| Error::invalid("promotion", e.to_string()))?;
    engine
        .save_promotion(&Actor::System, promotion.clone())
        .await?;

    // Settings a rule refuses are refused when the promotion is saved.
    let bad = Promotion::new(
        "broken",
        Action::Custom {
            rule: "priciest_unit".into(),
            settings: serde_json::json!({ "percent": "150" }),
        },
    )
    .when(Condition::Custom {
        rule: "distinct_products".into(),
        settings: serde_json::json!({ "min": 2 }),
    });
    match engine.save_promotion(&Actor::System, bad).await {
        Err(refused) => println!("refused: {refused}"),
        Ok(_) => return Err(Error::invalid("example", "bad settings were accepted")),
    }

    let mug = product(&engine, "MUG", usd("12.00")?).await?;
    let poster = product(&engine, "POSTER", usd("30.00")?).await?;
    let pin = product(&engine, "PIN", usd("4.50")?).await?;

    let guest = Actor::Guest;
    let cart = engine.create_cart(&guest, Currency::USD).await?;
    engine.add_item(&guest, cart.id(), mug, 2).await?;
    engine.add_item(&guest, cart.id(), poster, 1).await?;
    let two = engine.price_cart(&guest, cart.id()).await?;
    println!("two products:   total {}", two.total);
    if let Some(reason) = two.outcome(promotion.id).and_then(|o| o.rejection()) {
        println!("                not applied: {reason}");
    }

    engine.add_item(&guest, cart.id(), pin, 1).await?;
    let three = engine.price_cart(&guest, cart.id()).await?;
    println!(
        "three products: total {} (discount {})",
        three.total, three.discount_total
    );
    for line in &three.lines {
        for a in &line.adjustments {
            println!(
                "                {} on {}: -{}",
                a.label, line.name, a.amount
            );
        }
    }
    assert_eq!(three.discount_total, usd("15.00")?);
    Ok(())
}

/// An untracked product with one variant at `price`.
async fn product(engine: &Engine, sku: &str, price: Money) -> Result<cartwright::id::VariantId> {
    let product = engine
        .create_product(
            &Actor::System,
            NewProduct::new(sku.to_lowercase())
                .status(Status::Active)
                .variants(vec![
                    NewVariant::digital(sku)
                        .prices(vec![price])
                        .inventory(InventoryPolicy::Untracked)
                        .status(Status::Active),
                ]),
        )
        .await?;
    product
        .variants()
        .first()
        .map(|v| v.id())
        .ok_or_else(|| Error::invalid("product", "has no variant"))
}
