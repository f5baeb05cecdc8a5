//! Who signed a batch, and whether that is enough: signatures recovered (low-s, over the raw id,
//! no EIP-191 prefix), checked against the previous batch's validators (what the source stores),
//! and against a destination's tree with the threshold ferry checks itself (what the target posts).

use alloy::primitives::{Address, B256, Bytes};

use super::tree::ValidatorTree;
use super::{SignedBatch, Validator};

/// Why a batch is refused. Each names the check; the caller names the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("its id is {computed}, not the batch_id {given} the API gave")]
    WrongId { given: B256, computed: B256 },
    #[error("signature {index} (validator {operator}) does not recover: {detail}")]
    Unrecoverable { index: usize, operator: String, detail: String },
    #[error("signature {index} (validator {operator}) has a high s value, which the Prover refuses")]
    HighS { index: usize, operator: String },
    #[error(
        "signature {index} (validator {operator}) recovers to {recovered}, not an ETH address of batch {previous}'s validators"
    )]
    NotAValidator { index: usize, operator: String, recovered: Address, previous: u64 },
}

/// The signer an ECDSA signature of `id` recovers to; refuses a high s (OpenZeppelin's ECDSA does).
pub fn recover(id: B256, signature: &[u8; 65]) -> Result<Address, String> {
    todo!()
}

/// Checks a batch before it is stored: its id recomputed, and every signature recovering to an
/// ETH address of `previous` (the validators of batch `number - 1`). Returns the first problem.
pub fn check(batch: &SignedBatch, previous_number: u64, previous: &[Validator]) -> Result<(), CheckError> {
    todo!()
}

/// One signer as `postBatch` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub address: Address,
    pub power: u32,
    pub proof: Vec<B256>,
    /// `r ‖ s ‖ v` with v ∈ {27, 28}.
    pub signature: Bytes,
}

/// A batch's signers that are in `tree`, sorted ascending by address, with the sum of their power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signers {
    pub signers: Vec<Signer>,
    pub power: u64,
}

impl Signers {
    /// Whether they hold the Prover's threshold (`CONSENSUS_PERCENTAGE`).
    pub fn hold_threshold(&self) -> bool {
        todo!()
    }
}

/// The signatures of `batch` whose signers are in `tree`; the others (not in the tree, not
/// recoverable, duplicates) are left out.
pub fn signers_in(batch: &SignedBatch, tree: &ValidatorTree) -> Signers {
    todo!()
}

/// What to post to bring a destination from `last` (whose tree is `tree_of_last`) to `target`,
/// given the stored batches above `last` up to `target` (ascending, consecutive): `target` alone
/// when its signers hold the threshold in the last tree; otherwise first the highest batch K
/// between whose signers do, then on from K (SEDA.md §5.3). Heights in posting order.
/// `Err(height)`: no batch above that height qualifies against its tree (not even the next one).
pub fn plan_posts(
    last: u64,
    tree_of_last: &ValidatorTree,
    above: &[SignedBatch],
    target: u64,
) -> Result<Vec<u64>, u64> {
    todo!()
}
