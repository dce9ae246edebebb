//! Price lists (per currency, for groups, in a window) and sales channels.

use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::context;

use super::render::{money, when};
use super::session::{Posted, Staff};
use super::{Admin, parse_id};
use crate::error::Error;
use crate::id::{ChannelId, PriceListId};
use crate::money::{Currency, Money};
use crate::pricing::{PriceList, PriceListKind};

fn currency(text: &str) -> Result<Currency, Error> {
    Ok(Currency::from_code(
        text.trim().to_ascii_uppercase().as_str(),
    )?)
}

fn kind_name(kind: PriceListKind) -> &'static str {
    match kind {
        PriceListKind::Sale => "sale",
        _ => "standard",
    }
}

pub(crate) async fn price_lists(State(admin): State<Admin>, staff: Staff) -> Response {
    let lists = match admin.engine.price_lists(&staff.actor).await {
        Ok(l) => l,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let rows: Vec<_> = lists
        .iter()
        .map(|l| {
            context! {
                id => l.id.to_string(),
                name => l.name.clone(),
                kind => kind_name(l.kind),
                currency => l.currency.code(),
                priority => l.priority,
                starts => l.starts_at.map(when),
                ends => l.ends_at.map(when),
                prices => l.prices.len(),
            }
        })
        .collect();
    admin.pages.page(
        &admin,
        &staff,
        "price_lists.html",
        context! { title => "Price lists", lists => rows },
    )
}

pub(crate) async fn create_price_list(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    let made = async {
        let kind = if form.get("kind") == "sale" {
            PriceListKind::Sale
        } else {
            PriceListKind::Standard
        };
        let priority: u32 = match form.get("priority") {
            "" => 0,
            p => p
                .parse()
                .map_err(|_| Error::invalid("priority", format!("{p:?} is not a whole number")))?,
        };
        let list = PriceList::new(
            form.get("name"),
            kind,
            priority,
            currency(form.get("currency"))?,
        );
        admin.engine.save_price_list(&staff.actor, list).await
    }
    .await;
    match made {
        Ok(list) => admin.done(&format!("/price-lists/{}", list.id), "Price list created."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

async fn find(admin: &Admin, staff: &Staff, id: &str) -> Result<PriceList, Error> {
    let id = parse_id(id, "price list", PriceListId::from_uuid)?;
    admin
        .engine
        .price_lists(&staff.actor)
        .await?
        .into_iter()
        .find(|l| l.id == id)
        .ok_or_else(|| Error::not_found("price list", id))
}

pub(crate) async fn price_list(
    State(admin): State<Admin>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let list = match find(&admin, &staff, &id).await {
        Ok(l) => l,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let ids: Vec<_> = list.prices.iter().map(|p| p.variant_id).collect();
    let entries = match admin.engine.catalog_entries(&ids).await {
        Ok(e) => e,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let prices: Vec<_> = list
        .prices
        .iter()
        .map(|p| {
            context! {
                variant => p.variant_id.to_string(),
                sku => entries.get(&p.variant_id).map_or_else(|| p.variant_id.to_string(), |e| e.variant.sku().as_str().to_owned()),
                min => p.min_quantity,
                price => money(p.price),
            }
        })
        .collect();
    admin.pages.page(
        &admin,
        &staff,
        "price_list.html",
        context! {
            title => list.name.clone(),
            id => list.id.to_string(),
            name => list.name.clone(),
            kind => kind_name(list.kind),
            currency => list.currency.code(),
            prices,
        },
    )
}

pub(crate) async fn change_price_list(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let mut list = find(&admin, &staff, &id).await?;
        let id = list.id;
        let notice = match form.get("do") {
            "set" => {
                let entry = admin.engine.variant_by_sku(form.get("sku")).await?;
                let min: u32 = match form.get("min") {
                    "" => 1,
                    m => m.parse().ok().filter(|m| *m > 0).ok_or_else(|| {
                        Error::invalid(
                            "minimum quantity",
                            format!("{m:?} is not a number of units"),
                        )
                    })?,
                };
                let price = Money::parse(form.get("amount"), list.currency)?;
                let variant = entry.variant.id();
                list.prices
                    .retain(|p| !(p.variant_id == variant && p.min_quantity == min));
                list = list.with_price(variant, min, price);
                "Price set."
            }
            "remove" => {
                let variant = parse_id(
                    form.get("variant"),
                    "variant",
                    crate::id::VariantId::from_uuid,
                )?;
                let min: u32 = form.get("min").parse().unwrap_or(1);
                list.prices
                    .retain(|p| !(p.variant_id == variant && p.min_quantity == min));
                "Price removed."
            }
            other => {
                return Err(Error::invalid(
                    "action",
                    format!("{other:?} is not a price list action"),
                ));
            }
        };
        admin.engine.save_price_list(&staff.actor, list).await?;
        Ok::<_, Error>((id, notice))
    }
    .await;
    match done {
        Ok((id, notice)) => admin.done(&format!("/price-lists/{id}"), notice),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn channels(State(admin): State<Admin>, staff: Staff) -> Response {
    if let Err(e) = staff.actor.require(crate::actor::Permission::Settings) {
        return admin.failed(Some(&staff), &e);
    }
    let channels = match admin.engine.channels().await {
        Ok(c) => c,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let rows: Vec<_> = channels
        .iter()
        .map(|c| {
            context! {
                id => c.id.to_string(),
                name => c.name.clone(),
                currencies => c.currencies.iter().map(|c| c.code()).collect::<Vec<_>>().join(", "),
                products => c.products.as_ref().map_or_else(|| "all".to_owned(), |p| p.len().to_string()),
                active => c.active,
            }
        })
        .collect();
    admin.pages.page(
        &admin,
        &staff,
        "channels.html",
        context! { title => "Sales channels", channels => rows },
    )
}

pub(crate) async fn create_channel(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    let made = async {
        let mut currencies = Vec::new();
        for code in form
            .get("currencies")
            .split(',')
            .filter(|c| !c.trim().is_empty())
        {
            currencies.push(currency(code)?);
        }
        let channel =
            crate::channel::SalesChannel::new(form.get("name"), &currencies, admin.engine.now());
        admin.engine.save_channel(&staff.actor, channel).await
    }
    .await;
    match made {
        Ok(_) => admin.done("/channels", "Channel created."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn change_channel(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let id = parse_id(&id, "channel", ChannelId::from_uuid)?;
        let mut channel = admin.engine.channel(id).await?;
        channel.active = form.get("active") == "1";
        admin.engine.save_channel(&staff.actor, channel).await
    }
    .await;
    match done {
        Ok(c) => admin.done(
            "/channels",
            if c.active {
                "Channel on."
            } else {
                "Channel off."
            },
        ),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}
