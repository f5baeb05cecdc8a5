//! `ferry backfill`: ingest a historical block range, resumably, for scripts and CI.
//!
//! Every chosen source runs at once, each from its cursor (or `--from`) to `--to`. Interrupted,
//! it stops after the range being committed and a re-run continues from there; a finished range
//! re-run reads nothing.

use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::progress::{self, Style};
use super::push::ChainReport;
use super::{Ctx, after_help};
use crate::config::{Loaded, Source};
use crate::engine::deliver::{Options, destinations, run_all};
use crate::engine::evm::{SourcePlan, final_head};
use crate::engine::ingest::{IngestError, SourceRunner, SourceStatus};
use crate::engine::rpc::{RpcError, RpcStats};
use crate::exit::{Exit, ExitError};
use crate::output::{Output, Paint, Render};
use crate::store::Store;

/// Ingest a historical range of blocks, resumably; deliver only with --deliver.
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry backfill --from 19000000 --to 19100000
  ferry backfill --source escrows --from 0 --to safe --json
  ferry backfill --from 0 --to latest --deliver"))]
pub struct BackfillArgs {
    /// Only this source (repeatable); all sources when absent.
    #[arg(long, value_name = "NAME")]
    pub source: Vec<String>,
    /// First block of the range.
    #[arg(long, value_name = "BLOCK")]
    pub from: u64,
    /// Last block of the range: a number, `safe` or `latest`.
    #[arg(long, value_name = "BLOCK|safe|latest", default_value = "safe")]
    pub to: RangeEnd,
    /// Also deliver the items found to their routes' targets.
    #[arg(long)]
    pub deliver: bool,
}

/// Where a backfill stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeEnd {
    Block(u64),
    Safe,
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

impl BackfillArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let loaded = ctx.load_config()?;
        let plans = select_sources(&loaded, &self.source)?;
        let store =
            Arc::new(Store::create_or_open(&ctx.store_path(Some(&loaded)), Some(loaded.fingerprint()))?);
        let clients = crate::engine::rpc::clients(&loaded.resolved.chains)?;

        let mut runners = Vec::new();
        for plan in plans {
            let Some(rpc) = clients.get(&plan.chain).cloned() else { continue };
            let name = plan.name.clone();
            let (runner, status) =
                SourceRunner::open(plan, rpc, store.clone(), Some(self.from), ctx.cancel.clone())?;
            if let Some((first, next)) = runner.held()? {
                check_start(&name, self.from, first, next)?;
            }
            let end = match resolve_end(&runner, self.to).await {
                Ok(end) => end,
                Err(IngestError::BadRange(e)) => return Err(ExitError::new(Exit::Usage, e).into()),
                Err(e) => return Err(e.into()),
            };
            runners.push((runner, status, end));
        }

        let started = Instant::now();
        let stop_progress = CancellationToken::new();
        let style =
            if ctx.global.json || !std::io::stderr().is_terminal() { Style::Log } else { Style::Bars };
        let progress = progress::spawn(
            style,
            runners.iter().map(|(_, rx, _)| rx.clone()).collect(),
            stop_progress.clone(),
        );

        let mut tasks = JoinSet::new();
        for (mut runner, status, end) in runners {
            tasks.spawn(async move {
                let result = match end {
                    Some(end) => runner.run_to(end).await,
                    None => Ok(()),
                };
                let rpc = runner.rpc().stats();
                (status, result, rpc)
            });
        }
        let mut reports = Vec::new();
        let mut store_error = None;
        while let Some(joined) = tasks.join_next().await {
            let (status, result, rpc) = joined?;
            let status = status.borrow().clone();
            let (outcome, error) = match result {
                Ok(()) => ("done", None),
                Err(IngestError::Cancelled) => ("interrupted", None),
                Err(IngestError::Store(e)) => {
                    store_error = Some(e);
                    ("failed", None)
                }
                Err(e) => ("failed", Some(e.to_string())),
            };
            reports.push(SourceReport::new(status, outcome, error, rpc, started.elapsed()));
        }
        stop_progress.cancel();
        let _ = progress.await;
        if let Some(e) = store_error {
            return Err(e.into());
        }
        reports.sort_by(|a, b| a.source.cmp(&b.source));
        for r in reports.iter().filter_map(|r| r.error.as_ref()) {
            tracing::error!("{r}");
        }
        let ingested = !reports.iter().any(|r| r.outcome == "failed") && !ctx.cancel.is_cancelled();
        // With --deliver, what the range brought is delivered like `push` does, until done or
        // interrupted: a script gets one command that leaves the range ingested and delivered.
        let mut deliveries = None;
        if self.deliver && ingested {
            let dests = destinations(&loaded.resolved, &clients, &store, &[], &[])?;
            let opts = Options { until_done: true, ..Options::default() };
            let statuses = run_all(dests, store.clone(), opts, ctx.cancel.clone(), |_| {}).await;
            deliveries = Some(statuses.into_values().map(ChainReport::from).collect::<Vec<_>>());
        }
        let undelivered = deliveries.iter().flatten().any(|c| c.left > 0 || c.problem.is_some());
        let exit = if reports.iter().any(|r| r.outcome == "failed") {
            Exit::Incomplete
        } else if ctx.cancel.is_cancelled() {
            Exit::Interrupted
        } else if undelivered {
            Exit::Incomplete
        } else {
            Exit::Ok
        };
        ctx.out.emit(&BackfillReport {
            seconds: started.elapsed().as_secs_f64(),
            sources: reports,
            deliveries,
        })?;
        Ok(exit)
    }
}

/// The sources named with `--source`, or every `evm` source.
pub(super) fn select_sources(loaded: &Loaded, names: &[String]) -> Result<Vec<SourcePlan>, ExitError> {
    let plans = loaded.resolved.sources.clone();
    if names.is_empty() {
        if plans.is_empty() {
            return Err(ExitError::new(
                Exit::Usage,
                format!("{} has no `evm` source to read", loaded.file_name()),
            ));
        }
        return Ok(plans);
    }
    let mut chosen = Vec::new();
    for name in names {
        match loaded.config.sources.get(name) {
            None => {
                let known: Vec<&str> = loaded.config.sources.keys().map(String::as_str).collect();
                return Err(ExitError::new(
                    Exit::Usage,
                    format!(
                        "--source {name}: {} has no such source (it has: {})",
                        loaded.file_name(),
                        known.join(", ")
                    ),
                ));
            }
            Some(Source::Seda(_)) => {
                return Err(ExitError::new(
                    Exit::Usage,
                    format!(
                        "--source {name} is a `seda` source; backfill reads `evm` sources by block range"
                    ),
                ));
            }
            Some(Source::Evm(_)) => chosen.extend(plans.iter().filter(|p| &p.name == name).cloned()),
        }
    }
    Ok(chosen)
}

/// A source holds one contiguous range of blocks; a backfill may resume it, not leave a hole
/// before or after it.
fn check_start(source: &str, from: u64, first: u64, next: u64) -> Result<(), ExitError> {
    if from > next {
        return Err(ExitError::new(
            Exit::Usage,
            format!(
                "source {source} holds blocks {first}..{}; starting at {from} would leave blocks {next}..{} unread. \
                 Use --from {next} (or lower) to continue it",
                next.saturating_sub(1),
                from - 1
            ),
        ));
    }
    if from < first {
        return Err(ExitError::new(
            Exit::Usage,
            format!(
                "source {source} holds blocks from {first} on; ferry keeps one contiguous range per source, so \
                 blocks before {first} need a new store (--store) or a source with an earlier start_block"
            ),
        ));
    }
    Ok(())
}

/// The block a backfill ends at, for one source; `None` when the chain has no such block yet.
async fn resolve_end(runner: &SourceRunner, to: RangeEnd) -> Result<Option<u64>, IngestError> {
    let rpc_error = |error: RpcError, (from, to)| IngestError::Rpc {
        name: runner.plan().name.clone(),
        error: Box::new(error),
        attempts: 1,
        from,
        to,
    };
    match to {
        RangeEnd::Block(n) => {
            let head = runner.rpc().block_number().await.map_err(|e| rpc_error(e, (n, n)))?;
            if n > head {
                return Err(IngestError::BadRange(format!(
                    "source {}: --to {n} is past the chain's head ({head})",
                    runner.plan().name
                )));
            }
            Ok(Some(n))
        }
        RangeEnd::Latest => Ok(Some(runner.rpc().block_number().await.map_err(|e| rpc_error(e, (0, 0)))?)),
        RangeEnd::Safe => final_head(runner.plan(), runner.rpc()).await.map_err(|e| rpc_error(e, (0, 0))),
    }
}

/// The result of a backfill, per source.
#[derive(Debug, Serialize)]
pub struct BackfillReport {
    pub seconds: f64,
    pub sources: Vec<SourceReport>,
    /// With `--deliver`: where delivery stands per destination chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<ChainReport>>,
}

#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub chain: String,
    /// `done`, `interrupted` or `failed`.
    pub outcome: &'static str,
    pub from: u64,
    pub to: Option<u64>,
    /// The next block to read: where a re-run continues.
    pub next: u64,
    pub blocks: u64,
    pub events: u64,
    pub children: u64,
    pub reorgs: u64,
    /// Blocks near the head whose logs were asked again by block hash: their bloom may match,
    /// yet the range's answer had no log of them (a lagging node is how that happens).
    pub rechecked_blocks: u64,
    pub events_per_second: f64,
    pub rpc: RpcStats,
    pub error: Option<String>,
}

impl SourceReport {
    fn new(
        s: SourceStatus,
        outcome: &'static str,
        error: Option<String>,
        rpc: RpcStats,
        took: Duration,
    ) -> Self {
        let secs = took.as_secs_f64().max(1e-9);
        Self {
            source: s.source,
            chain: s.chain,
            outcome,
            from: s.started_at,
            to: s.target,
            next: s.next,
            blocks: s.blocks,
            events: s.events,
            children: s.children,
            reorgs: s.reorgs,
            rechecked_blocks: s.rechecked,
            events_per_second: (s.events as f64 / secs * 10.0).round() / 10.0,
            rpc,
            error,
        }
    }
}

impl Render for BackfillReport {
    fn human(&self, out: &Output) -> String {
        let mut table = out.table([
            "source",
            "chain",
            "outcome",
            "blocks",
            "next",
            "events",
            "children",
            "reorgs",
            "events/s",
            "rpc calls",
        ]);
        for r in &self.sources {
            let outcome = match r.outcome {
                "done" => out.paint(r.outcome, Paint::Green),
                "interrupted" => out.paint(r.outcome, Paint::Yellow),
                _ => out.paint(r.outcome, Paint::Red),
            };
            table.add_row([
                r.source.clone(),
                r.chain.clone(),
                outcome,
                r.blocks.to_string(),
                r.next.to_string(),
                r.events.to_string(),
                r.children.to_string(),
                r.reorgs.to_string(),
                format!("{:.0}", r.events_per_second),
                r.rpc.requests.to_string(),
            ]);
        }
        let mut text = format!("{table}\n");
        if let Some(chains) = &self.deliveries {
            text.push_str(&super::push::chains_table(out, chains));
        }
        text.push_str(&format!("backfill took {:.1}s\n", self.seconds));
        text
    }
}
