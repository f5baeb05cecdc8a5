//! `${VAR}` substitution in config values: `${VAR}`, `${VAR:-default}`, and `$$` for a literal
//! `$`. Problems name the variable, never a value.

use super::load::EnvLookup;

/// Why a `${…}` reference could not be substituted. Never holds a value, only names.
#[derive(Debug, PartialEq, Eq)]
pub enum SubstProblem {
    Unset(String),
    Unterminated,
    BadName(String),
}

impl SubstProblem {
    pub(super) fn message(&self) -> String {
        match self {
            SubstProblem::Unset(var) => format!("environment variable `{var}` is not set"),
            SubstProblem::Unterminated => "`${` without a closing `}`".into(),
            SubstProblem::BadName(name) => format!("`${{{name}}}` is not a valid variable name"),
        }
    }

    pub(super) fn suggestion(&self) -> Option<String> {
        match self {
            SubstProblem::Unset(var) => Some(format!("export {var}=…, or write `${{{var}:-default}}`")),
            SubstProblem::Unterminated => Some("close it with `}`, or write `$$` for a literal `$`".into()),
            SubstProblem::BadName(_) => Some("names are letters, digits and `_`".into()),
        }
    }
}

/// Substitutes `${VAR}`, `${VAR:-default}` and `$$` in `s`. Returns the text and the values that
/// came from the environment (so they can be redacted).
pub fn substitute_str(s: &str, env: EnvLookup<'_>) -> Result<(String, Vec<String>), SubstProblem> {
    substitute(s, env, false).map(|done| (done.text, done.values))
}

/// What a substitution made of a string.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Substituted {
    pub text: String,
    /// The values that came from the environment (to be redacted).
    pub values: Vec<String>,
    /// Variables that were not set, left as written (`keep_unset` only).
    pub unset: Vec<String>,
}

/// [`substitute_str`]; with `keep_unset`, a reference to an unset variable without a default is
/// left as written and named in [`Substituted::unset`] instead of failing (`--no-env`: a config
/// checked, or read for its names, without the secrets it refers to).
pub(super) fn substitute(s: &str, env: EnvLookup<'_>, keep_unset: bool) -> Result<Substituted, SubstProblem> {
    let mut out = String::with_capacity(s.len());
    let mut substituted = Vec::new();
    let mut unset = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or(SubstProblem::Unterminated)?;
            let inner = &tail[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(SubstProblem::BadName(inner.to_string()));
            }
            match (env(name), default) {
                (Some(v), _) if !v.is_empty() || default.is_none() => {
                    out.push_str(&v);
                    substituted.push(v);
                }
                (_, Some(d)) => out.push_str(d),
                (None, None) if keep_unset => {
                    out.push_str(&rest[at..at + 3 + end]);
                    unset.push(name.to_string());
                }
                (None, None) => return Err(SubstProblem::Unset(name.to_string())),
                (Some(_), None) => unreachable!("handled by the first arm"),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Substituted { text: out, values: substituted, unset })
}

pub(super) fn is_single_reference(s: &str) -> bool {
    s.starts_with("${") && s.ends_with('}') && s[2..s.len() - 1].find(['}', '$']).is_none()
}
