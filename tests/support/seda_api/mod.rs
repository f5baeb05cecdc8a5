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
//! One request per connection, `Connection: close` (`http.rs`). The chain's state and the route
//! answers are in `chain.rs`, the HTTP side in `serve.rs`.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry::seda::{FULL_POWER, SignedBatch, Validator};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod chain;
mod serve;

use self::chain::{Chain, Faults};

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
                    let _ = serve::serve(stream, &chain, extra.as_ref()).await;
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
