//! The `redis-stream` sink against real `redis-server`s, through the library: entries and their
//! ids, `MAXLEN ~`, finding what a crash or a lost reply left in the stream (and only that, within
//! the time bound, in one backwards scan), a server stopped and restarted, passwords, the probe.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry::config::{RedisStreamPlan, Secret};
use ferry::engine::sink::redis::{RedisStream, probe};
use ferry::engine::sink::{Message, Outcome, SinkError};
use redis::aio::MultiplexedConnection;

use crate::support::net::RefusingPort;
use crate::support::redis::{RedisConfig, RedisServer};
use crate::support::sink::{acks, messages};

const STREAM: &str = "ferry-items";
const PASSWORD: &str = "s3cret-redis-pass";

fn plan(url: &str) -> RedisStreamPlan {
    RedisStreamPlan {
        url: Secret(url.to_string()),
        stream: STREAM.to_string(),
        maxlen: None,
        password: None,
        timeout: Duration::from_secs(2),
    }
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").as_secs()
}

async fn connect(plan: &RedisStreamPlan) -> RedisStream {
    match RedisStream::connect(plan).await {
        Ok(sink) => sink,
        Err(e) => panic!("the sink connects: {e}"),
    }
}

/// A batch handed over before without a clear answer, as the sink worker hands it over again:
/// first looked for in the stream (back to a minute ago), then what is not there is sent. The
/// acks, in order (`None` for one not delivered this time).
async fn again_as_the_worker_does(sink: &mut RedisStream, batch: &[Message]) -> Vec<Option<String>> {
    let found = sink.recover(batch, now_s().saturating_sub(60)).await.expect("the stream can be searched");
    let missing: Vec<Message> =
        batch.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(m, _)| m.clone()).collect();
    let mut sent = sink.send(&missing).await.into_iter().map(|o| match o {
        Outcome::Delivered { ack } => Some(ack),
        _ => None,
    });
    found.into_iter().map(|f| f.or_else(|| sent.next().flatten())).collect()
}

/// Every entry of the stream, oldest first: (id, fields).
async fn entries(conn: &mut MultiplexedConnection) -> Vec<(String, HashMap<String, String>)> {
    redis::cmd("XRANGE").arg(STREAM).arg("-").arg("+").query_async(conn).await.expect("XRANGE of the stream")
}

/// Key → entry id, and no key twice.
async fn ids_by_key(conn: &mut MultiplexedConnection) -> HashMap<String, String> {
    let all = entries(conn).await;
    let mut ids = HashMap::new();
    for (id, fields) in all {
        let key = fields.get("key").expect("every entry has a key field").clone();
        assert!(ids.insert(key.clone(), id).is_none(), "key {key} is in the stream twice");
    }
    ids
}

async fn xlen(conn: &mut MultiplexedConnection) -> u64 {
    redis::cmd("XLEN").arg(STREAM).query_async(conn).await.expect("XLEN of the stream")
}

/// How often the server ran XREVRANGE so far.
async fn xrevrange_calls(conn: &mut MultiplexedConnection) -> u64 {
    let info: String =
        redis::cmd("INFO").arg("commandstats").query_async(conn).await.expect("INFO commandstats");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_xrevrange:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a call count"))
}

#[tokio::test]
async fn two_hundred_messages_become_two_hundred_entries_acked_by_their_ids() {
    let server = RedisServer::start().await;
    let mut sink = connect(&plan(&server.url())).await;
    let batch = messages("a", 200);

    let acks = acks(&sink.send(&batch).await);

    let mut conn = server.connection().await;
    let stored = entries(&mut conn).await;
    assert_eq!(stored.len(), 200);
    for ((message, ack), (id, fields)) in batch.iter().zip(&acks).zip(&stored) {
        assert_eq!(ack, id, "the ack is the entry id");
        assert_eq!(fields.get("key"), Some(&message.key));
        assert_eq!(fields.get("source"), Some(&message.source));
        assert_eq!(fields.get("event"), Some(&message.event));
        assert_eq!(fields.get("body"), Some(&message.body));
    }
}

#[tokio::test]
async fn maxlen_trims_the_stream_to_about_its_length() {
    let server = RedisServer::start().await;
    let mut sink = connect(&RedisStreamPlan { maxlen: Some(100), ..plan(&server.url()) }).await;
    for round in 0..10 {
        acks(&sink.send(&messages(&format!("r{round}"), 100)).await);
    }
    let len = xlen(&mut server.connection().await).await;
    // `~` trims whole nodes of the stream (100 entries each by default), never below the limit.
    assert!((100..200).contains(&len), "1000 entries trimmed with MAXLEN ~ 100 left {len}");
}

#[tokio::test]
async fn recover_finds_what_a_crash_left_in_the_stream_and_nothing_else() {
    let server = RedisServer::start().await;
    let plan = plan(&server.url());
    let since = now_s();
    let landed = messages("landed", 30);
    {
        // The crash: XADD done, its outcome never written.
        let mut sink = connect(&plan).await;
        let _ = sink.send(&landed).await;
    }
    let never_sent = messages("never", 30);
    let asked: Vec<Message> =
        landed.iter().zip(&never_sent).flat_map(|(a, b)| [a.clone(), b.clone()]).collect();

    let mut sink = connect(&plan).await;
    let found = sink.recover(&asked, since).await.expect("recover reads the stream");

    let ids = ids_by_key(&mut server.connection().await).await;
    assert_eq!(found.len(), asked.len());
    for (message, found) in asked.iter().zip(found) {
        assert_eq!(found.as_ref(), ids.get(&message.key), "{}", message.key);
    }
    assert_eq!(ids.len(), 30);
}

#[tokio::test]
async fn recover_looks_back_no_further_than_its_time_bound() {
    let server = RedisServer::start().await;
    let mut conn = server.connection().await;
    // Keys are unique per delivery, so a wanted key cannot sit before the bound in real use: this
    // entry, written with an id from 10 minutes ago, stands in for the older part of a long
    // stream that the search must not read. It holds a wanted key only to show whether the scan
    // reached it.
    let old_id = format!("{}-0", (now_s() - 600) * 1000);
    let old = messages("old", 1).remove(0);
    let _: String = redis::cmd("XADD")
        .arg(STREAM)
        .arg(&old_id)
        .arg("key")
        .arg(&old.key)
        .arg("body")
        .arg(&old.body)
        .query_async(&mut conn)
        .await
        .expect("XADD with an old id");
    let mut sink = connect(&plan(&server.url())).await;
    let new = messages("new", 1);
    let new_id = acks(&sink.send(&new).await).remove(0);
    let both = [old, new[0].clone()];

    // `sending` written a minute ago: the search goes back two minutes (one for clock skew).
    let found = sink.recover(&both, now_s() - 60).await.expect("recover reads the stream");
    assert_eq!(found, vec![None, Some(new_id.clone())], "the entry from 10 minutes ago is past the bound");

    let found = sink.recover(&both, now_s() - 20 * 60).await.expect("recover reads the stream");
    assert_eq!(found, vec![Some(old_id), Some(new_id)], "within a bound of 20 minutes it is found");
}

#[tokio::test]
async fn recover_of_500_keys_is_one_backwards_scan_that_stops_when_all_are_found() {
    let server = RedisServer::start().await;
    let mut conn = server.connection().await;
    let mut sink = connect(&plan(&server.url())).await;
    let since = now_s();
    let all = messages("many", 3000);
    for chunk in all.chunks(500) {
        acks(&sink.send(chunk).await);
    }
    let ids = ids_by_key(&mut conn).await;

    // The last 500 sent are in the newest page: one XREVRANGE finds them all.
    let newest = &all[2500..];
    let before = xrevrange_calls(&mut conn).await;
    let found = sink.recover(newest, since).await.expect("recover reads the stream");
    assert_eq!(xrevrange_calls(&mut conn).await - before, 1, "one page of 1000 entries");
    for (message, found) in newest.iter().zip(found) {
        assert_eq!(found.as_ref(), ids.get(&message.key));
    }

    // One key is not there: the scan reads back to the bound (3 full pages, then an empty one).
    let mut asked = all[..499].to_vec();
    asked.push(messages("absent", 1).remove(0));
    let before = xrevrange_calls(&mut conn).await;
    let found = sink.recover(&asked, since).await.expect("recover reads the stream");
    assert_eq!(xrevrange_calls(&mut conn).await - before, 4);
    assert_eq!(found.iter().filter(|f| f.is_some()).count(), 499);
    assert_eq!(found[499], None);
}

#[tokio::test]
async fn an_xadd_whose_reply_was_lost_is_found_and_not_added_twice() {
    let server = RedisServer::start().await;
    let mut sink =
        connect(&RedisStreamPlan { timeout: Duration::from_millis(300), ..plan(&server.url()) }).await;
    let batch = messages("slow", 50);

    // A script busy for 1.5 s holds the server: the XADDs wait behind it past the sink's timeout,
    // and run when it ends.
    let mut side = redis::Client::open(server.url())
        .expect("a client")
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("a connection that waits for the script");
    let busy = tokio::spawn(async move {
        let script = "local t0 = redis.call('TIME') local s0 = t0[1] * 1000000 + t0[2] \
                      repeat local t = redis.call('TIME') until t[1] * 1000000 + t[2] - s0 > 1500000 return 1";
        let _: i64 =
            redis::cmd("EVAL").arg(script).arg(0).query_async(&mut side).await.expect("the busy script");
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcomes = sink.send(&batch).await;
    for outcome in &outcomes {
        assert!(matches!(outcome, Outcome::Retry { .. }), "no reply within 300 ms is a retry: {outcome:?}");
    }
    busy.await.expect("the busy script ends");

    let mut conn = server.connection().await;
    assert_eq!(xlen(&mut conn).await, 50, "the XADDs ran once the script ended");
    // What the worker does with a delivery handed over before: look first, send what is not there.
    let again: Vec<String> = again_as_the_worker_does(&mut sink, &batch)
        .await
        .into_iter()
        .map(|a| a.expect("delivered, found or added"))
        .collect();
    let ids = ids_by_key(&mut conn).await;
    assert_eq!(ids.len(), 50, "sent again, nothing was added twice");
    for (message, ack) in batch.iter().zip(again) {
        assert_eq!(Some(&ack), ids.get(&message.key), "the ack is the entry the lost reply was for");
    }
}

#[tokio::test]
async fn a_stopped_server_means_retry_and_after_its_restart_the_batch_goes_through() {
    let mut server = RedisServer::start_persistent().await;
    let mut sink = connect(&plan(&server.url())).await;
    let first = messages("first", 100);
    let first_acks = acks(&sink.send(&first).await);

    server.stop();
    let second = messages("second", 100);
    for outcome in sink.send(&second).await {
        match outcome {
            Outcome::Retry { reason, .. } => assert!(reason.contains(&server.url()), "{reason}"),
            other => panic!("a stopped server is a retry, got {other:?}"),
        }
    }
    server.restart().await;
    let second_acks = acks(&sink.send(&second).await);

    let ids = ids_by_key(&mut server.connection().await).await;
    assert_eq!(ids.len(), 200);
    for (message, ack) in first.iter().zip(&first_acks).chain(second.iter().zip(&second_acks)) {
        assert_eq!(Some(ack), ids.get(&message.key), "{}", message.key);
    }
}

#[tokio::test]
async fn a_server_killed_mid_batch_leaves_every_message_once_after_the_retries() {
    let mut server = RedisServer::start_persistent().await;
    let mut sink = connect(&plan(&server.url())).await;
    let batch = messages("mid", 2000);

    // The kill lands while the 2000 XADDs are in flight: some are answered, some applied without
    // an answer, some never reach the server.
    let (outcomes, ()) = tokio::join!(sink.send(&batch), async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        server.stop();
    });
    server.restart().await;

    let mut acks: Vec<Option<String>> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Delivered { ack } => Some(ack.clone()),
            Outcome::Retry { .. } => None,
            Outcome::Failed { reason } => panic!("nothing fails for good here: {reason}"),
        })
        .collect();
    let delivered_before_the_kill = acks.iter().flatten().count();
    for _attempt in 0..5 {
        let pending: Vec<usize> = (0..batch.len()).filter(|&i| acks[i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        let again: Vec<Message> = pending.iter().map(|&i| batch[i].clone()).collect();
        for (&i, ack) in pending.iter().zip(again_as_the_worker_does(&mut sink, &again).await) {
            acks[i] = ack;
        }
    }

    let ids = ids_by_key(&mut server.connection().await).await;
    assert_eq!(ids.len(), 2000, "every message once ({delivered_before_the_kill} answered before the kill)");
    for (message, ack) in batch.iter().zip(&acks) {
        assert_eq!(ack.as_ref(), ids.get(&message.key), "{}", message.key);
    }
}

#[tokio::test]
async fn a_password_from_the_plan_or_the_url_opens_the_stream_and_never_shows() {
    let server =
        RedisServer::start_with(RedisConfig { password: Some(PASSWORD.into()), ..RedisConfig::default() })
            .await;

    let with_env = RedisStreamPlan { password: Some(Secret(PASSWORD.into())), ..plan(&server.url()) };
    acks(&connect(&with_env).await.send(&messages("env", 5)).await);
    let in_url = plan(&format!("redis://:{PASSWORD}@127.0.0.1:{}", server.port()));
    acks(&connect(&in_url).await.send(&messages("url", 5)).await);
    assert_eq!(xlen(&mut server.connection().await).await, 10);

    let wrong = "wrong-redis-pass";
    for bad in [
        RedisStreamPlan { password: Some(Secret(wrong.into())), ..plan(&server.url()) },
        plan(&format!("redis://:{wrong}@127.0.0.1:{}", server.port())),
    ] {
        let err = RedisStream::connect(&bad).await.err().expect("a wrong password is refused");
        let probed = probe(&bad).await.expect_err("the probe is refused too");
        for text in [err.to_string(), format!("{err:?}"), probed.to_string()] {
            assert!(!text.contains(wrong) && !text.contains(PASSWORD), "a password shows in {text}");
        }
        assert!(matches!(err, SinkError::Config(_)), "a wrong password is the config's fault: {err}");
    }

    let none = probe(&plan(&server.url())).await.expect_err("no password, no stream");
    assert!(matches!(&none, SinkError::Config(m) if m.contains("NOAUTH")), "{none}");
}

#[tokio::test]
async fn probe_says_pong_and_what_the_stream_holds() {
    let server = RedisServer::start().await;
    let plan = plan(&server.url());
    assert_eq!(
        probe(&plan).await.expect("the probe reaches redis"),
        "PONG; stream ferry-items does not exist yet (XADD creates it)"
    );
    acks(&connect(&plan).await.send(&messages("p", 12)).await);
    assert_eq!(probe(&plan).await.expect("the probe reaches redis"), "PONG; stream ferry-items: 12 entries");

    // A key of another type: XADD fails for good and the probe says why.
    let mut conn = server.connection().await;
    let _: () = redis::cmd("SET").arg("not-a-stream").arg("x").query_async(&mut conn).await.expect("SET");
    let wrong_type = RedisStreamPlan { stream: "not-a-stream".into(), ..plan.clone() };
    let err = probe(&wrong_type).await.expect_err("a string is no stream");
    assert!(matches!(&err, SinkError::Config(m) if m.contains("not a stream")), "{err}");
    for outcome in connect(&wrong_type).await.send(&messages("w", 2)).await {
        assert!(
            matches!(&outcome, Outcome::Failed { reason } if reason.contains("WRONGTYPE")),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_with_the_url_masked() {
    let refusing = RefusingPort::bind();
    let url = format!("redis://:{PASSWORD}@{}", refusing.addr());
    for err in [
        probe(&plan(&url)).await.expect_err("nothing listens"),
        RedisStream::connect(&plan(&url)).await.err().expect("nothing listens"),
    ] {
        let text = err.to_string();
        assert!(matches!(err, SinkError::Unavailable(_)), "{text}");
        assert!(text.contains(&format!("redis://:***@{}", refusing.addr())), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[tokio::test]
async fn a_tls_url_to_a_plain_server_fails_without_a_panic() {
    // `rediss://` builds a rustls config: with two crypto providers linked in, that needs the one
    // the sink installs; the handshake with a server that speaks no TLS then fails.
    let server = RedisServer::start().await;
    let plan = RedisStreamPlan {
        timeout: Duration::from_secs(1),
        ..plan(&format!("rediss://127.0.0.1:{}", server.port()))
    };
    let err = probe(&plan).await.expect_err("no TLS there");
    assert!(matches!(err, SinkError::Unavailable(_) | SinkError::Config(_)), "{err}");
    assert!(RedisStream::connect(&plan).await.is_err());
    // Nothing was written, and the server still serves.
    assert_eq!(xlen(&mut server.connection().await).await, 0);
}
