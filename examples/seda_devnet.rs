//! `seda-devnet`: the test SEDA batching API (`tests/support/seda_api.rs`) as a process, for the
//! README demo and for trying ferry's `seda` source by hand against batches signed with real keys.
//!
//! ```text
//! cargo run --example seda-devnet -- serve --validators 10 --batches 20 [--port 0]
//! ```
//!
//! It produces that many signed batches after batch 0, prints one line of JSON to stdout,
//! `{"url": "http://127.0.0.1:PORT", "genesis": {…}}` (batch 0 as the API writes it, to deploy a
//! Prover with), then serves until killed. Besides the `/seda-chain/batching/…` routes it answers
//! control routes, one per control of the test chain, each answering JSON (a bad argument: 400
//! `{"error": "…"}`; the wrong method: 405):
//!
//! | route | does |
//! | --- | --- |
//! | `POST /control/produce?n=5` | n signed batches → `{"produced": [21, …]}` |
//! | `POST /control/produce_unsigned` | the next batch, not signed yet → `{"number": 26}` |
//! | `POST /control/sign_pending` | signs it → `{"signed": 26}` (`null`: nothing was pending) |
//! | `POST /control/rotate_keys?k=3` | the first k validators (by operator) get new keys |
//! | `POST /control/set_powers?powers=10,20,…` | bonded powers, in operator order (summing to 1e8: exactly these) |
//! | `POST /control/add_validator?power=5000000` | a new validator with this bonded power → `{"operator": …}` |
//! | `POST /control/remove_validator?index=2` | validator `index` (by operator) leaves |
//! | `POST /control/prune_below?n=10` | batches below n answer "not found" |
//! | `POST /control/num_batches_to_keep?n=100` | what `/params` says; later batches prune the older ones |
//! | `POST /control/fail_next?k=2&status=503` | the next k API requests fail with that status |
//! | `POST /control/malformed_next?k=1` | the next k API answers are 200 with broken JSON |
//! | `POST /control/slow?ms=500` | every API answer waits this long (0: none) |
//! | `POST /control/tamper_signature?n=7` | batch n's first signature recovers to a stranger |
//! | `POST /control/wrong_id?n=7` | batch n's `batch_id` is not its id |
//! | `POST /control/below_threshold?n=7` | batch n keeps signatures below 66,666,666 of power |
//! | `POST /control/clear_faults` | none of the faults above any more |
//! | `GET /control/validators` | the set the next batch will carry |
//! | `GET /control/requests` | API requests received per route |
//!
//! Validator-set changes apply to the next batch produced and answer that set,
//! `{"validators": [{"operator", "eth_address", "power"}, …]}`.

#[path = "../tests/support/http.rs"]
#[allow(dead_code)] // `read_request` serves the test proxies.
mod http;
#[path = "../tests/support/seda_api/mod.rs"]
#[allow(dead_code)] // The tests' accessors.
mod seda_api;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ferry::seda::wire::batch_json;
use serde_json::{Value, json};

use seda_api::{Request, SedaApi, SedaChain};

#[derive(Parser)]
#[command(name = "seda-devnet", about = "A local SEDA batching API with real validator keys")]
enum Cli {
    /// Serves the API until killed, after printing `{"url", "genesis"}` as one line of JSON.
    Serve {
        /// Validators of batch 0.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
        validators: u16,
        /// Signed batches to produce after batch 0 before serving.
        #[arg(long, default_value_t = 20)]
        batches: usize,
        /// Port of 127.0.0.1 (0: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let Cli::Serve { validators, batches, port } = Cli::parse();
    let api = SedaApi::start_with(usize::from(validators), port, Some(Arc::new(control))).await;
    api.produce(batches);
    println!("{}", json!({ "url": api.url(), "genesis": batch_json(&api.genesis()) }));
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The controls that only read (GET) and those that act (POST), as `run` knows them.
const READS: &[&str] = &["validators", "requests"];
const ACTIONS: &[&str] = &[
    "produce",
    "produce_unsigned",
    "sign_pending",
    "rotate_keys",
    "set_powers",
    "add_validator",
    "remove_validator",
    "prune_below",
    "num_batches_to_keep",
    "fail_next",
    "malformed_next",
    "slow",
    "tamper_signature",
    "wrong_id",
    "below_threshold",
    "clear_faults",
];

/// The `/control/` routes; anything else outside `/seda-chain/` is the API's 404.
fn control(chain: &SedaChain, request: &Request) -> Option<(u16, Value)> {
    let action = request.path.strip_prefix("/control/")?;
    let wanted = match action {
        _ if READS.contains(&action) => "GET",
        _ if ACTIONS.contains(&action) => "POST",
        _ => return None,
    };
    if request.method != wanted {
        return Some((405, json!({ "error": format!("use {wanted} /control/{action}") })));
    }
    match run(chain, action, &request.query) {
        Ok(value) => Some((200, value)),
        Err(Refused::NoSuchControl) => None,
        Err(Refused::BadArgument(error)) => Some((400, json!({ "error": error }))),
    }
}

enum Refused {
    NoSuchControl,
    BadArgument(String),
}

impl From<String> for Refused {
    fn from(error: String) -> Self {
        Refused::BadArgument(error)
    }
}

/// Runs one control. Arguments are checked here, so that the chain's own checks (which fail a
/// test) never fire in the server.
fn run(chain: &SedaChain, action: &str, query: &BTreeMap<String, String>) -> Result<Value, Refused> {
    let count = chain.next_validators().len();
    let next_set = || json!({ "validators": chain.next_validators() });
    match action {
        "produce" => return Ok(json!({ "produced": chain.produce(arg(query, "n")?) })),
        "produce_unsigned" => return Ok(json!({ "number": chain.produce_unsigned() })),
        "sign_pending" => return Ok(json!({ "signed": chain.sign_pending() })),
        "rotate_keys" => {
            let k: usize = arg(query, "k")?;
            check(k <= count, || format!("k = {k}, but there are {count} validators"))?;
            chain.rotate_keys(k);
            return Ok(next_set());
        }
        "set_powers" => {
            let powers = query.get("powers").ok_or_else(|| "missing powers=p1,p2,…".to_string())?;
            let powers: Vec<u32> =
                powers.split(',').map(|p| parse("powers", p.trim())).collect::<Result<_, _>>()?;
            check(powers.len() == count, || format!("{} powers for {count} validators", powers.len()))?;
            check(powers.iter().any(|&p| p > 0), || "the powers are all zero".to_string())?;
            chain.set_powers(&powers);
            return Ok(next_set());
        }
        "add_validator" => {
            let operator = chain.add_validator(arg(query, "power")?);
            return Ok(json!({ "operator": operator, "validators": chain.next_validators() }));
        }
        "remove_validator" => {
            let index: usize = arg(query, "index")?;
            check(index < count && count > 1, || format!("cannot remove validator {index} of {count}"))?;
            chain.remove_validator(index);
            return Ok(next_set());
        }
        "validators" => return Ok(next_set()),
        "requests" => return Ok(json!(chain.requests())),
        "prune_below" => chain.prune_below(arg(query, "n")?),
        "num_batches_to_keep" => chain.set_num_batches_to_keep(arg(query, "n")?),
        "fail_next" => {
            let status: u16 = arg(query, "status")?;
            check((400..600).contains(&status), || format!("status {status} is not an HTTP error"))?;
            chain.fail_next(arg(query, "k")?, status);
        }
        "malformed_next" => chain.malformed_next(arg(query, "k")?),
        "slow" => chain.slow(Duration::from_millis(arg(query, "ms")?)),
        "tamper_signature" => chain.tamper_signature(arg(query, "n")?),
        "wrong_id" => chain.wrong_id(arg(query, "n")?),
        "below_threshold" => chain.below_threshold(arg(query, "n")?),
        "clear_faults" => chain.clear_faults(),
        _ => return Err(Refused::NoSuchControl),
    }
    Ok(json!({}))
}

fn arg<T: FromStr>(query: &BTreeMap<String, String>, name: &str) -> Result<T, String> {
    parse(name, query.get(name).ok_or_else(|| format!("missing {name}="))?)
}

fn parse<T: FromStr>(name: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{name}: {value:?} is not a number here"))
}

fn check(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why()) }
}
