//! The file format: the columns, reading the header and each row, and
//! the escaping of formula cells.

use std::collections::BTreeMap;

use crate::catalog::{NewVariant, Sku, Status};
use crate::id::{LocationId, ProductId};
use crate::inventory::Location;
use crate::money::{Currency, Money};

use super::{ImportReport, LIST};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Column {
    ProductId,
    ProductTitle,
    ProductStatus,
    Description,
    Tags,
    Sku,
    VariantTitle,
    Options,
    WeightGrams,
    RequiresShipping,
    TaxClass,
    VariantStatus,
    LowStockThreshold,
    Price(Currency),
    Stock(LocationId),
}

pub(super) const FIXED: [(&str, Column); 13] = [
    ("product_id", Column::ProductId),
    ("product_title", Column::ProductTitle),
    ("product_status", Column::ProductStatus),
    ("description", Column::Description),
    ("tags", Column::Tags),
    ("sku", Column::Sku),
    ("variant_title", Column::VariantTitle),
    ("options", Column::Options),
    ("weight_grams", Column::WeightGrams),
    ("requires_shipping", Column::RequiresShipping),
    ("tax_class", Column::TaxClass),
    ("variant_status", Column::VariantStatus),
    ("low_stock_threshold", Column::LowStockThreshold),
];

/// One row, parsed: `None` where the column is absent (or, for the
/// product's title and statuses, empty).
#[derive(Debug, Default)]
pub(super) struct Row {
    pub(super) line: u64,
    pub(super) product_id: Option<ProductId>,
    pub(super) title: Option<String>,
    pub(super) product_status: Option<Status>,
    pub(super) description: Option<String>,
    pub(super) tags: Option<Vec<String>>,
    pub(super) sku: Option<Sku>,
    pub(super) variant_title: Option<String>,
    pub(super) options: Option<BTreeMap<String, String>>,
    pub(super) weight: Option<u32>,
    pub(super) shipping: Option<bool>,
    pub(super) tax_class: Option<String>,
    pub(super) variant_status: Option<Status>,
    pub(super) low_stock: Option<Option<u32>>,
    pub(super) prices: Vec<(Currency, Option<Money>)>,
    pub(super) stock: Vec<(LocationId, i64)>,
}

/// Cells spreadsheet programs would run as formulas begin with one of these.
pub(super) fn is_formula_start(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// A text cell as written to a file: prefixed with `'` when a spreadsheet
/// would run it (or when it already begins with the prefix, so the import
/// gives back exactly what was exported).
pub(super) fn escape(text: &str) -> String {
    let mut chars = text.chars();
    let risky = match chars.next() {
        Some(c) if is_formula_start(c) => true,
        Some('\'') => chars
            .next()
            .is_some_and(|c| is_formula_start(c) || c == '\''),
        _ => false,
    };
    if risky {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// A text cell as read from a file: [`escape`] undone.
pub(super) fn unescape(text: &str) -> &str {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some('\''), Some(c)) if is_formula_start(c) || c == '\'' => text.get(1..).unwrap_or(text),
        _ => text,
    }
}

pub(super) fn parse_bool(cell: &str) -> std::result::Result<bool, String> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{cell:?} is not true or false")),
    }
}

pub(super) fn split_list(cell: &str) -> Vec<String> {
    cell.split(LIST)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn parse_options(cell: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in split_list(cell) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not name=value"))?;
        if out
            .insert(name.trim().to_owned(), value.trim().to_owned())
            .is_some()
        {
            return Err(format!("option {:?} is given twice", name.trim()));
        }
    }
    Ok(out)
}

/// The header's columns, or the errors in it (reported on line 1).
pub(super) fn read_header(
    header: &csv::StringRecord,
    locations: &[Location],
    report: &mut ImportReport,
) -> Vec<Column> {
    let mut columns = Vec::with_capacity(header.len());
    for name in header {
        let name = name.trim();
        let column = if let Some((_, c)) = FIXED.iter().find(|(n, _)| *n == name) {
            Some(c.clone())
        } else if let Some(code) = name.strip_prefix("price:") {
            match Currency::from_code(code.trim()) {
                Ok(c) => Some(Column::Price(c)),
                Err(_) => {
                    report.error(1, Some(name), format!("{code:?} is not a currency code"));
                    None
                }
            }
        } else if let Some(location) = name.strip_prefix("stock:") {
            let named: Vec<&Location> = locations.iter().filter(|l| l.name() == location).collect();
            match named.as_slice() {
                [one] => Some(Column::Stock(one.id())),
                [] => {
                    report.error(1, Some(name), format!("no location is named {location:?}"));
                    None
                }
                _ => {
                    report.error(
                        1,
                        Some(name),
                        format!("more than one location is named {location:?}"),
                    );
                    None
                }
            }
        } else {
            report.error(
                1,
                Some(name),
                format!("{name:?} is not a column of the format"),
            );
            None
        };
        if let Some(column) = column {
            if columns.contains(&column) {
                report.error(1, Some(name), "the column is given twice");
            }
            columns.push(column);
        } else {
            // Keep positions aligned; the file is refused anyway.
            columns.push(Column::Tags);
        }
    }
    if !columns.contains(&Column::Sku) {
        report.error(1, None, "the sku column is missing");
    }
    columns
}

pub(super) fn read_row(
    record: &csv::StringRecord,
    header: &csv::StringRecord,
    columns: &[Column],
    line: u64,
    report: &mut ImportReport,
) -> Row {
    let mut row = Row {
        line,
        ..Row::default()
    };
    for ((column, cell), name) in columns.iter().zip(record.iter()).zip(header.iter()) {
        let raw = unescape(cell);
        let trimmed = raw.trim();
        let mut fail = |message: String| report.error(line, Some(name.trim()), message);
        match column {
            Column::ProductId if !trimmed.is_empty() => match trimmed.parse::<uuid::Uuid>() {
                Ok(id) => row.product_id = Some(ProductId::from_uuid(id)),
                Err(_) => fail(format!("{trimmed:?} is not a product id")),
            },
            Column::ProductTitle if !trimmed.is_empty() => row.title = Some(trimmed.to_owned()),
            Column::ProductStatus if !trimmed.is_empty() => match Status::parse(trimmed) {
                Ok(s) => row.product_status = Some(s),
                Err(_) => fail(format!("{trimmed:?} is not draft, active or archived")),
            },
            Column::Description => row.description = Some(raw.to_owned()),
            Column::Tags => row.tags = Some(split_list(raw)),
            Column::Sku => match Sku::new(trimmed) {
                Ok(sku) => row.sku = Some(sku),
                Err(_) => fail(format!("{trimmed:?} is not a SKU")),
            },
            Column::VariantTitle => row.variant_title = Some(trimmed.to_owned()),
            Column::Options => match parse_options(raw) {
                Ok(o) => row.options = Some(o),
                Err(m) => fail(m),
            },
            Column::WeightGrams if !trimmed.is_empty() => match trimmed.parse::<u32>() {
                Ok(w) => row.weight = Some(w),
                Err(_) => fail(format!("{trimmed:?} is not a whole number of grams")),
            },
            Column::RequiresShipping if !trimmed.is_empty() => match parse_bool(trimmed) {
                Ok(b) => row.shipping = Some(b),
                Err(m) => fail(m),
            },
            Column::TaxClass if !trimmed.is_empty() => row.tax_class = Some(trimmed.to_owned()),
            Column::VariantStatus if !trimmed.is_empty() => match Status::parse(trimmed) {
                Ok(s) => row.variant_status = Some(s),
                Err(_) => fail(format!("{trimmed:?} is not draft, active or archived")),
            },
            Column::LowStockThreshold => {
                if trimmed.is_empty() {
                    row.low_stock = Some(None);
                } else {
                    match trimmed.parse::<u32>() {
                        Ok(n) => row.low_stock = Some(Some(n)),
                        Err(_) => fail(format!("{trimmed:?} is not a whole number of units")),
                    }
                }
            }
            Column::Price(currency) => {
                if trimmed.is_empty() {
                    row.prices.push((*currency, None));
                } else {
                    match Money::parse(trimmed, *currency) {
                        Ok(m) => row.prices.push((*currency, Some(m))),
                        Err(_) => fail(format!(
                            "{trimmed:?} is not an amount in {}",
                            currency.code()
                        )),
                    }
                }
            }
            Column::Stock(location) if !trimmed.is_empty() => match trimmed.parse::<i64>() {
                Ok(n) if n >= 0 => row.stock.push((*location, n)),
                _ => fail(format!("{trimmed:?} is not a number of units")),
            },
            _ => {}
        }
    }
    if row.sku.is_none() && columns.contains(&Column::Sku) && !record.is_empty() {
        let known = report
            .errors
            .iter()
            .any(|e| e.line == line && e.column.as_deref() == Some("sku"));
        if !known {
            report.error(line, Some("sku"), "the SKU is missing");
        }
    }
    row
}

/// The variant input `row` makes of `base`.
pub(super) fn apply_row(mut input: NewVariant, row: &Row) -> NewVariant {
    if let Some(title) = &row.variant_title {
        input.title = title.clone();
    }
    if let Some(options) = &row.options {
        input.options = options.clone();
    }
    if let Some(weight) = row.weight {
        input.weight_grams = weight;
    }
    if let Some(shipping) = row.shipping {
        input.requires_shipping = shipping;
    }
    if let Some(class) = &row.tax_class {
        input.tax_class = class.clone();
    }
    if let Some(status) = row.variant_status {
        input.status = status;
    }
    if let Some(threshold) = row.low_stock {
        input.low_stock_threshold = threshold;
    }
    for (currency, price) in &row.prices {
        input.prices.retain(|p| p.currency() != *currency);
        if let Some(price) = price {
            input.prices.push(*price);
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_defuses_formulas() {
        for text in [
            "=cmd|' /C calc'!A0",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "'=x",
            "''",
            "plain",
            "'quoted'",
            "",
        ] {
            let out = escape(text);
            assert!(!out.starts_with(is_formula_start), "{text:?} -> {out:?}");
            assert_eq!(unescape(&out), text);
        }
        assert_eq!(unescape("'quoted'"), "'quoted'");
    }
}
