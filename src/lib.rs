//! ferry: watch EVM chains and SEDA batches, record everything in one redb file, and deliver it
//! to EVM chains and sinks exactly once in effect.
//!
//! The library holds everything but argument parsing and printing, so that tests drive the
//! engine and the store without the binary.

pub mod abi;
pub mod cli;
pub mod config;
pub mod engine;
pub mod exit;
pub mod output;
pub mod signals;
pub mod store;
pub mod telemetry;
