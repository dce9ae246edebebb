//! Customers: search, a profile (addresses, groups, orders, notes, store
//! credit), export of everything kept about one, and erasure.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

use super::render::{money, when, who};
use super::session::{Posted, Staff};
use super::{Admin, parse_id};
use crate::customer::CustomerQuery;
use crate::error::Error;
use crate::id::{CustomerId, IdempotencyKey};
use crate::money::{Currency, Money};
use crate::order::OrderQuery;

/// Customers per page.
const PAGE: usize = 50;

fn parse_customer(text: &str) -> Result<CustomerId, Error> {
    parse_id(text, "customer", CustomerId::from_uuid)
}

#[derive(Deserialize)]
pub(crate) struct CustomersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

pub(crate) async fn customers(
    State(admin): State<Admin>,
    staff: Staff,
    Query(q): Query<CustomersQuery>,
) -> Response {
    let found = async {
        let mut query = CustomerQuery::new(PAGE);
        if !q.q.trim().is_empty() {
            query.text = Some(q.q.trim().to_owned());
        }
        if !q.after.is_empty() {
            query.after = Some(parse_customer(&q.after)?);
        }
        admin.engine.find_customers(&staff.actor, &query).await
    }
    .await;
    let page = match found {
        Ok(p) => p,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let rows: Vec<_> = page
        .customers
        .iter()
        .map(|c| {
            context! {
                id => c.id().to_string(),
                email => c.email().as_str().to_owned(),
                name => c.name().to_owned(),
                since => when(c.created_at()),
            }
        })
        .collect();
    let next = page.next_after.map(|a| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        url.append_pair("q", &q.q)
            .append_pair("after", &a.to_string());
        admin.link(&format!("/customers?{}", url.finish()))
    });
    admin.pages.page(
        &admin,
        &staff,
        "customers.html",
        context! { title => "Customers", customers => rows, next, q => q.q },
    )
}

pub(crate) async fn customer(
    State(admin): State<Admin>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let loaded = async {
        let id = parse_customer(&id)?;
        let c = admin.engine.customer(&staff.actor, id).await?;
        let orders = if staff.may(crate::actor::Permission::Orders) {
            admin
                .engine
                .find_orders(&staff.actor, &OrderQuery::default().customer(id).limit(20))
                .await?
                .orders
        } else {
            Vec::new()
        };
        let groups = admin.engine.customer_groups(&staff.actor).await?;
        let mut currencies: Vec<Currency> = orders.iter().map(|o| o.pricing().currency).collect();
        currencies.push(Currency::USD);
        currencies.sort_by_key(|c| c.code());
        currencies.dedup();
        let mut credit = Vec::new();
        for currency in currencies {
            let balance = admin
                .engine
                .store_credit(&staff.actor, id, currency)
                .await?;
            if !balance.is_zero() || currency == Currency::USD {
                credit.push(money(balance));
            }
        }
        Ok::<_, Error>((c, orders, groups, credit))
    }
    .await;
    let (c, orders, groups, credit) = match loaded {
        Ok(x) => x,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let view = context! {
        id => c.id().to_string(),
        email => c.email().as_str().to_owned(),
        name => c.name().to_owned(),
        since => when(c.created_at()),
        groups => groups.iter().filter(|g| c.groups().contains(&g.id())).map(|g| g.name().to_owned()).collect::<Vec<_>>().join(", "),
        addresses => c.addresses().iter().map(|a| format!("{}, {}, {}, {} {}, {}", a.name, a.line1, a.city, a.region, a.postal_code, a.country)).collect::<Vec<_>>(),
        orders => super::orders::rows(&orders),
        credit => credit.join(", "),
        notes => c.notes().iter().map(|n| context! {
            at => when(n.at),
            author => who(&n.author),
            internal => n.visibility == crate::note::Visibility::Internal,
            text => n.text.clone(),
        }).collect::<Vec<_>>(),
    };
    admin.pages.page(
        &admin,
        &staff,
        "customer.html",
        context! { title => c.email().as_str().to_owned(), c => view },
    )
}

pub(crate) async fn export(
    State(admin): State<Admin>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let made = async {
        let id = parse_customer(&id)?;
        let export = admin.engine.export_customer(&staff.actor, id).await?;
        serde_json::to_vec_pretty(&export).map_err(|e| Error::Storage {
            message: "could not write the export".into(),
            source: Some(std::sync::Arc::new(e)),
        })
    }
    .await;
    match made {
        Ok(json) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"customer.json\"",
                ),
            ],
            json,
        )
            .into_response(),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

/// What a customer action leads to.
enum Done {
    /// Back to the profile, with a notice.
    Notice(CustomerId, &'static str),
    /// A gift card's code, shown once in this answer (never in a URL).
    Issued(CustomerId, String, String),
    /// The customer's personal data are gone.
    Erased,
}

pub(crate) async fn action(
    State(admin): State<Admin>,
    Path((id, action)): Path<(String, String)>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let id = parse_customer(&id)?;
        let actor = &staff.actor;
        let amount = || -> Result<Money, Error> {
            let currency = Currency::from_code(form.get("currency").to_ascii_uppercase().as_str())?;
            Ok(Money::parse(form.get("amount"), currency)?)
        };
        let key = |what: &str| {
            IdempotencyKey::new(format!("admin-{what}-{}", uuid::Uuid::new_v4().simple()))
        };
        match action.as_str() {
            "note" => {
                admin
                    .engine
                    .add_customer_note(
                        actor,
                        id,
                        form.get("text"),
                        crate::note::Visibility::Internal,
                    )
                    .await?;
                Ok(Done::Notice(id, "Note added."))
            }
            "credit" => {
                admin
                    .engine
                    .grant_store_credit(actor, id, amount()?, form.get("reason"), &key("credit")?)
                    .await?;
                Ok(Done::Notice(id, "Store credit granted."))
            }
            "gift-card" => {
                let amount = amount()?;
                let card = crate::giftcards::NewGiftCard::new(amount).customer(id);
                let issued = admin
                    .engine
                    .issue_gift_card(actor, card, &key("card")?)
                    .await?;
                Ok(Done::Issued(id, issued.code, money(amount)))
            }
            "erase" => {
                if form.get("confirm") != "ERASE" {
                    return Err(Error::invalid("confirm", "type ERASE to confirm"));
                }
                admin.engine.erase_customer(actor, id).await?;
                Ok(Done::Erased)
            }
            other => Err(Error::invalid(
                "action",
                format!("{other:?} is not a customer action"),
            )),
        }
    }
    .await;
    match done {
        Ok(Done::Notice(id, notice)) => admin.done(&format!("/customers/{id}"), notice),
        Ok(Done::Issued(id, code, amount)) => admin.pages.page(
            &admin,
            &staff,
            "issued.html",
            context! { title => "Gift card issued", customer => id.to_string(), code, amount },
        ),
        Ok(Done::Erased) => admin.done("/customers", "The customer's personal data were erased."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}
