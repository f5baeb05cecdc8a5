//! Event declarations → topic0 and decoding. topic0 is computed from the Solidity declaration in
//! the config, never copied by hand. A log decodes into a JSON object of named fields; a log that
//! does not decode keeps its raw topics and data and says why.

use std::collections::HashMap;

use alloy::dyn_abi::{DynSolEvent, DynSolValue, Specifier};
use alloy::json_abi::Event;
use alloy::primitives::{Address, B256};
use serde_json::{Map, Value};

/// One declared event, ready to decode.
#[derive(Debug, Clone)]
struct Declared {
    name: String,
    /// Parameter names in declaration order, split by `indexed`.
    indexed_names: Vec<String>,
    body_names: Vec<String>,
    /// `(JSON-quoted name, indexed?, position)` sorted by name: the order of a JSON object's keys.
    json_order: Vec<(String, bool, usize)>,
    resolved: DynSolEvent,
}

/// The events declared for one kind of contract, by topic0.
#[derive(Debug, Clone, Default)]
pub struct EventSet {
    by_topic0: HashMap<B256, Vec<Declared>>,
}

/// What came of decoding one log.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The declared event whose topic0 matched, if one did.
    pub name: Option<String>,
    /// The fields as a JSON object, when the log decoded.
    pub fields: Option<Value>,
    /// Why a log whose topic0 matched did not decode.
    pub error: Option<String>,
}

/// Parses one event declaration as the config resolves it: every parameter type must be a
/// Solidity type. The error is a message and a hint for the config's diagnostic.
pub fn parse_event(decl: &str) -> Result<Event, (String, Option<String>)> {
    match Event::parse(decl.trim()) {
        Ok(event) => match super::bad_param_type(event.inputs.iter().map(|p| p.selector_type())) {
            Some(ty) => Err((format!("`{ty}` is not a Solidity type"), None)),
            None => Ok(event),
        },
        Err(e) => Err((
            format!("not a Solidity event declaration: {}", super::one_line(&e.to_string())),
            Some("write e.g. `event Approved(address indexed by)`".into()),
        )),
    }
}

impl EventSet {
    /// Parses Solidity event declarations (`event Transfer(address indexed from, …)`) by the
    /// config's rules ([`parse_event`]), for tests that build a set from text.
    #[cfg(test)]
    pub fn parse<S: AsRef<str>>(declarations: &[S]) -> Result<Self, String> {
        let mut set = EventSet::default();
        for decl in declarations {
            let event = parse_event(decl.as_ref()).map_err(|(message, _)| message)?;
            set.add(event)?;
        }
        Ok(set)
    }

    /// Adds a parsed declaration; an error when its types do not resolve.
    pub fn add(&mut self, event: Event) -> Result<(), String> {
        let resolved = event.resolve().map_err(|e| e.to_string())?;
        let name_of =
            |i: usize, name: &str| if name.is_empty() { format!("arg{i}") } else { name.to_string() };
        let mut indexed_names = Vec::new();
        let mut body_names = Vec::new();
        for (i, input) in event.inputs.iter().enumerate() {
            if input.indexed {
                indexed_names.push(name_of(i, &input.name));
            } else {
                body_names.push(name_of(i, &input.name));
            }
        }
        let mut json_order: Vec<(String, bool, usize)> = indexed_names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), true, i))
            .chain(body_names.iter().enumerate().map(|(i, n)| (n.clone(), false, i)))
            .collect();
        json_order.sort_by(|a, b| a.0.cmp(&b.0));
        json_order.dedup_by(|later, earlier| later.0 == earlier.0);
        for entry in &mut json_order {
            entry.0 = Value::String(std::mem::take(&mut entry.0)).to_string();
        }
        let declared = Declared { name: event.name.clone(), indexed_names, body_names, json_order, resolved };
        self.by_topic0.entry(event.selector()).or_default().push(declared);
        Ok(())
    }

    /// Adds every declaration of `other`.
    pub fn extend(&mut self, other: &EventSet) {
        for (topic, decls) in &other.by_topic0 {
            self.by_topic0.entry(*topic).or_default().extend(decls.iter().cloned());
        }
    }

    /// topic0 of every declared event, sorted.
    pub fn topics(&self) -> Vec<B256> {
        let mut topics: Vec<B256> = self.by_topic0.keys().copied().collect();
        topics.sort();
        topics
    }

    pub fn contains(&self, topic0: &B256) -> bool {
        self.by_topic0.contains_key(topic0)
    }

    /// Decodes a log against the declarations whose topic0 matches.
    pub fn decode(&self, topics: &[B256], data: &[u8]) -> Decoded {
        let Some(candidates) = topics.first().and_then(|t| self.by_topic0.get(t)) else {
            return Decoded { name: None, fields: None, error: None };
        };
        let mut error = None;
        for decl in candidates {
            match decl.resolved.decode_log_parts(topics.iter().copied(), data) {
                Ok(decoded) => {
                    let mut fields = Map::new();
                    for (name, value) in decl.indexed_names.iter().zip(&decoded.indexed) {
                        fields.insert(name.clone(), to_json(value));
                    }
                    for (name, value) in decl.body_names.iter().zip(&decoded.body) {
                        fields.insert(name.clone(), to_json(value));
                    }
                    return Decoded {
                        name: Some(decl.name.clone()),
                        fields: Some(Value::Object(fields)),
                        error: None,
                    };
                }
                Err(e) => error = Some(format!("does not match `{}`: {e}", decl.name)),
            }
        }
        Decoded { name: candidates.first().map(|d| d.name.clone()), fields: None, error }
    }
}

impl EventSet {
    /// [`decode`](Self::decode) with the fields written straight to JSON text (the same text
    /// `fields.to_string()` gives), without building a JSON tree: the form the store keeps.
    pub fn decode_to_text(
        &self,
        topics: &[B256],
        data: &[u8],
    ) -> (Option<String>, Option<String>, Option<String>) {
        let Some(candidates) = topics.first().and_then(|t| self.by_topic0.get(t)) else {
            return (None, None, None);
        };
        let mut error = None;
        for decl in candidates {
            match decl.resolved.decode_log_parts(topics.iter().copied(), data) {
                Ok(decoded) => {
                    let mut out = String::with_capacity(64 * decl.json_order.len() + 2);
                    out.push('{');
                    for (n, (key, indexed, i)) in decl.json_order.iter().enumerate() {
                        let value = if *indexed { decoded.indexed.get(*i) } else { decoded.body.get(*i) };
                        let Some(value) = value else { continue };
                        if n > 0 {
                            out.push(',');
                        }
                        out.push_str(key);
                        out.push(':');
                        write_json(value, &mut out);
                    }
                    out.push('}');
                    return (Some(decl.name.clone()), Some(out), None);
                }
                Err(e) => error = Some(format!("does not match `{}`: {e}", decl.name)),
            }
        }
        (candidates.first().map(|d| d.name.clone()), None, error)
    }
}

/// Writes what [`to_json`] builds, as compact JSON text.
fn write_json(value: &DynSolValue, out: &mut String) {
    use std::fmt::Write;
    match value {
        DynSolValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        DynSolValue::Int(i, _) => {
            let _ = write!(out, "\"{i}\"");
        }
        DynSolValue::Uint(u, _) => {
            let _ = write!(out, "\"{u}\"");
        }
        DynSolValue::FixedBytes(word, size) => push_hex(out, &word[..*size]),
        DynSolValue::Address(a) => {
            out.push('"');
            push_checksummed(out, a);
            out.push('"');
        }
        DynSolValue::Function(f) => push_hex(out, f.as_slice()),
        DynSolValue::Bytes(b) => push_hex(out, b),
        DynSolValue::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        #[allow(unreachable_patterns)]
        other => out.push_str(&to_json(other).to_string()),
    }
}

/// Slots of the checksum cache: addresses repeat heavily in real logs (routers, tokens, senders).
const CHECKSUM_SLOTS: usize = 256;

thread_local! {
    /// A direct-mapped cache of EIP-55 forms. The checksum is a keccak per address, and was the
    /// largest single cost of decoding; a slot holds the last address whose low byte selects it.
    static CHECKSUMS: std::cell::RefCell<Vec<Option<(Address, String)>>> =
        std::cell::RefCell::new(vec![None; CHECKSUM_SLOTS]);
}

fn push_checksummed(out: &mut String, address: &Address) {
    CHECKSUMS.with_borrow_mut(|slots| {
        let slot = &mut slots[address[19] as usize % CHECKSUM_SLOTS];
        match slot {
            Some((cached, text)) if cached == address => out.push_str(text),
            _ => {
                let text = address.to_checksum(None);
                out.push_str(&text);
                *slot = Some((*address, text));
            }
        }
    });
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    out.push_str("\"0x");
    out.push_str(&hex(bytes));
    out.push('"');
}

/// A decoded value as JSON: integers as decimal strings (they overflow JSON numbers), addresses
/// checksummed, bytes as 0x-hex, arrays and tuples as arrays.
pub fn to_json(value: &DynSolValue) -> Value {
    match value {
        DynSolValue::Bool(b) => Value::Bool(*b),
        DynSolValue::Int(i, _) => Value::String(i.to_string()),
        DynSolValue::Uint(u, _) => Value::String(u.to_string()),
        DynSolValue::FixedBytes(word, size) => Value::String(format!("0x{}", hex(&word[..*size]))),
        DynSolValue::Address(a) => Value::String(a.to_checksum(None)),
        DynSolValue::Function(f) => Value::String(format!("0x{}", hex(f.as_slice()))),
        DynSolValue::Bytes(b) => Value::String(format!("0x{}", hex(b))),
        DynSolValue::String(s) => Value::String(s.clone()),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        #[allow(unreachable_patterns)]
        other => Value::String(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    alloy::primitives::hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, U256, keccak256};

    fn word(n: u64) -> B256 {
        B256::from(U256::from(n))
    }

    #[test]
    fn topic0_comes_from_the_declaration() {
        let set = EventSet::parse(&["event Ping(uint256 indexed seq, address indexed from, bytes32 data)"])
            .expect("declares");
        assert_eq!(set.topics(), vec![keccak256("Ping(uint256,address,bytes32)")]);
    }

    #[test]
    fn decodes_indexed_and_body_fields_by_name() {
        let set = EventSet::parse(&["event Ping(uint256 indexed seq, address indexed from, bytes32 data)"])
            .expect("declares");
        let from = Address::repeat_byte(0xab);
        let topics = [keccak256("Ping(uint256,address,bytes32)"), word(7), from.into_word()];
        let data = B256::repeat_byte(0x11);
        let d = set.decode(&topics, data.as_slice());
        assert_eq!(d.name.as_deref(), Some("Ping"));
        let fields = d.fields.expect("decoded");
        assert_eq!(fields["seq"], "7");
        assert_eq!(fields["from"], from.to_checksum(None));
        assert_eq!(fields["data"], format!("{data:#x}"));
        assert_eq!(d.error, None);
    }

    #[test]
    fn a_log_that_does_not_fit_its_declaration_is_kept_with_the_reason() {
        // Declared with `seq` indexed, emitted without: topic0 is the same, the layout is not.
        let set = EventSet::parse(&["event Ping(uint256 indexed seq, address indexed from, bytes32 data)"])
            .expect("declares");
        let topics = [keccak256("Ping(uint256,address,bytes32)"), Address::repeat_byte(1).into_word()];
        let d = set.decode(&topics, &[0u8; 64]);
        assert_eq!(d.name.as_deref(), Some("Ping"));
        assert_eq!(d.fields, None);
        assert!(d.error.expect("a reason").contains("Ping"));
        // An unknown topic0 is simply undecoded.
        let unknown = set.decode(&[B256::repeat_byte(9)], &[]);
        assert_eq!(unknown, Decoded { name: None, fields: None, error: None });
        assert_eq!(set.decode(&[], &[]).name, None);
    }

    #[test]
    fn dynamic_types_and_unnamed_parameters() {
        let set = EventSet::parse(&["event Note(string indexed tag, string text, uint8[] xs, bool)"])
            .expect("declares");
        let body = DynSolValue::Tuple(vec![
            DynSolValue::String("hi".into()),
            DynSolValue::Array(vec![DynSolValue::Uint(U256::from(1), 8)]),
            DynSolValue::Bool(true),
        ])
        .abi_encode_params();
        let topics = [keccak256("Note(string,string,uint8[],bool)"), keccak256("tag")];
        let fields = set.decode(&topics, &body).fields.expect("decoded");
        assert_eq!(fields["text"], "hi");
        assert_eq!(fields["xs"], serde_json::json!(["1"]));
        assert_eq!(fields["arg3"], true);
        assert_eq!(fields["tag"], format!("{:#x}", keccak256("tag")));
    }

    #[test]
    fn text_fields_are_the_json_tree_written_out() {
        let set = EventSet::parse(&[
            "event Ping(uint256 indexed seq, address indexed from, bytes32 data)",
            "event Note(string indexed tag, string text, uint8[] xs, bool)",
        ])
        .expect("declares");
        let ping = (
            vec![keccak256("Ping(uint256,address,bytes32)"), word(7), Address::repeat_byte(0xab).into_word()],
            B256::repeat_byte(0x11).to_vec(),
        );
        let body = DynSolValue::Tuple(vec![
            DynSolValue::String("say \"hi\"\n".into()),
            DynSolValue::Array(vec![
                DynSolValue::Uint(U256::from(1), 8),
                DynSolValue::Uint(U256::from(2), 8),
            ]),
            DynSolValue::Bool(false),
        ])
        .abi_encode_params();
        let note = (vec![keccak256("Note(string,string,uint8[],bool)"), keccak256("tag")], body);
        for (topics, data) in [ping, note] {
            let tree = set.decode(&topics, &data);
            let (name, text, error) = set.decode_to_text(&topics, &data);
            assert_eq!(name, tree.name);
            assert_eq!(error, tree.error);
            assert_eq!(text, tree.fields.map(|f| f.to_string()));
        }
        let (name, text, error) = set.decode_to_text(&[keccak256("Ping(uint256,address,bytes32)")], &[]);
        assert_eq!((name.as_deref(), text), (Some("Ping"), None));
        assert!(error.is_some());
    }

    #[test]
    fn cached_checksums_are_right_when_addresses_share_a_slot() {
        // Same last byte, so the same cache slot: each must still come out as its own checksum.
        let mut a = [0x5a; 20];
        a[0] = 0x01;
        let addresses = [Address::from(a), Address::repeat_byte(0x5a), Address::from(a)];
        for address in addresses {
            let mut out = String::new();
            write_json(&DynSolValue::Address(address), &mut out);
            assert_eq!(out, format!("\"{}\"", address.to_checksum(None)));
        }
    }

    #[test]
    fn bad_declarations_are_errors() {
        assert!(EventSet::parse(&["function f()"]).is_err());
        assert!(EventSet::parse(&["event E(uint257 x)"]).is_err());
    }
}
