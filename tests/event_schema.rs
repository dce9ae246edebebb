//! The event payloads' JSON Schema: the published copy equals the one
//! generated from the types, and it describes what every kind writes.
//!
//! `BLESS_SCHEMA=1 cargo test --test event_schema` rewrites the published
//! copy after a deliberate change (and the CHANGELOG says what changed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cartwright::event::{EVENT_JSON_VERSION, event_json_schema, every_kind};
use serde_json::Value;

const PUBLISHED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/events.v1.schema.json");

#[test]
fn the_published_schema_is_the_generated_one() {
    let generated = serde_json::to_string_pretty(&event_json_schema()).unwrap() + "\n";
    if std::env::var_os("BLESS_SCHEMA").is_some() {
        std::fs::write(PUBLISHED, &generated).unwrap();
    }
    let published = std::fs::read_to_string(PUBLISHED).unwrap();
    assert!(
        published == generated,
        "schemas/events.v1.schema.json is out of date: run BLESS_SCHEMA=1 cargo test --test event_schema"
    );
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
