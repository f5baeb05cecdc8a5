//! The `redis-stream` sink: each message one entry of a Redis stream, added with
//! `XADD <stream> [MAXLEN ~ n] * key … source … event … body …`; the entry id is the ack.
//!
//! A batch goes out as one pipeline, one round trip on one multiplexed connection (reconnected by
//! the client's connection manager), every message with its own reply. Every round trip is
//! bounded by the plan's `timeout`.
//!
//! An `XADD` that went out without a reply (a timeout, a dropped connection) may have landed: it
//! is a retry, and the worker, before handing a message over again, first looks for it through
//! [`RedisStream::recover`] (backwards from the stream's end, no further back than when it was
//! handed over), so it is not added twice — after a lost reply as after a crash.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Cmd, ErrorKind, IntoConnectionInfo, RedisError, Value};
use tokio::time::Instant;

use super::{Message, Outcome, SinkError};
use crate::config::{RedisStreamPlan, mask_url};

/// Entries read per `XREVRANGE` when looking for keys.
const SCAN_PAGE: usize = 1000;
/// Entry ids are the Redis server's clock in ms, `since` is ferry's: the search goes this much
/// further back, for the two clocks to differ.
const CLOCK_SKEW_MS: u64 = 60_000;
/// Our own bound on a round trip is this much longer than the client's response timeout, so the
/// client's fires first: it also replaces a connection that stopped answering.
const GRACE: Duration = Duration::from_millis(100);

/// A connected stream.
pub struct RedisStream {
    conn: ConnectionManager,
    stream: String,
    maxlen: Option<u64>,
    timeout: Duration,
    /// The URL fit to print.
    shown_url: String,
    /// A connection error since the last reply: make sure of the connection before sending.
    suspect: bool,
}

impl RedisStream {
    /// Connects and authenticates (password from the URL, or `password_env`, which wins).
    pub async fn connect(plan: &RedisStreamPlan) -> Result<RedisStream, SinkError> {
        super::ensure_crypto_provider();
        let shown_url = mask_url(&plan.url.0);
        let client = client(plan, &shown_url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(plan.timeout))
            .set_response_timeout(Some(plan.timeout))
            // The worker retries with its own backoff; the manager only reconnects in between.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = match tokio::time::timeout(
            plan.timeout,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(connect_error(&shown_url, &e)),
            Err(_) => {
                return Err(SinkError::Unavailable(format!(
                    "redis at {shown_url}: no connection within {:?}",
                    plan.timeout
                )));
            }
        };
        Ok(RedisStream {
            conn,
            stream: plan.stream.clone(),
            maxlen: plan.maxlen,
            timeout: plan.timeout,
            shown_url,
            suspect: false,
        })
    }

    /// One `XADD` per message, pipelined; one outcome per message, in order.
    pub async fn send(&mut self, batch: &[Message]) -> Vec<Outcome> {
        if batch.is_empty() {
            return Vec::new();
        }
        if self.suspect {
            if let Err(reason) = self.reconnect().await {
                return batch.iter().map(|_| retry(reason.clone())).collect();
            }
            self.suspect = false;
        }
        let deadline = Instant::now() + self.timeout + GRACE;
        // One pipeline, one round trip: every XADD with its own reply (a refused one does not
        // fail the others). A connection lost or a timeout leaves the whole batch in doubt: each
        // is a retry, and the worker looks for it in the stream before adding it again.
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for message in batch {
            pipe.add_command(self.xadd(message));
        }
        let mut conn = self.conn.clone();
        let replies =
            tokio::time::timeout_at(deadline, pipe.query_async::<Vec<redis::RedisResult<Value>>>(&mut conn))
                .await;
        let whole = |outcome: Outcome| batch.iter().map(|_| outcome.clone()).collect();
        let replies = match replies {
            Ok(Ok(replies)) => replies,
            Ok(Err(e)) => {
                return whole(match classify(&e) {
                    Class::Permanent => Outcome::Failed { reason: format!("redis refused XADD: {e}") },
                    Class::Busy => retry(format!("redis is busy: {e}")),
                    Class::Connection => {
                        self.suspect = true;
                        retry(format!("redis at {}: {e}", self.shown_url))
                    }
                });
            }
            Err(_) => {
                self.suspect = true;
                return whole(retry(format!(
                    "redis at {}: no reply within {:?}",
                    self.shown_url, self.timeout
                )));
            }
        };
        let mut outcomes: Vec<Outcome> = replies
            .into_iter()
            .map(|reply| match reply {
                Ok(value) => match entry_id(&value) {
                    Some(id) => Outcome::Delivered { ack: id },
                    None => Outcome::Failed { reason: format!("XADD answered {value:?}, not an entry id") },
                },
                Err(e) => match classify(&e) {
                    Class::Permanent => Outcome::Failed { reason: format!("redis refused XADD: {e}") },
                    Class::Busy | Class::Connection => retry(format!("redis at {}: {e}", self.shown_url)),
                },
            })
            .collect();
        // A reply for every command, or the rest are in doubt.
        outcomes.resize_with(batch.len(), || retry(format!("redis at {}: no reply", self.shown_url)));
        outcomes
    }

    /// For messages whose outcome was lost in a crash: the entry id of each one found in the
    /// stream, searched backwards from its end down to the entries added a minute before `since`
    /// (Unix seconds when `sending` was written).
    pub async fn recover(&mut self, batch: &[Message], since: u64) -> Result<Vec<Option<String>>, SinkError> {
        let wanted: HashSet<&str> = batch.iter().map(|m| m.key.as_str()).collect();
        let found = self
            .find(&wanted, since.saturating_mul(1000))
            .await
            .map_err(|e| SinkError::Unavailable(format!("redis at {}: {e}", self.shown_url)))?;
        Ok(batch.iter().map(|m| found.get(m.key.as_str()).cloned()).collect())
    }

    fn xadd(&self, message: &Message) -> Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.stream);
        if let Some(n) = self.maxlen {
            cmd.arg("MAXLEN").arg("~").arg(n);
        }
        cmd.arg("*")
            .arg("key")
            .arg(&message.key)
            .arg("source")
            .arg(&message.source)
            .arg("event")
            .arg(&message.event)
            .arg("body")
            .arg(&message.body);
        cmd
    }

    /// After a connection error the manager reconnects on the next request: a first `PING` may
    /// only start that, a second one waits for it. Nothing is sent before one answers.
    async fn reconnect(&mut self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..2 {
            match self.round_trip(&redis::cmd("PING")).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(format!("redis at {}: {last}", self.shown_url))
    }

    /// The entry id of each of `wanted` found in the stream: one backwards scan from the end, in
    /// pages, stopping when all are found or at the entries older than a minute before `since_ms`.
    async fn find(
        &mut self,
        wanted: &HashSet<&str>,
        since_ms: u64,
    ) -> Result<HashMap<String, String>, String> {
        let mut found = HashMap::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let start = format!("{}-0", since_ms.saturating_sub(CLOCK_SKEW_MS));
        let mut end = "+".to_string();
        loop {
            let mut cmd = redis::cmd("XREVRANGE");
            cmd.arg(&self.stream).arg(&end).arg(&start).arg("COUNT").arg(SCAN_PAGE);
            let page = self.round_trip(&cmd).await?;
            let entries = entries(&page).ok_or_else(|| format!("XREVRANGE answered {page:?}"))?;
            for (id, key) in &entries {
                if let Some(key) = key
                    && wanted.contains(key.as_str())
                {
                    found.entry(key.clone()).or_insert_with(|| id.clone());
                }
            }
            if found.len() == wanted.len() || entries.len() < SCAN_PAGE {
                return Ok(found);
            }
            // Redis before 6.2 has no exclusive ranges: the next page ends just before the last id.
            match entries.last().and_then(|(id, _)| id_before(id)) {
                Some(before) => end = before,
                None => return Ok(found),
            }
        }
    }

    /// One command, bounded by the timeout; a connection error marks the connection suspect.
    async fn round_trip(&mut self, cmd: &Cmd) -> Result<Value, String> {
        match tokio::time::timeout(self.timeout + GRACE, cmd.query_async::<Value>(&mut self.conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if classify(&e) == Class::Connection {
                    self.suspect = true;
                }
                Err(e.to_string())
            }
            Err(_) => {
                self.suspect = true;
                Err(format!("no reply within {:?}", self.timeout))
            }
        }
    }
}

/// `check-config --online`: `PING`, then whether the stream exists and how long it is.
pub async fn probe(plan: &RedisStreamPlan) -> Result<String, SinkError> {
    super::ensure_crypto_provider();
    let shown = mask_url(&plan.url.0);
    let client = client(plan, &shown)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(plan.timeout))
        .set_response_timeout(Some(plan.timeout));
    let connect = client.get_multiplexed_async_connection_with_config(&config);
    let mut conn: MultiplexedConnection = match tokio::time::timeout(plan.timeout + GRACE, connect).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(connect_error(&shown, &e)),
        Err(_) => {
            return Err(SinkError::Unavailable(format!(
                "redis at {shown}: no connection within {:?}",
                plan.timeout
            )));
        }
    };
    let timeout = plan.timeout;
    let pong = text(&ask(&mut conn, &redis::cmd("PING"), timeout, &shown).await?).unwrap_or_default();
    let stream = &plan.stream;
    let kind =
        text(&ask(&mut conn, redis::cmd("TYPE").arg(stream), timeout, &shown).await?).unwrap_or_default();
    match kind.as_str() {
        "none" => Ok(format!("{pong}; stream {stream} does not exist yet (XADD creates it)")),
        "stream" => {
            let len = match ask(&mut conn, redis::cmd("XLEN").arg(stream), timeout, &shown).await? {
                Value::Int(n) => n,
                other => {
                    return Err(SinkError::Unavailable(format!("redis at {shown}: XLEN answered {other:?}")));
                }
            };
            Ok(format!("{pong}; stream {stream}: {len} entries"))
        }
        other => Err(SinkError::Config(format!(
            "redis at {shown}: key {stream} holds a {other}, not a stream: XADD would fail with WRONGTYPE"
        ))),
    }
}

/// One command of the probe, bounded by `timeout`.
async fn ask(
    conn: &mut MultiplexedConnection,
    cmd: &Cmd,
    timeout: Duration,
    shown: &str,
) -> Result<Value, SinkError> {
    match tokio::time::timeout(timeout + GRACE, cmd.query_async::<Value>(conn)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(match classify(&e) {
            Class::Permanent => SinkError::Config(format!("redis at {shown}: {e}")),
            Class::Busy | Class::Connection => SinkError::Unavailable(format!("redis at {shown}: {e}")),
        }),
        Err(_) => Err(SinkError::Unavailable(format!("redis at {shown}: no reply within {timeout:?}"))),
    }
}

/// The client for the plan's URL, with `password_env` set on the connection (never in a URL that
/// could be printed).
fn client(plan: &RedisStreamPlan, shown: &str) -> Result<Client, SinkError> {
    let mut info = plan
        .url
        .0
        .as_str()
        .into_connection_info()
        .map_err(|e| SinkError::Config(format!("redis URL {shown}: {e}")))?;
    if let Some(password) = &plan.password {
        let settings = info.redis_settings().clone().set_password(&password.0);
        info = info.set_redis_settings(settings);
    }
    Client::open(info).map_err(|e| SinkError::Config(format!("redis URL {shown}: {e}")))
}

/// A failed connection: refused credentials are the config's fault, anything else may pass.
fn connect_error(shown: &str, e: &RedisError) -> SinkError {
    match classify(e) {
        Class::Permanent => SinkError::Config(format!("redis at {shown}: {e}")),
        Class::Busy | Class::Connection => SinkError::Unavailable(format!("redis at {shown}: {e}")),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// The server refused for a reason that stays until the config or the data changes.
    Permanent,
    /// The server answered that it cannot now (loading, a busy script, out of memory).
    Busy,
    /// No answer: the connection failed, was lost or timed out.
    Connection,
}

/// What an error means for the message: the server's error code decides when it answered.
fn classify(e: &RedisError) -> Class {
    if e.kind() == ErrorKind::AuthenticationFailed {
        return Class::Permanent;
    }
    // Without a code the server did not answer: an I/O error, a timeout, a lost connection.
    e.code().map_or(Class::Connection, classify_code)
}

/// Server error codes: a wrong key type or refused credentials or rights are config problems;
/// loading, busy, out of memory, read-only replica and failed persistence pass. Other errors of a
/// well-formed `XADD` do not go away by themselves.
fn classify_code(code: &str) -> Class {
    match code {
        "LOADING" | "BUSY" | "OOM" | "TRYAGAIN" | "MASTERDOWN" | "READONLY" | "MISCONF" | "CLUSTERDOWN" => {
            Class::Busy
        }
        _ => Class::Permanent,
    }
}

fn retry(reason: String) -> Outcome {
    Outcome::Retry { reason, after: None }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::SimpleString(s) => Some(s.clone()),
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// `XADD`'s reply: the new entry's id.
fn entry_id(value: &Value) -> Option<String> {
    text(value).filter(|id| parse_id(id).is_some())
}

/// `XREVRANGE`'s entries as (id, value of the `key` field), without copying the bodies.
fn entries(page: &Value) -> Option<Vec<(String, Option<String>)>> {
    let Value::Array(items) = page else { return None };
    items
        .iter()
        .map(|item| {
            let Value::Array(pair) = item else { return None };
            let [id, fields] = pair.as_slice() else { return None };
            let id = text(id)?;
            let key = match fields {
                Value::Array(fields) => fields
                    .chunks_exact(2)
                    .find(|kv| matches!(&kv[0], Value::BulkString(name) if name == b"key"))
                    .and_then(|kv| text(&kv[1])),
                Value::Map(fields) => fields
                    .iter()
                    .find(|(name, _)| matches!(name, Value::BulkString(name) if name == b"key"))
                    .and_then(|(_, value)| text(value)),
                _ => return None,
            };
            Some((id, key))
        })
        .collect()
}

/// `<ms>-<seq>`.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The greatest id below `id`; `None` below `0-0` (or for what is no id).
fn id_before(id: &str) -> Option<String> {
    match parse_id(id)? {
        (ms, seq) if seq > 0 => Some(format!("{ms}-{}", seq - 1)),
        (ms, _) if ms > 0 => Some(format!("{}-{}", ms - 1, u64::MAX)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_step_back_across_milliseconds() {
        assert_eq!(id_before("1700000000000-5").as_deref(), Some("1700000000000-4"));
        assert_eq!(id_before("1700000000000-0").as_deref(), Some("1699999999999-18446744073709551615"));
        assert_eq!(id_before("0-0"), None);
        assert_eq!(id_before("garbage"), None);
    }

    #[test]
    fn server_errors_are_sorted_by_code() {
        for code in ["WRONGTYPE", "NOAUTH", "NOPERM", "WRONGPASS", "ERR"] {
            assert_eq!(classify_code(code), Class::Permanent, "{code}");
        }
        for code in ["LOADING", "BUSY", "OOM", "TRYAGAIN", "READONLY", "MISCONF"] {
            assert_eq!(classify_code(code), Class::Busy, "{code}");
        }
    }

    #[test]
    fn entries_yield_their_key_field() {
        let entry = |id: &str, fields: &[(&str, &str)]| {
            Value::Array(vec![
                Value::BulkString(id.as_bytes().to_vec()),
                Value::Array(
                    fields
                        .iter()
                        .flat_map(|(k, v)| {
                            [
                                Value::BulkString(k.as_bytes().to_vec()),
                                Value::BulkString(v.as_bytes().to_vec()),
                            ]
                        })
                        .collect(),
                ),
            ])
        };
        let page = Value::Array(vec![
            entry("2-0", &[("key", "hook/a"), ("body", "{}")]),
            entry("1-0", &[("body", "{\"key\":\"hook/b\"}")]),
        ]);
        assert_eq!(
            entries(&page),
            Some(vec![("2-0".to_string(), Some("hook/a".to_string())), ("1-0".to_string(), None)])
        );
        assert_eq!(entries(&Value::Int(3)), None);
    }
}
