//! A batch: its header, its id (`keccak256` of a 112-byte preimage), the validator entries that
//! sign the next batch, and the signatures of the previous batch's validators.

use alloy::primitives::{Address, B256, Bytes, keccak256};
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
        let mut preimage = [0u8; 112];
        preimage[..8].copy_from_slice(&self.number.to_be_bytes());
        preimage[8..16].copy_from_slice(&self.block_height.to_be_bytes());
        preimage[16..48].copy_from_slice(self.validators_root.as_slice());
        preimage[48..80].copy_from_slice(self.results_root.as_slice());
        preimage[80..].copy_from_slice(self.proving_metadata_hash().as_slice());
        keccak256(preimage)
    }

    /// `keccak256(proving_metadata)`, or 32 zero bytes when it is empty (not `keccak256("")`).
    pub fn proving_metadata_hash(&self) -> B256 {
        if self.proving_metadata.is_empty() { B256::ZERO } else { keccak256(&self.proving_metadata) }
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

impl Signature {
    /// From the API's signature bytes: the first 65 (the chain may store a longer vote extension),
    /// `None` when there are fewer.
    pub fn from_slice(operator: impl Into<String>, bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 65] = bytes.get(..65)?.try_into().ok()?;
        Some(Self { operator: operator.into(), bytes })
    }
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

#[cfg(test)]
mod tests {
    use alloy::primitives::b256;

    use super::*;

    /// SEDA.md §2: the id of batch 1 at block height 0, with empty proving metadata.
    #[test]
    fn id_matches_the_known_vector() {
        let header = BatchHeader {
            number: 1,
            block_height: 0,
            validators_root: b256!("bb9dcde527b03bcf4022f44c13ffce6eb445e765cc3064dd5c6093ca781a7ebc"),
            results_root: b256!("b361e88bec2624b327671f15761d4c24915dbc11503343f3e325d0d97061552a"),
            proving_metadata: Bytes::new(),
        };
        assert_eq!(header.id(), b256!("afd4483e5cfa9954ecc23c78da0abd2c1a92d0e8be6b3e5bf554cd0ea5ac305b"));
    }

    #[test]
    fn empty_metadata_hashes_to_zero_and_other_metadata_to_its_keccak() {
        let mut header = BatchHeader {
            number: 7,
            block_height: 9,
            validators_root: B256::repeat_byte(1),
            results_root: B256::repeat_byte(2),
            proving_metadata: Bytes::new(),
        };
        assert_eq!(header.proving_metadata_hash(), B256::ZERO);
        header.proving_metadata = Bytes::from_static(b"meta");
        assert_eq!(header.proving_metadata_hash(), keccak256(b"meta"));

        let mut preimage = Vec::new();
        preimage.extend_from_slice(&7u64.to_be_bytes());
        preimage.extend_from_slice(&9u64.to_be_bytes());
        preimage.extend_from_slice(&[1; 32]);
        preimage.extend_from_slice(&[2; 32]);
        preimage.extend_from_slice(keccak256(b"meta").as_slice());
        assert_eq!(header.id(), keccak256(&preimage));
    }

    #[test]
    fn signature_takes_the_first_65_bytes() {
        let long: Vec<u8> = (0..70).collect();
        let sig = Signature::from_slice("op", &long).expect("70 bytes are enough");
        assert_eq!(sig.bytes[..], long[..65]);
        assert!(Signature::from_slice("op", &long[..64]).is_none());
    }

    fn sample() -> SignedBatch {
        SignedBatch {
            header: BatchHeader {
                number: 3,
                block_height: 44,
                validators_root: B256::repeat_byte(3),
                results_root: B256::repeat_byte(4),
                proving_metadata: Bytes::new(),
            },
            batch_id: B256::repeat_byte(5),
            validators: vec![Validator {
                operator: "sedavaloper1x".into(),
                eth_address: Address::repeat_byte(6),
                power: 100_000_000,
            }],
            signatures: vec![Signature { operator: "sedavaloper1x".into(), bytes: [7; 65] }],
            result_ids: vec![B256::repeat_byte(8)],
        }
    }

    #[test]
    fn a_signed_batch_round_trips_through_postcard_and_json() {
        let batch = sample();
        let bytes = postcard::to_allocvec(&batch).expect("postcard encodes a batch");
        let back: SignedBatch = postcard::from_bytes(&bytes).expect("postcard decodes its own batch");
        assert_eq!(back, batch);
        let json = serde_json::to_string(&batch).expect("JSON encodes a batch");
        let back: SignedBatch = serde_json::from_str(&json).expect("JSON decodes its own batch");
        assert_eq!(back, batch);
    }
}
