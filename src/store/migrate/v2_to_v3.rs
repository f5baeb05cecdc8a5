//! Schema 2 → 3, for delivery:
//! - `deliveries`: records gain the signer, the receipt of the transaction that landed, and the
//!   creation time (taken as the last update for older records).
//! - `tx_intents`: records gain their state, destination, gas limit and mined hash. An older intent
//!   with a send time counts as sent, else as signed; either way the sender re-checks it on start.

use alloy::primitives::{Address, B256, Bytes};
use serde::Deserialize;

use super::rewrite;
use crate::store::keys::DeliveryKey;
use crate::store::records::{Delivery, DeliveryState, IntentState, TxIntent};
use crate::store::{StoreError, WriteTx, tables};

pub const DESCRIPTION: &str = "deliveries gain signer, receipt and creation time; tx intents gain state, destination, gas limit \
     and mined hash";

#[derive(Deserialize)]
struct DeliveryV1 {
    state: DeliveryState,
    attempts: u32,
    next_attempt_at: Option<u64>,
    tx_hashes: Vec<B256>,
    nonce: Option<u64>,
    reason: Option<String>,
    retryable: bool,
    updated_at: u64,
}

#[derive(Deserialize)]
struct TxIntentV1 {
    raw: Bytes,
    hash: B256,
    max_fee_per_gas: u128,
    max_priority_fee_per_gas: Option<u128>,
    created_at: u64,
    sent_at: Option<u64>,
    replaced: Vec<B256>,
    deliveries: Vec<DeliveryKey>,
}

pub fn run(tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
    rewrite::<33, DeliveryV1, Delivery>(tx, 1, tables::DELIVERIES, |d| Delivery {
        state: d.state,
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        tx_hashes: d.tx_hashes,
        signer: None,
        nonce: d.nonce,
        receipt: None,
        reason: d.reason,
        retryable: d.retryable,
        created_at: d.updated_at,
        updated_at: d.updated_at,
    })?;
    rewrite::<36, TxIntentV1, TxIntent>(tx, 1, tables::TX_INTENTS, |i| TxIntent {
        state: if i.sent_at.is_some() { IntentState::Sent } else { IntentState::Signed },
        raw: i.raw,
        hash: i.hash,
        to: Address::ZERO,
        gas_limit: 0,
        max_fee_per_gas: i.max_fee_per_gas,
        max_priority_fee_per_gas: i.max_priority_fee_per_gas,
        created_at: i.created_at,
        sent_at: i.sent_at,
        replaced: i.replaced,
        deliveries: i.deliveries,
        mined: None,
        cancel: None,
    })
}
