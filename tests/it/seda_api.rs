//! [`SedaApi`] itself: its batches verify with ferry's own code (ids, trees, signatures by the
//! previous batch's validators, across validator-set changes), its JSON is the API's as SEDA.md
//! writes it, and each fault does what it says.

use std::time::{Duration, Instant};

use ferry::seda::sign::{CheckError, check, signers_in};
use ferry::seda::tree::{MerkleTree, ValidatorTree, result_leaf};
use ferry::seda::wire::{BatchAnswer, is_not_found, parse_batch, parse_num_batches_to_keep};
use ferry::seda::{CONSENSUS_PERCENTAGE, FULL_POWER, SignedBatch};
use serde_json::Value;

use crate::support::seda_api::SedaApi;

/// An answer's status and body.
async fn get(api: &SedaApi, path_and_query: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(format!("{}{path_and_query}", api.url()))
        .await
        .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("the body").to_vec())
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// Batch `n` over HTTP, signed (anything else fails the test).
async fn fetch(api: &SedaApi, n: u64) -> SignedBatch {
    let (status, body) = get(api, &format!("/seda-chain/batching/batch/{n}")).await;
    assert_eq!(status, 200, "batch {n}: {}", String::from_utf8_lossy(&body));
    signed(&body)
}

/// A signed batch answer's batch (anything else fails the test).
fn signed(body: &[u8]) -> SignedBatch {
    match parse_batch(body) {
        Ok(BatchAnswer::Signed(batch)) => batch,
        other => panic!("{other:?}: {}", String::from_utf8_lossy(body)),
    }
}

/// What ferry checks of a served batch, against the chain's own record of the previous one.
fn assert_verifies(api: &SedaApi, batch: &SignedBatch) {
    let n = batch.header.number;
    assert_eq!(batch.batch_id, batch.header.id(), "batch {n}'s id");
    assert_eq!(batch.header.validators_root, ValidatorTree::new(&batch.validators).root(), "batch {n}");
    let leaves = batch.result_ids.iter().map(|&id| result_leaf(id)).collect();
    assert_eq!(batch.header.results_root, MerkleTree::new(leaves).root(), "batch {n}'s results root");
    let previous = api.validators_of(n.saturating_sub(1));
    check(batch, n.saturating_sub(1), &previous).unwrap_or_else(|e| panic!("batch {n}: {e}"));
    let signers = signers_in(batch, &ValidatorTree::new(&previous));
    assert_eq!(signers.signers.len(), previous.len(), "every previous validator signs batch {n}");
    assert!(signers.hold_threshold(), "batch {n}: {} of power", signers.power);
    let powers: u64 = batch.validators.iter().map(|v| u64::from(v.power)).sum();
    assert!(powers <= u64::from(FULL_POWER), "batch {n}'s powers sum to {powers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_verify_with_ferrys_code_across_validator_set_changes() {
    let api = SedaApi::start(7).await;
    let genesis = api.genesis();
    assert_eq!((genesis.header.number, genesis.result_ids.len()), (0, 0));
    let powers: Vec<u32> = genesis.validators.iter().map(|v| v.power).collect();
    assert!(powers.iter().any(|&p| p != powers[0]), "unequal powers: {powers:?}");
    assert!(genesis.validators.windows(2).all(|w| w[0].operator < w[1].operator), "sorted by operator");
    assert!(genesis.validators.iter().all(|v| v.operator.starts_with("sedavaloper1")));

    api.produce(2);
    api.rotate_keys(2);
    let rotated = api.produce(1)[0];
    api.set_powers(&[10_000_000, 20_000_000, 30_000_000, 5_000_000, 5_000_000, 15_000_000, 15_000_000]);
    let repowered = api.produce(1)[0];
    let added = api.add_validator(40_000_000);
    let grown = api.produce(1)[0];
    api.remove_validator(0);
    let shrunk = api.produce(2)[0];
    assert_eq!(api.latest_signed(), 7);

    let mut previous: Option<SignedBatch> = None;
    for n in 0..=api.latest_signed() {
        let batch = fetch(&api, n).await;
        assert_eq!(batch, api.batch(n), "the served batch is the chain's");
        assert_verifies(&api, &batch);
        if let Some(previous) = &previous {
            assert!(batch.header.block_height > previous.header.block_height, "batch {n}'s height");
            assert!((1..=3).contains(&batch.result_ids.len()), "batch {n}'s results");
        }
        previous = Some(batch);
    }

    let before = api.validators_of(rotated - 1);
    let after = api.validators_of(rotated);
    let operators = |vs: &[ferry::seda::Validator]| vs.iter().map(|v| v.operator.clone()).collect::<Vec<_>>();
    assert_eq!(operators(&before), operators(&after), "a rotation keeps the operators");
    let moved = before.iter().zip(&after).filter(|(b, a)| b.eth_address != a.eth_address).count();
    assert_eq!(moved, 2, "two keys rotated");
    let set: Vec<u32> = api.validators_of(repowered).iter().map(|v| v.power).collect();
    assert_eq!(set, [10_000_000, 20_000_000, 30_000_000, 5_000_000, 5_000_000, 15_000_000, 15_000_000]);
    let grown_set = api.validators_of(grown);
    assert_eq!(grown_set.len(), 8);
    let newcomer = grown_set.iter().find(|v| v.operator == added).expect("the added validator");
    assert_eq!(newcomer.power, 28_571_428, "40 of 140, diluting the others");
    assert_eq!(api.validators_of(shrunk).len(), 7);
    assert!(!api.validators_of(shrunk).iter().any(|v| v.operator == grown_set[0].operator));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_is_the_apis() {
    let api = SedaApi::start(3).await;
    api.produce(1);
    let (_, body) = get(&api, "/seda-chain/batching/batch/1").await;
    let answer = json(&body);
    let batch = &answer["batch"];
    assert_eq!(batch["batch_number"], "1", "{answer}");
    assert!(batch["block_height"].is_string(), "{answer}");
    for root in ["validator_root", "data_result_root"] {
        let hex = batch[root].as_str().unwrap_or_else(|| panic!("{root}: {answer}"));
        assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
    assert_eq!(batch["batch_id"].as_str().map(str::len), Some(44), "base64 of 32 bytes: {answer}");
    assert_eq!(batch["proving_metadata"], Value::Null);
    let current = &batch["current_data_result_root"];
    assert!(current.is_string() && current != &batch["data_result_root"], "{answer}");
    let validator = &answer["validator_entries"][0];
    assert!(validator["voting_power_percent"].is_u64(), "{answer}");
    assert_eq!(validator["eth_address"].as_str().map(str::len), Some(28), "base64 of 20 bytes");
    let signature = &answer["batch_signatures"][0]["secp256k1_signature"];
    assert_eq!(signature.as_str().map(str::len), Some(88), "base64 of 65 bytes: {answer}");
    let entries = answer["data_result_entries"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), api.batch(1).result_ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_unsigned_until_signed_and_latest_signed_follows() {
    let api = SedaApi::start(4).await;
    api.produce(2);
    let pending = api.produce_unsigned();
    assert_eq!(pending, 3);
    let (status, body) = get(&api, "/seda-chain/batching/batch/3").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["batch_signatures"], serde_json::json!([]));
    assert_eq!(parse_batch(&body), Ok(BatchAnswer::Unsigned { number: 3 }));
    let (_, body) = get(&api, "/seda-chain/batching/batch/0?latest_signed=true").await;
    assert_eq!(signed(&body).header.number, 2);
    assert_eq!(api.latest_signed(), 2);
    assert_eq!(api.latest(), 3);

    assert_eq!(api.sign_pending(), Some(3));
    assert_eq!(api.sign_pending(), None);
    assert_verifies(&api, &fetch(&api, 3).await);
    let (_, body) = get(&api, "/seda-chain/batching/batch/17?latest_signed=true").await;
    assert_eq!(signed(&body).header.number, 3);

    // Producing signs a pending batch first, as the chain would have by then.
    api.produce_unsigned();
    assert_eq!(api.produce(1), [5]);
    assert_verifies(&api, &fetch(&api, 4).await);
    let requests = api.requests();
    assert_eq!((requests.batch, requests.latest_signed, requests.total()), (3, 2, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_lists_signed_headers_by_page_and_params_prune() {
    let api = SedaApi::start(3).await;
    api.produce(4);
    api.produce_unsigned();
    let mut numbers = vec![];
    let mut key: Option<String> = None;
    loop {
        let mut path = "/seda-chain/batching/batches?pagination.limit=2".to_string();
        if let Some(key) = &key {
            path.push_str(&format!(
                "&pagination.key={}",
                url::form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>()
            ));
        }
        let page = json(&get(&api, &path).await.1);
        assert_eq!(page["pagination"]["total"], "5", "{page}");
        for header in page["batches"].as_array().expect("batches") {
            assert!(
                header.get("batch_id").is_some() && header.get("validator_entries").is_none(),
                "{header}"
            );
            numbers.push(header["batch_number"].as_str().expect("a number").to_string());
        }
        match page["pagination"]["next_key"].as_str() {
            Some(next) => key = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(numbers, ["0", "1", "2", "3", "4"], "signed ones, in order, over three pages");
    let all = json(&get(&api, "/seda-chain/batching/batches?with_unsigned=true").await.1);
    assert_eq!(all["batches"].as_array().map(Vec::len), Some(6), "{all}");

    let height = api.batch(2).header.block_height;
    let (_, body) = get(&api, &format!("/seda-chain/batching/batch_for_height/{height}")).await;
    assert_eq!(json(&body)["batch"]["batch_number"], "2");

    let (status, body) = get(&api, "/seda-chain/batching/params").await;
    assert_eq!((status, parse_num_batches_to_keep(&body)), (200, Ok(10_000)));
    assert_eq!(json(&body)["params"]["max_batch_prune_per_block"], "100");
    api.set_num_batches_to_keep(3);
    assert_eq!(parse_num_batches_to_keep(&get(&api, "/seda-chain/batching/params").await.1), Ok(3));
    api.produce(1);
    let (status, body) = get(&api, "/seda-chain/batching/batch/3").await;
    assert!(status == 404 && is_not_found(status, &body), "only the last 3 are kept");
    fetch(&api, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_missing_and_unknown_answer_like_the_gateway() {
    let api = SedaApi::start(3).await;
    api.produce(3);
    api.prune_below(2);
    for path in ["/seda-chain/batching/batch/1", "/seda-chain/batching/batch/99"] {
        let (status, body) = get(&api, path).await;
        let error = json(&body);
        assert_eq!((status, &error["code"]), (404, &Value::from(5)), "{path}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| m.contains("not found")), "{error}");
        assert!(is_not_found(status, &body));
    }
    assert_eq!(api.batch(1).header.number, 1, "the test still reads a pruned batch");
    fetch(&api, 2).await;
    let listed = json(&get(&api, "/seda-chain/batching/batches").await.1);
    assert_eq!(listed["batches"][0]["batch_number"], "2", "{listed}");

    let (status, body) = get(&api, "/seda-chain/batching/nothing").await;
    assert_eq!((status, json(&body)), (404, serde_json::json!({"code": 12, "message": "Not Implemented"})));
    let (status, body) = get(&api, "/elsewhere").await;
    assert_eq!((status, json(&body)["code"].clone()), (404, Value::from(12)));
    let (status, body) = get(&api, "/seda-chain/batching/batch/seven").await;
    assert_eq!((status, json(&body)["code"].clone()), (400, Value::from(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_signature_recovers_elsewhere() {
    let api = SedaApi::start(5).await;
    api.produce(3);
    api.tamper_signature(2);
    let served = fetch(&api, 2).await;
    let previous = api.validators_of(1);
    match check(&served, 1, &previous) {
        Err(CheckError::NotAValidator { index: 0, operator, recovered, previous: 1 }) => {
            assert_eq!(operator, previous[0].operator, "the signature keeps its operator");
            assert!(!previous.iter().any(|v| v.eth_address == recovered));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(signers_in(&served, &ValidatorTree::new(&previous)).signers.len(), 4);
    assert_verifies(&api, &api.batch(2));
    assert_verifies(&api, &fetch(&api, 3).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_id_and_a_signature_set_below_the_threshold() {
    let api = SedaApi::start(6).await;
    api.produce(3);
    api.wrong_id(1);
    let served = fetch(&api, 1).await;
    assert_eq!(
        check(&served, 0, &api.validators_of(0)),
        Err(CheckError::WrongId { given: served.batch_id, computed: api.batch(1).batch_id })
    );

    // Below the threshold, served alike by number and as the latest signed batch.
    api.below_threshold(3);
    let (_, body) = get(&api, "/seda-chain/batching/batch/0?latest_signed=true").await;
    for served in [fetch(&api, 3).await, signed(&body)] {
        let previous = api.validators_of(2);
        assert_eq!(check(&served, 2, &previous), Ok(()), "what is left is genuine");
        let signers = signers_in(&served, &ValidatorTree::new(&previous));
        assert!(
            !signers.signers.is_empty() && signers.power < u64::from(CONSENSUS_PERCENTAGE),
            "{signers:?}"
        );
        assert!(!signers.hold_threshold());
    }

    api.clear_faults();
    assert_verifies(&api, &fetch(&api, 1).await);
    assert_verifies(&api, &fetch(&api, 3).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_malformed_answers_and_delays_then_recovery() {
    let api = SedaApi::start(3).await;
    api.produce(1);
    api.fail_next(2, 503);
    for _ in 0..2 {
        let (status, body) = get(&api, "/seda-chain/batching/batch/1").await;
        let error = json(&body);
        assert_eq!((status, &error["code"]), (503, &Value::from(14)), "{error}");
        assert!(error["message"].is_string() && error["details"].is_array());
    }
    fetch(&api, 1).await;
    api.fail_next(1, 500);
    assert_eq!(get(&api, "/seda-chain/batching/params").await.0, 500);

    api.malformed_next(1);
    let (status, body) = get(&api, "/seda-chain/batching/batch/1").await;
    assert_eq!(status, 200);
    assert!(parse_batch(&body).is_err(), "half a body: {}", String::from_utf8_lossy(&body));
    fetch(&api, 1).await;

    api.slow(Duration::from_millis(300));
    let started = Instant::now();
    fetch(&api, 1).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    api.slow(Duration::ZERO);

    let requests = api.requests();
    assert_eq!((requests.batch, requests.params), (6, 1), "every answer counts, faulted or not");
}
