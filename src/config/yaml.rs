//! The one YAML parse of a config file. yaml-rust2's events (YAML 1.2) give both the line and
//! column of every key path (`chains.base.rpc[0]`) and the value tree serde reads, so positions
//! and values cannot disagree. Scalars follow the core schema; anchors and aliases are resolved;
//! tags, keys that are not scalars and a second document are reported, not guessed at.

use std::collections::HashMap;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Line and column, both 1-based.
pub type Position = (usize, usize);

/// Line and column (both 1-based) of every key path in the file.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    by_path: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// Where `path` is written; a path that is not in the file (a missing key) falls back to its
    /// nearest written parent.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut path = path;
        loop {
            if let Some(pos) = self.by_path.get(path) {
                return Some(*pos);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    /// Records where `path` is written; the first position wins. Returns the first position when
    /// `path` was already written (a duplicate key).
    fn insert(&mut self, path: String, mark: Marker) -> Option<(usize, usize)> {
        let at = here(mark);
        let first = *self.by_path.entry(path).or_insert(at);
        (first != at).then_some(first)
    }
}

/// Walks parser events once: keeps the key path of the node being read (for positions) and builds
/// the value tree serde reads, so that positions and values come from the same parse.
#[derive(Default)]
pub(super) struct TreeBuilder {
    pub(super) positions: Positions,
    stack: Vec<Frame>,
    /// Keys written twice in one mapping: (path, first position, repeated position).
    pub(super) duplicates: Vec<(String, Position, Position)>,
    /// Anchored nodes, by the parser's anchor id, for aliases.
    anchors: HashMap<usize, Value>,
    pub(super) root: Option<Value>,
    /// What the file uses that ferry's format has no meaning for (tags, keys that are not
    /// scalars, a second document), with where.
    pub(super) unsupported: Vec<(Position, String)>,
}

enum Frame {
    Mapping { path: String, key: Option<String>, map: Map<String, Value>, anchor: usize },
    Sequence { path: String, next: usize, items: Vec<Value>, anchor: usize },
}

fn here(mark: Marker) -> Position {
    // yaml-rust2 lines are 1-based, columns 0-based.
    (mark.line(), mark.col() + 1)
}

impl TreeBuilder {
    /// The path of a value node starting now, and records its position. Returns `None` for a
    /// mapping key (recorded as the current key instead).
    fn start_node(&mut self, scalar: Option<&str>, mark: Marker) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping { path, key, .. }) => match key {
                Some(k) => Some(join_key(path, k)),
                None => {
                    let k = scalar.unwrap_or("?").to_string();
                    let full = join_key(path, &k);
                    if let Some(first) = self.positions.insert(full.clone(), mark) {
                        self.duplicates.push((full, first, here(mark)));
                    }
                    *key = Some(k);
                    None
                }
            },
            Some(Frame::Sequence { path, next, .. }) => {
                let item = format!("{path}[{next}]");
                *next += 1;
                self.positions.insert(item.clone(), mark);
                Some(item)
            }
        }
    }

    /// A value node is complete: remember it under its anchor and put it in its parent.
    fn finish(&mut self, value: Value, anchor: usize, mark: Marker) {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None if self.root.is_some() => {
                self.unsupported.push((here(mark), "a second YAML document in one file".into()));
            }
            None => self.root = Some(value),
            Some(Frame::Mapping { key, map, .. }) => match key.take() {
                Some(k) => {
                    map.insert(k, value);
                }
                // A mapping or list used as a key.
                None => {
                    *key = Some("?".into());
                    self.unsupported.push((here(mark), "a key that is not a plain string".into()));
                }
            },
            Some(Frame::Sequence { items, .. }) => items.push(value),
        }
    }

    fn tag(&mut self, tag: Option<Tag>, mark: Marker) {
        if let Some(tag) = tag {
            self.unsupported.push((
                here(mark),
                format!("YAML tags such as `{}{}` are not supported", tag.handle, tag.suffix),
            ));
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                self.tag(tag, mark);
                if self.start_node(Some(&text), mark).is_some() {
                    let value = match style {
                        TScalarStyle::Plain => plain_scalar(&text),
                        _ => Value::String(text),
                    };
                    self.finish(value, anchor, mark);
                }
            }
            Event::Alias(id) if self.start_node(None, mark).is_some() => {
                let value = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                self.finish(value, 0, mark);
            }
            Event::MappingStart(anchor, tag) => {
                self.tag(tag, mark);
                let path = self.start_node(None, mark).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Mapping { path, key: None, map: Map::new(), anchor });
            }
            Event::SequenceStart(anchor, tag) => {
                self.tag(tag, mark);
                let path = self.start_node(None, mark).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Sequence { path, next: 0, items: Vec::new(), anchor });
            }
            Event::MappingEnd => {
                if let Some(Frame::Mapping { map, anchor, .. }) = self.stack.pop() {
                    self.finish(Value::Object(map), anchor, mark);
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Sequence { items, anchor, .. }) = self.stack.pop() {
                    self.finish(Value::Array(items), anchor, mark);
                }
            }
            _ => {}
        }
    }
}

/// A plain (unquoted) scalar read by YAML 1.2's core schema: null, booleans, integers (decimal,
/// `0x`, `0o`) and floats take their type; anything else, including an integer too large for 64
/// bits (a `uint256` literal, say), stays the text it is.
pub(super) fn plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let radix = |digits: &str, radix: u32| {
        u64::from_str_radix(digits, radix).ok().filter(|_| !digits.starts_with(['+', '-']))
    };
    if let Some(n) = text.strip_prefix("0x").and_then(|d| radix(d, 16)) {
        return Value::from(n);
    }
    if let Some(n) = text.strip_prefix("0o").and_then(|d| radix(d, 8)) {
        return Value::from(n);
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.trim_start_matches('+').parse::<u64>() {
            return Value::from(n);
        }
        if let Ok(n) = text.parse::<i64>() {
            return Value::from(n);
        }
        return Value::String(text.to_string());
    }
    if is_float(unsigned)
        && let Some(n) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the core schema's float without its sign.
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (int.is_empty() && digits(frac)) || (digits(int) && (frac.is_empty() || digits(frac)))
        }
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

pub(super) fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}
