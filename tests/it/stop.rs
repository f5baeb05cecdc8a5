//! SIGTERM stops `watch` and `push` within `--stop-timeout` whatever a destination does: a
//! destination that takes connections and never answers holds its worker in a request, and the
//! worker's round is dropped where it waits (everything it did is already in the store, as after
//! a crash at that point), so the stop does not even need the bound; ferry exits 130 and leaves a
//! store that opens without recovery. What the bound drops when something does hold the stop is
//! tested with a sink that never answers (`sigterm_drops_a_stalled_sink_at_the_bound`).

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::sol_types::SolCall;

use crate::deliver::{Miner, Net, view_u256};
use crate::reload::{config, spawn_watch};
use crate::support::command::run;
use crate::support::devnet::IBatchReceiver;
use crate::support::output::text;
use crate::support::process::KillOnDrop;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_hung_destination_stops_before_the_bound_and_leaves_the_store_clean() {
    let net = Net::start(2).await;
    let _miner =
        Miner::start(net.dests.iter().map(|(anvil, _)| anvil.url()).collect(), Duration::from_millis(500));
    // Connections are taken (the kernel's backlog) and never answered: every request to d1 waits
    // for its 60 s timeout, far past the stop timeout.
    let hole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hole_url = format!("http://{}", hole.local_addr().expect("address"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ferry.yaml"), config(&net, &[0, 1], &[(1, hole_url, "60s")]))
        .expect("config");
    net.emit(0, 3).await;
    let bound = Duration::from_secs(3);
    let (mut watch, log) = spawn_watch(dir.path(), &["--stop-timeout", "3s"]);

    // The healthy chain delivers; d1's worker is stuck in a request meanwhile.
    until_delivered(&net, 3, &log, || true).await;

    let (took, stderr) = terminate(&mut watch, &log, bound).await;
    // The hung request is dropped with its round: the stop needs no bound at all.
    assert!(took < bound, "stopped after {took:?}, not before the bound: {stderr}");
    assert!(!stderr.contains("stop timeout passed"), "nothing was left to drop: {stderr}");
    assert_closed_cleanly(dir.path());
    drop(hole);
}

/// Mines the source until d0 recorded `n` items and `also()` holds, within a minute.
async fn until_delivered(net: &Net, n: u64, log: &Path, also: impl Fn() -> bool) {
    let (anvil, receiver) = &net.dests[0];
    let deadline = Instant::now() + Duration::from_secs(60);
    while view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await
        != U256::from(n)
        || !also()
    {
        assert!(
            Instant::now() < deadline,
            "not delivered in time; the log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        net.source.mine(1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// SIGTERM to `watch`: it exits 130; how long that took, and its stderr.
async fn terminate(watch: &mut KillOnDrop, log: &Path, bound: Duration) -> (Duration, String) {
    let asked = Instant::now();
    assert!(watch.signal("TERM"), "SIGTERM sent");
    let status = watch.wait_within(Duration::from_secs(60)).await.expect("watch stops");
    let took = asked.elapsed();
    let stderr = std::fs::read_to_string(log).unwrap_or_default();
    println!("watch stopped {took:?} after SIGTERM, with a stop timeout of {bound:?}");
    assert_eq!(status.code(), Some(130), "{stderr}");
    (took, stderr)
}

/// The store was closed cleanly: a reader opens it as it is.
fn assert_closed_cleanly(dir: &Path) {
    let out = run(dir, &["inspect-store", "summary"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("not closed cleanly"), "{}", text(&out));
}

/// `push --stop-timeout`: the one-shot's hung worker is dropped where it waits, before the bound;
/// the store is left clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_push_with_a_hung_destination_before_its_bound() {
    let net = Net::start(1).await;
    let hole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hole_url = format!("http://{}", hole.local_addr().expect("address"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ferry.yaml"), config(&net, &[0], &[(0, hole_url, "60s")]))
        .expect("config");
    net.emit(0, 2).await;
    net.source.mine(1).await;
    let log = dir.path().join("push.log");
    let mut push = KillOnDrop::spawn(
        crate::support::command::ferry_command(dir.path())
            .args(["push", "--timeout", "5m", "--stop-timeout", "2s"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file")),
    );
    // The worker of the hung chain is waiting on its first request once the sync is done.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.path().join("ferry.redb").exists() {
        assert!(Instant::now() < deadline, "push did not create its store");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = Instant::now();
    assert!(push.signal("TERM"), "SIGTERM sent");
    let status = push.wait_within(Duration::from_secs(60)).await.expect("push stops");
    let took = asked.elapsed();
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    println!("push stopped {took:?} after SIGTERM, with a stop timeout of 2s");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(took < Duration::from_secs(2), "stopped after {took:?}, not before the bound: {stderr}");
    assert!(!stderr.contains("stop timeout (2s) passed"), "nothing was left to drop: {stderr}");
    assert_closed_cleanly(dir.path());
    drop(hole);
}

/// What does hold a stop is dropped at the bound: a webhook that takes the request and never
/// answers keeps its sink worker in a hand-over (a sink's round is not cut short, since a
/// hand-over cut midway is a doubt to look up on the next start). The stop waits until
/// `--stop-timeout`, then drops that worker, names it, exits 130 and leaves a clean store; the
/// healthy chain's deliveries are all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drops_a_stalled_sink_at_the_bound() {
    use crate::support::webhook::{Mode, WebhookReceiver};

    let net = Net::start(1).await;
    let _miner = Miner::start(vec![net.dests[0].0.url()], Duration::from_millis(500));
    let hook = WebhookReceiver::start(None);
    hook.set_mode(Mode::Stall(Duration::from_secs(120)));
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = config(&net, &[0], &[])
        .replace(
            "routes:\n",
            &format!("  hook:\n    kind: webhook\n    url: \"{}\"\n    timeout: 60s\nroutes:\n", hook.url()),
        )
        .replace("targets: [receiver]", "targets: [receiver, hook]");
    std::fs::write(dir.path().join("ferry.yaml"), yaml).expect("config");
    net.emit(0, 3).await;
    let bound = Duration::from_secs(3);
    let (mut watch, log) = spawn_watch(dir.path(), &["--stop-timeout", "3s"]);

    // d0 gets everything; the webhook holds the first request it was handed.
    until_delivered(&net, 3, &log, || !hook.requests().is_empty()).await;

    let (took, stderr) = terminate(&mut watch, &log, bound).await;
    // The bound, and a margin for dropping what is left and closing the store.
    assert!(took < bound + Duration::from_secs(3), "stopped after {took:?}: {stderr}");
    assert!(
        took >= bound - Duration::from_millis(500),
        "the stalled sink was waited for until the bound ({took:?})"
    );
    let abandoned = stderr.lines().find(|l| l.contains("stop timeout passed")).unwrap_or_default();
    assert!(abandoned.contains("hook") && !abandoned.contains("\"d0\""), "names what it dropped: {stderr}");
    assert_closed_cleanly(dir.path());
}
