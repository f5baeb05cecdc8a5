//! [`fetch_range`] and [`final_head`] end to end against the scripted client, counting the calls
//! made.

use super::*;

/// The range, fetched from the scripted chain (whose answers never wait).
fn fetch(plan: &SourcePlan, chain: &Scripted, registry: &Registry, from: u64, to: u64) -> Fetched {
    let state = FetchState { source_id: 1, registry, parent: Some(scripted::hash(from - 1, 0)) };
    let fetching = futures_util::FutureExt::now_or_never(fetch_range(plan, chain, &state, from, to));
    fetching.expect("the scripted client never waits").expect("fetched")
}

#[test]
fn a_range_costs_two_log_queries_whatever_the_number_of_children() {
    let plan = plan(false, 1_000);
    let mut by_children = Vec::new();
    // Children in the registry, and the addresses asked for: 1 + the 2 new ones, then the
    // registry's (which holds the new ones too), none above `max_addresses` (by topic).
    for (n, addresses) in [(1u64, 3), (10, 10), (1_000, 1_000), (1_001, 0), (5_000, 0)] {
        let registry: Registry = (0..n).map(|i| (child(i), 0)).collect();
        // Old blocks, far below the head: headers at the ends only.
        let chain = chain().seen(10_000);
        let fetched = fetch(&plan, &chain, &registry, FROM, TO);
        let calls = chain.calls();
        let queries: Vec<&LogFilter> =
            calls.iter().filter_map(|c| if let Call::Logs(f) = c { Some(f) } else { None }).collect();
        assert_eq!(queries.len(), 2, "{n} children");
        assert_eq!(queries[1].addresses.len(), addresses, "{n} children");
        assert_eq!(chain.count("eth_getBlockByNumber"), 2, "{n} children: the ends");
        assert_eq!(fetched.requests, calls.len() as u64);
        by_children.push(fetched.event_count());
    }
    assert!(by_children.iter().all(|c| *c == by_children[0]), "{by_children:?}");
}

#[tokio::test]
async fn a_lagging_node_is_caught_by_asking_the_block_by_hash() {
    let plan = plan(true, 1_000);
    let registry = registry();
    let chain = chain().logs_up_to(17);
    let state = FetchState { source_id: 1, registry: &registry, parent: Some(scripted::hash(9, 0)) };
    let result = fetch_range(&plan, &chain, &state, FROM, TO).await;
    assert!(matches!(result, Err(FetchError::Incomplete { number: 18 })), "{result:?}");
    let calls = chain.calls();
    let numbers = |calls: &[Call]| -> Vec<u64> {
        calls
            .iter()
            .filter_map(|c| if let Call::Header(BlockId::Number(n)) = c { Some(*n) } else { None })
            .collect()
    };
    // The headers and the statics together, the children, the end again, the one block by hash.
    assert_eq!(numbers(&calls), vec![10, 16, 17, 18, 19, 19]);
    assert!(
        matches!(&calls[calls.len() - 1], Call::LogsAt(f, hash) if f.addresses == vec![emitter(), factory()] && *hash == scripted::hash(18, 0))
    );
    assert_eq!(chain.count("eth_getLogs"), 3);
}

#[tokio::test]
async fn a_failed_check_ends_the_range_before_anything_more_is_asked() {
    let plan = plan(true, 1_000);
    let registry = registry();
    // The node does not have block 19 yet: only the first questions are asked.
    let behind = Scripted::new(FROM, blocks().into_iter().take(9).collect()).seen(TO);
    let state = FetchState { source_id: 1, registry: &registry, parent: Some(scripted::hash(9, 0)) };
    let result = fetch_range(&plan, &behind, &state, FROM, TO).await;
    assert!(matches!(result, Err(FetchError::Missing { number: 19 })), "{result:?}");
    assert_eq!(behind.count("eth_getLogs"), 1, "the statics only: {:?}", behind.calls());
    assert_eq!(behind.count("eth_getBlockByNumber"), 5);

    // A failed request fails the range, and nothing after it is asked.
    let chain = chain().seen(TO);
    let mut too_large = scripted::error(ErrorKind::RangeTooLarge, "eth_getLogs", "too many results");
    too_large.hint = Some(crate::engine::rpc::RangeHint::MaxBlocks(5));
    chain.fail_next("eth_getLogs", too_large);
    let result = fetch_range(&plan, &chain, &state, FROM, TO).await;
    assert!(
        matches!(&result, Err(FetchError::Rpc(e)) if e.kind == ErrorKind::RangeTooLarge && e.hint.is_some()),
        "{result:?}"
    );
    assert_eq!(chain.count("eth_getLogs"), 1);
}

#[tokio::test]
async fn the_final_head_is_the_head_less_confirmations_or_the_tags_block() {
    let mut plan = plan(false, 1_000);
    let chain = chain().tags(Some(15), None);
    plan.finality = Finality::Confirmations(3);
    assert_eq!(final_head(&plan, &chain).await.expect("head"), Some(TO - 3));
    plan.finality = Finality::Confirmations(TO + 1);
    assert_eq!(final_head(&plan, &chain).await.expect("head"), None, "not that many blocks yet");
    plan.finality = Finality::Tag(FinalityTag::Safe);
    assert_eq!(final_head(&plan, &chain).await.expect("head"), Some(15));
    plan.finality = Finality::Tag(FinalityTag::Finalized);
    assert_eq!(final_head(&plan, &chain).await.expect("head"), None, "the node names no finalized block");
    assert_eq!(
        chain.calls(),
        vec![
            Call::BlockNumber,
            Call::BlockNumber,
            Call::Header(BlockId::Safe),
            Call::Header(BlockId::Finalized)
        ]
    );
}

#[test]
fn scripted_headers_link_up() {
    let chain = chain();
    let h: Vec<Header> = (FROM..=TO).map(|n| chain.header_at(n).expect("header")).collect();
    assert!(h.windows(2).all(|w| w[1].parent_hash == w[0].hash));
}
