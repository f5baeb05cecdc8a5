//! PLACEHOLDER: the `pubsub` sink is being written; every call says so.

use super::{Message, Outcome, SinkError};
use crate::config::PubsubPlan;

pub struct Pubsub;

impl Pubsub {
    pub async fn connect(_plan: &PubsubPlan, _concurrency: usize) -> Result<Self, SinkError> {
        Err(SinkError::Config("the pubsub sink is not built yet".into()))
    }

    pub async fn send(&mut self, batch: &[Message]) -> Vec<Outcome> {
        batch.iter().map(|_| Outcome::Failed { reason: "the pubsub sink is not built yet".into() }).collect()
    }

    pub async fn recover(
        &mut self,
        batch: &[Message],
        _since: u64,
    ) -> Result<Vec<Option<String>>, SinkError> {
        Ok(vec![None; batch.len()])
    }
}

pub async fn probe(_plan: &PubsubPlan) -> Result<String, SinkError> {
    Err(SinkError::Config("the pubsub sink is not built yet".into()))
}
