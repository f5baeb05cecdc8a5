//! `watch` reloads its config on SIGHUP: a destination chain added to a running `watch` gets the
//! items that come after (and those before, when the route says `deliver_existing`), the chains
//! it had go on, and no item reaches a chain twice; a config that does not validate is one WARN
//! and the running one goes on. A one-shot ignores SIGHUP.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::sol_types::SolCall;
use serde_json::Value;

use crate::deliver::{Miner, Net, Yaml, view_u256};
use crate::support::command::{ferry_command, run};
use crate::support::devnet::IBatchReceiver;
use crate::support::output::text;
use crate::support::process::KillOnDrop;

/// A config routing BatchReady events to `record` on the destinations `dests` (indexes into
/// `net.dests`); `urls` overrides a destination's RPC URL and request timeout.
pub(crate) fn config(net: &Net, dests: &[usize], urls: &[(usize, String, &str)]) -> String {
    config_with(net, dests, urls, "")
}

/// [`config`] with `route` appended to the route (e.g. `deliver_existing: true`).
fn config_with(net: &Net, dests: &[usize], urls: &[(usize, String, &str)], route: &str) -> String {
    net.yaml(&Yaml { dests: Some(dests), urls, route, ..Yaml::default() })
}

/// `ferry watch ARGS…` in `dir`, its standard error written to `watch.log` there (read while it
/// runs).
pub(crate) fn spawn_watch(dir: &Path, args: &[&str]) -> (KillOnDrop, PathBuf) {
    let log = dir.join("watch.log");
    let file = std::fs::File::create(&log).expect("log file");
    let watch =
        KillOnDrop::spawn(ferry_command(dir).arg("watch").args(args).stdout(Stdio::null()).stderr(file));
    (watch, log)
}

/// The first line of `log` that contains every one of `needles`, waiting up to `limit` for it.
pub(crate) async fn wait_for_line(log: &Path, needles: &[&str], limit: Duration) -> String {
    wait_for_nth_line(log, needles, 1, limit).await
}

/// The `nth` line (from 1) of `log` that contains every one of `needles`, waiting up to `limit`.
async fn wait_for_nth_line(log: &Path, needles: &[&str], nth: usize, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().filter(|l| needles.iter().all(|n| l.contains(n))).nth(nth - 1) {
            return line.to_string();
        }
        assert!(Instant::now() < deadline, "no line with {needles:?} within {limit:?}; the log:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn total(net: &Net, i: usize) -> U256 {
    let (anvil, receiver) = &net.dests[i];
    view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await
}

/// Waits until the destinations have recorded `want` items in all (mining the source, whose one
/// confirmation needs a block on top), then a little more to see that nothing else comes.
async fn wait_totals(net: &Net, want: &[u64], log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut got = Vec::new();
        for i in 0..want.len() {
            got.push(total(net, i).await);
        }
        if got.iter().zip(want).all(|(g, w)| *g == U256::from(*w)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recorded {got:?}, want {want:?}; the log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        net.source.mine(1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// How many times each height was recorded on destination `i`.
async fn recorded(net: &Net, i: usize, heights: std::ops::Range<u64>) -> Vec<U256> {
    let (anvil, receiver) = &net.dests[i];
    let mut counts = Vec::new();
    for h in heights {
        counts.push(
            view_u256(anvil, *receiver, IBatchReceiver::recordedCountCall { height: h }.abi_encode()).await,
        );
    }
    counts
}

/// The value of the first `key` anywhere in `v`.
fn find<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(map) => map.get(key).or_else(|| map.values().find_map(|v| find(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find(v, key)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_destination_chains_without_sending_anything_twice_and_a_bad_config_is_refused() {
    let net = Net::start(3).await;
    let _miner =
        Miner::start(net.dests.iter().map(|(anvil, _)| anvil.url()).collect(), Duration::from_millis(500));
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("ferry.yaml");
    std::fs::write(&config_path, config(&net, &[0], &[])).expect("config");
    net.emit(0, 3).await;
    let (mut watch, log) = spawn_watch(dir.path(), &["--stop-timeout", "5s"]);
    wait_totals(&net, &[3, 0, 0], &log).await;

    // Add chain d1 to the target, and reload.
    std::fs::write(&config_path, config(&net, &[0, 1], &[])).expect("config");
    assert!(watch.signal("HUP"), "SIGHUP sent");
    wait_for_line(&log, &["config reloaded"], Duration::from_secs(30)).await;
    assert!(watch.running(), "SIGHUP does not stop watch");
    net.emit(3, 4).await;
    // The old chain goes on; the new one gets the items that come after the reload (the route
    // does not ask for the past).
    wait_totals(&net, &[7, 4, 0], &log).await;

    // A config that does not validate: one WARN saying why, and the running one goes on.
    let broken = format!("{}bogus_key: 1\n", config(&net, &[0], &[]));
    std::fs::write(&config_path, broken).expect("config");
    assert!(watch.signal("HUP"), "SIGHUP sent");
    let warned = wait_for_line(&log, &["WARN", "not reloading"], Duration::from_secs(30)).await;
    assert!(warned.contains("bogus_key"), "the WARN names the problem: {warned}");
    assert!(watch.running(), "a bad config does not stop watch");
    net.emit(7, 2).await;
    wait_totals(&net, &[9, 6, 0], &log).await;

    // Add chain d2, and let the route take the past: d2 gets every item, d1 the three it missed.
    std::fs::write(&config_path, config_with(&net, &[0, 1, 2], &[], "deliver_existing: true"))
        .expect("config");
    assert!(watch.signal("HUP"), "SIGHUP sent");
    let reloaded = wait_for_nth_line(&log, &["config reloaded"], 2, Duration::from_secs(30)).await;
    let fingerprint = reloaded.split("to=").nth(1).expect("the new fingerprint").trim().to_string();
    wait_totals(&net, &[9, 9, 9], &log).await;
    net.emit(9, 1).await;
    wait_totals(&net, &[10, 10, 10], &log).await;

    // Nothing more comes: the totals above were every transaction.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut totals = Vec::new();
    for i in 0..3 {
        totals.push(total(&net, i).await);
    }
    assert_eq!(totals, vec![U256::from(10); 3]);
    watch.signal("TERM");
    let status = watch.wait_within(Duration::from_secs(30)).await.expect("watch stops");
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("abandoned"), "a healthy stop abandons nothing: {stderr}");
    for line in
        stderr.lines().filter(|l| l.contains("SIGHUP") || l.contains("reloaded") || l.contains("planned"))
    {
        println!("{line}");
    }
    for i in 0..3 {
        assert_eq!(recorded(&net, i, 0..10).await, vec![U256::from(1); 10], "each height once on d{i}");
    }

    // The store names the config that wrote it last.
    let out = run(dir.path(), &["inspect-store", "summary", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(
        find(&summary, "config_fingerprint").and_then(Value::as_str),
        Some(fingerprint.as_str()),
        "{summary}"
    );
}

/// A chain removed by a reload gets nothing more while the others go on; added back with a route
/// that takes the past, it gets what it missed, and nothing reaches any chain twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_removes_a_chain_and_adds_it_back_without_losing_or_doubling_anything() {
    let net = Net::start(2).await;
    let _miner =
        Miner::start(net.dests.iter().map(|(anvil, _)| anvil.url()).collect(), Duration::from_millis(500));
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("ferry.yaml");
    std::fs::write(&config_path, config(&net, &[0, 1], &[])).expect("config");
    net.emit(0, 2).await;
    let (mut watch, log) = spawn_watch(dir.path(), &[]);
    wait_totals(&net, &[2, 2], &log).await;

    std::fs::write(&config_path, config(&net, &[0], &[])).expect("config");
    assert!(watch.signal("HUP"), "SIGHUP sent");
    let removed = wait_for_line(&log, &["switching to it"], Duration::from_secs(30)).await;
    assert!(removed.contains("removed=[\"chain d1\"]"), "{removed}");
    wait_for_line(&log, &["config reloaded"], Duration::from_secs(30)).await;
    net.emit(2, 3).await;
    wait_totals(&net, &[5, 2], &log).await;

    std::fs::write(&config_path, config_with(&net, &[0, 1], &[], "deliver_existing: true")).expect("config");
    assert!(watch.signal("HUP"), "SIGHUP sent");
    wait_for_nth_line(&log, &["config reloaded"], 2, Duration::from_secs(30)).await;
    wait_totals(&net, &[5, 5], &log).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    watch.signal("TERM");
    let status = watch.wait_within(Duration::from_secs(30)).await.expect("watch stops");
    assert_eq!(status.code(), Some(130), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    for i in 0..2 {
        assert_eq!(recorded(&net, i, 0..5).await, vec![U256::from(1); 5], "each height once on d{i}");
    }
}

/// `push` is a one-shot: SIGHUP neither reloads nor kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_during_push_is_ignored_with_a_log_line() {
    let net = Net::start(1).await;
    net.emit(0, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A destination that refuses connections keeps push busy until its --timeout.
    let dead = crate::support::net::RefusingPort::bind();
    std::fs::write(dir.path().join("ferry.yaml"), config(&net, &[0], &[(0, dead.url(), "2s")]))
        .expect("config");
    let log = dir.path().join("push.log");
    let mut push = KillOnDrop::spawn(
        ferry_command(dir.path())
            .args(["push", "--timeout", "6s"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file")),
    );
    // The store exists once push runs (its signal handlers are installed before).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.path().join("ferry.redb").exists() {
        assert!(Instant::now() < deadline, "push did not create its store");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(push.signal("HUP"), "SIGHUP sent");
    wait_for_line(&log, &["SIGHUP", "ignored"], Duration::from_secs(10)).await;
    let status = push.wait_within(Duration::from_secs(30)).await.expect("push ends");
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(4), "work left undone, not killed by SIGHUP (129): {stderr}");
}
