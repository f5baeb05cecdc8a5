//! The config file: serde types (`types`), human values (`values`), loading with `${VAR}`
//! substitution and positions (`load`), and validation into diagnostics (`validate`) shared by
//! `check-config` and every command's start-up.

mod env;
pub mod health;
pub mod load;
pub mod resolve;
pub mod secrets;
pub mod signer;
mod sinks;
pub mod types;
pub mod validate;
pub mod values;
mod yaml;

use std::path::{Path, PathBuf};

pub use load::{EnvLookup, Positions, Unset, process_env};
pub use resolve::*;
pub use secrets::{Redactor, mask_url};
pub use types::*;

/// A config that loaded without errors, with its warnings and where its keys are written.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file as written (names, for messages and filters).
    pub config: Config,
    /// What the engine runs on.
    pub resolved: Resolved,
    pub warnings: Vec<Diagnostic>,
    path: PathBuf,
    positions: Positions,
    fingerprint: String,
}

impl Loaded {
    /// The config file's name as diagnostics show it.
    pub fn file_name(&self) -> String {
        self.path.display().to_string()
    }

    /// The directory relative paths in the config are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// `store:` resolved against the config's directory; `ferry.redb` beside the config by default.
    pub fn store_path(&self) -> PathBuf {
        let store = self.config.store.clone().unwrap_or_else(|| PathBuf::from("ferry.redb"));
        self.base_dir().join(store)
    }

    /// Line and column of a key path, or of its nearest written parent.
    pub fn position(&self, key: &str) -> Option<(usize, usize)> {
        self.positions.find(key)
    }

    /// A short hash of the config's meaning (after substitution), recorded in the store so that an
    /// operator can tell which config wrote it. Formatting and comments do not change it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// Reads, substitutes, deserializes and validates a config file. Any error-severity problem makes
/// the whole file a [`ConfigError`] listing every problem; warnings ride along in [`Loaded`].
pub fn load_and_validate(path: &Path) -> Result<Loaded, ConfigError> {
    load_with_env(path, &process_env)
}

/// [`load_and_validate`] where a variable the config names and the environment lacks is a
/// warning, its value left unresolved: for checking a config without its secrets
/// (`check-config --no-env`) and for commands that read the config only for names and the store's
/// path. What it returns must never run deliveries.
pub fn load_without_env(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(path, &process_env, Unset::Warn)
}

/// [`load_and_validate`] with an explicit environment.
pub fn load_with_env(path: &Path, env: EnvLookup<'_>) -> Result<Loaded, ConfigError> {
    load_with(path, env, Unset::Error)
}

/// Loads a config with an explicit environment, saying what an unset variable is.
pub fn load_with(path: &Path, env: EnvLookup<'_>, unset: Unset) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => Some(
                "pass `-c FILE`, set FERRY_CONFIG, or start from config-examples/minimal.yaml".to_string(),
            ),
            _ => None,
        };
        ConfigError {
            path: path.to_path_buf(),
            diagnostics: vec![Diagnostic {
                file: file.clone(),
                line: 0,
                column: 0,
                key: String::new(),
                severity: Severity::Error,
                message: format!("cannot read the config file: {e}"),
                suggestion: hint,
            }],
        }
    })?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (config, mut reader) = load::read(&text, file, env, unset);
    let resolved = config.as_ref().map(|config| validate::validate(&mut reader, config, &base_dir));
    let mut diagnostics = std::mem::take(&mut reader.diagnostics);
    diagnostics.sort_by_key(|d| (d.line, d.column));
    match (config, resolved) {
        (Some(config), Some(resolved)) if diagnostics.iter().all(|d| d.severity == Severity::Warning) => {
            let canonical = serde_json::to_vec(&config).unwrap_or_default();
            let fingerprint = alloy::primitives::keccak256(&canonical).to_string()[2..18].to_string();
            Ok(Loaded {
                config,
                resolved,
                warnings: diagnostics,
                path: path.to_path_buf(),
                positions: reader.positions,
                fingerprint,
            })
        }
        _ => Err(ConfigError { path: path.to_path_buf(), diagnostics }),
    }
}

/// Diagnostics as compiler-style lines for stderr: `file:line:col: error: key: message`, then the
/// fix indented below.
pub fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let place = if d.line == 0 { d.file.clone() } else { format!("{}:{}:{}", d.file, d.line, d.column) };
        let key = if d.key.is_empty() { String::new() } else { format!("{}: ", d.key) };
        out.push_str(&format!("{place}: {severity}: {key}{}\n", d.message));
        if let Some(fix) = &d.suggestion {
            out.push_str(&format!("    hint: {fix}\n"));
        }
    }
    out
}

/// A config that cannot be used: every problem found, each with its position.
#[derive(Debug, thiserror::Error)]
#[error("config {path} has {} problem(s)", diagnostics.len())]
pub struct ConfigError {
    pub path: std::path::PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

/// One problem in a config file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `chains.base.rpc[0]`.
    pub key: String,
    pub severity: Severity,
    pub message: String,
    /// A fix, when one is obvious (nearest valid key, checksummed address, …).
    pub suggestion: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}
