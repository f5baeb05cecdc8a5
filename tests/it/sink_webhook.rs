//! The webhook sink through the library against a real HTTP receiver (`support::webhook`) that
//! checks signatures as a user's would: what each answer becomes, redirects refused, requests in
//! flight bounded by the concurrency, an ordered sink stopping a source at its first failure,
//! the online probe, and no secret in any text.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry::config::{Secret, WebhookPlan};
use ferry::engine::sink::webhook::{self, Webhook};
use ferry::engine::sink::{Message, Outcome, SinkError};
use serde_json::json;

use crate::support::net::RefusingPort;
use crate::support::webhook::{Mode, WebhookReceiver};

const SECRET: &str = "whsec_4f9a1c7e2b";
/// Every send of a test finishes within this, or the test fails.
const BOUND: Duration = Duration::from_secs(30);

fn plan(url: &str, secret: Option<&str>) -> WebhookPlan {
    WebhookPlan {
        url: url.to_string(),
        secret: secret.map(|s| Secret(s.to_string())),
        headers: Vec::new(),
        timeout: Duration::from_secs(5),
    }
}

fn message(source: &str, n: u64) -> Message {
    let item = format!("ev:8453:{}:{}", 21_000_000 + n, n % 3);
    let key = format!("hook/{item}");
    let body = json!({"key": key, "source": source, "event": "Transfer", "item": item, "n": n});
    Message { key, source: source.to_string(), event: "Transfer".to_string(), body: body.to_string() }
}

async fn send(sink: &mut Webhook, batch: &[Message]) -> Vec<Outcome> {
    let outcomes =
        tokio::time::timeout(BOUND, sink.send(batch)).await.expect("the batch sent within the bound");
    assert_eq!(outcomes.len(), batch.len(), "one outcome per message");
    outcomes
}

/// The secret appears in no reason an outcome gives.
fn assert_secret_kept(outcomes: &[Outcome]) {
    for outcome in outcomes {
        assert!(!format!("{outcome:?}").contains(SECRET), "{outcome:?} shows the secret");
    }
}

fn reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Retry { reason, .. } | Outcome::Failed { reason } => reason,
        Outcome::Delivered { ack } => panic!("expected a refusal, got delivered ({ack})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_post_is_verified_and_recorded_by_the_receiver() {
    let receiver = WebhookReceiver::start(Some(SECRET));
    let mut plan = plan(&receiver.url(), Some(SECRET));
    plan.headers = vec![("Authorization".into(), "Bearer t0ken".into()), ("X-Team".into(), "ops".into())];
    let mut sink = Webhook::connect(&plan, 4, false).expect("connect");
    let batch = [message("usdc", 1)];

    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    assert_eq!(send(&mut sink, &batch).await, vec![Outcome::Delivered { ack: "HTTP 200".into() }]);

    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let r = &received[0];
    assert_eq!((r.method.as_str(), r.refused.as_deref()), ("POST", None), "accepted: its signature held");
    assert_eq!(r.key, batch[0].key);
    assert_eq!(r.raw, batch[0].body.as_bytes(), "the body exactly as signed");
    assert_eq!(r.body, serde_json::from_str::<serde_json::Value>(&batch[0].body).expect("JSON"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(r.header("x-team"), Some("ops"));
    let at: u64 = r.header("x-ferry-timestamp").expect("a timestamp").parse().expect("Unix seconds");
    assert!((before..=before + 5).contains(&at), "timestamp {at}, sent at {before}");
    let signature = r.header("x-ferry-signature").expect("a signature");
    assert!(signature.starts_with("sha256=") && signature.len() == 7 + 64, "{signature}");

    // A second send of the same message is a second request with the same key: counted twice.
    assert_eq!(send(&mut sink, &batch).await, vec![Outcome::Delivered { ack: "HTTP 200".into() }]);
    assert_eq!(receiver.key_counts(), BTreeMap::from([(batch[0].key.clone(), 2)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_nothing_is_signed() {
    let receiver = WebhookReceiver::start(None);
    let mut sink = Webhook::connect(&plan(&receiver.url(), None), 4, false).expect("connect");
    assert_eq!(
        send(&mut sink, &[message("usdc", 1)]).await,
        vec![Outcome::Delivered { ack: "HTTP 200".into() }]
    );
    let r = &receiver.received()[0];
    assert_eq!(r.header("x-ferry-signature"), None);
    assert!(r.header("x-ferry-timestamp").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_signature_is_refused_with_401_and_fails() {
    let receiver = WebhookReceiver::start(Some(SECRET));
    for (secret, why) in [(Some("whsec_not_the_one"), "does not match"), (None, "no X-Ferry-Signature")] {
        let mut sink = Webhook::connect(&plan(&receiver.url(), secret), 4, false).expect("connect");
        let outcomes = send(&mut sink, &[message("usdc", 1)]).await;
        match &outcomes[0] {
            Outcome::Failed { reason } => {
                assert!(reason.starts_with("HTTP 401: ") && reason.contains(why), "{reason}")
            }
            other => panic!("expected failed with 401, got {other:?}"),
        }
        assert_secret_kept(&outcomes);
        assert!(!reason(&outcomes[0]).contains("whsec_not_the_one"), "the wrong secret is a secret too");
    }
    assert!(receiver.received().is_empty());
    let refused: Vec<u16> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(refused, vec![401, 401]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_rate_limits_retry_with_their_retry_after() {
    let receiver = WebhookReceiver::start(Some(SECRET));
    let mut sink = Webhook::connect(&plan(&receiver.url(), Some(SECRET)), 4, false).expect("connect");
    let batch = [message("usdc", 1)];

    receiver.set_mode_next(1, Mode::with_body(500, r#"{"error":"database is down"}"#));
    let outcomes = send(&mut sink, &batch).await;
    assert_eq!(
        outcomes,
        vec![Outcome::Retry { reason: r#"HTTP 500: {"error":"database is down"}"#.into(), after: None }]
    );

    receiver.set_mode_next(1, Mode::retry_after(429, "1"));
    assert_eq!(
        send(&mut sink, &batch).await,
        vec![Outcome::Retry { reason: "HTTP 429".into(), after: Some(Duration::from_secs(1)) }]
    );

    receiver.set_mode_next(1, Mode::retry_after(503, "7"));
    assert_eq!(
        send(&mut sink, &batch).await,
        vec![Outcome::Retry { reason: "HTTP 503".into(), after: Some(Duration::from_secs(7)) }]
    );

    receiver.set_mode_next(1, Mode::Status(408));
    assert_eq!(
        send(&mut sink, &batch).await,
        vec![Outcome::Retry { reason: "HTTP 408".into(), after: None }]
    );

    // The next modes were used up: the same message now lands.
    assert_eq!(send(&mut sink, &batch).await, vec![Outcome::Delivered { ack: "HTTP 200".into() }]);
    let statuses: Vec<u16> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 429, 503, 408, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_fails_quoting_the_first_200_bytes_of_the_body() {
    let receiver = WebhookReceiver::start(None);
    let mut sink = Webhook::connect(&plan(&receiver.url(), None), 4, false).expect("connect");
    // 3 spaces, then 2-byte characters: byte 200 falls inside the 99th, which shows as U+FFFD.
    let body = format!("   {}", "é".repeat(150));
    receiver.set_mode(Mode::with_body(400, &body));
    let outcomes = send(&mut sink, &[message("usdc", 1)]).await;
    let expected = format!("HTTP 400: {}\u{FFFD}", "é".repeat(98));
    assert_eq!(outcomes, vec![Outcome::Failed { reason: expected }]);

    receiver.set_mode(Mode::Status(404));
    let outcomes = send(&mut sink, &[message("usdc", 1)]).await;
    assert_eq!(outcomes, vec![Outcome::Failed { reason: "HTTP 404".into() }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_slower_than_the_timeout_is_retried() {
    let receiver = WebhookReceiver::start(Some(SECRET));
    let mut plan = plan(&receiver.url(), Some(SECRET));
    plan.timeout = Duration::from_millis(500);
    let mut sink = Webhook::connect(&plan, 4, false).expect("connect");
    receiver.set_mode(Mode::Stall(Duration::from_secs(20)));

    let started = Instant::now();
    let outcomes = send(&mut sink, &[message("usdc", 1)]).await;
    let took = started.elapsed();
    match &outcomes[0] {
        Outcome::Retry { reason, after: None } => {
            assert!(reason.contains("no answer within 500ms"), "{reason}");
            assert!(reason.contains(&receiver.url()), "names the URL: {reason}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(5), "took {took:?}");
    assert_secret_kept(&outcomes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_fails_naming_it() {
    let receiver = WebhookReceiver::start(None);
    let mut sink = Webhook::connect(&plan(&receiver.url(), None), 4, false).expect("connect");
    receiver.set_mode(Mode::Answer {
        status: 302,
        headers: vec![("Location".into(), "/moved?token=abc123".into())],
        body: String::new(),
    });
    let outcomes = send(&mut sink, &[message("usdc", 1)]).await;
    let origin = receiver.url().trim_end_matches("/hook").to_string();
    match &outcomes[0] {
        Outcome::Failed { reason } => {
            assert!(reason.starts_with("HTTP 302 "), "{reason}");
            assert!(reason.contains(&format!("{origin}/moved?token=***")), "the Location, masked: {reason}");
            assert!(!reason.contains("abc123"), "{reason}");
        }
        other => panic!("expected failed, got {other:?}"),
    }
    assert_eq!(receiver.requests().len(), 1, "the Location was not asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_run_concurrently_up_to_the_limit_and_keep_their_order() {
    let receiver = WebhookReceiver::start(Some(SECRET));
    let mut sink = Webhook::connect(&plan(&receiver.url(), Some(SECRET)), 8, false).expect("connect");
    // Each answer held a while, so requests overlap as far as the sink lets them.
    receiver.set_mode(Mode::Stall(Duration::from_millis(150)));
    let batch: Vec<Message> = (0..50).map(|n| message("usdc", n)).collect();
    receiver.set_mode_for_key(&batch[7].key, Mode::Status(400));
    receiver.set_mode_for_key(&batch[13].key, Mode::Status(502));

    let outcomes = send(&mut sink, &batch).await;
    for (n, outcome) in outcomes.iter().enumerate() {
        match n {
            7 => assert_eq!(outcome, &Outcome::Failed { reason: "HTTP 400".into() }),
            13 => assert_eq!(outcome, &Outcome::Retry { reason: "HTTP 502".into(), after: None }),
            _ => assert_eq!(outcome, &Outcome::Delivered { ack: "HTTP 200".into() }, "message {n}"),
        }
    }
    let counts = receiver.key_counts();
    assert_eq!(counts.len(), 48);
    assert!(counts.values().all(|&c| c == 1), "{counts:?}");
    let most = receiver.max_in_flight();
    assert!((4..=8).contains(&most), "{most} requests in flight at once, the limit is 8");
    // Pooled connections: about one per request in flight (a few more when a request starts
    // before its connection is back in the pool), not one per request.
    assert!(receiver.connections() < 25, "{} connections for 50 requests", receiver.connections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_sink_stops_a_source_at_its_first_undelivered_message() {
    let receiver = WebhookReceiver::start(Some(SECRET));
    let mut sink = Webhook::connect(&plan(&receiver.url(), Some(SECRET)), 1, true).expect("connect");
    receiver.set_mode(Mode::Stall(Duration::from_millis(20)));
    let batch = [
        message("usdc", 1),
        message("weth", 2),
        message("usdc", 3),
        message("weth", 4),
        message("usdc", 5),
        message("weth", 6),
    ];
    receiver.set_mode_for_key(&batch[2].key, Mode::Status(500));

    let outcomes = send(&mut sink, &batch).await;
    let delivered = Outcome::Delivered { ack: "HTTP 200".into() };
    let waiting =
        Outcome::Retry { reason: "waiting for an earlier item of the same source".into(), after: None };
    assert_eq!(
        outcomes,
        vec![
            delivered.clone(),
            delivered.clone(),
            Outcome::Retry { reason: "HTTP 500".into(), after: None },
            delivered.clone(),
            waiting,
            delivered,
        ]
    );
    let asked: Vec<String> = receiver.requests().into_iter().map(|r| r.key).collect();
    let expected: Vec<String> = [0, 1, 2, 3, 5].iter().map(|&i| batch[i].key.clone()).collect();
    assert_eq!(asked, expected, "one at a time, in order, usdc 5 never sent");
    assert_eq!(receiver.max_in_flight(), 1);

    // A permanent failure stops its source the same way.
    receiver.clear();
    receiver.set_mode_for_key(&batch[2].key, Mode::Ok);
    receiver.set_mode_for_key(&batch[1].key, Mode::Status(422));
    let outcomes = send(&mut sink, &batch[1..]).await;
    assert_eq!(outcomes[0], Outcome::Failed { reason: "HTTP 422".into() });
    assert!(matches!(&outcomes[1], Outcome::Delivered { .. }), "usdc goes on: {outcomes:?}");
    assert_eq!(reason(&outcomes[2]), "waiting for an earlier item of the same source");
    assert!(matches!(&outcomes[3], Outcome::Delivered { .. }), "{outcomes:?}");
    assert_eq!(reason(&outcomes[4]), "waiting for an earlier item of the same source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_a_retry_naming_the_masked_url() {
    let closed = RefusingPort::bind();
    let url = format!("{}/hook?token=s3cr3t", closed.url());
    let mut sink = Webhook::connect(&plan(&url, Some(SECRET)), 4, false).expect("connect needs no answer");
    let outcomes = send(&mut sink, &[message("usdc", 1), message("usdc", 2)]).await;
    for outcome in &outcomes {
        match outcome {
            Outcome::Retry { reason, after: None } => {
                assert!(reason.contains(&format!("{}/hook?token=***", closed.url())), "{reason}");
                assert!(!reason.contains("s3cr3t"), "{reason}");
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }
    assert_secret_kept(&outcomes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_reaches_a_receiver_and_names_a_closed_port() {
    let receiver = WebhookReceiver::start(Some(SECRET));
    let answer = tokio::time::timeout(BOUND, webhook::probe(&plan(&receiver.url(), Some(SECRET))))
        .await
        .expect("the probe within the bound");
    assert_eq!(answer.expect("reachable"), "HTTP 200");
    let asked = receiver.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].method, "HEAD");
    assert!(receiver.received().is_empty(), "a probe delivers nothing");

    let closed = RefusingPort::bind();
    let url = format!("{}/hook?token=s3cr3t", closed.url());
    let answer = tokio::time::timeout(BOUND, webhook::probe(&plan(&url, Some(SECRET))))
        .await
        .expect("the probe within the bound");
    match answer {
        Err(SinkError::Unavailable(why)) => {
            assert!(why.contains(&format!("{}/hook?token=***", closed.url())), "{why}");
            assert!(!why.contains("s3cr3t") && !why.contains(SECRET), "{why}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }

    let unresolvable = plan("http://no-such-host.invalid/hook", None);
    match tokio::time::timeout(BOUND, webhook::probe(&unresolvable)).await.expect("within the bound") {
        Err(SinkError::Unavailable(why)) => assert!(why.contains("no-such-host.invalid"), "{why}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_signed_messages_land_once_each() {
    let receiver = WebhookReceiver::start(Some(SECRET));
    let mut sink = Webhook::connect(&plan(&receiver.url(), Some(SECRET)), 16, false).expect("connect");
    let batch: Vec<Message> = (0..1_000).map(|n| message("usdc", n)).collect();
    let outcomes = send(&mut sink, &batch).await;
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Delivered { .. })), "{outcomes:?}");
    let counts = receiver.key_counts();
    assert_eq!(counts.len(), 1_000);
    assert!(counts.values().all(|&c| c == 1));
}
