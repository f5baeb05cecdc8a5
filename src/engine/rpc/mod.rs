//! JSON-RPC to one chain: one client per chain per command (`clients`), shared by the chain's
//! source, its delivery worker and the online checks.
//!
//! - several URLs, used in order: the first healthy one serves; a URL that fails is set aside for
//!   a while (longer after each failure in a row, or as long as its `Retry-After` says) and the
//!   next one takes over at once; a health score per URL is kept for reports;
//! - retries with exponential backoff and jitter on transport errors, 5xx, 429 and malformed
//!   answers; a JSON-RPC error is returned to the caller, classified (see [`error`]);
//! - a timeout on every request and an optional per-chain request rate;
//! - every request and every failure counted, by method and by class.
//!
//! The client speaks JSON-RPC over HTTP itself (reqwest) rather than through a provider stack, so
//! that every one of those rules is ours, visible and tested. Code that only needs a chain's
//! answers takes a [`ChainClient`] (see [`client`]), which [`ChainRpc`] implements.

pub mod client;
pub mod error;
pub mod ranges;
#[cfg(test)]
pub mod scripted;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bloom, Bytes, U64};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex as AsyncMutex;

pub use client::ChainClient;
pub use error::{ErrorKind, RangeHint, RpcError};

use crate::config::{ChainPlan, mask_url};

/// How a chain's RPCs are used.
#[derive(Debug, Clone)]
pub struct RpcSettings {
    /// The chain's name in the config, for messages.
    pub chain: String,
    pub urls: Vec<String>,
    pub timeout: Duration,
    /// Requests per second, all URLs together.
    pub rate_limit: Option<u32>,
    /// Attempts per request, across all URLs, before the error goes to the caller.
    pub max_attempts: u32,
    /// First backoff; doubles per failure in a row, with jitter, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl RpcSettings {
    pub fn for_chain(chain: &ChainPlan) -> Self {
        Self {
            chain: chain.name.clone(),
            urls: chain.rpc.clone(),
            timeout: chain.request_timeout,
            rate_limit: chain.rate_limit,
            max_attempts: 10,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The RPC clients of a command: one per chain, shared by every role the chain has (source,
/// destination, preflight), so that its `rate_limit` and the health of its URLs are one.
pub type Clients = BTreeMap<String, ChainRpc>;

/// One client per configured chain.
pub fn clients(chains: &BTreeMap<String, ChainPlan>) -> Result<Clients, reqwest::Error> {
    chains
        .iter()
        .map(|(name, chain)| Ok((name.clone(), ChainRpc::new(RpcSettings::for_chain(chain))?)))
        .collect()
}

/// A block as far as ingest cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub number: U64,
    pub hash: B256,
    pub parent_hash: B256,
    /// The bloom of every log in the block: a log of an address or topic absent from it is not
    /// in the block (how ingest knows a node's empty answer is true).
    #[serde(default)]
    pub logs_bloom: Bloom,
}

impl Header {
    pub fn number(&self) -> u64 {
        self.number.to()
    }
}

/// One log of an `eth_getLogs` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    pub address: Address,
    pub topics: Vec<B256>,
    pub data: Bytes,
    pub block_number: U64,
    pub block_hash: B256,
    pub transaction_hash: B256,
    pub log_index: U64,
    #[serde(default)]
    pub removed: bool,
}

/// Which block: a number or a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockId {
    Number(u64),
    Latest,
    Safe,
    Finalized,
}

impl BlockId {
    fn param(self) -> serde_json::Value {
        match self {
            BlockId::Number(n) => serde_json::Value::String(format!("{n:#x}")),
            BlockId::Latest => "latest".into(),
            BlockId::Safe => "safe".into(),
            BlockId::Finalized => "finalized".into(),
        }
    }
}

/// An `eth_getLogs` filter. Empty `addresses` means any address; empty `topic0` means any event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter {
    pub from: u64,
    pub to: u64,
    pub addresses: Vec<Address>,
    pub topic0: Vec<B256>,
}

impl LogFilter {
    /// The same addresses and topics, in one block named by its hash (EIP-234): a node that does
    /// not have that block answers an error, never an empty list.
    fn param_at(&self, block: B256) -> serde_json::Value {
        let mut filter = self.param();
        if let Some(map) = filter.as_object_mut() {
            map.remove("fromBlock");
            map.remove("toBlock");
            map.insert("blockHash".into(), serde_json::json!(block));
        }
        filter
    }

    /// The filter's addresses and topics as bloom bits, hashed once for many blocks.
    pub fn bloom_probe(&self) -> BloomProbe {
        use alloy::primitives::BloomInput;
        let bits = |item: &[u8]| {
            let mut b = Bloom::default();
            b.accrue(BloomInput::Raw(item));
            b
        };
        BloomProbe {
            addresses: self.addresses.iter().map(|a| bits(a.as_slice())).collect(),
            topics: self.topic0.iter().map(|t| bits(t.as_slice())).collect(),
        }
    }

    fn param(&self) -> serde_json::Value {
        let mut filter = serde_json::json!({
            "fromBlock": format!("{:#x}", self.from),
            "toBlock": format!("{:#x}", self.to),
        });
        if !self.addresses.is_empty() {
            filter["address"] = serde_json::to_value(&self.addresses).unwrap_or_default();
        }
        if !self.topic0.is_empty() {
            filter["topics"] = serde_json::json!([self.topic0]);
        }
        filter
    }
}

/// A [`LogFilter`]'s addresses and topics as bloom bits.
#[derive(Debug, Clone)]
pub struct BloomProbe {
    addresses: Vec<Bloom>,
    topics: Vec<Bloom>,
}

impl BloomProbe {
    /// Whether a block with this bloom may hold a log the filter matches (no false negatives).
    pub fn may_match(&self, bloom: &Bloom) -> bool {
        let any = |items: &[Bloom]| items.is_empty() || items.iter().any(|b| bloom.contains(b));
        any(&self.addresses) && any(&self.topics)
    }
}

/// Counters of one chain's RPC use.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RpcStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests by method, retries included.
    pub by_method: BTreeMap<String, u64>,
    /// Failures by class.
    pub errors: BTreeMap<String, u64>,
    /// Per URL (masked): requests served and a health score in 0..=1.
    pub urls: Vec<UrlHealth>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UrlHealth {
    pub url: String,
    pub served: u64,
    pub failed: u64,
    pub score: f64,
}

struct Endpoint {
    url: String,
    shown: String,
    health: std::sync::Mutex<Health>,
}

#[derive(Debug)]
struct Health {
    score: f64,
    failures_in_row: u32,
    down_until: Option<Instant>,
    served: u64,
    failed: u64,
}

impl Health {
    fn new() -> Self {
        Self { score: 1.0, failures_in_row: 0, down_until: None, served: 0, failed: 0 }
    }
}

/// Requests sent, requests by method, failures by class.
type Counters = (u64, BTreeMap<String, u64>, BTreeMap<ErrorKind, u64>);

struct Inner {
    settings: RpcSettings,
    http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    next_id: AtomicU64,
    /// The earliest moment the next request may go out, under `rate_limit`.
    limiter: RateLimiter,
    counters: std::sync::Mutex<Counters>,
    /// The highest block number any answer has shown (heads and headers).
    highest: AtomicU64,
}

/// The RPC client of one chain; cheap to clone.
#[derive(Clone)]
pub struct ChainRpc {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChainRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<&str> = self.inner.endpoints.iter().map(|e| e.shown.as_str()).collect();
        f.debug_struct("ChainRpc").field("chain", &self.inner.settings.chain).field("urls", &urls).finish()
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default = "Option::default")]
    result: Option<T>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

impl ChainRpc {
    pub fn new(settings: RpcSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .build()?;
        let endpoints = settings
            .urls
            .iter()
            .map(|url| Endpoint {
                url: url.clone(),
                shown: mask_url(url),
                health: std::sync::Mutex::new(Health::new()),
            })
            .collect();
        let limiter = RateLimiter::new(settings.rate_limit);
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                http,
                endpoints,
                next_id: AtomicU64::new(1),
                limiter,
                counters: std::sync::Mutex::new((0, BTreeMap::new(), BTreeMap::new())),
                highest: AtomicU64::new(0),
            }),
        })
    }

    pub fn chain(&self) -> &str {
        &self.inner.settings.chain
    }

    pub async fn block_number(&self) -> Result<u64, RpcError> {
        let n: U64 = self.request("eth_blockNumber", serde_json::json!([])).await?;
        self.inner.highest.fetch_max(n.to(), Ordering::Relaxed);
        Ok(n.to())
    }

    /// A block's header; `None` when the node does not have it (yet).
    pub async fn header(&self, block: BlockId) -> Result<Option<Header>, RpcError> {
        let header: Option<Header> =
            self.call("eth_getBlockByNumber", serde_json::json!([block.param(), false])).await?;
        if let Some(h) = &header {
            self.inner.highest.fetch_max(h.number(), Ordering::Relaxed);
        }
        Ok(header)
    }

    /// The highest block number this client has seen in any answer: where the chain's head is
    /// at least, whichever node (of several behind a URL, or across URLs) said it.
    pub fn highest_seen(&self) -> u64 {
        self.inner.highest.load(Ordering::Relaxed)
    }

    pub async fn logs(&self, filter: &LogFilter) -> Result<Vec<Log>, RpcError> {
        self.request("eth_getLogs", serde_json::json!([filter.param()])).await
    }

    /// The filter's logs in the one block `hash` (its range is ignored); an error when the node
    /// does not have that block.
    pub async fn logs_at(&self, filter: &LogFilter, hash: B256) -> Result<Vec<Log>, RpcError> {
        self.request("eth_getLogs", serde_json::json!([filter.param_at(hash)])).await
    }

    /// A request whose result must be present.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<T, RpcError> {
        match self.call(method, params).await? {
            Some(value) => Ok(value),
            None => Err(RpcError {
                kind: ErrorKind::BadResponse,
                method: method.into(),
                url: self.inner.endpoints.first().map(|e| e.shown.clone()).unwrap_or_default(),
                message: "the response has no result".into(),
                code: None,
                retry_after: None,
                hint: None,
                data: None,
            }),
        }
    }

    /// A request whose result may be `null` (`None`), with failover and retries.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<Option<T>, RpcError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(&serde_json::json!({
            "jsonrpc": "2.0", "id": id, "method": method, "params": params,
        }))
        .unwrap_or_default();
        let settings = &self.inner.settings;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (index, wait) = self.pick();
            if let Some(wait) = wait {
                tokio::time::sleep(wait).await;
            }
            self.rate_limit().await;
            self.count_request(method);
            let endpoint = &self.inner.endpoints[index];
            let sent_at = Instant::now();
            let result = self.send_once(endpoint, method, &body).await;
            self.observe(endpoint, method, sent_at, &result);
            match result {
                Ok(value) => {
                    self.mark(index, None);
                    return Ok(value);
                }
                Err(e) => {
                    self.count_error(e.kind);
                    let retry = e.is_retryable() && attempt < settings.max_attempts;
                    // Only failures of the URL itself set it aside; a node's answer about the
                    // request (a revert, a range too large) says nothing about the URL's health.
                    if e.is_retryable() {
                        self.mark(index, Some((&e, attempt)));
                    }
                    if !retry {
                        return Err(e);
                    }
                    tracing::debug!(chain = %settings.chain, attempt, error = %e, "retrying");
                }
            }
        }
    }

    /// One attempt at one URL (by its index in the config), rate-limited and counted like any
    /// request, without failover or retries: for checks that judge each URL on its own.
    pub async fn probe<T: DeserializeOwned>(
        &self,
        index: usize,
        method: &str,
        params: serde_json::Value,
    ) -> Result<Option<T>, RpcError> {
        let Some(endpoint) = self.inner.endpoints.get(index) else {
            return Err(RpcError {
                kind: ErrorKind::BadResponse,
                method: method.into(),
                url: String::new(),
                message: format!("no URL number {index}"),
                code: None,
                retry_after: None,
                hint: None,
                data: None,
            });
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(&serde_json::json!({
            "jsonrpc": "2.0", "id": id, "method": method, "params": params,
        }))
        .unwrap_or_default();
        self.rate_limit().await;
        self.count_request(method);
        let sent_at = Instant::now();
        let result = self.send_once(endpoint, method, &body).await;
        self.observe(endpoint, method, sent_at, &result);
        if let Err(e) = &result {
            self.count_error(e.kind);
        }
        result
    }

    /// One answer (or failure) of one URL, for `/metrics`: by chain and masked URL.
    fn observe<T>(&self, endpoint: &Endpoint, method: &str, sent_at: Instant, result: &Result<T, RpcError>) {
        let failed = result.as_ref().err().map(|e| e.kind.as_str());
        crate::engine::observe::rpc(
            &self.inner.settings.chain,
            &endpoint.shown,
            method,
            sent_at.elapsed(),
            failed,
        );
    }

    /// The URL to use next: the first one not set aside, else the one back soonest, with the
    /// time to wait for it.
    fn pick(&self) -> (usize, Option<Duration>) {
        let now = Instant::now();
        let mut soonest: Option<(usize, Instant)> = None;
        for (i, endpoint) in self.inner.endpoints.iter().enumerate() {
            let health = endpoint.health.lock().unwrap_or_else(|p| p.into_inner());
            match health.down_until {
                Some(until) if until > now => {
                    if soonest.is_none_or(|(_, s)| until < s) {
                        soonest = Some((i, until));
                    }
                }
                _ => return (i, None),
            }
        }
        match soonest {
            Some((i, until)) => (i, Some(until - now)),
            None => (0, None),
        }
    }

    /// Records the outcome of a request on a URL's health.
    fn mark(&self, index: usize, failure: Option<(&RpcError, u32)>) {
        let settings = &self.inner.settings;
        let mut health = self.inner.endpoints[index].health.lock().unwrap_or_else(|p| p.into_inner());
        let shown = &self.inner.endpoints[index].shown;
        match failure {
            None => {
                if health.failures_in_row > 0 {
                    tracing::info!(chain = %settings.chain, url = %shown, "RPC answering again");
                }
                health.served += 1;
                health.failures_in_row = 0;
                health.down_until = None;
                health.score = health.score * 0.8 + 0.2;
            }
            Some((e, _)) => {
                if health.failures_in_row == 0 {
                    // Once per outage, not per retry: the retries are at debug level.
                    tracing::warn!(chain = %settings.chain, url = %shown, error = %e.message, kind = e.kind.as_str(), "RPC failing; retrying");
                }
                health.failed += 1;
                health.failures_in_row += 1;
                health.score *= 0.8;
                let pause = match e.retry_after {
                    Some(after) => after.min(Duration::from_secs(60)),
                    None => backoff(settings.base_backoff, settings.max_backoff, health.failures_in_row),
                };
                health.down_until = Some(Instant::now() + pause);
            }
        }
    }

    async fn rate_limit(&self) {
        self.inner.limiter.wait().await;
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        endpoint: &Endpoint,
        method: &str,
        body: &[u8],
    ) -> Result<Option<T>, RpcError> {
        let fail = |kind, message: String| RpcError {
            kind,
            method: method.into(),
            url: endpoint.shown.clone(),
            message,
            code: None,
            retry_after: None,
            hint: None,
            data: None,
        };
        let response = self
            .inner
            .http
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| fail(ErrorKind::Transport, transport_text(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(error::parse_retry_after);
            return Err(RpcError {
                retry_after,
                ..fail(ErrorKind::RateLimited, "HTTP 429 Too Many Requests".into())
            });
        }
        if status.is_server_error() {
            return Err(fail(ErrorKind::Transport, format!("HTTP {status}")));
        }
        let bytes = response.bytes().await.map_err(|e| fail(ErrorKind::Transport, transport_text(&e)))?;
        let envelope: Envelope<T> = match serde_json::from_slice(&bytes) {
            Ok(envelope) => envelope,
            Err(e) if status.is_success() => {
                return Err(fail(ErrorKind::BadResponse, format!("the response is not valid JSON-RPC: {e}")));
            }
            Err(_) => return Err(fail(ErrorKind::BadResponse, format!("HTTP {status}"))),
        };
        if let Some(error) = envelope.error {
            let (kind, hint) = error::classify_node_error(error.code, &error.message, error.data.as_ref());
            return Err(RpcError {
                code: Some(error.code),
                hint,
                data: error.data,
                ..fail(kind, error.message)
            });
        }
        Ok(envelope.result)
    }

    fn count_request(&self, method: &str) {
        let mut c = self.inner.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.0 += 1;
        *c.1.entry(method.to_string()).or_default() += 1;
    }

    fn count_error(&self, kind: ErrorKind) {
        let mut c = self.inner.counters.lock().unwrap_or_else(|p| p.into_inner());
        *c.2.entry(kind).or_default() += 1;
    }

    /// What this client has done so far.
    pub fn stats(&self) -> RpcStats {
        let c = self.inner.counters.lock().unwrap_or_else(|p| p.into_inner());
        let urls = self
            .inner
            .endpoints
            .iter()
            .map(|e| {
                let h = e.health.lock().unwrap_or_else(|p| p.into_inner());
                UrlHealth {
                    url: e.shown.clone(),
                    served: h.served,
                    failed: h.failed,
                    score: (h.score * 100.0).round() / 100.0,
                }
            })
            .collect();
        RpcStats {
            requests: c.0,
            by_method: c.1.clone(),
            errors: c.2.iter().map(|(k, v)| (k.as_str().to_string(), *v)).collect(),
            urls,
        }
    }
}

/// Spaces requests `1/rate` seconds apart (none when `rate` is `None` or 0), shared by every task
/// that asks through one client: each takes the next free slot and sleeps until it.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    next_slot: AsyncMutex<Instant>,
}

impl RateLimiter {
    pub fn new(rate: Option<u32>) -> Self {
        RateLimiter {
            interval: rate.filter(|r| *r > 0).map(|r| Duration::from_secs_f64(1.0 / f64::from(r))),
            next_slot: AsyncMutex::new(Instant::now()),
        }
    }

    pub async fn wait(&self) {
        let Some(interval) = self.interval else { return };
        let slot = {
            let mut next = self.next_slot.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// `base · 2^(n−1)`, capped, times a random factor in [0.5, 1] so that many clients that failed
/// together do not retry together.
pub fn backoff(base: Duration, max: Duration, failures_in_row: u32) -> Duration {
    let exp = failures_in_row.saturating_sub(1).min(20);
    let raw = base.saturating_mul(1u32 << exp).min(max);
    raw.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// A transport error in words, without the URL (reqwest puts the full URL, credentials and all,
/// in its messages; ours carry the masked one next to it).
pub(crate) fn transport_text(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response body broke off"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = None;
    while let Some(s) = source {
        detail = Some(s.to_string());
        source = s.source();
    }
    match detail {
        Some(d) if !d.contains("://") => format!("{what}: {d}"),
        _ => what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for n in 1..30 {
            let d = backoff(base, max, n);
            let ceiling = base.saturating_mul(1 << (n - 1).min(20)).min(max);
            assert!(d <= ceiling && d >= ceiling / 2, "{n}: {d:?}");
        }
    }

    #[test]
    fn filters_serialize_as_nodes_expect() {
        let f = LogFilter { from: 16, to: 31, addresses: vec![Address::ZERO], topic0: vec![B256::ZERO] };
        let p = f.param();
        assert_eq!(p["fromBlock"], "0x10");
        assert_eq!(p["toBlock"], "0x1f");
        assert_eq!(p["address"][0], "0x0000000000000000000000000000000000000000");
        assert_eq!(p["topics"][0][0], format!("{:#x}", B256::ZERO));
        let open = LogFilter { from: 0, to: 0, addresses: vec![], topic0: vec![] }.param();
        assert!(open.get("address").is_none() && open.get("topics").is_none());
        let at = f.param_at(B256::repeat_byte(7));
        assert!(at.get("fromBlock").is_none() && at.get("toBlock").is_none(), "{at}");
        assert_eq!(at["blockHash"], format!("{:#x}", B256::repeat_byte(7)));
        assert_eq!(at["address"][0], "0x0000000000000000000000000000000000000000");
    }

    #[test]
    fn a_bloom_tells_which_filters_may_match() {
        use alloy::primitives::{BloomInput, address, b256};
        let (a, b) = (address!("0x1000000000000000000000000000000000000001"), Address::repeat_byte(2));
        let t = b256!("0x1111111111111111111111111111111111111111111111111111111111111111");
        let mut bloom = Bloom::default();
        bloom.accrue(BloomInput::Raw(a.as_slice()));
        bloom.accrue(BloomInput::Raw(t.as_slice()));
        let filter = |addresses: Vec<Address>, topic0: Vec<B256>| {
            LogFilter { from: 0, to: 0, addresses, topic0 }.bloom_probe()
        };
        assert!(filter(vec![a], vec![]).may_match(&bloom));
        assert!(filter(vec![b, a], vec![t]).may_match(&bloom));
        assert!(filter(vec![], vec![t]).may_match(&bloom));
        assert!(!filter(vec![b], vec![]).may_match(&bloom));
        assert!(!filter(vec![a], vec![B256::repeat_byte(3)]).may_match(&bloom));
        assert!(!filter(vec![a], vec![]).may_match(&Bloom::default()));
    }
}
