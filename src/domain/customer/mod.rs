//! Customers: accounts with hashed passwords, guests, groups and address books.
//!
//! Passwords are hashed with argon2id ([`PasswordPolicy`]); the plain password
//! is never stored, logged or returned, and the hash itself is neither
//! serialized with a [`Customer`] nor shown by `Debug`.
//!
//! Architecture invariant: this module is plain data and pure functions (the
//! hashing is CPU work, no I/O). Looking customers up is the store's job.

mod tax_details;
pub use tax_details::{MAX_TAX_EXEMPTION_LEN, MAX_TAX_ID_LEN, normalize_tax_id};

use std::collections::BTreeSet;
use std::fmt;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use chrono::{DateTime, Utc};
use password_hash::rand_core::OsRng;
use password_hash::{PasswordHash as PhcHash, SaltString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{AddressId, CustomerGroupId, CustomerId};
use crate::validate::{at_most, optional_text, required_text};

mod token;
pub use token::{
    AccountChange, AccountToken, Check as TokenCheck, DECOY_PHC, IssuedToken, MAX_TOKEN_ATTEMPTS,
    MAX_TOKEN_LEN, TokenHolder, TokenPurpose, digest as token_digest, password_mark,
};
pub(crate) use token::{issue as issue_token, parse as parse_token, token_text};

/// Most addresses in one customer's address book.
pub const MAX_ADDRESSES: usize = 50;
/// Most groups one customer belongs to.
pub const MAX_GROUPS_PER_CUSTOMER: usize = 50;
/// Longest email address, in characters (RFC 5321).
pub const MAX_EMAIL_LEN: usize = 254;

/// An email address, trimmed and lower-cased so that one mailbox is one account.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Normalizes and validates an email address.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn new(email: &str) -> Result<Self> {
        let e = email.trim().to_lowercase();
        if e.is_empty() || e.chars().count() > MAX_EMAIL_LEN {
            return Err(Error::invalid(
                "email",
                format!("must be 1 to {MAX_EMAIL_LEN} characters"),
            ));
        }
        let Some((local, domain)) = e.split_once('@') else {
            return Err(Error::invalid("email", "must contain @"));
        };
        let ok = !local.is_empty()
            && local.len() <= 64
            && !domain.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !e.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(Error::invalid("email", "is not a valid address"));
        }
        Ok(Self(e))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

/// An argon2id hash in PHC string form. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string read from storage; it is parsed when verified.
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for storage adapters.
    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// Password rules and argon2id cost.
///
/// The default cost follows the OWASP recommendation for argon2id (19 MiB,
/// 2 iterations, 1 lane). Lower it only in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasswordPolicy {
    /// Fewest characters in a password.
    pub min_len: usize,
    /// Most characters in a password (bounds the hashing work per request).
    pub max_len: usize,
    /// argon2 memory cost in KiB.
    pub memory_kib: u32,
    /// argon2 iterations.
    pub iterations: u32,
    /// argon2 lanes.
    pub parallelism: u32,
}

crate::domain::setters!(PasswordPolicy {
    min_len: usize,
    max_len: usize,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
} into {});

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_len: 8,
            max_len: 128,
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordPolicy {
    /// A deliberately cheap policy for tests. Never use it in production:
    /// it exists only with the `test-util` feature.
    #[cfg(any(test, feature = "test-util"))]
    pub fn insecure_fast_for_tests() -> Self {
        Self {
            memory_kib: 256,
            iterations: 1,
            ..Self::default()
        }
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| Error::invalid("password policy", e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Checks the length rules, then hashes with a fresh random salt.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a password the policy refuses; [`Error::Storage`]
    /// if hashing itself fails.
    pub fn hash(&self, password: &str) -> Result<PasswordHash> {
        let len = password.chars().count();
        if len < self.min_len {
            return Err(Error::invalid(
                "password",
                format!("must be at least {} characters", self.min_len),
            ));
        }
        if len > self.max_len {
            return Err(Error::LimitExceeded {
                what: "password length",
                max: self.max_len as u64,
            });
        }
        self.hash_unchecked(password)
    }

    pub(crate) fn hash_unchecked(&self, password: &str) -> Result<PasswordHash> {
        let salt = SaltString::generate(&mut OsRng);
        let phc = self
            .argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| Error::invalid("password", e.to_string()))?;
        Ok(PasswordHash(phc.to_string()))
    }

    /// True when `password` matches `hash`. The comparison is constant-time;
    /// over-long passwords and unreadable hashes are simply "no".
    pub fn verify(&self, hash: &PasswordHash, password: &str) -> bool {
        if password.chars().count() > self.max_len {
            return false;
        }
        let Ok(parsed) = PhcHash::new(&hash.0) else {
            return false;
        };
        // Verification uses the parameters recorded in the hash itself, so
        // hashes made under an older policy still verify.
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }
}

/// Whether a customer has an account or only gave an email at checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CustomerKind {
    /// Has a password and can log in.
    Registered,
    /// Email only; registering later with the same email turns the guest into an account.
    Guest,
}

/// A two-letter ISO 3166-1 country code, upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country([u8; 2]);

impl Country {
    /// Validates a two-letter code (case-insensitive) against the assigned
    /// ISO 3166-1 alpha-2 codes (the `celes` crate's table; Kosovo's `XK`
    /// included).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the value given, for anything else (`ZZ`,
    /// `USA`, non-ASCII letters).
    pub fn new(code: &str) -> Result<Self> {
        let trimmed = code.trim();
        let bytes = trimmed.as_bytes();
        let known = match bytes {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                celes::Country::from_alpha2(trimmed.to_ascii_lowercase()).is_ok()
            }
            _ => false,
        };
        match (known, bytes) {
            (true, [a, b]) => Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()])),
            _ => Err(Error::invalid(
                "country",
                format!(
                    "{} is not an ISO 3166-1 alpha-2 country code",
                    crate::validate::shown(code)
                ),
            )),
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl TryFrom<String> for Country {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}

impl From<Country> for String {
    fn from(c: Country) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A postal address as entered; validated by [`Address::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewAddress {
    /// Recipient's full name.
    pub name: String,
    /// First address line.
    pub line1: String,
    /// Second address line (optional).
    pub line2: String,
    /// City or town.
    pub city: String,
    /// State, province or region (optional); used by regional tax tables.
    pub region: String,
    /// Postal code (optional in some countries).
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Phone number (optional).
    pub phone: String,
    /// The id another system knows the address by (an import's id, an
    /// agent's destination id): optional, at most
    /// [`MAX_ADDRESS_REFERENCE_LEN`] characters.
    pub reference: String,
}

/// Longest [`Address::reference`], in characters.
pub const MAX_ADDRESS_REFERENCE_LEN: usize = 64;

impl NewAddress {
    /// An address for `name` at `line1`, `city`, `postal_code` in
    /// `country` (ISO 3166-1 alpha-2); the optional parts empty.
    pub fn new(
        name: impl Into<String>,
        line1: impl Into<String>,
        city: impl Into<String>,
        postal_code: impl Into<String>,
        country: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            line1: line1.into(),
            city: city.into(),
            postal_code: postal_code.into(),
            country: country.into(),
            ..Self::default()
        }
    }
}

crate::domain::setters!(NewAddress {} into {
    name: String,
    line1: String,
    line2: String,
    city: String,
    region: String,
    postal_code: String,
    country: String,
    phone: String,
    reference: String,
});

/// Longest text a customer search takes, in characters.
pub const MAX_SEARCH_TEXT: usize = 100;

/// Which customers a staff search finds ([`crate::Engine::find_customers`]),
/// a page at a time in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CustomerQuery {
    /// Part of the email or the name, any case (at most
    /// [`MAX_SEARCH_TEXT`] characters); `None` finds everyone.
    pub text: Option<String>,
    /// Only members of this group.
    pub group: Option<CustomerGroupId>,
    /// Only customers whose id comes after this one (the last of the
    /// previous page).
    pub after: Option<CustomerId>,
    /// At most this many (1 to [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE)).
    pub limit: usize,
}

impl CustomerQuery {
    /// Everyone, `limit` at a time.
    pub fn new(limit: usize) -> Self {
        Self {
            text: None,
            group: None,
            after: None,
            limit,
        }
    }

    /// Only customers whose email or name contains `text`.
    #[must_use]
    pub fn text(mut self, text: &str) -> Self {
        self.text = Some(text.to_owned());
        self
    }

    /// Only members of `group`.
    #[must_use]
    pub fn group(mut self, group: CustomerGroupId) -> Self {
        self.group = Some(group);
        self
    }

    /// The page after the customer `after`.
    #[must_use]
    pub fn after(mut self, after: CustomerId) -> Self {
        self.after = Some(after);
        self
    }

    /// The search text as stores compare it: trimmed, lower-case, `None`
    /// when empty.
    pub fn needle(&self) -> Option<String> {
        self.text
            .as_deref()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
    }

    /// Whether `c` matches (the in-memory store's filter, and the meaning
    /// every store must give a query).
    pub fn matches(&self, c: &Customer) -> bool {
        self.after.is_none_or(|a| c.id() > a)
            && self.group.is_none_or(|g| c.groups().contains(&g))
            && self.needle().is_none_or(|n| {
                c.email().as_str().contains(&n) || c.name().to_lowercase().contains(&n)
            })
    }
}

/// The email an erased customer's records carry instead of theirs: unique
/// per customer, in the reserved `.invalid` domain, so it never reaches
/// anyone.
pub fn erased_email(id: CustomerId) -> Email {
    Email(format!("erased-{}@erased.invalid", id.as_uuid().simple()))
}

impl Address {
    /// The address with everything that locates a person removed: the name,
    /// street lines, city, postal code and phone; the country and region
    /// stay (the tax jurisdiction of the sale).
    pub fn erase(&mut self) {
        self.name = String::new();
        self.line1 = String::new();
        self.line2 = String::new();
        self.city = String::new();
        self.postal_code = String::new();
        self.phone = String::new();
        self.reference = String::new();
    }
}

/// A validated postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Address {
    /// Its id within an address book.
    pub id: AddressId,
    /// Recipient's full name.
    pub name: String,
    /// First address line.
    pub line1: String,
    /// Second address line.
    pub line2: String,
    /// City or town.
    pub city: String,
    /// State, province or region, upper-case (may be empty).
    pub region: String,
    /// Postal code.
    pub postal_code: String,
    /// Country.
    pub country: Country,
    /// Phone number.
    pub phone: String,
    /// The id another system knows it by (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reference: String,
}

impl Address {
    /// Validates an address.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn new(input: NewAddress) -> Result<Self> {
        Ok(Self {
            id: AddressId::new(),
            name: required_text("address name", &input.name, 200)?,
            line1: required_text("address line1", &input.line1, 200)?,
            line2: optional_text("address line2", &input.line2, 200)?,
            city: required_text("city", &input.city, 100)?,
            region: optional_text("region", &input.region, 100)?.to_uppercase(),
            postal_code: optional_text("postal code", &input.postal_code, 20)?,
            country: Country::new(&input.country)?,
            phone: optional_text("phone", &input.phone, 40)?,
            reference: optional_text(
                "address reference",
                &input.reference,
                MAX_ADDRESS_REFERENCE_LEN,
            )?,
        })
    }

    /// An address known only in part — a country, perhaps a region and a
    /// postal code — as AI agents send a destination before the buyer gave
    /// the rest: enough to offer shipping rates and taxes. Every field but
    /// the country may be empty; each is checked as [`Address::new`] checks
    /// it. Whether an order may be placed with it is the caller's decision
    /// ([`Address::is_complete`]).
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn partial(input: NewAddress) -> Result<Self> {
        Ok(Self {
            id: AddressId::new(),
            name: optional_text("address name", &input.name, 200)?,
            line1: optional_text("address line1", &input.line1, 200)?,
            line2: optional_text("address line2", &input.line2, 200)?,
            city: optional_text("city", &input.city, 100)?,
            region: optional_text("region", &input.region, 100)?.to_uppercase(),
            postal_code: optional_text("postal code", &input.postal_code, 20)?,
            country: Country::new(&input.country)?,
            phone: optional_text("phone", &input.phone, 40)?,
            reference: optional_text(
                "address reference",
                &input.reference,
                MAX_ADDRESS_REFERENCE_LEN,
            )?,
        })
    }

    /// Whether a parcel can be sent to it: a street line and a city (the
    /// name may be missing for an agent's destination).
    pub fn is_complete(&self) -> bool {
        !self.line1.is_empty() && !self.city.is_empty()
    }

    /// Whether two addresses are the same place (the street, city, region,
    /// postal code and country, ignoring case and surrounding space); ids,
    /// names and phone numbers are not compared.
    pub fn same_place(&self, other: &Address) -> bool {
        let eq = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        eq(&self.line1, &other.line1)
            && eq(&self.line2, &other.line2)
            && eq(&self.city, &other.city)
            && eq(&self.region, &other.region)
            && eq(&self.postal_code, &other.postal_code)
            && self.country == other.country
    }
}

/// A named group of customers, used by price lists and promotions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerGroup {
    id: CustomerGroupId,
    name: String,
}

impl CustomerGroup {
    /// A new group.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for input that does not
    /// validate, naming the field.
    pub fn new(name: &str) -> Result<Self> {
        Ok(Self {
            id: CustomerGroupId::new(),
            name: required_text("group name", name, 100)?,
        })
    }
    /// Its id.
    pub fn id(&self) -> CustomerGroupId {
        self.id
    }
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A customer: a registered account or a guest.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    id: CustomerId,
    email: Email,
    name: String,
    kind: CustomerKind,
    /// Never serialized: adapters store it through [`Customer::password_hash`].
    #[serde(skip)]
    password: Option<PasswordHash>,
    groups: BTreeSet<CustomerGroupId>,
    addresses: Vec<Address>,
    default_shipping: Option<AddressId>,
    default_billing: Option<AddressId>,
    orders_placed: u32,
    notes: Vec<crate::note::Note>,
    version: u64,
    created_at: DateTime<Utc>,
    /// Whether the customer showed they receive mail at `email`.
    #[serde(default)]
    email_verified: bool,
    /// Changes when the password does (and when a reset asks every session
    /// to end): sessions remember it and end when it moves on.
    #[serde(default)]
    sign_in_epoch: u32,
    /// Erased on request: the personal data are gone (see [`Customer::erase`]).
    #[serde(default)]
    erased: bool,
    /// A phone number (may be empty).
    #[serde(default)]
    phone: String,
    /// A tax id or VAT number, normalized (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    tax_id: String,
    /// A tax exemption certificate's number (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    tax_exemption: String,
}

impl fmt::Debug for Customer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Customer")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("groups", &self.groups)
            .field("addresses", &self.addresses.len())
            .field("orders_placed", &self.orders_placed)
            .finish_non_exhaustive()
    }
}

impl Customer {
    /// A registered customer with an already-hashed password.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for a name that does not
    /// validate.
    pub fn registered(
        email: Email,
        name: &str,
        password: PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        Ok(Self {
            id: CustomerId::new(),
            email,
            name: optional_text("customer name", name, 200)?,
            kind: CustomerKind::Registered,
            password: Some(password),
            groups: BTreeSet::new(),
            addresses: Vec::new(),
            default_shipping: None,
            default_billing: None,
            orders_placed: 0,
            notes: Vec::new(),
            version: 0,
            created_at: now,
            email_verified: false,
            sign_in_epoch: 0,
            erased: false,
            phone: String::new(),
            tax_id: String::new(),
            tax_exemption: String::new(),
        })
    }

    /// A guest known only by email.
    pub fn guest(email: Email, now: DateTime<Utc>) -> Self {
        Self {
            id: CustomerId::new(),
            email,
            name: String::new(),
            kind: CustomerKind::Guest,
            password: None,
            groups: BTreeSet::new(),
            addresses: Vec::new(),
            default_shipping: None,
            default_billing: None,
            orders_placed: 0,
            notes: Vec::new(),
            version: 0,
            created_at: now,
            email_verified: false,
            sign_in_epoch: 0,
            erased: false,
            phone: String::new(),
            tax_id: String::new(),
            tax_exemption: String::new(),
        }
    }

    /// Its id.
    pub fn id(&self) -> CustomerId {
        self.id
    }
    /// Its normalized email.
    pub fn email(&self) -> &Email {
        &self.email
    }
    /// Its display name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Registered or guest.
    pub fn kind(&self) -> CustomerKind {
        self.kind
    }
    /// The groups it belongs to.
    pub fn groups(&self) -> &BTreeSet<CustomerGroupId> {
        &self.groups
    }
    /// Its address book.
    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }
    /// One address from the book.
    pub fn address(&self, id: AddressId) -> Option<&Address> {
        self.addresses.iter().find(|a| a.id == id)
    }
    /// The default shipping address.
    pub fn default_shipping(&self) -> Option<&Address> {
        self.default_shipping.and_then(|id| self.address(id))
    }
    /// The default billing address.
    pub fn default_billing(&self) -> Option<&Address> {
        self.default_billing.and_then(|id| self.address(id))
    }
    /// How many orders the customer has placed.
    pub fn orders_placed(&self) -> u32 {
        self.orders_placed
    }
    /// When the customer was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// Bumped by the store on every save; used to detect concurrent changes.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Notes about the customer (only those visible to the caller, when read
    /// through the engine).
    pub fn notes(&self) -> &[crate::note::Note] {
        &self.notes
    }
    pub(crate) fn add_note(&mut self, note: crate::note::Note) -> Result<()> {
        crate::note::push(&mut self.notes, note)
    }
    pub(crate) fn visible_to(mut self, actor: &crate::actor::Actor) -> Self {
        crate::note::visible_to(&mut self.notes, actor);
        self
    }
    /// For storage adapters: records a successful save.
    ///
    /// # Errors
    /// [`Error::Overflow`] when the version counter is exhausted.
    pub fn saved(&mut self) -> Result<()> {
        self.version = self
            .version
            .checked_add(1)
            .ok_or_else(|| Error::Overflow("customer version"))?;
        Ok(())
    }
    /// For storage adapters: puts back the hash stored beside the serialized customer.
    pub fn with_password_hash(mut self, hash: Option<PasswordHash>) -> Self {
        self.password = hash;
        self
    }
    /// The stored password hash, for storage adapters and login.
    pub fn password_hash(&self) -> Option<&PasswordHash> {
        self.password.as_ref()
    }
    /// Whether the customer showed they receive mail at their email (a
    /// verification token or a password reset came back).
    pub fn email_verified(&self) -> bool {
        self.email_verified
    }
    /// A number that changes whenever the password changes, and when a
    /// reset asks every session to end. An embedding program keeps it in
    /// each session it opens and ends sessions whose number is older.
    pub fn sign_in_epoch(&self) -> u32 {
        self.sign_in_epoch
    }
    /// Whether the customer was erased on request.
    pub fn erased(&self) -> bool {
        self.erased
    }
    /// The phone number (empty when none was given).
    pub fn phone(&self) -> &str {
        &self.phone
    }
    /// Changes the name and phone given (`None` leaves one as it is; an
    /// empty phone removes it), all or nothing.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for a name over 200 or
    /// a phone over 40 characters, naming the field.
    pub fn update_profile(&mut self, name: Option<&str>, phone: Option<&str>) -> Result<()> {
        let name = name
            .map(|n| optional_text("customer name", n, 200))
            .transpose()?;
        let phone = phone.map(|p| optional_text("phone", p, 40)).transpose()?;
        if let Some(name) = name {
            self.name = name;
        }
        if let Some(phone) = phone {
            self.phone = phone;
        }
        Ok(())
    }
    /// Takes a confirmed new email (verified: the customer read the mail).
    pub(crate) fn change_email(&mut self, email: Email) {
        self.email = email;
        self.email_verified = true;
    }
    /// Erases the personal data, for storage adapters implementing
    /// [`CustomerStore::erase_customer`](crate::store::CustomerStore::erase_customer):
    /// the email becomes [`erased_email`] (so the address may open a new
    /// account), the name, address book, notes, groups, password and tokens
    /// go, and the record becomes a guest that cannot sign in. Its id, its
    /// creation date and its count of orders stay (orders keep pointing at
    /// it).
    pub fn erase(&mut self) {
        self.email = erased_email(self.id);
        self.name = String::new();
        self.kind = CustomerKind::Guest;
        self.password = None;
        self.groups.clear();
        self.addresses.clear();
        self.default_shipping = None;
        self.default_billing = None;
        self.notes.clear();
        self.email_verified = false;
        self.phone = String::new();
        self.tax_id = String::new();
        self.tax_exemption = String::new();
        self.erased = true;
    }
    /// Sets a new (hashed) password: a new sign-in epoch when `sign_out`
    /// (every session ends). Any password-reset token is void from now on:
    /// it was issued under another password
    /// ([`AccountToken::live_for`]).
    pub(crate) fn set_password(&mut self, hash: PasswordHash, sign_out: bool) {
        self.password = Some(hash);
        if sign_out {
            self.sign_in_epoch = self.sign_in_epoch.wrapping_add(1);
        }
    }
    pub(crate) fn mark_email_verified(&mut self) {
        self.email_verified = true;
    }

    /// Turns a guest into a registered customer (same id, same history).
    pub(crate) fn register(&mut self, name: &str, password: PasswordHash) -> Result<()> {
        if self.kind == CustomerKind::Registered {
            return Err(Error::AlreadyExists {
                what: "email",
                value: self.email.to_string(),
            });
        }
        self.name = optional_text("customer name", name, 200)?;
        self.kind = CustomerKind::Registered;
        self.password = Some(password);
        Ok(())
    }

    /// Adds an address; the first one becomes the default for shipping and billing.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown address; [`Error::LimitExceeded`]
    /// past the documented maximum.
    pub fn add_address(&mut self, address: Address) -> Result<AddressId> {
        at_most("addresses", self.addresses.len() + 1, MAX_ADDRESSES)?;
        let id = address.id;
        self.addresses.push(address);
        self.default_shipping.get_or_insert(id);
        self.default_billing.get_or_insert(id);
        Ok(id)
    }

    /// Removes an address (and clears it as a default).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown address; [`Error::LimitExceeded`]
    /// past the documented maximum.
    pub fn remove_address(&mut self, id: AddressId) -> Result<()> {
        let before = self.addresses.len();
        self.addresses.retain(|a| a.id != id);
        if self.addresses.len() == before {
            return Err(Error::not_found("address", id));
        }
        if self.default_shipping == Some(id) {
            self.default_shipping = None;
        }
        if self.default_billing == Some(id) {
            self.default_billing = None;
        }
        Ok(())
    }

    /// Chooses the default shipping address.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown address; [`Error::LimitExceeded`]
    /// past the documented maximum.
    pub fn set_default_shipping(&mut self, id: AddressId) -> Result<()> {
        self.address(id)
            .ok_or_else(|| Error::not_found("address", id))?;
        self.default_shipping = Some(id);
        Ok(())
    }

    /// Chooses the default billing address.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown address; [`Error::LimitExceeded`]
    /// past the documented maximum.
    pub fn set_default_billing(&mut self, id: AddressId) -> Result<()> {
        self.address(id)
            .ok_or_else(|| Error::not_found("address", id))?;
        self.default_billing = Some(id);
        Ok(())
    }

    /// Puts the customer in a group.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past the documented number of groups.
    pub fn add_group(&mut self, group: CustomerGroupId) -> Result<()> {
        at_most(
            "groups per customer",
            self.groups.len() + 1,
            MAX_GROUPS_PER_CUSTOMER,
        )?;
        self.groups.insert(group);
        Ok(())
    }

    /// Takes the customer out of a group.
    pub fn remove_group(&mut self, group: CustomerGroupId) {
        self.groups.remove(&group);
    }

    pub(crate) fn count_order(&mut self) {
        self.orders_placed = self.orders_placed.saturating_add(1);
    }
}

#[cfg(test)]
mod tests;
