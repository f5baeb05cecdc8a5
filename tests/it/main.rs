//! The one integration-test binary: every module drives the real `ferry` binary or library
//! against real local chains (anvil), real files and real processes. The helpers they use, shared
//! with the benches, are in `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod bugs;
mod cli;
mod config;
mod contracts;
mod control_socket;
mod deliver;
mod deliver_crash;
mod deliver_faults;
mod devnet;
mod disk;
mod funds;
mod incidents;
mod ingest;
mod inspect_deliver;
mod inspect_seda;
mod json_contract;
mod lagging;
mod lagproxy;
mod metrics;
mod nonce_gap;
mod one_client;
mod online;
mod online_checks;
mod push_cron;
mod reload;
mod seda;
mod seda_api;
mod seda_contract;
mod seda_crash;
mod service;
mod sink_jsonl;
mod sink_nats;
mod sink_pubsub;
mod sink_redis;
mod sink_webhook;
mod sinks;
mod sinks_crash;
mod stop;
mod store;
