//! Checks that need more than the types: names that refer to each other, addresses and their
//! checksums, Solidity declarations, environment variables, and settings that exclude each other.
//! Every check adds to the reader's diagnostics; nothing stops at the first problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use alloy::dyn_abi::DynSolType;
use alloy::json_abi::{Error as AbiError, Event, Function};
use alloy::primitives::{Address, U256};

use super::load::{Reader, nearest};
use super::types::*;

/// Runs every check on a config that deserialized.
pub(super) fn validate(r: &mut Reader<'_>, config: &Config, base_dir: &Path) {
    let chain_names: Vec<&str> = config.chains.keys().map(String::as_str).collect();
    let mut chain_ids: BTreeMap<u64, &str> = BTreeMap::new();
    // In file order, so that a repeated chain id is reported where it is repeated.
    let mut in_file_order: Vec<(&String, &Chain)> = config.chains.iter().collect();
    in_file_order.sort_by_key(|(name, _)| r.positions.find(&format!("chains.{name}")));
    for (name, chain) in in_file_order {
        let path = format!("chains.{name}");
        if let Some(first) = chain_ids.insert(chain.chain_id, name) {
            r.error(
                &format!("{path}.chain_id"),
                format!("chain id {} is also the chain id of `{first}`", chain.chain_id),
                Some("each chain is listed once; remove one or correct its chain_id".into()),
            );
            chain_ids.insert(chain.chain_id, first);
        }
        check_chain(r, &path, chain, base_dir);
    }

    let source_names: Vec<&str> = config.sources.keys().map(String::as_str).collect();
    let target_names: Vec<&str> = config.targets.keys().map(String::as_str).collect();

    for (name, source) in &config.sources {
        let path = format!("sources.{name}");
        match source {
            Source::Evm(evm) => check_evm_source(r, &path, evm, &chain_names),
            Source::Seda(seda) => check_http_url(r, &format!("{path}.url"), &seda.url),
        }
    }
    check_shared_contracts(r, config);

    for (name, target) in &config.targets {
        let path = format!("targets.{name}");
        match target {
            Target::SedaProver(t) => {
                if t.chains.is_empty() {
                    r.error(&format!("{path}.chains"), "no destination chains", None);
                }
                for (chain, contract) in &t.chains {
                    let key = format!("{path}.chains.{chain}");
                    check_destination(r, &key, chain, config, &chain_names);
                    match (&contract.prover, &contract.core) {
                        (Some(a), None) => {
                            check_address(r, &format!("{key}.prover"), a);
                        }
                        (None, Some(a)) => {
                            check_address(r, &format!("{key}.core"), a);
                        }
                        _ => r.error(&key, "set exactly one of `prover` or `core`", None),
                    }
                }
            }
            Target::EvmCall(t) => check_evm_call(r, &path, t, config, &chain_names),
            Target::Webhook(t) => {
                check_http_url(r, &format!("{path}.url"), &t.url);
                if let Some(var) = &t.secret_env {
                    check_env_set(r, &format!("{path}.secret_env"), var);
                }
            }
            Target::Jsonl(t) => {
                if t.path.as_os_str().is_empty() {
                    r.error(
                        &format!("{path}.path"),
                        "empty path",
                        Some("a file path, or `-` for stdout".into()),
                    );
                }
            }
            Target::RedisStream(t) => {
                check_url(r, &format!("{path}.url"), &t.url, &["redis", "rediss"]);
                if t.stream.trim().is_empty() {
                    r.error(&format!("{path}.stream"), "empty stream name", None);
                }
                if t.maxlen == Some(0) {
                    r.error(&format!("{path}.maxlen"), "`maxlen: 0` would drop every entry", None);
                }
            }
        }
    }

    let mut routed_sources = BTreeSet::new();
    let mut routed_targets = BTreeSet::new();
    let mut pairs = BTreeSet::new();
    for (i, route) in config.routes.iter().enumerate() {
        let path = format!("routes[{i}]");
        if !config.sources.contains_key(&route.source) && !r.is_broken(&format!("sources.{}", route.source)) {
            r.error(
                &format!("{path}.source"),
                format!("no source named `{}`", route.source),
                suggest_name(&route.source, &source_names),
            );
        }
        routed_sources.insert(route.source.as_str());
        if route.targets.is_empty() {
            r.error(&format!("{path}.targets"), "a route needs at least one target", None);
        }
        for (j, target) in route.targets.iter().enumerate() {
            let key = format!("{path}.targets[{j}]");
            if !config.targets.contains_key(target) && !r.is_broken(&format!("targets.{target}")) {
                r.error(&key, format!("no target named `{target}`"), suggest_name(target, &target_names));
            }
            if !pairs.insert((route.source.as_str(), target.as_str())) {
                r.warn(&key, format!("`{}` → `{target}` is routed twice; items go once", route.source), None);
            }
            routed_targets.insert(target.as_str());
        }
    }
    for name in &source_names {
        if !routed_sources.contains(name) {
            r.warn(
                &format!("sources.{name}"),
                "not in any route: its items are recorded, not delivered",
                None,
            );
        }
    }
    for name in &target_names {
        if !routed_targets.contains(name) {
            r.warn(&format!("targets.{name}"), "not in any route: nothing will be delivered to it", None);
        }
    }
}

fn check_chain(r: &mut Reader<'_>, path: &str, chain: &Chain, base_dir: &Path) {
    if chain.chain_id == 0 {
        r.error(&format!("{path}.chain_id"), "chain id 0 is not a real chain", None);
    }
    if chain.rpc.is_empty() {
        r.error(&format!("{path}.rpc"), "no RPC URL", Some("list at least one `http(s)://` URL".into()));
    }
    for (i, url) in chain.rpc.iter().enumerate() {
        // ferry polls over HTTP; WebSocket subscriptions would add nothing a poll loop misses.
        check_url(r, &format!("{path}.rpc[{i}]"), url, &["http", "https"]);
    }
    if chain.confirmations.is_some() && chain.finality.is_some() {
        r.error(
            &format!("{path}.finality"),
            "`confirmations` and `finality` both set; they are two ways to say the same thing",
            Some("keep one".into()),
        );
    }
    if chain.max_block_range == 0 {
        r.error(&format!("{path}.max_block_range"), "must be at least 1", None);
    }
    if chain.reorg_window == 0 {
        r.error(&format!("{path}.reorg_window"), "must be at least 1", None);
    }
    if chain.rate_limit == Some(0) {
        r.error(
            &format!("{path}.rate_limit"),
            "0 requests per second would never send one",
            Some("remove it for no limit".into()),
        );
    }
    if chain.poll_interval.0.is_zero() {
        r.error(&format!("{path}.poll_interval"), "must be longer than 0", None);
    }
    if chain.request_timeout.0.is_zero() {
        r.error(&format!("{path}.request_timeout"), "must be longer than 0", None);
    }
    if let Some(signer) = &chain.signer {
        check_signer(r, &format!("{path}.signer"), signer, base_dir);
    }
    if let Some(min) = &chain.min_balance
        && let Err(e) = parse_ether(&min.0)
    {
        r.error(&format!("{path}.min_balance"), e, Some("an amount of ether such as `0.05`".into()));
    }
    if let Some(gas) = &chain.gas {
        let gpath = format!("{path}.gas");
        if gas.bump_percent < 10 {
            r.error(
                &format!("{gpath}.bump_percent"),
                format!("{}% is below the 10% nodes require to accept a replacement", gas.bump_percent),
                Some("use 10 or more".into()),
            );
        }
        if gas.max_fee_gwei.wei() == 0 {
            r.error(&format!("{gpath}.max_fee_gwei"), "a fee cap of 0 would never send", None);
        }
        if let Some(priority) = gas.priority_fee_gwei
            && priority > gas.max_fee_gwei
        {
            r.error(&format!("{gpath}.priority_fee_gwei"), "priority fee above the max fee cap", None);
        }
        if gas.bump_after.0.is_zero() {
            r.error(&format!("{gpath}.bump_after"), "must be longer than 0", None);
        }
    }
}

fn check_signer(r: &mut Reader<'_>, path: &str, signer: &Signer, base_dir: &Path) {
    match (&signer.key_env, &signer.keystore) {
        (Some(_), Some(_)) => r.error(path, "set either `key_env` or `keystore`, not both", None),
        (None, None) => r.error(
            path,
            "no key: set `key_env` (a variable holding a hex private key) or `keystore` + `password_env`",
            None,
        ),
        (Some(var), None) => {
            let key = format!("{path}.key_env");
            if check_env_set(r, &key, var)
                && let Some(value) = r.env(var)
                && crate::engine::keys::parse_hex_key(&value).is_none()
            {
                r.error(
                    &key,
                    format!("environment variable `{var}` does not hold a 32-byte hex private key"),
                    None,
                );
            }
            if signer.password_env.is_some() {
                r.warn(&format!("{path}.password_env"), "only used with `keystore`; ignored", None);
            }
        }
        (None, Some(file)) => {
            let full = base_dir.join(file);
            if !full.is_file() {
                r.error(
                    &format!("{path}.keystore"),
                    format!("keystore file {} not found", full.display()),
                    None,
                );
            }
            match &signer.password_env {
                Some(var) => {
                    check_env_set(r, &format!("{path}.password_env"), var);
                }
                None => {
                    r.error(path, "`keystore` needs `password_env`, the variable holding its password", None)
                }
            }
        }
    }
}

/// Errors when an environment variable named by the config is unset. Names it; never shows a value.
fn check_env_set(r: &mut Reader<'_>, key: &str, var: &str) -> bool {
    if r.env(var).is_some() {
        return true;
    }
    r.error(
        key,
        format!("environment variable `{var}` is not set"),
        Some(format!("export {var} before starting ferry")),
    );
    false
}

/// A contract watched by two sources on one chain would have its events stored once (they are keyed
/// by chain, block and log index) under whichever source wrote last; refuse it.
fn check_shared_contracts(r: &mut Reader<'_>, config: &Config) {
    let mut owners: BTreeMap<(String, Address), String> = BTreeMap::new();
    for (name, source) in &config.sources {
        let Source::Evm(evm) = source else { continue };
        let statics = evm.contracts.iter().enumerate().map(|(i, c)| (format!("contracts[{i}]"), &c.address));
        let factories =
            evm.factories.iter().enumerate().map(|(i, f)| (format!("factories[{i}]"), &f.address));
        for (item, text) in statics.chain(factories) {
            let Ok(address) = text.parse::<Address>() else { continue };
            let key = (evm.chain.clone(), address);
            match owners.get(&key) {
                Some(owner) if owner != name => r.error(
                    &format!("sources.{name}.{item}.address"),
                    format!("{address} on chain `{}` is also watched by source `{owner}`", evm.chain),
                    Some("events are stored once per chain, block and log index: watch a contract from one source".into()),
                ),
                Some(_) => {}
                None => {
                    owners.insert(key, name.clone());
                }
            }
        }
    }
}

fn check_evm_source(r: &mut Reader<'_>, path: &str, source: &EvmSource, chains: &[&str]) {
    if !chains.contains(&source.chain.as_str()) && !r.is_broken(&format!("chains.{}", source.chain)) {
        r.error(
            &format!("{path}.chain"),
            format!("no chain named `{}`", source.chain),
            suggest_name(&source.chain, chains),
        );
    }
    if source.contracts.is_empty() && source.factories.is_empty() {
        r.error(path, "nothing to watch: add `contracts` or `factories`", None);
    }
    let mut seen = BTreeSet::new();
    for (i, contract) in source.contracts.iter().enumerate() {
        let cpath = format!("{path}.contracts[{i}]");
        if let Some(address) = check_address(r, &format!("{cpath}.address"), &contract.address)
            && !seen.insert(address)
        {
            r.error(&format!("{cpath}.address"), format!("{address} is listed twice in this source"), None);
        }
        check_events(r, &format!("{cpath}.events"), &contract.events);
    }
    for (i, factory) in source.factories.iter().enumerate() {
        let fpath = format!("{path}.factories[{i}]");
        let _ = check_address(r, &format!("{fpath}.address"), &factory.address);
        let epath = format!("{fpath}.event");
        if let Some(event) = parse_event(r, &epath, &factory.event) {
            match event.inputs.iter().find(|p| p.name == factory.child_param) {
                Some(p) if p.ty == "address" => {}
                Some(p) => r.error(
                    &format!("{fpath}.child_param"),
                    format!("`{}` is a {}, not an address", p.name, p.ty),
                    None,
                ),
                None => {
                    let names: Vec<&str> = event.inputs.iter().map(|p| p.name.as_str()).collect();
                    r.error(
                        &format!("{fpath}.child_param"),
                        format!("`{}` has no parameter `{}`", event.name, factory.child_param),
                        suggest_name(&factory.child_param, &names),
                    );
                }
            }
        }
        if factory.child_events.is_empty() {
            r.error(&format!("{fpath}.child_events"), "no child events to watch", None);
        }
        check_events(r, &format!("{fpath}.child_events"), &factory.child_events);
    }
}

fn check_events(r: &mut Reader<'_>, path: &str, events: &[String]) {
    if events.is_empty() {
        r.error(
            path,
            "no events listed",
            Some("e.g. `event Transfer(address indexed from, address indexed to, uint256 value)`".into()),
        );
    }
    let mut selectors = BTreeMap::new();
    for (i, decl) in events.iter().enumerate() {
        let key = format!("{path}[{i}]");
        if let Some(event) = parse_event(r, &key, decl)
            && let Some(first) = selectors.insert(event.selector(), i)
        {
            r.error(&key, format!("same event as {path}[{first}]"), None);
        }
    }
}

/// The first parameter whose type is not a Solidity type (`uint257`, `adress`). alloy's
/// declaration parser accepts any identifier as a type, since it could name a struct.
fn bad_param_type<'p>(types: impl IntoIterator<Item = std::borrow::Cow<'p, str>>) -> Option<String> {
    types.into_iter().find(|ty| DynSolType::parse(ty).is_err()).map(|ty| ty.into_owned())
}

fn parse_event(r: &mut Reader<'_>, key: &str, decl: &str) -> Option<Event> {
    match Event::parse(decl.trim()) {
        Ok(event) => {
            if let Some(ty) = bad_param_type(event.inputs.iter().map(|p| p.selector_type())) {
                r.error(key, format!("`{ty}` is not a Solidity type"), None);
                return None;
            }
            Some(event)
        }
        Err(e) => {
            r.error(
                key,
                format!("not a Solidity event declaration: {}", first_line(&e.to_string())),
                Some("write e.g. `event Approved(address indexed by)`".into()),
            );
            None
        }
    }
}

fn check_evm_call(r: &mut Reader<'_>, path: &str, t: &EvmCallTarget, config: &Config, chains: &[&str]) {
    let fkey = format!("{path}.function");
    match Function::parse(t.function.trim()) {
        Ok(function) if bad_param_type(function.inputs.iter().map(|p| p.selector_type())).is_some() => {
            let ty = bad_param_type(function.inputs.iter().map(|p| p.selector_type())).unwrap_or_default();
            r.error(&fkey, format!("`{ty}` is not a Solidity type"), None);
        }
        Ok(function) => {
            let params: Vec<&str> = function.inputs.iter().map(|p| p.name.as_str()).collect();
            for param in &function.inputs {
                if param.name.is_empty() {
                    r.error(
                        &fkey,
                        format!("parameter of type {} has no name to map an argument to", param.ty),
                        None,
                    );
                } else if !t.args.contains_key(&param.name) {
                    r.error(
                        &format!("{path}.args"),
                        format!("no argument for parameter `{}` of `{}`", param.name, function.name),
                        Some(format!("add `{}: {{ field: {} }}`", param.name, param.name)),
                    );
                }
            }
            for name in t.args.keys() {
                if !params.contains(&name.as_str()) {
                    r.error(
                        &format!("{path}.args.{name}"),
                        format!("`{}` has no parameter `{name}`", function.name),
                        suggest_name(name, &params),
                    );
                }
            }
        }
        Err(e) => r.error(
            &fkey,
            format!("not a Solidity function declaration: {}", first_line(&e.to_string())),
            Some("write e.g. `function postBatch(uint64 height, bytes32 root)`".into()),
        ),
    }
    for (name, arg) in &t.args {
        if arg.field.is_some() == arg.value.is_some() {
            r.error(
                &format!("{path}.args.{name}"),
                "set exactly one of `field` (from the item) or `value` (a literal)",
                None,
            );
        }
    }
    if t.chains.is_empty() {
        r.error(&format!("{path}.chains"), "no destination chains", None);
    }
    for (chain, address) in &t.chains {
        let key = format!("{path}.chains.{chain}");
        check_destination(r, &key, chain, config, chains);
        check_address(r, &key, address);
    }
    check_error_decls(r, &format!("{path}.errors"), &t.errors);
    if let Some(done) = &t.already_done {
        let dpath = format!("{path}.already_done");
        match (&done.view, &done.compare) {
            (Some(view), Some(compare)) => {
                if let Err(e) = Function::parse(view.trim()) {
                    r.error(
                        &format!("{dpath}.view"),
                        format!("not a Solidity function declaration: {}", first_line(&e.to_string())),
                        None,
                    );
                } else if let Ok(f) = Function::parse(view.trim())
                    && f.outputs.len() != 1
                {
                    r.error(
                        &format!("{dpath}.view"),
                        "the view must return exactly one value",
                        Some("e.g. `function lastBatchHeight() view returns (uint64)`".into()),
                    );
                }
                if parse_compare(compare).is_none() {
                    r.error(
                        &format!("{dpath}.compare"),
                        format!("`{compare}` is not a comparison"),
                        Some("write an operator and an item field, e.g. `>= height`".into()),
                    );
                }
            }
            (Some(_), None) => r.error(&dpath, "`view` needs `compare`, e.g. `>= height`", None),
            (None, Some(_)) => r.error(&dpath, "`compare` needs `view`", None),
            (None, None) if done.revert_errors.is_empty() => {
                r.error(&dpath, "empty: set `view` + `compare` and/or `revert_errors`", None)
            }
            (None, None) => {}
        }
        check_error_decls(r, &format!("{dpath}.revert_errors"), &done.revert_errors);
    }
}

/// Each entry must be a Solidity error declaration.
fn check_error_decls(r: &mut Reader<'_>, path: &str, decls: &[String]) {
    for (i, decl) in decls.iter().enumerate() {
        let parsed = AbiError::parse(decl.trim()).map_err(|e| first_line(&e.to_string())).and_then(|e| {
            bad_param_type(e.inputs.iter().map(|p| p.selector_type()))
                .map_or(Ok(()), |ty| Err(format!("`{ty}` is not a Solidity type")))
        });
        if let Err(e) = parsed {
            r.error(
                &format!("{path}[{i}]"),
                format!("not a Solidity error declaration: {e}"),
                Some("write e.g. `error BatchAlreadyExists(uint64 height)`".into()),
            );
        }
    }
}

/// `>= height` → (operator, field).
pub fn parse_compare(s: &str) -> Option<(&str, &str)> {
    let s = s.trim();
    let op = ["==", "!=", ">=", "<=", ">", "<"].into_iter().find(|op| s.starts_with(op))?;
    let field = s[op.len()..].trim();
    let valid = !field.is_empty() && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    valid.then_some((op, field))
}

/// A destination chain must exist and have a signer, since ferry sends transactions to it.
fn check_destination(r: &mut Reader<'_>, key: &str, chain: &str, config: &Config, chains: &[&str]) {
    match config.chains.get(chain) {
        None if r.is_broken(&format!("chains.{chain}")) => {}
        None => r.error(key, format!("no chain named `{chain}`"), suggest_name(chain, chains)),
        Some(c) if c.signer.is_none() => r.error(
            key,
            format!("chain `{chain}` has no `signer`, and this target sends transactions to it"),
            Some(format!("add `signer: {{ key_env: … }}` to chains.{chain}")),
        ),
        Some(_) => {}
    }
}

/// Parses an address; a mixed-case address must carry a valid EIP-55 checksum.
fn check_address(r: &mut Reader<'_>, key: &str, text: &str) -> Option<Address> {
    let text = text.trim();
    let Ok(address) = text.parse::<Address>() else {
        let hint = if text.starts_with("0x") || text.starts_with("0X") {
            format!(
                "an address is 0x and 40 hex digits; this has {} characters after 0x",
                text.len().saturating_sub(2)
            )
        } else {
            "an address starts with 0x".to_string()
        };
        r.error(key, format!("`{text}` is not an address"), Some(hint));
        return None;
    };
    let hex = &text[2..];
    let mixed = hex.chars().any(|c| c.is_ascii_lowercase()) && hex.chars().any(|c| c.is_ascii_uppercase());
    let checksummed = address.to_checksum(None);
    if mixed && checksummed != text {
        r.error(
            key,
            format!("`{text}` has a wrong EIP-55 checksum (a typo?)"),
            Some(format!("if the address is right, it is {checksummed}")),
        );
        return None;
    }
    Some(address)
}

fn check_http_url(r: &mut Reader<'_>, key: &str, url: &str) {
    check_url(r, key, url, &["http", "https"]);
}

fn check_url(r: &mut Reader<'_>, key: &str, text: &str, schemes: &[&str]) {
    match url::Url::parse(text) {
        Ok(url) if schemes.contains(&url.scheme()) && url.host().is_some() => {}
        Ok(url) => r.error(
            key,
            format!("`{}` must be a {} URL", super::mask_url(text), schemes.join("/")),
            (!schemes.contains(&url.scheme()))
                .then(|| format!("scheme `{}` is not one of {}", url.scheme(), schemes.join(", "))),
        ),
        Err(e) => {
            r.error(key, format!("not a URL ({e})"), Some(format!("e.g. `{}://host:port`", schemes[0])))
        }
    }
}

/// Parses an amount of ether (`0.05`, `"1"`) into wei.
pub fn parse_ether(value: &serde_yaml::Value) -> Result<U256, String> {
    let text = match value {
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::String(s) => s.trim().to_string(),
        _ => return Err("expected an amount of ether".into()),
    };
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(format!("`{text}` is not an amount of ether"));
    }
    if frac.len() > 18 {
        return Err(format!("`{text}` has more than 18 decimals"));
    }
    let int = if int.is_empty() {
        U256::ZERO
    } else {
        U256::from_str_radix(int, 10).map_err(|_| format!("`{text}` is too large"))?
    };
    let frac = U256::from_str_radix(&format!("{frac:0<18}"), 10)
        .map_err(|_| format!("`{text}` is not an amount of ether"))?;
    int.checked_mul(U256::from(10u64).pow(U256::from(18)))
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(|| format!("`{text}` is too large"))
}

fn suggest_name(word: &str, names: &[&str]) -> Option<String> {
    match nearest(word, names) {
        Some(n) => Some(format!("did you mean `{n}`?")),
        None if names.is_empty() => None,
        None => Some(format!("defined: {}", names.join(", "))),
    }
}

/// A parser's message on one line: alloy's spans several, with a caret under the bad spot.
fn first_line(s: &str) -> String {
    let text: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('^')).collect();
    text.join(" ").replace("parser error: ", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ether_amounts() {
        let v = |s: &str| parse_ether(&serde_yaml::Value::String(s.into()));
        assert_eq!(v("1"), Ok(U256::from(10u64).pow(U256::from(18))));
        assert_eq!(v("0.05"), Ok(U256::from(50_000_000_000_000_000u64)));
        assert!(v("1.2.3").is_err());
        assert!(v("-1").is_err());
        assert!(v("0.0000000000000000001").is_err());
    }

    #[test]
    fn comparisons() {
        assert_eq!(parse_compare(">= height"), Some((">=", "height")));
        assert_eq!(parse_compare("== batch.root"), Some(("==", "batch.root")));
        assert_eq!(parse_compare("height"), None);
        assert_eq!(parse_compare(">="), None);
    }
}
