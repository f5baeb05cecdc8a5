//! `ferry inspect-store deliveries` and `txs`: what was delivered where, and the transactions
//! that carried it, as tables for people or JSON. Also the pieces `export deliveries|txs` shares:
//! the `--state` values and the chain and target names the config gives.

use std::ops::ControlFlow;

use clap::Args;
use comfy_table::ColumnConstraint;
use serde::Serialize;

use super::{ago, short};
use crate::cli::Ctx;
use crate::cli::filters::{ChainArg, ConfigNames, StateArg};
use crate::output::{Output, Paint, Render};
use crate::store::ReadStore;
use crate::store::query_deliver::{
    DeliveryFilter, DeliveryQuery, DeliveryRow, IntentCounts, IntentFilter, IntentRow, MatrixRow, Order,
    StateCounts, intent_state_name,
};
use crate::store::records::{DeliveryState, IntentState};

/// Deliveries: one row per (target, destination chain, item), with the id to pass to
/// `ferry inspect-store retry`.
#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// Only deliveries to this target.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    #[command(flatten)]
    pub chain: ChainArg,
    /// Only deliveries in this state (read from the status index: cheap on a large store).
    #[arg(long, value_enum)]
    pub state: Option<StateArg>,
    /// At most this many rows; the footer still counts every match.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One row per item, one column per destination chain: which item reached which chain.
    #[arg(long)]
    pub matrix: bool,
}

/// Transaction intents: each nonce ferry signed, per chain and signer, newest nonces last.
#[derive(Debug, Args)]
pub struct TxsArgs {
    #[command(flatten)]
    pub chain: ChainArg,
    /// Only transactions not mined yet (signed or sent).
    #[arg(long)]
    pub open: bool,
    /// At most this many rows, the newest; the footer still counts every match.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

impl DeliveriesArgs {
    pub fn run(self, ctx: &Ctx, store: &ReadStore) -> eyre::Result<()> {
        let names = ConfigNames::load(ctx);
        let query = DeliveryQuery::new(store, names.chains.clone())?;
        names.check_target(&query, self.target.as_deref())?;
        let filter = DeliveryFilter {
            target: self.target.clone(),
            chain: self.chain.resolve(ctx)?,
            state: self.state.map(Into::into),
        };
        let counts = query.counts(&filter)?;
        let limit = self.limit;
        if self.matrix {
            let mut rows = Vec::new();
            if limit > 0 {
                query.matrix(&filter, &mut |row| {
                    rows.push(row);
                    if rows.len() >= limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
                })?;
            }
            return ctx.out.emit(&Matrix { rows, counts, limit });
        }
        let mut rows = Vec::new();
        if limit > 0 {
            query.deliveries(&filter, &mut |row| {
                rows.push(row);
                if rows.len() >= limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            })?;
        }
        ctx.out.emit(&Deliveries { matched: counts.total(), counts, deliveries: rows })
    }
}

impl TxsArgs {
    pub fn run(self, ctx: &Ctx, store: &ReadStore) -> eyre::Result<()> {
        let names = ConfigNames::load(ctx);
        let query = DeliveryQuery::new(store, names.chains)?;
        let filter = IntentFilter { chain: self.chain.resolve(ctx)?, open: self.open };
        // Newest first so that the limit keeps the recent nonces; every match is still counted.
        let mut rows = Vec::new();
        let mut counts = IntentCounts::default();
        query.intents(filter, Order::NewestFirst, &mut |row| {
            counts.add(row.state);
            if rows.len() < self.limit {
                rows.push(row);
            }
            ControlFlow::Continue(())
        })?;
        rows.reverse();
        ctx.out.emit(&Txs { matched: counts.total(), counts, txs: rows })
    }
}

#[derive(Serialize)]
struct Deliveries {
    deliveries: Vec<DeliveryRow>,
    /// Every delivery that matched, `--limit` aside.
    matched: u64,
    counts: StateCounts,
}

impl Render for Deliveries {
    fn kind(&self) -> &'static str {
        "inspect-store.deliveries"
    }

    fn human(&self, out: &Output) -> String {
        if self.matched == 0 {
            return "no deliveries match\n".into();
        }
        // A sink's acknowledgement (an entry id, `HTTP 200`) shows where a transaction's hash would.
        let mut table =
            out.table(["id", "state", "attempts", "nonce", "tx / ack", "block", "note", "updated"]);
        // The id is copied into `ferry inspect-store retry`: never wrap it.
        if let Some(column) = table.column_mut(0) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
        for d in &self.deliveries {
            table.add_row([
                d.id.clone(),
                paint_state(out, d.state),
                d.attempts.to_string(),
                d.nonce.map(|n| n.to_string()).unwrap_or_default(),
                d.tx_hash.map(|h| short(&h.to_string())).or_else(|| d.ack.clone()).unwrap_or_default(),
                d.receipt.as_ref().map(|r| r.block.to_string()).unwrap_or_default(),
                note(d),
                ago(d.updated_at),
            ]);
        }
        format!("{table}\n{}\n", footer(self.deliveries.len() as u64, self.matched, &self.counts))
    }
}

/// Why a delivery is where it is, and when it is tried again.
fn note(d: &DeliveryRow) -> String {
    let mut parts: Vec<String> = d.reason.iter().cloned().collect();
    let retry_at = d.next_attempt_at.filter(|_| !d.state.is_final(d.retryable));
    match (d.state, retry_at) {
        (DeliveryState::Failed, _) if !d.retryable => parts.push("permanent".into()),
        (_, Some(at)) => {
            let now = crate::store::now();
            parts.push(if at > now {
                format!("retry in {}", humantime::format_duration(std::time::Duration::from_secs(at - now)))
            } else {
                "retry due".into()
            });
        }
        _ => {}
    }
    parts.join(" · ")
}

/// "3 shown of 10 · confirmed 4 · failed 1 · pending 5".
fn footer(shown: u64, matched: u64, counts: &StateCounts) -> String {
    let mut text = if shown < matched {
        format!("{shown} shown of {matched} (raise --limit for more)")
    } else {
        format!("{matched} shown")
    };
    for state in DeliveryState::ALL {
        let n = counts.get(state);
        if n > 0 {
            text.push_str(&format!(" · {} {n}", state.as_str()));
        }
    }
    text
}

fn paint_state(out: &Output, state: DeliveryState) -> String {
    let paint = match state {
        DeliveryState::Confirmed => Paint::Green,
        DeliveryState::Failed => Paint::Red,
        DeliveryState::Skipped => Paint::Dim,
        DeliveryState::Pending | DeliveryState::Sending | DeliveryState::Sent => Paint::Yellow,
    };
    out.paint(state.as_str(), paint)
}

/// The item × chain view: one row per item, its state on each chain by chain name; `counts`
/// counts every matching delivery, `--limit` aside.
#[derive(Serialize)]
struct Matrix {
    rows: Vec<MatrixRow>,
    counts: StateCounts,
    #[serde(skip)]
    limit: usize,
}

impl Render for Matrix {
    fn kind(&self) -> &'static str {
        "inspect-store.deliveries-matrix"
    }

    fn human(&self, out: &Output) -> String {
        let Some(first) = self.rows.first() else {
            return "no deliveries match\n".into();
        };
        let mut header = vec!["target".to_string(), "item".to_string()];
        header.extend(first.chains.iter().map(|(chain, _)| chain.clone()));
        let mut table = out.table(header);
        for row in &self.rows {
            let mut cells = vec![row.target.clone(), row.item.to_string()];
            cells.extend(row.chains.iter().map(|(_, state)| match state {
                Some(state) => paint_state(out, *state),
                None => out.paint("—", Paint::Dim),
            }));
            table.add_row(cells);
        }
        let items = self.rows.len();
        let more = if items >= self.limit { " (--limit reached; there may be more)" } else { "" };
        let mut text = format!("{table}\n{items} items shown{more}; deliveries:");
        for state in DeliveryState::ALL {
            let n = self.counts.get(state);
            if n > 0 {
                text.push_str(&format!(" {} {n} ·", state.as_str()));
            }
        }
        format!("{}\n", text.trim_end_matches(" ·"))
    }
}

#[derive(Serialize)]
struct Txs {
    txs: Vec<IntentRow>,
    /// Every intent that matched, `--limit` aside.
    matched: u64,
    counts: IntentCounts,
}

impl Render for Txs {
    fn kind(&self) -> &'static str {
        "inspect-store.txs"
    }

    fn human(&self, out: &Output) -> String {
        if self.matched == 0 {
            return "no transactions match\n".into();
        }
        let mut table = out.table([
            "chain",
            "signer",
            "nonce",
            "state",
            "hash",
            "replaced",
            "cancel",
            "max fee",
            "tip",
            "gas",
            "deliveries",
            "created",
            "sent",
            "mined",
        ]);
        for t in &self.txs {
            let state = intent_state_name(t.state);
            let state = match t.state {
                IntentState::Confirmed | IntentState::Mined => out.paint(state, Paint::Green),
                IntentState::Dropped => out.paint(state, Paint::Red),
                IntentState::Signed | IntentState::Sent => out.paint(state, Paint::Yellow),
            };
            table.add_row([
                t.chain.clone(),
                short(&t.signer.to_checksum(None)),
                t.nonce.to_string(),
                state,
                short(&t.tx_hash.to_string()),
                t.replaced_tx_hashes.len().to_string(),
                t.cancel_tx_hash.map(|h| short(&h.to_string())).unwrap_or_default(),
                format!("{} gwei", t.max_fee_gwei),
                t.priority_fee_gwei.as_ref().map(|g| format!("{g} gwei")).unwrap_or_else(|| "legacy".into()),
                t.gas_limit.to_string(),
                t.deliveries.len().to_string(),
                ago(t.created_at),
                t.sent_at.map(ago).unwrap_or_default(),
                t.mined_tx_hash.map(|h| short(&h.to_string())).unwrap_or_default(),
            ]);
        }
        let shown = self.txs.len() as u64;
        let mut text = if shown < self.matched {
            format!("{shown} shown of {} (the newest; raise --limit for more)", self.matched)
        } else {
            format!("{shown} shown")
        };
        let c = &self.counts;
        for (name, n) in [
            ("signed", c.signed),
            ("sent", c.sent),
            ("mined", c.mined),
            ("dropped", c.dropped),
            ("confirmed", c.confirmed),
        ] {
            if n > 0 {
                text.push_str(&format!(" · {name} {n}"));
            }
        }
        format!("{table}\n{text}\n")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::inspect_store::View;
    use crate::cli::{Cli, Command};

    fn view(args: &[&str]) -> View {
        let cli = Cli::try_parse_from([&["ferry", "inspect-store"], args].concat()).expect("parses");
        match cli.command {
            Command::InspectStore(a) => a.view.expect("a view"),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_views_parse_with_their_defaults() {
        match view(&["deliveries", "--state", "failed", "--chain", "base", "--matrix"]) {
            View::Deliveries(d) => {
                assert_eq!(d.state, Some(super::StateArg::Failed));
                assert_eq!(d.chain.chain.as_deref(), Some("base"));
                assert!(d.matrix);
                assert_eq!(d.limit, 50);
            }
            other => panic!("{other:?}"),
        }
        match view(&["txs", "--open", "--limit", "3"]) {
            View::Txs(t) => assert!(t.open && t.limit == 3),
            other => panic!("{other:?}"),
        }
        let bad = Cli::try_parse_from(["ferry", "inspect-store", "deliveries", "--state", "lost"]);
        assert!(bad.is_err(), "an unknown state is refused by clap");
    }
}
