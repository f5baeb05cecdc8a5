//! `ferry push`: the cron one-shot. Syncs every source once, delivers everything pending, waits
//! for confirmations up to `--timeout`, and summarizes.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Ctx, after_help};
use crate::config::values::Duration;
use crate::engine::deliver::{ChainStatus, Counts, Options, destinations, run_all};
use crate::engine::evm::{SourcePlan, final_head};
use crate::engine::ingest::{IngestError, SourceRunner, chain_rpcs};
use crate::exit::{Exit, ExitError};
use crate::output::{Output, Render};
use crate::store::Store;

/// One-shot for cron: sync sources, deliver everything pending, wait for confirmations.
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry push                         sync, deliver, wait up to 5m
  ferry push --no-sync --timeout 2m  deliver what the store already has
  ferry push --dry-run --json        simulate and print what would be sent"))]
pub struct PushArgs {
    /// Skip ingesting sources first; deliver only what the store holds.
    #[arg(long)]
    pub no_sync: bool,
    /// Give up waiting after this long (exit 4 if work is left).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Simulate every delivery and print what would be sent; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only deliveries to this target (repeatable).
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,
    /// Only deliveries to this chain (repeatable).
    #[arg(long, value_name = "NAME")]
    pub chain: Vec<String>,
    /// At most this many deliveries.
    #[arg(long)]
    pub limit: Option<usize>,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map(Duration).map_err(|e| format!("{e}; write e.g. `90s` or `5m`"))
}

impl PushArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let loaded = ctx.load_config()?;
        let store =
            Arc::new(Store::create_or_open(&ctx.store_path(Some(&loaded)), Some(loaded.fingerprint()))?);
        let started = Instant::now();
        let deadline = CancellationToken::new();
        let timer = {
            let (deadline, cancel, timeout) = (deadline.clone(), ctx.cancel.clone(), self.timeout.0);
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(timeout) => {}
                    _ = cancel.cancelled() => {}
                }
                deadline.cancel();
            })
        };

        // The sync gets half of --timeout at most, so that a source stuck on a node that lacks
        // a block never leaves the deliveries no time; what it did not read is reported (exit 4).
        let sync_deadline = deadline.child_token();
        let sync_timer = {
            let (sync_deadline, half) = (sync_deadline.clone(), self.timeout.0 / 2);
            tokio::spawn(async move {
                tokio::time::sleep(half).await;
                sync_deadline.cancel();
            })
        };
        let mut synced = Vec::new();
        if !self.no_sync {
            let plans = SourcePlan::all(&loaded.config).map_err(|e| ExitError::new(Exit::Usage, e))?;
            let rpcs = chain_rpcs(&loaded.config, &plans)?;
            let mut tasks = JoinSet::new();
            for plan in plans {
                let Some(rpc) = rpcs.get(&plan.chain).cloned() else { continue };
                let (mut runner, _) =
                    SourceRunner::open(plan, rpc, store.clone(), None, sync_deadline.clone())?;
                let deadline = sync_deadline.clone();
                tasks.spawn(async move {
                    let name = runner.plan().name.clone();
                    // The head's own retries end at the deadline too.
                    let end = tokio::select! {
                        end = final_head(runner.plan(), runner.rpc()) => end.map_err(|e| e.to_string()),
                        _ = deadline.cancelled() => {
                            Err("interrupted reading the head (the sync gets half of --timeout)".to_string())
                        }
                    };
                    // Also with nothing new to read: the run first checks that the block read
                    // last is still the chain's (a reorg that kept the height, or a node behind).
                    let result = match end {
                        Ok(Some(end)) => match runner.run_to(end).await {
                            Err(IngestError::Cancelled) => Err(format!(
                                "interrupted before block {} of {end} (the sync gets half of --timeout)",
                                runner.next()
                            )),
                            other => other.map_err(|e| e.to_string()),
                        },
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    };
                    (name, result)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                let (source, result) = joined?;
                if let Err(e) = &result {
                    tracing::warn!(source = %source, error = %e, "sync failed; delivering what the store holds");
                }
                synced.push(SyncReport { source, error: result.err() });
            }
            synced.sort_by(|a, b| a.source.cmp(&b.source));
        }
        sync_timer.abort();

        let dests = destinations(&loaded.config, &loaded.base_dir(), &store, &self.target, &self.chain)?;
        let opts =
            Options { dry_run: self.dry_run, until_done: true, limit: self.limit, ..Options::default() };
        let statuses = run_all(dests, store.clone(), opts, deadline.clone(), |_| {}).await;
        timer.abort();

        let chains: Vec<ChainReport> = statuses.into_values().map(ChainReport::from).collect();
        let left: Vec<&str> =
            chains.iter().filter(|c| c.left > 0 || c.problem.is_some()).map(|c| c.chain.as_str()).collect();
        // A source that could not be synced is work left undone too: what it has not read yet
        // was not delivered, whatever the chains say.
        let unsynced: Vec<&str> =
            synced.iter().filter(|s| s.error.is_some()).map(|s| s.source.as_str()).collect();
        let exit = if ctx.cancel.is_cancelled() {
            Exit::Interrupted
        } else if (!self.dry_run && !left.is_empty()) || !unsynced.is_empty() {
            if !left.is_empty() {
                tracing::warn!(chains = %left.join(", "), "work left undone");
            }
            if !unsynced.is_empty() {
                tracing::warn!(sources = %unsynced.join(", "), "sources not synced to their safe head");
            }
            Exit::Incomplete
        } else {
            Exit::Ok
        };
        ctx.out.emit(&PushReport {
            seconds: started.elapsed().as_secs_f64(),
            dry_run: self.dry_run,
            synced,
            chains,
            exit: exit.code(),
        })?;
        Ok(exit)
    }
}

#[derive(Debug, Serialize)]
struct SyncReport {
    source: String,
    error: Option<String>,
}

/// Where delivery to one chain stands at the end of a command.
#[derive(Debug, Serialize)]
pub struct ChainReport {
    chain: String,
    signer: String,
    #[serde(flatten)]
    counts: Counts,
    pub(super) left: u64,
    transactions: u64,
    bumps: u64,
    next_nonce: u64,
    pub(super) problem: Option<ProblemReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    would_send: Vec<String>,
    /// Deliveries that failed for good on this run, with their reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failures: Vec<String>,
}

/// Why a chain is paused or failing: a stable code for scripts, the message for people.
#[derive(Debug, Serialize)]
pub struct ProblemReport {
    code: &'static str,
    message: String,
}

impl From<ChainStatus> for ChainReport {
    fn from(s: ChainStatus) -> Self {
        ChainReport {
            left: s.counts.left(),
            chain: s.chain,
            signer: s.signer,
            counts: s.counts,
            transactions: s.sent_txs,
            bumps: s.bumps,
            next_nonce: s.next_nonce,
            problem: s.problem.map(|p| ProblemReport { code: p.code(), message: p.to_string() }),
            would_send: s.would_send,
            failures: s.failures,
        }
    }
}

#[derive(Debug, Serialize)]
struct PushReport {
    seconds: f64,
    dry_run: bool,
    synced: Vec<SyncReport>,
    chains: Vec<ChainReport>,
    exit: i32,
}

/// The per-chain table of `push` (and `backfill --deliver`).
pub(super) fn chains_table(out: &Output, chains: &[ChainReport]) -> String {
    let mut table = out.table([
        "chain",
        "confirmed",
        "skipped",
        "failed",
        "pending",
        "in flight",
        "txs",
        "bumps",
        "problem",
    ]);
    for c in chains {
        table.add_row(vec![
            c.chain.clone(),
            c.counts.confirmed.to_string(),
            c.counts.skipped.to_string(),
            c.counts.failed.to_string(),
            c.counts.pending.to_string(),
            (c.counts.sending + c.counts.sent).to_string(),
            c.transactions.to_string(),
            c.bumps.to_string(),
            c.problem.as_ref().map(|p| p.message.clone()).unwrap_or_default(),
        ]);
    }
    format!("{table}\n")
}

impl Render for PushReport {
    fn human(&self, out: &Output) -> String {
        let mut text = chains_table(out, &self.chains);
        for c in self.chains.iter().filter(|c| !c.would_send.is_empty()) {
            text.push_str(&format!("{} would send:\n", c.chain));
            for line in &c.would_send {
                text.push_str(&format!("  {line}\n"));
            }
        }
        for c in self.chains.iter().filter(|c| !c.failures.is_empty()) {
            text.push_str(&format!("{} failed for good:\n", c.chain));
            for line in &c.failures {
                text.push_str(&format!("  {line}\n"));
            }
        }
        for s in self.synced.iter().filter(|s| s.error.is_some()) {
            text.push_str(&format!("sync of {} failed: {}\n", s.source, s.error.as_deref().unwrap_or("")));
        }
        text.push_str(&format!(
            "{:.1}s{}\n",
            self.seconds,
            if self.dry_run { " (dry run: nothing sent)" } else { "" }
        ));
        text
    }
}
