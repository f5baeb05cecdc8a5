//! Where delivery stands per destination chain at the end of a command: the report `push`,
//! `backfill --deliver` (and, later, `watch`'s summary) print, as a table or JSON.

use serde::Serialize;

use crate::engine::deliver::{ChainStatus, Counts};
use crate::output::Output;

/// Where delivery to one chain stands at the end of a command.
#[derive(Debug, Serialize)]
pub struct ChainReport {
    pub chain: String,
    signer: String,
    #[serde(flatten)]
    counts: Counts,
    pub left: u64,
    transactions: u64,
    bumps: u64,
    next_nonce: u64,
    pub problem: Option<ProblemReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_send: Vec<String>,
    /// Deliveries that failed for good on this run, with their reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// How the run went where it was not plain, e.g. intermediate SEDA batches and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Why a chain is paused or failing: a stable code for scripts, the message for people.
#[derive(Debug, Serialize)]
pub struct ProblemReport {
    pub code: &'static str,
    pub message: String,
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
            notes: s.notes,
        }
    }
}

/// The per-chain table of `push` (and `backfill --deliver`).
pub fn chains_table(out: &Output, chains: &[ChainReport]) -> String {
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
            // The code first: what a script or an alert greps for, the same as in the JSON.
            c.problem.as_ref().map(|p| format!("{}: {}", p.code, p.message)).unwrap_or_default(),
        ]);
    }
    format!("{table}\n")
}
