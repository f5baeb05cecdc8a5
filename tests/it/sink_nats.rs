//! The `nats-jetstream` sink against real `nats-server -js`, through the library: sequences as
//! acks, a re-send dropped as a duplicate by its `Nats-Msg-Id`, a restarted server, no stream for
//! the subject, tokens, and the probe's checks of the stream.

use std::time::Duration;

use async_nats::jetstream;
use ferry::config::{NatsPlan, Secret};
use ferry::engine::sink::nats::{Jetstream, probe};
use ferry::engine::sink::{Outcome, SinkError};

use crate::support::nats::NatsServer;
use crate::support::net::RefusingPort;
use crate::support::sink::{acks, messages};

const STREAM: &str = "ITEMS";
const SUBJECT: &str = "ferry.items";
const WINDOW: Duration = Duration::from_secs(120);
const TOKEN: &str = "s3cret-nats-token";

fn plan(url: &str) -> NatsPlan {
    NatsPlan {
        url: Secret(url.to_string()),
        subject: SUBJECT.to_string(),
        stream: STREAM.to_string(),
        token: None,
        timeout: Duration::from_secs(2),
    }
}

async fn connect(plan: &NatsPlan) -> Jetstream {
    match Jetstream::connect(plan).await {
        Ok(sink) => sink,
        Err(e) => panic!("the sink connects: {e}"),
    }
}

/// A server with the stream `ITEMS` capturing `ferry.>`.
async fn server_with_stream() -> NatsServer {
    let server = NatsServer::start().await;
    server.create_stream(STREAM, &["ferry.>"], WINDOW).await;
    server
}

#[tokio::test]
async fn two_hundred_messages_land_once_and_a_resend_is_acked_as_duplicate() {
    let server = server_with_stream().await;
    let mut sink = connect(&plan(&server.url())).await;
    let batch = messages("a", 200);

    let first = acks(&sink.send(&batch).await);
    let expected: Vec<String> = (1..=200).map(|seq| format!("seq {seq}")).collect();
    assert_eq!(first, expected);
    assert_eq!(server.stream_messages(STREAM).await, 200);

    // What the stream holds: the body as sent, the key as its message id.
    let js = jetstream::new(server.client().await);
    let stream = js.get_stream(STREAM).await.expect("the stream");
    for seq in [1u64, 200] {
        let stored = stream.get_raw_message(seq).await.expect("a stored message");
        let sent = &batch[seq as usize - 1];
        assert_eq!(stored.subject.as_str(), SUBJECT);
        assert_eq!(stored.payload.as_ref(), sent.body.as_bytes());
        let id = stored.headers.get("Nats-Msg-Id").expect("a message id");
        assert_eq!(id.as_str(), sent.key);
    }

    // The worker's recovery after a crash: publish the same keys again.
    let again = acks(&sink.send(&batch).await);
    let expected: Vec<String> = (1..=200).map(|seq| format!("seq {seq} (duplicate)")).collect();
    assert_eq!(again, expected, "each re-send is acked with the first one's sequence");
    assert_eq!(server.stream_messages(STREAM).await, 200, "nothing stored twice");
}

#[tokio::test]
async fn a_restarted_server_takes_the_publishes_again_without_doubles() {
    let mut server = server_with_stream().await;
    let mut sink = connect(&NatsPlan { timeout: Duration::from_secs(1), ..plan(&server.url()) }).await;
    acks(&sink.send(&messages("before", 50)).await);

    server.stop().await;
    let during = messages("during", 50);
    for outcome in sink.send(&during).await {
        assert!(matches!(outcome, Outcome::Retry { .. }), "a stopped server is a retry: {outcome:?}");
    }
    server.restart().await;

    // The worker's retries: the client reconnects by itself, with a backoff of its own.
    let mut pending = during.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !pending.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "{} publishes still not acked", pending.len());
        let outcomes = sink.send(&pending).await;
        pending = pending
            .into_iter()
            .zip(outcomes)
            .filter_map(|(m, o)| (!matches!(o, Outcome::Delivered { .. })).then_some(m))
            .collect();
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Publishes the client held while the server was down may have landed on reconnect: the
    // re-sends of those were duplicates.
    assert_eq!(server.stream_messages(STREAM).await, 100, "the store survived, and nothing is there twice");
}

#[tokio::test]
async fn no_stream_for_the_subject_is_a_retry_that_says_so() {
    let server = NatsServer::start().await;
    let mut sink = connect(&plan(&server.url())).await;
    for outcome in sink.send(&messages("x", 3)).await {
        match outcome {
            Outcome::Retry { reason, .. } => {
                assert!(reason.contains("no stream captures subject ferry.items"), "{reason}");
                assert!(reason.contains(STREAM), "{reason}");
            }
            other => panic!("the stream may still be created: a retry, got {other:?}"),
        }
    }
    // Once it exists, the same messages go through.
    server.create_stream(STREAM, &["ferry.>"], WINDOW).await;
    acks(&sink.send(&messages("x", 3)).await);
}

#[tokio::test]
async fn probe_checks_the_stream_captures_the_subject() {
    let server = server_with_stream().await;
    server.create_stream("OTHER", &["other.>"], WINDOW).await;

    assert_eq!(
        probe(&plan(&server.url())).await.expect("the stream is fine"),
        "stream ITEMS: subjects ferry.>, duplicate window 2m"
    );

    let missing =
        probe(&NatsPlan { stream: "NOPE".into(), ..plan(&server.url()) }).await.expect_err("no such stream");
    assert!(
        matches!(&missing, SinkError::Config(m) if m.contains("NOPE") && m.contains(SUBJECT)),
        "{missing}"
    );

    let elsewhere = probe(&NatsPlan { stream: "OTHER".into(), ..plan(&server.url()) })
        .await
        .expect_err("OTHER misses the subject");
    assert!(
        matches!(&elsewhere, SinkError::Config(m) if m.contains("OTHER") && m.contains(SUBJECT) && m.contains("other.>")),
        "{elsewhere}"
    );

    let refusing = RefusingPort::bind();
    let gone =
        probe(&plan(&format!("nats://{TOKEN}@{}", refusing.addr()))).await.expect_err("nothing listens");
    assert!(matches!(gone, SinkError::Unavailable(_)), "{gone}");
    assert!(!gone.to_string().contains(TOKEN), "{gone}");
}

#[tokio::test]
async fn a_token_from_the_plan_or_the_url_opens_the_server_and_never_shows() {
    let server = NatsServer::start_with_token(Some(TOKEN)).await;
    server.create_stream(STREAM, &["ferry.>"], WINDOW).await;

    let with_env = NatsPlan { token: Some(Secret(TOKEN.into())), ..plan(&server.url()) };
    acks(&connect(&with_env).await.send(&messages("env", 3)).await);
    let in_url = plan(&format!("nats://{TOKEN}@127.0.0.1:{}", server.port()));
    acks(&connect(&in_url).await.send(&messages("url", 3)).await);
    assert_eq!(server.stream_messages(STREAM).await, 6);
    assert!(probe(&in_url).await.is_ok());

    let wrong = "wrong-nats-token";
    for bad in [
        NatsPlan { token: Some(Secret(wrong.into())), ..plan(&server.url()) },
        plan(&format!("nats://{wrong}@127.0.0.1:{}", server.port())),
        plan(&server.url()),
    ] {
        let err = Jetstream::connect(&bad).await.err().expect("a wrong token is refused");
        let probed = probe(&bad).await.expect_err("the probe is refused too");
        for text in [err.to_string(), probed.to_string()] {
            assert!(!text.contains(wrong) && !text.contains(TOKEN), "a token shows in {text}");
        }
        assert!(matches!(err, SinkError::Config(_)), "a wrong token is the config's fault: {err}");
    }
}
