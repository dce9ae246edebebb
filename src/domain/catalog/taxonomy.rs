//! Categories (a tree) and collections (flat groups) that products are
//! filed under.

use super::MAX_TITLE_LEN;
use crate::error::Result;
use crate::id::{CategoryId, CollectionId};
use crate::validate::required_text;
use serde::{Deserialize, Serialize};

/// A node in the category tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    id: CategoryId,
    parent: Option<CategoryId>,
    name: String,
}

impl Category {
    /// A category under `parent` (a root when `None`). The store checks the parent exists.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) or [`Error::LimitExceeded`](crate::Error::LimitExceeded) for input that does not
    /// validate, naming the field.
    pub fn new(name: &str, parent: Option<CategoryId>) -> Result<Self> {
        Ok(Self {
            id: CategoryId::new(),
            parent,
            name: required_text("category name", name, MAX_TITLE_LEN)?,
        })
    }
    /// Its id.
    pub fn id(&self) -> CategoryId {
        self.id
    }
    /// Its parent, if it is not a root.
    pub fn parent(&self) -> Option<CategoryId> {
        self.parent
    }
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Renames it.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) or [`Error::LimitExceeded`](crate::Error::LimitExceeded) for a name that does
    /// not validate.
    pub fn rename(&mut self, name: &str) -> Result<()> {
        self.name = required_text("category name", name, MAX_TITLE_LEN)?;
        Ok(())
    }
    /// Moves it under `parent` (a root when `None`). The store refuses a
    /// parent that does not exist or that is the category or one under it.
    pub fn move_to(&mut self, parent: Option<CategoryId>) {
        self.parent = parent;
    }
}

/// A hand-picked group of products ("Summer sale", "Staff picks").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    id: CollectionId,
    title: String,
}

impl Collection {
    /// A new collection.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) or [`Error::LimitExceeded`](crate::Error::LimitExceeded) for input that does not
    /// validate, naming the field.
    pub fn new(title: &str) -> Result<Self> {
        Ok(Self {
            id: CollectionId::new(),
            title: required_text("collection title", title, MAX_TITLE_LEN)?,
        })
    }
    /// Its id.
    pub fn id(&self) -> CollectionId {
        self.id
    }
    /// Its title.
    pub fn title(&self) -> &str {
        &self.title
    }
    /// Gives it a new title.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) or [`Error::LimitExceeded`](crate::Error::LimitExceeded) for a title that does
    /// not validate.
    pub fn rename(&mut self, title: &str) -> Result<()> {
        self.title = required_text("collection title", title, MAX_TITLE_LEN)?;
        Ok(())
    }
}
