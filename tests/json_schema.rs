//! The published JSON Schemas — of a promotion, and of an event's
//! payload — equal the ones generated from the types, and they describe
//! what the types read and write.
//!
//! `BLESS_SCHEMA=1 cargo test --test json_schema` rewrites the published
//! copies after a deliberate change (and the CHANGELOG says what changed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cartwright::event::{EVENT_JSON_VERSION, event_json_schema, every_kind};
use cartwright::money::{Currency, Money};
use cartwright::pricing::{
    Action, Condition, GroupPrice, LineFilter, Op, PROMOTION_JSON_VERSION, Promotion,
    promotion_json_schema,
};
use serde_json::Value;

/// The copy of `schema` published as `schemas/<file>` is the generated one
/// (rewritten first under `BLESS_SCHEMA`).
fn published_is_generated(file: &str, schema: &Value) {
    let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    let generated = serde_json::to_string_pretty(schema).unwrap() + "\n";
    if std::env::var_os("BLESS_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let published = std::fs::read_to_string(&path).unwrap();
    assert!(
        published == generated,
        "schemas/{file} is out of date: run BLESS_SCHEMA=1 cargo test --test json_schema"
    );
}

#[test]
fn the_published_schemas_are_the_generated_ones() {
    published_is_generated("promotion.schema.json", &promotion_json_schema());
    published_is_generated("events.v1.schema.json", &event_json_schema());
}

/// Every `$ref` in `v` points at a definition that exists.
fn refs_resolve(v: &Value, defs: &serde_json::Map<String, Value>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let name = r
                    .strip_prefix("#/$defs/")
                    .unwrap_or_else(|| panic!("ref {r}"));
                assert!(defs.contains_key(name), "dangling ref {r}");
            }
            m.values().for_each(|v| refs_resolve(v, defs));
        }
        Value::Array(a) => a.iter().for_each(|v| refs_resolve(v, defs)),
        _ => {}
    }
}

/// The `type` tags a tagged enum's schema allows.
fn tags(def: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for variant in def["oneOf"].as_array().unwrap() {
        if let Some(t) = variant["properties"]["type"]["const"].as_str() {
            out.push(t.to_owned());
        }
    }
    out.sort();
    out
}

#[test]
fn the_schema_describes_the_json_form() {
    let schema = promotion_json_schema();
    assert_eq!(
        schema["$id"],
        format!("urn:cartwright:promotion:v{PROMOTION_JSON_VERSION}")
    );
    let defs = schema["$defs"].as_object().unwrap();
    refs_resolve(&schema, defs);
    // Every action and condition type, by the names the JSON uses.
    let actions = tags(&defs["Action"]);
    for t in [
        "percent_off_items",
        "buy_x_get_y",
        "fixed_total",
        "quantity_group",
        "first_and_additional",
        "tiered_shipping",
        "gift",
        "custom",
    ] {
        assert!(
            actions.contains(&t.to_owned()),
            "action {t} missing: {actions:?}"
        );
    }
    let conditions = tags(&defs["Condition"]);
    for t in [
        "all_of",
        "any_of",
        "not",
        "subtotal",
        "order_number",
        "lines",
    ] {
        assert!(conditions.contains(&t.to_owned()), "condition {t} missing");
    }
    // Amounts are strings, never numbers.
    assert_eq!(defs["Money"]["properties"]["amount"]["type"], "string");

    // A promotion as serialized has only fields the schema names, and the
    // schema's required fields are all there.
    let p = Promotion::new(
        "3 for 10",
        Action::QuantityGroup {
            target: LineFilter::Any,
            size: 3,
            price: GroupPrice::Fixed {
                amount: Money::from_minor(1000, Currency::USD),
            },
            max_groups: Some(2),
        },
    )
    .when(Condition::Not {
        condition: Box::new(Condition::ItemCount {
            op: Op::Gt,
            count: 10,
        }),
    });
    let json = serde_json::to_value(&p).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for key in json.as_object().unwrap().keys() {
        assert!(props.contains_key(key), "field {key} not in the schema");
    }
    for key in schema["required"].as_array().unwrap() {
        assert!(
            json.get(key.as_str().unwrap()).is_some(),
            "required {key} missing"
        );
    }
    // And the JSON reads back to the same promotion.
    let back: Promotion = serde_json::from_value(json).unwrap();
    assert_eq!(back, p);
}

#[test]
fn every_kind_is_described_by_its_variant_of_the_schema() {
    let schema = event_json_schema();
    assert_eq!(
        schema["$id"],
        format!("urn:cartwright:event:v{EVENT_JSON_VERSION}")
    );
    let empty = serde_json::Map::new();
    let defs = schema["$defs"].as_object().unwrap_or(&empty);
    refs_resolve(&schema, defs);
    let variants = schema["oneOf"].as_array().unwrap();
    for kind in every_kind() {
        let json = serde_json::to_value(&kind).unwrap();
        let tag = json["type"].as_str().unwrap();
        let variant = variants
            .iter()
            .find(|v| v["properties"]["type"]["const"] == tag)
            .unwrap_or_else(|| panic!("no variant for {tag}"));
        let props = variant["properties"].as_object().unwrap();
        for key in json.as_object().unwrap().keys() {
            assert!(props.contains_key(key), "{tag}: {key} not in the schema");
        }
        for key in variant["required"].as_array().unwrap() {
            assert!(
                json.get(key.as_str().unwrap()).is_some(),
                "{tag}: required {key} missing"
            );
        }
    }
    // Amounts are strings, never numbers.
    assert_eq!(defs["Money"]["properties"]["amount"]["type"], "string");
}
