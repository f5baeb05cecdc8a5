//! A full disk is the disk's problem, said as such, and never damage: `backfill` on a store
//! whose file system fills up exits 3 with the disk's own words, the file stays readable, and the
//! run resumes once space is freed; `push` on a full disk exits 3 and broadcasts nothing (the
//! intent could not be written first); `export` to a full disk fails and leaves no partial file.
//!
//! Each test mounts its own small tmpfs (root only; on a machine that does not allow it the test
//! says so and does nothing).

use std::path::{Path, PathBuf};
use std::process::Command;

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolCall;

use crate::support::command::run as ferry;
use crate::support::devnet::{Anvil, DEV_ADDRESSES, IBatchReceiver, IEventEmitter};
use crate::support::output::text;

/// A tmpfs of a given size, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!("cannot mount a tmpfs here ({}); the full-disk test needs root", text(&out));
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system up to `free` bytes with a filler file, returned for freeing later.
    fn fill_leaving(&self, free: u64) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.flush();
        let len = file.metadata().expect("filler metadata").len();
        file.set_len(len.saturating_sub(free)).expect("shrink the filler");
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).output();
    }
}

/// A chain with `blocks` blocks of `per_block` events each from one emitter, and a config in
/// `dir` that reads it into `store`.
async fn chain_with_events(dir: &Path, store: &Path, blocks: u64, per_block: u64) -> (Anvil, Address) {
    let anvil = Anvil::start(31337).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    for _ in 0..blocks {
        anvil.send(emitter, IEventEmitter::emitManyCall { n: U256::from(per_block) }.abi_encode()).await;
    }
    let config = format!(
        "store: {}\nchains:\n  local:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 0\n    max_block_range: 5\n\
         sources:\n  src:\n    kind: evm\n    chain: local\n    contracts:\n      - address: \"{}\"\n        events:\n\
         \x20         - \"event Ping(uint256 indexed seq, address indexed from, bytes32 data)\"\n",
        store.display(),
        anvil.url(),
        emitter.to_checksum(None)
    );
    std::fs::write(dir.join("ferry.yaml"), config).expect("config");
    (anvil, emitter)
}

fn event_count(dir: &Path) -> u64 {
    let out = ferry(dir, &["inspect-store", "summary", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    let tables = summary["tables"].as_array().cloned().unwrap_or_default();
    let events = tables.iter().find(|t| t["table"] == "events");
    events.and_then(|t| t["rows"].as_u64()).unwrap_or_else(|| panic!("no event count in {summary}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_stops_backfill_with_the_disks_words_and_the_run_resumes_once_freed() {
    let Some(disk) = Tmpfs::mount("16m") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = disk.path().join("ferry.redb");
    let (anvil, _) = chain_with_events(dir.path(), &store, 40, 100).await;
    let head = anvil.block_number().await;

    // The store exists and holds the first blocks; then the disk has almost no room left.
    let out = ferry(dir.path(), &["backfill", "--from", "0", "--to", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = event_count(dir.path());
    let filler = disk.fill_leaving(32 * 1024);

    let out = ferry(dir.path(), &["backfill", "--from", "0", "--to", "latest"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "a full disk is exit 3: {said}");
    assert!(said.contains("No space left on device"), "the disk's own words: {said}");
    assert!(!said.contains("damaged") && !said.contains("restore it from a backup"), "{said}");
    assert!(!said.contains("this is a bug"), "{said}");

    // Not damaged: the failed commit left the file unclosed, and a reader reads a recovered copy
    // of it (saying so) with what was committed, never calling it damaged.
    let out = ferry(dir.path(), &["inspect-store", "summary"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("not closed cleanly") && said.contains("recovered copy"), "{said}");
    assert!(!said.contains("damaged"), "{said}");
    assert_eq!(event_count(dir.path()), before, "what was committed before the disk filled");

    // Space freed, the next run recovers the file and goes on from what was committed.
    std::fs::remove_file(&filler).expect("free the space");
    let out = ferry(dir.path(), &["backfill", "--from", "0", "--to", "latest", "--json"]);
    assert_eq!(out.status.code(), Some(0), "the run resumes once space is freed: {}", text(&out));
    let after = event_count(dir.path());
    assert!(after > before, "{before} → {after}");
    assert_eq!(after, 40 * 100, "every event once, up to block {head}");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_to_a_full_disk_fails_and_leaves_no_partial_file() {
    let Some(disk) = Tmpfs::mount("4m") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("ferry.redb");
    let (_anvil, _) = chain_with_events(dir.path(), &store, 40, 100).await;
    let out = ferry(dir.path(), &["backfill", "--from", "0", "--to", "latest"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let filler = disk.fill_leaving(64 * 1024);
    let target = disk.path().join("events.jsonl");
    let target_arg = target.display().to_string();
    let out = ferry(dir.path(), &["export", "events", "--out", &target_arg]);
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0), "an export that could not be written failed: {said}");
    assert!(said.contains("No space left on device"), "{said}");
    let left: Vec<String> = std::fs::read_dir(disk.path())
        .expect("read the disk")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != "filler")
        .collect();
    assert!(left.is_empty(), "a partial export was left behind: {left:?}");

    // With room, the same command writes the whole file.
    std::fs::remove_file(&filler).expect("free the space");
    let out = ferry(dir.path(), &["export", "events", "--out", &target_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = std::fs::read_to_string(&target).expect("export").lines().count();
    assert_eq!(lines, 40 * 100);
}

/// The signer's transaction count on a chain.
async fn nonce(anvil: &Anvil) -> u64 {
    let count = anvil.rpc("eth_getTransactionCount", serde_json::json!([DEV_ADDRESSES[1], "latest"])).await;
    let hex = count.as_str().expect("a quantity");
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).expect("hex")
}

#[tokio::test(flavor = "multi_thread")]
async fn push_on_a_full_disk_exits_3_and_broadcasts_nothing() {
    let Some(disk) = Tmpfs::mount("16m") else { return };
    let source = Anvil::start(31337).await;
    let emitter = source.deploy("EventEmitter", &[]).await;
    let dest = Anvil::start(41000).await;
    let receiver = dest.deploy("BatchReceiver", &[]).await;
    source.send(emitter, IEventEmitter::emitBatchesCall { from: 0, n: 30 }.abi_encode()).await;
    source.mine(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "store: {}\nchains:\n  src:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 1\n\
         \x20 dst:\n    chain_id: 41000\n    rpc: [\"{}\"]\n    confirmations: 1\n    poll_interval: 200ms\n\
         \x20   signer: {{ key_env: FERRY_TEST_SIGNER }}\n\
         sources:\n  batches:\n    kind: evm\n    chain: src\n    contracts:\n      - address: \"{}\"\n\
         \x20       events: [\"event BatchReady(uint64 indexed height, bytes32 root)\"]\n\
         targets:\n  receiver:\n    kind: evm-call\n    function: function record(uint64 height, bytes32 root)\n\
         \x20   args:\n      height: {{ field: height }}\n      root: {{ field: root }}\n\
         \x20   chains:\n      dst: \"{}\"\n\
         routes:\n  - source: batches\n    targets: [receiver]\n",
        disk.path().join("ferry.redb").display(),
        source.url(),
        dest.url(),
        emitter.to_checksum(None),
        receiver.to_checksum(None)
    );
    std::fs::write(dir.path().join("ferry.yaml"), config).expect("config");
    // The items and their deliveries are in the store; then the disk fills up.
    let out = ferry(dir.path(), &["backfill", "--from", "0", "--to", "latest"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let filler = disk.fill_leaving(0);

    let out = ferry(dir.path(), &["push", "--no-sync", "--timeout", "60s"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "a full disk under delivery is exit 3: {said}");
    assert!(said.contains("No space left on device"), "{said}");
    assert!(!said.contains("damaged") && !said.contains("this is a bug"), "{said}");
    assert_eq!(nonce(&dest).await, 0, "a transaction went out without its intent written first");

    std::fs::remove_file(&filler).expect("free the space");
    let out = ferry(dir.path(), &["push", "--no-sync", "--timeout", "90s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let total = dest.call(receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await.expect("view");
    assert_eq!(U256::from_be_slice(&total), U256::from(30), "every item once");
    assert_eq!(nonce(&dest).await, 30);
}
