//! `ferry inspect-store manage`: retry, skip, cancel and resync from menus, on a terminal.

use clap::Args;

use super::cancel::CancelReport;
use super::resync::ResyncReport;
use super::{Change, ChangedReport, Names, failed_deliveries, on_terminal, open, signing_chains};
use crate::cli::Ctx;
use crate::exit::{Exit, ExitError};
use crate::output::Render;
use crate::store::keys::DeliveryKey;

/// Choose what to retry, skip, cancel or resync from menus (on a terminal only).
#[derive(Debug, Args)]
pub struct ManageArgs {}

impl ManageArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        if !on_terminal() {
            return Err(ExitError::new(
                Exit::Usage,
                "`inspect-store manage` needs a terminal; from scripts use `inspect-store retry|skip|cancel|resync --yes`",
            )
            .into());
        }
        let (loaded, hands) = open(ctx)?;
        let names = Names::read(&loaded, &hands)?;
        let theme = dialoguer::theme::SimpleTheme;
        loop {
            let actions = [
                "retry failed deliveries",
                "skip failed deliveries",
                "cancel a stuck nonce",
                "resync a signer's nonces",
                "quit",
            ];
            let pick = dialoguer::Select::with_theme(&theme)
                .with_prompt("What now?")
                .items(actions)
                .default(0)
                .interact()?;
            match pick {
                0 | 1 => {
                    let failed = failed_deliveries(&loaded, &hands)?;
                    if failed.is_empty() {
                        eprintln!("no failed deliveries");
                        continue;
                    }
                    let labels: Vec<String> =
                        failed.iter().map(|(k, reason)| format!("{}  {}", names.id(k), reason)).collect();
                    let chosen = dialoguer::MultiSelect::with_theme(&theme)
                        .with_prompt("Which? (space selects, enter confirms)")
                        .items(&labels)
                        .interact()?;
                    let keys: Vec<DeliveryKey> = chosen.into_iter().map(|i| failed[i].0).collect();
                    if keys.is_empty() {
                        continue;
                    }
                    let changed =
                        if pick == 0 { hands.retry(&keys).await } else { hands.skip(&keys, None).await };
                    match changed {
                        Ok(c) => {
                            let action = if pick == 0 { Change::Retry } else { Change::Skip };
                            eprint!("{}", ChangedReport::new(action, &names, c).human(&ctx.out))
                        }
                        Err(e) => eprintln!("nothing changed: {e}"),
                    }
                }
                2 | 3 => {
                    let chains: Vec<String> = signing_chains(&loaded);
                    if chains.is_empty() {
                        eprintln!("no chain has a signer");
                        continue;
                    }
                    let c = dialoguer::Select::with_theme(&theme)
                        .with_prompt("Chain")
                        .items(&chains)
                        .interact()?;
                    let chain = &chains[c];
                    if pick == 2 {
                        // The signer's address names its intents: the full config, with its key.
                        let full = ctx.load_config()?;
                        let Some(spec) = full.resolved.chains.get(chain).and_then(|c| c.signer.as_ref())
                        else {
                            eprintln!("{chain} has no signer");
                            continue;
                        };
                        let chain_id = full.resolved.chains.get(chain).map_or(0, |c| c.chain_id);
                        let signer = crate::config::signer::address(spec)?;
                        let open: Vec<u64> = hands
                            .intents_from(chain_id, signer)?
                            .into_iter()
                            .filter(|(_, i)| i.is_open())
                            .map(|(n, _)| n)
                            .collect();
                        if open.is_empty() {
                            eprintln!("nothing in flight on {chain}");
                            continue;
                        }
                        let labels: Vec<String> = open.iter().map(|n| format!("nonce {n}")).collect();
                        let n = dialoguer::Select::with_theme(&theme)
                            .with_prompt("Nonce")
                            .items(&labels)
                            .interact()?;
                        match hands.cancel(ctx, chain, open[n], None, false).await {
                            Ok(Some(done)) => eprint!("{}", CancelReport(done).human(&ctx.out)),
                            Ok(None) => {}
                            Err(e) => eprintln!("not cancelled: {e}"),
                        }
                    } else {
                        match hands.resync(ctx, chain, false).await {
                            Ok(Some(done)) => eprint!("{}", ResyncReport(done).human(&ctx.out)),
                            Ok(None) => {}
                            Err(e) => eprintln!("not resynced: {e}"),
                        }
                    }
                }
                _ => return Ok(Exit::Ok),
            }
        }
    }
}
