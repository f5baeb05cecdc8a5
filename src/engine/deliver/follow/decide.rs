//! The decisions of a follow round, apart from the calls that gather what they rest on: plain
//! data in (the unsettled intents and what the chain showed about each), plain data out (what to
//! write, what to broadcast, what to replace, why nonces wait). The rules of `evidence.rs` and of
//! the module docs of `deliver` live here, so they are tested without a node:
//!
//! - a receipt for any of an intent's hashes: mined; as deep as the chain's confirmations:
//!   confirmed;
//! - a mined receipt that disappears counts as reorged only when its block is no longer the
//!   chain's block at that height; a node that lacks the receipt proves nothing;
//! - a used nonce without a visible receipt waits; its deliveries go back to pending only when a
//!   transaction none of ferry's is found in a block as deep as the confirmations;
//! - an open intent above the chain's count is replaced after `bump_after` (at the fee cap it
//!   waits, and the chain's status says so), and a signed one is broadcast.
//!
//! Nothing here signs: a decision to replace is a list of nonces, and the new fees for each.

use std::time::Duration;

use alloy::primitives::{B256, Bytes};

use crate::engine::deliver::evidence::{self, Evidence, UsedNonce};
use crate::engine::deliver::fees::{FeePolicy, Fees, Market};
use crate::engine::deliver::worker::{Problem, Update};
use crate::store::keys::DeliveryKey;
use crate::store::records::{DeliveryState, IntentState, Receipt, TxIntent};

/// Sent, unmined transactions broadcast again in one round at most (lowest nonces first).
pub const REBROADCAST_MAX: usize = 64;

/// How long nonces may wait for their receipts before the chain's status says so.
pub const UNSEEN_WARN_AFTER: Duration = Duration::from_secs(30);

/// What a round found out about one unsettled intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Nothing asked: an open intent at or above the signer's mined count, a mined one not deep
    /// enough to be checked again, or a settled one.
    Nothing,
    /// An open intent has a receipt for one of its hashes. For a reverted call that is not the
    /// operator's cancellation: whether each delivery is there anyway (the already-done view's
    /// reason), in the order of the intent's deliveries.
    Receipt { receipt: Receipt, already_done: Vec<Option<String>> },
    /// An open intent below the signer's mined count has no receipt for any of its hashes: what
    /// locating the transaction that used the nonce showed.
    NoReceipt(Evidence),
    /// A mined intent deep enough, checked again: its receipt is there (maybe in another block).
    StillMined(Receipt),
    /// A mined intent deep enough, checked again: no receipt, and its block is still the chain's
    /// at that height or the node does not have it (proves nothing).
    ReceiptNotVisible,
    /// A mined intent deep enough, checked again: no receipt, and the chain has another block at
    /// that height now (a reorg).
    BlockReplaced,
}

/// One unsettled intent and what the round saw of it.
#[derive(Debug, Clone)]
pub struct Followed {
    pub nonce: u64,
    pub intent: TxIntent,
    pub seen: Seen,
}

/// The chain as the round saw it, and the rules that apply.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// The signer's mined transaction count.
    pub latest: u64,
    pub head: u64,
    pub confirmations: u64,
    /// Seconds after its first broadcast before an unmined transaction is replaced.
    pub bump_after: u64,
    /// Unix seconds.
    pub now: u64,
    /// Whether sent, unmined transactions are due to be broadcast again (every 10 s).
    pub rebroadcast: bool,
}

/// What a round does. Indexes point into the `Followed` slice it was decided from.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// The intents that change, with how their deliveries change, in nonce order.
    pub updates: Vec<(usize, Update)>,
    /// Due for a replacement with higher fees (signed, then written before any broadcast).
    pub bumps: Vec<usize>,
    /// To broadcast after the writes, in nonce order, each once: reorged ones, signed ones,
    /// sent ones due again, and every one due for a bump (replaced or, at the cap, the same).
    pub broadcast: Vec<usize>,
    /// Why each used nonce without a visible receipt waits, lowest first.
    pub waiting: Vec<String>,
    /// Deliveries that failed for good: a reverted call not already there.
    pub failed: Vec<(DeliveryKey, String)>,
}

/// Whether a block is `confirmations` deep at `head` (the block itself counts as one).
pub fn deep(head: u64, block: u64, confirmations: u64) -> bool {
    head + 1 >= block + confirmations
}

/// Decides a round, in nonce order.
pub fn follow(followed: &[Followed], round: &Round) -> Plan {
    let mut plan = Plan::default();
    for (i, f) in followed.iter().enumerate() {
        let (nonce, intent) = (f.nonce, &f.intent);
        match intent.state {
            IntentState::Dropped | IntentState::Confirmed => {}
            IntentState::Mined => match &f.seen {
                Seen::StillMined(r) if deep(round.head, r.block, round.confirmations) => {
                    plan.updates.push((i, Update::Confirmed(r.clone())));
                }
                // Mined again in another block of a new branch: that one's depth is awaited.
                Seen::StillMined(_) => {}
                Seen::BlockReplaced => {
                    plan.updates.push((i, Update::Reorged));
                    plan.broadcast.push(i);
                }
                Seen::ReceiptNotVisible => plan
                    .waiting
                    .push(format!("nonce {nonce} mined, its receipt not visible on the node that answered")),
                Seen::Nothing | Seen::Receipt { .. } | Seen::NoReceipt(_) => {}
            },
            IntentState::Signed | IntentState::Sent => match &f.seen {
                Seen::Receipt { receipt, already_done } => {
                    let verdicts = verdicts(intent, receipt, already_done);
                    plan.failed.extend(
                        verdicts
                            .iter()
                            .filter(|(_, state, _)| *state == DeliveryState::Failed)
                            .filter(|_| intent.cancel != Some(receipt.tx_hash))
                            .map(|(key, _, reason)| (*key, reason.clone())),
                    );
                    plan.updates.push((i, Update::Mined { receipt: receipt.clone(), verdicts }));
                }
                Seen::NoReceipt(found) => {
                    match evidence::judge(nonce, *found, round.head, round.confirmations) {
                        UsedNonce::TakenByOther(reason) => plan.updates.push((i, Update::Dropped(reason))),
                        UsedNonce::Wait(reason) => plan.waiting.push(reason),
                    }
                }
                // Due for a replacement: sent (or refused under the base fee) `bump_after` ago.
                Seen::Nothing if intent.sent_at.is_some_and(|t| t + round.bump_after <= round.now) => {
                    plan.bumps.push(i);
                }
                Seen::Nothing if intent.state == IntentState::Signed => plan.broadcast.push(i),
                Seen::Nothing | Seen::StillMined(_) | Seen::ReceiptNotVisible | Seen::BlockReplaced => {}
            },
        }
    }
    // Sent and not mined: the same bytes again now and then, lowest nonces first, for a node that
    // lost them (a restart, a reorg that dropped them); else they wait for `bump_after`.
    if round.rebroadcast {
        let again: Vec<usize> = (0..followed.len())
            .filter(|&i| {
                followed[i].intent.state == IntentState::Sent
                    && followed[i].nonce >= round.latest
                    && !plan.bumps.contains(&i)
                    && !plan.broadcast.contains(&i)
            })
            .take(REBROADCAST_MAX)
            .collect();
        plan.broadcast.extend(again);
    }
    // Every intent due for a bump goes out: replaced, or at the cap the same bytes again, in
    // case the node dropped them or refused them under a base fee that has since fallen.
    plan.broadcast.extend(&plan.bumps);
    plan.broadcast.sort_unstable();
    plan.broadcast.dedup();
    plan
}

/// What a receipt settles at once: a cancellation fails its deliveries; a reverted call is
/// skipped where the already-done view says the item is there (someone else delivered it), else
/// failed for good. A successful call settles nothing yet (it waits for confirmations).
fn verdicts(
    intent: &TxIntent,
    receipt: &Receipt,
    already_done: &[Option<String>],
) -> Vec<(DeliveryKey, DeliveryState, String)> {
    if intent.cancel == Some(receipt.tx_hash) {
        return intent
            .deliveries
            .iter()
            .map(|key| (*key, DeliveryState::Failed, "cancelled by the operator".to_string()))
            .collect();
    }
    if receipt.success {
        return Vec::new();
    }
    intent
        .deliveries
        .iter()
        .enumerate()
        .map(|(k, key)| match already_done.get(k).cloned().flatten() {
            Some(why) => (*key, DeliveryState::Skipped, why),
            None => {
                (*key, DeliveryState::Failed, format!("transaction {} reverted on-chain", receipt.tx_hash))
            }
        })
        .collect()
}

/// The intent itself after an update of the round.
pub fn settle(intent: &mut TxIntent, update: &Update) {
    match update {
        Update::Confirmed(_) => intent.state = IntentState::Confirmed,
        Update::Mined { receipt, .. } => {
            intent.state = IntentState::Mined;
            intent.mined = Some(receipt.tx_hash);
        }
        Update::Reorged => {
            intent.state = IntentState::Signed;
            intent.mined = None;
        }
        Update::Dropped(_) | Update::Forgotten(_) => intent.state = IntentState::Dropped,
        Update::None | Update::Sent | Update::Bumped(_) => {}
    }
}

/// What a replacement of an intent not mined after `bump_after` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bump {
    /// Sign it again at the same nonce with these fees.
    Replace(Fees),
    /// Already at the fee cap: nothing higher can be offered; it waits, and the status says why.
    AtCap(Problem),
}

pub fn bump(policy: &FeePolicy, nonce: u64, intent: &TxIntent, market: Market) -> Bump {
    let old = Fees { max_fee: intent.max_fee_per_gas, priority: intent.max_priority_fee_per_gas };
    match policy.bumped(old, market) {
        Some(fees) => Bump::Replace(fees),
        None if market.base_fee > old.max_fee => {
            Bump::AtCap(Problem::BaseFeeAboveCap { nonce, base_fee: market.base_fee, cap: policy.cap })
        }
        None => Bump::AtCap(Problem::AtFeeCap { nonce, cap: policy.cap }),
    }
}

/// The intent after its replacement was signed: the old hash is kept among the replaced (and an
/// operator's cancellation follows its own replacement), and the new bytes wait to be broadcast.
pub fn replace(intent: &mut TxIntent, raw: Bytes, hash: B256, fees: Fees) {
    intent.replaced.push(intent.hash);
    if intent.cancel == Some(intent.hash) {
        intent.cancel = Some(hash);
    }
    intent.hash = hash;
    intent.raw = raw;
    intent.max_fee_per_gas = fees.max_fee;
    intent.max_priority_fee_per_gas = fees.priority;
    intent.state = IntentState::Signed;
    intent.sent_at = None;
}

/// How the chain's status changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    Keep,
    Set(Problem),
    Clear,
}

/// Nonces used without a visible receipt wait; once they have waited `UNSEEN_WARN_AFTER`, the
/// chain's status says so (unless it already names another problem), and stops saying so once
/// none waits.
pub fn unseen_status(current: Option<&Problem>, waiting: &[String], waited: Duration) -> StatusChange {
    match waiting.first() {
        None if matches!(current, Some(Problem::UnseenNonces { .. })) => StatusChange::Clear,
        None => StatusChange::Keep,
        Some(first) if waited >= UNSEEN_WARN_AFTER && current.is_none() => {
            StatusChange::Set(Problem::UnseenNonces { count: waiting.len(), first: first.clone() })
        }
        Some(_) => StatusChange::Keep,
    }
}

/// A round with no transaction at the fee cap clears a problem about fees.
pub fn fee_status(current: Option<&Problem>, at_cap: bool) -> StatusChange {
    if !at_cap && current.is_some_and(Problem::is_about_fees) {
        StatusChange::Clear
    } else {
        StatusChange::Keep
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Address;

    use super::*;
    use crate::engine::deliver::fees::GWEI;
    use crate::store::keys::{EventKey, ItemKey};

    const OURS: B256 = B256::repeat_byte(0x0a);
    const BUMPED: B256 = B256::repeat_byte(0x0b);
    const CANCEL: B256 = B256::repeat_byte(0x0c);
    const FOREIGN: B256 = B256::repeat_byte(0xf0);
    const BLOCK_HASH: B256 = B256::repeat_byte(0xbb);
    /// Unix seconds "now" in every round.
    const NOW: u64 = 1_000_000;

    fn key(n: u32) -> DeliveryKey {
        DeliveryKey {
            target: 1,
            chain: 31337,
            item: ItemKey::Event(EventKey { chain: 1, block: 5, log_index: n }),
        }
    }

    fn intent(state: IntentState, sent_at: Option<u64>) -> TxIntent {
        TxIntent {
            state,
            raw: Bytes::from(vec![1, 2, 3]),
            hash: OURS,
            to: Address::ZERO,
            gas_limit: 60_000,
            max_fee_per_gas: 10 * GWEI,
            max_priority_fee_per_gas: Some(GWEI),
            created_at: NOW - 100,
            sent_at,
            replaced: Vec::new(),
            deliveries: vec![key(0), key(1)],
            mined: (state == IntentState::Mined).then_some(OURS),
            cancel: None,
        }
    }

    fn receipt(block: u64, success: bool) -> Receipt {
        Receipt {
            tx_hash: OURS,
            block,
            block_hash: BLOCK_HASH,
            success,
            gas_used: 50_000,
            effective_gas_price: GWEI,
        }
    }

    /// Head 100, signer's mined count 10, 3 confirmations, bump after 60 s, no rebroadcast due.
    fn round() -> Round {
        Round { latest: 10, head: 100, confirmations: 3, bump_after: 60, now: NOW, rebroadcast: false }
    }

    fn one(nonce: u64, intent: TxIntent, seen: Seen) -> Vec<Followed> {
        vec![Followed { nonce, intent, seen }]
    }

    /// What a round decides about one intent, in short.
    #[derive(Debug, PartialEq)]
    enum Short {
        Nothing,
        Mined,
        Confirmed,
        Reorged,
        Dropped,
        Waits,
        Bump,
        Broadcast,
    }

    fn short(plan: &Plan) -> Short {
        match (plan.updates.first().map(|(_, u)| u), plan.bumps.is_empty(), plan.broadcast.is_empty()) {
            (Some(Update::Mined { .. }), true, true) => Short::Mined,
            (Some(Update::Confirmed(_)), true, true) => Short::Confirmed,
            (Some(Update::Reorged), true, false) => Short::Reorged,
            (Some(Update::Dropped(_)), true, true) => Short::Dropped,
            (None, false, false) => Short::Bump,
            (None, true, false) => Short::Broadcast,
            (None, true, true) if !plan.waiting.is_empty() => Short::Waits,
            (None, true, true) => Short::Nothing,
            _ => panic!("an unexpected plan: {plan:?}"),
        }
    }

    /// Every branch of a round for one intent at nonce 7 (below the mined count 10) or nonce 12
    /// (above it). Head 100, 3 confirmations: a block is deep enough at 98 and below.
    #[test]
    fn each_intent_gets_the_decision_its_evidence_allows() {
        use IntentState::{Confirmed, Dropped, Mined, Sent, Signed};
        use Short::{Broadcast, Bump, Nothing, Reorged, Waits};
        let (due, not_due) = (Some(NOW - 60), Some(NOW - 59));
        let got = |block| Seen::Receipt { receipt: receipt(block, true), already_done: vec![] };
        let still = |block| Seen::StillMined(receipt(block, true));
        let used = Seen::NoReceipt;
        let foreign = |block| Seen::NoReceipt(Evidence::Foreign { block, hash: FOREIGN });
        let cases: Vec<(&str, u64, TxIntent, Seen, Short)> = vec![
            ("settled", 7, intent(Confirmed, due), Seen::Nothing, Nothing),
            ("dropped", 7, intent(Dropped, due), Seen::Nothing, Nothing),
            ("receipt: mined", 7, intent(Sent, due), got(99), Short::Mined),
            ("receipt of a signed one: mined", 7, intent(Signed, None), got(99), Short::Mined),
            ("mined, not deep enough to check", 7, intent(Mined, due), Seen::Nothing, Nothing),
            ("mined, deep enough: confirmed", 7, intent(Mined, due), still(98), Short::Confirmed),
            ("mined, now in a higher block: its depth awaited", 7, intent(Mined, due), still(99), Nothing),
            ("mined, block replaced: same bytes again", 7, intent(Mined, due), Seen::BlockReplaced, Reorged),
            ("mined, receipt not visible: waits", 7, intent(Mined, due), Seen::ReceiptNotVisible, Waits),
            // A used nonce without a visible receipt: never signed again without evidence.
            ("used, not located: waits", 7, intent(Sent, due), used(Evidence::NotLocated), Waits),
            (
                "used by ours: waits",
                7,
                intent(Sent, due),
                used(Evidence::Ours { block: 50, hash: OURS }),
                Waits,
            ),
            ("used by another, not deep: waits", 7, intent(Sent, due), foreign(99), Waits),
            ("used by another, deep: dropped", 7, intent(Sent, due), foreign(98), Short::Dropped),
            ("signed, used by another, deep: dropped", 7, intent(Signed, None), foreign(98), Short::Dropped),
            // Above the mined count: a bump when due, else a broadcast of what is only signed.
            ("sent, due: bump", 12, intent(Sent, due), Seen::Nothing, Bump),
            ("sent, not due", 12, intent(Sent, not_due), Seen::Nothing, Nothing),
            ("signed: broadcast", 12, intent(Signed, None), Seen::Nothing, Broadcast),
            ("signed, under the base fee long ago: bump", 12, intent(Signed, due), Seen::Nothing, Bump),
            ("signed, under the base fee lately", 12, intent(Signed, not_due), Seen::Nothing, Broadcast),
        ];
        for (what, nonce, intent, seen, want) in cases {
            let plan = follow(&one(nonce, intent, seen), &round());
            assert_eq!(short(&plan), want, "{what}: {plan:?}");
        }
    }

    #[test]
    fn a_mined_receipt_carries_its_verdicts() {
        struct Case {
            what: &'static str,
            cancel: Option<B256>,
            receipt: Receipt,
            already_done: Vec<Option<String>>,
            verdicts: Vec<(DeliveryState, String)>,
            reported: usize,
        }
        let there = "already there (the view says so)".to_string();
        let cases = [
            Case {
                what: "success: no verdict, waits for confirmations",
                cancel: None,
                receipt: receipt(99, true),
                already_done: vec![],
                verdicts: vec![],
                reported: 0,
            },
            Case {
                what: "reverted: failed for good unless already there",
                cancel: None,
                receipt: receipt(99, false),
                already_done: vec![Some(there.clone()), None],
                verdicts: vec![
                    (DeliveryState::Skipped, there),
                    (DeliveryState::Failed, format!("transaction {OURS} reverted on-chain")),
                ],
                reported: 1,
            },
            Case {
                what: "the operator's cancellation mined: failed, not reported as a revert",
                cancel: Some(OURS),
                receipt: receipt(99, true),
                already_done: vec![],
                verdicts: vec![(DeliveryState::Failed, "cancelled by the operator".into()); 2],
                reported: 0,
            },
        ];
        for Case { what, cancel, receipt, already_done, verdicts, reported } in cases {
            let mut i = intent(IntentState::Sent, Some(NOW - 5));
            i.cancel = cancel;
            let plan = follow(&one(7, i, Seen::Receipt { receipt: receipt.clone(), already_done }), &round());
            let verdicts: Vec<_> =
                verdicts.into_iter().enumerate().map(|(k, (s, why))| (key(k as u32), s, why)).collect();
            assert_eq!(plan.updates, vec![(0, Update::Mined { receipt, verdicts })], "{what}");
            assert_eq!(plan.failed.len(), reported, "{what}: {plan:?}");
        }
    }

    #[test]
    fn a_foreign_transaction_frees_the_nonce_only_when_none_of_ferrys_hashes_and_deep() {
        let plan = follow(
            &one(
                7,
                intent(IntentState::Sent, None),
                Seen::NoReceipt(Evidence::Foreign { block: 98, hash: FOREIGN }),
            ),
            &round(),
        );
        match &plan.updates[..] {
            [(0, Update::Dropped(reason))] => {
                assert!(reason.contains("which ferry did not sign"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(plan.broadcast.is_empty() && plan.bumps.is_empty(), "nothing is signed or sent: {plan:?}");
    }

    #[test]
    fn waiting_nonces_say_why_lowest_first() {
        let followed = vec![
            Followed { nonce: 3, intent: intent(IntentState::Mined, None), seen: Seen::ReceiptNotVisible },
            Followed {
                nonce: 4,
                intent: intent(IntentState::Sent, None),
                seen: Seen::NoReceipt(Evidence::NotLocated),
            },
            Followed {
                nonce: 5,
                intent: intent(IntentState::Sent, None),
                seen: Seen::NoReceipt(Evidence::Ours { block: 99, hash: OURS }),
            },
        ];
        let plan = follow(&followed, &round());
        assert_eq!(
            plan.waiting,
            vec![
                "nonce 3 mined, its receipt not visible on the node that answered".to_string(),
                "nonce 4 used, receipt not yet visible; its block not located yet".to_string(),
                format!("nonce 5 used by ferry's transaction {OURS} in block 99, receipt not yet visible"),
            ]
        );
        assert!(plan.updates.is_empty() && plan.broadcast.is_empty() && plan.bumps.is_empty(), "{plan:?}");
    }

    #[test]
    fn sent_unmined_ones_go_out_again_when_due_lowest_first_at_most_64() {
        // Nonces 5..=104 above the mined count 5: sent, not due for a bump, except 6 (signed) and
        // 7 (due for a bump); 4 is below the mined count (its receipt is being looked for).
        let mut followed = vec![Followed {
            nonce: 4,
            intent: intent(IntentState::Sent, Some(NOW)),
            seen: Seen::NoReceipt(Evidence::NotLocated),
        }];
        for nonce in 5..=104 {
            let intent = match nonce {
                6 => intent(IntentState::Signed, None),
                7 => intent(IntentState::Sent, Some(NOW - 60)),
                _ => intent(IntentState::Sent, Some(NOW)),
            };
            followed.push(Followed { nonce, intent, seen: Seen::Nothing });
        }
        let mut r = Round { latest: 5, ..round() };
        let quiet = follow(&followed, &r);
        assert_eq!(quiet.broadcast, vec![2, 3], "only the signed one and the bump: {quiet:?}");
        assert_eq!(quiet.bumps, vec![3]);

        r.rebroadcast = true;
        let plan = follow(&followed, &r);
        assert_eq!(plan.bumps, vec![3]);
        // The signed one, the bump, and the 64 lowest other sent ones (indexes 1, 4, 5, …, 66).
        let mut want: Vec<usize> = vec![1, 2, 3];
        want.extend(4..=66);
        assert_eq!(plan.broadcast, want);
        assert_eq!(plan.broadcast.len(), 2 + REBROADCAST_MAX);
    }

    #[test]
    fn a_reorged_intent_is_signed_again_never_but_broadcast_as_it_was() {
        let plan = follow(&one(7, intent(IntentState::Mined, None), Seen::BlockReplaced), &round());
        assert_eq!(plan.updates, vec![(0, Update::Reorged)]);
        assert_eq!(plan.broadcast, vec![0]);
        assert!(plan.bumps.is_empty());
        let mut i = intent(IntentState::Mined, None);
        settle(&mut i, &Update::Reorged);
        assert_eq!((i.state, i.mined, i.hash), (IntentState::Signed, None, OURS), "the same bytes");
    }

    #[test]
    fn an_intent_follows_its_update() {
        let r = receipt(99, true);
        let cases = [
            (
                IntentState::Sent,
                Update::Mined { receipt: r.clone(), verdicts: vec![] },
                IntentState::Mined,
                Some(OURS),
            ),
            (IntentState::Mined, Update::Confirmed(r.clone()), IntentState::Confirmed, Some(OURS)),
            (IntentState::Mined, Update::Reorged, IntentState::Signed, None),
            (IntentState::Sent, Update::Dropped("x".into()), IntentState::Dropped, None),
            (IntentState::Sent, Update::Sent, IntentState::Sent, None),
        ];
        for (from, update, state, mined) in cases {
            let mut i = intent(from, None);
            settle(&mut i, &update);
            assert_eq!((i.state, i.mined), (state, mined), "{from:?} + {update:?}");
        }
    }

    #[test]
    fn a_bump_raises_the_fees_and_at_the_cap_waits_saying_why() {
        let policy = crate::engine::deliver::fees::test_policy(20 * GWEI);
        let calm = Market { base_fee: 2 * GWEI, suggested_priority: GWEI };
        let mut below = intent(IntentState::Sent, Some(0));
        below.max_fee_per_gas = 10 * GWEI;
        assert_eq!(
            bump(&policy, 7, &below, calm),
            Bump::Replace(Fees { max_fee: 11 * GWEI, priority: Some(1_100_000_000) })
        );

        let mut at_cap = below.clone();
        at_cap.max_fee_per_gas = 20 * GWEI;
        assert_eq!(
            bump(&policy, 7, &at_cap, calm),
            Bump::AtCap(Problem::AtFeeCap { nonce: 7, cap: 20 * GWEI })
        );

        let spike = Market { base_fee: 25 * GWEI, suggested_priority: GWEI };
        assert_eq!(
            bump(&policy, 7, &at_cap, spike),
            Bump::AtCap(Problem::BaseFeeAboveCap { nonce: 7, base_fee: 25 * GWEI, cap: 20 * GWEI })
        );
    }

    #[test]
    fn a_replacement_keeps_every_earlier_hash_and_waits_to_be_broadcast() {
        let fees = Fees { max_fee: 11 * GWEI, priority: Some(2 * GWEI) };
        let cases = [(None, None), (Some(OURS), Some(BUMPED)), (Some(CANCEL), Some(CANCEL))];
        for (cancel, cancel_after) in cases {
            let mut i = intent(IntentState::Sent, Some(NOW - 60));
            i.cancel = cancel;
            replace(&mut i, Bytes::from(vec![9]), BUMPED, fees);
            assert_eq!(i.replaced, vec![OURS]);
            assert_eq!((i.hash, i.raw.clone(), i.cancel), (BUMPED, Bytes::from(vec![9]), cancel_after));
            assert_eq!((i.max_fee_per_gas, i.max_priority_fee_per_gas), (11 * GWEI, Some(2 * GWEI)));
            assert_eq!((i.state, i.sent_at), (IntentState::Signed, None));
        }
    }

    #[test]
    fn the_status_names_long_waits_and_fee_caps_and_clears_only_its_own() {
        let waiting = ["nonce 4 used".to_string(), "nonce 5 used".to_string()];
        let unseen = Problem::UnseenNonces { count: 2, first: "nonce 4 used".into() };
        let paused = Problem::Paused { why: "x".into() };
        let long = UNSEEN_WARN_AFTER;
        let short = UNSEEN_WARN_AFTER - Duration::from_millis(1);
        let cases = [
            (None, &waiting[..], short, StatusChange::Keep),
            (None, &waiting[..], long, StatusChange::Set(unseen.clone())),
            (Some(&paused), &waiting[..], long, StatusChange::Keep),
            (Some(&unseen), &waiting[..], long, StatusChange::Keep),
            (Some(&unseen), &[][..], long, StatusChange::Clear),
            (Some(&paused), &[][..], long, StatusChange::Keep),
            (None, &[][..], long, StatusChange::Keep),
        ];
        for (current, waiting, waited, want) in cases {
            assert_eq!(unseen_status(current, waiting, waited), want, "{current:?} {waiting:?} {waited:?}");
        }

        let fee_problems = [
            Problem::AtFeeCap { nonce: 1, cap: GWEI },
            Problem::BaseFeeAboveCap { nonce: 1, base_fee: 2 * GWEI, cap: GWEI },
            Problem::CapBelowBaseFee { cap: GWEI, base_fee: 2 * GWEI },
        ];
        for p in &fee_problems {
            assert_eq!(fee_status(Some(p), false), StatusChange::Clear, "{p:?}");
            assert_eq!(fee_status(Some(p), true), StatusChange::Keep, "{p:?}");
        }
        // A failing RPC whose message quotes a node saying "fee cap" is not a fee problem.
        let rpc = Problem::RpcFailing { error: "broadcast of nonce 3 refused: tip above fee cap".into() };
        for p in [Some(&rpc), Some(&paused), Some(&unseen), None] {
            assert_eq!(fee_status(p, false), StatusChange::Keep, "{p:?}");
        }
    }
}
