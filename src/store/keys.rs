//! Typed keys: fixed-width big-endian byte arrays, so that redb's byte order is numeric order and
//! a range scan over (chain 1, …) can never run into chain 10 or 17000.
//!
//! Each key type is a plain struct with `to_bytes`/`from_bytes`; tables store the `[u8; N]`.
//! Names (sources, targets) are mapped to `u32` ids in the `source_ids`/`target_ids` tables so
//! that keys stay fixed-width.

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

/// A key of fixed width `N`, stored big-endian.
pub trait FixedKey<const N: usize>: Sized + Serialize {
    fn to_bytes(&self) -> [u8; N];
    fn from_bytes(bytes: [u8; N]) -> Self;
}

/// Reads big-endian integers and byte arrays off a fixed key, front to back.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl Cursor<'_> {
    fn take<const M: usize>(&mut self) -> [u8; M] {
        let (head, rest) = self.bytes.split_at(M);
        self.bytes = rest;
        let mut out = [0; M];
        out.copy_from_slice(head);
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }
    fn address(&mut self) -> Address {
        Address::from(self.take::<20>())
    }
}

/// Writes the parts of a key, front to back.
struct Builder<const N: usize> {
    bytes: [u8; N],
    at: usize,
}

impl<const N: usize> Builder<N> {
    fn new() -> Self {
        Self { bytes: [0; N], at: 0 }
    }
    fn put(mut self, part: &[u8]) -> Self {
        self.bytes[self.at..self.at + part.len()].copy_from_slice(part);
        self.at += part.len();
        self
    }
    fn done(self) -> [u8; N] {
        debug_assert_eq!(self.at, N, "key layout does not fill the key");
        self.bytes
    }
}

/// `cursors`: one per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CursorKey {
    pub source: u32,
}

impl FixedKey<4> for CursorKey {
    fn to_bytes(&self) -> [u8; 4] {
        self.source.to_be_bytes()
    }
    fn from_bytes(bytes: [u8; 4]) -> Self {
        Self { source: u32::from_be_bytes(bytes) }
    }
}

/// `block_hashes`: (source id, block number). Per source, not per chain: each source checks its own
/// window for reorgs, so that one source rewinding never hides a reorg from another on the same chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlockKey {
    pub source: u32,
    pub number: u64,
}

impl FixedKey<12> for BlockKey {
    fn to_bytes(&self) -> [u8; 12] {
        Builder::new().put(&self.source.to_be_bytes()).put(&self.number.to_be_bytes()).done()
    }
    fn from_bytes(bytes: [u8; 12]) -> Self {
        let mut c = Cursor { bytes: &bytes };
        Self { source: c.u32(), number: c.u64() }
    }
}

/// `contracts`: (chain id, address) — the registry of watched contracts, factory children included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContractKey {
    pub chain: u64,
    pub address: Address,
}

impl FixedKey<28> for ContractKey {
    fn to_bytes(&self) -> [u8; 28] {
        Builder::new().put(&self.chain.to_be_bytes()).put(self.address.as_slice()).done()
    }
    fn from_bytes(bytes: [u8; 28]) -> Self {
        let mut c = Cursor { bytes: &bytes };
        Self { chain: c.u64(), address: c.address() }
    }
}

/// `events`: (chain id, block number, log index) — the order a chain emitted them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventKey {
    pub chain: u64,
    pub block: u64,
    pub log_index: u32,
}

impl FixedKey<20> for EventKey {
    fn to_bytes(&self) -> [u8; 20] {
        Builder::new()
            .put(&self.chain.to_be_bytes())
            .put(&self.block.to_be_bytes())
            .put(&self.log_index.to_be_bytes())
            .done()
    }
    fn from_bytes(bytes: [u8; 20]) -> Self {
        let mut c = Cursor { bytes: &bytes };
        Self { chain: c.u64(), block: c.u64(), log_index: c.u32() }
    }
}

/// `batches`: (source id, batch height).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BatchKey {
    pub source: u32,
    pub height: u64,
}

impl FixedKey<12> for BatchKey {
    fn to_bytes(&self) -> [u8; 12] {
        Builder::new().put(&self.source.to_be_bytes()).put(&self.height.to_be_bytes()).done()
    }
    fn from_bytes(bytes: [u8; 12]) -> Self {
        let mut c = Cursor { bytes: &bytes };
        Self { source: c.u32(), height: c.u64() }
    }
}

/// `provers`: (target id, chain id) — one Prover per `seda-prover` target and destination chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProverKey {
    pub target: u32,
    pub chain: u64,
}

impl FixedKey<12> for ProverKey {
    fn to_bytes(&self) -> [u8; 12] {
        Builder::new().put(&self.target.to_be_bytes()).put(&self.chain.to_be_bytes()).done()
    }
    fn from_bytes(bytes: [u8; 12]) -> Self {
        let mut c = Cursor { bytes: &bytes };
        Self { target: c.u32(), chain: c.u64() }
    }
}

/// Which item a delivery carries: an event or a batch, in one 21-byte layout
/// (kind, then the item's own key padded to 20 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKey {
    Event(EventKey),
    Batch(BatchKey),
}

impl FixedKey<21> for ItemKey {
    fn to_bytes(&self) -> [u8; 21] {
        match self {
            ItemKey::Event(k) => Builder::new().put(&[1]).put(&k.to_bytes()).done(),
            ItemKey::Batch(k) => Builder::new().put(&[2]).put(&k.to_bytes()).put(&[0; 8]).done(),
        }
    }
    fn from_bytes(bytes: [u8; 21]) -> Self {
        let mut c = Cursor { bytes: &bytes };
        match c.u8() {
            2 => ItemKey::Batch(BatchKey::from_bytes(c.take())),
            // Kind 1; an unknown kind byte reads as an event key, and the record decode that
            // follows every key read is where a damaged file is reported.
            _ => ItemKey::Event(EventKey::from_bytes(c.take())),
        }
    }
}

/// The text form people type and read: `ev:<chain>:<block>:<log>` or `batch:<source id>:<height>`.
impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemKey::Event(k) => write!(f, "ev:{}:{}:{}", k.chain, k.block, k.log_index),
            ItemKey::Batch(k) => write!(f, "batch:{}:{}", k.source, k.height),
        }
    }
}

impl std::str::FromStr for ItemKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || {
            format!(
                "`{s}` is not an item: write `ev:<chain id>:<block>:<log index>` or `batch:<source id>:<height>`"
            )
        };
        let num = |p: &str| p.parse::<u64>().map_err(|_| bad());
        match parts.as_slice() {
            ["ev", chain, block, log] => Ok(ItemKey::Event(EventKey {
                chain: num(chain)?,
                block: num(block)?,
                log_index: log.parse().map_err(|_| bad())?,
            })),
            ["batch", source, height] => Ok(ItemKey::Batch(BatchKey {
                source: source.parse().map_err(|_| bad())?,
                height: num(height)?,
            })),
            _ => Err(bad()),
        }
    }
}

/// The "destination chain id" of a sink's deliveries: a sink is no chain, and no EVM chain has
/// id 0, so their deliveries sort apart in the same tables as the chains'.
pub const SINK_CHAIN: u64 = 0;

/// `deliveries`: (target id, destination chain id, item).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeliveryKey {
    pub target: u32,
    pub chain: u64,
    pub item: ItemKey,
}

impl FixedKey<33> for DeliveryKey {
    fn to_bytes(&self) -> [u8; 33] {
        Builder::new()
            .put(&self.target.to_be_bytes())
            .put(&self.chain.to_be_bytes())
            .put(&self.item.to_bytes())
            .done()
    }
    fn from_bytes(bytes: [u8; 33]) -> Self {
        let mut c = Cursor { bytes: &bytes };
        Self { target: c.u32(), chain: c.u64(), item: ItemKey::from_bytes(c.take()) }
    }
}

/// `delivery_status`: (state, destination chain id, target id, item) → nothing. Answers "what is
/// pending/failed on chain X" with one range scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StatusKey {
    pub state: u8,
    pub chain: u64,
    pub target: u32,
    pub item: ItemKey,
}

impl FixedKey<34> for StatusKey {
    fn to_bytes(&self) -> [u8; 34] {
        Builder::new()
            .put(&[self.state])
            .put(&self.chain.to_be_bytes())
            .put(&self.target.to_be_bytes())
            .put(&self.item.to_bytes())
            .done()
    }
    fn from_bytes(bytes: [u8; 34]) -> Self {
        let mut c = Cursor { bytes: &bytes };
        Self { state: c.u8(), chain: c.u64(), target: c.u32(), item: ItemKey::from_bytes(c.take()) }
    }
}

/// `tx_intents`: (chain id, signer, nonce).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IntentKey {
    pub chain: u64,
    pub signer: Address,
    pub nonce: u64,
}

impl FixedKey<36> for IntentKey {
    fn to_bytes(&self) -> [u8; 36] {
        Builder::new()
            .put(&self.chain.to_be_bytes())
            .put(self.signer.as_slice())
            .put(&self.nonce.to_be_bytes())
            .done()
    }
    fn from_bytes(bytes: [u8; 36]) -> Self {
        let mut c = Cursor { bytes: &bytes };
        Self { chain: c.u64(), signer: c.address(), nonce: c.u64() }
    }
}

/// `reorgs`: (chain id, sequence number within the chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReorgKey {
    pub chain: u64,
    pub seq: u64,
}

impl FixedKey<16> for ReorgKey {
    fn to_bytes(&self) -> [u8; 16] {
        Builder::new().put(&self.chain.to_be_bytes()).put(&self.seq.to_be_bytes()).done()
    }
    fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut c = Cursor { bytes: &bytes };
        Self { chain: c.u64(), seq: c.u64() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_read_back_from_their_text() {
        let ev = ItemKey::Event(EventKey { chain: 31337, block: 12, log_index: 3 });
        let batch = ItemKey::Batch(BatchKey { source: 2, height: 100 });
        for item in [ev, batch] {
            assert_eq!(item.to_string().parse::<ItemKey>(), Ok(item));
        }
        assert_eq!(ev.to_string(), "ev:31337:12:3");
        for bad in ["", "ev:1:2", "ev:1:2:x", "batch:1", "tx:1:2:3", "ev:-1:2:3"] {
            assert!(bad.parse::<ItemKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn byte_order_is_numeric_order() {
        // The classic string-prefix bug: chain 1 vs 10 vs 17000, block 9 vs 10.
        let keys = [
            EventKey { chain: 1, block: 9, log_index: 3 },
            EventKey { chain: 1, block: 10, log_index: 0 },
            EventKey { chain: 1, block: 10, log_index: 256 },
            EventKey { chain: 10, block: 0, log_index: 0 },
            EventKey { chain: 17000, block: 1, log_index: 0 },
            EventKey { chain: u64::MAX, block: u64::MAX, log_index: u32::MAX },
        ];
        let mut by_bytes = keys.to_vec();
        by_bytes.sort_by_key(|k| k.to_bytes());
        assert_eq!(by_bytes, keys.to_vec());
        let mut by_value = keys.to_vec();
        by_value.sort();
        assert_eq!(by_value, by_bytes);
    }

    #[test]
    fn every_key_roundtrips() {
        let address = Address::repeat_byte(0xab);
        let event = EventKey { chain: 8453, block: 21_000_000, log_index: 7 };
        let batch = BatchKey { source: 3, height: 4_000_000 };
        assert_eq!(CursorKey::from_bytes(CursorKey { source: 9 }.to_bytes()), CursorKey { source: 9 });
        assert_eq!(
            BlockKey::from_bytes(BlockKey { source: 1, number: 2 }.to_bytes()),
            BlockKey { source: 1, number: 2 }
        );
        assert_eq!(
            ContractKey::from_bytes(ContractKey { chain: 1, address }.to_bytes()),
            ContractKey { chain: 1, address }
        );
        assert_eq!(EventKey::from_bytes(event.to_bytes()), event);
        assert_eq!(BatchKey::from_bytes(batch.to_bytes()), batch);
        for item in [ItemKey::Event(event), ItemKey::Batch(batch)] {
            assert_eq!(ItemKey::from_bytes(item.to_bytes()), item);
            let d = DeliveryKey { target: 2, chain: 10, item };
            assert_eq!(DeliveryKey::from_bytes(d.to_bytes()), d);
            let s = StatusKey { state: 1, chain: 10, target: 2, item };
            assert_eq!(StatusKey::from_bytes(s.to_bytes()), s);
        }
        let i = IntentKey { chain: 42161, signer: address, nonce: 17 };
        assert_eq!(IntentKey::from_bytes(i.to_bytes()), i);
        assert_eq!(
            ReorgKey::from_bytes(ReorgKey { chain: 1, seq: 2 }.to_bytes()),
            ReorgKey { chain: 1, seq: 2 }
        );
    }

    #[test]
    fn status_index_groups_by_state_then_chain() {
        let item = ItemKey::Batch(BatchKey { source: 0, height: 1 });
        let a = StatusKey { state: 0, chain: 10, target: 9, item }.to_bytes();
        let b = StatusKey { state: 0, chain: 11, target: 0, item }.to_bytes();
        let c = StatusKey { state: 1, chain: 1, target: 0, item }.to_bytes();
        assert!(a < b && b < c);
    }
}
