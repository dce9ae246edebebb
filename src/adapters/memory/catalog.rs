//! The in-memory store: catalog.

use super::*;

#[async_trait]
impl CatalogStore for MemoryStore {
    async fn insert_product(&self, product: Product) -> Result<()> {
        let mut s = self.lock();
        s.check_insert(&product)?;
        s.index_product(&product);
        s.products.insert(product.id(), Arc::new(product));
        Ok(())
    }

    async fn update_product(&self, product: Product) -> Result<()> {
        let mut s = self.lock();
        let (old, removed) = s.check_update(&product)?;
        s.apply_update(product, &old, &removed);
        Ok(())
    }

    async fn import_catalog(&self, batch: crate::store::CatalogBatch) -> Result<()> {
        let mut s = self.lock();
        // Check everything first, then apply: nothing below can fail.
        let mut skus = BTreeSet::new();
        let mut variants = BTreeSet::new();
        for product in batch.created.iter().chain(&batch.updated) {
            for v in product.variants() {
                if !skus.insert(v.sku().clone()) {
                    return Err(Error::AlreadyExists {
                        what: "sku",
                        value: v.sku().to_string(),
                    });
                }
                variants.insert(v.id());
            }
        }
        for product in &batch.created {
            s.check_insert(product)?;
        }
        let mut updates = Vec::with_capacity(batch.updated.len());
        for product in batch.updated {
            let (old, removed) = s.check_update(&product)?;
            updates.push((product, old, removed));
        }
        let mut stock = Vec::with_capacity(batch.stock.len());
        for (variant, location, on_hand) in batch.stock {
            let on_hand = crate::inventory::check_on_hand(on_hand)?;
            if !variants.contains(&variant) && !s.variants.contains_key(&variant) {
                return Err(Error::not_found("variant", variant));
            }
            if !s.locations.iter().any(|l| l.id() == location) {
                return Err(Error::not_found("location", location));
            }
            stock.push((variant, location, on_hand));
        }
        for product in batch.created {
            s.index_product(&product);
            s.products.insert(product.id(), Arc::new(product));
        }
        for (product, old, removed) in updates {
            s.apply_update(product, &old, &removed);
        }
        for (variant, location, on_hand) in stock {
            s.stock.entry((variant, location)).or_default().on_hand = on_hand;
        }
        Ok(())
    }

    async fn product(&self, id: ProductId) -> Result<Product> {
        self.lock()
            .products
            .get(&id)
            .map(|p| Product::clone(p))
            .ok_or_else(|| Error::not_found("product", id))
    }

    async fn products(&self, after: Option<ProductId>, limit: usize) -> Result<Vec<Product>> {
        let limit = check_limit(limit)?;
        let s = self.lock();
        let iter: Box<dyn Iterator<Item = &Product>> = match after {
            Some(a) => Box::new(
                s.products
                    .range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                    .map(|(_, p)| &**p),
            ),
            None => Box::new(s.products.values().map(|p| &**p)),
        };
        Ok(iter.take(limit).cloned().collect())
    }

    async fn entries_by_sku(&self, skus: &[Sku]) -> Result<HashMap<Sku, CatalogEntry>> {
        let s = self.lock();
        Ok(skus
            .iter()
            .filter_map(|sku| {
                let entry = s.skus.get(sku).and_then(|v| s.entry(*v))?;
                Some((sku.clone(), entry))
            })
            .collect())
    }

    async fn products_by_id(&self, ids: &[ProductId]) -> Result<HashMap<ProductId, Product>> {
        let s = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| Some((*id, Product::clone(s.products.get(id)?))))
            .collect())
    }

    async fn entry_by_sku(&self, sku: &Sku) -> Result<CatalogEntry> {
        let s = self.lock();
        s.skus
            .get(sku)
            .and_then(|v| s.entry(*v))
            .ok_or_else(|| Error::not_found("sku", sku))
    }

    async fn entries(&self, ids: &[VariantId]) -> Result<HashMap<VariantId, CatalogEntry>> {
        let sources = {
            let s = self.lock();
            ids.iter().filter_map(|id| s.entry_source(*id)).collect()
        };
        Ok(build_entries(sources))
    }

    async fn insert_category(&self, category: Category) -> Result<()> {
        let mut s = self.lock();
        if let Some(parent) = category.parent()
            && !s.categories.contains_key(&parent)
        {
            return Err(Error::not_found("category", parent));
        }
        if s.categories.contains_key(&category.id()) {
            return Err(Error::AlreadyExists {
                what: "category",
                value: category.id().to_string(),
            });
        }
        s.categories.insert(category.id(), category);
        Ok(())
    }

    async fn categories(&self) -> Result<Vec<Category>> {
        Ok(self.lock().categories.values().cloned().collect())
    }

    async fn insert_collection(&self, collection: Collection) -> Result<()> {
        let mut s = self.lock();
        if s.collections.contains_key(&collection.id()) {
            return Err(Error::AlreadyExists {
                what: "collection",
                value: collection.id().to_string(),
            });
        }
        s.collections.insert(collection.id(), collection);
        Ok(())
    }

    async fn collections(&self) -> Result<Vec<Collection>> {
        Ok(self.lock().collections.values().cloned().collect())
    }

    async fn update_category(&self, category: Category) -> Result<()> {
        let mut s = self.lock();
        if !s.categories.contains_key(&category.id()) {
            return Err(Error::not_found("category", category.id()));
        }
        if let Some(parent) = category.parent() {
            if !s.categories.contains_key(&parent) {
                return Err(Error::not_found("category", parent));
            }
            // The parent's ancestry must not pass through the category.
            if s.category_ancestry(&BTreeSet::from([parent]))
                .contains(&category.id())
            {
                return Err(Error::invalid(
                    "category parent",
                    format!("{parent} is {} or under it", category.id()),
                ));
            }
        }
        s.categories.insert(category.id(), category);
        Ok(())
    }

    async fn delete_category(&self, id: CategoryId) -> Result<()> {
        let mut s = self.lock();
        if !s.categories.contains_key(&id) {
            return Err(Error::not_found("category", id));
        }
        let children = s
            .categories
            .values()
            .filter(|c| c.parent() == Some(id))
            .count();
        let products = s
            .products
            .values()
            .filter(|p| p.categories().contains(&id))
            .count();
        if children > 0 || products > 0 {
            return Err(Error::invalid(
                "category",
                format!("{id} has {children} subcategories and {products} products"),
            ));
        }
        s.categories.remove(&id);
        Ok(())
    }

    async fn update_collection(&self, collection: Collection) -> Result<()> {
        let mut s = self.lock();
        if !s.collections.contains_key(&collection.id()) {
            return Err(Error::not_found("collection", collection.id()));
        }
        s.collections.insert(collection.id(), collection);
        Ok(())
    }

    async fn delete_collection(&self, id: CollectionId) -> Result<()> {
        let mut s = self.lock();
        if !s.collections.contains_key(&id) {
            return Err(Error::not_found("collection", id));
        }
        let products = s
            .products
            .values()
            .filter(|p| p.collections().contains(&id))
            .count();
        if products > 0 {
            return Err(Error::invalid(
                "collection",
                format!("{id} has {products} products"),
            ));
        }
        s.collections.remove(&id);
        Ok(())
    }

    async fn find_products(&self, query: &crate::catalog::ProductQuery) -> Result<Vec<Product>> {
        let s = self.lock();
        let mut found: Vec<&Product> = s
            .products
            .values()
            .map(|p| &**p)
            .filter(|p| query.matches(p, &s.category_ancestry(p.categories())))
            .collect();
        match query.sort {
            crate::catalog::ProductSort::Title => {
                found.sort_unstable_by(|a, b| (a.title(), a.id()).cmp(&(b.title(), b.id())));
            }
            _ => found.sort_unstable_by_key(|p| std::cmp::Reverse(p.id())),
        }
        Ok(found.into_iter().take(query.limit).cloned().collect())
    }

    async fn delete_product(&self, id: ProductId) -> Result<()> {
        let mut s = self.lock();
        let product = s
            .products
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("product", id))?;
        let variants: BTreeSet<VariantId> = product.variants().iter().map(|v| v.id()).collect();
        if s.variants_used(&variants) {
            return Err(Error::invalid(
                "product",
                format!("{id} was reserved or ordered: archive it instead"),
            ));
        }
        s.unindex_product(&product);
        s.stock.retain(|(v, _), _| !variants.contains(v));
        s.products.remove(&id);
        Ok(())
    }
}
