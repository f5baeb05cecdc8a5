//! The `nats-jetstream` sink: each message published to the plan's subject, captured by a
//! JetStream stream, with the delivery id as `Nats-Msg-Id`; the publish ack's sequence is the ack.
//!
//! JetStream drops a message whose `Nats-Msg-Id` it stored within the stream's duplicate window
//! and acks it as a duplicate with the first one's sequence. So a message whose outcome was lost
//! (a crash, a timeout, a dropped connection) is simply published again: no search is needed, as
//! long as it comes back within the window (`check-config --online` shows it).
//!
//! Sorting publish errors: no ack in time, a lost connection and "no responders" (no stream
//! captures the subject, yet: it may be created, or come back with its server) are retried. An
//! error the stream answers with fails the message for good when its status is a 4xx other than
//! 408/429 (too large for the stream, a sealed stream), like an HTTP sink; a 5xx (the stream is
//! full with `discard: new`, storage failing) is retried. A message over the server's
//! `max_payload` fails for good.

use std::future::IntoFuture;
use std::time::Duration;

use async_nats::jetstream::context::{GetStreamErrorKind, PublishError, PublishErrorKind};
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{ConnectErrorKind, ConnectOptions, HeaderMap};
use tokio::time::Instant;

use super::{Message, Outcome, SinkError};
use crate::config::{NatsPlan, mask_url};

/// Our own bound on awaiting an ack is this much longer than the client's, so the client's
/// timeout speaks first.
const GRACE: Duration = Duration::from_millis(100);
/// Publishes awaiting their acks at most, well under the client's limit of acks in flight.
const CHUNK: usize = 1000;

/// A connection to the NATS server and its JetStream.
pub struct Jetstream {
    js: jetstream::Context,
    subject: String,
    stream: String,
    timeout: Duration,
    /// The URL without credentials, fit to print.
    shown_url: String,
}

impl Jetstream {
    /// Connects with the URL's own credentials (`user:pass@`, or `token@`) or `token_env`.
    pub async fn connect(plan: &NatsPlan) -> Result<Jetstream, SinkError> {
        let (js, shown_url) = connect(plan).await?;
        Ok(Jetstream {
            js,
            subject: plan.subject.clone(),
            stream: plan.stream.clone(),
            timeout: plan.timeout,
            shown_url,
        })
    }

    /// Publishes the messages in order, then awaits their acks; one outcome per message, in
    /// order. So the stream holds a batch in its order, up to [`CHUNK`] publishes are in flight at
    /// once.
    pub async fn send(&mut self, batch: &[Message]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(CHUNK) {
            outcomes.extend(self.send_chunk(chunk).await);
        }
        outcomes
    }

    async fn send_chunk(&self, chunk: &[Message]) -> Vec<Outcome> {
        let deadline = Instant::now() + self.timeout + GRACE;
        let mut pending = Vec::with_capacity(chunk.len());
        for message in chunk {
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, message.key.as_str());
            let publish =
                self.js.publish_with_headers(self.subject.clone(), headers, message.body.clone().into());
            // Publishing hands the message to the client's connection task; the ack comes later.
            pending.push(match tokio::time::timeout_at(deadline, publish).await {
                Ok(Ok(ack)) => Ok(ack),
                Ok(Err(e)) => Err(self.classify(&e)),
                Err(_) => Err(self.no_ack()),
            });
        }
        let acks = futures_util::future::join_all(pending.into_iter().map(|published| async move {
            match published {
                Ok(ack) => match tokio::time::timeout_at(deadline, ack.into_future()).await {
                    Ok(Ok(ack)) if ack.duplicate => {
                        Outcome::Delivered { ack: format!("seq {} (duplicate)", ack.sequence) }
                    }
                    Ok(Ok(ack)) => Outcome::Delivered { ack: format!("seq {}", ack.sequence) },
                    Ok(Err(e)) => self.classify(&e),
                    Err(_) => self.no_ack(),
                },
                Err(outcome) => outcome,
            }
        }));
        acks.await
    }

    fn no_ack(&self) -> Outcome {
        retry(format!("no ack from JetStream at {} within {:?}", self.shown_url, self.timeout))
    }

    fn classify(&self, e: &PublishError) -> Outcome {
        let (subject, stream, url) = (&self.subject, &self.stream, &self.shown_url);
        match e.kind() {
            PublishErrorKind::StreamNotFound => retry(format!(
                "no stream captures subject {subject} at {url} (no responders): is stream {stream} created?"
            )),
            PublishErrorKind::TimedOut => self.no_ack(),
            PublishErrorKind::BrokenPipe => retry(format!("connection to {url} lost before the ack")),
            PublishErrorKind::MaxPayloadExceeded => Outcome::Failed { reason: format!("{e}") },
            _ => match jetstream_error(e) {
                Some(js) if permanent_status(js.code()) => {
                    Outcome::Failed { reason: format!("stream {stream} refused the message: {js}") }
                }
                Some(js) => retry(format!("stream {stream} cannot take the message now: {js}")),
                None => retry(format!("publishing to {url}: {e}")),
            },
        }
    }
}

/// `check-config --online`: the stream must exist and capture the subject; says its subjects and
/// duplicate window.
pub async fn probe(plan: &NatsPlan) -> Result<String, SinkError> {
    let (js, shown) = connect(plan).await?;
    let (stream, subject) = (&plan.stream, &plan.subject);
    let info = match js.get_stream(stream).await {
        Ok(found) => found.cached_info().clone(),
        Err(e) => {
            return Err(match e.kind() {
                GetStreamErrorKind::JetStream(js) if js.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                    SinkError::Config(format!(
                        "no stream {stream} at {shown}: create it with subjects that capture {subject}"
                    ))
                }
                GetStreamErrorKind::JetStream(js) => {
                    SinkError::Config(format!("stream {stream} at {shown}: {js}"))
                }
                GetStreamErrorKind::Request if e.to_string().contains("no responders") => SinkError::Config(
                    format!("JetStream is not enabled at {shown} (no responders to its API)"),
                ),
                _ => SinkError::Unavailable(format!("stream {stream} at {shown}: {e}")),
            });
        }
    };
    // A stream made without subjects takes its own name as its subject.
    let subjects =
        if info.config.subjects.is_empty() { vec![info.config.name.clone()] } else { info.config.subjects };
    if !subjects.iter().any(|pattern| subject_matches(pattern, subject)) {
        return Err(SinkError::Config(format!(
            "stream {stream} at {shown} does not capture subject {subject}: its subjects are {}",
            subjects.join(", ")
        )));
    }
    Ok(format!(
        "stream {stream}: subjects {}, duplicate window {}",
        subjects.join(", "),
        human(info.config.duplicate_window)
    ))
}

/// The client and its JetStream context, every request bounded by the plan's timeout, and the URL
/// to show.
async fn connect(plan: &NatsPlan) -> Result<(jetstream::Context, String), SinkError> {
    super::ensure_crypto_provider();
    let (address, url_auth) = split_credentials(&plan.url.0)?;
    let shown = mask_url(&address);
    let mut options = ConnectOptions::new()
        .name("ferry")
        .connection_timeout(plan.timeout)
        .request_timeout(Some(plan.timeout));
    match url_auth {
        Some(UrlAuth::UserPassword(user, password)) => options = options.user_and_password(user, password),
        Some(UrlAuth::Token(token)) => options = options.token(token),
        None => {}
    }
    if let Some(token) = &plan.token {
        options = options.token(token.0.clone());
    }
    let client = match tokio::time::timeout(plan.timeout + GRACE, options.connect(address.as_str())).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            return Err(match e.kind() {
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                    SinkError::Config(format!("nats at {shown}: {e} (check the credentials)"))
                }
                ConnectErrorKind::ServerParse => SinkError::Config(format!("nats URL {shown}: {e}")),
                _ => SinkError::Unavailable(format!("nats at {shown}: {e}")),
            });
        }
        Err(_) => {
            return Err(SinkError::Unavailable(format!(
                "nats at {shown}: no connection within {:?}",
                plan.timeout
            )));
        }
    };
    let js = jetstream::ContextBuilder::new().timeout(plan.timeout).build(client);
    Ok((js, shown))
}

#[derive(Debug, PartialEq, Eq)]
enum UrlAuth {
    UserPassword(String, String),
    /// `nats://<token>@host`.
    Token(String),
}

/// The URL without its credentials, and the credentials: the client does not read them from the
/// URL, and the URL is shown in messages.
fn split_credentials(raw: &str) -> Result<(String, Option<UrlAuth>), SinkError> {
    let mut url = url::Url::parse(raw)
        .map_err(|_| SinkError::Config(format!("nats URL {} does not parse", mask_url(raw))))?;
    let auth = match (url.username(), url.password()) {
        ("", None) => None,
        (user, Some(password)) => Some(UrlAuth::UserPassword(percent_decode(user), percent_decode(password))),
        (token, None) => Some(UrlAuth::Token(percent_decode(token))),
    };
    if auth.is_some() {
        // Cannot fail for nats:// and tls:// URLs, which have a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    Ok((url.to_string(), auth))
}

/// `%XX` escapes of a URL's user info decoded (`+` stays `+` there).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The JetStream API error inside a publish error, when the stream answered with one.
fn jetstream_error(e: &PublishError) -> Option<&jetstream::Error> {
    std::error::Error::source(e)?.downcast_ref::<jetstream::Error>()
}

/// A 4xx other than 408/429 does not pass by itself.
fn permanent_status(code: usize) -> bool {
    (400..500).contains(&code) && code != 408 && code != 429
}

/// Whether the subject `pattern` (with `*` for one token and a final `>` for one or more)
/// matches `subject`.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    let mut pattern_tokens = pattern.split('.').peekable();
    while let Some(p) = pattern_tokens.next() {
        if p == ">" && pattern_tokens.peek().is_none() {
            return subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(s) if p == "*" || p == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

/// `2m`, `90s`, `1h`, `500ms`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

fn retry(reason: String) -> Outcome {
    Outcome::Retry { reason, after: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_with_wildcards() {
        let cases = [
            ("ferry.>", "ferry.items", true),
            ("ferry.>", "ferry.items.base", true),
            ("ferry.>", "ferry", false),
            ("ferry.*", "ferry.items", true),
            ("ferry.*", "ferry.items.base", false),
            ("*.items", "ferry.items", true),
            ("ferry.items", "ferry.items", true),
            ("ferry.items", "ferry.item", false),
            ("ferry.items", "ferry.items.x", false),
            (">", "anything.at.all", true),
            ("other.>", "ferry.items", false),
            ("ferry.>.x", "ferry.a.x", false),
        ];
        for (pattern, subject, expected) in cases {
            assert_eq!(subject_matches(pattern, subject), expected, "{pattern} vs {subject}");
        }
    }

    #[test]
    fn windows_print_in_their_largest_whole_unit() {
        assert_eq!(human(Duration::from_secs(120)), "2m");
        assert_eq!(human(Duration::from_secs(90)), "90s");
        assert_eq!(human(Duration::from_secs(7200)), "2h");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn credentials_leave_the_url() {
        let (url, auth) = split_credentials("nats://alice:p%40ss@127.0.0.1:4222").expect("parses");
        assert_eq!(url, "nats://127.0.0.1:4222");
        assert_eq!(auth, Some(UrlAuth::UserPassword("alice".into(), "p@ss".into())));
        let (url, auth) = split_credentials("tls://s3cr3t+x@nats.example:4222").expect("parses");
        assert_eq!(url, "tls://nats.example:4222");
        assert_eq!(auth, Some(UrlAuth::Token("s3cr3t+x".into())));
        assert_eq!(split_credentials("nats://h:1").expect("parses"), ("nats://h:1".into(), None));
    }

    #[test]
    fn only_lasting_4xx_statuses_are_permanent() {
        assert!(permanent_status(400));
        assert!(!permanent_status(408));
        assert!(!permanent_status(429));
        assert!(!permanent_status(503));
    }
}
