//! Catalog through the public API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::catalog::{Image, MAX_TITLE_LEN, Product};
use cartwright::id::{CategoryId, CollectionId};
use cartwright::prelude::*;
use common::{Backend, Shop, usd};

fn variant(sku: &str) -> NewVariant {
    NewVariant::digital(sku)
        .prices(vec![usd("1.00")])
        .status(Status::Active)
}

fn product(title: &str, variants: Vec<NewVariant>) -> NewProduct {
    NewProduct::new(title)
        .status(Status::Active)
        .variants(variants)
}

async fn products_with_variants_categories_collections_tags_and_images(backend: Backend) {
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    let clothing = e
        .create_category(&Actor::System, "Clothing", None)
        .await
        .unwrap();
    let tops = e
        .create_category(&Actor::System, "Tops", Some(clothing.id()))
        .await
        .unwrap();
    let tees = e
        .create_category(&Actor::System, "Tees", Some(tops.id()))
        .await
        .unwrap();
    let sale = e.create_collection(&Actor::System, "Sale").await.unwrap();
    let p = e
        .create_product(
            &Actor::System,
            product("x", vec![])
                .title("  Tee  ")
                .categories(vec![tees.id()])
                .collections(vec![sale.id()])
                .tags(vec![" Cotton ".into(), "cotton".into()])
                .images(vec![
                    Image::new("https://cdn/b.jpg").alt("back").position(2),
                    Image::new("https://cdn/a.jpg").alt("front").position(1),
                ])
                .variants(vec![
                    variant("tee-s-red")
                        .options(
                            [("size".into(), "S".into()), ("colour".into(), "red".into())].into(),
                        )
                        .weight_grams(150)
                        .prices(vec![
                            usd("10.00"),
                            Money::parse("1500", Currency::JPY).unwrap(),
                        ]),
                    variant("TEE-M-RED"),
                ]),
        )
        .await
        .unwrap();
    assert_eq!(p.title(), "Tee");
    assert_eq!(p.tags().iter().collect::<Vec<_>>(), ["cotton"]);
    assert_eq!(p.images()[0].alt, "front");
    assert_eq!(p.variants()[0].sku().as_str(), "TEE-S-RED");
    assert_eq!(
        p.variants()[0].price(Currency::JPY),
        Some(Money::parse("1500", Currency::JPY).unwrap())
    );
    assert_eq!(p.variants()[0].price(Currency::EUR), None);

    // Lookup by SKU is case-insensitive, and the entry lists every ancestor category.
    let entry = e.variant_by_sku("tee-s-red").await.unwrap();
    assert_eq!(entry.variant.id(), p.variants()[0].id());
    let expected: std::collections::BTreeSet<CategoryId> =
        [clothing.id(), tops.id(), tees.id()].into();
    assert_eq!(entry.categories, expected);
    assert!(entry.collections.contains(&sale.id()));
    assert_eq!(e.product(p.id()).await.unwrap(), p);
    assert_eq!(e.products(None, 10).await.unwrap(), vec![p.clone()]);
    assert!(e.products(Some(p.id()), 10).await.unwrap().is_empty());
    assert_eq!(e.categories().await.unwrap().len(), 3);
}

async fn skus_are_unique_across_the_catalog(backend: Backend) {
    let shop = Shop::new(backend).await;
    shop.engine
        .create_product(&Actor::System, product("A", vec![variant("SKU-1")]))
        .await
        .unwrap();
    let before = shop.snapshot().await;
    let err = shop
        .engine
        .create_product(&Actor::System, product("B", vec![variant("sku-1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { what: "sku", .. }));
    assert_eq!(shop.snapshot().await, before);
}

async fn references_must_exist(backend: Backend) {
    let shop = Shop::new(backend).await;
    let before = shop.snapshot().await;
    let mut p = product("A", vec![variant("A")]);
    p.categories = vec![CategoryId::new()];
    assert!(matches!(
        shop.engine.create_product(&Actor::System, p).await,
        Err(Error::NotFound {
            entity: "category",
            ..
        })
    ));
    let mut p = product("A", vec![variant("A")]);
    p.collections = vec![CollectionId::new()];
    assert!(matches!(
        shop.engine.create_product(&Actor::System, p).await,
        Err(Error::NotFound {
            entity: "collection",
            ..
        })
    ));
    assert!(
        shop.engine
            .create_category(&Actor::System, "Orphan", Some(CategoryId::new()))
            .await
            .is_err()
    );
    assert_eq!(shop.snapshot().await, before);
}

async fn invalid_products_are_rejected_unchanged(backend: Backend) {
    let shop = Shop::new(backend).await;
    let before = shop.snapshot().await;
    let cases: Vec<NewProduct> = vec![
        product("", vec![variant("A")]),
        product(&"x".repeat(MAX_TITLE_LEN + 1), vec![variant("A")]),
        product("No variants", vec![]),
        product("Bad sku", vec![variant("has space")]),
        product("Long sku", vec![variant(&"A".repeat(65))]),
        product(
            "Sub-cent price",
            vec![variant("A").prices(vec![Money::new(
                rust_decimal::Decimal::new(1001, 3),
                Currency::USD,
            )])],
        ),
        product(
            "Two USD prices",
            vec![variant("A").prices(vec![usd("1.00"), usd("2.00")])],
        ),
        product("Control char", vec![variant("A").title("a\u{0}b")]),
        product(
            "Too many variants",
            (0..251).map(|i| variant(&format!("V{i}"))).collect(),
        ),
    ];
    for case in cases {
        let title = case.title.chars().take(20).collect::<String>();
        assert!(
            shop.engine
                .create_product(&Actor::System, case)
                .await
                .is_err(),
            "{title}"
        );
    }
    assert_eq!(shop.snapshot().await, before);
}

async fn only_active_variants_of_active_products_can_be_bought(backend: Backend) {
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    let p: Product = e
        .create_product(
            &Actor::System,
            product(
                "A",
                vec![variant("ON"), variant("OFF").status(Status::Draft)],
            ),
        )
        .await
        .unwrap();
    let (on, off) = (p.variants()[0].id(), p.variants()[1].id());
    let cart = e.create_cart(&Actor::Guest, Currency::USD).await.unwrap();
    e.add_item(&Actor::Guest, cart.id(), on, 1).await.unwrap();
    let before = shop.snapshot().await;
    assert!(matches!(
        e.add_item(&Actor::Guest, cart.id(), off, 1).await,
        Err(Error::NotPurchasable { .. })
    ));
    assert_eq!(shop.snapshot().await, before);

    // Archiving the product stops the variant already in the cart from being priced.
    e.set_product_status(&Actor::System, p.id(), Status::Archived)
        .await
        .unwrap();
    assert!(matches!(
        e.add_item(&Actor::Guest, cart.id(), on, 1).await,
        Err(Error::NotPurchasable { .. })
    ));
    assert!(matches!(
        e.price_cart(&Actor::Guest, cart.id()).await,
        Err(Error::NotPurchasable { .. })
    ));
}

/// Whether a variant ships is said when it is made, and kept: a shipped
/// one makes the cart need an address and a method, a digital one not.
async fn shipping_is_stated_when_a_variant_is_made(backend: Backend) {
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    let p = e
        .create_product(
            &Actor::System,
            product(
                "Book",
                vec![
                    NewVariant::shipped("BOOK-PRINT")
                        .prices(vec![usd("20.00")])
                        .status(Status::Active),
                    NewVariant::digital("BOOK-EPUB")
                        .prices(vec![usd("9.00")])
                        .status(Status::Active),
                ],
            )
            .status(Status::Active),
        )
        .await
        .unwrap();
    let stored = e.product(p.id()).await.unwrap();
    let ships: Vec<(String, bool)> = stored
        .variants()
        .iter()
        .map(|v| (v.sku().to_string(), v.requires_shipping()))
        .collect();
    assert_eq!(
        ships,
        [("BOOK-PRINT".into(), true), ("BOOK-EPUB".into(), false)]
    );
    let ids: Vec<_> = stored.variants().iter().map(|v| v.id()).collect();
    for v in &ids {
        shop.engine
            .set_stock(&Actor::System, *v, shop.warehouse, 5)
            .await
            .unwrap();
    }
    let g = Actor::Guest;
    let cart = e.create_cart(&g, Currency::USD).await.unwrap();
    e.add_item(&g, cart.id(), ids[1], 1).await.unwrap();
    assert!(!e.price_cart(&g, cart.id()).await.unwrap().requires_shipping);
    e.add_item(&g, cart.id(), ids[0], 1).await.unwrap();
    assert!(e.price_cart(&g, cart.id()).await.unwrap().requires_shipping);
}

async fn categories_move_rename_and_delete_and_products_follow(backend: Backend) {
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    let staff = Actor::Staff("wes".into());
    let apparel = e.create_category(&staff, "Apparel", None).await.unwrap();
    let shirts = e
        .create_category(&staff, "Shirts", Some(apparel.id()))
        .await
        .unwrap();
    let kitchen = e.create_category(&staff, "Kitchen", None).await.unwrap();
    let tee = e
        .create_product(
            &staff,
            NewProduct::new("Tee")
                .status(Status::Active)
                .categories(vec![shirts.id()])
                .variants(vec![variant("TEE-1")]),
        )
        .await
        .unwrap();
    let ancestry =
        |sku: &'static str| async move { e.variant_by_sku(sku).await.unwrap().categories };
    assert!(ancestry("TEE-1").await.contains(&apparel.id()));

    // Moving Shirts under Kitchen takes the tee with it, at once.
    let moved = e
        .move_category(&staff, shirts.id(), Some(kitchen.id()))
        .await
        .unwrap();
    assert_eq!(moved.parent(), Some(kitchen.id()));
    let now = ancestry("TEE-1").await;
    assert!(
        now.contains(&kitchen.id()) && !now.contains(&apparel.id()),
        "{now:?}"
    );

    // Cycles are refused, naming the parent, and change nothing.
    let before = shop.snapshot().await;
    for (category, parent) in [(kitchen.id(), shirts.id()), (shirts.id(), shirts.id())] {
        let err = e
            .move_category(&staff, category, Some(parent))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { reason, .. } if reason.contains(&parent.to_string())),
            "{err:?}"
        );
    }
    let err = e
        .move_category(&staff, shirts.id(), Some(CategoryId::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(shop.snapshot().await, before);

    // Renamed; a non-empty category cannot go, an empty one can.
    let renamed = e
        .rename_category(&staff, shirts.id(), "Tees")
        .await
        .unwrap();
    assert_eq!(renamed.name(), "Tees");
    assert!(e.rename_category(&staff, shirts.id(), "").await.is_err());
    for busy in [kitchen.id(), shirts.id()] {
        let err = e.delete_category(&staff, busy).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    }
    e.delete_category(&staff, apparel.id()).await.unwrap();
    let names: Vec<String> = e
        .categories()
        .await
        .unwrap()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert!(!names.contains(&"Apparel".to_owned()) && names.contains(&"Tees".to_owned()));
    // Staff only.
    let err = e
        .move_category(&Actor::Guest, shirts.id(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden), "{err:?}");
    assert_eq!(tee.categories().len(), 1);
}

async fn collections_are_renamed_and_deleted_when_empty(backend: Backend) {
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    let staff = Actor::Staff("wes".into());
    let sale = e.create_collection(&staff, "Sale").await.unwrap();
    let empty = e.create_collection(&staff, "Empty").await.unwrap();
    e.create_product(
        &staff,
        NewProduct::new("Mug")
            .collections(vec![sale.id()])
            .variants(vec![variant("MUG-1")]),
    )
    .await
    .unwrap();
    let renamed = e
        .rename_collection(&staff, sale.id(), "Summer sale")
        .await
        .unwrap();
    assert_eq!(renamed.title(), "Summer sale");
    let err = e.delete_collection(&staff, sale.id()).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    e.delete_collection(&staff, empty.id()).await.unwrap();
    let err = e.delete_collection(&staff, empty.id()).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = e
        .rename_collection(&staff, CollectionId::new(), "X")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let titles: Vec<String> = e
        .collections()
        .await
        .unwrap()
        .iter()
        .map(|c| c.title().to_owned())
        .collect();
    assert_eq!(titles, ["Summer sale"]);
}

async fn a_product_never_sold_is_deleted_one_sold_is_archived(backend: Backend) {
    let shop = Shop::new(backend).await;
    let staff = Actor::Staff("wes".into());
    let sold = shop.product("SOLD", "5.00", 10).await;
    let unsold = shop.product("UNSOLD", "5.00", 10).await;
    let cart = shop.ready_cart(&[(sold, 1)]).await;
    shop.place(cart.id(), "k").await;
    let entries = shop.engine.store().entries(&[sold, unsold]).await.unwrap();
    let sold_p = entries[&sold].variant.product_id();
    let unsold_p = entries[&unsold].variant.product_id();

    let before = shop.snapshot().await;
    let err = shop
        .engine
        .delete_product(&staff, sold_p)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { reason, .. } if reason.contains("archive")),
        "{err:?}"
    );
    assert_eq!(shop.snapshot().await, before);
    shop.engine
        .set_product_status(&staff, sold_p, Status::Archived)
        .await
        .unwrap();

    shop.engine.delete_product(&staff, unsold_p).await.unwrap();
    assert!(matches!(
        shop.engine.product(unsold_p).await,
        Err(Error::NotFound { .. })
    ));
    assert!(shop.engine.variant_by_sku("UNSOLD").await.is_err());
    // Its SKU is free again.
    shop.product("UNSOLD", "6.00", 1).await;
    let err = shop
        .engine
        .delete_product(&Actor::Guest, sold_p)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden), "{err:?}");
}

async fn products_are_listed_and_searched_a_page_at_a_time(backend: Backend) {
    use cartwright::catalog::{PriceRange, ProductQuery, ProductSort};
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    let staff = Actor::Staff("wes".into());
    let apparel = e.create_category(&staff, "Apparel", None).await.unwrap();
    let shirts = e
        .create_category(&staff, "Shirts", Some(apparel.id()))
        .await
        .unwrap();
    let kitchen = e.create_category(&staff, "Kitchen", None).await.unwrap();
    let sale = e.create_collection(&staff, "Sale").await.unwrap();
    let make = |title: &'static str,
                sku: &'static str,
                price: &'static str,
                status,
                cats: Vec<CategoryId>,
                tags: Vec<&'static str>,
                colls: Vec<CollectionId>| {
        let staff = staff.clone();
        async move {
            e.create_product(
                &staff,
                NewProduct::new(title)
                    .status(status)
                    .categories(cats)
                    .collections(colls)
                    .tags(tags.into_iter().map(str::to_owned).collect())
                    .variants(vec![
                        NewVariant::digital(sku)
                            .prices(vec![usd(price)])
                            .status(Status::Active),
                    ]),
            )
            .await
            .unwrap()
        }
    };
    let blue = make(
        "Blue Cotton Shirt",
        "SHIRT-BLUE",
        "20.00",
        Status::Active,
        vec![shirts.id()],
        vec!["Summer"],
        vec![sale.id()],
    )
    .await;
    let red = make(
        "Red Cotton Shirt",
        "SHIRT-RED",
        "25.00",
        Status::Active,
        vec![shirts.id()],
        vec![],
        vec![],
    )
    .await;
    let mug = make(
        "Kitchen Mug",
        "MUG-1",
        "8.00",
        Status::Active,
        vec![kitchen.id()],
        vec!["gift"],
        vec![],
    )
    .await;
    let hat = make(
        "Draft Hat",
        "HAT-1",
        "15.00",
        Status::Draft,
        vec![],
        vec![],
        vec![],
    )
    .await;
    let widget = make(
        "Widget",
        "X_Y",
        "1.00",
        Status::Active,
        vec![],
        vec![],
        vec![],
    )
    .await;
    let thing = make(
        "Thing",
        "XAY",
        "1.00",
        Status::Active,
        vec![],
        vec![],
        vec![],
    )
    .await;

    let find = |actor: Actor, q: ProductQuery| async move {
        let mut titles: Vec<String> = e
            .find_products(&actor, &q)
            .await
            .unwrap()
            .products
            .iter()
            .map(|p| p.title().to_owned())
            .collect();
        titles.sort();
        titles
    };
    let guest = || Actor::Guest;
    // Title words by prefix, any case; or a SKU's start.
    assert_eq!(
        find(guest(), ProductQuery::new(50).text("COTT shi")).await,
        ["Blue Cotton Shirt", "Red Cotton Shirt"]
    );
    assert_eq!(
        find(guest(), ProductQuery::new(50).text("shirt-r")).await,
        ["Red Cotton Shirt"]
    );
    assert_eq!(
        find(guest(), ProductQuery::new(50).text("mug-")).await,
        ["Kitchen Mug"]
    );
    // Wildcards are literal: "X_" is X_Y's SKU, not XAY's.
    assert_eq!(
        find(guest(), ProductQuery::new(50).text("x_")).await,
        ["Widget"]
    );
    assert_eq!(
        find(guest(), ProductQuery::new(50).text("%")).await,
        Vec::<String>::new()
    );
    // A category finds what is under it.
    assert_eq!(
        find(guest(), ProductQuery::new(50).category(apparel.id())).await,
        ["Blue Cotton Shirt", "Red Cotton Shirt"]
    );
    assert_eq!(
        find(guest(), ProductQuery::new(50).collection(sale.id())).await,
        ["Blue Cotton Shirt"]
    );
    assert_eq!(
        find(guest(), ProductQuery::new(50).tag(" SUMMER ")).await,
        ["Blue Cotton Shirt"]
    );
    // A price range in a currency; drafts only for staff.
    let range = PriceRange::new(Currency::USD, Some(usd("10.00")), Some(usd("22.00"))).unwrap();
    assert_eq!(
        find(guest(), ProductQuery::new(50).price(range)).await,
        ["Blue Cotton Shirt"]
    );
    assert_eq!(
        find(staff.clone(), ProductQuery::new(50).price(range)).await,
        ["Blue Cotton Shirt", "Draft Hat"]
    );
    assert_eq!(
        find(guest(), ProductQuery::new(50).status(Status::Draft)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        find(staff.clone(), ProductQuery::new(50).status(Status::Draft)).await,
        ["Draft Hat"]
    );
    let eur = PriceRange::new(
        Currency::EUR,
        None,
        Some(Money::parse("100", Currency::EUR).unwrap()),
    )
    .unwrap();
    assert_eq!(
        find(guest(), ProductQuery::new(50).price(eur)).await,
        Vec::<String>::new()
    );
    assert!(PriceRange::new(Currency::USD, Some(usd("5.00")), Some(usd("1.00"))).is_err());
    assert!(
        PriceRange::new(
            Currency::USD,
            Some(usd("5.00")),
            Some(Money::parse("9", Currency::EUR).unwrap())
        )
        .is_err()
    );

    // Pages by title: two at a time, each product once, in byte order.
    let mut seen = Vec::new();
    let mut q = ProductQuery::new(2).sort(ProductSort::Title);
    loop {
        let page = e.find_products(&Actor::Guest, &q).await.unwrap();
        seen.extend(page.products.iter().map(|p| p.title().to_owned()));
        match page.next {
            Some(next) => q = q.after(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "Blue Cotton Shirt",
            "Kitchen Mug",
            "Red Cotton Shirt",
            "Thing",
            "Widget"
        ]
    );
    // Newest first, by pages of one.
    let mut newest = Vec::new();
    let mut q = ProductQuery::new(1);
    loop {
        let page = e.find_products(&staff, &q).await.unwrap();
        newest.extend(page.products.iter().map(|p| p.id()));
        match page.next {
            Some(next) => q = q.after(next),
            None => break,
        }
    }
    assert_eq!(
        newest,
        [
            thing.id(),
            widget.id(),
            hat.id(),
            mug.id(),
            red.id(),
            blue.id()
        ]
    );
    // Bounded.
    for bad in [
        ProductQuery::new(0),
        ProductQuery::new(501),
        ProductQuery::new(5).text(&"x".repeat(101)),
        ProductQuery::new(5).tag(&"t".repeat(256)),
    ] {
        assert!(
            e.find_products(&Actor::Guest, &bad).await.is_err(),
            "{bad:?}"
        );
    }
}

async fn a_sold_variant_is_kept_when_a_product_drops_it(backend: Backend) {
    let shop = Shop::new(backend).await;
    let staff = Actor::Staff("wes".into());
    let product = shop
        .product_with(
            "TWO-A",
            NewVariant::shipped("TWO-A")
                .prices(vec![usd("5.00")])
                .status(Status::Active),
        )
        .await;
    let mut both = product.clone();
    both.add_variant(
        NewVariant::shipped("TWO-B")
            .prices(vec![usd("6.00")])
            .status(Status::Active),
    )
    .unwrap();
    shop.engine
        .update_product(&staff, both.clone())
        .await
        .unwrap();
    let (sold, unsold) = (both.variants()[0].id(), both.variants()[1].id());
    let location = shop.warehouse;
    shop.engine
        .set_stock(&staff, sold, location, 5)
        .await
        .unwrap();
    let cart = shop.ready_cart(&[(sold, 1)]).await;
    shop.place(cart.id(), "k").await;

    // Dropping the sold variant is refused, naming it; nothing changes.
    let mut without_sold = both.clone();
    without_sold.remove_variant(sold).unwrap();
    let before = shop.snapshot().await;
    let err = shop
        .engine
        .update_product(&staff, without_sold)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { reason, .. } if reason.contains(&sold.to_string())),
        "{err:?}"
    );
    assert_eq!(shop.snapshot().await, before);
    // Dropping the unsold one is fine.
    let mut without_unsold = both.clone();
    without_unsold.remove_variant(unsold).unwrap();
    shop.engine
        .update_product(&staff, without_unsold)
        .await
        .unwrap();
    assert!(shop.engine.variant_by_sku("TWO-B").await.is_err());
    assert!(shop.engine.variant_by_sku("TWO-A").await.is_ok());
}

/// Every page of a text search equals the query's meaning
/// (`ProductQuery::matches`) over the whole catalog in the page's order,
/// on a catalog larger than the stretch of the order the PostgreSQL store
/// walks before it takes a search's matches from the text indexes
/// instead: common and rare words, words whose matches sit early or late
/// in the order, SKU starts and no match, by title and newest first, in
/// pages of several sizes.
async fn text_searches_page_through_a_large_catalog_exactly(backend: Backend) {
    use cartwright::catalog::{ProductQuery, ProductSort};
    use cartwright::catalog_csv::ImportMode;
    let shop = Shop::new(backend).await;
    let e = &shop.engine;
    let staff = Actor::Staff("wes".into());
    let colours = [
        "Black", "Blue", "Green", "Grey", "Navy", "Olive", "Red", "White",
    ];
    let things = ["Cap", "Mug", "Plate", "Shirt"];
    let mut csv = String::from("product_title,product_status,sku,price:USD\n");
    for i in 0..2_300 {
        let colour = colours[i % colours.len()];
        let thing = things[(i / 8) % things.len()];
        csv.push_str(&format!("{colour} {thing} {i},active,P-{i},3.00\n"));
    }
    let report = e
        .import_catalog(&staff, csv.as_bytes(), ImportMode::Apply)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    for sort in [ProductSort::Title, ProductSort::Newest] {
        // Everything, in this order.
        let mut all = Vec::new();
        let mut q = ProductQuery::new(500).sort(sort);
        loop {
            let page = e.find_products(&staff, &q).await.unwrap();
            all.extend(page.products);
            match page.next {
                Some(next) => q = q.after(next),
                None => break,
            }
        }
        assert_eq!(all.len(), 2_300);
        for (text, size) in [
            ("white 21", 3),
            ("navy 21", 3),
            ("white", 20),
            ("olive", 50),
            ("p-22", 7),
            ("P-2", 500),
            ("red plate 1", 11),
            ("zzz", 20),
            ("mug 229", 1),
        ] {
            let q = ProductQuery::new(size).text(text).sort(sort);
            let expected: Vec<_> = all
                .iter()
                .filter(|p| q.matches(p, &std::collections::BTreeSet::new()))
                .map(|p| p.id())
                .collect();
            let mut got = Vec::new();
            let mut q = q;
            loop {
                let page = e.find_products(&staff, &q).await.unwrap();
                assert!(page.products.len() <= size);
                got.extend(page.products.iter().map(|p| p.id()));
                match page.next {
                    Some(next) => q = q.after(next),
                    None => break,
                }
            }
            assert_eq!(got, expected, "{text:?} by pages of {size}, {sort:?}");
        }
    }
}

conformance!(
    text_searches_page_through_a_large_catalog_exactly,
    a_sold_variant_is_kept_when_a_product_drops_it,
    products_are_listed_and_searched_a_page_at_a_time,
    categories_move_rename_and_delete_and_products_follow,
    collections_are_renamed_and_deleted_when_empty,
    a_product_never_sold_is_deleted_one_sold_is_archived,
    shipping_is_stated_when_a_variant_is_made,
    products_with_variants_categories_collections_tags_and_images,
    skus_are_unique_across_the_catalog,
    references_must_exist,
    invalid_products_are_rejected_unchanged,
    only_active_variants_of_active_products_can_be_bought,
    listings_stay_consistent_under_concurrent_edits,
);

/// Listings stay consistent while staff edit: paging newest-first through
/// the catalog while prices, tags and categories change and products are
/// added, every product that existed throughout appears exactly once, each
/// as one whole version (its price is one it was given), and nothing fails.
async fn listings_stay_consistent_under_concurrent_edits(backend: Backend) {
    use cartwright::catalog::ProductQuery;
    let shop = Shop::new(backend).await;
    let staff = Actor::Staff("kim".into());
    let e = shop.engine.clone();
    let shelf = e.create_category(&staff, "Shelf", None).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        let p = e
            .create_product(
                &staff,
                NewProduct::new(format!("Item {i:02}"))
                    .status(Status::Active)
                    .categories(vec![shelf.id()])
                    .variants(vec![
                        NewVariant::digital(format!("ITEM-{i:02}"))
                            .prices(vec![usd("10.00")])
                            .status(Status::Active),
                    ]),
            )
            .await
            .unwrap();
        ids.push(p.id());
    }
    let editor = {
        let (e, staff, ids) = (e.clone(), staff.clone(), ids.clone());
        tokio::spawn(async move {
            for round in 0..3 {
                for id in &ids {
                    let mut p = e.product(*id).await.unwrap();
                    let price = if round % 2 == 0 { "12.00" } else { "10.00" };
                    let variant = p.variants()[0].id();
                    p.set_variant_price(variant, usd(price)).unwrap();
                    p.set_status(if round == 1 {
                        Status::Archived
                    } else {
                        Status::Active
                    });
                    e.update_product(&staff, p).await.unwrap();
                }
                e.create_product(
                    &staff,
                    NewProduct::new(format!("New {round}"))
                        .status(Status::Active)
                        .variants(vec![
                            NewVariant::digital(format!("NEW-{round}"))
                                .prices(vec![usd("1.00")])
                                .status(Status::Active),
                        ]),
                )
                .await
                .unwrap();
            }
        })
    };
    for _ in 0..4 {
        let mut seen = std::collections::HashMap::new();
        let mut query = ProductQuery::new(7).category(shelf.id());
        loop {
            let page = e.find_products(&staff, &query).await.unwrap();
            for p in &page.products {
                *seen.entry(p.id()).or_insert(0) += 1;
                let price = p.variants()[0].price(Currency::USD).unwrap();
                assert!(
                    price == usd("10.00") || price == usd("12.00"),
                    "a torn product: {price}"
                );
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        for id in &ids {
            assert_eq!(
                seen.get(id),
                Some(&1),
                "{id} listed {:?} times",
                seen.get(id)
            );
        }
    }
    editor.await.unwrap();
}
