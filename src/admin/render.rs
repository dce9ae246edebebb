//! The templates (auto-escaped HTML, in `templates/`) and the context
//! every page shares.

use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};

use super::Admin;
use super::session::Staff;
use crate::actor::Permission;

/// The templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("problem.html", include_str!("templates/problem.html")),
    ("login.html", include_str!("templates/login.html")),
    ("totp.html", include_str!("templates/totp.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("products.html", include_str!("templates/products.html")),
    ("product.html", include_str!("templates/product.html")),
    ("categories.html", include_str!("templates/categories.html")),
    ("inventory.html", include_str!("templates/inventory.html")),
    ("import.html", include_str!("templates/import.html")),
    ("orders.html", include_str!("templates/orders.html")),
    ("order.html", include_str!("templates/order.html")),
    ("edit.html", include_str!("templates/edit.html")),
    ("promotions.html", include_str!("templates/promotions.html")),
    ("promotion.html", include_str!("templates/promotion.html")),
    (
        "shape_field.html",
        include_str!("templates/shape_field.html"),
    ),
    ("explain.html", include_str!("templates/explain.html")),
    ("customers.html", include_str!("templates/customers.html")),
    ("customer.html", include_str!("templates/customer.html")),
    ("issued.html", include_str!("templates/issued.html")),
    ("staff.html", include_str!("templates/staff.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("settings.html", include_str!("templates/settings.html")),
    (
        "price_lists.html",
        include_str!("templates/price_lists.html"),
    ),
    ("price_list.html", include_str!("templates/price_list.html")),
    ("channels.html", include_str!("templates/channels.html")),
];

/// The loaded templates.
pub(crate) struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub(crate) fn new() -> Self {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(error) = env.add_template(name, source) {
                // Only a broken template in the crate itself gets here, and
                // tests render every one.
                tracing::error!(%error, name, "an admin template does not parse");
            }
        }
        Self { env }
    }

    /// Renders `name` with `ctx` and what every page shows.
    pub(crate) fn render(
        &self,
        admin: &Admin,
        staff: Option<&Staff>,
        name: &str,
        ctx: Value,
    ) -> Html<String> {
        let areas: Vec<Value> = staff
            .map(|s| {
                [
                    ("/", "Dashboard", None),
                    ("/products", "Products", Some(Permission::Catalog)),
                    ("/categories", "Categories", Some(Permission::Catalog)),
                    ("/inventory", "Inventory", Some(Permission::Inventory)),
                    ("/orders", "Orders", Some(Permission::Orders)),
                    ("/promotions", "Promotions", Some(Permission::Promotions)),
                    ("/price-lists", "Price lists", Some(Permission::Promotions)),
                    ("/customers", "Customers", Some(Permission::Customers)),
                    ("/staff", "Staff", Some(Permission::Staff)),
                    ("/audit", "Audit log", Some(Permission::Staff)),
                    ("/channels", "Channels", Some(Permission::Settings)),
                    ("/settings", "Settings", Some(Permission::Settings)),
                ]
                .into_iter()
                .filter(|(_, _, p)| p.is_none_or(|p| s.may(p)))
                .map(|(path, label, _)| context! { href => admin.link(path), label })
                .collect()
            })
            .unwrap_or_default();
        let shared = context! {
            base => admin.config.base_path.clone(),
            home => admin.link("/"),
            shop => admin.config.shop_name.clone(),
            staff_name => staff.map(|s| s.name.clone()),
            csrf => staff.map(Staff::csrf),
            notice_text => staff.and_then(|s| s.notice.clone()),
            areas,
        };
        let merged = context! { ..ctx, ..shared };
        let html = self
            .env
            .get_template(name)
            .and_then(|t| t.render(merged))
            .unwrap_or_else(|error| {
                tracing::error!(%error, name, "an admin page did not render");
                "<!doctype html><html lang=\"en\"><title>Error</title><p>This page could not be shown.</p></html>".to_owned()
            });
        Html(html)
    }

    /// [`Pages::render`] for a signed-in member, as a response.
    pub(crate) fn page(&self, admin: &Admin, staff: &Staff, name: &str, ctx: Value) -> Response {
        self.render(admin, Some(staff), name, ctx).into_response()
    }
}

/// Money as staff read it: `12.50 USD`.
pub(crate) fn money(m: crate::money::Money) -> String {
    format!("{} {}", m.amount(), m.currency().code())
}

/// A time as staff read it, in UTC.
pub(crate) fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A serialized enum's name as words: `payment_captured` → "payment
/// captured" (a unit variant's string, or a tagged one's `type`).
pub(crate) fn words<T: serde::Serialize>(value: &T) -> String {
    let name = match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Object(map)) => map
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    name.replace('_', " ")
}

/// Who acted, as staff read it.
pub(crate) fn who(actor: &crate::actor::Actor) -> String {
    use crate::actor::Actor;
    match actor {
        Actor::Staff(name) => format!("staff {name}"),
        Actor::StaffMember(access) => access.name.clone(),
        Actor::Customer(_) => "the customer".to_owned(),
        Actor::Guest | Actor::GuestWithToken(_) => "the buyer".to_owned(),
        Actor::System => "the system".to_owned(),
        Actor::Provider(name) => format!("payment provider {name}"),
        Actor::Agent(name) => format!("agent {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            assert!(env.add_template(name, source).is_ok(), "{name}");
        }
    }
}
