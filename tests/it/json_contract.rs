//! The JSON contract through the real binary: every command's `--json` document, and every
//! fatal error, validated against its schema in `docs/json/` (draft 2020-12); the README's
//! examples validated against the same schemas, so that the documentation cannot drift; and
//! `--log-format json` lines flat and typed, a fatal error's included. Views run on the committed
//! store fixture; `push`, `backfill`, `check-config --online` and the operator's actions on an
//! anvil devnet.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use super::deliver::Net;
use crate::bugs::write_one_chain_config;
use crate::support::command::{ferry_command, run};
use crate::support::output::{json_lines, stderr, text};

/// Every shape the contract has, by its `kind`: one schema file each.
const KINDS: [&str; 19] = [
    "inspect-store.summary",
    "inspect-store.cursors",
    "inspect-store.contracts",
    "inspect-store.events",
    "inspect-store.reorgs",
    "inspect-store.deliveries",
    "inspect-store.deliveries-matrix",
    "inspect-store.txs",
    "inspect-store.batches",
    "inspect-store.provers",
    "inspect-store.retry",
    "inspect-store.skip",
    "inspect-store.cancel",
    "inspect-store.resync",
    "push",
    "backfill",
    "check-config",
    "migrate",
    "error",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema(kind: &str) -> Value {
    let path = repo().join("docs/json").join(format!("{kind}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks one document against the schema its `kind` names; returns the kind.
fn validate(document: &Value, what: &str) -> String {
    assert_eq!(document["v"], 1, "{what}: no \"v\": 1 in {document}");
    let kind = document["kind"].as_str().unwrap_or_else(|| panic!("{what}: no kind in {document}"));
    assert!(KINDS.contains(&kind), "{what}: kind `{kind}` has no schema");
    let schema = schema(kind);
    let validator = jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("schema {kind}: {e}"));
    let errors: Vec<String> =
        validator.iter_errors(document).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{what}: does not match docs/json/{kind}.schema.json:\n{}\n{document:#}",
        errors.join("\n")
    );
    kind.to_string()
}

/// Runs `ferry ARGS` with `--json`, checks the exit code, parses stdout as one document and
/// validates it; returns it.
fn json_run(dir: &Path, args: &[&str], code: i32, seen: &mut BTreeSet<String>) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = run(dir, &all);
    checked(&out, &format!("ferry {}", all.join(" ")), code, seen)
}

/// Whether a document's text opens with `"v"` then `"kind"` (a parsed `Value` sorts its keys).
fn opens_with_v_and_kind(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    compact.starts_with("{\"v\":1,\"kind\":")
}

fn checked(out: &Output, what: &str, code: i32, seen: &mut BTreeSet<String>) -> Value {
    assert_eq!(out.status.code(), Some(code), "{what}: {}", text(out));
    let opening = String::from_utf8_lossy(&out.stdout);
    assert!(opens_with_v_and_kind(&opening), "{what}: does not open with v and kind: {}", text(out));
    let document: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not one JSON document ({e}): {}", text(out)));
    seen.insert(validate(&document, what));
    document
}

fn fixture_store(dir: &Path) {
    std::fs::copy(repo().join("tests/fixtures/store-v5.redb"), dir.join("ferry.redb")).expect("copy fixture");
}

/// Every view of `inspect-store` on the fixture store, migrate on an older one, check-config
/// offline, and the errors: each document valid against its schema.
#[test]
fn every_view_and_offline_command_matches_its_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_store(dir.path());
    let mut seen = BTreeSet::new();
    let views: [&[&str]; 11] = [
        &["inspect-store"],
        &["inspect-store", "summary"],
        &["inspect-store", "cursors"],
        &["inspect-store", "contracts"],
        &["inspect-store", "events"],
        &["inspect-store", "reorgs"],
        &["inspect-store", "deliveries"],
        &["inspect-store", "deliveries", "--matrix"],
        &["inspect-store", "txs"],
        &["inspect-store", "batches"],
        &["inspect-store", "provers"],
    ];
    for view in views {
        let document = json_run(dir.path(), view, 0, &mut seen);
        // The fixture has a row of everything: the rows, not only the envelope, are checked.
        let rows = document.as_object().expect("an object").values().filter_map(Value::as_array);
        assert!(rows.into_iter().any(|r| !r.is_empty()), "{view:?}: no rows to check: {document}");
    }
    // Without a config, chains are named by their id, and `chain_id` is the number.
    let events = json_run(dir.path(), &["inspect-store", "events"], 0, &mut seen);
    assert_eq!(events["events"][0]["chain"], "31337", "{events}");
    assert_eq!(events["events"][0]["chain_id"], 31337, "{events}");

    // migrate: a plan (dry run), then done, on the previous schema's fixture.
    let old = tempfile::tempdir().expect("tempdir");
    std::fs::copy(repo().join("tests/fixtures/store-v4.redb"), old.path().join("ferry.redb")).expect("copy");
    let plan = json_run(old.path(), &["migrate", "--dry-run"], 0, &mut seen);
    assert_eq!((plan["done"].clone(), plan["steps"][0]["from"].clone()), (false.into(), 4.into()), "{plan}");
    let done = json_run(old.path(), &["migrate", "--yes"], 0, &mut seen);
    assert_eq!(done["done"], true, "{done}");

    // check-config: a bad config is a report (exit 2), not an error document.
    let config = tempfile::tempdir().expect("tempdir");
    std::fs::copy(repo().join("tests/fixtures/config/rpc-empty.yaml"), config.path().join("ferry.yaml"))
        .expect("copy config");
    let report = json_run(config.path(), &["check-config"], 2, &mut seen);
    assert_eq!(report["ok"], false, "{report}");

    // Errors: a store that is not one (3), a config that does not load (2, with its
    // diagnostics), a command line clap refuses (2).
    std::fs::write(dir.path().join("not-a-store"), "{}").expect("write");
    let error = json_run(dir.path(), &["inspect-store", "--store", "not-a-store"], 3, &mut seen);
    assert_eq!((error["error"]["code"].clone(), error["exit"].clone()), ("store_unusable".into(), 3.into()));
    let out = run(dir.path(), &["inspect-store", "--store", "not-a-store", "--json"]);
    assert_eq!(stderr(&out).lines().count(), 1, "one line on stderr under --json: {}", stderr(&out));
    let error = json_run(config.path(), &["push"], 2, &mut seen);
    assert_eq!(error["error"]["code"], "config_invalid", "{error}");
    assert!(error["error"]["diagnostics"].as_array().is_some_and(|d| !d.is_empty()), "{error}");
    let error = json_run(dir.path(), &["push", "--timeout", "soon"], 2, &mut seen);
    assert_eq!(error["error"]["code"], "usage", "{error}");

    let expected: BTreeSet<String> = [
        "inspect-store.summary",
        "inspect-store.cursors",
        "inspect-store.contracts",
        "inspect-store.events",
        "inspect-store.reorgs",
        "inspect-store.deliveries",
        "inspect-store.deliveries-matrix",
        "inspect-store.txs",
        "inspect-store.batches",
        "inspect-store.provers",
        "migrate",
        "check-config",
        "error",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(seen, expected);
}

/// push, backfill, check-config --online and the operator's actions on real chains: their
/// documents match their schemas, and so does every view once it holds real transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_backfill_and_operator_actions_match_their_schemas() {
    let net = Net::start(1).await;
    let anvil = &net.dests[0].0;
    // Heights 0 and 1 are already posted: their deliveries revert and fail for good.
    let dir = tempfile::tempdir().expect("tempdir");
    net.two_posted_by_hand(dir.path()).await;
    let mut seen = BTreeSet::new();

    let online = json_run(dir.path(), &["check-config", "--online"], 0, &mut seen);
    assert!(online["online"]["chains"].as_array().is_some_and(|c| c.len() == 2), "{online}");
    let backfill =
        json_run(dir.path(), &["backfill", "--from", "0", "--to", "latest", "--deliver"], 4, &mut seen);
    assert_eq!(backfill["deliveries"][0]["failed"], 2, "{backfill}");
    let push = json_run(dir.path(), &["push", "--timeout", "60s"], 4, &mut seen);
    assert_eq!((push["chains"][0]["chain"].clone(), push["exit"].clone()), ("d0".into(), 4.into()), "{push}");
    json_run(dir.path(), &["push", "--dry-run", "--no-sync", "--timeout", "30s"], 0, &mut seen);

    let failed = json_run(dir.path(), &["inspect-store", "deliveries", "--state", "failed"], 0, &mut seen);
    let ids: Vec<String> = failed["deliveries"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{failed}");
    for view in [
        &["inspect-store", "deliveries"][..],
        &["inspect-store", "deliveries", "--matrix"],
        &["inspect-store", "txs"],
    ] {
        json_run(dir.path(), view, 0, &mut seen);
    }
    let skipped = json_run(dir.path(), &["inspect-store", "skip", &ids[0], "--yes"], 0, &mut seen);
    assert_eq!(skipped["changed"][0]["to"], "skipped", "{skipped}");
    let retried = json_run(dir.path(), &["inspect-store", "retry", &ids[1], "--yes"], 0, &mut seen);
    assert_eq!(retried["changed"][0]["to"], "pending", "{retried}");

    // A transaction left in flight (no mining), cancelled by the operator; then the node
    // forgets everything and the nonces are resynced.
    anvil.rpc("evm_setAutomine", serde_json::json!([false])).await;
    net.emit(3, 1).await;
    json_run(dir.path(), &["push", "--timeout", "4s"], 4, &mut seen);
    let txs = json_run(dir.path(), &["inspect-store", "txs", "--open"], 0, &mut seen);
    let nonce = txs["txs"][0]["nonce"].as_u64().unwrap_or_else(|| panic!("an open transaction: {txs}"));
    let nonce = nonce.to_string();
    let cancel = json_run(
        dir.path(),
        &["inspect-store", "cancel", "--chain", "d0", "--nonce", &nonce, "--max-fee-gwei", "200", "--yes"],
        0,
        &mut seen,
    );
    assert_eq!(
        (cancel["chain"].clone(), cancel["broadcast"].clone()),
        ("d0".into(), true.into()),
        "{cancel}"
    );
    anvil.rpc("anvil_dropAllTransactions", serde_json::json!([])).await;
    let resync = json_run(dir.path(), &["inspect-store", "resync", "--chain", "d0", "--yes"], 0, &mut seen);
    assert_eq!(resync["chain_id"], anvil.chain_id(), "{resync}");

    // Logs as JSON: every line one flat object, numbers typed; a fatal error is a line too.
    anvil.rpc("evm_setAutomine", serde_json::json!([true])).await;
    let out = run(dir.path(), &["push", "--timeout", "60s", "-v", "--log-format", "json"]);
    let lines = json_log_lines(&out);
    assert!(
        lines.iter().any(|l| l["nonce"].is_u64() || l["next_nonce"].is_u64()),
        "no nonce logged: {}",
        stderr(&out)
    );
    let out = run(dir.path(), &["inspect-store", "--store", "missing/ferry.redb", "--log-format", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let lines = json_log_lines(&out);
    let last = lines.last().expect("a line");
    assert_eq!((last["level"].clone(), last["exit"].clone()), ("ERROR".into(), 3.into()), "{last}");
    assert_eq!(last["code"], "store_unusable", "{last}");

    let expected: BTreeSet<String> = [
        "check-config",
        "backfill",
        "push",
        "inspect-store.deliveries",
        "inspect-store.deliveries-matrix",
        "inspect-store.txs",
        "inspect-store.skip",
        "inspect-store.retry",
        "inspect-store.cancel",
        "inspect-store.resync",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(seen, expected);
}

/// Every stderr line of a run as JSON: one object each, with flat fields (no object or array
/// values) and numbers as numbers (no field but the message holds a number written as text).
fn json_log_lines(out: &Output) -> Vec<Value> {
    let lines = json_lines(&out.stderr);
    assert!(!lines.is_empty(), "no log lines: {}", text(out));
    for line in &lines {
        let fields = line.as_object().unwrap_or_else(|| panic!("not an object: {line}"));
        for key in ["timestamp", "level", "message"] {
            assert!(fields.contains_key(key), "no `{key}` in {line}");
        }
        for (key, value) in fields {
            assert!(!value.is_object() && !value.is_array(), "`{key}` is nested in {line}");
            if key != "message" {
                let numeric = value.as_str().is_some_and(|s| !s.is_empty() && s.parse::<f64>().is_ok());
                assert!(!numeric, "`{key}` is a number written as text in {line}");
            }
        }
    }
    lines
}

/// The README's examples of the contract: each ```json block of its "JSON output" section is
/// one document, valid against its schema, and every kind has one.
#[test]
fn the_readme_examples_match_the_schemas() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split("\n## JSON output")
        .nth(1)
        .expect("a `## JSON output` section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    for (i, block) in section.split("```json\n").skip(1).enumerate() {
        let body = block.split("\n```").next().unwrap_or_default();
        let document: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("README example {i} is not JSON ({e}):\n{body}"));
        assert!(opens_with_v_and_kind(body), "README example {i} does not open with v and kind:\n{body}");
        seen.insert(validate(&document, &format!("README example {i}")));
    }
    let missing: Vec<&str> = KINDS.iter().copied().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "the README has no example of {missing:?}");
    // And every schema file is one of the kinds, valid as a schema.
    let files: BTreeSet<String> = std::fs::read_dir(repo().join("docs/json"))
        .expect("docs/json")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".schema.json").map(String::from))
        .collect();
    assert_eq!(files, KINDS.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>());
    for kind in KINDS {
        jsonschema::draft202012::meta::validate(&schema(kind)).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

/// export's rows carry the names of the views, and its CSV has one column per JSON field, lists
/// joined with `;` as its help says.
#[test]
fn export_rows_and_csv_columns_follow_the_json_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_store(dir.path());
    for what in ["events", "contracts", "deliveries", "txs", "batches"] {
        let out = run(dir.path(), &["export", what]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let rows = json_lines(&out.stdout);
        // A parsed row sorts its keys: columns are compared as a set, and looked up by name.
        let mut keys: BTreeSet<String> = rows[0].as_object().expect("a row").keys().cloned().collect();
        // A delivery's receipt is an object in JSON, `receipt_*` columns in CSV.
        if keys.remove("receipt") {
            for field in ["tx_hash", "block", "block_hash", "success", "gas_used", "effective_gas_price"] {
                keys.insert(format!("receipt_{field}"));
            }
        }
        let out = run(dir.path(), &["export", what, "--format", "csv"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let mut csv = csv::Reader::from_reader(out.stdout.as_slice());
        let header: Vec<String> = csv.headers().expect("header").iter().map(String::from).collect();
        assert_eq!(header.len(), keys.len(), "export {what}: a column twice in {header:?}");
        let columns: BTreeSet<String> = header.iter().cloned().collect();
        assert_eq!(columns, keys, "export {what}: CSV columns differ from the JSON fields");
        let record = csv.records().next().expect("a record").expect("a CSV record");
        for (i, column) in header.iter().enumerate() {
            // Lists of text are joined as they are; a batch's validators and signatures are
            // written as `operator:…` (checked in `inspect_seda`).
            if let Some(list) = rows[0][column].as_array().filter(|l| l.iter().all(Value::is_string)) {
                let joined: Vec<String> =
                    list.iter().map(|v| v.as_str().map_or(v.to_string(), String::from)).collect();
                assert_eq!(&record[i], joined.join(";"), "export {what}: column {column}");
            }
        }
    }
    let out = run(dir.path(), &["export", "events", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    let topics = csv.lines().nth(1).expect("a row").split(',').nth(11).expect("topics column").to_string();
    assert!(!topics.contains(' '), "topics joined with spaces: {topics}");
}

/// With a config naming the chains, rows say the name and the id apart.
#[test]
fn rows_name_chains_as_the_config_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_store(dir.path());
    std::fs::write(
        dir.path().join("ferry.yaml"),
        "chains:\n  home:\n    chain_id: 31337\n    rpc: [\"http://127.0.0.1:9\"]\n",
    )
    .expect("config");
    let mut seen = BTreeSet::new();
    for (view, list) in [("events", "events"), ("contracts", "contracts"), ("reorgs", "reorgs")] {
        let document = json_run(dir.path(), &["inspect-store", view], 0, &mut seen);
        assert_eq!(document[list][0]["chain"], "home", "{document}");
        assert_eq!(document[list][0]["chain_id"], 31337, "{document}");
    }
    let out = ferry_command(dir.path()).args(["export", "events"]).output().expect("ferry runs");
    assert_eq!(json_lines(&out.stdout)[0]["chain"], "home", "{}", text(&out));
}

/// A panic under `--json` and `--log-format json`: a `bug` error document on stdout, and on
/// stderr only JSON lines, the last one the bug (no panic report in text among them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_bug_document_and_a_json_log_line() {
    let dest = crate::support::devnet::Anvil::start(41000).await;
    let receiver = dest.deploy("BatchReceiver", &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_one_chain_config(dir.path(), &dest, receiver);
    let out = ferry_command(dir.path())
        .args(["push", "--no-sync", "--timeout", "30s", "--json", "--log-format", "json"])
        .env("FERRY_TEST_PANIC_IN_WORKER", "dst")
        .output()
        .expect("push");
    let mut seen = BTreeSet::new();
    let error = checked(&out, "a panicking push", 1, &mut seen);
    assert_eq!(error["error"]["code"], "bug", "{error}");
    assert!(
        error["error"]["message"].as_str().is_some_and(|m| m.contains("FERRY_TEST_PANIC_IN_WORKER")),
        "{error}"
    );
    let lines = json_log_lines(&out);
    let last = lines.last().expect("a line");
    assert_eq!((last["code"].clone(), last["exit"].clone()), ("bug".into(), 1.into()), "{last}");
}
