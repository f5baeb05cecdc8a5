//! A Google Pub/Sub REST API on 127.0.0.1 for the `gcp-pubsub` sink: publish
//! (`POST /v1/projects/{p}/topics/{t}:publish`) and topic lookup (`GET /v1/projects/{p}/topics/{t}`),
//! storing what it is sent (data decoded, attributes, ordering key) under sequential message ids.
//!
//! - **Auth, optional**: [`PubsubServer::with_credentials`] makes it require a bearer token (401
//!   without one, 403 with another) and play the OAuth token endpoint of a service-account key
//!   file it writes: `gcp_auth` exchanges a signed JWT at the file's `token_uri` for that token.
//! - **Faults at run time**: a status for the next K publish requests (500, 429 with
//!   `Retry-After`, 400 with a body), and a delay before every answer.
//! - HTTP/1.1 with keep-alive, each connection served by its own task, so that `ferry watch` can
//!   publish many requests at once over pooled connections. Dropping the server ends them all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::http::{Request, read_request_kept};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One message as the server stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: String,
    /// `projects/{p}/topics/{t}`.
    pub topic: String,
    /// The data, base64-decoded.
    pub data: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
    pub ordering_key: Option<String>,
}

impl Published {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// A status the next `left` publish requests get instead of being stored.
struct Fault {
    status: u16,
    left: usize,
    retry_after: Option<u64>,
    body: String,
}

#[derive(Default)]
struct State {
    topics: BTreeSet<String>,
    messages: Vec<Published>,
    /// The bearer token required on the API and issued by `/token`.
    token: Option<String>,
    fault: Option<Fault>,
    delay: Duration,
    /// Each publish request's body size, answered or not.
    publish_sizes: Vec<usize>,
    /// The `Authorization` header of each API request (publish and topic lookup).
    authorizations: Vec<Option<String>>,
    /// The claims of each JWT exchanged at `/token`.
    assertions: Vec<Value>,
}

pub struct PubsubServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

impl Drop for PubsubServer {
    fn drop(&mut self) {
        // The accept task owns the connections' JoinSet: aborting it ends them too.
        self.accept.abort();
    }
}

impl PubsubServer {
    /// Serves on a free port, with the topics `projects/{p}/topics/{t}` given as `(p, t)`.
    pub async fn start(topics: &[(&str, &str)]) -> PubsubServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().expect("the listener's address");
        let state = Arc::new(Mutex::new(State::default()));
        for (project, topic) in topics {
            lock(&state).topics.insert(format!("projects/{project}/topics/{topic}"));
        }
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                // An answer is written in two parts: without this, each waits for the client's
                // delayed ACK (~40 ms) on a kept connection.
                let _ = stream.set_nodelay(true);
                while connections.try_join_next().is_some() {}
                let state = shared.clone();
                connections.spawn(async move {
                    // A client that leaves mid-request is no failure of the server.
                    let _ = serve(stream, &state).await;
                });
            }
        });
        PubsubServer { addr, state, accept }
    }

    /// `127.0.0.1:port`, for `PUBSUB_EMULATOR_HOST`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:port`, for `FERRY_PUBSUB_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requires a fresh bearer token from now on and writes a service-account key file (a
    /// throwaway RSA key made by `openssl`) whose `token_uri` is this server, which issues that
    /// token. Returns the file and the token.
    pub fn with_credentials(&self, dir: &Path) -> (PathBuf, String) {
        let token = format!("test-token-{:016x}", fastrand::u64(..));
        lock(&self.state).token = Some(token.clone());
        (service_account_key(dir, &format!("{}/token", self.url())), token)
    }

    pub fn create_topic(&self, project: &str, topic: &str) {
        lock(&self.state).topics.insert(format!("projects/{project}/topics/{topic}"));
    }

    /// The next `count` publish requests are answered `status` with `body` (and `Retry-After`
    /// when given), storing nothing.
    pub fn fail_next(&self, status: u16, count: usize, retry_after: Option<u64>, body: &str) {
        lock(&self.state).fault = Some(Fault { status, left: count, retry_after, body: body.to_string() });
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state).delay = delay;
    }

    /// Everything published, in the order the ids were given.
    pub fn messages(&self) -> Vec<Published> {
        lock(&self.state).messages.clone()
    }

    /// How often each `idempotency_key` was published.
    pub fn key_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for message in &lock(&self.state).messages {
            *counts
                .entry(message.attribute("idempotency_key").unwrap_or_default().to_string())
                .or_default() += 1;
        }
        counts
    }

    /// The body size of each publish request received, including refused ones.
    pub fn publish_sizes(&self) -> Vec<usize> {
        lock(&self.state).publish_sizes.clone()
    }

    /// The `Authorization` header of each API request.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        lock(&self.state).authorizations.clone()
    }

    /// The claims of each JWT exchanged for a token.
    pub fn assertions(&self) -> Vec<Value> {
        lock(&self.state).assertions.clone()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().expect("the Pub/Sub server's state")
}

/// Writes `service-account.json` into `dir`: a fresh 2048-bit RSA key in PKCS#8 (what `gcp_auth`
/// reads), made for this test only, and `token_uri`.
pub fn service_account_key(dir: &Path, token_uri: &str) -> PathBuf {
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .expect("openssl to run");
    assert!(out.status.success(), "openssl genpkey: {}", String::from_utf8_lossy(&out.stderr));
    let pem = String::from_utf8(out.stdout).expect("a PEM key");
    assert!(pem.contains("BEGIN PRIVATE KEY"), "openssl wrote PKCS#8");
    let key = json!({
        "type": "service_account",
        "project_id": "ferry-test",
        "private_key_id": "throwaway",
        "private_key": pem,
        "client_email": "ferry-test@ferry-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    });
    let path = dir.join("service-account.json");
    std::fs::write(&path, key.to_string()).expect("the key file written");
    path
}

/// An answer: status, extra headers, JSON body.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn answer(status: u16, body: Value) -> Answer {
    Answer { status, headers: Vec::new(), body: body.to_string() }
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    answer(status, json!({"error": {"code": status, "message": message, "status": code}}))
}

/// Serves requests on one connection until the client closes it or asks to.
async fn serve(stream: TcpStream, state: &Mutex<State>) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request_kept(&mut reader).await? {
        let (reply, delay) = {
            let mut state = lock(state);
            (route(&mut state, &request), state.delay)
        };
        tokio::time::sleep(delay).await;
        let close = request.close;
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            reply.status,
            reason(reply.status),
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(if close { "Connection: close\r\n\r\n" } else { "\r\n" });
        let stream = reader.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(reply.body.as_bytes()).await?;
        stream.flush().await?;
        if close {
            return stream.shutdown().await;
        }
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn route(state: &mut State, request: &Request) -> Answer {
    if request.method == "POST" && request.target == "/token" {
        return issue_token(state, request);
    }
    let Some(rest) = request.target.strip_prefix("/v1/") else {
        return error(404, "NOT_FOUND", "no such route");
    };
    state.authorizations.push(request.header("authorization").map(str::to_string));
    if let Some(token) = &state.token {
        match request.header("authorization") {
            None => {
                return error(
                    401,
                    "UNAUTHENTICATED",
                    "Request is missing required authentication credential.",
                );
            }
            Some(given) if given != format!("Bearer {token}") => {
                return error(403, "PERMISSION_DENIED", "The caller does not have permission");
            }
            Some(_) => {}
        }
    }
    match (request.method.as_str(), rest.strip_suffix(":publish")) {
        ("POST", Some(topic)) => publish(state, topic.to_string(), &request.body),
        ("GET", None) if state.topics.contains(rest) => answer(200, json!({"name": rest})),
        ("GET", None) => error(404, "NOT_FOUND", &format!("Resource not found (resource={rest}).")),
        _ => error(404, "NOT_FOUND", "no such route"),
    }
}

fn publish(state: &mut State, topic: String, body: &[u8]) -> Answer {
    state.publish_sizes.push(body.len());
    if let Some(fault) = &mut state.fault
        && fault.left > 0
    {
        fault.left -= 1;
        let mut reply = Answer { status: fault.status, headers: Vec::new(), body: fault.body.clone() };
        if let Some(seconds) = fault.retry_after {
            reply.headers.push(("Retry-After", seconds.to_string()));
        }
        return reply;
    }
    if !state.topics.contains(&topic) {
        return error(404, "NOT_FOUND", &format!("Resource not found (resource={topic})."));
    }
    let Some(messages) =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| v["messages"].as_array().cloned())
    else {
        return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    let mut stored = Vec::with_capacity(messages.len());
    for message in &messages {
        let Some(data) = message["data"].as_str().and_then(|d| STANDARD.decode(d).ok()) else {
            return error(400, "INVALID_ARGUMENT", "Invalid value at 'messages[0].data' (TYPE_BYTES)");
        };
        let attributes = message["attributes"]
            .as_object()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default();
        let ordering_key = message["orderingKey"].as_str().map(str::to_string);
        let id = (state.messages.len() + stored.len() + 1).to_string();
        stored.push(Published { id, topic: topic.clone(), data, attributes, ordering_key });
    }
    let ids: Vec<String> = stored.iter().map(|m| m.id.clone()).collect();
    state.messages.extend(stored);
    answer(200, json!({ "messageIds": ids }))
}

/// The service-account flow's token endpoint: a JWT bearer grant, whose claims are kept, for the
/// token the API requires.
fn issue_token(state: &mut State, request: &Request) -> Answer {
    let Some(token) = state.token.clone() else { return error(404, "NOT_FOUND", "no token endpoint") };
    let form = String::from_utf8_lossy(&request.body).to_string();
    let field = |name: &str| {
        url::form_urlencoded::parse(form.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    };
    if field("grant_type").as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return error(400, "invalid_grant", "not a JWT bearer grant");
    }
    let claims = field("assertion").and_then(|jwt| {
        let payload = jwt.split('.').nth(1)?.to_string();
        let bytes = URL_SAFE.decode(&payload).or_else(|_| URL_SAFE_NO_PAD.decode(&payload)).ok()?;
        serde_json::from_slice::<Value>(&bytes).ok()
    });
    let Some(claims) = claims else { return error(400, "invalid_grant", "no readable assertion") };
    state.assertions.push(claims);
    answer(200, json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}))
}
