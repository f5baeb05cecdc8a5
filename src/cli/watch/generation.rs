//! One generation of `watch`: the sources and delivery workers of one config, under one
//! cancellation token. A reload ends the generation running and starts the next one from the new
//! config; a stop ends the last one. Ending one is bounded: each source finishes the range it
//! commits and each worker its round, and what is still running when the stop timeout passes is
//! dropped where it waits (every write is a transaction, so that is a crash at a clean point:
//! what is in flight is in the store as intents and deliveries, and the next start reconciles it).
//!
//! The next generation starts only once every task of the one before is gone, so that no two
//! workers ever send on one chain at once: nothing is signed twice across a reload.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::progress::{self, Style};
use crate::config::Loaded;
use crate::engine::deliver::{ChainStatus, DeliverError, Destination, Options, destinations, run_all};
use crate::engine::ingest::{IngestError, Outcome, Running, Until, run_sources};
use crate::engine::operator::Registry;
use crate::engine::rpc::Clients;
use crate::engine::sink::{SinkTarget, sink_targets};
use crate::store::{Store, StoreError};

/// A config made ready to run: its clients, destinations and sink targets. Building it is what
/// can fail on a config that validates (a signer key that does not decrypt, a URL a client
/// refuses), so a reload builds it before stopping anything.
pub struct Prepared {
    pub loaded: Loaded,
    clients: Clients,
    dests: Vec<Destination>,
    sinks: Vec<SinkTarget>,
}

impl Prepared {
    /// Tells monitoring what this config expects: its readiness thresholds, and which sources
    /// and destinations exist (one a reload removed is forgotten, not reported as stuck).
    pub fn observe(&self) {
        let Some(board) = crate::engine::observe::board() else { return };
        let resolved = &self.loaded.resolved;
        board.set_thresholds(crate::engine::observe::ready::Thresholds::from(&resolved.health));
        let sources: Vec<String> = resolved
            .sources
            .iter()
            .map(|s| s.name.clone())
            .chain(resolved.seda_sources.iter().map(|s| s.name.clone()))
            .collect();
        let dests: Vec<String> = self
            .dests
            .iter()
            .map(|d| d.chain.clone())
            .chain(self.sinks.iter().map(|s| s.name.clone()))
            .collect();
        board.retain(&sources, &dests);
    }

    pub fn new(loaded: Loaded, store: &Store) -> eyre::Result<Self> {
        // One client per chain, shared by its source and its deliveries: one rate limit, one
        // view of each URL's health.
        let clients = crate::engine::rpc::clients(&loaded.resolved.chains)?;
        let dests = destinations(&loaded.resolved, &clients, store, &[], &[])?;
        let sinks = sink_targets(&loaded.resolved, store, &[])?;
        Ok(Self { loaded, clients, dests, sinks })
    }
}

type Delivered = Result<Result<BTreeMap<String, ChainStatus>, DeliverError>, tokio::task::JoinError>;

/// A generation at work.
pub struct Generation {
    cancel: CancellationToken,
    abandon: CancellationToken,
    running: Running,
    /// Sources still running.
    sources: BTreeSet<String>,
    delivery: JoinHandle<Result<BTreeMap<String, ChainStatus>, DeliverError>>,
    delivered: Option<Delivered>,
    /// Destination chains and sink targets the workers deliver to.
    chains: Vec<String>,
    /// Sources that stopped for good, with why.
    pub stopped: Vec<String>,
    pub store_error: Option<StoreError>,
    stop_progress: CancellationToken,
    progress: JoinHandle<()>,
    delivery_progress: JoinHandle<()>,
}

/// How a generation ended.
pub struct Ended {
    /// What delivery said: the statuses of the workers that ended (an abandoned one has none),
    /// or why it stopped.
    pub delivered: Delivered,
    pub stopped: Vec<String>,
    pub store_error: Option<StoreError>,
}

impl Generation {
    /// Starts the sources and the workers of `prepared` under a child of `parent`: stopping the
    /// command stops the generation too.
    pub async fn start(
        prepared: Prepared,
        store: &Arc<Store>,
        parent: &CancellationToken,
        style: Style,
        registry: &Registry,
    ) -> Result<Self, IngestError> {
        let Prepared { loaded, clients, dests, sinks } = prepared;
        let cancel = parent.child_token();
        let running = run_sources(
            loaded.resolved.sources.clone(),
            loaded.resolved.seda_sources.clone(),
            &clients,
            store.clone(),
            Until::Forever,
            cancel.clone(),
        )
        .await?;
        let statuses = running.statuses.clone();
        let sources = statuses.iter().map(|s| s.borrow().source.clone()).collect();
        let chains: Vec<String> =
            dests.iter().map(|d| d.chain.clone()).chain(sinks.iter().map(|s| s.name.clone())).collect();
        let abandon = CancellationToken::new();
        let opts =
            Options { abandon: abandon.clone(), registry: Some(registry.clone()), ..Options::default() };
        let (started_tx, started_rx) = tokio::sync::mpsc::unbounded_channel();
        let delivery =
            tokio::spawn(run_all(dests, sinks, store.clone(), opts, cancel.clone(), move |status| {
                let _ = started_tx.send(status);
            }));
        tracing::info!(
            sources = statuses.len(),
            destinations = chains.len(),
            store = %store.path().display(),
            config = %loaded.fingerprint(),
            "watching"
        );
        let stop_progress = CancellationToken::new();
        let progress = progress::spawn(style, statuses, stop_progress.clone());
        let delivery_progress = progress::spawn_deliveries(
            started_rx,
            loaded.resolved.health.status_interval,
            stop_progress.clone(),
        );
        Ok(Self {
            cancel,
            abandon,
            running,
            sources,
            delivery,
            delivered: None,
            chains,
            stopped: Vec::new(),
            store_error: None,
            stop_progress,
            progress,
            delivery_progress,
        })
    }

    /// Whether every source and the delivery have ended.
    fn is_over(&self) -> bool {
        self.sources.is_empty() && self.delivered.is_some()
    }

    /// Whether the generation cannot go on: every source ended, or the store or delivery failed
    /// under it (which stops everything, cleanly, and the command says why).
    pub fn must_end(&self) -> bool {
        self.sources.is_empty() || self.store_error.is_some() || self.cancel.is_cancelled()
    }

    /// Waits for the next source or the delivery to end and takes note. Cancel-safe, so that a
    /// caller can wait for it beside a signal.
    pub async fn step(&mut self) {
        tokio::select! {
            outcome = self.running.next(), if !self.sources.is_empty() => match outcome {
                Some(outcome) => self.source_ended(outcome),
                None => self.sources.clear(),
            },
            // Delivery ends before the sources when there is nothing to deliver to, or when the
            // store fails under it (or a worker panicked): then everything stops.
            result = &mut self.delivery, if self.delivered.is_none() => {
                if !matches!(result, Ok(Ok(_))) {
                    self.cancel.cancel();
                }
                self.delivered = Some(result);
            }
            else => std::future::pending().await,
        }
    }

    fn source_ended(&mut self, outcome: Outcome) {
        let name = outcome.status.source;
        self.sources.remove(&name);
        match outcome.result {
            Ok(()) | Err(IngestError::Cancelled) => {}
            Err(IngestError::Store(e)) => {
                // The store is everyone's: stop every source, cleanly.
                self.cancel.cancel();
                self.store_error.get_or_insert(e);
            }
            Err(e) => {
                // One source stopping never stalls the others.
                tracing::error!(source = %name, "stopped: {e}");
                self.stopped.push(format!("{name}: {e}"));
            }
        }
    }

    /// Stops the generation: sources finish the range they commit, workers their round, within
    /// `bound`; past it, what is left is dropped and named. Returns once every task is gone.
    pub async fn end(mut self, bound: Duration) -> Ended {
        self.cancel.cancel();
        let deadline = tokio::time::sleep(bound);
        tokio::pin!(deadline);
        while !self.is_over() {
            tokio::select! {
                () = self.step() => {}
                () = &mut deadline => {
                    self.abandon_rest(bound).await;
                    break;
                }
            }
        }
        self.stop_progress.cancel();
        let _ = self.progress.await;
        let _ = self.delivery_progress.await;
        let delivered = match self.delivered {
            Some(delivered) => delivered,
            None => self.delivery.await,
        };
        Ended { delivered, stopped: self.stopped, store_error: self.store_error }
    }

    /// Drops what did not stop within the bound, waits until it is gone, and says what it was.
    async fn abandon_rest(&mut self, bound: Duration) {
        self.abandon.cancel();
        for outcome in self.running.abandon().await {
            self.source_ended(outcome);
        }
        let sources: Vec<String> = std::mem::take(&mut self.sources).into_iter().collect();
        if self.delivered.is_none() {
            // run_all returns once every worker it aborted is dropped.
            self.delivered = Some((&mut self.delivery).await);
        }
        let finished: BTreeSet<&String> = match &self.delivered {
            Some(Ok(Ok(statuses))) => statuses.keys().collect(),
            _ => BTreeSet::new(),
        };
        let chains: Vec<&String> = self.chains.iter().filter(|c| !finished.contains(c)).collect();
        tracing::warn!(
            timeout = %humantime::format_duration(bound),
            sources = ?sources,
            chains = ?chains,
            "stop timeout passed: abandoned what was still running (committed work is whole; \
             what was in flight is in the store and is reconciled on the next start)"
        );
    }
}
