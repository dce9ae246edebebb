//! The engine's catalog-management use cases beyond creating: renaming,
//! moving and deleting categories, renaming and deleting collections,
//! deleting products that were never sold. Staff and the system only;
//! every change is recorded with who made it.

use crate::actor::Actor;
use crate::catalog::{Category, Collection};
use crate::error::{Error, Result};
use crate::id::{CategoryId, CollectionId, ProductId};

use super::*;

impl Engine {
    /// Every collection (a catalog read: no actor).
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn collections(&self) -> Result<Vec<Collection>> {
        self.inner.store.collections().await
    }

    async fn category_by_id(&self, id: CategoryId) -> Result<Category> {
        self.inner
            .store
            .categories()
            .await?
            .into_iter()
            .find(|c| c.id() == id)
            .ok_or_else(|| Error::not_found("category", id))
    }

    /// Renames a category.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for a name that does not
    /// validate; [`Error::NotFound`] for an unknown category;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(category_id = %id))]
    pub async fn rename_category(
        &self,
        actor: &Actor,
        id: CategoryId,
        name: &str,
    ) -> Result<Category> {
        actor.require(crate::actor::Permission::Catalog)?;
        let mut c = self.category_by_id(id).await?;
        c.rename(name)?;
        self.inner.store.update_category(c.clone()).await?;
        self.audit_catalog(
            actor,
            "rename_category",
            id,
            crate::event::CatalogChange::CategoryChanged { category_id: id },
        )
        .await;
        Ok(c)
    }

    /// Moves a category under another (`None`: to the top). Every product
    /// under it has the new ancestors at once (a promotion on "Apparel"
    /// matches what moved under it).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a parent that is the category or under it (a
    /// cycle); [`Error::NotFound`] for an unknown category or parent;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(category_id = %id))]
    pub async fn move_category(
        &self,
        actor: &Actor,
        id: CategoryId,
        parent: Option<CategoryId>,
    ) -> Result<Category> {
        actor.require(crate::actor::Permission::Catalog)?;
        let mut c = self.category_by_id(id).await?;
        c.move_to(parent);
        self.inner.store.update_category(c.clone()).await?;
        self.audit_catalog(
            actor,
            "move_category",
            id,
            crate::event::CatalogChange::CategoryChanged { category_id: id },
        )
        .await;
        Ok(c)
    }

    /// Deletes a category with no subcategories and no products.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] when it still has subcategories or products;
    /// [`Error::NotFound`] for an unknown category; [`Error::Storage`] when
    /// the store fails.
    #[tracing::instrument(skip_all, fields(category_id = %id))]
    pub async fn delete_category(&self, actor: &Actor, id: CategoryId) -> Result<()> {
        actor.require(crate::actor::Permission::Catalog)?;
        self.inner.store.delete_category(id).await?;
        self.audit_catalog(
            actor,
            "delete_category",
            id,
            crate::event::CatalogChange::CategoryDeleted { category_id: id },
        )
        .await;
        Ok(())
    }

    /// Gives a collection a new title.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for a title that does not
    /// validate; [`Error::NotFound`] for an unknown collection;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(collection_id = %id))]
    pub async fn rename_collection(
        &self,
        actor: &Actor,
        id: CollectionId,
        title: &str,
    ) -> Result<Collection> {
        actor.require(crate::actor::Permission::Catalog)?;
        let mut c = self
            .inner
            .store
            .collections()
            .await?
            .into_iter()
            .find(|c| c.id() == id)
            .ok_or_else(|| Error::not_found("collection", id))?;
        c.rename(title)?;
        self.inner.store.update_collection(c.clone()).await?;
        self.audit_catalog(
            actor,
            "rename_collection",
            id,
            crate::event::CatalogChange::CollectionChanged { collection_id: id },
        )
        .await;
        Ok(c)
    }

    /// Deletes a collection no product is in.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] when products are in it; [`Error::NotFound`] for an
    /// unknown collection; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(collection_id = %id))]
    pub async fn delete_collection(&self, actor: &Actor, id: CollectionId) -> Result<()> {
        actor.require(crate::actor::Permission::Catalog)?;
        self.inner.store.delete_collection(id).await?;
        self.audit_catalog(
            actor,
            "delete_collection",
            id,
            crate::event::CatalogChange::CollectionDeleted { collection_id: id },
        )
        .await;
        Ok(())
    }

    /// Deletes a product that was never sold: none of its variants was ever
    /// reserved or ordered. Its variants and their stock go with it. A
    /// product that was sold is archived instead
    /// ([`Engine::set_product_status`] with
    /// [`Status::Archived`](crate::catalog::Status)), so orders keep their
    /// history; a cart still holding one of its variants fails to price,
    /// naming it, until the line is removed.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] when a variant was reserved or ordered;
    /// [`Error::NotFound`] for an unknown product; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(skip_all, fields(product_id = %id))]
    pub async fn delete_product(&self, actor: &Actor, id: ProductId) -> Result<()> {
        actor.require(crate::actor::Permission::Catalog)?;
        self.inner.store.delete_product(id).await?;
        self.audit_catalog(
            actor,
            "delete_product",
            id,
            crate::event::CatalogChange::ProductDeleted { product_id: id },
        )
        .await;
        Ok(())
    }
}

/// One page of [`Engine::find_products`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProductPage {
    /// The products, in the query's order.
    pub products: Vec<crate::catalog::Product>,
    /// Pass as the query's `after` for the next page; `None` on the last.
    pub next: Option<crate::catalog::ProductCursor>,
}

impl Engine {
    /// Lists and searches products for a storefront or staff: by title words
    /// or a SKU's start, category (with its subcategories), collection,
    /// tag, status and price range in a currency; newest first or by title;
    /// a page at a time (keyset: pass `next` as the next query's `after`).
    /// Anyone but staff and the system sees active products only, whatever
    /// status the query asks for.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] for a `limit` outside 1 to
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE), or a text over
    /// [`MAX_PRODUCT_SEARCH_TEXT`](crate::catalog::MAX_PRODUCT_SEARCH_TEXT)
    /// characters, or a tag or cursor title over
    /// [`MAX_TITLE_LEN`](crate::catalog::MAX_TITLE_LEN); [`Error::Storage`]
    /// when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn find_products(
        &self,
        actor: &Actor,
        query: &crate::catalog::ProductQuery,
    ) -> Result<ProductPage> {
        crate::store::check_limit(query.limit)?;
        if let Some(text) = &query.text {
            crate::validate::at_most(
                "search text",
                text.chars().count(),
                crate::catalog::MAX_PRODUCT_SEARCH_TEXT,
            )?;
        }
        for (what, text) in [
            ("tag", query.tag.as_deref()),
            (
                "cursor title",
                query.after.as_ref().map(|a| a.title.as_str()),
            ),
        ] {
            if let Some(text) = text {
                crate::validate::at_most(
                    what,
                    text.chars().count(),
                    crate::catalog::MAX_TITLE_LEN,
                )?;
            }
        }
        let mut query = query.clone();
        if !actor.allows(crate::actor::Permission::Catalog) {
            // Shoppers see active products: asking for others finds none.
            if query
                .status
                .is_some_and(|s| s != crate::catalog::Status::Active)
            {
                return Ok(ProductPage {
                    products: Vec::new(),
                    next: None,
                });
            }
            query.status = Some(crate::catalog::Status::Active);
        }
        let products = self.inner.store.find_products(&query).await?;
        let next = (products.len() == query.limit)
            .then(|| products.last().map(crate::catalog::ProductCursor::after))
            .flatten();
        Ok(ProductPage { products, next })
    }
}

impl Engine {
    /// Creates a category under `parent` (a root when `None`).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad name; [`Error::NotFound`] for an unknown
    /// parent; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_category(
        &self,
        actor: &Actor,
        name: &str,
        parent: Option<CategoryId>,
    ) -> Result<Category> {
        actor.require(crate::actor::Permission::Catalog)?;
        let category = Category::new(name, parent)?;
        self.inner.store.insert_category(category.clone()).await?;
        self.audit_catalog(
            actor,
            "create_category",
            category.id(),
            crate::event::CatalogChange::CategoryChanged {
                category_id: category.id(),
            },
        )
        .await;
        Ok(category)
    }

    /// Every category.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn categories(&self) -> Result<Vec<Category>> {
        self.inner.store.categories().await
    }

    /// Creates a collection.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad title; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_collection(&self, actor: &Actor, title: &str) -> Result<Collection> {
        actor.require(crate::actor::Permission::Catalog)?;
        let collection = Collection::new(title)?;
        self.inner
            .store
            .insert_collection(collection.clone())
            .await?;
        self.audit_catalog(
            actor,
            "create_collection",
            collection.id(),
            crate::event::CatalogChange::CollectionChanged {
                collection_id: collection.id(),
            },
        )
        .await;
        Ok(collection)
    }

    /// Creates a product with its variants.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input, naming it;
    /// [`Error::AlreadyExists`] for a SKU already taken (naming it);
    /// [`Error::NotFound`] for an unknown category or collection;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_product(&self, actor: &Actor, input: NewProduct) -> Result<Product> {
        actor.require(crate::actor::Permission::Catalog)?;
        let product = Product::new(input)?;
        self.inner.store.insert_product(product.clone()).await?;
        self.audit_catalog(
            actor,
            "create_product",
            product.id(),
            crate::event::CatalogChange::ProductCreated {
                product_id: product.id(),
            },
        )
        .await;
        Ok(product)
    }

    /// Replaces a product (for example after [`Product::set_status`] or
    /// [`Product::set_variant_price`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting; as
    /// [`Engine::create_product`]; [`Error::NotFound`] for an unknown product.
    #[tracing::instrument(skip_all)]
    pub async fn update_product(&self, actor: &Actor, product: Product) -> Result<()> {
        actor.require(crate::actor::Permission::Catalog)?;
        let id = product.id();
        self.inner.store.update_product(product).await?;
        self.audit_catalog(
            actor,
            "update_product",
            id,
            crate::event::CatalogChange::ProductUpdated { product_id: id },
        )
        .await;
        Ok(())
    }

    /// Sets a product's status.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown product; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(skip_all)]
    pub async fn set_product_status(
        &self,
        actor: &Actor,
        id: ProductId,
        status: Status,
    ) -> Result<Product> {
        actor.require(crate::actor::Permission::Catalog)?;
        let mut product = self.inner.store.product(id).await?;
        product.set_status(status);
        self.inner.store.update_product(product.clone()).await?;
        self.audit_catalog(
            actor,
            "set_product_status",
            format!("{id} {status:?}"),
            crate::event::CatalogChange::ProductStatusChanged {
                product_id: id,
                status,
            },
        )
        .await;
        Ok(product)
    }

    /// One product.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown product; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(skip_all)]
    pub async fn product(&self, id: ProductId) -> Result<Product> {
        self.inner.store.product(id).await
    }

    /// Products by id, after `after`, at most `limit`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a `limit` outside 1 to
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE); [`Error::Storage`] when
    /// the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn products(&self, after: Option<ProductId>, limit: usize) -> Result<Vec<Product>> {
        self.inner.store.products(after, limit).await
    }

    /// The variants `ids` with their products' details (no actor: a
    /// catalog read); unknown ids are left out. At most
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE) times ten.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] for more ids; [`Error::Storage`].
    pub async fn catalog_entries(
        &self,
        ids: &[crate::id::VariantId],
    ) -> Result<std::collections::HashMap<crate::id::VariantId, CatalogEntry>> {
        crate::validate::at_most("variants", ids.len(), crate::store::MAX_PAGE_SIZE * 10)?;
        self.inner.store.entries(ids).await
    }

    /// The variant with this SKU.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed SKU; [`Error::NotFound`] for an unknown
    /// one; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn variant_by_sku(&self, sku: &str) -> Result<CatalogEntry> {
        self.inner.store.entry_by_sku(&Sku::new(sku)?).await
    }
}
