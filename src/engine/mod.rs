//! The engine: sources, planner, delivery workers, targets, RPC. Never imports clap, indicatif,
//! comfy-table or dialoguer.

pub mod deliver;
pub mod evm;
pub mod ingest;
pub mod preflight;
pub mod rpc;
