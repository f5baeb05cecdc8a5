//! The `jsonl` sink: each message one line appended to a file (or written to stdout), the batch in
//! one write and made durable with one `fsync` before it counts as delivered. The ack is the line's
//! number in the file (`line 42`), or `stdout`.
//!
//! - **A crash mid-write** leaves a partial last line. It was never acknowledged (its delivery is
//!   still `sending`), so opening the file cuts it back to the last `\n`; recovery then finds the
//!   message missing and it is written whole again.
//! - **A failed write** (`ENOSPC`, `EIO`) is a retry for the whole batch; the file is cut back to
//!   where the batch began, so a half-written batch is never followed by the next one.
//! - **`SIGHUP`** (logrotate's `postrotate`): the path is opened again before the next write, so
//!   after a rename the next lines go to a fresh file. Listening for it means `SIGHUP` no longer
//!   ends the process, as for most daemons.
//! - **Recovery** looks for the keys of the deliveries left `sending` in the file's tail (see
//!   [`Jsonl::recover`]). Stdout cannot be read back: those messages are written again (at least
//!   once, with the idempotency key to dedupe on).
//!
//! The line count is taken once when the file is opened (one pass counting `\n`), then kept.
//! A path that is not a regular file (a FIFO, `/dev/stdout`) is written to but neither repaired,
//! counted from its start, nor searched.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use futures_util::FutureExt;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{Message, Outcome, SinkError};
use crate::config::JsonlPlan;

/// Bytes read at a time when searching a file backwards.
const TAIL_CHUNK: usize = 64 * 1024;
/// Bytes read at a time when counting lines.
const COUNT_CHUNK: usize = 256 * 1024;
/// Recovery reads back at least this many lines (see [`Jsonl::recover`]).
const MIN_RECOVER_LINES: usize = 10_000;

pub struct Jsonl {
    out: Out,
}

enum Out {
    Stdout,
    File(FileOut),
}

struct FileOut {
    path: PathBuf,
    /// `None` after a failed write that could not be undone, or a failed reopen: opened (and
    /// repaired) again before the next write.
    open: Option<OpenFile>,
    /// Notified on each `SIGHUP`; `None` when the listener could not be installed.
    hangup: Option<Signal>,
}

/// The file as this sink knows it: everything up to `len` is whole lines, `lines` of them.
struct OpenFile {
    file: File,
    /// A regular file: repaired, counted and searched. Anything else is only written to.
    regular: bool,
    len: u64,
    lines: u64,
}

impl Jsonl {
    /// Opens the file for append (creating it, not its directory) and cuts a partial last line;
    /// `path: None` writes to stdout.
    pub fn connect(plan: &JsonlPlan) -> Result<Self, SinkError> {
        let Some(path) = &plan.path else { return Ok(Jsonl { out: Out::Stdout }) };
        let open = open_file(path).map_err(|e| open_error(path, e))?;
        Ok(Jsonl {
            out: Out::File(FileOut { path: path.clone(), open: Some(open), hangup: listen_hangup() }),
        })
    }

    /// Appends the batch as lines in one write and one `fsync`: all delivered, or all to retry.
    pub async fn send(&mut self, batch: &[Message]) -> Vec<Outcome> {
        if batch.is_empty() {
            return Vec::new();
        }
        let mut buf = Vec::with_capacity(batch.iter().map(|m| m.body.len() + 1).sum());
        for message in batch {
            buf.extend_from_slice(message.body.as_bytes());
            buf.push(b'\n');
        }
        match &mut self.out {
            Out::Stdout => match blocking(move || write_stdout(&buf)).await.and_then(|written| written) {
                Ok(()) => batch.iter().map(|_| Outcome::Delivered { ack: "stdout".into() }).collect(),
                Err(e) => retry_all(batch, format!("writing to stdout: {e}")),
            },
            Out::File(out) => out.send(batch, buf).await,
        }
    }

    /// The line of each message already in the file (its delivery was left `sending` by a crash),
    /// `None` for one that is not.
    ///
    /// The worker writes `sending` for a round, writes the round, then records the outcomes, one
    /// round at a time; so after a crash the round's lines, if any, are the file's last
    /// `batch.len()` lines. The search reads back from the end 64 KiB at a time and stops when
    /// every key is found, at the start of the file, or after max(10,000, 4 × batch) lines: a
    /// margin for lines another writer appended. A line matches by its top-level `"key"`, the
    /// last occurrence winning. `since` is not needed: lines carry no time to bound by.
    /// Stdout cannot be read back: `None` for all (they are written again).
    pub async fn recover(
        &mut self,
        batch: &[Message],
        _since: u64,
    ) -> Result<Vec<Option<String>>, SinkError> {
        let Out::File(out) = &mut self.out else { return Ok(vec![None; batch.len()]) };
        let shown = out.path.display().to_string();
        let open = out.ensure_open().map_err(|e| {
            SinkError::Unavailable(format!("cannot open {shown} to look for earlier lines: {e}"))
        })?;
        if !open.regular || batch.is_empty() {
            return Ok(vec![None; batch.len()]);
        }
        let file = open.file.try_clone().map_err(|e| SinkError::Unavailable(e.to_string()))?;
        let (len, lines) = (open.len, open.lines);
        let keys: Vec<String> = batch.iter().map(|m| m.key.clone()).collect();
        let limit = MIN_RECOVER_LINES.max(4 * batch.len());
        let found = blocking(move || scan_tail(&file, len, lines, &keys, limit, TAIL_CHUNK))
            .await
            .and_then(|read| read)
            .map_err(|e| SinkError::Unavailable(format!("reading back {shown}: {e}")))?;
        Ok(found.into_iter().map(|line| line.map(|n| format!("line {n}"))).collect())
    }
}

impl FileOut {
    async fn send(&mut self, batch: &[Message], buf: Vec<u8>) -> Vec<Outcome> {
        if let Some(hangup) = &mut self.hangup
            && let Some(Some(())) = hangup.recv().now_or_never()
        {
            tracing::info!(path = %self.path.display(), "SIGHUP: opening the file again");
            self.open = None;
        }
        if let Err(e) = self.ensure_open() {
            return retry_all(batch, format!("cannot open {}: {e}", self.path.display()));
        }
        let Some(mut open) = self.open.take() else {
            return retry_all(batch, format!("{} is not open", self.path.display()));
        };
        let count = batch.len() as u64;
        let (open, appended) = match blocking(move || {
            let appended = open.append(&buf, count);
            (open, appended)
        })
        .await
        {
            Ok(pair) => pair,
            // The write's thread is gone with the handle: open (and repair) again next time.
            Err(e) => return retry_all(batch, format!("writing to {}: {e}", self.path.display())),
        };
        match appended {
            Appended::Done { first } => {
                self.open = Some(open);
                (first..first + count).map(|n| Outcome::Delivered { ack: format!("line {n}") }).collect()
            }
            Appended::Undone(e) => {
                self.open = Some(open);
                retry_all(batch, format!("writing to {}: {e}", self.path.display()))
            }
            Appended::Broken(e) => {
                tracing::warn!(path = %self.path.display(), "a failed write could not be cut back: the file is opened and repaired before the next write");
                retry_all(batch, format!("writing to {}: {e}", self.path.display()))
            }
        }
    }

    /// The file, opened and repaired again if it was closed.
    fn ensure_open(&mut self) -> io::Result<&mut OpenFile> {
        if self.open.is_none() {
            self.open = Some(open_file(&self.path)?);
        }
        self.open.as_mut().ok_or_else(|| io::Error::other("not open"))
    }
}

/// What became of one append.
enum Appended {
    /// Written and synced; the number of its first line.
    Done { first: u64 },
    /// Not written, or written in part and cut back: the file is as before.
    Undone(io::Error),
    /// Written in part and not cut back: the handle is dropped, the file repaired on reopening.
    Broken(io::Error),
}

impl OpenFile {
    /// One `write_all` of the whole batch, then `fdatasync`. On failure the file is cut back to
    /// where the batch began, so no line of a batch reported as failed stays in it.
    fn append(&mut self, buf: &[u8], count: u64) -> Appended {
        match self.file.write_all(buf).and_then(|()| self.file.sync_data()) {
            Ok(()) => {
                self.len += buf.len() as u64;
                self.lines += count;
                Appended::Done { first: self.lines - count + 1 }
            }
            Err(e) if !self.regular => Appended::Undone(e),
            Err(e) => match self.file.set_len(self.len) {
                Ok(()) => Appended::Undone(e),
                Err(_) => Appended::Broken(e),
            },
        }
    }
}

/// Opens `path` for append (creating the file) and, for a regular file, cuts a partial last line
/// and counts the lines.
fn open_file(path: &Path) -> io::Result<OpenFile> {
    let file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(OpenFile { file, regular: false, len: 0, lines: 0 });
    }
    let len = repair(&file, meta.len(), path)?;
    let lines = count_lines(&file, len)?;
    Ok(OpenFile { file, regular: true, len, lines })
}

/// Cuts the file back to just after its last `\n` (to empty when it has none): the bytes after
/// it are a line a crash interrupted, never acknowledged. Returns the new length.
fn repair(file: &File, len: u64, path: &Path) -> io::Result<u64> {
    let kept = whole_lines_len(file, len, TAIL_CHUNK)?;
    if kept < len {
        file.set_len(kept)?;
        file.sync_data()?;
        tracing::warn!(
            path = %path.display(),
            bytes = len - kept,
            "cut a partial last line left by an interrupted write (its message is written again)"
        );
    }
    Ok(kept)
}

/// The length of the file's whole lines: up to and including its last `\n`.
fn whole_lines_len(file: &File, len: u64, chunk: usize) -> io::Result<u64> {
    let mut end = len;
    let mut buf = vec![0; chunk];
    while end > 0 {
        let start = end.saturating_sub(chunk as u64);
        let part = &mut buf[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The `\n`s in the first `len` bytes.
fn count_lines(file: &File, len: u64) -> io::Result<u64> {
    let mut lines = 0;
    let mut at = 0;
    let mut buf = vec![0; COUNT_CHUNK];
    while at < len {
        let part = &mut buf[..(len - at).min(COUNT_CHUNK as u64) as usize];
        file.read_exact_at(part, at)?;
        lines += part.iter().filter(|&&b| b == b'\n').count() as u64;
        at += part.len() as u64;
    }
    Ok(lines)
}

/// A line's top-level key, the one part of a message recovery reads.
#[derive(serde::Deserialize)]
struct Keyed {
    key: String,
}

/// Reads the first `len` bytes (`lines` whole lines) backwards, `chunk` bytes at a time, for the
/// lines whose `"key"` is one of `keys`: the line number of each, the last occurrence winning.
/// Stops when all are found, at the start, or after `limit` lines.
fn scan_tail(
    file: &File,
    len: u64,
    lines: u64,
    keys: &[String],
    limit: usize,
    chunk: usize,
) -> io::Result<Vec<Option<u64>>> {
    let mut wanted: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        wanted.entry(key.as_str()).or_default().push(i);
    }
    let mut found = vec![None; keys.len()];
    let mut line = lines;
    let mut scanned = 0;
    // `carry`: the bytes after the chunk read last, up to and including a `\n`, whose line begins
    // in a chunk not read yet.
    let mut carry: Vec<u8> = Vec::new();
    let mut end = len;
    while end > 0 && !wanted.is_empty() && scanned < limit {
        let start = end.saturating_sub(chunk as u64);
        let mut data = vec![0; (end - start) as usize];
        file.read_exact_at(&mut data, start)?;
        data.extend_from_slice(&carry);
        let complete = if start == 0 {
            carry = Vec::new();
            &data[..]
        } else {
            match data.iter().position(|&b| b == b'\n') {
                Some(first) => {
                    carry = data[..=first].to_vec();
                    &data[first + 1..]
                }
                None => {
                    carry = data;
                    end = start;
                    continue;
                }
            }
        };
        // `complete` is whole lines, each ending in `\n`.
        if let Some(body) = complete.strip_suffix(b"\n") {
            for text in body.rsplit(|&b| b == b'\n') {
                if let Ok(Keyed { key }) = serde_json::from_slice::<Keyed>(text)
                    && let Some(indices) = wanted.remove(key.as_str())
                {
                    for i in indices {
                        found[i] = Some(line);
                    }
                }
                line = line.saturating_sub(1);
                scanned += 1;
                if wanted.is_empty() || scanned >= limit {
                    break;
                }
            }
        }
        end = start;
    }
    Ok(found)
}

fn write_stdout(buf: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(buf)?;
    stdout.flush()
}

/// Runs file I/O (a write and `fsync`, a read-back) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)
}

fn retry_all(batch: &[Message], reason: String) -> Vec<Outcome> {
    batch.iter().map(|_| Outcome::Retry { reason: reason.clone(), after: None }).collect()
}

/// Listens for `SIGHUP` (logrotate asks for a reopen). Without a runtime or when the handler cannot
/// be installed, the file is simply never reopened.
fn listen_hangup() -> Option<Signal> {
    tokio::runtime::Handle::try_current().ok()?;
    match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP, the file will not be reopened on it: {e}");
            None
        }
    }
}

/// Why a file cannot be opened: the plan's fault (`Config`) or, for anything else, for now.
fn open_error(path: &Path, e: io::Error) -> SinkError {
    let shown = path.display();
    match e.kind() {
        ErrorKind::NotFound => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            SinkError::Config(format!("cannot create {shown}: no directory {}", dir.display()))
        }
        ErrorKind::PermissionDenied
        | ErrorKind::IsADirectory
        | ErrorKind::NotADirectory
        | ErrorKind::ReadOnlyFilesystem => SinkError::Config(format!("cannot open {shown} for append: {e}")),
        _ => SinkError::Unavailable(format!("cannot open {shown}: {e}")),
    }
}

/// `check-config --online`: the file's directory exists and takes a new file, and the file, if it
/// is there, opens for append.
pub fn probe(plan: &JsonlPlan) -> Result<String, SinkError> {
    let Some(path) = &plan.path else { return Ok("writes to stdout".into()) };
    let shown = path.display();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(SinkError::Config(format!("cannot create {shown}: no directory {}", dir.display())));
    }
    let scratch = dir.join(format!(".ferry-probe-{}-{}", std::process::id(), fastrand::u64(..)));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&scratch)
        .and_then(|_| std::fs::remove_file(&scratch))
        .map_err(|e| SinkError::Config(format!("cannot write in {}: {e}", dir.display())))?;
    match OpenOptions::new().append(true).open(path) {
        Ok(file) => {
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            Ok(format!("appends to {shown} ({size} bytes)"))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(format!("appends to {shown} (a new file)")),
        Err(e) => Err(open_error(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn file_with(text: &str) -> (tempfile::NamedTempFile, File) {
        let mut named = tempfile::NamedTempFile::new().expect("a temp file");
        named.write_all(text.as_bytes()).expect("written");
        let file = File::open(named.path()).expect("opened");
        (named, file)
    }

    fn line(key: &str) -> String {
        format!("{{\"v\":1,\"key\":{},\"x\":\"{}\"}}\n", serde_json::json!(key), "y".repeat(key.len() * 3))
    }

    #[test]
    fn whole_lines_len_finds_the_last_newline_across_chunks() {
        for (text, kept) in
            [("", 0), ("abc", 0), ("a\n", 2), ("a\nbc", 2), ("a\nb\n", 4), ("a\nbcdefghijklmnop", 2)]
        {
            let (_named, file) = file_with(text);
            for chunk in [1, 3, 64] {
                let got = whole_lines_len(&file, text.len() as u64, chunk).expect("read");
                assert_eq!(got, kept, "{text:?} by {chunk}");
            }
        }
    }

    #[test]
    fn scan_tail_numbers_lines_from_the_end_and_keeps_the_last_occurrence() {
        let keys = ["t/ev:1:10:0", "t/ev:1:10:1", "t/\"quoted\"", "t/ev:1:11:0", "t/ev:1:10:1"];
        let text: String = keys.iter().map(|k| line(k)).chain(["not json\n".to_string()]).collect();
        let (_named, file) = file_with(&text);
        let wanted: Vec<String> =
            ["t/ev:1:10:1", "t/\"quoted\"", "t/absent", "t/ev:1:10:0"].map(String::from).to_vec();
        for chunk in [1, 5, 17, 4096] {
            let found = scan_tail(&file, text.len() as u64, 6, &wanted, 100, chunk).expect("read");
            assert_eq!(found, vec![Some(5), Some(3), None, Some(1)], "by {chunk}");
        }
    }

    #[test]
    fn scan_tail_stops_after_the_limit() {
        let text: String = (0..10).map(|i| line(&format!("t/{i}"))).collect();
        let (_named, file) = file_with(&text);
        let wanted: Vec<String> = ["t/9", "t/6", "t/5"].map(String::from).to_vec();
        let found = scan_tail(&file, text.len() as u64, 10, &wanted, 4, 7).expect("read");
        assert_eq!(found, vec![Some(10), Some(7), None]);
    }
}
