//! `ferry inspect-store skip`: deliveries that are never to be sent.

use clap::Args;

use super::{Change, ChangedReport, Names, Selection, confirm, open};
use crate::cli::Ctx;
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
        let (loaded, hands) = open(ctx)?;
        let names = Names::read(&loaded, &hands)?;
        let keys = self.which.resolve(&names, &hands)?;
        if !confirm(self.which.yes, &format!("Skip {} deliveries? They will never be sent.", keys.len()))? {
            return Ok(Exit::Ok);
        }
        let changed = hands.skip(&keys, self.reason.as_deref()).await?;
        ctx.out.emit(&ChangedReport::new(Change::Skip, &names, changed))?;
        Ok(Exit::Ok)
    }
}
