//! The control socket of a running `watch`: a Unix socket next to the store (`<store>.sock`),
//! readable and writable by its owner only, serving one request per connection (`protocol`).
//! A socket left by a `watch` that was killed is found dead (nothing answers a connect) and
//! replaced; the socket goes when `watch` stops cleanly.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::protocol::{Action, ErrorKind, MAX_MESSAGE, Outcome, Reply, VERSION, Version};
use super::{Owner, Registry, Request, hold};
use crate::engine::deliver::control::{self, Changed, ControlError};
use crate::store::Store;
use crate::store::keys::{DeliveryKey, SINK_CHAIN};

/// How long a client has to send its request, and to take the reply.
const IO_LIMIT: Duration = Duration::from_secs(5);
/// How long the workers an action needs have to come round to it (between two of their rounds).
const COME_ROUND: Duration = Duration::from_secs(20);
/// How long an action may take in all; the client waits a little longer.
pub const ACTION_LIMIT: Duration = Duration::from_secs(45);
/// Connections served at once; more are closed unanswered (an operator sends one at a time).
const CONNECTIONS: usize = 4;

/// The socket of a store: its path with `.sock` appended.
pub fn socket_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".sock");
    PathBuf::from(name)
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("control socket {}: another process answers on it", path.display())]
    InUse { path: PathBuf },
    #[error("control socket {}: {what} is in the way and is not a socket", path.display())]
    NotASocket { path: PathBuf, what: String },
    #[error("control socket {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("control socket {}: permissions are {mode:o} after setting them to 600", path.display())]
    Permissions { path: PathBuf, mode: u32 },
}

/// A listening control socket; it stops and removes its file when dropped.
pub struct Server {
    path: PathBuf,
    inode: u64,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
        // Only the file this server created: never one a later `watch` made in its place.
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

struct Shared {
    store: Arc<Store>,
    registry: Registry,
    /// The user who may talk to it: the one running `watch`.
    uid: u32,
}

/// Starts the control socket of `store`, or says loudly why there is none: `watch` still runs,
/// and the operator's commands then find the store held, as without a socket.
pub fn start_or_warn(store: &Arc<Store>, registry: &Registry) -> Option<Server> {
    match start(store.clone(), registry.clone()) {
        Ok(server) => {
            tracing::info!(socket = %server.path.display(), "control socket listening (inspect-store retry|skip|cancel|resync)");
            Some(server)
        }
        Err(e) => {
            tracing::warn!("{e}; `inspect-store retry|skip|cancel|resync` cannot reach this watch");
            None
        }
    }
}

/// Binds `<store>.sock` (replacing a dead one), owner-only, and serves it until dropped.
pub fn start(store: Arc<Store>, registry: Registry) -> Result<Server, ServerError> {
    let path = socket_path(store.path());
    let io = |source| ServerError::Io { path: path.clone(), source };
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ServerError::NotASocket { path, what: "a file".into() });
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(ServerError::InUse { path });
            }
            // Nobody answers: left by a `watch` that did not stop cleanly.
            tracing::info!(socket = %path.display(), "replacing a stale control socket");
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                _ => {}
            }
        }
    }
    let listener = UnixListener::bind(&path).map_err(io)?;
    // The socket steers deliveries: its owner only, whatever the umask let through.
    let server_or = || -> Result<u64, ServerError> {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        let meta = std::fs::metadata(&path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode != 0o600 {
            return Err(ServerError::Permissions { path: path.clone(), mode });
        }
        Ok(meta.ino())
    };
    let inode = match server_or() {
        Ok(inode) => inode,
        Err(e) => {
            drop(listener);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    let uid = std::fs::metadata(&path).map_err(io)?.uid();
    let stop = CancellationToken::new();
    let shared = Arc::new(Shared { store, registry, uid });
    tokio::spawn(accept(listener, shared, stop.clone()));
    Ok(Server { path, inode, stop })
}

async fn accept(listener: UnixListener, shared: Arc<Shared>, stop: CancellationToken) {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    let mut failures = 0u32;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                failures = 0;
                stream
            }
            Err(e) => {
                // Out of file descriptors and the like: say so, and try again a little later.
                failures += 1;
                tracing::warn!(error = %e, "control socket: cannot accept a connection");
                let wait =
                    crate::engine::rpc::backoff(Duration::from_millis(100), Duration::from_secs(5), failures);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else { continue };
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = connection(stream, &shared) => {}
            }
        });
    }
}

/// One connection: one request read, one action carried out, one reply written.
async fn connection(stream: UnixStream, shared: &Shared) {
    // The file's permissions keep others out; this keeps out whoever got in before they were set.
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == shared.uid => {}
        _ => return,
    }
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let read =
        tokio::time::timeout(IO_LIMIT, BufReader::new(read.take(MAX_MESSAGE)).read_until(b'\n', &mut line))
            .await;
    let outcome = match read {
        // A connection closed without a word (a probe) gets none back.
        Ok(Ok(0)) => return,
        Ok(Ok(_)) => match parse(&line).map_err(|message| error(ErrorKind::BadRequest, message)) {
            Ok(action) => {
                tracing::info!(action = action_name(&action), "operator action over the control socket");
                match tokio::time::timeout(ACTION_LIMIT, act(shared, action)).await {
                    Ok(outcome) => outcome,
                    Err(_) => error(
                        ErrorKind::Failed,
                        format!(
                            "no outcome within {}s; the action may still complete: look with `ferry inspect-store`",
                            ACTION_LIMIT.as_secs()
                        ),
                    ),
                }
            }
            Err(outcome) => outcome,
        },
        Ok(Err(e)) => error(ErrorKind::BadRequest, format!("cannot read the request: {e}")),
        Err(_) => error(ErrorKind::BadRequest, format!("no request within {}s", IO_LIMIT.as_secs())),
    };
    let mut reply = match serde_json::to_vec(&Reply { v: VERSION, outcome }) {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(error = %e, "control socket: cannot encode a reply");
            return;
        }
    };
    reply.push(b'\n');
    let _ = tokio::time::timeout(IO_LIMIT, write.write_all(&reply)).await;
}

/// The action a request line asks for, or why it is not one.
fn parse(line: &[u8]) -> Result<Action, String> {
    let version: Version =
        serde_json::from_slice(line).map_err(|e| format!("the request is not a JSON object: {e}"))?;
    match version.v {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(format!(
                "control protocol v{v}; this ferry speaks v{VERSION} (a ferry of another version?)"
            ));
        }
        None => return Err("the request has no version (`v`)".into()),
    }
    serde_json::from_slice::<super::protocol::Request>(line)
        .map(|r| r.action)
        .map_err(|e| format!("not a request this ferry knows: {e}"))
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Retry { .. } => "retry",
        Action::Skip { .. } => "skip",
        Action::Cancel { .. } => "cancel",
        Action::Resync { .. } => "resync",
    }
}

fn error(kind: ErrorKind, message: String) -> Outcome {
    Outcome::Error { kind, message }
}

async fn act(shared: &Shared, action: Action) -> Outcome {
    match action {
        Action::Retry { keys } => change(shared, &keys, |store| control::retry(store, &keys)).await,
        Action::Skip { keys, reason } => {
            change(shared, &keys, |store| control::skip(store, &keys, reason.as_deref())).await
        }
        Action::Cancel { chain, nonce, max_fee } => {
            match on_chain(shared, &chain, |reply| Request::Cancel { nonce, max_fee, reply }).await {
                Ok(cancelled) => Outcome::Cancelled { cancelled },
                Err(outcome) => outcome,
            }
        }
        Action::Resync { chain } => match on_chain(shared, &chain, |reply| Request::Resync { reply }).await {
            Ok(resynced) => Outcome::Resynced { resynced },
            Err(outcome) => outcome,
        },
    }
}

/// Whether a worker writes a delivery: a chain's worker those to its chain, a sink's its own.
fn owns(owner: &Owner, key: &DeliveryKey) -> bool {
    match owner {
        Owner::Chain { chain_id, .. } => key.chain != SINK_CHAIN && key.chain == *chain_id,
        Owner::Sink { target, .. } => key.chain == SINK_CHAIN && key.target == *target,
    }
}

/// A change to deliveries, written in one transaction while every worker that writes them holds
/// still; letting them go wakes them to what changed.
async fn change(
    shared: &Shared,
    keys: &[DeliveryKey],
    apply: impl FnOnce(&Store) -> Result<Vec<Changed>, ControlError>,
) -> Outcome {
    let workers = shared.registry.owners(|owner| keys.iter().any(|key| owns(owner, key)));
    let releases = match hold(workers, COME_ROUND).await {
        Ok(releases) => releases,
        Err(owner) => {
            let name = match owner {
                Owner::Chain { name, .. } | Owner::Sink { name, .. } => name,
            };
            return error(
                ErrorKind::Busy,
                format!(
                    "the worker of `{name}` did not come round within {}s; nothing changed, try again",
                    COME_ROUND.as_secs()
                ),
            );
        }
    };
    let result = tokio::task::block_in_place(|| apply(&shared.store));
    drop(releases);
    match result {
        Ok(changed) => Outcome::Changed { changed },
        Err(e) => control_error(e),
    }
}

/// An action the chain's worker carries out between two of its rounds.
async fn on_chain<T>(
    shared: &Shared,
    chain: &str,
    request: impl FnOnce(oneshot::Sender<Result<T, ControlError>>) -> Request,
) -> Result<T, Outcome> {
    let no_worker = || {
        error(
            ErrorKind::NoWorker,
            format!(
                "no delivery worker of chain `{chain}` runs in this watch (no target delivers to it in \
                 its config, or it is still starting: see its log)"
            ),
        )
    };
    let Some(tx) = shared.registry.chain(chain) else { return Err(no_worker()) };
    let (reply_tx, reply_rx) = oneshot::channel();
    match tokio::time::timeout(COME_ROUND, tx.send(request(reply_tx))).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Err(no_worker()),
        Err(_) => {
            return Err(error(
                ErrorKind::Busy,
                format!("the worker of `{chain}` has other requests waiting; nothing changed, try again"),
            ));
        }
    }
    match reply_rx.await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(control_error(e)),
        Err(_) => Err(error(
            ErrorKind::Failed,
            format!("the worker of `{chain}` stopped before it answered (is watch stopping?)"),
        )),
    }
}

fn control_error(e: ControlError) -> Outcome {
    match e {
        ControlError::Refused(why) => error(ErrorKind::Refused, why),
        ControlError::Deliver(e) => error(ErrorKind::Failed, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::{EventKey, ItemKey};

    #[test]
    fn a_request_of_another_version_or_shape_is_refused_by_name() {
        assert!(
            matches!(parse(br#"{"v":1,"action":{"resync":{"chain":"base"}}}"#), Ok(Action::Resync { chain }) if chain == "base")
        );
        let refused = |line: &[u8]| parse(line).expect_err("refused");
        assert!(refused(br#"{"v":2,"action":{"resync":{"chain":"base"}}}"#).contains("v2"));
        assert!(refused(br#"{"action":{"resync":{"chain":"base"}}}"#).contains("no version"));
        assert!(refused(br#"{"v":1,"action":{"reboot":{}}}"#).contains("not a request"));
        assert!(refused(b"resync base").contains("not a JSON object"));
    }

    #[test]
    fn a_chains_worker_owns_its_chains_deliveries_and_a_sinks_its_own() {
        let item = ItemKey::Event(EventKey { chain: 1, block: 2, log_index: 3 });
        let on_chain = DeliveryKey { target: 4, chain: 10, item };
        let to_sink = DeliveryKey { target: 5, chain: SINK_CHAIN, item };
        let chain = Owner::Chain { name: "ten".into(), chain_id: 10 };
        let sink = Owner::Sink { name: "hook".into(), target: 5 };
        let other_sink = Owner::Sink { name: "other".into(), target: 4 };
        assert!(owns(&chain, &on_chain) && !owns(&chain, &to_sink));
        assert!(owns(&sink, &to_sink) && !owns(&sink, &on_chain));
        assert!(!owns(&other_sink, &on_chain), "a sink id that matches a chain target's owns nothing there");
    }

    #[test]
    fn the_socket_is_the_store_path_with_sock_appended() {
        assert_eq!(
            socket_path(Path::new("/var/lib/ferry/ferry.redb")),
            PathBuf::from("/var/lib/ferry/ferry.redb.sock")
        );
        assert_eq!(socket_path(Path::new("state")), PathBuf::from("state.sock"));
    }
}
