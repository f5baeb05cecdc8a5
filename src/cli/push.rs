//! `ferry push`: the cron one-shot. Syncs every source once, delivers everything pending, waits
//! for confirmations up to `--timeout`, and summarizes.

use clap::Args;

use super::{Ctx, after_help, not_built};
use crate::config::values::Duration;
use crate::exit::Exit;

/// One-shot for cron: sync sources, deliver everything pending, wait for confirmations.
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry push                         sync, deliver, wait up to 5m
  ferry push --no-sync --timeout 2m  deliver what the store already has
  ferry push --dry-run --json        simulate and print what would be sent"))]
pub struct PushArgs {
    /// Skip ingesting sources first; deliver only what the store holds.
    #[arg(long)]
    pub no_sync: bool,
    /// Give up waiting after this long (exit 4 if work is left).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Simulate every delivery and print what would be sent; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only deliveries to this target (repeatable).
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,
    /// Only deliveries to this chain (repeatable).
    #[arg(long, value_name = "NAME")]
    pub chain: Vec<String>,
    /// At most this many deliveries.
    #[arg(long)]
    pub limit: Option<usize>,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map(Duration).map_err(|e| format!("{e}; write e.g. `90s` or `5m`"))
}

impl PushArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        ctx.load_config()?;
        Err(not_built("`ferry push` (delivery)", "delivery issue"))
    }
}
