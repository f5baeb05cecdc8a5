//! Small value types of the config file that parse from human text: durations (`2s`, `5m`) and
//! gas prices in gwei (`50`, `"1.5"`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written with a unit: `500ms`, `2s`, `5m`, `1h 30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration with a unit, such as `2s`, `500ms` or `5m`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
                humantime::parse_duration(s.trim()).map(Duration).map_err(|e| {
                    E::custom(format!("`{s}` is not a duration ({e}); write e.g. `2s`, `500ms`, `5m`"))
                })
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
                Err(E::custom(format!("`{n}` has no unit; write e.g. `{n}s` or `{n}ms`")))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
                Err(E::custom(format!("`{n}` has no unit; write e.g. `{n}s` or `{n}ms`")))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Duration, E> {
                Err(E::custom(format!("`{n}` has no unit; write e.g. `{n}s`")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// A fee per gas written in gwei (`50`, `1.5`, `"0.01"`), held in wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gwei(pub u128);

impl Gwei {
    /// Parses a decimal number of gwei with at most 9 decimals.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits_only = |p: &str| p.chars().all(|c| c.is_ascii_digit());
        if int.is_empty() && frac.is_empty() || !digits_only(int) || !digits_only(frac) {
            return Err(format!("`{s}` is not a decimal number of gwei"));
        }
        if frac.len() > 9 {
            return Err(format!("`{s}` has more than 9 decimals (1 gwei = 1e9 wei)"));
        }
        let int: u128 =
            if int.is_empty() { 0 } else { int.parse().map_err(|_| format!("`{s}` is too large"))? };
        let frac_wei: u128 = format!("{frac:0<9}").parse().unwrap_or(0);
        int.checked_mul(1_000_000_000)
            .and_then(|w| w.checked_add(frac_wei))
            .map(Gwei)
            .ok_or_else(|| format!("`{s}` is too large"))
    }

    pub fn wei(self) -> u128 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Gwei {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Gwei;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of gwei, such as `50` or `1.5`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Gwei, E> {
                Gwei::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Gwei, E> {
                Ok(Gwei(u128::from(n) * 1_000_000_000))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Gwei, E> {
                Err(E::custom(format!("`{n}` is negative; a fee is at least 0 gwei")))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Gwei, E> {
                Gwei::parse(&n.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Gwei {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (int, frac) = (self.0 / 1_000_000_000, self.0 % 1_000_000_000);
        if frac == 0 {
            s.serialize_str(&int.to_string())
        } else {
            let frac = format!("{frac:09}");
            s.serialize_str(&format!("{int}.{}", frac.trim_end_matches('0')))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gwei_parses_decimals() {
        assert_eq!(Gwei::parse("1.5"), Ok(Gwei(1_500_000_000)));
        assert_eq!(Gwei::parse("50"), Ok(Gwei(50_000_000_000)));
        assert_eq!(Gwei::parse("0.000000001"), Ok(Gwei(1)));
        assert!(Gwei::parse("0.0000000001").is_err());
        assert!(Gwei::parse("abc").is_err());
        assert!(Gwei::parse(".").is_err());
    }

    #[test]
    fn duration_needs_a_unit() {
        let d: Duration = serde_json::from_value(serde_json::json!("2s")).expect("2s parses");
        assert_eq!(d.0, std::time::Duration::from_secs(2));
        let err =
            serde_json::from_value::<Duration>(serde_json::json!(2)).expect_err("bare number is refused");
        assert!(err.to_string().contains("no unit"), "{err}");
    }
}
