//! The in-memory store: customers.

use super::*;

#[async_trait]
impl CustomerStore for MemoryStore {
    async fn insert_customer(&self, customer: Customer) -> Result<()> {
        let mut s = self.lock();
        if s.emails.contains_key(customer.email()) {
            return Err(Error::AlreadyExists {
                what: "email",
                value: customer.email().to_string(),
            });
        }
        if s.customers.contains_key(&customer.id()) {
            return Err(Error::AlreadyExists {
                what: "customer",
                value: customer.id().to_string(),
            });
        }
        s.emails.insert(customer.email().clone(), customer.id());
        s.customers.insert(customer.id(), customer);
        Ok(())
    }

    async fn save_customer(&self, mut customer: Customer) -> Result<Customer> {
        let mut s = self.lock();
        let stored = s
            .customers
            .get(&customer.id())
            .ok_or_else(|| Error::not_found("customer", customer.id()))?;
        if stored.version() != customer.version() {
            return Err(Error::Conflict("customer"));
        }
        let old_email = stored.email().clone();
        if old_email != *customer.email() {
            // A new email must be free; the index follows it.
            if s.emails.contains_key(customer.email()) {
                return Err(Error::AlreadyExists {
                    what: "email",
                    value: customer.email().to_string(),
                });
            }
            s.emails.remove(&old_email);
            s.emails.insert(customer.email().clone(), customer.id());
        }
        customer.saved()?;
        s.customers.insert(customer.id(), customer.clone());
        Ok(customer)
    }

    async fn issue_account_token(
        &self,
        holder: TokenHolder<'_>,
        token: AccountToken,
        _now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>> {
        let mut s = self.lock();
        let (found, decoy) = match holder {
            TokenHolder::Email { email, decoy } => (
                s.emails
                    .get(email)
                    .and_then(|id| s.customers.get(id))
                    .filter(|c| c.kind() == crate::customer::CustomerKind::Registered),
                decoy,
            ),
            TokenHolder::Customer(id) => (
                Some(
                    s.customers
                        .get(&id)
                        .ok_or_else(|| Error::not_found("customer", id))?,
                ),
                id,
            ),
        };
        // The same work whether an account has the email or not: a mark
        // computed, a token stored.
        let id = found.map(Customer::id);
        let phc = found
            .and_then(Customer::password_hash)
            .map_or(crate::customer::DECOY_PHC, |h| h.as_phc());
        let mark = Some(crate::customer::token_digest(phc));
        let purpose = token.purpose();
        s.account_tokens
            .insert((id.unwrap_or(decoy), purpose), token.issued_under(mark));
        Ok(id)
    }

    async fn use_account_token(
        &self,
        customer: CustomerId,
        presented: &str,
        change: &AccountChange,
        now: DateTime<Utc>,
    ) -> Result<Customer> {
        let mut s = self.lock();
        let slot = (customer, change.purpose());
        let (Some(stored), Some(token)) = (s.customers.get(&customer), s.account_tokens.get(&slot))
        else {
            return Err(Error::InvalidToken);
        };
        let mut token = token.clone();
        match token.check(stored, presented, now) {
            crate::customer::TokenCheck::Accepted => {}
            crate::customer::TokenCheck::Wrong => {
                s.account_tokens.insert(slot, token);
                return Err(Error::InvalidToken);
            }
            _ => return Err(Error::InvalidToken),
        }
        let mut next = stored.clone();
        change.apply(&mut next, &token)?;
        let old_email = stored.email().clone();
        if old_email != *next.email() && s.emails.contains_key(next.email()) {
            return Err(Error::AlreadyExists {
                what: "email",
                value: next.email().to_string(),
            });
        }
        next.saved()?;
        s.emails.remove(&old_email);
        s.emails.insert(next.email().clone(), customer);
        s.customers.insert(customer, next.clone());
        s.account_tokens.remove(&slot);
        Ok(next)
    }

    async fn prune_account_tokens(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut s = self.lock();
        let before = s.account_tokens.len();
        s.account_tokens.retain(|_, t| t.expires_at() > now);
        Ok((before - s.account_tokens.len()) as u64)
    }

    async fn customer(&self, id: CustomerId) -> Result<Customer> {
        self.lock()
            .customers
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("customer", id))
    }

    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>> {
        let s = self.lock();
        Ok(s.emails
            .get(email)
            .and_then(|id| s.customers.get(id))
            .cloned())
    }

    async fn insert_group(&self, group: CustomerGroup) -> Result<()> {
        let mut s = self.lock();
        if s.groups
            .values()
            .any(|g| g.name().eq_ignore_ascii_case(group.name()))
        {
            return Err(Error::AlreadyExists {
                what: "customer group",
                value: group.name().to_owned(),
            });
        }
        s.groups.insert(group.id(), group);
        Ok(())
    }

    async fn groups(&self) -> Result<Vec<CustomerGroup>> {
        Ok(self.lock().groups.values().cloned().collect())
    }

    async fn find_customers(
        &self,
        query: &crate::customer::CustomerQuery,
    ) -> Result<Vec<Customer>> {
        let s = self.lock();
        let mut found: Vec<&Customer> = s.customers.values().filter(|c| query.matches(c)).collect();
        found.sort_unstable_by_key(|c| c.id());
        Ok(found.into_iter().take(query.limit).cloned().collect())
    }

    async fn erase_customer(
        &self,
        id: CustomerId,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Erasure> {
        let mut s = self.lock();
        let mut customer = s
            .customers
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("customer", id))?;
        if customer.erased() {
            return Ok(crate::store::Erasure {
                customer,
                carts: 0,
                orders: 0,
            });
        }
        let old = customer.email().clone();
        let erased = crate::customer::erased_email(id);
        // Work on copies; nothing is written until every step succeeded.
        customer.erase();
        customer.saved()?;
        let mut carts = Vec::new();
        for cart in s.carts.values() {
            if cart.customer_id() == Some(id) || cart.email() == Some(&old) {
                let mut c = cart.clone();
                c.erase_personal_data();
                c.saved(now)?;
                carts.push(c);
            }
        }
        let mut orders = Vec::new();
        for order in s.orders.values() {
            if order.customer_id() == Some(id) || order.email() == Some(&old) {
                let mut o = order.clone();
                o.erase_personal_data(&erased);
                o.saved()?;
                orders.push(o);
            }
        }
        // Tokens (an email change's carries the new address).
        s.account_tokens.retain(|(holder, _), _| *holder != id);
        // A payment still waiting keeps the order it will place.
        for record in s.checkouts.values_mut() {
            if let Some(awaiting) = record.awaiting.as_deref_mut()
                && awaiting.concerns(id, &old)
            {
                awaiting.erase_personal_data(&erased);
            }
        }
        let erased_carts: HashSet<CartId> = carts.iter().map(Cart::id).collect();
        for session in s.agent_sessions.values_mut() {
            if session.concerns(&old) || erased_carts.contains(&session.cart_id) {
                session.erase_personal_data();
            }
        }
        let (cart_count, order_count) = (carts.len() as u64, orders.len() as u64);
        for c in carts {
            s.carts.insert(c.id(), c);
        }
        for o in orders {
            s.orders.insert(o.id(), o);
        }
        s.emails.remove(&old);
        s.emails.insert(erased, id);
        s.customers.insert(id, customer.clone());
        Ok(crate::store::Erasure {
            customer,
            carts: cart_count,
            orders: order_count,
        })
    }
}
