//! The state file through the real binary: `inspect-store`, `export`, `migrate` on the committed
//! v1 fixture, refusals that leave bad files byte-identical, and a second real process holding the
//! store for writing while `inspect-store` reads it.
//!
//! `FERRY_REGEN_FIXTURES=1 cargo test --test it store::` writes the fixture of the current schema,
//! `tests/fixtures/store-v{SCHEMA_VERSION}.redb`; fixtures of earlier schemas stay as committed.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes};
use ferry::store::keys::*;
use ferry::store::records::*;
use ferry::store::tables::SCHEMA_VERSION;
use ferry::store::{Store, tables};
use serde_json::Value;

use crate::support::command::run;
use crate::support::output::{json_lines, text};
use crate::support::process::KillOnDrop;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn current_fixture() -> PathBuf {
    fixture_dir().join(format!("store-v{SCHEMA_VERSION}.redb"))
}

/// A copy of the current schema's fixture in a temp dir, as `ferry.redb` (the default store name).
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(current_fixture(), dir.path().join("ferry.redb")).expect("copy fixture");
    dir
}

/// Writes a few rows into every table: the content of the v1 fixture.
fn populate(store: &Store) {
    store
        .write(|tx| {
            let evm = tx.source_id("escrows")?;
            let seda = tx.source_id("seda")?;
            let target = tx.target_id("receiver")?;
            let hash = |b: u8| B256::repeat_byte(b);
            tx.put_cursor(
                CursorKey { source: evm },
                &Cursor {
                    first: 900,
                    next: 1_001,
                    last_hash: Some(hash(1)),
                    updated_at: 1_700_000_000,
                    stopped: None,
                },
            )?;
            tx.put_cursor(
                CursorKey { source: seda },
                &Cursor {
                    first: 40,
                    next: 43,
                    last_hash: None,
                    updated_at: 1_700_000_000,
                    stopped: Some("batch 43 refused: a test".into()),
                },
            )?;
            for n in 998..=1_000u64 {
                tx.put_block_hash(
                    BlockKey { source: evm, number: n },
                    &BlockHash { hash: hash(n as u8), parent: hash(n as u8 - 1) },
                )?;
            }
            let escrow = Address::repeat_byte(0xe5);
            let factory = Address::repeat_byte(0xfa);
            let created = EventKey { chain: 31337, block: 999, log_index: 0 };
            tx.put_contract(
                ContractKey { chain: 31337, address: factory },
                &Contract { source: evm, factory: None, created_at: None },
            )?;
            tx.put_contract(
                ContractKey { chain: 31337, address: escrow },
                &Contract { source: evm, factory: Some(factory), created_at: Some(created) },
            )?;
            for (i, key) in
                [created, EventKey { chain: 31337, block: 999, log_index: 1 }].into_iter().enumerate()
            {
                tx.put_event(
                    key,
                    &Event {
                        source: evm,
                        address: if i == 0 { factory } else { escrow },
                        block_hash: hash(0x99),
                        tx_hash: hash(0x77),
                        topics: vec![hash(0x10 + i as u8)],
                        data: Bytes::from_static(&[0; 32]),
                        name: Some(if i == 0 { "EscrowDeployed" } else { "Approved" }.into()),
                        fields: Some(r#"{"by":"0xe5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5"}"#.into()),
                        decode_error: None,
                    },
                )?;
            }
            tx.put_batch(
                BatchKey { source: seda, height: 42 },
                &Batch {
                    batch: ferry::seda::SignedBatch {
                        header: ferry::seda::BatchHeader {
                            number: 42,
                            block_height: 9_000,
                            validators_root: hash(0x43),
                            results_root: hash(0x44),
                            proving_metadata: Bytes::new(),
                        },
                        batch_id: hash(0x42),
                        validators: vec![ferry::seda::Validator {
                            operator: "sedavaloper1test".into(),
                            eth_address: Address::repeat_byte(0x45),
                            power: 100_000_000,
                        }],
                        signatures: Vec::new(),
                        result_ids: vec![hash(0x46)],
                    },
                    anchor: false,
                    fetched_at: 1_700_000_000,
                },
            )?;
            let item = ItemKey::Event(created);
            let delivery = DeliveryKey { target, chain: 31338, item };
            tx.put_delivery(
                delivery,
                &Delivery {
                    state: DeliveryState::Sent,
                    attempts: 1,
                    next_attempt_at: None,
                    tx_hashes: vec![hash(0xaa)],
                    signer: Some(Address::repeat_byte(0x51)),
                    nonce: Some(0),
                    receipt: Some(Receipt {
                        tx_hash: hash(0xaa),
                        block: 77,
                        block_hash: hash(0xab),
                        success: true,
                        gas_used: 50_000,
                        effective_gas_price: 1_500_000_000,
                    }),
                    reason: None,
                    retryable: true,
                    created_at: 1_700_000_040,
                    updated_at: 1_700_000_100,
                },
            )?;
            tx.put_intent(
                IntentKey { chain: 31338, signer: Address::repeat_byte(0x51), nonce: 0 },
                &TxIntent {
                    state: IntentState::Mined,
                    raw: Bytes::from_static(&[0x02, 0xf8]),
                    hash: hash(0xaa),
                    to: Address::repeat_byte(0x70),
                    gas_limit: 60_000,
                    max_fee_per_gas: 2_000_000_000,
                    max_priority_fee_per_gas: Some(1_000_000_000),
                    created_at: 1_700_000_050,
                    sent_at: Some(1_700_000_051),
                    replaced: vec![hash(0xa9)],
                    deliveries: vec![delivery],
                    mined: Some(hash(0xaa)),
                    cancel: None,
                },
            )?;
            tx.put_reorg(
                ReorgKey { chain: 31337, seq: 0 },
                &Reorg {
                    source: evm,
                    from_block: 997,
                    depth: 2,
                    removed_events: 3,
                    removed_contracts: 1,
                    old_hash: hash(0xd1),
                    new_hash: hash(0xd2),
                    detected_at: 1_700_000_010,
                },
            )?;
            tx.put_prover_state(
                ferry::store::keys::ProverKey { target, chain: 31338 },
                &ferry::store::records::ProverState {
                    prover: Address::repeat_byte(0x72),
                    last_batch: 41,
                    validators_root: hash(0x43),
                    paused: false,
                    max_batch_age: 100,
                    read_at: 1_700_000_090,
                },
            )?;
            // A sink (webhook) took the event: its delivery has no chain, and an ack.
            let hook = tx.target_id("hook")?;
            let handed = DeliveryKey { target: hook, chain: SINK_CHAIN, item };
            tx.put_delivery(
                handed,
                &Delivery {
                    state: DeliveryState::Confirmed,
                    attempts: 1,
                    created_at: 1_700_000_040,
                    updated_at: 1_700_000_041,
                    ..Delivery::pending(1_700_000_040)
                },
            )?;
            tx.put_sink_ack(handed, &SinkAck { ack: "HTTP 200".into(), at: 1_700_000_041 })
        })
        .expect("populate the fixture");
}

#[test]
fn the_current_fixture_exists_and_every_table_has_rows() {
    let fixture = current_fixture();
    if std::env::var_os("FERRY_REGEN_FIXTURES").is_some() {
        let _ = std::fs::remove_file(&fixture);
        let store = Store::create_or_open(&fixture, Some("fixture")).expect("create the fixture");
        populate(&store);
    }
    let dir = fixture_copy();
    let out = run(dir.path(), &["inspect-store", "summary", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(summary["meta"]["schema_version"], SCHEMA_VERSION);
    for t in summary["tables"].as_array().expect("tables") {
        assert!(t["rows"].as_u64().unwrap_or(0) > 0, "the fixture has no rows in {}", t["table"]);
    }
    let cursors: Vec<&str> =
        summary["cursors"].as_array().expect("cursors").iter().filter_map(|c| c["source"].as_str()).collect();
    assert_eq!(cursors, ["escrows", "seda"]);

    let table = run(dir.path(), &["inspect-store"]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table));
    let shown = String::from_utf8_lossy(&table.stdout);
    for word in ["schema", &format!("v{SCHEMA_VERSION}"), "events", "escrows", "1001"] {
        assert!(shown.contains(word), "summary table lacks `{word}`:\n{shown}");
    }
}

#[test]
fn every_older_fixture_migrates_to_the_current_schema() {
    let mut migrated = 0;
    for entry in std::fs::read_dir(fixture_dir()).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let Some(version) = name.strip_prefix("store-v").and_then(|v| v.strip_suffix(".redb")) else {
            continue;
        };
        let version: u32 = version.parse().expect("fixture version");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(&path, dir.path().join("ferry.redb")).expect("copy");
        let out = run(dir.path(), &["migrate", "--yes", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));
        let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(report["from"], version);
        assert_eq!(report["to"], SCHEMA_VERSION);
        let summary = run(dir.path(), &["inspect-store", "--json"]);
        assert_eq!(summary.status.code(), Some(0), "{name} after migrate: {}", text(&summary));
        migrated += 1;
    }
    assert!(migrated >= 1, "no store fixtures found");
}

/// The v1 fixture (written by the ferry of schema 1) upgraded to v2: every record rewritten into
/// its new layout, the per-chain hash window dropped, a backup beside it.
#[test]
fn the_v1_fixture_migrates_with_its_records_rewritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(fixture_dir().join("store-v1.redb"), dir.path().join("ferry.redb")).expect("copy");
    let out = run(dir.path(), &["migrate", "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(dir.path().join("ferry.redb.v1.bak").exists());
    let rows = |table: &str| -> Vec<Value> {
        let out = run(dir.path(), &["export", "--table", table]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        json_lines(&out.stdout)
    };
    let cursors = rows("cursors");
    assert_eq!(cursors.len(), 2);
    for c in &cursors {
        assert_eq!(c["value"]["first"], c["value"]["next"], "a v1 cursor's range starts at its next block");
    }
    let events = rows("events");
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["value"]["decode_error"].is_null() && e["value"]["name"].is_string()));
    let reorgs = rows("reorgs");
    assert_eq!(reorgs[0]["value"]["removed_events"], 3);
    assert_eq!(reorgs[0]["value"]["removed_contracts"], 0);
    assert!(rows("block_hashes").is_empty(), "the v1 hash window is dropped");
    // Everything else is as it was.
    assert_eq!(rows("contracts").len(), 2);
    assert_eq!(rows("deliveries").len(), 1);
}

/// The v2 fixture upgraded to v3: its delivery and intent rewritten, nothing else touched.
#[test]
fn the_v2_fixture_migrates_its_deliveries_and_intents() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(fixture_dir().join("store-v2.redb"), dir.path().join("ferry.redb")).expect("copy");
    let before = |table: &str| run(dir.path(), &["export", "--table", table]);
    assert_eq!(before("events").status.code(), Some(3), "a v2 file needs migrating first");
    let out = run(dir.path(), &["migrate", "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(dir.path().join("ferry.redb.v2.bak").exists());
    let rows = |table: &str| -> Vec<Value> {
        let out = run(dir.path(), &["export", "--table", table]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        json_lines(&out.stdout)
    };
    let deliveries = rows("deliveries");
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0]["value"];
    assert_eq!(d["state"], "sent");
    assert_eq!(d["created_at"], d["updated_at"], "an older delivery was created when last updated");
    assert!(d["signer"].is_null() && d["receipt"].is_null());
    let intents = rows("tx_intents");
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0]["value"]["state"], "sent", "an intent with a send time counts as sent");
    assert_eq!(intents[0]["value"]["deliveries"].as_array().map(Vec::len), Some(1));
    assert_eq!(rows("events").len(), 2);
    assert_eq!(rows("cursors").len(), 2);
}

#[test]
fn export_streams_meta_and_every_table_with_rows() {
    let dir = fixture_copy();
    let summary: Value =
        serde_json::from_slice(&run(dir.path(), &["inspect-store", "--json"]).stdout).expect("summary");
    let out = run(dir.path(), &["export"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut per_table = std::collections::BTreeMap::<String, u64>::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let row: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(row["key"] != Value::Null && row["value"] != Value::Null, "{line}");
        *per_table.entry(row["table"].as_str().expect("table").to_string()).or_default() += 1;
    }
    for t in summary["tables"].as_array().expect("tables") {
        let name = t["table"].as_str().expect("name");
        assert_eq!(per_table.get(name).copied().unwrap_or(0), t["rows"].as_u64().expect("rows"), "{name}");
    }
    // Decoded, not raw bytes: an event key has its parts, a delivery its state.
    let text_out = String::from_utf8_lossy(&out.stdout);
    assert!(text_out.contains(r#""key":{"block":999,"chain":31337,"log_index":1}"#), "{text_out}");
    assert!(text_out.contains(r#""state":"sent""#));

    let file = dir.path().join("meta.jsonl");
    let out = run(dir.path(), &["export", "--table", "meta", "--out", "meta.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&file).expect("export file");
    assert!(written.lines().all(|l| l.contains(r#""table":"meta""#)) && written.contains("schema_version"));
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").all(|e| !e
            .expect("e")
            .file_name()
            .to_string_lossy()
            .contains(".tmp-"))
    );
    assert_eq!(run(dir.path(), &["export", "--table", "nope"]).status.code(), Some(2));
}

#[test]
fn migrate_on_a_current_store_changes_nothing() {
    let dir = fixture_copy();
    let path = dir.path().join("ferry.redb");
    let before = std::fs::read(&path).expect("read");
    for args in [&["migrate", "--dry-run"][..], &["migrate"][..], &["migrate", "--yes"][..]] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(said.contains(&format!("already at schema v{SCHEMA_VERSION}")), "{args:?}: {said}");
        assert!(std::fs::read(&path).expect("read") == before, "{args:?} changed the file");
    }
}

/// Sets `meta.schema_version` of a store with redb directly, as a newer (or older) ferry would.
fn fake_schema_version(path: &Path, version: u32) {
    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(redb::ConcurrencyMode::SingleWriter);
    let db = builder.open(path).expect("open");
    let txn = db.begin_write().expect("write");
    txn.open_table(tables::META)
        .expect("meta")
        .insert("schema_version", version.to_string().as_str())
        .expect("insert");
    txn.commit().expect("commit");
}

/// Runs every store command on `path`'s directory and checks each exits 3 saying `expect`, with
/// the file byte-identical afterwards.
fn refused_untouched(dir: &Path, file: &str, expect: &str) {
    let path = dir.join(file);
    let before = std::fs::read(&path).ok();
    for args in [
        &["inspect-store", "--store", file][..],
        &["inspect-store", "summary", "--json", "--store", file][..],
        &["export", "--store", file][..],
        &["migrate", "--dry-run", "--store", file][..],
        &["migrate", "--yes", "--store", file][..],
    ] {
        let out = run(dir, args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(3), "{file} {args:?}: {said}");
        assert!(said.contains(expect), "{file} {args:?} does not say `{expect}`: {said}");
        assert!(!said.contains("panicked"), "{said}");
        assert!(std::fs::read(&path).ok() == before, "{file}: {args:?} modified the file");
    }
}

#[test]
fn a_store_from_a_newer_ferry_is_refused_untouched() {
    let dir = fixture_copy();
    fake_schema_version(&dir.path().join("ferry.redb"), 99);
    refused_untouched(dir.path(), "ferry.redb", "written by a newer ferry (schema v99");
}

#[test]
fn files_that_are_not_ferry_stores_are_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("empty.redb"), b"").expect("write");
    refused_untouched(dir.path(), "empty.redb", "not a ferry store (the file is empty)");
    let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(dir.path().join("noise.redb"), noise).expect("write");
    refused_untouched(dir.path(), "noise.redb", "not a redb database");
    std::fs::write(dir.path().join("config.yaml"), b"chains: {}\n").expect("write");
    refused_untouched(dir.path(), "config.yaml", "not a ferry store");

    // A redb file that some other program wrote.
    let other = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&other).expect("create");
        let txn = db.begin_write().expect("write");
        let def: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("numbers");
        txn.open_table(def).expect("table").insert(1, 2).expect("insert");
        txn.commit().expect("commit");
    }
    refused_untouched(dir.path(), "other.redb", "without ferry's meta table");
}

#[test]
fn a_damaged_store_is_refused_untouched() {
    let dir = fixture_copy();
    let path = dir.path().join("ferry.redb");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(dir.path().join("truncated.redb"), &bytes[..bytes.len() / 3]).expect("write");
    refused_untouched(dir.path(), "truncated.redb", "truncated.redb");
    let mut flipped = bytes.clone();
    for b in flipped.iter_mut().skip(4096).step_by(7) {
        *b ^= 0x5a;
    }
    std::fs::write(dir.path().join("flipped.redb"), &flipped).expect("write");
    refused_untouched(dir.path(), "flipped.redb", "flipped.redb");
}

#[test]
fn a_missing_store_says_where_and_what_creates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["inspect-store"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains("ferry.redb does not exist"), "{}", text(&out));
    assert!(!dir.path().join("ferry.redb").exists(), "a read-only command created the store");
}

/// Not a test of its own: when `FERRY_TEST_HOLD_STORE` is set, this is the second process of
/// [`inspect_store_works_while_another_process_writes`]. It opens the store for writing, says
/// "ready", writes a row, and holds the store until its stdin closes.
#[test]
fn holder_process() {
    let Some(path) = std::env::var_os("FERRY_TEST_HOLD_STORE") else { return };
    let store = Store::open(Path::new(&path), Some("holder")).expect("the holder opens the store");
    store
        .write(|tx| {
            let id = tx.source_id("held")?;
            tx.put_cursor(
                CursorKey { source: id },
                &Cursor { first: 7, next: 7, last_hash: None, updated_at: 0, stopped: None },
            )
        })
        .expect("the holder writes");
    println!("ready {}", std::process::id());
    std::io::stdout().flush().expect("flush");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn inspect_store_works_while_another_process_writes() {
    let dir = fixture_copy();
    let path = dir.path().join("ferry.redb");
    // Killed on drop: a failing assertion below leaves no holder behind.
    let mut holder = KillOnDrop::spawn(
        Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "store::holder_process", "--nocapture", "--test-threads", "1"])
            .env("FERRY_TEST_HOLD_STORE", &path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let holder_pid = holder.id();
    let stdout = holder.stdout.take().expect("holder stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints `test store::holder_process ... ` before the holder's own output.
            if line.contains("ready ") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("the holder did not get ready within 30s");
    let out = run(dir.path(), &["inspect-store", "summary", "--json"]);
    assert_eq!(out.status.code(), Some(0), "inspect-store next to a writer: {}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // The reader sees the writer's commit.
    let sources: Vec<&str> =
        summary["cursors"].as_array().expect("cursors").iter().filter_map(|c| c["source"].as_str()).collect();
    assert!(sources.contains(&"held"), "the writer's commit is not visible: {summary}");
    assert_eq!(summary["meta"]["holder"]["pid"], holder_pid);
    let out = run(dir.path(), &["export", "--table", "cursors"]);
    assert_eq!(out.status.code(), Some(0), "export next to a writer: {}", text(&out));

    // Checking a current store for migration only reads, so it works next to the writer too.
    let out = run(dir.path(), &["migrate", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A second writer is refused, naming the holder and what still works.
    let locked = Store::open(&path, None);
    match locked {
        Err(e @ ferry::store::StoreError::Locked { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&format!("pid {holder_pid}")), "{message}");
            assert!(message.contains("inspect-store") && message.contains("export"), "{message}");
        }
        Err(other) => panic!("expected Locked, got: {other}"),
        Ok(_) => panic!("a second writer opened a held store"),
    }
    drop(holder.stdin.take()); // lets the holder finish
    holder.wait_within_blocking(Duration::from_secs(10));
}
