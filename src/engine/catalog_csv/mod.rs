//! Products and variants, with prices and stock, in and out as CSV.
//!
//! One row per variant. The columns, in any order (only `sku` and, for a
//! new product, `product_title` are required; a column left out leaves
//! what it holds unchanged):
//!
//! | column | meaning |
//! |---|---|
//! | `product_id` | the product the row belongs to; empty for a new one |
//! | `product_title` | the product's title (rows of one new product share it) |
//! | `product_status` | `draft`, `active` or `archived` |
//! | `description` | the product's description |
//! | `tags` | tags, separated by `\|` |
//! | `sku` | the variant's SKU: a SKU already in the catalog updates that variant |
//! | `variant_title` | the variant's title |
//! | `options` | `name=value` pairs separated by `\|` (`Size=M\|Colour=Blue`) |
//! | `weight_grams` | shipping weight |
//! | `requires_shipping` | `true` or `false` (`yes`/`no`, `1`/`0`) |
//! | `tax_class` | the tax class |
//! | `variant_status` | `draft`, `active` or `archived` |
//! | `low_stock_threshold` | units below which a low-stock event is sent; empty for none |
//! | `price:XXX` | the price in currency `XXX` (`price:USD`), in major units; empty removes it |
//! | `stock:NAME` | units on hand at the location named `NAME`; empty leaves them |
//!
//! Product columns (title, status, description, tags) may be repeated on
//! every row of the product or given once; two different values are an
//! error. [`Engine::export_catalog`] writes this format with every column,
//! so an export imported again changes nothing.
//!
//! [`Engine::import_catalog`] checks the whole file first and reports
//! every row's errors with their line numbers ([`ImportMode::DryRun`]
//! stops there). [`ImportMode::Apply`] writes the file only when it has no
//! error, all of it in one store command
//! ([`CatalogStore::import_catalog`](crate::store::CatalogStore::import_catalog)),
//! or nothing. Rows are matched to variants by SKU, so sending the same
//! file twice creates nothing the second time.
//!
//! Cells an export writes that begin with `=`, `+`, `-`, `@`, a tab or a
//! carriage return (which spreadsheet programs run as formulas) are
//! prefixed with `'`; an import removes that prefix again.
//!
//! Limits: [`MAX_IMPORT_BYTES`] per file, [`MAX_IMPORT_ROWS`] rows,
//! [`MAX_REPORTED_ERRORS`] errors listed (the rest counted).

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::actor::{Actor, Permission};
use crate::catalog::{NewProduct, NewVariant, Product, Sku, Status};
use crate::error::{Error, Result};
use crate::event::{CatalogChange, EventKind};
use crate::id::{LocationId, ProductId, VariantId};
use crate::money::Currency;
use crate::store::CatalogBatch;

use super::Engine;

mod rows;
use rows::{Column, FIXED, Row, apply_row, escape, read_header, read_row};

/// The largest file [`Engine::import_catalog`] reads (16 MiB).
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;
/// The most rows (variants) one file may have; split a larger catalog
/// into several files.
pub const MAX_IMPORT_ROWS: usize = 10_000;
/// The most row errors an [`ImportReport`] lists.
pub const MAX_REPORTED_ERRORS: usize = 1_000;
/// The separator of tags and of option pairs inside one cell.
pub(super) const LIST: char = '|';

/// Whether [`Engine::import_catalog`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportMode {
    /// Check every row and report; write nothing.
    DryRun,
    /// Check every row; write the whole file when there is no error.
    Apply,
}

/// A problem with one row (or the header, line 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RowError {
    /// The file's line the row starts on (1 is the header).
    pub line: u64,
    /// The column, when the problem is in one cell.
    pub column: Option<String>,
    /// What is wrong, naming the value found.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, {column}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// What an import found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImportReport {
    /// Rows read (not counting the header).
    pub rows: usize,
    /// Products the file creates.
    pub products_created: usize,
    /// Existing products it changes.
    pub products_updated: usize,
    /// Existing products it names but leaves as they are.
    pub products_unchanged: usize,
    /// Variants it creates.
    pub variants_created: usize,
    /// Existing variants it changes.
    pub variants_updated: usize,
    /// Stock levels it changes.
    pub stock_set: usize,
    /// The errors, in line order (at most [`MAX_REPORTED_ERRORS`]).
    pub errors: Vec<RowError>,
    /// Errors found beyond those listed.
    pub more_errors: usize,
    /// Whether the file was written ([`ImportMode::Apply`] without errors).
    pub applied: bool,
}

impl ImportReport {
    /// Whether the file has no error.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, line: u64, column: Option<&str>, message: impl Into<String>) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(RowError {
                line,
                column: column.map(str::to_owned),
                message: message.into(),
            });
        } else {
            self.more_errors += 1;
        }
    }
}

/// Which product a row belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Existing(ProductId),
    New(String),
}

/// The product columns of a group's rows, agreed on (or the conflict).
#[derive(Default)]
struct ProductFields {
    title: Option<String>,
    status: Option<Status>,
    description: Option<String>,
    tags: Option<Vec<String>>,
}

fn agree<T: PartialEq + Clone>(
    slot: &mut Option<(T, u64)>,
    value: Option<&T>,
    line: u64,
    empty: impl Fn(&T) -> bool,
    column: &str,
    report: &mut ImportReport,
) {
    let Some(value) = value else { return };
    if empty(value) {
        return;
    }
    match slot {
        Some((first, first_line)) if first != value => report.error(
            line,
            Some(column),
            format!("differs from line {first_line} for the same product"),
        ),
        Some(_) => {}
        None => *slot = Some((value.clone(), line)),
    }
}

fn product_fields(rows: &[&Row], report: &mut ImportReport) -> ProductFields {
    let mut title = None;
    let mut status = None;
    let mut description = None;
    let mut tags = None;
    for row in rows {
        agree(
            &mut title,
            row.title.as_ref(),
            row.line,
            |t: &String| t.is_empty(),
            "product_title",
            report,
        );
        agree(
            &mut status,
            row.product_status.as_ref(),
            row.line,
            |_| false,
            "product_status",
            report,
        );
        agree(
            &mut description,
            row.description.as_ref(),
            row.line,
            |d: &String| d.is_empty(),
            "description",
            report,
        );
        agree(
            &mut tags,
            row.tags.as_ref(),
            row.line,
            |t: &Vec<String>| t.is_empty(),
            "tags",
            report,
        );
    }
    let column_present_empty = |f: &dyn Fn(&Row) -> bool| rows.iter().any(|r| f(r));
    ProductFields {
        title: title.map(|(t, _)| t),
        status: status.map(|(s, _)| s),
        // A column given but empty on every row clears it.
        description: description
            .map(|(d, _)| d)
            .or_else(|| column_present_empty(&|r| r.description.is_some()).then(String::new)),
        tags: tags
            .map(|(t, _)| t)
            .or_else(|| column_present_empty(&|r| r.tags.is_some()).then(Vec::new)),
    }
}

/// A domain error as a row's message (it names the user's value).
fn message(error: &Error) -> String {
    error.to_string()
}

impl Engine {
    /// Imports products and variants with prices and stock from CSV (the
    /// format of [`catalog_csv`](crate::catalog_csv)): checks every row,
    /// and with [`ImportMode::Apply`] writes the whole file at once when no
    /// row has an error, or nothing. Sending the same file again changes
    /// nothing. Recorded in the audit log, with a catalog event per product
    /// written.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without the catalog permission (and the
    /// inventory permission, for a file with stock columns);
    /// [`Error::LimitExceeded`] for a file over [`MAX_IMPORT_BYTES`] or
    /// [`MAX_IMPORT_ROWS`]; [`Error::Invalid`] (`csv`) for a file that is
    /// not UTF-8 CSV with a header; [`Error::Storage`] when the store fails
    /// (nothing is written). Problems in rows are not errors: they are in
    /// the report.
    #[tracing::instrument(skip_all)]
    pub async fn import_catalog(
        &self,
        actor: &Actor,
        csv: &[u8],
        mode: ImportMode,
    ) -> Result<ImportReport> {
        actor.require(Permission::Catalog)?;
        if csv.len() > MAX_IMPORT_BYTES {
            return Err(Error::LimitExceeded {
                what: "import bytes",
                max: MAX_IMPORT_BYTES as u64,
            });
        }
        let text = std::str::from_utf8(csv).map_err(|e| {
            Error::invalid(
                "csv",
                format!("the file is not UTF-8 text (byte {})", e.valid_up_to()),
            )
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = reader
            .headers()
            .map_err(|_| Error::invalid("csv", "the header row does not read as CSV"))?
            .clone();
        if header.iter().all(|h| h.trim().is_empty()) {
            return Err(Error::invalid("csv", "the file has no header row"));
        }
        let locations = self.inner.store.locations().await?;
        let mut report = ImportReport::default();
        let columns = read_header(&header, &locations, &mut report);
        if columns.iter().any(|c| matches!(c, Column::Stock(_))) {
            actor.require(Permission::Inventory)?;
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    report.error(line, None, "the row does not read as CSV");
                    continue;
                }
            };
            if record.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            if rows.len() >= MAX_IMPORT_ROWS {
                return Err(Error::LimitExceeded {
                    what: "import rows",
                    max: MAX_IMPORT_ROWS as u64,
                });
            }
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != header.len() {
                report.error(
                    line,
                    None,
                    format!(
                        "{} cells where the header has {}",
                        record.len(),
                        header.len()
                    ),
                );
                continue;
            }
            rows.push(read_row(&record, &header, &columns, line, &mut report));
        }
        report.rows = rows.len();
        let batch = self.plan_import(&rows, &mut report).await?;
        report.errors.sort_by_key(|e| e.line);
        if !report.is_ok() || mode == ImportMode::DryRun || batch.is_empty() {
            return Ok(report);
        }
        let mut events: Vec<EventKind> = Vec::new();
        for p in &batch.created {
            events.push(EventKind::CatalogChanged {
                change: CatalogChange::ProductCreated { product_id: p.id() },
            });
        }
        for p in &batch.updated {
            events.push(EventKind::CatalogChanged {
                change: CatalogChange::ProductUpdated { product_id: p.id() },
            });
        }
        self.inner.store.import_catalog(batch).await?;
        report.applied = true;
        self.audit(
            actor,
            "import_catalog",
            format!(
                "{} rows: {} products created, {} updated, {} stock levels set",
                report.rows, report.products_created, report.products_updated, report.stock_set
            ),
        )
        .await;
        if let Err(error) = self.inner.store.record_events(events, self.now()).await {
            tracing::warn!(%error, "catalog imported, but its catalog events were not recorded");
        }
        Ok(report)
    }

    /// Works out what `rows` change: the store batch, with the report's
    /// counts and errors filled in.
    async fn plan_import(&self, rows: &[Row], report: &mut ImportReport) -> Result<CatalogBatch> {
        // Which variant each SKU is now, and which product each row is for.
        let mut first_line: HashMap<&Sku, u64> = HashMap::new();
        let mut owners: HashMap<Sku, (ProductId, VariantId)> = HashMap::new();
        let mut groups: Vec<(Key, Vec<&Row>)> = Vec::new();
        let mut groups_of: HashMap<Key, usize> = HashMap::new();
        // What the file names, read at once: its SKUs' variants, then the
        // products named or owning them.
        let skus: Vec<Sku> = rows.iter().filter_map(|r| r.sku.clone()).collect();
        let known = self.inner.store.entries_by_sku(&skus).await?;
        let mut wanted: Vec<ProductId> = rows
            .iter()
            .filter_map(|r| r.product_id)
            .chain(known.values().map(|e| e.variant.product_id()))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let originals = self.inner.store.products_by_id(&wanted).await?;
        for row in rows {
            let Some(sku) = &row.sku else { continue };
            if let Some(first) = first_line.get(sku) {
                report.error(
                    row.line,
                    Some("sku"),
                    format!("SKU {sku} is also on line {first}"),
                );
                continue;
            }
            first_line.insert(sku, row.line);
            let owner = known
                .get(sku)
                .map(|entry| (entry.variant.product_id(), entry.variant.id()));
            if let Some(owner) = owner {
                owners.insert(sku.clone(), owner);
            }
            let key = match (row.product_id, owner) {
                (Some(named), Some((actual, _))) if named != actual => {
                    report.error(
                        row.line,
                        Some("product_id"),
                        format!("SKU {sku} belongs to product {actual}, not {named}"),
                    );
                    continue;
                }
                (Some(named), _) => Key::Existing(named),
                (None, Some((actual, _))) => Key::Existing(actual),
                (None, None) => match &row.title {
                    Some(title) => Key::New(title.clone()),
                    None => {
                        report.error(
                            row.line,
                            Some("product_title"),
                            "a new product needs a title",
                        );
                        continue;
                    }
                },
            };
            if let Key::Existing(id) = &key
                && !originals.contains_key(id)
            {
                report.error(row.line, Some("product_id"), format!("no product {id}"));
                continue;
            }
            match groups_of.get(&key).and_then(|&i| groups.get_mut(i)) {
                Some((_, members)) => members.push(row),
                None => {
                    groups_of.insert(key.clone(), groups.len());
                    groups.push((key, vec![row]));
                }
            }
        }

        let mut batch = CatalogBatch::new();
        let mut stock_wanted: Vec<(VariantId, LocationId, i64, u64)> = Vec::new();
        for (key, members) in &groups {
            let fields = product_fields(members, report);
            match key {
                Key::Existing(id) => {
                    let Some(original) = originals.get(id) else {
                        continue;
                    };
                    let mut product = original.clone();
                    let mut failed = false;
                    let mut record =
                        |r: Result<()>, line: u64, column: &str, report: &mut ImportReport| {
                            if let Err(e) = r {
                                report.error(line, Some(column), message(&e));
                                failed = true;
                            }
                        };
                    let line = members.first().map_or(0, |r| r.line);
                    if let Some(title) = &fields.title {
                        record(product.set_title(title), line, "product_title", report);
                    }
                    if let Some(status) = fields.status {
                        product.set_status(status);
                    }
                    if let Some(description) = &fields.description {
                        record(
                            product.set_description(description),
                            line,
                            "description",
                            report,
                        );
                    }
                    if let Some(tags) = &fields.tags {
                        record(product.set_tags(tags), line, "tags", report);
                    }
                    let (mut created, mut updated) = (0, 0);
                    for row in members {
                        let Some(sku) = &row.sku else { continue };
                        let existing = owners
                            .get(sku)
                            .and_then(|(_, v)| original.variant(*v))
                            .cloned();
                        let result = match &existing {
                            Some(v) => {
                                let changed = apply_row(NewVariant::from(v), row);
                                let r = product.replace_variant(v.id(), changed);
                                if r.is_ok() && product.variant(v.id()) != Some(v) {
                                    updated += 1;
                                }
                                r.map(|()| v.id())
                            }
                            None => {
                                let r = product
                                    .add_variant(apply_row(NewVariant::shipped(sku.as_str()), row));
                                if r.is_ok() {
                                    created += 1;
                                }
                                r
                            }
                        };
                        match result {
                            Ok(variant) => stock_wanted
                                .extend(row.stock.iter().map(|(l, n)| (variant, *l, *n, row.line))),
                            Err(e) => record(Err(e), row.line, "sku", report),
                        }
                    }
                    if failed {
                        continue;
                    }
                    if product == *original {
                        report.products_unchanged += 1;
                    } else {
                        report.products_updated += 1;
                        report.variants_created += created;
                        report.variants_updated += updated;
                        batch.updated.push(product);
                    }
                }
                Key::New(title) => {
                    let Some((first, rest)) = members.split_first() else {
                        continue;
                    };
                    let Some(first_sku) = &first.sku else {
                        continue;
                    };
                    let mut input = NewProduct::new(title.as_str())
                        .variant(apply_row(NewVariant::shipped(first_sku.as_str()), first))
                        .status(fields.status.unwrap_or_default());
                    if let Some(description) = &fields.description {
                        input = input.description(description.as_str());
                    }
                    if let Some(tags) = &fields.tags {
                        input = input.tags(tags.clone());
                    }
                    let mut product = match Product::new(input) {
                        Ok(p) => p,
                        Err(e) => {
                            report.error(first.line, None, message(&e));
                            continue;
                        }
                    };
                    let mut failed = false;
                    let mut placed = Vec::with_capacity(members.len());
                    if let Some(v) = product.variants().first() {
                        placed.push((v.id(), *first));
                    }
                    for row in rest {
                        let Some(sku) = &row.sku else { continue };
                        match product.add_variant(apply_row(NewVariant::shipped(sku.as_str()), row))
                        {
                            Ok(v) => placed.push((v, *row)),
                            Err(e) => {
                                report.error(row.line, Some("sku"), message(&e));
                                failed = true;
                            }
                        }
                    }
                    if failed {
                        continue;
                    }
                    for (variant, row) in placed {
                        stock_wanted
                            .extend(row.stock.iter().map(|(l, n)| (variant, *l, *n, row.line)));
                    }
                    report.products_created += 1;
                    report.variants_created += product.variants().len();
                    batch.created.push(product);
                }
            }
        }

        // Stock: only the levels that change.
        let existing: Vec<VariantId> = stock_wanted
            .iter()
            .map(|(v, ..)| *v)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let levels = if existing.is_empty() {
            HashMap::new()
        } else {
            self.inner.store.stock_levels(&existing).await?
        };
        for (variant, location, units, line) in stock_wanted {
            if let Err(e) = crate::inventory::check_on_hand(units) {
                report.error(line, Some("stock"), message(&e));
                continue;
            }
            let now = levels
                .get(&variant)
                .and_then(|l| l.iter().find(|s| s.location_id == location))
                .map(|s| s.on_hand);
            if now != Some(units) {
                report.stock_set += 1;
                batch.stock.push((variant, location, units));
            }
        }
        Ok(batch)
    }

    /// The whole catalog as CSV, in the format [`Engine::import_catalog`]
    /// reads (every column: a price column per currency any variant has, a
    /// stock column per location), one row per variant, products in id
    /// order. Cells a spreadsheet would run as formulas are prefixed with
    /// `'`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without the catalog permission;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn export_catalog(&self, actor: &Actor) -> Result<String> {
        actor.require(Permission::Catalog)?;
        const PAGE: usize = 500;
        // First pass: the currencies, for the header.
        let mut currencies = BTreeSet::new();
        let mut after = None;
        loop {
            let page = self.inner.store.products(after, PAGE).await?;
            for p in &page {
                for v in p.variants() {
                    currencies.extend(v.prices().map(|m| m.currency().code()));
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.id()),
                _ => break,
            }
        }
        let mut locations = self.inner.store.locations().await?;
        locations.sort_by_key(|l| l.priority());
        let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
        let mut header: Vec<String> = FIXED.iter().map(|(n, _)| (*n).to_owned()).collect();
        header.extend(currencies.iter().map(|c| format!("price:{c}")));
        header.extend(
            locations
                .iter()
                .map(|l| escape(&format!("stock:{}", l.name()))),
        );
        let written = |e: csv::Error| Error::Storage {
            message: "could not write the catalog CSV".into(),
            source: Some(std::sync::Arc::new(e)),
        };
        writer.write_record(&header).map_err(written)?;
        let mut after = None;
        loop {
            let page = self.inner.store.products(after, PAGE).await?;
            let ids: Vec<VariantId> = page
                .iter()
                .flat_map(|p| p.variants().iter().map(|v| v.id()))
                .collect();
            let levels = self.inner.store.stock_levels(&ids).await?;
            for p in &page {
                for v in p.variants() {
                    let mut record = vec![
                        p.id().to_string(),
                        escape(p.title()),
                        Status::as_str(p.status()).to_owned(),
                        escape(p.description()),
                        escape(&p.tags().iter().cloned().collect::<Vec<_>>().join("|")),
                        escape(v.sku().as_str()),
                        escape(v.title()),
                        escape(
                            &v.options()
                                .iter()
                                .map(|(k, val)| format!("{k}={val}"))
                                .collect::<Vec<_>>()
                                .join("|"),
                        ),
                        v.weight_grams().to_string(),
                        v.requires_shipping().to_string(),
                        escape(v.tax_class()),
                        Status::as_str(v.status()).to_owned(),
                        v.low_stock_threshold()
                            .map(|n| n.to_string())
                            .unwrap_or_default(),
                    ];
                    for code in &currencies {
                        let price = Currency::from_code(code)
                            .ok()
                            .and_then(|c| v.price(c))
                            .map(|m| m.amount().to_string())
                            .unwrap_or_default();
                        record.push(price);
                    }
                    for location in &locations {
                        let units = levels
                            .get(&v.id())
                            .and_then(|l| l.iter().find(|s| s.location_id == location.id()))
                            .map(|s| s.on_hand.to_string())
                            .unwrap_or_default();
                        record.push(units);
                    }
                    writer.write_record(&record).map_err(written)?;
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.id()),
                _ => break,
            }
        }
        let bytes = writer.into_inner().map_err(|e| Error::Storage {
            message: "could not write the catalog CSV".into(),
            source: Some(std::sync::Arc::new(e.into_error())),
        })?;
        String::from_utf8(bytes).map_err(|e| Error::Storage {
            message: "the catalog CSV is not UTF-8".into(),
            source: Some(std::sync::Arc::new(e)),
        })
    }
}
