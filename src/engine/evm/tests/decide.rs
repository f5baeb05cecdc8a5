//! [`decide`] table-driven, without a client: each case answers the questions from a scripted
//! chain, changes an answer the way a lagging, reorging or lying node would, and checks what was
//! asked and what was concluded.

use super::*;

/// How a case changes the chain's answer to one question.
type Tamper = fn(&Ask, &mut Gathered);

fn honest(_: &Ask, _: &mut Gathered) {}

/// Runs [`decide`] to its conclusion for `from..=to`, answering each question from `chain` as
/// a node would, then through `tamper`. Returns the questions asked and the conclusion.
fn run(
    plan: &SourcePlan,
    state: &FetchState<'_>,
    (from, to): (u64, u64),
    chain: &Scripted,
    tamper: Tamper,
) -> (Vec<Ask>, Result<Fetched, FetchError>) {
    let mut asked = Vec::new();
    let mut gathered = Gathered { highest_seen: TO, ..Gathered::default() };
    loop {
        let (ask, mut g) = match decide(plan, state, from, to, gathered) {
            Step::Done(result) => return (asked, result),
            Step::Ask(ask, g) => (ask, g),
        };
        match &ask {
            Ask::Start { headers, statics } => {
                g.headers.extend(headers.iter().map(|n| (*n, chain.header_at(*n))));
                if let Some(filter) = statics {
                    g.statics = Some(chain.range_answer(filter));
                }
            }
            Ask::Children(filter) => g.children = Some((filter.clone(), chain.range_answer(filter))),
            Ask::EndAgain(n) => g.end_again = Some(chain.header_at(*n).map(|h| h.hash)),
            Ask::Recheck(blocks) => {
                for (query, filter, hash) in blocks {
                    let logs = chain.hash_answer(filter, *hash).expect("the block is there");
                    g.rechecks.insert((*query, *hash), logs);
                }
            }
        }
        tamper(&ask, &mut g);
        asked.push(ask);
        gathered = g;
        assert!(asked.len() <= 4, "decide keeps asking: {asked:?}");
    }
}

/// What a case expects: the kinds of questions, in order, and the conclusion.
struct Case {
    name: &'static str,
    tip: bool,
    max_addresses: usize,
    /// The stored hash of block `from − 1`.
    parent: Option<B256>,
    range: (u64, u64),
    /// Range queries see blocks up to this one (a lagging node).
    logs_up_to: Option<u64>,
    /// Child 0 is in the registry.
    known: bool,
    /// The chain's blocks from 10.
    blocks: fn() -> Vec<Vec<Emit>>,
    tamper: Tamper,
    asks: &'static [&'static str],
    outcome: Outcome,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// The blocks of the kept events in order, the new children, requests, rechecks.
    Fetched {
        events: Vec<(u64, Address)>,
        children: Vec<Address>,
        requests: u64,
        rechecked: u64,
    },
    Failed(String),
}

fn kind(ask: &Ask) -> &'static str {
    match ask {
        Ask::Start { .. } => "start",
        Ask::Children(f) if f.addresses.is_empty() => "children by topic",
        Ask::Children(_) => "children by address",
        Ask::EndAgain(_) => "end again",
        Ask::Recheck(_) => "recheck",
    }
}

/// The events of the honest chain's range 10..=19 that a source keeps: everything of the
/// emitter and the factory, the children's `Approved` (the stranger's is not kept).
fn all_events() -> Vec<(u64, Address)> {
    vec![
        (10, emitter()),
        (11, factory()),
        (11, child(1)),
        (13, child(0)),
        (13, factory()),
        (13, factory()),
        (14, emitter()),
        (15, factory()),
        (16, child(2)),
        (17, emitter()),
        (17, emitter()),
        (18, emitter()),
    ]
}

fn sorted(mut events: Vec<(u64, Address)>) -> Vec<(u64, Address)> {
    events.sort();
    events
}

fn fetched(events: Vec<(u64, Address)>, requests: u64, rechecked: u64) -> Outcome {
    Outcome::Fetched { events: sorted(events), children: vec![child(1), child(2)], requests, rechecked }
}

/// The honest range 10..=19, not at the tip.
fn base() -> Case {
    Case {
        name: "",
        tip: false,
        max_addresses: 1_000,
        parent: Some(scripted::hash(FROM - 1, 0)),
        range: (FROM, TO),
        logs_up_to: None,
        known: true,
        blocks,
        tamper: honest,
        asks: &["start", "children by address"],
        // Headers 10 and 16..=19 (the window of 4 below the head 19), the statics, the children.
        outcome: fetched(all_events(), 5 + 2, 0),
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "headers linked: children new and known, a child's event in its creation block",
            ..base()
        },
        Case {
            name: "more children than max_addresses: asked by topic, the stranger's event dropped",
            max_addresses: 2,
            asks: &["start", "children by topic"],
            ..base()
        },
        Case {
            name: "by topic, the last log of the children's answer is a stranger's: no doubt above it",
            max_addresses: 2,
            blocks: || {
                let mut blocks = blocks();
                blocks[8].push(approve(stranger()));
                blocks
            },
            asks: &["start", "children by topic"],
            ..base()
        },
        Case {
            name: "a header missing: the node's head went back",
            tamper: |ask, g| {
                if matches!(ask, Ask::Start { .. }) {
                    g.headers.insert(17, None);
                }
            },
            asks: &["start"],
            outcome: Outcome::Failed("Missing { number: 17 }".into()),
            ..base()
        },
        Case {
            name: "a header of another number",
            tamper: |ask, g| {
                if matches!(ask, Ask::Start { .. }) {
                    g.headers.insert(17, Some(scripted::header(16, 0, &[])));
                }
            },
            asks: &["start"],
            outcome: Outcome::Failed("Unstable { from: 10, to: 19 }".into()),
            ..base()
        },
        Case {
            name: "headers not linked: a block of another branch among them",
            tamper: |ask, g| {
                if matches!(ask, Ask::Start { .. }) {
                    g.headers.insert(17, Some(scripted::header(17, 1, &[])));
                }
            },
            asks: &["start"],
            outcome: Outcome::Failed("Unstable { from: 10, to: 19 }".into()),
            ..base()
        },
        Case {
            name: "old blocks between the ends are not linked: only the ends' headers are read",
            range: (10, 14),
            tamper: |ask, g| {
                if matches!(ask, Ask::Start { .. }) {
                    g.headers.insert(14, Some(scripted::header(14, 1, &[])));
                }
            },
            // Block 14's logs carry the hash of the chain's block 14, not of the header held.
            outcome: Outcome::Failed("Unstable { from: 10, to: 14 }".into()),
            ..base()
        },
        Case {
            name: "the stored parent is not the first block's parent: a reorg",
            parent: Some(scripted::hash(FROM - 1, 1)),
            asks: &["start"],
            outcome: Outcome::Failed(format!(
                "Reorg {{ number: 10, stored: {:?}, found: {:?} }}",
                scripted::hash(FROM - 1, 1),
                scripted::hash(FROM - 1, 0)
            )),
            ..base()
        },
        Case { name: "no stored parent: the first range of a source", parent: None, ..base() },
        Case {
            name: "tip: the end is read again after the logs, unchanged",
            tip: true,
            asks: &["start", "children by address", "end again"],
            outcome: fetched(all_events(), 5 + 2 + 1, 0),
            ..base()
        },
        Case {
            name: "tip: the end changed while the logs were read",
            tip: true,
            tamper: |ask, g| {
                if matches!(ask, Ask::EndAgain(_)) {
                    g.end_again = Some(Some(scripted::hash(TO, 1)));
                }
            },
            asks: &["start", "children by address", "end again"],
            outcome: Outcome::Failed("Unstable { from: 10, to: 19 }".into()),
            ..base()
        },
        Case {
            name: "tip: the end is gone when read again",
            tip: true,
            tamper: |ask, g| {
                if matches!(ask, Ask::EndAgain(_)) {
                    g.end_again = Some(None);
                }
            },
            asks: &["start", "children by address", "end again"],
            outcome: Outcome::Failed("Unstable { from: 10, to: 19 }".into()),
            ..base()
        },
        Case {
            name: "a log that is not of the block whose header is held",
            tamper: |ask, g| {
                if let (Ask::Start { .. }, Some(logs)) = (ask, &mut g.statics)
                    && let Some(log) = logs.iter_mut().find(|l| l.block_number.to::<u64>() == 18)
                {
                    log.block_hash = scripted::hash(18, 1);
                }
            },
            outcome: Outcome::Failed("Unstable { from: 10, to: 19 }".into()),
            ..base()
        },
        Case {
            name: "a child's log that is not of the block whose header is held",
            tamper: |ask, g| {
                if let (Ask::Children(_), Some((_, logs))) = (ask, &mut g.children) {
                    for log in logs.iter_mut().filter(|l| l.block_number.to::<u64>() == 16) {
                        log.block_hash = scripted::hash(16, 1);
                    }
                }
            },
            outcome: Outcome::Failed("Unstable { from: 10, to: 19 }".into()),
            ..base()
        },
        Case {
            name: "a node lacking the tail: the bloom says maybe, by hash there are logs",
            logs_up_to: Some(17),
            asks: &["start", "children by address", "recheck"],
            outcome: Outcome::Failed("Incomplete { number: 18 }".into()),
            ..base()
        },
        Case {
            name: "a node lacking the tail of the children's logs",
            logs_up_to: Some(15),
            asks: &["start", "children by address", "recheck"],
            // The children's tail above 13 holds block 16's approval, first of the doubts in order.
            outcome: Outcome::Failed("Incomplete { number: 16 }".into()),
            ..base()
        },
        Case {
            name: "blooms that may match above the last log, nothing there by hash",
            tamper: |ask, g| {
                if matches!(ask, Ask::Start { .. })
                    && let Some(Some(h)) = g.headers.get_mut(&19)
                {
                    h.logs_bloom = Bloom::repeat_byte(0xff);
                }
            },
            asks: &["start", "children by address", "recheck"],
            // Block 19 under both filters: two more requests.
            outcome: fetched(all_events(), 5 + 2 + 2, 2),
            ..base()
        },
        Case {
            name: "removed logs are not kept",
            tamper: |ask, g| {
                if let (Ask::Start { .. }, Some(logs)) = (ask, &mut g.statics) {
                    for log in logs.iter_mut().filter(|l| l.block_number.to::<u64>() == 14) {
                        log.removed = true;
                    }
                }
            },
            outcome: fetched(all_events().into_iter().filter(|e| *e != (14, emitter())).collect(), 7, 0),
            ..base()
        },
        Case {
            name: "no children yet and none announced: no children's query",
            range: (17, 19),
            parent: Some(scripted::hash(16, 0)),
            known: false,
            asks: &["start"],
            outcome: Outcome::Fetched {
                events: sorted(vec![(17, emitter()), (17, emitter()), (18, emitter())]),
                children: vec![],
                requests: 3 + 1,
                rechecked: 0,
            },
            ..base()
        },
    ]
}

#[test]
fn decide_concludes_as_each_case_expects() {
    let mut failures = Vec::new();
    for case in cases() {
        let plan = plan(case.tip, case.max_addresses);
        let registry = if case.known { registry() } else { Registry::new() };
        let state = FetchState { source_id: 1, registry: &registry, parent: case.parent };
        let mut chain = Scripted::new(FROM, (case.blocks)());
        if let Some(n) = case.logs_up_to {
            chain = chain.logs_up_to(n);
        }
        let (asked, result) = run(&plan, &state, case.range, &chain, case.tamper);
        let asks: Vec<&str> = asked.iter().map(kind).collect();
        let outcome = match result {
            Ok(f) => Outcome::Fetched {
                events: sorted(f.logs.iter().map(|(l, _)| (l.block_number.to(), l.address)).collect()),
                children: f.new_children.iter().map(|c| c.0).collect(),
                requests: f.requests,
                rechecked: f.rechecked,
            },
            Err(e) => Outcome::Failed(format!("{e:?}")),
        };
        if asks != case.asks || outcome != case.outcome {
            failures.push(format!(
                "{}:\n  asked {asks:?}, expected {:?}\n  got      {outcome:?}\n  expected {:?}",
                case.name, case.asks, case.outcome
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The honest range 10..=19, fetched.
fn honest_range(tip: bool) -> Fetched {
    let (plan, registry) = (plan(tip, 1_000), registry());
    let state = FetchState { source_id: 1, registry: &registry, parent: Some(scripted::hash(9, 0)) };
    run(&plan, &state, (FROM, TO), &chain(), honest).1.expect("fetched")
}

#[test]
fn children_are_asked_for_by_sorted_address_and_recorded_where_they_were_created() {
    let (plan, registry) = (plan(false, 1_000), registry());
    let state = FetchState { source_id: 1, registry: &registry, parent: None };
    let (asked, result) = run(&plan, &state, (FROM, TO), &chain(), honest);
    let mut addresses = vec![child(0), child(1), child(2)];
    addresses.sort();
    assert_eq!(
        asked[1],
        Ask::Children(LogFilter { from: FROM, to: TO, addresses, topic0: vec![topic(APPROVED)] })
    );
    let write = result.expect("fetched").write;
    let created: Vec<(Address, Option<Address>, u64, u32)> = write
        .contracts
        .iter()
        .map(|(k, c)| {
            let at = c.created_at.expect("created at");
            (k.address, c.factory, at.block, at.log_index)
        })
        .collect();
    assert_eq!(created, vec![(child(1), Some(factory()), 11, 0), (child(2), Some(factory()), 15, 0)]);
    // Each child log carries its factory's index; the statics none.
    let f = honest_range(false);
    for (log, factory) in &f.logs {
        assert_eq!(factory.is_some(), log.topics.first() == Some(&topic(APPROVED)), "{log:?}");
    }
}

#[test]
fn the_write_keeps_the_hash_window_and_the_end() {
    let f = honest_range(false);
    assert_eq!(f.write.last_hash, scripted::hash(TO, 0));
    assert_eq!((f.write.from, f.write.to, f.write.keep_hashes_from), (FROM, TO, FROM - 1));
    let numbers: Vec<u64> = f.write.hashes.iter().map(|h| h.0).collect();
    assert_eq!(numbers, vec![10, 16, 17, 18, 19], "the headers read");
    assert!(
        f.write
            .hashes
            .iter()
            .all(|(n, h)| h.hash == scripted::hash(*n, 0) && h.parent == scripted::hash(n - 1, 0))
    );
    // Under `confirmations: 0`, blocks with logs outside the window get their hash, parent unknown.
    let f = honest_range(true);
    let numbers: Vec<u64> = f.write.hashes.iter().map(|h| h.0).collect();
    assert_eq!(numbers, vec![10, 11, 13, 14, 15, 16, 17, 18, 19]);
    let (_, outside) = f.write.hashes.iter().find(|h| h.0 == 13).expect("block 13");
    assert_eq!((outside.hash, outside.parent), (scripted::hash(13, 0), B256::ZERO));
}

#[test]
fn events_are_decoded_where_declared_and_kept_raw_otherwise() {
    let plan = plan(false, 1_000);
    let f = honest_range(false);
    assert_eq!(f.returned, 9 + 3, "the statics' 9 logs and the children's 3");
    let write = f.into_write(&plan);
    let at = |block: u64, index: u32| {
        &write.events.iter().find(|(k, _)| (k.block, k.log_index) == (block, index)).expect("event").1
    };
    let approved = at(11, 1);
    assert_eq!(approved.name.as_deref(), Some("Approved"));
    assert!(approved.fields.as_deref().is_some_and(|f| f.contains("\"by\"")), "{approved:?}");
    let ping = at(18, 0);
    assert_eq!(ping.name.as_deref(), Some("Ping"));
    assert_eq!(ping.fields.as_deref(), Some(r#"{"seq":"3"}"#));
    // An event the source does not declare: kept raw, no error.
    let other = at(17, 0);
    assert_eq!(
        (other.name.as_deref(), other.fields.as_deref(), other.decode_error.is_some()),
        (None, None, false)
    );
    assert_eq!(other.data.len(), 32);
    // A declared event that does not decode: kept raw, with the reason.
    let broken = at(17, 1);
    assert_eq!(broken.name.as_deref(), Some("Ping"));
    assert!(broken.fields.is_none() && broken.decode_error.is_some(), "{broken:?}");
    // Only decoded events are delivered.
    let decoded = write.events.iter().filter(|(_, e)| e.fields.is_some()).count();
    assert_eq!(write.events.len(), 12);
    assert_eq!(write.deliveries.len(), decoded);
    assert_eq!(decoded, 10);
}
