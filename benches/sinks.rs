//! Sink benchmark (not a timed test): `cargo bench --bench sinks`.
//!
//! One anvil emits a backlog of Pings (100,000 at full scale), and `ferry backfill` stores them
//! with a pending delivery to each of five sink targets: a webhook (the test receiver, signed),
//! a JSONL file, a Redis stream (`redis-server` without persistence), a JetStream stream
//! (`nats-server -js`, file storage) and Pub/Sub (the test publish endpoint). Then, for each sink
//! on its own, from a copy of that store: the wall time of the real `ferry push --no-sync
//! --target <sink>` process (exec to exit, exit 0), every key checked at the receiver (exactly
//! once for JSONL, Redis and JetStream, at least once for the webhook and Pub/Sub), its peak RSS
//! and CPU time; and right after it, a baseline doing the same hand-over with the plain client
//! the way its own benchmark tools do, to fresh state on the same server:
//! - webhook: reqwest POSTs, signed the same way, 16 in flight (ferry's default concurrency);
//! - JSONL: 500 lines per `write`, one `sync_data` per 500;
//! - Redis: `XADD` in pipelines of 500 on one connection (`redis-benchmark -P 500`);
//! - JetStream: publishes with `Nats-Msg-Id`, acks awaited in windows of 1,000 (`nats bench`);
//! - Pub/Sub: publish requests of 500 messages, 16 in flight.
//!
//! The baselines send the body of a real message (the first line ferry wrote to the JSONL file)
//! with each item's own key. Ratio = ferry items/s ÷ baseline items/s; goal ≥ 0.5 for each.
//!
//! Where ferry's time goes, for each sink: its rounds, from the `round` lines of its debug log
//! (how many, ms from one to the next, start-up before the first and exit after the last), an
//! idle push (nothing left to do) for the fixed cost, and the store's share of a round timed
//! alone, with no sink, on another copy of the backlog: reading what is due and building the
//! messages, committing `sending`, committing the outcomes. For Pub/Sub also the baseline with
//! one request in flight, which is what ferry's rounds of 500 (one request each) allow.
//!
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version that checks the
//! harness itself: every key arrives, exactly once where the sink allows it, for ferry and for
//! the baselines.

// The helpers shared with the test suite.
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolCall;
use async_nats::jetstream::{self, consumer};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ferry::config::DEFAULT_SINK_CONCURRENCY;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::command::{ferry_command, output_within};
use support::devnet::{Anvil, IEventEmitter};
use support::hex::hex_u64;
use support::nats::NatsServer;
use support::output::{self, last_lines};
use support::process::{KillOnDrop, peak_rss_kib};
use support::pubsub::PubsubServer;
use support::redis::RedisServer;
use support::webhook::WebhookReceiver;

struct Scale {
    /// Pings in the backlog.
    events: u64,
    /// Pings per `emitMany` transaction.
    per_tx: u64,
}

const FULL: Scale = Scale { events: 100_000, per_tx: 1_000 };
const SMOKE: Scale = Scale { events: 500, per_tx: 100 };

/// Messages per write, pipeline or publish request in the baselines.
const BATCH: usize = 500;
/// JetStream publishes whose acks are awaited together in the baseline.
const ACK_WINDOW: usize = 1_000;
const SECRET: &str = "sink-bench-webhook-secret";
const GOAL: f64 = 0.5;
/// Rounds the store alone is timed over, per sink.
const PROFILE_ROUNDS: usize = 60;
/// How long one push may take before the bench gives up on it.
const PUSH_LIMIT: Duration = Duration::from_secs(30 * 60);
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// Each sink's bound on a hand-over: generous, so a loaded machine does not turn into retries.
const SINK_TIMEOUT: &str = "10s";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Webhook,
    Jsonl,
    Redis,
    Jetstream,
    Pubsub,
}

/// As the table lists them.
const KINDS: [Kind; 5] = [Kind::Webhook, Kind::Jsonl, Kind::Redis, Kind::Jetstream, Kind::Pubsub];
/// As they run: JSONL first, as its output is the baselines' template.
const RUN_ORDER: [Kind; 5] = [Kind::Jsonl, Kind::Webhook, Kind::Redis, Kind::Jetstream, Kind::Pubsub];

impl Kind {
    /// The target's name in the config.
    fn target(self) -> &'static str {
        match self {
            Kind::Webhook => "hook",
            Kind::Jsonl => "archive",
            Kind::Redis => "stream",
            Kind::Jetstream => "js",
            Kind::Pubsub => "pubsub",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Jsonl => "jsonl",
            Kind::Redis => "redis-stream",
            Kind::Jetstream => "nats-jetstream",
            Kind::Pubsub => "gcp-pubsub",
        }
    }

    /// Whether the sink holds each key once (a webhook and Pub/Sub are at least once).
    fn exactly_once(self) -> bool {
        matches!(self, Kind::Jsonl | Kind::Redis | Kind::Jetstream)
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { FULL } else { SMOKE };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(scale));
}

async fn run(scale: Scale) {
    let servers = Servers::start().await;
    let backlog = tempfile::tempdir().expect("tempdir");
    let (anvil, emitter, items) = emit(&scale).await;
    write_config(backlog.path(), &anvil, emitter, &servers);
    let started = Instant::now();
    let out = output_within(
        servers.ferry(backlog.path(), &["backfill", "--from", "0", "--to", "latest", "--json", "-q"]),
        Duration::from_secs(20 * 60),
    )
    .await
    .expect("backfill finishes within 20 minutes")
    .expect("ferry backfill runs");
    assert!(out.status.success(), "backfill failed: {}", output::text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["sources"][0]["events"].as_u64(), Some(scale.events), "backfill stored every Ping");
    let store_mib = std::fs::metadata(backlog.path().join("ferry.redb")).map_or(0, |m| m.len() >> 20);
    println!(
        "backlog: {} Pings, backfilled in {:.1} s with a pending delivery to each of 5 sinks (store {store_mib} MiB); \
         {} cores, load average {}\n",
        scale.events,
        started.elapsed().as_secs_f64(),
        cores(),
        load_average()
    );

    let mut template = None;
    let mut rows = Vec::new();
    for kind in RUN_ORDER {
        let push = push(backlog.path(), &servers, kind, scale.events).await;
        let want: Vec<String> = items.iter().map(|i| format!("{}/{i}", kind.target())).collect();
        check(kind, "ferry", &servers.keys(kind, push.dir.path()).await, &want);
        let template = template.get_or_insert_with(|| Template::from_jsonl(push.dir.path()));
        let messages = template.messages(kind.target(), &items);
        let base = servers.baseline(kind, &messages).await;
        check(kind, "baseline", &servers.baseline_keys(kind, &base).await, &want);
        let serial =
            if kind == Kind::Pubsub { Some(pubsub_serial(&servers.pubsub, &messages).await) } else { None };
        let per_round = (scale.events as usize).div_ceil(push.rounds.count);
        let rounds = push.rounds.count.min(PROFILE_ROUNDS);
        let profile = tokio::task::block_in_place(|| {
            StoreProfile::run(backlog.path(), kind.target(), per_round, rounds)
        });
        let row = Row {
            kind,
            ferry_rate: scale.events as f64 / push.secs,
            base_rate: scale.events as f64 / base.secs,
            push,
            profile,
            serial,
        };
        println!(
            "{:<15} ferry {:>8.0} items/s, baseline {:>8.0} items/s",
            kind.label(),
            row.ferry_rate,
            row.base_rate
        );
        rows.push(row);
    }
    rows.sort_by_key(|r| KINDS.iter().position(|k| *k == r.kind));

    println!(
        "\n{} items per sink, {} cores; ratio = ferry items/s ÷ baseline items/s (goal >= {GOAL})",
        scale.events,
        cores()
    );
    println!(
        "  {:<15} {:>14} {:>17} {:>6} {:>13} {:>13} {:>12}",
        "sink", "ferry items/s", "baseline items/s", "ratio", "ferry wall s", "peak RSS MiB", "ferry CPU s"
    );
    for r in &rows {
        let ratio = r.ferry_rate / r.base_rate;
        println!(
            "  {:<15} {:>14.0} {:>17.0} {:>6.2} {:>13.2} {:>13.1} {:>12.2}{}",
            r.kind.label(),
            r.ferry_rate,
            r.base_rate,
            ratio,
            r.push.secs,
            r.push.rss_kib as f64 / 1024.0,
            r.push.cpu_secs,
            if ratio < GOAL { "  below goal" } else { "" }
        );
    }
    println!("\nwhere ferry's time goes (its round log; the store alone on a copy of the backlog, no sink)");
    for r in &rows {
        r.explain();
    }
}

/// What was measured for one sink.
struct Row {
    kind: Kind,
    push: Push,
    ferry_rate: f64,
    base_rate: f64,
    profile: StoreProfile,
    /// Pub/Sub only: the baseline with one request in flight (see [`pubsub_serial`]).
    serial: Option<(f64, f64, String)>,
}

impl Row {
    fn explain(&self) {
        let (r, p) = (self.push.rounds, &self.profile);
        println!(
            "  {:<15} {} rounds of {}: first ended {:.2} s after exec, then {} ms each, last at {:.2} s, exit at \
             {:.2} s; an idle push takes {:.2} s",
            self.kind.label(),
            r.count,
            p.per_round,
            r.first_at,
            r.ms_each(),
            r.last_at,
            self.push.secs,
            self.push.idle_secs
        );
        println!(
            "  {:<15} store alone, {} rounds: read + build {:.2} ms, commit sending {:.2} ms, commit outcomes {:.2} ms \
             (puts {:.2} ms of the two) = {:.2} ms a round -> at most {:.0} items/s",
            "",
            p.rounds,
            p.read_ms,
            p.sending_ms,
            p.settle_ms,
            p.puts_ms,
            p.ms_each(),
            p.ceiling()
        );
        if let Some((rate, first_ms, mean_ms)) = &self.serial {
            println!(
                "  {:<15} baseline with one request in flight: {rate:.0} items/s; the first request {first_ms:.1} ms \
                 (fresh connection), the others {mean_ms} ms each (back to back on one connection)",
                ""
            );
        }
    }
}

/// The receivers, one of each, serving ferry and the baselines alike.
struct Servers {
    webhook: WebhookReceiver,
    redis: RedisServer,
    nats: NatsServer,
    pubsub: PubsubServer,
}

/// Where each baseline writes: fresh state next to ferry's.
const BASE_STREAM: &str = "base";
const BASE_JS_STREAM: &str = "BASE";
const BASE_SUBJECT: &str = "base.items";
const BASE_TOPIC: &str = "base";
/// Where the Pub/Sub baseline with one request in flight publishes.
const SERIAL_TOPIC: &str = "serial";
/// JetStream's default duplicate window, for both streams.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl Servers {
    async fn start() -> Servers {
        let redis = RedisServer::start().await;
        let nats = NatsServer::start().await;
        nats.create_stream("FERRY", &["ferry.>"], DUPLICATE_WINDOW).await;
        nats.create_stream(BASE_JS_STREAM, &["base.>"], DUPLICATE_WINDOW).await;
        let pubsub =
            PubsubServer::start(&[("demo", "items"), ("demo", BASE_TOPIC), ("demo", SERIAL_TOPIC)]).await;
        Servers { webhook: WebhookReceiver::start(Some(SECRET)), redis, nats, pubsub }
    }

    /// `ferry ARGS…` with the webhook secret and the Pub/Sub endpoint in its environment.
    fn ferry(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = ferry_command(dir);
        cmd.args(args).env("WEBHOOK_SECRET", SECRET).env("PUBSUB_EMULATOR_HOST", self.pubsub.host());
        cmd
    }

    /// How often each key reached the sink from ferry.
    async fn keys(&self, kind: Kind, dir: &Path) -> BTreeMap<String, usize> {
        match kind {
            Kind::Webhook => self.webhook.key_counts(),
            Kind::Jsonl => jsonl_keys(&dir.join("items.jsonl")),
            Kind::Redis => redis_keys(&self.redis, "items").await,
            Kind::Jetstream => jetstream_keys(&self.nats, "FERRY").await,
            Kind::Pubsub => topic_keys(&self.pubsub, "projects/demo/topics/items"),
        }
    }

    /// How often each key reached the sink from the baseline.
    async fn baseline_keys(&self, kind: Kind, base: &Baseline) -> BTreeMap<String, usize> {
        match kind {
            Kind::Webhook => self.webhook.key_counts(),
            Kind::Jsonl => jsonl_keys(&base.dir.path().join("base.jsonl")),
            Kind::Redis => redis_keys(&self.redis, BASE_STREAM).await,
            Kind::Jetstream => jetstream_keys(&self.nats, BASE_JS_STREAM).await,
            Kind::Pubsub => topic_keys(&self.pubsub, &format!("projects/demo/topics/{BASE_TOPIC}")),
        }
    }

    async fn baseline(&self, kind: Kind, messages: &[(String, String)]) -> Baseline {
        let dir = tempfile::tempdir().expect("tempdir");
        if kind == Kind::Webhook {
            // What ferry delivered was counted: the receiver now counts the baseline's.
            self.webhook.clear();
        }
        let started = Instant::now();
        match kind {
            Kind::Webhook => webhook_baseline(&self.webhook.url(), messages).await,
            Kind::Jsonl => jsonl_baseline(&dir.path().join("base.jsonl"), messages),
            Kind::Redis => redis_baseline(&self.redis, messages).await,
            Kind::Jetstream => jetstream_baseline(&self.nats, messages).await,
            Kind::Pubsub => {
                pubsub_baseline(&self.pubsub.url(), BASE_TOPIC, messages, DEFAULT_SINK_CONCURRENCY).await;
            }
        }
        Baseline { secs: started.elapsed().as_secs_f64(), dir }
    }
}

struct Baseline {
    secs: f64,
    dir: tempfile::TempDir,
}

/// One anvil with `scale.events` Pings from `emitMany`, a block mined on top; the item of each.
async fn emit(scale: &Scale) -> (Anvil, Address, Vec<String>) {
    // emitMany(1000) uses about 3M gas: well inside the default limit, which is raised anyway so
    // that a larger batch per transaction would fit too.
    let anvil = Anvil::start_with(31337, &["--gas-limit", "300000000"]).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    let mut items = Vec::with_capacity(scale.events as usize);
    let mut left = scale.events;
    while left > 0 {
        let n = left.min(scale.per_tx);
        let call = IEventEmitter::emitManyCall { n: U256::from(n) }.abi_encode();
        let receipt = anvil.send(emitter, call).await;
        let block = hex_u64(&receipt["blockNumber"]);
        let logs = receipt["logs"].as_array().expect("logs");
        assert_eq!(logs.len() as u64, n, "one Ping per count");
        items.extend(logs.iter().map(|log| format!("ev:31337:{block}:{}", hex_u64(&log["logIndex"]))));
        left -= n;
    }
    anvil.mine(1).await;
    (anvil, emitter, items)
}

/// The Pings routed to all five sinks. The JSONL path is relative, so each copy of the backlog
/// writes its own file.
fn write_config(dir: &Path, anvil: &Anvil, emitter: Address, servers: &Servers) {
    let yaml = format!(
        "chains:\n  src:\n    chain_id: 31337\n    rpc: [\"{rpc}\"]\n    confirmations: 1\n\
         sources:\n  pings:\n    kind: evm\n    chain: src\n    contracts:\n      - address: \"{contract}\"\n        \
         events: [\"event Ping(uint256 indexed seq, address indexed from, bytes32 data)\"]\n\
         targets:\n\
         \x20 hook:\n    kind: webhook\n    url: \"{hook}\"\n    secret_env: WEBHOOK_SECRET\n    timeout: {t}\n\
         \x20 archive:\n    kind: jsonl\n    path: items.jsonl\n\
         \x20 stream:\n    kind: redis-stream\n    url: \"{redis}\"\n    stream: items\n    timeout: {t}\n\
         \x20 js:\n    kind: nats-jetstream\n    url: \"{nats}\"\n    subject: ferry.items\n    stream: FERRY\n    timeout: {t}\n\
         \x20 pubsub:\n    kind: gcp-pubsub\n    project: demo\n    topic: items\n    timeout: {t}\n\
         routes:\n  - source: pings\n    targets: [hook, archive, stream, js, pubsub]\n",
        rpc = anvil.url(),
        contract = emitter.to_checksum(None),
        hook = servers.webhook.url(),
        redis = servers.redis.url(),
        nats = servers.nats.url(),
        t = SINK_TIMEOUT,
    );
    std::fs::write(dir.join("ferry.yaml"), yaml).expect("config");
}

/// A finished `ferry push` of one sink, in the copy of the backlog it ran in.
struct Push {
    dir: tempfile::TempDir,
    /// Exec to exit.
    secs: f64,
    rss_kib: u64,
    cpu_secs: f64,
    /// The rounds its log shows: how many, and when the first and the last ended (seconds since
    /// exec).
    rounds: Rounds,
    /// Wall seconds of a second push in the same dir, with nothing left to do: start-up and exit.
    idle_secs: f64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Rounds {
    count: usize,
    first_at: f64,
    last_at: f64,
}

impl Rounds {
    /// From the `round` debug lines of a push log (RFC 3339 timestamps first), relative to `exec`.
    fn from_log(log: &str, exec: SystemTime) -> Rounds {
        let at: Vec<f64> = log
            .lines()
            .filter(|l| l.contains(" round") && l.contains("delivered="))
            .filter_map(|l| humantime::parse_rfc3339_weak(l.split_whitespace().next()?).ok())
            .filter_map(|t| t.duration_since(exec).ok())
            .map(|d| d.as_secs_f64())
            .collect();
        match (at.first(), at.last()) {
            (Some(first), Some(last)) => Rounds { count: at.len(), first_at: *first, last_at: *last },
            _ => Rounds::default(),
        }
    }

    /// Mean milliseconds from one round's end to the next's, `-` for a single round.
    fn ms_each(&self) -> String {
        if self.count < 2 {
            return "-".into();
        }
        format!("{:.2}", (self.last_at - self.first_at) * 1000.0 / (self.count - 1) as f64)
    }
}

/// Copies the backlog (config and store) to a fresh dir and runs `ferry push --no-sync --target
/// <sink>` there to completion, sampling its peak RSS and CPU time; every delivery must be
/// confirmed.
async fn push(backlog: &Path, servers: &Servers, kind: Kind, items: u64) -> Push {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["ferry.yaml", "ferry.redb"] {
        std::fs::copy(backlog.join(file), dir.path().join(file)).expect("copy the backlog");
    }
    let log = std::fs::File::create(dir.path().join("push.log")).expect("log file");
    let target = kind.target();
    let mut cmd =
        servers.ferry(dir.path(), &["push", "--no-sync", "--target", target, "--json", "--timeout", "30m"]);
    // Each round's outcome is logged at debug: how many rounds, and how fast, is in the log.
    cmd.env("FERRY_LOG", "ferry=debug").stdout(Stdio::piped()).stderr(log);
    let (started, exec) = (Instant::now(), SystemTime::now());
    let mut child = KillOnDrop::spawn(&mut cmd);
    let pid = child.id();
    let (mut rss_kib, mut cpu_secs) = (0, 0.0);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        rss_kib = peak_rss_kib(pid).unwrap_or(rss_kib);
        cpu_secs = cpu_of(pid).unwrap_or(cpu_secs);
        assert!(started.elapsed() < PUSH_LIMIT, "push to {target} still runs after {PUSH_LIMIT:?}");
        tokio::time::sleep(SAMPLE_EVERY).await;
    };
    let secs = started.elapsed().as_secs_f64();
    let mut stdout = String::new();
    child.stdout.take().expect("piped stdout").read_to_string(&mut stdout).expect("push's report");
    let log = std::fs::read_to_string(dir.path().join("push.log")).unwrap_or_default();
    assert!(status.success(), "push to {target} failed ({status}): {stdout}\n{}", last_lines(&log, 40));
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    let chains = report["chains"].as_array().expect("chains");
    let row = chains.iter().find(|c| c["chain"] == target).expect("the sink's row");
    assert_eq!(row["confirmed"].as_u64(), Some(items), "{row}");
    assert_eq!(row["left"].as_u64(), Some(0), "{row}");
    let rounds = Rounds::from_log(&log, exec);
    assert!(rounds.count > 0, "push to {target} logged no round:\n{}", last_lines(&log, 20));

    let idle = servers.ferry(dir.path(), &["push", "--no-sync", "--target", target, "--json", "-q"]);
    let started = Instant::now();
    let out =
        output_within(idle, Duration::from_secs(60)).await.expect("an idle push ends").expect("ferry runs");
    let idle_secs = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "idle push to {target}: {}", output::text(&out));
    Push { dir, secs, rss_kib, cpu_secs, rounds, idle_secs }
}

/// Every wanted key arrived, exactly once where the sink allows it, and nothing else did.
fn check(kind: Kind, who: &str, got: &BTreeMap<String, usize>, want: &[String]) {
    let missing: Vec<&String> = want.iter().filter(|k| !got.contains_key(*k)).take(5).collect();
    assert!(
        missing.is_empty(),
        "{who} to {}: {} of {} keys arrived; missing {missing:?}…",
        kind.label(),
        got.len(),
        want.len()
    );
    assert_eq!(got.len(), want.len(), "{who} to {}: keys nobody sent", kind.label());
    if kind.exactly_once() {
        let twice: Vec<(&String, &usize)> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
        assert!(twice.is_empty(), "{who} to {}: keys held more than once: {twice:?}", kind.label());
    }
}

/// The `key` of each line of a JSONL file, with how often; every line must be whole JSON.
fn jsonl_keys(path: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(path).expect("the JSONL file");
    let mut keys = BTreeMap::new();
    for line in text.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("a broken JSONL line ({e}): {line}"));
        *keys.entry(v["key"].as_str().expect("a key").to_string()).or_insert(0) += 1;
    }
    keys
}

/// The `key` field of each entry of a Redis stream, with how often, read in pages.
async fn redis_keys(redis: &RedisServer, stream: &str) -> BTreeMap<String, usize> {
    let mut conn = redis.connection().await;
    let mut keys = BTreeMap::new();
    let mut start = "-".to_string();
    loop {
        let page: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut conn)
            .await
            .expect("XRANGE");
        let Some((last, _)) = page.last() else { return keys };
        start = format!("({last}");
        for (_, fields) in &page {
            let key =
                fields.chunks(2).find(|kv| kv[0] == "key").map(|kv| kv[1].clone()).expect("a key field");
            *keys.entry(key).or_insert(0) += 1;
        }
    }
}

/// The `Nats-Msg-Id` of each message a JetStream stream holds, with how often, read through an
/// ephemeral pull consumer.
async fn jetstream_keys(nats: &NatsServer, stream: &str) -> BTreeMap<String, usize> {
    let total = nats.stream_messages(stream).await;
    let js = jetstream::new(nats.client().await);
    let stream = js.get_stream(stream).await.expect("the stream");
    let reader = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("a consumer");
    let mut messages =
        reader.stream().max_messages_per_batch(1_000).messages().await.expect("the consumer's messages");
    let mut keys = BTreeMap::new();
    for _ in 0..total {
        let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .expect("the next message within 30 s")
            .expect("more messages")
            .expect("a message");
        let id = message.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_string());
        *keys.entry(id.expect("a Nats-Msg-Id")).or_insert(0) += 1;
    }
    keys
}

/// The `idempotency_key` of each message published to `topic`, with how often.
fn topic_keys(pubsub: &PubsubServer, topic: &str) -> BTreeMap<String, usize> {
    let mut keys = BTreeMap::new();
    for message in pubsub.messages().iter().filter(|m| m.topic == topic) {
        *keys.entry(message.attribute("idempotency_key").expect("a key").to_string()).or_insert(0) += 1;
    }
    keys
}

/// A real message body, from which the baselines' messages are made: each item's own key and
/// item in the same line.
struct Template {
    line: String,
    key: String,
    item: String,
}

impl Template {
    fn from_jsonl(dir: &Path) -> Template {
        let text = std::fs::read_to_string(dir.join("items.jsonl")).expect("the JSONL file");
        let line = text.lines().next().expect("a first line").to_string();
        let v: Value = serde_json::from_str(&line).expect("JSON");
        let (key, item) = (v["key"].as_str().expect("key"), v["item"].as_str().expect("item"));
        Template { key: key.to_string(), item: item.to_string(), line: line.clone() }
    }

    /// (key, body) of each item, keyed `<target>/<item>`.
    fn messages(&self, target: &str, items: &[String]) -> Vec<(String, String)> {
        let (quoted_key, quoted_item) = (format!("\"{}\"", self.key), format!("\"{}\"", self.item));
        items
            .iter()
            .map(|item| {
                let key = format!("{target}/{item}");
                let body = self.line.replacen(&quoted_key, &format!("\"{key}\""), 1).replacen(
                    &quoted_item,
                    &format!("\"{item}\""),
                    1,
                );
                (key, body)
            })
            .collect()
    }
}

/// POSTs each message as ferry's webhook sink does (same headers, same signature), 16 at once.
async fn webhook_baseline(url: &str, messages: &[(String, String)]) {
    let client = reqwest::Client::new();
    let statuses: Vec<u16> = futures_util::stream::iter(messages)
        .map(|(key, body)| {
            let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("HMAC takes any key");
            mac.update(format!("{timestamp}.{body}").as_bytes());
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            let request = client
                .post(url)
                .header("content-type", "application/json")
                .header("idempotency-key", key.as_str())
                .header("x-ferry-timestamp", timestamp.to_string())
                .header("x-ferry-signature", signature)
                .body(body.clone());
            async move {
                let response = request.send().await.expect("the receiver answers");
                let status = response.status().as_u16();
                response.bytes().await.expect("the answer's body");
                status
            }
        })
        .buffer_unordered(DEFAULT_SINK_CONCURRENCY)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "the receiver refused some baseline POSTs");
}

/// Appends the lines 500 at a time, one `sync_data` per 500.
fn jsonl_baseline(path: &Path, messages: &[(String, String)]) {
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the baseline file");
    for batch in messages.chunks(BATCH) {
        let mut buf = Vec::with_capacity(batch.iter().map(|(_, b)| b.len() + 1).sum());
        for (_, body) in batch {
            buf.extend_from_slice(body.as_bytes());
            buf.push(b'\n');
        }
        file.write_all(&buf).expect("write");
        file.sync_data().expect("sync_data");
    }
}

/// `XADD` with ferry's fields, in pipelines of 500 on one connection.
async fn redis_baseline(redis: &RedisServer, messages: &[(String, String)]) {
    let mut conn = redis.connection().await;
    for batch in messages.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for (key, body) in batch {
            pipe.cmd("XADD")
                .arg(BASE_STREAM)
                .arg("*")
                .arg("key")
                .arg(key)
                .arg("source")
                .arg("pings")
                .arg("event")
                .arg("Ping")
                .arg("body")
                .arg(body);
        }
        let ids: Vec<String> = pipe.query_async(&mut conn).await.expect("XADD pipeline");
        assert_eq!(ids.len(), batch.len(), "one entry id per XADD");
    }
}

/// Publishes with `Nats-Msg-Id`, awaiting the acks of each 1,000 together.
async fn jetstream_baseline(nats: &NatsServer, messages: &[(String, String)]) {
    let js = jetstream::new(nats.client().await);
    for window in messages.chunks(ACK_WINDOW) {
        let mut acks = Vec::with_capacity(window.len());
        for (key, body) in window {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, key.as_str());
            acks.push(
                js.publish_with_headers(BASE_SUBJECT, headers, body.clone().into())
                    .await
                    .expect("publish")
                    .into_future(),
            );
        }
        for ack in futures_util::future::join_all(acks).await {
            let ack = ack.expect("a publish ack");
            assert!(!ack.duplicate, "the baseline sends each key once");
        }
    }
}

/// Publish requests of 500 messages with ferry's attributes to `topic`, `concurrency` in flight;
/// how long each request took, in the order they were sent.
async fn pubsub_baseline(
    url: &str,
    topic: &str,
    messages: &[(String, String)],
    concurrency: usize,
) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let publish = format!("{url}/v1/projects/demo/topics/{topic}:publish");
    let answers: Vec<(usize, Duration)> = futures_util::stream::iter(messages.chunks(BATCH))
        .map(|batch| {
            let messages: Vec<Value> = batch
                .iter()
                .map(|(key, body)| {
                    json!({
                        "data": BASE64.encode(body),
                        "attributes": {"idempotency_key": key, "source": "pings", "event": "Ping"},
                    })
                })
                .collect();
            let request = client
                .post(&publish)
                .header("content-type", "application/json")
                .body(json!({ "messages": messages }).to_string());
            async move {
                let started = Instant::now();
                let response = request.send().await.expect("the server answers");
                assert!(response.status().is_success(), "publish: HTTP {}", response.status());
                let answer: Value = response.json().await.expect("a JSON answer");
                (answer["messageIds"].as_array().map_or(0, Vec::len), started.elapsed())
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    let ids: usize = answers.iter().map(|(n, _)| n).sum();
    assert_eq!(ids, messages.len(), "one message id per message");
    answers.into_iter().map(|(_, took)| took).collect()
}

/// Pub/Sub with one request in flight at a time, as ferry's rounds of 500 (one request each)
/// allow: items/s, ms of the first request (on a fresh connection) and the mean ms of the others
/// (back to back on one kept connection; `-` when there is one request).
async fn pubsub_serial(pubsub: &PubsubServer, messages: &[(String, String)]) -> (f64, f64, String) {
    let started = Instant::now();
    let took = pubsub_baseline(&pubsub.url(), SERIAL_TOPIC, messages, 1).await;
    let rate = messages.len() as f64 / started.elapsed().as_secs_f64();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let rest = &took[1..];
    let mean = match rest.len() {
        0 => "-".to_string(),
        n => format!("{:.1}", rest.iter().map(ms).sum::<f64>() / n as f64),
    };
    (rate, ms(&took[0]), mean)
}

/// User and system CPU seconds of a process so far.
fn cpu_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the parenthesized command name: utime and stime are fields 14 and 15, in ticks of
    // USER_HZ (100 on Linux).
    let after = stat.rsplit_once(')')?.1;
    let ticks: Vec<u64> = after.split_whitespace().skip(11).take(2).filter_map(|t| t.parse().ok()).collect();
    Some(ticks.iter().sum::<u64>() as f64 / 100.0)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The store's share of a round, without a sink: on a copy of the backlog, what the sink worker
/// does for each round of `per_round` deliveries (read what is due, read the items and build the
/// messages, commit `sending`, commit the outcomes with their acks), timed phase by phase.
struct StoreProfile {
    rounds: usize,
    per_round: usize,
    read_ms: f64,
    sending_ms: f64,
    settle_ms: f64,
    /// Of the two commits, the time spent on the puts (the rest is redb's commit and fsync).
    puts_ms: f64,
}

impl StoreProfile {
    fn run(backlog: &Path, target: &str, per_round: usize, rounds: usize) -> StoreProfile {
        use ferry::engine::sink::message::{Context, build};
        use ferry::store::keys::{ItemKey, SINK_CHAIN};
        use ferry::store::records::{Delivery, DeliveryState, SinkAck};
        use ferry::store::sink::StoredItem;

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ferry.redb");
        std::fs::copy(backlog.join("ferry.redb"), &path).expect("copy the store");
        let store = ferry::store::Store::create_or_open(&path, None).expect("the copy opens");
        let id = store.write(|tx| tx.target_id(target)).expect("the target's id");
        let sources = store.source_names().expect("source names");
        let (mut read, mut sending, mut settle, mut puts, mut done) = (0.0, 0.0, 0.0, 0.0, 0);
        for _ in 0..rounds {
            let t0 = Instant::now();
            let mut due = store
                .target_deliveries(SINK_CHAIN, id, DeliveryState::Sending, per_round, |_, _| true)
                .expect("sending deliveries");
            due.extend(
                store
                    .target_deliveries(
                        SINK_CHAIN,
                        id,
                        DeliveryState::Pending,
                        per_round - due.len(),
                        |_, _| true,
                    )
                    .expect("pending deliveries"),
            );
            if due.is_empty() {
                break;
            }
            let keys: Vec<ItemKey> = due.iter().map(|(k, _)| k.item).collect();
            let items = store.items(&keys).expect("items");
            let messages: Vec<_> = due
                .iter()
                .zip(&items)
                .map(|((key, _), item)| {
                    let item = item.as_ref().expect("the item is stored");
                    let StoredItem::Event(event) = item else { panic!("a Ping is an event") };
                    let cx = Context { target, source: &sources[&event.source], chain: "src" };
                    build(&cx, key.item, item)
                })
                .collect();
            std::hint::black_box(&messages);
            let t1 = Instant::now();
            let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
            // The worker's own write path: each table opened once, the old state known.
            let to_sending: Vec<_> = due
                .iter()
                .map(|(key, d)| {
                    let mut s = d.clone();
                    (s.state, s.attempts, s.updated_at) = (DeliveryState::Sending, d.attempts + 1, now);
                    (*key, d.state, s)
                })
                .collect();
            store
                .write(|tx| {
                    let started = Instant::now();
                    tx.put_deliveries_from(&to_sending, &[])?;
                    puts += started.elapsed().as_secs_f64();
                    Ok(())
                })
                .expect("commit sending");
            let t2 = Instant::now();
            let settled: Vec<_> = to_sending
                .iter()
                .map(|(key, _, d)| {
                    (*key, DeliveryState::Sending, Delivery { state: DeliveryState::Confirmed, ..d.clone() })
                })
                .collect();
            let acks: Vec<_> = to_sending
                .iter()
                .enumerate()
                .map(|(i, (key, _, _))| (*key, SinkAck { ack: format!("line {i}"), at: now }))
                .collect();
            store
                .write(|tx| {
                    let started = Instant::now();
                    tx.put_deliveries_from(&settled, &acks)?;
                    puts += started.elapsed().as_secs_f64();
                    Ok(())
                })
                .expect("commit the outcomes");
            let t3 = Instant::now();
            read += (t1 - t0).as_secs_f64();
            sending += (t2 - t1).as_secs_f64();
            settle += (t3 - t2).as_secs_f64();
            done += 1;
        }
        assert!(done > 0, "the copy holds pending deliveries to {target}");
        let ms = |secs: f64| secs * 1000.0 / done as f64;
        StoreProfile {
            rounds: done,
            per_round,
            read_ms: ms(read),
            sending_ms: ms(sending),
            settle_ms: ms(settle),
            puts_ms: ms(puts),
        }
    }

    fn ms_each(&self) -> f64 {
        self.read_ms + self.sending_ms + self.settle_ms
    }

    /// Items per second the store alone allows at this round size.
    fn ceiling(&self) -> f64 {
        self.per_round as f64 * 1000.0 / self.ms_each()
    }
}
