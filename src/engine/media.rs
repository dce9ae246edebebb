//! Product and variant images: upload (checked, re-encoded, kept through
//! the media port), removal, and reading one back to serve it.

use crate::actor::{Actor, Permission};
use crate::catalog::{Image, MAX_IMAGES_PER_PRODUCT, Product};
use crate::error::{Error, Result};
use crate::id::{ProductId, VariantId};
use crate::media::{MediaKey, MediaObject, check_image};

use super::Engine;

/// An image to add to a product: the uploaded bytes and what the upload
/// said they are. The file's name is never used.
#[derive(Clone)]
#[non_exhaustive]
pub struct ImageUpload {
    /// The uploaded bytes (at most
    /// [`MAX_UPLOAD_BYTES`](crate::media::MAX_UPLOAD_BYTES)).
    pub bytes: Vec<u8>,
    /// The content type the upload declared, checked against the bytes.
    pub content_type: Option<String>,
    /// Alternative text, for accessibility.
    pub alt: String,
    /// The variant it shows, if one.
    pub variant: Option<VariantId>,
    /// Sort position among the product's images; lower first.
    pub position: u32,
}

impl ImageUpload {
    /// An upload of `bytes`, with no declared type, no alternative text,
    /// showing the whole product, at position 0.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            content_type: None,
            alt: String::new(),
            variant: None,
            position: 0,
        }
    }
}

crate::domain::setters!(ImageUpload { position: u32 } into {
    content_type: Option<String>,
    alt: String,
    variant: Option<VariantId>,
});

impl std::fmt::Debug for ImageUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageUpload")
            .field("bytes", &self.bytes.len())
            .field("content_type", &self.content_type)
            .field("alt", &self.alt)
            .field("variant", &self.variant)
            .field("position", &self.position)
            .finish()
    }
}

impl Engine {
    /// Adds an uploaded image to a product: checked and re-encoded
    /// ([`check_image`]), kept in the media store under a fresh
    /// [`MediaKey`], and listed on the product with the URL
    /// [`EngineConfig::media_url_prefix`](crate::EngineConfig) + key.
    /// Recorded in the audit log. Nothing is kept when any step fails (an
    /// image stored for a product save that then fails is removed again).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without the catalog permission;
    /// [`Error::NotFound`] for an unknown product or variant;
    /// [`Error::LimitExceeded`] for an upload over a limit of
    /// [`media`](crate::media) or a product that has
    /// [`MAX_IMAGES_PER_PRODUCT`]; [`Error::Invalid`] (`image`, `image alt
    /// text`) for an upload that is not an accepted image;
    /// [`Error::Busy`] when every decoding slot stays taken;
    /// [`Error::Storage`] when the media or the catalog store fails.
    #[tracing::instrument(skip_all, fields(product = %product_id))]
    pub async fn upload_image(
        &self,
        actor: &Actor,
        product_id: ProductId,
        upload: ImageUpload,
    ) -> Result<Image> {
        actor.require(Permission::Catalog)?;
        // Cheap checks first, so a bad request costs no decoding.
        let product = self.inner.store.product(product_id).await?;
        check_room(&product, &upload)?;
        let ImageUpload {
            bytes,
            content_type,
            alt,
            variant,
            position,
        } = upload;
        let checked = self
            .cpu_bound("image decoding", move || {
                check_image(&bytes, content_type.as_deref())
            })
            .await??;
        let key = MediaKey::new(checked.format);
        let image = Image::new(format!("{}{key}", self.inner.config.media_url_prefix))
            .alt(alt)
            .variant(variant)
            .position(position)
            .media(key.clone());
        self.inner.media.put(&key, checked.bytes).await?;
        let saved = async {
            let mut product = self.inner.store.product(product_id).await?;
            product.add_image(image.clone())?;
            self.inner.store.update_product(product).await
        }
        .await;
        if let Err(error) = saved {
            if let Err(cleanup) = self.inner.media.delete(&key).await {
                tracing::warn!(%cleanup, %key, "an image kept for a failed product save was not removed");
            }
            return Err(error);
        }
        self.audit_catalog(
            actor,
            "upload_image",
            product_id,
            crate::event::CatalogChange::ProductUpdated { product_id },
        )
        .await;
        Ok(image)
    }

    /// Removes the image served from `url` from a product, and its bytes
    /// from the media store when the engine kept them. Recorded in the
    /// audit log.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without the catalog permission;
    /// [`Error::NotFound`] for an unknown product or an image it does not
    /// have; [`Error::Storage`] when the catalog store fails (the media
    /// store failing afterwards is logged: the image is already gone from
    /// the product).
    #[tracing::instrument(skip_all, fields(product = %product_id))]
    pub async fn remove_image(
        &self,
        actor: &Actor,
        product_id: ProductId,
        url: &str,
    ) -> Result<Product> {
        actor.require(Permission::Catalog)?;
        let mut product = self.inner.store.product(product_id).await?;
        let removed = product.remove_image(url)?;
        self.inner.store.update_product(product.clone()).await?;
        if let Some(key) = removed.media
            && let Err(error) = self.inner.media.delete(&key).await
        {
            tracing::warn!(%error, %key, "an image removed from its product stays in the media store");
        }
        self.audit_catalog(
            actor,
            "remove_image",
            product_id,
            crate::event::CatalogChange::ProductUpdated { product_id },
        )
        .await;
        Ok(product)
    }

    /// An uploaded image's bytes and type, to serve (no actor: product
    /// images are public, and a key is a random 128-bit name). Serve them
    /// with [`CACHE_CONTROL`](crate::media::CACHE_CONTROL) and
    /// [`MediaObject::etag`].
    ///
    /// # Errors
    /// [`Error::Invalid`] for a `key` that is not a media key;
    /// [`Error::NotFound`] for one not kept; [`Error::Storage`] when the
    /// media store fails.
    pub async fn media(&self, key: &str) -> Result<MediaObject> {
        let key = MediaKey::parse(key)?;
        self.inner
            .media
            .get(&key)
            .await?
            .ok_or_else(|| Error::not_found("image", key))
    }
}

fn check_room(product: &Product, upload: &ImageUpload) -> Result<()> {
    if product.images().len() >= MAX_IMAGES_PER_PRODUCT {
        return Err(Error::LimitExceeded {
            what: "images per product",
            max: MAX_IMAGES_PER_PRODUCT as u64,
        });
    }
    if let Some(variant) = upload.variant
        && product.variant(variant).is_none()
    {
        return Err(Error::not_found("variant", variant));
    }
    if upload.bytes.len() > crate::media::MAX_UPLOAD_BYTES {
        return Err(Error::LimitExceeded {
            what: "image upload bytes",
            max: crate::media::MAX_UPLOAD_BYTES as u64,
        });
    }
    crate::validate::optional_text("image alt text", &upload.alt, crate::catalog::MAX_TITLE_LEN)
        .map(|_| ())
}
