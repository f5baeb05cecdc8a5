//! Config files as operators write them: every example passes (or is refused only for a kind not
//! built yet), every broken fixture fails with
//! exit 2 pointing at the right line and key, without a panic and without printing a secret.
//!
//! Each fixture `tests/fixtures/config/NAME.yaml` marks the line ferry must point at with `# <-`;
//! `NAME.expect` holds the key path, a piece of the message and optionally of the hint.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::command::ferry_command;
use crate::support::devnet::DEV_KEYS;
use crate::support::output::text;

const DEV_KEY: &str = DEV_KEYS[0];
/// Values that must never appear in ferry's output.
const SECRETS: [&str; 4] =
    ["not-a-key-but-a-secret-9731", "hunter2-secret-pw", "abcdef0123456789abcdef", DEV_KEY];

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ferry_in(dir: &Path, args: &[&str]) -> Output {
    ferry_command(dir)
        .args(args)
        .env("FERRY_TEST_KEY", DEV_KEY)
        .env("FERRY_SIGNER_KEY", DEV_KEY)
        .env("PUSHER_KEY", DEV_KEY)
        .env("WEBHOOK_SECRET", "webhook-secret-for-tests")
        .env("FERRY_TEST_SECRET", SECRETS[0])
        .env(
            "FERRY_TEST_SECRET_URL",
            "ftp://operator:hunter2-secret-pw@rpc.example/v2/abcdef0123456789abcdef",
        )
        .env_remove("FERRY_UNSET_KEY_VAR")
        .env_remove("FERRY_UNSET_RPC_URL")
        .env_remove("FERRY_UNSET_WEBHOOK_SECRET")
        .output()
        .expect("the ferry binary runs")
}

struct Expect {
    key: String,
    message: String,
    hint: Option<String>,
}

fn read_expect(path: &Path) -> Expect {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let field =
        |name: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string));
    Expect {
        key: text
            .lines()
            .find_map(|l| l.strip_prefix("key:"))
            .map(|k| k.trim().to_string())
            .unwrap_or_default(),
        message: field("message").unwrap_or_else(|| panic!("{} has no `message:`", path.display())),
        hint: field("hint"),
    }
}

fn fixtures() -> Vec<PathBuf> {
    let dir = manifest().join("tests/fixtures/config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn assert_clean(name: &str, out: &Output) {
    let all = text(out);
    assert!(!all.contains("panicked"), "{name}: ferry panicked:\n{all}");
    for secret in SECRETS {
        assert!(!all.contains(secret), "{name}: output shows a secret value:\n{all}");
    }
}

#[test]
fn at_least_thirty_broken_configs() {
    let named =
        fixtures().iter().filter(|f| !read_expect(&f.with_extension("expect")).key.is_empty()).count();
    assert!(named >= 30, "only {named} broken configs name a key");
}

#[test]
fn every_broken_config_exits_2_naming_line_and_key() {
    let dir = manifest().join("tests/fixtures/config");
    let mut failures = Vec::new();
    for fixture in fixtures() {
        let file = fixture.file_name().and_then(|n| n.to_str()).expect("utf-8 name").to_string();
        let expect = read_expect(&fixture.with_extension("expect"));
        let text = std::fs::read_to_string(&fixture).expect("fixture");
        let line = text
            .lines()
            .position(|l| !l.starts_with('#') && l.contains("# <-"))
            .unwrap_or_else(|| panic!("{file} has no `# <-` marker"))
            + 1;

        // A command that needs the config: diagnostics on stderr, compiler style.
        let out = ferry_in(&dir, &["watch", "-c", &file]);
        assert_clean(&file, &out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let key = if expect.key.is_empty() { String::new() } else { format!("{}: ", expect.key) };
        let wanted = format!("{file}:{line}:");
        let found = stderr.lines().any(|l| {
            l.starts_with(&wanted) && l.contains(&format!(" error: {key}")) && l.contains(&expect.message)
        });
        if out.status.code() != Some(2) || !found {
            failures.push(format!(
                "{file}: want exit 2 and `{wanted} error: {key}…{}…`, got exit {:?}:\n{stderr}",
                expect.message,
                out.status.code()
            ));
            continue;
        }
        if let Some(hint) = &expect.hint
            && !stderr.contains(hint.as_str())
        {
            failures.push(format!("{file}: hint `{hint}` missing:\n{stderr}"));
        }

        // check-config --json: the same diagnostic, machine-readable.
        let out = ferry_in(&dir, &["check-config", "-c", &file, "--json"]);
        assert_clean(&file, &out);
        let report: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{file}: check-config --json is not JSON: {e}"));
                continue;
            }
        };
        let hit = report["diagnostics"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["line"] == line && d["key"] == expect.key.as_str() && d["severity"] == "error");
        if out.status.code() != Some(2) || report["ok"] != false || !hit {
            failures.push(format!("{file}: check-config --json: exit {:?}, {report}", out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{} fixture(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Every example is a config an operator could copy: it passes `check-config` with no error and
/// no warning.
#[test]
fn every_example_passes_check_config() {
    let dir = manifest().join("config-examples");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("config-examples")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 4, "expected the four examples, found {examples:?}");
    for example in examples {
        let file = example.file_name().and_then(|n| n.to_str()).expect("utf-8 name").to_string();
        let out = ferry_in(&dir, &["check-config", "-c", &file, "--json"]);
        assert_clean(&file, &out);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check-config --json");
        assert_eq!(out.status.code(), Some(0), "{file} does not pass: {report}");
        let diagnostics = report["diagnostics"].as_array().cloned().unwrap_or_default();
        assert!(diagnostics.is_empty(), "{file} has diagnostics: {report}");
    }
}

/// Every sink kind is accepted with its keys, and none is left half-checked: a sink whose secret
/// variable is unset is refused at start-up (exit 2) before a store is created.
#[test]
fn every_sink_kind_is_accepted_and_an_unset_secret_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = "chains:\n  local: { chain_id: 31337, rpc: ['http://127.0.0.1:9'] }\n\
        sources:\n  pings:\n    kind: evm\n    chain: local\n    contracts:\n\
        \x20     - address: '0x5FbDB2315678afecb367f032d93F642f64180aa3'\n\
        \x20       events: ['event Ping(uint256 indexed seq)']\n";
    let targets = "targets:\n\
        \x20 hook: { kind: webhook, url: 'https://hooks.example.com/x', secret_env: WEBHOOK_SECRET, ordered: true }\n\
        \x20 archive: { kind: jsonl, path: items.jsonl }\n\
        \x20 stream: { kind: redis-stream, url: 'redis://127.0.0.1:1', stream: items, maxlen: 1000 }\n\
        \x20 js: { kind: nats-jetstream, url: 'nats://127.0.0.1:1', subject: ferry.items, stream: ITEMS }\n\
        \x20 pubsub: { kind: gcp-pubsub, project: demo, topic: items, ordering_key: true }\n\
        routes:\n  - { source: pings, targets: [hook, archive, stream, js, pubsub] }\n";
    std::fs::write(dir.path().join("ferry.yaml"), format!("{base}{targets}")).expect("write");
    let out = ferry_in(dir.path(), &["check-config", "--json"]);
    assert_clean("sinks", &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let unset = targets.replace("WEBHOOK_SECRET", "FERRY_UNSET_WEBHOOK_SECRET");
    std::fs::write(dir.path().join("ferry.yaml"), format!("{base}{unset}")).expect("write");
    for args in [&["check-config"][..], &["watch"], &["push"], &["backfill", "--from", "0", "--to", "1"]] {
        let out = ferry_in(dir.path(), args);
        assert_clean("unset secret", &out);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(
            said.contains("targets.hook.secret_env")
                && said.contains("`FERRY_UNSET_WEBHOOK_SECRET` is not set"),
            "{args:?}: {said}"
        );
    }
    assert!(!dir.path().join("ferry.redb").exists(), "a store was created for a refused config");
}

#[test]
fn a_missing_config_file_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ferry_in(dir.path(), &["watch", "-c", "nope.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope.yaml") && stderr.contains("cannot read the config file"), "{stderr}");
}

#[test]
fn odd_inputs_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs: [&[u8]; 9] = [
        b"",
        b"---\n...\n",
        b"\xff\xfe not utf-8",
        b"[1, 2, 3]",
        b"chains: {a: {chain_id: 99999999999999999999999, rpc: [x]}}",
        b"chains: &a {x: *a}",
        b"sources: {s: {kind: [evm]}}",
        b"routes: [{source: {a: b}, targets: x}]",
        b"chains: {a: {chain_id: 1, rpc: ['${'], signer: {key_env: ''}}}",
    ];
    for (i, input) in inputs.iter().enumerate() {
        let path = dir.path().join(format!("odd{i}.yaml"));
        std::fs::write(&path, input).expect("write");
        let out = ferry_in(dir.path(), &["check-config", "-c", &format!("odd{i}.yaml")]);
        assert_clean(&format!("odd{i}"), &out);
        assert!(matches!(out.status.code(), Some(0 | 2)), "odd{i}: exit {:?}", out.status.code());
    }
}
