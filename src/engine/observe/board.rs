//! The board: what each source and destination last said, kept by name, and the [`Snapshot`]
//! that readiness (`ready.rs`), the age gauges and the per-chain heartbeat read.
//!
//! Times that grow between events (how long a source has been behind, how old the oldest
//! unsettled delivery is) are kept as the moment they started, and turned into ages only when a
//! snapshot is taken: a dead chain's age keeps growing although nothing reports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use super::ready::{Readiness, Thresholds, decide};
use crate::engine::deliver::{ChainStatus, Problem};
use crate::engine::ingest::SourceStatus;
use crate::store::now;

/// What a destination is: an EVM chain's worker, or a sink target's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestKind {
    Chain,
    Sink,
}

impl DestKind {
    /// How reasons and heartbeats name it.
    pub fn as_str(self) -> &'static str {
        match self {
            DestKind::Chain => "chain",
            DestKind::Sink => "sink",
        }
    }
}

#[derive(Debug)]
struct SourceEntry {
    chain: String,
    head: Option<u64>,
    next: u64,
    /// The last moment the source had everything up to the head it may read (or when it was
    /// first seen, until it has).
    caught_up_at: Instant,
    last_error: Option<String>,
}

#[derive(Debug)]
struct DestEntry {
    kind: DestKind,
    /// Unix seconds the oldest unsettled delivery was created.
    oldest_open: Option<u64>,
    /// The current problem: code, message, since when (kept while the code stays the same).
    problem: Option<(&'static str, String, Instant)>,
    last_problem: Option<String>,
    codes_seen: BTreeSet<String>,
    pending: u64,
    in_flight: u64,
}

impl DestEntry {
    fn new(kind: DestKind) -> Self {
        DestEntry {
            kind,
            oldest_open: None,
            problem: None,
            last_problem: None,
            codes_seen: BTreeSet::new(),
            pending: 0,
            in_flight: 0,
        }
    }

    fn set_problem(&mut self, problem: Option<&Problem>) {
        let Some(p) = problem else {
            self.problem = None;
            return;
        };
        let since = match &self.problem {
            Some((code, _, since)) if *code == p.code() => *since,
            _ => Instant::now(),
        };
        let message = p.to_string();
        self.codes_seen.insert(p.code().to_string());
        self.last_problem = Some(message.clone());
        self.problem = Some((p.code(), message, since));
    }
}

/// The problem code of a chain whose worker has not started yet.
pub const STARTING: &str = "starting";

/// Everything the board knows, by name.
#[derive(Debug, Default)]
pub struct Board {
    sources: Mutex<BTreeMap<String, SourceEntry>>,
    dests: Mutex<BTreeMap<String, DestEntry>>,
    /// What readiness allows, as last configured (a reload sets it again).
    thresholds: Mutex<Option<Thresholds>>,
}

/// A source as of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceView {
    pub name: String,
    pub chain: String,
    /// Seconds since the source last had everything up to its head.
    pub lag_secs: u64,
    /// Blocks (or batches) between the cursor and the head; `None` before the head is known.
    pub lag_blocks: Option<u64>,
    pub last_error: Option<String>,
}

/// A problem as of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemView {
    pub code: String,
    pub message: String,
    /// How long it has lasted.
    pub for_secs: u64,
}

/// A destination (chain or sink) as of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestView {
    pub name: String,
    pub kind: DestKind,
    /// Age of the oldest unsettled delivery; `None` when nothing waits.
    pub oldest_open_secs: Option<u64>,
    pub problem: Option<ProblemView>,
    /// The last problem reported, even if it has cleared since.
    pub last_problem: Option<String>,
    /// Every problem code seen on this run (so that a cleared one's gauge goes back to 0).
    pub codes_seen: BTreeSet<String>,
    pub pending: u64,
    pub in_flight: u64,
}

/// The board at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub sources: Vec<SourceView>,
    pub dests: Vec<DestView>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; it is still readable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Board {
    pub(super) fn source(&self, s: &SourceStatus) {
        let mut sources = lock(&self.sources);
        let entry = sources.entry(s.source.clone()).or_insert_with(|| SourceEntry {
            chain: s.chain.clone(),
            head: None,
            next: s.next,
            caught_up_at: Instant::now(),
            last_error: None,
        });
        if s.head.is_some_and(|head| s.next > head) {
            entry.caught_up_at = Instant::now();
        }
        entry.chain.clone_from(&s.chain);
        entry.head = s.head;
        entry.next = s.next;
        entry.last_error.clone_from(&s.last_error);
    }

    pub(super) fn dest(&self, s: &ChainStatus, kind: DestKind) {
        let mut dests = lock(&self.dests);
        let entry = dests.entry(s.chain.clone()).or_insert_with(|| DestEntry::new(kind));
        entry.kind = kind;
        entry.set_problem(s.problem.as_ref());
        entry.pending = s.counts.pending;
        entry.in_flight = s.counts.sending + s.counts.sent;
    }

    pub(super) fn oldest_open(&self, name: &str, kind: DestKind, created_at: Option<u64>) {
        let mut dests = lock(&self.dests);
        dests.entry(name.to_string()).or_insert_with(|| DestEntry::new(kind)).oldest_open = created_at;
    }

    /// A chain whose worker is starting: until it reports, the board says it has not started,
    /// from now, so that one whose RPC never answers is stuck after `stuck_after` rather than
    /// after its first attempt has used up every retry.
    pub(super) fn starting(&self, chain: &str, oldest: Option<u64>) {
        let mut dests = lock(&self.dests);
        let entry = dests.entry(chain.to_string()).or_insert_with(|| DestEntry::new(DestKind::Chain));
        if entry.problem.is_none() {
            entry.codes_seen.insert(STARTING.to_string());
            entry.problem = Some((STARTING, "the worker has not started yet".into(), Instant::now()));
        }
        entry.oldest_open = oldest;
    }

    pub(super) fn could_not_start(&self, chain: &str, error: &str, oldest: Option<u64>) {
        let mut dests = lock(&self.dests);
        let entry = dests.entry(chain.to_string()).or_insert_with(|| DestEntry::new(DestKind::Chain));
        entry.set_problem(Some(&Problem::CouldNotStart { error: error.to_string() }));
        entry.oldest_open = oldest;
    }

    /// Sets what readiness allows (at start, and again when the config is reloaded).
    pub fn set_thresholds(&self, thresholds: Thresholds) {
        *lock(&self.thresholds) = Some(thresholds);
    }

    /// Readiness as of now; not ready while no thresholds are set.
    pub fn readiness(&self) -> Readiness {
        match lock(&self.thresholds).clone() {
            Some(t) => decide(&self.snapshot(), &t),
            None => Readiness::NotReady(vec!["starting: no thresholds configured yet".into()]),
        }
    }

    /// Forgets sources and destinations no longer configured (after a reload), so that one
    /// removed on purpose is not reported as stuck.
    pub fn retain(&self, sources: &[String], dests: &[String]) {
        lock(&self.sources).retain(|name, _| sources.contains(name));
        lock(&self.dests).retain(|name, _| dests.contains(name));
    }

    /// Everything, with ages as of now.
    pub fn snapshot(&self) -> Snapshot {
        let now_s = now();
        let sources = lock(&self.sources)
            .iter()
            .map(|(name, e)| SourceView {
                name: name.clone(),
                chain: e.chain.clone(),
                lag_secs: e.caught_up_at.elapsed().as_secs(),
                lag_blocks: e.head.map(|h| (h + 1).saturating_sub(e.next)),
                last_error: e.last_error.clone(),
            })
            .collect();
        let dests = lock(&self.dests)
            .iter()
            .map(|(name, e)| DestView {
                name: name.clone(),
                kind: e.kind,
                oldest_open_secs: e.oldest_open.map(|c| now_s.saturating_sub(c)),
                problem: e.problem.as_ref().map(|(code, message, since)| ProblemView {
                    code: code.to_string(),
                    message: message.clone(),
                    for_secs: since.elapsed().as_secs(),
                }),
                last_problem: e.last_problem.clone(),
                codes_seen: e.codes_seen.clone(),
                pending: e.pending,
                in_flight: e.in_flight,
            })
            .collect();
        Snapshot { sources, dests }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(next: u64, head: Option<u64>) -> SourceStatus {
        SourceStatus { head, ..SourceStatus::new("s", "c", next) }
    }

    /// A source is caught up when its next block is past the head it may read; a problem keeps
    /// its start while its code stays the same, and a cleared one is remembered as the last.
    #[test]
    fn the_board_keeps_when_things_started() {
        let board = Board::default();
        board.source(&source(5, None));
        let s = &board.snapshot().sources[0];
        assert_eq!((s.lag_blocks, s.name.as_str()), (None, "s"));
        board.source(&source(5, Some(9)));
        assert_eq!(board.snapshot().sources[0].lag_blocks, Some(5));
        board.source(&source(10, Some(9)));
        assert_eq!(board.snapshot().sources[0].lag_blocks, Some(0));

        let failing = Problem::RpcFailing { error: "boom".into() };
        let mut status = ChainStatus { chain: "d".into(), problem: Some(failing), ..Default::default() };
        board.dest(&status, DestKind::Chain);
        board.oldest_open("d", DestKind::Chain, Some(now() - 7));
        let d = &board.snapshot().dests[0];
        assert_eq!(d.problem.as_ref().map(|p| p.code.as_str()), Some("rpc_failing"));
        assert!(d.oldest_open_secs.is_some_and(|a| (7..9).contains(&a)), "{d:?}");
        status.problem = None;
        board.dest(&status, DestKind::Chain);
        let d = &board.snapshot().dests[0];
        assert_eq!(d.problem, None);
        assert_eq!(d.last_problem.as_deref(), Some("RPC failing: boom"));
        assert!(d.codes_seen.contains("rpc_failing"));

        // A worker starting is "not started" until its first status, which clears it.
        board.starting("e", Some(now()));
        let starting =
            |b: &Board| b.snapshot().dests.into_iter().find(|d| d.name == "e").and_then(|d| d.problem);
        assert_eq!(starting(&board).map(|p| p.code), Some(STARTING.to_string()));
        board.dest(&ChainStatus { chain: "e".into(), ..Default::default() }, DestKind::Chain);
        assert_eq!(starting(&board), None);

        // Readiness needs thresholds; with them, it is the decision on this board.
        assert!(matches!(board.readiness(), Readiness::NotReady(r) if r[0].contains("no thresholds")));
        let stuck_after = std::time::Duration::from_secs(5);
        let lax = std::time::Duration::from_secs(3600);
        board.set_thresholds(Thresholds { max_lag: lax, lag_budgets: BTreeMap::new(), stuck_after });
        let verdict = board.readiness();
        assert!(
            matches!(&verdict, Readiness::NotReady(r) if r.len() == 1 && r[0].starts_with("chain d: ")),
            "{verdict:?}"
        );
        board.set_thresholds(Thresholds { max_lag: lax, lag_budgets: BTreeMap::new(), stuck_after: lax });
        assert_eq!(board.readiness(), Readiness::Ready);

        board.retain(&[], &["d".into()]);
        let snap = board.snapshot();
        assert!(snap.sources.is_empty() && snap.dests.len() == 1);
    }
}
