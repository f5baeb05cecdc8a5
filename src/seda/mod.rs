//! SEDA batches as facts (`SEDA.md` in the design notes): what a batch is and its id
//! (`batch.rs`), the sorted Merkle trees of validators and results (`tree.rs`), who signed and
//! whether that is enough for a destination (`sign.rs`), the batching REST API's JSON
//! (`wire.rs`), and the Prover contract's calls and errors (`prover.rs`).
//!
//! Pure: no HTTP, no RPC, no store, no config. The `seda` source (`engine::seda`) fetches and
//! checks batches with it; the `seda-prover` target builds `postBatch` from it; the test batching
//! API in `tests/support` builds its batches with it, and the test Prover contract verifies every
//! signature and proof on-chain, independently.

pub mod batch;
pub mod prover;
pub mod sign;
#[cfg(test)]
mod testing;
pub mod tree;
pub mod wire;

pub use batch::{BatchHeader, Signature, SignedBatch, Validator};

/// The share of validator power (of 1e8) a batch's signers must hold in the destination's tree.
pub const CONSENSUS_PERCENTAGE: u32 = 66_666_666;

/// Voting power is written in units of 1e-8: 100 % is this.
pub const FULL_POWER: u32 = 100_000_000;
