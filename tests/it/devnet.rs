//! The local chains the other tests stand on: anvil nodes on ports of their own, the committed
//! contracts doing what the tests rely on, and a node gone once dropped; a refusing port that no
//! node can take.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::{Provider, RootProvider};
use alloy::sol_types::{SolCall, SolError, SolEvent};
use serde_json::json;

use crate::support::devnet::{
    Anvil, DEV_ADDRESSES, IBatchReceiver, IEscrow, IEscrowFactory, IEventEmitter, log_topics,
};
use crate::support::hex::hex_u64;
use crate::support::net::RefusingPort;

#[tokio::test]
async fn two_chains_with_their_own_ids_and_ports() {
    let (a, b) = tokio::join!(Anvil::start(31337), Anvil::start(31338));
    assert_ne!(a.url(), b.url());
    assert_eq!(a.chain_id(), 31337);
    assert_eq!(b.chain_id(), 31338);
    a.mine(3).await;
    assert_eq!(a.block_number().await, 3);
    assert_eq!(b.block_number().await, 0);
}

#[tokio::test]
async fn batch_receiver_posts_once_and_rejects_a_duplicate() {
    let chain = Anvil::start(31401).await;
    let receiver = chain.deploy("BatchReceiver", &[]).await;
    let root = B256::repeat_byte(7);
    let post = IBatchReceiver::postBatchCall { height: 5, root }.abi_encode();
    let receipt = chain.send(receiver, post.clone()).await;
    assert_eq!(log_topics(&receipt), vec![IBatchReceiver::BatchPosted::SIGNATURE_HASH]);

    let last = chain.call(receiver, IBatchReceiver::lastBatchHeightCall {}.abi_encode()).await.expect("call");
    assert_eq!(IBatchReceiver::lastBatchHeightCall::abi_decode_returns(&last).expect("uint64"), 5);

    let duplicate = chain.call(receiver, post).await.expect_err("a duplicate reverts");
    let selector = alloy::primitives::hex::encode(IBatchReceiver::BatchAlreadyExists::SELECTOR);
    assert!(duplicate.contains(&selector), "revert does not carry BatchAlreadyExists: {duplicate}");
    let empty = IBatchReceiver::postBatchCall { height: 6, root: B256::ZERO }.abi_encode();
    assert!(
        chain
            .transact(json!({ "to": receiver, "data": Bytes::from(empty), "gas": "0x100000" }))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn escrow_created_and_approved_in_one_transaction() {
    let chain = Anvil::start(31402).await;
    let factory = chain.deploy("EscrowFactory", &[]).await;
    let seller: Address = DEV_ADDRESSES[1].parse().expect("address");
    let call = IEscrowFactory::createAndApproveCall { seller, amount: U256::from(100) }.abi_encode();
    let receipt = chain.send(factory, call).await;
    let logs = receipt["logs"].as_array().expect("logs");
    assert_eq!(
        log_topics(&receipt),
        vec![IEscrowFactory::EscrowDeployed::SIGNATURE_HASH, IEscrow::Approved::SIGNATURE_HASH]
    );
    // The child emits from its own address, which the creation event names in topic 1.
    let escrow: Address = logs[1]["address"].as_str().and_then(|a| a.parse().ok()).expect("address");
    let named: B256 = logs[0]["topics"][1].as_str().and_then(|t| t.parse().ok()).expect("topic");
    assert_eq!(Address::from_word(named), escrow);
    // The escrow's own lifecycle works from outside too.
    let released = chain.send(escrow, IEscrow::releaseCall {}.abi_encode()).await;
    assert_eq!(log_topics(&released), vec![IEscrow::EscrowReleased::SIGNATURE_HASH]);
}

#[tokio::test]
async fn factory_creates_hundreds_of_escrows_per_transaction() {
    let chain = Anvil::start(31403).await;
    let factory = chain.deploy("EscrowFactory", &[]).await;
    let receipt =
        chain.send(factory, IEscrowFactory::createEscrowsCall { n: U256::from(200) }.abi_encode()).await;
    let gas = hex_u64(&receipt["gasUsed"]);
    assert_eq!(log_topics(&receipt).len(), 200);
    assert!(gas < 30_000_000, "200 escrows need {gas} gas, more than a default block");
    eprintln!("createEscrows(200): {gas} gas ({} per escrow)", gas / 200);
}

#[tokio::test]
async fn emitter_emits_recomputable_events() {
    let chain = Anvil::start(31404).await;
    let emitter = chain.deploy("EventEmitter", &[]).await;
    let receipt = chain.send(emitter, IEventEmitter::emitManyCall { n: U256::from(1000) }.abi_encode()).await;
    let logs = receipt["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1000);
    let last = &logs[999];
    let data: Bytes = last["data"].as_str().and_then(|d| d.parse().ok()).expect("data");
    assert_eq!(&data[..], keccak256(U256::from(999).to_be_bytes::<32>()).as_slice());
    let batches = chain.send(emitter, IEventEmitter::emitBatchesCall { from: 10, n: 3 }.abi_encode()).await;
    assert_eq!(log_topics(&batches), vec![IEventEmitter::BatchReady::SIGNATURE_HASH; 3]);
}

#[tokio::test]
async fn a_dropped_node_stops_answering() {
    let chain = Anvil::start(31405).await;
    let url = chain.url();
    let pid = chain.pid();
    drop(chain);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "anvil {pid} still runs");
    let provider = RootProvider::<alloy::network::Ethereum>::new_http(url.parse().expect("url"));
    let answer = tokio::time::timeout(Duration::from_secs(5), provider.get_chain_id()).await;
    assert!(matches!(answer, Ok(Err(_))), "the port still answers after drop");
}

#[tokio::test]
async fn a_refusing_port_refuses_and_cannot_be_taken() {
    let port = RefusingPort::bind();
    let addr = port.addr();
    let refused = std::net::TcpStream::connect(addr).expect_err("nothing listens");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
    // A listener, which sets SO_REUSEADDR as anvil's does, cannot bind it either.
    let taken = tokio::net::TcpListener::bind(addr).await.expect_err("the port is held");
    assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse, "{taken}");
}

#[tokio::test]
#[should_panic(expected = "before it listened")]
async fn a_node_that_cannot_start_says_why() {
    Anvil::start_with(31406, &["--no-such-flag"]).await;
}
