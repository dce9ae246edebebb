use super::PaymentStatus::*;

#[test]
fn payment_transitions() {
    assert!(Authorized.transition(Captured).is_ok());
    assert!(Authorized.transition(PartiallyCaptured).is_ok());
    assert!(PartiallyCaptured.transition(Captured).is_ok());
    assert!(Authorized.transition(Voided).is_ok());
    assert!(Captured.transition(Refunded).is_ok());
    assert!(Captured.transition(Voided).is_err());
    assert!(Voided.transition(Captured).is_err());
    assert!(Captured.transition(Captured).is_err());
    assert!(Refunded.transition(PartiallyRefunded).is_err());
}

mod books {
    use proptest::prelude::*;

    use super::super::*;
    use crate::actor::Actor;
    use crate::money::Currency;

    fn payment(authorized: i64) -> Payment {
        let zero = Money::zero(Currency::USD);
        Payment {
            id: PaymentId::new(),
            provider: "test".into(),
            reference: "ref".into(),
            authorize_key: "auth".into(),
            authorized: Money::from_minor(authorized, Currency::USD),
            captured: zero,
            refunded: zero,
            released: None,
            status: PaymentStatus::Authorized,
            operations: Vec::new(),
            method: None,
        }
    }

    fn sum(p: &Payment, kind: OperationKind) -> Money {
        Money::sum(
            Currency::USD,
            p.operations
                .iter()
                .filter(|o| o.kind == kind && o.state == OperationState::Succeeded)
                .map(|o| &o.amount),
        )
        .unwrap_or(Money::zero(Currency::USD))
    }

    proptest! {
        /// Whatever sequence of intents, answers and reported totals a
        /// payment sees, at most one operation is in flight, nothing is
        /// refunded beyond what was captured or captured beyond what was
        /// authorized, and the counted totals are the sums of the
        /// succeeded operations.
        #[test]
        fn operations_keep_the_books(
            authorized in 1i64..100_000,
            steps in prop::collection::vec((0u8..6, 0i64..120_000), 1..40),
        ) {
            let mut p = payment(authorized);
            let actor = Actor::System;
            let at = chrono::DateTime::UNIX_EPOCH;
            for (n, (what, minor)) in steps.into_iter().enumerate() {
                let amount = Money::from_minor(minor, Currency::USD);
                let intent = |kind| Intent {
                    kind,
                    amount,
                    purpose: OperationPurpose::Direct,
                    request_key: None,
                    reason: "",
                    actor: &actor,
                    at,
                };
                let pending = p.pending().map(|o| o.key.clone());
                let _ = match what {
                    0 => p.begin(intent(OperationKind::Capture)).map(drop),
                    1 => p.begin(intent(OperationKind::Refund)).map(drop),
                    2 => p.begin(intent(OperationKind::Void)).map(drop),
                    3 => pending.map_or(Ok(()), |k| p.succeed(&k).map(drop)),
                    4 => pending.map_or(Ok(()), |k| p.fail(&k, "no").map(drop)),
                    _ => {
                        let kind = if minor % 2 == 0 { OperationKind::Capture } else { OperationKind::Refund };
                        p.sync_reported(kind, &format!("event:{n}"), amount).map(drop)
                    }
                };
                prop_assert!(p.operations.iter().filter(|o| o.state == OperationState::Pending).count() <= 1);
                prop_assert!(p.captured.amount() <= p.authorized.amount());
                prop_assert!(p.refunded.amount() <= p.captured.amount());
                prop_assert!(!p.refunded.is_negative());
                prop_assert_eq!(sum(&p, OperationKind::Capture), p.captured);
                prop_assert_eq!(sum(&p, OperationKind::Refund), p.refunded);
                prop_assert!(p.operations.iter().all(|o| o.key.len() <= MAX_PROVIDER_KEY_LEN));
            }
        }
    }
}
