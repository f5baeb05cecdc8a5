//! `watch` for monitoring: `/metrics` scraped with a real HTTP client from a running `watch` and
//! read as the Prometheus exposition format, `/healthz` and `/readyz` while a destination dies
//! and comes back, the audit trail of each transaction, the per-chain heartbeat of an idle
//! `watch`, and the `health:` settings refused when wrong.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::deliver::{Miner, Net, Yaml};
use crate::support::command::{ferry_command, run, run_within};
use crate::support::net::RefusingPort;
use crate::support::output;
use crate::support::process::KillOnDrop;
use crate::support::proxy::FaultProxy;

/// One sample of the exposition format: `name{label="value",…} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Every sample of an exposition text; a line that is neither a comment, empty, nor a sample
/// fails the test (ferry must serve valid exposition text).
fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| parse_sample(line).unwrap_or_else(|| panic!("not an exposition sample: {line:?}")))
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_string();
    let valid_name = |n: &str| {
        n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    if !valid_name(&name) {
        return None;
    }
    let valid_label = |k: &str| {
        k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut s = body;
        loop {
            s = s.strip_prefix(',').unwrap_or(s);
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = s.find('=')?;
            let key = s[..eq].to_string();
            if !valid_label(&key) {
                return None;
            }
            let mut chars = s[eq + 1..].char_indices();
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => {
                        let (_, escaped) = chars.next()?;
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                    '"' => break i,
                    c => value.push(c),
                }
            };
            labels.insert(key, value);
            s = &s[eq + 1 + end + 1..];
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name, labels, value })
}

/// The value of the sample `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v)))
        .map(|s| s.value)
}

#[test]
fn the_exposition_parser_reads_labels_escapes_and_infinities() {
    let text = "# HELP x help\n# TYPE x counter\nx 3\ny{a=\"1\",b=\"q\\\"uote\\\\\"} 2.5\nz_bucket{le=\"+Inf\"} 7\nw{} -1e3\n";
    let samples = parse_exposition(text);
    assert_eq!(samples.len(), 4);
    assert_eq!(value(&samples, "x", &[]), Some(3.0));
    assert_eq!(value(&samples, "y", &[("a", "1"), ("b", "q\"uote\\")]), Some(2.5));
    assert_eq!(value(&samples, "z_bucket", &[("le", "+Inf")]), Some(7.0));
    assert_eq!(value(&samples, "w", &[]), Some(-1000.0));
    assert!(parse_sample("9bad 1").is_none() && parse_sample("x{a=1} 2").is_none());
}

/// A `watch` running in the background, its stderr in a file; killed when dropped.
struct Watch {
    child: KillOnDrop,
    stderr: PathBuf,
}

impl Watch {
    fn spawn(dir: &Path, args: &[&str]) -> Watch {
        let stderr = dir.join("watch.stderr");
        let child = KillOnDrop::spawn(
            ferry_command(dir)
                .arg("watch")
                .args(args)
                .stdout(Stdio::null())
                .stderr(File::create(&stderr).expect("stderr file")),
        );
        Watch { child, stderr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The address the metrics server says it bound (`--metrics-addr 127.0.0.1:0` picks one).
    async fn metrics_addr(&self) -> String {
        let log = until(Duration::from_secs(30), "the metrics server to listen", async || {
            let log = self.log();
            log.contains("serving /metrics").then_some(log)
        })
        .await;
        let line = log.lines().find(|l| l.contains("serving /metrics")).expect("the line");
        let addr = line.split_whitespace().find_map(|w| w.strip_prefix("addr=")).expect("addr= on the line");
        addr.to_string()
    }
}

/// Polls `f` every 200 ms until it gives a value; fails the test after `limit`.
async fn until<T>(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// GET `http://addr/path`: status and body.
async fn get(http: &reqwest::Client, addr: &str, path: &str) -> (u16, String) {
    let response = http.get(format!("http://{addr}{path}")).send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

async fn scrape(http: &reqwest::Client, addr: &str) -> Vec<Sample> {
    let (status, body) = get(http, addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    parse_exposition(&body)
}

/// The delivery tests' network (a source and two destinations), reached through `urls` (d0, d1),
/// with `health` appended.
fn write_config(net: &Net, dir: &Path, urls: [&str; 2], health: &str) {
    let urls: Vec<(usize, String, &str)> =
        urls.iter().enumerate().map(|(i, url)| (i, url.to_string(), "2s")).collect();
    let yaml = net.yaml(&Yaml { urls: &urls, ..Yaml::default() });
    std::fs::write(dir.join("ferry.yaml"), format!("{yaml}{health}")).expect("config");
}

/// The done-when of the metrics work: a running `watch` with one source and two destinations,
/// one of which dies. `/metrics` shows the source's lag and the dead chain's oldest pending
/// delivery growing older between two scrapes; `/readyz` fails naming the dead chain; when the
/// chain comes back, `/readyz` is ready again within a bounded wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_destination_ages_in_metrics_fails_readyz_and_recovers() {
    let net = Net::start(2).await;
    let proxy = FaultProxy::start(net.dests[1].0.url(), 0.0, 15).await;
    net.emit(0, 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // d0's URL carries credentials, which /metrics must mask.
    let d0_url = net.dests[0].0.url().replacen("http://", "http://ferry:hunter2secret@", 1);
    let health = "health:\n  status_interval: 1s\n  stuck_after: 3s\n  max_lag: 30s\n";
    write_config(&net, dir.path(), [&d0_url, &proxy.url()], health);
    let mut urls: Vec<String> = net.dests.iter().map(|(anvil, _)| anvil.url()).collect();
    urls.push(net.source.url());
    let _miner = Miner::start(urls, Duration::from_millis(500));
    let mut watch = Watch::spawn(dir.path(), &["--metrics-addr", "127.0.0.1:0"]);
    let addr = watch.metrics_addr().await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");

    assert_eq!(get(&http, &addr, "/healthz").await, (200, "ok\n".to_string()));
    assert_eq!(get(&http, &addr, "/nope").await.0, 404);

    // Both chains get the backlog, and the whole picture is in /metrics.
    let confirmed =
        |s: &[Sample], chain: &str| value(s, "ferry_deliveries", &[("chain", chain), ("state", "confirmed")]);
    let samples = until(Duration::from_secs(90), "the backlog confirmed on both chains", async || {
        let s = scrape(&http, &addr).await;
        (confirmed(&s, "d0") == Some(3.0) && confirmed(&s, "d1") == Some(3.0)).then_some(s)
    })
    .await;
    let source = [("source", "batches"), ("chain", "src")];
    for name in
        ["ferry_source_head", "ferry_source_cursor", "ferry_source_lag_blocks", "ferry_source_lag_seconds"]
    {
        assert!(
            value(&samples, name, &source).is_some_and(|v| v >= 0.0),
            "{name} of the source: {samples:?}"
        );
    }
    assert!(value(&samples, "ferry_source_events_total", &source) >= Some(3.0));
    let d0 = [("chain", "d0")];
    for name in [
        "ferry_transactions_sent_total",
        "ferry_transactions_mined_total",
        "ferry_transactions_confirmed_total",
    ] {
        assert!(value(&samples, name, &d0) >= Some(3.0), "{name}: {samples:?}");
    }
    assert!(value(&samples, "ferry_gas_used_total", &d0) > Some(21_000.0 * 3.0));
    assert!(value(&samples, "ferry_fees_paid_wei_total", &d0) > Some(0.0));
    assert_eq!(value(&samples, "ferry_nonce_gap", &d0), Some(0.0));
    let masked = format!("{}/", net.dests[0].0.url().replacen("http://", "http://ferry:***@", 1));
    let rpc = [("chain", "d0"), ("url", masked.as_str())];
    assert!(value(&samples, "ferry_rpc_requests_total", &rpc) > Some(0.0), "{masked}: {samples:?}");
    assert!(samples.iter().all(|s| s.labels.values().all(|v| !v.contains("hunter2secret"))), "a secret");
    assert!(value(&samples, "ferry_rpc_request_duration_seconds_count", &rpc) > Some(0.0));
    assert!(
        value(&samples, "ferry_rpc_request_duration_seconds_bucket", &[rpc[0], rpc[1], ("le", "+Inf")])
            > Some(0.0)
    );
    assert!(value(&samples, "ferry_store_size_bytes", &[]) > Some(0.0));
    assert!(value(&samples, "ferry_store_commit_seconds_count", &[]) > Some(0.0));
    until(Duration::from_secs(30), "/readyz ready with both chains well", async || {
        (get(&http, &addr, "/readyz").await == (200, "ready\n".to_string())).then_some(())
    })
    .await;

    // d1 dies; new items come. d0 gets them, d1's wait shows in /metrics and /readyz.
    proxy.injected.down.store(true, Ordering::Relaxed);
    let died = Instant::now();
    net.emit(3, 2).await;
    until(Duration::from_secs(60), "d0 to confirm the new items", async || {
        (confirmed(&scrape(&http, &addr).await, "d0") == Some(5.0)).then_some(())
    })
    .await;
    let oldest = |s: &[Sample], chain: &str| {
        value(s, "ferry_delivery_oldest_pending_age_seconds", &[("chain", chain)]).unwrap_or(0.0)
    };
    let first = until(Duration::from_secs(30), "an age for d1's pending deliveries", async || {
        Some(oldest(&scrape(&http, &addr).await, "d1")).filter(|age| *age >= 1.0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let second = scrape(&http, &addr).await;
    assert!(
        oldest(&second, "d1") >= first + 2.0,
        "d1's oldest pending: {first}s, then {}",
        oldest(&second, "d1")
    );
    assert_eq!(oldest(&second, "d0"), 0.0, "nothing waits on d0");
    let reasons = until(Duration::from_secs(30), "/readyz to fail", async || {
        let (status, body) = get(&http, &addr, "/readyz").await;
        (status == 503).then_some(body)
    })
    .await;
    eprintln!("/readyz failed {:.1?} after d1 went down", died.elapsed());
    assert!(reasons.lines().any(|l| l.starts_with("chain d1: ")), "d1 named: {reasons}");
    assert!(!reasons.contains("d0"), "only the dead chain: {reasons}");

    // d1 comes back: everything is delivered there, and /readyz is ready again.
    proxy.injected.down.store(false, Ordering::Relaxed);
    let back = Instant::now();
    until(Duration::from_secs(90), "/readyz ready again", async || {
        let (status, body) = get(&http, &addr, "/readyz").await;
        (status == 200 && body == "ready\n").then_some(())
    })
    .await;
    eprintln!("/readyz ready {:.1?} after d1 came back", back.elapsed());
    until(Duration::from_secs(30), "d1 to confirm every item", async || {
        (confirmed(&scrape(&http, &addr).await, "d1") == Some(5.0)).then_some(())
    })
    .await;

    // The audit trail: each transaction, with its delivery id, chain, nonce and hash.
    let log = watch.log();
    for what in ["transaction sent", "transaction mined", "transaction confirmed"] {
        let line = log
            .lines()
            .find(|l| l.contains(what) && l.contains("chain=d0"))
            .unwrap_or_else(|| panic!("no `{what}` line for d0 in:\n{log}"));
        for field in ["delivery=receiver/d0/ev:31337:", "nonce=", "tx_hash=0x"] {
            assert!(line.contains(field), "`{field}` missing from: {line}");
        }
    }
    // The heartbeat said how d1 was while it was down.
    assert!(
        log.lines().any(|l| l.contains(" delivery ")
            && l.contains("chain=d1")
            && l.contains("oldest_pending_age_s=")),
        "no heartbeat with d1's oldest pending age in:\n{log}"
    );

    assert!(watch.child.signal("INT"));
    let status = watch.child.wait_within(Duration::from_secs(30)).await.expect("watch stops on SIGINT");
    assert_eq!(status.code(), Some(130), "{}", watch.log());
}

/// A destination dead from the start (its worker never starts, so it never reports a status)
/// is on the board all the same: `/readyz` names it within `stuck_after`, `/metrics` shows its
/// backlog growing old, the heartbeat says why; the live one is not named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_dead_from_the_start_is_named_by_readyz_and_the_heartbeat() {
    let net = Net::start(2).await;
    net.emit(0, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = RefusingPort::bind();
    let health = "health:\n  status_interval: 1s\n  stuck_after: 2s\n";
    write_config(&net, dir.path(), [&net.dests[0].0.url(), &dead.url()], health);
    let _miner = Miner::start(vec![net.dests[0].0.url(), net.source.url()], Duration::from_millis(500));
    let watch = Watch::spawn(dir.path(), &["--metrics-addr", "127.0.0.1:0"]);
    let addr = watch.metrics_addr().await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");

    until(Duration::from_secs(60), "d0 to confirm both items", async || {
        let s = scrape(&http, &addr).await;
        (value(&s, "ferry_deliveries", &[("chain", "d0"), ("state", "confirmed")]) == Some(2.0)).then_some(())
    })
    .await;
    let reasons = until(Duration::from_secs(30), "/readyz to name d1", async || {
        let (status, body) = get(&http, &addr, "/readyz").await;
        (status == 503 && body.contains("chain d1: ")).then_some(body)
    })
    .await;
    assert!(reasons.contains("the worker has not started yet"), "why: {reasons}");
    assert!(!reasons.contains("chain d0"), "the live chain is not named: {reasons}");
    let age = |s: &[Sample]| value(s, "ferry_delivery_oldest_pending_age_seconds", &[("chain", "d1")]);
    let first = until(Duration::from_secs(30), "an age for d1's backlog", async || {
        age(&scrape(&http, &addr).await).filter(|a| *a >= 1.0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(age(&scrape(&http, &addr).await) >= Some(first + 1.0), "d1's backlog does not age");
    // One problem at a time: not started yet, then (once its first attempt gave up) could not start.
    let on: Vec<Sample> = scrape(&http, &addr)
        .await
        .into_iter()
        .filter(|s| s.name == "ferry_chain_problem" && s.labels.get("chain").is_some_and(|c| c == "d1"))
        .filter(|s| s.value == 1.0)
        .collect();
    assert_eq!(on.len(), 1, "{on:?}");
    assert!(["starting", "could_not_start"].contains(&on[0].labels["code"].as_str()), "{on:?}");
    until(Duration::from_secs(30), "a heartbeat for d1", async || {
        let log = watch.log();
        log.lines()
            .any(|l| l.contains(" delivery ") && l.contains("chain=d1 ") && l.contains("not started yet"))
            .then_some(())
    })
    .await;
}

/// An idle `watch` (nothing to deliver, nothing changing) still says how each chain is, every
/// `status_interval`; and serves no metrics without an address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_watch_says_how_each_chain_is_every_status_interval() {
    let net = Net::start(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let urls = [net.dests[0].0.url(), net.dests[1].0.url()];
    write_config(&net, dir.path(), [&urls[0], &urls[1]], "health:\n  status_interval: 1s\n");
    let watch = Watch::spawn(dir.path(), &[]);
    let heartbeats = |log: &str, chain: &str| {
        log.lines().filter(|l| l.contains(" delivery ") && l.contains(&format!("chain={chain} "))).count()
    };
    until(Duration::from_secs(30), "three status lines per chain", async || {
        let log = watch.log();
        (heartbeats(&log, "d0") >= 3 && heartbeats(&log, "d1") >= 3).then_some(())
    })
    .await;
    let log = watch.log();
    let line = log.lines().rfind(|l| l.contains(" delivery ") && l.contains("chain=d0 ")).expect("a line");
    for field in ["pending=0", "in_flight=0", "last_error="] {
        assert!(line.contains(field), "`{field}` missing from: {line}");
    }
    assert!(!log.contains("serving /metrics"), "no address, no server: {log}");
}

/// `health:` values that cannot work are config errors naming their key; a bad
/// `--metrics-addr` is a bad command line. Both exit 2.
#[test]
fn wrong_health_settings_are_refused_with_their_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "chains:\n  local:\n    chain_id: 31337\n    rpc: [\"http://127.0.0.1:1\"]\n\
        sources:\n  s:\n    kind: evm\n    chain: local\n    max_lag: 0s\n    contracts: []\n\
        health:\n  metrics_addr: localhost\n  status_interval: 0s\n  stuck_after: 5m\n";
    std::fs::write(dir.path().join("ferry.yaml"), config).expect("config");
    let out = run(dir.path(), &["check-config"]);
    let said = output::text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    for key in ["health.metrics_addr", "health.status_interval", "sources.s.max_lag"] {
        assert!(said.contains(key), "`{key}` not named in: {said}");
    }
    let out = run(dir.path(), &["watch", "--metrics-addr", "nowhere"]);
    let stderr = output::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--metrics-addr"), "{stderr}");
}

/// A metrics port that is taken is a bad command line (exit 2), said before any source or
/// worker starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_port_in_use_is_exit_2_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = busy.local_addr().expect("its address").to_string();
    let config = "chains:\n  local:\n    chain_id: 31337\n    rpc: [\"http://127.0.0.1:1\"]\n\
        sources:\n  s:\n    kind: evm\n    chain: local\n    contracts:\n\
        \x20     - address: \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\n\
        \x20       events: [\"event Ping(uint256 indexed seq)\"]\n";
    std::fs::write(dir.path().join("ferry.yaml"), config).expect("config");
    let out = run_within(dir.path(), &["watch", "--metrics-addr", &addr], Duration::from_secs(30)).await;
    let stderr = output::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");
    assert!(!stderr.contains("watching"), "nothing started: {stderr}");
}
