//! `ferry inspect-store resync`: a signer's nonces lined up with the chain's.

use clap::Args;
use serde::Serialize;

use super::{check_chain, open};
use crate::cli::Ctx;
use crate::engine::deliver::control::Resynced;
use crate::exit::Exit;
use crate::output::{Output, Render};

/// Line ferry's nonces up with the chain's: drop signed transactions no node holds (and, on a
/// chain that was reset, mined ones it no longer has), and send their deliveries again from the
/// chain's nonce.
#[derive(Debug, Args)]
pub struct ResyncArgs {
    /// The destination chain (a name from the config).
    #[arg(long, value_name = "NAME")]
    pub chain: String,
    /// Do not ask for confirmation (needed when not on a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

impl ResyncArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let (loaded, hands) = open(ctx)?;
        check_chain(&loaded, &self.chain)?;
        let Some(done) = hands.resync(ctx, &self.chain, self.yes).await? else {
            return Ok(Exit::Ok);
        };
        ctx.out.emit(&ResyncReport(done))?;
        Ok(Exit::Ok)
    }
}

#[derive(Serialize)]
#[serde(transparent)]
pub(super) struct ResyncReport(pub(super) Resynced);

impl Render for ResyncReport {
    fn kind(&self) -> &'static str {
        "inspect-store.resync"
    }

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
        if !r.forgotten.is_empty() {
            text.push_str(&format!(
                "forgotten (mined, no longer on the chain: a reset?) nonces {}; their deliveries are pending again\n",
                r.forgotten.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            ));
        }
        for why in &r.kept {
            text.push_str(&format!("kept: {why}\n"));
        }
        text
    }
}
