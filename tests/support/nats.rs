//! Real NATS servers with JetStream for the sink tests: `nats-server -js` on a port of its own
//! (`-p -1`, read back from its log) with its store in a temp dir, killed on drop (by PID), and
//! stoppable and restartable on the same port with its store. Streams are made through
//! async-nats, as an operator would.
//!
//! The binary is `nats-server` on PATH, else the pinned one that `tests/devnet/install.sh` puts
//! in `tests/devnet/pip` (see [`super::redis::find_binary`]). Every wait is bounded.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use async_nats::jetstream::{self, stream};

use super::process::KillOnDrop;
use super::redis::find_binary;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// The `nats-server` the tests run.
pub fn nats_server_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| find_binary("nats-server", "bin/nats-server")).clone()
}

/// A running `nats-server -js`, killed when dropped.
pub struct NatsServer {
    child: Option<KillOnDrop>,
    port: u16,
    dir: tempfile::TempDir,
    token: Option<String>,
    starts: u32,
}

impl NatsServer {
    pub async fn start() -> NatsServer {
        Self::start_with_token(None).await
    }

    /// With `--auth <token>` when `token` is set: clients must present it.
    pub async fn start_with_token(token: Option<&str>) -> NatsServer {
        let dir = tempfile::tempdir().expect("a temp dir for nats");
        let mut server =
            NatsServer { child: None, port: 0, dir, token: token.map(str::to_string), starts: 0 };
        if let Err(log) = server.launch(None).await {
            panic!("nats-server did not start; its log:\n{log}");
        }
        server
    }

    /// `nats://127.0.0.1:PORT`, without credentials.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Shuts it down (SIGTERM, so JetStream flushes its store; SIGKILL after a bounded wait).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.signal("TERM");
            // A server still running after the wait is killed there; dropping reaps it.
            child.wait_within(STOP_TIMEOUT).await;
        }
    }

    /// Starts it again on the same port with the same store.
    pub async fn restart(&mut self) {
        self.stop().await;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            match self.launch(Some(self.port)).await {
                Ok(()) => return,
                Err(log) if tokio::time::Instant::now() >= deadline => {
                    panic!("nats-server did not restart on port {}; its log:\n{log}", self.port)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// A client of its own (with the token when it has one).
    pub async fn client(&self) -> async_nats::Client {
        let mut options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5));
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        tokio::time::timeout(START_TIMEOUT, options.connect(self.url()))
            .await
            .expect("a connection to the test nats within the timeout")
            .expect("a connection to the test nats")
    }

    /// Creates a file-stored stream capturing `subjects`, dropping re-sent `Nats-Msg-Id`s within
    /// `duplicate_window`.
    pub async fn create_stream(&self, name: &str, subjects: &[&str], duplicate_window: Duration) {
        let js = jetstream::new(self.client().await);
        js.create_stream(stream::Config {
            name: name.to_string(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            duplicate_window,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .expect("the test stream is created");
    }

    /// How many messages the stream holds.
    pub async fn stream_messages(&self, name: &str) -> u64 {
        let js = jetstream::new(self.client().await);
        let mut stream = js.get_stream(name).await.expect("the test stream exists");
        stream.info().await.expect("the test stream's info").state.messages
    }

    /// Starts the process on `port` (`None`: one it picks) and waits for its "ready" line.
    /// `Err` with its log when it exits first.
    async fn launch(&mut self, port: Option<u16>) -> Result<(), String> {
        self.starts += 1;
        let log = self.dir.path().join(format!("nats-{}.log", self.starts));
        let log_file = std::fs::File::create(&log).expect("create the nats log");
        let mut cmd = Command::new(nats_server_binary());
        cmd.args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(port.map_or("-1".to_string(), |p| p.to_string()))
            .arg("-sd")
            .arg(self.dir.path().join("store"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(token) = &self.token {
            cmd.arg("--auth").arg(token);
        }
        let mut child = KillOnDrop::spawn(&mut cmd);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if !child.running() {
                return Err(text);
            }
            if text.contains("Server is ready")
                && let Some(port) = listening_port(&text)
            {
                self.port = port;
                self.child = Some(child);
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("nats-server was not ready within {START_TIMEOUT:?}; its log:\n{text}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The port of "Listening for client connections on 127.0.0.1:PORT".
fn listening_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains("Listening for client connections on"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}
