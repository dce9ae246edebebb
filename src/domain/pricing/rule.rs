//! Custom pricing rules: conditions and actions written in the user's code.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::catalog::CatalogEntry;
use crate::error::{Error, Result};
use crate::id::{CustomerGroupId, CustomerId, LineId};
use crate::money::{Currency, Money};

use super::explain::Comparison;

/// What pricing knows about the customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CustomerFacts {
    /// The account, if signed in.
    pub id: Option<CustomerId>,
    /// The email, if known (counts a guest's per-customer uses).
    pub email: Option<String>,
    /// Its groups.
    pub groups: BTreeSet<CustomerGroupId>,
    /// Orders it placed before this one.
    pub orders_placed: u32,
}

crate::domain::setters!(CustomerFacts {
    groups: BTreeSet<CustomerGroupId>,
    orders_placed: u32,
} into {
    id: Option<CustomerId>,
    email: Option<String>,
});

/// A line as a rule sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuleLine<'a> {
    /// The line.
    pub line_id: LineId,
    /// Its catalog entry (product, categories, tags, variant).
    pub entry: &'a CatalogEntry,
    /// Units.
    pub quantity: u32,
    /// The unit price after price lists.
    pub unit_price: Money,
    /// What is left of the line after the promotions applied before this one.
    pub remaining: Money,
}

/// The cart as a rule sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuleCart<'a> {
    /// The cart's currency.
    pub currency: Currency,
    /// The lines.
    pub lines: Vec<RuleLine<'a>>,
    /// Merchandise subtotal after price lists, before promotions.
    pub subtotal: Money,
    /// The chosen shipping method.
    pub shipping_method: Option<&'a str>,
    /// The customer.
    pub customer: &'a CustomerFacts,
    /// The pricing instant.
    pub now: DateTime<Utc>,
}

/// A rule's verdict as a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The condition holds.
    Met,
    /// It does not, and this is what was compared.
    NotMet(Comparison),
}

/// A condition or action implemented in code, registered by name and given
/// its settings (serializable, stored with the promotion) at each call.
///
/// Rules are called inside the pure pricing core: they must be pure
/// functions of their input (no I/O, no clock, no randomness).
pub trait PricingRule: Send + Sync {
    /// The name promotions use to refer to it.
    fn name(&self) -> &str;

    /// Checks settings when a promotion using the rule is compiled.
    ///
    /// # Errors
    /// [`Error::Invalid`] (or any error) for settings the rule cannot use;
    /// saving a promotion with them is refused.
    fn validate(&self, settings: &serde_json::Value) -> Result<()> {
        let _ = settings;
        Ok(())
    }

    /// As a condition: whether the cart qualifies.
    fn condition(&self, settings: &serde_json::Value, cart: &RuleCart<'_>) -> Verdict {
        let _ = (settings, cart);
        Verdict::NotMet(Comparison::new(
            self.name(),
            super::promotion::Op::Eq,
            "a condition",
            "an action-only rule",
        ))
    }

    /// As an action: the amount to take off each line. Pricing caps every
    /// amount at what is left of the line; amounts must be in the cart's
    /// currency and exact in minor units.
    ///
    /// # Errors
    /// any error the rule fails with; pricing reports the promotion as
    /// [`Rejection::Unevaluable`](crate::pricing::Rejection::Unevaluable) and
    /// goes on.
    fn action(
        &self,
        settings: &serde_json::Value,
        cart: &RuleCart<'_>,
    ) -> Result<Vec<(LineId, Money)>> {
        let _ = (settings, cart);
        Ok(Vec::new())
    }
}

/// Registered rules, by name.
#[derive(Clone, Default)]
pub struct RuleRegistry {
    rules: HashMap<String, Arc<dyn PricingRule>>,
}

impl fmt::Debug for RuleRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.rules.keys().collect();
        names.sort();
        f.debug_struct("RuleRegistry")
            .field("rules", &names)
            .finish()
    }
}

impl RuleRegistry {
    /// No rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `rule` under its name; a second rule with the same name is an error.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] for a second rule with the same name;
    /// [`Error::Invalid`] for a bad name.
    pub fn register(&mut self, rule: Arc<dyn PricingRule>) -> Result<()> {
        let name = crate::validate::required_text("rule name", rule.name(), 200)?;
        if self.rules.contains_key(&name) {
            return Err(Error::AlreadyExists {
                what: "pricing rule",
                value: name,
            });
        }
        self.rules.insert(name, rule);
        Ok(())
    }

    /// The rule called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn PricingRule>> {
        self.rules.get(name)
    }
}
