//! `ferry push`: the cron one-shot. Syncs every source once, delivers everything pending, waits
//! for confirmations up to `--timeout`, and summarizes.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::chains::{ChainReport, chains_table};
use super::{Ctx, after_help, codes};
use crate::config::values::Duration;
use crate::engine::deliver::{Options, destinations, run_all};
use crate::engine::ingest::{IngestError, Until, run_sources};
use crate::engine::sink::sink_targets;
use crate::exit::Exit;
use crate::output::{Output, Render};
use crate::store::Store;

/// One-shot for cron: sync sources, deliver everything pending, wait for confirmations.
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry push                         sync, deliver, wait up to 5m
  ferry push --no-sync --timeout 2m  deliver what the store already has
  ferry push --dry-run --json        simulate and print what would be sent", &[codes::OK, codes::FAILURE, codes::USAGE, codes::STORE, (4, "work left undone: a delivery failed or unconfirmed at --timeout, a source not synced"), codes::BUSY, codes::INTERRUPTED]))]
pub struct PushArgs {
    /// Skip ingesting sources first; deliver only what the store holds.
    #[arg(long)]
    pub no_sync: bool,
    /// A deadline for the whole command, sync included (exit 4 if work is left).
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
    /// After SIGINT/SIGTERM, stop within this long; what still waits then is dropped (exit 130).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub stop_timeout: Duration,
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
        let clients = crate::engine::rpc::clients(&loaded.resolved.chains)?;
        let mut synced = Vec::new();
        if !self.no_sync {
            let plans = loaded.resolved.sources.clone();
            let seda = loaded.resolved.seda_sources.clone();
            let running =
                run_sources(plans, seda, &clients, store.clone(), Until::FinalHead, sync_deadline.clone())
                    .await?;
            for outcome in running.finish().await {
                // What the source's RPC said meanwhile: a sync cut by the deadline while its
                // requests kept failing is a failing RPC, not a slow one.
                let rpc_errors: u64 = outcome.rpc.errors.values().sum();
                let failing = if rpc_errors > 0 {
                    format!("; its RPC failed {rpc_errors} time(s)")
                } else {
                    String::new()
                };
                let (code, error) = match outcome.result {
                    Ok(()) => (None, None),
                    Err(IngestError::Store(e)) => return Err(e.into()),
                    Err(IngestError::Cancelled) => (
                        Some(if rpc_errors > 0 { "rpc_failing" } else { "sync_timed_out" }),
                        Some(match outcome.status.target {
                            Some(end) => format!(
                                "interrupted before block {} of {end} (the sync gets half of --timeout){failing}",
                                outcome.status.next
                            ),
                            None => format!(
                                "interrupted reading the head (the sync gets half of --timeout){failing}"
                            ),
                        }),
                    ),
                    Err(e @ IngestError::Rpc { .. }) => (Some("rpc_failing"), Some(e.to_string())),
                    Err(e) => (Some("sync_failed"), Some(e.to_string())),
                };
                let source = outcome.status.source;
                if let Some(e) = &error {
                    tracing::warn!(source = %source, error = %e, "sync failed; delivering what the store holds");
                }
                synced.push(SyncReport { source, code, error });
            }
        }
        sync_timer.abort();

        let dests = destinations(&loaded.resolved, &clients, &store, &self.target, &self.chain)?;
        // Sinks are no chain: `--chain` alone names chains only.
        let sinks = if self.chain.is_empty() || !self.target.is_empty() {
            sink_targets(&loaded.resolved, &store, &self.target)?
        } else {
            Vec::new()
        };
        let opts =
            Options { dry_run: self.dry_run, until_done: true, limit: self.limit, ..Options::default() };
        let statuses = run_all(dests, sinks, store.clone(), opts, deadline.clone(), |_| {}).await?;
        timer.abort();

        let chains: Vec<ChainReport> = statuses.into_values().map(ChainReport::from).collect();
        // A dry run leaves everything pending by design: what it has left undone is a chain it
        // could not check or whose simulations fail, each said by its problem.
        let left: Vec<&str> = chains
            .iter()
            .filter(|c| c.problem.is_some() || (!self.dry_run && c.left > 0))
            .map(|c| c.chain.as_str())
            .collect();
        // A source that could not be synced is work left undone too: what it has not read yet
        // was not delivered, whatever the chains say.
        let unsynced: Vec<&str> =
            synced.iter().filter(|s| s.error.is_some()).map(|s| s.source.as_str()).collect();
        let exit = if ctx.cancel.is_cancelled() {
            Exit::Interrupted
        } else if !left.is_empty() || !unsynced.is_empty() {
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
    /// Why the sync is work left undone, for scripts: `rpc_failing`, `sync_timed_out` (cut by
    /// the deadline with its RPC answering), `sync_failed` (anything else, e.g. a bad batch).
    code: Option<&'static str>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct PushReport {
    seconds: f64,
    dry_run: bool,
    synced: Vec<SyncReport>,
    chains: Vec<ChainReport>,
    exit: i32,
}

impl Render for PushReport {
    fn kind(&self) -> &'static str {
        "push"
    }

    fn human(&self, out: &Output) -> String {
        let mut text = chains_table(out, &self.chains);
        for c in self.chains.iter().filter(|c| !c.would_send.is_empty()) {
            text.push_str(&format!("{} would send:\n", c.chain));
            for line in &c.would_send {
                text.push_str(&format!("  {line}\n"));
            }
        }
        for c in self.chains.iter().filter(|c| !c.notes.is_empty()) {
            text.push_str(&format!("{}:\n", c.chain));
            for line in &c.notes {
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
            text.push_str(&format!(
                "sync of {} failed: {}: {}\n",
                s.source,
                s.code.unwrap_or("sync_failed"),
                s.error.as_deref().unwrap_or("")
            ));
        }
        text.push_str(&format!(
            "{:.1}s{}\n",
            self.seconds,
            if self.dry_run { " (dry run: nothing sent)" } else { "" }
        ));
        text
    }
}
