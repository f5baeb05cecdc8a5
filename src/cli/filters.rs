//! Filters shared by `inspect-store` and `export`: which chain, address, event, block range and
//! delivery state, and the names the config gives to what the store keeps as ids.

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::Address;
use clap::{Args, ValueEnum};

use super::Ctx;
use crate::exit::{Exit, ExitError};
use crate::store::query::EventFilter;
use crate::store::query_deliver::DeliveryQuery;
use crate::store::records::DeliveryState;

#[derive(Debug, Clone, Args)]
pub struct ChainArg {
    /// Only this chain: a chain id, or a chain name from the config.
    #[arg(long, value_name = "NAME|ID")]
    pub chain: Option<String>,
}

impl ChainArg {
    pub fn resolve(&self, ctx: &Ctx) -> eyre::Result<Option<u64>> {
        let Some(text) = &self.chain else { return Ok(None) };
        if let Ok(id) = text.parse::<u64>() {
            return Ok(Some(id));
        }
        if !ctx.global.config.exists() {
            return Err(ExitError::new(
                Exit::Usage,
                format!(
                    "--chain {text}: not a chain id, and there is no config ({}) to look the name up in",
                    ctx.global.config.display()
                ),
            )
            .into());
        }
        let loaded = ctx.load_config_without_env()?;
        match loaded.config.chains.get(text) {
            Some(chain) => Ok(Some(chain.chain_id)),
            None => {
                let known: Vec<&str> = loaded.config.chains.keys().map(String::as_str).collect();
                Err(ExitError::new(
                    Exit::Usage,
                    format!(
                        "--chain {text}: {} has no such chain (it has: {})",
                        loaded.file_name(),
                        known.join(", ")
                    ),
                )
                .into())
            }
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct EventFilterArgs {
    #[command(flatten)]
    pub chain: ChainArg,
    /// Only items (events, batches) of this source.
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Only events emitted by this address.
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<Address>,
    /// Only this event (by name), or `undecoded` for logs that no declaration decoded.
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,
    /// Only events at or after this block.
    #[arg(long, value_name = "BLOCK")]
    pub from_block: Option<u64>,
    /// Only events at or before this block.
    #[arg(long, value_name = "BLOCK")]
    pub to_block: Option<u64>,
}

impl EventFilterArgs {
    pub fn resolve(&self, ctx: &Ctx) -> eyre::Result<EventFilter> {
        if let (Some(from), Some(to)) = (self.from_block, self.to_block)
            && from > to
        {
            return Err(
                ExitError::new(Exit::Usage, format!("--from-block {from} is after --to-block {to}")).into()
            );
        }
        Ok(EventFilter {
            chain: self.chain.resolve(ctx)?,
            address: self.address,
            event: self.event.clone(),
            from_block: self.from_block,
            to_block: self.to_block,
            source: self.source.clone(),
        })
    }
}

/// `--state`: the delivery states, as the store names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Pending,
    Sending,
    Sent,
    Confirmed,
    Skipped,
    Failed,
}

impl From<StateArg> for DeliveryState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Pending => DeliveryState::Pending,
            StateArg::Sending => DeliveryState::Sending,
            StateArg::Sent => DeliveryState::Sent,
            StateArg::Confirmed => DeliveryState::Confirmed,
            StateArg::Skipped => DeliveryState::Skipped,
            StateArg::Failed => DeliveryState::Failed,
        }
    }
}

/// What the config (when there is one) calls things: chain ids by name, and the targets it
/// declares. The store keeps only ids for chains, so rows show names from here.
#[derive(Debug, Default)]
pub struct ConfigNames {
    pub chains: BTreeMap<u64, String>,
    pub targets: BTreeSet<String>,
}

impl ConfigNames {
    /// Reads the config if there is one. A config that does not load only costs the names
    /// (chains show as ids): a read-only view must still work in an incident.
    pub fn load(ctx: &Ctx) -> Self {
        if !ctx.global.config.exists() {
            return Self::default();
        }
        match ctx.load_config_without_env() {
            Ok(loaded) => {
                let mut chains = BTreeMap::new();
                for (name, chain) in &loaded.config.chains {
                    chains.entry(chain.chain_id).or_insert_with(|| name.clone());
                }
                Self { chains, targets: loaded.config.targets.keys().cloned().collect() }
            }
            Err(e) => {
                tracing::warn!("chains show as ids: {e}");
                Self::default()
            }
        }
    }

    /// A `--target` the store has never seen is a typo unless the config declares it (then it
    /// has delivered nothing yet, and no rows is the right answer).
    pub fn check_target(&self, query: &DeliveryQuery<'_>, target: Option<&str>) -> eyre::Result<()> {
        let Some(name) = target else { return Ok(()) };
        if query.has_target(name) || self.targets.contains(name) {
            return Ok(());
        }
        let known: Vec<&str> = query
            .target_names()
            .chain(self.targets.iter().map(String::as_str))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut message = if known.is_empty() {
            format!("--target {name}: no such target (there are none yet)")
        } else {
            format!("--target {name}: no such target (there are: {})", known.join(", "))
        };
        if let Some(near) = crate::config::load::nearest(name, &known) {
            message.push_str(&format!("; did you mean `{near}`?"));
        }
        Err(ExitError::new(Exit::Usage, message).into())
    }
}
