//! `ferry inspect-store`: what the state file holds, read-only, while `watch` runs or not.

use clap::{Args, Subcommand};

use super::{Ctx, after_help};
use crate::exit::Exit;
use crate::output::{Output, Render};
use crate::store::ReadStore;
use crate::store::dump::{self, Summary};

/// Show what the state file holds (read-only; works while `watch` runs).
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry inspect-store                       the summary: schema, size, rows per table, cursors
  ferry inspect-store summary --json        the same as JSON, for scripts
  ferry inspect-store --store /var/lib/ferry/seda.redb"))]
pub struct InspectStoreArgs {
    #[command(subcommand)]
    pub view: Option<View>,
}

#[derive(Debug, Subcommand)]
pub enum View {
    /// Schema version, file size, rows per table and source cursors (the default).
    Summary,
}

impl InspectStoreArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let path = ctx.store_path_without_config()?;
        let store = ReadStore::open(&path)?;
        match self.view.unwrap_or(View::Summary) {
            View::Summary => ctx.out.emit(&SummaryReport(dump::summary(&store)?))?,
        }
        Ok(Exit::Ok)
    }
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct SummaryReport(Summary);

impl Render for SummaryReport {
    fn human(&self, out: &Output) -> String {
        let s = &self.0;
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
                    c.last_hash.clone().unwrap_or_default(),
                ]);
            }
            text.push_str(&format!("{cursors}\n"));
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
