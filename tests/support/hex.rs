//! JSON-RPC quantities (`"0x1a"`) as numbers, and numbers as quantities.

use serde_json::Value;

/// A hex quantity as `u64`; anything else fails the test, naming the value.
pub fn hex_u64(v: &Value) -> u64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a hex string: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A hex quantity as `u128` (fees in wei); anything else fails the test, naming the value.
pub fn hex_u128(v: &Value) -> u128 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a hex string: {v}"));
    u128::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A number as a JSON-RPC quantity.
pub fn quantity(n: u64) -> Value {
    Value::String(format!("{n:#x}"))
}
