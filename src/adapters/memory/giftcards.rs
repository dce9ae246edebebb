//! The in-memory store: giftcards.

use super::*;

#[async_trait]
impl GiftCardStore for MemoryStore {
    async fn insert_gift_card(&self, card: GiftCard) -> Result<()> {
        let mut s = self.lock();
        let taken = s.gift_cards.contains_key(&card.id())
            || card
                .code_hash()
                .is_some_and(|h| s.gift_codes.contains_key(h));
        if taken {
            return Err(Error::AlreadyExists {
                what: "gift card",
                value: card.id().to_string(),
            });
        }
        let events = EventKind::balance_changes(&card, 0)?;
        if let Some(hash) = card.code_hash() {
            s.gift_codes.insert(hash.to_owned(), card.id());
        }
        for event in events {
            s.push_event(event, card.created_at());
        }
        s.gift_cards.insert(card.id(), card);
        Ok(())
    }

    async fn gift_card(&self, id: GiftCardId) -> Result<GiftCard> {
        self.lock()
            .gift_cards
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("gift card", id))
    }

    async fn gift_card_by_code(&self, code_hash: &str) -> Result<Option<GiftCard>> {
        let s = self.lock();
        Ok(s.gift_codes
            .get(code_hash)
            .and_then(|id| s.gift_cards.get(id))
            .cloned())
    }

    async fn gift_cards_of(&self, customer: CustomerId) -> Result<Vec<GiftCard>> {
        let s = self.lock();
        let mut cards: Vec<GiftCard> = s
            .gift_cards
            .values()
            .filter(|c| c.customer_id() == Some(customer))
            .take(crate::store::MAX_PAGE_SIZE)
            .cloned()
            .collect();
        cards.sort_by_key(|c| (c.created_at(), c.id()));
        Ok(cards)
    }

    async fn post_gift_card_entry(
        &self,
        id: GiftCardId,
        entry: NewEntry,
        now: DateTime<Utc>,
    ) -> Result<GiftCard> {
        let mut s = self.lock();
        let card = s
            .gift_cards
            .get_mut(&id)
            .ok_or_else(|| Error::not_found("gift card", id))?;
        // Posted on a copy, so a refusal changes nothing.
        let mut next = card.clone();
        let before = next.entries().len();
        if !next.post(entry, now)? {
            return Ok(next);
        }
        let events = EventKind::balance_changes(&next, before)?;
        *card = next.clone();
        for event in events {
            s.push_event(event, now);
        }
        Ok(next)
    }

    async fn gift_card_entries_for(
        &self,
        reference: &str,
    ) -> Result<Vec<(GiftCardId, LedgerEntry)>> {
        let s = self.lock();
        Ok(s.gift_cards
            .values()
            .flat_map(|c| {
                c.entries()
                    .iter()
                    .filter(|e| e.reference == reference)
                    .map(|e| (c.id(), e.clone()))
            })
            .collect())
    }
}
