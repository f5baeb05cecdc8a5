//! A SEDA delivery network for tests and benches: the test batching API (`seda_api.rs`) and
//! anvil destinations, each with the test Prover (`tests/contracts/SedaProver.sol`) deployed
//! with the API's batch 0, and a config that routes the batches to every Prover.

use std::path::Path;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::{SolCall, SolEvent, SolValue};
use ferry::seda::SignedBatch;
use ferry::seda::prover::{self as abi};
use serde_json::json;

use super::devnet::Anvil;
use super::seda_api::SedaApi;

alloy::sol! {
    /// The test Prover's owner controls.
    interface IProverOwner {
        function pause() external;
        function unpause() external;
    }
}

/// Batches older than this many below a Prover's last are refused (`getMaxBatchAge`).
pub const MAX_BATCH_AGE: u64 = 10_000;

/// One destination: its node, its Prover, and the Core that names it.
pub struct Destination {
    pub anvil: Anvil,
    pub prover: Address,
    pub core: Address,
}

pub struct SedaNet {
    pub api: SedaApi,
    pub dests: Vec<Destination>,
}

/// The `postBatch` argument of a batch header.
pub fn posted(batch: &SignedBatch) -> abi::Batch {
    let h = &batch.header;
    abi::Batch {
        batchHeight: h.number,
        blockHeight: h.block_height,
        validatorsRoot: h.validators_root,
        resultsRoot: h.results_root,
        provingMetadata: h.proving_metadata_hash(),
    }
}

/// How a test wants its config.
#[derive(Debug, Clone, Default)]
pub struct ConfigOpts {
    /// `every` (default) or `latest`.
    pub mode: Option<&'static str>,
    /// Destinations addressed through their Core instead of their Prover.
    pub via_core: Vec<usize>,
    pub start_batch: Option<u64>,
    /// Extra keys for every chain (`gas: {...}`, …), one line each, indented by the caller.
    pub chain_extra: String,
}

impl SedaNet {
    /// `validators` validators, `n` destinations (chain ids 51000 + i), each Prover deployed with
    /// batch 0 and a Core naming it.
    pub async fn start(validators: usize, n: usize) -> SedaNet {
        Self::start_with(validators, n, &[]).await
    }

    /// The same, with extra anvil arguments for every destination.
    pub async fn start_with(validators: usize, n: usize, anvil_args: &[&str]) -> SedaNet {
        let api = SedaApi::start(validators).await;
        let genesis = api.genesis();
        let mut dests = Vec::new();
        for i in 0..n {
            let anvil = Anvil::start_with(51_000 + i as u64, anvil_args).await;
            let prover =
                anvil.deploy("SedaProver", &(posted(&genesis), MAX_BATCH_AGE).abi_encode_params()).await;
            let core = anvil.deploy("SedaCore", &prover.abi_encode()).await;
            dests.push(Destination { anvil, prover, core });
        }
        SedaNet { api, dests }
    }

    /// Writes `ferry.yaml` in `dir`: the `seda` source on the API, the `provers` target on every
    /// destination (signer: `FERRY_TEST_SIGNER`).
    pub fn write_config(&self, dir: &Path, opts: &ConfigOpts) {
        let mut yaml = String::from("chains:\n");
        let mut targets = String::new();
        for (i, d) in self.dests.iter().enumerate() {
            yaml.push_str(&format!(
                "  d{i}:\n    chain_id: {}\n    rpc: [\"{}\"]\n    confirmations: 1\n    poll_interval: 200ms\n    request_timeout: 3s\n    signer: {{ key_env: FERRY_TEST_SIGNER }}\n{}",
                d.anvil.chain_id(),
                d.anvil.url(),
                opts.chain_extra
            ));
            let at = if opts.via_core.contains(&i) {
                format!("core: \"{}\"", d.core.to_checksum(None))
            } else {
                format!("prover: \"{}\"", d.prover.to_checksum(None))
            };
            targets.push_str(&format!("      d{i}: {{ {at} }}\n"));
        }
        yaml.push_str(&format!(
            "sources:\n  seda:\n    kind: seda\n    url: \"{}\"\n    poll_interval: 200ms\n    request_timeout: 3s\n",
            self.api.url()
        ));
        if let Some(start) = opts.start_batch {
            yaml.push_str(&format!("    start_batch: {start}\n"));
        }
        yaml.push_str("targets:\n  provers:\n    kind: seda-prover\n");
        if let Some(mode) = opts.mode {
            yaml.push_str(&format!("    mode: {mode}\n"));
        }
        yaml.push_str(&format!("    chains:\n{targets}"));
        yaml.push_str("routes:\n  - source: seda\n    targets: [provers]\n");
        std::fs::write(dir.join("ferry.yaml"), yaml).expect("config");
    }

    async fn view<C: SolCall>(&self, i: usize, call: C) -> C::Return {
        let d = &self.dests[i];
        let out = d.anvil.call(d.prover, call.abi_encode()).await.expect("a Prover view");
        C::abi_decode_returns(&out).expect("a Prover answer")
    }

    /// `getLastBatchHeight()` of destination `i`.
    pub async fn last_height(&self, i: usize) -> u64 {
        self.view(i, abi::getLastBatchHeightCall {}).await
    }

    /// `getLastValidatorsRoot()` of destination `i`.
    pub async fn last_root(&self, i: usize) -> B256 {
        self.view(i, abi::getLastValidatorsRootCall {}).await
    }

    /// Heights of every `BatchPosted` event of destination `i`'s Prover, in chain order.
    pub async fn posted_heights(&self, i: usize) -> Vec<u64> {
        let d = &self.dests[i];
        let logs = d
            .anvil
            .rpc(
                "eth_getLogs",
                json!([{ "address": d.prover, "fromBlock": "0x0", "toBlock": "latest",
                         "topics": [abi::BatchPosted::SIGNATURE_HASH] }]),
            )
            .await;
        logs.as_array()
            .expect("logs")
            .iter()
            .map(|l| {
                let topic: U256 = l["topics"][1].as_str().and_then(|t| t.parse().ok()).expect("height topic");
                topic.to::<u64>()
            })
            .collect()
    }

    pub async fn pause(&self, i: usize) {
        let d = &self.dests[i];
        d.anvil.send(d.prover, IProverOwner::pauseCall {}.abi_encode()).await;
    }

    pub async fn unpause(&self, i: usize) {
        let d = &self.dests[i];
        d.anvil.send(d.prover, IProverOwner::unpauseCall {}.abi_encode()).await;
    }

    /// Waits until every destination's last height is `height`, or `limit` passes.
    pub async fn wait_all_at(&self, height: u64, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let mut all = true;
            for i in 0..self.dests.len() {
                all &= self.last_height(i).await >= height;
            }
            if all {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
