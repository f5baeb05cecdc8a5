//! The batching REST API's JSON (cosmos gRPC-gateway, gogoproto): 64-bit integers as decimal
//! strings, bytes as standard base64 (`null` when empty), roots as hex without 0x. Every bad
//! field is an error that names it.

use super::SignedBatch;

/// What `GET /seda-chain/batching/batch/{n}` (or `…/batch/0?latest_signed=true`) answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchAnswer {
    /// A batch with its signatures.
    Signed(SignedBatch),
    /// The batch exists and is not signed yet (`batch_signatures` empty): ask again.
    Unsigned { number: u64 },
}

/// A field that did not decode: its JSON path (`batch.batch_id`, `validator_entries[3].eth_address`)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WireError {
    pub field: String,
    pub message: String,
}

/// Decodes a batch answer (HTTP 200 body).
pub fn parse_batch(body: &[u8]) -> Result<BatchAnswer, WireError> {
    todo!()
}

/// Whether an error answer (any status) says the batch is not there: a gRPC-gateway
/// `{code, message}` whose message contains "not found", or a 404.
pub fn is_not_found(status: u16, body: &[u8]) -> bool {
    todo!()
}

/// `num_batches_to_keep` from `GET /seda-chain/batching/params` (`{"params": {...}}`).
pub fn parse_num_batches_to_keep(body: &[u8]) -> Result<u64, WireError> {
    todo!()
}

/// The JSON of a signed batch as the API writes it, for the test batching API and for export.
pub fn batch_json(batch: &SignedBatch) -> serde_json::Value {
    todo!()
}
