//! How the rows people and scripts read write values serde would otherwise write as bytes or
//! lowercase: keys as the text operators type (`ev:…`, `batch:…`), addresses EIP-55 checksummed
//! as in the config. One copy for the views, the exports and the sink messages.

use alloy::primitives::Address;
use serde::Serializer;

/// A value in its `Display` form.
pub fn as_text<S: Serializer, T: std::fmt::Display>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// An address EIP-55 checksummed.
pub fn checksummed<S: Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&a.to_checksum(None))
}

/// An optional address EIP-55 checksummed, or null.
pub fn checksummed_opt<S: Serializer>(a: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(a) => s.serialize_str(&a.to_checksum(None)),
        None => s.serialize_none(),
    }
}
