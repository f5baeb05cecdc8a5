//! `ferry inspect-store`: what the state file holds, read-only, while `watch` runs or not, and
//! after a writer was killed (from a repaired copy: the file itself is never written).
//! The delivery and transaction views live in [`deliveries`], the SEDA batch and Prover views in
//! [`batches`].

pub mod batches;
pub mod deliveries;
pub mod operate;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use clap::{Args, Subcommand};
use serde::Serialize;

use self::batches::{BatchesArgs, ProversArgs, SedaNames};
use self::deliveries::{DeliveriesArgs, TxsArgs};
use self::operate::{CancelArgs, ManageArgs, ResyncArgs, RetryArgs, SkipArgs};
use super::filters::{ChainArg, ConfigNames, EventFilterArgs};
use super::{Ctx, after_help, codes};
use crate::exit::Exit;
use crate::output::{Output, Render};
use crate::store::dump::{self, Summary};
use crate::store::query::{ContractRow, CursorRow, EventRow, Query, ReorgRow};
use crate::store::query_seda::{ProverFilter, ProverRow};

/// Show what the state file holds (read-only; works while `watch` runs).
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry inspect-store                       the summary: schema, size, rows per table, cursors
  ferry inspect-store summary --json        the same as JSON, for scripts
  ferry inspect-store cursors               where each source stands
  ferry inspect-store events --chain base --event Approved --from-block 21000000 --limit 20
  ferry inspect-store events --event undecoded   logs no declaration decoded
  ferry inspect-store contracts --json      configured contracts and factory children
  ferry inspect-store reorgs                reorgs seen and undone
  ferry inspect-store deliveries --state failed --chain base   what failed on base, and why
  ferry inspect-store deliveries --target prover --matrix      which item reached which chain
  ferry inspect-store txs --open            transactions sent and not mined yet
  ferry inspect-store batches --source seda --limit 10   the SEDA batches fetched last
  ferry inspect-store batches --from 4000000 --to 4000100 --json
  ferry inspect-store provers               each Prover's last batch, and how far it is behind
  ferry inspect-store provers --target provers --chain base --json
  ferry inspect-store --store /var/lib/ferry/seda.redb", &[codes::OK, codes::FAILURE, codes::USAGE, codes::STORE, (5, "retry, skip, cancel, resync, manage: the store is held by another ferry process")]))]
pub struct InspectStoreArgs {
    #[command(subcommand)]
    pub view: Option<View>,
}

#[derive(Debug, Subcommand)]
pub enum View {
    /// Schema version, file size, rows per table and source cursors (the default).
    Summary,
    /// Where each source stands: the range of blocks it holds.
    Cursors,
    /// Watched contracts: configured ones and factory children.
    Contracts {
        #[command(flatten)]
        chain: ChainArg,
        /// Only this address.
        #[arg(long, value_name = "ADDRESS")]
        address: Option<alloy::primitives::Address>,
        /// At most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Ingested events, newest filters first: chain, address, event name, block range.
    Events {
        #[command(flatten)]
        filter: EventFilterArgs,
        /// At most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Reorgs seen under `confirmations: 0` (or deeper than the confirmations), and what they undid.
    Reorgs {
        #[command(flatten)]
        chain: ChainArg,
    },
    Deliveries(DeliveriesArgs),
    Txs(TxsArgs),
    Batches(BatchesArgs),
    Provers(ProversArgs),
    /// Put failed (or skipped) deliveries back to pending (read-write; while `watch` runs, done
    /// by it through its control socket).
    Retry(RetryArgs),
    /// Mark pending or failed deliveries skipped, never to be sent (read-write, or by a running
    /// `watch`).
    Skip(SkipArgs),
    /// Replace a stuck transaction with a zero-value send to itself at the same nonce (read-write,
    /// or by a running `watch`).
    Cancel(CancelArgs),
    /// Drop signed transactions no node holds and sign their deliveries again (read-write, or by
    /// a running `watch`).
    Resync(ResyncArgs),
    /// Retry, skip, cancel or resync from menus, on a terminal (read-write, or by a running
    /// `watch`).
    Manage(ManageArgs),
}

impl InspectStoreArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        // The operator's commands write: they open the store themselves, read-write.
        let view = match self.view.unwrap_or(View::Summary) {
            View::Retry(args) => return args.run(ctx).await,
            View::Skip(args) => return args.run(ctx).await,
            View::Cancel(args) => return args.run(ctx).await,
            View::Resync(args) => return args.run(ctx).await,
            View::Manage(args) => return args.run(ctx).await,
            view => view,
        };
        let store = ctx.open_read_store()?;
        // Rows name chains as the config does; the views that show none do not read it.
        let chain_names = || ConfigNames::load(ctx).chains;
        match view {
            View::Summary => {
                let summary = dump::summary(&store)?;
                // The config is read for chain names and routes only when there is a Prover to
                // show: the summary of a store without SEDA needs no config.
                let has_provers = summary.tables.iter().any(|t| t.table == "provers" && t.rows > 0);
                let provers = if has_provers {
                    SedaNames::load(ctx).provers(&store, &ProverFilter::default())?
                } else {
                    Vec::new()
                };
                ctx.out.emit(&SummaryReport { summary, provers })?
            }
            View::Cursors => {
                ctx.out.emit(&Cursors { cursors: Query::new(&store, BTreeMap::new())?.cursors()? })?
            }
            View::Contracts { chain, address, limit } => {
                let chain = chain.resolve(ctx)?;
                let mut rows = Vec::new();
                Query::new(&store, chain_names())?.contracts(chain, address, &mut |row| {
                    rows.push(row);
                    if rows.len() >= limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
                })?;
                ctx.out.emit(&Contracts { contracts: rows })?
            }
            View::Events { filter, limit } => {
                let filter = filter.resolve(ctx)?;
                let mut rows = Vec::new();
                Query::new(&store, chain_names())?.events(&filter, &mut |row| {
                    rows.push(row);
                    if rows.len() >= limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
                })?;
                ctx.out.emit(&Events { events: rows })?
            }
            View::Reorgs { chain } => {
                let chain = chain.resolve(ctx)?;
                ctx.out.emit(&Reorgs { reorgs: Query::new(&store, chain_names())?.reorgs(chain)? })?
            }
            View::Deliveries(args) => args.run(ctx, &store)?,
            View::Txs(args) => args.run(ctx, &store)?,
            View::Batches(args) => args.run(ctx, &store)?,
            View::Provers(args) => args.run(ctx, &store)?,
            View::Retry(_) | View::Skip(_) | View::Cancel(_) | View::Resync(_) | View::Manage(_) => {
                unreachable!("handled above")
            }
        }
        Ok(Exit::Ok)
    }
}

#[derive(Serialize)]
struct Cursors {
    cursors: Vec<CursorRow>,
}

impl Render for Cursors {
    fn kind(&self) -> &'static str {
        "inspect-store.cursors"
    }

    fn human(&self, out: &Output) -> String {
        if self.cursors.is_empty() {
            return "no cursors yet: no source has been ingested\n".into();
        }
        let mut table = out.table(["source", "first", "next", "last hash", "updated"]);
        for c in &self.cursors {
            table.add_row([
                c.source.clone(),
                c.first.to_string(),
                c.next.to_string(),
                c.last_block_hash.map(|h| short(&h.to_string())).unwrap_or_default(),
                ago(c.updated_at),
            ]);
        }
        let mut text = format!("{table}\n");
        // What stopped a source is for people to read whole, not squeezed into a column.
        for c in self.cursors.iter().filter(|c| c.stopped.is_some()) {
            text.push_str(&format!("{} stopped: {}\n", c.source, c.stopped.as_deref().unwrap_or_default()));
        }
        text
    }
}

#[derive(Serialize)]
struct Contracts {
    contracts: Vec<ContractRow>,
}

impl Render for Contracts {
    fn kind(&self) -> &'static str {
        "inspect-store.contracts"
    }

    fn human(&self, out: &Output) -> String {
        if self.contracts.is_empty() {
            return "no contracts match\n".into();
        }
        let mut table = out.table(["chain", "address", "source", "origin", "created at"]);
        for c in &self.contracts {
            table.add_row([
                c.chain.clone(),
                c.address.to_checksum(None),
                c.source.clone(),
                c.factory
                    .map_or("configured".into(), |f| format!("child of {}", short(&f.to_checksum(None)))),
                match (c.created_block, c.created_log_index) {
                    (Some(b), Some(i)) => format!("block {b} log {i}"),
                    _ => "-".into(),
                },
            ]);
        }
        format!("{table}\n{} shown\n", self.contracts.len())
    }
}

#[derive(Serialize)]
struct Events {
    events: Vec<EventRow>,
}

impl Render for Events {
    fn kind(&self) -> &'static str {
        "inspect-store.events"
    }

    fn human(&self, out: &Output) -> String {
        if self.events.is_empty() {
            return "no events match\n".into();
        }
        let mut table = out.table(["chain", "block", "log", "source", "address", "event", "fields"]);
        for e in &self.events {
            let event = match (&e.event, &e.fields) {
                (Some(name), Some(_)) => name.clone(),
                (Some(name), None) => format!("{name} (undecoded)"),
                (None, _) => {
                    format!("? {}", e.topics.first().map(|t| short(&t.to_string())).unwrap_or_default())
                }
            };
            let fields = match (&e.fields, &e.decode_error) {
                (Some(serde_json::Value::Object(map)), _) => map
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_string)))
                    .collect::<Vec<_>>()
                    .join(" "),
                (_, Some(err)) => err.clone(),
                _ => format!("data {} bytes", e.data.len()),
            };
            table.add_row([
                e.chain.clone(),
                e.block.to_string(),
                e.log_index.to_string(),
                e.source.clone(),
                short(&e.address.to_checksum(None)),
                event,
                fields,
            ]);
        }
        format!("{table}\n{} shown\n", self.events.len())
    }
}

#[derive(Serialize)]
struct Reorgs {
    reorgs: Vec<ReorgRow>,
}

impl Render for Reorgs {
    fn kind(&self) -> &'static str {
        "inspect-store.reorgs"
    }

    fn human(&self, out: &Output) -> String {
        if self.reorgs.is_empty() {
            return "no reorgs seen\n".into();
        }
        let mut table = out.table([
            "chain",
            "#",
            "source",
            "from block",
            "depth",
            "events removed",
            "children removed",
            "seen",
        ]);
        for r in &self.reorgs {
            table.add_row([
                r.chain.clone(),
                r.seq.to_string(),
                r.source.clone(),
                r.from_block.to_string(),
                r.depth.to_string(),
                r.removed_events.to_string(),
                r.removed_contracts.to_string(),
                ago(r.detected_at),
            ]);
        }
        format!("{table}\n")
    }
}

/// `0x1234…abcd`.
fn short(hex: &str) -> String {
    if hex.len() <= 14 { hex.to_string() } else { format!("{}…{}", &hex[..6], &hex[hex.len() - 4..]) }
}

/// "12s ago", "3m ago".
fn ago(unix: u64) -> String {
    let secs = crate::store::now().saturating_sub(unix);
    let d = std::time::Duration::from_secs(secs);
    format!("{} ago", humantime::format_duration(d))
}

#[derive(serde::Serialize)]
struct SummaryReport {
    #[serde(flatten)]
    summary: Summary,
    /// What each `seda-prover` destination last said, as `inspect-store provers` shows it.
    provers: Vec<ProverRow>,
}

impl Render for SummaryReport {
    fn kind(&self) -> &'static str {
        "inspect-store.summary"
    }

    fn human(&self, out: &Output) -> String {
        let s = &self.summary;
        let mut about = out.table(["store", ""]);
        about.add_row(["file", s.path.as_str()]);
        about.add_row(["size", &format_size(s.file_size)]);
        about.add_row(["schema", &format!("v{}", s.meta.schema_version)]);
        about.add_row(["created by", s.meta.created_by.as_deref().unwrap_or("-")]);
        about.add_row(["config fingerprint", s.meta.config_fingerprint.as_deref().unwrap_or("-")]);
        if let Some(holder) = &s.meta.holder {
            about.add_row(["last writer", &holder.to_string()]);
        }
        let mut tables = out.table(["table", "rows"]);
        for t in &s.tables {
            tables.add_row([t.table.to_string(), t.rows.to_string()]);
        }
        let mut text = format!("{about}\n{tables}\n");
        if s.cursors.is_empty() {
            text.push_str("no cursors yet: no source has been ingested\n");
        } else {
            let mut cursors = out.table(["source", "next", "last hash"]);
            for c in &s.cursors {
                cursors.add_row([
                    c.source.clone(),
                    c.next.to_string(),
                    c.last_block_hash.clone().unwrap_or_default(),
                ]);
            }
            text.push_str(&format!("{cursors}\n"));
        }
        if !self.provers.is_empty() {
            let mut provers = out.table(["prover target", "chain", "last batch", "behind", "paused"]);
            for p in &self.provers {
                provers.add_row([
                    p.target.clone(),
                    p.chain.clone(),
                    p.last_batch.to_string(),
                    batches::behind(out, p),
                    batches::paused(out, p.paused),
                ]);
            }
            text.push_str(&format!("{provers}\n"));
        }
        text
    }
}

fn format_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
