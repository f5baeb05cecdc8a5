//! The `gcp-pubsub` sink against a real HTTP server playing the Pub/Sub REST API
//! (`support::pubsub`): batching into requests, message ids matched to messages, attributes and
//! ordering keys, the classification of statuses and transport failures, the emulator's missing
//! token and the service-account flow's bearer token, and `probe`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ferry::config::PubsubPlan;
use ferry::engine::sink::pubsub::{Api, Pubsub, probe_at};
use ferry::engine::sink::{Message, Outcome, SinkError};

use crate::support::pubsub::{PubsubServer, service_account_key};
use crate::support::sink::acks;

const PUBSUB_SCOPE: &str = "https://www.googleapis.com/auth/pubsub";

fn plan(topic: &str, ordering_key: bool) -> PubsubPlan {
    PubsubPlan {
        project: "p".into(),
        topic: topic.into(),
        credentials_file: None,
        ordering_key,
        timeout: Duration::from_secs(5),
    }
}

fn batch(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| Message {
            key: format!("ps/ev:8453:{}:{}", 1000 + i / 10, i % 10),
            source: format!("source-{}", i % 3),
            event: if i % 2 == 0 { "Transfer".into() } else { "Approval".into() },
            body: format!(r#"{{"v":1,"key":"ps/ev:8453:{}:{}","n":{i}}}"#, 1000 + i / 10, i % 10),
        })
        .collect()
}

fn emulator(server: &PubsubServer) -> Api {
    Api::Emulator { host: server.host() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_2500_goes_in_three_requests_and_each_ack_names_its_own_message() {
    let server = PubsubServer::start(&[("p", "t")]).await;
    let mut sink = Pubsub::connect_to(&plan("t", true), 4, emulator(&server)).await.expect("connect");
    let batch = batch(2500);
    let acks = acks(&sink.send(&batch).await);

    assert_eq!(server.publish_sizes().len(), 3, "1,000 + 1,000 + 500");
    let stored = server.messages();
    assert_eq!(stored.len(), 2500);
    let ids: HashSet<&str> =
        acks.iter().map(|a| a.strip_prefix("message ").expect("`message <id>`")).collect();
    assert_eq!(ids.len(), 2500, "every message has its own id");
    for (message, ack) in batch.iter().zip(&acks) {
        let id = ack.strip_prefix("message ").expect("`message <id>`");
        let held = stored.iter().find(|m| m.id == id).expect("the acked id is stored");
        assert_eq!(held.topic, "projects/p/topics/t");
        assert_eq!(held.data, message.body.as_bytes(), "the data is the JSON line");
        assert_eq!(held.attribute("idempotency_key"), Some(message.key.as_str()));
        assert_eq!(held.attribute("source"), Some(message.source.as_str()));
        assert_eq!(held.attribute("event"), Some(message.event.as_str()));
        assert_eq!(held.ordering_key.as_deref(), Some(message.source.as_str()));
    }
}

#[tokio::test]
async fn without_ordering_key_no_message_has_one() {
    let server = PubsubServer::start(&[("p", "t")]).await;
    let mut sink = Pubsub::connect_to(&plan("t", false), 1, emulator(&server)).await.expect("connect");
    acks(&sink.send(&batch(3)).await);
    assert!(server.messages().iter().all(|m| m.ordering_key.is_none()));
}

#[tokio::test]
async fn large_messages_split_requests_under_nine_megabytes() {
    let server = PubsubServer::start(&[("p", "t")]).await;
    let mut sink = Pubsub::connect_to(&plan("t", false), 2, emulator(&server)).await.expect("connect");
    let mut batch = batch(5);
    for message in &mut batch {
        message.body = format!(r#"{{"v":1,"key":"{}","pad":"{}"}}"#, message.key, "a".repeat(3_000_000));
    }
    let acks = acks(&sink.send(&batch).await);
    assert_eq!(acks.len(), 5);
    let sizes = server.publish_sizes();
    assert_eq!(sizes.len(), 3, "two 4 MB messages a request: {sizes:?}");
    assert!(sizes.iter().all(|&s| s <= 9_000_000), "{sizes:?}");
}

#[tokio::test]
async fn a_5xx_retries_a_429_retries_after_and_a_400_fails_with_the_body() {
    let server = PubsubServer::start(&[("p", "t")]).await;
    let mut sink = Pubsub::connect_to(&plan("t", false), 1, emulator(&server)).await.expect("connect");
    let batch = batch(3);

    server.fail_next(500, 1, None, r#"{"error":{"code":500,"status":"INTERNAL"}}"#);
    for outcome in sink.send(&batch).await {
        match outcome {
            Outcome::Retry { reason, after: None } => assert!(reason.contains("500"), "{reason}"),
            other => panic!("500: expected a retry, got {other:?}"),
        }
    }

    server.fail_next(429, 1, Some(7), r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}"#);
    for outcome in sink.send(&batch).await {
        match outcome {
            Outcome::Retry { reason, after } => {
                assert!(reason.contains("429"), "{reason}");
                assert_eq!(after, Some(Duration::from_secs(7)), "Retry-After honoured");
            }
            other => panic!("429: expected a retry, got {other:?}"),
        }
    }

    let refusal = format!(
        r#"{{"error":{{"code":400,"message":"Invalid resource name given (name=projects/p/topics/t).","pad":"{}"}}}}"#,
        "z".repeat(400)
    );
    server.fail_next(400, 1, None, &refusal);
    for outcome in sink.send(&batch).await {
        match outcome {
            Outcome::Failed { reason } => {
                assert!(reason.contains("400") && reason.contains("Invalid resource name given"), "{reason}");
                assert!(reason.len() < 300, "only the start of the body is quoted: {reason}");
            }
            other => panic!("400: expected a failure, got {other:?}"),
        }
    }

    assert!(server.messages().is_empty(), "refused requests store nothing");
    acks(&sink.send(&batch).await);
    assert_eq!(server.messages().len(), 3);
}

#[tokio::test]
async fn a_missing_topic_fails() {
    let server = PubsubServer::start(&[("p", "t")]).await;
    let mut sink = Pubsub::connect_to(&plan("gone", false), 1, emulator(&server)).await.expect("connect");
    for outcome in sink.send(&batch(2)).await {
        assert!(matches!(&outcome, Outcome::Failed { reason } if reason.contains("404")), "{outcome:?}");
    }
}

#[tokio::test]
async fn a_timeout_and_a_refused_connection_retry() {
    let server = PubsubServer::start(&[("p", "t")]).await;
    let mut slow = plan("t", false);
    slow.timeout = Duration::from_millis(300);
    server.set_delay(Duration::from_secs(3));
    let mut sink = Pubsub::connect_to(&slow, 1, emulator(&server)).await.expect("connect");
    let started = Instant::now();
    for outcome in sink.send(&batch(2)).await {
        assert!(
            matches!(&outcome, Outcome::Retry { reason, .. } if reason.contains("no answer")),
            "timeout: {outcome:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(2), "the plan's timeout bounds a request");

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address")
    };
    let api = Api::Emulator { host: closed.to_string() };
    let mut sink = Pubsub::connect_to(&plan("t", false), 1, api).await.expect("connect");
    for outcome in sink.send(&batch(2)).await {
        assert!(
            matches!(&outcome, Outcome::Retry { reason, .. } if reason.contains("cannot connect")),
            "refused: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn the_emulator_gets_no_authorization_header() {
    let server = PubsubServer::start(&[("p", "t")]).await;
    let mut sink = Pubsub::connect_to(&plan("t", false), 1, emulator(&server)).await.expect("connect");
    acks(&sink.send(&batch(2)).await);
    let auth = server.authorizations();
    assert_eq!(auth, vec![None], "one publish, without Authorization");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_credentials_each_request_carries_the_token_the_server_issued() {
    let server = PubsubServer::start(&[("p", "t")]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (key_file, token) = server.with_credentials(dir.path());
    let mut plan = plan("t", false);
    plan.credentials_file = Some(key_file);
    let api = Api::Google { base: server.url() };
    let mut sink = Pubsub::connect_to(&plan, 2, api.clone()).await.expect("connect with the key file");

    acks(&sink.send(&batch(1500)).await);
    acks(&sink.send(&batch(3)).await);
    let auth = server.authorizations();
    assert_eq!(auth.len(), 3);
    assert!(auth.iter().all(|a| a.as_deref() == Some(format!("Bearer {token}").as_str())), "{auth:?}");
    let assertions = server.assertions();
    assert_eq!(assertions.len(), 1, "one token, reused: {assertions:?}");
    assert_eq!(assertions[0]["scope"], PUBSUB_SCOPE);
    assert_eq!(assertions[0]["aud"], format!("{}/token", server.url()));
    assert_eq!(assertions[0]["iss"], "ferry-test@ferry-test.iam.gserviceaccount.com");

    // The same server refuses a request without the token: what the header check above relies on.
    let mut anonymous = Pubsub::connect_to(&plan, 1, emulator(&server)).await.expect("connect");
    for outcome in anonymous.send(&batch(1)).await {
        assert!(matches!(&outcome, Outcome::Failed { reason } if reason.contains("401")), "{outcome:?}");
    }
    assert_eq!(server.messages().len(), 1503);
}

#[tokio::test]
async fn a_token_that_cannot_be_had_is_a_retry_that_shows_no_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address")
    };
    let key_file = service_account_key(dir.path(), &format!("http://{closed}/token"));
    let key_text = std::fs::read_to_string(&key_file).expect("the key file");
    let server = PubsubServer::start(&[("p", "t")]).await;
    let mut plan = plan("t", false);
    plan.credentials_file = Some(key_file);
    let mut sink = Pubsub::connect_to(&plan, 1, Api::Google { base: server.url() }).await.expect("connect");
    for outcome in sink.send(&batch(2)).await {
        match outcome {
            Outcome::Retry { reason, .. } => {
                assert!(reason.contains("no access token from the credentials file"), "{reason}");
                assert!(!reason.contains("PRIVATE KEY") && !key_text.contains(&reason), "{reason}");
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }
    assert!(server.publish_sizes().is_empty(), "nothing published without a token");
}

#[tokio::test]
async fn an_unreadable_or_unusable_key_file_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::Google { base: "http://127.0.0.1:9".into() };
    let secret_looking = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-not-a-real-key";
    let cases = [
        ("missing.json", None, "cannot read the credentials file"),
        ("not-json.json", Some("{ private_key: nope".to_string()), "is not JSON"),
        (
            "user.json",
            Some(r#"{"type":"authorized_user","refresh_token":"r"}"#.to_string()),
            "`authorized_user`",
        ),
        (
            "no-email.json",
            Some(r#"{"type":"service_account","private_key":"k","token_uri":"t"}"#.into()),
            "no `client_email`",
        ),
        (
            "bad-key.json",
            Some(format!(
                r#"{{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\n{secret_looking}\n-----END PRIVATE KEY-----\n","client_email":"a@b","token_uri":"http://127.0.0.1:9/token"}}"#
            )),
            "bad-key.json",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        if let Some(text) = text {
            std::fs::write(&path, text).expect("written");
        }
        let mut plan = plan("t", false);
        plan.credentials_file = Some(path);
        match Pubsub::connect_to(&plan, 1, api.clone()).await {
            Err(SinkError::Config(reason)) => {
                assert!(reason.contains(expected), "{name}: {reason}");
                assert!(
                    !reason.contains(secret_looking) && !reason.contains("nope"),
                    "{name} shows its content: {reason}"
                );
            }
            Err(other) => panic!("{name}: expected a config error, got {other}"),
            Ok(_) => panic!("{name}: expected a config error, connected"),
        }
    }
}

#[tokio::test]
async fn probe_finds_the_topic_or_says_it_is_missing_or_refused() {
    let server = PubsubServer::start(&[("p", "t")]).await;
    assert_eq!(
        probe_at(&plan("t", false), emulator(&server)).await.expect("the topic"),
        "topic projects/p/topics/t exists"
    );
    match probe_at(&plan("gone", false), emulator(&server)).await {
        Err(SinkError::Config(reason)) => {
            assert!(reason.contains("no topic projects/p/topics/gone"), "{reason}")
        }
        other => panic!("a missing topic: expected a config error, got {other:?}"),
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let (key_file, _token) = server.with_credentials(dir.path());
    let mut with_key = plan("t", false);
    with_key.credentials_file = Some(key_file.clone());
    let api = Api::Google { base: server.url() };
    assert_eq!(
        probe_at(&with_key, api).await.expect("the topic, with the token"),
        "topic projects/p/topics/t exists"
    );
    match probe_at(&plan("t", false), emulator(&server)).await {
        Err(SinkError::Config(reason)) => assert!(reason.contains("401"), "{reason}"),
        other => panic!("no token: expected a config error, got {other:?}"),
    }
    // A key whose token endpoint is not there: the credentials are named, their content is not.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let dead = service_account_key(other_dir.path(), "http://127.0.0.1:9/token");
    let mut dead_key = plan("t", false);
    dead_key.credentials_file = Some(dead.clone());
    match probe_at(&dead_key, Api::Google { base: server.url() }).await {
        Err(SinkError::Config(reason)) => {
            assert!(reason.contains(&dead.display().to_string()), "{reason}");
            assert!(!reason.contains("PRIVATE KEY"), "{reason}");
        }
        other => panic!("no token: expected a config error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_takes_many_requests_at_once_over_kept_alive_connections() {
    let server = PubsubServer::start(&[("p", "t")]).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/projects/p/topics/t:publish", server.url());
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..50 {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            for i in 0..20 {
                let body = serde_json::json!({"messages": [{"data": "eA==", "attributes": {"idempotency_key": format!("{task}/{i}")}}]});
                let response = client.post(&url).body(body.to_string()).send().await.expect("an answer");
                assert_eq!(response.status(), 200);
            }
        });
    }
    let deadline = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(done) = tasks.join_next().await {
            done.expect("a publishing task");
        }
    });
    deadline.await.expect("1,000 requests within 30 s");
    let counts = server.key_counts();
    assert_eq!(counts.len(), 1000);
    assert!(counts.values().all(|&n| n == 1));
    let ids: HashSet<String> = server.messages().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, (1..=1000).map(|i| i.to_string()).collect());
}
