//! Filters shared by `inspect-store` and `export`: which chain, address, event and block range.

use alloy::primitives::Address;
use clap::Args;

use super::Ctx;
use crate::exit::{Exit, ExitError};
use crate::store::query::EventFilter;

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
        let loaded = ctx.load_config()?;
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
    /// Only events of this source.
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
