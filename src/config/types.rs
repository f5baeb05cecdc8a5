//! The serde types of `ferry.yaml`, as written: the whole schema (`config-examples/full.yaml`
//! shows every key), nothing else.
//!
//! Every struct denies unknown fields. Names (of chains, sources, targets) are map keys, so that
//! routes and sources refer to them by name. Values that need checking beyond their type
//! (addresses, event declarations, env vars) stay as written here; `validate` checks them, reports
//! every problem at once with its line and column, and resolves them into `resolve::Resolved`,
//! which is all the engine reads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::values::{Duration, Gwei};

/// The whole config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Path of the redb state file; relative paths are relative to the config file.
    /// Default: `ferry.redb` next to the config file. `--store` overrides it.
    #[serde(default)]
    pub store: Option<PathBuf>,
    #[serde(default)]
    pub chains: BTreeMap<String, Chain>,
    #[serde(default)]
    pub sources: BTreeMap<String, Source>,
    #[serde(default)]
    pub targets: BTreeMap<String, Target>,
    #[serde(default)]
    pub routes: Vec<Route>,
    /// What `watch` tells monitoring: the metrics address, heartbeats, readiness thresholds.
    #[serde(default)]
    pub health: Health,
}

/// `health:` — what `watch` serves to monitoring and when it calls itself not ready.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Where `watch` serves `/metrics`, `/healthz` and `/readyz` (`host:port`); none by default.
    /// `watch --metrics-addr` overrides it.
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// A status line per destination chain this often, even when nothing changes.
    #[serde(default = "defaults::status_interval")]
    pub status_interval: Duration,
    /// `/readyz`: a source not caught up for longer than this is not ready (a source's own
    /// `max_lag` overrides it).
    #[serde(default = "defaults::max_lag")]
    pub max_lag: Duration,
    /// `/readyz`: a destination whose oldest unsettled delivery, or whose problem, is older than
    /// this is stuck.
    #[serde(default = "defaults::stuck_after")]
    pub stuck_after: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            metrics_addr: None,
            status_interval: defaults::status_interval(),
            max_lag: defaults::max_lag(),
            stuck_after: defaults::stuck_after(),
        }
    }
}

/// An EVM network, as a source or a destination.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Chain {
    pub chain_id: u64,
    /// RPC URLs, tried in order (failover).
    pub rpc: Vec<String>,
    /// Depth at which a block counts as final (default 12). Exclusive with `finality`. `0`
    /// follows the tip and handles reorgs with the stored block hashes.
    #[serde(default)]
    pub confirmations: Option<u64>,
    /// Use the node's `safe` or `finalized` block tag instead of a depth.
    #[serde(default)]
    pub finality: Option<FinalityTag>,
    #[serde(default = "defaults::poll_interval")]
    pub poll_interval: Duration,
    #[serde(default = "defaults::max_block_range")]
    pub max_block_range: u64,
    /// Under `confirmations: 0`, how many recent block hashes each source keeps to find the common
    /// ancestor after a reorg; a deeper reorg stops the source with an error.
    #[serde(default = "defaults::reorg_window")]
    pub reorg_window: u64,
    /// Requests per second to this chain's RPCs; unlimited when absent.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// Per-request timeout.
    #[serde(default = "defaults::request_timeout")]
    pub request_timeout: Duration,
    /// The key that signs transactions to this chain (destinations only).
    #[serde(default)]
    pub signer: Option<Signer>,
    /// `check-config --online`, and `watch`/`push` while running, warn when the signer holds
    /// less than this, in ether (e.g. `0.05`).
    #[serde(default)]
    pub min_balance: Option<Ether>,
    #[serde(default)]
    pub gas: Option<GasPolicy>,
    /// Signed, not yet mined transactions to this chain at most (destinations; default 64):
    /// common nodes keep far fewer queued transactions per account than a backlog can make.
    // Absent keys stay out of the config's fingerprint, which older configs were taken with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalityTag {
    Safe,
    Finalized,
}

/// Where a signing key comes from. The key itself never appears in the config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// Name of an environment variable holding a hex private key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// Path of an encrypted JSON keystore file (relative to the config file)...
    #[serde(default)]
    pub keystore: Option<PathBuf>,
    /// ...and the environment variable holding its password.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// An amount of ether written as a decimal (`0.05`, `"1.5"`), kept as written and parsed by validation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Ether(pub serde_json::Value);

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GasPolicy {
    /// Hard cap on the max fee per gas (legacy: gas price), in gwei.
    pub max_fee_gwei: Gwei,
    /// Priority fee per gas, in gwei; the node's suggestion when absent.
    #[serde(default)]
    pub priority_fee_gwei: Option<Gwei>,
    /// How much a replacement raises both fees, in percent (nodes require at least 10).
    #[serde(default = "defaults::bump_percent")]
    pub bump_percent: u32,
    /// Replace a transaction not mined after this long.
    #[serde(default = "defaults::bump_after")]
    pub bump_after: Duration,
    /// Send legacy (type 0) transactions instead of EIP-1559.
    #[serde(default)]
    pub legacy: bool,
}

/// Where items come from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    Evm(EvmSource),
    Seda(SedaSource),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvmSource {
    /// Name of a chain in `chains`.
    pub chain: String,
    /// First block to ingest when the store has no cursor yet.
    #[serde(default)]
    pub start_block: u64,
    #[serde(default)]
    pub contracts: Vec<StaticContract>,
    #[serde(default)]
    pub factories: Vec<Factory>,
    /// Children are fetched with an address list up to this many; above it, by topic only and
    /// filtered against the registry. Either way it is one `eth_getLogs` per range.
    #[serde(default = "defaults::max_addresses")]
    pub max_addresses: usize,
    /// `/readyz`: this source's lag budget (default: `health.max_lag`).
    #[serde(default)]
    pub max_lag: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticContract {
    #[serde(default)]
    pub name: Option<String>,
    pub address: String,
    /// Solidity event declarations, e.g. `event Transfer(address indexed from, address indexed to, uint256 value)`.
    pub events: Vec<String>,
}

/// A contract whose event names a child contract; the children's events are watched too.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Factory {
    #[serde(default)]
    pub name: Option<String>,
    pub address: String,
    /// The creation event, as a Solidity declaration.
    pub event: String,
    /// The parameter of `event` that holds the child's address.
    pub child_param: String,
    /// Events emitted by the children, as Solidity declarations.
    pub child_events: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SedaSource {
    /// Base URL of the SEDA chain's REST API, or a list of them (failover in order).
    pub url: OneOrMany,
    /// First batch to fetch and deliver when the store has no cursor yet; ferry also keeps the
    /// batch before it, whose validators signed it. Default: the latest signed batch.
    #[serde(default)]
    pub start_batch: Option<u64>,
    #[serde(default = "defaults::seda_poll_interval")]
    pub poll_interval: Duration,
    #[serde(default = "defaults::request_timeout")]
    pub request_timeout: Duration,
    /// Requests per second to the API; unlimited when absent.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// `/readyz`: this source's lag budget (default: `health.max_lag`).
    #[serde(default)]
    pub max_lag: Option<Duration>,
}

/// One string, or a list of them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Where items go.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Target {
    SedaProver(SedaProverTarget),
    EvmCall(EvmCallTarget),
    Webhook(WebhookTarget),
    Jsonl(JsonlTarget),
    RedisStream(RedisStreamTarget),
    NatsJetstream(NatsJetstreamTarget),
    GcpPubsub(GcpPubsubTarget),
}

impl Target {
    /// A sink: items handed over as messages, on no chain.
    pub fn is_sink(&self) -> bool {
        !matches!(self, Target::SedaProver(_) | Target::EvmCall(_))
    }
}

/// Post SEDA batches to a Prover (or a Core, whose prover is read on-chain) on each chain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SedaProverTarget {
    /// Chain name → contract.
    pub chains: BTreeMap<String, ProverContract>,
    /// `every` signed batch in order (default), or only the `latest` plus the intermediate
    /// batches a validator-set change needs.
    #[serde(default)]
    pub mode: ProverMode,
    /// The gas limit of a post is the node's estimate × this (1.0–10.0, default 1.2) + 5,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_limit_multiplier: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProverMode {
    #[default]
    Every,
    Latest,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProverContract {
    #[serde(default)]
    pub prover: Option<String>,
    #[serde(default)]
    pub core: Option<String>,
}

/// Call one function on a contract on each chain, arguments taken from the item.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvmCallTarget {
    /// Solidity declaration, e.g. `function postBatch(uint64 height, bytes32 root)`.
    pub function: String,
    /// Function parameter name → where its value comes from.
    #[serde(default)]
    pub args: BTreeMap<String, CallArg>,
    /// Chain name → contract address.
    pub chains: BTreeMap<String, String>,
    #[serde(default)]
    pub already_done: Option<AlreadyDone>,
    /// Custom errors the contract may revert with, as Solidity declarations
    /// (`error EmptyRoot()`), so that a failed delivery names the error and its arguments.
    #[serde(default)]
    pub errors: Vec<String>,
    /// The gas limit of a call is the node's estimate × this (1.0–10.0, default 1.2) + 5,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_limit_multiplier: Option<f64>,
}

impl EvmCallTarget {
    /// The arguments as [`CallDecl`](crate::abi::call::CallDecl) takes them.
    pub fn arg_decls(&self) -> Vec<(String, crate::abi::call::ArgDecl<'_>)> {
        self.args
            .iter()
            .map(|(name, arg)| {
                (
                    name.clone(),
                    crate::abi::call::ArgDecl { field: arg.field.as_deref(), value: arg.value.as_ref() },
                )
            })
            .collect()
    }

    /// The target's declarations, for [`CallPlan::new`](crate::abi::call::CallPlan::new).
    pub fn call_decl<'a>(
        &'a self,
        args: &'a [(String, crate::abi::call::ArgDecl<'a>)],
    ) -> crate::abi::call::CallDecl<'a> {
        crate::abi::call::CallDecl {
            function: &self.function,
            args,
            already_done: self.already_done.as_ref().map(|d| crate::abi::call::DoneDecl {
                view: d.view.as_deref(),
                compare: d.compare.as_deref(),
                revert_errors: &d.revert_errors,
            }),
            errors: &self.errors,
        }
    }
}

/// One argument: an item field (`field: height`) or a literal (`value: 0x…`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CallArg {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub value: Option<serde_json::Value>,
}

/// How to tell that an item is already on a destination.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlreadyDone {
    /// A view function, e.g. `function lastBatchHeight() view returns (uint64)`.
    #[serde(default)]
    pub view: Option<String>,
    /// Comparison of the view's result with an item field, e.g. `>= height`.
    #[serde(default)]
    pub compare: Option<String>,
    /// Revert errors that mean "already there", e.g. `BatchAlreadyExists(uint64)`.
    #[serde(default)]
    pub revert_errors: Vec<String>,
}

/// POST each item as JSON to a URL, signed with an HMAC of the body when `secret_env` is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    pub url: String,
    /// Environment variable holding the HMAC-SHA256 key that signs each body.
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "defaults::request_timeout")]
    pub timeout: Duration,
    /// Requests in flight at once (default 16).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// One request at a time, in item order per source (default false).
    #[serde(default)]
    pub ordered: bool,
    /// Attempts with backoff before a delivery shows as failed (retryable); default 10.
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

/// Append one JSON line per item to a file, or to stdout.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlTarget {
    /// A file path (relative to the config file), or `-` for stdout.
    pub path: PathBuf,
}

/// `XADD` each item to a Redis stream.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisStreamTarget {
    /// `redis://` or `rediss://` (TLS); a password in the URL is a secret like any other.
    pub url: String,
    pub stream: String,
    /// Approximate cap on the stream's length (`XADD MAXLEN ~`).
    #[serde(default)]
    pub maxlen: Option<u64>,
    /// Environment variable holding the password (AUTH), instead of one in the URL.
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default = "defaults::request_timeout")]
    pub timeout: Duration,
}

/// Publish each item to a NATS JetStream subject, `Nats-Msg-Id` set to its idempotency key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatsJetstreamTarget {
    /// `nats://host:port` (`tls://` for TLS); credentials in the URL are secrets.
    pub url: String,
    pub subject: String,
    /// The stream that must capture `subject`; `check-config --online` checks it does.
    pub stream: String,
    /// Environment variable holding an auth token, instead of one in the URL.
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default = "defaults::request_timeout")]
    pub timeout: Duration,
}

/// Publish each item to a Google Cloud Pub/Sub topic.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GcpPubsubTarget {
    pub project: String,
    pub topic: String,
    /// A service-account key file (relative to the config file); the environment's default
    /// credentials when absent. Neither is used when `PUBSUB_EMULATOR_HOST` is set.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Set the source's name as the ordering key, so a subscription with ordering gets each
    /// source's items in order (default false).
    #[serde(default)]
    pub ordering_key: bool,
    #[serde(default = "defaults::request_timeout")]
    pub timeout: Duration,
    /// Attempts with backoff before a delivery shows as failed (retryable); default 10.
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

/// `source → [targets]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub source: String,
    pub targets: Vec<String>,
    /// Only items of these event names (EVM sources); every decoded event when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Also deliver the events the store already holds (EVM sources): each time the source
    /// starts (`watch`, its reload on SIGHUP, `push`, `backfill`), a stored event gets the
    /// deliveries of this route it lacks, so that a target or chain added to the route gets the
    /// past too. Default false: a route delivers what is ingested after it was added.
    #[serde(default)]
    pub deliver_existing: bool,
}

mod defaults {
    use super::Duration;

    pub fn poll_interval() -> Duration {
        Duration::from_secs(2)
    }
    pub fn seda_poll_interval() -> Duration {
        Duration::from_secs(5)
    }
    pub fn request_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn bump_after() -> Duration {
        Duration::from_secs(60)
    }
    pub fn max_block_range() -> u64 {
        2_000
    }
    pub fn reorg_window() -> u64 {
        64
    }
    pub fn max_addresses() -> usize {
        1_000
    }
    pub fn bump_percent() -> u32 {
        12
    }
    pub fn status_interval() -> Duration {
        Duration::from_secs(30)
    }
    pub fn max_lag() -> Duration {
        Duration::from_secs(5 * 60)
    }
    pub fn stuck_after() -> Duration {
        Duration::from_secs(10 * 60)
    }
}
