//! The engine's account-recovery use cases: changing a password, resetting
//! a forgotten one, and verifying an email, with single-use tokens (see
//! [`crate::customer::IssuedToken`]).
//!
//! The engine issues tokens and checks them; the embedding program delivers
//! them (it owns mail and links). Nothing here tells a caller whether an
//! email has an account: [`Engine::request_password_reset`] answers `None`
//! for an unknown email after the same work, and the embedding program must
//! answer its client the same way in both cases.

use crate::actor::Actor;
use crate::customer::{
    AccountChange, Customer, CustomerKind, Email, IssuedToken, TokenHolder, TokenPurpose,
    issue_token, parse_token, token_digest, token_text,
};
use crate::error::{Error, Result};
use crate::event::CustomerChange;
use crate::id::CustomerId;

use super::Engine;

impl Engine {
    /// Changes the password of a signed-in customer, who gives the current
    /// one. Every session ends: the customer's
    /// [`sign_in_epoch`](Customer::sign_in_epoch) moves on (the embedding
    /// program opens a new session for the caller).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves is acting;
    /// [`Error::InvalidCredentials`] for a wrong current password;
    /// [`Error::Invalid`] for a new password the policy refuses;
    /// [`Error::NotFound`] for an unknown customer; [`Error::Busy`] when every
    /// hashing slot stays taken; [`Error::Conflict`] when the customer changed
    /// meanwhile; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn change_password(
        &self,
        actor: &Actor,
        customer: CustomerId,
        current: &str,
        new: &str,
    ) -> Result<Customer> {
        if *actor != Actor::Customer(customer) {
            return Err(Error::Forbidden);
        }
        let mut c = self.inner.store.customer(customer).await?;
        let hash = c
            .password_hash()
            .cloned()
            .unwrap_or_else(|| self.inner.dummy_hash.clone());
        let policy = self.inner.config.password_policy;
        let (current, new) = (current.to_owned(), new.to_owned());
        let (matches, new_hash) = self
            .hashing(move || (policy.verify(&hash, &current), policy.hash(&new)))
            .await?;
        if !matches || c.kind() != CustomerKind::Registered {
            return Err(Error::InvalidCredentials);
        }
        c.set_password(new_hash?, true);
        let c = self.inner.store.save_customer(c).await?;
        self.customer_event(c.id(), CustomerChange::PasswordChanged)
            .await;
        Ok(c)
    }

    /// Issues a password-reset token for the account with this email, for
    /// the embedding program to send there. `None` when no account has the
    /// email (or it is a guest's) — after the same work: one store command
    /// that records a token either way (under a decoy id no account has for
    /// an unknown email), so timing tells nothing; the program must answer
    /// its client the same either way. A new token replaces the account's
    /// earlier one; it works for
    /// [`EngineConfig::password_reset_ttl`](super::EngineConfig), once, and
    /// not after the password changed. Tokens for unknown emails are never
    /// usable and are pruned by maintenance once expired.
    ///
    /// # Errors
    /// [`Error::Storage`] when the store fails. A malformed email is `None`,
    /// like an unknown one.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(&self, email: &str) -> Result<Option<IssuedToken>> {
        let Ok(email) = crate::customer::Email::new(email) else {
            return Ok(None);
        };
        let expires_at = self.now() + self.inner.config.password_reset_ttl;
        let (secret, stored) = issue_token(TokenPurpose::PasswordReset, None, expires_at);
        let decoy = CustomerId::new();
        let holder = TokenHolder::Email {
            email: &email,
            decoy,
        };
        let found = self
            .inner
            .store
            .issue_account_token(holder, stored, self.now())
            .await?;
        // The token's text is made either way, too.
        let token = token_text(found.unwrap_or(decoy), &secret);
        Ok(found.map(|id| IssuedToken {
            customer_id: id,
            email,
            purpose: TokenPurpose::PasswordReset,
            token,
            expires_at,
        }))
    }

    /// Sets a new password with a reset token (no actor: the token is the
    /// proof). The token is used up; the email counts as verified (the
    /// customer read mail sent there). With `sign_out_everywhere`, every
    /// session ends ([`Customer::sign_in_epoch`] moves on).
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for a token that is malformed, unknown, used,
    /// expired or worn out by wrong guesses (one answer for all; a wrong
    /// secret counts against the account's token, which is void after
    /// [`MAX_TOKEN_ATTEMPTS`](crate::customer::MAX_TOKEN_ATTEMPTS));
    /// [`Error::Invalid`] for a password the policy refuses (the token
    /// still works); [`Error::Busy`] when every hashing slot stays taken;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        sign_out_everywhere: bool,
    ) -> Result<Customer> {
        let (id, secret) = parse_token(token)?;
        // Refuse a bad password before the token is spent.
        let policy = self.inner.config.password_policy;
        let new = new_password.to_owned();
        let hash = self.hashing(move || policy.hash(&new)).await??;
        let change = AccountChange::ResetPassword {
            hash,
            sign_out_everywhere,
        };
        let c = self.use_token(id, secret, &change).await?;
        self.customer_event(c.id(), CustomerChange::PasswordReset)
            .await;
        Ok(c)
    }

    /// Issues an email-verification token for the customer's email, for the
    /// embedding program to send there; it works for
    /// [`EngineConfig::email_verification_ttl`](super::EngineConfig), once,
    /// and replaces an earlier one.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the system
    /// is acting; [`Error::NotFound`] for an unknown customer;
    /// [`Error::Conflict`] when the customer changed meanwhile;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn request_email_verification(
        &self,
        actor: &Actor,
        customer: CustomerId,
    ) -> Result<IssuedToken> {
        let c = self.load_customer(actor, customer).await?;
        let expires_at = self.now() + self.inner.config.email_verification_ttl;
        let (secret, stored) = issue_token(TokenPurpose::EmailVerification, None, expires_at);
        self.inner
            .store
            .issue_account_token(TokenHolder::Customer(c.id()), stored, self.now())
            .await?;
        Ok(IssuedToken {
            customer_id: c.id(),
            email: c.email().clone(),
            purpose: TokenPurpose::EmailVerification,
            token: token_text(c.id(), &secret),
            expires_at,
        })
    }

    /// Marks the customer's email verified with a verification token (no
    /// actor: the token is the proof).
    ///
    /// # Errors
    /// [`Error::InvalidToken`] as for [`Engine::reset_password`];
    /// [`Error::Conflict`] when the customer changed meanwhile;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, token: &str) -> Result<Customer> {
        let (id, secret) = parse_token(token)?;
        let c = self
            .use_token(id, secret, &AccountChange::VerifyEmail)
            .await?;
        self.customer_event(c.id(), CustomerChange::EmailVerified)
            .await;
        Ok(c)
    }

    /// Changes a customer's name and phone (`None` leaves one as it is).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the
    /// system is acting; [`Error::Invalid`] or [`Error::LimitExceeded`] for a
    /// name or phone that does not validate, naming it (nothing changes);
    /// [`Error::NotFound`] for an unknown customer; [`Error::Conflict`] when
    /// concurrent changes keep winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn update_profile(
        &self,
        actor: &Actor,
        customer: CustomerId,
        name: Option<&str>,
        phone: Option<&str>,
    ) -> Result<Customer> {
        let c = self
            .modify_customer(actor, customer, |c| c.update_profile(name, phone))
            .await?;
        self.customer_event(c.id(), CustomerChange::ProfileUpdated)
            .await;
        Ok(c)
    }

    /// Sets a customer's tax id or VAT number and tax exemption
    /// certificate (`None` leaves one as it is, empty removes it): passed
    /// to the tax calculator or service with every pricing for the
    /// customer ([`TaxInput::customer`](crate::tax::TaxInput::customer)).
    /// The customer may give a tax id; only staff and the system record an
    /// exemption.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the
    /// system is acting (staff or the system for an exemption);
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for a tax id that is
    /// not letters and digits (spaces, dots and dashes are dropped) or
    /// over [`MAX_TAX_ID_LEN`](crate::customer::MAX_TAX_ID_LEN), or an
    /// exemption over
    /// [`MAX_TAX_EXEMPTION_LEN`](crate::customer::MAX_TAX_EXEMPTION_LEN)
    /// characters (nothing changes); [`Error::NotFound`];
    /// [`Error::Conflict`]; [`Error::Storage`].
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn set_tax_details(
        &self,
        actor: &Actor,
        customer: CustomerId,
        tax_id: Option<&str>,
        exemption: Option<&str>,
    ) -> Result<Customer> {
        if exemption.is_some() {
            actor.require(crate::actor::Permission::Customers)?;
        }
        let c = self
            .modify_customer(actor, customer, |c| c.set_tax_details(tax_id, exemption))
            .await?;
        self.customer_event(c.id(), CustomerChange::ProfileUpdated)
            .await;
        Ok(c)
    }

    /// Asks to change a customer's email: a token for the embedding program
    /// to send to the **new** address. The account keeps its email until
    /// the token comes back ([`Engine::confirm_email_change`]); it works for
    /// [`EngineConfig::email_verification_ttl`](super::EngineConfig), once.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the
    /// system is acting; [`Error::Invalid`] for a malformed email;
    /// [`Error::NotFound`] for an unknown customer; [`Error::Conflict`] when
    /// the customer changed meanwhile; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn request_email_change(
        &self,
        actor: &Actor,
        customer: CustomerId,
        new_email: &str,
    ) -> Result<IssuedToken> {
        let email = Email::new(new_email)?;
        let c = self.load_customer(actor, customer).await?;
        let expires_at = self.now() + self.inner.config.email_verification_ttl;
        let (secret, stored) =
            issue_token(TokenPurpose::EmailChange, Some(email.clone()), expires_at);
        self.inner
            .store
            .issue_account_token(TokenHolder::Customer(c.id()), stored, self.now())
            .await?;
        Ok(IssuedToken {
            customer_id: c.id(),
            email,
            purpose: TokenPurpose::EmailChange,
            token: token_text(c.id(), &secret),
            expires_at,
        })
    }

    /// Makes a requested email the account's, with the token sent to it
    /// (no actor: the token is the proof). The email counts as verified.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] as for [`Engine::reset_password`];
    /// [`Error::AlreadyExists`] when another customer (or a guest's record)
    /// has the email by now (nothing changes);
    /// [`Error::Conflict`] when the customer changed meanwhile;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_email_change(&self, token: &str) -> Result<Customer> {
        let (id, secret) = parse_token(token)?;
        let c = self
            .use_token(id, secret, &AccountChange::ChangeEmail)
            .await?;
        self.customer_event(c.id(), CustomerChange::EmailChanged)
            .await;
        Ok(c)
    }

    /// Uses customer `id`'s live token for `change` with `secret`: one
    /// store command that counts a wrong secret, or uses the token up and
    /// applies `change` (see [`CustomerStore::use_account_token`](crate::store::CustomerStore::use_account_token)).
    async fn use_token(
        &self,
        id: CustomerId,
        secret: &str,
        change: &AccountChange,
    ) -> Result<Customer> {
        self.inner
            .store
            .use_account_token(id, &token_digest(secret), change, self.now())
            .await
    }
}

/// Everything the shop holds about a customer, as data to hand them
/// ([`Engine::export_customer`]): serialize it as JSON.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct CustomerExport {
    /// When the export was made.
    pub exported_at: chrono::DateTime<chrono::Utc>,
    /// The customer record (notes as the caller may see them; never the
    /// password hash or tokens).
    pub customer: Customer,
    /// Every order placed with the account, newest first.
    pub orders: Vec<crate::order::Order>,
    /// Their store credit and the gift cards bought for them, with ledgers.
    pub gift_cards: Vec<crate::giftcard::GiftCard>,
}

impl Engine {
    /// Everything held about a customer, for a data-access request: the
    /// record, every order placed with the account, and their store credit
    /// and gift cards.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the
    /// system is acting; [`Error::NotFound`] for an unknown customer;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn export_customer(
        &self,
        actor: &Actor,
        customer: CustomerId,
    ) -> Result<CustomerExport> {
        let record = self.customer(actor, customer).await?;
        let mut orders = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .find_orders(
                    actor,
                    &crate::order::OrderQuery {
                        customer: Some(customer),
                        before,
                        limit: crate::store::MAX_PAGE_SIZE,
                        ..crate::order::OrderQuery::default()
                    },
                )
                .await?;
            orders.extend(page.orders);
            match page.next_before {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        let mut gift_cards = self.inner.store.gift_cards_of(customer).await?;
        // A code's hash is the shop's secret, not the customer's data.
        for card in &mut gift_cards {
            card.code_hash = None;
        }
        Ok(CustomerExport {
            exported_at: self.now(),
            customer: record,
            orders,
            gift_cards,
        })
    }

    /// Erases a customer on request: their record, their carts and the
    /// orders placed by the account or with their email lose every piece
    /// of personal data (see [`Customer::erase`],
    /// [`Order::erase_personal_data`](crate::order::Order::erase_personal_data)),
    /// while what the books must keep stays: amounts, tax, payments,
    /// refunds, dates, and the country and region of each address. The
    /// email may open a new account afterwards. Erasing again changes
    /// nothing. Recorded, with who asked, in the outbox.
    ///
    /// Kept, and why: the customer's id (orders point at it); order lines,
    /// prices, discounts, tax lines, totals, payment and refund records
    /// (bookkeeping); shipments' carriers and tracking numbers; the order
    /// history of status changes; usage counters of per-customer promotion
    /// limits, which name a buyer only by a one-way hash of the email.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown customer; [`Error::Storage`] when the
    /// store fails (and nothing changed).
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn erase_customer(
        &self,
        actor: &Actor,
        customer: CustomerId,
    ) -> Result<crate::store::Erasure> {
        actor.require(crate::actor::Permission::Customers)?;
        let erasure = self
            .inner
            .store
            .erase_customer(customer, self.now())
            .await?;
        self.audit(actor, "erase_customer", customer).await;
        self.customer_event(customer, CustomerChange::Erased).await;
        Ok(erasure)
    }
}

/// One page of [`Engine::find_customers`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CustomerPage {
    /// The customers, in id order.
    pub customers: Vec<Customer>,
    /// Pass as the query's `after` for the next page; `None` on the last.
    pub next_after: Option<CustomerId>,
}

impl Engine {
    /// Finds customers for staff: by part of the email or name (any case),
    /// by group, a page at a time in id order (keyset: pass
    /// `next_after` as the next query's `after`).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::LimitExceeded`] for a `limit` outside 1 to
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE), or a text over
    /// [`MAX_SEARCH_TEXT`](crate::customer::MAX_SEARCH_TEXT) characters;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn find_customers(
        &self,
        actor: &Actor,
        query: &crate::customer::CustomerQuery,
    ) -> Result<CustomerPage> {
        actor.require(crate::actor::Permission::Customers)?;
        crate::store::check_limit(query.limit)?;
        if let Some(text) = &query.text {
            crate::validate::at_most(
                "search text",
                text.chars().count(),
                crate::customer::MAX_SEARCH_TEXT,
            )?;
        }
        let customers = self.inner.store.find_customers(query).await?;
        let next_after = (customers.len() == query.limit)
            .then(|| customers.last().map(Customer::id))
            .flatten();
        Ok(CustomerPage {
            customers: customers.into_iter().map(|c| c.visible_to(actor)).collect(),
            next_after,
        })
    }
}
