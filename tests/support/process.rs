//! Child processes that never outlive their test, and what `/proc` tells of them.

use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How often the waits below look at the child.
const POLL: Duration = Duration::from_millis(20);

/// A child process (a background `ferry watch`, an anvil node, …), killed with SIGKILL and reaped
/// when dropped, however the test ends. Derefs to the [`Child`].
pub struct KillOnDrop(Child);

impl KillOnDrop {
    /// Starts `cmd`; a command that cannot start fails the test.
    pub fn spawn(cmd: &mut Command) -> KillOnDrop {
        match cmd.spawn() {
            Ok(child) => KillOnDrop(child),
            Err(e) => panic!("cannot start {}: {e}", cmd.get_program().to_string_lossy()),
        }
    }

    /// Whether it has not ended yet.
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Sends the signal `name` (`INT`, `TERM`, …) with `kill(1)`; whether it was delivered.
    pub fn signal(&self, name: &str) -> bool {
        Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.0.id().to_string())
            .status()
            .expect("kill(1) runs")
            .success()
    }

    /// Everything left on its piped standard error, read to the end: call it once it ended.
    pub fn read_stderr(&mut self) -> String {
        let mut text = String::new();
        let stderr = self.0.stderr.as_mut().expect("standard error is piped");
        std::io::Read::read_to_string(stderr, &mut text).expect("read standard error");
        text
    }

    /// Waits up to `limit` for it to end. One still running then is killed and reaped: `None`.
    pub async fn wait_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(ended) = self.ended_by(deadline) {
                return ended;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// [`KillOnDrop::wait_within`] for a test without an async runtime: blocks the thread.
    pub fn wait_within_blocking(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(ended) = self.ended_by(deadline) {
                return ended;
            }
            std::thread::sleep(POLL);
        }
    }

    /// One look: `Some(Some(status))` when it ended, `Some(None)` when `deadline` passed (it is
    /// killed and reaped), `None` while it still runs.
    fn ended_by(&mut self, deadline: Instant) -> Option<Option<ExitStatus>> {
        if let Some(status) = self.0.try_wait().expect("try_wait") {
            return Some(Some(status));
        }
        if Instant::now() >= deadline {
            self.kill_and_reap();
            return Some(None);
        }
        None
    }

    fn kill_and_reap(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Deref for KillOnDrop {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// The peak resident memory (`VmHWM`) of a running process in KiB; `None` once it has ended.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
