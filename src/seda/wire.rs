//! The batching REST API's JSON (cosmos gRPC-gateway, gogoproto): 64-bit integers as decimal
//! strings, bytes as standard base64 (`null` when empty), roots as hex without 0x. Every bad
//! field is an error that names it.

use alloy::primitives::{Address, B256, Bytes};
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde_json::{Map, Value, json};

use super::{BatchHeader, Signature, SignedBatch, Validator};

/// What `GET /seda-chain/batching/batch/{n}` (or `…/batch/0?latest_signed=true`) answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one answer per request, consumed at once: boxing the batch would buy nothing"
)]
pub enum BatchAnswer {
    /// A batch with its signatures.
    Signed(SignedBatch),
    /// The batch exists and is not signed yet (`batch_signatures` empty): ask again.
    Unsigned { number: u64 },
}

/// A field that did not decode: its JSON path (`batch.batch_id`, `validator_entries[3].eth_address`)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WireError {
    pub field: String,
    pub message: String,
}

fn wire_error(field: &str, message: impl Into<String>) -> WireError {
    WireError { field: field.to_string(), message: message.into() }
}

/// Standard base64, read with or without padding: gogoproto pads, but nothing is lost by not
/// insisting.
const BASE64_IN: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes a batch answer (HTTP 200 body).
pub fn parse_batch(body: &[u8]) -> Result<BatchAnswer, WireError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| wire_error("body", e.to_string()))?;
    let root = object(&root, "body")?;

    let batch = object(member(root, "batch"), "batch")?;
    let number = uint64(member(batch, "batch_number"), "batch.batch_number")?;
    let header = BatchHeader {
        number,
        block_height: uint64(member(batch, "block_height"), "batch.block_height")?,
        validators_root: hex32(member(batch, "validator_root"), "batch.validator_root")?,
        results_root: hex32(member(batch, "data_result_root"), "batch.data_result_root")?,
        proving_metadata: Bytes::from(base64_or_empty(
            member(batch, "proving_metadata"),
            "batch.proving_metadata",
        )?),
    };
    // `current_data_result_root` is not read: the Prover stores `data_result_root`, and the id
    // does not cover the other.
    let batch_id = B256::from(base64_array::<32>(member(batch, "batch_id"), "batch.batch_id")?);

    // A batch without results may come with the entries `null` or left out.
    let result_ids = match member(root, "data_result_entries") {
        Value::Null => Vec::new(),
        entries => {
            let entries = object(entries, "data_result_entries")?;
            optional_array(member(entries, "entries"), "data_result_entries.entries")?
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    base64_array::<32>(v, &format!("data_result_entries.entries[{i}]")).map(B256::from)
                })
                .collect::<Result<_, _>>()?
        }
    };

    let validators = optional_array(member(root, "validator_entries"), "validator_entries")?
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let path = format!("validator_entries[{i}]");
            let entry = object(entry, &path)?;
            Ok(Validator {
                operator: string(member(entry, "validator_address"), &format!("{path}.validator_address"))?,
                eth_address: Address::from(base64_array::<20>(
                    member(entry, "eth_address"),
                    &format!("{path}.eth_address"),
                )?),
                power: uint32(
                    member(entry, "voting_power_percent"),
                    &format!("{path}.voting_power_percent"),
                )?,
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;

    let signatures = optional_array(member(root, "batch_signatures"), "batch_signatures")?
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let path = format!("batch_signatures[{i}]");
            let entry = object(entry, &path)?;
            let operator = string(member(entry, "validator_address"), &format!("{path}.validator_address"))?;
            let path = format!("{path}.secp256k1_signature");
            let bytes = base64_bytes(member(entry, "secp256k1_signature"), &path)?;
            Signature::from_slice(operator, &bytes)
                .ok_or_else(|| wire_error(&path, format!("{} bytes, need at least 65", bytes.len())))
        })
        .collect::<Result<Vec<_>, WireError>>()?;

    if signatures.is_empty() {
        return Ok(BatchAnswer::Unsigned { number });
    }
    Ok(BatchAnswer::Signed(SignedBatch { header, batch_id, validators, signatures, result_ids }))
}

/// Whether an error answer (any status) says the batch is not there: a gRPC-gateway
/// `{code, message}` whose message contains "not found", or a 404.
pub fn is_not_found(status: u16, body: &[u8]) -> bool {
    if status == 404 {
        return true;
    }
    let json_message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned));
    let message = json_message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    message.to_ascii_lowercase().contains("not found")
}

/// `num_batches_to_keep` from `GET /seda-chain/batching/params` (`{"params": {...}}`).
pub fn parse_num_batches_to_keep(body: &[u8]) -> Result<u64, WireError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| wire_error("body", e.to_string()))?;
    let root = object(&root, "body")?;
    let params = object(member(root, "params"), "params")?;
    uint64(member(params, "num_batches_to_keep"), "params.num_batches_to_keep")
}

/// The JSON of a signed batch as the API writes it, for the test batching API and for export.
///
/// `current_data_result_root` is left out: ferry does not keep it (nothing posts or checks it),
/// and `parse_batch` does not read it.
pub fn batch_json(batch: &SignedBatch) -> serde_json::Value {
    let header = &batch.header;
    let proving_metadata = if header.proving_metadata.is_empty() {
        Value::Null
    } else {
        Value::String(STANDARD.encode(&header.proving_metadata))
    };
    json!({
        "batch": {
            "batch_number": header.number.to_string(),
            "block_height": header.block_height.to_string(),
            "validator_root": alloy::hex::encode(header.validators_root),
            "data_result_root": alloy::hex::encode(header.results_root),
            "batch_id": STANDARD.encode(batch.batch_id),
            "proving_metadata": proving_metadata,
        },
        "data_result_entries": {
            "entries": batch.result_ids.iter().map(|id| STANDARD.encode(id)).collect::<Vec<_>>(),
        },
        "validator_entries": batch.validators.iter().map(|v| json!({
            "validator_address": v.operator,
            "voting_power_percent": v.power,
            "eth_address": STANDARD.encode(v.eth_address),
        })).collect::<Vec<_>>(),
        "batch_signatures": batch.signatures.iter().map(|s| json!({
            "validator_address": s.operator,
            "secp256k1_signature": STANDARD.encode(s.bytes),
        })).collect::<Vec<_>>(),
    })
}

/// `Null` for a missing member, so "missing" and "null" read alike.
fn member<'a>(object: &'a Map<String, Value>, name: &str) -> &'a Value {
    object.get(name).unwrap_or(&Value::Null)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn missing_or(value: &Value, path: &str, expected: &str) -> WireError {
    match value {
        Value::Null => wire_error(path, format!("missing (expected {expected})")),
        other => wire_error(path, format!("expected {expected}, found {}", kind(other))),
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, WireError> {
    value.as_object().ok_or_else(|| missing_or(value, path, "an object"))
}

/// An array, or nothing: `null` or left out reads as empty.
fn optional_array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], WireError> {
    match value {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        other => Err(missing_or(other, path, "an array")),
    }
}

fn string(value: &Value, path: &str) -> Result<String, WireError> {
    value.as_str().map(str::to_owned).ok_or_else(|| missing_or(value, path, "a string"))
}

/// A decimal string as gogoproto writes 64-bit integers, or a plain number.
fn uint64(value: &Value, path: &str) -> Result<u64, WireError> {
    match value {
        Value::String(s) => s.parse().map_err(|_| wire_error(path, format!("{s:?} is not a decimal u64"))),
        Value::Number(n) => n.as_u64().ok_or_else(|| wire_error(path, format!("{n} is not a u64"))),
        other => Err(missing_or(other, path, "a decimal string")),
    }
}

/// A number as gogoproto writes 32-bit integers, or a decimal string.
fn uint32(value: &Value, path: &str) -> Result<u32, WireError> {
    let wide = match value {
        Value::Number(n) => n.as_u64().ok_or_else(|| wire_error(path, format!("{n} is not a u32")))?,
        Value::String(s) => s.parse().map_err(|_| wire_error(path, format!("{s:?} is not a decimal u32")))?,
        other => return Err(missing_or(other, path, "a number")),
    };
    u32::try_from(wide).map_err(|_| wire_error(path, format!("{wide} is above the u32 range")))
}

/// 32 bytes in hex, with or without 0x.
fn hex32(value: &Value, path: &str) -> Result<B256, WireError> {
    let text = value.as_str().ok_or_else(|| missing_or(value, path, "hex of 32 bytes"))?;
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    let bytes = alloy::hex::decode(digits).map_err(|_| wire_error(path, "not hex of 32 bytes"))?;
    B256::try_from(bytes.as_slice())
        .map_err(|_| wire_error(path, format!("not hex of 32 bytes ({} bytes)", bytes.len())))
}

fn base64_bytes(value: &Value, path: &str) -> Result<Vec<u8>, WireError> {
    let text = value.as_str().ok_or_else(|| missing_or(value, path, "base64"))?;
    BASE64_IN.decode(text).map_err(|e| wire_error(path, format!("not base64: {e}")))
}

/// Base64 bytes that gogoproto writes as `null` (or `""`) when empty.
fn base64_or_empty(value: &Value, path: &str) -> Result<Vec<u8>, WireError> {
    match value {
        Value::Null => Ok(Vec::new()),
        other => base64_bytes(other, path),
    }
}

fn base64_array<const N: usize>(value: &Value, path: &str) -> Result<[u8; N], WireError> {
    let expected = format!("base64 of {N} bytes");
    let text = value.as_str().ok_or_else(|| missing_or(value, path, &expected))?;
    let bytes = BASE64_IN.decode(text).map_err(|_| wire_error(path, format!("not {expected}")))?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| wire_error(path, format!("not {expected} ({len} bytes)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seda::testing::{batch, quarters, validator};

    fn sample() -> SignedBatch {
        let validators = quarters(5).into_iter().map(|(i, p)| validator(i, p)).collect();
        let mut b = batch(7, validators, &[1, 2, 3]);
        b.result_ids.push(B256::repeat_byte(0xee));
        b
    }

    fn parse(value: &Value) -> Result<BatchAnswer, WireError> {
        parse_batch(&serde_json::to_vec(value).expect("JSON values serialise"))
    }

    fn error_of(value: &Value) -> String {
        parse(value).expect_err("the answer is refused").to_string()
    }

    #[test]
    fn a_batch_round_trips_through_its_json() {
        let b = sample();
        assert_eq!(parse(&batch_json(&b)), Ok(BatchAnswer::Signed(b.clone())));

        let mut with_metadata = b;
        with_metadata.header.proving_metadata = Bytes::from_static(b"\x01\x02meta");
        assert_eq!(parse(&batch_json(&with_metadata)), Ok(BatchAnswer::Signed(with_metadata)));
    }

    #[test]
    fn the_json_has_the_api_encodings() {
        let b = sample();
        let json = batch_json(&b);
        assert_eq!(json["batch"]["batch_number"], "7");
        assert_eq!(json["batch"]["block_height"], "170");
        assert_eq!(json["batch"]["proving_metadata"], Value::Null);
        let root = json["batch"]["validator_root"].as_str().expect("a hex root");
        assert_eq!(root.len(), 64);
        assert!(!root.starts_with("0x"));
        assert_eq!(json["validator_entries"][0]["voting_power_percent"], 25_000_000);
        assert_eq!(json["data_result_entries"]["entries"].as_array().map(Vec::len), Some(2));
    }

    /// The shape of a live answer, written out by hand: roots in hex, ids and keys in base64.
    #[test]
    fn a_literal_answer_decodes() {
        let body = br#"{
            "batch": {
                "batch_number": "1", "block_height": "0",
                "validator_root": "bb9dcde527b03bcf4022f44c13ffce6eb445e765cc3064dd5c6093ca781a7ebc",
                "data_result_root": "b361e88bec2624b327671f15761d4c24915dbc11503343f3e325d0d97061552a",
                "current_data_result_root": "0000000000000000000000000000000000000000000000000000000000000000",
                "batch_id": "r9RIPlz6mVTswjx42gq9LBqS0Oi+az5b9VTNDqWsMFs=",
                "proving_metadata": null
            },
            "data_result_entries": null,
            "validator_entries": [
                {"validator_address": "sedavaloper1abc", "voting_power_percent": 100000000,
                 "eth_address": "AQIDBAUGBwgJCgsMDQ4PEBESExQ="}
            ],
            "batch_signatures": [
                {"validator_address": "sedavaloper1abc",
                 "secp256k1_signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="}
            ]
        }"#;
        let BatchAnswer::Signed(b) = parse_batch(body).expect("the literal answer decodes") else {
            panic!("a batch with signatures is signed");
        };
        assert_eq!(b.batch_id, b.header.id());
        assert_eq!(b.header.number, 1);
        assert!(b.result_ids.is_empty());
        assert_eq!(b.validators[0].eth_address, Address::from(std::array::from_fn(|i| i as u8 + 1)));
        // 66 bytes given: the first 65 kept.
        assert_eq!(b.signatures[0].bytes, [0; 65]);
    }

    #[test]
    fn no_signatures_is_unsigned() {
        let mut json = batch_json(&sample());
        json["batch_signatures"] = json!([]);
        assert_eq!(parse(&json), Ok(BatchAnswer::Unsigned { number: 7 }));
        json["batch_signatures"] = Value::Null;
        assert_eq!(parse(&json), Ok(BatchAnswer::Unsigned { number: 7 }));
    }

    #[test]
    fn liberal_where_the_api_may_differ() {
        let b = sample();
        let mut json = batch_json(&b);
        json["batch"]["proving_metadata"] = json!("");
        json["batch"]["validator_root"] =
            json!(format!("0x{}", alloy::hex::encode(b.header.validators_root)));
        json["batch"]["batch_number"] = json!(7);
        json["validator_entries"][0]["validator_address"] = json!("AQID");
        json["batch"]["current_data_result_root"] = json!("anything");
        let mut expected = b.clone();
        expected.validators[0].operator = "AQID".into();
        assert_eq!(parse(&json), Ok(BatchAnswer::Signed(expected)));

        let mut json = batch_json(&b);
        json.as_object_mut().expect("an object").remove("data_result_entries");
        let mut expected = b.clone();
        expected.result_ids.clear();
        assert_eq!(parse(&json), Ok(BatchAnswer::Signed(expected.clone())));
        json["data_result_entries"] = json!({"entries": null});
        assert_eq!(parse(&json), Ok(BatchAnswer::Signed(expected)));
    }

    #[test]
    fn every_bad_field_is_named() {
        let good = batch_json(&sample());
        let cases: Vec<(&str, Value, &str)> = vec![
            ("/batch/batch_id", json!("AAAA"), "batch.batch_id: not base64 of 32 bytes (3 bytes)"),
            ("/batch/batch_id", json!("!!"), "batch.batch_id: not base64 of 32 bytes"),
            ("/batch/batch_number", json!("x7"), "batch.batch_number: \"x7\" is not a decimal u64"),
            ("/batch/block_height", Value::Null, "batch.block_height: missing (expected a decimal string)"),
            ("/batch/validator_root", json!("zz"), "batch.validator_root: not hex of 32 bytes"),
            (
                "/batch/data_result_root",
                json!("abcd"),
                "batch.data_result_root: not hex of 32 bytes (2 bytes)",
            ),
            ("/batch/proving_metadata", json!(5), "batch.proving_metadata: expected base64, found a number"),
            (
                "/data_result_entries/entries/1",
                json!("AA=="),
                "data_result_entries.entries[1]: not base64 of 32 bytes (1 bytes)",
            ),
            (
                "/validator_entries/2/eth_address",
                json!("AAAA"),
                "validator_entries[2].eth_address: not base64 of 20 bytes (3 bytes)",
            ),
            (
                "/validator_entries/1/voting_power_percent",
                json!(5_000_000_000u64),
                "validator_entries[1].voting_power_percent: 5000000000 is above the u32 range",
            ),
            (
                "/validator_entries/0/validator_address",
                json!(3),
                "validator_entries[0].validator_address: expected a string, found a number",
            ),
            (
                "/batch_signatures/0/secp256k1_signature",
                json!(STANDARD.encode([0u8; 64])),
                "batch_signatures[0].secp256k1_signature: 64 bytes, need at least 65",
            ),
            ("/batch_signatures", json!({}), "batch_signatures: expected an array, found an object"),
        ];
        for (pointer, value, expected) in cases {
            let mut json = good.clone();
            *json.pointer_mut(pointer).expect("the pointer names a field") = value;
            assert_eq!(error_of(&json), expected, "{pointer}");
        }
        let mut json = good;
        json.as_object_mut().expect("an object").remove("batch");
        assert_eq!(error_of(&json), "batch: missing (expected an object)");
    }

    #[test]
    fn malformed_json_is_a_body_error() {
        let e = parse_batch(b"{not json").expect_err("malformed JSON is refused");
        assert_eq!(e.field, "body");
        assert_eq!(parse_batch(b"[]").expect_err("an array is refused").field, "body");
    }

    #[test]
    fn not_found_by_status_or_message() {
        assert!(is_not_found(404, b""));
        assert!(is_not_found(500, br#"{"code":5,"message":"batch 12: Not Found","details":[]}"#));
        assert!(is_not_found(400, b"rpc error: code = NotFound desc = batch not found"));
        assert!(!is_not_found(500, br#"{"code":13,"message":"internal error","details":[]}"#));
        assert!(!is_not_found(503, b"service unavailable"));
    }

    #[test]
    fn num_batches_to_keep_as_string_or_number() {
        let body = br#"{"params":{"num_batches_to_keep":"10000","max_batch_prune_per_block":"1000"}}"#;
        assert_eq!(parse_num_batches_to_keep(body), Ok(10_000));
        assert_eq!(parse_num_batches_to_keep(br#"{"params":{"num_batches_to_keep":42}}"#), Ok(42));
        assert_eq!(
            parse_num_batches_to_keep(br#"{"params":{}}"#).map_err(|e| e.to_string()),
            Err("params.num_batches_to_keep: missing (expected a decimal string)".to_string())
        );
        assert_eq!(parse_num_batches_to_keep(b"nope").map_err(|e| e.field), Err("body".to_string()));
    }
}
