//! The transaction intents view: each nonce ferry signed, per chain and signer, read out of the
//! same snapshot as the deliveries it carries (whose ids the rows list).

use std::ops::ControlFlow;

use alloy::primitives::{Address, B256};
use serde::Serialize;

use super::{DeliveryQuery, checksummed, fail};
use crate::store::keys::{FixedKey, IntentKey};
use crate::store::records::{self, IntentState, TxIntent};
use crate::store::{StoreError, guarded, tables};

/// Which intents to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntentFilter {
    pub chain: Option<u64>,
    /// Only signed or sent ones: not mined yet.
    pub open: bool,
}

/// One signed transaction (a nonce of a signer on a chain) as people and scripts read it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntentRow {
    pub chain: String,
    pub chain_id: u64,
    #[serde(serialize_with = "checksummed")]
    pub signer: Address,
    pub nonce: u64,
    pub state: IntentState,
    /// The current hash: of the latest bytes signed at this nonce.
    pub tx_hash: B256,
    /// Hashes replaced by fee bumps, oldest first.
    pub replaced_tx_hashes: Vec<B256>,
    /// The operator's cancellation at this nonce, if any.
    pub cancel_tx_hash: Option<B256>,
    #[serde(serialize_with = "checksummed")]
    pub to: Address,
    pub gas_limit: u64,
    /// Wei; the gas price of a legacy transaction.
    pub max_fee_per_gas: u128,
    /// Wei; `None` for a legacy transaction.
    pub max_priority_fee_per_gas: Option<u128>,
    /// The same fees in gwei, as exact decimal text.
    pub max_fee_gwei: String,
    pub priority_fee_gwei: Option<String>,
    /// Ids of the deliveries it carries (`<target>/<chain>/<item>`); empty for a cancellation.
    pub deliveries: Vec<String>,
    pub created_at: u64,
    pub sent_at: Option<u64>,
    /// The hash that was mined, once one was.
    pub mined_tx_hash: Option<B256>,
}

/// Intents by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IntentCounts {
    pub signed: u64,
    pub sent: u64,
    pub mined: u64,
    pub dropped: u64,
    pub confirmed: u64,
}

impl IntentCounts {
    pub fn add(&mut self, state: IntentState) {
        match state {
            IntentState::Signed => self.signed += 1,
            IntentState::Sent => self.sent += 1,
            IntentState::Mined => self.mined += 1,
            IntentState::Dropped => self.dropped += 1,
            IntentState::Confirmed => self.confirmed += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.signed + self.sent + self.mined + self.dropped + self.confirmed
    }
}

/// The word for an intent state, as JSON writes it.
pub fn intent_state_name(state: IntentState) -> &'static str {
    match state {
        IntentState::Signed => "signed",
        IntentState::Sent => "sent",
        IntentState::Mined => "mined",
        IntentState::Dropped => "dropped",
        IntentState::Confirmed => "confirmed",
    }
}

/// Which way to walk the intents: oldest nonce first, or newest first (so that a limit keeps the
/// recent ones, which are what an incident is about).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

impl DeliveryQuery<'_> {
    /// Streams matching intents in key order (chain, signer, nonce) or its reverse to `emit` until
    /// it breaks; returns how many it got.
    pub fn intents(
        &self,
        filter: IntentFilter,
        order: Order,
        emit: &mut dyn FnMut(IntentRow) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        guarded(self.store.path(), "reading transaction intents", || {
            self.intents_unguarded(filter, order, emit)
        })?
    }

    fn intents_unguarded(
        &self,
        filter: IntentFilter,
        order: Order,
        emit: &mut dyn FnMut(IntentRow) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        let table = self.txn.open_table(tables::TX_INTENTS).map_err(|e| fail(self.store, e))?;
        let (lo, hi) = match filter.chain {
            Some(chain) => (
                IntentKey { chain, signer: Address::ZERO, nonce: 0 }.to_bytes(),
                IntentKey { chain, signer: Address::repeat_byte(0xff), nonce: u64::MAX }.to_bytes(),
            ),
            None => ([0; 36], [0xff; 36]),
        };
        let range = table.range(lo..=hi).map_err(|e| fail(self.store, e))?;
        let entries: Box<dyn Iterator<Item = _>> = match order {
            Order::OldestFirst => Box::new(range),
            Order::NewestFirst => Box::new(range.rev()),
        };
        let mut emitted = 0;
        for entry in entries {
            let (key, value) = entry.map_err(|e| fail(self.store, e))?;
            let key = IntentKey::from_bytes(key.value());
            let intent: TxIntent = records::decode(value.value()).map_err(|e| fail(self.store, e))?;
            if filter.open && !intent.is_open() {
                continue;
            }
            emitted += 1;
            if emit(self.intent_row(key, intent)).is_break() {
                break;
            }
        }
        Ok(emitted)
    }

    fn intent_row(&self, key: IntentKey, i: TxIntent) -> IntentRow {
        IntentRow {
            chain: self.chain_name(key.chain),
            chain_id: key.chain,
            signer: key.signer,
            nonce: key.nonce,
            state: i.state,
            tx_hash: i.hash,
            replaced_tx_hashes: i.replaced,
            cancel_tx_hash: i.cancel,
            to: i.to,
            gas_limit: i.gas_limit,
            max_fee_per_gas: i.max_fee_per_gas,
            max_priority_fee_per_gas: i.max_priority_fee_per_gas,
            max_fee_gwei: gwei(i.max_fee_per_gas),
            priority_fee_gwei: i.max_priority_fee_per_gas.map(gwei),
            deliveries: i.deliveries.iter().map(|k| self.id(k)).collect(),
            created_at: i.created_at,
            sent_at: i.sent_at,
            mined_tx_hash: i.mined,
        }
    }
}

/// Wei as gwei in exact decimal text: `1500000000` → `1.5`, `7` → `0.000000007`.
pub fn gwei(wei: u128) -> String {
    const GWEI: u128 = 1_000_000_000;
    let (whole, frac) = (wei / GWEI, wei % GWEI);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:09}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}
