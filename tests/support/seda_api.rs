//! The SEDA chain's batching REST API, played in process (`SEDA.md` §1–3 in the design notes):
//! the one hand-written fake of the suite, since a SEDA chain cannot run here. Its batches are
//! real: built with `ferry::seda` (ids, validator and result trees, `wire::batch_json`) and signed
//! with real secp256k1 keys, so ferry's own checks and the test Prover contract verify them.
//!
//! - [`SedaApi::start`] listens on 127.0.0.1 (port 0) with batch 0 (genesis) signed by its own
//!   validators; dropping the `SedaApi` stops it. Its [`SedaChain`] (by `Deref`, or cloned with
//!   [`SedaApi::chain`]) is the test's control: produce batches, signed or not yet, change the
//!   validator set for the next batch, prune, and inject faults.
//! - Batch N carries the set as it stands when N is produced and is signed by every validator of
//!   batch N−1: 65 bytes `r ‖ s ‖ v`, v ∈ {0, 1}, low s, over the raw id.
//! - Powers are the chain's: each validator has a bonded power, and its voting power is
//!   `floor(bonded · 1e8 / total)`, so they sum to at most 1e8. The initial bonded powers are
//!   unequal; [`SedaChain::set_powers`] with values summing to 1e8 gives exactly those values.
//! - Routes (GET): `/seda-chain/batching/batch/{n}` (with `?latest_signed=true`: the highest
//!   signed batch, `n` ignored), `/seda-chain/batching/batches` (headers; `with_unsigned`,
//!   `pagination.key`/`pagination.limit`), `/seda-chain/batching/batch_for_height/{h}` (the batch
//!   whose `block_height` is `h`), `/seda-chain/batching/params`. A missing or pruned batch is a
//!   404 `{"code":5,"message":"batch 7 not found: not found","details":[]}`, an unknown route a
//!   404 `{"code":12,"message":"Not Implemented"}`. Routes outside `/seda-chain/` go to the
//!   caller's [`ExtraRoutes`] (the `seda-devnet` example's control routes).
//!
//! One request per connection, `Connection: close` (`http.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
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
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::http::{read_request_with_line, respond};

/// The block height of batch 0; later batches are 1 to 4 blocks apart.
const GENESIS_HEIGHT: u64 = 100;

/// `/batches` answers at most this many headers when the request sets no `pagination.limit`
/// (cosmos' default).
const DEFAULT_PAGE: usize = 100;

/// One HTTP request, as [`ExtraRoutes`] sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Decoded query parameters; a repeated name keeps its last value.
    pub query: BTreeMap<String, String>,
}

/// Routes outside `/seda-chain/`: `Some((status, body))` answers, `None` is a 404.
pub type ExtraRoutes = Arc<dyn Fn(&SedaChain, &Request) -> Option<(u16, Value)> + Send + Sync>;

/// Requests received per route, faulted answers included: a client's retries show here.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Requests {
    /// `/batch/{n}` without `latest_signed`.
    pub batch: u64,
    /// `/batch/{n}?latest_signed=true`.
    pub latest_signed: u64,
    pub batches: u64,
    pub batch_for_height: u64,
    pub params: u64,
    /// Anything else under `/seda-chain/`.
    pub unknown: u64,
}

impl Requests {
    pub fn total(&self) -> u64 {
        self.batch + self.latest_signed + self.batches + self.batch_for_height + self.params + self.unknown
    }
}

/// The running server. Dropping it stops it; its chain (and clones of it) stay readable.
pub struct SedaApi {
    url: String,
    chain: SedaChain,
    task: JoinHandle<()>,
}

impl SedaApi {
    /// A chain of `validators` validators with batch 0, served on a free port of 127.0.0.1.
    pub async fn start(validators: usize) -> SedaApi {
        SedaApi::start_with(validators, 0, None).await
    }

    /// The same on `port` (0: a free one), with `extra` answering routes outside `/seda-chain/`.
    pub async fn start_with(validators: usize, port: u16, extra: Option<ExtraRoutes>) -> SedaApi {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind the SEDA API");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let chain = SedaChain::new(validators);
        let served = chain.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (chain, extra) = (served.clone(), extra.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &chain, extra.as_ref()).await;
                });
            }
        });
        SedaApi { url, chain, task }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A handle on the chain that outlives a borrow of the server (for another task).
    pub fn chain(&self) -> &SedaChain {
        &self.chain
    }
}

/// The server is its chain plus a socket: `api.produce(3)` reads as what it does.
impl Deref for SedaApi {
    type Target = SedaChain;

    fn deref(&self) -> &SedaChain {
        &self.chain
    }
}

impl Drop for SedaApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The chain's state and the test's controls over it. Cloning shares the state.
#[derive(Clone)]
pub struct SedaChain {
    state: Arc<Mutex<Chain>>,
}

impl SedaChain {
    fn new(validators: usize) -> SedaChain {
        assert!(validators > 0, "a chain needs at least one validator");
        let mut chain = Chain {
            members: vec![],
            batches: vec![],
            pruned_below: 0,
            num_batches_to_keep: 10_000,
            operators_made: 0,
            faults: Faults::default(),
            requests: Requests::default(),
        };
        // Unequal bonded powers 1, 2, …, n, in voting-power units.
        let total = validators as u64 * (validators as u64 + 1) / 2;
        for i in 1..=validators as u64 {
            chain.add(i * u64::from(FULL_POWER) / total);
        }
        chain.create();
        chain.sign(0);
        SedaChain { state: Arc::new(Mutex::new(chain)) }
    }

    /// Runs `f` on the state; an `Err` fails the test after the lock is released, so that a
    /// refused control does not poison the state for the server.
    fn with<R>(&self, f: impl FnOnce(&mut Chain) -> Result<R, String>) -> R {
        let result = f(&mut self.state.lock().expect("the SEDA chain's state"));
        result.unwrap_or_else(|e| panic!("SEDA test chain: {e}"))
    }

    /// Batch 0, to deploy a Prover with.
    pub fn genesis(&self) -> SignedBatch {
        self.batch(0)
    }

    /// Produces `n` signed batches (signing a pending one first, as the chain would have by
    /// then); returns their numbers.
    pub fn produce(&self, n: usize) -> Vec<u64> {
        self.with(|c| Ok(c.produce(n)))
    }

    /// Produces the next batch without signatures (signing a pending one first); returns its number.
    pub fn produce_unsigned(&self) -> u64 {
        self.with(|c| Ok(c.produce_unsigned()))
    }

    /// Signs the pending batch, if there is one; returns its number.
    pub fn sign_pending(&self) -> Option<u64> {
        self.with(|c| Ok(c.sign_pending()))
    }

    /// The first `k` validators (by operator address) get new keys in the next batch.
    pub fn rotate_keys(&self, k: usize) {
        self.with(|c| c.rotate_keys(k))
    }

    /// The validators' bonded powers from the next batch on, in operator order; their voting
    /// powers are `floor(p · 1e8 / sum)` (exactly `p` when the sum is 1e8).
    pub fn set_powers(&self, powers: &[u32]) {
        self.with(|c| c.set_powers(powers))
    }

    /// A new validator with this bonded power (in the units of the others) in the next batch;
    /// returns its operator address.
    pub fn add_validator(&self, power: u32) -> String {
        self.with(|c| Ok(c.add(u64::from(power))))
    }

    /// Validator `i` (in operator order) is gone from the next batch.
    pub fn remove_validator(&self, i: usize) {
        self.with(|c| c.remove(i))
    }

    /// The validators the next batch will carry, as it will carry them.
    pub fn next_validators(&self) -> Vec<Validator> {
        self.with(|c| Ok(c.entries()))
    }

    /// Batches below `n` answer "not found" from now on.
    pub fn prune_below(&self, n: u64) {
        self.with(|c| {
            c.pruned_below = c.pruned_below.max(n);
            Ok(())
        })
    }

    /// What `/params` answers; producing a batch then prunes all but the last `n`, as the chain does.
    pub fn set_num_batches_to_keep(&self, n: u64) {
        self.with(|c| {
            c.num_batches_to_keep = n;
            Ok(())
        })
    }

    /// Batch `n` as the chain holds it (unsigned: no signatures), faults and pruning aside.
    pub fn batch(&self, n: u64) -> SignedBatch {
        self.with(|c| c.stored(n).map(|s| s.batch.clone()))
    }

    /// The validators of batch `n` (who sign batch `n + 1`).
    pub fn validators_of(&self, n: u64) -> Vec<Validator> {
        self.batch(n).validators
    }

    /// The highest signed batch.
    pub fn latest_signed(&self) -> u64 {
        self.with(|c| Ok(c.latest_signed()))
    }

    /// The highest batch, signed or not.
    pub fn latest(&self) -> u64 {
        self.with(|c| Ok(c.batches.len() as u64 - 1))
    }

    /// The next `k` requests under `/seda-chain/` answer `status` with a gRPC-gateway error.
    pub fn fail_next(&self, k: u64, status: u16) {
        self.with(|c| {
            c.faults.fail = Some((k, status));
            Ok(())
        })
    }

    /// Every answer under `/seda-chain/` waits this long first (zero: none).
    pub fn slow(&self, delay: Duration) {
        self.with(|c| {
            c.faults.delay = delay;
            Ok(())
        })
    }

    /// The next `k` requests under `/seda-chain/` answer 200 with their JSON cut in half.
    pub fn malformed_next(&self, k: u64) {
        self.with(|c| {
            c.faults.malformed = k;
            Ok(())
        })
    }

    /// Batch `n` is served with its first signature replaced by a stranger's signature of its
    /// id: it recovers, to an address that is no validator's.
    pub fn tamper_signature(&self, n: u64) {
        self.with(|c| {
            c.faults.tampered.insert(n);
            Ok(())
        })
    }

    /// Batch `n` is served with a `batch_id` that is not its id.
    pub fn wrong_id(&self, n: u64) {
        self.with(|c| {
            c.faults.wrong_id.insert(n);
            Ok(())
        })
    }

    /// Batch `n` is served with only some signatures, whose signers' power (in batch `n − 1`'s
    /// set) is below `CONSENSUS_PERCENTAGE`.
    pub fn below_threshold(&self, n: u64) {
        self.with(|c| {
            c.faults.below_threshold.insert(n);
            Ok(())
        })
    }

    /// No more faults: no failures, delay or malformed answers pending, every batch served as it is.
    pub fn clear_faults(&self) {
        self.with(|c| {
            c.faults = Faults::default();
            Ok(())
        })
    }

    /// Requests received so far, per route.
    pub fn requests(&self) -> Requests {
        self.with(|c| Ok(c.requests.clone()))
    }
}

struct Member {
    operator: String,
    key: PrivateKeySigner,
    /// Bonded power; the voting power is its share of the total.
    bonded: u64,
}

struct Stored {
    batch: SignedBatch,
    /// `current_data_result_root`, which the chain folds from the previous batch's: here a
    /// stand-in (keccak of the previous one and `data_result_root`) that differs from
    /// `data_result_root`, so that a client reading the wrong root fails the id check.
    current_root: B256,
    /// The keys of `batch.validators`, in their order: they sign the next batch.
    keys: Vec<PrivateKeySigner>,
}

#[derive(Default)]
struct Faults {
    /// Requests still to fail, and with what status.
    fail: Option<(u64, u16)>,
    malformed: u64,
    delay: Duration,
    tampered: BTreeSet<u64>,
    wrong_id: BTreeSet<u64>,
    below_threshold: BTreeSet<u64>,
}

struct Chain {
    /// The set the next batch carries, sorted by operator address.
    members: Vec<Member>,
    /// Every batch ever made, by number (pruned ones too: the test may still read them).
    batches: Vec<Stored>,
    pruned_below: u64,
    num_batches_to_keep: u64,
    operators_made: u64,
    faults: Faults,
    requests: Requests,
}

impl Chain {
    fn stored(&self, n: u64) -> Result<&Stored, String> {
        self.batches
            .get(n as usize)
            .ok_or_else(|| format!("no batch {n} (latest is {})", self.batches.len() - 1))
    }

    fn latest_signed(&self) -> u64 {
        let signed = self.batches.iter().rposition(|s| !s.batch.signatures.is_empty());
        signed.expect("batch 0 is signed") as u64
    }

    /// Adds a member with a new operator address and key; returns the operator address.
    fn add(&mut self, bonded: u64) -> String {
        self.operators_made += 1;
        let operator = operator_address(self.operators_made);
        let member = Member { operator: operator.clone(), key: PrivateKeySigner::random(), bonded };
        let at = self.members.partition_point(|m| m.operator < operator);
        self.members.insert(at, member);
        operator
    }

    fn remove(&mut self, i: usize) -> Result<(), String> {
        if i >= self.members.len() || self.members.len() == 1 {
            return Err(format!("cannot remove validator {i} of {}", self.members.len()));
        }
        self.members.remove(i);
        Ok(())
    }

    fn rotate_keys(&mut self, k: usize) -> Result<(), String> {
        if k > self.members.len() {
            return Err(format!("cannot rotate {k} keys of {} validators", self.members.len()));
        }
        for member in &mut self.members[..k] {
            member.key = PrivateKeySigner::random();
        }
        Ok(())
    }

    fn set_powers(&mut self, powers: &[u32]) -> Result<(), String> {
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
    fn entries(&self) -> Vec<Validator> {
        let total: u64 = self.members.iter().map(|m| m.bonded).sum();
        let entries = self.members.iter().map(|m| Validator {
            operator: m.operator.clone(),
            eth_address: m.key.address(),
            power: (u128::from(m.bonded) * u128::from(FULL_POWER) / u128::from(total.max(1))) as u32,
        });
        entries.collect()
    }

    /// The next batch, unsigned, carrying the members as they are now.
    fn create(&mut self) -> u64 {
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
    fn sign(&mut self, n: u64) {
        let n = n as usize;
        let signers = &self.batches[n.saturating_sub(1)];
        let id = self.batches[n].batch.batch_id;
        let signatures = (signers.batch.validators.iter().zip(&signers.keys))
            .map(|(v, key)| Signature { operator: v.operator.clone(), bytes: sign(key, id) })
            .collect();
        self.batches[n].batch.signatures = signatures;
    }

    fn sign_pending(&mut self) -> Option<u64> {
        let last = self.batches.len() as u64 - 1;
        let pending = self.batches[last as usize].batch.signatures.is_empty();
        pending.then(|| {
            self.sign(last);
            last
        })
    }

    fn produce(&mut self, n: usize) -> Vec<u64> {
        self.sign_pending();
        (0..n)
            .map(|_| {
                let number = self.create();
                self.sign(number);
                number
            })
            .collect()
    }

    fn produce_unsigned(&mut self) -> u64 {
        self.sign_pending();
        self.create()
    }

    /// Batch `n` as the API serves it: `None` when missing or pruned; with its faults applied.
    fn served(&self, n: u64) -> Option<SignedBatch> {
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
    fn answer(&mut self, request: &Request) -> (u16, Value) {
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

    fn batch_answer(&self, n: u64) -> (u16, Value) {
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
    fn batches_answer(&self, query: &BTreeMap<String, String>) -> (u16, Value) {
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
fn operator_address(n: u64) -> String {
    const BECH32: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let hash = keccak256(n.to_be_bytes());
    let seed = [hash.as_slice(), &keccak256(hash)[..6]].concat();
    let tail: String = seed.iter().take(38).map(|b| BECH32[usize::from(b % 32)] as char).collect();
    format!("sedavaloper1{tail}")
}

/// `r ‖ s ‖ v` of the raw `id`, v ∈ {0, 1}, s low (as the chain stores a vote extension).
fn sign(key: &PrivateKeySigner, id: B256) -> [u8; 65] {
    key.sign_hash_sync(&id).expect("a local key signs").normalized_s().as_rsy()
}

fn random_b256() -> B256 {
    let mut bytes = [0u8; 32];
    fastrand::fill(&mut bytes);
    B256::from(bytes)
}

/// A gRPC-gateway error: `{code, message, details}`.
fn grpc_error(code: u32, message: String) -> Value {
    json!({ "code": code, "message": message, "details": [] })
}

fn not_found(message: String) -> (u16, Value) {
    (404, grpc_error(5, message))
}

fn bad_request(message: String) -> (u16, Value) {
    (400, grpc_error(3, message))
}

fn bad_number(parameter: &str, value: &str) -> (u16, Value) {
    bad_request(format!(
        "type mismatch, parameter: {parameter}, error: strconv.ParseUint: parsing {value:?}: invalid syntax"
    ))
}

fn not_implemented() -> (u16, Value) {
    (404, json!({ "code": 12, "message": "Not Implemented" }))
}

/// What `fail_next(_, status)` answers: the gRPC code a gateway maps to that status.
fn injected_failure(status: u16) -> Value {
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

fn status_line(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    };
    format!("{status} {reason}")
}

async fn serve(stream: TcpStream, chain: &SedaChain, extra: Option<&ExtraRoutes>) -> std::io::Result<()> {
    let Some((mut stream, request)) = read_head(stream).await? else { return Ok(()) };
    if !request.path.starts_with("/seda-chain/") {
        let (status, body) = match extra.and_then(|routes| routes(chain, &request)) {
            Some(answer) => answer,
            None => not_implemented(),
        };
        return respond(&mut stream, &status_line(status), &[], body.to_string().as_bytes()).await;
    }
    let (delay, status, body) = {
        let mut state = chain.state.lock().expect("the SEDA chain's state");
        let (status, body) = state.answer(&request);
        let faults = &mut state.faults;
        let (status, body) = match faults.fail {
            Some((k, failure)) if k > 0 => {
                faults.fail = Some((k - 1, failure));
                (failure, injected_failure(failure).to_string().into_bytes())
            }
            _ if faults.malformed > 0 => {
                faults.malformed -= 1;
                let full = body.to_string().into_bytes();
                (200, full[..full.len() / 2].to_vec())
            }
            _ => (status, body.to_string().into_bytes()),
        };
        (faults.delay, status, body)
    };
    tokio::time::sleep(delay).await;
    respond(&mut stream, &status_line(status), &[], &body).await
}

/// Reads one request (`http::read_request_with_line`) and parses its line: method, path, query.
/// `None` when the client left.
async fn read_head(stream: TcpStream) -> std::io::Result<Option<(TcpStream, Request)>> {
    let Some((stream, line, _body)) = read_request_with_line(stream).await? else { return Ok(None) };
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let url = url::Url::parse(&format!("http://seda{target}"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{target}: {e}")))?;
    let query = url.query_pairs().into_owned().collect();
    Ok(Some((stream, Request { method, path: url.path().to_string(), query })))
}
