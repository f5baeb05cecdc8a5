//! The read-only SEDA views through the real binary: `inspect-store batches|provers`, the
//! summary's Prover lines and `export batches`, over a store written with the library (two seda
//! sources, an anchor, deliveries of the batches, three Prover states), with and without a config.

use std::path::Path;

use alloy::primitives::{Address, B256, Bytes};
use ferry::seda::{BatchHeader, Signature, SignedBatch, Validator};
use ferry::store::Store;
use ferry::store::keys::{BatchKey, DeliveryKey, ItemKey, ProverKey};
use ferry::store::records::{Batch, ProverState};
use ferry::store::seda::BatchesWrite;
use serde_json::Value;

use crate::support::command::run;
use crate::support::devnet::DEV_KEYS;
use crate::support::output::{json_lines, stdout, text};

const BASE: u64 = 8453;
const ARBITRUM: u64 = 42161;
const BSC: u64 = 56;
/// `seda`: the anchor 100, then 101..=105. `seda-testnet`: 7..=9, no anchor.
const SEDA: std::ops::RangeInclusive<u64> = 100..=105;
const TESTNET: std::ops::RangeInclusive<u64> = 7..=9;
const FETCHED_AT: u64 = 1_700_000_000;

/// A batch whose every field says its number, so that a row read back names its batch.
fn batch(number: u64, anchor: bool) -> Batch {
    let n = number as u8;
    let validators = (0..3u8)
        .map(|i| Validator {
            operator: format!("sedavaloper1op{number}x{i}"),
            eth_address: Address::repeat_byte(0x10 + i),
            power: 30_000_000 + u32::from(i),
        })
        .collect();
    // The anchor's own signatures are not kept: it is stored for its validators only.
    let signatures = if anchor {
        Vec::new()
    } else {
        (0..2u8)
            .map(|i| {
                let mut bytes = [n; 65];
                bytes[0] = i;
                bytes[64] = 1;
                Signature { operator: format!("sedavaloper1op{}x{i}", number - 1), bytes }
            })
            .collect()
    };
    Batch {
        batch: SignedBatch {
            header: BatchHeader {
                number,
                block_height: number * 10,
                validators_root: B256::repeat_byte(n),
                results_root: B256::repeat_byte(n.wrapping_add(0x80)),
                proving_metadata: Bytes::new(),
            },
            batch_id: B256::left_padding_from(&[0xba, n]),
            validators,
            signatures,
            result_ids: (0..number % 3).map(|i| B256::repeat_byte(0xe0 + i as u8)).collect(),
        },
        anchor,
        fetched_at: FETCHED_AT + number,
    }
}

struct Ids {
    seda: u32,
    testnet: u32,
}

/// The store: batches of two seda sources (`seda` delivered to `provers` on base and arbitrum),
/// an evm source with no batches, and what three Prover destinations said.
fn write_store(path: &Path) -> Ids {
    let store = Store::create_or_open(path, None).expect("store");
    let ids = store
        .write(|tx| {
            let seda = tx.source_id("seda")?;
            let testnet = tx.source_id("seda-testnet")?;
            tx.source_id("escrows")?;
            let provers = tx.target_id("provers")?;
            let other = tx.target_id("testnet-provers")?;
            let deliveries = SEDA
                .skip(1)
                .flat_map(|h| {
                    [BASE, ARBITRUM].map(|chain| DeliveryKey {
                        target: provers,
                        chain,
                        item: ItemKey::Batch(BatchKey { source: seda, height: h }),
                    })
                })
                .collect();
            tx.apply_batches(&BatchesWrite {
                source: seda,
                batches: SEDA.map(|h| batch(h, h == *SEDA.start())).collect(),
                deliveries,
            })?;
            tx.apply_batches(&BatchesWrite {
                source: testnet,
                batches: TESTNET.map(|h| batch(h, false)).collect(),
                deliveries: Vec::new(),
            })?;
            let state = |last_batch, paused| ProverState {
                prover: Address::repeat_byte(0xaa),
                last_batch,
                validators_root: B256::repeat_byte(last_batch as u8),
                paused,
                max_batch_age: 100,
                read_at: FETCHED_AT,
            };
            tx.put_prover_state(ProverKey { target: provers, chain: BASE }, &state(103, false))?;
            tx.put_prover_state(ProverKey { target: provers, chain: ARBITRUM }, &state(105, true))?;
            tx.put_prover_state(ProverKey { target: other, chain: BSC }, &state(1, false))?;
            Ok(Ids { seda, testnet })
        })
        .expect("write");
    drop(store);
    ids
}

/// Names for the chains, and routes: `seda → provers`, `seda-testnet → testnet-provers`. The
/// signer's key comes from the environment the test command sets.
const CONFIG: &str = r#"
store: seda.redb
chains:
  base: { chain_id: 8453, rpc: [http://127.0.0.1:1], signer: { key_env: FERRY_TEST_SIGNER }, gas: { max_fee_gwei: 5 } }
  arbitrum: { chain_id: 42161, rpc: [http://127.0.0.1:1], signer: { key_env: FERRY_TEST_SIGNER }, gas: { max_fee_gwei: 5 } }
  bsc: { chain_id: 56, rpc: [http://127.0.0.1:1], signer: { key_env: FERRY_TEST_SIGNER }, gas: { max_fee_gwei: 5 } }
sources:
  seda: { kind: seda, url: http://127.0.0.1:1 }
  seda-testnet: { kind: seda, url: http://127.0.0.1:2 }
targets:
  provers:
    kind: seda-prover
    chains:
      base: { prover: "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa" }
      arbitrum: { prover: "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa" }
  testnet-provers:
    kind: seda-prover
    chains:
      bsc: { prover: "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa" }
routes:
  - { source: seda, targets: [provers] }
  - { source: seda-testnet, targets: [testnet-provers] }
"#;

/// A temp dir holding the store as `ferry.redb` (found without a config) and its ids.
fn setup() -> (tempfile::TempDir, Ids) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ids = write_store(&dir.path().join("ferry.redb"));
    (dir, ids)
}

/// `ferry ARGS…`, exit 0, no secret anywhere in what it printed; its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert_eq!(out.status.code(), Some(0), "ferry {args:?}: {}", text(&out));
    let all = text(&out);
    let key = DEV_KEYS[1].trim_start_matches("0x");
    assert!(!all.contains(key), "ferry {args:?} printed the signer's key");
    stdout(&out)
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = ok(dir, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ferry {args:?}: not JSON ({e}): {out}"))
}

/// `ferry ARGS…` must fail as a bad command line (exit 2) saying `says`.
fn usage_error(dir: &Path, args: &[&str], says: &str) {
    let out = run(dir, args);
    assert_eq!(out.status.code(), Some(2), "ferry {args:?}: {}", text(&out));
    assert!(text(&out).contains(says), "ferry {args:?} should say `{says}`: {}", text(&out));
}

fn list<'a>(report: &'a Value, key: &str) -> &'a Vec<Value> {
    report[key].as_array().unwrap_or_else(|| panic!("no `{key}` list in {report}"))
}

fn str_of<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or_else(|| panic!("no `{key}` text in {row}"))
}

fn numbers(rows: &[Value]) -> Vec<u64> {
    rows.iter().map(|r| r["number"].as_u64().expect("number")).collect()
}

/// The cells of the table row whose first cells are `starts`, trimmed.
fn table_row(table: &str, starts: &[&str]) -> Vec<String> {
    table
        .lines()
        .map(|l| {
            l.split(['│', '┆']).map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect::<Vec<_>>()
        })
        .find(|cells| cells.len() >= starts.len() && cells.iter().zip(starts).all(|(c, s)| c == s))
        .unwrap_or_else(|| panic!("no row {starts:?} in:\n{table}"))
}

/// `0x1234…abcd`, as the tables shorten hashes.
fn short(hex: &str) -> String {
    format!("{}…{}", &hex[..6], &hex[hex.len() - 4..])
}

#[test]
fn batches_view_lists_every_stored_batch_with_its_fields() {
    let (dir, ids) = setup();
    let dir = dir.path();
    let all = json(dir, &["inspect-store", "batches", "--json", "--limit", "100"]);
    let rows = list(&all, "batches");
    assert_eq!(all["matched"], 9, "{all}");
    // Merged across sources by number, oldest to newest.
    assert_eq!(numbers(rows), [7, 8, 9, 100, 101, 102, 103, 104, 105]);
    for row in rows {
        let number = row["number"].as_u64().expect("number");
        let (source, id) =
            if TESTNET.contains(&number) { ("seda-testnet", ids.testnet) } else { ("seda", ids.seda) };
        let want = batch(number, number == *SEDA.start());
        assert_eq!(row["source"], source, "{row}");
        assert_eq!(row["source_id"], id, "{row}");
        assert_eq!(row["item"], format!("batch:{id}:{number}"), "{row}");
        assert_eq!(row["block_height"], number * 10, "{row}");
        assert_eq!(row["batch_id"], want.batch.batch_id.to_string(), "{row}");
        assert_eq!(row["validators_root"], want.batch.header.validators_root.to_string(), "{row}");
        assert_eq!(row["results_root"], want.batch.header.results_root.to_string(), "{row}");
        assert_eq!(row["proving_metadata"], "0x", "{row}");
        assert_eq!(row["validator_count"], 3, "{row}");
        assert_eq!(row["signature_count"], want.batch.signatures.len(), "{row}");
        assert_eq!(row["result_count"], number % 3, "{row}");
        assert_eq!(row["anchor"], number == 100, "{row}");
        assert_eq!(row["fetched_at"], FETCHED_AT + number, "{row}");
    }
    assert!(
        all["batches"][3]["batch_id"].as_str().is_some_and(|id| id.len() == 66),
        "the full id in JSON: {all}"
    );

    // The limit keeps the newest, still shown oldest to newest; the count is every match.
    let cut = json(dir, &["inspect-store", "batches", "--json", "--limit", "3"]);
    assert_eq!(numbers(list(&cut, "batches")), [103, 104, 105]);
    assert_eq!(cut["matched"], 9);

    // Filters: a source, a number range, both.
    let seda = json(dir, &["inspect-store", "batches", "--json", "--source", "seda"]);
    assert_eq!(numbers(list(&seda, "batches")), [100, 101, 102, 103, 104, 105]);
    let range = json(dir, &["inspect-store", "batches", "--json", "--from", "8", "--to", "101"]);
    assert_eq!(numbers(list(&range, "batches")), [8, 9, 100, 101]);
    assert_eq!(range["matched"], 4);
    let both = json(dir, &["inspect-store", "batches", "--json", "--source", "seda-testnet", "--from", "9"]);
    assert_eq!(numbers(list(&both, "batches")), [9]);
    // A source the store knows that holds no batches (an evm one): no rows, not an error.
    let none = json(dir, &["inspect-store", "batches", "--json", "--source", "escrows"]);
    assert_eq!((list(&none, "batches").len(), &none["matched"]), (0, &Value::from(0)));
    usage_error(dir, &["inspect-store", "batches", "--source", "sdea"], "did you mean `seda`?");
    usage_error(dir, &["inspect-store", "batches", "--from", "9", "--to", "8"], "--from 9 is after --to 8");

    // The deliveries of a batch name it by the same item.
    let deliveries =
        json(dir, &["inspect-store", "deliveries", "--json", "--chain", "8453", "--limit", "100"]);
    let items: Vec<&str> =
        list(&deliveries, "deliveries").iter().map(|d| d["item"].as_str().expect("item")).collect();
    let delivered: Vec<String> = (101..=105).map(|h| format!("batch:{}:{h}", ids.seda)).collect();
    assert_eq!(items, delivered);

    // The table: short ids and roots, counts, the anchor, the footer.
    let table = ok(dir, &["inspect-store", "batches", "--source", "seda", "--limit", "2"]);
    let id = batch(105, false).batch.batch_id.to_string();
    let root = batch(105, false).batch.header.validators_root.to_string();
    let row = table_row(&table, &["seda", "105"]);
    assert_eq!(row[2..9], ["1050", &short(&id), "3", &short(&root), "2", "0", "no"], "{table}");
    assert!(row[9].ends_with(" ago"), "{table}");
    table_row(&table, &["seda", "104"]);
    assert!(table.contains("2 shown of 6 (the newest"), "{table}");
    assert!(!table.contains("┆ 103 "), "only the newest two:\n{table}");
    assert!(!table.contains("anchor: kept"), "no anchor shown, no note:\n{table}");
    let anchor = ok(dir, &["inspect-store", "batches", "--source", "seda", "--to", "100"]);
    let row = table_row(&anchor, &["seda", "100"]);
    assert_eq!(row[6..9], ["0", "1", "yes"], "the anchor: no signatures, marked:\n{anchor}");
    assert!(anchor.contains("anchor: kept for its validators"), "{anchor}");
    let nothing = ok(dir, &["inspect-store", "batches", "--from", "200"]);
    assert_eq!(nothing, "no batches match\n");
}

#[test]
fn provers_view_shows_each_destination_and_how_far_behind_it_is() {
    let (dir, _) = setup();
    let dir = dir.path();
    // Without a config: chains as ids, and `behind` counts from every source with batches.
    let bare = json(dir, &["inspect-store", "provers", "--json"]);
    let rows = list(&bare, "provers");
    let keys: Vec<(&str, &str, u64)> = rows
        .iter()
        .map(|r| (str_of(r, "target"), str_of(r, "chain"), r["chain_id"].as_u64().expect("chain id")))
        .collect();
    assert_eq!(
        keys,
        [("provers", "8453", BASE), ("provers", "42161", ARBITRUM), ("testnet-provers", "56", BSC)],
        "{bare}"
    );
    let prover = Address::repeat_byte(0xaa).to_checksum(None);
    for (row, last, paused, behind) in
        [(&rows[0], 103, false, 2), (&rows[1], 105, true, 0), (&rows[2], 1, false, 104)]
    {
        assert_eq!(row["prover"], prover, "{row}");
        assert_eq!(row["last_batch"], last, "{row}");
        assert_eq!(row["paused"], paused, "{row}");
        assert_eq!(row["max_batch_age"], 100, "{row}");
        assert_eq!(row["read_at"], FETCHED_AT, "{row}");
        assert_eq!(row["validators_root"], B256::repeat_byte(last as u8).to_string(), "{row}");
        assert_eq!(row["highest_stored_batch"], 105, "{row}");
        assert_eq!(row["behind"], behind, "{row}");
        assert_eq!(row["sources"], serde_json::json!(["seda", "seda-testnet"]), "{row}");
    }

    // With the config: chain names, and each target measured against the source routed to it.
    std::fs::write(dir.join("ferry.yaml"), CONFIG).expect("config");
    std::fs::rename(dir.join("ferry.redb"), dir.join("seda.redb")).expect("the config's store");
    let named = json(dir, &["inspect-store", "provers", "--json"]);
    let rows = list(&named, "provers");
    let chains: Vec<&str> = rows.iter().map(|r| str_of(r, "chain")).collect();
    assert_eq!(chains, ["base", "arbitrum", "bsc"], "{named}");
    assert_eq!(rows[0]["behind"], 2, "{named}");
    assert_eq!(rows[2]["sources"], serde_json::json!(["seda-testnet"]), "{named}");
    assert_eq!(rows[2]["highest_stored_batch"], 9, "{named}");
    assert_eq!(rows[2]["behind"], 8, "routed from seda-testnet, not seda: {named}");

    let base = json(dir, &["inspect-store", "provers", "--json", "--chain", "base"]);
    assert_eq!(list(&base, "provers").len(), 1);
    assert_eq!(base["provers"][0]["last_batch"], 103);
    let target = json(dir, &["inspect-store", "provers", "--json", "--target", "testnet-provers"]);
    assert_eq!(list(&target, "provers").len(), 1);
    assert_eq!(target["provers"][0]["chain"], "bsc");
    usage_error(dir, &["inspect-store", "provers", "--target", "prover"], "did you mean `provers`?");

    let table = ok(dir, &["inspect-store", "provers"]);
    let short_prover = short(&prover);
    let arbitrum = table_row(&table, &["provers", "arbitrum"]);
    assert_eq!(arbitrum[2..7], [&*short_prover, "105", "0", "yes", "100"], "paused at 105:\n{table}");
    let bsc = table_row(&table, &["testnet-provers", "bsc"]);
    assert_eq!(bsc[3..6], ["1", "8", "no"], "8 behind:\n{table}");
    assert!(table.contains("of the seda source routed to the target"), "{table}");
    let bare = ok(dir, &["--config", "none.yaml", "--store", "seda.redb", "inspect-store", "provers"]);
    assert_eq!(table_row(&bare, &["testnet-provers", "56"])[4], "104", "{bare}");
    assert!(bare.contains("behind: the highest stored batch of seda, seda-testnet minus"), "{bare}");

    // The summary carries the same rows, and a line each in its table.
    let summary = json(dir, &["inspect-store", "summary", "--json"]);
    assert_eq!(summary["provers"], named["provers"], "{summary}");
    let shown = ok(dir, &["inspect-store", "summary"]);
    assert!(shown.contains("prover target"), "{shown}");
    assert_eq!(table_row(&shown, &["provers", "arbitrum"])[2..], ["105", "0", "yes"], "{shown}");
    assert_eq!(table_row(&shown, &["testnet-provers", "bsc"])[2..], ["1", "8", "no"], "{shown}");
}

#[test]
fn a_store_without_seda_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::create_or_open(&dir.path().join("ferry.redb"), None).expect("store"));
    assert_eq!(ok(dir.path(), &["inspect-store", "batches"]), "no batches match\n");
    let provers = ok(dir.path(), &["inspect-store", "provers"]);
    assert!(provers.starts_with("no prover states yet"), "{provers}");
    let summary = json(dir.path(), &["inspect-store", "summary", "--json"]);
    assert_eq!(summary["provers"], serde_json::json!([]), "{summary}");
    usage_error(
        dir.path(),
        &["inspect-store", "batches", "--source", "seda"],
        "the store holds no batches yet",
    );
}

#[test]
fn export_batches_writes_every_batch_whole() {
    let (dir, ids) = setup();
    let dir = dir.path();
    let lines = json_lines(ok(dir, &["export", "batches"]).as_bytes());
    assert_eq!(numbers(&lines), [7, 8, 9, 100, 101, 102, 103, 104, 105]);
    for line in &lines {
        let number = line["number"].as_u64().expect("number");
        let want = batch(number, number == 100).batch;
        let id = if TESTNET.contains(&number) { ids.testnet } else { ids.seda };
        assert_eq!(line["item"], format!("batch:{id}:{number}"), "{line}");
        assert_eq!(line["batch_id"], want.batch_id.to_string(), "{line}");
        assert_eq!(line["anchor"], number == 100, "{line}");
        let validators = list(line, "validators");
        assert_eq!(validators.len(), 3, "{line}");
        for (got, v) in validators.iter().zip(&want.validators) {
            assert_eq!(got["operator"], v.operator.as_str());
            assert_eq!(got["eth_address"], v.eth_address.to_checksum(None));
            assert_eq!(got["power"], v.power);
        }
        let signatures = list(line, "signatures");
        assert_eq!(signatures.len(), want.signatures.len(), "{line}");
        for (got, s) in signatures.iter().zip(&want.signatures) {
            assert_eq!(got["operator"], s.operator.as_str());
            assert_eq!(got["signature"], Bytes::copy_from_slice(&s.bytes).to_string(), "0x and 130 hex");
        }
        let results: Vec<String> = want.result_ids.iter().map(|r| r.to_string()).collect();
        assert_eq!(line["result_ids"], serde_json::json!(results), "{line}");
    }
    let seda = json_lines(ok(dir, &["export", "batches", "--source", "seda", "--limit", "2"]).as_bytes());
    assert_eq!(numbers(&seda), [100, 101]);

    // CSV: a header, one row per batch, lists `;`-joined.
    let out = dir.join("batches.csv");
    ok(dir, &["export", "batches", "--format", "csv", "--out", out.to_str().expect("path")]);
    let mut reader = csv::Reader::from_path(&out).expect("csv");
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    for column in
        ["source", "number", "block_height", "batch_id", "validators", "signatures", "result_ids", "anchor"]
    {
        assert!(header.iter().any(|h| h == column), "no `{column}` column: {header:?}");
    }
    let col = |name: &str| header.iter().position(|h| h == name).expect("column");
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a CSV row")).collect();
    assert_eq!(records.len(), 9);
    for record in &records {
        let number: u64 = record[col("number")].parse().expect("number");
        let want = batch(number, number == 100).batch;
        assert_eq!(&record[col("batch_id")], want.batch_id.to_string());
        assert_eq!(&record[col("anchor")], (number == 100).to_string());
        let validators: Vec<&str> = record[col("validators")].split(';').collect();
        let v = &want.validators[2];
        assert_eq!(validators.len(), 3);
        assert_eq!(validators[2], format!("{}:{}:{}", v.operator, v.eth_address.to_checksum(None), v.power));
        let signatures = &record[col("signatures")];
        assert_eq!(
            signatures.split(';').filter(|s| !s.is_empty()).count(),
            want.signatures.len(),
            "{number}"
        );
        if let Some(s) = want.signatures.first() {
            assert!(signatures.starts_with(&format!("{}:{}", s.operator, Bytes::copy_from_slice(&s.bytes))));
        }
        assert_eq!(record[col("result_ids")].split(';').filter(|s| !s.is_empty()).count() as u64, number % 3);
    }

    // Filters that do not apply to batches are refused, not ignored.
    usage_error(dir, &["export", "batches", "--state", "failed"], "--state filters");
    usage_error(dir, &["export", "batches", "--chain", "1"], "--chain filters");
    usage_error(dir, &["export", "batches", "--source", "nope"], "no such seda source");
}
