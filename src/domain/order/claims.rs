//! Claims: units that arrived damaged, defective, wrong or never arrived,
//! settled without a return — by refunding their frozen shares, or by
//! sending replacements at no charge.
//!
//! A refund claim is a [`Return`](super::Return) with nothing coming back
//! (the units count as returned: they can never be refunded again). A
//! replacement claim appends a line for each claimed one — the same
//! variant, priced at zero, marked `replacement_for` in its metadata — to
//! the order's lines, with its stock reserved in the same save; it ships
//! as any other line. A replaced unit can no longer be returned or claimed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::{LineQuantity, Order};
use crate::actor::Actor;
pub use crate::domain::after_sale::ClaimResolution;
use crate::error::{Error, Result};
use crate::id::{ClaimId, LineId, ReturnId};
use crate::money::Money;
use crate::pricing::{PriceSource, PricedLine};

/// Most claims one order keeps.
pub const MAX_CLAIMS: usize = 100;

/// Most lines one order may hold with its replacements.
pub const MAX_ORDER_LINES: usize = 1_000;

/// What went wrong with the units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClaimReason {
    /// Never arrived.
    Missing,
    /// Arrived broken.
    Damaged,
    /// Does not work.
    Defective,
    /// Not what was ordered.
    WrongItem,
    /// Anything else (say what in the note).
    Other,
}

/// A claim on an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Claim {
    /// Its id.
    pub id: ClaimId,
    /// The idempotency key it was made under.
    pub key: String,
    /// The units claimed.
    pub items: Vec<LineQuantity>,
    /// What went wrong.
    pub reason: ClaimReason,
    /// In words (may be empty).
    pub note: String,
    /// How it is settled.
    pub resolution: ClaimResolution,
    /// The refund's return (refund claims).
    pub return_id: Option<ReturnId>,
    /// The replacement lines (replacement claims), in `items` order.
    pub replacement_lines: Vec<LineId>,
    /// Who made it.
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

impl Order {
    /// Its claims, oldest first.
    pub fn claims(&self) -> &[Claim] {
        &self.claims
    }

    /// Units of a line replaced by claims.
    pub fn replaced(&self, line: LineId) -> u32 {
        Self::count(
            self.claims
                .iter()
                .filter(|c| c.resolution == ClaimResolution::Replace)
                .flat_map(|c| &c.items),
            line,
        )
    }

    /// Checks units may be claimed: shipped, not returned, requested for
    /// return or replaced already.
    pub(crate) fn check_claimable(&self, items: &[LineQuantity]) -> Result<()> {
        self.ensure_returnable_order()?;
        crate::validate::at_most("claims on an order", self.claims.len() + 1, MAX_CLAIMS)?;
        self.check_items(items, "claim", |o, line, _| o.returnable(line))
    }

    /// Records a replacement claim: a zero-priced line per claimed line,
    /// appended to the order's lines (their ids given, in `items` order).
    pub(crate) fn replace_units(&mut self, mut claim: Claim, new_ids: &[LineId]) -> Result<()> {
        self.check_claimable(&claim.items)?;
        crate::validate::at_most(
            "order lines",
            self.pricing.lines.len() + claim.items.len(),
            MAX_ORDER_LINES,
        )?;
        if new_ids.len() != claim.items.len() {
            return Err(Error::invalid("claim", "one new line per claimed line"));
        }
        let currency = self.pricing.currency;
        let zero = Money::zero(currency);
        let mut added = Vec::with_capacity(claim.items.len());
        for (item, id) in claim.items.iter().zip(new_ids) {
            let original = self.line(item.line_id)?;
            let mut metadata = original.metadata.clone();
            metadata.insert("replacement_for".into(), item.line_id.to_string());
            added.push(PricedLine {
                line_id: *id,
                quantity: item.quantity,
                list_price: zero,
                unit_price: zero,
                price_source: PriceSource::Custom {
                    reason: format!("replacement ({:?})", claim.reason).to_lowercase(),
                },
                subtotal: zero,
                adjustments: Vec::new(),
                discount: zero,
                tax: zero,
                total: zero,
                weight_grams: original
                    .weight_grams
                    .checked_div(u64::from(original.quantity.max(1)))
                    .unwrap_or(0)
                    .saturating_mul(u64::from(item.quantity)),
                gift_of: None,
                metadata,
                name: Arc::clone(&original.name),
                ..original.clone()
            });
        }
        self.pricing.lines.extend(added);
        claim.replacement_lines = new_ids.to_vec();
        let (id, actor, at) = (claim.id, claim.actor.clone(), claim.at);
        self.claims.push(claim);
        self.record(
            at,
            &actor,
            super::OrderChangeKind::Claimed {
                claim: id,
                resolution: ClaimResolution::Replace,
            },
            "",
        );
        // A completed order has units to ship again.
        if self.status == super::OrderStatus::Completed {
            self.move_to(
                super::OrderStatus::Processing,
                at,
                &actor,
                "replacement to ship",
            )?;
        }
        Ok(())
    }

    /// Records a refund claim (its return is recorded by the caller).
    pub(crate) fn record_claim(&mut self, claim: Claim) -> Result<()> {
        crate::validate::at_most("claims on an order", self.claims.len() + 1, MAX_CLAIMS)?;
        self.record(
            claim.at,
            &claim.actor,
            super::OrderChangeKind::Claimed {
                claim: claim.id,
                resolution: claim.resolution,
            },
            "",
        );
        self.claims.push(claim);
        Ok(())
    }
}
