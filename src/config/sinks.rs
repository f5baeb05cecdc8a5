//! The rules of the sink kinds (`webhook`, `jsonl`, `redis-stream`, `nats-jetstream`,
//! `gcp-pubsub`): each target checked with its keys named, and resolved into a [`SinkPlan`].

use std::path::Path;

use super::load::Reader;
use super::resolve::*;
use super::types::*;
use super::validate::{check_env_set, check_url};

/// Checks one sink target; `None` when it is not one (or is broken: the errors are in `r`).
pub(super) fn check_sink(
    r: &mut Reader<'_>,
    path: &str,
    target: &Target,
    base_dir: &Path,
) -> Option<SinkPlan> {
    let errors = r.error_count();
    let secret_from = |r: &mut Reader<'_>, key: &str, var: &Option<String>| -> Option<Secret> {
        let var = var.as_ref()?;
        check_env_set(r, key, var).then(|| r.env(var)).flatten().map(Secret)
    };
    let positive = |r: &mut Reader<'_>, key: &str, timeout: &super::values::Duration| {
        if timeout.0.is_zero() {
            r.error(key, "must be longer than 0", None);
        }
    };
    let attempts = |r: &mut Reader<'_>, key: &str, n: Option<u32>| match n {
        Some(0) => {
            r.error(key, "`max_attempts: 0` would never send", Some("1 or more (default 10)".into()));
            DEFAULT_SINK_ATTEMPTS
        }
        Some(n) => n,
        None => DEFAULT_SINK_ATTEMPTS,
    };
    let plan = match target {
        Target::Webhook(t) => {
            check_url(r, &format!("{path}.url"), &t.url, &["http", "https"]);
            let secret = secret_from(r, &format!("{path}.secret_env"), &t.secret_env);
            positive(r, &format!("{path}.timeout"), &t.timeout);
            for name in t.headers.keys() {
                let reserved = ["content-type", "idempotency-key", "x-ferry-timestamp", "x-ferry-signature"];
                if reserved.contains(&name.to_ascii_lowercase().as_str()) {
                    r.error(&format!("{path}.headers.{name}"), format!("`{name}` is set by ferry"), None);
                } else if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    r.error(
                        &format!("{path}.headers.{name}"),
                        format!("`{name}` is not a valid header name"),
                        None,
                    );
                }
            }
            for (name, value) in &t.headers {
                if reqwest::header::HeaderValue::from_str(value).is_err() {
                    r.error(&format!("{path}.headers.{name}"), "not a valid header value", None);
                }
            }
            let concurrency = match t.concurrency {
                Some(0) => {
                    r.error(&format!("{path}.concurrency"), "must be 1 or more", None);
                    1
                }
                Some(n) => n,
                None => DEFAULT_SINK_CONCURRENCY,
            };
            if t.ordered && t.concurrency.is_some_and(|n| n > 1) {
                r.error(
                    &format!("{path}.ordered"),
                    "`ordered: true` sends one request at a time; `concurrency` above 1 contradicts it",
                    Some("remove `concurrency`".into()),
                );
            }
            SinkPlan {
                kind: SinkKind::Webhook(WebhookPlan {
                    url: t.url.clone(),
                    secret,
                    headers: t.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    timeout: t.timeout.0,
                }),
                max_attempts: attempts(r, &format!("{path}.max_attempts"), t.max_attempts),
                concurrency: if t.ordered { 1 } else { concurrency },
                ordered: t.ordered,
            }
        }
        Target::Jsonl(t) => {
            let path_key = format!("{path}.path");
            let file = if t.path.as_os_str().is_empty() {
                r.error(&path_key, "empty path", Some("a file path, or `-` for stdout".into()));
                None
            } else if t.path.as_os_str() == "-" {
                None
            } else {
                Some(base_dir.join(&t.path))
            };
            SinkPlan {
                kind: SinkKind::Jsonl(JsonlPlan { path: file }),
                max_attempts: DEFAULT_SINK_ATTEMPTS,
                concurrency: 1,
                ordered: true,
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
            positive(r, &format!("{path}.timeout"), &t.timeout);
            let password = secret_from(r, &format!("{path}.password_env"), &t.password_env);
            SinkPlan {
                kind: SinkKind::RedisStream(RedisStreamPlan {
                    url: Secret(t.url.clone()),
                    stream: t.stream.clone(),
                    maxlen: t.maxlen,
                    password,
                    timeout: t.timeout.0,
                }),
                max_attempts: DEFAULT_SINK_ATTEMPTS,
                concurrency: 1,
                ordered: false,
            }
        }
        Target::NatsJetstream(t) => {
            check_url(r, &format!("{path}.url"), &t.url, &["nats", "tls"]);
            let subject_ok = !t.subject.is_empty()
                && !t.subject.contains(['*', '>', ' '])
                && t.subject.split('.').all(|token| !token.is_empty());
            if !subject_ok {
                r.error(
                    &format!("{path}.subject"),
                    format!("`{}` is not a subject to publish to", t.subject),
                    Some("dot-separated tokens without wildcards or spaces, e.g. `ferry.items`".into()),
                );
            }
            if t.stream.trim().is_empty() || t.stream.contains(['.', '*', '>', ' ']) {
                r.error(&format!("{path}.stream"), format!("`{}` is not a stream name", t.stream), None);
            }
            positive(r, &format!("{path}.timeout"), &t.timeout);
            let token = secret_from(r, &format!("{path}.token_env"), &t.token_env);
            SinkPlan {
                kind: SinkKind::NatsJetstream(NatsPlan {
                    url: Secret(t.url.clone()),
                    subject: t.subject.clone(),
                    stream: t.stream.clone(),
                    token,
                    timeout: t.timeout.0,
                }),
                max_attempts: DEFAULT_SINK_ATTEMPTS,
                concurrency: 1,
                ordered: false,
            }
        }
        Target::GcpPubsub(t) => {
            let id_ok = |s: &str| !s.is_empty() && !s.contains(['/', ' ']);
            if !id_ok(&t.project) {
                r.error(&format!("{path}.project"), format!("`{}` is not a project id", t.project), None);
            }
            if !id_ok(&t.topic) {
                r.error(
                    &format!("{path}.topic"),
                    format!("`{}` is not a topic name", t.topic),
                    Some("the topic's own name, without `projects/…/topics/`".into()),
                );
            }
            positive(r, &format!("{path}.timeout"), &t.timeout);
            let credentials_file = t.credentials_file.as_ref().map(|f| base_dir.join(f));
            if let Some(file) = &credentials_file
                && !file.is_file()
            {
                r.error(
                    &format!("{path}.credentials_file"),
                    format!("no such file: {}", file.display()),
                    Some("a service-account key file (JSON), relative to this config".into()),
                );
            }
            SinkPlan {
                kind: SinkKind::GcpPubsub(PubsubPlan {
                    project: t.project.clone(),
                    topic: t.topic.clone(),
                    credentials_file,
                    ordering_key: t.ordering_key,
                    timeout: t.timeout.0,
                }),
                max_attempts: attempts(r, &format!("{path}.max_attempts"), t.max_attempts),
                concurrency: DEFAULT_SINK_CONCURRENCY,
                ordered: false,
            }
        }
        Target::SedaProver(_) | Target::EvmCall(_) => return None,
    };
    (r.error_count() == errors).then_some(plan)
}
