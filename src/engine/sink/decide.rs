//! The sink worker's decisions, apart from I/O: what a delivery becomes after what the sink said,
//! what is due, and, for an ordered target, which items may go in a round.

use std::collections::HashSet;
use std::time::Duration;

use super::Outcome;
use crate::store::records::{Delivery, DeliveryState, SinkAck};

/// Whether a delivery may be handed over at `now` (Unix seconds): pending or failed-retryable,
/// and its next attempt due. A delivery left `sending` by a crash is due once the sink said it
/// does not hold it.
pub fn is_due(d: &Delivery, now: u64) -> bool {
    let waiting = d.next_attempt_at.is_some_and(|t| t > now);
    match d.state {
        DeliveryState::Pending | DeliveryState::Sending => !waiting,
        DeliveryState::Failed => d.retryable && !waiting,
        DeliveryState::Sent | DeliveryState::Confirmed | DeliveryState::Skipped => false,
    }
}

/// Keeps in `earliest` the next attempt time of `d` when it is pending or `sending` (what a
/// `push` waits for; a failed delivery is reported, not waited for).
pub fn note_waiting(earliest: &mut Option<u64>, d: &Delivery) {
    if matches!(d.state, DeliveryState::Pending | DeliveryState::Sending) {
        let at = d.next_attempt_at.unwrap_or(0);
        *earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
}

/// The delivery written before a hand-over: `sending`, one attempt more.
pub fn sending(d: &Delivery, now: u64) -> Delivery {
    Delivery {
        state: DeliveryState::Sending,
        attempts: d.attempts.saturating_add(1),
        next_attempt_at: None,
        updated_at: now,
        ..d.clone()
    }
}

/// What a delivery becomes after the sink's outcome. A retry goes back to pending with a next
/// attempt time (`backoff`, or what the sink asked for) until `max_attempts`, then shows as
/// failed — still retryable, at the same pace. `d` is the `sending` record.
pub fn settle(
    d: &Delivery,
    outcome: &Outcome,
    max_attempts: u32,
    now: u64,
    backoff: Duration,
) -> (Delivery, Option<SinkAck>) {
    match outcome {
        Outcome::Delivered { ack } => (
            Delivery {
                state: DeliveryState::Confirmed,
                next_attempt_at: None,
                reason: None,
                retryable: true,
                updated_at: now,
                ..d.clone()
            },
            Some(SinkAck { ack: ack.clone(), at: now }),
        ),
        Outcome::Retry { reason, after } => {
            let wait = after.unwrap_or(backoff).max(backoff.min(Duration::from_secs(1)));
            let state =
                if d.attempts >= max_attempts { DeliveryState::Failed } else { DeliveryState::Pending };
            let reason = match state {
                DeliveryState::Failed => format!("{reason} (after {} attempts; retried later)", d.attempts),
                _ => reason.clone(),
            };
            (
                Delivery {
                    state,
                    next_attempt_at: Some(now + wait.as_secs_f64().ceil() as u64),
                    reason: Some(reason),
                    retryable: true,
                    updated_at: now,
                    ..d.clone()
                },
                None,
            )
        }
        Outcome::Failed { reason } => (
            Delivery {
                state: DeliveryState::Failed,
                next_attempt_at: None,
                reason: Some(reason.clone()),
                retryable: false,
                updated_at: now,
                ..d.clone()
            },
            None,
        ),
    }
}

/// For an ordered target: of candidates in item order, each with its source, those that may go
/// now. A source stops at its first item that is not due (waiting for a retry), so that nothing
/// of that source overtakes it; other sources go on.
pub fn ordered<K: Copy>(candidates: &[(K, u32, bool)]) -> Vec<K> {
    let mut blocked = HashSet::new();
    let mut out = Vec::new();
    for (key, source, due) in candidates {
        if blocked.contains(source) {
            continue;
        }
        if *due {
            out.push(*key);
        } else {
            blocked.insert(*source);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(state: DeliveryState, attempts: u32) -> Delivery {
        Delivery { state, attempts, ..Delivery::pending(100) }
    }

    #[test]
    fn due_is_pending_or_retryable_failed_whose_time_came() {
        use DeliveryState::*;
        let wait = |mut x: Delivery, t: u64| {
            x.next_attempt_at = Some(t);
            x
        };
        let permanent = Delivery { retryable: false, ..d(Failed, 1) };
        // (delivery, due at 200)
        let cases = [
            (d(Pending, 0), true),
            (wait(d(Pending, 1), 200), true),
            (wait(d(Pending, 1), 201), false),
            (d(Sending, 1), true),
            (wait(d(Failed, 10), 150), true),
            (wait(d(Failed, 10), 250), false),
            (permanent, false),
            (d(Confirmed, 1), false),
            (d(Skipped, 0), false),
        ];
        for (delivery, due) in cases {
            assert_eq!(is_due(&delivery, 200), due, "{delivery:?}");
        }
    }

    #[test]
    fn what_waits_is_pending_or_sending_and_the_earliest_counts() {
        let at = |state, t: u64| Delivery { next_attempt_at: Some(t), ..d(state, 1) };
        let mut earliest = None;
        decide_all(&mut earliest, &[at(DeliveryState::Failed, 5), at(DeliveryState::Pending, 30)]);
        assert_eq!(earliest, Some(30), "a failed delivery is not waited for");
        decide_all(&mut earliest, &[at(DeliveryState::Sending, 20), at(DeliveryState::Confirmed, 1)]);
        assert_eq!(earliest, Some(20));
        let mut none = None;
        decide_all(&mut none, &[at(DeliveryState::Failed, 5), at(DeliveryState::Skipped, 5)]);
        assert_eq!(none, None);
    }

    fn decide_all(earliest: &mut Option<u64>, ds: &[Delivery]) {
        for d in ds {
            note_waiting(earliest, d);
        }
    }

    #[test]
    fn an_outcome_settles_the_delivery() {
        let sending = sending(&d(DeliveryState::Pending, 2), 500);
        assert_eq!((sending.state, sending.attempts, sending.updated_at), (DeliveryState::Sending, 3, 500));
        let second = Duration::from_secs(1);

        let (ok, ack) = settle(&sending, &Outcome::Delivered { ack: "HTTP 200".into() }, 10, 501, second);
        assert_eq!(ok.state, DeliveryState::Confirmed);
        assert_eq!(ack, Some(SinkAck { ack: "HTTP 200".into(), at: 501 }));

        let retry = Outcome::Retry { reason: "HTTP 503".into(), after: None };
        let (again, ack) = settle(&sending, &retry, 10, 501, Duration::from_millis(4_500));
        assert_eq!((again.state, again.next_attempt_at, ack), (DeliveryState::Pending, Some(506), None));
        assert_eq!(again.reason.as_deref(), Some("HTTP 503"));

        let asked = Outcome::Retry { reason: "HTTP 429".into(), after: Some(Duration::from_secs(30)) };
        assert_eq!(settle(&sending, &asked, 10, 501, second).0.next_attempt_at, Some(531));

        let (spent, _) = settle(&sending, &retry, 3, 501, second);
        assert_eq!((spent.state, spent.retryable), (DeliveryState::Failed, true));
        assert_eq!(spent.reason.as_deref(), Some("HTTP 503 (after 3 attempts; retried later)"));

        let (refused, _) =
            settle(&sending, &Outcome::Failed { reason: "HTTP 400: bad".into() }, 10, 501, second);
        assert_eq!((refused.state, refused.retryable), (DeliveryState::Failed, false));
        assert_eq!(refused.reason.as_deref(), Some("HTTP 400: bad"));
    }

    #[test]
    fn an_ordered_source_stops_at_its_first_item_not_due() {
        // (key, source, due)
        let candidates = [(1, 7, true), (2, 7, false), (3, 8, true), (4, 7, true), (5, 8, true)];
        assert_eq!(ordered(&candidates), vec![1, 3, 5]);
    }
}
