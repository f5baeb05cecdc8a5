//! `ferry backfill`: ingest a historical block range, resumably, for scripts and CI.

use std::str::FromStr;

use clap::Args;

use super::{Ctx, after_help, not_built};
use crate::exit::Exit;

/// Ingest a historical range of blocks, resumably; deliver only with --deliver.
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry backfill --from 19000000 --to 19100000
  ferry backfill --source escrows --from 0 --to safe --json
  ferry backfill --from 0 --to latest --deliver"))]
pub struct BackfillArgs {
    /// Only this source (repeatable); all sources when absent.
    #[arg(long, value_name = "NAME")]
    pub source: Vec<String>,
    /// First block of the range.
    #[arg(long, value_name = "BLOCK")]
    pub from: u64,
    /// Last block of the range: a number, `safe` or `latest`.
    #[arg(long, value_name = "BLOCK|safe|latest", default_value = "safe")]
    pub to: RangeEnd,
    /// Also deliver the items found to their routes' targets.
    #[arg(long)]
    pub deliver: bool,
}

/// Where a backfill stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeEnd {
    Block(u64),
    Safe,
    Latest,
}

impl FromStr for RangeEnd {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "safe" => Ok(RangeEnd::Safe),
            "latest" => Ok(RangeEnd::Latest),
            n => n
                .parse()
                .map(RangeEnd::Block)
                .map_err(|_| format!("`{n}` is not a block number, `safe` or `latest`")),
        }
    }
}

impl BackfillArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        ctx.load_config()?;
        Err(not_built("`ferry backfill` (EVM ingest)", "EVM ingest issue"))
    }
}
