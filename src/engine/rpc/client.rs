//! [`ChainClient`]: the calls ferry makes to a chain, as one small trait at the I/O edge.
//!
//! [`ChainRpc`] is the real client (failover, retries, rate limit and counting stay inside it);
//! `scripted::Scripted` (unit tests only) answers from a table of canned blocks, logs and errors
//! and records the calls made, so that the code deciding what an answer means is tested without a
//! node. Code that talks to a chain takes `&impl ChainClient`.

use std::future::Future;

use alloy::primitives::B256;

use super::{BlockId, ChainRpc, Header, Log, LogFilter, RpcError};

/// What ferry asks of a chain. Every answer is one node's view: a missing block or an empty list
/// is not evidence that the chain has none (see `docs/guarantees.md`).
pub trait ChainClient: Sync {
    /// The chain's head (`eth_blockNumber`).
    fn block_number(&self) -> impl Future<Output = Result<u64, RpcError>> + Send;

    /// A block's header (`eth_getBlockByNumber`); `None` when the node does not have it (yet).
    fn header(&self, block: BlockId) -> impl Future<Output = Result<Option<Header>, RpcError>> + Send;

    /// The filter's logs over its block range (`eth_getLogs`).
    fn logs(&self, filter: &LogFilter) -> impl Future<Output = Result<Vec<Log>, RpcError>> + Send;

    /// The filter's logs in the one block `hash` (EIP-234; the filter's range is ignored): an
    /// error, never an empty list, from a node that does not have that block.
    fn logs_at(
        &self,
        filter: &LogFilter,
        hash: B256,
    ) -> impl Future<Output = Result<Vec<Log>, RpcError>> + Send;

    /// The highest block number any answer has shown so far: where the chain's head is at least,
    /// whichever node said it.
    fn highest_seen(&self) -> u64;
}

impl ChainClient for ChainRpc {
    fn block_number(&self) -> impl Future<Output = Result<u64, RpcError>> + Send {
        ChainRpc::block_number(self)
    }

    fn header(&self, block: BlockId) -> impl Future<Output = Result<Option<Header>, RpcError>> + Send {
        ChainRpc::header(self, block)
    }

    fn logs(&self, filter: &LogFilter) -> impl Future<Output = Result<Vec<Log>, RpcError>> + Send {
        ChainRpc::logs(self, filter)
    }

    fn logs_at(
        &self,
        filter: &LogFilter,
        hash: B256,
    ) -> impl Future<Output = Result<Vec<Log>, RpcError>> + Send {
        ChainRpc::logs_at(self, filter, hash)
    }

    fn highest_seen(&self) -> u64 {
        ChainRpc::highest_seen(self)
    }
}
