//! Every table of the store, in one place, with the schema version they make up.
//!
//! Changing a table (its key layout, its record type, adding or removing one) bumps
//! [`SCHEMA_VERSION`], adds a step to `migrate::STEPS`, and adds a fixture file of the old version
//! under `tests/fixtures/`.

use redb::TableDefinition;

/// The schema this ferry reads and writes.
pub const SCHEMA_VERSION: u32 = 5;

/// `key → value` text: see [`meta`] for the keys.
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Source name → the `u32` id used in fixed-width keys.
pub const SOURCE_IDS: TableDefinition<&str, u32> = TableDefinition::new("source_ids");
/// Target name → the `u32` id used in fixed-width keys.
pub const TARGET_IDS: TableDefinition<&str, u32> = TableDefinition::new("target_ids");
/// [`CursorKey`](super::keys::CursorKey) → [`Cursor`](super::records::Cursor).
pub const CURSORS: TableDefinition<[u8; 4], &[u8]> = TableDefinition::new("cursors");
/// [`BlockKey`](super::keys::BlockKey) → [`BlockHash`](super::records::BlockHash): a window for reorg detection.
pub const BLOCK_HASHES: TableDefinition<[u8; 12], &[u8]> = TableDefinition::new("block_hashes");
/// [`ContractKey`](super::keys::ContractKey) → [`Contract`](super::records::Contract).
pub const CONTRACTS: TableDefinition<[u8; 28], &[u8]> = TableDefinition::new("contracts");
/// [`EventKey`](super::keys::EventKey) → [`Event`](super::records::Event).
pub const EVENTS: TableDefinition<[u8; 20], &[u8]> = TableDefinition::new("events");
/// [`BatchKey`](super::keys::BatchKey) → [`Batch`](super::records::Batch).
pub const BATCHES: TableDefinition<[u8; 12], &[u8]> = TableDefinition::new("batches");
/// [`DeliveryKey`](super::keys::DeliveryKey) → [`Delivery`](super::records::Delivery).
pub const DELIVERIES: TableDefinition<[u8; 33], &[u8]> = TableDefinition::new("deliveries");
/// [`StatusKey`](super::keys::StatusKey) → nothing: the index of deliveries by state and chain.
pub const DELIVERY_STATUS: TableDefinition<[u8; 34], ()> = TableDefinition::new("delivery_status");
/// [`IntentKey`](super::keys::IntentKey) → [`TxIntent`](super::records::TxIntent).
pub const TX_INTENTS: TableDefinition<[u8; 36], &[u8]> = TableDefinition::new("tx_intents");
/// [`ReorgKey`](super::keys::ReorgKey) → [`Reorg`](super::records::Reorg).
pub const REORGS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("reorgs");

/// [`ProverKey`](super::keys::ProverKey) → [`ProverState`](super::records::ProverState): what each
/// `seda-prover` destination last said.
pub const PROVERS: TableDefinition<[u8; 12], &[u8]> = TableDefinition::new("provers");

/// [`DeliveryKey`](super::keys::DeliveryKey) → [`SinkAck`](super::records::SinkAck): what a sink
/// said when it took a delivery (an HTTP status, a stream entry id, a JetStream sequence).
pub const SINK_ACKS: TableDefinition<[u8; 33], &[u8]> = TableDefinition::new("sink_acks");

/// Every table name, in the order summaries and exports list them.
pub const ALL: [&str; 14] = [
    "meta",
    "source_ids",
    "target_ids",
    "cursors",
    "block_hashes",
    "contracts",
    "events",
    "batches",
    "deliveries",
    "delivery_status",
    "tx_intents",
    "reorgs",
    "provers",
    "sink_acks",
];

/// Keys of the `meta` table.
pub mod meta {
    pub const SCHEMA_VERSION: &str = "schema_version";
    /// `ferry 0.1.0`: the ferry that created the file.
    pub const CREATED_BY: &str = "created_by";
    /// Unix seconds.
    pub const CREATED_AT: &str = "created_at";
    /// The fingerprint of the config the last writer ran with.
    pub const CONFIG_FINGERPRINT: &str = "config_fingerprint";
    /// JSON `{pid, command, started_at}` of the last process that opened the file for writing.
    pub const HOLDER: &str = "holder";
    /// The ferry that last migrated the file, and when.
    pub const MIGRATED_BY: &str = "migrated_by";
}
