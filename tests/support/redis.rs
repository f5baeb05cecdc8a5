//! Real Redis servers for the sink tests: `redis-server` on a free port of 127.0.0.1 with its own
//! temp dir, killed on drop (by PID), and stoppable and restartable on the same port with its
//! data (append-only file fsynced on every write, for "Redis restarted mid-run").
//!
//! The binary is `redis-server` on PATH, else the pinned one that `tests/devnet/install.sh` puts
//! in `tests/devnet/pip`. [`find_binary`] is the lookup for the NATS server too. Every wait is
//! bounded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::process::KillOnDrop;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

/// `name` on PATH, else `installed` under `tests/devnet/pip` (where `tests/devnet/install.sh`
/// puts the pinned brokers when PATH has none); a clear failure when neither exists.
pub fn find_binary(name: &str, installed: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| is_executable(p)));
    if let Some(Some(path)) = on_path {
        return path;
    }
    let pinned = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/devnet/pip").join(installed);
    if is_executable(&pinned) {
        return pinned;
    }
    panic!(
        "{name} is neither on PATH nor in tests/devnet/pip: run `bash tests/devnet/install.sh`, which installs \
         the pinned one (scripts/test.sh does)"
    );
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `redis-server` the tests run.
pub fn redis_server_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| find_binary("redis-server", "redis_server/bin/redis-server")).clone()
}

/// How a server is started.
#[derive(Debug, Clone, Default)]
pub struct RedisConfig {
    /// `appendonly yes` with `appendfsync always`: what a reply acknowledged survives a kill.
    pub persistent: bool,
    /// `requirepass`.
    pub password: Option<String>,
}

/// A running `redis-server`, killed when dropped.
pub struct RedisServer {
    child: Option<KillOnDrop>,
    port: u16,
    dir: tempfile::TempDir,
    config: RedisConfig,
    starts: u32,
}

impl RedisServer {
    /// No persistence (`--save "" --appendonly no`).
    pub async fn start() -> RedisServer {
        Self::start_with(RedisConfig::default()).await
    }

    /// Keeps its data across [`RedisServer::stop`] and [`RedisServer::restart`].
    pub async fn start_persistent() -> RedisServer {
        Self::start_with(RedisConfig { persistent: true, ..RedisConfig::default() }).await
    }

    pub async fn start_with(config: RedisConfig) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temp dir for redis");
        let mut server = RedisServer { child: None, port: 0, dir, config, starts: 0 };
        // redis-server cannot bind port 0 and say which port it got: a port is picked free and
        // may be taken by another test before redis binds it, so a few tries.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.launch().await {
                Ok(()) => return server,
                Err(log) => last = log,
            }
        }
        panic!("redis-server did not start on a free port; its last log:\n{last}");
    }

    /// `redis://127.0.0.1:PORT`, without credentials.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (SIGKILL) and waits until it is gone; the data dir stays.
    pub fn stop(&mut self) {
        // Dropping kills by PID and reaps.
        self.child.take();
    }

    /// Starts it again on the same port with the same dir (so the same data when persistent).
    pub async fn restart(&mut self) {
        self.stop();
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            match self.launch().await {
                Ok(()) => return,
                Err(log) if tokio::time::Instant::now() >= deadline => {
                    panic!("redis-server did not restart on port {}; its log:\n{log}", self.port)
                }
                // The port may still be held by a connection closing: try again.
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// A connection of its own (authenticated when it has a password), to look at the data.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let url = match &self.config.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => self.url(),
        };
        let client = redis::Client::open(url).expect("a redis client for the test server");
        tokio::time::timeout(START_TIMEOUT, client.get_multiplexed_async_connection())
            .await
            .expect("a connection to the test redis within the timeout")
            .expect("a connection to the test redis")
    }

    /// Starts the process on `self.port` and waits until it answers `PING`. `Err` with its log
    /// when it exits first (the port was taken).
    async fn launch(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log = self.dir.path().join(format!("redis-{}.log", self.starts));
        let mut cmd = Command::new(redis_server_binary());
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--daemonize", "no", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.config.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(password) = &self.config.password {
            cmd.arg("--requirepass").arg(password);
        }
        let mut child = KillOnDrop::spawn(&mut cmd);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if !child.running() {
                return Err(std::fs::read_to_string(&log).unwrap_or_default());
            }
            if answers_ping(self.port).await {
                self.child = Some(child);
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}; its log:\n{}",
                    self.port,
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Whether a server on `port` answers `PING` (with `PONG`, or `NOAUTH` when it wants a
/// password) rather than `LOADING` or nothing.
async fn answers_ping(port: u16) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut reply = [0u8; 64];
        let n = stream.read(&mut reply).await.ok()?;
        let reply = String::from_utf8_lossy(&reply[..n]).to_string();
        Some(reply.starts_with("+PONG") || reply.starts_with("-NOAUTH"))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt).await.ok().flatten().unwrap_or(false)
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port of 127.0.0.1");
    listener.local_addr().expect("the bound address").port()
}
