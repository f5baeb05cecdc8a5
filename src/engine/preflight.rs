//! `check-config --online`: talks to every configured chain and reports what a config cannot show
//! offline — each RPC URL's chain id and latency, whether configured contract addresses have code,
//! and whether each signer holds enough to pay for gas. Chains are checked concurrently; every
//! request is bounded by the chain's `request_timeout`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Chain, Config, Severity, Source, Target, mask_url};
use crate::engine::keys;

/// Everything `--online` found, per chain.
#[derive(Debug, Clone, Serialize)]
pub struct OnlineReport {
    pub chains: Vec<ChainReport>,
}

impl OnlineReport {
    /// Every problem found, in chain order.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.chains.iter().flat_map(|c| c.findings.iter())
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
struct ChainPlan {
    name: String,
    chain: Chain,
    contracts: Vec<(String, Address)>,
    /// Minimum balance for the signer in wei; 1 wei ("not empty") when `min_balance` is unset.
    min_balance: U256,
}

/// Runs every online check. `min_balances` maps chain name → minimum signer balance in wei, as
/// validation parsed it from `min_balance`.
pub async fn check(
    config: &Config,
    base_dir: &Path,
    min_balances: &BTreeMap<String, U256>,
    cancel: &CancellationToken,
) -> OnlineReport {
    let mut tasks = JoinSet::new();
    for plan in plans(config, min_balances) {
        let base_dir = base_dir.to_path_buf();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            tokio::select! {
                report = check_chain(plan.clone(), &base_dir) => report,
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
    OnlineReport { chains }
}

fn plans(config: &Config, min_balances: &BTreeMap<String, U256>) -> Vec<ChainPlan> {
    let mut contracts: BTreeMap<String, Vec<(String, Address)>> = BTreeMap::new();
    let mut add = |chain: &str, key: String, address: &str| {
        // Bad addresses are offline diagnostics already; skip them here.
        if let Ok(address) = address.parse::<Address>() {
            contracts.entry(chain.to_string()).or_default().push((key, address));
        }
    };
    for (name, source) in &config.sources {
        if let Source::Evm(evm) = source {
            for (i, c) in evm.contracts.iter().enumerate() {
                add(&evm.chain, format!("sources.{name}.contracts[{i}].address"), &c.address);
            }
            for (i, f) in evm.factories.iter().enumerate() {
                add(&evm.chain, format!("sources.{name}.factories[{i}].address"), &f.address);
            }
        }
    }
    for (name, target) in &config.targets {
        match target {
            Target::EvmCall(t) => {
                for (chain, address) in &t.chains {
                    add(chain, format!("targets.{name}.chains.{chain}"), address);
                }
            }
            Target::SedaProver(t) => {
                for (chain, c) in &t.chains {
                    for (field, address) in [("prover", &c.prover), ("core", &c.core)] {
                        if let Some(address) = address {
                            add(chain, format!("targets.{name}.chains.{chain}.{field}"), address);
                        }
                    }
                }
            }
            Target::Webhook(_) | Target::Jsonl(_) | Target::RedisStream(_) => {}
        }
    }
    config
        .chains
        .iter()
        .map(|(name, chain)| ChainPlan {
            name: name.clone(),
            chain: chain.clone(),
            contracts: contracts.remove(name).unwrap_or_default(),
            min_balance: min_balances.get(name).copied().unwrap_or(U256::from(1)),
        })
        .collect()
}

async fn check_chain(plan: ChainPlan, base_dir: &Path) -> ChainReport {
    let timeout = plan.chain.request_timeout.0;
    let mut findings = Vec::new();
    let mut finding = |key: String, severity, message: String| {
        findings.push(Finding { chain: plan.name.clone(), key, severity, message });
    };

    let mut rpcs = Vec::new();
    let mut healthy = None;
    for (i, url) in plan.chain.rpc.iter().enumerate() {
        let masked = mask_url(url);
        let key = format!("chains.{}.rpc[{i}]", plan.name);
        let report = probe_rpc(url, &masked, timeout).await;
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
                    healthy = Some(url.clone());
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
        for (key, address) in &plan.contracts {
            let has_code = match code_len(&url, *address, timeout).await {
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
            match keys::address(config, base_dir) {
                Err(e) => finding(key, Severity::Error, e.to_string()),
                Ok(address) => {
                    report.address = Some(address);
                    match balance(&url, address, timeout).await {
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

fn interrupted(plan: &ChainPlan) -> ChainReport {
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
    #[error("not a URL")]
    BadUrl,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Rpc(String),
}

fn provider(url: &str) -> Result<impl Provider + use<>, CallError> {
    let url = url.parse().map_err(|_| CallError::BadUrl)?;
    Ok(ProviderBuilder::new().disable_recommended_fillers().connect_http(url))
}

async fn bounded<T, E: std::fmt::Display>(
    timeout: Duration,
    call: impl std::future::IntoFuture<Output = Result<T, E>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(timeout, call.into_future()).await {
        Err(_) => Err(CallError::Timeout(timeout)),
        // Transport errors can echo the URL; keep only the kind of failure.
        Ok(Err(e)) => Err(CallError::Rpc(scrub(&e.to_string()))),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Drops anything URL-like from an error text so that credentials in URLs never reach output.
fn scrub(text: &str) -> String {
    text.split_whitespace().map(|w| if w.contains("://") { "<url>" } else { w }).collect::<Vec<_>>().join(" ")
}

async fn probe_rpc(url: &str, masked: &str, timeout: Duration) -> Result<RpcReport, CallError> {
    let provider = provider(url)?;
    let chain_id = bounded(timeout, provider.get_chain_id()).await?;
    let mut samples = Vec::with_capacity(3);
    let mut head = 0;
    for _ in 0..3 {
        let started = Instant::now();
        head = bounded(timeout, provider.get_block_number()).await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    Ok(RpcReport {
        url: masked.to_string(),
        reachable: true,
        chain_id: Some(chain_id),
        head: Some(head),
        latency_ms: samples.get(1).map(|ms| (ms * 100.0).round() / 100.0),
    })
}

async fn code_len(url: &str, address: Address, timeout: Duration) -> Result<usize, CallError> {
    let provider = provider(url)?;
    Ok(bounded(timeout, provider.get_code_at(address)).await?.len())
}

async fn balance(url: &str, address: Address, timeout: Duration) -> Result<U256, CallError> {
    let provider = provider(url)?;
    bounded(timeout, provider.get_balance(address)).await
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
