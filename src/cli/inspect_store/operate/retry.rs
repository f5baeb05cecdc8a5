//! `ferry inspect-store retry`: failed (or skipped) deliveries back to pending.

use clap::Args;

use super::{Action, ChangedReport, Names, Selection, confirm, open, refused};
use crate::cli::Ctx;
use crate::engine::deliver::control;
use crate::exit::Exit;

/// Put failed (or skipped) deliveries back to pending.
#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub which: Selection,
}

impl RetryArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let (loaded, store) = open(ctx)?;
        let names = Names::read(&loaded, &store)?;
        let keys = self.which.resolve(&names, &store)?;
        if !confirm(self.which.yes, &format!("Retry {} deliveries?", keys.len()))? {
            return Ok(Exit::Ok);
        }
        let changed = control::retry(&store, &keys).map_err(refused)?;
        ctx.out.emit(&ChangedReport::new(Action::Retry, &names, changed))?;
        Ok(Exit::Ok)
    }
}
