//! A batch: its header, its id (`keccak256` of a 112-byte preimage), the validator entries that
//! sign the next batch, and the signatures of the previous batch's validators.

use alloy::primitives::{Address, B256, Bytes};
use serde::{Deserialize, Serialize};

/// The fields the batch id is made of, and that `postBatch` posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchHeader {
    pub number: u64,
    pub block_height: u64,
    pub validators_root: B256,
    /// `data_result_root` (not `current_data_result_root`): what the Prover stores as `resultsRoot`.
    pub results_root: B256,
    /// As the API gave it; empty today.
    pub proving_metadata: Bytes,
}

impl BatchHeader {
    /// `keccak256(bytes8(number) ‖ bytes8(block_height) ‖ validators_root ‖ results_root ‖ proving_metadata_hash)`.
    pub fn id(&self) -> B256 {
        todo!()
    }

    /// `keccak256(proving_metadata)`, or 32 zero bytes when it is empty (not `keccak256("")`).
    pub fn proving_metadata_hash(&self) -> B256 {
        todo!()
    }
}

/// One validator entry: who signs the next batch, with what share of the power.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// The operator address as the API wrote it (`sedavaloper1…`, or base64).
    pub operator: String,
    pub eth_address: Address,
    /// Of 1e8 (`FULL_POWER`).
    pub power: u32,
}

/// One validator's signature of a batch id: `r ‖ s ‖ v`, v ∈ {0, 1} as the chain stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub operator: String,
    #[serde(with = "serde_bytes65")]
    pub bytes: [u8; 65],
}

/// A signed batch, as the source stores it: enough to build any proof later, after the chain
/// has pruned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBatch {
    pub header: BatchHeader,
    /// The id the API gave; the source stores a batch only when it equals `header.id()`.
    pub batch_id: B256,
    /// This batch's validators: they sign the next batch.
    pub validators: Vec<Validator>,
    /// Signatures of this batch's id by the previous batch's validators.
    pub signatures: Vec<Signature>,
    /// The data result ids the batch commits to.
    pub result_ids: Vec<B256>,
}

mod serde_bytes65 {
    //! `[u8; 65]` through serde (arrays above 32 have no serde impls of their own).
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 65], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 65], D::Error> {
        let v: Vec<u8> = serde_bytes_vec(d)?;
        v.try_into().map_err(|v: Vec<u8>| serde::de::Error::invalid_length(v.len(), &"65 bytes"))
    }

    fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Vec::<u8>::deserialize(d)
    }
}
