//! Reading `ferry.yaml`: parse, remember where every key is, substitute `${VAR}`, and deserialize
//! item by item so that one bad chain does not hide the problems of the next.
//!
//! The file is parsed once (`yaml.rs`), which gives both where every key is and the values.
//! Each chain, source, target and route is deserialized on its own with `serde_path_to_error`; after
//! an error the offending key is removed and the item read again, so several unknown keys in one
//! chain are all reported. Sources and targets carry their `kind` as a tag, which is read here by
//! hand: serde's internally tagged enums lose the path of errors inside them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde_json::Value;
use yaml_rust2::parser::Parser;

pub use super::env::{SubstProblem, substitute_str};
use super::env::{is_single_reference, substitute};
use super::secrets::Redactor;
use super::types::*;
pub use super::yaml::{Position, Positions};
use super::yaml::{TreeBuilder, join_key, plain_scalar};
use super::{Diagnostic, Severity};

/// Looks up an environment variable; injectable so tests need not touch the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as an [`EnvLookup`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What an environment variable the config names but the environment does not set is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// An error: a command that runs on the config needs every variable it names.
    Error,
    /// A warning naming the variable and the key, the value left as written (`${VAR}`) and not
    /// judged: `check-config --no-env` in CI, and commands that read the config only for names
    /// and paths (`inspect-store`, `export`), which need no secret. Such a config never runs
    /// deliveries.
    Warn,
}

/// Reading a config collects diagnostics against one file.
pub(super) struct Reader<'a> {
    pub file: String,
    pub positions: Positions,
    pub diagnostics: Vec<Diagnostic>,
    pub redactor: Redactor,
    broken: std::collections::BTreeSet<String>,
    env: EnvLookup<'a>,
    unset: Unset,
    /// Keys whose value still holds a reference to an unset variable (`Unset::Warn` only).
    unresolved: std::collections::BTreeSet<String>,
}

impl<'a> Reader<'a> {
    pub fn with_unset(file: String, env: EnvLookup<'a>, unset: Unset) -> Self {
        Self {
            file,
            positions: Positions::default(),
            diagnostics: Vec::new(),
            redactor: Redactor::default(),
            broken: Default::default(),
            env,
            unset,
            unresolved: Default::default(),
        }
    }

    /// A variable the config names (`key_env`, `password_env`, `secret_env`, `${VAR}`) that the
    /// environment does not set: an error, or under [`Unset::Warn`] a warning naming it.
    pub fn env_unset(&mut self, key: &str, var: &str) {
        match self.unset {
            Unset::Error => self.error(
                key,
                format!("environment variable `{var}` is not set"),
                Some(format!("export {var} before starting ferry")),
            ),
            Unset::Warn => {
                self.warn(key, format!("environment variable `{var}` is not set (not checked)"), None)
            }
        }
    }

    pub fn env(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    /// Errors so far (not warnings).
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count()
    }

    pub fn error(&mut self, key: &str, message: impl Into<String>, suggestion: Option<String>) {
        self.push(key, Severity::Error, message.into(), suggestion);
    }

    pub fn warn(&mut self, key: &str, message: impl Into<String>, suggestion: Option<String>) {
        self.push(key, Severity::Warning, message.into(), suggestion);
    }

    fn push(&mut self, key: &str, severity: Severity, message: String, suggestion: Option<String>) {
        // A value that still reads `${VAR}` cannot be judged: its warning says why.
        if severity == Severity::Error && self.is_unresolved(key) {
            return;
        }
        let (line, column) = self.positions.find(key).unwrap_or((1, 1));
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            line,
            column,
            key: key.to_string(),
            severity,
            message: self.redactor.redact(&message),
            suggestion: suggestion.map(|s| self.redactor.redact(&s)),
        });
    }

    /// Parses the text into a value tree with positions; `None` (with a diagnostic) when the YAML
    /// itself is broken.
    pub fn parse(&mut self, text: &str) -> Option<Value> {
        let mut tree = TreeBuilder::default();
        if let Err(e) = Parser::new_from_str(text).load(&mut tree, true) {
            let mark = e.marker();
            self.diagnostics.push(Diagnostic {
                file: self.file.clone(),
                line: mark.line(),
                column: mark.col() + 1,
                key: String::new(),
                severity: Severity::Error,
                message: format!("not valid YAML: {}", e.info()),
                suggestion: None,
            });
            return None;
        }
        self.positions = tree.positions;
        let whole = tree.duplicates.is_empty() && tree.unsupported.is_empty();
        for (key, first, (line, column)) in tree.duplicates {
            self.diagnostics.push(Diagnostic {
                file: self.file.clone(),
                line,
                column,
                message: format!("duplicate key: `{key}` is already set at line {}", first.0),
                key,
                severity: Severity::Error,
                suggestion: Some("keep one of them".into()),
            });
        }
        for ((line, column), what) in tree.unsupported {
            self.diagnostics.push(Diagnostic {
                file: self.file.clone(),
                line,
                column,
                key: String::new(),
                severity: Severity::Error,
                message: format!("{what}: ferry's config does not use it"),
                suggestion: None,
            });
        }
        whole.then(|| tree.root.unwrap_or(Value::Null))
    }

    /// Replaces `${VAR}` and `${VAR:-default}` in every string of the tree; `$$` is a literal `$`.
    /// A string that is exactly one reference takes the type its value reads as (`chain_id:
    /// ${CHAIN_ID}` gives a number).
    pub fn substitute(&mut self, value: &mut Value, path: &str) {
        match value {
            Value::String(s) => {
                if !s.contains('$') {
                    return;
                }
                match substitute(s, self.env, self.unset == Unset::Warn) {
                    Ok(done) => {
                        for v in &done.values {
                            self.redactor.remember(v);
                        }
                        for var in &done.unset {
                            self.env_unset(path, var);
                        }
                        if !done.unset.is_empty() {
                            self.unresolved.insert(path.to_string());
                        }
                        let whole = done.values.len() == 1 && is_single_reference(s);
                        *value = if whole { retype(done.text) } else { Value::String(done.text) };
                    }
                    Err(problem) => {
                        self.error(path, problem.message(), problem.suggestion());
                        *value = Value::Null;
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.substitute(item, &format!("{path}[{i}]"));
                }
            }
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    self.substitute(v, &join_key(path, key));
                }
            }
            _ => {}
        }
    }

    /// Deserializes the whole tree, item by item.
    pub fn config(&mut self, root: Value) -> Config {
        let mut config = Config {
            store: None,
            chains: BTreeMap::new(),
            sources: BTreeMap::new(),
            targets: BTreeMap::new(),
            routes: Vec::new(),
            health: Health::default(),
        };
        let root = match root {
            Value::Null => {
                self.warn("", "the config is empty", Some("start from config-examples/minimal.yaml".into()));
                return config;
            }
            Value::Object(map) => map,
            other => {
                self.error(
                    "",
                    format!("the config must be a mapping of sections, found {}", kind_of(&other)),
                    None,
                );
                return config;
            }
        };
        for (key, v) in root {
            match key.as_str() {
                "store" => config.store = self.item::<Option<PathBuf>>("store", v).flatten(),
                "chains" => {
                    for (name, item) in self.named_items("chains", v) {
                        match self.item::<Chain>(&format!("chains.{name}"), item) {
                            Some(chain) => {
                                config.chains.insert(name, chain);
                            }
                            None => {
                                self.broken.insert(format!("chains.{name}"));
                            }
                        }
                    }
                }
                "sources" => {
                    for (name, item) in self.named_items("sources", v) {
                        match self.source(&name, item) {
                            Some(source) => {
                                config.sources.insert(name, source);
                            }
                            None => {
                                self.broken.insert(format!("sources.{name}"));
                            }
                        }
                    }
                }
                "targets" => {
                    for (name, item) in self.named_items("targets", v) {
                        match self.target(&name, item) {
                            Some(target) => {
                                config.targets.insert(name, target);
                            }
                            None => {
                                self.broken.insert(format!("targets.{name}"));
                            }
                        }
                    }
                }
                "routes" => match v {
                    Value::Array(items) => {
                        for (i, item) in items.into_iter().enumerate() {
                            if let Some(route) = self.item::<Route>(&format!("routes[{i}]"), item) {
                                config.routes.push(route);
                            }
                        }
                    }
                    Value::Null => {}
                    other => self.error(
                        "routes",
                        format!("`routes` must be a list, found {}", kind_of(&other)),
                        None,
                    ),
                },
                "health" => {
                    if let Some(health) = self.item::<Option<Health>>("health", v) {
                        config.health = health.unwrap_or_default();
                    }
                }
                _ => self.unknown_key("", &key, TOP_LEVEL_KEYS),
            }
        }
        config
    }

    /// The entries of a named section (`chains`, `sources`, `targets`).
    fn named_items(&mut self, section: &str, value: Value) -> Vec<(String, Value)> {
        match value {
            Value::Object(map) => map.into_iter().collect(),
            Value::Null => Vec::new(),
            other => {
                self.error(
                    section,
                    format!("`{section}` must be a mapping of name → settings, found {}", kind_of(&other)),
                    None,
                );
                Vec::new()
            }
        }
    }

    fn source(&mut self, name: &str, value: Value) -> Option<Source> {
        let path = format!("sources.{name}");
        let (kind, value) = self.take_kind(&path, value, SOURCE_KINDS)?;
        match kind.as_str() {
            "evm" => self.item(&path, value).map(Source::Evm),
            "seda" => self.item(&path, value).map(Source::Seda),
            _ => None,
        }
    }

    fn target(&mut self, name: &str, value: Value) -> Option<Target> {
        let path = format!("targets.{name}");
        let (kind, value) = self.take_kind(&path, value, TARGET_KINDS)?;
        match kind.as_str() {
            "seda-prover" => self.item(&path, value).map(Target::SedaProver),
            "evm-call" => self.item(&path, value).map(Target::EvmCall),
            "webhook" => self.item(&path, value).map(Target::Webhook),
            "jsonl" => self.item(&path, value).map(Target::Jsonl),
            "redis-stream" => self.item(&path, value).map(Target::RedisStream),
            "nats-jetstream" => self.item(&path, value).map(Target::NatsJetstream),
            "gcp-pubsub" => self.item(&path, value).map(Target::GcpPubsub),
            _ => None,
        }
    }

    /// Reads and removes the `kind:` tag of a source or target.
    fn take_kind(&mut self, path: &str, value: Value, kinds: &[&str]) -> Option<(String, Value)> {
        let Value::Object(mut map) = value else {
            self.error(
                path,
                format!("`{path}` must be a mapping with a `kind`, found {}", kind_of(&value)),
                None,
            );
            return None;
        };
        let kind_path = format!("{path}.kind");
        match map.remove("kind") {
            Some(Value::String(kind)) if kinds.contains(&kind.as_str()) => Some((kind, Value::Object(map))),
            Some(Value::String(kind)) => {
                let suggestion = nearest(&kind, kinds).map(|k| format!("did you mean `{k}`?"));
                self.error(
                    &kind_path,
                    format!("unknown kind `{kind}`; expected one of {}", list(kinds)),
                    suggestion,
                );
                None
            }
            Some(other) => {
                self.error(&kind_path, format!("`kind` must be a string, found {}", kind_of(&other)), None);
                None
            }
            None => {
                self.error(path, format!("missing `kind`; expected one of {}", list(kinds)), None);
                None
            }
        }
    }

    /// Deserializes one item. After an error, the offending key is removed and the item read
    /// again, so that every unknown or mistyped key of the item is reported, not only the first.
    pub fn item<T: DeserializeOwned>(&mut self, path: &str, mut value: Value) -> Option<T> {
        let mut removed: Vec<Vec<Seg>> = Vec::new();
        for _ in 0..32 {
            let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
                // After removals the item is still checked further: the config already failed,
                // and its other problems are worth reporting in the same run.
                Ok(item) => return Some(item),
                Err(e) => e,
            };
            let mut segs: Vec<Seg> = error.path().iter().filter_map(Seg::from_serde).collect();
            // A list item cannot be removed, only emptied (indices stay stable): one that fails
            // again once emptied was reported already, and would be 32 times over.
            if removed.contains(&segs) {
                return None;
            }
            let message = error.inner().to_string();
            if let Some((field, expected)) = parse_unknown_field(&message) {
                if segs.last().is_none_or(|s| s != &Seg::Key(field.clone())) {
                    segs.push(Seg::Key(field.clone()));
                }
                let parent = render(path, &segs[..segs.len() - 1]);
                self.unknown_key(&parent, &field, &expected.iter().map(String::as_str).collect::<Vec<_>>());
            } else if let Some(field) = parse_missing_field(&message) {
                let mut full = segs.clone();
                full.push(Seg::Key(field.clone()));
                // A key removed after an earlier error is reported once, not again as missing.
                if !removed.contains(&full) {
                    self.error(&render(path, &full), format!("missing `{field}`"), None);
                }
                return None;
            } else {
                self.error(&render(path, &segs), tidy_serde_message(&message), None);
            }
            if segs.is_empty() || !remove_at(&mut value, &segs) {
                return None;
            }
            removed.push(segs);
        }
        None
    }

    pub fn unknown_key(&mut self, parent: &str, key: &str, expected: &[&str]) {
        let suggestion = match nearest(key, expected) {
            Some(k) => Some(format!("did you mean `{k}`?")),
            None if expected.is_empty() => None,
            None => Some(format!("valid keys here: {}", list(expected))),
        };
        self.error(&join_key(parent, key), format!("unknown key `{key}`"), suggestion);
    }

    /// Whether the value at `key`, or around it, still holds a reference to an unset variable.
    fn is_unresolved(&self, key: &str) -> bool {
        self.unresolved.iter().any(|u| {
            key == u || key.strip_prefix(u.as_str()).is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    }

    /// Whether `path` (e.g. `sources.evm1`) is written in the file but could not be read; checks
    /// that refer to it by name stay quiet rather than claim it does not exist.
    pub fn is_broken(&self, path: &str) -> bool {
        self.broken.contains(path)
    }
}

pub const TOP_LEVEL_KEYS: &[&str] = &["store", "chains", "sources", "targets", "routes", "health"];
pub const SOURCE_KINDS: &[&str] = &["evm", "seda"];
pub const TARGET_KINDS: &[&str] =
    &["seda-prover", "evm-call", "webhook", "jsonl", "redis-stream", "nats-jetstream", "gcp-pubsub"];

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn from_serde(seg: &serde_path_to_error::Segment) -> Option<Seg> {
        match seg {
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            serde_path_to_error::Segment::Unknown => None,
        }
    }
}

fn render(prefix: &str, segs: &[Seg]) -> String {
    let mut path = prefix.to_string();
    for seg in segs {
        match seg {
            Seg::Key(k) => path = join_key(&path, k),
            Seg::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

/// Removes the node at `segs`; false when there is nothing there to remove.
fn remove_at(value: &mut Value, segs: &[Seg]) -> bool {
    let Some((last, parents)) = segs.split_last() else { return false };
    let mut node = value;
    for seg in parents {
        node = match (seg, node) {
            (Seg::Key(k), Value::Object(map)) => match map.get_mut(k.as_str()) {
                Some(v) => v,
                None => return false,
            },
            (Seg::Index(i), Value::Array(items)) => match items.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Seg::Key(k), Value::Object(map)) => map.remove(k.as_str()).is_some(),
        (Seg::Index(i), Value::Array(items)) if *i < items.len() => {
            // Keep indices stable for later errors: replace instead of shifting.
            items[*i] = Value::Null;
            true
        }
        _ => false,
    }
}

/// `unknown field `x`, expected one of `a`, `b`` → (x, [a, b]).
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).map(str::to_string).collect();
    Some((field.to_string(), expected))
}

fn parse_missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split_once('`')?.0.to_string())
}

/// serde's messages name Rust types; say what the user wrote and what is wanted instead.
fn tidy_serde_message(message: &str) -> String {
    message
        .replace("expected u64", "expected a whole number ≥ 0")
        .replace("expected u32", "expected a whole number ≥ 0")
        .replace("expected a boolean", "expected true or false")
        .replace("invalid type: ", "wrong type: ")
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn list(items: &[&str]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

/// The candidate closest to `word`, when it is close enough to be what was meant.
pub fn nearest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1) && *d < c.len().max(word.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A substituted value read as a YAML scalar: numbers and booleans take their type.
fn retype(text: String) -> Value {
    match plain_scalar(&text) {
        v @ (Value::Number(_) | Value::Bool(_)) => v,
        _ => Value::String(text),
    }
}

/// A YAML text as the value tree the config is read from (for tests that build config items).
#[cfg(test)]
pub(crate) fn yaml_value(text: &str) -> Option<Value> {
    Reader::with_unset("test.yaml".into(), &|_| None, Unset::Error).parse(text)
}

/// The whole parse of one file: diagnostics, positions and (when the structure was readable) the
/// config.
pub(super) fn read<'a>(
    text: &str,
    file: String,
    env: EnvLookup<'a>,
    unset: Unset,
) -> (Option<Config>, Reader<'a>) {
    let mut reader = Reader::with_unset(file, env, unset);
    let Some(mut value) = reader.parse(text) else {
        return (None, reader);
    };
    reader.substitute(&mut value, "");
    let config = reader.config(value);
    (Some(config), reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("rpc.example".into()),
            "ID" => Some("8453".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitution_forms() {
        let sub = |s: &str| substitute_str(s, &env).map(|(t, _)| t);
        assert_eq!(sub("https://${HOST}/x"), Ok("https://rpc.example/x".into()));
        assert_eq!(sub("${NOPE:-fallback}"), Ok("fallback".into()));
        assert_eq!(sub("${EMPTY:-fallback}"), Ok("fallback".into()));
        assert_eq!(sub("${EMPTY}"), Ok(String::new()));
        assert_eq!(sub("cost $$5 and $x"), Ok("cost $5 and $x".into()));
        assert_eq!(sub("${NOPE}"), Err(SubstProblem::Unset("NOPE".into())));
        assert_eq!(sub("${HOST"), Err(SubstProblem::Unterminated));
        assert_eq!(sub("${1X}"), Err(SubstProblem::BadName("1X".into())));
        assert_eq!(sub("${}"), Err(SubstProblem::BadName(String::new())));
        // Never panics on odd input, including multi-byte characters next to `$`.
        for s in ["$", "$$$", "${", "}${é}", "é$é", "${é:-é}", "$\u{1F600}{x}"] {
            let _ = sub(s);
        }
    }

    #[test]
    fn positions_of_keys_and_items() {
        let text = "chains:\n  base:\n    chain_id: 1\n    rpc:\n      - http://a\n      - http://b\n";
        let (_, reader) = read(text, "f.yaml".into(), &env, Unset::Error);
        assert_eq!(reader.positions.find("chains.base"), Some((2, 3)));
        assert_eq!(reader.positions.find("chains.base.chain_id"), Some((3, 5)));
        assert_eq!(reader.positions.find("chains.base.rpc[1]"), Some((6, 9)));
        assert_eq!(reader.positions.find("chains.base.missing"), Some((2, 3)));
    }

    #[test]
    fn whole_reference_takes_the_type_of_its_value() {
        let text = "chains:\n  base:\n    chain_id: ${ID}\n    rpc: [\"http://${HOST}\"]\n";
        let (config, reader) = read(text, "f.yaml".into(), &env, Unset::Error);
        assert!(reader.diagnostics.is_empty(), "{:?}", reader.diagnostics);
        let config = config.expect("parsed");
        assert_eq!(config.chains["base"].chain_id, 8453);
        assert_eq!(config.chains["base"].rpc, vec!["http://rpc.example".to_string()]);
    }

    #[test]
    fn every_unknown_key_of_an_item_is_reported() {
        let text = "chains:\n  base:\n    chain_idd: 1\n    rpcs: []\n    rpc: [x]\n    chain_id: 1\n";
        let (_, reader) = read(text, "f.yaml".into(), &env, Unset::Error);
        let keys: Vec<_> = reader.diagnostics.iter().map(|d| (d.key.as_str(), d.line)).collect();
        assert_eq!(keys, vec![("chains.base.chain_idd", 3), ("chains.base.rpcs", 4)]);
        assert_eq!(reader.diagnostics[0].suggestion.as_deref(), Some("did you mean `chain_id`?"));
    }
}
