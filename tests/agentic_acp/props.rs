//! A property test of the ACP service: random request sequences, valid
//! and not, against the official JSON Schemas and the gateway's books.

use proptest::prelude::Strategy;

use super::*;

/// One request of the property test: random, sometimes invalid, bodies.
#[derive(Debug, Clone)]
enum AcpOp {
    Create {
        sku: &'static str,
        quantity: i64,
        currency: &'static str,
        ready: bool,
    },
    Update {
        session: usize,
        body: usize,
    },
    Complete {
        session: usize,
        token: &'static str,
    },
    Cancel {
        session: usize,
    },
    Get {
        session: usize,
    },
    Replay,
}

/// Update bodies, valid and not.
fn update_bodies() -> Vec<Value> {
    vec![
        json!({"line_items": [{"id": "MUG", "quantity": 2}]}),
        json!({"line_items": [{"id": "MUG"}, {"id": "MUG"}]}),
        json!({"line_items": []}),
        json!({"line_items": [{"id": "NOPE"}]}),
        json!({"fulfillment_details": {"name": "A", "address": {"name": "A", "line_one": "1 Road", "city": "Town", "state": "CA", "country": "us", "postal_code": "90001"}}}),
        json!({"fulfillment_details": {"address": {"name": "", "line_one": "", "city": "", "state": "", "country": "", "postal_code": ""}}}),
        json!({"selected_fulfillment_options": [{"type": "shipping", "option_id": "standard", "item_ids": []}]}),
        json!({"selected_fulfillment_options": [{"type": "shipping", "option_id": "teleport", "item_ids": []}]}),
        json!({"discounts": {"codes": ["NOPE", "ten"]}}),
        json!({"buyer": {"email": "b@example.com", "first_name": "B"}}),
        json!({"buyer": {"email": "nope"}}),
        json!({"line_items": "MUG"}),
    ]
}

fn acp_op() -> impl Strategy<Value = AcpOp> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (prop_oneof![4 => Just("MUG"), 1 => Just("NOPE")], -1i64..4, prop_oneof![3 => Just("usd"), 1 => Just("USD"), 1 => Just("eur"), 1 => Just("zzz")], proptest::bool::weighted(0.7))
            .prop_map(|(sku, quantity, currency, ready)| AcpOp::Create { sku, quantity, currency, ready }),
        2 => (0..4usize, 0..12usize).prop_map(|(session, body)| AcpOp::Update { session, body }),
        2 => (0..4usize, prop_oneof![3 => Just("tok_visa"), 1 => Just("tok_decline")]).prop_map(|(session, token)| AcpOp::Complete { session, token }),
        1 => (0..4usize).prop_map(|session| AcpOp::Cancel { session }),
        1 => (0..4usize).prop_map(|session| AcpOp::Get { session }),
        1 => Just(AcpOp::Replay),
    ]
}

/// Random request sequences: every answer is a valid `CheckoutSession` (or
/// `Error`) for its status, no server error ever, a replayed key answers
/// the same bytes, and the gateway charged exactly the completed sessions.
async fn random_requests_get_valid_answers(backend: Backend, ops: Vec<AcpOp>) {
    let acp = Acp::new(backend).await;
    acp.shop.product("MUG", "12.00", 5).await;
    acp.shop
        .engine
        .create_coupon(
            &Actor::System,
            acp.shop
                .engine
                .save_promotion(&Actor::System, common::ten_percent_coded())
                .await
                .unwrap()
                .id,
            "TEN",
            None,
        )
        .await
        .unwrap();
    let session_schema = validator("CheckoutSession");
    let error_schema = validator("Error");
    let bodies = update_bodies();
    let mut sessions: Vec<String> = Vec::new();
    let mut last: Option<(Method, String, Option<Value>, String, Reply)> = None;
    for (n, op) in ops.into_iter().enumerate() {
        let key = format!("k{n}");
        let (method, path, body) = match op {
            AcpOp::Create {
                sku,
                quantity,
                currency,
                ready,
            } => {
                let mut body = json!({"currency": currency, "line_items": [{"id": sku, "quantity": quantity}], "capabilities": {}});
                if ready {
                    body["buyer"] = json!({"email": "r@example.com"});
                    body["fulfillment_details"] = bodies[4]["fulfillment_details"].clone();
                    body["selected_fulfillment_options"] =
                        bodies[6]["selected_fulfillment_options"].clone();
                }
                (Method::POST, "checkout_sessions".to_owned(), Some(body))
            }
            AcpOp::Update { session, body } => match sessions.get(session) {
                Some(id) => (
                    Method::POST,
                    format!("checkout_sessions/{id}"),
                    Some(bodies[body].clone()),
                ),
                None => continue,
            },
            AcpOp::Complete { session, token } => match sessions.get(session) {
                Some(id) => (
                    Method::POST,
                    format!("checkout_sessions/{id}/complete"),
                    Some(complete_body(token)),
                ),
                None => continue,
            },
            AcpOp::Cancel { session } => match sessions.get(session) {
                Some(id) => (Method::POST, format!("checkout_sessions/{id}/cancel"), None),
                None => continue,
            },
            AcpOp::Get { session } => match sessions.get(session) {
                Some(id) => (Method::GET, format!("checkout_sessions/{id}"), None),
                None => continue,
            },
            AcpOp::Replay => {
                if let Some((method, path, body, key, reply)) = &last {
                    let again = acp
                        .call(method.clone(), path, Some(key), body.clone())
                        .await;
                    assert_eq!(
                        (again.status, &again.body),
                        (reply.status, &reply.body),
                        "replay of {path}"
                    );
                }
                continue;
            }
        };
        let post = method == Method::POST;
        let reply = acp
            .call(
                method.clone(),
                &path,
                post.then_some(key.as_str()),
                body.clone(),
            )
            .await;
        let value = reply.json();
        assert!(reply.status < 500, "{path}: server error {value}");
        let schema = if reply.status < 300 {
            &session_schema
        } else {
            &error_schema
        };
        let errors: Vec<String> = schema
            .iter_errors(&value)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{path} answered {}: {errors:?}\n{value:#}",
            reply.status
        );
        if reply.status == 201 {
            sessions.push(value["id"].as_str().unwrap().to_owned());
        }
        if post {
            last = Some((method, path, body, key, reply));
        }
    }
    // The books: one captured payment per completed session.
    let mut completed = 0;
    for id in &sessions {
        let v = acp
            .call(Method::GET, &format!("checkout_sessions/{id}"), None, None)
            .await
            .json();
        if v["status"] == "completed" {
            completed += 1;
        }
    }
    let charged = acp
        .shop
        .payments
        .authorizations()
        .iter()
        .filter(|a| !a.captured.is_zero())
        .count();
    assert_eq!(charged, completed);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..proptest::prelude::ProptestConfig::default() })]
    #[test]
    fn random_requests_get_valid_answers_in_memory(ops in proptest::collection::vec(acp_op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(random_requests_get_valid_answers(Backend::Memory, ops));
    }
}

#[cfg(feature = "postgres")]
proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 4, ..proptest::prelude::ProptestConfig::default() })]
    #[test]
    fn random_requests_get_valid_answers_on_postgres(ops in proptest::collection::vec(acp_op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(random_requests_get_valid_answers(Backend::Postgres, ops));
    }
}
