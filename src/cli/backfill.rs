//! `ferry backfill`: ingest a historical block range, resumably, for scripts and CI.
//!
//! Every chosen source runs at once, each from its cursor (or `--from`) to `--to`. Interrupted,
//! it stops after the range being committed and a re-run continues from there; a finished range
//! re-run reads nothing.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::chains::{ChainReport, chains_table};
use super::progress::{self, Style};
use super::{Ctx, after_help, codes, select_sources};
use crate::engine::deliver::{Options, destinations, run_all};
use crate::engine::ingest::{IngestError, RangeEnd, SourceStatus, Until, run_sources};
use crate::engine::rpc::RpcStats;
use crate::engine::sink::sink_targets;
use crate::exit::Exit;
use crate::output::{Output, Paint, Render};
use crate::store::Store;

/// Ingest a historical range of blocks, resumably; deliver only with --deliver.
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry backfill --from 19000000 --to 19100000
  ferry backfill --source escrows --from 0 --to safe --json
  ferry backfill --from 0 --to latest --deliver", &[codes::OK, codes::FAILURE, codes::USAGE, codes::STORE, (4, "a source failed before the end of its range, or with --deliver, deliveries left undone"), codes::BUSY, codes::INTERRUPTED]))]
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

impl BackfillArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let loaded = ctx.load_config()?;
        let plans = select_sources(&loaded, &self.source)?;
        let store =
            Arc::new(Store::create_or_open(&ctx.store_path(Some(&loaded)), Some(loaded.fingerprint()))?);
        let clients = crate::engine::rpc::clients(&loaded.resolved.chains)?;
        let until = Until::Range { from: self.from, to: self.to };
        let running =
            run_sources(plans, Vec::new(), &clients, store.clone(), until, ctx.cancel.clone()).await?;

        let started = Instant::now();
        let stop_progress = CancellationToken::new();
        let style =
            if ctx.global.json || !std::io::stderr().is_terminal() { Style::Log } else { Style::Bars };
        let progress = progress::spawn(style, running.statuses.clone(), stop_progress.clone());
        let outcomes = running.finish().await;
        stop_progress.cancel();
        let _ = progress.await;

        let mut reports = Vec::new();
        for outcome in outcomes {
            let (label, error) = match outcome.result {
                Ok(()) => (RangeOutcome::Done, None),
                Err(IngestError::Cancelled) => (RangeOutcome::Interrupted, None),
                // The store cannot be used: that is the command's verdict (exit 3), not a source's.
                Err(IngestError::Store(e)) => return Err(e.into()),
                Err(e) => (RangeOutcome::Failed, Some(e.to_string())),
            };
            reports.push(SourceReport::new(outcome.status, label, error, outcome.rpc, started.elapsed()));
        }
        for r in reports.iter().filter_map(|r| r.error.as_ref()) {
            tracing::error!("{r}");
        }
        let failed = reports.iter().any(|r| r.outcome == RangeOutcome::Failed);
        let ingested = !failed && !ctx.cancel.is_cancelled();
        // With --deliver, what the range brought is delivered like `push` does, until done or
        // interrupted: a script gets one command that leaves the range ingested and delivered.
        let mut deliveries = None;
        if self.deliver && ingested {
            let dests = destinations(&loaded.resolved, &clients, &store, &[], &[])?;
            let sinks = sink_targets(&loaded.resolved, &store, &[])?;
            let opts = Options { until_done: true, ..Options::default() };
            let statuses = run_all(dests, sinks, store.clone(), opts, ctx.cancel.clone(), |_| {}).await?;
            deliveries = Some(statuses.into_values().map(ChainReport::from).collect::<Vec<_>>());
        }
        let undelivered = deliveries.iter().flatten().any(|c| c.left > 0 || c.problem.is_some());
        let exit = if failed {
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

/// How a source's range ended; JSON shows the stable lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RangeOutcome {
    Done,
    Interrupted,
    Failed,
}

impl RangeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RangeOutcome::Done => "done",
            RangeOutcome::Interrupted => "interrupted",
            RangeOutcome::Failed => "failed",
        }
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
    pub outcome: RangeOutcome,
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
        outcome: RangeOutcome,
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
    fn kind(&self) -> &'static str {
        "backfill"
    }

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
            let text = r.outcome.as_str();
            let outcome = match r.outcome {
                RangeOutcome::Done => out.paint(text, Paint::Green),
                RangeOutcome::Interrupted => out.paint(text, Paint::Yellow),
                RangeOutcome::Failed => out.paint(text, Paint::Red),
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
            text.push_str(&chains_table(out, chains));
        }
        text.push_str(&format!("backfill took {:.1}s\n", self.seconds));
        text
    }
}
