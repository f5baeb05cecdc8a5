//! One entry point for every command that ingests: `backfill` reads a range, `push` reads up to
//! the final head as it is when the run starts, `watch` follows the head until stopped. The rules
//! a range must follow (one contiguous range per source, an end the chain has) live here, not in
//! the commands; the commands choose the sources, render progress and print the outcome.

use std::str::FromStr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{IngestError, SourceRunner, SourceStatus};
use crate::config::{SedaSourcePlan, SourcePlan};
use crate::engine::evm::final_head;
use crate::engine::rpc::{Clients, RpcError, RpcStats};
use crate::engine::seda::SedaRunner;
use crate::engine::seda::source::Stop;
use crate::store::Store;

/// How far a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// `backfill`: from `from` to `to`, continuing what each source holds (never leaving a hole).
    Range { from: u64, to: RangeEnd },
    /// `push`: from each cursor up to the final head as it is when the run starts.
    FinalHead,
    /// `watch`: from each cursor on, following the head until cancelled.
    Forever,
}

/// Where a range ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeEnd {
    Block(u64),
    /// The chain's final head (its `confirmations` depth, or its `safe`/`finalized` tag).
    Safe,
    /// The head itself.
    Latest,
}

impl FromStr for RangeEnd {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "safe" => Ok(RangeEnd::Safe),
            "latest" => Ok(RangeEnd::Latest),
            n => n
                .parse()
                .map(RangeEnd::Block)
                .map_err(|_| format!("`{n}` is not a block number, `safe` or `latest`")),
        }
    }
}

/// How one source's run ended.
#[derive(Debug)]
pub struct Outcome {
    /// Where the source stood when it stopped (counts over this run, next block, target).
    pub status: SourceStatus,
    pub result: Result<(), IngestError>,
    pub rpc: RpcStats,
}

/// Sources at work: their live status (for progress) and their tasks.
pub struct Running {
    pub statuses: Vec<watch::Receiver<SourceStatus>>,
    tasks: JoinSet<Outcome>,
}

impl Running {
    /// The next source to stop, as it stops; `None` when every source has. A source task that
    /// panicked is a bug: the panic goes on unwinding here rather than a source going missing.
    pub async fn next(&mut self) -> Option<Outcome> {
        loop {
            match self.tasks.join_next().await? {
                Ok(outcome) => return Some(outcome),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Abandoned, or aborted by a runtime shutting down, which ends the command anyway.
                Err(_) => {}
            }
        }
    }

    /// Drops every source still running where it waits and returns once they are all gone, with
    /// the outcomes of those that ended on their own meanwhile. A range commits in one
    /// transaction, so none is half-written; a commit already handed to the store finishes on its
    /// own, and a repeated range is a no-op.
    pub async fn abandon(&mut self) -> Vec<Outcome> {
        self.tasks.abort_all();
        let mut outcomes = Vec::new();
        while let Some(outcome) = self.next().await {
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Waits for every source; their outcomes by source name.
    pub async fn finish(mut self) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        while let Some(outcome) = self.next().await {
            outcomes.push(outcome);
        }
        outcomes.sort_by(|a, b| a.status.source.cmp(&b.status.source));
        outcomes
    }
}

/// Opens every source (cursor, children, target ids) through its chain's client and starts it.
/// What is wrong before anything is read is returned at once: a range that would leave a hole
/// (`IngestError::BadRange`), an end past the head, a store that cannot be used.
pub async fn run_sources(
    plans: Vec<SourcePlan>,
    seda: Vec<SedaSourcePlan>,
    clients: &Clients,
    store: Arc<Store>,
    until: Until,
    cancel: CancellationToken,
) -> Result<Running, IngestError> {
    let mut started = Vec::new();
    for plan in plans {
        let Some(rpc) = clients.get(&plan.chain).cloned() else {
            return Err(IngestError::BadRange(format!(
                "source {}: no client for chain {}",
                plan.name, plan.chain
            )));
        };
        let start = match until {
            Until::Range { from, .. } => Some(from),
            Until::FinalHead | Until::Forever => None,
        };
        let (runner, status) = SourceRunner::open(plan, rpc, store.clone(), start, cancel.clone())?;
        let end = match until {
            Until::Range { from, to } => {
                if let Some((first, next)) = runner.held()? {
                    check_start(&runner.plan().name, from, first, next)?;
                }
                Some(range_end(&runner, to).await?)
            }
            Until::FinalHead | Until::Forever => None,
        };
        started.push((runner, status, end));
    }
    let mut tasks = JoinSet::new();
    let mut statuses = Vec::new();
    for (mut runner, status, end) in started {
        statuses.push(status.clone());
        crate::engine::observe::follow_source(status.clone());
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let result = match (until, end) {
                (Until::Range { .. }, Some(Some(end))) => runner.run_to(end).await,
                // The chain has no block at the end yet: nothing to read.
                (Until::Range { .. }, _) => Ok(()),
                (Until::FinalHead, _) => {
                    // Reading the head retries on its own; the run's cancellation ends it too.
                    let head = tokio::select! {
                        head = final_head(runner.plan(), runner.rpc()) => head,
                        () = cancel.cancelled() => Ok(None),
                    };
                    match head {
                        _ if cancel.is_cancelled() => Err(IngestError::Cancelled),
                        // Also with nothing new to read: the run first checks that the block
                        // read last is still the chain's (a reorg that kept the height, a node
                        // behind).
                        Ok(Some(end)) => runner.run_to(end).await,
                        Ok(None) => Ok(()),
                        Err(error) => Err(rpc_error(&runner, error, (0, 0))),
                    }
                }
                (Until::Forever, _) => runner.follow().await,
            };
            let status = status.borrow().clone();
            Outcome { status, result, rpc: runner.rpc().stats() }
        });
    }
    for plan in seda {
        let stop = match until {
            // A range of blocks means nothing to a batch source; `backfill` passes none.
            Until::Range { .. } => continue,
            Until::FinalHead => Stop::AtHead,
            Until::Forever => Stop::Never,
        };
        let (mut runner, status) = SedaRunner::open(plan, store.clone(), cancel.clone())?;
        statuses.push(status.clone());
        crate::engine::observe::follow_source(status.clone());
        tasks.spawn(async move {
            let result = runner.run(stop).await;
            let status = status.borrow().clone();
            let (requests, errors) = runner.api().counts();
            let mut rpc = RpcStats { requests, ..RpcStats::default() };
            if errors > 0 {
                rpc.errors.insert("api".into(), errors);
            }
            Outcome { status, result, rpc }
        });
    }
    Ok(Running { statuses, tasks })
}

/// A source holds one contiguous range of blocks; a backfill may resume it, not leave a hole
/// before or after it.
fn check_start(source: &str, from: u64, first: u64, next: u64) -> Result<(), IngestError> {
    if from > next {
        return Err(IngestError::BadRange(format!(
            "source {source} holds blocks {first}..{}; starting at {from} would leave blocks {next}..{} unread. \
             Use --from {next} (or lower) to continue it",
            next.saturating_sub(1),
            from - 1
        )));
    }
    if from < first {
        return Err(IngestError::BadRange(format!(
            "source {source} holds blocks from {first} on; ferry keeps one contiguous range per source, so \
             blocks before {first} need a new store (--store) or a source with an earlier start_block"
        )));
    }
    Ok(())
}

/// The block a range ends at, for one source; `None` when the chain has no such block yet.
async fn range_end(runner: &SourceRunner, to: RangeEnd) -> Result<Option<u64>, IngestError> {
    match to {
        RangeEnd::Block(n) => {
            let head = runner.rpc().block_number().await.map_err(|e| rpc_error(runner, e, (n, n)))?;
            if n > head {
                return Err(IngestError::BadRange(format!(
                    "source {}: --to {n} is past the chain's head ({head})",
                    runner.plan().name
                )));
            }
            Ok(Some(n))
        }
        RangeEnd::Latest => {
            Ok(Some(runner.rpc().block_number().await.map_err(|e| rpc_error(runner, e, (0, 0)))?))
        }
        RangeEnd::Safe => {
            final_head(runner.plan(), runner.rpc()).await.map_err(|e| rpc_error(runner, e, (0, 0)))
        }
    }
}

fn rpc_error(runner: &SourceRunner, error: RpcError, (from, to): (u64, u64)) -> IngestError {
    IngestError::Rpc { name: runner.plan().name.clone(), error: Box::new(error), attempts: 1, from, to }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_continues_what_a_source_holds_and_never_leaves_a_hole() {
        // The source holds 100..=199 (next 200).
        for from in [100, 150, 200] {
            assert!(check_start("s", from, 100, 200).is_ok(), "from {from}");
        }
        let hole_after = check_start("s", 201, 100, 200).expect_err("a hole after");
        assert!(hole_after.to_string().contains("would leave blocks 200..200 unread"), "{hole_after}");
        let before = check_start("s", 99, 100, 200).expect_err("before the range");
        assert!(before.to_string().contains("one contiguous range per source"), "{before}");
    }

    #[test]
    fn range_ends_parse() {
        assert_eq!("safe".parse(), Ok(RangeEnd::Safe));
        assert_eq!("latest".parse(), Ok(RangeEnd::Latest));
        assert_eq!("42".parse(), Ok(RangeEnd::Block(42)));
        assert!("soon".parse::<RangeEnd>().is_err());
    }
}
