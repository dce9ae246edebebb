//! Notes that staff (or customers) leave on orders and customers.
//!
//! Does not know: orders or customers beyond their ids; access is checked by
//! the engine.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::error::Result;
use crate::id::NoteId;
use crate::validate::{at_most, required_text};

/// Most notes on one order or customer.
pub const MAX_NOTES: usize = 500;
/// Longest note, in characters.
pub const MAX_NOTE_TEXT: usize = 2_000;

/// Who may read a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Visibility {
    /// Staff only.
    Internal,
    /// Staff and the customer.
    Customer,
}

/// A note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Note {
    /// Its id.
    pub id: NoteId,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Who wrote it.
    pub author: Actor,
    /// What it says.
    pub text: String,
    /// Who may read it.
    pub visibility: Visibility,
}

impl Note {
    /// A validated note.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) or
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) for text that
    /// does not validate.
    pub fn new(
        author: &Actor,
        text: &str,
        visibility: Visibility,
        at: DateTime<Utc>,
    ) -> Result<Self> {
        Ok(Self {
            id: NoteId::new(),
            at,
            author: author.clone(),
            text: required_text("note", text, MAX_NOTE_TEXT)?,
            visibility,
        })
    }
}

/// Appends `note` within the limit.
pub(crate) fn push(notes: &mut Vec<Note>, note: Note) -> Result<()> {
    at_most("notes", notes.len() + 1, MAX_NOTES)?;
    notes.push(note);
    Ok(())
}

/// Drops the notes `actor` may not read.
pub(crate) fn visible_to(notes: &mut Vec<Note>, actor: &Actor) {
    if !actor.is_privileged() {
        notes.retain(|n| n.visibility == Visibility::Customer);
    }
}
