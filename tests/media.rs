//! Product images on both stores, kept in a folder (`FsMedia`) and in an
//! `object_store` backend: an upload is sniffed, checked against its
//! declared type, decoded under limits and re-encoded (a payload hidden
//! after the image is not kept); the stored name is a key the engine made;
//! a refused upload (not an image, the wrong type, 100 MB, too many
//! pixels, no catalog permission) changes nothing, in the catalog or the
//! media store; removing an image removes its bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Cursor;
use std::sync::Arc;

use cartwright::media::{
    CACHE_CONTROL, FsMedia, ImageUpload, MAX_UPLOAD_BYTES, MediaStore, ObjectStoreMedia,
};
use cartwright::prelude::*;
use common::{Backend, Shop, ShopOptions};

/// A `width` × `height` image in `format`, a gradient so it is not trivial.
fn picture(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Files in the media folder.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn shop_with_folder(backend: Backend) -> (Shop, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let media: Arc<dyn MediaStore> = Arc::new(FsMedia::new(dir.path()).unwrap());
    let shop = Shop::with(
        backend,
        ShopOptions {
            media: Some(media),
            ..ShopOptions::default()
        },
    )
    .await;
    (shop, dir)
}

async fn an_upload_is_checked_re_encoded_and_served(backend: Backend) {
    let (shop, dir) = shop_with_folder(backend).await;
    let e = &shop.engine;
    let variant = shop.product("MUG", "12.00", 5).await;
    let product = e.variant_by_sku("MUG").await.unwrap().variant.product_id();

    // A PNG with a script appended: a polyglot the browser might sniff.
    let mut bytes = picture(40, 30, image::ImageFormat::Png);
    bytes.extend_from_slice(b"<script>alert(1)</script>");
    let image = e
        .upload_image(
            &Actor::Staff("ann".into()),
            product,
            ImageUpload::new(bytes)
                .content_type("image/png".to_owned())
                .alt("A blue mug")
                .variant(variant),
        )
        .await
        .unwrap();
    let key = image.media.clone().unwrap();
    assert_eq!(image.url, format!("/media/{key}"));
    assert!(key.to_string().ends_with(".png"));
    assert_eq!(image.variant, Some(variant));
    // The product lists it; the folder holds exactly the key, no temporary.
    let stored = e.product(product).await.unwrap();
    assert_eq!(stored.images(), std::slice::from_ref(&image));
    assert_eq!(files(dir.path()), vec![key.to_string()]);

    let served = e.media(&key.to_string()).await.unwrap();
    assert_eq!(served.content_type, "image/png");
    assert!(
        !served.bytes.windows(8).any(|w| w == b"<script>"),
        "what was appended to the image is not kept"
    );
    let decoded = image::load_from_memory(&served.bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (40, 30));
    assert_eq!(
        served.etag(),
        e.media(&key.to_string()).await.unwrap().etag()
    );
    assert!(CACHE_CONTROL.contains("immutable"));

    // JPEG and WebP keep their format.
    for (format, ext, declared) in [
        (image::ImageFormat::Jpeg, "jpg", "image/jpeg"),
        (image::ImageFormat::WebP, "webp", "image/webp"),
    ] {
        let image = e
            .upload_image(
                &Actor::System,
                product,
                ImageUpload::new(picture(16, 16, format))
                    .content_type(declared.to_owned())
                    .position(1),
            )
            .await
            .unwrap();
        assert!(image.url.ends_with(ext), "{}", image.url);
        let served = e.media(&image.media.unwrap().to_string()).await.unwrap();
        assert_eq!(served.content_type, declared);
        assert_eq!(
            image::guess_format(&served.bytes).unwrap(),
            format,
            "{declared}"
        );
    }
    assert_eq!(e.product(product).await.unwrap().images().len(), 3);

    // Removing an image removes its bytes.
    let after = e
        .remove_image(&Actor::System, product, &image.url)
        .await
        .unwrap();
    assert_eq!(after.images().len(), 2);
    assert!(!after.images().contains(&image));
    assert!(matches!(
        e.media(&key.to_string()).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(files(dir.path()).len(), 2);
    assert!(matches!(
        e.remove_image(&Actor::System, product, &image.url).await,
        Err(Error::NotFound { .. })
    ));
}

async fn bad_uploads_change_nothing(backend: Backend) {
    let (shop, dir) = shop_with_folder(backend).await;
    let e = &shop.engine;
    shop.product("MUG", "12.00", 5).await;
    let product = e.variant_by_sku("MUG").await.unwrap().variant.product_id();
    let before = e.product(product).await.unwrap();
    let staff = Actor::Staff("ann".into());

    let png = picture(8, 8, image::ImageFormat::Png);
    let jpeg = picture(8, 8, image::ImageFormat::Jpeg);
    // A narrow image with too many columns: refused from its header.
    let wide = picture(9_000, 1, image::ImageFormat::Png);
    let mut truncated = png.clone();
    truncated.truncate(png.len() / 2);
    let cases: Vec<(&str, ImageUpload)> = vec![
        (
            "a shell script",
            ImageUpload::new(b"#!/bin/sh\nrm -rf /\n".to_vec()),
        ),
        (
            "an SVG (scriptable, not accepted)",
            ImageUpload::new(b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>".to_vec())
                .content_type("image/svg+xml".to_owned()),
        ),
        (
            "a JPEG said to be a PNG",
            ImageUpload::new(jpeg).content_type("image/png".to_owned()),
        ),
        (
            "a PNG said to be HTML",
            ImageUpload::new(png.clone()).content_type("text/html".to_owned()),
        ),
        ("half a PNG", ImageUpload::new(truncated)),
        ("9,000 pixels wide", ImageUpload::new(wide)),
        (
            "100 MB",
            ImageUpload::new(vec![0x89; 100 * 1024 * 1024]).content_type("image/png".to_owned()),
        ),
        (
            "a variant of another product",
            ImageUpload::new(png.clone()).variant(cartwright::id::VariantId::new()),
        ),
        (
            "alt text over the limit",
            ImageUpload::new(png.clone()).alt("x".repeat(10_000)),
        ),
    ];
    for (what, upload) in cases {
        let refused = e.upload_image(&staff, product, upload).await;
        assert!(
            matches!(
                refused,
                Err(Error::Invalid { .. } | Error::LimitExceeded { .. } | Error::NotFound { .. })
            ),
            "{what}: {refused:?}"
        );
    }
    const { assert!(100 * 1024 * 1024 > MAX_UPLOAD_BYTES) };
    // Unknown product; a role without the catalog permission.
    assert!(matches!(
        e.upload_image(
            &staff,
            cartwright::id::ProductId::new(),
            ImageUpload::new(png.clone())
        )
        .await,
        Err(Error::NotFound { .. })
    ));
    let refused = e
        .upload_image(&Actor::Guest, product, ImageUpload::new(png.clone()))
        .await;
    assert!(matches!(refused, Err(Error::Forbidden)), "{refused:?}");
    // Names from outside never reach the folder.
    for name in ["../../etc/passwd", "x.png", "", "a/b.png"] {
        assert!(
            matches!(e.media(name).await, Err(Error::Invalid { .. })),
            "{name}"
        );
    }
    assert_eq!(e.product(product).await.unwrap(), before);
    assert!(files(dir.path()).is_empty(), "nothing kept");
}

conformance!(
    an_upload_is_checked_re_encoded_and_served,
    bad_uploads_change_nothing
);

/// The `object_store` adapter, over its local-filesystem backend: whole
/// objects under the prefix, read back, removed, a missing one `None`.
#[tokio::test]
async fn object_store_media_keeps_images_under_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let backend =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let media: Arc<dyn MediaStore> =
        Arc::new(ObjectStoreMedia::new(backend, "shop/images").unwrap());
    let shop = Shop::with(
        Backend::Memory,
        ShopOptions {
            media: Some(media.clone()),
            ..ShopOptions::default()
        },
    )
    .await;
    shop.product("MUG", "12.00", 5).await;
    let e = &shop.engine;
    let product = e.variant_by_sku("MUG").await.unwrap().variant.product_id();
    let image = e
        .upload_image(
            &Actor::System,
            product,
            ImageUpload::new(picture(12, 12, image::ImageFormat::Png)),
        )
        .await
        .unwrap();
    let key = image.media.clone().unwrap();
    let on_disk = dir.path().join("shop/images").join(key.to_string());
    assert!(on_disk.is_file(), "{}", on_disk.display());
    let served = e.media(&key.to_string()).await.unwrap();
    assert_eq!(std::fs::read(&on_disk).unwrap(), served.bytes);
    e.remove_image(&Actor::System, product, &image.url)
        .await
        .unwrap();
    assert!(!on_disk.exists());
    assert!(media.get(&key).await.unwrap().is_none());
    assert!(
        ObjectStoreMedia::new(Arc::new(object_store::memory::InMemory::new()), "a//b").is_err()
    );
}
