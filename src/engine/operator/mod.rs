//! The operator's actions on a running `watch`: `inspect-store retry|skip|cancel|resync` hand
//! them over a local control socket (`server`, `client`, the wire format in `protocol`) instead of
//! opening the store, which `watch` holds.
//!
//! Who may touch what decides how an action runs:
//! - a chain's nonces and intents are its delivery worker's, so `cancel` and `resync` run
//!   *inside* that worker, between two of its rounds, never beside it ([`Request::Cancel`],
//!   [`Request::Resync`]);
//! - deliveries are written by the worker that owns them (a chain's, or a sink target's), which
//!   writes what it read earlier in the round; so `retry` and `skip` first hold every worker that
//!   owns one of the deliveries between rounds ([`Request::Hold`]), write the change in one
//!   transaction, and let them go, which wakes them.
//!
//! Workers come and go while `watch` runs (a reload stops one generation and starts the next), so
//! they are found through a [`Registry`] they join when they start and leave when they stop
//! (dropping their [`Inbox`]), not wired once.

pub mod client;
pub mod protocol;
pub mod server;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::engine::deliver::control::{Cancelled, ControlError, Resynced};

/// Requests a worker may have waiting: a few at most (an operator's commands).
const INBOX: usize = 8;

/// How long a worker holds still for an operator's change before going on regardless: well above
/// what the change takes (one write transaction), so that a handler that died cannot stall a
/// chain for good.
const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// Who a registered worker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The delivery worker of a destination chain: it owns the chain's nonces, intents and
    /// deliveries.
    Chain { name: String, chain_id: u64 },
    /// The worker of a sink target: it owns the target's deliveries.
    Sink { name: String, target: u32 },
}

/// What a worker is asked to do between two of its rounds.
#[derive(Debug)]
pub enum Request {
    /// Hold still while an operator's change to its deliveries is written.
    Hold(Hold),
    /// Cancel the open transaction at `nonce` (`control::cancel`).
    Cancel { nonce: u64, max_fee: Option<u128>, reply: oneshot::Sender<Result<Cancelled, ControlError>> },
    /// Line the chain's nonces up with the node's (`control::resync`).
    Resync { reply: oneshot::Sender<Result<Resynced, ControlError>> },
}

/// A worker's promise to hold still until released.
#[derive(Debug)]
pub struct Hold {
    held: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

impl Hold {
    /// Says the worker is holding, then waits to be released (or for the one who asked to be
    /// gone, or for [`HOLD_LIMIT`]).
    pub async fn keep(self) {
        if self.held.send(()).is_err() {
            return;
        }
        let _ = tokio::time::timeout(HOLD_LIMIT, self.release).await;
    }
}

/// The workers running now, each with the sender of its [`Inbox`]. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<Entries>>,
}

#[derive(Debug, Default)]
struct Entries {
    next: u64,
    workers: BTreeMap<u64, (Owner, mpsc::Sender<Request>)>,
}

impl Registry {
    /// Registers a worker that is starting; it leaves when the returned inbox is dropped.
    pub fn register(&self, owner: Owner) -> Inbox {
        let (tx, rx) = mpsc::channel(INBOX);
        let mut entries = self.lock();
        let id = entries.next;
        entries.next += 1;
        entries.workers.insert(id, (owner, tx));
        Inbox { rx, id, registry: self.clone() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic elsewhere while the lock was held leaves a map that is still whole.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The delivery worker of the chain named `chain`; the newest when a reload has a second
    /// one starting while the first stops.
    pub fn chain(&self, chain: &str) -> Option<mpsc::Sender<Request>> {
        let entries = self.lock();
        entries.workers.values().rev().find_map(|(owner, tx)| match owner {
            Owner::Chain { name, .. } if name == chain => Some(tx.clone()),
            _ => None,
        })
    }

    /// Every registered worker `owns` accepts.
    pub fn owners(&self, owns: impl Fn(&Owner) -> bool) -> Vec<(Owner, mpsc::Sender<Request>)> {
        self.lock().workers.values().filter(|(owner, _)| owns(owner)).cloned().collect()
    }
}

/// Where a worker receives requests; leaving the registry when dropped.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::Receiver<Request>,
    id: u64,
    registry: Registry,
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.registry.lock().workers.remove(&self.id);
    }
}

impl Inbox {
    /// A request waiting now, without waiting for one.
    pub fn try_next(inbox: &mut Option<Inbox>) -> Option<Request> {
        inbox.as_mut().and_then(|i| i.rx.try_recv().ok())
    }

    /// The next request; never resolves without an inbox (a `push` has none).
    pub async fn next(inbox: &mut Option<Inbox>) -> Request {
        match inbox.as_mut() {
            Some(inbox) => match inbox.rx.recv().await {
                Some(request) => request,
                // Every sender is gone: the registry forgot this worker. Nothing will come.
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}

/// How a worker without nonces (a sink's) serves a request: it holds still when asked, and
/// refuses what only a chain's worker does.
pub async fn serve_without_nonces(request: Request, cancel: &tokio_util::sync::CancellationToken) {
    let refused = || ControlError::Refused("a sink target has no nonces to cancel or resync".into());
    match request {
        Request::Hold(hold) => {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = hold.keep() => {}
            }
        }
        Request::Cancel { reply, .. } => {
            let _ = reply.send(Err(refused()));
        }
        Request::Resync { reply } => {
            let _ = reply.send(Err(refused()));
        }
    }
}

/// Asks the workers in `workers` to hold still, and waits until each holds (or `limit` runs out:
/// then the ones holding are let go). Dropping what is returned lets them all go.
pub async fn hold(
    workers: Vec<(Owner, mpsc::Sender<Request>)>,
    limit: Duration,
) -> Result<Vec<oneshot::Sender<()>>, Owner> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut releases = Vec::with_capacity(workers.len());
    let mut waits = Vec::with_capacity(workers.len());
    for (owner, tx) in workers {
        let (held_tx, held_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        let request = Request::Hold(Hold { held: held_tx, release: release_rx });
        // A worker gone since it was looked up holds nothing anymore.
        if tokio::time::timeout_at(deadline, tx.send(request)).await.is_err() {
            return Err(owner);
        }
        releases.push(release_tx);
        waits.push((owner, held_rx));
    }
    for (owner, held) in waits {
        match tokio::time::timeout_at(deadline, held).await {
            Ok(_) => {}
            Err(_) => return Err(owner),
        }
    }
    Ok(releases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workers_leave_the_registry_when_their_inbox_goes() {
        let registry = Registry::default();
        let a = registry.register(Owner::Chain { name: "a".into(), chain_id: 1 });
        let b = registry.register(Owner::Sink { name: "s".into(), target: 3 });
        assert!(registry.chain("a").is_some());
        assert!(registry.chain("s").is_none(), "a sink is not a chain");
        assert_eq!(registry.owners(|_| true).len(), 2);
        drop(a);
        assert!(registry.chain("a").is_none());
        drop(b);
        assert!(registry.owners(|_| true).is_empty());
    }

    #[tokio::test]
    async fn a_hold_waits_for_every_worker_and_lets_them_go_when_dropped() {
        let registry = Registry::default();
        let mut inbox = Some(registry.register(Owner::Chain { name: "a".into(), chain_id: 1 }));
        let worker = tokio::spawn(async move {
            let Request::Hold(hold) = Inbox::next(&mut inbox).await else { panic!("a hold") };
            hold.keep().await;
            inbox
        });
        let releases = hold(registry.owners(|_| true), Duration::from_secs(5)).await.expect("held");
        assert!(!worker.is_finished(), "holds until released");
        drop(releases);
        tokio::time::timeout(Duration::from_secs(5), worker).await.expect("released").expect("joined");
    }

    #[tokio::test]
    async fn a_worker_that_does_not_come_round_is_named() {
        let registry = Registry::default();
        let _inbox = registry.register(Owner::Chain { name: "slow".into(), chain_id: 7 });
        let held = hold(registry.owners(|_| true), Duration::from_millis(50)).await;
        assert_eq!(held.err(), Some(Owner::Chain { name: "slow".into(), chain_id: 7 }));
    }
}
