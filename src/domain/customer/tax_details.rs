//! A customer's tax details: a tax id or VAT number (normalized) and a tax
//! exemption certificate, handed to tax calculators and services.

use super::Customer;
use crate::error::{Error, Result};
use crate::validate::optional_text;

/// Longest tax id or VAT number, in characters (after normalizing).
pub const MAX_TAX_ID_LEN: usize = 20;
/// Longest tax exemption certificate number, in characters.
pub const MAX_TAX_EXEMPTION_LEN: usize = 100;

/// A tax id or VAT number as given ("DE 123.456.789", "de123456789"):
/// spaces, dots and dashes dropped, letters upper-cased; letters and digits
/// only, at most [`MAX_TAX_ID_LEN`]; empty stays empty (none).
///
/// # Errors
/// [`Error::Invalid`] for any other character, [`Error::LimitExceeded`]
/// past the length, both naming `"tax id"`.
pub fn normalize_tax_id(raw: &str) -> Result<String> {
    let id: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if id.chars().count() > MAX_TAX_ID_LEN {
        return Err(Error::LimitExceeded {
            what: "tax id",
            max: MAX_TAX_ID_LEN as u64,
        });
    }
    if let Some(bad) = id.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(Error::invalid(
            "tax id",
            format!("{raw:?}: {bad:?} is not a letter or digit"),
        ));
    }
    Ok(id)
}

impl Customer {
    /// The tax id or VAT number (empty when none was given), normalized
    /// ([`normalize_tax_id`]).
    pub fn tax_id(&self) -> &str {
        &self.tax_id
    }
    /// The tax exemption certificate's number (empty when none).
    pub fn tax_exemption(&self) -> &str {
        &self.tax_exemption
    }
    /// Sets the tax id and exemption given (`None` leaves one as it is,
    /// empty removes it), all or nothing.
    ///
    /// # Errors
    /// As [`normalize_tax_id`]; [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for an exemption over
    /// [`MAX_TAX_EXEMPTION_LEN`] characters.
    pub(crate) fn set_tax_details(
        &mut self,
        tax_id: Option<&str>,
        exemption: Option<&str>,
    ) -> Result<()> {
        let tax_id = tax_id.map(normalize_tax_id).transpose()?;
        let exemption = exemption
            .map(|e| optional_text("tax exemption", e, MAX_TAX_EXEMPTION_LEN))
            .transpose()?;
        if let Some(id) = tax_id {
            self.tax_id = id;
        }
        if let Some(e) = exemption {
            self.tax_exemption = e;
        }
        Ok(())
    }
}
