//! UCP request bodies turned into the engine's agent-session updates:
//! line items, buyer, destinations (kept, found in the buyer's address
//! book or made up), selections, codes; and the agent's profile fetched
//! for its webhook address.

use serde_json::Value;

use super::{AddressBook, Answer, MAX_PROFILE_BYTES, UcpMerchant, answer_for, bad_request};
use crate::actor::Actor;
use crate::agent::{AgentBuyer, BuyerConsent, Destination};
use crate::agents::AgentUpdate;
use crate::customer::{Address, NewAddress};
use crate::error::Error;
use crate::id::VariantId;

impl UcpMerchant {
    /// The engine update a create or update body asks for.
    pub(super) async fn update_from(
        &self,
        actor: &Actor,
        request: &Value,
        current: Option<&crate::agent::AgentSession>,
    ) -> std::result::Result<AgentUpdate, Answer> {
        let _ = actor;
        let engine = &self.inner.engine;
        let mut update = AgentUpdate::default();
        let items = request
            .get("line_items")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_request("line_items is required"))?;
        if items.len() > crate::agents::MAX_AGENT_LINES {
            return Err(bad_request(format!(
                "at most {} line items",
                crate::agents::MAX_AGENT_LINES
            )));
        }
        let mut lines: Vec<(VariantId, u32)> = Vec::new();
        for item in items {
            let sku = item
                .get("item")
                .and_then(|i| i.get("id"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad_request("each line item needs item.id"))?;
            let quantity = item
                .get("quantity")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad_request("each line item needs a positive integer quantity"))?;
            // The engine checks the stock first, then the limit per line.
            let quantity = u32::try_from(quantity)
                .ok()
                .filter(|q| *q >= 1)
                .ok_or_else(|| {
                    bad_request(format!(
                        "quantity {quantity} must be between 1 and {}",
                        crate::cart::MAX_QUANTITY_PER_LINE
                    ))
                })?;
            let entry = match engine.variant_by_sku(sku).await {
                Ok(e) => e,
                Err(Error::NotFound { .. } | Error::Invalid { .. }) => {
                    return Err(bad_request(format!(
                        "Product not found: {}",
                        crate::validate::shown(sku)
                    )));
                }
                Err(e) => return Err(answer_for(&e)),
            };
            let variant = entry.variant.id();
            match lines.iter_mut().find(|(v, _)| *v == variant) {
                Some((_, q)) => {
                    *q = q
                        .saturating_add(quantity)
                        .min(crate::cart::MAX_QUANTITY_PER_LINE)
                }
                None => lines.push((variant, quantity)),
            }
        }
        update = update.lines(Some(lines));
        if let Some(codes) = request.get("discounts").and_then(|d| d.get("codes")) {
            let codes = codes
                .as_array()
                .ok_or_else(|| bad_request("discounts.codes must be a list"))?;
            let codes: Vec<String> = codes
                .iter()
                .map(|c| {
                    c.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad_request("a discount code is text"))
                })
                .collect::<std::result::Result<_, _>>()?;
            update = update.codes(Some(codes));
        }
        let mut email = current
            .and_then(|s| s.buyer.as_ref())
            .and_then(|b| b.email.clone());
        if let Some(buyer) = request.get("buyer").filter(|b| !b.is_null()) {
            let text = |k: &str| {
                buyer
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let mut b = AgentBuyer::default()
                .first_name(text("first_name"))
                .last_name(text("last_name"))
                .phone(text("phone_number"));
            if b.first_name.is_empty() && b.last_name.is_empty() {
                let full = text("full_name");
                let (first, last) = full.split_once(' ').unwrap_or((full.as_str(), ""));
                b = b.first_name(first).last_name(last);
            }
            let given = buyer
                .get("email")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty());
            if let Some(e) = given {
                email = Some(e.to_owned());
            }
            b = b.email(email.clone());
            if let Some(c) = buyer.get("consent").filter(|c| c.is_object()) {
                let flag = |k: &str| c.get(k).and_then(Value::as_bool);
                b = b.consent(Some(
                    BuyerConsent::default()
                        .marketing(flag("marketing"))
                        .analytics(flag("analytics"))
                        .sale_of_data(flag("sale_of_data")),
                ));
            } else if let Some(old) = current
                .and_then(|s| s.buyer.as_ref())
                .and_then(|b| b.consent.clone())
            {
                b = b.consent(Some(old));
            }
            update = update.buyer(Some(b.validated().map_err(|e| answer_for(&e))?));
        }
        if let Some(method) = request
            .get("fulfillment")
            .and_then(|f| f.get("methods"))
            .and_then(Value::as_array)
            .and_then(|m| m.first())
        {
            if let Some(list) = method.get("destinations").and_then(Value::as_array) {
                let mut destinations = Vec::new();
                for d in list
                    .iter()
                    .take(crate::agent::MAX_DESTINATIONS.saturating_add(1))
                {
                    destinations.push(self.destination(d, email.as_deref()).await?);
                }
                update = update.destinations(Some(destinations));
            } else if method.get("destinations").is_none()
                && current.is_none_or(|s| s.destinations.is_empty())
                && self.inner.config.address_book == AddressBook::ByEmail
                && let Some(email) = &email
            {
                let saved = engine.addresses_by_email(email).await.unwrap_or_default();
                let destinations: Vec<Destination> = saved
                    .into_iter()
                    .filter_map(|a| Destination::new(&address_key(&a), a).ok())
                    .take(crate::agent::MAX_DESTINATIONS)
                    .collect();
                update = update.destinations(Some(destinations));
            }
            if let Some(id) = method.get("selected_destination_id") {
                update = update.selected_destination(Some(id.as_str().map(str::to_owned)));
            }
            if let Some(option) = method
                .get("groups")
                .and_then(Value::as_array)
                .and_then(|g| g.first())
                .and_then(|g| g.get("selected_option_id"))
            {
                update = update.selected_option(Some(option.as_str().map(str::to_owned)));
            }
        }
        Ok(update)
    }

    /// One destination from the wire: its id kept, or found in (or added
    /// to) the buyer's address book, or made up.
    async fn destination(
        &self,
        d: &Value,
        email: Option<&str>,
    ) -> std::result::Result<Destination, Answer> {
        let text = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let country = text("address_country");
        let input = NewAddress::default()
            .name(text("full_name"))
            .line1(text("street_address"))
            .line2(text("extended_address"))
            .city(text("address_locality"))
            .region(text("address_region"))
            .postal_code(text("postal_code"))
            .country(country)
            .phone(text("phone_number"));
        let address = Address::partial(input).map_err(|e| answer_for(&e))?;
        if let Some(id) = d.get("id").and_then(Value::as_str) {
            return Destination::new(id, address).map_err(|e| answer_for(&e));
        }
        if let (AddressBook::ByEmail, Some(email), true) =
            (self.inner.config.address_book, email, address.is_complete())
        {
            match self
                .inner
                .engine
                .remember_address_by_email(email, address.clone())
                .await
            {
                Ok(saved) => {
                    return Destination::new(&address_key(&saved), address)
                        .map_err(|e| answer_for(&e));
                }
                Err(error) => tracing::warn!(%error, "a destination was not saved for the buyer"),
            }
        }
        let made: String = format!("dest_{}", uuid::Uuid::new_v4().simple())
            .chars()
            .take(17)
            .collect();
        Destination::new(&made, address).map_err(|e| answer_for(&e))
    }

    /// The agent's order webhook address from its profile, if it can be
    /// fetched now (a failure is logged, never returned).
    pub(super) async fn webhook_url(&self, profile: Option<String>) -> Option<String> {
        let url = profile?;
        if let Some((at, hook)) = self.inner.profiles.lock().get(&url)
            && at.elapsed() < super::PROFILE_CACHE_TTL
        {
            return hook.clone();
        }
        let hook = self.fetch_webhook_url(&url).await?;
        let mut cache = self.inner.profiles.lock();
        if cache.len() >= super::MAX_CACHED_PROFILES {
            cache.clear();
        }
        cache.insert(url, (std::time::Instant::now(), Some(hook.clone())));
        Some(hook)
    }

    /// Fetches an agent's profile and reads its order webhook address.
    async fn fetch_webhook_url(&self, url: &str) -> Option<String> {
        let checked = match self.inner.engine.config().webhook_policy.check_url(url) {
            Ok(u) => u,
            Err(error) => {
                tracing::debug!(%error, "agent profile not fetched");
                return None;
            }
        };
        let fetched = async {
            let mut response = self.inner.client.get(checked).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let mut read: Vec<u8> = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                read.extend_from_slice(&chunk);
                if read.len() > MAX_PROFILE_BYTES {
                    return None;
                }
            }
            serde_json::from_slice::<Value>(&read).ok()
        }
        .await;
        let Some(profile) = fetched else {
            tracing::debug!("agent profile could not be fetched");
            return None;
        };
        profile
            .get("ucp")?
            .get("capabilities")?
            .as_array()?
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some("dev.ucp.shopping.order"))?
            .get("config")?
            .get("webhook_url")?
            .as_str()
            .filter(|u| u.len() <= crate::agent::MAX_AGENT_WEBHOOK_URL_LEN)
            .map(str::to_owned)
    }
}

/// A saved address's destination id: its reference, or its own id.
fn address_key(a: &Address) -> String {
    if a.reference.is_empty() {
        a.id.to_string()
    } else {
        a.reference.clone()
    }
}
