//! Agent checkout sessions in the engine, on both stores: who reaches a
//! session (its agent changes it; staff and the system read it; to other
//! agents, customers and guests it does not exist) with nothing changed by
//! a refused call; expiry; a completion that places exactly one order and
//! charges once under retries; the buyer's data erased with the customer;
//! and a property test of random agent operations racing on two engines:
//! stock never oversold, every completed session has exactly one order
//! and one charge, the books equal the gateway.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cartwright::agent::{AgentBuyer, AgentProtocol, AgentSessionStatus, Destination};
use cartwright::agents::{AgentPayment, AgentUpdate};
use cartwright::customer::Address;
use cartwright::prelude::*;
use common::{Backend, Shop};
use proptest::prelude::*;

fn destination() -> Destination {
    let address = Address::new(cartwright::customer::NewAddress::new(
        "Ada Lovelace",
        "12 Engine Row",
        "London",
        "N1 9GU",
        "GB",
    ))
    .unwrap();
    Destination::new("home", address).unwrap()
}

fn ready(variant: cartwright::id::VariantId, quantity: u32, email: &str) -> AgentUpdate {
    AgentUpdate::default()
        .lines(Some(vec![(variant, quantity)]))
        .buyer(Some(
            AgentBuyer::default()
                .first_name("Ada")
                .last_name("Lovelace")
                .email(Some(email.to_owned())),
        ))
        .destinations(Some(vec![destination()]))
        .selected_destination(Some(Some("home".into())))
        .selected_option(Some(Some("standard".into())))
}

/// A session of `agent`'s, opened and made ready to complete: `quantity`
/// of `variant` for ada@example.com, shipping chosen.
async fn ready_session(
    shop: &Shop,
    agent: &Actor,
    variant: cartwright::id::VariantId,
    quantity: u32,
) -> cartwright::agent::AgentSession {
    let session = shop
        .engine
        .open_agent_session(agent, AgentProtocol::Ucp, Currency::USD)
        .await
        .unwrap();
    shop.engine
        .update_agent_session(
            agent,
            session.id,
            ready(variant, quantity, "ada@example.com"),
        )
        .await
        .unwrap();
    session
}

async fn only_its_agent_changes_a_session(backend: Backend) {
    let shop = Shop::new(backend).await;
    let variant = shop.product("MUG", "12.00", 10).await;
    let customer = shop.customer("someone@example.com").await.id();
    let agent = Actor::Agent("agent-a".into());
    let session = ready_session(&shop, &agent, variant, 1).await;
    let before = shop.snapshot().await;
    let strangers = [
        Actor::Agent("agent-b".into()),
        Actor::Guest,
        Actor::Customer(customer),
        Actor::Provider("test".into()),
    ];
    for who in &strangers {
        assert!(
            matches!(
                shop.engine.agent_session(who, session.id).await,
                Err(Error::NotFound { .. })
            ),
            "{who:?}"
        );
        assert!(
            matches!(
                shop.engine.agent_view(who, session.id).await,
                Err(Error::NotFound { .. })
            ),
            "{who:?}"
        );
        let update = shop
            .engine
            .update_agent_session(who, session.id, AgentUpdate::default().codes(Some(vec![])))
            .await;
        assert!(
            matches!(update, Err(Error::NotFound { .. })),
            "{who:?}: {update:?}"
        );
        let complete = shop
            .engine
            .complete_agent_session(who, session.id, AgentPayment::new("tok_visa"))
            .await;
        assert!(matches!(complete, Err(Error::NotFound { .. })), "{who:?}");
        assert!(
            matches!(
                shop.engine.cancel_agent_session(who, session.id).await,
                Err(Error::NotFound { .. })
            ),
            "{who:?}"
        );
        if !matches!(who, Actor::Agent(_)) {
            let open = shop
                .engine
                .open_agent_session(who, AgentProtocol::Acp, Currency::USD)
                .await;
            assert!(matches!(open, Err(Error::Forbidden)), "{who:?}");
        }
    }
    for staff in [Actor::Staff("amy".into()), Actor::System] {
        assert_eq!(
            shop.engine
                .agent_session(&staff, session.id)
                .await
                .unwrap()
                .id,
            session.id
        );
        let update = shop
            .engine
            .update_agent_session(&staff, session.id, AgentUpdate::default())
            .await;
        assert!(matches!(update, Err(Error::Forbidden)), "{update:?}");
        let complete = shop
            .engine
            .complete_agent_session(&staff, session.id, AgentPayment::new("tok_visa"))
            .await;
        assert!(matches!(complete, Err(Error::Forbidden)));
        assert!(matches!(
            shop.engine.cancel_agent_session(&staff, session.id).await,
            Err(Error::Forbidden)
        ));
    }
    assert!(
        shop.snapshot().await == before,
        "a refused call changed the store"
    );
    assert!(shop.payments.authorizations().is_empty());
    // The agent's own order is its own too.
    let (view, _) = shop
        .engine
        .complete_agent_session(&agent, session.id, AgentPayment::new("tok_visa"))
        .await
        .unwrap();
    let order = view.session.order_id.unwrap();
    assert_eq!(
        shop.engine
            .agent_order(&agent, order)
            .await
            .unwrap()
            .session
            .id,
        session.id
    );
    for who in &strangers {
        assert!(
            matches!(
                shop.engine.agent_order(who, order).await,
                Err(Error::NotFound { .. })
            ),
            "{who:?}"
        );
    }
    // An order no agent placed is no agent's.
    let cart = shop.ready_cart(&[(variant, 1)]).await;
    let plain = shop.place(cart.id(), "plain").await;
    assert!(matches!(
        shop.engine.agent_order(&agent, plain.id()).await,
        Err(Error::NotFound { .. })
    ));
}

async fn a_session_expires(backend: Backend) {
    let shop = Shop::new(backend).await;
    let variant = shop.product("MUG", "12.00", 10).await;
    let agent = Actor::Agent("agent-a".into());
    let session = shop
        .engine
        .open_agent_session(&agent, AgentProtocol::Acp, Currency::USD)
        .await
        .unwrap();
    shop.engine
        .update_agent_session(&agent, session.id, ready(variant, 1, "ada@example.com"))
        .await
        .unwrap();
    shop.clock.advance(chrono::Duration::hours(7));
    let late = shop
        .engine
        .update_agent_session(&agent, session.id, AgentUpdate::default())
        .await;
    assert!(
        matches!(late, Err(Error::IllegalTransition { .. })),
        "{late:?}"
    );
    let late = shop
        .engine
        .complete_agent_session(&agent, session.id, AgentPayment::new("tok_visa"))
        .await;
    assert!(
        matches!(late, Err(Error::IllegalTransition { .. })),
        "{late:?}"
    );
    assert!(shop.payments.authorizations().is_empty());
}

async fn completing_again_returns_the_same_order(backend: Backend) {
    let shop = Shop::new(backend).await;
    let variant = shop.product("MUG", "12.00", 10).await;
    let agent = Actor::Agent("agent-a".into());
    let session = ready_session(&shop, &agent, variant, 2).await;
    let declined = shop
        .engine
        .complete_agent_session(&agent, session.id, AgentPayment::new("tok_decline"))
        .await;
    assert!(matches!(declined, Err(Error::PaymentDeclined { .. })));
    let again = shop.engine.agent_session(&agent, session.id).await.unwrap();
    assert_eq!(
        (again.status, again.failed_attempts),
        (AgentSessionStatus::Open, 1)
    );
    let (first, _) = shop
        .engine
        .complete_agent_session(&agent, session.id, AgentPayment::new("tok_visa"))
        .await
        .unwrap();
    let (second, _) = shop
        .engine
        .complete_agent_session(&agent, session.id, AgentPayment::new("tok_visa"))
        .await
        .unwrap();
    assert_eq!(first.session.order_id, second.session.order_id);
    assert_eq!(
        shop.payments
            .authorizations()
            .iter()
            .filter(|a| !a.captured.is_zero())
            .count(),
        1
    );
    assert_eq!(shop.engine.stock(variant).await.unwrap().available(), 8);
    // A completed session changes no more.
    let late = shop
        .engine
        .update_agent_session(&agent, session.id, AgentUpdate::default())
        .await;
    assert!(matches!(late, Err(Error::IllegalTransition { .. })));
    assert!(matches!(
        shop.engine.cancel_agent_session(&agent, session.id).await,
        Err(Error::IllegalTransition { .. })
    ));
}

async fn the_buyer_is_erased_with_the_customer(backend: Backend) {
    let shop = Shop::new(backend).await;
    let variant = shop.product("MUG", "12.00", 10).await;
    let customer = shop.customer("ada@example.com").await.id();
    let agent = Actor::Agent("agent-a".into());
    let session = ready_session(&shop, &agent, variant, 1).await;
    assert!(shop.everything().await.contains("12 Engine Row"));
    shop.engine
        .erase_customer(&Actor::System, customer)
        .await
        .unwrap();
    let everything = shop.everything().await;
    for gone in ["12 Engine Row", "Lovelace", "ada@example.com"] {
        assert!(!everything.contains(gone), "{gone} is still stored");
    }
    let erased = shop
        .engine
        .agent_session(&Actor::System, session.id)
        .await
        .unwrap();
    assert_eq!(
        erased.destinations[0].address.country.as_str(),
        "GB",
        "the country stays"
    );
}

async fn request_keys_replay_then_are_forgotten(backend: Backend) {
    use cartwright::agent::StoredResponse;
    use cartwright::store::RequestState;
    let shop = Shop::new(backend).await;
    let agent = Actor::Agent("agent-a".into());
    let other = Actor::Agent("agent-b".into());
    let e = &shop.engine;
    assert_eq!(
        e.claim_agent_request(&agent, "k", "f1").await.unwrap(),
        RequestState::Claimed
    );
    assert_eq!(
        e.claim_agent_request(&agent, "k", "f1").await.unwrap(),
        RequestState::InFlight
    );
    assert_eq!(
        e.claim_agent_request(&agent, "k", "f2").await.unwrap(),
        RequestState::Conflict
    );
    assert_eq!(
        e.claim_agent_request(&other, "k", "f2").await.unwrap(),
        RequestState::Claimed,
        "keys are per agent"
    );
    let answer = StoredResponse::new(201, b"{\"id\":1}".to_vec());
    e.finish_agent_request(&agent, "k", &answer).await.unwrap();
    assert_eq!(
        e.claim_agent_request(&agent, "k", "f1").await.unwrap(),
        RequestState::Done(answer)
    );
    // A claim whose caller died is taken over after a minute.
    assert_eq!(
        e.claim_agent_request(&agent, "dead", "f").await.unwrap(),
        RequestState::Claimed
    );
    shop.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(
        e.claim_agent_request(&agent, "dead", "f").await.unwrap(),
        RequestState::Claimed
    );
    // Released, a key runs afresh.
    e.release_agent_request(&agent, "dead").await.unwrap();
    assert_eq!(
        e.claim_agent_request(&agent, "dead", "other body")
            .await
            .unwrap(),
        RequestState::Claimed
    );
    // Hostile keys and callers.
    assert!(matches!(
        e.claim_agent_request(&agent, "", "f").await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        e.claim_agent_request(&agent, &"k".repeat(256), "f").await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        e.claim_agent_request(&agent, "a key", "f").await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        e.claim_agent_request(&Actor::Guest, "k", "f").await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        e.claim_agent_request(&Actor::System, "k", "f").await,
        Err(Error::Forbidden)
    ));
    // After the retention, maintenance forgets them.
    shop.clock.advance(chrono::Duration::days(31));
    let report = e.run_maintenance(&Actor::System).await.unwrap();
    assert_eq!(report.pruned_agent_requests, 3);
    assert_eq!(
        e.claim_agent_request(&agent, "k", "f2").await.unwrap(),
        RequestState::Claimed
    );
}

async fn a_completion_refused_for_good_can_be_tried_again(backend: Backend) {
    let shop = Shop::new(backend).await;
    let variant = shop.product("MUG", "12.00", 3).await;
    let agent = Actor::Agent("agent-a".into());
    let first = shop
        .engine
        .open_agent_session(&agent, AgentProtocol::Ucp, Currency::USD)
        .await
        .unwrap();
    let second = shop
        .engine
        .open_agent_session(&agent, AgentProtocol::Ucp, Currency::USD)
        .await
        .unwrap();
    for s in [first.id, second.id] {
        shop.engine
            .update_agent_session(&agent, s, ready(variant, 3, "ada@example.com"))
            .await
            .unwrap();
    }
    shop.engine
        .complete_agent_session(&agent, first.id, AgentPayment::new("tok_visa"))
        .await
        .unwrap();
    // Sold out meanwhile: refused, nothing charged.
    let sold_out = shop
        .engine
        .complete_agent_session(&agent, second.id, AgentPayment::new("tok_visa"))
        .await;
    assert!(
        matches!(sold_out, Err(Error::OutOfStock { .. })),
        "{sold_out:?}"
    );
    // Restocked, the same session completes — with another card too.
    shop.engine
        .set_stock(&Actor::System, variant, shop.warehouse, 10)
        .await
        .unwrap();
    let (view, _) = shop
        .engine
        .complete_agent_session(&agent, second.id, AgentPayment::new("tok_mastercard"))
        .await
        .unwrap();
    assert_eq!(view.session.status, AgentSessionStatus::Completed);
    assert_eq!(view.session.failed_attempts, 1);
    // A completed session answers its order whatever credential comes.
    let (again, _) = shop
        .engine
        .complete_agent_session(&agent, second.id, AgentPayment::new("tok_other"))
        .await
        .unwrap();
    assert_eq!(again.session.order_id, view.session.order_id);
    assert_eq!(
        shop.payments
            .authorizations()
            .iter()
            .filter(|a| !a.captured.is_zero())
            .count(),
        2
    );
}

/// The order and the session's record of it are two commits: a payment
/// that waited for the buyer and is settled by the provider's event
/// places the order without the agent asking again. The order is the
/// session's all the same: to its agent, to staff and to the system that
/// sends its webhooks (which once took it for no agent's order and sent
/// nothing).
async fn an_order_placed_by_the_provider_is_the_sessions(backend: Backend) {
    let shop = Shop::new(backend).await;
    let variant = shop.product("MUG", "12.00", 10).await;
    let agent = Actor::Agent("agent-a".into());
    let session = ready_session(&shop, &agent, variant, 1).await;
    let (view, step) = shop
        .engine
        .complete_agent_session(&agent, session.id, AgentPayment::new("tok_3ds"))
        .await
        .unwrap();
    let cartwright::checkout::CheckoutStep::AwaitingPayment(waiting) = step else {
        panic!("expected a waiting payment, got {step:?}");
    };
    assert_eq!(view.session.order_id, None);
    let event = shop.payments.complete_action(&waiting.reference).unwrap();
    let order = shop
        .engine
        .apply_provider_event(&Actor::Provider("test".into()), &event)
        .await
        .unwrap()
        .into_order()
        .expect("the provider's event placed the order");
    // The session's own record still says it waits.
    let stored = shop.engine.agent_session(&agent, session.id).await.unwrap();
    assert_eq!(stored.order_id, None);
    for reader in [Actor::System, agent.clone(), Actor::Staff("amy".into())] {
        let view = shop.engine.agent_order(&reader, order.id()).await.unwrap();
        assert_eq!(view.session.id, session.id);
        assert_eq!(view.session.status, AgentSessionStatus::Completed);
        assert_eq!(view.session.order_id, Some(order.id()));
        assert_eq!(view.order.as_ref().map(|o| o.id()), Some(order.id()));
    }
    let seen = shop.engine.agent_view(&agent, session.id).await.unwrap();
    assert_eq!(
        (seen.session.status, seen.session.order_id),
        (AgentSessionStatus::Completed, Some(order.id()))
    );
    // Another agent, or a customer, still finds nothing.
    for stranger in [
        Actor::Agent("agent-b".into()),
        Actor::Customer(cartwright::id::CustomerId::new()),
    ] {
        assert!(matches!(
            shop.engine.agent_order(&stranger, order.id()).await,
            Err(Error::NotFound { .. })
        ));
    }
    // The agent asking now gets the same order, charged once.
    let (again, _) = shop
        .engine
        .complete_agent_session(&agent, session.id, AgentPayment::new("tok_visa"))
        .await
        .unwrap();
    assert_eq!(again.session.order_id, Some(order.id()));
    assert_eq!(
        shop.payments
            .authorizations()
            .iter()
            .filter(|a| !a.voided && !a.failed)
            .count(),
        1
    );
}

conformance!(
    an_order_placed_by_the_provider_is_the_sessions,
    a_completion_refused_for_good_can_be_tried_again,
    request_keys_replay_then_are_forgotten,
    only_its_agent_changes_a_session,
    a_session_expires,
    completing_again_returns_the_same_order,
    the_buyer_is_erased_with_the_customer,
);

/// One agent operation of the property test.
#[derive(Debug, Clone)]
enum Op {
    Open,
    Set {
        session: usize,
        quantity: u32,
    },
    Complete {
        session: usize,
        engine: usize,
        decline: bool,
    },
    Cancel {
        session: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Open),
        (0..4usize, 1..4u32).prop_map(|(session, quantity)| Op::Set { session, quantity }),
        (0..4usize, 0..2usize, proptest::bool::weighted(0.2)).prop_map(
            |(session, engine, decline)| Op::Complete {
                session,
                engine,
                decline
            }
        ),
        (0..4usize).prop_map(|session| Op::Cancel { session }),
    ]
}

/// Random agent operations, each round's completions racing on two
/// engines: whatever happens, stock is never oversold, each completed
/// session has one order, and the gateway charged exactly those orders.
async fn random_agent_operations_keep_the_books(backend: Backend, rounds: Vec<Vec<Op>>) {
    let shop = Shop::new(backend).await;
    let variant = shop.product("MUG", "12.00", 6).await;
    let engines = [shop.engine.clone(), shop.second_engine().await];
    let agent = Actor::Agent("agent-a".into());
    let mut sessions = Vec::new();
    for round in rounds {
        let mut racing = Vec::new();
        for op in round {
            match op {
                Op::Open => {
                    let s = shop
                        .engine
                        .open_agent_session(&agent, AgentProtocol::Ucp, Currency::USD)
                        .await
                        .unwrap();
                    sessions.push(s.id);
                }
                Op::Set { session, quantity } => {
                    if let Some(id) = sessions.get(session) {
                        let _ = shop
                            .engine
                            .update_agent_session(
                                &agent,
                                *id,
                                ready(variant, quantity, "p@example.com"),
                            )
                            .await;
                    }
                }
                Op::Complete {
                    session,
                    engine,
                    decline,
                } => {
                    if let Some(id) = sessions.get(session).copied() {
                        let e = engines[engine].clone();
                        let agent = agent.clone();
                        let token = if decline { "tok_decline" } else { "tok_visa" };
                        racing.push(tokio::spawn(async move {
                            let result = e
                                .complete_agent_session(&agent, id, AgentPayment::new(token))
                                .await;
                            // Never told that its own retry is another request.
                            if let Err(error) = result {
                                assert!(
                                    !matches!(
                                        error,
                                        Error::IdempotencyConflict(_) | Error::Storage { .. }
                                    ),
                                    "{error:?}"
                                );
                            }
                        }));
                    }
                }
                Op::Cancel { session } => {
                    if let Some(id) = sessions.get(session) {
                        let _ = shop.engine.cancel_agent_session(&agent, *id).await;
                    }
                }
            }
        }
        for r in racing {
            r.await.unwrap();
        }
    }
    let mut units = 0i64;
    let mut orders = std::collections::BTreeSet::new();
    for id in &sessions {
        // A completion whose save was beaten finishes on the next call.
        let s = shop.engine.agent_session(&agent, *id).await.unwrap();
        if let Some(order) = s.order_id {
            assert_eq!(s.status, AgentSessionStatus::Completed);
            assert!(orders.insert(order), "one order per session");
            let o = shop.engine.order(&Actor::System, order).await.unwrap();
            units += o
                .pricing()
                .lines
                .iter()
                .map(|l| i64::from(l.quantity))
                .sum::<i64>();
        }
    }
    let stock = shop.engine.stock(variant).await.unwrap();
    assert!(stock.available() >= 0, "oversold: {stock:?}");
    assert_eq!(stock.on_hand, 6, "nothing shipped");
    assert_eq!(stock.reserved, units, "exactly the ordered units are held");
    let charged = shop
        .payments
        .authorizations()
        .iter()
        .filter(|a| !a.captured.is_zero())
        .count();
    assert_eq!(
        charged,
        orders.len(),
        "the gateway charged exactly the orders"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn random_agent_operations_keep_the_books_in_memory(rounds in proptest::collection::vec(proptest::collection::vec(op(), 1..6), 1..5)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        rt.block_on(random_agent_operations_keep_the_books(Backend::Memory, rounds));
    }
}

#[cfg(feature = "postgres")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]
    #[test]
    fn random_agent_operations_keep_the_books_on_postgres(rounds in proptest::collection::vec(proptest::collection::vec(op(), 1..6), 1..4)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        rt.block_on(random_agent_operations_keep_the_books(Backend::Postgres, rounds));
    }
}
