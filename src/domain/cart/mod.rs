//! Carts and their lines, and the pure operations on them.
//!
//! A cart holds variant ids and quantities, never prices: prices come from the
//! catalog when the cart is priced. Every operation checks its limits and
//! leaves the cart unchanged when it fails.
//!
//! Architecture invariant: pure data and functions; the engine loads a cart,
//! applies an operation and saves it with a version check, so concurrent
//! changes are never lost.
//!
//! Does not know: prices (except a [`CustomPrice`] staff set on a line),
//! stock or storage: a cart holds what is being bought; pricing and the
//! engine do the rest.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::customer::{Address, Email};
use crate::error::{Error, Result};
use crate::id::{CartId, CustomerId, LineId, OrderId, VariantId};
use crate::money::{Currency, Money};

mod quote;
pub use quote::{MAX_QUOTE_NOTE_LEN, Quote, QuoteStatus};

/// Most lines one cart may hold.
pub const MAX_LINES_PER_CART: usize = 1_000;
/// Most units of one line.
pub const MAX_QUANTITY_PER_LINE: u32 = 10_000;
/// Most coupon codes entered on one cart.
pub const MAX_CODES_PER_CART: usize = 10;
/// Longest coupon code, in characters.
pub const MAX_CODE_LEN: usize = 64;
/// How many keyed edits a cart remembers; a retry of an edit older than the
/// last this many keyed edits is applied again.
pub const MAX_REMEMBERED_REQUESTS: usize = 32;

/// Most metadata entries on one cart line.
pub const MAX_LINE_METADATA: usize = 16;

/// Longest line metadata key, in characters (1 or more).
pub const MAX_METADATA_KEY_LEN: usize = 64;

/// Longest line metadata value, in characters.
pub const MAX_METADATA_VALUE_LEN: usize = 512;

/// Longest reason for a custom price, in characters.
pub const MAX_CUSTOM_PRICE_REASON_LEN: usize = 200;

/// A price the embedding program sets for one line (a quote, a configured
/// product), instead of the catalog's and the price lists'. Only staff or
/// the system may set one ([`Engine::add_custom_line`](crate::Engine::add_custom_line)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CustomPrice {
    /// The price of one unit, in the cart's currency, exact in minor
    /// units, not negative.
    pub unit: Money,
    /// Why (1 to [`MAX_CUSTOM_PRICE_REASON_LEN`] characters), shown as the
    /// line's price source.
    pub reason: String,
    /// Whether promotions may target the line (and count it in line
    /// conditions). Off by default: a negotiated price is usually final.
    #[serde(default)]
    pub promotions: bool,
}

impl CustomPrice {
    /// A custom unit price with its reason; promotions leave the line alone.
    pub fn new(unit: Money, reason: impl Into<String>) -> Self {
        Self {
            unit,
            reason: reason.into(),
            promotions: false,
        }
    }

    fn check(&self, currency: Currency) -> Result<()> {
        if self.unit.currency() != currency {
            return Err(Error::CurrencyMismatch {
                left: currency,
                right: self.unit.currency(),
            });
        }
        self.unit.entered()?;
        if self.unit.is_negative() || !self.unit.is_exact() {
            return Err(Error::invalid(
                "custom price",
                format!(
                    "{}: must be exact in minor units and not negative",
                    self.unit
                ),
            ));
        }
        let r = self.reason.trim();
        if r.is_empty()
            || r.chars().count() > MAX_CUSTOM_PRICE_REASON_LEN
            || r.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "custom price reason",
                format!(
                    "{} must be 1 to {MAX_CUSTOM_PRICE_REASON_LEN} characters, no control characters",
                    crate::validate::shown(&self.reason)
                ),
            ));
        }
        Ok(())
    }
}

crate::domain::setters!(CustomPrice { promotions: bool } into {});

/// Longest shipping method code, in characters.
pub const MAX_METHOD_CODE_LEN: usize = 64;

/// Most shipping groups one cart holds ([`Cart::set_shipping_group`]).
pub const MAX_SHIPPING_GROUPS: usize = 10;
/// Longest shipping group name, in characters.
pub const MAX_GROUP_NAME_LEN: usize = 64;

/// Lines of a cart shipped together by a method of their own (one per
/// fulfilment location, a flower delivery beside a parcel): priced as a
/// shipment of its own, a possible target of shipping promotions. Lines in
/// no group ship with the cart's own method
/// ([`Cart::shipping_method`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ShippingGroup {
    /// Its name, unique in the cart (1 to [`MAX_GROUP_NAME_LEN`] visible
    /// characters).
    pub name: String,
    /// The method chosen for it, if any (checked when the cart is priced).
    pub method: Option<String>,
    /// Its lines (at least one), each in no other group.
    pub lines: Vec<LineId>,
}

/// How coupon codes are accepted and compared: an engine-wide setting
/// ([`PromotionSettings::codes`](crate::pricing::PromotionSettings)),
/// applied alike when a coupon is created and when a code is entered.
///
/// | setting | matches | code `Save-10` is stored and compared as |
/// |---|---|---|
/// | default (ASCII, case-insensitive) | Medusa, Saleor, Solidus | `SAVE-10` |
/// | `case_sensitive(true)` | Shopify-style exact codes | `Save-10` |
/// | `characters(CodeCharacters::Unicode)` | codes in any script | `SAVE-10`; `Été` → `ÉTÉ` |
///
/// Characters are always checked **before** any case folding, so folding
/// can never turn a refused code into an accepted one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CodePolicy {
    /// Whether `save10` and `SAVE10` are different codes.
    pub case_sensitive: bool,
    /// Which characters a code may have.
    pub characters: CodeCharacters,
}

crate::domain::setters!(CodePolicy {
    case_sensitive: bool,
    characters: CodeCharacters,
} into {});

/// The characters a coupon code may have (after surrounding space is
/// removed); 1 to [`MAX_CODE_LEN`] characters either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CodeCharacters {
    /// ASCII letters, digits, `-` and `_` (the default). A look-alike such
    /// as `ſave10` (long s) is refused, not read as `SAVE10`.
    #[default]
    AsciiWord,
    /// Any printable Unicode after NFKC normalisation (no control
    /// characters, no spaces inside): compatibility forms become their
    /// plain letters first (full-width `ＳＡＶＥ` → `SAVE`, `ſ` → `s`), so a
    /// code typed on another keyboard finds the same coupon.
    Unicode,
}

/// Normalizes a coupon code under the default [`CodePolicy`]: surrounding
/// space removed, then checked (1 to [`MAX_CODE_LEN`] ASCII letters,
/// digits, `-` or `_`), then upper-cased. The check comes before any case
/// folding, so a look-alike such as `ſave10` (long s) is refused instead of
/// becoming `SAVE10`.
///
/// # Errors
/// [`Error::Invalid`] naming the code given.
pub fn normalize_code(code: &str) -> Result<String> {
    normalize_code_with(code, &CodePolicy::default())
}

/// Normalizes a coupon code under `policy` (see [`CodePolicy`]).
///
/// # Errors
/// [`Error::Invalid`] naming the code given.
pub fn normalize_code_with(code: &str, policy: &CodePolicy) -> Result<String> {
    let c = match policy.characters {
        CodeCharacters::AsciiWord => code.trim().to_owned(),
        CodeCharacters::Unicode => {
            use unicode_normalization::UnicodeNormalization;
            code.trim().nfkc().collect::<String>()
        }
    };
    let c = c.as_str();
    if c.is_empty() || c.chars().count() > MAX_CODE_LEN {
        return Err(Error::invalid(
            "coupon code",
            format!(
                "{} must be 1 to {MAX_CODE_LEN} characters",
                crate::validate::shown(code)
            ),
        ));
    }
    let allowed = match policy.characters {
        CodeCharacters::AsciiWord => c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        CodeCharacters::Unicode => c.chars().all(|ch| !ch.is_control() && !ch.is_whitespace()),
    };
    if !allowed {
        return Err(Error::invalid(
            "coupon code",
            format!(
                "{} may contain only {}",
                crate::validate::shown(code),
                match policy.characters {
                    CodeCharacters::AsciiWord => "ASCII letters, digits, - and _",
                    CodeCharacters::Unicode => "printable characters, without spaces",
                }
            ),
        ));
    }
    Ok(match (policy.case_sensitive, policy.characters) {
        (true, _) => c.to_owned(),
        (false, CodeCharacters::AsciiWord) => c.to_ascii_uppercase(),
        (false, CodeCharacters::Unicode) => c.to_uppercase(),
    })
}

/// Where a cart is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
#[non_exhaustive]
pub enum CartStatus {
    /// Can be changed and checked out.
    Active,
    /// Checked out into an order.
    Completed {
        /// The order it became.
        order_id: OrderId,
    },
    /// Merged into another cart at login.
    Merged {
        /// The cart that received its lines.
        into: CartId,
    },
}

/// One line: a variant and how many units.
///
/// There is no price field, and deserializing a line that carries one (or any
/// other unknown field) fails: prices come only from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LineItem {
    /// The line's id, stable while the cart lives.
    pub id: LineId,
    /// What is bought.
    pub variant_id: VariantId,
    /// How many units (1 to [`MAX_QUANTITY_PER_LINE`]).
    pub quantity: u32,
    /// Small key → value data the embedding program attaches (an
    /// engraving, a gift note, a configuration): at most
    /// [`MAX_LINE_METADATA`] entries, keys of 1 to
    /// [`MAX_METADATA_KEY_LEN`] characters, values up to
    /// [`MAX_METADATA_VALUE_LEN`], no control characters. Two lines of the
    /// same variant stay separate when their metadata differs. It is
    /// copied to the priced line and so to the order; it never changes a
    /// price.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// A price the embedding program set for this line; `None` for the
    /// catalog's (and price lists').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_price: Option<CustomPrice>,
}

/// Checks line metadata against its limits, naming the offending key.
fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<()> {
    if metadata.len() > MAX_LINE_METADATA {
        return Err(Error::LimitExceeded {
            what: "line metadata entries",
            max: MAX_LINE_METADATA as u64,
        });
    }
    for (k, v) in metadata {
        let bad = |text: &str| text.chars().any(char::is_control);
        if k.trim().is_empty() || k.chars().count() > MAX_METADATA_KEY_LEN || bad(k) {
            return Err(Error::invalid(
                "line metadata key",
                format!(
                    "{} must be 1 to {MAX_METADATA_KEY_LEN} characters, no control characters",
                    crate::validate::shown(k)
                ),
            ));
        }
        if v.chars().count() > MAX_METADATA_VALUE_LEN || bad(v) {
            return Err(Error::invalid(
                "line metadata value",
                format!(
                    "{} (for {}) must be at most {MAX_METADATA_VALUE_LEN} characters, no control characters",
                    crate::validate::shown(v),
                    crate::validate::shown(k)
                ),
            ));
        }
    }
    Ok(())
}

/// A shopping cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    id: CartId,
    currency: Currency,
    customer_id: Option<CustomerId>,
    email: Option<Email>,
    lines: Vec<LineItem>,
    shipping_address: Option<Address>,
    billing_address: Option<Address>,
    shipping_method: Option<String>,
    /// Lines shipped apart from the rest, each group by its own method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    shipping_groups: Vec<ShippingGroup>,
    coupon_codes: Vec<String>,
    /// The sales channel it is in (none: the default, every product).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel_id: Option<crate::id::ChannelId>,
    status: CartStatus,
    /// The request keys of the latest keyed edits (at most
    /// [`MAX_REMEMBERED_REQUESTS`], oldest first): a retried edit finds its
    /// key here and changes nothing again.
    #[serde(default)]
    applied_requests: Vec<String>,
    /// The quote terms of a draft order or quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quote: Option<Quote>,
    version: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

pub(crate) fn check_quantity(quantity: u32) -> Result<()> {
    if quantity == 0 {
        return Err(Error::invalid("quantity", "must be at least 1"));
    }
    if quantity > MAX_QUANTITY_PER_LINE {
        return Err(Error::LimitExceeded {
            what: "quantity per line",
            max: u64::from(MAX_QUANTITY_PER_LINE),
        });
    }
    Ok(())
}

impl Cart {
    /// An empty, active cart.
    pub fn new(currency: Currency, customer_id: Option<CustomerId>, now: DateTime<Utc>) -> Self {
        Self {
            id: CartId::new(),
            currency,
            customer_id,
            email: None,
            lines: Vec::new(),
            shipping_address: None,
            billing_address: None,
            shipping_method: None,
            shipping_groups: Vec::new(),
            coupon_codes: Vec::new(),
            channel_id: None,
            applied_requests: Vec::new(),
            quote: None,
            status: CartStatus::Active,
            version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// The same new cart in sales channel `channel`.
    #[must_use]
    pub fn in_channel(mut self, channel: crate::id::ChannelId) -> Self {
        self.channel_id = Some(channel);
        self
    }

    /// Its id.
    pub fn id(&self) -> CartId {
        self.id
    }

    /// The sales channel it is in, if any.
    pub fn channel_id(&self) -> Option<crate::id::ChannelId> {
        self.channel_id
    }
    /// Its currency; every price in it is in this currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// The customer who owns it, if any.
    pub fn customer_id(&self) -> Option<CustomerId> {
        self.customer_id
    }
    /// The contact email (required to check out as a guest).
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }
    /// Its lines, in the order they were added.
    pub fn lines(&self) -> &[LineItem] {
        &self.lines
    }
    /// One line.
    pub fn line(&self, id: LineId) -> Option<&LineItem> {
        self.lines.iter().find(|l| l.id == id)
    }
    /// Total units across all lines.
    pub fn item_count(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }
    /// Where to ship.
    pub fn shipping_address(&self) -> Option<&Address> {
        self.shipping_address.as_ref()
    }
    /// Where to bill.
    pub fn billing_address(&self) -> Option<&Address> {
        self.billing_address.as_ref()
    }
    /// The chosen shipping method's code.
    pub fn shipping_method(&self) -> Option<&str> {
        self.shipping_method.as_deref()
    }

    /// The shipping groups: lines shipped apart from the rest, each by its
    /// own method.
    pub fn shipping_groups(&self) -> &[ShippingGroup] {
        &self.shipping_groups
    }

    /// The group a line ships in (`None`: with the cart's own method).
    pub fn shipping_group_of(&self, line: LineId) -> Option<&ShippingGroup> {
        self.shipping_groups
            .iter()
            .find(|g| g.lines.contains(&line))
    }
    /// Entered coupon codes, normalized.
    pub fn coupon_codes(&self) -> &[String] {
        &self.coupon_codes
    }
    /// Where it is in its life.
    pub fn status(&self) -> CartStatus {
        self.status
    }
    /// Bumped by the store on every save; used to detect concurrent changes.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// When it was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// When it last changed.
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    /// Fails unless `actor` may read or change this cart: a customer's cart
    /// belongs to that customer (and staff); a guest cart to whoever holds its id.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not use the cart.
    pub fn check_access(&self, actor: &Actor) -> Result<()> {
        if self.quote.is_some() {
            return if self.quote_allows(actor) {
                Ok(())
            } else {
                Err(Error::Forbidden)
            };
        }
        if actor.may_use_cart(self.customer_id) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    /// Fails unless the cart can still change.
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out or abandoned.
    pub fn ensure_active(&self) -> Result<()> {
        match self.status {
            CartStatus::Active => Ok(()),
            _ => Err(Error::CartNotActive { cart_id: self.id }),
        }
    }

    /// Whether a keyed edit with `key` was already applied.
    pub fn applied(&self, key: &str) -> bool {
        self.applied_requests.iter().any(|k| k == key)
    }

    /// Remembers that the edit keyed `key` was applied (forgetting the
    /// oldest beyond [`MAX_REMEMBERED_REQUESTS`]).
    pub(crate) fn remember(&mut self, key: &str) {
        if self.applied(key) {
            return;
        }
        if self.applied_requests.len() >= MAX_REMEMBERED_REQUESTS {
            self.applied_requests.remove(0);
        }
        self.applied_requests.push(key.to_owned());
    }

    /// Adds `quantity` units of a variant; if the variant is already in the
    /// cart its line grows instead. Returns the line's id.
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::NotFound`] for an unknown line.
    pub fn add_line(&mut self, variant_id: VariantId, quantity: u32) -> Result<LineId> {
        self.add_line_with(variant_id, quantity, BTreeMap::new())
    }

    /// Adds `quantity` units of a variant with line metadata (see
    /// [`LineItem::metadata`]): a line of the same variant with the same
    /// metadata grows; otherwise a new line is added. Returns the line's id.
    ///
    /// # Errors
    /// As [`Cart::add_line`]; [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for metadata beyond its limits.
    pub fn add_line_with(
        &mut self,
        variant_id: VariantId,
        quantity: u32,
        metadata: BTreeMap<String, String>,
    ) -> Result<LineId> {
        self.ensure_active()?;
        check_quantity(quantity)?;
        check_metadata(&metadata)?;
        if let Some(line) = self.lines.iter_mut().find(|l| {
            l.variant_id == variant_id && l.metadata == metadata && l.custom_price.is_none()
        }) {
            let total = line
                .quantity
                .checked_add(quantity)
                .ok_or_else(|| Error::Overflow("line quantity"))?;
            check_quantity(total)?;
            line.quantity = total;
            return Ok(line.id);
        }
        self.push_line(variant_id, quantity, metadata, None)
    }

    /// Appends a new line, within [`MAX_LINES_PER_CART`].
    fn push_line(
        &mut self,
        variant_id: VariantId,
        quantity: u32,
        metadata: BTreeMap<String, String>,
        custom_price: Option<CustomPrice>,
    ) -> Result<LineId> {
        if self.lines.len() >= MAX_LINES_PER_CART {
            return Err(Error::LimitExceeded {
                what: "lines per cart",
                max: MAX_LINES_PER_CART as u64,
            });
        }
        let id = LineId::new();
        self.lines.push(LineItem {
            id,
            variant_id,
            quantity,
            metadata,
            custom_price,
        });
        Ok(id)
    }

    /// Adds a line at a price the embedding program sets (see
    /// [`CustomPrice`]); always a line of its own. Returns its id.
    ///
    /// # Errors
    /// As [`Cart::add_line`]; [`Error::CurrencyMismatch`] for a price in
    /// another currency; [`Error::Invalid`] for a negative or inexact price
    /// or a bad reason.
    pub fn add_custom_line(
        &mut self,
        variant_id: VariantId,
        quantity: u32,
        price: CustomPrice,
    ) -> Result<LineId> {
        self.ensure_active()?;
        check_quantity(quantity)?;
        price.check(self.currency)?;
        self.push_line(variant_id, quantity, BTreeMap::new(), Some(price))
    }

    /// Sets a line's quantity (1 or more; use [`Cart::remove_line`] to remove).
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::NotFound`] for an unknown line.
    pub fn set_quantity(&mut self, line: LineId, quantity: u32) -> Result<()> {
        self.ensure_active()?;
        check_quantity(quantity)?;
        let l = self
            .lines
            .iter_mut()
            .find(|l| l.id == line)
            .ok_or_else(|| Error::not_found("line", line))?;
        l.quantity = quantity;
        Ok(())
    }

    /// Removes a line.
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::NotFound`] for an unknown line.
    pub fn remove_line(&mut self, line: LineId) -> Result<()> {
        self.ensure_active()?;
        let before = self.lines.len();
        self.lines.retain(|l| l.id != line);
        if self.lines.len() == before {
            return Err(Error::not_found("line", line));
        }
        // A removed line leaves its group; a group left empty goes.
        for g in &mut self.shipping_groups {
            g.lines.retain(|l| *l != line);
        }
        self.shipping_groups.retain(|g| !g.lines.is_empty());
        Ok(())
    }

    /// Sets the contact email.
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::NotFound`] for an unknown line.
    pub fn set_email(&mut self, email: Email) -> Result<()> {
        self.ensure_active()?;
        self.email = Some(email);
        Ok(())
    }

    /// Sets the shipping address.
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::NotFound`] for an unknown line.
    pub fn set_shipping_address(&mut self, address: Address) -> Result<()> {
        self.ensure_active()?;
        self.shipping_address = Some(address);
        Ok(())
    }

    /// Sets the billing address.
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::NotFound`] for an unknown line.
    pub fn set_billing_address(&mut self, address: Address) -> Result<()> {
        self.ensure_active()?;
        self.billing_address = Some(address);
        Ok(())
    }

    /// Chooses a shipping method by code. Whether it is offered for this cart
    /// is checked when the cart is priced.
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::NotFound`] for an unknown line.
    pub fn set_shipping_method(&mut self, code: &str) -> Result<()> {
        self.ensure_active()?;
        let code = crate::validate::required_text("shipping method", code, MAX_METHOD_CODE_LEN)?;
        self.shipping_method = Some(code);
        Ok(())
    }

    /// Forgets the chosen shipping method (the destination changed and
    /// no longer offers it, say).
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out.
    pub fn clear_shipping_method(&mut self) -> Result<()> {
        self.ensure_active()?;
        self.shipping_method = None;
        Ok(())
    }

    /// Ships `lines` together as the group `name`, by `method` (or none
    /// chosen yet), apart from the cart's other lines: replaces a group of
    /// that name, and moves a line out of any other group (a group left
    /// empty goes). Whether the method is offered for the group's lines is
    /// checked when the cart is priced.
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::Invalid`] for a bad name or method code, no lines, or a
    /// line named twice; [`Error::NotFound`] for a line not in the cart;
    /// [`Error::LimitExceeded`] past [`MAX_SHIPPING_GROUPS`].
    pub fn set_shipping_group(
        &mut self,
        name: &str,
        lines: &[LineId],
        method: Option<&str>,
    ) -> Result<()> {
        self.ensure_active()?;
        let name = crate::validate::required_text("shipping group", name, MAX_GROUP_NAME_LEN)?;
        let method = method
            .map(|m| crate::validate::required_text("shipping method", m, MAX_METHOD_CODE_LEN))
            .transpose()?;
        if lines.is_empty() {
            return Err(Error::invalid("shipping group", "needs at least one line"));
        }
        let mut group_lines: Vec<LineId> = Vec::with_capacity(lines.len());
        for line in lines {
            if !self.lines.iter().any(|l| l.id == *line) {
                return Err(Error::not_found("line", line));
            }
            if group_lines.contains(line) {
                return Err(Error::invalid(
                    "shipping group",
                    format!("line {line} is named twice"),
                ));
            }
            group_lines.push(*line);
        }
        let exists = self.shipping_groups.iter().any(|g| g.name == name);
        if !exists && self.shipping_groups.len() >= MAX_SHIPPING_GROUPS {
            return Err(Error::LimitExceeded {
                what: "shipping groups per cart",
                max: MAX_SHIPPING_GROUPS as u64,
            });
        }
        for g in &mut self.shipping_groups {
            g.lines.retain(|l| !group_lines.contains(l));
        }
        let group = ShippingGroup {
            name: name.clone(),
            method,
            lines: group_lines,
        };
        match self.shipping_groups.iter_mut().find(|g| g.name == name) {
            Some(g) => *g = group,
            None => self.shipping_groups.push(group),
        }
        self.shipping_groups.retain(|g| !g.lines.is_empty());
        Ok(())
    }

    /// Removes the shipping group `name`: its lines ship with the cart's
    /// own method again.
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::NotFound`] for no such group.
    pub fn remove_shipping_group(&mut self, name: &str) -> Result<()> {
        self.ensure_active()?;
        let before = self.shipping_groups.len();
        self.shipping_groups.retain(|g| g.name != name);
        if self.shipping_groups.len() == before {
            return Err(Error::not_found("shipping group", name));
        }
        Ok(())
    }

    /// Enters a coupon code (normalized; entering it twice is a no-op).
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::NotFound`] for an unknown line.
    pub fn add_coupon_code(&mut self, code: &str) -> Result<()> {
        self.add_coupon_code_with(code, &CodePolicy::default())
    }

    /// Enters a coupon code normalized under `policy` (see [`CodePolicy`]).
    ///
    /// # Errors
    /// As [`Cart::add_coupon_code`].
    pub fn add_coupon_code_with(&mut self, code: &str, policy: &CodePolicy) -> Result<()> {
        self.ensure_active()?;
        let code = normalize_code_with(code, policy)?;
        self.push_code(code)
    }

    /// Keeps a normalized code once, within [`MAX_CODES_PER_CART`].
    fn push_code(&mut self, code: String) -> Result<()> {
        if self.coupon_codes.contains(&code) {
            return Ok(());
        }
        if self.coupon_codes.len() >= MAX_CODES_PER_CART {
            return Err(Error::LimitExceeded {
                what: "coupon codes per cart",
                max: MAX_CODES_PER_CART as u64,
            });
        }
        self.coupon_codes.push(code);
        Ok(())
    }

    /// Removes an entered coupon code.
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once the cart is checked out;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::NotFound`] for an unknown line.
    pub fn remove_coupon_code(&mut self, code: &str) -> Result<()> {
        self.remove_coupon_code_with(code, &CodePolicy::default())
    }

    /// Removes a coupon code normalized under `policy` (see [`CodePolicy`]).
    ///
    /// # Errors
    /// As [`Cart::remove_coupon_code`].
    pub fn remove_coupon_code_with(&mut self, code: &str, policy: &CodePolicy) -> Result<()> {
        self.ensure_active()?;
        let code = normalize_code_with(code, policy)?;
        let before = self.coupon_codes.len();
        self.coupon_codes.retain(|c| *c != code);
        if before == self.coupon_codes.len() {
            return Err(Error::not_found("coupon code", code));
        }
        Ok(())
    }

    /// Moves every line, code and missing detail of `guest` into this cart
    /// and marks `guest` merged. Either both change or neither does.
    ///
    /// # Errors
    /// [`Error::CartNotActive`]; [`Error::Forbidden`] when the guest cart
    /// belongs to a customer; [`Error::CurrencyMismatch`] for carts in other
    /// currencies; [`Error::LimitExceeded`] when the merged cart would pass a
    /// limit (neither cart changes).
    pub fn merge_from(&mut self, guest: &mut Cart) -> Result<()> {
        self.ensure_active()?;
        guest.ensure_active()?;
        if guest.customer_id.is_some() {
            return Err(Error::Forbidden);
        }
        if self.currency != guest.currency {
            return Err(Error::CurrencyMismatch {
                left: self.currency,
                right: guest.currency,
            });
        }
        let mut merged = self.clone();
        for line in &guest.lines {
            match &line.custom_price {
                Some(p) => merged.add_custom_line(line.variant_id, line.quantity, p.clone())?,
                None => {
                    merged.add_line_with(line.variant_id, line.quantity, line.metadata.clone())?
                }
            };
        }
        // Codes were normalized when entered (under the engine's policy):
        // carried over as they are, never normalized again.
        for code in &guest.coupon_codes {
            merged.push_code(code.clone())?;
        }
        if merged.shipping_address.is_none() {
            merged.shipping_address = guest.shipping_address.clone();
        }
        if merged.billing_address.is_none() {
            merged.billing_address = guest.billing_address.clone();
        }
        if merged.shipping_method.is_none() {
            merged.shipping_method = guest.shipping_method.clone();
        }
        if merged.email.is_none() {
            merged.email = guest.email.clone();
        }
        *self = merged;
        guest.status = CartStatus::Merged { into: self.id };
        Ok(())
    }

    /// Gives a guest cart to a customer (at login, when they have no cart).
    ///
    /// # Errors
    /// [`Error::CartNotActive`] once checked out; [`Error::Forbidden`] when the
    /// cart already belongs to another customer.
    pub fn assign_to(&mut self, customer: CustomerId) -> Result<()> {
        self.ensure_active()?;
        if self.customer_id.is_some_and(|c| c != customer) {
            return Err(Error::Forbidden);
        }
        self.customer_id = Some(customer);
        Ok(())
    }

    /// For storage adapters: records a successful save.
    ///
    /// # Errors
    /// [`Error::Overflow`] when the version counter is exhausted.
    pub fn saved(&mut self, now: DateTime<Utc>) -> Result<()> {
        self.version = self
            .version
            .checked_add(1)
            .ok_or_else(|| Error::Overflow("cart version"))?;
        self.updated_at = now;
        Ok(())
    }

    /// Erases the buyer's personal data, for storage adapters implementing
    /// [`CustomerStore::erase_customer`](crate::store::CustomerStore::erase_customer):
    /// the email, both addresses and line metadata go; lines and codes stay.
    pub fn erase_personal_data(&mut self) {
        self.email = None;
        self.shipping_address = None;
        self.billing_address = None;
        for line in &mut self.lines {
            line.metadata.clear();
        }
    }

    pub(crate) fn complete(&mut self, order_id: OrderId) {
        self.status = CartStatus::Completed { order_id };
    }
}

#[cfg(test)]
mod tests;
