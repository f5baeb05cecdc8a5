//! ferry: watch EVM chains and SEDA batches, record everything in one redb file, and deliver it
//! to EVM chains and sinks exactly once in effect.
//!
//! The library holds every layer, the command line included (`cli`), so that tests drive the
//! config, the engine and the store without the binary; `main.rs` only installs the runtime and
//! turns the outcome into an exit code. The layers and their rules: `docs/architecture.md`.

pub mod abi;
pub mod cli;
pub mod config;
pub mod engine;
pub mod exit;
pub mod output;
pub mod seda;
pub mod signals;
pub mod store;
pub mod telemetry;
