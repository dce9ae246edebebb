//! The media built-ins: in memory (the default) and a local folder; with
//! the feature `object-store`, any `object_store` backend.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::media::{MediaKey, MediaObject, MediaStore};

#[cfg(feature = "object-store")]
pub mod object_store;

/// Images kept in memory: the default, for tests and demos (they are gone
/// when the program stops).
#[derive(Debug, Default, Clone)]
pub struct MemoryMedia {
    objects: Arc<Mutex<HashMap<MediaKey, Vec<u8>>>>,
}

impl MemoryMedia {
    /// An empty media store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many images it holds.
    pub fn len(&self) -> usize {
        self.objects.lock().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.objects.lock().is_empty()
    }
}

#[async_trait]
impl MediaStore for MemoryMedia {
    async fn put(&self, key: &MediaKey, bytes: Vec<u8>) -> Result<()> {
        self.objects.lock().insert(key.clone(), bytes);
        Ok(())
    }

    async fn get(&self, key: &MediaKey) -> Result<Option<MediaObject>> {
        Ok(self
            .objects
            .lock()
            .get(key)
            .map(|bytes| MediaObject::new(key.content_type(), bytes.clone())))
    }

    async fn delete(&self, key: &MediaKey) -> Result<()> {
        self.objects.lock().remove(key);
        Ok(())
    }
}

/// Images kept as files in one folder, named by their key. A write goes
/// to a temporary file in the same folder and is renamed into place, so a
/// reader sees the whole image or none.
#[derive(Debug, Clone)]
pub struct FsMedia {
    root: PathBuf,
}

impl FsMedia {
    /// Media kept under `root`, created if it does not exist.
    ///
    /// # Errors
    /// [`Error::Storage`] when the folder cannot be created.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| storage("create the media folder", e))?;
        Ok(Self { root })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &MediaKey) -> PathBuf {
        // A key is hex digits, a dot and an extension: never a separator.
        self.root.join(key.to_string())
    }
}

fn storage(what: &str, error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Storage {
        message: format!("media: could not {what}"),
        source: Some(Arc::new(error)),
    }
}

async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(f)
            .await
            .map_err(|e| storage("finish a file operation", e))?,
        Err(_) => f(),
    }
}

#[async_trait]
impl MediaStore for FsMedia {
    async fn put(&self, key: &MediaKey, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(key);
        let temp = self
            .root
            .join(format!(".upload-{}", uuid::Uuid::new_v4().simple()));
        off_thread(move || {
            std::fs::write(&temp, &bytes).map_err(|e| storage("write an image", e))?;
            std::fs::rename(&temp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                storage("move an image into place", e)
            })
        })
        .await
    }

    async fn get(&self, key: &MediaKey) -> Result<Option<MediaObject>> {
        let path = self.path(key);
        let content_type = key.content_type();
        off_thread(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(MediaObject::new(content_type, bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage("read an image", e)),
        })
        .await
    }

    async fn delete(&self, key: &MediaKey) -> Result<()> {
        let path = self.path(key);
        off_thread(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(storage("remove an image", e)),
        })
        .await
    }
}
