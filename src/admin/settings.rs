//! Promotions (switch on and off, bulk codes, the cart explanation), staff
//! and roles, the audit log, and the settings (read-only).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use super::render::{money, when, who};
use super::session::{Posted, Staff};
use super::{Admin, parse_id};
use crate::engine::staff::NewStaff;
use crate::error::Error;
use crate::id::{CartId, PromotionId, StaffId};

#[derive(Deserialize, Default)]
pub(crate) struct Generated {
    #[serde(default)]
    codes: String,
}

pub(crate) async fn promotions(
    State(admin): State<Admin>,
    staff: Staff,
    Query(generated): Query<Generated>,
) -> Response {
    let loaded = async {
        let list = admin.engine.promotions(&staff.actor).await?;
        let mut rows = Vec::with_capacity(list.len());
        for p in &list {
            let used = admin
                .engine
                .usage(&staff.actor, &format!("promotion:{}:uses", p.id))
                .await?;
            rows.push(context! {
                id => p.id.to_string(),
                name => p.name.clone(),
                shape => serde_json::to_string(&p.action).unwrap_or_default(),
                enabled => p.enabled,
                codes => if p.coded { "with codes" } else { "automatic" },
                used,
            });
        }
        Ok::<_, Error>(rows)
    }
    .await;
    match loaded {
        Ok(rows) => {
            let generated: Vec<&str> = generated
                .codes
                .split(',')
                .filter(|c| !c.is_empty())
                .collect();
            admin.pages.page(
                &admin,
                &staff,
                "promotions.html",
                context! { title => "Promotions", promotions => rows, generated },
            )
        }
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn promotion_enabled(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let id = parse_id(&id, "promotion", PromotionId::from_uuid)?;
        admin
            .engine
            .set_promotion_enabled(&staff.actor, id, form.get("enabled") == "1")
            .await
    }
    .await;
    match done {
        Ok(p) => admin.done(
            "/promotions",
            if p.enabled {
                "Promotion on."
            } else {
                "Promotion off."
            },
        ),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn coupons(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let id = parse_id(&id, "promotion", PromotionId::from_uuid)?;
        let count: usize = form.get("count").parse().map_err(|_| {
            Error::invalid(
                "count",
                format!("{:?} is not a whole number", form.get("count")),
            )
        })?;
        let uses = match form.get("uses") {
            "" => None,
            u => Some(
                u.parse::<u64>()
                    .map_err(|_| Error::invalid("uses", format!("{u:?} is not a whole number")))?,
            ),
        };
        admin
            .engine
            .generate_coupons(&staff.actor, id, form.get("prefix"), count, uses)
            .await
    }
    .await;
    match done {
        Ok(codes) => {
            let list: Vec<String> = codes.iter().take(200).map(|c| c.code.clone()).collect();
            let mut url = url::form_urlencoded::Serializer::new(String::new());
            url.append_pair("codes", &list.join(","));
            admin.done(
                &format!("/promotions?{}", url.finish()),
                &format!("{} codes made.", codes.len()),
            )
        }
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ExplainQuery {
    #[serde(default)]
    cart: String,
}

pub(crate) async fn explain(
    State(admin): State<Admin>,
    staff: Staff,
    Query(q): Query<ExplainQuery>,
) -> Response {
    let done = async {
        staff.actor.require(crate::actor::Permission::Promotions)?;
        let cart = parse_id(&q.cart, "cart", CartId::from_uuid)?;
        let priced = admin.engine.price_cart(&staff.actor, cart).await?;
        let eligibility = admin.engine.eligible_promotions(&staff.actor, cart).await?;
        Ok::<_, Error>((cart, priced, eligibility))
    }
    .await;
    let (cart, priced, eligibility) = match done {
        Ok(x) => x,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let lines: Vec<_> = priced
        .lines
        .iter()
        .map(|l| {
            context! {
                name => l.name.to_string(),
                quantity => l.quantity,
                unit => money(l.unit_price),
                adjustments => l.adjustments.iter().map(|a| format!("{}: -{}", a.label, money(a.amount))).collect::<Vec<_>>(),
                total => money(l.total),
            }
        })
        .collect();
    let eligibility: Vec<String> = eligibility
        .iter()
        .map(|e| match &e.reason {
            None => format!("{}: applies", e.name),
            Some(why) => format!("{}: does not apply ({why})", e.name),
        })
        .collect();
    admin.pages.page(
        &admin,
        &staff,
        "explain.html",
        context! {
            title => "What this cart costs",
            cart => cart.to_string(),
            lines,
            subtotal => money(priced.subtotal),
            discount => money(priced.discount_total),
            shipping => priced.shipping.as_ref().map(|s| money(s.amount)).unwrap_or_default(),
            tax => money(priced.tax_total),
            total => money(priced.total),
            eligibility,
        },
    )
}

pub(crate) async fn staff(State(admin): State<Admin>, staff: Staff) -> Response {
    let loaded = async {
        let members = admin.engine.list_staff(&staff.actor).await?;
        let roles = admin.engine.roles(&staff.actor).await?;
        Ok::<_, Error>((members, roles))
    }
    .await;
    let (members, roles) = match loaded {
        Ok(x) => x,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let members: Vec<_> = members
        .iter()
        .map(|m| {
            context! {
                id => m.id.to_string(),
                name => m.name.clone(),
                email => m.email.as_str().to_owned(),
                roles => m.roles.clone(),
                active => m.active,
                totp => if m.totp.as_ref().is_some_and(|t| t.confirmed) { "on" } else { "off" },
            }
        })
        .collect();
    let roles: Vec<_> = roles
        .iter()
        .map(|r| {
            context! {
                name => r.name.clone(),
                has => r.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                ceiling_text => r.refund_ceiling.as_ref().map(|l| l.values().map(|m| format!("{} {}", m.amount(), m.currency().code())).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
                permissions => r.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
                ceiling => match &r.refund_ceiling {
                    None => "none".to_owned(),
                    Some(limits) => limits.values().map(|m| money(*m)).collect::<Vec<_>>().join(", "),
                },
            }
        })
        .collect();
    admin.pages.page(
        &admin,
        &staff,
        "staff.html",
        context! {
            title => "Staff",
            members,
            roles,
            all_permissions => crate::actor::Permission::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        },
    )
}

pub(crate) async fn create_staff(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    let roles = form.all("role");
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    let new = NewStaff::new(
        form.get("email"),
        form.get("name"),
        form.get("password"),
        &roles,
    );
    match admin.engine.create_staff(&staff.actor, new).await {
        Ok(_) => admin.done("/staff", "Member of staff created."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn change_staff(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let id = parse_id(&id, "staff", StaffId::from_uuid)?;
        match form.get("do") {
            "roles" => {
                admin
                    .engine
                    .set_staff_roles(&staff.actor, id, form.all("role"))
                    .await?;
                Ok("Roles saved.")
            }
            "deactivate" => {
                admin
                    .engine
                    .set_staff_active(&staff.actor, id, false)
                    .await?;
                Ok("Switched off.")
            }
            "activate" => {
                admin
                    .engine
                    .set_staff_active(&staff.actor, id, true)
                    .await?;
                Ok("Switched on.")
            }
            other => Err(Error::invalid(
                "action",
                format!("{other:?} is not a staff action"),
            )),
        }
    }
    .await;
    match done {
        Ok(notice) => admin.done("/staff", notice),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    before: Option<u64>,
}

/// Audit entries per page.
const AUDIT_PAGE: usize = 100;

pub(crate) async fn audit(
    State(admin): State<Admin>,
    staff: Staff,
    Query(q): Query<AuditQuery>,
) -> Response {
    let events = match admin
        .engine
        .audit_log(&staff.actor, q.before, AUDIT_PAGE)
        .await
    {
        Ok(e) => e,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let entries: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            crate::event::EventKind::AdminChange {
                actor,
                action,
                subject,
            } => Some(context! {
                at => when(e.occurred_at),
                who => who(actor),
                action => action.replace('_', " "),
                subject => subject.clone(),
            }),
            _ => None,
        })
        .collect();
    let next = (events.len() == AUDIT_PAGE)
        .then(|| {
            events
                .last()
                .map(|e| admin.link(&format!("/audit?before={}", e.sequence)))
        })
        .flatten();
    admin.pages.page(
        &admin,
        &staff,
        "audit.html",
        context! { title => "Audit log", entries, next },
    )
}

pub(crate) async fn settings(State(admin): State<Admin>, staff: Staff) -> Response {
    if let Err(e) = staff.actor.require(crate::actor::Permission::Settings) {
        return admin.failed(Some(&staff), &e);
    }
    let locations = match admin.engine.locations().await {
        Ok(l) => l,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let c = admin.engine.config();
    let config = vec![
        ("Capture", format!("{:?}", c.capture)),
        (
            "Stock held at checkout for",
            format!("{} minutes", c.reservation_ttl.num_minutes()),
        ),
        (
            "Staff sessions last",
            format!("{} hours", c.staff_session_ttl.num_hours()),
        ),
        ("Images served from", c.media_url_prefix.clone()),
        (
            "Tax",
            admin.engine.tax_service_name().map_or_else(
                || "tables in code".to_owned(),
                |n| format!("the tax service {n}"),
            ),
        ),
        (
            "Carriers",
            match admin.engine.carrier_names().as_slice() {
                [] => "rate tables in code".to_owned(),
                names => format!("live rates and labels from {}", names.join(", ")),
            },
        ),
    ];
    admin.pages.page(
        &admin,
        &staff,
        "settings.html",
        context! {
            title => "Settings",
            providers => admin.engine.payment_providers(),
            locations => locations.iter().map(|l| context! { name => l.name().to_owned(), priority => l.priority() }).collect::<Vec<_>>(),
            config,
        },
    )
}

/// One shape of a tagged enum (an action or a condition), from its JSON
/// Schema: its `type`, what it does, and its fields.
fn shapes(schema: &serde_json::Value) -> Vec<minijinja::Value> {
    let variants = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    variants
        .iter()
        .filter_map(|v| {
            let props = v.get("properties")?.as_object()?;
            let name = props
                .get("type")
                .and_then(|t| t.get("const").or_else(|| t.get("enum").and_then(|e| e.get(0))))
                .and_then(|c| c.as_str())?
                .to_owned();
            let required: Vec<&str> = v
                .get("required")
                .and_then(|r| r.as_array())
                .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            let fields: Vec<String> = props
                .iter()
                .filter(|(k, _)| k.as_str() != "type")
                .map(|(k, p)| {
                    let about = p
                        .get("description")
                        .and_then(|d| d.as_str())
                        .unwrap_or_default();
                    let optional = if required.contains(&k.as_str()) { "" } else { " (optional)" };
                    format!("{k}{optional}: {about}")
                })
                .collect();
            Some(context! {
                name,
                about => v.get("description").and_then(|d| d.as_str()).unwrap_or_default().to_owned(),
                fields,
            })
        })
        .collect()
}

/// The parts of a promotion edited as JSON: everything but its header.
const RULE_KEYS: [&str; 7] = [
    "action",
    "conditions",
    "limits",
    "stacking",
    "reward_units",
    "unit_cap",
    "per_currency",
];

fn editor(
    admin: &Admin,
    staff: &Staff,
    promotion: Option<&crate::pricing::Promotion>,
    rules: Option<String>,
    status: axum::http::StatusCode,
    problem: Option<String>,
) -> Response {
    use axum::response::IntoResponse;
    let value = promotion
        .and_then(|p| serde_json::to_value(p).ok())
        .unwrap_or_else(|| {
            serde_json::json!({
                "action": {"type": "percent_off_order", "percent": "10"},
                "conditions": [{"type": "subtotal", "op": "gte", "amount": {"amount": "50.00", "currency": "USD"}}],
            })
        });
    let rules = rules.unwrap_or_else(|| {
        let picked: serde_json::Map<String, serde_json::Value> = RULE_KEYS
            .iter()
            .filter_map(|k| value.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        serde_json::to_string_pretty(&picked).unwrap_or_default()
    });
    let actions = shapes(schemars::schema_for!(crate::pricing::Action).as_value());
    let conditions = shapes(schemars::schema_for!(crate::pricing::Condition).as_value());
    let root = super::shapes::schema();
    let action_forms = super::shapes::forms(&root, "Action");
    let condition_forms = super::shapes::forms(&root, "Condition");
    let current_action = promotion.and_then(|p| serde_json::to_string(&p.action).ok());
    let current_conditions: Vec<String> = promotion
        .map(|p| {
            p.conditions
                .iter()
                .filter_map(|c| serde_json::to_string(c).ok())
                .collect()
        })
        .unwrap_or_default();
    let page = admin.pages.render(
        admin,
        Some(staff),
        "promotion.html",
        context! {
            title => promotion.map_or_else(|| "New promotion".to_owned(), |p| p.name.clone()),
            id => promotion.map(|p| p.id.to_string()),
            name => promotion.map(|p| p.name.clone()).unwrap_or_default(),
            coded => promotion.is_some_and(|p| p.coded),
            enabled => promotion.is_none_or(|p| p.enabled),
            priority => promotion.map_or(0, |p| p.priority),
            starts => promotion.and_then(|p| p.starts_at).map(|t| t.to_rfc3339()).unwrap_or_default(),
            ends => promotion.and_then(|p| p.ends_at).map(|t| t.to_rfc3339()).unwrap_or_default(),
            rules,
            actions,
            conditions,
            action_forms,
            condition_forms,
            current_action,
            current_conditions,
            problem,
        },
    );
    (status, page).into_response()
}

pub(crate) async fn new_promotion(State(admin): State<Admin>, staff: Staff) -> Response {
    if let Err(e) = staff.actor.require(crate::actor::Permission::Promotions) {
        return admin.failed(Some(&staff), &e);
    }
    editor(&admin, &staff, None, None, axum::http::StatusCode::OK, None)
}

pub(crate) async fn edit_promotion(
    State(admin): State<Admin>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let loaded = async {
        let id = parse_id(&id, "promotion", PromotionId::from_uuid)?;
        admin.engine.promotion(&staff.actor, id).await
    }
    .await;
    match loaded {
        Ok(p) => editor(
            &admin,
            &staff,
            Some(&p),
            None,
            axum::http::StatusCode::OK,
            None,
        ),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

/// Builds the promotion a form describes: the header from its fields, the
/// rules from its JSON, checked as the engine reads promotions.
fn promotion_of(
    form: &super::session::Fields,
    id: PromotionId,
) -> Result<crate::pricing::Promotion, Error> {
    let mut rules: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(form.get("rules"))
            .map_err(|e| Error::invalid("rules", format!("not a JSON object: {e}")))?;
    rules.retain(|k, _| RULE_KEYS.contains(&k.as_str()));
    let time = |field: &'static str| -> Result<serde_json::Value, Error> {
        match form.get(field) {
            "" => Ok(serde_json::Value::Null),
            t => chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| serde_json::json!(d.with_timezone(&chrono::Utc)))
                .map_err(|_| {
                    Error::invalid(
                        field,
                        format!("{t:?} is not a time like 2026-12-24T00:00:00Z"),
                    )
                }),
        }
    };
    let priority: u32 = match form.get("priority") {
        "" => 0,
        p => p
            .parse()
            .map_err(|_| Error::invalid("priority", format!("{p:?} is not a whole number")))?,
    };
    rules.insert("id".into(), serde_json::json!(id));
    rules.insert("name".into(), serde_json::json!(form.get("name")));
    rules.insert(
        "coded".into(),
        serde_json::json!(!form.get("coded").is_empty()),
    );
    rules.insert(
        "enabled".into(),
        serde_json::json!(!form.get("enabled").is_empty()),
    );
    rules.insert("priority".into(), serde_json::json!(priority));
    rules.insert("starts_at".into(), time("starts")?);
    rules.insert("ends_at".into(), time("ends")?);
    serde_json::from_value(serde_json::Value::Object(rules))
        .map_err(|e| Error::invalid("rules", e.to_string()))
}

pub(crate) async fn save_promotion(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    let id = match form.get("id") {
        "" => Ok(PromotionId::new()),
        i => parse_id(i, "promotion", PromotionId::from_uuid),
    };
    let saved = async {
        let id = id?;
        let promotion = promotion_of(&form, id)?;
        admin.engine.save_promotion(&staff.actor, promotion).await
    }
    .await;
    match saved {
        Ok(p) => admin.done(&format!("/promotions/{}/edit", p.id), "Promotion saved."),
        Err(Error::Forbidden) => admin.failed(Some(&staff), &Error::Forbidden),
        Err(e) => editor(
            &admin,
            &staff,
            None,
            Some(form.get("rules").to_owned()),
            axum::http::StatusCode::BAD_REQUEST,
            Some(format!("Not saved: {e}. Nothing was changed.")),
        ),
    }
}

/// A refund ceiling as staff type it: `20.00 USD, 15.00 EUR`.
fn ceiling(text: &str) -> Result<Vec<crate::money::Money>, Error> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (amount, code) = part.split_once(' ').ok_or_else(|| {
            Error::invalid(
                "refund ceiling",
                format!("{part:?} is not an amount and a currency"),
            )
        })?;
        let currency =
            crate::money::Currency::from_code(code.trim().to_ascii_uppercase().as_str())?;
        out.push(crate::money::Money::parse(amount.trim(), currency)?);
    }
    Ok(out)
}

pub(crate) async fn save_role(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    let saved = async {
        let mut permissions = Vec::new();
        for name in form.all("permission") {
            let p = crate::actor::Permission::ALL
                .into_iter()
                .find(|p| p.as_str() == name)
                .ok_or_else(|| {
                    Error::invalid("permission", format!("{name:?} is not a permission"))
                })?;
            permissions.push(p);
        }
        let mut role = crate::staff::Role::new(form.get("name"), permissions)?;
        let limits = ceiling(form.get("ceiling"))?;
        if !limits.is_empty() {
            role = role.with_refund_ceiling(&limits)?;
        }
        admin.engine.save_role(&staff.actor, role).await
    }
    .await;
    match saved {
        Ok(_) => admin.done("/staff", "Role saved."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn delete_role(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    Posted { staff, .. }: Posted,
) -> Response {
    match admin.engine.delete_role(&staff.actor, &name).await {
        Ok(()) => admin.done("/staff", "Role deleted."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

/// One action or condition from its form: a new promotion made with that
/// action, or an existing one given it (the action replaced, the condition
/// added), checked and saved by the engine.
pub(crate) async fn save_shape(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    let saved = async {
        staff.actor.require(crate::actor::Permission::Promotions)?;
        let root = super::shapes::schema();
        let part = form.get("part");
        let def = if part == "condition" {
            "Condition"
        } else {
            "Action"
        };
        let built = super::shapes::read(&root, def, form.get("shape"), &form)?;
        let mut doc = match form.get("id") {
            "" if part == "action" => serde_json::json!({
                "id": PromotionId::new(),
                "name": form.get("name"),
                "enabled": true,
            }),
            "" => {
                return Err(Error::invalid(
                    "promotion",
                    "save the promotion before adding conditions",
                ));
            }
            id => {
                let id = parse_id(id, "promotion", PromotionId::from_uuid)?;
                let current = admin.engine.promotion(&staff.actor, id).await?;
                serde_json::to_value(&current)
                    .map_err(|e| Error::invalid("promotion", e.to_string()))?
            }
        };
        let Some(fields) = doc.as_object_mut() else {
            return Err(Error::invalid("promotion", "not an object"));
        };
        if part == "condition" {
            let conditions = fields
                .entry("conditions")
                .or_insert_with(|| serde_json::json!([]));
            if let Some(list) = conditions.as_array_mut() {
                list.push(built);
            }
        } else {
            fields.insert("action".into(), built);
        }
        let promotion: crate::pricing::Promotion =
            serde_json::from_value(doc).map_err(|e| Error::invalid("promotion", e.to_string()))?;
        admin.engine.save_promotion(&staff.actor, promotion).await
    }
    .await;
    match saved {
        Ok(p) => admin.done(&format!("/promotions/{}/edit", p.id), "Promotion saved."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

/// Removes the `n`th condition of a promotion.
pub(crate) async fn remove_condition(
    State(admin): State<Admin>,
    Path((id, n)): Path<(String, usize)>,
    Posted { staff, .. }: Posted,
) -> Response {
    let saved = async {
        let id = parse_id(&id, "promotion", PromotionId::from_uuid)?;
        let mut promotion = admin.engine.promotion(&staff.actor, id).await?;
        if n >= promotion.conditions.len() {
            return Err(Error::invalid(
                "condition",
                format!("the promotion has no condition {}", n + 1),
            ));
        }
        promotion.conditions.remove(n);
        admin.engine.save_promotion(&staff.actor, promotion).await
    }
    .await;
    match saved {
        Ok(p) => admin.done(&format!("/promotions/{}/edit", p.id), "Condition removed."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}
