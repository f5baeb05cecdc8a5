//! The engine: ingest of sources (`ingest`, `evm`), delivery workers (`deliver`), the RPC client
//! (`rpc`), the online checks (`preflight`) and what `watch` tells monitoring (`observe`). It
//! runs on the resolved config and the store, and never imports clap, indicatif, comfy-table or
//! dialoguer (`docs/architecture.md` §1).

pub mod deliver;
pub mod evm;
pub mod ingest;
pub mod observe;
pub mod operator;
pub mod preflight;
pub mod rpc;
pub mod seda;
pub mod sink;
