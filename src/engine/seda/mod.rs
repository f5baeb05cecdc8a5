//! The `seda` source: signed batches from the SEDA chain's batching REST API (`api.rs`), checked
//! and stored one after another with their deliveries (`source.rs`). What makes a batch valid is
//! `crate::seda`; posting one to a Prover is the delivery worker's (`deliver/prover.rs`).

mod api;
pub mod source;

pub use api::{ApiError, Fetched, SedaApi};
pub use source::SedaRunner;
