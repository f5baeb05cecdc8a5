//! One RPC client per chain: under `watch`, a chain that is both a source and a destination is
//! reached through one client, so its `rate_limit` holds across both roles (two clients would
//! each take the whole limit).

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::sol_types::SolCall;

use crate::support::command::ferry_command;
use crate::support::devnet::{Anvil, IBatchReceiver, IEventEmitter};
use crate::support::process::KillOnDrop;
use crate::support::proxy::FaultProxy;

/// Requests per second the chain allows.
const RATE: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_that_is_source_and_destination_shares_one_rate_limit() {
    let anvil = Anvil::start(31337).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    let receiver = anvil.deploy("BatchReceiver", &[]).await;
    anvil.send(emitter, IEventEmitter::emitBatchesCall { from: 0, n: 20 }.abi_encode()).await;
    anvil.mine(2).await;
    // Every request ferry makes goes through the proxy (which fails none), and is counted.
    let proxy = FaultProxy::start(anvil.url(), 0.0, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "chains:\n  local:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 1\n    poll_interval: 100ms\n\
         \x20   rate_limit: {RATE}\n    signer: {{ key_env: FERRY_TEST_SIGNER }}\n\
         sources:\n  batches:\n    kind: evm\n    chain: local\n    contracts:\n      - address: \"{}\"\n\
         \x20       events: [\"event BatchReady(uint64 indexed height, bytes32 root)\"]\n\
         targets:\n  receiver:\n    kind: evm-call\n    function: function record(uint64 height, bytes32 root)\n\
         \x20   args:\n      height: {{ field: height }}\n      root: {{ field: root }}\n\
         \x20   chains:\n      local: \"{}\"\n\
         routes:\n  - source: batches\n    targets: [receiver]\n",
        proxy.url(),
        emitter.to_checksum(None),
        receiver.to_checksum(None)
    );
    std::fs::write(dir.path().join("ferry.yaml"), config).expect("config");

    let started = Instant::now();
    let mut watch = KillOnDrop::spawn(
        ferry_command(dir.path()).args(["watch"]).stdout(Stdio::null()).stderr(Stdio::null()),
    );
    // Both roles at work: ingest polls every 100ms and delivery has 20 items to send, each
    // wanting more requests per second than the limit allows on its own.
    let recorded = async || {
        let out =
            anvil.call(receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await.expect("view");
        U256::from_be_slice(&out)
    };
    let deadline = started + Duration::from_secs(30);
    while recorded().await < U256::from(1) {
        assert!(Instant::now() < deadline, "watch delivered nothing in 30s");
        anvil.mine(1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let forwarded = proxy.injected.forwarded.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    watch.signal("INT");
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch stops");
    assert_eq!(status.code(), Some(130));

    // One limiter: at most RATE per second from the first request on, plus the first one.
    let allowed = (RATE as f64 * elapsed).ceil() as u64 + 1;
    assert!(
        forwarded <= allowed,
        "{forwarded} requests in {elapsed:.1}s: more than {RATE}/s ({allowed}) — the roles do not share one limit"
    );
    // And the limit was what bound it: the roles together wanted more than it allows.
    assert!(
        forwarded * 10 >= allowed * 7,
        "only {forwarded} requests in {elapsed:.1}s; the test did not load the chain"
    );
}
