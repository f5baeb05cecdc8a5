//! The decisions of starting due deliveries, apart from the calls that gather what they rest on:
//! how many may start, what each check and simulation means (ready, skipped, failed, or the
//! signer cannot pay), what a round that met a failing chain keeps, the fees of new transactions,
//! and the intent and delivery records written ahead of any broadcast.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes};

use crate::abi::call::Revert;
use crate::config::GasMargin;
use crate::engine::deliver::fees::{FeePolicy, Fees, Market};
use crate::engine::deliver::worker::Problem;
use crate::store::keys::DeliveryKey;
use crate::store::records::{Delivery, DeliveryState, IntentState, TxIntent};

/// Deliveries started in one round at most: a backlog goes out in rounds of this size, so the
/// first transactions reach the node while later ones are still being checked.
pub const MAX_BATCH: usize = 512;

/// How many deliveries may start now: room under `max_in_flight`, a round at most, and what is
/// left of `--limit`.
pub fn room(max_in_flight: usize, in_flight: usize, limit: Option<usize>, started: usize) -> usize {
    let room = max_in_flight.saturating_sub(in_flight).min(MAX_BATCH);
    match limit {
        Some(limit) => room.min(limit.saturating_sub(started)),
        None => room,
    }
}

/// What checking one due delivery found, in the order the checks run: the target and the item's
/// fields, the target's call, its already-done view, then a simulation (`eth_estimateGas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The delivery's target is not configured (on this chain) any more.
    NoTarget,
    /// The item is not in the store or has no decoded fields.
    NoFields,
    /// The target's call cannot be built from the item's fields.
    BadCall(String),
    /// The already-done view says the item is there.
    ViewSaysThere,
    /// The already-done view's answer cannot be read.
    ViewUnreadable(String),
    /// The simulation passed: the call, its gas estimate and the target's margin on it.
    Estimated { to: Address, data: Bytes, gas: u64, margin: GasMargin },
    /// The simulation reverted, as the target reads the revert.
    Reverted(Revert),
    /// The node refused the simulation otherwise; its message.
    Refused(String),
}

/// A delivery ready to be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub key: DeliveryKey,
    pub delivery: Delivery,
    pub to: Address,
    pub data: Bytes,
    pub gas_limit: u64,
}

/// What stops a round: the chain failing (an RPC error, whatever it is), or a signer that cannot
/// pay for gas (the node's message), which pauses the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop<E> {
    Failing(E),
    CannotPay(String),
}

/// A round of due deliveries decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<E> {
    /// To sign, in the order they were due.
    pub ready: Vec<Ready>,
    /// Settled without a transaction (skipped, or failed), as written.
    pub settled: Vec<(DeliveryKey, Delivery)>,
    /// What stopped the round, in the order the deliveries were due: with any, the settled ones
    /// are written and nothing is signed (the ready ones wait for the next round).
    pub stops: Vec<Stop<E>>,
}

/// What one due delivery's checks mean: ready to sign, settled without a transaction (its state,
/// reason, and whether it is tried again), or a signer that cannot pay.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Ready { to: Address, data: Bytes, gas_limit: u64 },
    Settle(DeliveryState, String, bool),
    CannotPay(String),
}

fn verdict(found: Found) -> Verdict {
    use DeliveryState::{Failed, Skipped};
    match found {
        Found::NoTarget => Verdict::Settle(Failed, "target not configured".into(), true),
        Found::NoFields => {
            Verdict::Settle(Failed, "the item is not in the store or has no decoded fields".into(), false)
        }
        Found::BadCall(e) => Verdict::Settle(Failed, e, false),
        Found::ViewSaysThere => Verdict::Settle(Skipped, "already there (the view says so)".into(), false),
        Found::ViewUnreadable(e) => Verdict::Settle(Failed, format!("already-done check: {e}"), true),
        // A margin for state that changes between the estimate and the block.
        Found::Estimated { to, data, gas, margin } => {
            Verdict::Ready { to, data, gas_limit: margin.limit(gas) }
        }
        Found::Reverted(Revert::AlreadyThere(what)) => {
            Verdict::Settle(Skipped, format!("already there: {what}"), false)
        }
        Found::Reverted(Revert::Failed(reason)) => Verdict::Settle(Failed, reason, false),
        Found::Refused(m) if m.to_ascii_lowercase().contains("insufficient funds") => Verdict::CannotPay(m),
        Found::Refused(m) => Verdict::Settle(Failed, format!("simulation failed: {m}"), true),
    }
}

/// Decides every due delivery from what its checks found (or the error that kept them from
/// finding anything), at unix second `now`.
pub fn batch<E>(due: Vec<(DeliveryKey, Delivery, Result<Found, E>)>, now: u64) -> Batch<E> {
    let mut out = Batch { ready: Vec::new(), settled: Vec::new(), stops: Vec::new() };
    for (key, delivery, found) in due {
        match found.map(verdict) {
            Ok(Verdict::Ready { to, data, gas_limit }) => {
                out.ready.push(Ready { key, delivery, to, data, gas_limit });
            }
            Ok(Verdict::Settle(state, reason, retryable)) => {
                out.settled.push((key, settle(delivery, state, reason, retryable, now)));
            }
            Ok(Verdict::CannotPay(m)) => out.stops.push(Stop::CannotPay(m)),
            Err(e) => out.stops.push(Stop::Failing(e)),
        }
    }
    out
}

/// A delivery settled without a transaction; a retryable failure waits with backoff.
pub fn settle(mut d: Delivery, state: DeliveryState, reason: String, retryable: bool, now: u64) -> Delivery {
    d.state = state;
    d.reason = Some(reason);
    d.retryable = retryable;
    d.attempts += 1;
    d.updated_at = now;
    if retryable {
        let wait = crate::engine::rpc::backoff(Duration::from_secs(2), Duration::from_secs(600), d.attempts);
        d.next_attempt_at = Some(now + wait.as_secs().max(1));
    }
    d
}

/// Fees for this round's new transactions; below the base fee they are sent anyway (the market
/// may fall), and the chain's status says so.
pub fn fees(policy: &FeePolicy, market: Market) -> (Fees, Option<Problem>) {
    let fees = policy.fresh(market);
    let problem = (fees.max_fee < market.base_fee)
        .then_some(Problem::CapBelowBaseFee { cap: policy.cap, base_fee: market.base_fee });
    (fees, problem)
}

/// The intent of a delivery signed at `nonce`, and the delivery as it is written with it (sending,
/// with its signer, nonce and hash), both before any broadcast.
pub fn signed(
    ready: Ready,
    signer: Address,
    nonce: u64,
    fees: Fees,
    (raw, hash): (Bytes, B256),
    now: u64,
) -> (TxIntent, Delivery) {
    let intent = TxIntent {
        state: IntentState::Signed,
        raw,
        hash,
        to: ready.to,
        gas_limit: ready.gas_limit,
        max_fee_per_gas: fees.max_fee,
        max_priority_fee_per_gas: fees.priority,
        created_at: now,
        sent_at: None,
        replaced: Vec::new(),
        deliveries: vec![ready.key],
        mined: None,
        cancel: None,
    };
    let mut d = ready.delivery;
    d.state = DeliveryState::Sending;
    d.signer = Some(signer);
    d.nonce = Some(nonce);
    d.tx_hashes.push(hash);
    d.attempts += 1;
    d.next_attempt_at = None;
    d.reason = None;
    d.retryable = true;
    d.updated_at = now;
    (intent, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::deliver::fees::GWEI;
    use crate::store::keys::{EventKey, ItemKey};

    const NOW: u64 = 1_000_000;
    const TO: Address = Address::repeat_byte(0x77);

    fn key(n: u32) -> DeliveryKey {
        DeliveryKey {
            target: 1,
            chain: 31337,
            item: ItemKey::Event(EventKey { chain: 1, block: 5, log_index: n }),
        }
    }

    fn estimated(gas: u64) -> Found {
        Found::Estimated { to: TO, data: Bytes::from(vec![0xab]), gas, margin: GasMargin::DEFAULT }
    }

    #[test]
    fn room_is_what_max_in_flight_a_round_and_the_limit_leave() {
        // (max_in_flight, in_flight, limit, started) → room
        let cases = [
            (1024, 0, None, 0, MAX_BATCH),
            (1024, 1000, None, 0, 24),
            (10, 10, None, 0, 0),
            (10, 12, None, 0, 0),
            (1024, 0, Some(3), 0, 3),
            (1024, 0, Some(3), 2, 1),
            (1024, 0, Some(3), 3, 0),
            (1024, 0, Some(3), 5, 0),
            (2, 0, Some(3), 0, 2),
        ];
        for (max, in_flight, limit, started, want) in cases {
            assert_eq!(room(max, in_flight, limit, started), want, "{max} {in_flight} {limit:?} {started}");
        }
    }

    /// Every answer a due delivery's checks can give, and what it becomes.
    #[test]
    fn each_check_result_settles_readies_or_pauses() {
        use DeliveryState::{Failed, Skipped};
        // (found, state, reason, retryable) for those settled without a transaction.
        let settles = [
            (Found::NoTarget, Failed, "target not configured", true),
            (Found::NoFields, Failed, "the item is not in the store or has no decoded fields", false),
            (Found::BadCall("no field `root`".into()), Failed, "no field `root`", false),
            (Found::ViewSaysThere, Skipped, "already there (the view says so)", false),
            (Found::ViewUnreadable("short".into()), Failed, "already-done check: short", true),
            (
                Found::Reverted(Revert::AlreadyThere("BatchAlreadyExists(7)".into())),
                Skipped,
                "already there: BatchAlreadyExists(7)",
                false,
            ),
            (Found::Reverted(Revert::Failed("NotAllowed()".into())), Failed, "NotAllowed()", false),
            (
                Found::Refused("execution timeout".into()),
                Failed,
                "simulation failed: execution timeout",
                true,
            ),
        ];
        for (found, state, reason, retryable) in settles {
            let what = format!("{found:?}");
            let b = batch::<()>(vec![(key(0), Delivery::pending(NOW - 10), Ok(found))], NOW);
            assert!(b.ready.is_empty() && b.stops.is_empty(), "{what}: {b:?}");
            let [(k, d)] = &b.settled[..] else { panic!("{what}: {b:?}") };
            assert_eq!(*k, key(0));
            assert_eq!(
                (d.state, d.reason.as_deref(), d.retryable),
                (state, Some(reason), retryable),
                "{what}"
            );
            assert_eq!((d.attempts, d.updated_at), (1, NOW), "{what}");
            // A retryable failure waits with backoff; a final one is not retried by itself.
            assert_eq!(d.next_attempt_at.is_some_and(|t| t > NOW), retryable, "{what}: {d:?}");
        }

        let b = batch::<()>(vec![(key(0), Delivery::pending(NOW), Ok(estimated(100_000)))], NOW);
        let want = Ready {
            key: key(0),
            delivery: Delivery::pending(NOW),
            to: TO,
            data: Bytes::from(vec![0xab]),
            gas_limit: 125_000,
        };
        assert_eq!((b.ready, b.settled, b.stops), (vec![want], vec![], vec![]));

        let broke = "Insufficient funds for gas * price + value".to_string();
        let b = batch::<()>(vec![(key(0), Delivery::pending(NOW), Ok(Found::Refused(broke.clone())))], NOW);
        assert_eq!((b.ready, b.settled, b.stops), (vec![], vec![], vec![Stop::CannotPay(broke)]));
    }

    /// A target's `gas_limit_multiplier` scales the estimate; the default is the 1.2 + 5,000 gas
    /// ferry has always used.
    #[test]
    fn the_gas_limit_is_the_estimate_times_the_targets_multiplier() {
        // (per mille, estimate) → gas limit
        let cases = [
            (1200, 100_000, 125_000),
            (1000, 100_000, 105_000),
            (2000, 50_000, 105_000),
            (10_000, 21_000, 215_000),
        ];
        for (per_mille, gas, want) in cases {
            let margin = GasMargin { per_mille };
            let found = Found::Estimated { to: TO, data: Bytes::new(), gas, margin };
            let b = batch::<()>(vec![(key(0), Delivery::pending(NOW), Ok(found))], NOW);
            assert_eq!(b.ready[0].gas_limit, want, "{per_mille} {gas}");
        }
    }

    #[test]
    fn a_gas_estimate_near_the_top_of_u64_saturates() {
        let b = batch::<()>(vec![(key(0), Delivery::pending(NOW), Ok(estimated(u64::MAX - 1)))], NOW);
        assert_eq!(b.ready[0].gas_limit, u64::MAX);
    }

    #[test]
    fn a_failing_chain_stops_the_round_keeping_what_was_settled_in_order() {
        let due = vec![
            (key(0), Delivery::pending(NOW), Ok(estimated(50_000))),
            (key(1), Delivery::pending(NOW), Err("rpc down")),
            (key(2), Delivery::pending(NOW), Ok(Found::ViewSaysThere)),
            (key(3), Delivery::pending(NOW), Ok(Found::Refused("insufficient funds".into()))),
            (key(4), Delivery::pending(NOW), Err("rpc down again")),
        ];
        let b = batch(due, NOW);
        assert_eq!(b.ready.iter().map(|r| r.key).collect::<Vec<_>>(), vec![key(0)]);
        assert_eq!(b.settled.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![key(2)]);
        assert_eq!(
            b.stops,
            vec![
                Stop::Failing("rpc down"),
                Stop::CannotPay("insufficient funds".into()),
                Stop::Failing("rpc down again")
            ]
        );
        let nothing = batch::<()>(Vec::new(), NOW);
        assert!(nothing.ready.is_empty() && nothing.settled.is_empty() && nothing.stops.is_empty());
    }

    #[test]
    fn new_transactions_below_the_base_fee_go_out_and_say_so() {
        let policy = crate::engine::deliver::fees::test_policy(20 * GWEI);
        let calm = Market { base_fee: 2 * GWEI, suggested_priority: GWEI };
        assert_eq!(fees(&policy, calm), (Fees { max_fee: 5 * GWEI, priority: Some(GWEI) }, None));
        // A legacy chain offers the gas price itself: equal to the market is not below it.
        let legacy = FeePolicy { legacy: true, ..policy };
        let price = Market { base_fee: 10 * GWEI, suggested_priority: 0 };
        assert_eq!(fees(&legacy, price), (Fees { max_fee: 10 * GWEI, priority: None }, None));
        let spike = Market { base_fee: 30 * GWEI, suggested_priority: GWEI };
        assert_eq!(
            fees(&policy, spike),
            (
                Fees { max_fee: 20 * GWEI, priority: Some(GWEI) },
                Some(Problem::CapBelowBaseFee { cap: 20 * GWEI, base_fee: 30 * GWEI })
            )
        );
    }

    #[test]
    fn a_signed_delivery_is_written_sending_with_its_nonce_and_hash() {
        let signer = Address::repeat_byte(0x51);
        let hash = B256::repeat_byte(0x99);
        let old = B256::repeat_byte(0x98);
        let mut delivery = Delivery::pending(NOW - 100);
        // A failed delivery whose retry is due: its reason and backoff go, its attempts count on.
        delivery.state = DeliveryState::Failed;
        delivery.reason = Some("simulation failed: timeout".into());
        delivery.attempts = 2;
        delivery.next_attempt_at = Some(NOW - 1);
        delivery.tx_hashes = vec![old];
        let ready = Ready { key: key(3), delivery, to: TO, data: Bytes::from(vec![1]), gas_limit: 70_000 };
        let fees = Fees { max_fee: 5 * GWEI, priority: Some(GWEI) };
        let (intent, d) = signed(ready, signer, 41, fees, (Bytes::from(vec![2]), hash), NOW);
        assert_eq!(intent.state, IntentState::Signed);
        assert_eq!(
            (intent.hash, intent.raw.clone(), intent.to, intent.gas_limit),
            (hash, Bytes::from(vec![2]), TO, 70_000)
        );
        assert_eq!((intent.max_fee_per_gas, intent.max_priority_fee_per_gas), (5 * GWEI, Some(GWEI)));
        assert_eq!((intent.created_at, intent.sent_at, intent.deliveries.clone()), (NOW, None, vec![key(3)]));
        assert!(intent.replaced.is_empty() && intent.mined.is_none() && intent.cancel.is_none());
        assert_eq!((d.state, d.signer, d.nonce), (DeliveryState::Sending, Some(signer), Some(41)));
        assert_eq!(d.tx_hashes, vec![old, hash]);
        assert_eq!(
            (d.attempts, d.next_attempt_at, d.reason, d.retryable, d.updated_at),
            (3, None, None, true, NOW)
        );
    }
}
