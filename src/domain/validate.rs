//! Small input checks shared by the domain modules.
//!
//! Does not know: anything but text and collection limits.

use crate::error::{Error, Result};

/// A user's value, quoted for an error message: at most 64 characters,
/// control characters escaped, so a hostile input cannot flood a log.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = value.chars().take(MAX).collect();
    if value.chars().nth(MAX).is_some() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Trims `value` and checks it is 1..=`max` characters with no control characters.
pub(crate) fn required_text(field: &'static str, value: &str, max: usize) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    optional_text(field, trimmed, max)
}

/// Trims `value` and checks it is at most `max` characters with no control characters.
pub(crate) fn optional_text(field: &'static str, value: &str, max: usize) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.chars().count() > max {
        return Err(Error::LimitExceeded {
            what: field,
            max: max as u64,
        });
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// Checks a collection's length against a documented maximum.
pub(crate) fn at_most(what: &'static str, len: usize, max: usize) -> Result<()> {
    if len > max {
        Err(Error::LimitExceeded {
            what,
            max: max as u64,
        })
    } else {
        Ok(())
    }
}
