//! Coupon codes, and the promotion's JSON Schema.

use super::*;

/// The version of a promotion's JSON form. Additions that old readers can
/// ignore or that have defaults (a new optional field, a new action or
/// condition type) keep the version; a change that would make a stored
/// promotion read differently bumps it, with a note in the CHANGELOG.
pub const PROMOTION_JSON_VERSION: u32 = 1;

/// The JSON Schema (draft 2020-12) of a promotion's JSON form, generated
/// from the types, so an admin UI can validate a promotion before saving
/// it. Its `$id` carries [`PROMOTION_JSON_VERSION`]. The schema checks the
/// shape (field names, types, enums, required fields); the limits and
/// cross-field rules of [`Promotion::validate`] still apply on save. The
/// published copy is `schemas/promotion.schema.json`; a test keeps the two
/// equal.
pub fn promotion_json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Promotion);
    schema.insert(
        "$id".into(),
        format!("urn:cartwright:promotion:v{PROMOTION_JSON_VERSION}").into(),
    );
    schema.into()
}

/// A coupon code for a coded promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Coupon {
    /// The normalized code (see [`normalize_code`]).
    pub code: String,
    /// The promotion it unlocks.
    pub promotion_id: PromotionId,
    /// Orders that may use this code, in all (`Some(1)`: single use). One
    /// order uses the code once, however many promotions it unlocks.
    #[serde(default)]
    pub max_uses: Option<u64>,
    /// Further promotions the same code unlocks, beside `promotion_id`
    /// ("WELCOME" gives 10 % off and free shipping): each is considered,
    /// applied or rejected with its own reason, as if it had its own code.
    /// At most [`MAX_PROMOTIONS_PER_CODE`] in all, no repeats; each must
    /// be coded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_promotions: Vec<PromotionId>,
}

/// Most promotions one coupon code unlocks ([`Coupon::more_promotions`]
/// plus its `promotion_id`).
pub const MAX_PROMOTIONS_PER_CODE: usize = 20;

impl Coupon {
    /// A code for `promotion`, normalized; `max_uses` of `Some(1)` makes it single use.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed code (see
    /// [`normalize_code`](crate::cart::normalize_code)).
    pub fn new(code: &str, promotion_id: PromotionId, max_uses: Option<u64>) -> Result<Self> {
        Self::new_with(
            code,
            promotion_id,
            max_uses,
            &crate::cart::CodePolicy::default(),
        )
    }

    /// A code for `promotion`, normalized under `policy` (see
    /// [`CodePolicy`](crate::cart::CodePolicy)).
    ///
    /// # Errors
    /// As [`Coupon::new`].
    pub fn new_with(
        code: &str,
        promotion_id: PromotionId,
        max_uses: Option<u64>,
        policy: &crate::cart::CodePolicy,
    ) -> Result<Self> {
        if max_uses == Some(0) {
            return Err(Error::invalid("coupon max_uses", "must be at least 1"));
        }
        Ok(Self {
            code: crate::cart::normalize_code_with(code, policy)?,
            promotion_id,
            max_uses,
            more_promotions: Vec::new(),
        })
    }

    /// One code for several promotions: the first of `promotions` is
    /// [`promotion_id`](Self::promotion_id), the rest
    /// [`more_promotions`](Self::more_promotions). The code's `max_uses`
    /// counts orders, not promotions.
    ///
    /// # Errors
    /// As [`Coupon::new`]; [`Error::Invalid`] for no promotion, a promotion
    /// named twice (naming it), or more than [`MAX_PROMOTIONS_PER_CODE`].
    pub fn for_promotions(
        code: &str,
        promotions: &[PromotionId],
        max_uses: Option<u64>,
        policy: &crate::cart::CodePolicy,
    ) -> Result<Self> {
        let Some((first, rest)) = promotions.split_first() else {
            return Err(Error::invalid(
                "coupon promotions",
                "name at least one promotion",
            ));
        };
        let mut coupon = Self::new_with(code, *first, max_uses, policy)?;
        coupon.more_promotions = rest.to_vec();
        coupon.validate()?;
        Ok(coupon)
    }

    /// Every promotion the code unlocks: `promotion_id`, then
    /// `more_promotions`.
    pub fn promotions(&self) -> impl Iterator<Item = PromotionId> + '_ {
        std::iter::once(self.promotion_id).chain(self.more_promotions.iter().copied())
    }

    /// Checks the promotion list (a coupon read from JSON or built by hand).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past [`MAX_PROMOTIONS_PER_CODE`];
    /// [`Error::Invalid`] for a promotion named twice, naming it.
    pub fn validate(&self) -> Result<()> {
        let count = self.more_promotions.len().saturating_add(1);
        if count > MAX_PROMOTIONS_PER_CODE {
            return Err(Error::LimitExceeded {
                what: "promotions per coupon code",
                max: MAX_PROMOTIONS_PER_CODE as u64,
            });
        }
        let mut seen = BTreeSet::new();
        for id in self.promotions() {
            if !seen.insert(id) {
                return Err(Error::invalid(
                    "coupon promotions",
                    format!("{id} is named twice"),
                ));
            }
        }
        Ok(())
    }
}

/// Alphabet of generated codes: Crockford's base 32 (no I, L, O, U), so codes
/// read aloud or typed by hand are not confused.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random characters in a generated code: 16 × 5 = 80 bits.
pub const GENERATED_CODE_CHARS: usize = 16;
/// Most codes one [`generate_codes`] call makes.
pub const MAX_GENERATED_CODES: usize = 100_000;

/// Makes `count` distinct, unguessable codes: `prefix` (normalized, may be
/// empty) followed by 16 characters from the operating system's random
/// source (80 bits each), grouped by dashes. Not part of the pure pricing
/// core: it draws randomness.
///
/// # Errors
/// [`Error::Invalid`] for a malformed prefix; [`Error::LimitExceeded`] for more
/// codes than allowed at once.
pub fn generate_codes(prefix: &str, count: usize) -> Result<Vec<String>> {
    if count == 0 || count > MAX_GENERATED_CODES {
        return Err(Error::invalid(
            "code count",
            format!("must be 1 to {MAX_GENERATED_CODES}"),
        ));
    }
    let prefix = if prefix.trim().is_empty() {
        String::new()
    } else {
        let p = normalize_code(prefix)?;
        if p.len() + GENERATED_CODE_CHARS + 4 > crate::cart::MAX_CODE_LEN {
            return Err(Error::invalid("code prefix", "is too long"));
        }
        format!("{p}-")
    };
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        // Two v4 UUIDs give 244 random bits from the OS; 80 are used.
        let bytes = uuid::Uuid::new_v4().as_u128() ^ uuid::Uuid::new_v4().as_u128().rotate_left(64);
        let mut code = prefix.clone();
        for i in 0..GENERATED_CODE_CHARS {
            if i > 0 && i % 4 == 0 {
                code.push('-');
            }
            let index = usize::try_from((bytes >> (i * 5)) & 31).unwrap_or(0);
            code.push(char::from(*CODE_ALPHABET.get(index).unwrap_or(&b'0')));
        }
        if seen.insert(code.clone()) {
            out.push(code);
        }
    }
    Ok(out)
}
