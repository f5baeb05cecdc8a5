//! `ferry inspect-store batches` and `provers`: the SEDA batches the store holds, and what each
//! `seda-prover` destination last said with how far it is behind them. Also what `export batches`
//! and the summary share: the `--source` check and the config's names and routes.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use clap::Args;
use serde::Serialize;

use super::{ago, short};
use crate::cli::Ctx;
use crate::cli::filters::{ChainArg, ConfigNames};
use crate::exit::{Exit, ExitError};
use crate::output::{Output, Paint, Render};
use crate::store::ReadStore;
use crate::store::query_deliver::DeliveryQuery;
use crate::store::query_seda::{BatchFilter, BatchRow, Order, ProverFilter, ProverRow, Routing, SedaQuery};

/// Stored SEDA batches: one row per batch, the newest kept by `--limit`.
#[derive(Debug, Args)]
pub struct BatchesArgs {
    /// Only batches of this seda source.
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Only batches numbered at or above this.
    #[arg(long, value_name = "N")]
    pub from: Option<u64>,
    /// Only batches numbered at or below this.
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,
    /// At most this many rows, the newest; the footer still counts every match.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// What each `seda-prover` destination's Prover last said, and how far it is behind.
#[derive(Debug, Args)]
pub struct ProversArgs {
    /// Only this seda-prover target.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    #[command(flatten)]
    pub chain: ChainArg,
}

/// What the config (when there is one) says that the SEDA views use: chain names, target names,
/// seda source names, and which seda sources each target is fed by.
#[derive(Debug, Default)]
pub struct SedaNames {
    pub names: ConfigNames,
    /// `None` without a config (or with one that does not load).
    pub routing: Option<Routing>,
    pub seda_sources: BTreeSet<String>,
}

impl SedaNames {
    pub fn load(ctx: &Ctx) -> Self {
        let names = ConfigNames::load(ctx);
        // A second read of the config for what `ConfigNames` does not keep (routes). It is a
        // few milliseconds in a read-only view; a config that does not load was already reported
        // by `ConfigNames::load` and costs only the routing here.
        let loaded = ctx.global.config.exists().then(|| ctx.load_config_without_env().ok()).flatten();
        let Some(loaded) = loaded else { return Self { names, ..Self::default() } };
        let mut routing = Routing::new();
        let mut seda_sources = BTreeSet::new();
        for source in &loaded.resolved.seda_sources {
            seda_sources.insert(source.name.clone());
            for route in &source.routes {
                routing.entry(route.target.clone()).or_default().push(source.name.clone());
            }
        }
        Self { names, routing: Some(routing), seda_sources }
    }

    /// A `--source` the store has never seen is a typo unless the config declares it as a seda
    /// source (then it has fetched nothing yet, and no rows is the right answer).
    pub fn check_source(&self, query: &SedaQuery<'_>, source: Option<&str>) -> eyre::Result<()> {
        let Some(name) = source else { return Ok(()) };
        if query.source_names().any(|n| n == name) || self.seda_sources.contains(name) {
            return Ok(());
        }
        let known: Vec<String> =
            query.batch_sources()?.into_iter().chain(self.seda_sources.clone()).collect();
        let known: Vec<&str> =
            known.iter().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect();
        let mut message = if known.is_empty() {
            format!("--source {name}: no such seda source (the store holds no batches yet)")
        } else {
            format!("--source {name}: no such seda source (there are: {})", known.join(", "))
        };
        if let Some(near) = crate::config::load::nearest(name, &known) {
            message.push_str(&format!("; did you mean `{near}`?"));
        }
        Err(ExitError::new(Exit::Usage, message).into())
    }

    /// The Prover rows of `filter`, names and routing from the config.
    pub fn provers(&self, store: &ReadStore, filter: &ProverFilter) -> eyre::Result<Vec<ProverRow>> {
        let query = SedaQuery::new(store, self.names.chains.clone())?;
        Ok(query.provers(filter, self.routing.as_ref())?)
    }
}

impl BatchesArgs {
    pub fn run(self, ctx: &Ctx, store: &ReadStore) -> eyre::Result<()> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(ExitError::new(Exit::Usage, format!("--from {from} is after --to {to}")).into());
        }
        let seda = SedaNames::load(ctx);
        let query = SedaQuery::new(store, seda.names.chains.clone())?;
        seda.check_source(&query, self.source.as_deref())?;
        let filter = BatchFilter { source: self.source, from: self.from, to: self.to };
        let matched = query.count_batches(&filter)?;
        // Newest first, so that the limit keeps the batches just fetched (what an operator
        // looks at); then shown oldest to newest, as `txs` shows nonces, so that the newest
        // batch sits above the footer, where a terminal leaves the eye after scrolling.
        let mut rows = Vec::new();
        if self.limit > 0 {
            query.batches(&filter, Order::NewestFirst, &mut |row| {
                rows.push(BatchLine::from(row));
                if rows.len() >= self.limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            })?;
        }
        rows.reverse();
        ctx.out.emit(&Batches { batches: rows, matched })
    }
}

impl ProversArgs {
    pub fn run(self, ctx: &Ctx, store: &ReadStore) -> eyre::Result<()> {
        let seda = SedaNames::load(ctx);
        if self.target.is_some() {
            let query = DeliveryQuery::new(store, seda.names.chains.clone())?;
            seda.names.check_target(&query, self.target.as_deref())?;
        }
        let filter = ProverFilter { target: self.target, chain: self.chain.resolve(ctx)? };
        let filtered = filter.target.is_some() || filter.chain.is_some();
        ctx.out.emit(&Provers { provers: seda.provers(store, &filter)?, filtered })
    }
}

/// A batch as the view shows it: the header in full, the lists counted (`export batches` has
/// them whole).
#[derive(Debug, Serialize)]
struct BatchLine {
    source: String,
    source_id: u32,
    item: String,
    number: u64,
    block_height: u64,
    batch_id: alloy::primitives::B256,
    validators_root: alloy::primitives::B256,
    results_root: alloy::primitives::B256,
    proving_metadata: alloy::primitives::Bytes,
    validator_count: usize,
    signature_count: usize,
    result_count: usize,
    anchor: bool,
    fetched_at: u64,
}

impl From<BatchRow> for BatchLine {
    fn from(b: BatchRow) -> Self {
        BatchLine {
            item: b.item.to_string(),
            validator_count: b.validators.len(),
            signature_count: b.signatures.len(),
            result_count: b.result_ids.len(),
            source: b.source,
            source_id: b.source_id,
            number: b.number,
            block_height: b.block_height,
            batch_id: b.batch_id,
            validators_root: b.validators_root,
            results_root: b.results_root,
            proving_metadata: b.proving_metadata,
            anchor: b.anchor,
            fetched_at: b.fetched_at,
        }
    }
}

#[derive(Serialize)]
struct Batches {
    batches: Vec<BatchLine>,
    /// Every batch that matched, `--limit` aside.
    matched: u64,
}

impl Render for Batches {
    fn kind(&self) -> &'static str {
        "inspect-store.batches"
    }

    fn human(&self, out: &Output) -> String {
        if self.matched == 0 {
            return "no batches match\n".into();
        }
        let mut table = out.table([
            "source",
            "number",
            "block height",
            "batch id",
            "validators",
            "validators root",
            "signatures",
            "results",
            "anchor",
            "fetched",
        ]);
        for b in &self.batches {
            table.add_row([
                b.source.clone(),
                b.number.to_string(),
                b.block_height.to_string(),
                short(&b.batch_id.to_string()),
                b.validator_count.to_string(),
                short(&b.validators_root.to_string()),
                b.signature_count.to_string(),
                b.result_count.to_string(),
                if b.anchor { out.paint("yes", Paint::Dim) } else { "no".into() },
                ago(b.fetched_at),
            ]);
        }
        let shown = self.batches.len() as u64;
        let mut text = if shown < self.matched {
            format!("{shown} shown of {} (the newest; raise --limit for more)", self.matched)
        } else {
            format!("{shown} shown")
        };
        if self.batches.iter().any(|b| b.anchor) {
            text.push_str(" · anchor: kept for its validators (who sign the next batch), never delivered");
        }
        format!("{table}\n{text}\n")
    }
}

#[derive(Serialize)]
struct Provers {
    provers: Vec<ProverRow>,
    #[serde(skip)]
    filtered: bool,
}

impl Render for Provers {
    fn kind(&self) -> &'static str {
        "inspect-store.provers"
    }

    fn human(&self, out: &Output) -> String {
        if self.provers.is_empty() {
            return if self.filtered {
                "no prover states match\n".into()
            } else {
                "no prover states yet: no seda-prover destination has been read\n".into()
            };
        }
        let mut table = out.table([
            "target",
            "chain",
            "prover",
            "last batch",
            "behind",
            "paused",
            "max batch age",
            "read",
        ]);
        for p in &self.provers {
            table.add_row([
                p.target.clone(),
                p.chain.clone(),
                short(&p.prover.to_checksum(None)),
                p.last_batch.to_string(),
                behind(out, p),
                paused(out, p.paused),
                p.max_batch_age.to_string(),
                ago(p.read_at),
            ]);
        }
        format!("{table}\n{}\n", behind_note(&self.provers))
    }
}

/// What `behind` counts from, said once under the table.
fn behind_note(rows: &[ProverRow]) -> String {
    let first = &rows[0].sources;
    if first.is_empty() {
        return "behind: no batch stored to compare with".into();
    }
    if rows.iter().all(|p| p.sources == *first) {
        return format!(
            "behind: the highest stored batch of {} minus the destination's last batch",
            first.join(", ")
        );
    }
    "behind: the highest stored batch of the seda source routed to the target minus the \
     destination's last batch"
        .into()
}

pub(super) fn behind(out: &Output, p: &ProverRow) -> String {
    match p.behind {
        None => "-".into(),
        Some(0) => "0".into(),
        Some(n) => out.paint(&n.to_string(), Paint::Yellow),
    }
}

pub(super) fn paused(out: &Output, paused: bool) -> String {
    if paused { out.paint("yes", Paint::Red) } else { "no".into() }
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
    fn the_seda_views_parse_with_their_defaults() {
        match view(&["batches", "--source", "seda", "--from", "3", "--to", "9"]) {
            View::Batches(b) => {
                assert_eq!(b.source.as_deref(), Some("seda"));
                assert_eq!((b.from, b.to, b.limit), (Some(3), Some(9), 50));
            }
            other => panic!("{other:?}"),
        }
        match view(&["provers", "--target", "provers", "--chain", "base"]) {
            View::Provers(p) => {
                assert_eq!(p.target.as_deref(), Some("provers"));
                assert_eq!(p.chain.chain.as_deref(), Some("base"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["ferry", "inspect-store", "batches", "--from", "x"]).is_err());
    }
}
