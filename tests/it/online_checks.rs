//! `ferry check-config --online` on what delivery will ask of a destination: each `evm-call`
//! target's already-done view is called once per chain (a view that fails is an error naming the
//! target, the chain and the view), and the chain's fee cap is compared with the base fee (a
//! warning). Real binary, real anvil.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::command::{ferry_command, output_within};
use crate::support::devnet::{Anvil, DEV_KEYS};
use crate::support::output::{stderr, stdout};

const LIMIT: Duration = Duration::from_secs(120);

fn target(name: &str, view: &str, receiver: &str) -> String {
    format!(
        "  {name}:\n    kind: evm-call\n    function: \"function postBatch(uint64 height, bytes32 root)\"\n    args: {{ height: {{ field: height }}, root: {{ field: root }} }}\n    already_done:\n      view: \"{view}\"\n      compare: \">= height\"\n    chains: {{ a: \"{receiver}\" }}\n"
    )
}

/// (key, message) of every diagnostic of `severity`, sorted.
fn diagnostics(report: &Value, severity: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["severity"] == severity)
        .map(|d| {
            (d["key"].as_str().unwrap_or_default().into(), d["message"].as_str().unwrap_or_default().into())
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn online_check_calls_each_already_done_view_and_warns_of_a_cap_below_the_base_fee() {
    let a = Anvil::start(71_011).await;
    let receiver = a.deploy("BatchReceiver", &[]).await.to_string();
    let write = |dir: &std::path::Path, cap: u32| {
        let yaml = format!(
            "chains:\n  a:\n    chain_id: {}\n    rpc: [\"{}\"]\n    signer: {{ key_env: FERRY_TEST_FUNDED_KEY }}\n    gas: {{ max_fee_gwei: {cap} }}\ntargets:\n{}{}",
            a.chain_id(),
            a.url(),
            target("good", "function lastBatchHeight() view returns (uint64)", &receiver),
            target("wrong", "function lastHeight() view returns (uint64)", &receiver),
        );
        std::fs::write(dir.join("ferry.yaml"), yaml).expect("write config");
    };
    let check = async |dir: &std::path::Path| {
        let mut cmd = ferry_command(dir);
        cmd.args(["check-config", "--online", "--json"]).env("FERRY_TEST_FUNDED_KEY", DEV_KEYS[0]);
        let out =
            output_within(cmd, LIMIT).await.expect("check-config finishes in time").expect("ferry runs");
        let report: Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("JSON on stdout ({e}): {}\n{}", stdout(&out), stderr(&out)));
        (out.status.code(), report)
    };
    // The base fee well above a 1 gwei cap.
    a.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{:#x}", 50_000_000_000u64)])).await;
    a.mine(1).await;

    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), 1);
    let (code, report) = check(dir.path()).await;
    assert_eq!(code, Some(2), "{report}");
    let errors = diagnostics(&report, "error");
    let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["targets.wrong.already_done.view"], "only the wrong view: {errors:#?}");
    let message = &errors[0].1;
    for part in ["target wrong", "chain a", "lastHeight()", "reverted"] {
        assert!(message.contains(part), "`{part}` in {message}");
    }
    let warnings = diagnostics(&report, "warning");
    let cap = warnings
        .iter()
        .find(|(k, _)| k == "chains.a.gas.max_fee_gwei")
        .unwrap_or_else(|| panic!("{warnings:#?}"));
    assert!(cap.1.contains("below the current base fee"), "{cap:?}");

    // A cap above the market: no warning about it; the wrong view is still an error.
    write(dir.path(), 500);
    let (code, report) = check(dir.path()).await;
    assert_eq!(code, Some(2), "{report}");
    assert!(
        diagnostics(&report, "warning").iter().all(|(k, _)| k != "chains.a.gas.max_fee_gwei"),
        "{report}"
    );
}
