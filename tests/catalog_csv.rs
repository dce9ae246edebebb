//! Catalog CSV import and export on both stores: a dry run reports every
//! row's errors with line numbers and writes nothing; an import writes the
//! whole file or nothing, and the same file sent twice changes nothing the
//! second time; an export imported again changes nothing; formula cells
//! are defused in exports; a 100,000-row file, wrong columns and duplicate
//! SKUs are refused; the store's batch write is all or nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::catalog_csv::{ImportMode, MAX_IMPORT_ROWS};
use cartwright::engine::staff::NewStaff;
use cartwright::prelude::*;
use cartwright::store::CatalogBatch;
use common::{Backend, Shop, usd};

const FILE: &str = "\
product_title,product_status,description,tags,sku,variant_title,options,weight_grams,requires_shipping,price:USD,price:EUR,stock:Warehouse
Mug,active,A sturdy mug,kitchen|gift,MUG-S,Small,Size=S,300,true,12.00,11.00,10
Mug,,,,MUG-L,Large,Size=L,450,true,14.00,13.00,4
E-book,active,,,BOOK-1,,,0,false,9.99,,
";

async fn import_new_products_dry_run_then_apply_then_again(backend: Backend) {
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    let staff = Actor::Staff("ann".into());
    let before = shop.snapshot().await;

    let dry = e
        .import_catalog(&staff, FILE.as_bytes(), ImportMode::DryRun)
        .await
        .unwrap();
    assert!(dry.is_ok(), "{:?}", dry.errors);
    assert_eq!(
        (
            dry.rows,
            dry.products_created,
            dry.variants_created,
            dry.stock_set
        ),
        (3, 2, 3, 2)
    );
    assert!(!dry.applied);
    assert!(shop.snapshot().await == before, "a dry run writes nothing");

    let done = e
        .import_catalog(&staff, FILE.as_bytes(), ImportMode::Apply)
        .await
        .unwrap();
    assert!(done.applied && done.is_ok(), "{done:?}");
    let small = e.variant_by_sku("MUG-S").await.unwrap();
    let large = e.variant_by_sku("MUG-L").await.unwrap();
    assert_eq!(small.variant.product_id(), large.variant.product_id());
    assert_eq!(&*small.product_title, "Mug");
    assert_eq!(small.variant.price(Currency::USD), Some(usd("12.00")));
    assert_eq!(
        large.variant.price(Currency::EUR),
        Some(Money::parse("13.00", Currency::EUR).unwrap())
    );
    assert_eq!(
        small.variant.options().get("Size").map(String::as_str),
        Some("S")
    );
    assert_eq!(small.variant.weight_grams(), 300);
    let mug = e.product(small.variant.product_id()).await.unwrap();
    assert_eq!(mug.status(), Status::Active);
    assert_eq!(mug.description(), "A sturdy mug");
    assert!(mug.tags().contains("gift"));
    let book = e.variant_by_sku("BOOK-1").await.unwrap();
    assert!(!book.variant.requires_shipping());
    assert_eq!(book.variant.price(Currency::EUR), None);
    assert_eq!(e.stock(small.variant.id()).await.unwrap().available(), 10);
    assert_eq!(e.stock(large.variant.id()).await.unwrap().available(), 4);

    // The same file again: nothing to do.
    let after_first = shop.snapshot().await;
    let again = e
        .import_catalog(&staff, FILE.as_bytes(), ImportMode::Apply)
        .await
        .unwrap();
    assert!(again.is_ok(), "{:?}", again.errors);
    assert_eq!(
        (
            again.products_created,
            again.products_updated,
            again.products_unchanged,
            again.stock_set
        ),
        (0, 0, 2, 0)
    );
    assert!(shop.snapshot().await == after_first, "idempotent");

    // A changed price and stock level update in place.
    let changed = FILE.replace("14.00,13.00,4", "15.50,13.00,7");
    let update = e
        .import_catalog(&staff, changed.as_bytes(), ImportMode::Apply)
        .await
        .unwrap();
    assert_eq!(
        (
            update.products_updated,
            update.variants_updated,
            update.stock_set
        ),
        (1, 1, 1),
        "{update:?}"
    );
    let large_now = e.variant_by_sku("MUG-L").await.unwrap();
    assert_eq!(large_now.variant.id(), large.variant.id(), "same variant");
    assert_eq!(large_now.variant.price(Currency::USD), Some(usd("15.50")));
    assert_eq!(e.stock(large.variant.id()).await.unwrap().available(), 7);
}

async fn an_export_imports_back_unchanged_and_defuses_formulas(backend: Backend) {
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    let staff = Actor::Staff("ann".into());
    shop.product("PLAIN", "5.00", 3).await;
    let risky = "=cmd|' /C calc'!A0";
    e.create_product(
        &staff,
        NewProduct::new(risky)
            .description("+SUM(A1:A9)")
            .variant(NewVariant::shipped("-LEADING").price(usd("1.00"))),
    )
    .await
    .unwrap();
    let csv = e.export_catalog(&staff).await.unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a formula cell in the export: {cell:?}"
            );
        }
    }
    assert!(csv.contains("'=cmd"), "{csv}");
    let header = csv.lines().next().unwrap();
    assert!(
        header.contains("price:USD") && header.contains("stock:Warehouse"),
        "{header}"
    );

    let before = shop.snapshot().await;
    let back = e
        .import_catalog(&staff, csv.as_bytes(), ImportMode::Apply)
        .await
        .unwrap();
    assert!(back.is_ok(), "{:?}", back.errors);
    assert_eq!(
        (
            back.products_unchanged,
            back.products_updated,
            back.stock_set
        ),
        (2, 0, 0)
    );
    assert!(
        shop.snapshot().await == before,
        "an export imports back unchanged"
    );
    assert_eq!(e.export_catalog(&staff).await.unwrap(), csv);
    let found = e.variant_by_sku("-LEADING").await.unwrap();
    assert_eq!(&*found.product_title, risky);
}

async fn bad_files_report_every_row_and_change_nothing(backend: Backend) {
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    let staff = Actor::Staff("ann".into());
    shop.product("TAKEN", "5.00", 3).await;
    let other = e
        .variant_by_sku("TAKEN")
        .await
        .unwrap()
        .variant
        .product_id();
    let before = shop.snapshot().await;

    // Wrong columns: reported on line 1.
    let report = e
        .import_catalog(
            &staff,
            b"product_title,colour,price:XYZ,stock:Nowhere\nMug,red,1,2\n",
            ImportMode::Apply,
        )
        .await
        .unwrap();
    let columns: Vec<_> = report.errors.iter().filter(|e| e.line == 1).collect();
    assert_eq!(columns.len(), 4, "{:?}", report.errors);
    assert!(!report.applied);

    let file = format!(
        "product_id,product_title,product_status,sku,price:USD,weight_grams,stock:Warehouse
,Mug,active,MUG-1,12.00,300,5
,Mug,draft,MUG-2,12.00,300,5
,Mug,,MUG-1,3.00,1,1
,Bowl,,BOWL-1,twelve,heavy,-3
,Plate,,PLATE 1,1.00,1,1
{other},Plate,,NEW-ON-OTHER,1.00,1,1
{},Ghost,,GHOST-1,1.00,1,1
,,,ORPHAN,1.00,1,1
,Cup,,TAKEN,1.00,1,1,extra
,Cup,bogus,CUP-1,1.001,1,1
",
        cartwright::id::ProductId::new()
    );
    for mode in [ImportMode::DryRun, ImportMode::Apply] {
        let report = e
            .import_catalog(&staff, file.as_bytes(), mode)
            .await
            .unwrap();
        let lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
        for expected in [3, 4, 5, 6, 8, 9, 10, 11] {
            assert!(
                lines.contains(&expected),
                "line {expected} has an error: {:#?}",
                report.errors
            );
        }
        let dup = report.errors.iter().find(|e| e.line == 4).unwrap();
        assert!(
            dup.message.contains("MUG-1") && dup.message.contains("line 2"),
            "{dup:?}"
        );
        let bad_price = report
            .errors
            .iter()
            .find(|e| e.line == 5 && e.column.as_deref() == Some("price:USD"))
            .unwrap();
        assert!(bad_price.message.contains("twelve"), "{bad_price:?}");
        assert!(!report.applied);
    }
    // A row on another product's id may add a variant there: that row is fine.
    assert!(shop.snapshot().await == before, "nothing changed");

    // Not CSV at all, too big, too many rows.
    assert!(matches!(
        e.import_catalog(&staff, &[0xff, 0xfe, 0x00], ImportMode::Apply)
            .await,
        Err(Error::Invalid { .. })
    ));
    let mut huge = String::from("product_title,sku,price:USD\n");
    for i in 0..100_000 {
        huge.push_str(&format!("Product {i},SKU-{i},1.00\n"));
    }
    assert!(matches!(
        e.import_catalog(&staff, huge.as_bytes(), ImportMode::Apply)
            .await,
        Err(Error::LimitExceeded {
            what: "import rows",
            ..
        })
    ));
    const { assert!(MAX_IMPORT_ROWS < 100_000) };
    assert!(shop.snapshot().await == before, "nothing changed");
}

async fn roles_and_the_stores_batch_write(backend: Backend) {
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    // Only the catalog permission is needed without stock columns; with
    // them, the inventory permission too.
    e.install_builtin_roles(&Actor::System, &[usd("20.00")])
        .await
        .unwrap();
    let mut signed_in = Vec::new();
    for role in ["marketing", "warehouse"] {
        let email = format!("{role}@shop.test");
        e.create_staff(
            &Actor::System,
            NewStaff::new(&email, role, "correct horse battery", &[role]),
        )
        .await
        .unwrap();
        let login = e
            .staff_login(&email, "correct horse battery", None)
            .await
            .unwrap();
        signed_in.push(e.staff_actor(&login.token).await.unwrap());
    }
    let (catalog_only, warehouse) = (signed_in[0].clone(), signed_in[1].clone());
    let before = shop.snapshot().await;
    for actor in [&warehouse, &Actor::Guest] {
        assert!(matches!(
            e.import_catalog(actor, FILE.as_bytes(), ImportMode::DryRun)
                .await,
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            e.export_catalog(actor).await,
            Err(Error::Forbidden)
        ));
    }
    assert!(matches!(
        e.import_catalog(&catalog_only, FILE.as_bytes(), ImportMode::Apply)
            .await,
        Err(Error::Forbidden)
    ));
    assert!(shop.snapshot().await == before);
    let no_stock = "product_title,sku,price:USD\nMug,MUG-1,3.00\n";
    let report = e
        .import_catalog(&catalog_only, no_stock.as_bytes(), ImportMode::Apply)
        .await
        .unwrap();
    assert!(report.applied, "{report:?}");

    // The store writes a batch whole or not at all: the last product's
    // SKU is taken, so the first is not created either.
    let store = common::raw_store(&shop.backing);
    let first = cartwright::catalog::Product::new(
        NewProduct::new("First").variant(NewVariant::shipped("FIRST-1").price(usd("1.00"))),
    )
    .unwrap();
    let clash = cartwright::catalog::Product::new(
        NewProduct::new("Clash").variant(NewVariant::shipped("MUG-1").price(usd("1.00"))),
    )
    .unwrap();
    let mut batch = CatalogBatch::new();
    batch.created = vec![first.clone(), clash];
    batch.stock = vec![(first.variants()[0].id(), shop.warehouse, 5)];
    let before = shop.snapshot().await;
    let refused = store.import_catalog(batch).await;
    assert!(
        matches!(refused, Err(Error::AlreadyExists { .. })),
        "{refused:?}"
    );
    assert!(shop.snapshot().await == before, "all or nothing");
    assert!(matches!(
        e.variant_by_sku("FIRST-1").await,
        Err(Error::NotFound { .. })
    ));
}

conformance!(
    import_new_products_dry_run_then_apply_then_again,
    an_export_imports_back_unchanged_and_defuses_formulas,
    bad_files_report_every_row_and_change_nothing,
    roles_and_the_stores_batch_write,
);
