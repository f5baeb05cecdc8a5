//! `ferry watch`: the daemon. Follows every `evm` source from its cursor to the head and on, one
//! task per source under one cancellation token, until SIGINT/SIGTERM: then each source finishes
//! the range it is committing and the process exits 130. A source that fails for good (a reorg
//! deeper than its window) stops alone; the others go on. Next to the sources, one delivery
//! worker per destination chain sends what routes planned, continuously; a chain whose RPC fails
//! backs off alone.

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::progress::{self, Style};
use super::{Ctx, after_help};
use crate::engine::deliver::{Options, destinations, run_all};
use crate::engine::ingest::{IngestError, Until, run_sources};
use crate::engine::sink::sink_targets;
use crate::exit::{Exit, ExitError};
use crate::store::Store;

/// Run as a daemon: follow every source and deliver to every target until stopped.
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry watch                               follow everything in ferry.yaml
  ferry watch -c prod.yaml --log-format json
  ferry watch --metrics-addr 127.0.0.1:9187 serve /metrics, /healthz and /readyz"))]
pub struct WatchArgs {
    /// Serve Prometheus /metrics, /healthz and /readyz on this address (host:port); overrides
    /// `health.metrics_addr`.
    #[arg(long, value_name = "ADDR", value_parser = crate::config::health::parse_addr)]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl WatchArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let loaded = ctx.load_config()?;
        let plans = loaded.resolved.sources.clone();
        let seda = loaded.resolved.seda_sources.clone();
        if plans.is_empty() && seda.is_empty() {
            return Err(ExitError::new(
                Exit::Usage,
                format!("{} has no source to watch", loaded.file_name()),
            )
            .into());
        }
        let store =
            Arc::new(Store::create_or_open(&ctx.store_path(Some(&loaded)), Some(loaded.fingerprint()))?);
        // Monitoring first, and once: it reads what sources and workers report, whatever runs.
        let health = &loaded.resolved.health;
        let addr = self.metrics_addr.or(health.metrics_addr);
        super::monitor::start(addr, store.path().to_path_buf(), health, ctx.cancel.clone()).await?;
        // One client per chain, shared by its source and its deliveries: one rate limit, one
        // view of each URL's health.
        let clients = crate::engine::rpc::clients(&loaded.resolved.chains)?;

        let mut running =
            run_sources(plans, seda, &clients, store.clone(), Until::Forever, ctx.cancel.clone()).await?;
        let statuses = running.statuses.clone();
        // Delivery runs under its own token too: when every source has stopped, it stops as well.
        let dests = destinations(&loaded.resolved, &clients, &store, &[], &[])?;
        let sinks = sink_targets(&loaded.resolved, &store, &[])?;
        let deliver_cancel = ctx.cancel.child_token();
        let (started_tx, started_rx) = tokio::sync::mpsc::unbounded_channel();
        let chains = dests.len() + sinks.len();
        let delivery = tokio::spawn(run_all(
            dests,
            sinks,
            store.clone(),
            Options::default(),
            deliver_cancel.clone(),
            move |status| {
                let _ = started_tx.send(status);
            },
        ));
        tracing::info!(sources = statuses.len(), destinations = chains, store = %store.path().display(), "watching");
        let stop_progress = CancellationToken::new();
        let style =
            if std::io::stderr().is_terminal() && !ctx.global.json { Style::Live } else { Style::Log };
        let progress = progress::spawn(style, statuses, stop_progress.clone());
        let delivery_progress =
            progress::spawn_deliveries(started_rx, health.status_interval, stop_progress.clone());

        let mut stopped = Vec::new();
        let mut store_error = None;
        let mut delivery = delivery;
        let mut delivered = None;
        loop {
            tokio::select! {
                outcome = running.next() => {
                    let Some(outcome) = outcome else { break };
                    let name = outcome.status.source;
                    match outcome.result {
                        Ok(()) | Err(IngestError::Cancelled) => {}
                        Err(IngestError::Store(e)) => {
                            // The store is everyone's: stop every source, cleanly.
                            ctx.cancel.cancel();
                            store_error.get_or_insert(e);
                        }
                        Err(e) => {
                            // One source stopping never stalls the others.
                            tracing::error!(source = %name, "stopped: {e}");
                            stopped.push(format!("{name}: {e}"));
                        }
                    }
                }
                // Delivery ends before the sources when there is nothing to deliver to, or when
                // the store fails under it (or a worker panicked): then everything stops,
                // cleanly, and the command says why.
                result = &mut delivery, if delivered.is_none() => {
                    if !matches!(result, Ok(Ok(_))) {
                        ctx.cancel.cancel();
                    }
                    delivered = Some(result);
                }
            }
        }
        deliver_cancel.cancel();
        let delivered = match delivered {
            Some(result) => result,
            None => delivery.await,
        };
        // A panicked worker is a bug (exit 1); a store that failed under delivery is exit 3.
        let statuses = match delivered? {
            Ok(statuses) => statuses,
            Err(e) => {
                stop_progress.cancel();
                return Err(e.into());
            }
        };
        for (chain, s) in &statuses {
            tracing::info!(chain = %chain, confirmed = s.counts.confirmed, left = s.counts.left(), txs = s.sent_txs, "delivery stopped");
        }
        stop_progress.cancel();
        let _ = progress.await;
        let _ = delivery_progress.await;
        if let Some(e) = store_error {
            return Err(e.into());
        }
        if !ctx.cancel.is_cancelled() {
            return Err(ExitError::new(
                Exit::Failure,
                format!("every source stopped: {}", stopped.join("; ")),
            )
            .into());
        }
        Ok(if stopped.is_empty() { Exit::Ok } else { Exit::Failure })
    }
}
