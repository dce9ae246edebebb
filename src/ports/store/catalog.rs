//! Products, variants, categories and collections.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::catalog::{CatalogEntry, Category, Collection, Product, Sku};
use crate::error::{Error, Result};
use crate::id::{CategoryId, CollectionId, LocationId, ProductId, VariantId};

/// Products, variants, categories and collections.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Saves a new product. Fails if a SKU is taken or a category or
    /// collection does not exist.
    async fn insert_product(&self, product: Product) -> Result<()>;
    /// Replaces an existing product, with the same checks. A variant left
    /// out is deleted (with its stock) only if it was never reserved or
    /// ordered: [`Error::Invalid`] otherwise, naming it (archive it instead).
    async fn update_product(&self, product: Product) -> Result<()>;
    /// One product.
    async fn product(&self, id: ProductId) -> Result<Product>;
    /// Products ordered by id, after `after`, at most `limit` (≤ [`MAX_PAGE_SIZE`](super::MAX_PAGE_SIZE)).
    async fn products(&self, after: Option<ProductId>, limit: usize) -> Result<Vec<Product>>;
    /// The variant with this SKU.
    async fn entry_by_sku(&self, sku: &Sku) -> Result<CatalogEntry>;
    /// The variants with these SKUs (at most
    /// [`MAX_IMPORT_ROWS`](crate::catalog_csv::MAX_IMPORT_ROWS)), by SKU;
    /// unknown SKUs are simply absent. The default asks
    /// [`CatalogStore::entry_by_sku`] for each; the built-in stores read
    /// them at once (a catalog import plans a whole file with it).
    async fn entries_by_sku(&self, skus: &[Sku]) -> Result<HashMap<Sku, CatalogEntry>> {
        let mut found = HashMap::with_capacity(skus.len());
        for sku in skus {
            match self.entry_by_sku(sku).await {
                Ok(entry) => {
                    found.insert(sku.clone(), entry);
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }
    /// These products (at most
    /// [`MAX_IMPORT_ROWS`](crate::catalog_csv::MAX_IMPORT_ROWS)), by id;
    /// unknown ids are simply absent. The default asks
    /// [`CatalogStore::product`] for each; the built-in stores read them at
    /// once.
    async fn products_by_id(&self, ids: &[ProductId]) -> Result<HashMap<ProductId, Product>> {
        let mut found = HashMap::with_capacity(ids.len());
        for id in ids {
            match self.product(*id).await {
                Ok(product) => {
                    found.insert(*id, product);
                }
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }
    /// Catalog entries for the given variants; unknown ids are simply absent.
    async fn entries(&self, ids: &[VariantId]) -> Result<HashMap<VariantId, CatalogEntry>>;
    /// Saves a category. Fails if its parent does not exist.
    async fn insert_category(&self, category: Category) -> Result<()>;
    /// Every category.
    async fn categories(&self) -> Result<Vec<Category>>;
    /// Saves a collection.
    async fn insert_collection(&self, collection: Collection) -> Result<()>;
    /// Every collection.
    async fn collections(&self) -> Result<Vec<Collection>>;
    /// Replaces a category (a new name or parent). Moving it changes the
    /// ancestors of every product under it at once.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown category or parent;
    /// [`Error::Invalid`] for a parent that is the category itself or one
    /// under it (a cycle), naming it; [`Error::Storage`] when the store fails.
    async fn update_category(&self, category: Category) -> Result<()>;
    /// Deletes a category with no subcategories and no products.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown category; [`Error::Invalid`] when
    /// it has subcategories or products (saying how many);
    /// [`Error::Storage`] when the store fails.
    async fn delete_category(&self, id: CategoryId) -> Result<()>;
    /// Replaces a collection (a new title).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown collection; [`Error::Storage`] when
    /// the store fails.
    async fn update_collection(&self, collection: Collection) -> Result<()>;
    /// Deletes a collection no product is in.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown collection; [`Error::Invalid`] when
    /// products are in it (saying how many); [`Error::Storage`] when the
    /// store fails.
    async fn delete_collection(&self, id: CollectionId) -> Result<()>;
    /// Deletes a product, its variants and their stock rows, when no
    /// variant of it was ever reserved or ordered; others are archived
    /// instead ([`Status::Archived`](crate::catalog::Status)).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown product; [`Error::Invalid`] when a
    /// variant was reserved or ordered; [`Error::Storage`] when the store
    /// fails.
    async fn delete_product(&self, id: ProductId) -> Result<()>;
    /// Products matching `query` ([`ProductQuery::matches`](crate::catalog::ProductQuery::matches)
    /// gives the meaning), in its order, at most `query.limit` (already
    /// checked by the engine).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails.
    async fn find_products(&self, query: &crate::catalog::ProductQuery) -> Result<Vec<Product>>;
    /// Writes a whole catalog import at once, all of it or none of it:
    /// new products (checked as [`CatalogStore::insert_product`]), changed
    /// products (as [`CatalogStore::update_product`]) and units on hand set
    /// (as [`InventoryStore::set_stock`](super::InventoryStore::set_stock), for variants that exist or are
    /// among the new products). Nothing is written when any part fails.
    ///
    /// # Errors
    /// As the three calls it stands for: [`Error::AlreadyExists`] for a SKU
    /// taken (by another product, or twice in the batch),
    /// [`Error::NotFound`] for an unknown product, category, collection,
    /// variant or location, [`Error::Invalid`] for a reserved or ordered
    /// variant removed or units out of range; [`Error::Storage`].
    async fn import_catalog(&self, batch: CatalogBatch) -> Result<()>;
}

/// One catalog import, written at once by
/// [`CatalogStore::import_catalog`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CatalogBatch {
    /// Products to create.
    pub created: Vec<Product>,
    /// Products to replace (each one's id exists).
    pub updated: Vec<Product>,
    /// Units on hand to set: variant, location, units.
    pub stock: Vec<(VariantId, LocationId, i64)>,
}

impl CatalogBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.stock.is_empty()
    }
}
