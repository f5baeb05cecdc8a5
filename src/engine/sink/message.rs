//! The one JSON shape every sink receives (`"v": 1`), built from a stored item.
//!
//! ```json
//! {"v":1,"key":"hook/ev:8453:21000123:7","target":"hook","source":"escrows",
//!  "item":"ev:8453:21000123:7","kind":"event","chain":"base","chain_id":8453,
//!  "block_number":21000123,"block_hash":"0x…","tx_hash":"0x…","log_index":7,
//!  "contract":"0x…","event":"Approved","fields":{"escrow":"0x…","amount":"1000"},
//!  "topics":["0x…"],"data":"0x…"}
//! ```
//!
//! A SEDA batch has `"kind":"batch"` and a `batch` object instead of the event's fields: the row
//! `export batches` writes (number, block height, id, roots, validator entries, signatures,
//! result ids). `v` and `key` always come
//! first, in that order: the JSONL sink finds a line by that prefix.

use crate::store::serde_text::{as_text, checksummed};
use alloy::primitives::{Address, B256, Bytes};
use serde::Serialize;

use super::Message;
use crate::store::keys::{BatchKey, EventKey, ItemKey};
use crate::store::query_seda::{BatchRow, batch_row};
use crate::store::records::Event;
use crate::store::sink::StoredItem;

/// The version of the message shape; a change that a consumer could notice bumps it.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Body<'a> {
    v: u32,
    key: &'a str,
    target: &'a str,
    source: &'a str,
    #[serde(serialize_with = "as_text")]
    item: ItemKey,
    kind: &'static str,
    #[serde(flatten)]
    what: What<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum What<'a> {
    Event(EventBody<'a>),
    Batch { batch: BatchRow },
}

#[derive(Serialize)]
struct EventBody<'a> {
    chain: &'a str,
    chain_id: u64,
    block_number: u64,
    block_hash: B256,
    tx_hash: B256,
    log_index: u32,
    #[serde(serialize_with = "checksummed")]
    contract: Address,
    event: Option<&'a str>,
    fields: Option<serde_json::Value>,
    topics: &'a [B256],
    data: &'a Bytes,
}

/// What a message is built from, besides the item.
pub struct Context<'a> {
    pub target: &'a str,
    pub source: &'a str,
    /// The config's name of the event's chain (its id when the config has none).
    pub chain: &'a str,
}

/// The message of one delivery: `key` is the delivery id, `<target>/<item>`.
pub fn build(cx: &Context<'_>, item_key: ItemKey, item: &StoredItem) -> Message {
    let key = format!("{}/{item_key}", cx.target);
    let (kind, event, what) = match (item, item_key) {
        (StoredItem::Event(e), ItemKey::Event(k)) => {
            ("event", e.name.as_deref(), What::Event(event_body(cx, k, e)))
        }
        (StoredItem::Batch(b), ItemKey::Batch(k)) => {
            ("batch", Some("batch"), What::Batch { batch: batch_row(cx.source.to_string(), k, b.clone()) })
        }
        // A record of one kind under the other kind's key cannot be written by ferry; say what it
        // is anyway.
        (StoredItem::Event(e), ItemKey::Batch(_)) => {
            let k = EventKey { chain: 0, block: 0, log_index: 0 };
            ("event", e.name.as_deref(), What::Event(event_body(cx, k, e)))
        }
        (StoredItem::Batch(b), ItemKey::Event(_)) => {
            let k = BatchKey { source: 0, height: b.batch.header.number };
            ("batch", Some("batch"), What::Batch { batch: batch_row(cx.source.to_string(), k, b.clone()) })
        }
    };
    let body =
        Body { v: VERSION, key: &key, target: cx.target, source: cx.source, item: item_key, kind, what };
    // Plain data into a String: serialization cannot fail.
    let body = serde_json::to_string(&body).expect("messages serialize");
    Message { key, source: cx.source.to_string(), event: event.unwrap_or("unknown").to_string(), body }
}

fn event_body<'a>(cx: &Context<'a>, k: EventKey, e: &'a Event) -> EventBody<'a> {
    EventBody {
        chain: cx.chain,
        chain_id: k.chain,
        block_number: k.block,
        block_hash: e.block_hash,
        tx_hash: e.tx_hash,
        log_index: k.log_index,
        contract: e.address,
        event: e.name.as_deref(),
        fields: e.fields.as_deref().and_then(|f| serde_json::from_str(f).ok()),
        topics: &e.topics,
        data: &e.data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn event() -> Event {
        Event {
            source: 1,
            address: Address::repeat_byte(0xe5),
            block_hash: B256::repeat_byte(2),
            tx_hash: B256::repeat_byte(3),
            topics: vec![B256::repeat_byte(4)],
            data: Bytes::from_static(&[5; 4]),
            name: Some("Approved".into()),
            fields: Some(r#"{"amount":"1000","by":"0x00000000000000000000000000000000000000aa"}"#.into()),
            decode_error: None,
        }
    }

    #[test]
    fn an_event_message_carries_its_key_first_and_every_field() {
        let key = ItemKey::Event(EventKey { chain: 8453, block: 21_000_123, log_index: 7 });
        let cx = Context { target: "hook", source: "escrows", chain: "base" };
        let m = build(&cx, key, &StoredItem::Event(event()));
        assert_eq!(m.key, "hook/ev:8453:21000123:7");
        assert_eq!((m.source.as_str(), m.event.as_str()), ("escrows", "Approved"));
        assert!(m.body.starts_with(r#"{"v":1,"key":"hook/ev:8453:21000123:7","#), "{}", m.body);
        assert!(!m.body.contains('\n'));
        let v: Value = serde_json::from_str(&m.body).expect("JSON");
        assert_eq!(v["kind"], "event");
        assert_eq!(v["item"], "ev:8453:21000123:7");
        assert_eq!(v["chain"], "base");
        assert_eq!(v["chain_id"], 8453);
        assert_eq!(v["block_number"], 21_000_123);
        assert_eq!(v["log_index"], 7);
        assert_eq!(v["block_hash"], B256::repeat_byte(2).to_string());
        assert_eq!(v["tx_hash"], B256::repeat_byte(3).to_string());
        assert_eq!(v["contract"], Address::repeat_byte(0xe5).to_checksum(None));
        assert_eq!(v["event"], "Approved");
        assert_eq!(v["fields"]["amount"], "1000");
        assert_eq!(v["data"], "0x05050505");
    }

    #[test]
    fn a_batch_message_carries_the_batch() {
        use crate::seda::{BatchHeader, Signature, SignedBatch, Validator};
        use crate::store::records::Batch;
        let batch = Batch {
            batch: SignedBatch {
                header: BatchHeader {
                    number: 41,
                    block_height: 900,
                    validators_root: B256::repeat_byte(7),
                    results_root: B256::repeat_byte(8),
                    proving_metadata: Bytes::new(),
                },
                batch_id: B256::repeat_byte(9),
                validators: vec![Validator {
                    operator: "sedavaloper1x".into(),
                    eth_address: Address::repeat_byte(1),
                    power: 100_000_000,
                }],
                signatures: vec![Signature { operator: "sedavaloper1x".into(), bytes: [1; 65] }],
                result_ids: vec![B256::repeat_byte(6)],
            },
            anchor: false,
            fetched_at: 1,
        };
        let key = ItemKey::Batch(crate::store::keys::BatchKey { source: 2, height: 41 });
        let cx = Context { target: "archive", source: "seda", chain: "" };
        let m = build(&cx, key, &StoredItem::Batch(batch));
        assert_eq!((m.key.as_str(), m.event.as_str()), ("archive/batch:2:41", "batch"));
        let v: Value = serde_json::from_str(&m.body).expect("JSON");
        assert_eq!(v["kind"], "batch");
        assert_eq!(v["batch"]["number"], 41);
        assert_eq!(v["batch"]["batch_id"], B256::repeat_byte(9).to_string());
        assert_eq!(v["batch"]["validators"][0]["power"], 100_000_000);
        assert_eq!(v["batch"]["signatures"][0]["signature"].as_str().map(str::len), Some(2 + 130));
        assert!(v.get("chain").is_none());
    }
}
