//! Messages and outcomes for the tests of one sink module at a time (`tests/it/sink_*.rs`).

use ferry::engine::sink::{Message, Outcome};

/// `n` messages with keys `hook/ev:<tag>:<i>`, from source `base`, each body a small JSON object
/// holding its key.
pub fn messages(tag: &str, n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let key = format!("hook/ev:{tag}:{i}");
            Message {
                body: serde_json::json!({ "key": key, "n": i }).to_string(),
                key,
                source: "base".to_string(),
                event: "Ping".to_string(),
            }
        })
        .collect()
}

/// The ack of every outcome; fails the test when one was not delivered.
pub fn acks(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            Outcome::Delivered { ack } => ack.clone(),
            other => panic!("expected every message delivered, got {other:?}"),
        })
        .collect()
}
