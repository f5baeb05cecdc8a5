//! The rules of `health:` and of each source's `max_lag`: durations longer than 0, a metrics
//! address that is `host:port`, resolved into a [`HealthPlan`].

use std::collections::BTreeMap;

use super::load::Reader;
use super::resolve::HealthPlan;
use super::types::{Config, Source};
use super::values::Duration;

/// Checks `health:` and every source's `max_lag`.
pub(super) fn check_health(r: &mut Reader<'_>, config: &Config) -> HealthPlan {
    let h = &config.health;
    let positive = |r: &mut Reader<'_>, key: &str, d: &Duration| {
        if d.0.is_zero() {
            r.error(key, "must be longer than 0", None);
        }
    };
    positive(r, "health.status_interval", &h.status_interval);
    positive(r, "health.max_lag", &h.max_lag);
    positive(r, "health.stuck_after", &h.stuck_after);
    let metrics_addr = h.metrics_addr.as_deref().and_then(|text| match parse_addr(text) {
        Ok(addr) => Some(addr),
        Err(e) => {
            r.error("health.metrics_addr", e, Some("an address and a port, e.g. `127.0.0.1:9187`".into()));
            None
        }
    });
    let mut lag_budgets = BTreeMap::new();
    for (name, source) in &config.sources {
        let max_lag = match source {
            Source::Evm(s) => s.max_lag,
            Source::Seda(s) => s.max_lag,
        };
        if let Some(max_lag) = max_lag {
            positive(r, &format!("sources.{name}.max_lag"), &max_lag);
            lag_budgets.insert(name.clone(), max_lag.0);
        }
    }
    HealthPlan {
        metrics_addr,
        status_interval: h.status_interval.0,
        stuck_after: h.stuck_after.0,
        max_lag: h.max_lag.0,
        lag_budgets,
    }
}

/// `host:port` with an IP address (`127.0.0.1:9187`, `[::1]:9187`, `0.0.0.0:9187`).
pub fn parse_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    text.trim().parse().map_err(|_| format!("`{text}` is not an address and port such as `127.0.0.1:9187`"))
}
