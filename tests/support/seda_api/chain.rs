//! The test chain's state: validator members and their keys, every batch made (signed with
//! real keys), the faults to inject, and the answers of the `/seda-chain/batching/…` routes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use alloy::primitives::{B256, Bytes, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry::seda::tree::{MerkleTree, ValidatorTree, result_leaf};
use ferry::seda::wire::batch_json;
use ferry::seda::{BatchHeader, CONSENSUS_PERCENTAGE, FULL_POWER, Signature, SignedBatch, Validator};
use serde_json::{Value, json};

use super::{Request, Requests};

/// The block height of batch 0; later batches are 1 to 4 blocks apart.
const GENESIS_HEIGHT: u64 = 100;

/// `/batches` answers at most this many headers when the request sets no `pagination.limit`
/// (cosmos' default).
const DEFAULT_PAGE: usize = 100;

pub(super) struct Member {
    pub(super) operator: String,
    pub(super) key: PrivateKeySigner,
    /// Bonded power; the voting power is its share of the total.
    pub(super) bonded: u64,
}

pub(super) struct Stored {
    pub(super) batch: SignedBatch,
    /// `current_data_result_root`, which the chain folds from the previous batch's: here a
    /// stand-in (keccak of the previous one and `data_result_root`) that differs from
    /// `data_result_root`, so that a client reading the wrong root fails the id check.
    pub(super) current_root: B256,
    /// The keys of `batch.validators`, in their order: they sign the next batch.
    pub(super) keys: Vec<PrivateKeySigner>,
}

#[derive(Default)]
pub(super) struct Faults {
    /// Requests still to fail, and with what status.
    pub(super) fail: Option<(u64, u16)>,
    pub(super) malformed: u64,
    pub(super) delay: Duration,
    pub(super) tampered: BTreeSet<u64>,
    pub(super) wrong_id: BTreeSet<u64>,
    pub(super) below_threshold: BTreeSet<u64>,
}

pub(super) struct Chain {
    /// The set the next batch carries, sorted by operator address.
    pub(super) members: Vec<Member>,
    /// Every batch ever made, by number (pruned ones too: the test may still read them).
    pub(super) batches: Vec<Stored>,
    pub(super) pruned_below: u64,
    pub(super) num_batches_to_keep: u64,
    pub(super) operators_made: u64,
    pub(super) faults: Faults,
    pub(super) requests: Requests,
}

impl Chain {
    pub(super) fn stored(&self, n: u64) -> Result<&Stored, String> {
        self.batches
            .get(n as usize)
            .ok_or_else(|| format!("no batch {n} (latest is {})", self.batches.len() - 1))
    }

    pub(super) fn latest_signed(&self) -> u64 {
        let signed = self.batches.iter().rposition(|s| !s.batch.signatures.is_empty());
        signed.expect("batch 0 is signed") as u64
    }

    /// Adds a member with a new operator address and key; returns the operator address.
    pub(super) fn add(&mut self, bonded: u64) -> String {
        self.operators_made += 1;
        let operator = operator_address(self.operators_made);
        let member = Member { operator: operator.clone(), key: PrivateKeySigner::random(), bonded };
        let at = self.members.partition_point(|m| m.operator < operator);
        self.members.insert(at, member);
        operator
    }

    pub(super) fn remove(&mut self, i: usize) -> Result<(), String> {
        if i >= self.members.len() || self.members.len() == 1 {
            return Err(format!("cannot remove validator {i} of {}", self.members.len()));
        }
        self.members.remove(i);
        Ok(())
    }

    pub(super) fn rotate_keys(&mut self, k: usize) -> Result<(), String> {
        if k > self.members.len() {
            return Err(format!("cannot rotate {k} keys of {} validators", self.members.len()));
        }
        for member in &mut self.members[..k] {
            member.key = PrivateKeySigner::random();
        }
        Ok(())
    }

    pub(super) fn set_powers(&mut self, powers: &[u32]) -> Result<(), String> {
        if powers.len() != self.members.len() || powers.iter().all(|&p| p == 0) {
            return Err(format!(
                "{} powers for {} validators (not all zero)",
                powers.len(),
                self.members.len()
            ));
        }
        for (member, &power) in self.members.iter_mut().zip(powers) {
            member.bonded = u64::from(power);
        }
        Ok(())
    }

    /// The members as validator entries: voting power = floor(bonded · 1e8 / total).
    pub(super) fn entries(&self) -> Vec<Validator> {
        let total: u64 = self.members.iter().map(|m| m.bonded).sum();
        let entries = self.members.iter().map(|m| Validator {
            operator: m.operator.clone(),
            eth_address: m.key.address(),
            power: (u128::from(m.bonded) * u128::from(FULL_POWER) / u128::from(total.max(1))) as u32,
        });
        entries.collect()
    }

    /// The next batch, unsigned, carrying the members as they are now.
    pub(super) fn create(&mut self) -> u64 {
        let number = self.batches.len() as u64;
        let block_height = match self.batches.last() {
            Some(previous) => previous.batch.header.block_height + fastrand::u64(1..=4),
            None => GENESIS_HEIGHT,
        };
        // Genesis commits to no results (the empty tree's root); every later batch to 1–3 new ones.
        let result_ids: Vec<B256> = match number {
            0 => vec![],
            _ => (0..fastrand::usize(1..=3)).map(|_| random_b256()).collect(),
        };
        let validators = self.entries();
        let header = BatchHeader {
            number,
            block_height,
            validators_root: ValidatorTree::new(&validators).root(),
            results_root: MerkleTree::new(result_ids.iter().map(|&id| result_leaf(id)).collect()).root(),
            proving_metadata: Bytes::new(),
        };
        let batch_id = header.id();
        let keys = self.members.iter().map(|m| m.key.clone()).collect();
        let batch = SignedBatch { header, batch_id, validators, signatures: vec![], result_ids };
        let previous = self.batches.last().map_or(B256::ZERO, |s| s.current_root);
        let current_root = keccak256([previous, batch.header.results_root].concat());
        self.batches.push(Stored { batch, current_root, keys });
        let kept = self.batches.len() as u64;
        self.pruned_below = self.pruned_below.max(kept.saturating_sub(self.num_batches_to_keep.max(1)));
        number
    }

    /// Signs batch `n` with every validator of batch `n − 1` (batch 0: its own, the registered keys).
    pub(super) fn sign(&mut self, n: u64) {
        let n = n as usize;
        let signers = &self.batches[n.saturating_sub(1)];
        let id = self.batches[n].batch.batch_id;
        let signatures = (signers.batch.validators.iter().zip(&signers.keys))
            .map(|(v, key)| Signature { operator: v.operator.clone(), bytes: sign(key, id) })
            .collect();
        self.batches[n].batch.signatures = signatures;
    }

    pub(super) fn sign_pending(&mut self) -> Option<u64> {
        let last = self.batches.len() as u64 - 1;
        let pending = self.batches[last as usize].batch.signatures.is_empty();
        pending.then(|| {
            self.sign(last);
            last
        })
    }

    pub(super) fn produce(&mut self, n: usize) -> Vec<u64> {
        self.sign_pending();
        (0..n)
            .map(|_| {
                let number = self.create();
                self.sign(number);
                number
            })
            .collect()
    }

    pub(super) fn produce_unsigned(&mut self) -> u64 {
        self.sign_pending();
        self.create()
    }

    /// Batch `n` as the API serves it: `None` when missing or pruned; with its faults applied.
    pub(super) fn served(&self, n: u64) -> Option<SignedBatch> {
        if n < self.pruned_below {
            return None;
        }
        let mut batch = self.batches.get(n as usize)?.batch.clone();
        if self.faults.below_threshold.contains(&n) {
            let signers = &self.batches[(n as usize).saturating_sub(1)].batch.validators;
            let mut power = 0u64;
            // Signature i is by validator i of the previous batch: keep each that still fits.
            let kept = batch.signatures.iter().zip(signers).filter(|(_, v)| {
                let fits = power + u64::from(v.power) < u64::from(CONSENSUS_PERCENTAGE);
                power += if fits { u64::from(v.power) } else { 0 };
                fits
            });
            batch.signatures = kept.map(|(s, _)| s.clone()).collect();
        }
        if self.faults.tampered.contains(&n)
            && let Some(first) = batch.signatures.first_mut()
        {
            first.bytes = sign(&PrivateKeySigner::random(), batch.batch_id);
        }
        if self.faults.wrong_id.contains(&n) {
            batch.batch_id = keccak256(batch.batch_id);
        }
        Some(batch)
    }

    /// The answer to a `/seda-chain/` request, counted.
    pub(super) fn answer(&mut self, request: &Request) -> (u16, Value) {
        let Some(route) = request.path.strip_prefix("/seda-chain/batching/") else {
            self.requests.unknown += 1;
            return not_implemented();
        };
        let segments: Vec<&str> = route.split('/').collect();
        let flag = |name: &str| request.query.get(name).is_some_and(|v| v == "true");
        match segments[..] {
            ["batch", n] if !n.is_empty() && flag("latest_signed") => {
                self.requests.latest_signed += 1;
                let latest = self.latest_signed();
                self.batch_answer(latest)
            }
            ["batch", n] if !n.is_empty() => {
                self.requests.batch += 1;
                match n.parse() {
                    Ok(n) => self.batch_answer(n),
                    Err(_) => bad_number("batch_number", n),
                }
            }
            ["batch_for_height", h] if !h.is_empty() => {
                self.requests.batch_for_height += 1;
                let Ok(h) = h.parse::<u64>() else { return bad_number("block_height", h) };
                let found = self.batches.iter().find(|s| s.batch.header.block_height == h);
                match found.and_then(|s| self.served(s.batch.header.number)) {
                    Some(batch) => (200, json!({ "batch": batch_json(&batch)["batch"] })),
                    None => not_found(format!("batch for height {h} not found: not found")),
                }
            }
            ["batches"] => {
                self.requests.batches += 1;
                self.batches_answer(&request.query)
            }
            ["params"] => {
                self.requests.params += 1;
                let params = json!({
                    "num_batches_to_keep": self.num_batches_to_keep.to_string(),
                    "max_batch_prune_per_block": "100",
                });
                (200, json!({ "params": params }))
            }
            _ => {
                self.requests.unknown += 1;
                not_implemented()
            }
        }
    }

    pub(super) fn batch_answer(&self, n: u64) -> (u16, Value) {
        let Some(batch) = self.served(n) else {
            return not_found(format!("batch {n} not found: not found"));
        };
        let mut answer = batch_json(&batch);
        let current = self.batches[n as usize].current_root;
        answer["batch"]["current_data_result_root"] = Value::String(alloy::hex::encode(current));
        (200, answer)
    }

    /// `/batches`: headers from `pagination.key` (base64 of the first number, big-endian), at most
    /// `pagination.limit`; `next_key` is where the next page starts, `null` on the last.
    pub(super) fn batches_answer(&self, query: &BTreeMap<String, String>) -> (u16, Value) {
        let with_unsigned = query.get("with_unsigned").is_some_and(|v| v == "true");
        let from = match query.get("pagination.key").filter(|k| !k.is_empty()) {
            None => 0,
            Some(key) => match STANDARD.decode(key).ok().and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                Some(bytes) => u64::from_be_bytes(bytes),
                None => return bad_request(format!("invalid pagination key {key:?}")),
            },
        };
        let limit = match query.get("pagination.limit").map(|l| l.parse::<usize>()) {
            None | Some(Ok(0)) => DEFAULT_PAGE,
            Some(Ok(limit)) => limit,
            Some(Err(_)) => return bad_number("pagination.limit", &query["pagination.limit"]),
        };
        let listed: Vec<SignedBatch> = (self.pruned_below..self.batches.len() as u64)
            .filter_map(|n| self.served(n))
            .filter(|b| with_unsigned || !b.signatures.is_empty())
            .collect();
        let page: Vec<&SignedBatch> =
            listed.iter().filter(|b| b.header.number >= from).take(limit + 1).collect();
        let next_key = match page.get(limit) {
            Some(next) => Value::String(STANDARD.encode(next.header.number.to_be_bytes())),
            None => Value::Null,
        };
        let headers: Vec<Value> = page.iter().take(limit).map(|b| batch_json(b)["batch"].clone()).collect();
        let pagination = json!({ "next_key": next_key, "total": listed.len().to_string() });
        (200, json!({ "batches": headers, "pagination": pagination }))
    }
}

/// A fake but stable bech32-looking operator address: `sedavaloper1` and 38 characters of the
/// bech32 alphabet drawn from `keccak256(n)`.
pub(super) fn operator_address(n: u64) -> String {
    const BECH32: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let hash = keccak256(n.to_be_bytes());
    let seed = [hash.as_slice(), &keccak256(hash)[..6]].concat();
    let tail: String = seed.iter().take(38).map(|b| BECH32[usize::from(b % 32)] as char).collect();
    format!("sedavaloper1{tail}")
}

/// `r ‖ s ‖ v` of the raw `id`, v ∈ {0, 1}, s low (as the chain stores a vote extension).
pub(super) fn sign(key: &PrivateKeySigner, id: B256) -> [u8; 65] {
    key.sign_hash_sync(&id).expect("a local key signs").normalized_s().as_rsy()
}

pub(super) fn random_b256() -> B256 {
    let mut bytes = [0u8; 32];
    fastrand::fill(&mut bytes);
    B256::from(bytes)
}

/// A gRPC-gateway error: `{code, message, details}`.
pub(super) fn grpc_error(code: u32, message: String) -> Value {
    json!({ "code": code, "message": message, "details": [] })
}

pub(super) fn not_found(message: String) -> (u16, Value) {
    (404, grpc_error(5, message))
}

pub(super) fn bad_request(message: String) -> (u16, Value) {
    (400, grpc_error(3, message))
}

pub(super) fn bad_number(parameter: &str, value: &str) -> (u16, Value) {
    bad_request(format!(
        "type mismatch, parameter: {parameter}, error: strconv.ParseUint: parsing {value:?}: invalid syntax"
    ))
}

pub(super) fn not_implemented() -> (u16, Value) {
    (404, json!({ "code": 12, "message": "Not Implemented" }))
}

/// What `fail_next(_, status)` answers: the gRPC code a gateway maps to that status.
pub(super) fn injected_failure(status: u16) -> Value {
    let (code, message) = match status {
        400 => (3, "invalid argument"),
        404 => (5, "not found"),
        429 => (8, "rate limited"),
        500 => (13, "internal error"),
        503 => (14, "service unavailable"),
        504 => (4, "deadline exceeded"),
        _ => (2, "unknown error"),
    };
    grpc_error(code, format!("injected: {message}"))
}
