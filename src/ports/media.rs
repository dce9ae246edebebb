//! The media port: where product images are kept.

use async_trait::async_trait;

use crate::error::Result;
use crate::media::{MediaKey, MediaObject};

/// Where uploaded images live. The engine checks and re-encodes every
/// upload before it gets here and makes every key itself
/// ([`MediaKey`]), so an implementation stores bytes under a name that is
/// always safe as a file name or an object path.
///
/// Built-ins: [`MemoryMedia`](crate::media::MemoryMedia) (the default),
/// [`FsMedia`](crate::media::FsMedia) (a folder) and, with the feature
/// `object-store`, `ObjectStoreMedia` (S3, GCS, Azure and every other
/// `object_store` backend).
#[async_trait]
pub trait MediaStore: Send + Sync + std::fmt::Debug {
    /// Keeps `bytes` under `key`, whole or not at all (a reader never sees
    /// half an image).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) when it cannot.
    async fn put(&self, key: &MediaKey, bytes: Vec<u8>) -> Result<()>;

    /// The image under `key`, if there is one.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) when it cannot be read.
    async fn get(&self, key: &MediaKey) -> Result<Option<MediaObject>>;

    /// Removes the image under `key`; removing one that is not there is
    /// not an error.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) when it cannot.
    async fn delete(&self, key: &MediaKey) -> Result<()>;
}
