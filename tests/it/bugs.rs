//! A bug is said as one: a panic anywhere makes the command exit 1 with "this is a bug in ferry",
//! never exit 0 with a chain missing from its report, and never a verdict on the store.

use std::time::Duration;

use crate::support::command::ferry_command;
use crate::support::devnet::Anvil;
use crate::support::output::text;

#[tokio::test(flavor = "multi_thread")]
async fn a_panicked_delivery_worker_makes_push_exit_1_not_0() {
    let dest = Anvil::start(41000).await;
    let receiver = dest.deploy("BatchReceiver", &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_one_chain_config(dir.path(), &dest, receiver);

    // Without the injected panic: nothing to do, done.
    let out =
        ferry_command(dir.path()).args(["push", "--no-sync", "--timeout", "30s"]).output().expect("push");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The test build's hook panics inside the worker of `dst` (after it started).
    let started = std::time::Instant::now();
    let out = ferry_command(dir.path())
        .args(["push", "--no-sync", "--timeout", "30s"])
        .env("FERRY_TEST_PANIC_IN_WORKER", "dst")
        .output()
        .expect("push");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "a panic is exit 1: {said}");
    assert!(said.contains("this is a bug in ferry"), "{said}");
    assert!(said.contains("injected by FERRY_TEST_PANIC_IN_WORKER"), "what panicked is said: {said}");
    assert!(!said.contains("damaged"), "{said}");
    assert!(started.elapsed() < Duration::from_secs(25), "the panic ended the command at once");
}

/// One destination `dst` (the anvil `dest`, chain 41000) with an evm-call target on `receiver`,
/// and no source: for the tests that inject a panic into its worker.
pub(crate) fn write_one_chain_config(
    dir: &std::path::Path,
    dest: &Anvil,
    receiver: alloy::primitives::Address,
) {
    let config = format!(
        "chains:\n  dst:\n    chain_id: 41000\n    rpc: [\"{}\"]\n    confirmations: 1\n\
         \x20   signer: {{ key_env: FERRY_TEST_SIGNER }}\n\
         targets:\n  receiver:\n    kind: evm-call\n    function: function record(uint64 height, bytes32 root)\n\
         \x20   args:\n      height: {{ field: height }}\n      root: {{ field: root }}\n\
         \x20   chains:\n      dst: \"{}\"\n",
        dest.url(),
        receiver.to_checksum(None)
    );
    std::fs::write(dir.join("ferry.yaml"), config).expect("config");
}
