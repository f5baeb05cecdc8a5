//! The engine: sources, planner, delivery workers, targets, RPC. Never imports clap, indicatif,
//! comfy-table or dialoguer.

pub mod keys;
pub mod preflight;
