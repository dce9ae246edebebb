//! Forms for every promotion action and condition, made from the
//! promotion's JSON Schema: a form per shape, a field per property (an
//! amount and its currency for money, a choice for an enumeration, a
//! number, a text, a tick box, and JSON for nested rules such as line
//! filters), read back into the shape the engine reads. A shape the
//! engine gains gets its form without a template change.

use minijinja::context;
use serde_json::{Map, Value, json};

use super::session::Fields;
use crate::error::{Error, Result};

/// The promotion's JSON Schema, with its `$defs`.
pub(crate) fn schema() -> Value {
    schemars::schema_for!(crate::pricing::Promotion).to_value()
}

/// `schema` with a `$ref` followed, once.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    schema
        .get("$ref")
        .and_then(|r| r.as_str())
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| root.get("$defs").and_then(|d| d.get(name)))
        .unwrap_or(schema)
}

/// A property's schema without its `null` alternative, and whether it had one.
fn non_null<'a>(root: &'a Value, schema: &'a Value) -> (&'a Value, bool) {
    if let Some(any) = schema.get("anyOf").and_then(|a| a.as_array()) {
        let rest: Vec<&Value> = any
            .iter()
            .filter(|s| s.get("type").and_then(|t| t.as_str()) != Some("null"))
            .collect();
        if let [one] = rest.as_slice() {
            return (resolve(root, one), true);
        }
    }
    let nullable = schema
        .get("type")
        .and_then(|t| t.as_array())
        .is_some_and(|t| t.iter().any(|x| x == "null"));
    (resolve(root, schema), nullable)
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(|t| t.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// The constants of an enumeration schema (`oneOf` of `const`s, or `enum`).
fn choices(schema: &Value) -> Option<Vec<String>> {
    if let Some(e) = schema.get("enum").and_then(|e| e.as_array()) {
        return Some(
            e.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        );
    }
    let one_of = schema.get("oneOf")?.as_array()?;
    one_of
        .iter()
        .map(|v| v.get("const").and_then(|c| c.as_str()).map(str::to_owned))
        .collect()
}

/// How a property is entered.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Money,
    Choice(Vec<String>),
    Number,
    Flag,
    Text,
    Json(String),
}

fn kind(schema: &Value) -> Kind {
    let is_money = |s: &Value| {
        s.get("properties")
            .and_then(|p| p.as_object())
            .is_some_and(|p| p.len() == 2 && p.contains_key("amount") && p.contains_key("currency"))
    };
    if is_money(schema) {
        return Kind::Money;
    }
    if let Some(options) = choices(schema) {
        return Kind::Choice(options);
    }
    let t = types(schema);
    if t.contains(&"boolean") {
        Kind::Flag
    } else if t.contains(&"integer") {
        Kind::Number
    } else if t.contains(&"string") {
        Kind::Text
    } else if t.contains(&"array") {
        Kind::Json("[]".to_owned())
    } else {
        let example = if schema
            .get("oneOf")
            .and_then(|o| o.as_array())
            .is_some_and(|o| {
                o.iter()
                    .any(|v| v.pointer("/properties/type/const") == Some(&json!("any")))
            }) {
            r#"{"type": "any"}"#
        } else {
            "{}"
        };
        Kind::Json(example.to_owned())
    }
}

/// A description's first sentence, for a summary line (the rest is in the
/// reference below the forms and in the crate's documentation).
fn first_sentence(text: &str) -> String {
    let text = text.replace('\n', " ");
    match text.find(". ") {
        Some(end) => text.get(..=end).unwrap_or(&text).to_owned(),
        None => text,
    }
}

/// The fields of one shape (a variant of a tagged enum), in schema order.
fn fields(root: &Value, variant: &Value) -> Vec<(String, Kind, bool, String)> {
    let required: Vec<&str> = variant
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    variant
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|props| {
            props
                .iter()
                .filter(|(name, _)| name.as_str() != "type")
                .map(|(name, prop)| {
                    let (inner, _) = non_null(root, prop);
                    let about = prop
                        .get("description")
                        .and_then(|d| d.as_str())
                        .unwrap_or_default()
                        .to_owned();
                    (
                        name.clone(),
                        kind(inner),
                        required.contains(&name.as_str()),
                        about,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The shapes of the enum `def` (`Action`, `Condition`): each one's name,
/// what it does, and its fields, for the templates.
pub(crate) fn forms(root: &Value, def: &str) -> Vec<minijinja::Value> {
    let variants = root
        .pointer(&format!("/$defs/{def}/oneOf"))
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    variants
        .iter()
        .filter_map(|v| {
            let name = v.pointer("/properties/type/const")?.as_str()?.to_owned();
            let fields: Vec<minijinja::Value> = fields(root, v)
                .into_iter()
                .map(|(field, kind, required, about)| {
                    let (kind_name, options, example) = match kind {
                        Kind::Money => ("money", Vec::new(), String::new()),
                        Kind::Choice(o) => ("choice", o, String::new()),
                        Kind::Number => ("number", Vec::new(), String::new()),
                        Kind::Flag => ("flag", Vec::new(), String::new()),
                        Kind::Text => ("text", Vec::new(), String::new()),
                        Kind::Json(e) => ("json", Vec::new(), e),
                    };
                    context! { name => field, kind => kind_name, options, example, required, about }
                })
                .collect();
            Some(context! {
                name,
                about => first_sentence(v.get("description").and_then(|d| d.as_str()).unwrap_or_default()),
                fields,
            })
        })
        .collect()
}

/// Reads the shape `shape` of `def` from a form's `f.<field>` values into
/// the JSON the engine reads.
///
/// # Errors
/// [`Error::Invalid`] for an unknown shape, a required field left empty, a
/// number or JSON that does not read, naming the field.
pub(crate) fn read(root: &Value, def: &str, shape: &str, form: &Fields) -> Result<Value> {
    let variants = root
        .pointer(&format!("/$defs/{def}/oneOf"))
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    let variant = variants
        .iter()
        .find(|v| v.pointer("/properties/type/const").and_then(|c| c.as_str()) == Some(shape))
        .ok_or_else(|| Error::invalid("shape", format!("{shape:?} is not a shape of {def}")))?;
    let mut out = Map::new();
    out.insert("type".into(), json!(shape));
    for (name, kind, required, _) in fields(root, variant) {
        let key = format!("f.{name}");
        let value =
            match kind {
                Kind::Money => {
                    let amount = form.get(&format!("{key}.amount"));
                    let currency = form.get(&format!("{key}.currency")).to_ascii_uppercase();
                    if amount.is_empty() {
                        None
                    } else {
                        Some(json!({ "amount": amount, "currency": currency }))
                    }
                }
                Kind::Flag => Some(json!(!form.get(&key).is_empty())),
                Kind::Number => match form.get(&key) {
                    "" => None,
                    n => Some(json!(n.parse::<u64>().map_err(|_| {
                        Error::invalid("promotion", format!("{name}: {n:?} is not a whole number"))
                    })?)),
                },
                Kind::Choice(_) | Kind::Text => match form.get(&key) {
                    "" => None,
                    t => Some(json!(t)),
                },
                Kind::Json(_) => match form.get(&key) {
                    "" => None,
                    t => Some(serde_json::from_str::<Value>(t).map_err(|e| {
                        Error::invalid("promotion", format!("{name}: not JSON ({e})"))
                    })?),
                },
            };
        match value {
            Some(v) => {
                out.insert(name, v);
            }
            None if required => {
                return Err(Error::invalid(
                    "promotion",
                    format!("{name} is needed for {shape}"),
                ));
            }
            None => {}
        }
    }
    Ok(Value::Object(out))
}
