//! Tests of reading a range: [`decide`] table-driven without a client (`decide.rs`), then
//! [`fetch_range`] and [`final_head`] end to end against the scripted client (`fetch.rs`). Here:
//! the scripted chain they share.

mod decide;
mod fetch;

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bloom, U256};

use super::*;
use crate::abi::events::EventSet;
use crate::engine::rpc::scripted::{self, Call, Emit, Scripted};
use crate::engine::rpc::{ErrorKind, Header, LogFilter};

const PING: &str = "event Ping(uint256 indexed seq)";
const DEPLOYED: &str = "event EscrowDeployed(address indexed escrow)";
const APPROVED: &str = "event Approved(address indexed by)";
const OTHER: &str = "event Other(uint256 n)";
/// The range most cases read, and the chain's head.
const FROM: u64 = 10;
const TO: u64 = 19;

fn topic(decl: &str) -> B256 {
    EventSet::parse(&[decl]).expect("declaration").topics()[0]
}

fn emitter() -> Address {
    Address::repeat_byte(0xe0)
}

fn factory() -> Address {
    Address::repeat_byte(0xfa)
}

fn child(i: u64) -> Address {
    Address::from_word(B256::from(U256::from(0xc000 + i)))
}

fn stranger() -> Address {
    Address::repeat_byte(0x55)
}

fn ping(seq: u64) -> Emit {
    Emit::new(emitter(), vec![topic(PING), B256::from(U256::from(seq))])
}

fn deploy(child: Address) -> Emit {
    Emit::new(factory(), vec![topic(DEPLOYED), child.into_word()])
}

fn approve(by: Address) -> Emit {
    Emit::new(by, vec![topic(APPROVED), emitter().into_word()])
}

/// Blocks 10..=19. Child 0 is known before the range; 1 and 2 are announced in it (1 twice, and
/// with its first event in its creation block); a stranger emits a child event; block 17 holds a
/// log of an undeclared event and a `Ping` missing its indexed topic; 12 and 19 hold nothing.
fn blocks() -> Vec<Vec<Emit>> {
    vec![
        vec![ping(1)],
        vec![deploy(child(1)), approve(child(1))],
        vec![],
        vec![approve(child(0)), deploy(child(1)), deploy(child(0))],
        vec![ping(2), approve(stranger())],
        vec![deploy(child(2))],
        vec![approve(child(2))],
        vec![
            Emit::new(emitter(), vec![topic(OTHER)]).data(U256::from(7).to_be_bytes::<32>().to_vec()),
            Emit::new(emitter(), vec![topic(PING)]),
        ],
        vec![ping(3)],
        vec![],
    ]
}

fn chain() -> Scripted {
    Scripted::new(FROM, blocks())
}

fn plan(tip: bool, max_addresses: usize) -> SourcePlan {
    let declared = |decls: &[&str]| EventSet::parse(decls).expect("declarations");
    SourcePlan {
        name: "test".into(),
        chain: "local".into(),
        chain_id: 31337,
        start_block: 0,
        finality: Finality::Confirmations(if tip { 0 } else { 1 }),
        reorg_window: 4,
        max_block_range: 100,
        poll_interval: Duration::from_secs(1),
        max_addresses,
        statics: BTreeMap::from([(emitter(), declared(&[PING])), (factory(), declared(&[DEPLOYED]))]),
        factories: vec![FactoryPlan {
            address: factory(),
            creation: declared(&[DEPLOYED]),
            creation_topic: topic(DEPLOYED),
            child_param: "escrow".into(),
            child_events: declared(&[APPROVED]),
        }],
        child_topics: vec![topic(APPROVED)],
        routes: vec![RoutePlan {
            target: "t".into(),
            target_id: 1,
            chain_ids: vec![5],
            events: None,
            deliver_existing: false,
        }],
    }
}

/// Child 0, known to the source before the range.
fn registry() -> Registry {
    Registry::from([(child(0), 0)])
}
