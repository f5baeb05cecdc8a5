//! What a chain's worker does for an operator between two of its rounds (`engine::operator`):
//! hold still while deliveries are changed, cancel a nonce, or resync — the last two here, inside
//! the worker that owns the chain's nonces, never beside it. After a resync the worker's own idea
//! of its nonces is lined up with what the resync left, as a restart would.

use tokio_util::sync::CancellationToken;

use super::{Worker, store_blocking};
use crate::engine::deliver::DeliverError;
use crate::engine::deliver::control::{self, ControlError, Resynced};
use crate::engine::operator::Request;
use crate::store::records::{IntentState, TxIntent};

/// Where a worker's nonces stand, from the chain's counts and the intents ferry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NonceState {
    /// The nonce the next transaction takes.
    pub next: u64,
    /// Intents below it are all settled.
    pub floor: u64,
    /// Signed or sent, not mined.
    pub in_flight: usize,
}

/// The next nonce is above everything the chain counts (mined or pooled) and every intent
/// ferry still stands by (dropped ones are signed again, so they do not count).
pub(super) fn nonce_state(latest: u64, pending: u64, intents: &[(u64, TxIntent)]) -> NonceState {
    let highest = intents.iter().filter(|(_, i)| i.state != IntentState::Dropped).map(|(n, _)| n + 1).max();
    let next = latest.max(pending).max(highest.unwrap_or(0));
    let floor = intents.iter().find(|(_, i)| !i.is_settled()).map_or(next, |(n, _)| *n);
    let in_flight = intents.iter().filter(|(_, i)| i.is_open()).count();
    NonceState { next, floor, in_flight }
}

/// One past the highest nonce ferry saw confirmed, if any: the count a chain that still holds
/// ferry's transactions must reach (the nonce-gap rule, `health.rs`).
pub(super) fn confirmed_next(intents: &[(u64, TxIntent)]) -> Option<u64> {
    intents.iter().filter(|(_, i)| i.state == IntentState::Confirmed).map(|(n, _)| n + 1).max()
}

impl Worker {
    /// Serves one request; a stop of the command ends whatever it was doing.
    pub(super) async fn serve(&mut self, request: Request, cancel: &CancellationToken) {
        let stopping = || ControlError::Refused("watch is stopping".into());
        match request {
            Request::Hold(hold) => {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = hold.keep() => {}
                }
            }
            Request::Cancel { nonce, max_fee, reply } => {
                let done = tokio::select! {
                    _ = cancel.cancelled() => Err(stopping()),
                    done = control::cancel(&self.dest, &self.store, nonce, max_fee) => done,
                };
                let _ = reply.send(done);
            }
            Request::Resync { reply } => {
                let done = tokio::select! {
                    _ = cancel.cancelled() => Err(stopping()),
                    done = control::resync(&self.dest, &self.store) => done,
                };
                let done = match done {
                    Ok(resynced) => self.line_up(&resynced).map(|()| resynced).map_err(ControlError::from),
                    Err(e) => Err(e),
                };
                let _ = reply.send(done);
            }
        }
    }

    /// After a resync: the next nonce, the floor and what is in flight as a restart would find
    /// them, from the chain's counts the resync read and the intents it left. Without this the
    /// worker would sign above nonces the resync dropped, and leave a gap the chain never fills.
    fn line_up(&mut self, resynced: &Resynced) -> Result<(), DeliverError> {
        let (chain_id, signer) = (self.dest.chain_id, self.signer);
        let intents = store_blocking(|| self.store.intents_from(chain_id, signer, 0))?;
        let state = nonce_state(resynced.latest, resynced.pending, &intents);
        tracing::info!(chain = %self.dest.chain, from = self.next_nonce, to = state.next, "next nonce after the resync");
        self.next_nonce = state.next;
        self.floor = state.floor;
        self.in_flight = state.in_flight;
        self.mined_at.clear();
        self.unseen_at.clear();
        self.unseen_since = None;
        self.status.send_modify(|s| s.next_nonce = state.next);
        // What ferry saw confirmed is what the resync left confirmed (a reset chain's forgotten
        // nonces are dropped now), so the nonce-gap rule is judged again against that.
        self.confirmed_next = confirmed_next(&intents);
        self.judge_gap(resynced.latest, resynced.pending);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, B256, Bytes};

    use super::*;

    fn intent(state: IntentState) -> TxIntent {
        TxIntent {
            state,
            raw: Bytes::new(),
            hash: B256::repeat_byte(1),
            to: Address::ZERO,
            gas_limit: 21_000,
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: None,
            created_at: 0,
            sent_at: None,
            replaced: Vec::new(),
            deliveries: Vec::new(),
            mined: None,
            cancel: None,
        }
    }

    #[test]
    fn the_next_nonce_is_above_the_chain_and_what_ferry_stands_by() {
        use IntentState::{Confirmed, Dropped, Sent};
        // (chain latest, chain pending, intents) → (next, floor, in flight)
        type Case = (u64, u64, Vec<(u64, IntentState)>, (u64, u64, usize));
        let cases: Vec<Case> = vec![
            // A node that lost everything ferry sent: the dropped nonces are signed again.
            (0, 0, vec![(0, Dropped), (1, Dropped), (2, Dropped)], (0, 0, 0)),
            // Mined below, one still pooled, two lost and dropped above it.
            (3, 4, vec![(2, Confirmed), (3, Sent), (4, Dropped), (5, Dropped)], (4, 3, 1)),
            // Nothing dropped: on from the last one.
            (1, 3, vec![(0, Confirmed), (1, Sent), (2, Sent)], (3, 1, 2)),
            // The chain is ahead (another sender used the key): its count wins.
            (9, 9, vec![(0, Confirmed)], (9, 9, 0)),
        ];
        for (latest, pending, intents, want) in cases {
            let intents: Vec<(u64, TxIntent)> = intents.into_iter().map(|(n, s)| (n, intent(s))).collect();
            let got = nonce_state(latest, pending, &intents);
            assert_eq!((got.next, got.floor, got.in_flight), want, "{latest} {pending} {intents:?}");
        }
    }
}
