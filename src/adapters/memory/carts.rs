//! The in-memory store: carts.

use super::*;

#[async_trait]
impl CartStore for MemoryStore {
    async fn insert_cart(&self, cart: Cart) -> Result<()> {
        let mut s = self.lock();
        if s.carts.contains_key(&cart.id()) {
            return Err(Error::AlreadyExists {
                what: "cart",
                value: cart.id().to_string(),
            });
        }
        if let Some(c) = cart.customer_id()
            && !s.customers.contains_key(&c)
        {
            return Err(Error::UnknownCustomer(c));
        }
        s.carts.insert(cart.id(), cart);
        Ok(())
    }

    async fn cart(&self, id: CartId) -> Result<Cart> {
        self.lock()
            .carts
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("cart", id))
    }

    async fn save_carts(&self, carts: Vec<Cart>, now: DateTime<Utc>) -> Result<Vec<Cart>> {
        let mut s = self.lock();
        let mut saved = Vec::with_capacity(carts.len());
        for mut cart in carts {
            let stored = s
                .carts
                .get(&cart.id())
                .ok_or_else(|| Error::not_found("cart", cart.id()))?;
            if stored.version() != cart.version() {
                return Err(Error::Conflict("cart"));
            }
            if stored.status() != CartStatus::Active {
                return Err(Error::CartNotActive { cart_id: cart.id() });
            }
            if let Some(c) = cart.customer_id()
                && !s.customers.contains_key(&c)
            {
                return Err(Error::UnknownCustomer(c));
            }
            cart.saved(now)?;
            saved.push(cart);
        }
        for cart in &saved {
            s.carts.insert(cart.id(), cart.clone());
        }
        Ok(saved)
    }

    async fn active_cart_for(
        &self,
        customer: CustomerId,
        currency: Currency,
    ) -> Result<Option<Cart>> {
        let s = self.lock();
        Ok(s.carts
            .values()
            .filter(|c| {
                c.customer_id() == Some(customer)
                    && c.currency() == currency
                    && c.status() == CartStatus::Active
            })
            .max_by_key(|c| (c.updated_at(), c.id()))
            .cloned())
    }
}
