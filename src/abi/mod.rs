//! Solidity declarations, parsed once: events (topic0 and decoding, `events`) and evm-call plans
//! (calldata, the already-done view, revert classification, `call`).
//!
//! Pure: no RPC, no store, no config types. The config resolves its text into these values and
//! reports their problems with the key they belong to; the engine uses them as they are and never
//! parses a declaration again.

pub mod call;
pub mod events;

/// Values quoted in messages are cut here: they come from chains and configs, and a log line
/// holding a 10 kB blob helps nobody.
const PREVIEW_CHARS: usize = 100;

/// A problem in a declaration, found while resolving a config: the key it belongs to (relative to
/// the item that holds the declarations, e.g. `args.height` or `already_done.view`), what is
/// wrong, and a fix when one is obvious.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclProblem {
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
    /// Names that would have been valid where an unknown one was written, for a "did you mean".
    pub candidates: Vec<String>,
}

impl DeclProblem {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into(), hint: None, candidates: Vec::new() }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The first parameter type that is not a Solidity type (`uint257`, `adress`). alloy's
/// declaration parser accepts any identifier as a type, since it could name a struct.
pub(crate) fn bad_param_type<'p>(
    types: impl IntoIterator<Item = std::borrow::Cow<'p, str>>,
) -> Option<String> {
    types.into_iter().find(|ty| alloy::dyn_abi::DynSolType::parse(ty).is_err()).map(|ty| ty.into_owned())
}

/// A parser's message on one line: alloy's spans several, with a caret under the bad spot.
pub(crate) fn one_line(s: &str) -> String {
    let text: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('^')).collect();
    text.join(" ").replace("parser error: ", "")
}

pub(crate) fn preview(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
