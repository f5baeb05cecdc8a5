//! A webhook receiver as a user would write one, for the webhook sink's tests: a real HTTP/1.1
//! server on a free port of 127.0.0.1 (keep-alive, any number of connections at once) that checks
//! `X-Ferry-Signature` the way the README tells users to (HMAC-SHA256 of `"<timestamp>.<raw
//! body>"`, compared in constant time, a timestamp older than 5 minutes refused) and answers 401
//! when it does not hold.
//!
//! - [`WebhookReceiver::start`] serves on its own thread and runtime, so a test that blocks on a
//!   `ferry` child process does not starve it; dropping the receiver stops it.
//! - Every request is kept ([`WebhookReceiver::requests`]) with the status it got;
//!   [`WebhookReceiver::received`] is the POSTs it accepted (2xx), and
//!   [`WebhookReceiver::key_counts`] counts their idempotency keys: a key accepted twice counts
//!   2, which is how a test sees a duplicate delivery.
//! - What it answers is set at run time: [`Mode`] for every request, for the next few, or for
//!   one idempotency key (a poison message). A `Status`/`Answer` mode is the server failing
//!   before it looks at the request; `Ok` and `Stall` check the signature first.
//! - It measures requests in flight at once (read but not yet answered) and connections opened.
//!
//! `http.rs` reads one request per connection and closes; a receiver that ferry's pooled client
//! talks to must keep connections open, so this one reads requests off a kept reader.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::http::{Request, read_request_kept};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How old a signed timestamp may be, as the README's receiver example has it.
pub const MAX_AGE_S: u64 = 300;
/// What the receiver answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Checks the signature, then 200 `{"ok":true}`.
    Ok,
    /// This status, an empty body, whatever was sent.
    Status(u16),
    /// This status, these headers, this body, whatever was sent.
    Answer { status: u16, headers: Vec<(String, String)>, body: String },
    /// Checks the signature, holds the answer this long, then answers 200 (to whoever is still
    /// there): a receiver slower than ferry's timeout. The request counts as accepted, as it
    /// would at a receiver that did the work and answered late.
    Stall(Duration),
}

impl Mode {
    /// `status` with a `Retry-After: retry_after` header (`Mode::retry_after(429, "1")`).
    pub fn retry_after(status: u16, retry_after: &str) -> Mode {
        Mode::Answer {
            status,
            headers: vec![("Retry-After".into(), retry_after.into())],
            body: String::new(),
        }
    }

    /// `status` with this body.
    pub fn with_body(status: u16, body: &str) -> Mode {
        Mode::Answer { status, headers: Vec::new(), body: body.into() }
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The path and query.
    pub target: String,
    /// `Idempotency-Key`, empty when absent.
    pub key: String,
    /// Header names in lower case; a repeated header's values joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub body: Value,
    pub raw: Vec<u8>,
    /// What the receiver answered.
    pub status: u16,
    /// Why the receiver refused it itself (a bad or missing signature, an old timestamp); `None`
    /// when it accepted or a mode answered.
    pub refused: Option<String>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

struct State {
    mode: Mode,
    next: VecDeque<Mode>,
    by_key: HashMap<String, Mode>,
    requests: Vec<Received>,
    in_flight: usize,
    max_in_flight: usize,
    connections: usize,
}

struct Shared {
    secret: Option<String>,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("the receiver's state (a panicking holder is a failed test)")
    }
}

/// The running receiver; dropping it stops it.
pub struct WebhookReceiver {
    url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl WebhookReceiver {
    /// Listens on a free port of 127.0.0.1, answering `Mode::Ok`; with `secret`, every request
    /// must be signed with it.
    pub fn start(secret: Option<&str>) -> WebhookReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let url = format!("http://{}/hook", listener.local_addr().expect("its address"));
        let shared = Arc::new(Shared {
            secret: secret.map(str::to_string),
            state: Mutex::new(State {
                mode: Mode::Ok,
                next: VecDeque::new(),
                by_key: HashMap::new(),
                requests: Vec::new(),
                in_flight: 0,
                max_in_flight: 0,
                connections: 0,
            }),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = shared.clone();
        std::thread::Builder::new()
            .name("webhook-receiver".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the receiver's runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("the listener on tokio");
                    tokio::select! {
                        _ = stopped => {}
                        _ = accept(listener, served) => {}
                    }
                });
                // Stalled answers are still sleeping: drop them rather than wait.
                runtime.shutdown_background();
            })
            .expect("start the receiver's thread");
        WebhookReceiver { url, shared, stop: Some(stop) }
    }

    /// `http://127.0.0.1:PORT/hook` (any path is served the same).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Answers every request so from now on (and forgets modes set for the next requests).
    pub fn set_mode(&self, mode: Mode) {
        let mut state = self.shared.state();
        state.mode = mode;
        state.next.clear();
    }

    /// Answers the next `n` requests so, then as before.
    pub fn set_mode_next(&self, n: usize, mode: Mode) {
        self.shared.state().next.extend(std::iter::repeat_n(mode, n));
    }

    /// Answers every request with this idempotency key so, before any other mode; `Mode::Ok`
    /// takes the key back to the general mode.
    pub fn set_mode_for_key(&self, key: &str, mode: Mode) {
        let mut state = self.shared.state();
        if mode == Mode::Ok {
            state.by_key.remove(key);
        } else {
            state.by_key.insert(key.to_string(), mode);
        }
    }

    /// Every request read, with what it was answered, in the order the receiver decided.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.state().requests.clone()
    }

    /// The POSTs accepted (answered 2xx), duplicates included.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .state()
            .requests
            .iter()
            .filter(|r| r.method == "POST" && (200..300).contains(&r.status))
            .cloned()
            .collect()
    }

    /// How many times each idempotency key was accepted.
    pub fn key_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.received() {
            *counts.entry(r.key).or_insert(0) += 1;
        }
        counts
    }

    /// The most requests that were read and not yet answered at one time.
    pub fn max_in_flight(&self) -> usize {
        self.shared.state().max_in_flight
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.state().connections
    }

    /// Forgets the requests and the measures (modes stay).
    pub fn clear(&self) {
        let mut state = self.shared.state();
        state.requests.clear();
        state.max_in_flight = state.in_flight;
        state.connections = 0;
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: let some connections close before trying again.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.state().connections += 1;
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = serve(stream, &shared).await;
        });
    }
}

/// What to send back.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    hold: Duration,
}

/// Requests one after another on one connection, until the client closes it or asks to.
async fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let Some(request) = read_request_kept(&mut reader).await? else { return Ok(()) };
        let flight = InFlight::enter(shared);
        let answer = decide(shared, &request);
        tokio::time::sleep(answer.hold).await;
        write.write_all(&render(&answer, &request.method, request.close)).await?;
        drop(flight);
        if request.close {
            return write.shutdown().await;
        }
    }
}

/// Counts a request in flight from when it is read until it is answered or its client left.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> InFlight<'a> {
        let mut state = shared.state();
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.state().in_flight -= 1;
    }
}

/// The answer for one request, from the modes and the signature, and the request recorded.
fn decide(shared: &Shared, request: &Request) -> Answer {
    let key = request.headers.get("idempotency-key").cloned().unwrap_or_default();
    let mut state = shared.state();
    let mode = if request.method != "POST" {
        // A probe (HEAD, OPTIONS): the server is there.
        Mode::Status(200)
    } else if let Some(mode) = state.by_key.get(&key) {
        mode.clone()
    } else if let Some(mode) = state.next.pop_front() {
        mode
    } else {
        state.mode.clone()
    };
    let mut refused = None;
    let answer = match mode {
        Mode::Status(status) => {
            Answer { status, headers: Vec::new(), body: Vec::new(), hold: Duration::ZERO }
        }
        Mode::Answer { status, headers, body } => {
            Answer { status, headers, body: body.into_bytes(), hold: Duration::ZERO }
        }
        Mode::Ok | Mode::Stall(_) => {
            let hold = if let Mode::Stall(hold) = mode { hold } else { Duration::ZERO };
            match shared.secret.as_deref().map(|secret| verify(secret, request, unix_now())) {
                Some(Err(why)) => {
                    refused = Some(why.clone());
                    let headers = vec![("Content-Type".to_string(), "text/plain".to_string())];
                    Answer { status: 401, headers, body: why.into_bytes(), hold: Duration::ZERO }
                }
                None | Some(Ok(())) => {
                    Answer { status: 200, headers: Vec::new(), body: br#"{"ok":true}"#.to_vec(), hold }
                }
            }
        }
    };
    state.requests.push(Received {
        method: request.method.clone(),
        target: request.target.clone(),
        key,
        headers: request.headers.clone(),
        body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
        raw: request.body.clone(),
        status: answer.status,
        refused,
    });
    answer
}

/// The check a user's receiver makes: the signature is HMAC-SHA256 of `"<timestamp>.<raw body>"`
/// under the shared secret, compared in constant time (`verify_slice`), and the timestamp is
/// recent (a replayed request is refused by its age).
fn verify(secret: &str, request: &Request, now: u64) -> Result<(), String> {
    let timestamp = request.headers.get("x-ferry-timestamp").ok_or("no X-Ferry-Timestamp")?;
    let at: u64 = timestamp.parse().map_err(|_| "X-Ferry-Timestamp is not Unix seconds")?;
    if now.abs_diff(at) > MAX_AGE_S {
        return Err(format!("X-Ferry-Timestamp {at} is more than {MAX_AGE_S} s from now ({now})"));
    }
    let signature = request.headers.get("x-ferry-signature").ok_or("no X-Ferry-Signature")?;
    let given = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or("X-Ferry-Signature is not sha256=<hex>")?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    mac.verify_slice(&given).map_err(|_| "X-Ferry-Signature does not match".to_string())
}

fn render(answer: &Answer, method: &str, close: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        answer.status,
        reason(answer.status),
        answer.body.len(),
        if close { "close" } else { "keep-alive" }
    );
    if !answer.body.is_empty() && !answer.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if method != "HEAD" {
        bytes.extend_from_slice(&answer.body);
    }
    bytes
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").as_secs()
}
