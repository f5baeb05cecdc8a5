//! `ferry inspect-store retry`: failed (or skipped) deliveries back to pending.

use clap::Args;

use super::{Change, ChangedReport, Names, Selection, confirm, open};
use crate::cli::Ctx;
use crate::exit::Exit;

/// Put failed (or skipped) deliveries back to pending.
#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub which: Selection,
}

impl RetryArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let (loaded, hands) = open(ctx)?;
        let names = Names::read(&loaded, &hands)?;
        let keys = self.which.resolve(&names, &hands)?;
        if !confirm(self.which.yes, &format!("Retry {} deliveries?", keys.len()))? {
            return Ok(Exit::Ok);
        }
        let changed = hands.retry(&keys).await?;
        ctx.out.emit(&ChangedReport::new(Change::Retry, &names, changed))?;
        Ok(Exit::Ok)
    }
}
