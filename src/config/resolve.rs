//! The resolved config: what validation turns `ferry.yaml` into (ripgrep's low-args → high-args
//! step). Addresses are addresses, declarations are parsed (`crate::abi`), defaults are applied,
//! and every name refers to something that exists. The engine reads only this: it never parses a
//! declaration, an address or a duration again, and the rules of each kind live in one place
//! (`validate.rs`, and `abi::call` for `evm-call`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};

use super::types::{FinalityTag, GasPolicy, ProverMode};
use crate::abi::call::CallPlan;
use crate::abi::events::EventSet;

/// Default depth when a chain sets neither `confirmations` nor `finality`.
pub const DEFAULT_CONFIRMATIONS: u64 = 12;

/// A config that validated, ready for the engine.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Chain name → chain.
    pub chains: BTreeMap<String, ChainPlan>,
    /// Every `evm` source, with the routes of its items.
    pub sources: Vec<SourcePlan>,
    /// Every `seda` source, with the routes of its batches.
    pub seda_sources: Vec<SedaSourcePlan>,
    /// Target name → target.
    pub targets: BTreeMap<String, TargetPlan>,
    /// Chain name → every contract address the config names on it, with its key (for the online
    /// check that code is there).
    pub contracts: BTreeMap<String, Vec<(String, Address)>>,
    /// What `watch` tells monitoring.
    pub health: HealthPlan,
}

/// `health:`, checked: where `watch` serves metrics, how often it says how each chain is, and
/// what readiness allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPlan {
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub status_interval: Duration,
    pub stuck_after: Duration,
    /// The lag budget of sources without their own.
    pub max_lag: Duration,
    /// Per source name, for sources with their own `max_lag`.
    pub lag_budgets: BTreeMap<String, Duration>,
}

impl Default for HealthPlan {
    fn default() -> Self {
        let h = super::types::Health::default();
        HealthPlan {
            metrics_addr: None,
            status_interval: h.status_interval.0,
            stuck_after: h.stuck_after.0,
            max_lag: h.max_lag.0,
            lag_budgets: BTreeMap::new(),
        }
    }
}

impl Resolved {
    /// The sources named, in the order given (every source when `names` is empty); an unknown
    /// name is returned as the error.
    pub fn sources_named(&self, names: &[String]) -> Result<Vec<SourcePlan>, String> {
        if names.is_empty() {
            return Ok(self.sources.clone());
        }
        names
            .iter()
            .map(|name| self.sources.iter().find(|s| &s.name == name).cloned().ok_or_else(|| name.clone()))
            .collect()
    }
}

/// One chain, as a source and as a destination.
#[derive(Debug, Clone)]
pub struct ChainPlan {
    pub name: String,
    pub chain_id: u64,
    /// RPC URLs in failover order (checked `http(s)` URLs).
    pub rpc: Vec<String>,
    /// Where ingest stops reading.
    pub finality: Finality,
    /// Blocks on top of (and including) a receipt's before a delivery counts as confirmed.
    pub delivery_confirmations: u64,
    pub poll_interval: Duration,
    pub max_block_range: u64,
    pub reorg_window: u64,
    pub rate_limit: Option<u32>,
    pub request_timeout: Duration,
    pub signer: Option<SignerSpec>,
    /// In wei.
    pub min_balance: Option<U256>,
    pub gas: Option<GasPolicy>,
    /// Signed, unmined transactions at most (`None`: the command's default).
    pub max_in_flight: Option<usize>,
}

/// Where a signing key comes from; loaded by `config::signer::load` when a worker starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerSpec {
    /// An environment variable holding a hex private key.
    Env { var: String },
    /// An encrypted JSON keystore (path resolved against the config's directory) and the
    /// variable holding its password.
    Keystore { path: PathBuf, password_env: String },
}

/// Where a source stops reading: a depth below the head, or a block tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finality {
    Confirmations(u64),
    Tag(FinalityTag),
}

impl Finality {
    /// Following the tip: every range is checked against the stored hash window.
    pub fn is_tip(self) -> bool {
        self == Finality::Confirmations(0)
    }
}

/// A factory, ready to use.
#[derive(Debug, Clone)]
pub struct FactoryPlan {
    pub address: Address,
    pub creation: EventSet,
    pub creation_topic: B256,
    pub child_param: String,
    pub child_events: EventSet,
}

/// One `evm` source.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    pub name: String,
    pub chain: String,
    pub chain_id: u64,
    pub start_block: u64,
    pub finality: Finality,
    pub reorg_window: u64,
    pub max_block_range: u64,
    pub poll_interval: Duration,
    pub max_addresses: usize,
    /// Configured contracts and factories, each with the events declared for it.
    pub statics: BTreeMap<Address, EventSet>,
    pub factories: Vec<FactoryPlan>,
    /// topic0 of every child event of every factory, sorted.
    pub child_topics: Vec<B256>,
    /// Where this source's events go: one delivery per decoded event, target and chain.
    pub routes: Vec<RoutePlan>,
}

/// One target a source's events are delivered to.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    pub target: String,
    /// The target's id in the store; set when the source opens its store.
    pub target_id: u32,
    pub chain_ids: Vec<u64>,
    /// Only events of these names; all decoded events when `None`.
    pub events: Option<Vec<String>>,
    /// Stored events get this route's deliveries they lack when the source opens.
    pub deliver_existing: bool,
}

impl RoutePlan {
    /// Whether an event of this name (`None`: no declaration matched it) goes this route.
    pub fn wants(&self, name: Option<&str>) -> bool {
        match (&self.events, name) {
            (None, _) => true,
            (Some(names), Some(name)) => names.iter().any(|n| n == name),
            (Some(_), None) => false,
        }
    }
}

/// One `seda` source: the batching REST API of a SEDA chain.
#[derive(Debug, Clone)]
pub struct SedaSourcePlan {
    pub name: String,
    /// Base URLs in failover order (checked `http(s)` URLs, no trailing slash).
    pub urls: Vec<String>,
    /// The first batch to deliver when the store has no cursor; the latest signed one if `None`.
    pub start_batch: Option<u64>,
    pub poll_interval: Duration,
    pub request_timeout: Duration,
    pub rate_limit: Option<u32>,
    /// Where this source's batches go: one delivery per batch, target and chain.
    pub routes: Vec<RoutePlan>,
}

/// A target ferry can deliver to: a contract call, a SEDA Prover, or a sink.
#[derive(Debug, Clone)]
pub enum TargetPlan {
    EvmCall(EvmCallPlan),
    SedaProver(ProverPlan),
    /// A sink: no chain, one delivery per item (destination chain id [`SINK_CHAIN`]).
    Sink(SinkPlan),
}

impl TargetPlan {
    /// Chain name of every destination; none for a sink.
    pub fn chain_names(&self) -> Vec<&String> {
        match self {
            TargetPlan::EvmCall(t) => t.chains.keys().collect(),
            TargetPlan::SedaProver(t) => t.chains.keys().collect(),
            TargetPlan::Sink(_) => Vec::new(),
        }
    }
}

pub use crate::store::keys::SINK_CHAIN;

/// A secret taken from the environment (or a URL): shown as `***` by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A sink target: where items are handed over as messages, with how the worker retries.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    pub kind: SinkKind,
    /// Attempts with backoff and jitter before a delivery shows as failed (still retryable).
    pub max_attempts: u32,
    /// Messages in flight at once.
    pub concurrency: usize,
    /// One message at a time, in item order per source.
    pub ordered: bool,
}

/// Default attempts before a sink delivery shows as failed (retryable).
pub const DEFAULT_SINK_ATTEMPTS: u32 = 10;
/// Default requests in flight for HTTP sinks.
pub const DEFAULT_SINK_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub enum SinkKind {
    Webhook(WebhookPlan),
    Jsonl(JsonlPlan),
    RedisStream(RedisStreamPlan),
    NatsJetstream(NatsPlan),
    GcpPubsub(PubsubPlan),
}

impl SinkKind {
    /// The `kind:` of the config.
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::Webhook(_) => "webhook",
            SinkKind::Jsonl(_) => "jsonl",
            SinkKind::RedisStream(_) => "redis-stream",
            SinkKind::NatsJetstream(_) => "nats-jetstream",
            SinkKind::GcpPubsub(_) => "gcp-pubsub",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebhookPlan {
    /// A checked `http(s)` URL.
    pub url: String,
    /// The HMAC-SHA256 key, from `secret_env`.
    pub secret: Option<Secret>,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct JsonlPlan {
    /// Resolved against the config's directory; `None` is stdout (`path: -`).
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct RedisStreamPlan {
    /// A checked `redis(s)` URL; it may hold a password, so it is a secret.
    pub url: Secret,
    pub stream: String,
    pub maxlen: Option<u64>,
    /// From `password_env`.
    pub password: Option<Secret>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct NatsPlan {
    /// A checked `nats`/`tls` URL; it may hold credentials, so it is a secret.
    pub url: Secret,
    pub subject: String,
    pub stream: String,
    /// From `token_env`.
    pub token: Option<Secret>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct PubsubPlan {
    pub project: String,
    pub topic: String,
    /// Resolved against the config's directory.
    pub credentials_file: Option<PathBuf>,
    pub ordering_key: bool,
    pub timeout: Duration,
}

/// A `seda-prover` target: a Prover (or a Core that names it) per chain.
#[derive(Debug, Clone)]
pub struct ProverPlan {
    pub mode: ProverMode,
    /// Chain name → where the Prover is.
    pub chains: BTreeMap<String, ProverAt>,
    /// The margin on gas estimates, in thousandths ([`GasMargin`]).
    pub gas_margin: GasMargin,
}

/// How a target's gas limit is made from the node's estimate: × `per_mille` / 1000, + 5,000 gas
/// for state that changes between the estimate and the block. `gas_limit_multiplier` in the
/// config, checked to 1.0–10.0; 1.2 (1200) by default, the margin ferry has always used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasMargin {
    pub per_mille: u32,
}

impl GasMargin {
    pub const DEFAULT: GasMargin = GasMargin { per_mille: 1200 };
    /// The multipliers the config accepts.
    pub const RANGE: std::ops::RangeInclusive<f64> = 1.0..=10.0;

    /// The gas limit for an estimate of `gas`.
    pub fn limit(self, gas: u64) -> u64 {
        let scaled = u128::from(gas) * u128::from(self.per_mille) / 1000;
        u64::try_from(scaled).unwrap_or(u64::MAX).saturating_add(5_000)
    }
}

impl Default for GasMargin {
    fn default() -> Self {
        GasMargin::DEFAULT
    }
}

/// Where a chain's Prover is: its address, or a Core whose `getSedaProver()` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProverAt {
    Prover(Address),
    Core(Address),
}

/// An `evm-call` target: one plan, a contract per chain.
#[derive(Debug, Clone)]
pub struct EvmCallPlan {
    pub plan: Arc<CallPlan>,
    /// Chain name → contract.
    pub chains: BTreeMap<String, Address>,
    pub gas_margin: GasMargin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_takes_the_events_it_names_or_every_decoded_one() {
        let route = |events: Option<&[&str]>| RoutePlan {
            target: "t".into(),
            target_id: 1,
            chain_ids: vec![5],
            events: events.map(|e| e.iter().map(|s| s.to_string()).collect()),
            deliver_existing: false,
        };
        // (events named by the route, the event's name, taken)
        type Case<'a> = (Option<&'a [&'a str]>, Option<&'a str>, bool);
        let cases: [Case; 5] = [
            (None, Some("Approved"), true),
            (None, None, true),
            (Some(&["Approved"]), Some("Approved"), true),
            (Some(&["Approved"]), Some("Created"), false),
            (Some(&["Approved"]), None, false),
        ];
        for (events, name, taken) in cases {
            assert_eq!(route(events).wants(name), taken, "{events:?} {name:?}");
        }
    }
}
