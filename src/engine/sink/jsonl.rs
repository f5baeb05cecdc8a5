//! PLACEHOLDER: the `jsonl` sink is being written; every call says so.

use super::{Message, Outcome, SinkError};
use crate::config::JsonlPlan;

pub struct Jsonl;

impl Jsonl {
    pub fn connect(_plan: &JsonlPlan) -> Result<Self, SinkError> {
        Err(SinkError::Config("the jsonl sink is not built yet".into()))
    }

    pub async fn send(&mut self, batch: &[Message]) -> Vec<Outcome> {
        batch.iter().map(|_| Outcome::Failed { reason: "the jsonl sink is not built yet".into() }).collect()
    }

    pub async fn recover(
        &mut self,
        batch: &[Message],
        _since: u64,
    ) -> Result<Vec<Option<String>>, SinkError> {
        Ok(vec![None; batch.len()])
    }
}

pub fn probe(_plan: &JsonlPlan) -> Result<String, SinkError> {
    Err(SinkError::Config("the jsonl sink is not built yet".into()))
}
