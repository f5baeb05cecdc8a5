//! What can go wrong talking to a node, in five classes, each with its rule: retry it, back off
//! for it, shrink the range for it, or hand it to the caller.
//!
//! Range limits are recognised by the messages of the providers people actually use, and the
//! range a provider suggests is taken from its message when it gives one.

use std::time::Duration;

use serde::Serialize;

/// The class of an RPC failure; each is counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Connection refused or reset, timeout, HTTP 5xx: retry, on the next URL if there is one.
    Transport,
    /// HTTP 429 or a provider's rate-limit error: wait (`Retry-After` when given), then retry.
    RateLimited,
    /// `eth_getLogs` asked for too much: the caller shrinks the range.
    RangeTooLarge,
    /// The node answered with a JSON-RPC error; the caller decides.
    Node,
    /// The answer was not the JSON-RPC response it should be (truncated, wrong shape).
    BadResponse,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::Transport,
        ErrorKind::RateLimited,
        ErrorKind::RangeTooLarge,
        ErrorKind::Node,
        ErrorKind::BadResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transport => "transport",
            ErrorKind::RateLimited => "rate-limited",
            ErrorKind::RangeTooLarge => "range-too-large",
            ErrorKind::Node => "node",
            ErrorKind::BadResponse => "bad-response",
        }
    }

    /// Whether the client retries this class by itself.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Transport | ErrorKind::RateLimited | ErrorKind::BadResponse)
    }
}

/// What a provider said about the range it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeHint {
    /// "this block range should work: [0x…, 0x…]": retry with exactly this range.
    Range { from: u64, to: u64 },
    /// "limited to a 10,000 block range": at most this many blocks per request.
    MaxBlocks(u64),
}

/// One failed request, after the client's own retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method} on {url}: {kind_text}: {message}", kind_text = kind.as_str())]
pub struct RpcError {
    pub kind: ErrorKind,
    pub method: String,
    /// The URL with credentials masked.
    pub url: String,
    pub message: String,
    /// JSON-RPC error code, when the node gave one.
    pub code: Option<i64>,
    pub retry_after: Option<Duration>,
    pub hint: Option<RangeHint>,
    /// The error's `data`: for a revert, the revert bytes as hex.
    pub data: Option<serde_json::Value>,
}

impl RpcError {
    /// The revert bytes of an `eth_call`/`eth_estimateGas` that reverted, when the node gave them.
    pub fn revert_data(&self) -> Option<alloy::primitives::Bytes> {
        let text = match &self.data {
            Some(serde_json::Value::String(s)) => s.as_str(),
            // Some nodes nest it: {"data": "0x…"} or {"result": "0x…"}.
            Some(serde_json::Value::Object(o)) => {
                o.get("data").or(o.get("result")).and_then(|v| v.as_str())?
            }
            _ => return None,
        };
        text.parse().ok()
    }

    /// Whether the node says the call reverted (with or without data).
    pub fn is_revert(&self) -> bool {
        self.kind == ErrorKind::Node
            && (self.code == Some(3)
                || self.message.to_ascii_lowercase().contains("revert")
                || self.revert_data().is_some())
    }
}

impl RpcError {
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable() || (self.kind == ErrorKind::Node && node_error_is_transient(&self.message))
    }
}

/// Classifies a JSON-RPC error object (`{"code": …, "message": …, "data": …}`).
pub fn classify_node_error(
    code: i64,
    message: &str,
    data: Option<&serde_json::Value>,
) -> (ErrorKind, Option<RangeHint>) {
    let lower = message.to_ascii_lowercase();
    if let Some(hint) = range_hint(message, data) {
        return (ErrorKind::RangeTooLarge, Some(hint));
    }
    const TOO_LARGE: [&str; 14] = [
        "query returned more than",
        "log response size exceeded",
        "response size exceeded",
        "response size should not",
        "block range is too wide",
        "block range too large",
        "range too large",
        "exceed maximum block range",
        "exceeds max results",
        "query exceeds max",
        "too many results",
        "limited to a",
        "max range limit",
        "query timeout exceeded",
    ];
    if TOO_LARGE.iter().any(|p| lower.contains(p)) {
        return (ErrorKind::RangeTooLarge, None);
    }
    // -32005 is "limit exceeded" in EIP-1474; providers use it for both rates and result sizes,
    // and the size case was caught above.
    const RATE: [&str; 6] = [
        "rate limit",
        "too many requests",
        "exceeded the quota",
        "capacity exceeded",
        "compute units",
        "throughput",
    ];
    if code == -32005 || code == 429 || RATE.iter().any(|p| lower.contains(p)) {
        return (ErrorKind::RateLimited, None);
    }
    (ErrorKind::Node, None)
}

/// Node errors that a retry a moment later usually cures: a load balancer sent us to a node that
/// has not seen the block yet.
fn node_error_is_transient(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["header not found", "unknown block", "block not found", "missing trie node", "timeout", "internal error"]
        .iter()
        .any(|p| lower.contains(p))
}

/// Finds the range a provider suggests, in the styles of Alchemy and Infura (`[0x1, 0x2]`, or
/// `data: {from, to}`), reth (`retry with the range 13-19`), and limits given as a block count
/// (QuickNode `limited to a 10,000 range`, Ankr and others `max range limit: 3000`, geth-style
/// `exceed maximum block range: 5000`).
pub fn range_hint(message: &str, data: Option<&serde_json::Value>) -> Option<RangeHint> {
    if let Some(data) = data
        && let (Some(from), Some(to)) = (data.get("from"), data.get("to"))
        && let (Some(from), Some(to)) = (quantity(from), quantity(to))
        && from <= to
    {
        return Some(RangeHint::Range { from, to });
    }
    if let Some(open) = message.find('[') {
        let rest = &message[open + 1..];
        if let Some(close) = rest.find(']') {
            let mut parts = rest[..close].split(',').map(str::trim);
            if let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next())
                && let (Some(from), Some(to)) = (parse_number(a), parse_number(b))
                && from <= to
            {
                return Some(RangeHint::Range { from, to });
            }
        }
    }
    let lower = message.to_ascii_lowercase();
    if let Some(at) = lower.find("retry with the range ") {
        let rest = &message[at + "retry with the range ".len()..];
        let token: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        if let Some((a, b)) = token.split_once('-')
            && let (Some(from), Some(to)) = (parse_number(a), parse_number(b))
            && from <= to
        {
            return Some(RangeHint::Range { from, to });
        }
    }
    for marker in
        ["limited to a ", "max range limit", "maximum block range", "block range limit", "range limit"]
    {
        if let Some(at) = lower.find(marker) {
            let rest = &message[at + marker.len()..];
            if let Some(n) = first_number(rest)
                && n > 0
            {
                return Some(RangeHint::MaxBlocks(n));
            }
        }
    }
    None
}

fn quantity(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::String(s) => parse_number(s),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// `0x2a` or `42`.
fn parse_number(text: &str) -> Option<u64> {
    let text = text.trim().trim_matches('"');
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The first decimal number in `text`, allowing `10,000` and `10_000`.
fn first_number(text: &str) -> Option<u64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '_')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Parses an HTTP `Retry-After` header given in seconds (the HTTP-date form is rare on RPCs and
/// is treated as absent).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    value.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn provider_range_messages_become_hints() {
        let alchemy = "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block \
            range and no limit on the response size, or you can request any block range with a cap of 10K logs \
            in the response. Based on your parameters, this block range should work: [0x10, 0x2a]";
        assert_eq!(
            classify_node_error(-32602, alchemy, None),
            (ErrorKind::RangeTooLarge, Some(RangeHint::Range { from: 16, to: 42 }))
        );

        let infura = "query returned more than 10000 results. Try with this block range [0x1B, 0x1F].";
        assert_eq!(range_hint(infura, None), Some(RangeHint::Range { from: 27, to: 31 }));
        let infura_data = json!({"from": "0x5", "to": "0x9"});
        assert_eq!(
            classify_node_error(-32005, "query returned more than 10000 results", Some(&infura_data)),
            (ErrorKind::RangeTooLarge, Some(RangeHint::Range { from: 5, to: 9 }))
        );

        let quicknode = "eth_getLogs and eth_newFilter are limited to a 10,000 blocks range";
        assert_eq!(
            classify_node_error(-32614, quicknode, None),
            (ErrorKind::RangeTooLarge, Some(RangeHint::MaxBlocks(10_000)))
        );

        let ankr = "Exceeded max range limit for eth_getLogs: 3000";
        assert_eq!(
            classify_node_error(-32600, ankr, None),
            (ErrorKind::RangeTooLarge, Some(RangeHint::MaxBlocks(3000)))
        );

        let reth = "query exceeds max results 20000, retry with the range 100-199";
        assert_eq!(range_hint(reth, None), Some(RangeHint::Range { from: 100, to: 199 }));

        let geth = "exceed maximum block range: 5000";
        assert_eq!(
            classify_node_error(-32000, geth, None),
            (ErrorKind::RangeTooLarge, Some(RangeHint::MaxBlocks(5000)))
        );
    }

    #[test]
    fn size_errors_without_a_hint_are_still_range_errors() {
        for message in [
            "block range is too wide",
            "Query timeout exceeded. Consider reducing your block range",
            "too many results",
        ] {
            assert_eq!(
                classify_node_error(-32000, message, None),
                (ErrorKind::RangeTooLarge, None),
                "{message}"
            );
        }
    }

    #[test]
    fn rate_limits_and_plain_node_errors() {
        assert_eq!(classify_node_error(-32005, "limit exceeded", None).0, ErrorKind::RateLimited);
        assert_eq!(
            classify_node_error(-32016, "Your app has exceeded its compute units per second capacity", None)
                .0,
            ErrorKind::RateLimited
        );
        assert_eq!(classify_node_error(-32000, "execution reverted", None).0, ErrorKind::Node);
        // A bracketed pair that is not a range is not a hint.
        assert_eq!(range_hint("invalid params [a, b]", None), None);
        assert_eq!(range_hint("bad [0x9, 0x1]", None), None);
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn transient_node_errors_are_retried() {
        let e = RpcError {
            kind: ErrorKind::Node,
            method: "eth_getBlockByNumber".into(),
            url: "http://x".into(),
            message: "header not found".into(),
            code: Some(-32000),
            retry_after: None,
            hint: None,
            data: None,
        };
        assert!(e.is_retryable());
        assert!(!RpcError { message: "execution reverted".into(), ..e }.is_retryable());
    }
}
