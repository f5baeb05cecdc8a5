//! The one set of helpers that the integration tests (`tests/it`) and the benches (`benches/`)
//! share: the `ferry` command, child processes killed on drop, output and hex helpers, real local
//! chains (anvil) and the test proxies in front of them. Each helper is defined here once.
//!
//! Every user mounts this directory as `crate::support`:
//!
//! ```ignore
//! #[path = "../support/mod.rs"] // from tests/it/main.rs; "../tests/support/mod.rs" from a bench
//! mod support;
//! ```
//!
//! The modules refer to each other as `super::…`, never to a test module. Their self-tests are
//! modules of the `it` binary (`tests/it/devnet.rs`, `tests/it/lagproxy.rs`), so that a bench
//! compiles helpers only.

// Each binary that includes this uses only part of it.
#![allow(dead_code)]

pub mod command;
pub mod devnet;
pub mod hex;
pub mod http;
pub mod lagproxy;
pub mod nats;
pub mod net;
pub mod output;
pub mod process;
pub mod proxy;
pub mod pubsub;
pub mod redis;
pub mod seda_api;
pub mod seda_net;
pub mod sink;
pub mod webhook;
