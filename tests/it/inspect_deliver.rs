//! The read-only views of delivery through the real binary: `inspect-store deliveries|txs` and
//! `export deliveries|txs` over a store that a real `ferry push` filled, against the anvils it
//! pushed to, and next to a `watch` that holds the store for writing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::sol_types::{SolCall, SolError};
use ferry::store::keys::ItemKey;
use ferry::store::query_deliver::DeliveryId;
use serde_json::Value;

use crate::deliver::Net;
use crate::support::command::{ferry_command, run};
use crate::support::devnet::{DEV_ADDRESSES, IBatchReceiver};
use crate::support::hex::hex_u64;
use crate::support::output::{json_lines, text};
use crate::support::process::KillOnDrop;

const ITEMS: u64 = 5;

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = run(dir, args);
    assert_eq!(out.status.code(), Some(0), "ferry {args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ferry {args:?}: not JSON ({e}): {}", text(&out)))
}

fn rows<'a>(report: &'a Value, key: &str) -> &'a Vec<Value> {
    report[key].as_array().unwrap_or_else(|| panic!("no `{key}` list in {report}"))
}

fn str_of<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or_else(|| panic!("no `{key}` text in {row}"))
}

/// Two destinations: `d0` is live and already holds height 0 (posting it again reverts with
/// `BatchAlreadyExists`, which this config does not call "already done": a permanent failure);
/// `d1` is a dead URL, so its deliveries stay pending. One push gives confirmed, failed and
/// pending rows, real transactions and real receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_and_txs_read_back_what_push_did() {
    let net = Net::start(2).await;
    let (d0, receiver) = &net.dests[0];
    d0.send(*receiver, IBatchReceiver::postBatchCall { height: 0, root: [1u8; 32].into() }.abi_encode())
        .await;
    net.emit(0, ITEMS).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    net.write_config(dir, "function postBatch(uint64 height, bytes32 root)", "", Some(1));
    let out = run(dir, &["push", "--json", "--timeout", "8s"]);
    assert_eq!(out.status.code(), Some(4), "work is left on d1: {}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("push report");
    let pushed: BTreeMap<String, Value> =
        rows(&report, "chains").iter().map(|c| (str_of(c, "chain").to_string(), c.clone())).collect();
    assert_eq!(pushed["d0"]["confirmed"], ITEMS - 1, "{report}");
    assert_eq!(pushed["d0"]["failed"], 1, "{report}");

    // Every delivery, with ids that read back into their parts.
    let all = json(dir, &["inspect-store", "deliveries", "--json", "--limit", "1000"]);
    let deliveries = rows(&all, "deliveries");
    assert_eq!(deliveries.len() as u64, 2 * ITEMS, "{all}");
    assert_eq!(all["matched"], 2 * ITEMS);
    for d in deliveries {
        let id: DeliveryId = str_of(d, "id").parse().expect("the id parses");
        assert_eq!(id.target, "receiver");
        assert_eq!(id.target, str_of(d, "target"));
        assert_eq!(id.chain.as_deref(), Some(str_of(d, "chain")));
        assert_eq!(id.item, str_of(d, "item").parse::<ItemKey>().expect("item"));
        assert!(matches!(id.item, ItemKey::Event(e) if e.chain == 31337), "{d}");
        let chain_id = if id.chain.as_deref() == Some("d0") { 41000 } else { 41001 };
        assert_eq!(d["chain_id"], chain_id, "{d}");
    }
    // The counts of the live chain are the push report's; the dead chain's worker never
    // started, so the report counts nothing there and the store says what waits.
    let live = json(dir, &["inspect-store", "deliveries", "--json", "--chain", "d0"]);
    for state in ["pending", "sending", "sent", "confirmed", "skipped", "failed"] {
        assert_eq!(live["counts"][state], pushed["d0"][state], "{state}: {live} vs {report}");
    }
    let dead = json(dir, &["inspect-store", "deliveries", "--json", "--chain", "d1"]);
    assert_eq!(dead["counts"]["pending"], ITEMS, "{dead}");
    assert_eq!(dead["matched"], ITEMS, "{dead}");

    // Confirmed deliveries carry a receipt of a transaction that is on d0, in that block.
    let confirmed = json(dir, &["inspect-store", "deliveries", "--json", "--state", "confirmed"]);
    let confirmed = rows(&confirmed, "deliveries");
    assert_eq!(confirmed.len() as u64, ITEMS - 1);
    for d in confirmed {
        assert_eq!((str_of(d, "state"), str_of(d, "chain")), ("confirmed", "d0"), "{d}");
        let hash = str_of(d, "tx_hash");
        assert_eq!(d["tx_hashes"].as_array().and_then(|h| h.last()), Some(&d["tx_hash"]), "{d}");
        assert_eq!(str_of(&d["receipt"], "tx_hash"), hash, "{d}");
        assert_eq!(d["signer"], DEV_ADDRESSES[1], "{d}");
        let block = d["receipt"]["block"].as_u64().expect("receipt block");
        let on_chain = d0.receipt(hash).await;
        assert_eq!(on_chain["status"], "0x1", "{on_chain}");
        let mined_in = hex_u64(&on_chain["blockNumber"]);
        assert_eq!(mined_in, block, "{d}");
    }
    // The failure says why and that it is for good; the dead chain's rows wait.
    let failed =
        json(dir, &["inspect-store", "deliveries", "--json", "--state", "failed", "--chain", "41000"]);
    let failed = rows(&failed, "deliveries");
    assert_eq!(failed.len(), 1);
    // The config declares no errors, so the reason names the revert by its selector.
    let selector = alloy::primitives::hex::encode(IBatchReceiver::BatchAlreadyExists::SELECTOR);
    assert!(str_of(&failed[0], "reason").contains(&selector), "{}", failed[0]);
    assert_eq!(failed[0]["retryable"], false);
    let none = json(dir, &["inspect-store", "deliveries", "--json", "--state", "confirmed", "--chain", "d1"]);
    assert_eq!(rows(&none, "deliveries").len(), 0);

    // A limit cuts the list, never the counts.
    let cut = json(dir, &["inspect-store", "deliveries", "--json", "--limit", "2"]);
    assert_eq!(rows(&cut, "deliveries").len(), 2);
    assert_eq!(cut["matched"], 2 * ITEMS);
    assert_eq!(rows(&cut, "deliveries")[..], deliveries[..2]);

    // The matrix: one row per item, one cell per chain.
    let matrix = json(dir, &["inspect-store", "deliveries", "--matrix", "--json", "--target", "receiver"]);
    let matrix = rows(&matrix, "rows");
    assert_eq!(matrix.len() as u64, ITEMS);
    let mut d0_states = BTreeMap::<String, u64>::new();
    for row in matrix {
        assert_eq!(row["target"], "receiver");
        let chains = row["chains"].as_object().expect("chains");
        assert_eq!(chains.keys().collect::<Vec<_>>(), ["d0", "d1"], "{row}");
        *d0_states.entry(chains["d0"].as_str().expect("state").into()).or_default() += 1;
        let dead = &chains["d1"];
        assert_eq!(dead, &pushed_state_of(deliveries, row, "d1"), "{row}");
    }
    assert_eq!(d0_states, BTreeMap::from([("confirmed".into(), ITEMS - 1), ("failed".into(), 1)]));
    // Height 0 was emitted first, so its item is the first row.
    assert_eq!(matrix[0]["chains"]["d0"], "failed");

    // Transactions: per chain and signer, nonces 0..n with no gap, each carrying a confirmed
    // delivery and mined on d0.
    let txs = json(dir, &["inspect-store", "txs", "--json"]);
    let txs = rows(&txs, "txs");
    assert_eq!(txs.len() as u64, pushed["d0"]["transactions"].as_u64().expect("transactions"));
    let mut nonces = BTreeMap::<(String, String), Vec<u64>>::new();
    let confirmed_ids: BTreeSet<&str> = confirmed.iter().map(|d| str_of(d, "id")).collect();
    for t in txs {
        nonces
            .entry((str_of(t, "chain").into(), str_of(t, "signer").into()))
            .or_default()
            .push(t["nonce"].as_u64().expect("nonce"));
        for id in t["deliveries"].as_array().expect("deliveries") {
            assert!(confirmed_ids.contains(id.as_str().expect("id")), "{t}");
        }
        let mined = str_of(t, "mined_tx_hash");
        assert_eq!(d0.receipt(mined).await["status"], "0x1");
        assert!(str_of(t, "max_fee_gwei").parse::<f64>().is_ok(), "{t}");
    }
    assert_eq!(nonces.keys().collect::<Vec<_>>(), [&("d0".to_string(), DEV_ADDRESSES[1].to_string())]);
    for list in nonces.values() {
        assert_eq!(*list, (0..list.len() as u64).collect::<Vec<_>>(), "nonces in order, no gap");
    }
    let open = json(dir, &["inspect-store", "txs", "--json", "--open"]);
    assert_eq!(rows(&open, "txs").len(), 0, "everything pushed was mined: {open}");
    // A limit keeps the newest nonces, still last.
    let newest = json(dir, &["inspect-store", "txs", "--json", "--limit", "2"]);
    let newest: Vec<u64> = rows(&newest, "txs").iter().map(|t| t["nonce"].as_u64().expect("nonce")).collect();
    let n = txs.len() as u64;
    assert_eq!(newest, [n - 2, n - 1]);

    // Exports stream the same rows: CSV with lists joined by `;`, and JSON lines.
    let out = run(dir, &["export", "deliveries", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut csv = csv::Reader::from_reader(out.stdout.as_slice());
    let header = csv.headers().expect("header").clone();
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let records: Vec<csv::StringRecord> = csv.records().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), deliveries.len());
    for (record, row) in records.iter().zip(deliveries) {
        assert_eq!(&record[column("id")], str_of(row, "id"));
        assert_eq!(&record[column("state")], str_of(row, "state"));
        let hashes: Vec<&str> =
            row["tx_hashes"].as_array().expect("hashes").iter().filter_map(Value::as_str).collect();
        assert_eq!(&record[column("tx_hashes")], hashes.join(";"));
    }
    let out = run(dir, &["export", "deliveries", "--state", "pending", "--chain", "d1", "--limit", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["state"] == "pending" && l["chain"] == "d1"), "{lines:?}");
    let out = run(dir, &["export", "txs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = json_lines(&out.stdout);
    assert_eq!(&lines[..], &txs[..], "export txs writes the rows inspect-store shows");
    let out = run(dir, &["export", "txs", "--format", "csv", "--out", "txs.csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(dir.join("txs.csv")).expect("txs.csv");
    assert_eq!(written.lines().count(), txs.len() + 1, "{written}");

    // People read tables, and copy ids out of them.
    let out = run(dir, &["inspect-store", "deliveries"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for d in deliveries.iter().take(3) {
        assert!(table.contains(str_of(d, "id")), "{table}");
    }
    assert!(table.contains(&format!("confirmed {}", ITEMS - 1)), "the footer counts: {table}");
    let out = run(dir, &["inspect-store", "deliveries", "--matrix"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("d0") && table.contains("d1") && table.contains("failed"), "{table}");
    let out = run(dir, &["inspect-store", "txs"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("gwei") && table.contains(&format!("{n} shown")), "{table}");

    // A target no one has heard of is a typo: exit 2, naming the ones there are.
    let out = run(dir, &["inspect-store", "deliveries", "--target", "reciever"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("did you mean `receiver`?"), "{}", text(&out));

    // Both views work while `watch` holds the store for writing.
    let watch =
        KillOnDrop::spawn(ferry_command(dir).arg("watch").stdout(Stdio::null()).stderr(Stdio::null()));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let summary = json(dir, &["inspect-store", "summary", "--json"]);
        if summary["meta"]["holder"]["pid"] == watch.id() {
            break;
        }
        assert!(Instant::now() < deadline, "watch did not take the store within 30s: {summary}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let next_to_watch = json(dir, &["inspect-store", "deliveries", "--json"]);
    assert_eq!(next_to_watch["matched"], 2 * ITEMS, "{next_to_watch}");
    let txs_next_to_watch = json(dir, &["inspect-store", "txs", "--json"]);
    assert!(rows(&txs_next_to_watch, "txs").len() >= txs.len(), "{txs_next_to_watch}");
    drop(watch);
}

/// The state the deliveries list gives the matrix row's item on `chain`.
fn pushed_state_of(deliveries: &[Value], row: &Value, chain: &str) -> Value {
    deliveries
        .iter()
        .find(|d| d["item"] == row["item"] && d["chain"] == chain)
        .map_or(Value::Null, |d| d["state"].clone())
}

#[test]
fn filters_that_do_not_apply_exit_2_before_the_store_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, says) in [
        (&["export", "txs", "--state", "failed"][..], "--state filters `ferry export deliveries` only"),
        (
            &["export", "events", "--target", "receiver"][..],
            "--target filters `ferry export deliveries` only",
        ),
        (&["export", "deliveries", "--event", "Ping"][..], "--event filters `ferry export events` only"),
        (&["export", "txs", "--address", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"][..], "--address"),
        (&["export", "--chain", "1"][..], "--chain filters"),
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "ferry {args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "ferry {args:?}: {}", text(&out));
    }
    for args in [
        &["inspect-store", "deliveries", "--state", "lost"][..],
        &["export", "deliveries", "--state", "lost"][..],
        &["export", "--state", "failed"][..],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "ferry {args:?}: {}", text(&out));
    }
    // With the command line right, a missing store is a store problem (3), not a usage one.
    let out = run(dir.path(), &["inspect-store", "deliveries"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}
