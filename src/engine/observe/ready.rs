//! Readiness (`/readyz`), decided from a [`Snapshot`] and the configured thresholds: ready when
//! every source is within its lag budget and no destination is stuck. A pure function, so every
//! case is a table row below.
//!
//! A destination is stuck when its oldest unsettled delivery has waited longer than
//! `stuck_after`, or when a problem (an RPC failing, a paused signer, a worker that cannot start)
//! has lasted that long. A chain with nothing to deliver is never stuck by its age; a problem
//! that lasts is reported even then, since the next item would wait behind it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::board::Snapshot;

/// What readiness allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// A source behind for longer than this is not ready (unless it has its own budget).
    pub max_lag: Duration,
    /// Per source name: its own budget.
    pub lag_budgets: BTreeMap<String, Duration>,
    /// A destination whose oldest unsettled delivery, or whose problem, is older is stuck.
    pub stuck_after: Duration,
}

impl From<&crate::config::HealthPlan> for Thresholds {
    fn from(health: &crate::config::HealthPlan) -> Self {
        Thresholds {
            max_lag: health.max_lag,
            lag_budgets: health.lag_budgets.clone(),
            stuck_after: health.stuck_after,
        }
    }
}

/// The verdict, with one line per reason when not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(Vec<String>),
}

/// Decides readiness. Reasons name the source or destination and why, one each.
pub fn decide(snapshot: &Snapshot, t: &Thresholds) -> Readiness {
    let mut reasons = Vec::new();
    if snapshot.sources.is_empty() {
        reasons.push("starting: no source has reported yet".to_string());
    }
    for s in &snapshot.sources {
        let budget = t.lag_budgets.get(&s.name).copied().unwrap_or(t.max_lag).as_secs();
        if s.lag_secs > budget {
            let blocks = s.lag_blocks.map(|b| format!(", {b} behind its head")).unwrap_or_default();
            let error = s.last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default();
            reasons.push(format!(
                "source {} ({}): not caught up for {}s, over its lag budget of {budget}s{blocks}{error}",
                s.name, s.chain, s.lag_secs
            ));
        }
    }
    let stuck = t.stuck_after.as_secs();
    for d in &snapshot.dests {
        let what = d.kind.as_str();
        let problem = d.problem.as_ref();
        if let Some(age) = d.oldest_open_secs.filter(|a| *a > stuck) {
            let why = problem.map(|p| format!("; {}", p.message)).unwrap_or_default();
            reasons.push(format!(
                "{what} {}: the oldest unsettled delivery has waited {age}s, over stuck_after {stuck}s{why}",
                d.name
            ));
        } else if let Some(p) = problem.filter(|p| p.for_secs > stuck) {
            reasons.push(format!(
                "{what} {}: {} for {}s, over stuck_after {stuck}s: {}",
                d.name, p.code, p.for_secs, p.message
            ));
        }
    }
    if reasons.is_empty() { Readiness::Ready } else { Readiness::NotReady(reasons) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::observe::board::{DestKind, DestView, ProblemView, SourceView};

    fn source(name: &str, lag_secs: u64) -> SourceView {
        SourceView { name: name.into(), chain: "src".into(), lag_secs, lag_blocks: Some(3), last_error: None }
    }

    fn dest(name: &str, kind: DestKind, oldest: Option<u64>, problem: Option<(&str, u64)>) -> DestView {
        DestView {
            name: name.into(),
            kind,
            oldest_open_secs: oldest,
            problem: problem.map(|(code, for_secs)| ProblemView {
                code: code.into(),
                message: format!("{code} message"),
                for_secs,
            }),
            last_problem: None,
            codes_seen: Default::default(),
            pending: 0,
            in_flight: 0,
        }
    }

    /// (case, sources, destinations, the reasons expected: how each line starts, in order)
    type Case = (&'static str, Vec<SourceView>, Vec<DestView>, Vec<&'static str>);

    fn thresholds() -> Thresholds {
        Thresholds {
            max_lag: Duration::from_secs(60),
            lag_budgets: [("slow".to_string(), Duration::from_secs(600))].into(),
            stuck_after: Duration::from_secs(300),
        }
    }

    #[test]
    fn ready_unless_a_source_lags_past_its_budget_or_a_destination_is_stuck() {
        use DestKind::{Chain, Sink};
        let ok_source = || vec![source("fast", 5)];
        let cases: Vec<Case> = vec![
            ("all well", ok_source(), vec![dest("d0", Chain, Some(10), None)], vec![]),
            ("nothing reported yet", vec![], vec![], vec!["starting: no source has reported yet"]),
            ("at the budget is within it", vec![source("fast", 60)], vec![], vec![]),
            (
                "over the default budget",
                vec![source("fast", 61)],
                vec![],
                vec![
                    "source fast (src): not caught up for 61s, over its lag budget of 60s, 3 behind its head",
                ],
            ),
            ("its own budget", vec![source("slow", 500)], vec![], vec![]),
            ("over its own budget", vec![source("slow", 601)], vec![], vec!["source slow (src)"]),
            (
                "an old pending delivery",
                ok_source(),
                vec![dest("d1", Chain, Some(301), Some(("rpc_failing", 20)))],
                vec![
                    "chain d1: the oldest unsettled delivery has waited 301s, over stuck_after 300s; rpc_failing message",
                ],
            ),
            (
                "a lasting problem with nothing waiting",
                ok_source(),
                vec![dest("d1", Chain, None, Some(("could_not_start", 301)))],
                vec!["chain d1: could_not_start for 301s, over stuck_after 300s: could_not_start message"],
            ),
            (
                "a worker that has not started for long",
                ok_source(),
                vec![dest("d1", Chain, None, Some(("starting", 301)))],
                vec!["chain d1: starting for 301s"],
            ),
            (
                "a fresh problem is not stuck yet",
                ok_source(),
                vec![dest("d1", Chain, Some(30), Some(("rpc_failing", 30)))],
                vec![],
            ),
            ("a stuck sink", ok_source(), vec![dest("hook", Sink, Some(400), None)], vec!["sink hook: "]),
            (
                "every reason, one line each",
                vec![source("fast", 100), source("slow", 700)],
                vec![dest("d0", Chain, Some(1), None), dest("d1", Chain, Some(900), None)],
                vec!["source fast", "source slow", "chain d1"],
            ),
        ];
        for (case, sources, dests, expected) in cases {
            let verdict = decide(&Snapshot { sources, dests }, &thresholds());
            match verdict {
                Readiness::Ready => assert!(expected.is_empty(), "{case}: ready, expected {expected:?}"),
                Readiness::NotReady(reasons) => {
                    assert_eq!(reasons.len(), expected.len(), "{case}: {reasons:?}");
                    for (reason, want) in reasons.iter().zip(&expected) {
                        assert!(reason.starts_with(want), "{case}: {reason:?} does not start with {want:?}");
                    }
                }
            }
        }
    }
}
