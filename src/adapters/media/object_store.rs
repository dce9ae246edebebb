//! Images in any `object_store` backend: S3, GCS, Azure, a local folder.

use std::sync::Arc;

use async_trait::async_trait;
use object_store::{ObjectStore, PutPayload, path::Path};

use crate::error::{Error, Result};
use crate::media::{MediaKey, MediaObject, MediaStore};

/// Images kept in an [`ObjectStore`] (feature `object-store`), each under
/// `prefix/key`. A put is one object write, which every backend makes
/// whole or not at all.
///
/// ```no_run
/// # fn main() -> cartwright::Result<()> {
/// use std::sync::Arc;
/// use cartwright::media::ObjectStoreMedia;
/// // Any backend: `object_store::aws::AmazonS3Builder` and the like.
/// let backend = Arc::new(object_store::memory::InMemory::new());
/// let media = ObjectStoreMedia::new(backend, "shop/images")?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ObjectStoreMedia {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl ObjectStoreMedia {
    /// Images under `prefix` (may be empty) in `store`.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`media prefix`) for a prefix that is not a valid
    /// object path.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self> {
        let prefix = Path::parse(prefix).map_err(|_| {
            Error::invalid("media prefix", format!("{prefix:?} is not an object path"))
        })?;
        Ok(Self { store, prefix })
    }

    fn path(&self, key: &MediaKey) -> Path {
        self.prefix.child(key.to_string())
    }
}

fn storage(what: &str, error: object_store::Error) -> Error {
    Error::Storage {
        message: format!("media: could not {what}"),
        source: Some(Arc::new(error)),
    }
}

#[async_trait]
impl MediaStore for ObjectStoreMedia {
    async fn put(&self, key: &MediaKey, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| storage("write an image", e))
    }

    async fn get(&self, key: &MediaKey) -> Result<Option<MediaObject>> {
        match self.store.get(&self.path(key)).await {
            Ok(found) => {
                let bytes = found
                    .bytes()
                    .await
                    .map_err(|e| storage("read an image", e))?;
                Ok(Some(MediaObject::new(key.content_type(), bytes.to_vec())))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage("read an image", e)),
        }
    }

    async fn delete(&self, key: &MediaKey) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage("remove an image", e)),
        }
    }
}
