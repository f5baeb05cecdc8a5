//! `check-config --online`: talks to every configured chain and reports what a config cannot show
//! offline — each RPC URL's chain id and latency, whether configured contract addresses have code,
//! whether each signer holds enough to pay for gas, whether each `evm-call` target's
//! `already_done` view answers (called once per chain, with the zero value of every parameter:
//! delivery asks it before every send, so a view that reverts is an error naming the target, the
//! chain and the view), and whether the chain's fee cap is above the current base fee (a
//! warning: transactions would wait). Chains are checked concurrently; every request is bounded
//! by the chain's `request_timeout`.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes, U64, U256};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::signer;
use crate::config::{ChainPlan, Resolved, Severity, TargetPlan, mask_url};
use crate::engine::rpc::{ChainRpc, Clients};

/// Everything `--online` found, per chain.
#[derive(Debug, Clone, Serialize)]
pub struct OnlineReport {
    pub chains: Vec<ChainReport>,
    /// Each URL of each `seda` source's batching API.
    pub apis: Vec<ApiReport>,
    /// Problems with the batching APIs (`chain` holds the source's name).
    #[serde(skip)]
    pub api_findings: Vec<Finding>,
    /// Each sink target, reached the way delivery reaches it.
    pub sinks: Vec<SinkReport>,
    /// Problems with the sinks (`chain` holds the target's name).
    #[serde(skip)]
    pub sink_findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SinkReport {
    pub target: String,
    pub kind: &'static str,
    pub reachable: bool,
    /// What the sink said (a status, `PONG`, the stream's subjects), or why it could not be reached.
    pub detail: String,
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiReport {
    pub source: String,
    /// The URL with credentials masked.
    pub url: String,
    pub reachable: bool,
    /// The latest signed batch it serves.
    pub latest_signed: Option<u64>,
    pub latency_ms: Option<f64>,
}

impl OnlineReport {
    /// Every problem found, in chain order.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.chains
            .iter()
            .flat_map(|c| c.findings.iter())
            .chain(self.api_findings.iter())
            .chain(self.sink_findings.iter())
    }

    pub fn has_errors(&self) -> bool {
        self.findings().any(|f| f.severity == Severity::Error)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub chain: String,
    pub chain_id: u64,
    pub rpcs: Vec<RpcReport>,
    pub contracts: Vec<ContractReport>,
    pub signer: Option<SignerReport>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RpcReport {
    /// The URL with credentials masked.
    pub url: String,
    pub reachable: bool,
    pub chain_id: Option<u64>,
    pub head: Option<u64>,
    /// Median round trip of three `eth_blockNumber` calls.
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContractReport {
    /// Where the address is configured, e.g. `sources.escrows.factories[0].address`.
    pub key: String,
    pub address: Address,
    pub has_code: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignerReport {
    pub address: Option<Address>,
    /// Balance in wei, as a decimal string (JSON numbers cannot hold it).
    pub balance_wei: Option<String>,
    pub min_balance_wei: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub chain: String,
    /// The config key the finding is about.
    pub key: String,
    pub severity: Severity,
    pub message: String,
}

/// What to check on one chain, gathered from the whole config.
#[derive(Debug, Clone)]
struct Plan {
    name: String,
    chain: ChainPlan,
    rpc: ChainRpc,
    contracts: Vec<(String, Address)>,
    /// Minimum balance for the signer in wei; 1 wei ("not empty") when `min_balance` is unset.
    min_balance: U256,
    /// The already-done views of the `evm-call` targets to this chain.
    views: Vec<ViewProbe>,
}

/// One `evm-call` target's already-done view on one chain.
#[derive(Debug, Clone)]
struct ViewProbe {
    target: String,
    to: Address,
    plan: std::sync::Arc<crate::abi::call::CallPlan>,
}

/// Runs every online check, through the chains' clients (each URL probed on its own).
pub async fn check(resolved: &Resolved, clients: &Clients, cancel: &CancellationToken) -> OnlineReport {
    let mut tasks = JoinSet::new();
    for plan in plans(resolved, clients) {
        let cancel = cancel.clone();
        tasks.spawn(async move {
            tokio::select! {
                report = check_chain(plan.clone()) => report,
                () = cancel.cancelled() => interrupted(&plan),
            }
        });
    }
    let mut chains = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(report) => chains.push(report),
            Err(e) => tracing::error!("an online check task failed: {e}"),
        }
    }
    chains.sort_by(|a, b| a.chain.cmp(&b.chain));
    let (apis, api_findings) = tokio::select! {
        checked = check_apis(resolved) => checked,
        () = cancel.cancelled() => (Vec::new(), Vec::new()),
    };
    let (sinks, sink_findings) = tokio::select! {
        checked = check_sinks(resolved) => checked,
        () = cancel.cancelled() => (Vec::new(), Vec::new()),
    };
    OnlineReport { chains, apis, api_findings, sinks, sink_findings }
}

/// Reaches each sink target once, concurrently, bounded by its timeout (jsonl: the file's
/// directory is writable).
async fn check_sinks(resolved: &Resolved) -> (Vec<SinkReport>, Vec<Finding>) {
    let mut tasks = JoinSet::new();
    for (name, target) in &resolved.targets {
        let TargetPlan::Sink(plan) = target else { continue };
        let (name, plan) = (name.clone(), plan.clone());
        tasks.spawn(async move {
            let started = Instant::now();
            let bound = Duration::from_secs(30);
            let answer = match tokio::time::timeout(bound, crate::engine::sink::probe(&plan)).await {
                Ok(answer) => answer,
                Err(_) => Err(crate::engine::sink::SinkError::Unavailable(format!("no answer in {bound:?}"))),
            };
            (name, plan.kind.name(), answer, started.elapsed().as_secs_f64() * 1e3)
        });
    }
    let mut reports = Vec::new();
    let mut findings = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((target, kind, answer, ms)) = joined else { continue };
        match answer {
            Ok(detail) => {
                reports.push(SinkReport { target, kind, reachable: true, detail, latency_ms: Some(ms) })
            }
            Err(e) => {
                findings.push(Finding {
                    chain: target.clone(),
                    key: format!("targets.{target}"),
                    severity: Severity::Error,
                    message: format!("{kind} sink: {e}"),
                });
                reports.push(SinkReport {
                    target,
                    kind,
                    reachable: false,
                    detail: e.to_string(),
                    latency_ms: None,
                });
            }
        }
    }
    reports.sort_by(|a, b| a.target.cmp(&b.target));
    (reports, findings)
}

/// Asks each URL of each `seda` source for its latest signed batch, once (no retries).
async fn check_apis(resolved: &Resolved) -> (Vec<ApiReport>, Vec<Finding>) {
    let mut reports = Vec::new();
    let mut findings = Vec::new();
    for plan in &resolved.seda_sources {
        let api = match crate::engine::seda::SedaApi::new(plan) {
            Ok(api) => api,
            Err(e) => {
                findings.push(Finding {
                    chain: plan.name.clone(),
                    key: format!("sources.{}", plan.name),
                    severity: Severity::Error,
                    message: format!("cannot build an HTTP client: {e}"),
                });
                continue;
            }
        };
        for (i, url) in plan.urls.iter().enumerate() {
            let masked = mask_url(url);
            let key = if plan.urls.len() == 1 {
                format!("sources.{}.url", plan.name)
            } else {
                format!("sources.{}.url[{i}]", plan.name)
            };
            let started = Instant::now();
            let answer = api.probe_latest(i).await;
            let latency_ms = started.elapsed().as_secs_f64() * 1e3;
            let mut report = ApiReport {
                source: plan.name.clone(),
                url: masked.clone(),
                reachable: false,
                latest_signed: None,
                latency_ms: None,
            };
            match answer {
                Ok(latest) => {
                    report.reachable = true;
                    report.latest_signed = latest;
                    report.latency_ms = Some(latency_ms);
                    if let (Some(start), Some(latest)) = (plan.start_batch, latest)
                        && start > latest + 1
                    {
                        findings.push(Finding {
                            chain: plan.name.clone(),
                            key: format!("sources.{}.start_batch", plan.name),
                            severity: Severity::Warning,
                            message: format!(
                                "start_batch {start} is above the latest signed batch ({latest}) of {masked}: the source waits until the chain gets there"
                            ),
                        });
                    }
                }
                Err(e) => findings.push(Finding {
                    chain: plan.name.clone(),
                    key,
                    severity: Severity::Error,
                    message: format!("{masked} does not serve the batching API: {e}"),
                }),
            }
            reports.push(report);
        }
    }
    (reports, findings)
}

fn plans(resolved: &Resolved, clients: &Clients) -> Vec<Plan> {
    resolved
        .chains
        .iter()
        .filter_map(|(name, chain)| {
            Some(Plan {
                name: name.clone(),
                chain: chain.clone(),
                rpc: clients.get(name)?.clone(),
                contracts: resolved.contracts.get(name).cloned().unwrap_or_default(),
                min_balance: chain.min_balance.unwrap_or(U256::from(1)),
                views: resolved
                    .targets
                    .iter()
                    .filter_map(|(target, plan)| match plan {
                        TargetPlan::EvmCall(call) => call.chains.get(name).map(|to| ViewProbe {
                            target: target.clone(),
                            to: *to,
                            plan: call.plan.clone(),
                        }),
                        _ => None,
                    })
                    .collect(),
            })
        })
        .collect()
}

async fn check_chain(plan: Plan) -> ChainReport {
    let timeout = plan.chain.request_timeout;
    let mut findings = Vec::new();
    let mut finding = |key: String, severity, message: String| {
        findings.push(Finding { chain: plan.name.clone(), key, severity, message });
    };

    let mut rpcs = Vec::new();
    let mut healthy = None;
    for (i, url) in plan.chain.rpc.iter().enumerate() {
        let masked = mask_url(url);
        let key = format!("chains.{}.rpc[{i}]", plan.name);
        let report = probe_rpc(&plan.rpc, i, &masked, timeout).await;
        let served = report.as_ref().ok().and_then(|r| r.chain_id);
        match (&report, served) {
            (Err(e), _) => finding(key, Severity::Error, format!("{masked} is unreachable: {e}")),
            (Ok(r), Some(id)) if id != plan.chain.chain_id => finding(
                key,
                Severity::Error,
                format!(
                    "{masked} serves chain id {id}, but the config says chain_id {}",
                    plan.chain.chain_id
                ),
            ),
            (Ok(_), _) => {
                if healthy.is_none() {
                    healthy = Some(i);
                }
            }
        }
        rpcs.push(report.unwrap_or(RpcReport {
            url: masked,
            reachable: false,
            chain_id: None,
            head: None,
            latency_ms: None,
        }));
    }

    let mut contracts = Vec::new();
    let mut signer = None;
    if let Some(url) = healthy {
        let rpc = &plan.rpc;
        for (key, address) in &plan.contracts {
            let has_code = match code_len(rpc, url, *address, timeout).await {
                Ok(len) => Some(len > 0),
                Err(e) => {
                    finding(key.clone(), Severity::Error, format!("cannot read code at {address}: {e}"));
                    None
                }
            };
            if has_code == Some(false) {
                finding(
                    key.clone(),
                    Severity::Error,
                    format!("no contract code at {address} on chain {}", plan.chain.chain_id),
                );
            }
            contracts.push(ContractReport { key: key.clone(), address: *address, has_code });
        }
        if let Some(config) = &plan.chain.signer {
            let key = format!("chains.{}.signer", plan.name);
            let mut report = SignerReport {
                address: None,
                balance_wei: None,
                min_balance_wei: plan.min_balance.to_string(),
            };
            match signer::address(config) {
                Err(e) => finding(key, Severity::Error, e.to_string()),
                Ok(address) => {
                    report.address = Some(address);
                    match balance(rpc, url, address, timeout).await {
                        Err(e) => finding(
                            key,
                            Severity::Error,
                            format!("cannot read the balance of {address}: {e}"),
                        ),
                        Ok(wei) => {
                            report.balance_wei = Some(wei.to_string());
                            if wei < plan.min_balance {
                                finding(
                                    key,
                                    Severity::Error,
                                    format!(
                                        "signer {address} is unfunded: balance {} ETH, minimum {} ETH",
                                        format_ether(wei),
                                        format_ether(plan.min_balance)
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            signer = Some(report);
            // A destination: its fee cap against the market now.
            let fees = crate::engine::deliver::fees::FeePolicy::from_config(plan.chain.gas.as_ref());
            match base_fee(rpc, url, fees.legacy, timeout).await {
                Ok(base) if base > fees.cap => finding(
                    format!("chains.{}.gas.max_fee_gwei", plan.name),
                    Severity::Warning,
                    format!(
                        "the fee cap ({} gwei) is below the current {} ({} gwei): transactions would wait until it falls",
                        fees.cap as f64 / 1e9,
                        if fees.legacy { "gas price" } else { "base fee" },
                        base as f64 / 1e9
                    ),
                ),
                Ok(_) => {}
                Err(e) => finding(
                    format!("chains.{}.gas", plan.name),
                    Severity::Warning,
                    format!("cannot read the base fee: {e}"),
                ),
            }
        }
        for probe in &plan.views {
            let Some((view, calldata)) = probe.plan.probe_view() else { continue };
            let key = format!("targets.{}.already_done.view", probe.target);
            let at = format!("target {}, chain {}, view `{view}` at {}", probe.target, plan.name, probe.to);
            let answer = match calldata {
                Err(e) => Err(e.to_string()),
                Ok(data) => {
                    let call = serde_json::json!([{ "to": probe.to, "input": data, "data": data }, "latest"]);
                    match ask::<Bytes>(rpc, url, timeout, "eth_call", call).await {
                        Ok(returned) => probe.plan.view_output_decodes(&returned).map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                }
            };
            if let Err(e) = answer {
                finding(key, Severity::Error, format!("the already-done view fails ({at}): {e}"));
            }
        }
    } else if !plan.contracts.is_empty() || plan.chain.signer.is_some() {
        finding(
            format!("chains.{}.rpc", plan.name),
            Severity::Error,
            "no RPC URL of this chain answered with the configured chain id; contracts and signer not checked"
                .into(),
        );
    }

    ChainReport { chain: plan.name, chain_id: plan.chain.chain_id, rpcs, contracts, signer, findings }
}

fn interrupted(plan: &Plan) -> ChainReport {
    ChainReport {
        chain: plan.name.clone(),
        chain_id: plan.chain.chain_id,
        rpcs: Vec::new(),
        contracts: Vec::new(),
        signer: None,
        findings: vec![Finding {
            chain: plan.name.clone(),
            key: format!("chains.{}", plan.name),
            severity: Severity::Error,
            message: "interrupted before the check finished".into(),
        }],
    }
}

/// Errors of one online call, with the URL already masked by the caller.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Rpc(String),
}

/// One call to one URL of the chain's client, bounded by `timeout`. The error keeps the kind of
/// failure and the node's message, never the URL (it may hold credentials).
async fn ask<T: DeserializeOwned>(
    rpc: &ChainRpc,
    index: usize,
    timeout: Duration,
    method: &str,
    params: serde_json::Value,
) -> Result<T, CallError> {
    match tokio::time::timeout(timeout, rpc.probe::<T>(index, method, params)).await {
        Err(_) => Err(CallError::Timeout(timeout)),
        Ok(Err(e)) => Err(CallError::Rpc(format!("{}: {}", e.kind.as_str(), e.message))),
        Ok(Ok(None)) => Err(CallError::Rpc(format!("{method} answered null"))),
        Ok(Ok(Some(v))) => Ok(v),
    }
}

async fn probe_rpc(
    rpc: &ChainRpc,
    index: usize,
    masked: &str,
    timeout: Duration,
) -> Result<RpcReport, CallError> {
    let chain_id: U64 = ask(rpc, index, timeout, "eth_chainId", serde_json::json!([])).await?;
    let mut samples = Vec::with_capacity(3);
    let mut head = U64::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        head = ask(rpc, index, timeout, "eth_blockNumber", serde_json::json!([])).await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    Ok(RpcReport {
        url: masked.to_string(),
        reachable: true,
        chain_id: Some(chain_id.to()),
        head: Some(head.to()),
        latency_ms: samples.get(1).map(|ms| (ms * 100.0).round() / 100.0),
    })
}

async fn code_len(
    rpc: &ChainRpc,
    index: usize,
    address: Address,
    timeout: Duration,
) -> Result<usize, CallError> {
    let code: Bytes = ask(rpc, index, timeout, "eth_getCode", serde_json::json!([address, "latest"])).await?;
    Ok(code.len())
}

/// The latest block's base fee (legacy chains: the gas price), in wei.
async fn base_fee(rpc: &ChainRpc, index: usize, legacy: bool, timeout: Duration) -> Result<u128, CallError> {
    if legacy {
        let price: alloy::primitives::U128 =
            ask(rpc, index, timeout, "eth_gasPrice", serde_json::json!([])).await?;
        return Ok(price.to());
    }
    let block: serde_json::Value =
        ask(rpc, index, timeout, "eth_getBlockByNumber", serde_json::json!(["latest", false])).await?;
    Ok(block
        .get("baseFeePerGas")
        .and_then(|v| v.as_str())
        .and_then(|hex| u128::from_str_radix(hex.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0))
}

async fn balance(
    rpc: &ChainRpc,
    index: usize,
    address: Address,
    timeout: Duration,
) -> Result<U256, CallError> {
    ask(rpc, index, timeout, "eth_getBalance", serde_json::json!([address, "latest"])).await
}

/// Wei as ether with up to 6 decimals, for messages.
pub fn format_ether(wei: U256) -> String {
    alloy::primitives::utils::format_units(wei, "ether")
        .map(|s| {
            let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
            let frac = frac.get(..6).unwrap_or(frac).trim_end_matches('0');
            if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") }
        })
        .unwrap_or_else(|_| format!("{wei} wei"))
}
