//! The one integration-test binary: every module drives the real `ferry` binary or library
//! against real local chains (anvil), real files and real processes.

mod cli;
mod config;
mod contracts;
mod deliver;
mod deliver_crash;
mod deliver_faults;
mod devnet;
mod disk;
mod http;
mod ingest;
mod inspect_deliver;
mod lagging;
mod lagproxy;
mod online;
mod proxy;
mod store;
