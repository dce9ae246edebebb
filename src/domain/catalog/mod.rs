//! The catalog: products, their variants, categories, collections, tags,
//! images and prices.
//!
//! A [`Product`] groups [`Variant`]s, which are what a customer buys: each has
//! a unique SKU, option values (size, colour), a weight and one price per
//! currency. Only a variant that is [`Status::Active`] on an active product
//! can be added to a cart or checked out.
//!
//! Architecture invariant: this module is plain data and validation. It knows
//! nothing of storage, carts or pricing rules.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{CategoryId, CollectionId, ProductId, VariantId};
use crate::money::{Currency, Money};
use crate::validate::{at_most, optional_text, required_text};

mod query;
mod taxonomy;
pub use query::{
    MAX_PRODUCT_SEARCH_TEXT, MAX_SEARCH_WORDS, PriceRange, ProductCursor, ProductQuery, ProductSort,
};
pub use taxonomy::{Category, Collection};

/// Most variants one product may have.
pub const MAX_VARIANTS_PER_PRODUCT: usize = 250;
/// Most images one product may have.
pub const MAX_IMAGES_PER_PRODUCT: usize = 50;
/// Most tags, categories or collections one product may have (each).
pub const MAX_TAGS_PER_PRODUCT: usize = 50;
/// Most option values (size, colour, ...) one variant may have.
pub const MAX_OPTIONS_PER_VARIANT: usize = 10;
/// Longest SKU, in characters.
pub const MAX_SKU_LEN: usize = 64;
/// Longest title or name, in characters.
pub const MAX_TITLE_LEN: usize = 255;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 20_000;
/// Longest image URL, in characters.
pub const MAX_URL_LEN: usize = 2_048;

/// Whether something can be sold.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// Being prepared; not for sale.
    #[default]
    Draft,
    /// For sale.
    Active,
    /// No longer for sale; kept for order history.
    Archived,
}

impl Status {
    /// Its name, as serialized and as the CSV format and the admin write
    /// it (`"draft"`, `"active"`, `"archived"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
            Status::Archived => "archived",
        }
    }

    /// The status named `name` (any case, surrounding spaces ignored).
    ///
    /// # Errors
    /// [`Error::Invalid`] (`status`) for another name, naming it.
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "draft" => Ok(Status::Draft),
            "active" => Ok(Status::Active),
            "archived" => Ok(Status::Archived),
            _ => Err(Error::invalid(
                "status",
                format!("{name:?} is not draft, active or archived"),
            )),
        }
    }
}

/// A stock keeping unit: 1 to 64 characters of letters, digits and `-_./`,
/// compared case-insensitively (stored upper-case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(std::sync::Arc<str>);

impl Sku {
    /// Validates and normalizes a SKU.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn new(sku: &str) -> Result<Self> {
        let s = sku.trim().to_ascii_uppercase();
        if s.is_empty() || s.len() > MAX_SKU_LEN {
            return Err(Error::invalid(
                "sku",
                format!("must be 1 to {MAX_SKU_LEN} characters"),
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        {
            return Err(Error::invalid(
                "sku",
                "may contain only letters, digits and - _ . /",
            ));
        }
        Ok(Self(s.into()))
    }

    /// The SKU as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}

impl From<Sku> for String {
    fn from(s: Sku) -> String {
        s.0.as_ref().to_owned()
    }
}

impl std::fmt::Display for Sku {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How stock is kept for a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum InventoryPolicy {
    /// Stock is counted; with `allow_backorder` a checkout may take more than
    /// is available (the stock level goes below zero).
    Tracked {
        /// Whether orders may exceed available stock.
        allow_backorder: bool,
    },
    /// Stock is not counted (digital goods, made to order).
    Untracked,
}

impl Default for InventoryPolicy {
    fn default() -> Self {
        Self::Tracked {
            allow_backorder: false,
        }
    }
}

/// A product image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Image {
    /// Where the image is served from.
    pub url: String,
    /// Alternative text for accessibility.
    pub alt: String,
    /// Sort position; lower first.
    pub position: u32,
    /// The variant it shows, when it shows one (else the whole product).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<VariantId>,
    /// Where the engine keeps it, for an uploaded image
    /// ([`Engine::upload_image`](crate::Engine::upload_image)); `None` for
    /// one hosted elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<crate::domain::media::MediaKey>,
}

impl Image {
    /// The image at `url`, with no alternative text, at position 0.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            alt: String::new(),
            position: 0,
            variant: None,
            media: None,
        }
    }

    fn checked(self) -> Result<Self> {
        Ok(Image {
            url: required_text("image url", &self.url, MAX_URL_LEN)?,
            alt: optional_text("image alt text", &self.alt, MAX_TITLE_LEN)?,
            ..self
        })
    }
}

crate::domain::setters!(Image { position: u32 } into { url: String, alt: String, variant: Option<VariantId>, media: Option<crate::domain::media::MediaKey> });

/// What a caller supplies to create a variant. Prices come only from here
/// (and later price lists), never from a cart.
///
/// Whether the variant ships is said when it is made —
/// [`NewVariant::shipped`] or [`NewVariant::digital`] — so no default can
/// quietly drop the shipping of a physical item.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewVariant {
    /// The SKU (validated by [`Sku::new`]).
    pub sku: String,
    /// A short title such as "Large / Blue"; empty means the product title.
    pub title: String,
    /// Option values, e.g. `size = "L"`.
    pub options: BTreeMap<String, String>,
    /// Shipping weight in grams, at most [`MAX_WEIGHT_GRAMS`].
    pub weight_grams: u32,
    /// Packed size in millimetres (length, width, height), each 1 to
    /// [`MAX_DIMENSION_MM`]; `None`: unknown. Carriers price by it.
    pub dimensions_mm: Option<[u32; 3]>,
    /// One price per currency; each must be exact in minor units and not negative.
    pub prices: Vec<Money>,
    /// How stock is kept.
    pub inventory: InventoryPolicy,
    /// Whether the variant is shipped (false for digital goods).
    pub requires_shipping: bool,
    /// Tax class, for tax tables that rate classes differently ("standard" when empty).
    pub tax_class: String,
    /// Sale status of the variant itself.
    pub status: Status,
    /// Send [`EventKind::LowStock`](crate::event::EventKind::LowStock) when
    /// fewer units than this are available; `None`: never.
    pub low_stock_threshold: Option<u32>,
}

impl From<&Variant> for NewVariant {
    /// The input that makes `variant` again: to change a few of its details
    /// and [`Product::replace_variant`] it.
    fn from(variant: &Variant) -> Self {
        Self {
            sku: variant.sku.as_str().to_owned(),
            title: variant.title.clone(),
            options: variant.options.clone(),
            weight_grams: variant.weight_grams,
            dimensions_mm: variant.dimensions_mm,
            prices: variant.prices.values().copied().collect(),
            inventory: variant.inventory,
            requires_shipping: variant.requires_shipping,
            tax_class: variant.tax_class.clone(),
            status: variant.status,
            low_stock_threshold: variant.low_stock_threshold,
        }
    }
}

impl NewVariant {
    /// A variant with this SKU that is shipped (it needs a shipping address
    /// and method at checkout); everything else at its default (no prices,
    /// no options, weight 0, the default inventory policy, draft). Set the
    /// rest with the chainable setters.
    pub fn shipped(sku: impl Into<String>) -> Self {
        Self::blank(sku.into(), true)
    }

    /// A variant with this SKU that is not shipped (a download, a service,
    /// a gift card); otherwise as [`NewVariant::shipped`].
    pub fn digital(sku: impl Into<String>) -> Self {
        Self::blank(sku.into(), false)
    }

    /// A variant that is **not shipped** unless `requires_shipping(true)`
    /// is set: the old constructor, kept so existing code compiles and
    /// behaves as before.
    #[deprecated(
        since = "0.2.0",
        note = "say whether the variant ships: NewVariant::shipped or NewVariant::digital"
    )]
    pub fn new(sku: impl Into<String>) -> Self {
        Self::digital(sku)
    }

    fn blank(sku: String, requires_shipping: bool) -> Self {
        Self {
            sku,
            title: String::new(),
            options: BTreeMap::new(),
            weight_grams: 0,
            dimensions_mm: None,
            prices: Vec::new(),
            inventory: InventoryPolicy::default(),
            requires_shipping,
            tax_class: String::new(),
            status: Status::default(),
            low_stock_threshold: None,
        }
    }

    /// Adds a price (one per currency).
    #[must_use]
    pub fn price(mut self, price: Money) -> Self {
        self.prices.push(price);
        self
    }

    /// Adds an option value, e.g. `("size", "L")`.
    #[must_use]
    pub fn option(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(name.into(), value.into());
        self
    }
}

crate::domain::setters!(NewVariant {
    options: BTreeMap<String, String>,
    weight_grams: u32,
    dimensions_mm: Option<[u32; 3]>,
    prices: Vec<Money>,
    inventory: InventoryPolicy,
    requires_shipping: bool,
    status: Status,
} into {
    sku: String,
    title: String,
    tax_class: String,
    low_stock_threshold: Option<u32>,
});

/// Heaviest variant allowed, in grams (a tonne).
pub const MAX_WEIGHT_GRAMS: u32 = 1_000_000;
/// Longest side of a variant allowed, in millimetres (10 m).
pub const MAX_DIMENSION_MM: u32 = 10_000;

/// A purchasable version of a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    id: VariantId,
    product_id: ProductId,
    sku: Sku,
    title: String,
    options: BTreeMap<String, String>,
    weight_grams: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dimensions_mm: Option<[u32; 3]>,
    prices: BTreeMap<Currency, Money>,
    inventory: InventoryPolicy,
    requires_shipping: bool,
    tax_class: String,
    status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    low_stock_threshold: Option<u32>,
}

impl Variant {
    fn new(product_id: ProductId, input: NewVariant) -> Result<Self> {
        let sku = Sku::new(&input.sku)?;
        let title = optional_text("variant title", &input.title, MAX_TITLE_LEN)?;
        at_most(
            "options per variant",
            input.options.len(),
            MAX_OPTIONS_PER_VARIANT,
        )?;
        let mut options = BTreeMap::new();
        for (k, v) in input.options {
            options.insert(
                required_text("option name", &k, MAX_TITLE_LEN)?,
                required_text("option value", &v, MAX_TITLE_LEN)?,
            );
        }
        let mut prices = BTreeMap::new();
        for price in input.prices {
            let price = price.entered()?;
            if price.is_negative() {
                return Err(Error::invalid("price", "must not be negative"));
            }
            if prices.insert(price.currency(), price).is_some() {
                return Err(Error::invalid(
                    "price",
                    format!("two prices in {}", price.currency()),
                ));
            }
        }
        let tax_class = optional_text("tax class", &input.tax_class, 64)?;
        if input.weight_grams > MAX_WEIGHT_GRAMS {
            return Err(Error::LimitExceeded {
                what: "variant weight in grams",
                max: u64::from(MAX_WEIGHT_GRAMS),
            });
        }
        if let Some(dims) = input.dimensions_mm {
            if dims.contains(&0) {
                return Err(Error::invalid(
                    "variant dimensions",
                    format!("{dims:?}: every side must be at least 1 mm"),
                ));
            }
            if dims.iter().any(|d| *d > MAX_DIMENSION_MM) {
                return Err(Error::LimitExceeded {
                    what: "variant dimension in millimetres",
                    max: u64::from(MAX_DIMENSION_MM),
                });
            }
        }
        Ok(Self {
            id: VariantId::new(),
            product_id,
            sku,
            title,
            options,
            weight_grams: input.weight_grams,
            dimensions_mm: input.dimensions_mm,
            prices,
            inventory: input.inventory,
            requires_shipping: input.requires_shipping,
            tax_class: if tax_class.is_empty() {
                "standard".into()
            } else {
                tax_class
            },
            status: input.status,
            low_stock_threshold: input.low_stock_threshold,
        })
    }

    /// The variant's id.
    pub fn id(&self) -> VariantId {
        self.id
    }
    /// The product it belongs to.
    pub fn product_id(&self) -> ProductId {
        self.product_id
    }
    /// Its SKU.
    pub fn sku(&self) -> &Sku {
        &self.sku
    }
    /// Its title (may be empty).
    pub fn title(&self) -> &str {
        &self.title
    }
    /// Its option values.
    pub fn options(&self) -> &BTreeMap<String, String> {
        &self.options
    }
    /// Shipping weight in grams.
    pub fn weight_grams(&self) -> u32 {
        self.weight_grams
    }
    /// Packed size in millimetres (length, width, height), if known.
    pub fn dimensions_mm(&self) -> Option<[u32; 3]> {
        self.dimensions_mm
    }
    /// Its price in `currency`, if it has one.
    pub fn price(&self, currency: Currency) -> Option<Money> {
        self.prices.get(&currency).copied()
    }
    /// All its prices.
    pub fn prices(&self) -> impl Iterator<Item = &Money> {
        self.prices.values()
    }
    /// How its stock is kept.
    pub fn inventory(&self) -> InventoryPolicy {
        self.inventory
    }
    /// Fewer units than this available send a low-stock event; `None`: never.
    pub fn low_stock_threshold(&self) -> Option<u32> {
        self.low_stock_threshold
    }
    /// Whether it is shipped.
    pub fn requires_shipping(&self) -> bool {
        self.requires_shipping
    }
    /// Its tax class.
    pub fn tax_class(&self) -> &str {
        &self.tax_class
    }
    /// Its own sale status.
    pub fn status(&self) -> Status {
        self.status
    }
}

/// What a caller supplies to create a product.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NewProduct {
    /// Title shown to customers.
    pub title: String,
    /// Longer description.
    pub description: String,
    /// Sale status.
    pub status: Status,
    /// Categories it is listed in (they must exist).
    pub categories: Vec<CategoryId>,
    /// Collections it belongs to (they must exist).
    pub collections: Vec<CollectionId>,
    /// Free-form tags; trimmed and lower-cased.
    pub tags: Vec<String>,
    /// Images.
    pub images: Vec<Image>,
    /// At least one variant.
    pub variants: Vec<NewVariant>,
}

impl NewProduct {
    /// A product with this title; everything else at its default (draft,
    /// no variants yet). Set the rest with the chainable setters.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// Adds a variant.
    #[must_use]
    pub fn variant(mut self, variant: NewVariant) -> Self {
        self.variants.push(variant);
        self
    }
}

crate::domain::setters!(NewProduct {
    status: Status,
    categories: Vec<CategoryId>,
    collections: Vec<CollectionId>,
    tags: Vec<String>,
    images: Vec<Image>,
    variants: Vec<NewVariant>,
} into {
    title: String,
    description: String,
});

/// A product and its variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    id: ProductId,
    title: String,
    description: String,
    status: Status,
    categories: BTreeSet<CategoryId>,
    collections: BTreeSet<CollectionId>,
    tags: BTreeSet<String>,
    images: Vec<Image>,
    variants: Vec<Variant>,
}

impl Product {
    /// Validates the input and builds a product with fresh ids. That the
    /// categories and collections exist and that SKUs are unique across the
    /// catalog are checked by the store when the product is saved.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn new(input: NewProduct) -> Result<Self> {
        let id = ProductId::new();
        let title = required_text("product title", &input.title, MAX_TITLE_LEN)?;
        let description = optional_text("description", &input.description, MAX_DESCRIPTION_LEN)?;
        if input.variants.is_empty() {
            return Err(Error::invalid(
                "variants",
                "a product needs at least one variant",
            ));
        }
        at_most(
            "variants per product",
            input.variants.len(),
            MAX_VARIANTS_PER_PRODUCT,
        )?;
        at_most(
            "images per product",
            input.images.len(),
            MAX_IMAGES_PER_PRODUCT,
        )?;
        at_most("tags per product", input.tags.len(), MAX_TAGS_PER_PRODUCT)?;
        at_most(
            "categories per product",
            input.categories.len(),
            MAX_TAGS_PER_PRODUCT,
        )?;
        at_most(
            "collections per product",
            input.collections.len(),
            MAX_TAGS_PER_PRODUCT,
        )?;
        let mut tags = BTreeSet::new();
        for tag in &input.tags {
            tags.insert(required_text("tag", tag, MAX_TITLE_LEN)?.to_lowercase());
        }
        let mut images = Vec::with_capacity(input.images.len());
        for image in input.images {
            images.push(image.checked()?);
        }
        images.sort_by_key(|i| i.position);
        let mut variants = Vec::with_capacity(input.variants.len());
        let mut skus = BTreeSet::new();
        for v in input.variants {
            let variant = Variant::new(id, v)?;
            if !skus.insert(variant.sku.clone()) {
                return Err(Error::AlreadyExists {
                    what: "sku",
                    value: variant.sku.to_string(),
                });
            }
            variants.push(variant);
        }
        Ok(Self {
            id,
            title,
            description,
            status: input.status,
            categories: input.categories.into_iter().collect(),
            collections: input.collections.into_iter().collect(),
            tags,
            images,
            variants,
        })
    }

    /// The product's id.
    pub fn id(&self) -> ProductId {
        self.id
    }
    /// Its title.
    pub fn title(&self) -> &str {
        &self.title
    }
    /// Its description.
    pub fn description(&self) -> &str {
        &self.description
    }
    /// Its sale status.
    pub fn status(&self) -> Status {
        self.status
    }
    /// The categories it is listed in.
    pub fn categories(&self) -> &BTreeSet<CategoryId> {
        &self.categories
    }
    /// The collections it belongs to.
    pub fn collections(&self) -> &BTreeSet<CollectionId> {
        &self.collections
    }
    /// Its tags (lower-case).
    pub fn tags(&self) -> &BTreeSet<String> {
        &self.tags
    }
    /// Its images, by position.
    pub fn images(&self) -> &[Image] {
        &self.images
    }
    /// Its variants.
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }
    /// One of its variants.
    pub fn variant(&self, id: VariantId) -> Option<&Variant> {
        self.variants.iter().find(|v| v.id == id)
    }

    /// Changes the product's status (archive to stop selling it).
    pub fn set_status(&mut self, status: Status) {
        self.status = status;
    }

    /// Renames the product.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for a title that does
    /// not validate (as in [`Product::new`]).
    pub fn set_title(&mut self, title: &str) -> Result<()> {
        self.title = required_text("product title", title, MAX_TITLE_LEN)?;
        Ok(())
    }

    /// Replaces the description.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past [`MAX_DESCRIPTION_LEN`].
    pub fn set_description(&mut self, description: &str) -> Result<()> {
        self.description = optional_text("description", description, MAX_DESCRIPTION_LEN)?;
        Ok(())
    }

    /// Replaces the categories it is in (the store checks they exist).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past [`MAX_TAGS_PER_PRODUCT`].
    pub fn set_categories(&mut self, categories: Vec<CategoryId>) -> Result<()> {
        at_most(
            "categories per product",
            categories.len(),
            MAX_TAGS_PER_PRODUCT,
        )?;
        self.categories = categories.into_iter().collect();
        Ok(())
    }

    /// Replaces the collections it is in (the store checks they exist).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past [`MAX_TAGS_PER_PRODUCT`].
    pub fn set_collections(&mut self, collections: Vec<CollectionId>) -> Result<()> {
        at_most(
            "collections per product",
            collections.len(),
            MAX_TAGS_PER_PRODUCT,
        )?;
        self.collections = collections.into_iter().collect();
        Ok(())
    }

    /// Replaces the tags (kept lower-case, as in [`Product::new`]).
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for tags that do not
    /// validate or more than [`MAX_TAGS_PER_PRODUCT`].
    pub fn set_tags(&mut self, tags: &[String]) -> Result<()> {
        at_most("tags per product", tags.len(), MAX_TAGS_PER_PRODUCT)?;
        let mut out = BTreeSet::new();
        for tag in tags {
            out.insert(required_text("tag", tag, MAX_TITLE_LEN)?.to_lowercase());
        }
        self.tags = out;
        Ok(())
    }

    /// Replaces one variant's details with `input`, keeping its id (so
    /// orders and stock that name it still do).
    ///
    /// # Errors
    /// [`Error::NotFound`] for a variant it does not have; as
    /// [`Product::add_variant`] for input that does not validate or a SKU
    /// another of its variants has.
    pub fn replace_variant(&mut self, variant: VariantId, input: NewVariant) -> Result<()> {
        let mut fresh = Variant::new(self.id, input)?;
        fresh.id = variant;
        if self
            .variants
            .iter()
            .any(|v| v.id != variant && v.sku == fresh.sku)
        {
            return Err(Error::AlreadyExists {
                what: "sku",
                value: fresh.sku.to_string(),
            });
        }
        let slot = self
            .variants
            .iter_mut()
            .find(|v| v.id == variant)
            .ok_or_else(|| Error::not_found("variant", variant))?;
        *slot = fresh;
        Ok(())
    }

    /// Adds an image, placed by its position (after those with the same
    /// position).
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for an image that does
    /// not validate or one past [`MAX_IMAGES_PER_PRODUCT`];
    /// [`Error::NotFound`] for a variant the product does not have.
    pub fn add_image(&mut self, image: Image) -> Result<()> {
        at_most(
            "images per product",
            self.images.len() + 1,
            MAX_IMAGES_PER_PRODUCT,
        )?;
        if let Some(variant) = image.variant
            && self.variant(variant).is_none()
        {
            return Err(Error::not_found("variant", variant));
        }
        let image = image.checked()?;
        let at = self
            .images
            .iter()
            .position(|i| i.position > image.position)
            .unwrap_or(self.images.len());
        self.images.insert(at, image);
        Ok(())
    }

    /// Removes the image served from `url` and returns it.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an image the product does not have.
    pub fn remove_image(&mut self, url: &str) -> Result<Image> {
        let at = self
            .images
            .iter()
            .position(|i| i.url == url)
            .ok_or_else(|| Error::not_found("image", url))?;
        Ok(self.images.remove(at))
    }

    /// Adds a variant; returns its id. The store checks the SKU is free in
    /// the catalog.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for a variant that does
    /// not validate or one past [`MAX_VARIANTS_PER_PRODUCT`];
    /// [`Error::AlreadyExists`] for a SKU another of its variants has.
    pub fn add_variant(&mut self, input: NewVariant) -> Result<VariantId> {
        at_most(
            "variants per product",
            self.variants.len() + 1,
            MAX_VARIANTS_PER_PRODUCT,
        )?;
        let variant = Variant::new(self.id, input)?;
        if self.variants.iter().any(|v| v.sku == variant.sku) {
            return Err(Error::AlreadyExists {
                what: "sku",
                value: variant.sku.to_string(),
            });
        }
        let id = variant.id();
        self.variants.push(variant);
        Ok(id)
    }

    /// Removes a variant (the store refuses one that was reserved or
    /// ordered: archive it instead, with [`Product::set_variant_status`]).
    ///
    /// # Errors
    /// [`Error::NotFound`] for a variant it does not have;
    /// [`Error::Invalid`] for its last variant (a product needs one).
    pub fn remove_variant(&mut self, variant: VariantId) -> Result<()> {
        if !self.variants.iter().any(|v| v.id() == variant) {
            return Err(Error::not_found("variant", variant));
        }
        if self.variants.len() == 1 {
            return Err(Error::invalid(
                "variants",
                "a product needs at least one variant",
            ));
        }
        self.variants.retain(|v| v.id() != variant);
        Ok(())
    }

    /// Changes one variant's status.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown variant.
    pub fn set_variant_status(&mut self, variant: VariantId, status: Status) -> Result<()> {
        let v = self
            .variants
            .iter_mut()
            .find(|v| v.id == variant)
            .ok_or_else(|| Error::not_found("variant", variant))?;
        v.status = status;
        Ok(())
    }

    /// Replaces one variant's price in its currency (validated like [`NewVariant::prices`]).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown variant; [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for input that does not validate, naming the
    /// field.
    pub fn set_variant_price(&mut self, variant: VariantId, price: Money) -> Result<()> {
        let price = price.entered()?;
        if price.is_negative() {
            return Err(Error::invalid("price", "must not be negative"));
        }
        let v = self
            .variants
            .iter_mut()
            .find(|v| v.id == variant)
            .ok_or_else(|| Error::not_found("variant", variant))?;
        v.prices.insert(price.currency(), price);
        Ok(())
    }

    /// Why a variant of this product cannot be bought, if it cannot.
    ///
    /// # Errors
    /// [`Error::NotPurchasable`] saying why (product or variant not active).
    pub fn purchasable(&self, variant: &Variant) -> Result<()> {
        check_purchasable(self.status, variant)
    }
}

fn check_purchasable(product_status: Status, variant: &Variant) -> Result<()> {
    let reason = match (product_status, variant.status) {
        (Status::Active, Status::Active) => return Ok(()),
        (Status::Draft, _) => "the product is a draft",
        (Status::Archived, _) => "the product is archived",
        (_, Status::Draft) => "the variant is a draft",
        (_, Status::Archived) => "the variant is archived",
    };
    Err(Error::NotPurchasable {
        variant_id: variant.id,
        reason,
    })
}

/// A variant together with the product facts that pricing and checkout need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CatalogEntry {
    /// The product's title.
    pub product_title: std::sync::Arc<str>,
    /// The product's status.
    pub product_status: Status,
    /// The product's categories, including every ancestor of each.
    pub categories: BTreeSet<CategoryId>,
    /// The product's collections.
    pub collections: BTreeSet<CollectionId>,
    /// The product's tags.
    pub tags: BTreeSet<String>,
    /// The variant itself.
    pub variant: Variant,
    /// Where checkout first tries to take this variant's stock: the one
    /// location that holds a stock level for it, when the store read that
    /// together with the entry (PostgreSQL's checkout read does, in the same
    /// round trip); `None` otherwise — no stock level, several, or a store
    /// that does not read it. Only a hint, as fresh as the read: the store
    /// re-checks the stock under its lock and, when the location cannot
    /// cover the line, chooses on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_location: Option<crate::id::LocationId>,
}

impl CatalogEntry {
    /// The entry of one of `product`'s variants, listing the categories the
    /// product is in (the stores also add every ancestor category); `None`
    /// if the product has no such variant.
    pub fn of(product: &Product, variant: VariantId) -> Option<Self> {
        let variant = product.variant(variant)?;
        Some(Self::of_variant(
            product,
            variant,
            product.categories().clone(),
        ))
    }

    /// The entry of `variant`, one of `product`'s variants (found already),
    /// listing `categories` (a store passes the product's with their
    /// ancestors).
    pub(crate) fn of_variant(
        product: &Product,
        variant: &Variant,
        categories: BTreeSet<CategoryId>,
    ) -> Self {
        Self {
            product_title: product.title().into(),
            product_status: product.status(),
            categories,
            collections: product.collections().clone(),
            tags: product.tags().clone(),
            variant: variant.clone(),
            stock_location: None,
        }
    }

    /// Why the variant cannot be bought, if it cannot.
    ///
    /// # Errors
    /// [`Error::NotPurchasable`] saying why (product or variant not active).
    pub fn purchasable(&self) -> Result<()> {
        check_purchasable(self.product_status, &self.variant)
    }

    /// The name shown on a receipt: "Product — Variant".
    pub fn display_name(&self) -> std::sync::Arc<str> {
        if self.variant.title.is_empty() {
            std::sync::Arc::clone(&self.product_title)
        } else {
            format!("{} — {}", self.product_title, self.variant.title).into()
        }
    }
}

#[cfg(test)]
mod tests;
