//! `ferry inspect-store retry|skip|cancel|resync|manage`: the operator's hands on deliveries and
//! nonces. Each opens the store read-write, so a running `watch` makes it refuse (exit 5, naming
//! the holder); each asks before changing anything on a terminal, and wants `--yes` elsewhere.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use clap::Args;
use serde::Serialize;

use crate::cli::Ctx;
use crate::config::Loaded;
use crate::engine::deliver::control::{Changed, ControlError};
use crate::engine::deliver::{Destination, destinations};
use crate::exit::{Exit, ExitError};
use crate::output::{Output, Render};
use crate::store::Store;
use crate::store::keys::{DeliveryKey, SINK_CHAIN};
use crate::store::query_deliver::DeliveryId;
use crate::store::records::DeliveryState;

mod cancel;
mod manage;
mod resync;
mod retry;
mod skip;

pub use self::cancel::CancelArgs;
pub use self::manage::ManageArgs;
pub use self::resync::ResyncArgs;
pub use self::retry::RetryArgs;
pub use self::skip::SkipArgs;

/// Deliveries named by id, or every failed one on a chain.
#[derive(Debug, Args)]
pub struct Selection {
    /// Delivery ids as `inspect-store deliveries` prints them: `<target>/<chain>/<item>`, or
    /// `<target>/<item>` for a sink.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Every failed delivery on this chain, or of this sink target (with --target, of that
    /// target only).
    #[arg(long, value_name = "CHAIN", conflicts_with = "ids")]
    pub all_failed: Option<String>,
    /// With --all-failed: only this target.
    #[arg(long, value_name = "NAME", requires = "all_failed")]
    pub target: Option<String>,
    /// Do not ask for confirmation (needed when not on a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

fn on_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks on a terminal; `--yes` skips the question; elsewhere there is nobody to ask: refused (exit 2).
pub(crate) fn confirm(yes: bool, prompt: &str) -> eyre::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !on_terminal() {
        return Err(ExitError::new(
            Exit::Usage,
            "refusing to change the store without confirmation: not on a terminal; pass --yes from a script",
        )
        .into());
    }
    let answer = dialoguer::Confirm::new().with_prompt(prompt).default(false).interact()?;
    if !answer {
        eprintln!("nothing changed");
    }
    Ok(answer)
}

/// The config and the store, read-write: a running `watch` holds it and this fails with exit 5.
fn open(ctx: &Ctx) -> eyre::Result<(Loaded, Store)> {
    let loaded = ctx.load_config()?;
    let store = Store::open(&ctx.store_path(Some(&loaded)), None)?;
    Ok((loaded, store))
}

fn refused(e: ControlError) -> eyre::Report {
    match e {
        ControlError::Refused(why) => ExitError::new(Exit::Usage, format!("nothing changed: {why}")).into(),
        ControlError::Deliver(e) => e.into(),
    }
}

fn destination(loaded: &Loaded, store: &Store, chain: &str) -> eyre::Result<Destination> {
    if !loaded.config.chains.contains_key(chain) {
        let known = signing_chains(loaded).join(", ");
        return Err(ExitError::new(
            Exit::Usage,
            format!("--chain {chain}: no such chain (chains with a signer: {known})"),
        )
        .into());
    }
    let clients = crate::engine::rpc::clients(&loaded.resolved.chains)?;
    let mut dests = destinations(&loaded.resolved, &clients, store, &[], &[chain.to_string()])?;
    match dests.pop() {
        Some(d) => Ok(d),
        None => Err(ExitError::new(
            Exit::Usage,
            format!("--chain {chain}: no evm-call target delivers to it, so ferry signs nothing there"),
        )
        .into()),
    }
}

fn signing_chains(loaded: &Loaded) -> Vec<String> {
    loaded.config.chains.iter().filter(|(_, c)| c.signer.is_some()).map(|(n, _)| n.clone()).collect()
}

/// Names for ids both ways, read once per command: targets from the store, chains from the
/// config (an id without a name shows as the number).
struct Names {
    targets: BTreeMap<u32, String>,
    chains: BTreeMap<u64, String>,
    /// Ids of the config's sink targets (their deliveries have no chain).
    sinks: std::collections::BTreeSet<u32>,
}

impl Names {
    fn read(loaded: &Loaded, store: &Store) -> eyre::Result<Self> {
        let mut chains = BTreeMap::new();
        for (name, chain) in &loaded.config.chains {
            chains.entry(chain.chain_id).or_insert_with(|| name.clone());
        }
        let targets = store.target_names()?;
        let sinks = targets
            .iter()
            .filter(|(_, name)| matches!(loaded.config.targets.get(name.as_str()), Some(t) if t.is_sink()))
            .map(|(id, _)| *id)
            .collect();
        Ok(Names { targets, chains, sinks })
    }

    /// The id `inspect-store deliveries` prints.
    fn id(&self, key: &DeliveryKey) -> String {
        let target = self.targets.get(&key.target).cloned().unwrap_or_else(|| format!("#{}", key.target));
        let chain = (key.chain != SINK_CHAIN)
            .then(|| self.chains.get(&key.chain).cloned().unwrap_or_else(|| key.chain.to_string()));
        DeliveryId { target, chain, item: key.item }.to_string()
    }

    fn target_id(&self, name: &str) -> Option<u32> {
        self.targets.iter().find(|(_, n)| *n == name).map(|(id, _)| *id)
    }

    /// A chain by config name, or by id.
    fn chain_id(&self, text: &str) -> Option<u64> {
        self.chains.iter().find(|(_, n)| *n == text).map(|(id, _)| *id).or_else(|| text.parse().ok())
    }
}

fn failed_deliveries(loaded: &Loaded, store: &Store) -> eyre::Result<Vec<(DeliveryKey, String)>> {
    let mut out = Vec::new();
    for chain in loaded.config.chains.values() {
        for (k, d) in store.deliveries_in_state(chain.chain_id, DeliveryState::Failed, 500, |_, _| true)? {
            out.push((k, d.reason.unwrap_or_default()));
        }
    }
    Ok(out)
}

impl Selection {
    /// The deliveries the ids name, or every failed one on the --all-failed chain.
    fn resolve(&self, names: &Names, store: &Store) -> eyre::Result<Vec<DeliveryKey>> {
        let usage = |m: String| eyre::Report::new(ExitError::new(Exit::Usage, m));
        if let Some(chain) = &self.all_failed {
            // A sink target's name stands for its own "chain".
            let sink = names.target_id(chain).filter(|t| names.sinks.contains(t));
            let chain_id = match sink {
                Some(_) => SINK_CHAIN,
                None => names
                    .chain_id(chain)
                    .ok_or_else(|| usage(format!("--all-failed {chain}: no such chain or sink target")))?,
            };
            let target = match &self.target {
                Some(t) => Some(
                    names.target_id(t).ok_or_else(|| usage(format!("--target {t}: no deliveries to it")))?,
                ),
                None => sink,
            };
            let keys: Vec<DeliveryKey> = store
                .deliveries_in_state(chain_id, DeliveryState::Failed, usize::MAX, |k, _| {
                    target.is_none_or(|t| k.target == t)
                })?
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            if keys.is_empty() {
                return Err(usage(format!("no failed deliveries on {chain}")));
            }
            return Ok(keys);
        }
        if self.ids.is_empty() {
            return Err(usage(
                "name deliveries by id (see `inspect-store deliveries`), or use --all-failed <CHAIN>".into(),
            ));
        }
        self.ids.iter().map(|id| parse_id(names, id).map_err(usage)).collect()
    }
}

/// `<target>/<chain>/<item>` as `inspect-store deliveries` prints it, the chain by name or id.
fn parse_id(names: &Names, id: &str) -> Result<DeliveryKey, String> {
    let parsed: DeliveryId = id.parse()?;
    // A sink's id has no chain: `<target>/<item>`, where the target's name may hold a `/`.
    let sink = parsed.as_sink();
    if let Some(target) = names.target_id(&sink.target).filter(|t| names.sinks.contains(t)) {
        return Ok(DeliveryKey { target, chain: SINK_CHAIN, item: parsed.item });
    }
    let Some(chain_name) = &parsed.chain else {
        return Err(format!("`{id}`: no sink target `{}` in the config", parsed.target));
    };
    let target = names
        .target_id(&parsed.target)
        .ok_or_else(|| format!("`{id}`: the store has no deliveries to target `{}`", parsed.target))?;
    let chain =
        names.chain_id(chain_name).ok_or_else(|| format!("`{id}`: no chain `{chain_name}` in the config"))?;
    Ok(DeliveryKey { target, chain, item: parsed.item })
}

#[derive(Serialize)]
struct ChangedRow {
    id: String,
    from: DeliveryState,
    to: DeliveryState,
}

#[derive(Serialize)]
#[serde(transparent)]
struct ChangedReport(Vec<ChangedRow>);

impl ChangedReport {
    fn new(names: &Names, changed: Vec<Changed>) -> Self {
        ChangedReport(
            changed
                .into_iter()
                .map(|c| ChangedRow { id: names.id(&c.key), from: c.from, to: c.to })
                .collect(),
        )
    }
}

impl Render for ChangedReport {
    fn human(&self, out: &Output) -> String {
        let mut table = out.table(["delivery", "was", "now"]);
        for r in &self.0 {
            table.add_row([r.id.clone(), r.from.as_str().to_string(), r.to.as_str().to_string()]);
        }
        format!("{table}\n{} changed\n", self.0.len())
    }
}
