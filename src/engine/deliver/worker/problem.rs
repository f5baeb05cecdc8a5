//! Why a chain is paused or failing, as the worker reports it: one variant per situation, a stable
//! code for scripts (`push --json` shows `{"code": …, "message": …}`) and the message for people.
//!
//! Code that clears a problem asks which variant it is, never what its text starts with: a message
//! that changes wording, or quotes a node that happens to say "fee cap", must not change what is
//! cleared.

use serde::Serialize;
use serde::ser::SerializeStruct;

/// How the chain's status starts while used nonces wait for evidence.
pub const UNSEEN: &str = "waiting on used nonces without a visible receipt";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A round failed (an RPC error, a refused broadcast); the worker tries again with backoff.
    RpcFailing { error: String },
    /// The signer cannot pay: new sends wait a while, what is in flight is still followed.
    Paused { why: String },
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
            Problem::CouldNotStart { .. } => "could_not_start",
            Problem::UnseenNonces { .. } => "unseen_nonces",
            Problem::AtFeeCap { .. } => "at_fee_cap",
            Problem::BaseFeeAboveCap { .. } => "base_fee_above_cap",
            Problem::CapBelowBaseFee { .. } => "cap_below_base_fee",
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
}

fn gwei(wei: u128) -> f64 {
    wei as f64 / 1e9
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::RpcFailing { error } => write!(f, "RPC failing: {error}"),
            Problem::Paused { why } => write!(f, "paused: {why}"),
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
            (
                Problem::Paused { why: "signer 0xab cannot pay".into() },
                "paused",
                "paused: signer 0xab cannot pay",
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
                "base_fee_above_cap",
                "nonce 3 waits: the base fee (2.5 gwei) is above the fee cap (2 gwei)",
            ),
            (
                Problem::CapBelowBaseFee { cap: 2 * GWEI, base_fee: 3 * GWEI },
                "cap_below_base_fee",
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
            let about_fees = matches!(code, "at_fee_cap" | "base_fee_above_cap" | "cap_below_base_fee");
            assert_eq!(problem.is_about_fees(), about_fees, "{code}");
        }
    }
}
