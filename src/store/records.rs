//! Values: serde records encoded with postcard behind one version byte.
//!
//! `[version u8][postcard bytes]`. A record type changes its layout only together with a schema
//! version bump and a migration step that rewrites the old records; the version byte lets a reader
//! refuse a record it does not know instead of misreading it. Decoding never panics: a record that
//! does not decode is a damaged store.

use alloy::primitives::{Address, B256, Bytes};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A value stored in a table.
pub trait Record: Serialize + DeserializeOwned {
    /// Bumped (with a migration) whenever the layout changes.
    const VERSION: u8;
    const NAME: &'static str;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("a {name} record has version {found}, this ferry reads version {expected}")]
    Version { name: &'static str, found: u8, expected: u8 },
    #[error("a {name} record does not decode: {detail}")]
    Decode { name: &'static str, detail: String },
}

pub fn encode<R: Record>(record: &R) -> Vec<u8> {
    // Serializing plain structs into a Vec cannot fail; an error here is a bug in a record type.
    postcard::to_extend(record, vec![R::VERSION]).expect("records serialize")
}

/// [`encode`] into a buffer that is reused across many records (one allocation per range).
pub fn encode_into<R: Record>(record: &R, buf: &mut Vec<u8>) {
    buf.clear();
    buf.push(R::VERSION);
    *buf = postcard::to_extend(record, std::mem::take(buf)).expect("records serialize");
}

pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, RecordError> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err(RecordError::Decode { name: R::NAME, detail: "empty value".into() });
    };
    if version != R::VERSION {
        return Err(RecordError::Version { name: R::NAME, found: version, expected: R::VERSION });
    }
    postcard::from_bytes(body).map_err(|e| RecordError::Decode { name: R::NAME, detail: e.to_string() })
}

/// Where a source stands: it has ingested `first..next` (blocks for EVM, batches for SEDA), one
/// contiguous range, and `next` is what it reads next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The first block (or batch) this store holds for the source.
    pub first: u64,
    pub next: u64,
    /// Hash of the last ingested block (EVM), to notice a reorg under the cursor.
    pub last_hash: Option<B256>,
    pub updated_at: u64,
    /// Why the source stopped, when it stopped on something that needs an operator (a SEDA batch
    /// that failed a check); cleared when it goes on.
    pub stopped: Option<String>,
}

impl Record for Cursor {
    const VERSION: u8 = 3;
    const NAME: &'static str = "cursor";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHash {
    pub hash: B256,
    pub parent: B256,
}

impl Record for BlockHash {
    const VERSION: u8 = 1;
    const NAME: &'static str = "block hash";
}

/// A watched contract: configured, or discovered from a factory event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    pub source: u32,
    /// The factory that created it; `None` for a configured address.
    pub factory: Option<Address>,
    /// The event that announced it, for children.
    pub created_at: Option<crate::store::keys::EventKey>,
}

impl Record for Contract {
    const VERSION: u8 = 1;
    const NAME: &'static str = "contract";
}

/// One log, decoded when its declaration is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub source: u32,
    pub address: Address,
    pub block_hash: B256,
    pub tx_hash: B256,
    pub topics: Vec<B256>,
    pub data: Bytes,
    /// Event name, when a configured declaration matched topic0.
    pub name: Option<String>,
    /// Decoded fields as JSON text, when the log decoded.
    pub fields: Option<String>,
    /// Why a log whose topic0 matched a declaration did not decode with it.
    pub decode_error: Option<String>,
}

impl Record for Event {
    const VERSION: u8 = 2;
    const NAME: &'static str = "event";
}

/// A signed SEDA batch with what is needed to prove it: header, validator entries and signatures,
/// checked before it was stored (its id recomputed, every signature by a validator of the batch
/// before). Kept whole, so that any proof can be built after the chain has pruned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub batch: crate::seda::SignedBatch,
    /// The batch a source starts after: stored for its validators (who signed the first batch
    /// delivered), its own signatures not checked and no delivery made of it.
    pub anchor: bool,
    pub fetched_at: u64,
}

impl Record for Batch {
    const VERSION: u8 = 2;
    const NAME: &'static str = "batch";
}

/// What a `seda-prover` worker last read from a destination's Prover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProverState {
    pub prover: Address,
    pub last_batch: u64,
    pub validators_root: B256,
    pub paused: bool,
    pub max_batch_age: u64,
    pub read_at: u64,
}

impl Record for ProverState {
    const VERSION: u8 = 1;
    const NAME: &'static str = "prover state";
}

/// What a sink said when it took a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkAck {
    /// `HTTP 200`, a Redis entry id, `seq 42`, `message 123`, `line 7`.
    pub ack: String,
    /// Unix seconds.
    pub at: u64,
}

impl Record for SinkAck {
    const VERSION: u8 = 1;
    const NAME: &'static str = "sink ack";
}

/// The states of a delivery; the number is the first byte of its status-index key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum DeliveryState {
    Pending = 0,
    Sending = 1,
    Sent = 2,
    Confirmed = 3,
    Skipped = 4,
    Failed = 5,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 6] = [
        DeliveryState::Pending,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Confirmed,
        DeliveryState::Skipped,
        DeliveryState::Failed,
    ];

    pub fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u8 == b)
    }

    /// Confirmed, skipped, and permanently failed deliveries are done with; the rest resume.
    pub fn is_final(self, retryable: bool) -> bool {
        match self {
            DeliveryState::Confirmed | DeliveryState::Skipped => true,
            DeliveryState::Failed => !retryable,
            DeliveryState::Pending | DeliveryState::Sending | DeliveryState::Sent => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Confirmed => "confirmed",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Failed => "failed",
        }
    }
}

/// One (item, target, destination chain): what was done to put the item there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub state: DeliveryState,
    pub attempts: u32,
    /// Unix seconds before which a failed delivery is not retried.
    pub next_attempt_at: Option<u64>,
    /// Every transaction hash this delivery has had; its status is the best of them.
    pub tx_hashes: Vec<B256>,
    /// The key that signed its transaction, with `nonce` the key of its intent.
    pub signer: Option<Address>,
    pub nonce: Option<u64>,
    /// The receipt of the transaction that landed, once one did.
    pub receipt: Option<Receipt>,
    pub reason: Option<String>,
    pub retryable: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

impl Record for Delivery {
    const VERSION: u8 = 2;
    const NAME: &'static str = "delivery";
}

impl Delivery {
    pub fn pending(now: u64) -> Self {
        Delivery {
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: None,
            tx_hashes: Vec::new(),
            signer: None,
            nonce: None,
            receipt: None,
            reason: None,
            retryable: true,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Where a transaction landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_hash: B256,
    pub block: u64,
    pub block_hash: B256,
    pub success: bool,
    pub gas_used: u64,
    pub effective_gas_price: u128,
}

/// Where a signed transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentState {
    /// Signed and stored; it may or may not have reached a node (a crash between the write and
    /// the broadcast leaves it here): it is broadcast again, the very same bytes.
    Signed,
    /// A node accepted it (or already knew it).
    Sent,
    /// One of its hashes has a receipt.
    Mined,
    /// Its nonce was used by a transaction ferry did not sign; its deliveries went back to pending.
    Dropped,
    /// Mined and as deep as the chain's confirmations: nothing more to watch.
    Confirmed,
}

/// A signed transaction, written before it is broadcast so that a crash re-sends the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxIntent {
    pub state: IntentState,
    /// The latest signed bytes at this nonce and their hash.
    pub raw: Bytes,
    pub hash: B256,
    pub to: Address,
    pub gas_limit: u64,
    /// Legacy transactions: the gas price.
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: Option<u128>,
    pub created_at: u64,
    /// When the current bytes were first broadcast; a replacement is due `bump_after` later.
    pub sent_at: Option<u64>,
    /// Earlier transactions at the same nonce (replaced by fee bumps), oldest first.
    pub replaced: Vec<B256>,
    /// The deliveries it carries; empty for a cancellation (a zero-value send to itself).
    pub deliveries: Vec<crate::store::keys::DeliveryKey>,
    /// The hash that was mined, once one was.
    pub mined: Option<B256>,
    /// The hash of the operator's cancellation (a zero-value send to itself at this nonce).
    pub cancel: Option<B256>,
}

impl Record for TxIntent {
    const VERSION: u8 = 2;
    const NAME: &'static str = "tx intent";
}

impl TxIntent {
    /// Every hash this nonce has had, newest first.
    pub fn hashes(&self) -> impl Iterator<Item = B256> + '_ {
        std::iter::once(self.hash).chain(self.replaced.iter().rev().copied())
    }

    /// Signed or sent, not yet mined: broadcast again, bumped, or found dropped.
    pub fn is_open(&self) -> bool {
        matches!(self.state, IntentState::Signed | IntentState::Sent)
    }

    /// Nothing more can happen to it.
    pub fn is_settled(&self) -> bool {
        matches!(self.state, IntentState::Dropped | IntentState::Confirmed)
    }
}

/// A reorg seen and handled: the source went back to the common ancestor and read on from there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reorg {
    pub source: u32,
    /// First block of the orphaned branch (the common ancestor + 1).
    pub from_block: u64,
    /// Blocks the source went back: how far its cursor was past the ancestor.
    pub depth: u64,
    pub removed_events: u64,
    pub removed_contracts: u64,
    /// The hash the store had for the block where the mismatch showed, and the chain's hash now.
    pub old_hash: B256,
    pub new_hash: B256,
    pub detected_at: u64,
}

impl Record for Reorg {
    const VERSION: u8 = 2;
    const NAME: &'static str = "reorg";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip_compactly() {
        let event = Event {
            source: 1,
            address: Address::repeat_byte(1),
            block_hash: B256::repeat_byte(2),
            tx_hash: B256::repeat_byte(3),
            topics: vec![B256::repeat_byte(4)],
            data: Bytes::from_static(&[5; 32]),
            name: Some("Ping".into()),
            fields: Some(r#"{"seq":"1"}"#.into()),
            decode_error: None,
        };
        let bytes = encode(&event);
        assert_eq!(bytes[0], Event::VERSION);
        assert!(bytes.len() < 220, "postcard keeps an event small: {} bytes", bytes.len());
        assert_eq!(decode::<Event>(&bytes), Ok(event));
    }

    #[test]
    fn an_unknown_version_or_garbage_is_an_error_not_a_panic() {
        let mut bytes = encode(&Cursor { first: 0, next: 5, last_hash: None, updated_at: 1, stopped: None });
        bytes[0] = 9;
        assert!(matches!(decode::<Cursor>(&bytes), Err(RecordError::Version { found: 9, .. })));
        assert!(matches!(decode::<Cursor>(&[]), Err(RecordError::Decode { .. })));
        assert!(matches!(decode::<Event>(&[Event::VERSION, 0xff, 0xff]), Err(RecordError::Decode { .. })));
    }

    #[test]
    fn delivery_states_map_to_index_bytes() {
        for state in DeliveryState::ALL {
            assert_eq!(DeliveryState::from_byte(state as u8), Some(state));
        }
        assert_eq!(DeliveryState::from_byte(99), None);
    }
}
