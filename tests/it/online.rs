//! `ferry check-config --online` against two real anvil nodes: it must report a wrong chain id, an
//! address without code and an unfunded signer — and nothing on the parts that are right.

use std::time::Duration;

use serde_json::Value;

use crate::support::command::{ferry_command, output_within};
use crate::support::devnet::{Anvil, DEV_KEYS};
use crate::support::output::{stderr, stdout};

/// Longer than any of `check-config --online`'s own request timeouts.
const LIMIT: Duration = Duration::from_secs(120);

/// A key that no chain ever funded; it must never appear in ferry's output.
const UNFUNDED_KEY: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
/// anvil's first dev account, funded with 10,000 ETH on every anvil.
const FUNDED_KEY: &str = DEV_KEYS[0];

fn config(a: &Anvil, b: &Anvil, receiver: &str, empty: &str) -> String {
    format!(
        r#"chains:
  a:
    chain_id: {a_id}
    rpc: ["{a_url}"]
    signer:
      key_env: FERRY_TEST_UNFUNDED_KEY
  b:
    chain_id: {b_id}
    rpc:
      - "{a_url}"
      - "{b_url}"
    signer:
      key_env: FERRY_TEST_FUNDED_KEY
    min_balance: 1.5
targets:
  good:
    kind: evm-call
    function: "function postBatch(uint64 height, bytes32 root)"
    args:
      height: {{ field: height }}
      root: {{ field: root }}
    chains:
      a: "{receiver}"
  nocode:
    kind: evm-call
    function: "function postBatch(uint64 height, bytes32 root)"
    args:
      height: {{ field: height }}
      root: {{ field: root }}
    chains:
      a: "{empty}"
"#,
        a_id = a.chain_id(),
        b_id = b.chain_id(),
        a_url = a.url(),
        b_url = b.url(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn online_check_reports_wrong_chain_id_missing_code_and_unfunded_signer() {
    let a = Anvil::start(71_001).await;
    let b = Anvil::start(71_002).await;
    let receiver = a.deploy("BatchReceiver", &[]).await;
    let empty = "0x000000000000000000000000000000000000dEaD";
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ferry.yaml");
    std::fs::write(&path, config(&a, &b, &receiver.to_string(), empty)).expect("write config");

    let mut cmd = ferry_command(dir.path());
    cmd.args(["check-config", "--online", "--json"])
        .env("FERRY_TEST_UNFUNDED_KEY", UNFUNDED_KEY)
        .env("FERRY_TEST_FUNDED_KEY", FUNDED_KEY);
    let out = output_within(cmd, LIMIT).await.expect("check-config finishes in time").expect("ferry runs");
    let (stdout, stderr) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "stdout: {stdout}\nstderr: {stderr}");
    for secret in [UNFUNDED_KEY, FUNDED_KEY, &UNFUNDED_KEY[2..], &FUNDED_KEY[2..]] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "a key leaked");
    }

    let report: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    let mut errors: Vec<(String, String, u64)> = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            (
                d["key"].as_str().unwrap_or_default().to_string(),
                d["message"].as_str().unwrap_or_default().to_string(),
                d["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    errors.sort();
    let keys: Vec<&str> = errors.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["chains.a.signer", "chains.b.rpc[0]", "targets.nocode.chains.a"],
        "findings: {errors:#?}"
    );
    let message = |key: &str| &errors.iter().find(|(k, _, _)| k == key).expect("finding").1;
    assert!(message("chains.a.signer").contains("unfunded"), "{errors:?}");
    assert!(message("chains.b.rpc[0]").contains(&format!("chain id {}", a.chain_id())), "{errors:?}");
    assert!(message("targets.nocode.chains.a").contains("no contract code"), "{errors:?}");
    // Each finding points at its line: signer of a (5), rpc[0] of b (10), the nocode address (31).
    let lines: Vec<u64> = errors.iter().map(|(_, _, l)| *l).collect();
    assert_eq!(lines, [5, 10, 31], "{errors:?}");

    // The healthy parts are reported as such: latency for every reachable URL, code, balance.
    for chain in report["online"]["chains"].as_array().expect("chains") {
        for rpc in chain["rpcs"].as_array().expect("rpcs") {
            assert_eq!(rpc["reachable"], true, "{rpc}");
            assert!(rpc["latency_ms"].as_f64().is_some(), "{rpc}");
        }
    }
    let b_report = &report["online"]["chains"][1];
    assert_eq!(b_report["chain"], "b");
    assert!(b_report["signer"]["balance_wei"].as_str().is_some_and(|w| w.len() > 19), "{b_report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn online_check_of_a_sound_config_exits_0() {
    let a = Anvil::start(71_003).await;
    let receiver = a.deploy("BatchReceiver", &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("ferry.yaml"),
        [
            "chains:".to_string(),
            "  a:".into(),
            format!("    chain_id: {}", a.chain_id()),
            format!("    rpc: [\"{}\"]", a.url()),
            "    signer: { key_env: FERRY_TEST_FUNDED_KEY }".into(),
            "targets:".into(),
            "  t:".into(),
            "    kind: evm-call".into(),
            "    function: \"function postBatch(uint64 height, bytes32 root)\"".into(),
            "    args: { height: { field: height }, root: { field: root } }".into(),
            format!("    chains: {{ a: \"{receiver}\" }}"),
        ]
        .join("\n"),
    )
    .expect("write config");
    let mut cmd = ferry_command(dir.path());
    cmd.args(["check-config", "--online"]).env("FERRY_TEST_FUNDED_KEY", FUNDED_KEY);
    let out = output_within(cmd, LIMIT).await.expect("check-config finishes in time").expect("ferry runs");
    let stdout = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("ms"), "no latency in:\n{stdout}");
    assert!(stdout.contains("ok"), "{stdout}");
}
