//! Sending one action to a running `watch` over its control socket, and reading its outcome.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::protocol::{Action, MAX_MESSAGE, Outcome, Reply, Request, VERSION};
use super::server::ACTION_LIMIT;

/// How long connecting and sending may take.
const SEND_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens: no `watch` holds the store with a control socket (or it just stopped).
    #[error("nothing answers on {}: {source}", path.display())]
    NotListening { path: PathBuf, source: std::io::Error },
    #[error("control socket {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("control socket {}: no answer within {}s; the action may still complete: look with `ferry inspect-store`", path.display(), limit.as_secs())]
    Timeout { path: PathBuf, limit: Duration },
    #[error("control socket {}: an answer this ferry cannot read ({detail}); is the running watch another version?", path.display())]
    BadReply { path: PathBuf, detail: String },
}

/// Sends `action` to the `watch` listening on `socket`, and returns what came of it.
pub async fn send(socket: &Path, action: Action) -> Result<Outcome, ClientError> {
    let path = socket.to_path_buf();
    let stream = match tokio::time::timeout(SEND_LIMIT, UnixStream::connect(socket)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => return Err(ClientError::NotListening { path, source }),
        Err(_) => return Err(ClientError::Timeout { path, limit: SEND_LIMIT }),
    };
    let io = |source| ClientError::Io { path: socket.to_path_buf(), source };
    let mut request =
        serde_json::to_vec(&Request { v: VERSION, action }).map_err(|e| io(std::io::Error::other(e)))?;
    request.push(b'\n');
    let (read, mut write) = stream.into_split();
    match tokio::time::timeout(SEND_LIMIT, write.write_all(&request)).await {
        Ok(result) => result.map_err(io)?,
        Err(_) => return Err(ClientError::Timeout { path, limit: SEND_LIMIT }),
    }
    // The server's own limit, plus the time to hear about it.
    let limit = ACTION_LIMIT + SEND_LIMIT * 2;
    let mut line = Vec::new();
    match tokio::time::timeout(limit, BufReader::new(read.take(MAX_MESSAGE)).read_until(b'\n', &mut line))
        .await
    {
        Ok(result) => result.map_err(io)?,
        Err(_) => return Err(ClientError::Timeout { path, limit }),
    };
    let bad = |detail: String| ClientError::BadReply { path: socket.to_path_buf(), detail };
    if line.is_empty() {
        return Err(bad("the connection closed without a reply".into()));
    }
    let reply: Reply = serde_json::from_slice(&line).map_err(|e| bad(e.to_string()))?;
    if reply.v != VERSION {
        return Err(bad(format!("protocol v{}, this ferry speaks v{VERSION}", reply.v)));
    }
    Ok(reply.outcome)
}
