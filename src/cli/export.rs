//! `ferry export`: events, contracts, deliveries, transaction intents and SEDA batches as JSON
//! lines or CSV, or raw tables as JSON lines; streamed row by row in constant memory, read-only.

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use eyre::WrapErr;

use super::filters::{ConfigNames, EventFilterArgs, StateArg};
use super::inspect_store::batches::SedaNames;
use super::{Ctx, after_help, codes};
use crate::exit::{Exit, ExitError};
use crate::store::query::{ContractRow, EventRow, Query};
use crate::store::query_deliver::{
    DeliveryFilter, DeliveryQuery, DeliveryRow, IntentFilter, IntentRow, Order, intent_state_name,
};
use crate::store::query_seda::{BatchFilter, BatchRow, SedaQuery};
use crate::store::{dump, tables};

/// Export events, contracts, deliveries, transactions or SEDA batches as JSON lines or CSV, or raw
/// tables as JSON lines (read-only; works while `watch` runs).
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry export events --format csv --out events.csv
  ferry export events --chain base --event Approved --from-block 21000000 | jq .fields
  ferry export contracts --format csv
  ferry export deliveries --state failed --format csv --out failed.csv
  ferry export txs --chain base | jq .tx_hash
  ferry export batches --source seda | jq '.signatures | length'
  ferry export batches --format csv --limit 1000 --out batches.csv
  ferry export                             meta and every table with rows, raw, to stdout
  ferry export --table events --out ev.jsonl

`events`, `contracts`, `deliveries`, `txs` and `batches` write one row per line, with the fields
`inspect-store --json` shows. CSV has a column per field: lists joined with `;`, a delivery's
receipt as `receipt_*` columns, a batch's validator as `operator:address:power` and a signature
as `operator:0x…`.
Without them, each line is {\"table\": …, \"key\": {…}, \"value\": {…}}, keys and records decoded.", &[codes::OK, codes::FAILURE, codes::USAGE, codes::STORE, (130, "interrupted; an --out file is not written")]))]
pub struct ExportArgs {
    /// Rows to export. Without it, raw tables (see --table).
    #[arg(value_enum, value_name = "WHAT")]
    pub what: Option<What>,
    /// Row format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl, requires = "what")]
    pub format: Format,
    #[command(flatten)]
    pub filter: EventFilterArgs,
    /// Only deliveries to this target (`deliveries`).
    #[arg(long, value_name = "NAME", requires = "what")]
    pub target: Option<String>,
    /// Only deliveries in this state (`deliveries`).
    #[arg(long, value_enum, requires = "what")]
    pub state: Option<StateArg>,
    /// At most this many rows.
    #[arg(long, requires = "what")]
    pub limit: Option<usize>,
    /// Only this raw table (repeatable). Default: `meta` and every table that has rows.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(tables::ALL), conflicts_with = "what")]
    pub table: Vec<String>,
    /// Write to this file (atomically: a temp file renamed when complete) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// Ingested events with decoded fields.
    Events,
    /// Watched contracts: configured ones and factory children.
    Contracts,
    /// Deliveries, with ids as `inspect-store deliveries` shows them.
    Deliveries,
    /// Transaction intents: each nonce signed, per chain and signer.
    Txs,
    /// SEDA batches, whole: header, validator entries, signatures and result ids.
    Batches,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

impl ExportArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        self.check_filters()?;
        let store = ctx.open_read_store()?;
        let filter = self.filter.resolve(ctx)?;
        let (sink, raw) = Sink::open(self.out.as_deref())?;
        let mut writer = BufWriter::with_capacity(1 << 16, raw);
        let limit = self.limit.unwrap_or(usize::MAX);
        let cancel = ctx.cancel.clone();
        let mut rows = 0u64;
        // A write error (a full disk, a closed pipe) stops the rows and fails the export.
        let mut failed: Option<std::io::Error> = None;
        let result = (|| -> eyre::Result<()> {
            match self.what {
                Some(What::Events) => {
                    let query = Query::new(&store, ConfigNames::load(ctx).chains)?;
                    let mut rows_out = RowWriter::new(self.format, &mut writer, EVENT_COLUMNS);
                    query.events(&filter, &mut |row| {
                        rows += 1;
                        if let Err(e) = rows_out.write(&row, || event_record(&row)) {
                            failed = Some(e);
                            return ControlFlow::Break(());
                        }
                        flow((rows as usize) < limit && !cancel.is_cancelled())
                    })?;
                    if let Some(e) = failed.take() {
                        return Err(e).wrap_err("cannot write the export");
                    }
                    rows_out.finish().wrap_err("cannot write the export")?;
                }
                Some(What::Contracts) => {
                    let query = Query::new(&store, ConfigNames::load(ctx).chains)?;
                    let mut rows_out = RowWriter::new(self.format, &mut writer, CONTRACT_COLUMNS);
                    query.contracts(filter.chain, filter.address, &mut |row| {
                        rows += 1;
                        if let Err(e) = rows_out.write(&row, || contract_record(&row)) {
                            failed = Some(e);
                            return ControlFlow::Break(());
                        }
                        flow((rows as usize) < limit && !cancel.is_cancelled())
                    })?;
                    if let Some(e) = failed.take() {
                        return Err(e).wrap_err("cannot write the export");
                    }
                    rows_out.finish().wrap_err("cannot write the export")?;
                }
                Some(What::Deliveries) => {
                    let names = ConfigNames::load(ctx);
                    let query = DeliveryQuery::new(&store, names.chains.clone())?;
                    names.check_target(&query, self.target.as_deref())?;
                    let filter = DeliveryFilter {
                        target: self.target.clone(),
                        chain: filter.chain,
                        state: self.state.map(Into::into),
                    };
                    let mut rows_out = RowWriter::new(self.format, &mut writer, DELIVERY_COLUMNS);
                    query.deliveries(&filter, &mut |row| {
                        rows += 1;
                        if let Err(e) = rows_out.write(&row, || delivery_record(&row)) {
                            failed = Some(e);
                            return ControlFlow::Break(());
                        }
                        flow((rows as usize) < limit && !cancel.is_cancelled())
                    })?;
                    if let Some(e) = failed.take() {
                        return Err(e).wrap_err("cannot write the export");
                    }
                    rows_out.finish().wrap_err("cannot write the export")?;
                }
                Some(What::Txs) => {
                    let query = DeliveryQuery::new(&store, ConfigNames::load(ctx).chains)?;
                    let filter = IntentFilter { chain: filter.chain, open: false };
                    let mut rows_out = RowWriter::new(self.format, &mut writer, INTENT_COLUMNS);
                    query.intents(filter, Order::OldestFirst, &mut |row| {
                        rows += 1;
                        if let Err(e) = rows_out.write(&row, || intent_record(&row)) {
                            failed = Some(e);
                            return ControlFlow::Break(());
                        }
                        flow((rows as usize) < limit && !cancel.is_cancelled())
                    })?;
                    if let Some(e) = failed.take() {
                        return Err(e).wrap_err("cannot write the export");
                    }
                    rows_out.finish().wrap_err("cannot write the export")?;
                }
                Some(What::Batches) => {
                    let seda = SedaNames::load(ctx);
                    let query = SedaQuery::new(&store, seda.names.chains.clone())?;
                    seda.check_source(&query, filter.source.as_deref())?;
                    let filter = BatchFilter { source: filter.source.clone(), from: None, to: None };
                    let mut rows_out = RowWriter::new(self.format, &mut writer, BATCH_COLUMNS);
                    query.batches(&filter, Order::OldestFirst, &mut |row| {
                        rows += 1;
                        if let Err(e) = rows_out.write(&row, || batch_record(&row)) {
                            failed = Some(e);
                            return ControlFlow::Break(());
                        }
                        flow((rows as usize) < limit && !cancel.is_cancelled())
                    })?;
                    if let Some(e) = failed.take() {
                        return Err(e).wrap_err("cannot write the export");
                    }
                    rows_out.finish().wrap_err("cannot write the export")?;
                }
                None => {
                    let txn = store.read()?;
                    let chosen: Vec<&str> = if self.table.is_empty() {
                        let mut with_rows = Vec::new();
                        for name in tables::ALL {
                            if name == "meta" || dump::count_rows(store.path(), &txn, name)? > 0 {
                                with_rows.push(name);
                            }
                        }
                        with_rows
                    } else {
                        self.table.iter().map(String::as_str).collect()
                    };
                    for table in &chosen {
                        if cancel.is_cancelled() {
                            break;
                        }
                        rows += dump::dump_table(store.path(), &txn, table, &mut |(key, value)| {
                            serde_json::to_writer(
                                &mut writer,
                                &serde_json::json!({ "table": table, "key": key, "value": value }),
                            )?;
                            writer.write_all(b"\n")
                        })?;
                    }
                }
            }
            writer.flush().wrap_err("cannot write the export")?;
            Ok(())
        })();
        drop(writer);
        sink.finish(result, ctx.cancel.is_cancelled(), rows)?;
        Ok(Exit::Ok)
    }
}

impl ExportArgs {
    /// A filter flag given with rows it cannot filter is a mistake (exit 2), never a filter
    /// silently ignored. Checked before the store is opened: a bad command line is a bad command
    /// line, whatever the store.
    fn check_filters(&self) -> Result<(), ExitError> {
        use What::*;
        let f = &self.filter;
        let flags: [(&str, bool, &[What]); 8] = [
            ("--chain", f.chain.chain.is_some(), &[Events, Contracts, Deliveries, Txs]),
            ("--address", f.address.is_some(), &[Events, Contracts]),
            ("--source", f.source.is_some(), &[Events, Batches]),
            ("--event", f.event.is_some(), &[Events]),
            ("--from-block", f.from_block.is_some(), &[Events]),
            ("--to-block", f.to_block.is_some(), &[Events]),
            ("--target", self.target.is_some(), &[Deliveries]),
            ("--state", self.state.is_some(), &[Deliveries]),
        ];
        for (flag, given, valid) in flags {
            if given && !self.what.is_some_and(|w| valid.contains(&w)) {
                let valid: Vec<String> =
                    valid.iter().map(|w| format!("`ferry export {}`", w.name())).collect();
                return Err(ExitError::new(Exit::Usage, format!("{flag} filters {} only", valid.join(", "))));
            }
        }
        Ok(())
    }
}

impl What {
    fn name(self) -> &'static str {
        match self {
            What::Events => "events",
            What::Contracts => "contracts",
            What::Deliveries => "deliveries",
            What::Txs => "txs",
            What::Batches => "batches",
        }
    }
}

fn flow(go_on: bool) -> ControlFlow<()> {
    if go_on { ControlFlow::Continue(()) } else { ControlFlow::Break(()) }
}

const EVENT_COLUMNS: &[&str] = &[
    "chain",
    "chain_id",
    "block",
    "log_index",
    "source",
    "address",
    "event",
    "fields",
    "decode_error",
    "tx_hash",
    "block_hash",
    "topics",
    "data",
];

fn event_record(e: &EventRow) -> Vec<String> {
    vec![
        e.chain.clone(),
        e.chain_id.to_string(),
        e.block.to_string(),
        e.log_index.to_string(),
        e.source.clone(),
        e.address.to_checksum(None),
        e.event.clone().unwrap_or_default(),
        e.fields.as_ref().map(|f| f.to_string()).unwrap_or_default(),
        e.decode_error.clone().unwrap_or_default(),
        e.tx_hash.to_string(),
        e.block_hash.to_string(),
        joined(&e.topics),
        e.data.to_string(),
    ]
}

const CONTRACT_COLUMNS: &[&str] =
    &["chain", "chain_id", "address", "source", "factory", "created_block", "created_log_index"];

fn contract_record(c: &ContractRow) -> Vec<String> {
    vec![
        c.chain.clone(),
        c.chain_id.to_string(),
        c.address.to_checksum(None),
        c.source.clone(),
        c.factory.map(|f| f.to_checksum(None)).unwrap_or_default(),
        c.created_block.map(|b| b.to_string()).unwrap_or_default(),
        c.created_log_index.map(|i| i.to_string()).unwrap_or_default(),
    ]
}

const DELIVERY_COLUMNS: &[&str] = &[
    "id",
    "target",
    "chain",
    "chain_id",
    "item",
    "state",
    "attempts",
    "signer",
    "nonce",
    "tx_hash",
    "tx_hashes",
    "receipt_tx_hash",
    "receipt_block",
    "receipt_block_hash",
    "receipt_success",
    "receipt_gas_used",
    "receipt_effective_gas_price",
    "reason",
    "retryable",
    "next_attempt_at",
    "ack",
    "created_at",
    "updated_at",
];

fn delivery_record(d: &DeliveryRow) -> Vec<String> {
    let receipt = d.receipt.as_ref();
    vec![
        d.id.clone(),
        d.target.clone(),
        d.chain.clone(),
        d.chain_id.to_string(),
        d.item.to_string(),
        d.state.as_str().to_string(),
        d.attempts.to_string(),
        opt(d.signer.map(|s| s.to_checksum(None))),
        opt(d.nonce),
        opt(d.tx_hash),
        joined(&d.tx_hashes),
        opt(receipt.map(|r| r.tx_hash)),
        opt(receipt.map(|r| r.block)),
        opt(receipt.map(|r| r.block_hash)),
        opt(receipt.map(|r| r.success)),
        opt(receipt.map(|r| r.gas_used)),
        opt(receipt.map(|r| r.effective_gas_price)),
        d.reason.clone().unwrap_or_default(),
        d.retryable.to_string(),
        opt(d.next_attempt_at),
        d.ack.clone().unwrap_or_default(),
        d.created_at.to_string(),
        d.updated_at.to_string(),
    ]
}

const INTENT_COLUMNS: &[&str] = &[
    "chain",
    "chain_id",
    "signer",
    "nonce",
    "state",
    "tx_hash",
    "replaced_tx_hashes",
    "cancel_tx_hash",
    "to",
    "gas_limit",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "max_fee_gwei",
    "priority_fee_gwei",
    "deliveries",
    "created_at",
    "sent_at",
    "mined_tx_hash",
];

fn intent_record(t: &IntentRow) -> Vec<String> {
    vec![
        t.chain.clone(),
        t.chain_id.to_string(),
        t.signer.to_checksum(None),
        t.nonce.to_string(),
        intent_state_name(t.state).to_string(),
        t.tx_hash.to_string(),
        joined(&t.replaced_tx_hashes),
        opt(t.cancel_tx_hash),
        t.to.to_checksum(None),
        t.gas_limit.to_string(),
        t.max_fee_per_gas.to_string(),
        opt(t.max_priority_fee_per_gas),
        t.max_fee_gwei.clone(),
        t.priority_fee_gwei.clone().unwrap_or_default(),
        joined(&t.deliveries),
        t.created_at.to_string(),
        opt(t.sent_at),
        opt(t.mined_tx_hash),
    ]
}

const BATCH_COLUMNS: &[&str] = &[
    "source",
    "source_id",
    "item",
    "number",
    "block_height",
    "batch_id",
    "validators_root",
    "results_root",
    "proving_metadata",
    "anchor",
    "fetched_at",
    "validators",
    "signatures",
    "result_ids",
];

/// A batch's scalars, then its lists `;`-joined: a validator as `operator:address:power`, a
/// signature as `operator:0x…` (operator addresses are bech32 or base64: neither holds `:`).
fn batch_record(b: &BatchRow) -> Vec<String> {
    let validators: Vec<String> = b
        .validators
        .iter()
        .map(|v| format!("{}:{}:{}", v.operator, v.eth_address.to_checksum(None), v.power))
        .collect();
    let signatures: Vec<String> =
        b.signatures.iter().map(|s| format!("{}:{}", s.operator, s.signature)).collect();
    vec![
        b.source.clone(),
        b.source_id.to_string(),
        b.item.to_string(),
        b.number.to_string(),
        b.block_height.to_string(),
        b.batch_id.to_string(),
        b.validators_root.to_string(),
        b.results_root.to_string(),
        b.proving_metadata.to_string(),
        b.anchor.to_string(),
        b.fetched_at.to_string(),
        joined(&validators),
        joined(&signatures),
        joined(&b.result_ids),
    ]
}

/// An absent value is an empty CSV field.
fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// A list in one CSV field, `;`-separated.
fn joined<T: ToString>(values: &[T]) -> String {
    values.iter().map(ToString::to_string).collect::<Vec<_>>().join(";")
}

/// Rows out as JSON lines or CSV (with a header line).
enum RowWriter<'w, W: Write> {
    Jsonl(&'w mut W),
    Csv(Box<csv::Writer<&'w mut W>>),
}

impl<'w, W: Write> RowWriter<'w, W> {
    fn new(format: Format, out: &'w mut W, columns: &[&str]) -> Self {
        match format {
            Format::Jsonl => RowWriter::Jsonl(out),
            Format::Csv => {
                let mut csv = csv::Writer::from_writer(out);
                let _ = csv.write_record(columns);
                RowWriter::Csv(Box::new(csv))
            }
        }
    }

    fn write<T: serde::Serialize>(
        &mut self,
        row: &T,
        record: impl FnOnce() -> Vec<String>,
    ) -> std::io::Result<()> {
        match self {
            RowWriter::Jsonl(out) => {
                serde_json::to_writer(&mut **out, row)?;
                out.write_all(b"\n")
            }
            RowWriter::Csv(csv) => csv.write_record(record()).map_err(std::io::Error::other),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            RowWriter::Jsonl(out) => out.flush(),
            RowWriter::Csv(mut csv) => csv.flush(),
        }
    }
}

/// Where an export goes: stdout, or a temp file renamed over `--out` once complete.
struct Sink<'a> {
    out: Option<&'a Path>,
    temp: Option<PathBuf>,
}

impl<'a> Sink<'a> {
    fn open(out: Option<&'a Path>) -> eyre::Result<(Self, Box<dyn Write>)> {
        let Some(out) = out else {
            return Ok((Self { out: None, temp: None }, Box::new(std::io::stdout().lock())));
        };
        if out.is_dir() {
            return Err(ExitError::new(Exit::Usage, format!("--out {} is a directory", out.display())).into());
        }
        let temp = out.with_file_name(format!(
            ".{}.tmp-{}",
            out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            std::process::id()
        ));
        let file =
            std::fs::File::create(&temp).wrap_err_with(|| format!("cannot create {}", temp.display()))?;
        Ok((Self { out: Some(out), temp: Some(temp) }, Box::new(file)))
    }

    /// Moves the temp file into place when everything was written; removes it otherwise.
    fn finish(self, result: eyre::Result<()>, cancelled: bool, rows: u64) -> eyre::Result<()> {
        match (result, self.out, self.temp) {
            (Ok(()), Some(out), Some(temp)) if !cancelled => {
                // On disk before it takes the name: a crash never leaves a short file in place.
                let synced = std::fs::File::open(&temp).and_then(|f| f.sync_all());
                if let Err(e) = synced {
                    let _ = std::fs::remove_file(&temp);
                    return Err(e).wrap_err_with(|| format!("cannot write the export to {}", out.display()));
                }
                std::fs::rename(&temp, out)
                    .wrap_err_with(|| format!("cannot move the export to {}", out.display()))?;
                tracing::info!("exported {rows} rows to {}", out.display());
                Ok(())
            }
            (result, _, temp) => {
                if let Some(temp) = temp {
                    let _ = std::fs::remove_file(temp);
                }
                result
            }
        }
    }
}
