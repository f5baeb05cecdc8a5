//! `ferry inspect-store retry|skip|cancel|resync|manage`: the operator's hands on deliveries and
//! nonces. Each opens the store read-write when nothing holds it; when a running `watch` holds
//! it, the action goes to that `watch` over its control socket (`engine::operator`), which
//! carries it out between its workers' rounds and answers with the same result. Held by anything
//! else (a `push`), it is refused (exit 5, naming the holder). Each asks before changing anything
//! on a terminal, and wants `--yes` elsewhere.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::cli::Ctx;
use crate::config::Loaded;
use crate::engine::deliver::control::{self, Cancelled, Changed, ControlError, Resynced};
use crate::engine::deliver::{Destination, destinations};
use crate::engine::operator::client::{self, ClientError};
use crate::engine::operator::protocol::{Action, ErrorKind, Outcome};
use crate::engine::operator::server::socket_path;
use crate::exit::{Exit, ExitError};
use crate::output::{Output, Render};
use crate::store::keys::{DeliveryKey, SINK_CHAIN};
use crate::store::query_deliver::DeliveryId;
use crate::store::records::{Delivery, DeliveryState, TxIntent};
use crate::store::{ReadStore, Store, StoreError};

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

/// Where an operator's action goes.
enum Hands {
    /// Nothing holds the store: it is changed here, read-write.
    Store(Store),
    /// A process holds it: its `watch`'s control socket takes the action, the store is read
    /// here read-only (to resolve ids). `held` is what opening it said, for when nothing answers
    /// on the socket (a `push` holds it).
    Watch { store: Box<ReadStore>, socket: PathBuf, held: Box<StoreError> },
}

/// The config (for names: its secrets are not needed) and the store: read-write when free,
/// else the running `watch` to hand actions to.
fn open(ctx: &Ctx) -> eyre::Result<(Loaded, Hands)> {
    let loaded = ctx.load_config_without_env()?;
    let path = ctx.store_path(Some(&loaded));
    let hands = match Store::open(&path, None) {
        Ok(store) => Hands::Store(store),
        Err(held @ StoreError::Locked { .. }) => {
            let socket = socket_path(&path);
            if !socket.exists() {
                return Err(held.into());
            }
            Hands::Watch { store: Box::new(ReadStore::open(&path)?), socket, held: Box::new(held) }
        }
        Err(e) => return Err(e.into()),
    };
    Ok((loaded, hands))
}

fn refused(e: ControlError) -> eyre::Report {
    match e {
        ControlError::Refused(why) => ExitError::new(Exit::Usage, format!("nothing changed: {why}")).into(),
        ControlError::Deliver(e) => e.into(),
    }
}

impl Hands {
    fn target_names(&self) -> Result<BTreeMap<u32, String>, StoreError> {
        match self {
            Hands::Store(store) => store.target_names(),
            Hands::Watch { store, .. } => store.target_names(),
        }
    }

    fn deliveries_in_state(
        &self,
        chain: u64,
        state: DeliveryState,
        limit: usize,
        keep: impl FnMut(&DeliveryKey, &Delivery) -> bool,
    ) -> Result<Vec<(DeliveryKey, Delivery)>, StoreError> {
        match self {
            Hands::Store(store) => store.deliveries_in_state(chain, state, limit, keep),
            Hands::Watch { store, .. } => store.deliveries_in_state(chain, state, limit, keep),
        }
    }

    fn intents_from(
        &self,
        chain: u64,
        signer: alloy::primitives::Address,
    ) -> Result<Vec<(u64, TxIntent)>, StoreError> {
        match self {
            Hands::Store(store) => store.intents_from(chain, signer, 0),
            Hands::Watch { store, .. } => store.intents_from(chain, signer, 0),
        }
    }

    async fn retry(&self, keys: &[DeliveryKey]) -> eyre::Result<Vec<Changed>> {
        match self {
            Hands::Store(store) => control::retry(store, keys).map_err(refused),
            Hands::Watch { .. } => match self.send(Action::Retry { keys: keys.to_vec() }).await? {
                Outcome::Changed { changed } => Ok(changed),
                other => Err(unexpected(other)),
            },
        }
    }

    async fn skip(&self, keys: &[DeliveryKey], reason: Option<&str>) -> eyre::Result<Vec<Changed>> {
        match self {
            Hands::Store(store) => control::skip(store, keys, reason).map_err(refused),
            Hands::Watch { .. } => {
                let action = Action::Skip { keys: keys.to_vec(), reason: reason.map(str::to_string) };
                match self.send(action).await? {
                    Outcome::Changed { changed } => Ok(changed),
                    other => Err(unexpected(other)),
                }
            }
        }
    }

    /// Cancels a nonce: here with the chain's signer (the full config, with its secrets), or in
    /// the running `watch`'s worker of the chain.
    async fn cancel(
        &self,
        ctx: &Ctx,
        chain: &str,
        nonce: u64,
        max_fee: Option<u128>,
        yes: bool,
    ) -> eyre::Result<Option<Cancelled>> {
        match self {
            Hands::Store(store) => {
                let dest = destination(&ctx.load_config()?, store, chain)?;
                let prompt = format!(
                    "Cancel nonce {nonce} of {} on {}? Its deliveries fail unless the original lands first.",
                    dest.signer.address(),
                    dest.chain
                );
                if !confirm(yes, &prompt)? {
                    return Ok(None);
                }
                control::cancel(&dest, store, nonce, max_fee).await.map(Some).map_err(refused)
            }
            Hands::Watch { .. } => {
                let prompt = format!(
                    "Cancel nonce {nonce} on {chain} (in the running watch)? Its deliveries fail unless the original lands first."
                );
                if !confirm(yes, &prompt)? {
                    return Ok(None);
                }
                let action = Action::Cancel { chain: chain.to_string(), nonce, max_fee };
                match self.send(action).await? {
                    Outcome::Cancelled { cancelled } => Ok(Some(cancelled)),
                    other => Err(unexpected(other)),
                }
            }
        }
    }

    /// Resyncs a chain's nonces: here, or in the running `watch`'s worker of the chain.
    async fn resync(&self, ctx: &Ctx, chain: &str, yes: bool) -> eyre::Result<Option<Resynced>> {
        let warning = "Signed transactions no node holds are dropped and their deliveries signed again; \
                       one still held by another node could then land as well.";
        match self {
            Hands::Store(store) => {
                let dest = destination(&ctx.load_config()?, store, chain)?;
                let prompt =
                    format!("Resync the nonces of {} on {}? {warning}", dest.signer.address(), dest.chain);
                if !confirm(yes, &prompt)? {
                    return Ok(None);
                }
                control::resync(&dest, store).await.map(Some).map_err(refused)
            }
            Hands::Watch { .. } => {
                if !confirm(yes, &format!("Resync the nonces on {chain} (in the running watch)? {warning}"))?
                {
                    return Ok(None);
                }
                match self.send(Action::Resync { chain: chain.to_string() }).await? {
                    Outcome::Resynced { resynced } => Ok(Some(resynced)),
                    other => Err(unexpected(other)),
                }
            }
        }
    }

    /// Hands an action to the running `watch`; its refusals and failures become this command's.
    async fn send(&self, action: Action) -> eyre::Result<Outcome> {
        let Hands::Watch { socket, held, .. } = self else {
            return Err(eyre::eyre!("no running watch to hand the action to (a bug in ferry)"));
        };
        let outcome = match client::send(socket, action).await {
            Ok(outcome) => outcome,
            // Nothing answers: what holds the store is not a `watch` with a socket (a `push`).
            Err(ClientError::NotListening { .. }) => {
                let StoreError::Locked { path, holder } = held.as_ref() else {
                    return Err(eyre::eyre!("{held}"));
                };
                return Err(StoreError::Locked { path: path.clone(), holder: holder.clone() }.into());
            }
            Err(e) => return Err(ExitError::new(Exit::Failure, e.to_string()).into()),
        };
        match outcome {
            Outcome::Error { kind: ErrorKind::Refused, message } => {
                Err(ExitError::new(Exit::Usage, format!("nothing changed: {message}")).into())
            }
            Outcome::Error { kind, message } => {
                let kind = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string));
                Err(ExitError::new(
                    Exit::Failure,
                    format!("the running watch: {message} ({})", kind.unwrap_or_default()),
                )
                .into())
            }
            outcome => Ok(outcome),
        }
    }
}

fn unexpected(outcome: Outcome) -> eyre::Report {
    ExitError::new(Exit::Failure, format!("the running watch answered with something else: {outcome:?}"))
        .into()
}

/// A chain the config names, for `--chain` of cancel and resync.
fn check_chain(loaded: &Loaded, chain: &str) -> eyre::Result<()> {
    if loaded.config.chains.contains_key(chain) {
        return Ok(());
    }
    let known = signing_chains(loaded).join(", ");
    Err(ExitError::new(
        Exit::Usage,
        format!("--chain {chain}: no such chain (chains with a signer: {known})"),
    )
    .into())
}

fn destination(loaded: &Loaded, store: &Store, chain: &str) -> eyre::Result<Destination> {
    check_chain(loaded, chain)?;
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
    fn read(loaded: &Loaded, store: &Hands) -> eyre::Result<Self> {
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

fn failed_deliveries(loaded: &Loaded, store: &Hands) -> eyre::Result<Vec<(DeliveryKey, String)>> {
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
    fn resolve(&self, names: &Names, store: &Hands) -> eyre::Result<Vec<DeliveryKey>> {
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

/// What `retry` or `skip` changed: one row per delivery.
#[derive(Serialize)]
struct ChangedReport {
    /// `retry` or `skip`: the command, which names the JSON shape.
    #[serde(skip)]
    action: Change,
    changed: Vec<ChangedRow>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    Retry,
    Skip,
}

impl ChangedReport {
    fn new(action: Change, names: &Names, changed: Vec<Changed>) -> Self {
        let changed = changed
            .into_iter()
            .map(|c| ChangedRow { id: names.id(&c.key), from: c.from, to: c.to })
            .collect();
        ChangedReport { action, changed }
    }
}

impl Render for ChangedReport {
    fn kind(&self) -> &'static str {
        match self.action {
            Change::Retry => "inspect-store.retry",
            Change::Skip => "inspect-store.skip",
        }
    }

    fn human(&self, out: &Output) -> String {
        let mut table = out.table(["delivery", "was", "now"]);
        for r in &self.changed {
            table.add_row([r.id.clone(), r.from.as_str().to_string(), r.to.as_str().to_string()]);
        }
        format!("{table}\n{} changed\n", self.changed.len())
    }
}
