//! SEDA batches end to end through the real binary: the test batching API (real keys), anvil
//! destinations with the test Prover (every signature and proof verified on-chain), `ferry push`.

use std::time::Duration;

use serde_json::Value;

use crate::deliver::push;
use crate::support::command::run;
use crate::support::output::{json_or_null, text};
use crate::support::seda_net::{ConfigOpts, SedaNet};

/// `ferry push --json --timeout TIMEOUT EXTRA…` in `dir`.
fn push_within(dir: &std::path::Path, timeout: &str, extra: &[&str]) -> (std::process::Output, Value) {
    let mut args = vec!["push", "--json", "--timeout", timeout];
    args.extend_from_slice(extra);
    let out = run(dir, &args);
    let report = json_or_null(&out);
    (out, report)
}

fn chain<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["chains"].as_array().and_then(|c| c.iter().find(|c| c["chain"] == name)).unwrap_or(&Value::Null)
}

fn transactions(report: &Value) -> u64 {
    report["chains"].as_array().map_or(0, |c| c.iter().map(|c| c["transactions"].as_u64().unwrap_or(0)).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_batches_reach_three_provers_once_each_and_a_second_push_sends_nothing() {
    let net = SedaNet::start(10, 3).await;
    net.api.produce(50);
    let dir = tempfile::tempdir().expect("tempdir");
    // One destination is addressed through its Core: ferry reads the Prover from it.
    net.write_config(
        dir.path(),
        &ConfigOpts { start_batch: Some(1), via_core: vec![2], ..ConfigOpts::default() },
    );

    let (out, report) = push(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for i in 0..3 {
        assert_eq!(net.last_height(i).await, 50, "destination {i}");
        assert_eq!(
            net.posted_heights(i).await,
            (1..=50).collect::<Vec<u64>>(),
            "destination {i}: BatchPosted once per batch, in order"
        );
        assert_eq!(chain(&report, &format!("d{i}"))["confirmed"], 50, "{report}");
    }
    assert_eq!(transactions(&report), 150, "{report}");
    // The store says where each destination stands after the push's own transactions.
    let provers = json_or_null(&run(dir.path(), &["inspect-store", "provers", "--json"]));
    let rows = provers["provers"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 3, "{provers}");
    for row in &rows {
        assert_eq!((row["last_batch"].as_u64(), row["behind"].as_u64()), (Some(50), Some(0)), "{provers}");
    }

    let (out, again) = push(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(transactions(&again), 0, "a second push sent transactions: {again}");
    for i in 0..3 {
        assert_eq!(net.posted_heights(i).await.len(), 50, "destination {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_set_changes_are_followed_and_latest_catches_up_with_the_fewest_posts() {
    let net = SedaNet::start(6, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Destination 0 follows every batch; destination 1 is left behind, then catches up in
    // mode `latest`.
    net.api.produce(5);
    net.api.rotate_keys(6); // batch 6 names new keys for every validator: they sign 7 on
    net.api.produce(8);
    net.api.set_powers(&[30_000_000, 25_000_000, 20_000_000, 10_000_000, 10_000_000, 5_000_000]);
    net.api.rotate_keys(6); // batch 14: new keys and new powers, signing 15 on
    net.api.produce(6);
    assert_eq!(net.api.latest_signed(), 19);
    net.api.produce(1);

    std::fs::create_dir_all(dir.path().join("every")).expect("dir");
    let every = dir.path().join("every");
    net.write_config(&every, &ConfigOpts { start_batch: Some(1), ..ConfigOpts::default() });
    let (out, _) = push(&every, &["--chain", "d0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(net.posted_heights(0).await, (1..=20).collect::<Vec<u64>>());
    assert_eq!(net.last_root(0).await, net.api.batch(20).header.validators_root);

    let latest = dir.path().join("latest");
    std::fs::create_dir_all(&latest).expect("dir");
    net.write_config(
        &latest,
        &ConfigOpts { start_batch: Some(1), mode: Some("latest"), ..ConfigOpts::default() },
    );
    let (out, report) = push(&latest, &["--chain", "d1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Batch 20 is signed by the third key set: the Prover needs batch 6 (into the second set)
    // and batch 14 (into the third) first, and nothing else.
    assert_eq!(net.posted_heights(1).await, vec![6, 14, 20], "{report}");
    let d1 = chain(&report, "d1");
    let notes = d1["notes"].to_string();
    assert!(notes.contains("batch 6 posted first") && notes.contains("batch 14 posted first"), "{report}");
    assert!(notes.contains("intermediate"), "{report}");
    assert_eq!((d1["confirmed"].as_u64(), d1["skipped"].as_u64()), (Some(3), Some(17)), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_signature_or_a_wrong_id_is_never_stored_nor_sent() {
    for fault in ["tampered", "wrong id"] {
        let net = SedaNet::start(4, 1).await;
        net.api.produce(4);
        match fault {
            "tampered" => net.api.tamper_signature(3),
            _ => net.api.wrong_id(3),
        }
        let dir = tempfile::tempdir().expect("tempdir");
        net.write_config(dir.path(), &ConfigOpts { start_batch: Some(1), ..ConfigOpts::default() });
        let (out, report) = push_within(dir.path(), "30s", &[]);
        assert_eq!(out.status.code(), Some(4), "{fault}: {}", text(&out));
        let error = report["synced"][0]["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains("batch 3 refused"), "{fault}: {report}");
        let check = if fault == "tampered" { "signature" } else { "batch_id" };
        assert!(error.contains(check), "{fault}: {error}");
        // Batches 1 and 2 passed and landed; 3 and what follows were neither stored nor sent.
        assert_eq!(net.posted_heights(0).await, vec![1, 2], "{fault}");
        let batches = run(dir.path(), &["export", "--table", "batches"]);
        let stored = crate::support::output::json_lines(&batches.stdout).len();
        assert_eq!(stored, 3, "{fault}: the anchor and batches 1 and 2: {}", text(&batches));
        let cursors = json_or_null(&run(dir.path(), &["inspect-store", "cursors", "--json"]));
        assert!(cursors.to_string().contains("batch 3 refused"), "{fault}: inspect-store cursors: {cursors}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_below_the_threshold_are_never_sent_and_the_delivery_says_why() {
    let net = SedaNet::start(4, 1).await;
    net.api.produce(4);
    net.api.below_threshold(2);
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), &ConfigOpts { start_batch: Some(1), ..ConfigOpts::default() });
    let (out, report) = push_within(dir.path(), "30s", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    // Batch 3 is signed by batch 2's validators, the same set as batch 1's: it is posted over 2.
    assert_eq!(net.posted_heights(0).await, vec![1, 3, 4], "{report}");
    let failures = chain(&report, "d0")["failures"].to_string();
    assert!(failures.contains("batch") && failures.contains("threshold"), "{report}");
    let failed =
        json_or_null(&run(dir.path(), &["inspect-store", "deliveries", "--state", "failed", "--json"]));
    assert!(failed.to_string().contains("below the Prover's threshold"), "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_prover_waits_and_says_so_while_the_others_finish() {
    let net = SedaNet::start(4, 3).await;
    net.api.produce(5);
    net.pause(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), &ConfigOpts { start_batch: Some(1), ..ConfigOpts::default() });
    let (out, report) = push_within(dir.path(), "15s", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(chain(&report, "d1")["problem"]["code"], "prover_paused", "{report}");
    assert!(
        chain(&report, "d1")["problem"]["message"].as_str().is_some_and(|m| m.contains("paused")),
        "{report}"
    );
    assert_eq!((net.last_height(0).await, net.last_height(1).await, net.last_height(2).await), (5, 0, 5));

    net.unpause(1).await;
    let (out, report) = push(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for i in 0..3 {
        assert_eq!(net.posted_heights(i).await, vec![1, 2, 3, 4, 5], "destination {i}: {report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_api_is_retried_and_a_dead_one_is_work_left_undone_naming_the_source() {
    let net = SedaNet::start(4, 1).await;
    net.api.produce(6);
    net.api.fail_next(3, 503);
    net.api.malformed_next(2);
    net.api.slow(Duration::from_millis(150));
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), &ConfigOpts { start_batch: Some(1), ..ConfigOpts::default() });
    let (out, report) = push(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(net.posted_heights(0).await, (1..=6).collect::<Vec<u64>>(), "{report}");

    // Down for good: push gives up on the source, says which, and exits 4.
    net.api.clear_faults();
    net.api.produce(2);
    net.api.fail_next(10_000, 500);
    let (out, report) = push_within(dir.path(), "60s", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(report["synced"][0]["source"], "seda", "{report}");
    assert!(report["synced"][0]["error"].as_str().is_some_and(|e| e.contains("did not answer")), "{report}");
    assert_eq!(net.last_height(0).await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_asks_again_for_a_batch_not_signed_yet_and_posts_it_once_signed() {
    let net = SedaNet::start(4, 1).await;
    net.api.produce(3);
    let unsigned = net.api.produce_unsigned();
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), &ConfigOpts { start_batch: Some(1), ..ConfigOpts::default() });
    let log = std::fs::File::create(dir.path().join("watch.err")).expect("log");
    let mut watch = crate::support::process::KillOnDrop::spawn(
        crate::support::command::ferry_command(dir.path()).arg("watch").stderr(log),
    );
    assert!(net.wait_all_at(3, Duration::from_secs(30)).await, "watch did not post batches 1..=3");
    // The unsigned batch is asked for again and again, and not posted.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(net.last_height(0).await, 3);
    assert!(net.api.requests().batch > 0);
    assert_eq!(net.api.sign_pending(), Some(unsigned));
    assert!(
        net.wait_all_at(unsigned, Duration::from_secs(30)).await,
        "the batch signed later was not posted"
    );
    assert!(watch.try_wait().expect("watch's status").is_none(), "watch stopped");
    drop(watch);
    assert_eq!(net.posted_heights(0).await, vec![1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_pruned_by_the_chain_before_ferry_read_it_is_an_error_naming_num_batches_to_keep() {
    let net = SedaNet::start(4, 1).await;
    net.api.set_num_batches_to_keep(5);
    net.api.produce(12);
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), &ConfigOpts { start_batch: Some(3), ..ConfigOpts::default() });
    let (out, report) = push_within(dir.path(), "30s", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let error = report["synced"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("batch 2 is gone") && error.contains("keeps 5 batches"), "{report}");
    assert_eq!(net.posted_heights(0).await, Vec::<u64>::new());
}
