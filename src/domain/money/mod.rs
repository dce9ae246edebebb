//! Exact money: ISO 4217 currencies, amounts as decimals, named rounding and
//! allocation by largest remainder.
//!
//! There are no floats here. Every [`Money`] carries its [`Currency`];
//! combining two currencies is an [`MoneyError::CurrencyMismatch`], and every
//! operation that could overflow is checked.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// A `Result` whose error is a [`MoneyError`].
pub type Result<T, E = MoneyError> = std::result::Result<T, E>;

/// The largest amount a user may enter, in whole units of its currency
/// (10^12: a trillion dollars, euros or yen): prices, gift cards, store
/// credit, refunds, captures, promotion amounts and shipping rates above it
/// are refused ([`Money::entered`]). Totals computed from such amounts stay
/// far inside the 28 significant digits `Decimal` holds.
pub const MAX_AMOUNT_UNITS: i64 = 1_000_000_000_000;

/// `result` if `rust_decimal` computed it without dropping a digit of the
/// `operands`' precision, else [`MoneyError::Overflow`].
///
/// `rust_decimal` keeps at most 28 significant digits: a result that needs
/// more is rounded to a smaller scale. Such a result is exact only when the
/// digits dropped were zeros, that is when its scale still covers every
/// operand's significant decimals.
fn exact_result(
    result: Option<Decimal>,
    operands: &[Decimal],
    what: &'static str,
) -> Result<Decimal> {
    let result = result.ok_or(MoneyError::Overflow(what))?;
    let scale = operands.iter().map(Decimal::scale).max().unwrap_or(0);
    if result.scale() < scale {
        let need = operands
            .iter()
            .map(|d| d.normalize().scale())
            .max()
            .unwrap_or(0);
        if result.scale() < need {
            return Err(MoneyError::Overflow(what));
        }
    }
    Ok(result)
}

/// What can go wrong with money: the [`Error`](crate::Error) variants of the
/// same names, into which it converts (so `?` works in functions returning
/// [`crate::Result`]). Its own type keeps this module at the bottom of the
/// domain: it imports nothing of cartwright's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch {
        /// The currency of the left operand.
        left: Currency,
        /// The currency of the right operand.
        right: Currency,
    },
    /// A calculation went beyond the range of the numeric type.
    #[error("arithmetic overflow while computing {0}")]
    Overflow(&'static str),
    /// A currency code is not an ISO 4217 currency with minor units.
    #[error("unknown or unsupported currency `{0}`")]
    UnknownCurrency(String),
    /// An amount has more decimal places than its currency's minor unit.
    #[error("amount {amount} has more decimal places than {currency} allows")]
    NotMinorUnits {
        /// The amount as text.
        amount: String,
        /// Its currency.
        currency: Currency,
    },
    /// An input value is malformed or out of range.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The name of the offending field.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
}

impl MoneyError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// An ISO 4217 currency that has a minor unit (USD: 2 decimals, JPY: 0, BHD: 3).
///
/// Serialized as its three-letter code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// United States dollar (2 decimals).
    pub const USD: Self = Self(iso_currency::Currency::USD);
    /// Euro (2 decimals).
    pub const EUR: Self = Self(iso_currency::Currency::EUR);
    /// Pound sterling (2 decimals).
    pub const GBP: Self = Self(iso_currency::Currency::GBP);
    /// Japanese yen (0 decimals).
    pub const JPY: Self = Self(iso_currency::Currency::JPY);
    /// Bahraini dinar (3 decimals).
    pub const BHD: Self = Self(iso_currency::Currency::BHD);

    /// Looks a currency up by its code, ignoring case and surrounding space.
    ///
    /// Codes without a minor unit (gold, special drawing rights, ...) are
    /// rejected: they cannot be used for prices.
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`] naming the code.
    pub fn from_code(code: &str) -> Result<Self> {
        let upper = code.trim().to_ascii_uppercase();
        iso_currency::Currency::from_code(&upper)
            .filter(|c| c.exponent().is_some())
            .map(Self)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(16).collect()))
    }

    /// The three-letter code, e.g. `"USD"`.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// The number of decimal places of the minor unit (2 for USD, 0 for JPY).
    pub fn minor_units(self) -> u32 {
        use iso_currency::Currency as C;
        // The most used currencies answer at once (pricing asks for every
        // amount); a test checks each against the ISO table.
        match self.0 {
            C::USD
            | C::EUR
            | C::GBP
            | C::CAD
            | C::AUD
            | C::CHF
            | C::CNY
            | C::SEK
            | C::NOK
            | C::DKK
            | C::PLN
            | C::NZD
            | C::SGD
            | C::HKD
            | C::MXN
            | C::BRL
            | C::INR
            | C::ZAR => 2,
            C::JPY | C::KRW => 0,
            // Construction guarantees an exponent; 2 is never reached.
            other => u32::from(other.exponent().unwrap_or(2)),
        }
    }

    /// One minor unit as a decimal (0.01 for USD, 1 for JPY).
    pub fn minor_unit(self) -> Decimal {
        Decimal::new(1, self.minor_units())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Self::from_code(&code).map_err(serde::de::Error::custom)
    }
}

/// How to round an amount to a number of decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RoundingMode {
    /// Nearest; halves away from zero (2.5 → 3, -2.5 → -3). Commercial rounding.
    #[default]
    HalfUp,
    /// Nearest; halves to the even neighbour (2.5 → 2, 3.5 → 4). Banker's rounding.
    HalfEven,
    /// Nearest; halves toward zero (2.5 → 2).
    HalfDown,
    /// Truncate toward zero (2.9 → 2, -2.9 → -2).
    TowardZero,
    /// Away from zero (2.1 → 3, -2.1 → -3).
    AwayFromZero,
    /// Toward negative infinity (2.9 → 2, -2.1 → -3).
    Floor,
    /// Toward positive infinity (2.1 → 3, -2.9 → -2).
    Ceiling,
}

impl RoundingMode {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Self::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            Self::HalfEven => RoundingStrategy::MidpointNearestEven,
            Self::HalfDown => RoundingStrategy::MidpointTowardZero,
            Self::TowardZero => RoundingStrategy::ToZero,
            Self::AwayFromZero => RoundingStrategy::AwayFromZero,
            Self::Floor => RoundingStrategy::ToNegativeInfinity,
            Self::Ceiling => RoundingStrategy::ToPositiveInfinity,
        }
    }
}

/// An exact amount of one currency.
///
/// The amount may carry more decimals than the currency's minor unit while a
/// calculation is in progress (a 7.5 % tax on 0.99); [`Money::round`] brings
/// it back to minor units with a named [`RoundingMode`]. Amounts that are
/// stored or charged are always in minor units.
///
/// Serialized as `{"amount": "12.50", "currency": "USD"}`, the amount as a
/// string so no JSON reader turns it into a float.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    currency: Currency,
}

impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An ISO 4217 code of a currency with a minor unit, such as USD.",
            "type": "string",
            "pattern": "^[A-Z]{3}$"
        })
    }
}

impl schemars::JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An amount as a decimal string (never a float) in a currency.",
            "type": "object",
            "properties": {
                "amount": { "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$" },
                "currency": { "type": "string", "pattern": "^[A-Z]{3}$" }
            },
            "required": ["amount", "currency"]
        })
    }
}

impl Money {
    /// An amount of `currency`; any number of decimals is accepted.
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::new(Decimal::ZERO, currency)
    }

    /// Parses a decimal string that must be exact in minor units
    /// (`"19.99"` for USD, `"1500"` for JPY).
    ///
    /// # Errors
    /// [`MoneyError::Invalid`] for text that is not a number;
    /// [`MoneyError::NotMinorUnits`] for more decimals than the currency allows.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self> {
        let value = Decimal::from_str_exact(amount.trim())
            .map_err(|e| MoneyError::invalid("amount", format!("`{}`: {e}", truncate(amount))))?;
        Self::new(value, currency).exact()
    }

    /// An amount given in minor units (1999 cents = 19.99 USD).
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self::new(Decimal::new(minor, currency.minor_units()), currency)
    }

    /// The amount.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// True when the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// True when the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// True when the amount has no more decimals than the currency's minor unit.
    pub fn is_exact(&self) -> bool {
        self.amount.round_dp(self.currency.minor_units()) == self.amount
    }

    /// Returns `self` if it is exact in minor units, else [`MoneyError::NotMinorUnits`].
    ///
    /// # Errors
    /// [`MoneyError::NotMinorUnits`] when the amount has more decimals than the
    /// currency allows.
    pub fn exact(self) -> Result<Self> {
        if self.is_exact() {
            Ok(self)
        } else {
            Err(MoneyError::NotMinorUnits {
                amount: self.amount.to_string(),
                currency: self.currency,
            })
        }
    }

    /// The amount in minor units; fails if it is not exact.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] when the amount does not fit.
    pub fn to_minor(&self) -> Result<i128> {
        // Fast path: the decimal's scale is at most the minor unit's, so its
        // mantissa is the amount in minor units after a power-of-ten shift.
        let scale = self.amount.scale();
        let minor = self.currency.minor_units();
        if scale <= minor {
            return 10_i128
                .checked_pow(minor - scale)
                .and_then(|f| self.amount.mantissa().checked_mul(f))
                .ok_or(MoneyError::Overflow("minor units"));
        }
        let exact = self.exact()?;
        let scale = Decimal::from(10_i64.pow(self.currency.minor_units()));
        let scaled = exact
            .amount
            .checked_mul(scale)
            .ok_or(MoneyError::Overflow("minor units"))?;
        i128::try_from(scaled.trunc()).map_err(|_| MoneyError::Overflow("minor units"))
    }

    /// Rounds to the currency's minor unit with `mode`.
    pub fn round(self, mode: RoundingMode) -> Self {
        Self::new(
            self.amount
                .round_dp_with_strategy(self.currency.minor_units(), mode.strategy()),
            self.currency,
        )
    }

    fn same_currency(&self, other: &Self) -> Result<()> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`, exactly; errors on a currency mismatch or when the
    /// exact sum cannot be represented.
    ///
    /// `rust_decimal` keeps 28 significant digits and rounds a result that
    /// needs more; money never does: a sum that would lose a digit of its
    /// operands' precision is [`MoneyError::Overflow`].
    ///
    /// ```
    /// use cartwright::money::{Currency, Money};
    /// use rust_decimal::Decimal;
    /// let max = Money::new(Decimal::MAX, Currency::USD);
    /// assert!(max.checked_add(Money::parse("0.01", Currency::USD)?).is_err());
    /// # Ok::<(), cartwright::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] when the currencies differ;
    /// [`MoneyError::Overflow`] when the exact result is out of range.
    pub fn checked_add(self, other: Self) -> Result<Self> {
        self.same_currency(&other)?;
        let amount = exact_result(
            self.amount.checked_add(other.amount),
            &[self.amount, other.amount],
            "money sum",
        )?;
        Ok(Self::new(amount, self.currency))
    }

    /// `self - other`, exactly; errors on a currency mismatch or when the
    /// exact difference cannot be represented (see
    /// [`checked_add`](Self::checked_add)).
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] when the currencies differ;
    /// [`MoneyError::Overflow`] when the exact result is out of range.
    pub fn checked_sub(self, other: Self) -> Result<Self> {
        self.same_currency(&other)?;
        let amount = exact_result(
            self.amount.checked_sub(other.amount),
            &[self.amount, other.amount],
            "money difference",
        )?;
        Ok(Self::new(amount, self.currency))
    }

    /// `self × quantity`, exactly; errors when the exact product cannot be
    /// represented.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] when the exact result is out of range.
    pub fn checked_mul_qty(self, quantity: u32) -> Result<Self> {
        let amount = exact_result(
            self.amount.checked_mul(Decimal::from(quantity)),
            &[self.amount],
            "money × quantity",
        )?;
        Ok(Self::new(amount, self.currency))
    }

    /// `self × factor` (a rate such as 0.075), unrounded and exact; errors
    /// when the exact product cannot be represented (more than 28 decimal
    /// places, or out of range): round to the minor unit with
    /// [`round`](Self::round) afterwards.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] when the exact result is out of range.
    pub fn checked_mul_decimal(self, factor: Decimal) -> Result<Self> {
        let amount = self
            .amount
            .checked_mul(factor)
            .ok_or(MoneyError::Overflow("money × rate"))?;
        // A product's exact scale is the sum of its factors' scales.
        let need = self.amount.normalize().scale() + factor.normalize().scale();
        if amount.scale() < need {
            return Err(MoneyError::Overflow("money × rate"));
        }
        Ok(Self::new(amount, self.currency))
    }

    /// Checks an amount a user enters (a price, a gift card, store credit,
    /// a refund, a rate): exact in minor units and at most
    /// [`MAX_AMOUNT_UNITS`] whole units either way. Every amount that comes
    /// from outside passes here before it is stored or used, so sums of
    /// many of them stay far from the decimal type's 28 digits.
    ///
    /// # Errors
    /// [`MoneyError::NotMinorUnits`] for too many decimals;
    /// [`MoneyError::Invalid`] naming the amount when it is above the bound.
    pub fn entered(self) -> Result<Self> {
        let bound = Decimal::from(MAX_AMOUNT_UNITS);
        if self.amount.abs() > bound {
            return Err(MoneyError::invalid(
                "amount",
                format!(
                    "{} is above the largest amount accepted, {} {}",
                    truncate(&self.to_string()),
                    MAX_AMOUNT_UNITS,
                    self.currency
                ),
            ));
        }
        self.exact()
    }

    /// Sums amounts that must all be in `currency`.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] when the currencies differ;
    /// [`MoneyError::Overflow`] when the result is out of range.
    pub fn sum<'a>(currency: Currency, items: impl IntoIterator<Item = &'a Money>) -> Result<Self> {
        items
            .into_iter()
            .try_fold(Self::zero(currency), |acc, m| acc.checked_add(*m))
    }

    /// Compares two amounts of the same currency.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] when the currencies differ.
    pub fn checked_cmp(&self, other: &Self) -> Result<Ordering> {
        self.same_currency(other)?;
        Ok(self.amount.cmp(&other.amount))
    }

    /// Splits this amount into parts proportional to `weights`, exactly.
    ///
    /// The amount must be exact in minor units. Each part gets the floor of
    /// its proportional share in minor units; the minor units left over go one
    /// each to the parts with the largest remainders, ties to the earlier
    /// part. The parts always sum to the whole, and each part has the sign of
    /// the whole (or is zero).
    ///
    /// Errors when `weights` is empty or all zero, or on overflow.
    ///
    /// ```
    /// use cartwright::money::{Currency, Money};
    /// let ten = Money::parse("10.00", Currency::USD)?;
    /// let parts = ten.allocate(&[1, 1, 1])?;
    /// let shown: Vec<String> = parts.iter().map(|m| m.to_string()).collect();
    /// assert_eq!(shown, ["3.34 USD", "3.33 USD", "3.33 USD"]);
    /// # Ok::<(), cartwright::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`MoneyError::Invalid`] for no weights or all-zero weights;
    /// [`MoneyError::Overflow`].
    pub fn allocate(&self, weights: &[u64]) -> Result<Vec<Money>> {
        let total = self.to_minor()?;
        let parts = allocate_minor(total, weights)?;
        parts
            .into_iter()
            .map(|minor| self.money_from_minor(minor))
            .collect()
    }

    /// Like [`Money::allocate`], with weights given as amounts of the same
    /// currency (for example line subtotals). Weights must be exact and not
    /// negative.
    ///
    /// # Errors
    /// [`MoneyError::Invalid`] for no weights or all-zero weights;
    /// [`MoneyError::Overflow`].
    pub fn allocate_by(&self, weights: &[Money]) -> Result<Vec<Money>> {
        let mut raw = Vec::with_capacity(weights.len());
        for w in weights {
            self.same_currency(w)?;
            let minor = w.to_minor()?;
            raw.push(u64::try_from(minor).map_err(|_| {
                MoneyError::invalid("allocation weight", "must be non-negative and fit in u64")
            })?);
        }
        self.allocate(&raw)
    }

    fn money_from_minor(&self, minor: i128) -> Result<Money> {
        let mantissa = Decimal::try_from_i128_with_scale(minor, self.currency.minor_units())
            .map_err(|_| MoneyError::Overflow("minor units"))?;
        Ok(Self::new(mantissa, self.currency))
    }
}

/// Largest-remainder allocation of `total` minor units over `weights`; ties
/// between equal remainders go to the earlier index.
pub(crate) fn allocate_minor(total: i128, weights: &[u64]) -> Result<Vec<i128>> {
    allocate_minor_ranked(total, weights, |i| i as u64)
}

/// Largest-remainder allocation of `total` minor units over `weights`: each
/// part gets the floor of its proportional share, and the minor units left
/// over go one each to the largest remainders; ties between equal
/// remainders go to the lower `rank(index)` (then the earlier index).
pub(crate) fn allocate_minor_ranked(
    total: i128,
    weights: &[u64],
    rank: impl Fn(usize) -> u64,
) -> Result<Vec<i128>> {
    let weight_sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if weight_sum == 0 {
        return Err(MoneyError::invalid(
            "allocation weights",
            "need at least one weight above zero",
        ));
    }
    let magnitude = total
        .checked_abs()
        .ok_or(MoneyError::Overflow("allocation"))?;
    // Most amounts fit in 64 bits, where division is far cheaper.
    let narrow = u64::try_from(weight_sum).ok();
    // Every product `magnitude × weight` is at most `magnitude × sum`.
    if let (Some(sum), Ok(m)) = (narrow, u64::try_from(magnitude))
        && m.checked_mul(sum).is_some()
        && u32::try_from(weights.len()).is_ok()
    {
        let parts = allocate_narrow(m, weights, sum, &rank);
        return Ok(if total < 0 {
            parts.into_iter().map(|p| -p).collect()
        } else {
            parts
        });
    }
    allocate_wide(total, weights, weight_sum, narrow, &rank)
}

/// [`allocate_minor_ranked`] in 128 bits, sorting remainders as tuples.
fn allocate_wide(
    total: i128,
    weights: &[u64],
    weight_sum: i128,
    narrow: Option<u64>,
    rank: &impl Fn(usize) -> u64,
) -> Result<Vec<i128>> {
    let magnitude = total
        .checked_abs()
        .ok_or(MoneyError::Overflow("allocation"))?;
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut assigned: i128 = 0;
    for (index, w) in weights.iter().enumerate() {
        let product = magnitude
            .checked_mul(i128::from(*w))
            .ok_or(MoneyError::Overflow("allocation"))?;
        let (part, remainder) = match (narrow, u64::try_from(product)) {
            (Some(sum), Ok(p)) => (i128::from(p / sum), i128::from(p % sum)),
            _ => (product / weight_sum, product % weight_sum),
        };
        remainders.push((remainder, rank(index), index));
        assigned += part;
        parts.push(part);
    }
    // Largest remainder first, then the lower rank. Only the first
    // `leftover` in that order matter, so select them in linear time.
    let leftover = usize::try_from(magnitude - assigned).unwrap_or(0);
    let order = |a: &(i128, u64, usize), b: &(i128, u64, usize)| {
        b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
    };
    if leftover > 0 && leftover < remainders.len() {
        remainders.select_nth_unstable_by(leftover - 1, order);
    }
    for (_, _, index) in remainders.iter().take(leftover) {
        if let Some(part) = parts.get_mut(*index) {
            *part += 1;
        }
    }
    if total < 0 {
        for part in &mut parts {
            *part = -*part;
        }
    }
    Ok(parts)
}

/// [`allocate_minor_ranked`] when every product fits in 64 bits: each
/// remainder, rank and index packed into one `u128` key (largest remainder,
/// then lower rank, then earlier index, compare as larger), the `leftover`-th
/// largest key found in linear time, and every key at or above it gets one
/// more unit. Keys are unique (they hold the index), so exactly `leftover`
/// parts do.
fn allocate_narrow(
    magnitude: u64,
    weights: &[u64],
    sum: u64,
    rank: &impl Fn(usize) -> u64,
) -> Vec<i128> {
    let mut parts = Vec::with_capacity(weights.len());
    let mut keys = Vec::with_capacity(weights.len());
    let mut assigned: u128 = 0;
    for (index, w) in weights.iter().enumerate() {
        // Checked by the caller: the product fits in 64 bits.
        let product = magnitude.wrapping_mul(*w);
        let (part, remainder) = (product / sum, product % sum);
        let rank32 = u32::try_from(rank(index)).unwrap_or(u32::MAX);
        let index32 = u32::try_from(index).unwrap_or(u32::MAX);
        keys.push(
            (u128::from(remainder) << 64)
                | (u128::from(u32::MAX - rank32) << 32)
                | u128::from(u32::MAX - index32),
        );
        assigned += u128::from(part);
        parts.push(i128::from(part));
    }
    let leftover = usize::try_from(u128::from(magnitude) - assigned).unwrap_or(0);
    if leftover == 0 {
        return parts;
    }
    let threshold = if leftover >= keys.len() {
        0
    } else {
        let mut order = keys.clone();
        let at = order.len() - leftover;
        *order.select_nth_unstable(at).1
    };
    for (part, key) in parts.iter_mut().zip(&keys) {
        if *key >= threshold {
            *part += 1;
        }
    }
    parts
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = self.currency.minor_units();
        let mut shown = self.amount;
        if shown.scale() < scale {
            shown.rescale(scale);
        }
        write!(f, "{} {}", shown, self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Rounds `n / d` (d > 0) to an integer with `mode`.
pub(crate) fn div_round(n: i128, d: i128, mode: RoundingMode) -> i128 {
    if d <= 0 {
        return 0;
    }
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d);
    if r == 0 {
        return q;
    }
    let up = q + 1;
    let twice = r.saturating_mul(2);
    let tie = twice == d;
    let above_half = twice > d;
    match mode {
        RoundingMode::Floor => q,
        RoundingMode::Ceiling => up,
        RoundingMode::TowardZero => {
            if n >= 0 {
                q
            } else {
                up
            }
        }
        RoundingMode::AwayFromZero => {
            if n >= 0 {
                up
            } else {
                q
            }
        }
        RoundingMode::HalfUp if tie => {
            if n >= 0 {
                up
            } else {
                q
            }
        }
        RoundingMode::HalfDown if tie => {
            if n >= 0 {
                q
            } else {
                up
            }
        }
        RoundingMode::HalfEven if tie => {
            if q % 2 == 0 {
                q
            } else {
                up
            }
        }
        _ => {
            if above_half {
                up
            } else {
                q
            }
        }
    }
}

/// Each unit's exact share of a line total: the total split over the units
/// by largest remainder, so the shares always add up to the total. Unit `i`
/// of a line always gets the same share, whichever return it comes back in.
///
/// # Errors
/// [`MoneyError::Overflow`] when the quantity does not fit in memory's index.
pub fn unit_shares(line_total: Money, quantity: u32) -> Result<Vec<Money>> {
    if quantity == 0 {
        return Ok(Vec::new());
    }
    let weights =
        vec![1u64; usize::try_from(quantity).map_err(|_| MoneyError::Overflow("quantity"))?];
    line_total.allocate(&weights)
}

#[cfg(test)]
mod tests;
