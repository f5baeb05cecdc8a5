//! `ferry inspect-store retry|skip|cancel|resync|manage`: the operator's hands on deliveries and
//! nonces. Each opens the store read-write, so a running `watch` makes it refuse (exit 3, naming
//! the holder); each asks before changing anything on a terminal, and wants `--yes` elsewhere.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use clap::Args;
use serde::Serialize;

use super::Ctx;
use crate::config::Loaded;
use crate::engine::deliver::control::{self, Cancelled, Changed, ControlError, Resynced};
use crate::engine::deliver::{Destination, destinations};
use crate::exit::{Exit, ExitError};
use crate::output::{Output, Render};
use crate::store::Store;
use crate::store::keys::DeliveryKey;
use crate::store::query_deliver::DeliveryId;
use crate::store::records::DeliveryState;

/// Deliveries named by id, or every failed one on a chain.
#[derive(Debug, Args)]
pub struct Selection {
    /// Delivery ids as `inspect-store deliveries` prints them: `<target>/<chain>/<item>`.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Every failed delivery on this chain (with --target, of that target only).
    #[arg(long, value_name = "CHAIN", conflicts_with = "ids")]
    pub all_failed: Option<String>,
    /// With --all-failed: only this target.
    #[arg(long, value_name = "NAME", requires = "all_failed")]
    pub target: Option<String>,
    /// Do not ask for confirmation (needed when not on a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

/// Put failed (or skipped) deliveries back to pending.
#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub which: Selection,
}

/// Mark pending or failed deliveries skipped: they are never sent.
#[derive(Debug, Args)]
pub struct SkipArgs {
    #[command(flatten)]
    pub which: Selection,
    /// Why, kept with the delivery.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// Replace a stuck transaction with a zero-value send to the signer itself at the same nonce.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The destination chain (a name from the config).
    #[arg(long, value_name = "NAME")]
    pub chain: String,
    /// The nonce to cancel (see `inspect-store txs --open`).
    #[arg(long)]
    pub nonce: u64,
    /// Offer this max fee per gas instead of the old one + the bump percent (or the market).
    #[arg(long, value_name = "GWEI")]
    pub max_fee_gwei: Option<f64>,
    /// Do not ask for confirmation (needed when not on a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

/// Line ferry's nonces up with the chain's: drop signed transactions no node holds, and send
/// their deliveries again from the chain's nonce.
#[derive(Debug, Args)]
pub struct ResyncArgs {
    /// The destination chain (a name from the config).
    #[arg(long, value_name = "NAME")]
    pub chain: String,
    /// Do not ask for confirmation (needed when not on a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

/// Choose what to retry, skip, cancel or resync from menus (on a terminal only).
#[derive(Debug, Args)]
pub struct ManageArgs {}

impl RetryArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let (loaded, store) = open(ctx)?;
        let names = Names::read(&loaded, &store)?;
        let keys = self.which.resolve(&names, &store)?;
        if !confirm(self.which.yes, &format!("Retry {} deliveries?", keys.len()))? {
            return Ok(Exit::Ok);
        }
        let changed = control::retry(&store, &keys).map_err(refused)?;
        ctx.out.emit(&ChangedReport::new(&names, changed))?;
        Ok(Exit::Ok)
    }
}

impl SkipArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let (loaded, store) = open(ctx)?;
        let names = Names::read(&loaded, &store)?;
        let keys = self.which.resolve(&names, &store)?;
        if !confirm(self.which.yes, &format!("Skip {} deliveries? They will never be sent.", keys.len()))? {
            return Ok(Exit::Ok);
        }
        let changed = control::skip(&store, &keys, self.reason.as_deref()).map_err(refused)?;
        ctx.out.emit(&ChangedReport::new(&names, changed))?;
        Ok(Exit::Ok)
    }
}

impl CancelArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let (loaded, store) = open(ctx)?;
        let dest = destination(&loaded, &store, &self.chain)?;
        let max_fee = match self.max_fee_gwei {
            Some(g) if g.is_finite() && g > 0.0 => Some((g * 1e9) as u128),
            Some(g) => {
                return Err(
                    ExitError::new(Exit::Usage, format!("--max-fee-gwei {g}: must be positive")).into()
                );
            }
            None => None,
        };
        let prompt = format!(
            "Cancel nonce {} of {} on {}? Its deliveries fail unless the original lands first.",
            self.nonce,
            dest.signer.address(),
            dest.chain
        );
        if !confirm(self.yes, &prompt)? {
            return Ok(Exit::Ok);
        }
        let done = control::cancel(&dest, &store, self.nonce, max_fee).await.map_err(refused)?;
        ctx.out.emit(&CancelReport(done))?;
        Ok(Exit::Ok)
    }
}

impl ResyncArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let (loaded, store) = open(ctx)?;
        let dest = destination(&loaded, &store, &self.chain)?;
        let prompt = format!(
            "Resync the nonces of {} on {}? Signed transactions no node holds are dropped and their \
             deliveries signed again; one still held by another node could then land as well.",
            dest.signer.address(),
            dest.chain
        );
        if !confirm(self.yes, &prompt)? {
            return Ok(Exit::Ok);
        }
        let done = control::resync(&dest, &store).await.map_err(refused)?;
        ctx.out.emit(&ResyncReport(done))?;
        Ok(Exit::Ok)
    }
}

impl ManageArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        if !on_terminal() {
            return Err(ExitError::new(
                Exit::Usage,
                "`inspect-store manage` needs a terminal; from scripts use `inspect-store retry|skip|cancel|resync --yes`",
            )
            .into());
        }
        let (loaded, store) = open(ctx)?;
        let names = Names::read(&loaded, &store)?;
        let theme = dialoguer::theme::SimpleTheme;
        loop {
            let actions = [
                "retry failed deliveries",
                "skip failed deliveries",
                "cancel a stuck nonce",
                "resync a signer's nonces",
                "quit",
            ];
            let pick = dialoguer::Select::with_theme(&theme)
                .with_prompt("What now?")
                .items(actions)
                .default(0)
                .interact()?;
            match pick {
                0 | 1 => {
                    let failed = failed_deliveries(&loaded, &store)?;
                    if failed.is_empty() {
                        eprintln!("no failed deliveries");
                        continue;
                    }
                    let labels: Vec<String> =
                        failed.iter().map(|(k, reason)| format!("{}  {}", names.id(k), reason)).collect();
                    let chosen = dialoguer::MultiSelect::with_theme(&theme)
                        .with_prompt("Which? (space selects, enter confirms)")
                        .items(&labels)
                        .interact()?;
                    let keys: Vec<DeliveryKey> = chosen.into_iter().map(|i| failed[i].0).collect();
                    if keys.is_empty() {
                        continue;
                    }
                    let changed = if pick == 0 {
                        control::retry(&store, &keys)
                    } else {
                        control::skip(&store, &keys, None)
                    };
                    match changed {
                        Ok(c) => eprint!("{}", ChangedReport::new(&names, c).human(&ctx.out)),
                        Err(e) => eprintln!("nothing changed: {e}"),
                    }
                }
                2 | 3 => {
                    let chains: Vec<String> = signing_chains(&loaded);
                    if chains.is_empty() {
                        eprintln!("no chain has a signer");
                        continue;
                    }
                    let c = dialoguer::Select::with_theme(&theme)
                        .with_prompt("Chain")
                        .items(&chains)
                        .interact()?;
                    let dest = destination(&loaded, &store, &chains[c])?;
                    if pick == 2 {
                        let open: Vec<u64> = store
                            .intents_from(dest.chain_id, dest.signer.address(), 0)?
                            .into_iter()
                            .filter(|(_, i)| i.is_open())
                            .map(|(n, _)| n)
                            .collect();
                        if open.is_empty() {
                            eprintln!("nothing in flight on {}", dest.chain);
                            continue;
                        }
                        let labels: Vec<String> = open.iter().map(|n| format!("nonce {n}")).collect();
                        let n = dialoguer::Select::with_theme(&theme)
                            .with_prompt("Nonce")
                            .items(&labels)
                            .interact()?;
                        if confirm(false, &format!("Cancel nonce {} on {}?", open[n], dest.chain))? {
                            match control::cancel(&dest, &store, open[n], None).await {
                                Ok(done) => eprint!("{}", CancelReport(done).human(&ctx.out)),
                                Err(e) => eprintln!("not cancelled: {e}"),
                            }
                        }
                    } else if confirm(false, &format!("Resync the nonces on {}?", dest.chain))? {
                        match control::resync(&dest, &store).await {
                            Ok(done) => eprint!("{}", ResyncReport(done).human(&ctx.out)),
                            Err(e) => eprintln!("not resynced: {e}"),
                        }
                    }
                }
                _ => return Ok(Exit::Ok),
            }
        }
    }
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

/// The config and the store, read-write: a running `watch` holds it and this fails with exit 3.
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
}

impl Names {
    fn read(loaded: &Loaded, store: &Store) -> eyre::Result<Self> {
        let mut chains = BTreeMap::new();
        for (name, chain) in &loaded.config.chains {
            chains.entry(chain.chain_id).or_insert_with(|| name.clone());
        }
        Ok(Names { targets: store.target_names()?, chains })
    }

    /// The id `inspect-store deliveries` prints.
    fn id(&self, key: &DeliveryKey) -> String {
        let target = self.targets.get(&key.target).cloned().unwrap_or_else(|| format!("#{}", key.target));
        let chain = self.chains.get(&key.chain).cloned().unwrap_or_else(|| key.chain.to_string());
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
            let chain_id =
                names.chain_id(chain).ok_or_else(|| usage(format!("--all-failed {chain}: no such chain")))?;
            let target = match &self.target {
                Some(t) => Some(
                    names.target_id(t).ok_or_else(|| usage(format!("--target {t}: no deliveries to it")))?,
                ),
                None => None,
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
    let target = names
        .target_id(&parsed.target)
        .ok_or_else(|| format!("`{id}`: the store has no deliveries to target `{}`", parsed.target))?;
    let chain = names
        .chain_id(&parsed.chain)
        .ok_or_else(|| format!("`{id}`: no chain `{}` in the config", parsed.chain))?;
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

#[derive(Serialize)]
#[serde(transparent)]
struct CancelReport(Cancelled);

impl Render for CancelReport {
    fn human(&self, _out: &Output) -> String {
        let c = &self.0;
        let sent = match &c.broadcast {
            Ok(()) => "broadcast".to_string(),
            Err(e) => format!("not broadcast yet ({e}); the next push or watch sends it"),
        };
        format!(
            "nonce {} on {}: {} replaces {} at {} gwei max fee, {sent}\n",
            c.nonce,
            c.chain,
            c.hash,
            c.replaces,
            c.max_fee_per_gas as f64 / 1e9
        )
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct ResyncReport(Resynced);

impl Render for ResyncReport {
    fn human(&self, _out: &Output) -> String {
        let r = &self.0;
        let dropped = if r.dropped.is_empty() {
            "nothing to drop".to_string()
        } else {
            format!(
                "dropped nonces {} (their deliveries are pending again)",
                r.dropped.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            )
        };
        let mut text = format!(
            "{} on {}: chain nonce {} mined, {} with the pool; ferry had signed up to {}; {dropped}\n",
            r.signer, r.chain, r.latest, r.pending, r.stored_next
        );
        for why in &r.kept {
            text.push_str(&format!("kept: {why}\n"));
        }
        text
    }
}
