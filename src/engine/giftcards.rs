//! Gift cards and store credit: issuing them, checking a balance, and
//! reading a card's ledger. Spending them happens at checkout
//! ([`CheckoutRequest::gift_card`](crate::CheckoutRequest::gift_card),
//! [`CheckoutRequest::store_credit`](crate::CheckoutRequest::store_credit));
//! refunds credit them back ([`crate::checkout`] documents the order).
//!
//! Codes are secrets: the engine keeps their SHA-256 hash and last four
//! characters, shows a generated code once, and counts wrong guesses: after
//! [`MAX_CODE_GUESSES`] misses within [`GUESS_WINDOW_SECS`] from one source
//! (a customer, a cart; [`MAX_ANONYMOUS_GUESSES`] for all guests' balance
//! checks together) it answers [`Error::TooManyAttempts`]. Looking a code up
//! by its hash compares hashes, never the code, so the time a lookup takes
//! tells nothing about the code. The count is kept per engine instance; with
//! 80-bit codes guessing is hopeless anyway, and the embedding program
//! should also limit requests per client address.
//!
//! Does not know: SQL; cards live behind the [`GiftCardStore`](crate::store::GiftCardStore) port.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::actor::Actor;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::giftcard::{BalanceKind, EntryKind, GiftCard, GiftCardId, NewEntry};
use crate::id::{CustomerId, IdempotencyKey};
use crate::money::{Currency, Money};

/// Wrong code guesses allowed from one source within [`GUESS_WINDOW_SECS`].
pub const MAX_CODE_GUESSES: u32 = 10;
/// Wrong guesses allowed from all anonymous balance checks together (guests
/// without a cart) within [`GUESS_WINDOW_SECS`]: higher, so one guesser
/// cannot lock every guest out; the embedding program should also limit
/// requests per client address.
pub const MAX_ANONYMOUS_GUESSES: u32 = 1_000;
/// The window wrong guesses are counted in, in seconds.
pub const GUESS_WINDOW_SECS: i64 = 600;
/// Most sources the guess counter remembers; the oldest windows go first.
const MAX_GUESS_SOURCES: usize = 100_000;

/// Counts wrong guesses per source.
#[derive(Default)]
pub(crate) struct GuessLimiter {
    sources: Mutex<HashMap<String, (DateTime<Utc>, u32)>>,
}

impl GuessLimiter {
    /// Refuses a source that guessed wrong too often lately.
    fn check(&self, source: &str, now: DateTime<Utc>) -> Result<()> {
        let sources = self.sources.lock();
        let max = if source == ANONYMOUS {
            MAX_ANONYMOUS_GUESSES
        } else {
            MAX_CODE_GUESSES
        };
        match sources.get(source) {
            Some((since, misses))
                if *misses >= max
                    && now - *since < chrono::Duration::seconds(GUESS_WINDOW_SECS) =>
            {
                Err(Error::TooManyAttempts {
                    what: "gift card codes",
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong guess.
    fn miss(&self, source: &str, now: DateTime<Utc>) {
        let mut sources = self.sources.lock();
        let window = chrono::Duration::seconds(GUESS_WINDOW_SECS);
        if sources.len() >= MAX_GUESS_SOURCES {
            sources.retain(|_, (since, _)| now - *since < window);
        }
        if sources.len() >= MAX_GUESS_SOURCES {
            sources.clear();
        }
        let entry = sources.entry(source.to_owned()).or_insert((now, 0));
        if now - entry.0 >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

/// The source of every guest's balance check without a cart.
const ANONYMOUS: &str = "guests";

/// The guess-counting source for `actor` (`None`: not counted).
pub(crate) fn guess_source(actor: &Actor, cart: Option<crate::id::CartId>) -> Option<String> {
    match actor {
        Actor::Staff(_) | Actor::StaffMember(_) | Actor::System => None,
        Actor::Customer(id) => Some(format!("customer:{id}")),
        _ => Some(match cart {
            Some(cart) => format!("cart:{cart}"),
            None => ANONYMOUS.to_owned(),
        }),
    }
}

/// A gift card to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewGiftCard {
    /// Its value (positive, exact in minor units).
    pub amount: Money,
    /// When it stops being spendable, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// The customer it was bought for, if any (anyone with the code may spend it).
    pub customer: Option<CustomerId>,
    /// A code of one's own (8 to 64 letters and digits); `None`: a
    /// generated one (16 characters, 80 random bits).
    pub code: Option<String>,
}

impl NewGiftCard {
    /// A card worth `amount`, with a generated code and no expiry.
    pub fn new(amount: Money) -> Self {
        Self {
            amount,
            expires_at: None,
            customer: None,
            code: None,
        }
    }
}

crate::domain::setters!(NewGiftCard {
    amount: Money,
} into {
    expires_at: Option<DateTime<Utc>>,
    customer: Option<CustomerId>,
    code: Option<String>,
});

/// A card just issued, with its code: the only time the code is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedGiftCard {
    /// The card.
    pub card: GiftCard,
    /// Its code, to hand to the buyer.
    pub code: String,
}

/// What a balance check answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GiftCardBalance {
    /// What is left.
    pub balance: Money,
    /// The code's last four characters.
    pub last4: String,
    /// When it stops being spendable, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether it can be spent now.
    pub spendable: bool,
}

/// The namespace of ids derived from idempotency keys.
const ISSUE_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5c1e_6f1a_7b2d_4e3f_9a8b_0c1d_2e3f_4a5b);

impl Engine {
    /// Issues a gift card (staff and the system) and returns it with its
    /// code — shown this once; only its hash is kept. The same `key` never
    /// issues twice: a retry is [`Error::AlreadyExists`] (disable nothing;
    /// look the card up by the id the key gives).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Invalid`] for an amount that is not
    /// positive and exact, an expiry in the past or a malformed code;
    /// [`Error::AlreadyExists`] for a key used before or a code taken.
    #[tracing::instrument(name = "issue_gift_card", skip_all)]
    pub async fn issue_gift_card(
        &self,
        actor: &Actor,
        new: NewGiftCard,
        key: &IdempotencyKey,
    ) -> Result<IssuedGiftCard> {
        actor.require(crate::actor::Permission::GiftCards)?;
        let now = self.now();
        let code = new.code.unwrap_or_else(crate::giftcard::generate_code);
        let mut card = GiftCard::new(
            BalanceKind::GiftCard,
            Some(&code),
            new.amount.currency(),
            new.customer,
            new.expires_at,
            now,
        )?;
        card.id = GiftCardId::from_uuid(uuid::Uuid::new_v5(
            &ISSUE_NAMESPACE,
            format!("gift card:{key}").as_bytes(),
        ));
        card.post(
            NewEntry::new(
                format!("issue:{key}"),
                EntryKind::Issue,
                new.amount,
                format!("issue:{key}"),
                actor.clone(),
            ),
            now,
        )?;
        self.inner.store.insert_gift_card(card.clone()).await?;
        Ok(IssuedGiftCard { card, code })
    }

    /// Grants `amount` of store credit to `customer` (staff and the
    /// system), for `reason`; the same `key` grants once. The customer's
    /// store credit in that currency is one account, created on first use.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::UnknownCustomer`]; [`Error::Invalid`]
    /// for an amount that is not positive and exact or a reason over
    /// [`MAX_ENTRY_TEXT_LEN`](crate::giftcard::MAX_ENTRY_TEXT_LEN) characters.
    #[tracing::instrument(name = "grant_store_credit", skip_all, fields(customer_id = %customer))]
    pub async fn grant_store_credit(
        &self,
        actor: &Actor,
        customer: CustomerId,
        amount: Money,
        reason: &str,
        key: &IdempotencyKey,
    ) -> Result<GiftCard> {
        actor.require(crate::actor::Permission::GiftCards)?;
        let reason = if reason.trim().is_empty() {
            format!("credit:{key}")
        } else {
            reason.to_owned()
        };
        let entry = NewEntry::new(
            format!("credit:{key}"),
            EntryKind::Issue,
            amount,
            reason,
            actor.clone(),
        );
        // Everything is checked before the account is created: a refused
        // grant writes nothing.
        entry.check()?;
        self.inner
            .store
            .customer(customer)
            .await
            .map_err(|_| Error::UnknownCustomer(customer))?;
        let account = self
            .store_credit_account(customer, amount.currency())
            .await?;
        self.inner
            .store
            .post_gift_card_entry(account.id(), entry, self.now())
            .await
    }

    /// The customer's store-credit account in `currency`, created if none
    /// (its id derives from both, so concurrent creations make one).
    async fn store_credit_account(
        &self,
        customer: CustomerId,
        currency: Currency,
    ) -> Result<GiftCard> {
        let id = GiftCardId::from_uuid(uuid::Uuid::new_v5(
            &ISSUE_NAMESPACE,
            format!("store credit:{customer}:{}", currency.code()).as_bytes(),
        ));
        match self.inner.store.gift_card(id).await {
            Ok(card) => return Ok(card),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let mut card = GiftCard::new(
            BalanceKind::StoreCredit,
            None,
            currency,
            Some(customer),
            None,
            self.now(),
        )?;
        card.id = id;
        match self.inner.store.insert_gift_card(card.clone()).await {
            Ok(()) => Ok(card),
            Err(Error::AlreadyExists { .. }) => self.inner.store.gift_card(id).await,
            Err(e) => Err(e),
        }
    }

    /// A customer's store credit in `currency` (the customer, staff, the system).
    ///
    /// # Errors
    /// [`Error::Forbidden`].
    pub async fn store_credit(
        &self,
        actor: &Actor,
        customer: CustomerId,
        currency: Currency,
    ) -> Result<Money> {
        let own = matches!(actor, Actor::Customer(c) if *c == customer);
        if !own && !actor.allows(crate::actor::Permission::GiftCards) {
            return Err(Error::Forbidden);
        }
        let cards = self.inner.store.gift_cards_of(customer).await?;
        let now = self.now();
        let held = cards
            .iter()
            .filter(|c| {
                c.kind() == BalanceKind::StoreCredit
                    && c.currency() == currency
                    && c.spendable_at(now)
            })
            .map(GiftCard::balance)
            .collect::<Vec<_>>();
        Ok(Money::sum(currency, held.iter())?)
    }

    /// Checks a gift card's balance by its code (anyone but a provider).
    /// Wrong codes are counted per source (see the [module docs](self)).
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a provider; [`Error::TooManyAttempts`];
    /// [`Error::NotFound`] (naming no code) for a code that is not a card's;
    /// [`Error::Invalid`] for a malformed code.
    pub async fn gift_card_balance(&self, actor: &Actor, code: &str) -> Result<GiftCardBalance> {
        if matches!(actor, Actor::Provider(_)) {
            return Err(Error::Forbidden);
        }
        let card = self.find_gift_card(actor, None, code).await?;
        let now = self.now();
        Ok(GiftCardBalance {
            balance: card.balance(),
            last4: card.last4().to_owned(),
            expires_at: card.expires_at(),
            spendable: card.spendable_at(now),
        })
    }

    /// The card with `code`, counting a miss against the actor's source.
    pub(crate) async fn find_gift_card(
        &self,
        actor: &Actor,
        cart: Option<crate::id::CartId>,
        code: &str,
    ) -> Result<GiftCard> {
        let source = guess_source(actor, cart);
        let now = self.now();
        if let Some(source) = &source {
            self.inner.guesses.check(source, now)?;
        }
        let normalized = crate::giftcard::normalize_code(code);
        let found = match &normalized {
            Ok(n) => {
                self.inner
                    .store
                    .gift_card_by_code(&crate::giftcard::hash_code(n))
                    .await?
            }
            Err(_) => None,
        };
        match found {
            Some(card) if card.kind() == BalanceKind::GiftCard => Ok(card),
            _ => {
                if let Some(source) = &source {
                    self.inner.guesses.miss(source, now);
                }
                normalized?;
                Err(Error::not_found("gift card", "with that code"))
            }
        }
    }

    /// A card with its whole ledger (staff and the system; the customer
    /// for their own cards and store credit).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`].
    pub async fn gift_card(&self, actor: &Actor, id: GiftCardId) -> Result<GiftCard> {
        let card = self.inner.store.gift_card(id).await?;
        let own = matches!(actor, Actor::Customer(c) if Some(*c) == card.customer_id());
        if !own && !actor.allows(crate::actor::Permission::GiftCards) {
            return Err(Error::Forbidden);
        }
        Ok(card)
    }
}
