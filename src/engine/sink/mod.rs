//! Sinks: items handed to other systems as messages (`webhook`, `jsonl`, `redis-stream`,
//! `nats-jetstream`, `gcp-pubsub`), on the same delivery records as transactions.
//!
//! A sink delivery lives `pending → sending → confirmed` (handed over and acknowledged) or
//! `failed` (retryable with a next attempt time, or permanent with the reason). Its destination
//! chain id is [`SINK_CHAIN`](crate::config::SINK_CHAIN): a sink is no chain.
//!
//! One worker per sink target (`worker.rs`): it writes `sending` for a round of due deliveries in
//! one transaction **before** handing them over (write-ahead), hands them over, and writes the
//! outcomes in one transaction. A delivery handed over before — left `sending` by a crash between
//! the two, or answered with a timeout or a lost connection — is first looked for in the sink
//! ([`Sink::recover`]) before it goes out again: JSONL checks the tail of its file, Redis searches
//! its stream backwards from the end, bounded by when it was handed over; JetStream drops a
//! re-sent message by its `Nats-Msg-Id`; a webhook and Pub/Sub get it again (at least once, with
//! the idempotency key to dedupe on).
//!
//! Every message is the same JSON (`message.rs`), carrying its idempotency key, the delivery id
//! `<target>/<item>`.

mod decide;
pub mod jsonl;
pub mod message;
pub mod nats;
pub mod pubsub;
pub mod redis;
pub mod webhook;
mod worker;

pub(crate) use worker::SinkWorker;
pub use worker::{SinkTarget, sink_targets};

use std::time::Duration;

use crate::config::{SinkKind, SinkPlan};

/// One item as a sink receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The idempotency key: the delivery id, `<target>/<item>` (`hook/ev:8453:21000123:7`).
    pub key: String,
    /// The source's name (Pub/Sub attribute and ordering key).
    pub source: String,
    /// The event's name, `batch` for a SEDA batch (Pub/Sub attribute).
    pub event: String,
    /// The message, one line of JSON (`message.rs`), no trailing newline.
    pub body: String,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The sink has it; `ack` is what it said (an HTTP status, a stream entry id, a JetStream
    /// sequence, a Pub/Sub message id, a file line), kept with the delivery.
    Delivered { ack: String },
    /// Not handed over this time (a timeout, a 5xx, a 429, a lost connection): try again, not
    /// before `after` when the sink said when.
    Retry { reason: String, after: Option<Duration> },
    /// Refused for good (a 4xx other than 408/429): the reason names the status and what the
    /// sink said.
    Failed { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The plan cannot work (a bad URL, an unreadable credentials file, a missing stream).
    #[error("{0}")]
    Config(String),
    /// The sink cannot be reached now; the worker tries again.
    #[error("{0}")]
    Unavailable(String),
}

/// A connected sink, one per sink target and command.
pub enum Sink {
    Webhook(webhook::Webhook),
    Jsonl(jsonl::Jsonl),
    Redis(redis::RedisStream),
    Nats(nats::Jetstream),
    Pubsub(pubsub::Pubsub),
}

impl Sink {
    /// Connects (or opens the file). A sink that cannot be reached is `Unavailable`.
    pub async fn connect(plan: &SinkPlan) -> Result<Sink, SinkError> {
        Ok(match &plan.kind {
            SinkKind::Webhook(p) => {
                Sink::Webhook(webhook::Webhook::connect(p, plan.concurrency, plan.ordered)?)
            }
            SinkKind::Jsonl(p) => Sink::Jsonl(jsonl::Jsonl::connect(p)?),
            SinkKind::RedisStream(p) => Sink::Redis(redis::RedisStream::connect(p).await?),
            SinkKind::NatsJetstream(p) => Sink::Nats(nats::Jetstream::connect(p).await?),
            SinkKind::GcpPubsub(p) => Sink::Pubsub(pubsub::Pubsub::connect(p, plan.concurrency).await?),
        })
    }

    /// Hands `batch` over; one outcome per message, in order. Messages of one batch may be in
    /// flight together (pipelined or concurrent, up to the plan's concurrency).
    pub async fn send(&mut self, batch: &[Message]) -> Vec<Outcome> {
        match self {
            Sink::Webhook(s) => s.send(batch).await,
            Sink::Jsonl(s) => s.send(batch).await,
            Sink::Redis(s) => s.send(batch).await,
            Sink::Nats(s) => s.send(batch).await,
            Sink::Pubsub(s) => s.send(batch).await,
        }
    }

    /// For messages whose `sending` was written but whose outcome was not (a crash): the ack of
    /// each one the sink already holds, `None` for one it does not (or cannot tell: the worker
    /// sends those again). `since` is the Unix second `sending` was written, bounding a search.
    pub async fn recover(&mut self, batch: &[Message], since: u64) -> Result<Vec<Option<String>>, SinkError> {
        match self {
            Sink::Webhook(_) | Sink::Pubsub(_) | Sink::Nats(_) => Ok(vec![None; batch.len()]),
            Sink::Jsonl(s) => s.recover(batch, since).await,
            Sink::Redis(s) => s.recover(batch, since).await,
        }
    }
}

/// `check-config --online`: reaches the sink the way delivery would and says what it found
/// (a status, `PONG`, the stream's subjects), or why it could not.
pub async fn probe(plan: &SinkPlan) -> Result<String, SinkError> {
    match &plan.kind {
        SinkKind::Webhook(p) => webhook::probe(p).await,
        SinkKind::Jsonl(p) => jsonl::probe(p),
        SinkKind::RedisStream(p) => redis::probe(p).await,
        SinkKind::NatsJetstream(p) => nats::probe(p).await,
        SinkKind::GcpPubsub(p) => pubsub::probe(p).await,
    }
}

/// Both rustls crypto providers are linked in (reqwest brings aws-lc-rs, async-nats ring), so
/// rustls cannot pick one by itself and the `rediss://` and `tls://` clients, which build their
/// TLS config with the process default, would panic. Installs ring's unless one is installed.
pub(crate) fn ensure_crypto_provider() {
    if async_nats::rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one at the same moment: either is fine.
        let _ = async_nats::rustls::crypto::ring::default_provider().install_default();
    }
}
