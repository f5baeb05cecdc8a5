//! Keeping secrets out of output. Two sources of secrets reach the config: values substituted from
//! the environment (`${ALCHEMY_KEY}` inside an RPC URL) and credentials written straight into URLs
//! (`https://user:pass@…`, `?apikey=…`, `/v2/<key>`). [`Redactor`] scrubs the first kind from any
//! text; [`mask_url`] hides the second kind whenever a URL is shown.

/// Remembers the values substituted from the environment and hides them in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

/// Values shorter than this are not scrubbed: hiding every `1` or `true` would mangle messages,
/// and such short values are not secrets.
const MIN_SECRET_LEN: usize = 4;

impl Redactor {
    pub fn remember(&mut self, value: &str) {
        if value.len() >= MIN_SECRET_LEN && !self.secrets.iter().any(|s| s == value) {
            self.secrets.push(value.to_string());
            // Longest first, so a secret containing another is hidden whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every remembered value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }
}

/// A URL fit to print: password, query values and key-like path segments replaced by `***`.
/// Text that is not a URL is returned with everything after the scheme hidden.
pub fn mask_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return match raw.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***"),
            None => "***".to_string(),
        };
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<String> = url.query_pairs().map(|(k, _)| format!("{k}=***")).collect();
        url.set_query(Some(&pairs.join("&")));
    }
    if let Some(segments) = url.path_segments() {
        let masked: Vec<String> =
            segments.map(|s| if looks_like_key(s) { "***".to_string() } else { s.to_string() }).collect();
        url.set_path(&masked.join("/"));
    }
    url.to_string().replace("%2A%2A%2A", "***")
}

/// Provider URLs carry API keys as path segments (`/v2/<key>`, `/<project id>`): long runs of
/// letters and digits with at least one digit are treated as keys.
fn looks_like_key(segment: &str) -> bool {
    segment.len() >= 16
        && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && segment.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_credentials_in_urls() {
        assert_eq!(
            mask_url("https://eth-mainnet.g.alchemy.com/v2/abcDEF1234567890xyz"),
            "https://eth-mainnet.g.alchemy.com/v2/***"
        );
        assert_eq!(
            mask_url("https://user:hunter22@rpc.example/x?apikey=s3cret"),
            "https://user:***@rpc.example/x?apikey=***"
        );
        assert_eq!(mask_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545/");
        assert_eq!(mask_url("not a url with secret"), "***");
    }

    #[test]
    fn redacts_remembered_values_longest_first() {
        let mut r = Redactor::default();
        r.remember("abc");
        r.remember("secret");
        r.remember("secret-long");
        assert_eq!(r.redact("a secret-long and secret and abc"), "a *** and *** and abc");
    }
}
