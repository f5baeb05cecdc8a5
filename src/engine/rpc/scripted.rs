//! A [`ChainClient`] for unit tests: a chain written as a table of blocks and their logs, which
//! answers as one node would and records every call made. It can lag as a node behind a load
//! balancer does (range queries leave out a tail of blocks, with no error), and fail a call with
//! a given error.
//!
//! Hashes are made up from the block number (and a fork number, for a chain that reorged), so a
//! test can name any block's hash without building the chain first.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy::primitives::{Address, B256, Bloom, BloomInput, Bytes, U64, keccak256};

use super::{BlockId, ChainClient, ErrorKind, Header, Log, LogFilter, RpcError};

/// One log as a test writes it.
#[derive(Debug, Clone)]
pub struct Emit {
    pub address: Address,
    pub topics: Vec<B256>,
    pub data: Bytes,
}

impl Emit {
    pub fn new(address: Address, topics: Vec<B256>) -> Self {
        Self { address, topics, data: Bytes::new() }
    }

    pub fn data(mut self, data: Vec<u8>) -> Self {
        self.data = data.into();
        self
    }
}

/// A call the client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    BlockNumber,
    Header(BlockId),
    Logs(LogFilter),
    LogsAt(LogFilter, B256),
}

impl Call {
    /// The JSON-RPC method the call is.
    pub fn method(&self) -> &'static str {
        match self {
            Call::BlockNumber => "eth_blockNumber",
            Call::Header(_) => "eth_getBlockByNumber",
            Call::Logs(_) | Call::LogsAt(..) => "eth_getLogs",
        }
    }
}

/// The hash of block `number` on fork `fork` (0: the chain as first written).
pub fn hash(number: u64, fork: u64) -> B256 {
    let mut seed = [0u8; 16];
    seed[..8].copy_from_slice(&number.to_be_bytes());
    seed[8..].copy_from_slice(&fork.to_be_bytes());
    keccak256(seed)
}

/// A header linked to its parent on the same fork, with the bloom of `logs`.
pub fn header(number: u64, fork: u64, logs: &[Emit]) -> Header {
    let mut bloom = Bloom::default();
    for log in logs {
        bloom.accrue(BloomInput::Raw(log.address.as_slice()));
        for topic in &log.topics {
            bloom.accrue(BloomInput::Raw(topic.as_slice()));
        }
    }
    Header {
        number: U64::from(number),
        hash: hash(number, fork),
        parent_hash: hash(number.wrapping_sub(1), fork),
        logs_bloom: bloom,
    }
}

/// The logs of one block as a node returns them.
pub fn logs(header: &Header, emits: &[Emit]) -> Vec<Log> {
    emits
        .iter()
        .enumerate()
        .map(|(i, e)| Log {
            address: e.address,
            topics: e.topics.clone(),
            data: e.data.clone(),
            block_number: header.number,
            block_hash: header.hash,
            transaction_hash: keccak256(header.hash),
            log_index: U64::from(i),
            removed: false,
        })
        .collect()
}

/// Whether a filter's addresses and topics select a log (its range aside).
pub fn selects(filter: &LogFilter, log: &Log) -> bool {
    (filter.addresses.is_empty() || filter.addresses.contains(&log.address))
        && (filter.topic0.is_empty() || log.topics.first().is_some_and(|t| filter.topic0.contains(t)))
}

/// An error as a client returns it after its retries.
pub fn error(kind: ErrorKind, method: &str, message: &str) -> RpcError {
    RpcError {
        kind,
        method: method.into(),
        url: "scripted".into(),
        message: message.into(),
        code: None,
        retry_after: None,
        hint: None,
        data: None,
    }
}

/// A chain in memory; see the module docs.
#[derive(Debug, Default)]
pub struct Scripted {
    blocks: BTreeMap<u64, (Header, Vec<Log>)>,
    /// Range queries see blocks up to this one and none above (a lagging node's answer).
    logs_up_to: Option<u64>,
    safe: Option<u64>,
    finalized: Option<u64>,
    /// Errors to answer instead, each for the next call of its method.
    failures: Mutex<Vec<(&'static str, RpcError)>>,
    calls: Mutex<Vec<Call>>,
    highest: AtomicU64,
}

impl Scripted {
    /// Blocks `first, first + 1, …`, linked, each with its logs.
    pub fn new(first: u64, blocks: Vec<Vec<Emit>>) -> Self {
        let mut chain = Self::default();
        for (i, emits) in blocks.iter().enumerate() {
            let number = first + i as u64;
            let h = header(number, 0, emits);
            chain.blocks.insert(number, (h, logs(&h, emits)));
        }
        chain
    }

    /// Range queries leave out the blocks above `number`, with no error; headers and queries by
    /// hash still show them: the answers of a node behind a load balancer that lags the others.
    pub fn logs_up_to(mut self, number: u64) -> Self {
        self.logs_up_to = Some(number);
        self
    }

    /// What the `safe` and `finalized` tags name.
    pub fn tags(mut self, safe: Option<u64>, finalized: Option<u64>) -> Self {
        self.safe = safe;
        self.finalized = finalized;
        self
    }

    /// The highest block the client has seen before any call (another node's answer).
    pub fn seen(self, number: u64) -> Self {
        self.highest.store(number, Ordering::Relaxed);
        self
    }

    /// The next call of `method` fails with `error` (after any failures queued before it).
    pub fn fail_next(&self, method: &'static str, error: RpcError) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).push((method, error));
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The number of calls of one method.
    pub fn count(&self, method: &str) -> usize {
        self.calls().iter().filter(|c| c.method() == method).count()
    }

    pub fn header_at(&self, number: u64) -> Option<Header> {
        self.blocks.get(&number).map(|b| b.0)
    }

    /// The answer to a range query: the logs of the blocks `from..=to` the filter selects, up to
    /// where range queries see (see [`logs_up_to`](Self::logs_up_to)).
    pub fn range_answer(&self, filter: &LogFilter) -> Vec<Log> {
        let up_to = self.logs_up_to.unwrap_or(u64::MAX).min(filter.to);
        if filter.from > up_to {
            return vec![];
        }
        self.blocks
            .range(filter.from..=up_to)
            .flat_map(|(_, (_, logs))| logs.iter().filter(|l| selects(filter, l)).cloned())
            .collect()
    }

    /// The answer to a query by block hash; `None` when the chain has no such block (a node
    /// answers an error).
    pub fn hash_answer(&self, filter: &LogFilter, hash: B256) -> Option<Vec<Log>> {
        let (_, logs) = self.blocks.values().find(|(h, _)| h.hash == hash)?;
        Some(logs.iter().filter(|l| selects(filter, l)).cloned().collect())
    }

    fn head(&self) -> u64 {
        self.blocks.keys().next_back().copied().unwrap_or(0)
    }

    /// Records the call; the error queued for its method, if any.
    fn record(&self, call: Call) -> Option<RpcError> {
        let method = call.method();
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let i = failures.iter().position(|(m, _)| *m == method)?;
        Some(failures.remove(i).1)
    }
}

impl ChainClient for Scripted {
    async fn block_number(&self) -> Result<u64, RpcError> {
        if let Some(e) = self.record(Call::BlockNumber) {
            return Err(e);
        }
        self.highest.fetch_max(self.head(), Ordering::Relaxed);
        Ok(self.head())
    }

    async fn header(&self, block: BlockId) -> Result<Option<Header>, RpcError> {
        if let Some(e) = self.record(Call::Header(block)) {
            return Err(e);
        }
        let number = match block {
            BlockId::Number(n) => Some(n),
            BlockId::Latest => Some(self.head()),
            BlockId::Safe => self.safe,
            BlockId::Finalized => self.finalized,
        };
        let header = number.and_then(|n| self.header_at(n));
        if let Some(h) = &header {
            self.highest.fetch_max(h.number(), Ordering::Relaxed);
        }
        Ok(header)
    }

    async fn logs(&self, filter: &LogFilter) -> Result<Vec<Log>, RpcError> {
        match self.record(Call::Logs(filter.clone())) {
            Some(e) => Err(e),
            None => Ok(self.range_answer(filter)),
        }
    }

    async fn logs_at(&self, filter: &LogFilter, hash: B256) -> Result<Vec<Log>, RpcError> {
        if let Some(e) = self.record(Call::LogsAt(filter.clone(), hash)) {
            return Err(e);
        }
        self.hash_answer(filter, hash).ok_or_else(|| error(ErrorKind::Node, "eth_getLogs", "unknown block"))
    }

    fn highest_seen(&self) -> u64 {
        self.highest.load(Ordering::Relaxed)
    }
}
