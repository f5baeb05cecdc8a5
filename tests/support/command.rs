//! The real `ferry` binary, started the same way by every test and bench.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::devnet::DEV_KEYS;

/// The real `ferry` binary run in `dir`, with none of the caller's ferry settings
/// (`FERRY_CONFIG`, `FERRY_STORE`, `FERRY_LOG`), no colour, no standard input, and the delivery
/// tests' signer key (anvil's dev key #1) in `FERRY_TEST_SIGNER`.
pub fn ferry_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.current_dir(dir)
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_STORE")
        .env_remove("FERRY_LOG")
        .env("NO_COLOR", "1")
        .env("FERRY_TEST_SIGNER", DEV_KEYS[1])
        .stdin(Stdio::null());
    cmd
}

/// `ferry ARGS…` in `dir`, run to its end, its output captured.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    ferry_command(dir).args(args).output().expect("ferry runs")
}

/// `ferry ARGS…` in `dir`, its output captured; killed, failing the test, when it takes longer
/// than `limit`.
pub async fn run_within(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let mut cmd = ferry_command(dir);
    cmd.args(args);
    match output_within(cmd, limit).await {
        Some(out) => out.expect("ferry's output"),
        None => panic!("`ferry {}` did not finish within {limit:?}", args.join(" ")),
    }
}

/// Runs `cmd` to its end with standard output and error captured. `None` when it outlives
/// `limit`: it is killed then.
pub async fn output_within(cmd: Command, limit: Duration) -> Option<std::io::Result<Output>> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    // On a timeout the future, and with it the child, is dropped: killed (`kill_on_drop`).
    tokio::time::timeout(limit, child.wait_with_output()).await.ok()
}
