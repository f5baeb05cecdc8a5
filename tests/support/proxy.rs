//! An HTTP proxy in front of anvil that fails on purpose: a share of requests get a 503, a 429
//! with `Retry-After`, a reset connection, a truncated JSON body, or (for multi-block
//! `eth_getLogs`) a provider's "too many results" error. The rest are forwarded as they are.
//! One request per connection keeps it small; clients reconnect as they would to a real node.
//!
//! On demand it also holds `eth_sendRawTransaction` requests ([`SendHold`]): before forwarding
//! (a client killed meanwhile never broadcast: the request is dropped), or after forwarding with
//! the answer held (the node has the transaction, the client never hears so). Only a transaction
//! the node has not been given yet is held; repeats of one it has pass. Every raw transaction
//! that passes is recorded, so that a test can tell what its client signed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::http::{read_request, respond};

#[derive(Debug, Default)]
pub struct Injected {
    pub forwarded: AtomicU64,
    pub http_503: AtomicU64,
    pub http_429: AtomicU64,
    pub resets: AtomicU64,
    pub truncated: AtomicU64,
    pub too_many_results: AtomicU64,
    /// While set, every connection is reset before a request is read, as by a node that is down
    /// (not counted as a fault: the test switched the node off).
    pub down: AtomicBool,
}

impl Injected {
    pub fn faults(&self) -> u64 {
        [&self.http_503, &self.http_429, &self.resets, &self.truncated, &self.too_many_results]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// Where a held `eth_sendRawTransaction` waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldAt {
    /// Before it reaches the node; dropped if the client goes away meanwhile.
    BeforeForwarding,
    /// After the node took it: the answer waits.
    BeforeAnswering,
}

#[derive(Debug, Default)]
struct HoldPlan {
    /// Sends still to let through before holding.
    skip: u64,
    /// Sends still to hold.
    hold: u64,
    duration: Duration,
    at: Option<HoldAt>,
}

/// One held `eth_sendRawTransaction`, once its hold ended.
#[derive(Debug, Clone)]
pub struct Held {
    /// The raw transaction, hex as sent.
    pub raw: String,
    pub at: HoldAt,
    /// Whether the node got it (`false`: the client went away during a hold before forwarding).
    pub reached_node: bool,
}

/// Holds `eth_sendRawTransaction` requests when armed, and records every raw transaction seen.
#[derive(Debug, Default)]
pub struct SendHold {
    plan: Mutex<HoldPlan>,
    /// Sends being held right now (for `BeforeAnswering`: forwarded, answer held).
    pub holding: AtomicU64,
    /// Sends held so far.
    pub held: AtomicU64,
    /// Held sends whose client went away before the hold ended: never forwarded.
    pub abandoned: AtomicU64,
    /// Every raw transaction (hex, as sent) in arrival order, held or not.
    raw: Mutex<Vec<String>>,
    /// The raw transactions forwarded to the node so far.
    given: Mutex<std::collections::HashSet<String>>,
    /// Every hold that ended, in order.
    log: Mutex<Vec<Held>>,
}

impl SendHold {
    /// Lets `skip` sends of transactions new to the node through, then holds the next `hold`
    /// such sends for `duration` each, at `at`.
    pub fn arm(&self, skip: u64, hold: u64, duration: Duration, at: HoldAt) {
        *self.plan.lock().expect("plan") = HoldPlan { skip, hold, duration, at: Some(at) };
    }

    /// Holds nothing more.
    pub fn disarm(&self) {
        *self.plan.lock().expect("plan") = HoldPlan::default();
    }

    /// The raw transactions seen so far.
    pub fn raw(&self) -> Vec<String> {
        self.raw.lock().expect("raw").clone()
    }

    /// The holds that ended so far.
    pub fn held_log(&self) -> Vec<Held> {
        self.log.lock().expect("log").clone()
    }

    fn next(&self, raw: &str) -> Option<(Duration, HoldAt)> {
        if self.given.lock().expect("given").contains(raw) {
            return None;
        }
        let mut plan = self.plan.lock().expect("plan");
        let at = plan.at?;
        if plan.hold == 0 {
            return None;
        }
        if plan.skip > 0 {
            plan.skip -= 1;
            return None;
        }
        plan.hold -= 1;
        Some((plan.duration, at))
    }
}

pub struct FaultProxy {
    url: String,
    pub injected: Arc<Injected>,
    pub sends: Arc<SendHold>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port and forwards to `upstream`, failing `rate` of the requests.
    pub async fn start(upstream: String, rate: f64, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let injected = Arc::new(Injected::default());
        let sends = Arc::new(SendHold::default());
        let (counters, holds) = (injected.clone(), sends.clone());
        let client = reqwest::Client::new();
        let task = tokio::spawn(async move {
            let rng = Arc::new(std::sync::Mutex::new(fastrand::Rng::with_seed(seed)));
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (client, upstream, counters, holds, rng) =
                    (client.clone(), upstream.clone(), counters.clone(), holds.clone(), rng.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &client, &upstream, rate, &counters, &holds, &rng).await;
                });
            }
        });
        FaultProxy { url, injected, sends, task }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    stream: TcpStream,
    client: &reqwest::Client,
    upstream: &str,
    rate: f64,
    counters: &Injected,
    holds: &SendHold,
    rng: &std::sync::Mutex<fastrand::Rng>,
) -> std::io::Result<()> {
    if counters.down.load(Ordering::Relaxed) {
        let _ = stream.set_zero_linger();
        drop(stream);
        return Ok(());
    }
    let Some((mut stream, body)) = read_request(stream).await? else { return Ok(()) };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let multi_block_logs = request["method"] == "eth_getLogs" && {
        let f = &request["params"][0];
        f["fromBlock"] != f["toBlock"]
    };
    let (roll, pick) = {
        let mut rng = rng.lock().expect("rng");
        (rng.f64(), rng.u32(0..5))
    };
    if roll < rate {
        match pick {
            0 => {
                counters.http_503.fetch_add(1, Ordering::Relaxed);
                return respond(&mut stream, "503 Service Unavailable", &[], b"").await;
            }
            1 => {
                counters.http_429.fetch_add(1, Ordering::Relaxed);
                return respond(&mut stream, "429 Too Many Requests", &[("Retry-After", "1")], b"").await;
            }
            2 => {
                counters.resets.fetch_add(1, Ordering::Relaxed);
                // Linger 0: closing sends a RST, as a dying node or load balancer does.
                let _ = stream.set_zero_linger();
                drop(stream);
                return Ok(());
            }
            3 => {
                counters.truncated.fetch_add(1, Ordering::Relaxed);
                let full = forward(client, upstream, body).await;
                let cut = &full[..full.len() / 2];
                return respond(&mut stream, "200 OK", &[], cut).await;
            }
            _ if multi_block_logs => {
                counters.too_many_results.fetch_add(1, Ordering::Relaxed);
                let error = json!({
                    "jsonrpc": "2.0",
                    "id": request["id"],
                    "error": { "code": -32005, "message": "query returned more than 10000 results" },
                });
                return respond(&mut stream, "200 OK", &[], error.to_string().as_bytes()).await;
            }
            _ => {
                counters.http_503.fetch_add(1, Ordering::Relaxed);
                return respond(&mut stream, "503 Service Unavailable", &[], b"").await;
            }
        }
    }
    let send = request["method"] == "eth_sendRawTransaction";
    let raw = request["params"][0].as_str().filter(|_| send).unwrap_or_default().to_string();
    if send {
        holds.raw.lock().expect("raw").push(raw.clone());
    }
    let hold = if send { holds.next(&raw) } else { None };
    let give = |raw: &str| {
        if send {
            holds.given.lock().expect("given").insert(raw.to_string());
        }
    };
    if let Some((duration, at)) = hold {
        holds.held.fetch_add(1, Ordering::Relaxed);
        let answer = match at {
            HoldAt::BeforeForwarding => {
                holds.holding.fetch_add(1, Ordering::Relaxed);
                let gone = tokio::select! {
                    _ = tokio::time::sleep(duration) => false,
                    _ = client_gone(&mut stream) => true,
                };
                if !gone {
                    give(&raw);
                }
                holds.log.lock().expect("log").push(Held { raw, at, reached_node: !gone });
                holds.holding.fetch_sub(1, Ordering::Relaxed);
                if gone {
                    holds.abandoned.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                forward(client, upstream, body).await
            }
            HoldAt::BeforeAnswering => {
                give(&raw);
                let answer = forward(client, upstream, body).await;
                holds.holding.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(duration).await;
                holds.log.lock().expect("log").push(Held { raw, at, reached_node: true });
                holds.holding.fetch_sub(1, Ordering::Relaxed);
                answer
            }
        };
        counters.forwarded.fetch_add(1, Ordering::Relaxed);
        return respond(&mut stream, "200 OK", &[], &answer).await;
    }
    give(&raw);
    counters.forwarded.fetch_add(1, Ordering::Relaxed);
    let answer = forward(client, upstream, body).await;
    respond(&mut stream, "200 OK", &[], &answer).await
}

/// Resolves when the client closes its end (or the connection breaks); a client waiting for its
/// answer sends nothing more.
async fn client_gone(stream: &mut TcpStream) {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn forward(client: &reqwest::Client, upstream: &str, body: Vec<u8>) -> Vec<u8> {
    let response = client
        .post(upstream)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("anvil answers the proxy");
    response.bytes().await.expect("anvil's body").to_vec()
}
