//! Promotions (switch on and off, bulk codes, the cart explanation), staff
//! and roles, the audit log, and the settings (read-only).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use super::Admin;
use super::render::{money, when, who};
use super::session::{Posted, Staff};
use crate::engine::staff::NewStaff;
use crate::error::Error;
use crate::id::{CartId, PromotionId, StaffId};

fn parse<T>(text: &str, what: &'static str, make: fn(uuid::Uuid) -> T) -> Result<T, Error> {
    text.trim()
        .parse::<uuid::Uuid>()
        .map(make)
        .map_err(|_| Error::invalid(what, format!("{text:?} is not an id")))
}

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
        let id = parse(&id, "promotion", PromotionId::from_uuid)?;
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
        let id = parse(&id, "promotion", PromotionId::from_uuid)?;
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
        let cart = parse(&q.cart, "cart", CartId::from_uuid)?;
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
        context! { title => "Staff", members, roles },
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
        let id = parse(&id, "staff", StaffId::from_uuid)?;
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
    let locations = match admin.engine.inner.store.locations().await {
        Ok(l) => l,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let c = &admin.engine.inner.config;
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
            if admin.engine.inner.tax_service.is_some() {
                "a tax service".to_owned()
            } else {
                "tables in code".to_owned()
            },
        ),
        (
            "Carriers",
            if admin.engine.inner.carriers.is_some() {
                "live rates from carriers".to_owned()
            } else {
                "rate tables in code".to_owned()
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
