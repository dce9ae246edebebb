//! The engine's customer use cases: signing up, logging in, guests,
//! profiles, address books, notes and groups (account recovery is in
//! `accounts`).

use super::*;

/// A new account's details.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewCustomer {
    /// Email (normalized; must be unique among accounts).
    pub email: String,
    /// Plain password; hashed with argon2id and then forgotten.
    pub password: String,
    /// Display name.
    pub name: String,
}

impl NewCustomer {
    /// An account for `email` with `password`, with no name.
    pub fn new(email: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            password: password.into(),
            name: String::new(),
        }
    }
}

crate::domain::setters!(NewCustomer {} into {
    email: String,
    password: String,
    name: String,
});

impl Engine {
    /// Opens an account. If a guest with this email exists, the guest becomes
    /// the account (same id, same order history).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an email or password the policy refuses;
    /// [`Error::AlreadyExists`] when the email has an account; [`Error::Busy`]
    /// when every hashing slot stays taken; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, input: NewCustomer) -> Result<Customer> {
        let email = Email::new(&input.email)?;
        let policy = self.inner.config.password_policy;
        let password = input.password;
        let hash = self.hashing(move || policy.hash(&password)).await??;
        let customer = match self.inner.store.customer_by_email(&email).await? {
            Some(mut existing) if existing.kind() == CustomerKind::Guest => {
                existing.register(&input.name, hash)?;
                self.inner.store.save_customer(existing).await?
            }
            Some(_) => {
                return Err(Error::AlreadyExists {
                    what: "email",
                    value: email.to_string(),
                });
            }
            None => {
                let customer = Customer::registered(email, &input.name, hash, self.now())?;
                self.inner.store.insert_customer(customer.clone()).await?;
                customer
            }
        };
        self.customer_event(customer.id(), crate::event::CustomerChange::Registered)
            .await;
        Ok(customer)
    }

    /// Checks an email and password. Unknown emails, guests and wrong
    /// passwords all get [`Error::InvalidCredentials`] after the same work.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] for an unknown email, a guest or a wrong
    /// password (after the same work); [`Error::Busy`] when every hashing slot
    /// stays taken; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, email: &str, password: &str) -> Result<Customer> {
        let customer = match Email::new(email) {
            Ok(email) => self.inner.store.customer_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = customer
            .as_ref()
            .and_then(|c| c.password_hash())
            .cloned()
            .unwrap_or_else(|| self.inner.dummy_hash.clone());
        let policy = self.inner.config.password_policy;
        let password = password.to_owned();
        let matches = self
            .hashing(move || policy.verify(&hash, &password))
            .await?;
        match customer {
            Some(c) if matches && c.kind() == CustomerKind::Registered => Ok(c),
            _ => Err(Error::InvalidCredentials),
        }
    }

    /// The guest record for an email, created if needed. Fails if the email
    /// belongs to an account (the customer should log in).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed email; [`Error::AlreadyExists`] when it
    /// belongs to an account; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn guest(&self, email: &str) -> Result<Customer> {
        let email = Email::new(email)?;
        match self.inner.store.customer_by_email(&email).await? {
            Some(c) if c.kind() == CustomerKind::Guest => Ok(c),
            Some(_) => Err(Error::AlreadyExists {
                what: "email",
                value: email.to_string(),
            }),
            None => {
                let c = Customer::guest(email, self.now());
                self.inner.store.insert_customer(c.clone()).await?;
                Ok(c)
            }
        }
    }

    /// One customer, as seen by `actor` (themselves or staff; internal notes
    /// only for staff).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the system
    /// is acting; [`Error::NotFound`] for an unknown customer or address;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    pub async fn customer(&self, actor: &Actor, id: CustomerId) -> Result<Customer> {
        Ok(self.load_customer(actor, id).await?.visible_to(actor))
    }

    /// The whole stored customer, after the access check. Changes start here,
    /// never from a filtered copy.
    pub(crate) async fn load_customer(&self, actor: &Actor, id: CustomerId) -> Result<Customer> {
        if !actor.may_use_customer(id) {
            return Err(Error::Forbidden);
        }
        self.inner.store.customer(id).await
    }

    /// Leaves a note on a customer (staff only).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Forbidden`] unless the customer themselves, staff or the system
    /// is acting; [`Error::NotFound`] for an unknown customer or address;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    pub async fn add_customer_note(
        &self,
        actor: &Actor,
        id: CustomerId,
        text: &str,
        visibility: Visibility,
    ) -> Result<Customer> {
        if !actor.allows(crate::actor::Permission::Customers) {
            return Err(Error::Forbidden);
        }
        let note = Note::new(actor, text, visibility, self.now())?;
        self.modify_customer(actor, id, |c| c.add_note(note.clone()))
            .await
    }

    pub(crate) async fn modify_customer(
        &self,
        actor: &Actor,
        id: CustomerId,
        f: impl Fn(&mut Customer) -> Result<()>,
    ) -> Result<Customer> {
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let mut c = self.load_customer(actor, id).await?;
            f(&mut c)?;
            match self.inner.store.save_customer(c).await {
                Err(Error::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(gave_up("customer"))
    }

    /// Adds an address to a customer's book; returns the customer and the new address's id.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the system
    /// is acting; [`Error::NotFound`] for an unknown customer or address;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    pub async fn add_address(
        &self,
        actor: &Actor,
        id: CustomerId,
        address: NewAddress,
    ) -> Result<(Customer, AddressId)> {
        let address = Address::new(address)?;
        let address_id = address.id;
        let c = self
            .modify_customer(actor, id, |c| c.add_address(address.clone()).map(|_| ()))
            .await?;
        Ok((c, address_id))
    }

    /// Removes an address from a customer's book.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the customer themselves, staff or the system
    /// is acting; [`Error::NotFound`] for an unknown customer or address;
    /// [`Error::Invalid`] or [`Error::LimitExceeded`] for bad input;
    /// [`Error::Conflict`] when concurrent changes keep winning;
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    pub async fn remove_address(
        &self,
        actor: &Actor,
        id: CustomerId,
        address: AddressId,
    ) -> Result<Customer> {
        self.modify_customer(actor, id, |c| c.remove_address(address))
            .await
    }

    /// Every customer group.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without the customers permission;
    /// [`Error::Storage`] when the store fails.
    pub async fn customer_groups(
        &self,
        actor: &Actor,
    ) -> Result<Vec<crate::customer::CustomerGroup>> {
        actor.require(crate::actor::Permission::Customers)?;
        self.inner.store.groups().await
    }

    /// Creates a customer group.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::Invalid`] for a bad name; [`Error::Storage`] when the store
    /// fails.
    #[tracing::instrument(skip_all)]
    pub async fn create_group(&self, actor: &Actor, name: &str) -> Result<CustomerGroup> {
        actor.require(crate::actor::Permission::Customers)?;
        let group = CustomerGroup::new(name)?;
        self.inner.store.insert_group(group.clone()).await?;
        self.audit(actor, "create_group", group.id()).await;
        Ok(group)
    }

    /// Puts a customer in a group (staff only).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown customer or group; [`Error::Storage`]
    /// when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn add_to_group(
        &self,
        actor: &Actor,
        customer: CustomerId,
        group: CustomerGroupId,
    ) -> Result<Customer> {
        if !actor.allows(crate::actor::Permission::Customers) {
            return Err(Error::Forbidden);
        }
        if !self
            .inner
            .store
            .groups()
            .await?
            .iter()
            .any(|g| g.id() == group)
        {
            return Err(Error::not_found("customer group", group));
        }
        let c = self
            .modify_customer(actor, customer, |c| c.add_group(group))
            .await?;
        self.audit(actor, "add_to_group", format!("{customer} to {group}"))
            .await;
        Ok(c)
    }

    /// Takes a customer out of a group (staff). Not being in it is fine.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff or the system is acting;
    /// [`Error::NotFound`] for an unknown customer; [`Error::Conflict`] when
    /// concurrent changes keep winning; [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn remove_from_group(
        &self,
        actor: &Actor,
        customer: CustomerId,
        group: CustomerGroupId,
    ) -> Result<Customer> {
        actor.require(crate::actor::Permission::Customers)?;
        let c = self
            .modify_customer(actor, customer, |c| {
                c.remove_group(group);
                Ok(())
            })
            .await?;
        self.audit(
            actor,
            "remove_from_group",
            format!("{customer} from {group}"),
        )
        .await;
        Ok(c)
    }
}
