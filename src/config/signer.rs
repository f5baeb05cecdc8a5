//! Signing keys: from an environment variable holding a hex private key, or from an encrypted
//! JSON keystore plus a password variable. Keys are never logged: errors name the variable or the
//! file, never a value, and the loaded signer is only ever shown as its address.

use std::path::PathBuf;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;

use super::resolve::SignerSpec;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("environment variable `{var}` (named by `{key}`) is not set")]
    EnvUnset { var: String, key: String },
    #[error("environment variable `{var}` does not hold a 32-byte hex private key")]
    NotAKey { var: String },
    #[error("keystore {} cannot be read: {detail}", path.display())]
    Keystore { path: PathBuf, detail: String },
}

/// Loads the key a `signer:` block names.
pub fn load(signer: &SignerSpec) -> Result<PrivateKeySigner, KeyError> {
    match signer {
        SignerSpec::Env { var } => {
            let value = std::env::var(var)
                .map_err(|_| KeyError::EnvUnset { var: var.clone(), key: "key_env".into() })?;
            parse_hex_key(&value).ok_or_else(|| KeyError::NotAKey { var: var.clone() })
        }
        SignerSpec::Keystore { path, password_env } => {
            let password = std::env::var(password_env)
                .map_err(|_| KeyError::EnvUnset { var: password_env.clone(), key: "password_env".into() })?;
            PrivateKeySigner::decrypt_keystore(path, password)
                .map_err(|e| KeyError::Keystore { detail: keystore_detail(&e), path: path.clone() })
        }
    }
}

/// Opens every keystore whose password variable is set, as a start-up would: one that does not
/// open (a wrong password, a file that is not a keystore) is an error at its `keystore` key,
/// naming the file. Keystores whose password is not set are left alone (the config's load has
/// said so already). Slow by design (scrypt): for `check-config`, not for every start-up.
pub fn check_keystores(loaded: &super::Loaded) -> Vec<super::Diagnostic> {
    let mut out = Vec::new();
    for (name, chain) in &loaded.resolved.chains {
        let Some(SignerSpec::Keystore { path, password_env }) = &chain.signer else { continue };
        let Ok(password) = std::env::var(password_env) else { continue };
        if !path.is_file() {
            continue;
        }
        if let Err(e) = PrivateKeySigner::decrypt_keystore(path, password) {
            let key = format!("chains.{name}.signer.keystore");
            let (line, column) = loaded.position(&key).unwrap_or((0, 0));
            out.push(super::Diagnostic {
                file: loaded.file_name(),
                line,
                column,
                key,
                severity: super::Severity::Error,
                message: format!(
                    "keystore {} does not open with the password in `{password_env}`: {}",
                    path.display(),
                    keystore_detail(&e)
                ),
                suggestion: Some(format!("check the password in `{password_env}`, or the file")),
            });
        }
    }
    out
}

/// The address a `signer:` block stands for, when its key can be loaded.
pub fn address(signer: &SignerSpec) -> Result<Address, KeyError> {
    load(signer).map(|s| s.address())
}

/// Parses `0x`-prefixed or bare hex of exactly 32 bytes. Returns `None` rather than an error
/// message so that no part of the value can leak into one.
pub fn parse_hex_key(value: &str) -> Option<PrivateKeySigner> {
    let hex = value.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    hex.parse().ok()
}

fn keystore_detail(e: &alloy::signers::local::LocalSignerError) -> String {
    // The keystore error may say "Mac Mismatch" (wrong password); it never contains the password.
    let text = e.to_string();
    if text.to_lowercase().contains("mac") { "wrong password (MAC mismatch)".to_string() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_parse_with_or_without_prefix() {
        let k = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let a = parse_hex_key(k).expect("bare hex");
        let b = parse_hex_key(&format!("0x{k}")).expect("prefixed hex");
        assert_eq!(a.address(), b.address());
        assert_eq!(a.address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        assert!(parse_hex_key("0x1234").is_none());
        assert!(parse_hex_key(&"zz".repeat(32)).is_none());
    }

    #[test]
    #[allow(unsafe_code)]
    fn errors_never_contain_the_value() {
        let var = "FERRY_TEST_KEYS_NOT_A_KEY";
        // SAFETY: this test owns this uniquely named variable.
        unsafe { std::env::set_var(var, "not-a-key-but-secret-text") };
        let signer = SignerSpec::Env { var: var.into() };
        let err = load(&signer).expect_err("not a key");
        assert!(!format!("{err} {err:?}").contains("secret-text"));
    }
}
