//! The helpers that the integration tests (`tests/it`) and the benches (`benches/`) share: real
//! local chains (anvil) and the test proxies in front of them.
//!
//! Every user mounts this directory as `crate::support`:
//!
//! ```ignore
//! #[path = "../support/mod.rs"] // from tests/it/main.rs; "../tests/support/mod.rs" from a bench
//! mod support;
//! ```
//!
//! The modules refer to each other as `super::…`, never to a test module.

// Each binary that includes this uses only part of it.
#![allow(dead_code)]

pub mod devnet;
pub mod http;
pub mod lagproxy;
pub mod proxy;
