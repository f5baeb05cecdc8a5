//! The decisions of a `seda-prover` round, apart from the calls that gather what they rest on:
//! which validator tree the destination proves against, which batches to post next and in what
//! order (intermediate batches first when the validator set changed), and what to settle
//! without a transaction.
//!
//! The destination holds batch `L` with validators root `R`. Batches are posted above it, each
//! proven against the tree of the batch posted before it. Transactions for consecutive batches
//! go out together (pipelined) while the tree they are proven against is the one the Prover
//! holds now; a batch that changes the validator set is the last of its round, and the next
//! round waits until it is mined, so that every simulation runs against the state the
//! transaction will meet.

use std::collections::BTreeMap;

use alloy::primitives::{B256, Bytes};

use crate::config::types::ProverMode;
use crate::seda::sign::{Signers, plan_posts, signers_in};
use crate::seda::tree::ValidatorTree;
use crate::seda::{CONSENSUS_PERCENTAGE, SignedBatch, prover};

/// What the round knows.
#[derive(Debug, Clone)]
pub struct Gathered<'a> {
    pub mode: ProverMode,
    /// `getLastBatchHeight()` and `getLastValidatorsRoot()`.
    pub last: u64,
    pub root: B256,
    /// The highest batch of this target in flight on the chain (sending or sent), if any.
    pub in_flight: Option<u64>,
    /// Pending deliveries' heights, ascending.
    pub pending: Vec<u64>,
    /// Stored batches by height: the base (see [`base_height`]) and every one above it up to
    /// the highest pending.
    pub batches: &'a BTreeMap<u64, SignedBatch>,
    /// Pending heights at or below `last`: whether `getBatch(h)` holds a results root.
    pub below: &'a BTreeMap<u64, bool>,
    /// Transactions that may start now.
    pub room: usize,
}

/// One `postBatch` to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub height: u64,
    pub calldata: Bytes,
    /// Why a batch that was not the one aimed at is posted (an intermediate batch).
    pub why: Option<String>,
}

/// A round decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Round {
    pub posts: Vec<Post>,
    /// Heights settled without a transaction: skipped (reason) …
    pub skipped: Vec<(u64, String)>,
    /// … or failed for good (reason).
    pub failed: Vec<(u64, String)>,
    /// Why nothing more is posted this round, when something holds it back.
    pub wait: Option<String>,
    /// The chain cannot go on (the Prover follows another validator chain, or ferry lacks its
    /// tree): the message says which batch ferry expected.
    pub stuck: Option<String>,
}

/// The batch whose validator tree the next post is proven against: the highest in flight, or
/// the destination's last.
pub fn base_height(last: u64, in_flight: Option<u64>) -> u64 {
    in_flight.map_or(last, |f| f.max(last))
}

/// Decides a round. `base` is the stored batch whose tree to prove against when the store does
/// not hold the base height itself (another batch with the destination's root), if any.
pub fn round(g: &Gathered<'_>, fallback: Option<&SignedBatch>) -> Round {
    let mut out = Round::default();
    // Below the destination's last: there already, or passed over (nothing needs it).
    for h in g.pending.iter().copied().filter(|h| *h <= g.last) {
        match g.below.get(&h) {
            Some(true) => out.skipped.push((h, format!("already there: the Prover holds batch {h}"))),
            Some(false) => out
                .skipped
                .push((h, format!("not needed: the Prover is at batch {} and passed over {h}", g.last))),
            None => {}
        }
    }
    let base = base_height(g.last, g.in_flight);
    let base_batch = match g.batches.get(&base) {
        Some(b) => b,
        None if base == g.last => match fallback {
            Some(b) => b,
            None => {
                out.stuck = Some(format!(
                    "the Prover holds batch {} (validators root {}), and the store has no batch with that validator \
                     set to prove against: the source starts after it (a new store with `start_batch` at or below {} \
                     fixes it)",
                    g.last,
                    g.root,
                    g.last + 1
                ));
                return out;
            }
        },
        None => {
            out.stuck = Some(format!("batch {base}, in flight, is not in the store"));
            return out;
        }
    };
    if base_batch.header.validators_root != g.root {
        if base > g.last {
            // A batch in flight changes the validator set: what follows waits until it is mined.
            out.wait = Some(format!(
                "batch {base}, in flight, changes the validator set; waiting until it is mined"
            ));
        } else {
            out.stuck = Some(format!(
                "the Prover's validators root is {}, but batch {} (its last) has {}: ferry expected batch {}'s \
                 validator set. Is the Prover following another SEDA chain?",
                g.root, g.last, base_batch.header.validators_root, g.last
            ));
        }
        return out;
    }
    let mut candidates: Vec<u64> = g.pending.iter().copied().filter(|h| *h > base).collect();
    if candidates.is_empty() {
        return out;
    }
    let mut cur = base;
    let mut tree = ValidatorTree::new(&base_batch.validators);
    let mut queued = 0u64;
    'rounds: while out.posts.len() < g.room {
        let target = match g.mode {
            ProverMode::Every => candidates.iter().copied().find(|h| *h > cur),
            ProverMode::Latest => candidates.last().copied().filter(|h| *h > cur),
        };
        let Some(target) = target else { break };
        // Every batch between is needed to plan; one the round did not load waits for a later round.
        if let Some(missing) = (cur + 1..=target).find(|h| !g.batches.contains_key(h)) {
            out.wait = Some(format!("batch {missing} is not loaded for this round"));
            break;
        }
        let above: Vec<SignedBatch> = (cur + 1..=target).filter_map(|h| g.batches.get(&h).cloned()).collect();
        let plan = match plan_posts(cur, &tree, &above, target) {
            Ok(plan) => plan,
            Err(stuck_at) => {
                // Nothing above `stuck_at` holds the threshold in its tree: the next batch's
                // signatures do not reach it (SEDA.md §3: the chain counts consensus power, not
                // tree power). It is never sent; what follows may still be.
                let bad = stuck_at + 1;
                if !candidates.contains(&bad) {
                    out.wait =
                        Some(format!("batch {bad} is needed before batch {target}, and is not pending"));
                    break;
                }
                let power = g.batches.get(&bad).map_or(0, |b| signers_in(b, &tree).power);
                let reason = format!(
                    "its signatures hold {} of batch {stuck_at}'s validator power, below the Prover's threshold of {}",
                    percent(power),
                    percent(u64::from(CONSENSUS_PERCENTAGE))
                );
                out.failed.push((bad, reason));
                // `cur` stays: the next target is proven against the same tree.
                candidates.retain(|h| *h != bad);
                continue;
            }
        };
        for h in plan {
            let Some(batch) = g.batches.get(&h) else { break 'rounds };
            let signers: Signers = signers_in(batch, &tree);
            let why = (h != target).then(|| {
                format!(
                    "intermediate: batch {target}'s signers lack the threshold in batch {cur}'s validator set; batch {h} moves the Prover to a set that has it"
                )
            });
            out.posts.push(Post { height: h, calldata: prover::post_batch_calldata(batch, &signers), why });
            candidates.retain(|c| *c != h);
            queued = h;
            cur = h;
            tree = ValidatorTree::new(&batch.validators);
            if batch.header.validators_root != g.root {
                out.wait = Some(format!(
                    "batch {h} changes the validator set; what follows waits until it is mined"
                ));
                break 'rounds;
            }
            if out.posts.len() >= g.room {
                break 'rounds;
            }
        }
    }
    if g.mode == ProverMode::Latest {
        let newest = g.pending.last().copied().unwrap_or(0);
        for h in candidates.iter().copied().filter(|h| *h < queued) {
            out.skipped.push((
                h,
                format!(
                    "not needed: mode latest posts batch {newest} and the batches its validator chain needs"
                ),
            ));
        }
    }
    out
}

fn percent(power: u64) -> String {
    format!("{:.6} %", power as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seda::testing::{batch, chain, quarters, validator};

    /// Batches 0..sets.len(), by height.
    fn stored(sets: &[Vec<(u8, u32)>]) -> BTreeMap<u64, SignedBatch> {
        chain(sets).into_iter().map(|b| (b.header.number, b)).collect()
    }

    fn gathered<'a>(
        mode: ProverMode,
        batches: &'a BTreeMap<u64, SignedBatch>,
        below: &'a BTreeMap<u64, bool>,
        last: u64,
        pending: Vec<u64>,
    ) -> Gathered<'a> {
        Gathered {
            mode,
            last,
            root: batches[&last].header.validators_root,
            in_flight: None,
            pending,
            batches,
            below,
            room: 100,
        }
    }

    fn heights(round: &Round) -> Vec<u64> {
        round.posts.iter().map(|p| p.height).collect()
    }

    fn skipped(round: &Round) -> Vec<u64> {
        round.skipped.iter().map(|(h, _)| *h).collect()
    }

    const NONE: &BTreeMap<u64, bool> = &BTreeMap::new();

    #[test]
    fn every_batch_in_order_while_the_set_holds() {
        let batches = stored(&vec![quarters(1); 6]);
        let round = round(&gathered(ProverMode::Every, &batches, NONE, 0, vec![1, 2, 3, 4, 5]), None);
        assert_eq!(heights(&round), vec![1, 2, 3, 4, 5]);
        assert!(round.posts.iter().all(|p| p.why.is_none()));
        assert_eq!((round.wait, round.stuck), (None, None));
        // Each post's calldata is what the Prover takes for that batch.
        let expected = prover::post_batch_calldata(
            &batches[&3],
            &signers_in(&batches[&3], &ValidatorTree::new(&batches[&2].validators)),
        );
        assert_eq!(round.posts[2].calldata, expected);
    }

    #[test]
    fn latest_posts_only_the_newest_when_the_set_holds_and_skips_the_rest() {
        let batches = stored(&vec![quarters(1); 6]);
        let round = round(&gathered(ProverMode::Latest, &batches, NONE, 0, vec![1, 2, 3, 4, 5]), None);
        assert_eq!(heights(&round), vec![5]);
        assert_eq!(skipped(&round), vec![1, 2, 3, 4]);
        assert!(round.skipped[0].1.contains("mode latest"), "{:?}", round.skipped);
    }

    #[test]
    fn a_set_change_is_the_last_post_of_its_round() {
        // Batch 3 brings new keys: batches 4 and 5 are signed by them.
        let sets = [quarters(1), quarters(1), quarters(1), quarters(11), quarters(11), quarters(11)];
        let batches = stored(&sets);
        let every = round(&gathered(ProverMode::Every, &batches, NONE, 0, vec![1, 2, 3, 4, 5]), None);
        assert_eq!(heights(&every), vec![1, 2, 3]);
        assert!(
            every.wait.as_deref().is_some_and(|w| w.contains("batch 3 changes the validator set")),
            "{every:?}"
        );

        // Latest: batch 5's signers are not in batch 0's tree; batch 3 (signed by the old set)
        // is the highest that moves the Prover to them.
        let latest = round(&gathered(ProverMode::Latest, &batches, NONE, 0, vec![1, 2, 3, 4, 5]), None);
        assert_eq!(heights(&latest), vec![3]);
        assert!(latest.posts[0].why.as_deref().is_some_and(|w| w.contains("intermediate")), "{latest:?}");
        assert_eq!(skipped(&latest), vec![1, 2]);
        // Once 3 is there, the next round goes straight to 5.
        let mut next = gathered(ProverMode::Latest, &batches, NONE, 3, vec![4, 5]);
        next.root = batches[&3].header.validators_root;
        let next = round(&next, None);
        assert_eq!((heights(&next), skipped(&next)), (vec![5], vec![4]));
    }

    #[test]
    fn powers_changed_but_the_old_set_still_holds_the_threshold_needs_no_intermediate() {
        let shifted = vec![(1, 40_000_000), (2, 30_000_000), (3, 20_000_000), (4, 10_000_000)];
        let sets = [quarters(1), quarters(1), shifted.clone(), shifted.clone(), shifted];
        let batches = stored(&sets);
        let latest = round(&gathered(ProverMode::Latest, &batches, NONE, 0, vec![1, 2, 3, 4]), None);
        assert_eq!(heights(&latest), vec![4]);
        assert!(latest.posts[0].why.is_none());
    }

    #[test]
    fn a_set_change_in_flight_holds_what_follows_until_it_is_mined() {
        let sets = [quarters(1), quarters(1), quarters(11), quarters(11)];
        let batches = stored(&sets);
        let mut g = gathered(ProverMode::Every, &batches, NONE, 1, vec![3]);
        g.in_flight = Some(2);
        let r = round(&g, None);
        assert!(r.posts.is_empty());
        assert!(
            r.wait.as_deref().is_some_and(|w| w.contains("batch 2, in flight, changes the validator set")),
            "{r:?}"
        );
        // In flight without a change: pipelined on top of it.
        let batches = stored(&vec![quarters(1); 4]);
        let mut g = gathered(ProverMode::Every, &batches, NONE, 1, vec![3]);
        g.in_flight = Some(2);
        assert_eq!(heights(&round(&g, None)), vec![3]);
    }

    #[test]
    fn a_prover_on_another_validator_chain_stops_the_chain_naming_the_batch() {
        let batches = stored(&vec![quarters(1); 4]);
        let mut g = gathered(ProverMode::Every, &batches, NONE, 2, vec![3]);
        g.root = B256::repeat_byte(7);
        let r = round(&g, None);
        let stuck = r.stuck.expect("stuck");
        assert!(stuck.contains("ferry expected batch 2's validator set"), "{stuck}");
        assert!(r.posts.is_empty());
    }

    #[test]
    fn without_the_destinations_batch_a_stored_one_with_its_root_serves_or_the_chain_says_what_to_do() {
        let mut batches = stored(&vec![quarters(1); 4]);
        let root = batches[&1].header.validators_root;
        let fallback = batches.remove(&1).expect("batch 1");
        let g = Gathered { root, ..gathered(ProverMode::Every, &batches, NONE, 0, vec![2, 3]) };
        let g = Gathered { last: 1, ..g };
        assert_eq!(heights(&round(&g, Some(&fallback))), vec![2, 3]);
        let r = round(&g, None);
        assert!(
            r.stuck.as_deref().is_some_and(|s| s.contains("start_batch") && s.contains("batch 1")),
            "{r:?}"
        );
    }

    #[test]
    fn signatures_below_the_threshold_are_never_posted() {
        let mut batches = stored(&vec![quarters(1); 5]);
        // Batch 2 carries signatures of two of four quarters only: 50 %.
        let weak = batch(2, quarters(1).iter().map(|(i, p)| validator(*i, *p)).collect(), &[1, 2]);
        batches.insert(2, weak);
        let r = round(&gathered(ProverMode::Every, &batches, NONE, 0, vec![1, 2, 3, 4]), None);
        assert_eq!(heights(&r), vec![1, 3, 4]);
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.failed[0].0, 2);
        assert!(
            r.failed[0].1.contains("50.000000 %") && r.failed[0].1.contains("threshold"),
            "{:?}",
            r.failed
        );
    }

    #[test]
    fn batches_at_or_below_the_destination_are_skipped_with_what_the_prover_says() {
        let batches = stored(&vec![quarters(1); 5]);
        let below = BTreeMap::from([(1, true), (2, false)]);
        let r = round(&gathered(ProverMode::Every, &batches, &below, 3, vec![1, 2, 4]), None);
        assert_eq!(heights(&r), vec![4]);
        assert_eq!(skipped(&r), vec![1, 2]);
        assert!(r.skipped[0].1.contains("already there") && r.skipped[1].1.contains("passed over"), "{r:?}");
    }

    #[test]
    fn a_batch_not_loaded_waits_and_is_never_failed_for_it() {
        let mut batches = stored(&vec![quarters(1); 6]);
        batches.remove(&4);
        batches.remove(&5);
        let r = round(&gathered(ProverMode::Every, &batches, NONE, 0, vec![1, 2, 3, 4, 5]), None);
        assert_eq!(heights(&r), vec![1, 2, 3]);
        assert!(r.failed.is_empty(), "{r:?}");
        assert!(r.wait.as_deref().is_some_and(|w| w.contains("batch 4")), "{r:?}");
    }

    #[test]
    fn a_round_starts_no_more_than_its_room() {
        let batches = stored(&vec![quarters(1); 6]);
        let g = Gathered { room: 2, ..gathered(ProverMode::Every, &batches, NONE, 0, vec![1, 2, 3, 4, 5]) };
        assert_eq!(heights(&round(&g, None)), vec![1, 2]);
    }
}
