//! The `gcp-pubsub` sink: messages published through the Pub/Sub REST API
//! (`POST {api}/v1/projects/{project}/topics/{topic}:publish`), up to 1,000 messages and 9 MB a
//! request, requests in flight up to the target's concurrency. Each message's data is the JSON
//! line, with the attributes `idempotency_key`, `source` and `event`, and the source as its
//! ordering key when the target asks for one. The ack is the message id Pub/Sub gave it.
//!
//! Where the API is ([`Api`]): Google's, authenticated by a bearer token for the `pubsub` scope
//! from the service-account key in `credentials_file` or the environment's default credentials
//! (`gcp_auth`: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's, the metadata server);
//! `FERRY_PUBSUB_ENDPOINT` moves it (a regional endpoint, a test server), still authenticated;
//! `PUBSUB_EMULATOR_HOST` (`host:port`) is the emulator, over plain HTTP without a token, as
//! Google's own client libraries do.
//!
//! Outcomes are read as for a webhook: 2xx delivered; 408, 429, 5xx, a timeout or a lost
//! connection retry (after `Retry-After` seconds when given); any other 4xx fails with the status
//! and the start of the answer. A token that cannot be had now is a retry; a key file that cannot
//! be read or used is a `Config` error at connect. Pub/Sub cannot be asked what it already holds,
//! so recovery sends again (at least once, with the idempotency key to dedupe on). Tokens are
//! never logged or shown.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::stream::{self, StreamExt};
use gcp_auth::TokenProvider;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use serde_json::json;

use super::{Message, Outcome, SinkError};
use crate::config::PubsubPlan;

/// The emulator's `host:port`: plain HTTP, no token.
pub const EMULATOR_ENV: &str = "PUBSUB_EMULATOR_HOST";
/// The API endpoint override (a regional endpoint, a test server), authenticated as Google's.
pub const ENDPOINT_ENV: &str = "FERRY_PUBSUB_ENDPOINT";
/// The scope a token is asked for.
const SCOPE: &str = "https://www.googleapis.com/auth/pubsub";
const GOOGLE_API: &str = "https://pubsub.googleapis.com";
/// Pub/Sub takes at most 1,000 messages and 10 MB a publish request; 9 MB leaves room.
const MAX_MESSAGES: usize = 1000;
const MAX_REQUEST_BYTES: usize = 9_000_000;
/// How much of a refusal's body a reason quotes.
const BODY_SHOWN: usize = 200;

/// Where the Pub/Sub API is, and whether it takes a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    /// `PUBSUB_EMULATOR_HOST`: `http://{host}`, no token.
    Emulator { host: String },
    /// Google's API, or `FERRY_PUBSUB_ENDPOINT`: a bearer token from the credentials.
    Google { base: String },
}

impl Api {
    /// From `PUBSUB_EMULATOR_HOST`, else `FERRY_PUBSUB_ENDPOINT`, else Google's endpoint.
    pub fn from_env() -> Result<Api, SinkError> {
        Api::choose(std::env::var(EMULATOR_ENV).ok(), std::env::var(ENDPOINT_ENV).ok())
    }

    /// The decision of [`Api::from_env`], given the two variables (empty is unset).
    pub fn choose(emulator: Option<String>, endpoint: Option<String>) -> Result<Api, SinkError> {
        let set = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if let Some(host) = set(emulator) {
            if host.contains("://") || host.contains('/') {
                return Err(SinkError::Config(format!(
                    "{EMULATOR_ENV}=`{host}` is not a host:port (e.g. `localhost:8085`)"
                )));
            }
            return Ok(Api::Emulator { host });
        }
        let Some(endpoint) = set(endpoint) else { return Ok(Api::Google { base: GOOGLE_API.into() }) };
        match url::Url::parse(&endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Ok(Api::Google { base: endpoint.trim_end_matches('/').to_string() })
            }
            _ => Err(SinkError::Config(format!(
                "{ENDPOINT_ENV}=`{endpoint}` is not an http(s) URL (e.g. `https://europe-west1-pubsub.googleapis.com`)"
            ))),
        }
    }

    fn base(&self) -> String {
        match self {
            Api::Emulator { host } => format!("http://{host}"),
            Api::Google { base } => base.clone(),
        }
    }
}

pub struct Pubsub {
    http: reqwest::Client,
    /// `projects/{project}/topics/{topic}`.
    topic: String,
    base: String,
    /// `None` for the emulator.
    auth: Option<Auth>,
    ordering_key: bool,
    concurrency: usize,
    timeout: Duration,
}

/// Where tokens come from, and how to name it in a reason.
struct Auth {
    provider: Arc<dyn TokenProvider>,
    from: String,
}

impl Pubsub {
    /// Connects where [`Api::from_env`] says.
    pub async fn connect(plan: &PubsubPlan, concurrency: usize) -> Result<Self, SinkError> {
        Pubsub::connect_to(plan, concurrency, Api::from_env()?).await
    }

    /// Connects to `api`: loads the credentials (a key file that cannot be read or used is a
    /// `Config` error); no request is made yet.
    pub async fn connect_to(plan: &PubsubPlan, concurrency: usize, api: Api) -> Result<Self, SinkError> {
        let http = reqwest::Client::builder()
            .timeout(plan.timeout)
            .build()
            .map_err(|e| SinkError::Config(format!("cannot build an HTTP client: {}", chain(&e))))?;
        let auth = match &api {
            Api::Emulator { .. } => None,
            Api::Google { .. } => Some(credentials(plan).await?),
        };
        Ok(Pubsub {
            http,
            topic: format!("projects/{}/topics/{}", plan.project, plan.topic),
            base: api.base(),
            auth,
            ordering_key: plan.ordering_key,
            concurrency: concurrency.max(1),
            timeout: plan.timeout,
        })
    }

    /// Publishes the batch in requests of up to 1,000 messages and 9 MB, `concurrency` at a time;
    /// one outcome per message, in order.
    pub async fn send(&mut self, batch: &[Message]) -> Vec<Outcome> {
        let requests = requests(batch, self.ordering_key);
        let this = &*self;
        let answers: Vec<Vec<Outcome>> = stream::iter(requests)
            .map(|(count, body)| this.publish(count, body))
            .buffered(self.concurrency)
            .collect()
            .await;
        answers.into_iter().flatten().collect()
    }

    /// One publish request of `count` messages.
    async fn publish(&self, count: usize, body: String) -> Vec<Outcome> {
        let retry = |reason: String, after| vec![Outcome::Retry { reason, after }; count];
        let url = format!("{}/v1/{}:publish", self.base, self.topic);
        let mut request = self.http.post(url).header(CONTENT_TYPE, "application/json").body(body);
        if let Some(auth) = &self.auth {
            match auth.bearer().await {
                Ok(bearer) => request = request.header(AUTHORIZATION, bearer),
                Err(reason) => return retry(reason, None),
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return retry(self.transport(&e), None),
        };
        let status = response.status();
        let after = retry_after(response.headers());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => {
                return retry(
                    format!("HTTP {status}, then the answer was lost: {}", self.transport(&e)),
                    after,
                );
            }
        };
        if status.is_success() {
            let ids = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|answer| {
                let ids = answer.get("messageIds")?.as_array()?;
                ids.iter().map(|id| id.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()
            });
            return match ids {
                Some(ids) if ids.len() == count => {
                    ids.into_iter().map(|id| Outcome::Delivered { ack: format!("message {id}") }).collect()
                }
                _ => retry(format!("HTTP {status} without {count} message ids: {}", shown(&body)), None),
            };
        }
        let reason = format!("HTTP {status}: {}", shown(&body));
        if retryable(status) { retry(reason, after) } else { vec![Outcome::Failed { reason }; count] }
    }

    /// A request that got no answer, in words: timed out, no connection, or what went wrong.
    fn transport(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!("no answer from {} within {}", self.base, humantime::format_duration(self.timeout))
        } else if e.is_connect() {
            format!("cannot connect to {}: {}", self.base, chain(e))
        } else {
            chain(e)
        }
    }
}

impl Auth {
    /// `Bearer <token>`, marked sensitive so that no Debug output shows it.
    async fn bearer(&self) -> Result<HeaderValue, String> {
        let token = self
            .provider
            .token(&[SCOPE])
            .await
            .map_err(|e| format!("no access token from {}: {}", self.from, chain(&e)))?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.as_str()))
            .map_err(|_| format!("the access token from {} is not a valid header value", self.from))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// The token source: the key file, checked here so that a bad one is named at connect, or the
/// environment's default credentials.
async fn credentials(plan: &PubsubPlan) -> Result<Auth, SinkError> {
    let Some(path) = &plan.credentials_file else {
        let provider = gcp_auth::provider().await.map_err(|e| {
            SinkError::Config(format!(
                "no Google credentials found ({e}): set `credentials_file` to a service-account key, \
                 set GOOGLE_APPLICATION_CREDENTIALS, or run where default credentials exist"
            ))
        })?;
        return Ok(Auth { provider, from: "the default credentials".into() });
    };
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| SinkError::Config(format!("cannot read the credentials file {shown}: {e}")))?;
    // Only the structure is named in an error, never a value: the file holds a private key.
    let key: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        SinkError::Config(format!(
            "the credentials file {shown} is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if let Some(kind) = key.get("type").and_then(|t| t.as_str())
        && kind != "service_account"
    {
        return Err(SinkError::Config(format!(
            "the credentials file {shown} holds `{kind}` credentials, not a service-account key"
        )));
    }
    for field in ["private_key", "client_email", "token_uri"] {
        if !key.get(field).is_some_and(|v| v.is_string()) {
            return Err(SinkError::Config(format!(
                "the credentials file {shown} is not a service-account key: no `{field}`"
            )));
        }
    }
    let account = gcp_auth::CustomServiceAccount::from_json(&text)
        .map_err(|e| SinkError::Config(format!("the credentials file {shown}: {e}")))?;
    Ok(Auth { provider: Arc::new(account), from: format!("the credentials file {shown}") })
}

/// The batch as publish request bodies, each with its message count, in order.
fn requests(batch: &[Message], ordering_key: bool) -> Vec<(usize, String)> {
    const OPEN: &str = r#"{"messages":["#;
    const CLOSE: &str = "]}";
    let mut requests = Vec::new();
    let mut body = String::from(OPEN);
    let mut count = 0;
    for message in batch {
        let mut one = json!({
            "data": BASE64.encode(&message.body),
            "attributes": {
                "idempotency_key": message.key,
                "source": message.source,
                "event": message.event,
            },
        });
        if ordering_key {
            one["orderingKey"] = json!(message.source);
        }
        let one = one.to_string();
        let full = count == MAX_MESSAGES || body.len() + 1 + one.len() + CLOSE.len() > MAX_REQUEST_BYTES;
        if count > 0 && full {
            body.push_str(CLOSE);
            requests.push((count, std::mem::replace(&mut body, String::from(OPEN))));
            count = 0;
        }
        if count > 0 {
            body.push(',');
        }
        body.push_str(&one);
        count += 1;
    }
    if count > 0 {
        body.push_str(CLOSE);
        requests.push((count, body));
    }
    requests
}

/// 408, 429 and 5xx are worth another try; other refusals are final.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// `Retry-After` in seconds (the form Google's front ends send).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// The start of an answer's body, for a reason.
fn shown(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(BODY_SHOWN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < text.len() { "…" } else { "" };
    format!("{}{cut}", text[..end].trim())
}

/// An error with its causes, `a: b: c`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// `check-config --online`: the topic is there, asked with the credentials delivery would use.
pub async fn probe(plan: &PubsubPlan) -> Result<String, SinkError> {
    probe_at(plan, Api::from_env()?).await
}

/// [`probe`] against `api`.
pub async fn probe_at(plan: &PubsubPlan, api: Api) -> Result<String, SinkError> {
    let sink = Pubsub::connect_to(plan, 1, api).await?;
    let mut request = sink.http.get(format!("{}/v1/{}", sink.base, sink.topic));
    if let Some(auth) = &sink.auth {
        request = request.header(AUTHORIZATION, auth.bearer().await.map_err(SinkError::Config)?);
    }
    let response = request.send().await.map_err(|e| SinkError::Unavailable(sink.transport(&e)))?;
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    let topic = &sink.topic;
    match status {
        s if s.is_success() => Ok(format!("topic {topic} exists")),
        StatusCode::NOT_FOUND => Err(SinkError::Config(format!("no topic {topic} at {}", sink.base))),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            let from = sink.auth.as_ref().map_or("no credentials (emulator)", |a| a.from.as_str());
            Err(SinkError::Config(format!("{from}: refused for {topic}: HTTP {status}: {}", shown(&body))))
        }
        _ => Err(SinkError::Unavailable(format!("asking for {topic}: HTTP {status}: {}", shown(&body)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(i: usize, size: usize) -> Message {
        Message {
            key: format!("t/ev:1:{i}:0"),
            source: "src".into(),
            event: "Transfer".into(),
            body: "x".repeat(size),
        }
    }

    fn bodies(requests: &[(usize, String)]) -> Vec<serde_json::Value> {
        requests.iter().map(|(_, body)| serde_json::from_str(body).expect("a publish body is JSON")).collect()
    }

    #[test]
    fn api_prefers_the_emulator_then_the_endpoint_then_google() {
        let some = |s: &str| Some(s.to_string());
        let emulator = Api::choose(some("127.0.0.1:8085"), some("https://x.example")).expect("the emulator");
        assert_eq!(emulator, Api::Emulator { host: "127.0.0.1:8085".into() });
        assert_eq!(emulator.base(), "http://127.0.0.1:8085");
        let endpoint =
            Api::choose(some(""), some("https://europe-west1-pubsub.googleapis.com/")).expect("an endpoint");
        assert_eq!(endpoint, Api::Google { base: "https://europe-west1-pubsub.googleapis.com".into() });
        let google = Api::choose(None, None).expect("google");
        assert_eq!(google, Api::Google { base: GOOGLE_API.into() });
        assert!(matches!(Api::choose(some("http://h:1"), None), Err(SinkError::Config(_))));
        assert!(matches!(Api::choose(None, some("pubsub.googleapis.com")), Err(SinkError::Config(_))));
    }

    #[test]
    fn requests_hold_at_most_a_thousand_messages() {
        let batch: Vec<Message> = (0..2500).map(|i| message(i, 10)).collect();
        let split = requests(&batch, true);
        assert_eq!(split.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1000, 1000, 500]);
        let bodies = bodies(&split);
        assert_eq!(bodies[2]["messages"][499]["attributes"]["idempotency_key"], "t/ev:1:2499:0");
        assert_eq!(bodies[0]["messages"][0]["orderingKey"], "src");
        assert_eq!(bodies[0]["messages"][0]["data"], BASE64.encode("x".repeat(10)));
    }

    #[test]
    fn requests_stay_under_nine_megabytes() {
        // Each message is 4 MB of base64: two fit in 9 MB, a third does not.
        let batch: Vec<Message> = (0..5).map(|i| message(i, 3_000_000)).collect();
        let split = requests(&batch, false);
        assert_eq!(split.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(split.iter().all(|(_, body)| body.len() <= MAX_REQUEST_BYTES));
        assert!(bodies(&split)[0]["messages"][0].get("orderingKey").is_none());
        // One message larger than a request still goes, alone (Pub/Sub then says whether it takes it).
        let big = requests(&[message(0, 7_000_000)], false);
        assert_eq!(big.len(), 1);
    }

    #[test]
    fn statuses_are_classified_as_for_a_webhook() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(code).expect("a status")), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 413] {
            assert!(!retryable(StatusCode::from_u16(code).expect("a status")), "{code}");
        }
    }

    #[test]
    fn shown_cuts_at_a_character_boundary() {
        let long = "é".repeat(150);
        let cut = shown(long.as_bytes());
        assert!(cut.ends_with('…') && cut.len() <= BODY_SHOWN + '…'.len_utf8(), "{cut}");
        assert_eq!(shown(b" short "), "short");
    }
}
