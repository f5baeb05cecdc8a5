//! An HTTP proxy in front of anvil that fails on purpose: a share of requests get a 503, a 429
//! with `Retry-After`, a reset connection, a truncated JSON body, or (for multi-block
//! `eth_getLogs`) a provider's "too many results" error. The rest are forwarded as they are.
//! One request per connection keeps it small; clients reconnect as they would to a real node.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Default)]
pub struct Injected {
    pub forwarded: AtomicU64,
    pub http_503: AtomicU64,
    pub http_429: AtomicU64,
    pub resets: AtomicU64,
    pub truncated: AtomicU64,
    pub too_many_results: AtomicU64,
}

impl Injected {
    pub fn faults(&self) -> u64 {
        [&self.http_503, &self.http_429, &self.resets, &self.truncated, &self.too_many_results]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

pub struct FaultProxy {
    url: String,
    pub injected: Arc<Injected>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port and forwards to `upstream`, failing `rate` of the requests.
    pub async fn start(upstream: String, rate: f64, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let injected = Arc::new(Injected::default());
        let counters = injected.clone();
        let client = reqwest::Client::new();
        let task = tokio::spawn(async move {
            let rng = Arc::new(std::sync::Mutex::new(fastrand::Rng::with_seed(seed)));
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (client, upstream, counters, rng) =
                    (client.clone(), upstream.clone(), counters.clone(), rng.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &client, &upstream, rate, &counters, &rng).await;
                });
            }
        });
        FaultProxy { url, injected, task }
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
    rng: &std::sync::Mutex<fastrand::Rng>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    let mut stream = reader.into_inner();
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
    counters.forwarded.fetch_add(1, Ordering::Relaxed);
    let answer = forward(client, upstream, body).await;
    respond(&mut stream, "200 OK", &[], &answer).await
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

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}
