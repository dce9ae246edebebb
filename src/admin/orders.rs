//! Orders: search and filters, an order's whole story, and what staff do
//! to it (capture, ship, cancel, refund, return requests, notes).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::NaiveDate;
use minijinja::context;
use serde::Deserialize;

use super::dashboard::status_name;
use super::render::{money, when, who, words};
use super::session::{Posted, Staff};
use super::{Admin, parse_id};
use crate::error::Error;
use crate::id::{IdempotencyKey, OrderId, ReturnCaseId};
use crate::money::Money;
use crate::order::{Order, OrderQuery, OrderStatus};

/// Orders per page.
const PAGE: usize = 50;

#[derive(Deserialize)]
pub(crate) struct OrdersQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    pending: String,
    #[serde(default)]
    before: String,
    /// An order's id, or a customer's email (or part of it).
    #[serde(default)]
    q: String,
}

fn parse_order(text: &str) -> Result<OrderId, Error> {
    parse_id(text, "order", OrderId::from_uuid)
}

fn day(text: &str, field: &'static str) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Some(d.and_utc()))
        .ok_or_else(|| Error::invalid(field, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

const STATUSES: [(&str, OrderStatus); 4] = [
    ("placed", OrderStatus::Placed),
    ("processing", OrderStatus::Processing),
    ("completed", OrderStatus::Completed),
    ("cancelled", OrderStatus::Cancelled),
];

fn short(id: OrderId) -> String {
    id.to_string()
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

fn row(o: &Order) -> minijinja::Value {
    context! {
        id => o.id().to_string(),
        short => short(o.id()),
        placed => when(o.placed_at()),
        email => o.email().map(|e| e.as_str().to_owned()).unwrap_or_default(),
        status => status_name(o.status()),
        total => money(o.total()),
    }
}

pub(crate) fn rows(orders: &[Order]) -> Vec<minijinja::Value> {
    orders.iter().map(row).collect()
}

pub(crate) async fn orders(
    State(admin): State<Admin>,
    staff: Staff,
    Query(q): Query<OrdersQuery>,
) -> Response {
    // An order's id goes straight to the order.
    if let Ok(id) = q.q.trim().parse::<uuid::Uuid>() {
        return admin.done(&format!("/orders/{}", OrderId::from_uuid(id)), "");
    }
    let found = async {
        let mut query = OrderQuery::default()
            .limit(PAGE)
            .pending_work(!q.pending.is_empty());
        if !q.q.trim().is_empty() {
            // A customer's email: their orders (the search must name one).
            let mut customers = crate::customer::CustomerQuery::new(2);
            customers.text = Some(q.q.trim().to_owned());
            let page = admin
                .engine
                .find_customers(&staff.actor, &customers)
                .await?;
            match page.customers.as_slice() {
                [one] => query.customer = Some(one.id()),
                [] => {
                    return Err(Error::not_found("customer", q.q.trim()));
                }
                _ => {
                    return Err(Error::invalid(
                        "search",
                        format!(
                            "{:?} matches more than one customer: give more of the email",
                            q.q.trim()
                        ),
                    ));
                }
            }
        }
        query.status = match q.status.as_str() {
            "" => None,
            s => Some(
                STATUSES
                    .iter()
                    .find(|(n, _)| *n == s)
                    .map(|(_, st)| *st)
                    .ok_or_else(|| Error::invalid("status", format!("{s:?} is not a status")))?,
            ),
        };
        query.placed_from = day(&q.from, "placed from")?;
        query.placed_until = day(&q.until, "placed before")?;
        if !q.before.is_empty() {
            query.before = Some(parse_order(&q.before)?);
        }
        admin.engine.find_orders(&staff.actor, &query).await
    }
    .await;
    let page = match found {
        Ok(p) => p,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let next = page.next_before.map(|b| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        url.append_pair("status", &q.status)
            .append_pair("from", &q.from)
            .append_pair("until", &q.until)
            .append_pair("pending", &q.pending)
            .append_pair("q", &q.q)
            .append_pair("before", &b.to_string());
        admin.link(&format!("/orders?{}", url.finish()))
    });
    admin.pages.page(
        &admin,
        &staff,
        "orders.html",
        context! {
            title => "Orders",
            orders => rows(&page.orders),
            next,
            statuses => STATUSES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            status => q.status, from => q.from, until => q.until, pending => !q.pending.is_empty(), q => q.q,
        },
    )
}

fn story(o: &Order) -> minijinja::Value {
    let p = o.pricing();
    let lines: Vec<_> = p
        .lines
        .iter()
        .map(|l| {
            context! {
                id => l.line_id.to_string(),
                name => l.name.to_string(),
                sku => l.sku.as_str().to_owned(),
                quantity => l.quantity,
                shipped => o.shipped(l.line_id),
                returned => o.returned(l.line_id),
                total => money(l.total),
            }
        })
        .collect();
    let payments: Vec<_> = o
        .payments()
        .map(|pay| {
            context! {
                provider => pay.provider().to_owned(),
                status => words(&pay.status()),
                authorized => money(pay.authorized()),
                captured => money(pay.captured()),
                refunded => money(pay.refunded()),
            }
        })
        .collect();
    let shipments: Vec<_> = o
        .shipments()
        .iter()
        .map(|s| {
            let bought = s.label.as_ref().and_then(|l| l.label.as_ref());
            context! {
                id => s.id.to_string(),
                at => when(s.shipped_at),
                units => s.items.iter().map(|i| u64::from(i.quantity)).sum::<u64>(),
                carrier => s.carrier.clone(),
                tracking => bought.map_or_else(|| s.tracking_number.clone(), |l| l.tracking_number.clone()),
                label => bought.map(|l| l.url.clone()),
                label_error => s.label.as_ref().map(|l| l.error.clone()).filter(|e| !e.is_empty()),
                delivered => s.delivered_at.map(when),
            }
        })
        .collect();
    let returns: Vec<_> = o
        .return_cases()
        .iter()
        .map(|c| {
            use crate::domain::after_sale::ReturnCaseState as S;
            context! {
                id => c.id.to_string(),
                state => words(&c.state),
                units => c.items.iter().map(|i| u64::from(i.quantity)).sum::<u64>(),
                reason => words(&c.reason),
                note => c.note.clone(),
                open => c.state == S::Requested,
                approved => c.state == S::Approved,
                received => c.state == S::Received,
            }
        })
        .collect();
    let notes: Vec<_> = o
        .notes()
        .iter()
        .map(|n| {
            context! {
                at => when(n.at),
                author => who(&n.author),
                internal => n.visibility == crate::note::Visibility::Internal,
                text => n.text.clone(),
            }
        })
        .collect();
    let history: Vec<_> = o
        .history()
        .iter()
        .map(|h| {
            context! {
                at => when(h.at),
                who => who(&h.actor),
                what => words(&h.change),
                cause => h.cause.clone(),
            }
        })
        .collect();
    context! {
        id => o.id().to_string(),
        short => short(o.id()),
        placed => when(o.placed_at()),
        email => o.email().map(|e| e.as_str().to_owned()).unwrap_or_default(),
        status => status_name(o.status()),
        total => money(o.total()),
        currency => p.currency.code(),
        subtotal => money(p.subtotal),
        discount => money(p.discount_total),
        shipping => p.shipping.as_ref().map(|s| money(s.amount)).unwrap_or_else(|| money(Money::zero(p.currency))),
        tax => money(p.tax_total),
        methods => p.shipping_options.iter().map(|r| context! { code => r.code.clone(), name => r.name.clone(), price => money(r.price) }).collect::<Vec<_>>(),
        method => p.shipping.as_ref().map(|s| s.code.clone()),
        lines, payments, shipments, returns, notes, history,
    }
}

pub(crate) async fn order(
    State(admin): State<Admin>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let loaded = async {
        staff.actor.require(crate::actor::Permission::Orders)?;
        let id = parse_order(&id)?;
        admin.engine.order(&staff.actor, id).await
    }
    .await;
    match loaded {
        Ok(o) => {
            let variants = variants_for_sale(&admin, &staff).await;
            admin.pages.page(
                &admin,
                &staff,
                "order.html",
                context! { title => format!("Order {}", short(o.id())), o => story(&o), variants },
            )
        }
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

/// Active products' variants, for the exchange and edit forms (the first
/// 100 by title).
async fn variants_for_sale(admin: &Admin, staff: &Staff) -> Vec<minijinja::Value> {
    let query = crate::catalog::ProductQuery::new(100)
        .sort(crate::catalog::ProductSort::Title)
        .status(crate::catalog::Status::Active);
    let Ok(page) = admin.engine.find_products(&staff.actor, &query).await else {
        return Vec::new();
    };
    page.products
        .iter()
        .flat_map(|p| {
            p.variants()
                .iter()
                .filter(|v| v.status() == crate::catalog::Status::Active)
                .map(move |v| {
                    context! {
                        id => v.id().to_string(),
                        name => format!("{} ({})", p.title(), v.sku().as_str()),
                        price => v.prices().next().map(|m| money(*m)),
                    }
                })
        })
        .collect()
}

/// A fresh idempotency key for a staff action: a form sent twice is two
/// actions, as staff meant (each shown afterwards in the history).
fn key(what: &str) -> Result<IdempotencyKey, Error> {
    Ok(IdempotencyKey::new(format!(
        "admin-{what}-{}",
        uuid::Uuid::new_v4().simple()
    ))?)
}

fn parse_line(text: &str) -> Result<crate::id::LineId, Error> {
    parse_id(text, "line", crate::id::LineId::from_uuid)
}

fn parse_variant(text: &str) -> Result<crate::id::VariantId, Error> {
    parse_id(text, "variant", crate::id::VariantId::from_uuid)
}

fn count(text: &str) -> Result<u32, Error> {
    text.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::invalid("quantity", format!("{text:?} is not a number of units")))
}

/// The edit a form describes: units of a variant added, units of a line
/// removed, another shipping method.
fn edit_of(form: &super::session::Fields) -> Result<crate::after_sale::EditRequest, Error> {
    let mut edit = crate::after_sale::EditRequest::default().reason("edited by staff");
    if !form.get("add").is_empty() {
        let quantity = match form.get("add_quantity") {
            "" => 1,
            q => count(q)?,
        };
        edit = edit.add_units(vec![(parse_variant(form.get("add"))?, quantity)]);
    }
    if !form.get("remove_line").is_empty() {
        edit = edit.remove_units(vec![crate::order::LineQuantity {
            line_id: parse_line(form.get("remove_line"))?,
            quantity: count(form.get("remove_quantity"))?,
        }]);
    }
    if !form.get("method").is_empty() {
        edit = edit.shipping_method(Some(form.get("method").to_owned()));
    }
    Ok(edit)
}

/// What an edit's preview shows.
type Previewed = (OrderId, crate::after_sale::EditPreview);

/// An order edit: the first post previews it, with what it adds, removes
/// and costs; the confirming post (carrying the difference shown) makes it.
pub(crate) async fn edit(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let id = parse_order(&id)?;
        let edit = edit_of(&form)?;
        if form.get("expected").is_empty() {
            let preview = admin
                .engine
                .preview_order_edit(&staff.actor, id, &edit)
                .await?;
            return Ok::<_, Error>(Err::<OrderId, Previewed>((id, preview)));
        }
        let order = admin.engine.order(&staff.actor, id).await?;
        let expected = Money::parse(form.get("expected"), order.pricing().currency)?;
        admin
            .engine
            .confirm_order_edit(&staff.actor, id, edit, expected, &key("edit")?)
            .await?;
        Ok(Ok(id))
    }
    .await;
    match done {
        Ok(Ok(id)) => admin.done(&format!("/orders/{id}"), "Order edited."),
        Ok(Err((id, preview))) => admin.pages.page(
            &admin,
            &staff,
            "edit.html",
            context! {
                title => "Check the edit",
                id => id.to_string(),
                added => preview.added.iter().map(|l| format!("{} × {} — {}", l.quantity, l.name, money(l.total))).collect::<Vec<_>>(),
                added_value => money(preview.added_value),
                removed_value => money(preview.removed_value),
                shipping => preview.shipping.as_ref().map(|s| format!(
                    "{} ({}) instead of {} ({})",
                    s.after.name, money(s.after.total), s.before.name, money(s.before.total)
                )),
                difference => money(preview.difference),
                difference_raw => preview.difference.amount().to_string(),
                add => form.get("add"),
                add_quantity => form.get("add_quantity"),
                remove_line => form.get("remove_line"),
                remove_quantity => form.get("remove_quantity"),
                method => form.get("method"),
            },
        ),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

fn case(form: &super::session::Fields) -> Result<ReturnCaseId, Error> {
    form.get("case")
        .parse::<uuid::Uuid>()
        .map(ReturnCaseId::from_uuid)
        .map_err(|_| {
            Error::invalid(
                "return request",
                format!("{:?} is not an id", form.get("case")),
            )
        })
}

pub(crate) async fn action(
    State(admin): State<Admin>,
    Path((id, action)): Path<(String, String)>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let id = parse_order(&id)?;
        let actor = &staff.actor;
        let e = &admin.engine;
        let notice = match action.as_str() {
            "capture" => {
                e.capture(actor, id).await?;
                "Payment captured."
            }
            "ship" => {
                let shipped =
                    ship_everything(&admin, actor, id, form.get("carrier"), form.get("tracking"))
                        .await?;
                if form.get("label").is_empty() {
                    "Shipped."
                } else {
                    // A label from the carrier named, by the method the
                    // buyer chose when it is that carrier's.
                    let carrier = form.get("carrier");
                    let method = shipped
                        .pricing()
                        .shipping
                        .as_ref()
                        .map(|s| s.code.clone())
                        .filter(|c| c.starts_with(&format!("{carrier}:")))
                        .unwrap_or_else(|| form.get("method").to_owned());
                    let shipment = shipped
                        .shipments()
                        .last()
                        .map(|s| s.id)
                        .ok_or_else(|| Error::invalid("shipment", "nothing was shipped"))?;
                    e.purchase_label(actor, id, shipment, carrier, &method)
                        .await?;
                    "Shipped, label bought."
                }
            }
            "exchange" => {
                let line = parse_line(form.get("line"))?;
                let variant = parse_variant(form.get("variant"))?;
                let quantity = count(form.get("quantity"))?;
                let exchange = crate::after_sale::NewExchange::new(
                    vec![crate::order::LineQuantity {
                        line_id: line,
                        quantity,
                    }],
                    vec![(variant, quantity)],
                    crate::order::ReturnReason::SizeOrFit,
                    key("exchange")?,
                );
                e.create_exchange(actor, id, exchange).await?;
                "Exchange recorded."
            }
            "cancel" => {
                e.cancel(actor, id, form.get("reason")).await?;
                "Order cancelled."
            }
            "refund" => {
                let order = e.order(actor, id).await?;
                let amount = Money::parse(form.get("amount"), order.pricing().currency)?;
                let refund = crate::money_path::ManualRefund::new(
                    amount,
                    form.get("reason"),
                    key("refund")?,
                );
                e.refund(actor, id, refund).await?;
                "Refunded."
            }
            "note" => {
                let visibility = if form.get("customer").is_empty() {
                    crate::note::Visibility::Internal
                } else {
                    crate::note::Visibility::Customer
                };
                e.add_order_note(actor, id, form.get("text"), visibility)
                    .await?;
                "Note added."
            }
            "approve-return" => {
                e.approve_return(actor, id, case(&form)?, "").await?;
                "Return approved."
            }
            "reject-return" => {
                e.reject_return(actor, id, case(&form)?, form.get("reason"))
                    .await?;
                "Return rejected."
            }
            "receive-return" => {
                receive_everything(
                    &admin,
                    actor,
                    id,
                    case(&form)?,
                    !form.get("restock").is_empty(),
                )
                .await?;
                "Return received."
            }
            "refund-return" => {
                e.refund_return(
                    actor,
                    id,
                    case(&form)?,
                    crate::after_sale::RefundReturn::new(key("return")?),
                )
                .await?;
                "Return refunded."
            }
            other => {
                return Err(Error::invalid(
                    "action",
                    format!("{other:?} is not an order action"),
                ));
            }
        };
        Ok::<_, Error>((id, notice))
    }
    .await;
    match done {
        Ok((id, notice)) => admin.done(&format!("/orders/{id}"), notice),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

/// Ships every unit not shipped yet.
async fn ship_everything(
    admin: &Admin,
    actor: &crate::actor::Actor,
    id: OrderId,
    carrier: &str,
    tracking: &str,
) -> crate::Result<Order> {
    let items = admin.engine.order(actor, id).await?.left_to_ship();
    if items.is_empty() {
        return Err(Error::invalid("shipment", "every unit has shipped"));
    }
    admin
        .engine
        .ship(
            actor,
            id,
            crate::fulfillment::ShipmentRequest::new(items)
                .carrier(carrier)
                .tracking_number(tracking),
        )
        .await
}

/// Receives every unit a return request named, as resellable, back where
/// it shipped from when `restock`.
async fn receive_everything(
    admin: &Admin,
    actor: &crate::actor::Actor,
    id: OrderId,
    case: ReturnCaseId,
    restock: bool,
) -> crate::Result<Order> {
    let o = admin.engine.order(actor, id).await?;
    let c = o.return_case(case)?;
    let received = c
        .items
        .iter()
        .map(|i| {
            let r = crate::order::ReceivedUnits::new(
                i.line_id,
                i.quantity,
                crate::order::ItemCondition::Resellable,
            );
            match o.shipped_from(i.line_id) {
                Some(at) if restock => r.restock_at(at),
                _ => r,
            }
        })
        .collect();
    admin.engine.receive_return(actor, id, case, received).await
}
