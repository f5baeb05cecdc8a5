//! The control socket's wire format: one JSON request and one JSON reply per connection, each a
//! single line, both versioned (`"v": 1`): `{"v":1,"action":{"retry":{"keys":[…]}}}`, answered
//! with `{"v":1,"outcome":{"changed":{"changed":[…]}}}`. Enums are tagged by their key (not by a
//! field): fees are wei in `u128`, which serde reads only that way. Deliveries travel as their store keys: the command that
//! sends them resolved the operator's ids with its config, and renders the reply the same way.

use serde::{Deserialize, Serialize};

use crate::engine::deliver::control::{Cancelled, Changed, Resynced};
use crate::store::keys::DeliveryKey;

/// The version of this format; a request of another version is refused, by name.
pub const VERSION: u32 = 1;

/// The most a request or a reply may weigh: ten thousands of delivery keys fit well.
pub const MAX_MESSAGE: u64 = 16 << 20;

/// A request as sent: the version and the action.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    pub action: Action,
}

/// Only the version of a message, read first: a message of another version is refused by it,
/// whatever else it holds.
#[derive(Debug, Deserialize)]
pub struct Version {
    pub v: Option<u64>,
}

/// What the operator asks of the running `watch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Failed or skipped deliveries back to pending.
    Retry { keys: Vec<DeliveryKey> },
    /// Pending or failed deliveries marked skipped.
    Skip { keys: Vec<DeliveryKey>, reason: Option<String> },
    /// The open transaction at `nonce` on `chain` replaced by a zero-value send to itself.
    Cancel { chain: String, nonce: u64, max_fee: Option<u128> },
    /// The chain's nonces lined up with the node's.
    Resync { chain: String },
}

/// A reply as sent: the version and the outcome.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub v: u32,
    pub outcome: Outcome,
}

/// What came of an action.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Changed { changed: Vec<Changed> },
    Cancelled { cancelled: Cancelled },
    Resynced { resynced: Resynced },
    Error { kind: ErrorKind, message: String },
}

/// Why an action did not happen, as the command's exit code needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The action would break a rule (a delivery in flight, a nonce with nothing to cancel):
    /// nothing changed.
    Refused,
    /// No worker of that chain runs in this `watch` (not in its config, or still starting).
    NoWorker,
    /// A worker did not come round to it in time; nothing changed.
    Busy,
    /// The request is not one this `watch` understands (another version, bad JSON).
    BadRequest,
    /// It failed on the way (the chain's RPC, the store); what it says is in the message.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::{EventKey, ItemKey};

    #[test]
    fn requests_read_back_as_written_and_carry_their_version() {
        let key = DeliveryKey {
            target: 2,
            chain: 41000,
            item: ItemKey::Event(EventKey { chain: 31337, block: 9, log_index: 1 }),
        };
        let request =
            Request { v: VERSION, action: Action::Skip { keys: vec![key], reason: Some("by hand".into()) } };
        let text = serde_json::to_string(&request).expect("serializes");
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(value["v"], 1, "{text}");
        assert!(value["action"]["skip"].is_object(), "{text}");
        let back: Request = serde_json::from_str(&text).expect("reads back");
        match back.action {
            Action::Skip { keys, reason } => {
                assert_eq!((keys, reason.as_deref()), (vec![key], Some("by hand")))
            }
            other => panic!("read back as {other:?}"),
        }
        let cancel = Request {
            v: VERSION,
            action: Action::Cancel {
                chain: "base".into(),
                nonce: 3,
                max_fee: Some(u128::from(u64::MAX) * 4),
            },
        };
        let back: Request =
            serde_json::from_str(&serde_json::to_string(&cancel).expect("serializes")).expect("reads back");
        assert!(
            matches!(back.action, Action::Cancel { nonce: 3, max_fee: Some(m), .. } if m == u128::from(u64::MAX) * 4)
        );
    }
    #[test]
    fn a_reply_carries_fees_above_u64_whole() {
        let cancelled = Cancelled {
            chain: "base".into(),
            chain_id: 8453,
            signer: alloy::primitives::Address::ZERO,
            nonce: 7,
            replaces: alloy::primitives::B256::ZERO,
            hash: alloy::primitives::B256::repeat_byte(1),
            max_fee_per_gas: u128::from(u64::MAX) + 1,
            max_priority_fee_per_gas: None,
            broadcast: Err("node said no".into()),
        };
        let reply = Reply { v: VERSION, outcome: Outcome::Cancelled { cancelled } };
        let text = serde_json::to_string(&reply).expect("serializes");
        let back: Reply = serde_json::from_str(&text).expect("reads back");
        match back.outcome {
            Outcome::Cancelled { cancelled } => {
                assert_eq!(cancelled.max_fee_per_gas, u128::from(u64::MAX) + 1);
                assert_eq!(cancelled.broadcast, Err("node said no".to_string()));
            }
            other => panic!("read back as {other:?}"),
        }
    }
}
