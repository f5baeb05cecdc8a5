//! Checks that need more than the types, resolving the config as they go: names that refer to
//! each other, addresses and their checksums, Solidity declarations, environment variables, and
//! settings that exclude each other. Every check adds to the reader's diagnostics; nothing stops
//! at the first problem. What passes becomes the [`Resolved`] config the engine runs on; it is
//! only used when there is no error.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;

use alloy::json_abi::Event;
use alloy::primitives::{Address, B256, U256};

use super::load::{Reader, nearest};
use super::resolve::*;
use super::types::*;
use crate::abi::call::CallPlan;
use crate::abi::events::{EventSet, parse_event as parse_event_decl};

/// Runs every check on a config that deserialized, and resolves it.
pub(super) fn validate(r: &mut Reader<'_>, config: &Config, base_dir: &Path) -> Resolved {
    let mut resolved = Resolved::default();
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
        let plan = check_chain(r, &path, name, chain, base_dir);
        resolved.chains.insert(name.clone(), plan);
    }

    let source_names: Vec<&str> = config.sources.keys().map(String::as_str).collect();
    let target_names: Vec<&str> = config.targets.keys().map(String::as_str).collect();

    for (name, source) in &config.sources {
        let path = format!("sources.{name}");
        match source {
            Source::Evm(evm) => {
                let mut named = Vec::new();
                let plan = check_evm_source(r, &path, name, evm, &resolved.chains, &chain_names, &mut named);
                resolved.contracts.entry(evm.chain.clone()).or_default().extend(named);
                if let Some(plan) = plan {
                    resolved.sources.push(plan);
                }
            }
            Source::Seda(seda) => {
                if let Some(plan) = check_seda_source(r, &path, name, seda) {
                    resolved.seda_sources.push(plan);
                }
            }
        }
    }
    check_shared_contracts(r, config);

    check_targets(r, config, &chain_names, base_dir, &mut resolved);
    check_routes(r, config, &source_names, &target_names, &mut resolved);
    resolved.health = super::health::check_health(r, config);
    resolved
}

/// Every target, resolved into its plan: evm-call, seda-prover and the sinks (`sinks.rs`).
fn check_targets(
    r: &mut Reader<'_>,
    config: &Config,
    chain_names: &[&str],
    base_dir: &Path,
    resolved: &mut Resolved,
) {
    for (name, target) in &config.targets {
        let path = format!("targets.{name}");
        match target {
            Target::SedaProver(t) => {
                if t.chains.is_empty() {
                    r.error(&format!("{path}.chains"), "no destination chains", None);
                }
                let mut chains = BTreeMap::new();
                for (chain, contract) in &t.chains {
                    let key = format!("{path}.chains.{chain}");
                    check_destination(r, &key, chain, config, chain_names);
                    let at = match (&contract.prover, &contract.core) {
                        (Some(a), None) => {
                            let key = format!("{key}.prover");
                            check_address(r, &key, a).map(|a| (key, ProverAt::Prover(a)))
                        }
                        (None, Some(a)) => {
                            let key = format!("{key}.core");
                            check_address(r, &key, a).map(|a| (key, ProverAt::Core(a)))
                        }
                        _ => {
                            r.error(&key, "set exactly one of `prover` or `core`", None);
                            None
                        }
                    };
                    if let Some((key, at)) = at {
                        let (ProverAt::Prover(address) | ProverAt::Core(address)) = at;
                        resolved.contracts.entry(chain.clone()).or_default().push((key, address));
                        chains.insert(chain.clone(), at);
                    }
                }
                let gas_margin = check_gas_margin(r, &path, t.gas_limit_multiplier);
                resolved.targets.insert(
                    name.clone(),
                    TargetPlan::SedaProver(ProverPlan { mode: t.mode, chains, gas_margin }),
                );
            }
            Target::EvmCall(t) => {
                if let Some(plan) = check_evm_call(r, &path, t, config, chain_names) {
                    for (chain, address) in &plan.chains {
                        let key = format!("{path}.chains.{chain}");
                        resolved.contracts.entry(chain.clone()).or_default().push((key, *address));
                    }
                    resolved.targets.insert(name.clone(), TargetPlan::EvmCall(plan));
                }
            }
            Target::Webhook(_)
            | Target::Jsonl(_)
            | Target::RedisStream(_)
            | Target::NatsJetstream(_)
            | Target::GcpPubsub(_) => {
                if let Some(plan) = super::sinks::check_sink(r, &path, target, base_dir) {
                    resolved.targets.insert(name.clone(), TargetPlan::Sink(plan));
                }
            }
        }
    }
}

/// Routes name sources and targets that exist; each resolved source learns where its items go.
fn check_routes(
    r: &mut Reader<'_>,
    config: &Config,
    source_names: &[&str],
    target_names: &[&str],
    resolved: &mut Resolved,
) {
    let mut routed_sources = BTreeSet::new();
    let mut routed_targets = BTreeSet::new();
    let mut pairs = BTreeSet::new();
    for (i, route) in config.routes.iter().enumerate() {
        let path = format!("routes[{i}]");
        if !config.sources.contains_key(&route.source) && !r.is_broken(&format!("sources.{}", route.source)) {
            r.error(
                &format!("{path}.source"),
                format!("no source named `{}`", route.source),
                suggest_name(&route.source, source_names),
            );
        }
        routed_sources.insert(route.source.as_str());
        if route.targets.is_empty() {
            r.error(&format!("{path}.targets"), "a route needs at least one target", None);
        }
        for (j, target) in route.targets.iter().enumerate() {
            let key = format!("{path}.targets[{j}]");
            if !config.targets.contains_key(target) && !r.is_broken(&format!("targets.{target}")) {
                r.error(&key, format!("no target named `{target}`"), suggest_name(target, target_names));
            }
            if !pairs.insert((route.source.as_str(), target.as_str())) {
                r.warn(&key, format!("`{}` → `{target}` is routed twice; items go once", route.source), None);
            }
            routed_targets.insert(target.as_str());
            let Some(plan) = resolved.targets.get(target) else { continue };
            let chain_ids: Vec<u64> = match plan {
                TargetPlan::Sink(_) => vec![SINK_CHAIN],
                _ => plan
                    .chain_names()
                    .into_iter()
                    .filter_map(|c| resolved.chains.get(c))
                    .map(|c| c.chain_id)
                    .collect(),
            };
            let route_plan = RoutePlan {
                target: target.clone(),
                target_id: 0,
                chain_ids,
                events: route.events.clone(),
                deliver_existing: route.deliver_existing,
            };
            if let Some(source) = resolved.sources.iter_mut().find(|s| s.name == route.source) {
                if matches!(plan, TargetPlan::SedaProver(_)) {
                    r.error(
                        &key,
                        format!("`{target}` is a seda-prover target: it posts SEDA batches, and `{}` is an evm source", route.source),
                        Some("route a `kind: seda` source to it".into()),
                    );
                } else {
                    source.routes.push(route_plan);
                }
            } else if let Some(source) = resolved.seda_sources.iter_mut().find(|s| s.name == route.source) {
                if route.events.is_some() {
                    r.error(
                        &format!("{path}.events"),
                        "a seda source's items are batches, not events",
                        Some("remove `events`".into()),
                    );
                }
                if route.deliver_existing {
                    r.error(
                        &format!("{path}.deliver_existing"),
                        "a seda-prover target posts the batches the store holds already; `deliver_existing` is for evm sources",
                        Some("remove `deliver_existing`".into()),
                    );
                }
                if matches!(plan, TargetPlan::EvmCall(_)) {
                    r.error(
                        &key,
                        format!(
                            "`{target}` is an evm-call target: it calls with an event's fields, and `{}` is a seda source",
                            route.source
                        ),
                        Some("route SEDA batches to a `kind: seda-prover` target".into()),
                    );
                } else {
                    source.routes.push(route_plan);
                }
            }
        }
    }
    // A Prover holds one chain of batches: two sources would race each other's heights.
    for (name, plan) in &resolved.targets {
        if !matches!(plan, TargetPlan::SedaProver(_)) {
            continue;
        }
        let feeding: Vec<&str> = resolved
            .seda_sources
            .iter()
            .filter(|s| s.routes.iter().any(|r| &r.target == name))
            .map(|s| s.name.as_str())
            .collect();
        if feeding.len() > 1 {
            r.error(
                &format!("targets.{name}"),
                format!(
                    "routed from {} seda sources ({}); a Prover follows one SEDA chain",
                    feeding.len(),
                    feeding.join(", ")
                ),
                None,
            );
        }
    }
    for name in source_names {
        if !routed_sources.contains(name) {
            r.warn(
                &format!("sources.{name}"),
                "not in any route: its items are recorded, not delivered",
                None,
            );
        }
    }
    for name in target_names {
        if !routed_targets.contains(name) {
            r.warn(&format!("targets.{name}"), "not in any route: nothing will be delivered to it", None);
        }
    }
}

fn check_chain(r: &mut Reader<'_>, path: &str, name: &str, chain: &Chain, base_dir: &Path) -> ChainPlan {
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
    let signer = chain.signer.as_ref().and_then(|s| check_signer(r, &format!("{path}.signer"), s, base_dir));
    let min_balance = chain.min_balance.as_ref().and_then(|min| match parse_ether(&min.0) {
        Ok(wei) => Some(wei),
        Err(e) => {
            r.error(&format!("{path}.min_balance"), e, Some("an amount of ether such as `0.05`".into()));
            None
        }
    });
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
    if chain.max_in_flight == Some(0) {
        r.error(
            &format!("{path}.max_in_flight"),
            "0 transactions in flight would never send one",
            Some("remove it for the default (64)".into()),
        );
    }
    ChainPlan {
        name: name.to_string(),
        chain_id: chain.chain_id,
        rpc: chain.rpc.clone(),
        finality: match (chain.confirmations, chain.finality) {
            (_, Some(tag)) => Finality::Tag(tag),
            (Some(n), None) => Finality::Confirmations(n),
            (None, None) => Finality::Confirmations(DEFAULT_CONFIRMATIONS),
        },
        delivery_confirmations: chain.confirmations.unwrap_or(DEFAULT_CONFIRMATIONS).max(1),
        poll_interval: chain.poll_interval.0,
        max_block_range: chain.max_block_range.max(1),
        reorg_window: chain.reorg_window.max(1),
        rate_limit: chain.rate_limit,
        request_timeout: chain.request_timeout.0,
        signer,
        min_balance,
        gas: chain.gas.clone(),
        max_in_flight: chain.max_in_flight.filter(|n| *n > 0),
    }
}

/// `gas_limit_multiplier` of a target: within [`GasMargin::RANGE`], in thousandths.
fn check_gas_margin(r: &mut Reader<'_>, path: &str, multiplier: Option<f64>) -> GasMargin {
    let Some(m) = multiplier else { return GasMargin::DEFAULT };
    if !GasMargin::RANGE.contains(&m) {
        r.error(
            &format!("{path}.gas_limit_multiplier"),
            format!("{m} is outside 1.0–10.0"),
            Some("the estimate × this is the gas limit; 1.2 (the default) suits most calls".into()),
        );
        return GasMargin::DEFAULT;
    }
    GasMargin { per_mille: (m * 1000.0).round() as u32 }
}

fn check_signer(r: &mut Reader<'_>, path: &str, signer: &Signer, base_dir: &Path) -> Option<SignerSpec> {
    match (&signer.key_env, &signer.keystore) {
        (Some(_), Some(_)) => {
            r.error(path, "set either `key_env` or `keystore`, not both", None);
            None
        }
        (None, None) => {
            r.error(
                path,
                "no key: set `key_env` (a variable holding a hex private key) or `keystore` + `password_env`",
                None,
            );
            None
        }
        (Some(var), None) => {
            let key = format!("{path}.key_env");
            if check_env_set(r, &key, var)
                && let Some(value) = r.env(var)
                && super::signer::parse_hex_key(&value).is_none()
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
            Some(SignerSpec::Env { var: var.clone() })
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
                    Some(SignerSpec::Keystore { path: full, password_env: var.clone() })
                }
                None => {
                    r.error(path, "`keystore` needs `password_env`, the variable holding its password", None);
                    None
                }
            }
        }
    }
}

/// Whether an environment variable named by the config is set; when it is not, says so (an
/// error, or a warning when the config is read without the environment). Names it; never shows a
/// value.
pub(super) fn check_env_set(r: &mut Reader<'_>, key: &str, var: &str) -> bool {
    if r.env(var).is_some() {
        return true;
    }
    r.env_unset(key, var);
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

/// A `seda` source: its API URLs and settings.
fn check_seda_source(
    r: &mut Reader<'_>,
    path: &str,
    name: &str,
    source: &SedaSource,
) -> Option<SedaSourcePlan> {
    let urls = source.url.to_vec();
    if urls.is_empty() {
        r.error(
            &format!("{path}.url"),
            "no URL",
            Some("the SEDA chain's REST API, e.g. `https://rest.seda.xyz`".into()),
        );
    }
    for (i, url) in urls.iter().enumerate() {
        let key = match source.url {
            OneOrMany::One(_) => format!("{path}.url"),
            OneOrMany::Many(_) => format!("{path}.url[{i}]"),
        };
        check_http_url(r, &key, url);
    }
    if source.start_batch == Some(0) {
        r.error(
            &format!("{path}.start_batch"),
            "batch 0 cannot be delivered: it has no batch before it whose validators signed it, and a Prover is deployed with a first batch",
            Some("start at 1 or above".into()),
        );
    }
    if source.poll_interval.0.is_zero() {
        r.error(&format!("{path}.poll_interval"), "must be longer than 0", None);
    }
    if source.request_timeout.0.is_zero() {
        r.error(&format!("{path}.request_timeout"), "must be longer than 0", None);
    }
    if source.rate_limit == Some(0) {
        r.error(
            &format!("{path}.rate_limit"),
            "0 requests per second would never send one",
            Some("remove it for no limit".into()),
        );
    }
    Some(SedaSourcePlan {
        name: name.to_string(),
        urls: urls.iter().map(|u| u.trim_end_matches('/').to_string()).collect(),
        start_batch: source.start_batch,
        poll_interval: source.poll_interval.0,
        request_timeout: source.request_timeout.0,
        rate_limit: source.rate_limit,
        routes: Vec::new(),
    })
}

fn check_evm_source(
    r: &mut Reader<'_>,
    path: &str,
    name: &str,
    source: &EvmSource,
    resolved_chains: &BTreeMap<String, ChainPlan>,
    chains: &[&str],
    named: &mut Vec<(String, Address)>,
) -> Option<SourcePlan> {
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
    let mut statics: BTreeMap<Address, EventSet> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (i, contract) in source.contracts.iter().enumerate() {
        let cpath = format!("{path}.contracts[{i}]");
        let address = check_address(r, &format!("{cpath}.address"), &contract.address);
        if let Some(address) = address {
            named.push((format!("{cpath}.address"), address));
        }
        if let Some(address) = address
            && !seen.insert(address)
        {
            r.error(&format!("{cpath}.address"), format!("{address} is listed twice in this source"), None);
        }
        let events = check_events(r, &format!("{cpath}.events"), &contract.events);
        if let Some(address) = address {
            statics.entry(address).or_default().extend(&events);
        }
    }
    let mut factories = Vec::new();
    let mut child_topics = HashSet::new();
    for (i, factory) in source.factories.iter().enumerate() {
        let fpath = format!("{path}.factories[{i}]");
        let address = check_address(r, &format!("{fpath}.address"), &factory.address);
        if let Some(address) = address {
            named.push((format!("{fpath}.address"), address));
        }
        let epath = format!("{fpath}.event");
        let creation = parse_event(r, &epath, &factory.event).and_then(|event| {
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
            event_set(r, &epath, vec![event])
        });
        if factory.child_events.is_empty() {
            r.error(&format!("{fpath}.child_events"), "no child events to watch", None);
        }
        let child_events = check_events(r, &format!("{fpath}.child_events"), &factory.child_events);
        if let (Some(address), Some(creation)) = (address, creation)
            && let Some(creation_topic) = creation.topics().first().copied()
        {
            child_topics.extend(child_events.topics());
            statics.entry(address).or_default().extend(&creation);
            factories.push(FactoryPlan {
                address,
                creation,
                creation_topic,
                child_param: factory.child_param.clone(),
                child_events,
            });
        }
    }
    let chain = resolved_chains.get(&source.chain)?;
    let mut child_topics: Vec<B256> = child_topics.into_iter().collect();
    child_topics.sort();
    Some(SourcePlan {
        name: name.to_string(),
        chain: source.chain.clone(),
        chain_id: chain.chain_id,
        start_block: source.start_block,
        finality: chain.finality,
        reorg_window: chain.reorg_window,
        max_block_range: chain.max_block_range,
        poll_interval: chain.poll_interval,
        max_addresses: source.max_addresses,
        statics,
        factories,
        child_topics,
        routes: Vec::new(),
    })
}

/// A list of event declarations, each parsed, none declared twice.
fn check_events(r: &mut Reader<'_>, path: &str, events: &[String]) -> EventSet {
    if events.is_empty() {
        r.error(
            path,
            "no events listed",
            Some("e.g. `event Transfer(address indexed from, address indexed to, uint256 value)`".into()),
        );
    }
    let mut selectors = BTreeMap::new();
    let mut set = EventSet::default();
    for (i, decl) in events.iter().enumerate() {
        let key = format!("{path}[{i}]");
        let Some(event) = parse_event(r, &key, decl) else { continue };
        if let Some(first) = selectors.insert(event.selector(), i) {
            r.error(&key, format!("same event as {path}[{first}]"), None);
            continue;
        }
        if let Err(e) = set.add(event) {
            r.error(&key, e, None);
        }
    }
    set
}

fn event_set(r: &mut Reader<'_>, key: &str, events: Vec<Event>) -> Option<EventSet> {
    let mut set = EventSet::default();
    for event in events {
        if let Err(e) = set.add(event) {
            r.error(key, e, None);
            return None;
        }
    }
    Some(set)
}

fn parse_event(r: &mut Reader<'_>, key: &str, decl: &str) -> Option<Event> {
    match parse_event_decl(decl) {
        Ok(event) => Some(event),
        Err((message, hint)) => {
            r.error(key, message, hint);
            None
        }
    }
}

/// Every rule of the `evm-call` kind is in [`CallPlan::new`]; here its problems become
/// diagnostics, and the destinations are checked.
fn check_evm_call(
    r: &mut Reader<'_>,
    path: &str,
    t: &EvmCallTarget,
    config: &Config,
    chains: &[&str],
) -> Option<EvmCallPlan> {
    let args = t.arg_decls();
    let plan = match CallPlan::new(&t.call_decl(&args)) {
        Ok(plan) => Some(plan),
        Err(problems) => {
            for problem in problems {
                let names: Vec<&str> = problem.candidates.iter().map(String::as_str).collect();
                let name = problem.key.rsplit('.').next().unwrap_or_default();
                let hint = problem.hint.or_else(|| {
                    (!problem.candidates.is_empty()).then(|| suggest_name(name, &names)).flatten()
                });
                r.error(&format!("{path}.{}", problem.key), problem.message, hint);
            }
            None
        }
    };
    if t.chains.is_empty() {
        r.error(&format!("{path}.chains"), "no destination chains", None);
    }
    let mut addresses = BTreeMap::new();
    for (chain, address) in &t.chains {
        let key = format!("{path}.chains.{chain}");
        check_destination(r, &key, chain, config, chains);
        if let Some(address) = check_address(r, &key, address) {
            addresses.insert(chain.clone(), address);
        }
    }
    let gas_margin = check_gas_margin(r, path, t.gas_limit_multiplier);
    Some(EvmCallPlan { plan: Arc::new(plan?), chains: addresses, gas_margin })
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

pub(super) fn check_url(r: &mut Reader<'_>, key: &str, text: &str, schemes: &[&str]) {
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
pub fn parse_ether(value: &serde_json::Value) -> Result<U256, String> {
    let text = match value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.trim().to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ether_amounts() {
        let v = |s: &str| parse_ether(&serde_json::Value::String(s.into()));
        assert_eq!(v("1"), Ok(U256::from(10u64).pow(U256::from(18))));
        assert_eq!(v("0.05"), Ok(U256::from(50_000_000_000_000_000u64)));
        assert!(v("1.2.3").is_err());
        assert!(v("-1").is_err());
        assert!(v("0.0000000000000000001").is_err());
    }
}
