//! Products, images, categories, inventory, CSV import and export, and the
//! media the admin serves.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

use super::render::money;
use super::session::{Fields, Posted, Staff, forged, same};
use super::{Admin, parse_id};
use crate::catalog::{Category, Product, ProductCursor, ProductQuery, ProductSort, Status};
use crate::catalog_csv::{ImportMode, MAX_IMPORT_BYTES, MAX_IMPORT_ROWS};
use crate::error::Error;
use crate::id::{CategoryId, LocationId, ProductId, VariantId};
use crate::media::{CACHE_CONTROL, ImageUpload, MAX_UPLOAD_BYTES};
use crate::money::{Currency, Money};

/// Products per page.
const PAGE: usize = 50;
/// The reasons offered for a stock adjustment.
const REASONS: [&str; 6] = [
    "stock count",
    "delivery received",
    "damaged",
    "lost or stolen",
    "returned to supplier",
    "other",
];

fn price(amount: &str, currency: &str) -> Result<Money, Error> {
    let currency = Currency::from_code(currency.trim().to_ascii_uppercase().as_str())?;
    Ok(Money::parse(amount.trim(), currency)?)
}

#[derive(Deserialize)]
pub(crate) struct ProductsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    after_id: String,
    #[serde(default)]
    after_title: String,
}

pub(crate) async fn products(
    State(admin): State<Admin>,
    staff: Staff,
    Query(q): Query<ProductsQuery>,
) -> Response {
    let mut query = ProductQuery::new(PAGE).sort(ProductSort::Title);
    if !q.q.trim().is_empty() {
        query = query.text(q.q.trim());
    }
    if !q.status.is_empty() {
        match Status::parse(&q.status) {
            Ok(s) => query.status = Some(s),
            Err(e) => return admin.failed(Some(&staff), &e),
        }
    }
    if !q.after_id.is_empty() {
        match parse_id(&q.after_id, "page", ProductId::from_uuid) {
            Ok(id) => {
                query.after = Some(ProductCursor {
                    title: q.after_title.clone(),
                    id,
                });
            }
            Err(e) => return admin.failed(Some(&staff), &e),
        }
    }
    let page = match admin.engine.find_products(&staff.actor, &query).await {
        Ok(p) => p,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let rows: Vec<_> = page
        .products
        .iter()
        .map(|p| {
            context! {
                id => p.id().to_string(),
                title => p.title().to_owned(),
                status => crate::catalog::Status::as_str(p.status()),
                variants => p.variants().len(),
                price => p.variants().first().and_then(|v| v.prices().next().copied()).map(money),
            }
        })
        .collect();
    let next = page.next.map(|c| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        url.append_pair("q", &q.q)
            .append_pair("status", &q.status)
            .append_pair("after_id", &c.id.to_string())
            .append_pair("after_title", &c.title);
        admin.link(&format!("/products?{}", url.finish()))
    });
    admin.pages.page(
        &admin,
        &staff,
        "products.html",
        context! { title => "Products", products => rows, next, q => q.q, status => q.status },
    )
}

pub(crate) async fn create_product(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    let made = async {
        let amount = price(form.get("price"), form.get("currency"))?;
        let input = crate::catalog::NewProduct::new(form.get("title"))
            .variant(crate::catalog::NewVariant::shipped(form.get("sku")).price(amount));
        admin.engine.create_product(&staff.actor, input).await
    }
    .await;
    match made {
        Ok(p) => admin.done(&format!("/products/{}", p.id()), "Product created."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

/// Every category with its path ("Kitchen / Mugs") and depth, in tree order.
fn tree(categories: &[Category]) -> Vec<(Category, String, usize)> {
    let mut children: BTreeMap<Option<CategoryId>, Vec<&Category>> = BTreeMap::new();
    for c in categories {
        children.entry(c.parent()).or_default().push(c);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| a.name().cmp(b.name()));
    }
    let mut out = Vec::with_capacity(categories.len());
    let mut stack: Vec<(&Category, String, usize)> = children
        .get(&None)
        .map(|roots| {
            roots
                .iter()
                .rev()
                .map(|c| (*c, c.name().to_owned(), 0))
                .collect()
        })
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    while let Some((c, path, depth)) = stack.pop() {
        if !seen.insert(c.id()) {
            continue;
        }
        if let Some(kids) = children.get(&Some(c.id())) {
            for k in kids.iter().rev() {
                stack.push((k, format!("{path} / {}", k.name()), depth + 1));
            }
        }
        out.push((c.clone(), path, depth));
    }
    out
}

fn product_view(product: &Product) -> minijinja::Value {
    let variants: Vec<_> = product
        .variants()
        .iter()
        .map(|v| {
            context! {
                id => v.id().to_string(),
                sku => v.sku().as_str().to_owned(),
                title => v.title().to_owned(),
                status => crate::catalog::Status::as_str(v.status()),
                prices => v.prices().map(|m| money(*m)).collect::<Vec<_>>(),
            }
        })
        .collect();
    let images: Vec<_> = product
        .images()
        .iter()
        .map(|i| {
            context! {
                url => i.url.clone(),
                alt => i.alt.clone(),
                variant => i.variant.and_then(|v| product.variant(v)).map(|v| v.sku().as_str().to_owned()),
            }
        })
        .collect();
    context! {
        id => product.id().to_string(),
        title => product.title().to_owned(),
        description => product.description().to_owned(),
        status => crate::catalog::Status::as_str(product.status()),
        variants,
        images,
    }
}

pub(crate) async fn product(
    State(admin): State<Admin>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let loaded = async {
        staff.actor.require(crate::actor::Permission::Catalog)?;
        let id = parse_id(&id, "product", ProductId::from_uuid)?;
        let product = admin.engine.product(id).await?;
        let categories = admin.engine.categories().await?;
        let collections = admin.engine.collections().await?;
        Ok::<_, Error>((product, categories, collections))
    }
    .await;
    let (product, categories, collections) = match loaded {
        Ok(x) => x,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let categories: Vec<_> = tree(&categories)
        .into_iter()
        .map(|(c, path, _)| {
            context! {
                id => c.id().to_string(),
                path,
                checked => product.categories().contains(&c.id()),
            }
        })
        .collect();
    let collections: Vec<_> = collections
        .iter()
        .map(|c| {
            context! {
                id => c.id().to_string(),
                title => c.title().to_owned(),
                checked => product.collections().contains(&c.id()),
            }
        })
        .collect();
    admin.pages.page(
        &admin,
        &staff,
        "product.html",
        context! {
            title => product.title().to_owned(),
            product => product_view(&product),
            categories,
            collections,
            max_mb => MAX_UPLOAD_BYTES / (1024 * 1024),
        },
    )
}

pub(crate) async fn update_product(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let saved = async {
        staff.actor.require(crate::actor::Permission::Catalog)?;
        let id = parse_id(&id, "product", ProductId::from_uuid)?;
        let mut product = admin.engine.product(id).await?;
        product.set_title(form.get("title"))?;
        product.set_description(form.get("description"))?;
        product.set_status(Status::parse(form.get("status"))?);
        let mut categories = Vec::new();
        for c in form.all("category") {
            categories.push(parse_id(&c, "category", CategoryId::from_uuid)?);
        }
        product.set_categories(categories)?;
        let mut collections = Vec::new();
        for c in form.all("collection") {
            collections.push(parse_id(
                &c,
                "collection",
                crate::id::CollectionId::from_uuid,
            )?);
        }
        product.set_collections(collections)?;
        admin.engine.update_product(&staff.actor, product).await?;
        Ok::<_, Error>(id)
    }
    .await;
    match saved {
        Ok(id) => admin.done(&format!("/products/{id}"), "Saved."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn add_variant(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let saved = async {
        staff.actor.require(crate::actor::Permission::Catalog)?;
        let id = parse_id(&id, "product", ProductId::from_uuid)?;
        let amount = price(form.get("price"), form.get("currency"))?;
        let input = if form.get("shipped").is_empty() {
            crate::catalog::NewVariant::digital(form.get("sku"))
        } else {
            crate::catalog::NewVariant::shipped(form.get("sku"))
        }
        .title(form.get("title"))
        .status(Status::parse(form.get("status"))?)
        .price(amount);
        let mut product = admin.engine.product(id).await?;
        product.add_variant(input)?;
        admin.engine.update_product(&staff.actor, product).await?;
        Ok::<_, Error>(id)
    }
    .await;
    match saved {
        Ok(id) => admin.done(&format!("/products/{id}"), "Variant added."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn set_price(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let saved = async {
        staff.actor.require(crate::actor::Permission::Catalog)?;
        let id = parse_id(&id, "product", ProductId::from_uuid)?;
        let variant = parse_id(form.get("variant"), "variant", VariantId::from_uuid)?;
        let amount = price(form.get("amount"), form.get("currency"))?;
        let mut product = admin.engine.product(id).await?;
        product.set_variant_price(variant, amount)?;
        admin.engine.update_product(&staff.actor, product).await?;
        Ok::<_, Error>(id)
    }
    .await;
    match saved {
        Ok(id) => admin.done(&format!("/products/{id}"), "Price set."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

/// The fields of a multipart form (a file's bytes under its field name,
/// with its declared type), the CSRF token checked. The file's own name is
/// never read.
async fn multipart(
    admin: &Admin,
    staff: &Staff,
    headers: &HeaderMap,
    mut parts: Multipart,
    file_field: &str,
    max: usize,
) -> Result<(Fields, Option<(Vec<u8>, Option<String>)>), Response> {
    let mut fields = Fields::default();
    let mut file = None;
    let too_large = || {
        admin.problem(
            Some(staff),
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "The upload is too large: at most {} MB. Nothing was changed.",
                max / (1024 * 1024)
            ),
        )
    };
    // Refused before reading when the request says how long it is.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max.saturating_add(64 * 1024)) {
        return Err(too_large());
    }
    loop {
        let field = match parts.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e)
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE
                    || e.body_text().contains("limit") =>
            {
                return Err(too_large());
            }
            Err(_) => {
                return Err(admin.failed(
                    Some(staff),
                    &Error::invalid("form", "the upload did not arrive whole"),
                ));
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == file_field {
            let declared = field.content_type().map(str::to_owned);
            let mut bytes = Vec::new();
            let mut field = field;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if bytes.len() + chunk.len() > max {
                            return Err(too_large());
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e)
                        if e.status() == StatusCode::PAYLOAD_TOO_LARGE
                            || e.body_text().contains("limit") =>
                    {
                        return Err(too_large());
                    }
                    Err(_) => {
                        return Err(admin.failed(
                            Some(staff),
                            &Error::invalid("form", "the upload did not arrive whole"),
                        ));
                    }
                }
            }
            file = Some((bytes, declared));
        } else {
            let value = field.text().await.unwrap_or_default();
            fields.push(name, value.chars().take(10_000).collect());
        }
    }
    if !same(fields.get("csrf"), &staff.csrf()) {
        return Err(forged(admin, Some(staff)));
    }
    Ok((fields, file))
}

pub(crate) async fn upload_image(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    staff: Staff,
    headers: HeaderMap,
    parts: Multipart,
) -> Response {
    let (form, file) =
        match multipart(&admin, &staff, &headers, parts, "image", MAX_UPLOAD_BYTES).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let done = async {
        let id = parse_id(&id, "product", ProductId::from_uuid)?;
        let (bytes, declared) = file.ok_or_else(|| Error::invalid("image", "no file was sent"))?;
        let variant = match form.get("variant") {
            "" => None,
            v => Some(parse_id(v, "variant", VariantId::from_uuid)?),
        };
        let upload = ImageUpload::new(bytes)
            .content_type(declared)
            .alt(form.get("alt"))
            .variant(variant)
            .position(u32::MAX);
        admin.engine.upload_image(&staff.actor, id, upload).await?;
        Ok::<_, Error>(id)
    }
    .await;
    match done {
        Ok(id) => admin.done(&format!("/products/{id}"), "Image added."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn remove_image(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let id = parse_id(&id, "product", ProductId::from_uuid)?;
        admin
            .engine
            .remove_image(&staff.actor, id, form.get("url"))
            .await?;
        Ok::<_, Error>(id)
    }
    .await;
    match done {
        Ok(id) => admin.done(&format!("/products/{id}"), "Image removed."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn media(
    State(admin): State<Admin>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    match admin.engine.media(&key).await {
        Ok(object) => {
            let etag = object.etag();
            let fresh = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
            let common = [
                (header::CACHE_CONTROL, CACHE_CONTROL.to_owned()),
                (header::ETAG, etag),
                (header::CONTENT_TYPE, object.content_type.to_owned()),
            ];
            if fresh {
                (StatusCode::NOT_MODIFIED, common).into_response()
            } else {
                (common, object.bytes).into_response()
            }
        }
        Err(Error::Invalid { .. } | Error::NotFound { .. }) => {
            StatusCode::NOT_FOUND.into_response()
        }
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

pub(crate) async fn categories(State(admin): State<Admin>, staff: Staff) -> Response {
    if let Err(e) = staff.actor.require(crate::actor::Permission::Catalog) {
        return admin.failed(Some(&staff), &e);
    }
    let (all, collections) = match (
        admin.engine.categories().await,
        admin.engine.collections().await,
    ) {
        (Ok(c), Ok(k)) => (c, k),
        (Err(e), _) | (_, Err(e)) => return admin.failed(Some(&staff), &e),
    };
    let collections: Vec<_> = collections
        .iter()
        .map(|c| context! { id => c.id().to_string(), title => c.title().to_owned() })
        .collect();
    let rows: Vec<_> = tree(&all)
        .into_iter()
        .map(|(c, path, depth)| {
            context! {
                id => c.id().to_string(),
                name => c.name().to_owned(),
                parent => c.parent().map(|p| p.to_string()),
                path,
                depth,
            }
        })
        .collect();
    admin.pages.page(
        &admin,
        &staff,
        "categories.html",
        context! { title => "Categories and collections", categories => rows, collections },
    )
}

fn parent(form: &Fields) -> Result<Option<CategoryId>, Error> {
    match form.get("parent") {
        "" => Ok(None),
        p => parse_id(p, "parent", CategoryId::from_uuid).map(Some),
    }
}

pub(crate) async fn create_category(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let parent = parent(&form)?;
        admin
            .engine
            .create_category(&staff.actor, form.get("name"), parent)
            .await
    }
    .await;
    match done {
        Ok(_) => admin.done("/categories", "Category created."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn create_collection(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    match admin
        .engine
        .create_collection(&staff.actor, form.get("title"))
        .await
    {
        Ok(_) => admin.done("/categories", "Collection created."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn change_collection(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let id = parse_id(&id, "collection", crate::id::CollectionId::from_uuid)?;
        if form.get("do") == "delete" {
            admin.engine.delete_collection(&staff.actor, id).await?;
            Ok("Collection deleted.")
        } else {
            admin
                .engine
                .rename_collection(&staff.actor, id, form.get("title"))
                .await?;
            Ok::<_, Error>("Collection renamed.")
        }
    }
    .await;
    match done {
        Ok(notice) => admin.done("/categories", notice),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn change_category(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let id = parse_id(&id, "category", CategoryId::from_uuid)?;
        if form.get("do") == "delete" {
            admin.engine.delete_category(&staff.actor, id).await?;
            return Ok("Category deleted.");
        }
        let parent = parent(&form)?;
        let current = admin
            .engine
            .categories()
            .await?
            .into_iter()
            .find(|c| c.id() == id)
            .ok_or_else(|| Error::not_found("category", id))?;
        if current.name() != form.get("name") {
            admin
                .engine
                .rename_category(&staff.actor, id, form.get("name"))
                .await?;
        }
        if current.parent() != parent {
            admin.engine.move_category(&staff.actor, id, parent).await?;
        }
        Ok::<_, Error>("Category saved.")
    }
    .await;
    match done {
        Ok(notice) => admin.done("/categories", notice),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct AfterQuery {
    #[serde(default)]
    after: String,
}

pub(crate) async fn inventory(
    State(admin): State<Admin>,
    staff: Staff,
    Query(q): Query<AfterQuery>,
) -> Response {
    let loaded = async {
        staff.actor.require(crate::actor::Permission::Inventory)?;
        let after = match q.after.as_str() {
            "" => None,
            a => Some(parse_id(a, "page", ProductId::from_uuid)?),
        };
        let mut locations = admin.engine.locations().await?;
        locations.sort_by_key(|l| l.priority());
        let page = admin.engine.products(after, PAGE).await?;
        let ids: Vec<VariantId> = page
            .iter()
            .flat_map(|p| p.variants().iter().map(|v| v.id()))
            .collect();
        let levels = admin.engine.stock_levels(&ids).await?;
        Ok::<_, Error>((locations, page, levels))
    }
    .await;
    let (locations, page, levels) = match loaded {
        Ok(x) => x,
        Err(e) => return admin.failed(Some(&staff), &e),
    };
    let mut rows = Vec::new();
    for p in &page {
        for v in p.variants() {
            let cells: Vec<_> = locations
                .iter()
                .map(|l| {
                    let level = levels
                        .get(&v.id())
                        .and_then(|ls| ls.iter().find(|s| s.location_id == l.id()));
                    context! {
                        on_hand => level.map_or(0, |s| s.on_hand),
                        reserved => level.map_or(0, |s| s.reserved),
                    }
                })
                .collect();
            rows.push(context! {
                product => p.title().to_owned(),
                sku => v.sku().as_str().to_owned(),
                variant => v.id().to_string(),
                threshold => v.low_stock_threshold().map(|t| t.to_string()).unwrap_or_default(),
                cells,
            });
        }
    }
    let next = (page.len() == PAGE)
        .then(|| {
            page.last()
                .map(|p| admin.link(&format!("/inventory?after={}", p.id())))
        })
        .flatten();
    let locations: Vec<_> = locations
        .iter()
        .map(|l| context! { id => l.id().to_string(), name => l.name().to_owned() })
        .collect();
    admin.pages.page(
        &admin,
        &staff,
        "inventory.html",
        context! { title => "Inventory", rows, locations, next, reasons => REASONS },
    )
}

pub(crate) async fn adjust(State(admin): State<Admin>, Posted { staff, form }: Posted) -> Response {
    let done = async {
        let entry = admin.engine.variant_by_sku(form.get("sku")).await?;
        let location = parse_id(form.get("location"), "location", LocationId::from_uuid)?;
        let delta: i64 = form.get("delta").parse().map_err(|_| {
            Error::invalid(
                "change",
                format!("{:?} is not a whole number", form.get("delta")),
            )
        })?;
        let reason = form.get("reason");
        if !REASONS.contains(&reason) {
            return Err(Error::invalid(
                "reason",
                format!("{reason:?} is not one of the reasons"),
            ));
        }
        admin
            .engine
            .adjust_stock_for(&staff.actor, entry.variant.id(), location, delta, reason)
            .await
    }
    .await;
    match done {
        Ok(level) => admin.done(
            "/inventory",
            &format!("Adjusted: {} on hand there now.", level.on_hand),
        ),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn threshold(
    State(admin): State<Admin>,
    Posted { staff, form }: Posted,
) -> Response {
    let done = async {
        let variant = parse_id(form.get("variant"), "variant", VariantId::from_uuid)?;
        let threshold = match form.get("threshold") {
            "" => None,
            t => Some(t.parse::<u32>().map_err(|_| {
                Error::invalid("threshold", format!("{t:?} is not a whole number of units"))
            })?),
        };
        admin
            .engine
            .set_low_stock_threshold(&staff.actor, variant, threshold)
            .await
    }
    .await;
    match done {
        Ok(_) => admin.done("/inventory", "Threshold set."),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn import_page(State(admin): State<Admin>, staff: Staff) -> Response {
    if let Err(e) = staff.actor.require(crate::actor::Permission::Catalog) {
        return admin.failed(Some(&staff), &e);
    }
    import_view(&admin, &staff, None, StatusCode::OK)
}

fn import_view(
    admin: &Admin,
    staff: &Staff,
    report: Option<crate::catalog_csv::ImportReport>,
    status: StatusCode,
) -> Response {
    let page = admin.pages.render(
        admin,
        Some(staff),
        "import.html",
        context! {
            title => "Import products",
            report => report.map(minijinja::Value::from_serialize),
            max_mb => MAX_IMPORT_BYTES / (1024 * 1024),
            max_rows => MAX_IMPORT_ROWS,
        },
    );
    (status, page).into_response()
}

pub(crate) async fn import(
    State(admin): State<Admin>,
    staff: Staff,
    headers: HeaderMap,
    parts: Multipart,
) -> Response {
    let (form, file) =
        match multipart(&admin, &staff, &headers, parts, "file", MAX_IMPORT_BYTES).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let Some((bytes, _)) = file else {
        return admin.failed(Some(&staff), &Error::invalid("file", "no file was sent"));
    };
    let mode = if form.get("mode") == "apply" {
        ImportMode::Apply
    } else {
        ImportMode::DryRun
    };
    match admin
        .engine
        .import_catalog(&staff.actor, &bytes, mode)
        .await
    {
        Ok(report) => {
            let status = if report.is_ok() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            import_view(&admin, &staff, Some(report), status)
        }
        Err(e) => admin.failed(Some(&staff), &e),
    }
}

pub(crate) async fn export(State(admin): State<Admin>, staff: Staff) -> Response {
    match admin.engine.export_catalog(&staff.actor).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"catalog.csv\"",
                ),
            ],
            csv,
        )
            .into_response(),
        Err(e) => admin.failed(Some(&staff), &e),
    }
}
