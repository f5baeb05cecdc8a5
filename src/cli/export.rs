//! `ferry export`: the store's tables as JSON lines, streamed, read-only.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use eyre::WrapErr;

use super::{Ctx, after_help};
use crate::exit::{Exit, ExitError};
use crate::store::{ReadStore, dump, tables};

/// Export the store's tables as JSON lines (read-only; works while `watch` runs).
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry export                             meta and every table with rows, to stdout
  ferry export --table events --out ev.jsonl
  ferry export --table meta --table cursors | jq .

Each line is {\"table\": …, \"key\": {…}, \"value\": {…}} with keys and records decoded."))]
pub struct ExportArgs {
    /// Only this table (repeatable). Default: `meta` and every table that has rows.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(tables::ALL))]
    pub table: Vec<String>,
    /// Write to this file (atomically: a temp file renamed when complete) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

impl ExportArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let path = ctx.store_path_without_config()?;
        let store = ReadStore::open(&path)?;
        let txn = store.read()?;
        let chosen: Vec<&str> = if self.table.is_empty() {
            let mut with_rows = Vec::new();
            for name in tables::ALL {
                if name == "meta" || dump::count_rows(&path, &txn, name)? > 0 {
                    with_rows.push(name);
                }
            }
            with_rows
        } else {
            self.table.iter().map(String::as_str).collect()
        };

        let (sink, temp): (Box<dyn Write>, Option<PathBuf>) = match &self.out {
            None => (Box::new(std::io::stdout().lock()), None),
            Some(out) => {
                if out.exists() && out.is_dir() {
                    return Err(ExitError::new(
                        Exit::Usage,
                        format!("--out {} is a directory", out.display()),
                    )
                    .into());
                }
                let temp = out.with_file_name(format!(
                    ".{}.tmp-{}",
                    out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    std::process::id()
                ));
                let file = std::fs::File::create(&temp)
                    .wrap_err_with(|| format!("cannot create {}", temp.display()))?;
                (Box::new(file), Some(temp))
            }
        };
        let mut writer = BufWriter::with_capacity(1 << 16, sink);
        let mut rows = 0u64;
        let result = (|| -> eyre::Result<()> {
            for table in &chosen {
                if ctx.cancel.is_cancelled() {
                    break;
                }
                rows += dump::dump_table(&path, &txn, table, &mut |(key, value)| {
                    serde_json::to_writer(
                        &mut writer,
                        &serde_json::json!({ "table": table, "key": key, "value": value }),
                    )?;
                    writer.write_all(b"\n")
                })?;
            }
            writer.flush()?;
            Ok(())
        })();
        match (result, &self.out, temp) {
            (Ok(()), Some(out), Some(temp)) if !ctx.cancel.is_cancelled() => {
                drop(writer);
                std::fs::rename(&temp, out)
                    .wrap_err_with(|| format!("cannot move the export to {}", out.display()))?;
                tracing::info!("exported {rows} rows from {} table(s) to {}", chosen.len(), out.display());
            }
            (result, _, temp) => {
                drop(writer);
                if let Some(temp) = temp {
                    let _ = std::fs::remove_file(temp);
                }
                result?;
            }
        }
        Ok(Exit::Ok)
    }
}
