//! An HTTP JSON-RPC proxy in front of one anvil that models a load balancer over backends a few
//! blocks apart: each HTTP request (a JSON-RPC batch included) is answered by one backend, chosen
//! at random from a seed, that is `lag` blocks behind the real head `H`. For a backend with an
//! effective lag `L` (its own plus the method's), `h = H − L` is its head, and nothing above `h`
//! is visible through it:
//!
//! - `eth_blockNumber` is `h`; `eth_getBlockByNumber` above `h` is `null`, `latest`/`pending` is
//!   block `h`, `safe`/`finalized` never above `h`; `eth_getBlockByHash` of a block above `h` is
//!   `null`.
//! - `eth_getTransactionReceipt` of a transaction mined above `h` is `null`;
//!   `eth_getTransactionByHash` shows it as pending (block fields `null`).
//! - State reads (`eth_getTransactionCount`, `eth_getBalance`, `eth_getCode`,
//!   `eth_getStorageAt`, `eth_call`, `eth_estimateGas`) at `latest` (or no block) read block `h`;
//!   at a number above `h` they fail with `header not found`; `pending` passes unchanged (the
//!   pool is shared by gossip).
//! - `eth_getLogs` by `blockHash` of a block above `h` fails with `unknown block`; a range has its
//!   end cut to `h`, and a range starting above `h` is answered `[]` (a lying node: no error, no
//!   logs).
//! - Everything else (`eth_sendRawTransaction`, `eth_chainId`, `anvil_*`, `evm_*`, …) passes
//!   unchanged.
//!
//! One request per connection (`http.rs`, shared with `proxy.rs`); the real head is cached for
//! at most [`HEAD_CACHE`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::hex::quantity as hex;
use super::http::{read_request, respond};

/// How long the real head read from the node is reused.
pub const HEAD_CACHE: Duration = Duration::from_millis(25);

/// Which backends answer, and how far behind each is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagPlan {
    /// Lag in blocks of each backend; each HTTP request (a JSON-RPC batch included) goes to one
    /// backend, chosen at random from the seed.
    pub backends: Vec<u64>,
    /// Extra lag for one method on every backend, e.g. ("eth_getTransactionReceipt", 2).
    pub method_lag: Vec<(String, u64)>,
    pub seed: u64,
}

impl LagPlan {
    /// One backend, `lag` blocks behind.
    pub fn uniform(lag: u64) -> Self {
        LagPlan { backends: vec![lag], method_lag: vec![], seed: 0 }
    }

    /// Several backends with these lags, picked at random from `seed`.
    pub fn backends(lags: &[u64], seed: u64) -> Self {
        LagPlan { backends: lags.to_vec(), method_lag: vec![], seed }
    }

    /// The same plan with `lag` more blocks for `method` on every backend.
    pub fn with_method_lag(mut self, method: &str, lag: u64) -> Self {
        self.method_lag.push((method.to_string(), lag));
        self
    }

    fn extra_for(&self, method: &str) -> u64 {
        self.method_lag.iter().filter(|(m, _)| m == method).map(|(_, l)| *l).sum()
    }
}

/// What the proxy did, counted.
#[derive(Debug, Default)]
pub struct LagStats {
    /// HTTP requests served (a batch is one).
    pub requests: AtomicU64,
    /// JSON-RPC calls answered (each element of a batch is one).
    pub calls: AtomicU64,
    /// Receipts answered `null` because their block is above the backend's head.
    pub hidden_receipts: AtomicU64,
    /// `eth_getLogs` answers cut at the backend's head, answered `[]`, or refused (`unknown block`).
    pub clamped_logs: AtomicU64,
    /// Blocks answered `null` because they are above the backend's head.
    pub hidden_blocks: AtomicU64,
    /// Mined transactions shown as pending.
    pub pending_txs: AtomicU64,
    /// State reads refused with `header not found` (a block number above the backend's head).
    pub header_not_found: AtomicU64,
    /// Requests the node did not answer (answered 502).
    pub upstream_errors: AtomicU64,
    /// HTTP requests served by each backend, by index in the plan.
    by_backend: Mutex<Vec<u64>>,
}

impl LagStats {
    /// HTTP requests served by each backend of the plan, by index.
    pub fn by_backend(&self) -> Vec<u64> {
        self.by_backend.lock().expect("by_backend").clone()
    }

    fn count_backend(&self, index: usize) {
        let mut counts = self.by_backend.lock().expect("by_backend");
        if counts.len() <= index {
            counts.resize(index + 1, 0);
        }
        counts[index] += 1;
    }
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    plan: Mutex<(LagPlan, fastrand::Rng)>,
    /// The real head and when it was read.
    head: tokio::sync::Mutex<Option<(Instant, u64)>>,
    stats: Arc<LagStats>,
}

/// A running lagging proxy; stops accepting when dropped.
pub struct LagProxy {
    url: String,
    pub stats: Arc<LagStats>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl LagProxy {
    /// Listens on a free port of 127.0.0.1 and answers from `upstream` as `plan` says.
    pub async fn start(upstream: String, plan: LagPlan) -> LagProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the lag proxy");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let stats = Arc::new(LagStats::default());
        let rng = fastrand::Rng::with_seed(plan.seed);
        let shared = Arc::new(Shared {
            upstream,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            plan: Mutex::new((plan, rng)),
            head: tokio::sync::Mutex::new(None),
            stats: stats.clone(),
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let shared = serving.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &shared).await;
                });
            }
        });
        LagProxy { url, stats, shared, task }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Replaces the plan (and restarts its random choices from the new seed).
    pub fn set_plan(&self, plan: LagPlan) {
        let rng = fastrand::Rng::with_seed(plan.seed);
        *self.shared.plan.lock().expect("plan") = (plan, rng);
    }

    /// The plan in force.
    pub fn plan(&self) -> LagPlan {
        self.shared.plan.lock().expect("plan").0.clone()
    }
}

impl Drop for LagProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One backend's view for one HTTP request.
struct View<'a> {
    shared: &'a Shared,
    /// The real head.
    head: u64,
    /// The backend's own lag.
    lag: u64,
    plan: LagPlan,
}

impl View<'_> {
    /// The head this backend shows for `method`.
    fn head_for(&self, method: &str) -> u64 {
        self.head.saturating_sub(self.lag + self.plan.extra_for(method))
    }
}

async fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let Some((mut stream, body)) = read_request(stream).await? else { return Ok(()) };
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    let (index, lag, plan) = {
        let mut guard = shared.plan.lock().expect("plan");
        let (plan, rng) = &mut *guard;
        let index = if plan.backends.is_empty() { 0 } else { rng.usize(0..plan.backends.len()) };
        (index, plan.backends.get(index).copied().unwrap_or(0), plan.clone())
    };
    shared.stats.count_backend(index);
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        // Not JSON: the node says what is wrong with it.
        Err(_) => {
            return match post(shared, body).await {
                Ok(answer) => respond(&mut stream, "200 OK", &[], &answer).await,
                Err(_) => upstream_failed(&mut stream, shared).await,
            };
        }
    };
    let head = match real_head(shared).await {
        Ok(h) => h,
        Err(_) => return upstream_failed(&mut stream, shared).await,
    };
    let view = View { shared, head, lag, plan };
    let answer = match &request {
        Value::Array(calls) if !calls.is_empty() => {
            let answers = futures_util::future::join_all(calls.iter().map(|c| answer(&view, c))).await;
            answers.into_iter().collect::<Result<Vec<_>, _>>().map(Value::Array)
        }
        _ => answer(&view, &request).await,
    };
    match answer {
        Ok(answer) => respond(&mut stream, "200 OK", &[], answer.to_string().as_bytes()).await,
        Err(_) => upstream_failed(&mut stream, shared).await,
    }
}

async fn upstream_failed(stream: &mut TcpStream, shared: &Shared) -> std::io::Result<()> {
    shared.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
    respond(stream, "502 Bad Gateway", &[], b"").await
}

/// The real head, read from the node at most every [`HEAD_CACHE`]; never goes back.
async fn real_head(shared: &Shared) -> Result<u64, String> {
    let mut cached = shared.head.lock().await;
    if let Some((at, head)) = *cached
        && at.elapsed() < HEAD_CACHE
    {
        return Ok(head);
    }
    let answer = call(shared, "eth_blockNumber", json!([]), json!(1)).await?;
    let head = number(&answer["result"]).ok_or_else(|| format!("eth_blockNumber: {answer}"))?;
    let head = cached.map_or(head, |(_, old)| old.max(head));
    *cached = Some((Instant::now(), head));
    Ok(head)
}

/// A block parameter as given.
#[derive(Debug, Clone, PartialEq, Eq)]
enum At {
    Latest,
    Pending,
    Earliest,
    Safe,
    Finalized,
    Number(u64),
    Hash(String),
    Other,
}

fn at(v: Option<&Value>) -> At {
    match v {
        None | Some(Value::Null) => At::Latest,
        Some(Value::String(s)) => match s.as_str() {
            "latest" => At::Latest,
            "pending" => At::Pending,
            "earliest" => At::Earliest,
            "safe" => At::Safe,
            "finalized" => At::Finalized,
            s if s.len() == 66 && s.starts_with("0x") => At::Hash(s.to_string()),
            s => parse_hex(s).map_or(At::Other, At::Number),
        },
        Some(Value::Object(o)) => {
            if let Some(n) = o.get("blockNumber") {
                number(n).map_or(At::Other, At::Number)
            } else if let Some(h) = o.get("blockHash").and_then(Value::as_str) {
                At::Hash(h.to_string())
            } else {
                At::Other
            }
        }
        Some(Value::Number(n)) => n.as_u64().map_or(At::Other, At::Number),
        Some(_) => At::Other,
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

fn number(v: &Value) -> Option<u64> {
    v.as_str().and_then(parse_hex)
}

fn ok(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// One JSON-RPC call answered as the backend would. `Err`: the node did not answer.
async fn answer(view: &View<'_>, request: &Value) -> Result<Value, String> {
    let stats = &view.shared.stats;
    stats.calls.fetch_add(1, Ordering::Relaxed);
    let Some(method) = request["method"].as_str() else { return forward(view.shared, request).await };
    let h = view.head_for(method);
    let id = &request["id"];
    let params = request["params"].as_array().cloned().unwrap_or_default();
    let shared = view.shared;
    match method {
        "eth_blockNumber" => Ok(ok(id, hex(h))),
        "eth_getBlockByNumber" => {
            let full = params.get(1).cloned().unwrap_or(Value::Bool(false));
            match at(params.first()) {
                At::Latest | At::Pending => call(shared, method, json!([hex(h), full]), id.clone()).await,
                At::Number(n) if n > h => {
                    stats.hidden_blocks.fetch_add(1, Ordering::Relaxed);
                    Ok(ok(id, Value::Null))
                }
                At::Safe | At::Finalized => {
                    let answer = forward(shared, request).await?;
                    if number(&answer["result"]["number"]).is_some_and(|n| n > h) {
                        call(shared, method, json!([hex(h), full]), id.clone()).await
                    } else {
                        Ok(answer)
                    }
                }
                _ => forward(shared, request).await,
            }
        }
        "eth_getBlockByHash" => {
            let answer = forward(shared, request).await?;
            if number(&answer["result"]["number"]).is_some_and(|n| n > h) {
                stats.hidden_blocks.fetch_add(1, Ordering::Relaxed);
                return Ok(ok(id, Value::Null));
            }
            Ok(answer)
        }
        "eth_getTransactionReceipt" => {
            let answer = forward(shared, request).await?;
            if number(&answer["result"]["blockNumber"]).is_some_and(|n| n > h) {
                stats.hidden_receipts.fetch_add(1, Ordering::Relaxed);
                return Ok(ok(id, Value::Null));
            }
            Ok(answer)
        }
        "eth_getTransactionByHash" => {
            let mut answer = forward(shared, request).await?;
            if number(&answer["result"]["blockNumber"]).is_some_and(|n| n > h) {
                stats.pending_txs.fetch_add(1, Ordering::Relaxed);
                for field in ["blockHash", "blockNumber", "transactionIndex"] {
                    answer["result"][field] = Value::Null;
                }
            }
            Ok(answer)
        }
        "eth_getTransactionCount" | "eth_getBalance" | "eth_getCode" | "eth_call" | "eth_estimateGas" => {
            state_at(view, request, params, 1, h).await
        }
        "eth_getStorageAt" => state_at(view, request, params, 2, h).await,
        "eth_getLogs" => logs(view, request, params, h).await,
        _ => forward(shared, request).await,
    }
}

/// A state read whose block parameter is at `index`, read at the backend's head `h`.
async fn state_at(
    view: &View<'_>,
    request: &Value,
    mut params: Vec<Value>,
    index: usize,
    h: u64,
) -> Result<Value, String> {
    let (shared, id) = (view.shared, &request["id"]);
    let method = request["method"].as_str().unwrap_or_default();
    let not_found = || {
        shared.stats.header_not_found.fetch_add(1, Ordering::Relaxed);
        Ok(rpc_error(id, -32000, "header not found"))
    };
    let block = match at(params.get(index)) {
        At::Latest => h,
        At::Pending | At::Earliest | At::Other => return forward(shared, request).await,
        At::Number(n) if n > h => return not_found(),
        At::Number(_) => return forward(shared, request).await,
        At::Safe | At::Finalized => {
            let tag = params[index].clone();
            let answer = call(shared, "eth_getBlockByNumber", json!([tag, false]), json!(1)).await?;
            match number(&answer["result"]["number"]) {
                Some(n) => n.min(h),
                None => return forward(shared, request).await,
            }
        }
        At::Hash(hash) => match block_of_hash(shared, &hash).await? {
            Some(n) if n > h => return not_found(),
            _ => return forward(shared, request).await,
        },
    };
    while params.len() <= index {
        params.push(Value::Null);
    }
    params[index] = hex(block);
    call(shared, method, Value::Array(params), id.clone()).await
}

/// `eth_getLogs` as a node at `h` answers it.
async fn logs(view: &View<'_>, request: &Value, mut params: Vec<Value>, h: u64) -> Result<Value, String> {
    let (shared, id) = (view.shared, &request["id"]);
    let stats = &shared.stats;
    let Some(filter) = params.first_mut().and_then(Value::as_object_mut) else {
        return forward(shared, request).await;
    };
    if let Some(hash) = filter.get("blockHash").and_then(Value::as_str) {
        return match block_of_hash(shared, hash).await? {
            Some(n) if n > h => {
                stats.clamped_logs.fetch_add(1, Ordering::Relaxed);
                Ok(rpc_error(id, -32000, "unknown block"))
            }
            _ => forward(shared, request).await,
        };
    }
    // Where the range would end on the real node, and where it starts on this one.
    let resolve = async |v: Option<&Value>, latest: u64| -> Result<Option<u64>, String> {
        Ok(match at(v) {
            At::Latest | At::Pending => Some(latest),
            At::Earliest => Some(0),
            At::Number(n) => Some(n),
            At::Safe | At::Finalized => {
                let tag = v.cloned().unwrap_or(Value::Null);
                let answer = call(shared, "eth_getBlockByNumber", json!([tag, false]), json!(1)).await?;
                number(&answer["result"]["number"])
            }
            At::Hash(_) | At::Other => None,
        })
    };
    let (Some(from), Some(to)) =
        (resolve(filter.get("fromBlock"), h).await?, resolve(filter.get("toBlock"), view.head).await?)
    else {
        return forward(shared, request).await;
    };
    if from > to {
        // Not for a lag to decide: the node says what it says about a reversed range.
        return forward(shared, request).await;
    }
    if from > h {
        stats.clamped_logs.fetch_add(1, Ordering::Relaxed);
        return Ok(ok(id, json!([])));
    }
    if to > h {
        stats.clamped_logs.fetch_add(1, Ordering::Relaxed);
    }
    filter.insert("fromBlock".into(), hex(from));
    filter.insert("toBlock".into(), hex(to.min(h)));
    call(shared, "eth_getLogs", Value::Array(params), id.clone()).await
}

/// The number of the block with `hash`, if the node has it.
async fn block_of_hash(shared: &Shared, hash: &str) -> Result<Option<u64>, String> {
    let answer = call(shared, "eth_getBlockByHash", json!([hash, false]), json!(1)).await?;
    Ok(number(&answer["result"]["number"]))
}

/// A request of our own to the node; its whole answer (result or error) with `id`.
async fn call(shared: &Shared, method: &str, params: Value, id: Value) -> Result<Value, String> {
    forward(shared, &json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })).await
}

/// The request as it is to the node; its whole answer.
async fn forward(shared: &Shared, request: &Value) -> Result<Value, String> {
    let answer = post(shared, request.to_string().into_bytes()).await?;
    serde_json::from_slice(&answer).map_err(|e| format!("the node's answer is not JSON: {e}"))
}

async fn post(shared: &Shared, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let response = shared
        .client
        .post(&shared.upstream)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.bytes().await.map_err(|e| e.to_string())?.to_vec())
}

/// One JSON-RPC body (a call or a batch) posted to `url`; the parsed answer. For tests and
/// harnesses that talk to the proxy directly.
pub async fn post_json(url: &str, body: &Value) -> Value {
    let client = reqwest::Client::new();
    let response = tokio::time::timeout(Duration::from_secs(30), client.post(url).json(body).send())
        .await
        .unwrap_or_else(|_| panic!("{url} did not answer within 30s"))
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let bytes = response.bytes().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// One call through `url`; its result, or its error object as `Err`.
pub async fn rpc_at(url: &str, method: &str, params: Value) -> Result<Value, Value> {
    let answer =
        post_json(url, &json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })).await;
    match answer.get("error") {
        Some(e) if !e.is_null() => Err(e.clone()),
        _ => Ok(answer["result"].clone()),
    }
}
