//! `ferry inspect-store skip`: deliveries that are never to be sent.

use clap::Args;

use super::{Action, ChangedReport, Names, Selection, confirm, open, refused};
use crate::cli::Ctx;
use crate::engine::deliver::control;
use crate::exit::Exit;

/// Mark pending or failed deliveries skipped: they are never sent.
#[derive(Debug, Args)]
pub struct SkipArgs {
    #[command(flatten)]
    pub which: Selection,
    /// Why, kept with the delivery.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
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
        ctx.out.emit(&ChangedReport::new(Action::Skip, &names, changed))?;
        Ok(Exit::Ok)
    }
}
