//! The `webhook` sink: each message POSTed as its JSON body to one URL, one attempt per call.
//!
//! Every request carries `Content-Type: application/json`, `Idempotency-Key: <delivery id>` (the
//! receiver dedupes on it: a webhook is at least once), `X-Ferry-Timestamp: <unix seconds>` and,
//! with a secret, `X-Ferry-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` (the
//! Stripe/GitHub convention, so a receiver can refuse replays by their age), plus the plan's own
//! headers. Redirects are not followed: a signed body re-sent to wherever a `Location` points
//! would hand it to a host nobody configured.
//!
//! What an answer means: 2xx delivered; 408, 429, 5xx, a timeout or a lost connection retry
//! (429 and 503 with their `Retry-After`); any other status fails for good, naming the status
//! and the start of what the receiver said. The URL shows masked in every text, and the secret
//! never does.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use sha2::Sha256;

use super::{Message, Outcome, SinkError};
use crate::config::{Secret, WebhookPlan, mask_url};
use crate::engine::rpc::error::parse_retry_after;
use crate::engine::rpc::transport_text;

/// How much of a refusing receiver's body a reason quotes.
const QUOTED_BODY: usize = 200;
/// How much of an accepted answer is read to keep its connection; a longer one closes it.
const DRAINED_BODY: usize = 64 << 10;

/// Why a message was not sent in an ordered sink: one of its source before it was not delivered.
pub const WAITING_FOR_EARLIER: &str = "waiting for an earlier item of the same source";

/// A connected webhook: one HTTP client (pooled connections) for every request of a command.
pub struct Webhook {
    client: reqwest::Client,
    /// Boxed: the `Sink` enum stays small next to the other kinds.
    target: Box<Target>,
    timeout: Duration,
    /// Requests in flight at once (1 when ordered).
    concurrency: usize,
    /// One at a time, in order per source.
    ordered: bool,
}

/// What every request is built from, checked once.
struct Target {
    url: Url,
    /// The URL masked (`mask_url`), for every text.
    shown: String,
    secret: Option<Secret>,
    /// The plan's own headers.
    headers: HeaderMap,
}

impl Webhook {
    /// `ordered`: one request at a time, in the batch's order, each source stopping at its first
    /// message not delivered (the plan's `ordered: true`, which also means a concurrency of 1).
    pub fn connect(plan: &WebhookPlan, concurrency: usize, ordered: bool) -> Result<Self, SinkError> {
        let (client, url, headers) = prepare(plan)?;
        Ok(Webhook {
            client,
            target: Box::new(Target {
                url,
                shown: mask_url(&plan.url),
                secret: plan.secret.clone(),
                headers,
            }),
            timeout: plan.timeout,
            concurrency: if ordered { 1 } else { concurrency.max(1) },
            ordered,
        })
    }

    /// One attempt per message, outcomes in the batch's order. Up to `concurrency` requests are in
    /// flight together; an ordered sink sends one at a time in the batch's order, and once a
    /// message is not delivered the later ones of its source wait for the next round.
    pub async fn send(&mut self, batch: &[Message]) -> Vec<Outcome> {
        if self.ordered {
            return self.send_ordered(batch).await;
        }
        // The futures are made first: a stream over a borrowing closure is not `Send` for every
        // lifetime, which the worker's spawned task needs.
        let posts: Vec<_> = batch.iter().map(|message| self.post(message)).collect();
        futures_util::stream::iter(posts).buffered(self.concurrency).collect().await
    }

    async fn send_ordered(&self, batch: &[Message]) -> Vec<Outcome> {
        let mut stopped: HashSet<&str> = HashSet::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for message in batch {
            if stopped.contains(message.source.as_str()) {
                outcomes.push(Outcome::Retry { reason: WAITING_FOR_EARLIER.to_string(), after: None });
                continue;
            }
            let outcome = self.post(message).await;
            if !matches!(outcome, Outcome::Delivered { .. }) {
                stopped.insert(&message.source);
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    /// POSTs one message and reads what the answer means.
    async fn post(&self, message: &Message) -> Outcome {
        let timestamp = unix_now();
        let mut headers = self.target.headers.clone();
        let Ok(key) = HeaderValue::from_str(&message.key) else {
            return Outcome::Failed {
                reason: format!("the idempotency key {:?} cannot be an HTTP header value", message.key),
            };
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(HeaderName::from_static("idempotency-key"), key);
        headers.insert(HeaderName::from_static("x-ferry-timestamp"), HeaderValue::from(timestamp));
        if let Some(secret) = &self.target.secret {
            let signed = signature(secret.0.as_bytes(), timestamp, &message.body);
            // Hex and ASCII: always a valid value. Sensitive keeps it out of any Debug output.
            if let Ok(mut value) = HeaderValue::from_str(&signed) {
                value.set_sensitive(true);
                headers.insert(HeaderName::from_static("x-ferry-signature"), value);
            }
        }
        let sent = self
            .client
            .post(self.target.url.clone())
            .headers(headers)
            .body(message.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => self.classify(response).await,
            Err(e) => Outcome::Retry { reason: self.transport_reason(&e), after: None },
        }
    }

    async fn classify(&self, response: reqwest::Response) -> Outcome {
        let status = response.status();
        let code = status.as_u16();
        if status.is_success() {
            drain(response).await;
            return Outcome::Delivered { ack: format!("HTTP {code}") };
        }
        if status.is_redirection() {
            let to = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|location| match self.target.url.join(location) {
                    Ok(target) => mask_url(target.as_str()),
                    Err(_) => "an unreadable Location".to_string(),
                })
                .unwrap_or_else(|| "no Location".to_string());
            return Outcome::Failed {
                reason: format!(
                    "HTTP {code} to {to}: {} redirects, and ferry does not follow them",
                    self.target.shown
                ),
            };
        }
        let after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, SystemTime::now())),
            _ => None,
        };
        let said = quote_body(response).await;
        let reason = if said.is_empty() { format!("HTTP {code}") } else { format!("HTTP {code}: {said}") };
        if is_retryable(status) { Outcome::Retry { reason, after } } else { Outcome::Failed { reason } }
    }

    fn transport_reason(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!("{}: no answer within {:?}", self.target.shown, self.timeout)
        } else {
            format!("{}: {}", self.target.shown, transport_text(e))
        }
    }
}

/// `check-config --online`: a `HEAD` to the URL with the plan's headers. Any HTTP status means
/// the receiver is there (a `HEAD` is often 404 or 405 on a POST route); a name that does not
/// resolve, a refused connection or no answer is `Unavailable`.
pub async fn probe(plan: &WebhookPlan) -> Result<String, SinkError> {
    let (client, url, headers) = prepare(plan)?;
    match client.head(url).headers(headers).send().await {
        Ok(response) => Ok(format!("HTTP {}", response.status().as_u16())),
        Err(e) => {
            let shown = mask_url(&plan.url);
            Err(SinkError::Unavailable(if e.is_timeout() {
                format!("webhook {shown}: no answer within {:?}", plan.timeout)
            } else {
                format!("webhook {shown}: {}", transport_text(&e))
            }))
        }
    }
}

/// `sha256=<lowercase hex HMAC-SHA256 of "<timestamp>.<body>" keyed by secret>`: the value of
/// `X-Ferry-Signature`, what a receiver recomputes from the header's timestamp and the raw body.
pub fn signature(secret: &[u8], timestamp: u64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The client (no redirects, the plan's timeout, pooled connections), the URL and the plan's
/// headers, each checked; the config check has refused what fails here, so this is a backstop.
fn prepare(plan: &WebhookPlan) -> Result<(reqwest::Client, Url, HeaderMap), SinkError> {
    let shown = mask_url(&plan.url);
    let url = Url::parse(&plan.url).map_err(|e| SinkError::Config(format!("webhook url {shown}: {e}")))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &plan.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SinkError::Config(format!("webhook header `{name}`: not a valid header name")))?;
        // The value may be a token: never quoted, and hidden from Debug output.
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| SinkError::Config(format!("webhook header `{name}`: not a valid header value")))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(plan.timeout)
        .connect_timeout(plan.timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            SinkError::Config(format!("webhook {shown}: cannot build an HTTP client: {}", transport_text(&e)))
        })?;
    Ok((client, url, headers))
}

/// 408, 429 and 5xx may pass; any other refusal will not.
fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The first [`QUOTED_BODY`] bytes of an answer, as text, trimmed. Reads no further than that,
/// so a large or endless body costs nothing; a body that breaks off gives what came.
async fn quote_body(mut response: reqwest::Response) -> String {
    let mut head = Vec::with_capacity(QUOTED_BODY);
    while head.len() < QUOTED_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    head.truncate(QUOTED_BODY);
    String::from_utf8_lossy(&head).trim().to_string()
}

/// Reads an accepted answer's body to its end (up to [`DRAINED_BODY`]): a connection goes back
/// to the pool only once its response is read, and a webhook answers thousands of requests.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while read < DRAINED_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => return,
        }
    }
}

/// `Retry-After` in seconds or as an HTTP-date (RFC 9110 §10.2.3), as a wait from `now`; a date
/// already past is no wait.
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Some(wait) = parse_retry_after(value) {
        return Some(wait);
    }
    let at = UNIX_EPOCH + Duration::from_secs(parse_http_date(value)?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An HTTP-date in Unix seconds: the IMF-fixdate senders use (`Sun, 06 Nov 1994 08:49:37 GMT`)
/// and the two obsolete forms recipients must still read (RFC 850 `Sunday, 06-Nov-94 08:49:37
/// GMT`, asctime `Sun Nov  6 08:49:37 1994`).
fn parse_http_date(value: &str) -> Option<u64> {
    let parts: Vec<&str> = value.split([' ', ',', '-']).filter(|p| !p.is_empty()).collect();
    let (day, month, year, time) = match parts.as_slice() {
        [_, day, month, year, time, "GMT"] => (day, month, year, time),
        [_, month, day, time, year] => (day, month, year, time),
        _ => return None,
    };
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let mut year: i64 = year.parse().ok()?;
    if year < 100 {
        // RFC 850's two-digit year: 70–99 are 19xx, the rest 20xx.
        year += if year < 70 { 2000 } else { 1900 };
    }
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days * 86_400 + h * 3_600 + m * 60 + s).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Computed with Python: hmac.new(b"whsec_test_key",
        //   b'1700000000.{"key":"hook/ev:1:2:3","n":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature(b"whsec_test_key", 1_700_000_000, r#"{"key":"hook/ev:1:2:3","n":1}"#),
            "sha256=0a7e64b93c498116a544453263ae8af7ff55a26d9bfcae6ec36807dfb0da87da"
        );
        // hmac.new(b"key", b"1.", hashlib.sha256).hexdigest(): an empty body still signs the dot.
        assert_eq!(
            signature(b"key", 1, ""),
            "sha256=53123bc365c2fe4bee48bc5cc6cd6c19699147d43513154ed34277c7c063e80f"
        );
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        // 784111777: Python's calendar.timegm of 1994-11-06 08:49:37 UTC.
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        // A leap day after February: 2024-03-01 00:00:00 UTC.
        assert_eq!(parse_http_date("Fri, 01 Mar 2024 00:00:00 GMT"), Some(1_709_251_200));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 CET"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(parse_http_date("soon"), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("later", now), None);
    }

    #[test]
    fn which_statuses_retry() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable(StatusCode::from_u16(code).expect("a status")), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 410, 413, 422] {
            assert!(!is_retryable(StatusCode::from_u16(code).expect("a status")), "{code}");
        }
    }
}
