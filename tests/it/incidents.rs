//! Incidents: what an operator runs when something went wrong. Read-only commands need no secret
//! and read a store a killed `watch` left unclean (from a repaired copy, the file untouched);
//! `check-config --no-env` checks a config in CI without its secrets; a keystore with a wrong
//! password fails the offline check.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deliver::{Miner, Net};
use crate::support::command::ferry_command;
use crate::support::devnet::DEV_KEYS;
use crate::support::output::{json_or_null, stderr, text};
use crate::support::process::KillOnDrop;

/// `ferry ARGS…` with no signer variable in its environment at all.
fn without_secrets(dir: &Path, args: &[&str]) -> Output {
    ferry_command(dir).args(args).env_remove("FERRY_TEST_SIGNER").output().expect("ferry runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_of_watch_reads_work_without_secrets_and_leave_the_file_as_it_is() {
    let net = Net::start(1).await;
    let _miner = Miner::start(vec![net.source.url(), net.dests[0].0.url()], Duration::from_millis(300));
    net.emit(0, 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    let log = std::fs::File::create(dir.path().join("watch.log")).expect("log file");
    let mut watch =
        KillOnDrop::spawn(ferry_command(dir.path()).args(["watch"]).stdout(Stdio::null()).stderr(log));
    // Until the three are confirmed: the store holds events, deliveries and intents.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = ferry_command(dir.path())
            .args(["inspect-store", "deliveries", "--state", "confirmed", "--json"])
            .output()
            .expect("ferry runs");
        if json_or_null(&out)["matched"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {}", text(&out));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    watch.kill().expect("SIGKILL");
    watch.wait().expect("reaped");
    let store = dir.path().join("ferry.redb");
    let before = std::fs::read(&store).expect("the store");

    for args in [
        &["inspect-store", "summary", "--json"][..],
        &["inspect-store", "deliveries", "--json"],
        &["inspect-store", "events", "--json"],
        &["export", "events"],
    ] {
        let out = without_secrets(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "`ferry {}`: {}", args.join(" "), text(&out));
        let said = stderr(&out);
        assert!(
            said.contains("not closed cleanly") && said.contains("recovered copy"),
            "`ferry {}` says it reads a recovered copy: {said}",
            args.join(" ")
        );
        assert_eq!(said.matches("recovered copy").count(), 1, "one line: {said}");
        assert!(!said.contains("FERRY_TEST_SIGNER"), "no secret is needed: {said}");
    }
    let deliveries = json_or_null(&without_secrets(dir.path(), &["inspect-store", "deliveries", "--json"]));
    assert_eq!(deliveries["matched"], 3, "{deliveries}");
    let events = without_secrets(dir.path(), &["export", "events"]);
    assert_eq!(String::from_utf8_lossy(&events.stdout).lines().count(), 3, "{}", text(&events));
    let summary = json_or_null(&without_secrets(dir.path(), &["inspect-store", "summary", "--json"]));
    assert!(summary.to_string().contains("deliveries"), "{summary}");

    assert!(std::fs::read(&store).expect("the store") == before, "the store file changed");
    // No copy is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("ferry-recovered-"))
        .filter(|e| std::fs::read(e.path()).is_ok_and(|bytes| bytes.len() == before.len()))
        .collect();
    assert!(leftovers.is_empty(), "recovered copies left: {leftovers:?}");

    // The next writer recovers the file itself and delivery goes on.
    let out =
        ferry_command(dir.path()).args(["push", "--json", "--timeout", "60s"]).output().expect("ferry runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

const NO_ENV_CONFIG: &str = "\
chains:
  src:
    chain_id: 31337
    rpc: [\"http://127.0.0.1:8545\"]
  dest:
    chain_id: 41000
    rpc: [\"https://rpc.example/v2/${FERRY_INCIDENT_RPC_KEY}\"]
    signer: { key_env: FERRY_INCIDENT_SIGNER }
sources:
  batches:
    kind: evm
    chain: src
    contracts:
      - address: \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"
        events: [\"event BatchReady(uint64 indexed height, bytes32 root)\"]
targets:
  receiver:
    kind: evm-call
    function: record(uint64 height, bytes32 root)
    args:
      height: { field: height }
      root: { field: root }
    chains:
      dest: \"0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512\"
  hook:
    kind: webhook
    url: https://hooks.example/ferry
    secret_env: FERRY_INCIDENT_HOOK_SECRET
routes:
  - source: batches
    targets: [receiver, hook]
";

fn check_config(dir: &Path, args: &[&str]) -> Output {
    ferry_command(dir)
        .arg("check-config")
        .args(args)
        .env_remove("FERRY_INCIDENT_RPC_KEY")
        .env_remove("FERRY_INCIDENT_SIGNER")
        .env_remove("FERRY_INCIDENT_HOOK_SECRET")
        .output()
        .expect("ferry runs")
}

#[test]
fn check_config_no_env_names_the_unset_variables_and_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ferry.yaml"), NO_ENV_CONFIG).expect("config");
    // With the environment: every unset variable is an error.
    let out = check_config(dir.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report = json_or_null(&out);
    let errors = with_severity(&report, "error");
    assert_eq!(errors.len(), 3, "{report}");

    // Without: each is a warning naming the variable and its key, and the config passes.
    let out = check_config(dir.path(), &["--no-env", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json_or_null(&out);
    assert_eq!(report["ok"], true, "{report}");
    let warnings: Vec<(String, String)> = with_severity(&report, "warning")
        .into_iter()
        .map(|d| {
            (
                d["key"].as_str().unwrap_or_default().to_string(),
                d["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (key, var) in [
        ("chains.dest.rpc[0]", "FERRY_INCIDENT_RPC_KEY"),
        ("chains.dest.signer.key_env", "FERRY_INCIDENT_SIGNER"),
        ("targets.hook.secret_env", "FERRY_INCIDENT_HOOK_SECRET"),
    ] {
        assert!(
            warnings.iter().any(|(k, m)| k == key && m.contains(var) && m.contains("not set")),
            "a warning at {key} naming {var}: {warnings:?}"
        );
    }
    assert!(!report.to_string().contains("\"error\""), "{report}");

    // The human table says the same.
    let out = check_config(dir.path(), &["--no-env"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("FERRY_INCIDENT_SIGNER"), "{}", text(&out));

    // Anything else wrong still fails it.
    std::fs::write(dir.path().join("ferry.yaml"), NO_ENV_CONFIG.replace("chain_id: 41000", "chain_id: 0"))
        .expect("config");
    let out = check_config(dir.path(), &["--no-env"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("chain id 0"), "{}", text(&out));

    // And it is for offline checks only.
    let out = check_config(dir.path(), &["--no-env", "--online"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// A fixed stream of bytes for the keystore's salt and IV: a test needs no entropy.
struct Counter(u8);

impl alloy::signers::k256::elliptic_curve::rand_core::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes([self.step(), self.step(), self.step(), self.step()])
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.next_u32()) << 32 | u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.iter_mut().for_each(|b| *b = self.step());
    }
    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> Result<(), alloy::signers::k256::elliptic_curve::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl alloy::signers::k256::elliptic_curve::rand_core::CryptoRng for Counter {}

impl Counter {
    fn step(&mut self) -> u8 {
        self.0 = self.0.wrapping_add(37);
        self.0
    }
}

#[test]
fn offline_check_config_opens_keystores_and_names_a_wrong_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = alloy::primitives::hex::decode(DEV_KEYS[1].trim_start_matches("0x")).expect("a hex key");
    alloy::signers::local::PrivateKeySigner::encrypt_keystore(
        dir.path(),
        &mut Counter(1),
        &key,
        "the-right-pass-7781",
        Some("key.json"),
    )
    .expect("keystore written");
    let config = NO_ENV_CONFIG
        .replace(
            "signer: { key_env: FERRY_INCIDENT_SIGNER }",
            "signer: { keystore: key.json, password_env: FERRY_INCIDENT_PW }",
        )
        .replace("${FERRY_INCIDENT_RPC_KEY}", "k")
        .replace("    secret_env: FERRY_INCIDENT_HOOK_SECRET\n", "");
    std::fs::write(dir.path().join("ferry.yaml"), config).expect("config");
    let run = |password: &str| {
        ferry_command(dir.path())
            .args(["check-config", "--json"])
            .env("FERRY_INCIDENT_PW", password)
            .output()
            .expect("ferry runs")
    };
    let out = run("a-wrong-pass-5512");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(!said.contains("a-wrong-pass-5512"), "the password is never shown: {said}");
    let report = json_or_null(&out);
    let errors = with_severity(&report, "error");
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0]["key"], "chains.dest.signer.keystore", "{report}");
    assert_eq!(errors[0]["line"], 8, "the line of the signer: {report}");
    let message = errors[0]["message"].as_str().expect("message");
    assert!(message.contains("key.json") && message.contains("FERRY_INCIDENT_PW"), "{message}");
    assert!(message.contains("wrong password"), "{message}");

    let out = run("the-right-pass-7781");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("the-right-pass-7781"), "{}", text(&out));
}

/// The diagnostics of a `check-config --json` report with this severity.
fn with_severity<'a>(report: &'a Value, severity: &str) -> Vec<&'a Value> {
    report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["severity"] == severity)
        .collect()
}
