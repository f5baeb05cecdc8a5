//! The audit trail of one destination chain: an INFO line for each transaction sent, replaced,
//! mined, confirmed or dropped and each delivery that failed on-chain, with the delivery id
//! (`<target>/<chain>/<item>`, what `inspect-store retry` takes), the chain, the nonce and the
//! hash as fields; and the chain's transaction counters (`observe::tx`). Said once the change
//! is written, from the same update that wrote it.

use super::{Update, Worker};
use crate::engine::observe::{self, TxEvent};
use crate::store::records::{DeliveryState, TxIntent};

impl Worker {
    /// `<target>/<chain>/<item>` of each delivery an intent carries (what `inspect-store retry`
    /// takes); `-` for a cancellation, which carries none.
    fn delivery_ids(&self, intent: &TxIntent) -> Vec<String> {
        if intent.deliveries.is_empty() {
            return vec!["-".into()];
        }
        intent
            .deliveries
            .iter()
            .map(|k| {
                let target = self.dest.targets.get(&k.target).map_or("?", |t| t.name.as_str());
                format!("{target}/{}/{}", self.dest.chain, k.item)
            })
            .collect()
    }

    pub(super) fn audit(&self, nonce: u64, intent: &TxIntent, update: &Update) {
        let chain = self.dest.chain.as_str();
        let ids = self.delivery_ids(intent);
        match update {
            Update::None | Update::Reorged => {}
            Update::Sent => {
                observe::tx(chain, TxEvent::Sent);
                for id in &ids {
                    tracing::info!(chain = %chain, nonce, delivery = %id, tx_hash = %intent.hash, "transaction sent");
                }
            }
            Update::Bumped(hash) => {
                observe::tx(chain, TxEvent::Replaced);
                let old = intent.replaced.last().map(ToString::to_string).unwrap_or_default();
                for id in &ids {
                    tracing::info!(chain = %chain, nonce, delivery = %id, tx_hash = %hash, replaced = %old, "transaction replaced");
                }
            }
            Update::Mined { receipt, verdicts } => {
                observe::tx(chain, TxEvent::Mined);
                for id in &ids {
                    tracing::info!(
                        chain = %chain, nonce, delivery = %id, tx_hash = %receipt.tx_hash, block = receipt.block,
                        success = receipt.success, "transaction mined"
                    );
                }
                for (key, state, reason) in verdicts.iter().filter(|(_, s, _)| *s == DeliveryState::Failed) {
                    let target = self.dest.targets.get(&key.target).map_or("?", |t| t.name.as_str());
                    tracing::info!(
                        chain = %chain, nonce, delivery = %format!("{target}/{chain}/{}", key.item),
                        tx_hash = %receipt.tx_hash, state = state.as_str(), reason, "delivery failed"
                    );
                }
            }
            Update::Confirmed(receipt) => {
                let gas_price = receipt.effective_gas_price;
                observe::tx(chain, TxEvent::Confirmed { gas_used: receipt.gas_used, gas_price });
                for id in &ids {
                    tracing::info!(
                        chain = %chain, nonce, delivery = %id, tx_hash = %receipt.tx_hash, block = receipt.block,
                        gas_used = receipt.gas_used, "transaction confirmed"
                    );
                }
            }
            Update::Dropped(reason) => {
                observe::tx(chain, TxEvent::Dropped);
                for id in &ids {
                    tracing::info!(chain = %chain, nonce, delivery = %id, tx_hash = %intent.hash, reason, "transaction dropped");
                }
            }
            Update::Forgotten(reason) => {
                observe::tx(chain, TxEvent::Dropped);
                for id in &ids {
                    tracing::info!(chain = %chain, nonce, delivery = %id, tx_hash = %intent.hash, reason, "transaction forgotten by a reset chain");
                }
            }
        }
    }
}
