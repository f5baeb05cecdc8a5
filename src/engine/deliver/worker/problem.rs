//! Why a chain is paused or failing, as the worker reports it: one variant per situation, a stable
//! code for scripts (`push --json` shows `{"code": …, "message": …}`) and the message for people.
//! Every reason `push` exits 4 for on a chain is one of these: a chain with work left and no
//! problem of its own is given `failed` or `unconfirmed` at the end ([`Problem::left_undone`]).
//!
//! Code that clears a problem asks which variant it is, never what its text starts with: a message
//! that changes wording, or quotes a node that happens to say "fee cap", must not change what is
//! cleared.

use serde::Serialize;
use serde::ser::SerializeStruct;

use crate::engine::deliver::Counts;

/// How the chain's status starts while used nonces wait for evidence.
pub const UNSEEN: &str = "waiting on used nonces without a visible receipt";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A round failed (an RPC error, a refused broadcast); the worker tries again with backoff.
    RpcFailing { error: String },
    /// New sends wait a while for a reason other than the signer's funds; what is in flight is
    /// still followed.
    Paused { why: String },
    /// The signer cannot pay for the next transaction (its balance is below gas limit × max fee,
    /// or a node said so): new sends wait until it is funded, what is in flight is still followed.
    InsufficientFunds { signer: String, detail: String },
    /// The chain counts fewer of the signer's transactions than ferry has seen mined and
    /// confirmed there, and holds none of ferry's: a reset chain (same id, nonces from 0) or a
    /// node that lost them. Nothing new is signed at a guessed nonce; `inspect-store resync`
    /// lines ferry up once the operator has looked.
    NonceGap { expected: u64, latest: u64, pending: u64 },
    /// Deliveries failed (reverted, refused by the target; or retryable ones still waiting for
    /// their next attempt when the command ended).
    Failed { count: u64, first: Option<String> },
    /// A dry run's checks or simulations failed: the deliveries would fail if sent.
    SimulationFailed { count: usize, first: String },
    /// Deliveries not confirmed when the command ended (`push --timeout`): sent and waiting
    /// for blocks, or still pending.
    Unconfirmed { in_flight: u64, pending: u64 },
    /// The worker never started (its RPC kept failing until the command ended).
    CouldNotStart { error: String },
    /// Nonces the chain counts as used have had no visible receipt of ferry's for a long while;
    /// `first` says why the lowest waits.
    UnseenNonces { count: usize, first: String },
    /// A transaction at the fee cap is not mined yet; the same bytes are broadcast again.
    AtFeeCap { nonce: u64, cap: u128 },
    /// A transaction at the fee cap waits: the base fee is above what it offers.
    BaseFeeAboveCap { nonce: u64, base_fee: u128, cap: u128 },
    /// New transactions were signed at a cap below the base fee, and wait to be mined.
    CapBelowBaseFee { cap: u128, base_fee: u128 },
    /// A `seda-prover` target's Prover is paused: its batches wait (not a failure).
    ProverPaused { target: String, prover: String },
    /// A `seda-prover` target cannot go on: the Prover's validator set is not the one ferry
    /// expected, or ferry lacks the batches to prove against it.
    ProverStuck { target: String, message: String },
    /// A sink did not take a round (unreachable, timing out, 5xx, 429): its deliveries are
    /// retried with backoff.
    SinkFailing { error: String },
}

impl Problem {
    /// A stable code: scripts match this, never the message.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::RpcFailing { .. } => "rpc_failing",
            Problem::Paused { .. } => "paused",
            Problem::InsufficientFunds { .. } => "insufficient_funds",
            Problem::NonceGap { .. } => "nonce_gap",
            Problem::Failed { .. } => "failed",
            Problem::Unconfirmed { .. } => "unconfirmed",
            Problem::SimulationFailed { .. } => "simulation_failed",
            Problem::CouldNotStart { .. } => "could_not_start",
            Problem::UnseenNonces { .. } => "unseen_nonces",
            Problem::AtFeeCap { .. } => "at_fee_cap",
            // One situation for scripts: the cap keeps transactions under the base fee, whether
            // they were signed so or reached the cap by bumps.
            Problem::BaseFeeAboveCap { .. } | Problem::CapBelowBaseFee { .. } => "fee_cap_below_base_fee",
            Problem::ProverPaused { .. } => "prover_paused",
            Problem::ProverStuck { .. } => "prover_stuck",
            Problem::SinkFailing { .. } => "sink_failing",
        }
    }

    /// A problem with the fees: a follow round with no transaction at the cap clears it.
    pub fn is_about_fees(&self) -> bool {
        matches!(
            self,
            Problem::AtFeeCap { .. } | Problem::BaseFeeAboveCap { .. } | Problem::CapBelowBaseFee { .. }
        )
    }

    /// What a chain with work left at the end of a command says when nothing more particular
    /// holds it: deliveries failed (`failed`, the first reason of this run), else
    /// deliveries not confirmed at the deadline (`unconfirmed`). `None` when nothing is left.
    pub fn left_undone(counts: &Counts, first_failure: Option<&str>) -> Option<Problem> {
        if counts.failed > 0 {
            return Some(Problem::Failed { count: counts.failed, first: first_failure.map(str::to_string) });
        }
        let in_flight = counts.sending + counts.sent;
        (in_flight + counts.pending > 0)
            .then_some(Problem::Unconfirmed { in_flight, pending: counts.pending })
    }
}

fn gwei(wei: u128) -> f64 {
    wei as f64 / 1e9
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::RpcFailing { error } => write!(f, "RPC failing: {error}"),
            Problem::Paused { why } => write!(f, "paused: {why}"),
            Problem::InsufficientFunds { signer, detail } => {
                write!(f, "signer {signer} cannot pay: {detail}; new sends wait until it is funded")
            }
            Problem::NonceGap { expected, latest, pending } => write!(
                f,
                "nonce gap: ferry has seen the signer's transactions mined up to nonce {} (next {expected}), \
                 the chain counts {latest} mined and {pending} with its pool, and holds none of ferry's; \
                 a reset chain or a node that lost them. Nothing new is signed; once checked, \
                 `ferry inspect-store resync --chain <name>` lines ferry up with the chain",
                expected.saturating_sub(1)
            ),
            Problem::Failed { count, first } => {
                write!(f, "{count} deliveries failed")?;
                if let Some(first) = first {
                    write!(f, " (first: {first})")?;
                }
                write!(
                    f,
                    "; `ferry inspect-store deliveries --state failed` lists them, `retry` sends them again"
                )
            }
            Problem::SimulationFailed { count, first } => {
                write!(f, "{count} deliveries would fail (first: {first})")
            }
            Problem::Unconfirmed { in_flight, pending } => {
                write!(f, "not done at the deadline: {in_flight} sent and not confirmed, {pending} pending")
            }
            Problem::CouldNotStart { error } => write!(f, "could not start: {error}"),
            Problem::UnseenNonces { count, first } => write!(f, "{UNSEEN}: {count} nonce(s); {first}"),
            Problem::AtFeeCap { nonce, cap } => write!(
                f,
                "nonce {nonce} is at the fee cap ({} gwei) and not mined yet; broadcasting it again",
                gwei(*cap)
            ),
            Problem::BaseFeeAboveCap { nonce, base_fee, cap } => write!(
                f,
                "nonce {nonce} waits: the base fee ({} gwei) is above the fee cap ({} gwei)",
                gwei(*base_fee),
                gwei(*cap)
            ),
            Problem::ProverPaused { target, prover } => {
                write!(f, "paused: the Prover {prover} ({target}) is paused; its batches wait")
            }
            Problem::ProverStuck { target, message } => write!(f, "{target}: {message}"),
            Problem::SinkFailing { error } => write!(f, "sink failing: {error}"),
            Problem::CapBelowBaseFee { cap, base_fee } => write!(
                f,
                "the fee cap ({} gwei) is below the base fee ({} gwei); sent anyway, waiting to be mined",
                gwei(*cap),
                gwei(*base_fee)
            ),
        }
    }
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Problem", 2)?;
        s.serialize_field("code", self.code())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::deliver::fees::GWEI;

    /// The messages are the ones the chain's status has always shown (tests and operators grep
    /// them); the codes are what scripts match.
    #[test]
    fn each_problem_has_a_stable_code_and_its_message() {
        let cases = [
            (
                Problem::RpcFailing { error: "chain d0: boom".into() },
                "rpc_failing",
                "RPC failing: chain d0: boom",
            ),
            (Problem::Paused { why: "the operator asked".into() }, "paused", "paused: the operator asked"),
            (
                Problem::InsufficientFunds { signer: "0xab".into(), detail: "balance 0.001 ETH".into() },
                "insufficient_funds",
                "signer 0xab cannot pay: balance 0.001 ETH; new sends wait until it is funded",
            ),
            (
                Problem::NonceGap { expected: 14, latest: 0, pending: 0 },
                "nonce_gap",
                "nonce gap: ferry has seen the signer's transactions mined up to nonce 13 (next 14), the chain \
                 counts 0 mined and 0 with its pool, and holds none of ferry's; a reset chain or a node that \
                 lost them. Nothing new is signed; once checked, `ferry inspect-store resync --chain <name>` \
                 lines ferry up with the chain",
            ),
            (
                Problem::Failed { count: 2, first: Some("t/d0/1:5:0: Nope()".into()) },
                "failed",
                "2 deliveries failed (first: t/d0/1:5:0: Nope()); `ferry inspect-store deliveries --state failed` \
                 lists them, `retry` sends them again",
            ),
            (
                Problem::SimulationFailed { count: 1, first: "1:5:0: already-done check: reverted".into() },
                "simulation_failed",
                "1 deliveries would fail (first: 1:5:0: already-done check: reverted)",
            ),
            (
                Problem::Unconfirmed { in_flight: 3, pending: 1 },
                "unconfirmed",
                "not done at the deadline: 3 sent and not confirmed, 1 pending",
            ),
            (
                Problem::CouldNotStart { error: "connection refused".into() },
                "could_not_start",
                "could not start: connection refused",
            ),
            (
                Problem::UnseenNonces { count: 2, first: "nonce 4 used".into() },
                "unseen_nonces",
                "waiting on used nonces without a visible receipt: 2 nonce(s); nonce 4 used",
            ),
            (
                Problem::AtFeeCap { nonce: 3, cap: 2 * GWEI },
                "at_fee_cap",
                "nonce 3 is at the fee cap (2 gwei) and not mined yet; broadcasting it again",
            ),
            (
                Problem::BaseFeeAboveCap { nonce: 3, base_fee: 5 * GWEI / 2, cap: 2 * GWEI },
                "fee_cap_below_base_fee",
                "nonce 3 waits: the base fee (2.5 gwei) is above the fee cap (2 gwei)",
            ),
            (
                Problem::CapBelowBaseFee { cap: 2 * GWEI, base_fee: 3 * GWEI },
                "fee_cap_below_base_fee",
                "the fee cap (2 gwei) is below the base fee (3 gwei); sent anyway, waiting to be mined",
            ),
            (Problem::SinkFailing { error: "HTTP 503".into() }, "sink_failing", "sink failing: HTTP 503"),
        ];
        for (problem, code, message) in cases {
            assert_eq!(problem.code(), code);
            assert_eq!(problem.to_string(), message);
            assert_eq!(
                serde_json::to_value(&problem).expect("serializes"),
                serde_json::json!({ "code": code, "message": message })
            );
            let about_fees = matches!(code, "at_fee_cap" | "fee_cap_below_base_fee");
            assert_eq!(problem.is_about_fees(), about_fees, "{code}");
        }
    }

    /// A chain with work left at the end always has a code: failed for good first (it needs an
    /// operator), else not confirmed in time; nothing left, no problem.
    #[test]
    fn work_left_at_the_end_is_failed_or_unconfirmed() {
        let counts = |pending, sending, sent, failed| Counts {
            pending,
            sending,
            sent,
            failed,
            confirmed: 5,
            skipped: 1,
        };
        let cases = [
            (counts(0, 0, 0, 0), None),
            (counts(0, 0, 0, 2), Some("failed")),
            (counts(3, 1, 1, 2), Some("failed")),
            (counts(0, 1, 2, 0), Some("unconfirmed")),
            (counts(4, 0, 0, 0), Some("unconfirmed")),
        ];
        for (c, code) in cases {
            assert_eq!(Problem::left_undone(&c, Some("x")).as_ref().map(Problem::code), code, "{c:?}");
        }
        assert_eq!(
            Problem::left_undone(&counts(2, 1, 2, 0), None),
            Some(Problem::Unconfirmed { in_flight: 3, pending: 2 })
        );
    }
}
