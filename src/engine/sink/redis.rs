//! PLACEHOLDER: the `redis` sink is being written; every call says so.

use super::{Message, Outcome, SinkError};
use crate::config::RedisStreamPlan;

pub struct RedisStream;

impl RedisStream {
    pub async fn connect(_plan: &RedisStreamPlan) -> Result<Self, SinkError> {
        Err(SinkError::Config("the redis sink is not built yet".into()))
    }

    pub async fn send(&mut self, batch: &[Message]) -> Vec<Outcome> {
        batch.iter().map(|_| Outcome::Failed { reason: "the redis sink is not built yet".into() }).collect()
    }

    pub async fn recover(
        &mut self,
        batch: &[Message],
        _since: u64,
    ) -> Result<Vec<Option<String>>, SinkError> {
        Ok(vec![None; batch.len()])
    }
}

pub async fn probe(_plan: &RedisStreamPlan) -> Result<String, SinkError> {
    Err(SinkError::Config("the redis sink is not built yet".into()))
}
