//! Crash safety of sinks: `ferry watch` killed with SIGKILL at ten random moments while items keep
//! coming, routed to all five sink kinds at once, then left to finish. After every round, the
//! exactly-once sinks (JSONL, Redis, JetStream) hold no key twice; in the end each holds all 1,000
//! keys once, and the at-least-once sinks (webhook, Pub/Sub) hold every key, any key twice only
//! within the bound one killed round can repeat (a round of each sink, per kill).
//!
//! The seed is printed; `FERRY_CRASH_SEED=<n>` runs another.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deliver_crash::{kill, round_log, spawn_with};
use crate::sinks::Source;
use crate::support::nats::NatsServer;
use crate::support::pubsub::PubsubServer;
use crate::support::redis::RedisServer;
use crate::support::webhook::WebhookReceiver;

const SEED: u64 = 0x5e11_c4a5;
const ROUNDS: usize = 10;
const PER_ROUND: u64 = 100;
/// What one killed round can make an at-least-once sink see again: the deliveries written
/// `sending` and not settled, at most one round of the sink's worker (32 for a webhook at the
/// default concurrency of 16, 4,000 for Pub/Sub).
const WEBHOOK_ROUND: usize = 32;
const PUBSUB_ROUND: usize = 4000;
/// How long each hand-over waits before and after, in the test build.
const PAUSE_MS: u64 = 150;

pub(crate) struct Sinks {
    pub(crate) webhook: WebhookReceiver,
    pub(crate) redis: RedisServer,
    pub(crate) nats: NatsServer,
    pub(crate) pubsub: PubsubServer,
}

impl Sinks {
    pub(crate) async fn start() -> Sinks {
        let redis = RedisServer::start_persistent().await;
        let nats = NatsServer::start().await;
        nats.create_stream("FERRY", &["ferry.>"], Duration::from_secs(3600)).await;
        let pubsub = PubsubServer::start(&[("demo", "items")]).await;
        Sinks { webhook: WebhookReceiver::start(None), redis, nats, pubsub }
    }

    /// The five targets, `targets:` YAML.
    pub(crate) fn targets(&self, dir: &Path) -> String {
        self.targets_of(dir, &["hook", "archive", "stream", "js", "pubsub"])
    }

    /// Some of the five targets (`hook`, `archive`, `stream`, `js`, `pubsub`), `targets:` YAML.
    pub(crate) fn targets_of(&self, dir: &Path, names: &[&str]) -> String {
        let yaml = |name: &str| match name {
            "hook" => {
                format!("  hook:\n    kind: webhook\n    url: \"{}\"\n    timeout: 2s\n", self.webhook.url())
            }
            "archive" => {
                format!("  archive:\n    kind: jsonl\n    path: \"{}\"\n", dir.join("items.jsonl").display())
            }
            "stream" => format!(
                "  stream:\n    kind: redis-stream\n    url: \"{}\"\n    stream: items\n    timeout: 2s\n",
                self.redis.url()
            ),
            "js" => format!(
                "  js:\n    kind: nats-jetstream\n    url: \"{}\"\n    subject: ferry.items\n    stream: FERRY\n    timeout: 2s\n",
                self.nats.url()
            ),
            "pubsub" => {
                "  pubsub:\n    kind: gcp-pubsub\n    project: demo\n    topic: items\n    timeout: 2s\n"
                    .to_string()
            }
            other => panic!("no sink {other}"),
        };
        names.iter().map(|n| yaml(n)).collect()
    }

    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![("PUBSUB_EMULATOR_HOST", self.pubsub.host())]
    }

    /// Keys in the JSONL file, with how often; every line must be a whole message.
    pub(crate) fn jsonl_keys(dir: &Path) -> BTreeMap<String, usize> {
        let text = std::fs::read_to_string(dir.join("items.jsonl")).unwrap_or_default();
        let mut keys = BTreeMap::new();
        for line in text.lines() {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("a broken JSONL line ({e}): {line}"));
            *keys.entry(v["key"].as_str().expect("a key").to_string()).or_insert(0) += 1;
        }
        keys
    }

    /// Keys in the Redis stream, with how often.
    pub(crate) async fn redis_keys(&self) -> BTreeMap<String, usize> {
        let mut conn = self.redis.connection().await;
        let entries: Vec<(String, Vec<String>)> =
            redis::cmd("XRANGE").arg("items").arg("-").arg("+").query_async(&mut conn).await.expect("XRANGE");
        let mut keys = BTreeMap::new();
        for (_, fields) in entries {
            let key =
                fields.chunks(2).find(|kv| kv[0] == "key").map(|kv| kv[1].clone()).expect("a key field");
            *keys.entry(key).or_insert(0) += 1;
        }
        keys
    }

    pub(crate) fn webhook_keys(&self) -> BTreeMap<String, usize> {
        let mut keys = BTreeMap::new();
        for r in self.webhook.received() {
            *keys.entry(r.key.clone()).or_insert(0) += 1;
        }
        keys
    }

    pub(crate) fn pubsub_keys(&self) -> BTreeMap<String, usize> {
        self.pubsub.key_counts().into_iter().collect()
    }
}

/// Deliveries the store holds as `sending`: what a kill left between write-ahead and outcome.
/// Read from a copy (a killed writer leaves the file to be recovered by the next writer, and
/// this test must not be that writer).
fn sending(dir: &Path) -> u64 {
    let copy = tempfile::tempdir().expect("tempdir");
    let path = copy.path().join("ferry.redb");
    std::fs::copy(dir.join("ferry.redb"), &path).expect("copy the store");
    let store = ferry::store::Store::create_or_open(&path, None).expect("the copy opens");
    store.delivery_counts(ferry::store::keys::SINK_CHAIN, |_| true).expect("counts").sending
}

fn twice(keys: &BTreeMap<String, usize>) -> Vec<&String> {
    keys.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k).collect()
}

/// Extra deliveries beyond once.
fn repeats(keys: &BTreeMap<String, usize>) -> usize {
    keys.values().map(|n| n.saturating_sub(1)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_items_reach_five_sinks_once_across_ten_kills_of_watch() {
    let seed = std::env::var("FERRY_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    eprintln!("sink crash seed: {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut source = Source::start().await;
    let sinks = Sinks::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    source.write_config(dir.path(), &sinks.targets(dir.path()));
    let mut env: Vec<(&str, String)> = sinks.env();
    // Each hand-over waits a moment before and after (a test build's hook), so that kills land
    // while deliveries are `sending`: written but not handed over, or handed over, not settled.
    env.push(("FERRY_TEST_SINK_PAUSE_MS", PAUSE_MS.to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut rounds = Vec::new();
    let mut mid_hand_over = 0;
    for round in 0..ROUNDS {
        let mut child = spawn_with(dir.path(), &["watch"], round, &env);
        // Items come while it runs, so that kills land while it ingests and hands over.
        tokio::time::sleep(Duration::from_millis(rng.u64(100..500))).await;
        source.emit(PER_ROUND).await;
        tokio::time::sleep(Duration::from_millis(rng.u64(100..1500))).await;
        let how = kill(&mut child);
        let in_flight = sending(dir.path());
        if in_flight > 0 {
            mid_hand_over += 1;
        }
        let (jsonl, redis) = (Sinks::jsonl_keys(dir.path()), sinks.redis_keys().await);
        rounds.push(format!(
            "round {round}: watch {how}, {in_flight} left sending; jsonl {}, redis {}, webhook {}, pubsub {} of {}",
            jsonl.len(),
            redis.len(),
            sinks.webhook_keys().len(),
            sinks.pubsub_keys().len(),
            source.items.len()
        ));
        assert!(
            twice(&jsonl).is_empty(),
            "round {round}: JSONL holds keys twice: {:?}\n{}",
            twice(&jsonl),
            round_log(dir.path(), round)
        );
        assert!(
            twice(&redis).is_empty(),
            "round {round}: Redis holds keys twice: {:?}\n{}",
            twice(&redis),
            round_log(dir.path(), round)
        );
    }
    eprintln!("{}", rounds.join("\n"));
    let killed = rounds.iter().filter(|r| r.contains("killed")).count();
    assert!(
        killed >= ROUNDS / 2,
        "only {killed} of {ROUNDS} rounds were killed at work:\n{}",
        rounds.join("\n")
    );
    // Kills that found nothing `sending` would not test the recovery.
    assert!(
        mid_hand_over >= 3,
        "only {mid_hand_over} of {ROUNDS} kills left deliveries sending:\n{}",
        rounds.join("\n")
    );

    // Left alone, a last watch hands over the rest.
    let mut last = spawn_with(dir.path(), &["watch"], ROUNDS, &env);
    let total = source.items.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = Sinks::jsonl_keys(dir.path()).len() == total
            && sinks.redis_keys().await.len() == total
            && sinks.nats.stream_messages("FERRY").await as usize >= total
            && sinks.webhook_keys().len() == total
            && sinks.pubsub_keys().len() == total;
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the last watch did not finish:\n{}\n{}",
            rounds.join("\n"),
            round_log(dir.path(), ROUNDS)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    last.signal("INT");
    let status = last.wait_within(Duration::from_secs(20)).await.expect("watch stops");
    assert_eq!(status.code(), Some(130), "{}", round_log(dir.path(), ROUNDS));

    let expected = |target: &str| source.keys(target);
    let jsonl = Sinks::jsonl_keys(dir.path());
    let redis = sinks.redis_keys().await;
    for key in expected("archive") {
        assert_eq!(jsonl.get(&key).copied(), Some(1), "JSONL {key}");
    }
    for key in expected("stream") {
        assert_eq!(redis.get(&key).copied(), Some(1), "Redis {key}");
    }
    assert_eq!(jsonl.len(), total);
    assert_eq!(redis.len(), total);
    assert_eq!(sinks.nats.stream_messages("FERRY").await as usize, total, "JetStream dropped every re-send");
    let webhook = sinks.webhook_keys();
    let pubsub = sinks.pubsub_keys();
    for key in expected("hook") {
        assert!(webhook.get(&key).is_some_and(|n| *n >= 1), "webhook {key}");
    }
    for key in expected("pubsub") {
        assert!(pubsub.get(&key).is_some_and(|n| *n >= 1), "Pub/Sub {key}");
    }
    eprintln!("repeats after {killed} kills: webhook {}, pubsub {}", repeats(&webhook), repeats(&pubsub));
    assert!(repeats(&webhook) <= killed * WEBHOOK_ROUND, "webhook saw {} repeats", repeats(&webhook));
    assert!(repeats(&pubsub) <= killed * PUBSUB_ROUND, "Pub/Sub saw {} repeats", repeats(&pubsub));

    // The store agrees: every delivery confirmed, nothing left.
    let out = crate::sinks::ferry_env(dir.path(), &["push", "--no-sync", "--json", "--timeout", "30s"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", crate::support::output::text(&out));
}

/// Redis, then NATS, stopped while `watch` hands items over and started again: delivery resumes,
/// and each stream holds every key once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_nats_restarted_mid_run_lose_nothing_and_double_nothing() {
    let mut source = Source::start().await;
    let mut sinks = Sinks::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    source.write_config(dir.path(), &sinks.targets_of(dir.path(), &["stream", "js"]));
    let mut watch = crate::deliver_crash::spawn(dir.path(), &["watch"], 0);

    let arrived = async |sinks: &Sinks, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (redis, nats) =
                (sinks.redis_keys().await.len(), sinks.nats.stream_messages("FERRY").await as usize);
            if redis >= n && nats >= n {
                return;
            }
            assert!(Instant::now() < deadline, "redis has {redis}, JetStream {nats} of {n}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    source.emit(100).await;
    arrived(&sinks, 100).await;

    sinks.redis.stop();
    source.emit(100).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sinks.redis.restart().await;
    arrived(&sinks, 200).await;

    sinks.nats.stop().await;
    source.emit(100).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sinks.nats.restart().await;
    source.emit(100).await;
    arrived(&sinks, 400).await;

    watch.signal("INT");
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch stops");
    assert_eq!(status.code(), Some(130), "{}", round_log(dir.path(), 0));
    let redis = sinks.redis_keys().await;
    for key in source.keys("stream") {
        assert_eq!(redis.get(&key).copied(), Some(1), "Redis {key}");
    }
    assert_eq!(redis.len(), 400);
    assert_eq!(sinks.nats.stream_messages("FERRY").await, 400, "JetStream holds each item once");
    // The whole stderr: a line per delivered message (the audit trail) pushes the outages far
    // from its tail.
    let stderr = std::fs::read_to_string(dir.path().join("round-00.err")).unwrap_or_default();
    assert!(
        stderr.contains("sink failing") || stderr.contains("trying again"),
        "the outages were seen:\n{}",
        round_log(dir.path(), 0)
    );
}

/// `check-config --online` reaches every sink the way delivery would, and names each one that
/// cannot work: a dead Redis, a JetStream stream that does not capture the subject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_online_reaches_every_sink_and_names_the_ones_that_cannot_work() {
    let source = Source::start().await;
    let mut sinks = Sinks::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    source.write_config(dir.path(), &sinks.targets(dir.path()));
    let env = sinks.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = crate::sinks::ferry_env(dir.path(), &["check-config", "--online", "--json"], &env);
    let report = crate::support::output::json_or_null(&out);
    assert_eq!(out.status.code(), Some(0), "{}", crate::support::output::text(&out));
    let online = report["online"]["sinks"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = online.iter().filter_map(|s| s["kind"].as_str()).collect();
    assert_eq!(kinds, ["jsonl", "webhook", "nats-jetstream", "gcp-pubsub", "redis-stream"], "{report}");
    assert!(online.iter().all(|s| s["reachable"] == true), "{report}");
    let detail = |target: &str| {
        online
            .iter()
            .find(|s| s["target"] == target)
            .and_then(|s| s["detail"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(detail("stream").starts_with("PONG"), "{report}");
    assert!(detail("js").contains("FERRY"), "{report}");
    assert!(detail("pubsub").contains("items"), "{report}");

    // Redis gone, and a subject no stream captures.
    sinks.redis.stop();
    let broken = sinks.targets(dir.path()).replace("subject: ferry.items", "subject: other.items");
    source.write_config(dir.path(), &broken);
    let out = crate::sinks::ferry_env(dir.path(), &["check-config", "--online"], &env);
    let said = crate::support::output::text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("targets.stream") && said.contains("redis-stream sink"), "{said}");
    assert!(said.contains("targets.js") && said.contains("other.items"), "{said}");
    assert!(
        !said.contains("targets.hook") && !said.contains("targets.pubsub"),
        "only the broken ones: {said}"
    );
}
