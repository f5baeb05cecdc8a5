//! `ferry inspect-store cancel`: a stuck nonce taken by a zero-value send to the signer itself.

use clap::Args;
use serde::Serialize;

use super::{check_chain, open};
use crate::cli::Ctx;
use crate::engine::deliver::control::Cancelled;
use crate::exit::{Exit, ExitError};
use crate::output::{Output, Render};

/// Replace a stuck transaction with a zero-value send to the signer itself at the same nonce.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The destination chain (a name from the config).
    #[arg(long, value_name = "NAME")]
    pub chain: String,
    /// The nonce to cancel (see `inspect-store txs --open`).
    #[arg(long)]
    pub nonce: u64,
    /// Offer this max fee per gas instead of the old one + the bump percent (or the market).
    #[arg(long, value_name = "GWEI")]
    pub max_fee_gwei: Option<f64>,
    /// Do not ask for confirmation (needed when not on a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

impl CancelArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let (loaded, hands) = open(ctx)?;
        check_chain(&loaded, &self.chain)?;
        let max_fee = match self.max_fee_gwei {
            Some(g) if g.is_finite() && g > 0.0 => Some((g * 1e9) as u128),
            Some(g) => {
                return Err(
                    ExitError::new(Exit::Usage, format!("--max-fee-gwei {g}: must be positive")).into()
                );
            }
            None => None,
        };
        let Some(done) = hands.cancel(ctx, &self.chain, self.nonce, max_fee, self.yes).await? else {
            return Ok(Exit::Ok);
        };
        ctx.out.emit(&CancelReport(done))?;
        Ok(Exit::Ok)
    }
}

pub(super) struct CancelReport(pub(super) Cancelled);

/// The JSON of a cancellation: hashes named as everywhere else, and whether the node took it as
/// a flag plus the reason, instead of a serialized `Result`.
impl Serialize for CancelReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            chain: &'a str,
            chain_id: u64,
            #[serde(serialize_with = "crate::store::serde_text::checksummed")]
            signer: alloy::primitives::Address,
            nonce: u64,
            tx_hash: alloy::primitives::B256,
            replaced_tx_hash: alloy::primitives::B256,
            max_fee_per_gas: u128,
            max_priority_fee_per_gas: Option<u128>,
            broadcast: bool,
            broadcast_error: Option<&'a str>,
        }
        let c = &self.0;
        Json {
            chain: &c.chain,
            chain_id: c.chain_id,
            signer: c.signer,
            nonce: c.nonce,
            tx_hash: c.hash,
            replaced_tx_hash: c.replaces,
            max_fee_per_gas: c.max_fee_per_gas,
            max_priority_fee_per_gas: c.max_priority_fee_per_gas,
            broadcast: c.broadcast.is_ok(),
            broadcast_error: c.broadcast.as_ref().err().map(String::as_str),
        }
        .serialize(serializer)
    }
}

impl Render for CancelReport {
    fn kind(&self) -> &'static str {
        "inspect-store.cancel"
    }

    fn human(&self, _out: &Output) -> String {
        let c = &self.0;
        let sent = match &c.broadcast {
            Ok(()) => "broadcast".to_string(),
            Err(e) => format!("not broadcast yet ({e}); the next push or watch sends it"),
        };
        format!(
            "nonce {} on {}: {} replaces {} at {} gwei max fee, {sent}\n",
            c.nonce,
            c.chain,
            c.hash,
            c.replaces,
            c.max_fee_per_gas as f64 / 1e9
        )
    }
}
