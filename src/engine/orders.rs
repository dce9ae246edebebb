//! The engine's order use cases: reading and finding orders, notes.

use super::*;

/// One page of [`Engine::find_orders`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrderPage {
    /// The orders, newest first.
    pub orders: Vec<Order>,
    /// Pass as `before` to get the next page; `None` on the last page.
    pub next_before: Option<OrderId>,
}

impl Engine {
    /// One order, if `actor` may see it (internal notes only for staff).
    ///
    /// # Errors
    /// [`Error::Forbidden`] when `actor` may not see the order (see the [access
    /// table](crate::actor)); [`Error::NotFound`]; [`Error::Storage`] when the
    /// store fails.
    #[tracing::instrument(skip_all, fields(order_id = %id))]
    pub async fn order(&self, actor: &Actor, id: OrderId) -> Result<Order> {
        Ok(self.load_order(actor, id).await?.visible_to(actor))
    }

    /// The whole stored order, after the access check. Changes start here,
    /// never from a filtered copy.
    pub(crate) async fn load_order(&self, actor: &Actor, id: OrderId) -> Result<Order> {
        let order = self.inner.store.order(id).await?;
        if !actor.may_use_order(order.customer_id(), order.access_token_hash.as_deref()) {
            return Err(Error::Forbidden);
        }
        Ok(order)
    }

    /// A customer's orders, newest first; pass the last id seen as `before`
    /// for the next page.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for anyone but the customer, staff or the system;
    /// [`Error::Invalid`] for a `limit` outside 1 to
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE); [`Error::Storage`] when
    /// the store fails.
    #[tracing::instrument(skip_all, fields(customer_id = %customer))]
    pub async fn orders_for_customer(
        &self,
        actor: &Actor,
        customer: CustomerId,
        before: Option<OrderId>,
        limit: usize,
    ) -> Result<Vec<Order>> {
        let query = OrderQuery {
            customer: Some(customer),
            before,
            limit,
            ..OrderQuery::default()
        };
        Ok(self.find_orders(actor, &query).await?.orders)
    }

    /// Finds orders, newest first. Staff may search every order; a customer
    /// only their own (a query for someone else's is refused); guests none.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for guests, the provider, or a customer asking for
    /// someone else's orders; [`Error::Invalid`] for a `limit` outside 1 to
    /// [`MAX_PAGE_SIZE`](crate::store::MAX_PAGE_SIZE); [`Error::Storage`] when
    /// the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn find_orders(&self, actor: &Actor, query: &OrderQuery) -> Result<OrderPage> {
        let mut query = query.clone();
        match actor {
            a if a.allows(crate::actor::Permission::Orders) => {}
            Actor::Customer(me) => match query.customer {
                Some(c) if c != *me => return Err(Error::Forbidden),
                _ => query.customer = Some(*me),
            },
            _ => return Err(Error::Forbidden),
        }
        let orders: Vec<Order> = self
            .inner
            .store
            .find_orders(&query)
            .await?
            .into_iter()
            .map(|o| o.visible_to(actor))
            .collect();
        let next_before = if orders.len() == query.limit {
            orders.last().map(Order::id)
        } else {
            None
        };
        Ok(OrderPage {
            orders,
            next_before,
        })
    }

    /// Loads an order, applies a pure change and saves it with a version
    /// check, retrying when a concurrent change won. `change` returns `None`
    /// when there is nothing to do; the order is then returned as it is.
    pub(crate) async fn modify_order(
        &self,
        actor: &Actor,
        id: OrderId,
        mut change: impl FnMut(Order) -> Result<Option<OrderChange>>,
    ) -> Result<Order> {
        for attempt in 0..self.inner.config.max_retries {
            pause_before_retry(attempt).await;
            let order = self.load_order(actor, id).await?;
            let Some(next) = change(order.clone())? else {
                return Ok(order);
            };
            match self.inner.store.save_order(next, self.now()).await {
                Err(Error::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(gave_up("order"))
    }

    /// Leaves a note on an order. Staff may write either kind; the order's
    /// customer may write notes they can see ([`Visibility::Customer`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless staff, the system, or the order's customer
    /// writing a customer-visible note; [`Error::Invalid`] or
    /// [`Error::LimitExceeded`] for the text; [`Error::NotFound`];
    /// [`Error::Storage`] when the store fails.
    #[tracing::instrument(skip_all, fields(order_id = %id))]
    pub async fn add_order_note(
        &self,
        actor: &Actor,
        id: OrderId,
        text: &str,
        visibility: Visibility,
    ) -> Result<Order> {
        let allowed = actor.allows(crate::actor::Permission::Orders)
            || (matches!(actor, Actor::Customer(_)) && visibility == Visibility::Customer);
        if !allowed {
            return Err(Error::Forbidden);
        }
        let note = Note::new(actor, text, visibility, self.now())?;
        let order = self
            .modify_order(actor, id, |mut order| {
                if order.customer_id().is_none() && !actor.allows(crate::actor::Permission::Orders)
                {
                    return Err(Error::Forbidden);
                }
                order.add_note(note.clone())?;
                Ok(Some(OrderChange::new(order)))
            })
            .await?;
        Ok(order.visible_to(actor))
    }
}
