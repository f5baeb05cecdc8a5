//! Real local chains for the tests: anvil nodes on ports of their own with distinct chain ids,
//! contracts deployed from the committed artifacts, raw JSON-RPC, and a kill on drop.
//!
//! Each node binds port 0 and the port is read back from its "Listening on" line, so no test
//! ever probes a port that another test's node can take meanwhile; the one exception is
//! [`Anvil::restart_fresh`], which takes its own port back right after freeing it.
//!
//! The anvil binary is the one pinned in `tests/devnet/package.json` (installed by
//! `tests/devnet/install.sh`, which this module runs once if needed); `FERRY_ANVIL` points
//! elsewhere. Every wait is bounded.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use alloy::primitives::{Address, Bytes};
use alloy::providers::{Provider, ProviderBuilder, RootProvider};
use serde_json::{Value, json};

use super::hex::hex_u64;
use super::process::KillOnDrop;

/// anvil's well-known development keys (each account holds 10,000 ETH on every anvil chain).
pub const DEV_KEYS: [&str; 4] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];
/// The addresses of [`DEV_KEYS`].
pub const DEV_ADDRESSES: [&str; 4] = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
];

alloy::sol! {
    interface IBatchReceiver {
        function postBatch(uint64 height, bytes32 root) external;
        function lastBatchHeight() external view returns (uint64);
        function postedCount() external view returns (uint256);
        function getRoot(uint64 height) external view returns (bytes32);
        function record(uint64 height, bytes32 root) external;
        function recordedCount(uint64 height) external view returns (uint256);
        function totalRecorded() external view returns (uint256);
        error BatchAlreadyExists(uint64 height);
        error EmptyRoot();
        event BatchPosted(uint64 indexed height, bytes32 root, address sender);
    }
    interface IEscrowFactory {
        function createEscrow(address seller, uint256 amount) external returns (address);
        function createEscrows(uint256 n) external;
        function createAndApprove(address seller, uint256 amount) external returns (address);
        function escrowCount() external view returns (uint256);
        event EscrowDeployed(address indexed escrow, address indexed buyer, address indexed seller, uint256 amount);
    }
    interface IEscrow {
        function approve() external;
        function release() external;
        function refund() external;
        event Approved(address indexed by);
        event EscrowReleased(address indexed to, uint256 amount);
        event EscrowRefunded(address indexed to, uint256 amount);
    }
    interface IEventEmitter {
        function emitMany(uint256 n) external;
        function emitBatches(uint64 from, uint64 n) external;
        event Ping(uint256 indexed seq, address indexed from, bytes32 data);
        event BatchReady(uint64 indexed height, bytes32 root);
    }
}

const START_TIMEOUT: Duration = Duration::from_secs(20);
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(20);

/// The pinned anvil binary, installed on first use.
pub fn anvil_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("FERRY_ANVIL") {
                return PathBuf::from(path);
            }
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let out = Command::new("bash")
                .arg(root.join("tests/devnet/install.sh"))
                .arg("--print-anvil")
                .stderr(Stdio::inherit())
                .output()
                .expect("bash runs tests/devnet/install.sh");
            assert!(out.status.success(), "tests/devnet/install.sh failed; run it by hand to see why");
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

/// A running anvil node, killed when dropped.
pub struct Anvil {
    child: KillOnDrop,
    url: String,
    chain_id: u64,
    provider: RootProvider<alloy::network::Ethereum>,
}

impl Anvil {
    /// A node with `chain_id` on a port of its own, automining.
    pub async fn start(chain_id: u64) -> Anvil {
        Self::start_with(chain_id, &[]).await
    }

    /// A node with extra anvil arguments (`--block-time 1`, `--no-mining`, `--gas-limit N`, …).
    pub async fn start_with(chain_id: u64, extra: &[&str]) -> Anvil {
        Self::start_on(chain_id, 0, extra).await
    }

    /// Stops the node (SIGKILL) and starts a fresh one on the same port with the same chain id:
    /// genesis state, every nonce 0, no contracts. What a destination that was reset looks like
    /// from outside (the same URL, the same chain id). The port was this node's until now; the
    /// wait for it to be free again is bounded.
    pub async fn restart_fresh(&mut self) {
        let port: u16 = self.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port in the URL");
        assert!(self.child.signal("KILL"), "anvil {} could not be killed", self.pid());
        assert!(self.child.wait_within(Duration::from_secs(10)).await.is_some(), "anvil did not end");
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "port {port} still taken after {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let fresh = Self::start_on(self.chain_id, port, &[]).await;
        *self = fresh;
    }

    /// A node on `port` (0: one the system picks).
    async fn start_on(chain_id: u64, port: u16, extra: &[&str]) -> Anvil {
        let binary = anvil_binary();
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        // Port 0: the system picks a free port and anvil holds it from the start. Not `--silent`,
        // which would hide the line that says which port that is.
        let mut child = KillOnDrop::spawn(
            Command::new(&binary)
                .args(["--port", &port.to_string(), "--chain-id", &chain_id.to_string(), "--color", "never"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let listening = listening_address(&mut child);
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        let addr = match tokio::time::timeout_at(deadline, listening).await {
            Ok(Ok(addr)) => addr,
            Ok(Err(_)) => {
                // Its standard output ended without the line: anvil exited.
                let status = match child.wait_within(Duration::from_secs(5)).await {
                    Some(status) => status.to_string(),
                    None => "its output closed, killed".to_string(),
                };
                let stderr = stderr.join().unwrap_or_default();
                panic!("anvil stopped before it listened ({status}): {stderr}");
            }
            Err(_) => panic!("anvil did not say where it listens within {START_TIMEOUT:?}"),
        };
        let url = format!("http://{addr}");
        let provider = RootProvider::<alloy::network::Ethereum>::new_http(url.parse().expect("a valid URL"));
        loop {
            if let Ok(id) = provider.get_chain_id().await {
                assert_eq!(id, chain_id, "anvil answers with the wrong chain id");
                return Anvil { child, url, chain_id, provider };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("anvil on {addr} exited with {status}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "anvil on {addr} did not answer within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A raw JSON-RPC call; an RPC error is returned as its message.
    pub async fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        tokio::time::timeout(
            Duration::from_secs(30),
            self.provider.raw_request::<Value, Value>(method.to_string().into(), params),
        )
        .await
        .map_err(|_| format!("{method} did not answer within 30s"))?
        .map_err(|e| e.to_string())
    }

    /// A raw JSON-RPC call that must succeed.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params).await.unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    pub async fn block_number(&self) -> u64 {
        hex_u64(&self.rpc("eth_blockNumber", json!([])).await)
    }

    pub async fn mine(&self, blocks: u64) {
        self.rpc("anvil_mine", json!([format!("{blocks:#x}")])).await;
    }

    /// Deploys a committed artifact (`tests/contracts/artifacts/NAME.json`) from dev account 0.
    pub async fn deploy(&self, artifact: &str, constructor_args: &[u8]) -> Address {
        let mut code = artifact_bytecode(artifact);
        code.extend_from_slice(constructor_args);
        let receipt = self.transact(json!({ "data": Bytes::from(code) })).await.expect("deployment succeeds");
        receipt["contractAddress"].as_str().and_then(|a| a.parse().ok()).expect("a contract address")
    }

    /// Sends a call from dev account 0 and returns its receipt; a revert is an error.
    pub async fn send(&self, to: Address, data: impl Into<Bytes>) -> Value {
        self.transact(json!({ "to": to, "data": data.into() })).await.expect("the transaction succeeds")
    }

    /// Sends a transaction (fields as for `eth_sendTransaction`) from dev account 0 and waits for
    /// its receipt; `Err` carries the revert or RPC message.
    pub async fn transact(&self, mut tx: Value) -> Result<Value, String> {
        tx["from"] = json!(DEV_ADDRESSES[0]);
        let hash = self.try_rpc("eth_sendTransaction", json!([tx])).await?;
        let receipt = self.receipt(hash.as_str().expect("a hash")).await;
        if receipt["status"] == "0x1" { Ok(receipt) } else { Err(format!("reverted: {receipt}")) }
    }

    /// Waits (bounded) for a transaction's receipt.
    pub async fn receipt(&self, hash: &str) -> Value {
        let deadline = tokio::time::Instant::now() + RECEIPT_TIMEOUT;
        loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash])).await;
            if !receipt.is_null() {
                return receipt;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no receipt for {hash} within {RECEIPT_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `eth_call` against the latest block; `Err` carries the revert message with its data.
    pub async fn call(&self, to: Address, data: impl Into<Bytes>) -> Result<Bytes, String> {
        let out = self.try_rpc("eth_call", json!([{ "to": to, "data": data.into() }, "latest"])).await?;
        out.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| format!("not hex: {out}"))
    }
}

/// The creation bytecode of a committed artifact.
pub fn artifact_bytecode(name: &str) -> Vec<u8> {
    let artifact = artifact(name);
    let hex = artifact["bytecode"].as_str().unwrap_or_else(|| panic!("{name}: no bytecode"));
    alloy::primitives::hex::decode(hex).unwrap_or_else(|e| panic!("{name}: bad bytecode hex: {e}"))
}

pub fn artifact(name: &str) -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/contracts/artifacts/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The topic0 values of a receipt's logs, in order.
pub fn log_topics(receipt: &Value) -> Vec<alloy::primitives::B256> {
    receipt["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| l["topics"][0].as_str().and_then(|t| t.parse().ok()).expect("topic0"))
        .collect()
}

/// A provider for code that wants alloy's typed API.
pub fn provider(url: &str) -> impl Provider {
    ProviderBuilder::new().connect_http(url.parse().expect("a valid URL"))
}

/// Reads anvil's standard output up to its "Listening on 127.0.0.1:PORT" line, in a thread of
/// its own; the address comes back on the channel (which closes without it if anvil exits first).
/// The thread then reads on to the end, so that anvil, which logs every request there, never
/// blocks on a full pipe; it ends with the node.
fn listening_address(child: &mut KillOnDrop) -> tokio::sync::oneshot::Receiver<SocketAddr> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            if let Some(addr) = text.split("Listening on ").nth(1).and_then(|a| a.trim().parse().ok()) {
                let _ = tx.send(addr);
                break;
            }
        }
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    rx
}
