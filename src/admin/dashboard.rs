//! The dashboard: sales per currency today and over 7 and 30 days, orders
//! by state, top products, a chart of the last 30 days (SVG drawn here),
//! and low-stock variants.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::response::Response;
use chrono::{Duration, Utc};
use minijinja::context;
use rust_decimal::Decimal;

use super::Admin;
use super::render::money;
use super::session::Staff;
use crate::actor::Permission;
use crate::money::{Currency, Money};
use crate::order::{OrderQuery, OrderStatus};

/// The most orders the dashboard reads (newest first); past that its sums
/// say they are partial.
const MAX_ORDERS: usize = 5_000;
/// The most products it looks through for low stock.
const MAX_PRODUCTS: usize = 2_000;
/// Chart size, in pixels.
const CHART_WIDTH: i64 = 600;
const CHART_HEIGHT: i64 = 160;

pub(crate) async fn dashboard(State(admin): State<Admin>, staff: Staff) -> Response {
    let sales = if staff.may(Permission::Orders) {
        match sales(&admin, &staff).await {
            Ok(s) => Some(s),
            Err(e) => return admin.failed(Some(&staff), &e),
        }
    } else {
        None
    };
    let low = if staff.may(Permission::Inventory) || staff.may(Permission::Catalog) {
        match low_stock(&admin).await {
            Ok(l) => Some(l),
            Err(e) => return admin.failed(Some(&staff), &e),
        }
    } else {
        None
    };
    let ctx = match sales {
        Some(s) => context! {
            title => "Dashboard",
            sales => s.sales, states => s.states, top => s.top, chart => s.chart,
            partial => s.partial, scanned => s.scanned, low,
        },
        None => context! { title => "Dashboard", sales => (), low },
    };
    admin.pages.page(&admin, &staff, "dashboard.html", ctx)
}

struct Sales {
    sales: Vec<minijinja::Value>,
    states: Vec<minijinja::Value>,
    top: Vec<minijinja::Value>,
    chart: Option<minijinja::Value>,
    partial: bool,
    scanned: usize,
}

#[derive(Default, Clone, Copy)]
struct Sums {
    today: Decimal,
    week: Decimal,
    month: Decimal,
}

async fn sales(admin: &Admin, staff: &Staff) -> crate::Result<Sales> {
    let now = admin.engine.now();
    let today = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |d| d.and_utc());
    let month_start = today - Duration::days(29);
    let week_start = today - Duration::days(6);
    let mut sums: BTreeMap<Currency, Sums> = BTreeMap::new();
    let mut states: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut daily: BTreeMap<Currency, [Decimal; 30]> = BTreeMap::new();
    let mut units: HashMap<String, u64> = HashMap::new();
    let mut scanned = 0;
    let mut before = None;
    let mut partial = false;
    loop {
        let mut query = OrderQuery::default()
            .placed_from(month_start)
            .limit(crate::store::MAX_PAGE_SIZE);
        query.before = before;
        let page = admin.engine.find_orders(&staff.actor, &query).await?;
        for order in &page.orders {
            scanned += 1;
            *states.entry(status_name(order.status())).or_default() += 1;
            if order.status() == OrderStatus::Cancelled {
                continue;
            }
            let total = order.total();
            let at = order.placed_at();
            let s = sums.entry(total.currency()).or_default();
            s.month += total.amount();
            if at >= week_start {
                s.week += total.amount();
            }
            if at >= today {
                s.today += total.amount();
            }
            let day = usize::try_from((at - month_start).num_days()).unwrap_or(0);
            if let Some(slot) = daily
                .entry(total.currency())
                .or_insert([Decimal::ZERO; 30])
                .get_mut(day)
            {
                *slot += total.amount();
            }
            for line in &order.pricing().lines {
                *units.entry(line.name.to_string()).or_default() += u64::from(line.quantity);
            }
        }
        match page.next_before {
            Some(next) if scanned < MAX_ORDERS => before = Some(next),
            Some(_) => {
                partial = true;
                break;
            }
            None => break,
        }
    }
    let shown = |c: Currency, d: Decimal| money(Money::new(d, c));
    let sales = sums
        .iter()
        .map(|(c, s)| {
            context! {
                currency => c.code(),
                today => shown(*c, s.today),
                week => shown(*c, s.week),
                month => shown(*c, s.month),
            }
        })
        .collect();
    let mut top: Vec<(String, u64)> = units.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(5);
    // The chart: the currency with the most sales over 30 days.
    let main = sums
        .iter()
        .max_by(|a, b| a.1.month.cmp(&b.1.month))
        .map(|(c, _)| *c);
    let chart = main.and_then(|c| daily.get(&c).map(|days| chart(c, days, month_start)));
    Ok(Sales {
        sales,
        states: states
            .into_iter()
            .map(|(name, count)| context! { name, count })
            .collect(),
        top: top
            .into_iter()
            .map(|(name, units)| context! { name, units })
            .collect(),
        chart,
        partial,
        scanned,
    })
}

/// Thirty bars scaled to the highest day, with a title each.
fn chart(
    currency: Currency,
    days: &[Decimal; 30],
    start: chrono::DateTime<Utc>,
) -> minijinja::Value {
    let max = days.iter().copied().max().unwrap_or(Decimal::ZERO);
    let step = CHART_WIDTH / 30;
    let bars: Vec<minijinja::Value> = days
        .iter()
        .enumerate()
        .map(|(i, amount)| {
            let h = if max.is_zero() {
                0
            } else {
                (*amount * Decimal::from(CHART_HEIGHT - 2) / max)
                    .round()
                    .try_into()
                    .unwrap_or(0_i64)
            };
            let day = start + Duration::days(i64::try_from(i).unwrap_or(0));
            context! {
                x => i64::try_from(i).unwrap_or(0) * step + 1,
                y => CHART_HEIGHT - 1 - h,
                w => step - 2,
                h,
                label => format!("{}: {}", day.format("%Y-%m-%d"), money(Money::new(*amount, currency))),
            }
        })
        .collect();
    context! {
        currency => currency.code(),
        max => money(Money::new(max, currency)),
        width => CHART_WIDTH,
        height => CHART_HEIGHT,
        bars,
    }
}

pub(crate) fn status_name(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Placed => "placed",
        OrderStatus::Processing => "processing",
        OrderStatus::Completed => "completed",
        OrderStatus::Cancelled => "cancelled",
    }
}

/// Variants whose available units are below their threshold.
async fn low_stock(admin: &Admin) -> crate::Result<Vec<minijinja::Value>> {
    let mut out = Vec::new();
    let mut after = None;
    let mut seen = 0;
    loop {
        let page = admin
            .engine
            .products(after, crate::store::MAX_PAGE_SIZE)
            .await?;
        let watched: Vec<_> = page
            .iter()
            .flat_map(|p| {
                p.variants()
                    .iter()
                    .filter_map(move |v| v.low_stock_threshold().map(|t| (p, v, t)))
            })
            .collect();
        let ids: Vec<_> = watched.iter().map(|(_, v, _)| v.id()).collect();
        let levels = admin.engine.stock_levels(&ids).await?;
        for (p, v, threshold) in watched {
            let available: i64 = levels
                .get(&v.id())
                .map_or(0, |l| l.iter().map(|s| s.available()).sum());
            if available < i64::from(threshold) {
                out.push(context! {
                    product => p.id().to_string(),
                    name => p.title().to_owned(),
                    sku => v.sku().as_str().to_owned(),
                    available,
                    threshold,
                });
            }
        }
        seen += page.len();
        match page.last() {
            Some(last) if page.len() == crate::store::MAX_PAGE_SIZE && seen < MAX_PRODUCTS => {
                after = Some(last.id());
            }
            _ => break,
        }
    }
    Ok(out)
}
