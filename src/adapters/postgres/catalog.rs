//! The PostgreSQL store: catalog.

use super::*;

/// How many products of the order a text search walks before it takes its
/// matches from the text's indexes instead (see `find_products`).
const SEARCH_WALK: i64 = 2_000;

impl PgStore {
    /// [`CatalogStore::update_category`] in one transaction: the parent
    /// checked (exists, not the category or under it), the row replaced,
    /// and the pricing summary of every product under the category
    /// recomputed with its new ancestors.
    pub(super) async fn update_category_try(&self, category: &Category) -> Try<()> {
        let mut tx = self.pool().begin().await?;
        let id = category.id().as_uuid();
        // Category moves are serialized, so two cannot make a cycle together.
        sqlx::query("LOCK TABLE cw_categories IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let found = sqlx::query("SELECT id FROM cw_categories WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(Error::not_found("category", category.id()).into());
        }
        if let Some(parent) = category.parent() {
            let row = sqlx::query(
                "WITH RECURSIVE below(id) AS (
                     SELECT $1::uuid
                     UNION
                     SELECT c.id FROM cw_categories c JOIN below b ON c.parent_id = b.id)
                 SELECT EXISTS (SELECT 1 FROM cw_categories WHERE id = $2) AS known,
                        EXISTS (SELECT 1 FROM below WHERE id = $2) AS cycle",
            )
            .bind(id)
            .bind(parent.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
            if !col::<bool>(&row, "known", "category")? {
                return Err(Error::not_found("category", parent).into());
            }
            if col::<bool>(&row, "cycle", "category")? {
                return Err(Error::invalid(
                    "category parent",
                    format!("{parent} is {} or under it", category.id()),
                )
                .into());
            }
        }
        sqlx::query("UPDATE cw_categories SET parent_id = $2, doc = $3 WHERE id = $1")
            .bind(id)
            .bind(category.parent().map(|p| p.as_uuid()))
            .bind(Json(to_json(category)?))
            .execute(&mut *tx)
            .await?;
        // Products under the category (or below it) get their new ancestors.
        let rows = sqlx::query(
            "WITH RECURSIVE below(id) AS (
                 SELECT $1::uuid
                 UNION
                 SELECT c.id FROM cw_categories c JOIN below b ON c.parent_id = b.id)
             SELECT p.id, p.doc FROM cw_products p
             WHERE p.id IN (SELECT product_id FROM cw_product_categories
                            WHERE category_id IN (SELECT id FROM below))
             ORDER BY p.id FOR UPDATE",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let product: Product = doc(&row, "doc", "product")?;
            let summary = to_json(&ProductSummary::of(
                &product,
                ancestry(&mut tx, product.categories()).await?,
            ))?;
            sqlx::query("UPDATE cw_products SET summary = $2 WHERE id = $1")
                .bind(product.id().as_uuid())
                .bind(Json(&summary))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn write_product(&self, product: &Product, replace: bool) -> Try<()> {
        let mut tx = self.pool().begin().await?;
        write_product_in(&mut tx, product, replace).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) fn product_error(f: Fail, product: &Product) -> Fail {
        match (sqlstate(&f).as_deref(), constraint(&f).as_deref()) {
            (Some("23505"), Some("cw_variants_sku_key")) => Error::AlreadyExists {
                what: "sku",
                value: product
                    .variants()
                    .iter()
                    .map(|v| v.sku().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into(),
            (Some("23505"), Some("cw_products_pkey")) => Error::AlreadyExists {
                what: "product",
                value: product.id().to_string(),
            }
            .into(),
            (Some("23505"), _) => Error::AlreadyExists {
                what: "variant id",
                value: product.id().to_string(),
            }
            .into(),
            (Some("23503"), Some(c)) if c.contains("category") => {
                Error::not_found("category", "referenced by the product").into()
            }
            (Some("23503"), Some(c)) if c.contains("collection") => {
                Error::not_found("collection", "referenced by the product").into()
            }
            _ => f,
        }
    }

    pub(super) async fn entries_try(
        &self,
        ids: &[VariantId],
    ) -> Try<HashMap<VariantId, CatalogEntry>> {
        let rows = sqlx::query(
            "SELECT v.doc AS variant, p.summary
             FROM cw_variants v JOIN cw_products p ON p.id = v.product_id
             WHERE v.id = ANY($1)",
        )
        .bind(uuids(ids, |v| v.as_uuid()))
        .fetch_all(&self.pool())
        .await?;
        rows.iter()
            .map(|row| entry_of(row).map(|e| (e.variant.id(), e)))
            .collect()
    }
}

/// A catalog entry from a row of a variant's `variant` document and its
/// product's `summary`.
fn entry_of(row: &PgRow) -> Try<CatalogEntry> {
    let variant: crate::catalog::Variant = doc(row, "variant", "variant")?;
    let summary: ProductSummary = doc(row, "summary", "product")?;
    Ok(summary.entry(variant))
}

/// The first of `product`'s variants, other than those in `keep`, that was
/// ever reserved (reservation lines are indexed by variant) or ordered (a
/// scan of the orders' lines: deleting is a rare staff action).
pub(super) async fn first_sold_variant(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    product: Uuid,
    keep: &[Uuid],
) -> Try<Option<VariantId>> {
    let used: Option<Uuid> = sqlx::query_scalar(
        "WITH gone AS (SELECT id FROM cw_variants
                       WHERE product_id = $1 AND NOT (id = ANY($2)))
         SELECT g.id FROM gone g
         WHERE EXISTS (SELECT 1 FROM cw_reservations WHERE g.id = ANY(variant_ids))
            OR EXISTS (SELECT 1 FROM cw_orders o,
                              json_array_elements(o.doc->'pricing'->'lines') l
                       WHERE (l->>'variant_id')::uuid = g.id)
         ORDER BY g.id LIMIT 1",
    )
    .bind(product)
    .bind(keep)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(used.map(VariantId::from_uuid))
}

/// `categories` and every ancestor of each, read in `tx`.
pub(super) async fn ancestry(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    categories: &std::collections::BTreeSet<CategoryId>,
) -> Try<std::collections::BTreeSet<CategoryId>> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "WITH RECURSIVE anc(id) AS (
             SELECT unnest($1::uuid[])
             UNION
             SELECT c.parent_id FROM cw_categories c JOIN anc ON c.id = anc.id
             WHERE c.parent_id IS NOT NULL)
         SELECT id FROM anc",
    )
    .bind(uuids(categories, |c| c.as_uuid()))
    .fetch_all(&mut **tx)
    .await?;
    Ok(ids.into_iter().map(CategoryId::from_uuid).collect())
}

/// What pricing needs of a product, stored beside the full document.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct ProductSummary {
    pub(super) title: String,
    pub(super) status: crate::catalog::Status,
    pub(super) tags: std::collections::BTreeSet<String>,
    pub(super) collections: std::collections::BTreeSet<crate::id::CollectionId>,
    /// The product's categories and all their ancestors: computed when the
    /// product is written, and again for every product under a category
    /// that moves.
    pub(super) categories: std::collections::BTreeSet<CategoryId>,
}

/// What only listings read of a product, in its own column (`search`), so
/// pricing's reads of the summary stay small.
#[derive(serde::Serialize)]
pub(super) struct ProductSearch {
    /// Every variant's price, by currency (a price range reads it without
    /// joining the variants).
    pub(super) prices: std::collections::BTreeMap<crate::money::Currency, Vec<Decimal>>,
    /// Every variant's SKU.
    pub(super) skus: Vec<String>,
}

impl ProductSearch {
    pub(super) fn of(p: &Product) -> Self {
        let mut prices: std::collections::BTreeMap<_, Vec<Decimal>> =
            std::collections::BTreeMap::new();
        for v in p.variants() {
            for m in v.prices() {
                prices.entry(m.currency()).or_default().push(m.amount());
            }
        }
        Self {
            prices,
            skus: p
                .variants()
                .iter()
                .map(|v| v.sku().as_str().to_owned())
                .collect(),
        }
    }
}

impl ProductSummary {
    pub(super) fn entry(self, variant: crate::catalog::Variant) -> CatalogEntry {
        CatalogEntry {
            product_title: self.title.into(),
            product_status: self.status,
            categories: self.categories,
            collections: self.collections,
            tags: self.tags,
            variant,
            stock_location: None,
        }
    }

    pub(super) fn of(p: &Product, categories: std::collections::BTreeSet<CategoryId>) -> Self {
        Self {
            title: p.title().to_owned(),
            status: p.status(),
            tags: p.tags().clone(),
            collections: p.collections().clone(),
            categories,
        }
    }
}

#[async_trait]
impl CatalogStore for PgStore {
    async fn insert_product(&self, product: Product) -> Result<()> {
        retry!(self, async {
            self.write_product(&product, false)
                .await
                .map_err(|f| Self::product_error(f, &product))
        })
    }

    async fn import_catalog(&self, batch: crate::store::CatalogBatch) -> Result<()> {
        let mut units = Vec::with_capacity(batch.stock.len());
        for (_, _, on_hand) in &batch.stock {
            units.push(crate::inventory::check_on_hand(*on_hand)?);
        }
        let variants: Vec<Uuid> = batch.stock.iter().map(|(v, _, _)| v.as_uuid()).collect();
        let locations: Vec<Uuid> = batch.stock.iter().map(|(_, l, _)| l.as_uuid()).collect();
        retry!(self, async {
            let mut tx = self.pool().begin().await?;
            for (product, replace) in batch
                .created
                .iter()
                .map(|p| (p, false))
                .chain(batch.updated.iter().map(|p| (p, true)))
            {
                write_product_in(&mut tx, product, replace)
                    .await
                    .map_err(|f| Self::product_error(f, product))?;
            }
            if !units.is_empty() {
                sqlx::query(
                    "INSERT INTO cw_stock (variant_id, location_id, on_hand, reserved)
                     SELECT v, l, n, 0 FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u(v, l, n)
                     ON CONFLICT (variant_id, location_id) DO UPDATE SET on_hand = EXCLUDED.on_hand",
                )
                .bind(&variants)
                .bind(&locations)
                .bind(&units)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    let f = Fail::from(e);
                    match sqlstate(&f).as_deref() {
                        Some("23503") => Fail::from(Error::not_found(
                            "variant or location",
                            "named by the import's stock",
                        )),
                        _ => f,
                    }
                })?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn update_product(&self, product: Product) -> Result<()> {
        retry!(self, async {
            self.write_product(&product, true)
                .await
                .map_err(|f| Self::product_error(f, &product))
        })
    }

    async fn product(&self, id: ProductId) -> Result<Product> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_products WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool())
                .await?
                .ok_or_else(|| Error::not_found("product", id))?;
            doc::<Product>(&row, "doc", "product")
        })
    }

    // Listings and search read the replica, when there is one.
    async fn products(&self, after: Option<ProductId>, limit: usize) -> Result<Vec<Product>> {
        let limit = limit_i64(limit)?;
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT doc FROM cw_products WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
            )
            .bind(after.map(|a| a.as_uuid()))
            .bind(limit)
            .fetch_all(&self.read_pool())
            .await?;
            rows.iter()
                .map(|r| doc(r, "doc", "product"))
                .collect::<Try<Vec<Product>>>()
        })
    }

    async fn entry_by_sku(&self, sku: &Sku) -> Result<CatalogEntry> {
        let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM cw_variants WHERE sku = $1")
            .bind(sku.as_str())
            .fetch_optional(&self.pool())
            .await
            .map_err(storage)?;
        let id = VariantId::from_uuid(id.ok_or_else(|| Error::not_found("sku", sku))?);
        let mut entries = self.entries(&[id]).await?;
        entries
            .remove(&id)
            .ok_or_else(|| Error::not_found("sku", sku))
    }

    async fn entries(&self, ids: &[VariantId]) -> Result<HashMap<VariantId, CatalogEntry>> {
        retry!(self, self.entries_try(ids))
    }

    async fn entries_by_sku(&self, skus: &[Sku]) -> Result<HashMap<Sku, CatalogEntry>> {
        let wanted: Vec<&str> = skus.iter().map(Sku::as_str).collect();
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT v.doc AS variant, p.summary
                 FROM cw_variants v JOIN cw_products p ON p.id = v.product_id
                 WHERE v.sku = ANY($1)",
            )
            .bind(&wanted)
            .fetch_all(&self.pool())
            .await?;
            rows.iter()
                .map(|row| entry_of(row).map(|e| (e.variant.sku().clone(), e)))
                .collect::<Try<HashMap<_, _>>>()
        })
    }

    async fn products_by_id(&self, ids: &[ProductId]) -> Result<HashMap<ProductId, Product>> {
        retry!(self, async {
            let rows = sqlx::query("SELECT doc FROM cw_products WHERE id = ANY($1)")
                .bind(uuids(ids, |p| p.as_uuid()))
                .fetch_all(&self.pool())
                .await?;
            let mut out = HashMap::with_capacity(rows.len());
            for row in rows {
                let product: Product = doc(&row, "doc", "product")?;
                out.insert(product.id(), product);
            }
            Ok(out)
        })
    }

    async fn insert_category(&self, category: Category) -> Result<()> {
        retry!(self, async {
            let result =
                sqlx::query("INSERT INTO cw_categories (id, parent_id, doc) VALUES ($1, $2, $3)")
                    .bind(category.id().as_uuid())
                    .bind(category.parent().map(|p| p.as_uuid()))
                    .bind(Json(to_json(&category)?))
                    .execute(&self.pool())
                    .await;
            match result.map_err(Fail::from) {
                Ok(_) => Ok(()),
                Err(f) if sqlstate(&f).as_deref() == Some("23503") => Err(Error::not_found(
                    "category",
                    category
                        .parent()
                        .map_or_else(String::new, |p| p.to_string()),
                )
                .into()),
                Err(f) if sqlstate(&f).as_deref() == Some("23505") => Err(Error::AlreadyExists {
                    what: "category",
                    value: category.id().to_string(),
                }
                .into()),
                Err(f) => Err(f),
            }
        })
    }

    async fn categories(&self) -> Result<Vec<Category>> {
        retry!(
            self,
            self.all_docs("SELECT doc FROM cw_categories ORDER BY id", "category")
        )
    }

    async fn insert_collection(&self, collection: Collection) -> Result<()> {
        retry!(self, async {
            let result = sqlx::query("INSERT INTO cw_collections (id, doc) VALUES ($1, $2)")
                .bind(collection.id().as_uuid())
                .bind(Json(to_json(&collection)?))
                .execute(&self.pool())
                .await;
            result
                .map(|_| ())
                .map_err(|e| already_exists(e.into(), "collection", collection.id().to_string()))
        })
    }

    async fn collections(&self) -> Result<Vec<Collection>> {
        retry!(
            self,
            self.all_docs("SELECT doc FROM cw_collections ORDER BY id", "collection")
        )
    }

    async fn update_category(&self, category: Category) -> Result<()> {
        retry!(self, self.update_category_try(&category))
    }

    async fn find_products(&self, query: &crate::catalog::ProductQuery) -> Result<Vec<Product>> {
        use crate::catalog::ProductSort;
        // Title words as a prefix query (they hold only letters and digits,
        // so nothing in them is query syntax); the SKU prefix as a pattern.
        let words = query.words();
        let tsquery = (!words.is_empty()).then(|| {
            words
                .iter()
                .map(|w| format!("{w}:*"))
                .collect::<Vec<_>>()
                .join(" & ")
        });
        let sku = query.sku_prefix().map(|p| {
            let escaped = p
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("{escaped}%")
        });
        let mut filter = serde_json::Map::new();
        if let Some(c) = query.category {
            filter.insert("categories".into(), serde_json::json!([c.as_uuid()]));
        }
        if let Some(c) = query.collection {
            filter.insert("collections".into(), serde_json::json!([c.as_uuid()]));
        }
        if let Some(t) = query.tag_key() {
            filter.insert("tags".into(), serde_json::json!([t]));
        }
        if let Some(st) = query.status {
            filter.insert(
                "status".into(),
                serde_json::to_value(st).map_err(|e| Error::invalid("status", e.to_string()))?,
            );
        }
        let filter = serde_json::Value::Object(filter);
        let price = query.price;
        let (cursor, order) = match query.sort {
            ProductSort::Title => (
                "((p.summary->>'title') COLLATE \"C\", p.id) > ($8::text COLLATE \"C\", $7::uuid)",
                "(p.summary->>'title') COLLATE \"C\", p.id",
            ),
            _ => ("p.id < $7::uuid", "p.id DESC"),
        };
        // Text matches either title words or a SKU's start.
        let text = "($1::text IS NULL
                    OR ($2::text IS NOT NULL AND
                        to_tsvector('simple', regexp_replace(lower(p.summary->>'title'),
                                                             '[^[:alnum:]]+', ' ', 'g'))
                        @@ to_tsquery('simple', $2))
                    OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(p.search->'skus') AS s(sku)
                               WHERE s.sku LIKE $1 ESCAPE '\\'))";
        let rest = "p.summary @> $3::jsonb
               AND ($4::text IS NULL OR EXISTS (
                    SELECT 1 FROM jsonb_array_elements_text(p.search->'prices'->$4) AS a(price)
                    WHERE ($5::numeric IS NULL OR a.price::numeric >= $5)
                      AND ($6::numeric IS NULL OR a.price::numeric <= $6)))";
        // Without text, the page walks the order's index and tests each
        // row against the summary (GIN-indexed containment), stopping at
        // the page's end. With text, walking finds a common word's matches
        // at once but reads the whole table for a rare one; the text's own
        // indexes (title words, SKU prefix) find a rare word's matches at
        // once but every match of a common one. So a text page first walks
        // a bounded window of the order; only when the window holds too
        // few matches and does not reach the end of the table are the
        // matches taken from the text's indexes and sorted (BENCHMARKS.md,
        // product listing).
        let whole = format!(
            "SELECT p.doc FROM cw_products p
             WHERE {text} AND {rest} AND {cursor}
             ORDER BY {order} LIMIT $9"
        );
        // The walk and the matches expose the title's sort key as a column,
        // so that ordering by it needs no sort of what was read.
        let (inner, outer) = match query.sort {
            ProductSort::Title => ("p.sort_title, p.id", "top.sort_title, top.id"),
            _ => ("p.id DESC", "top.id DESC"),
        };
        let walk = format!(
            "SELECT p.doc FROM (
                 SELECT p.id, p.summary, p.search, p.doc,
                        (p.summary->>'title') COLLATE \"C\" AS sort_title
                 FROM cw_products p
                 WHERE {cursor} ORDER BY {order} LIMIT {SEARCH_WALK}) p
             WHERE {text} AND {rest}
             ORDER BY {inner} LIMIT $9"
        );
        let window = format!(
            "SELECT count(*) AS n FROM (
                 SELECT 1 FROM cw_products p WHERE {cursor} ORDER BY {order} LIMIT {SEARCH_WALK}) w"
        );
        // Every match through the indexes (title words, or a SKU's start by
        // the variants' index), only ids and sort keys kept; the page's
        // products read last.
        let matched = format!(
            "WITH m AS MATERIALIZED (
                 SELECT p.id, (p.summary->>'title') COLLATE \"C\" AS sort_title
                 FROM cw_products p
                 WHERE (to_tsvector('simple', regexp_replace(lower(p.summary->>'title'),
                                                             '[^[:alnum:]]+', ' ', 'g'))
                            @@ to_tsquery('simple', $2)
                        OR p.id = ANY(ARRAY(SELECT v.product_id FROM cw_variants v
                                            WHERE v.sku LIKE $1 ESCAPE '\\')))
                   AND {rest} AND {cursor}
             ), top AS (
                 SELECT p.id, p.sort_title FROM m p ORDER BY {inner} LIMIT $9
             )
             SELECT p.doc FROM top JOIN cw_products p ON p.id = top.id
             ORDER BY {outer}"
        );
        let limit = i64::try_from(query.limit).map_err(|_| Error::Overflow("limit"))?;
        let first_id = match query.sort {
            ProductSort::Title => Uuid::nil(),
            _ => Uuid::max(),
        };
        // The first page starts from a bound every product passes (the
        // same plan as every later page: no NULL branch).
        let after_id = query.after.as_ref().map_or(first_id, |a| a.id.as_uuid());
        let after_title = query
            .after
            .as_ref()
            .map_or(String::new(), |a| a.title.clone());
        let page = |sql: &str| {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .bind(sku.clone())
                .bind(tsquery.clone())
                .bind(Json(filter.clone()))
                .bind(price.map(|r| r.currency.code()))
                .bind(price.and_then(|r| r.min).map(|m| m.amount()))
                .bind(price.and_then(|r| r.max).map(|m| m.amount()))
                .bind(after_id)
                .bind(after_title.clone())
                .bind(limit)
        };
        retry!(self, async {
            let rows = if sku.is_none() {
                page(&whole).fetch_all(&self.read_pool()).await?
            } else {
                let walked = page(&walk).fetch_all(&self.read_pool()).await?;
                let full = i64::try_from(walked.len()).unwrap_or(i64::MAX) >= limit;
                let window: i64 = if full {
                    0
                } else {
                    let row = page(&window).fetch_one(&self.read_pool()).await?;
                    col(&row, "n", "product")?
                };
                if full || window < SEARCH_WALK {
                    walked
                } else {
                    page(&matched).fetch_all(&self.read_pool()).await?
                }
            };
            rows.iter()
                .map(|r| doc::<Product>(r, "doc", "product"))
                .collect()
        })
    }

    async fn delete_category(&self, id: CategoryId) -> Result<()> {
        retry!(self, async {
            let mut tx = self.pool().begin().await?;
            let found = sqlx::query("SELECT id FROM cw_categories WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(Error::not_found("category", id).into());
            }
            let row = sqlx::query(
                "SELECT (SELECT count(*) FROM cw_categories WHERE parent_id = $1) AS children,
                        (SELECT count(*) FROM cw_product_categories WHERE category_id = $1) AS products",
            )
            .bind(id.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
            let children: i64 = col(&row, "children", "category")?;
            let products: i64 = col(&row, "products", "category")?;
            if children > 0 || products > 0 {
                return Err(Error::invalid(
                    "category",
                    format!("{id} has {children} subcategories and {products} products"),
                )
                .into());
            }
            sqlx::query("DELETE FROM cw_categories WHERE id = $1")
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn update_collection(&self, collection: Collection) -> Result<()> {
        retry!(self, async {
            let updated = sqlx::query("UPDATE cw_collections SET doc = $2 WHERE id = $1")
                .bind(collection.id().as_uuid())
                .bind(Json(to_json(&collection)?))
                .execute(&self.pool())
                .await?;
            if updated.rows_affected() == 0 {
                return Err(Error::not_found("collection", collection.id()).into());
            }
            Ok(())
        })
    }

    async fn delete_collection(&self, id: crate::id::CollectionId) -> Result<()> {
        retry!(self, async {
            let mut tx = self.pool().begin().await?;
            let found = sqlx::query("SELECT id FROM cw_collections WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(Error::not_found("collection", id).into());
            }
            let products: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM cw_product_collections WHERE collection_id = $1",
            )
            .bind(id.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
            if products > 0 {
                return Err(
                    Error::invalid("collection", format!("{id} has {products} products")).into(),
                );
            }
            sqlx::query("DELETE FROM cw_collections WHERE id = $1")
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn delete_product(&self, id: ProductId) -> Result<()> {
        retry!(self, async {
            let mut tx = self.pool().begin().await?;
            let found = sqlx::query("SELECT id FROM cw_products WHERE id = $1 FOR UPDATE")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(Error::not_found("product", id).into());
            }
            if first_sold_variant(&mut tx, id.as_uuid(), &[])
                .await?
                .is_some()
            {
                return Err(Error::invalid(
                    "product",
                    format!("{id} was reserved or ordered: archive it instead"),
                )
                .into());
            }
            // Variants, their stock rows and the product's links cascade.
            sqlx::query("DELETE FROM cw_products WHERE id = $1")
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}

/// Writes one product in `tx`: inserted, or replacing the stored one.
async fn write_product_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    product: &Product,
    replace: bool,
) -> Try<()> {
    let id = product.id().as_uuid();
    let body = to_json(product)?;
    let wanted = uuids(product.categories(), |c| c.as_uuid());
    let known: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM cw_categories WHERE id = ANY($1)")
        .bind(&wanted)
        .fetch_all(&mut **tx)
        .await?;
    if known.len() != wanted.len() {
        return Err(Error::not_found("category", "referenced by the product").into());
    }
    let summary = to_json(&ProductSummary::of(
        product,
        ancestry(tx, product.categories()).await?,
    ))?;
    let search = to_json(&ProductSearch::of(product))?;
    if replace {
        let updated =
            sqlx::query("UPDATE cw_products SET doc = $2, summary = $3, search = $4 WHERE id = $1")
                .bind(id)
                .bind(Json(&body))
                .bind(Json(&summary))
                .bind(Json(&search))
                .execute(&mut **tx)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found("product", product.id()).into());
        }
        let keep = uuids(product.variants(), |v| v.id().as_uuid());
        // A variant that was reserved or ordered is archived, never removed.
        if let Some(v) = first_sold_variant(tx, id, &keep).await? {
            return Err(Error::invalid(
                "product variants",
                format!("variant {} was reserved or ordered: archive it instead", v),
            )
            .into());
        }
        sqlx::query("DELETE FROM cw_variants WHERE product_id = $1 AND NOT (id = ANY($2))")
            .bind(id)
            .bind(&keep)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM cw_product_categories WHERE product_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM cw_product_collections WHERE product_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    } else {
        sqlx::query("INSERT INTO cw_products (id, doc, summary, search) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(Json(&body))
            .bind(Json(&summary))
            .bind(Json(&search))
            .execute(&mut **tx)
            .await?;
    }
    let ids = uuids(product.variants(), |v| v.id().as_uuid());
    let skus: Vec<String> = product
        .variants()
        .iter()
        .map(|v| v.sku().as_str().to_owned())
        .collect();
    // Name the first SKU taken by another product, in the product's
    // variant order, as the memory store does (never the server's text).
    let taken: Vec<String> =
        sqlx::query_scalar("SELECT sku FROM cw_variants WHERE sku = ANY($1) AND product_id <> $2")
            .bind(&skus)
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
    if let Some(sku) = skus.iter().find(|s| taken.contains(s)) {
        return Err(Error::AlreadyExists {
            what: "sku",
            value: sku.clone(),
        }
        .into());
    }
    sqlx::query(
        "INSERT INTO cw_variants (id, product_id, sku, doc)
             SELECT v, $1, s, d FROM unnest($2::uuid[], $3::text[], $4::jsonb[]) AS u(v, s, d)
             ON CONFLICT (id) DO UPDATE SET sku = EXCLUDED.sku, doc = EXCLUDED.doc
             WHERE cw_variants.product_id = EXCLUDED.product_id",
    )
    .bind(id)
    .bind(&ids)
    .bind(&skus)
    .bind(
        product
            .variants()
            .iter()
            .map(|v| to_json(v).map(Json))
            .collect::<Try<Vec<_>>>()?,
    )
    .execute(&mut **tx)
    .await?;
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM cw_variants WHERE product_id = $1 AND id = ANY($2)",
    )
    .bind(id)
    .bind(&ids)
    .fetch_one(&mut **tx)
    .await?;
    if usize::try_from(found).ok() != Some(ids.len()) {
        return Err(Error::AlreadyExists {
            what: "variant id",
            value: product.id().to_string(),
        }
        .into());
    }
    sqlx::query(
        "INSERT INTO cw_product_categories (product_id, category_id) SELECT $1, unnest($2::uuid[])",
    )
    .bind(id)
    .bind(uuids(product.categories(), |c| c.as_uuid()))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
            "INSERT INTO cw_product_collections (product_id, collection_id) SELECT $1, unnest($2::uuid[])",
        )
        .bind(id)
        .bind(uuids(product.collections(), |c| c.as_uuid()))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
