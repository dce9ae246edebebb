//! The in-memory store: promotions.

use super::*;

#[async_trait]
impl PromotionStore for MemoryStore {
    async fn save_promotion(&self, promotion: Promotion) -> Result<()> {
        let mut s = self.lock();
        s.promotions.insert(promotion.id, promotion);
        s.pricing_version += 1;
        Ok(())
    }

    async fn promotion(&self, id: PromotionId) -> Result<Promotion> {
        self.lock()
            .promotions
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("promotion", id))
    }

    async fn promotions(&self) -> Result<Vec<Promotion>> {
        Ok(self.lock().promotions.values().cloned().collect())
    }

    async fn save_price_list(&self, list: PriceList) -> Result<()> {
        let mut s = self.lock();
        s.price_lists.insert(list.id, list);
        s.pricing_version += 1;
        Ok(())
    }

    async fn price_lists(&self) -> Result<Vec<PriceList>> {
        Ok(self.lock().price_lists.values().cloned().collect())
    }

    async fn insert_coupons(&self, coupons: &[Coupon]) -> Result<()> {
        let mut s = self.lock();
        let mut fresh = HashSet::with_capacity(coupons.len());
        for c in coupons {
            c.validate()?;
            if let Some(id) = c.promotions().find(|id| !s.promotions.contains_key(id)) {
                return Err(Error::not_found("promotion", id));
            }
            if s.coupons.contains_key(&c.code) || !fresh.insert(c.code.as_str()) {
                return Err(Error::AlreadyExists {
                    what: "coupon code",
                    value: c.code.clone(),
                });
            }
        }
        for c in coupons {
            s.coupons.insert(c.code.clone(), c.clone());
        }
        Ok(())
    }

    async fn pricing_inputs(
        &self,
        variants: &[VariantId],
        codes: &[String],
    ) -> Result<PricingInputs> {
        let s = self.lock();
        let sources = variants
            .iter()
            .filter_map(|id| s.entry_source(*id))
            .collect();
        let coupons = codes
            .iter()
            .filter_map(|c| s.coupons.get(c).cloned())
            .collect();
        let version = s.pricing_version;
        drop(s);
        Ok(PricingInputs {
            entries: build_entries(sources),
            coupons,
            version,
        })
    }

    async fn cart_for_pricing(
        &self,
        cart_id: CartId,
        extra: &[VariantId],
    ) -> Result<(Cart, PricingInputs)> {
        // One lock: the cart and what pricing it reads are one consistent view.
        let s = self.lock();
        let cart = s
            .carts
            .get(&cart_id)
            .cloned()
            .ok_or_else(|| Error::not_found("cart", cart_id))?;
        let sources = cart
            .lines()
            .iter()
            .map(|l| l.variant_id)
            .chain(extra.iter().copied())
            .filter_map(|id| s.entry_source(id))
            .collect();
        let coupons = cart
            .coupon_codes()
            .iter()
            .filter_map(|c| s.coupons.get(c).cloned())
            .collect();
        let version = s.pricing_version;
        drop(s);
        Ok((
            cart,
            PricingInputs {
                entries: build_entries(sources),
                coupons,
                version,
            },
        ))
    }
}
