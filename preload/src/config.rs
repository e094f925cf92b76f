//! The environment, read once at first use.
//!
//! | variable | meaning |
//! |---|---|
//! | `YASMIN_PRELOAD_DISABLE=1` | touch nothing (every call goes straight to libc) |
//! | `YASMIN_PRELOAD_LOG=1` | one line per decision on stderr |
//! | `YASMIN_PRELOAD_MAP="ip=domid,..."` | the IPv4 map, instead of XenStore |
//! | `YASMIN_PRELOAD_MAP_FILE=/path` | the IPv4 map from a file of `ip domid` lines (re-read every second) |
//! | `YASMIN_PRELOAD_SELF_DOMID=N` | our domain id, instead of XenStore `domid` |
//! | `YASMIN_PRELOAD_STRICT=1` | no fallback to TCP: a failed vsock connect's errno goes to the program |
//! | `YASMIN_PRELOAD_CONNECT_MS=N` | how long a vsock connect may take before TCP is used instead (default 5000) |
//! | `YASMIN_PRELOAD_FALLBACK_TTL_MS=N` | how long a destination whose vsock connect failed goes straight to TCP (default 10000; 0: never remembered) |

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::map::{self, IpMap};

#[derive(Debug, Default)]
pub struct Config {
    pub disabled: bool,
    pub log: bool,
    pub strict: bool,
    /// `$YASMIN_PRELOAD_MAP`, parsed.
    pub map_env: Option<IpMap>,
    pub map_file: Option<PathBuf>,
    pub self_domid: Option<u16>,
    /// The longest a vsock connect attempt may take before TCP is used instead.
    pub connect_budget: Duration,
    /// How long a failed destination goes straight to TCP.
    pub fallback_ttl: Duration,
    /// Problems found while parsing (logged at first use).
    pub warnings: Vec<String>,
}

pub const DEFAULT_CONNECT_MS: u64 = 5000;
pub const DEFAULT_FALLBACK_TTL_MS: u64 = 10_000;

/// A duration variable in milliseconds (`default` if unset; a warning and `default` if
/// not a number). `min` is the smallest value taken (a smaller one is raised to it).
fn millis(
    name: &str,
    v: Option<String>,
    default: u64,
    min: u64,
    warnings: &mut Vec<String>,
) -> Duration {
    let ms = match v.as_deref().map(str::trim) {
        None | Some("") => default,
        Some(s) => s.parse::<u64>().unwrap_or_else(|_| {
            warnings.push(format!(
                "{name}={s:?} is not a number of milliseconds; using {default}"
            ));
            default
        }),
    };
    Duration::from_millis(ms.max(min))
}

/// A boolean variable: set, non-empty and not `0`.
fn flag(v: Option<String>) -> bool {
    matches!(v, Some(s) if !s.is_empty() && s != "0")
}

impl Config {
    /// Reads the configuration through `get` (the environment, or a test's table).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        let mut warnings = Vec::new();
        let map_env = get("YASMIN_PRELOAD_MAP").map(|s| IpMap::parse_env(&s, &mut warnings));
        let map_file = get("YASMIN_PRELOAD_MAP_FILE")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let self_domid = get("YASMIN_PRELOAD_SELF_DOMID").and_then(|s| {
            let d = map::parse_domid(s.trim().as_bytes());
            if d.is_none() {
                warnings.push(format!(
                    "YASMIN_PRELOAD_SELF_DOMID={s:?} is not a domid; ignored"
                ));
            }
            d
        });
        if map_env.is_some() && map_file.is_some() {
            warnings.push(
                "both YASMIN_PRELOAD_MAP and YASMIN_PRELOAD_MAP_FILE are set; using YASMIN_PRELOAD_MAP"
                    .into(),
            );
        }
        let connect_budget = millis(
            "YASMIN_PRELOAD_CONNECT_MS",
            get("YASMIN_PRELOAD_CONNECT_MS"),
            DEFAULT_CONNECT_MS,
            1,
            &mut warnings,
        );
        let fallback_ttl = millis(
            "YASMIN_PRELOAD_FALLBACK_TTL_MS",
            get("YASMIN_PRELOAD_FALLBACK_TTL_MS"),
            DEFAULT_FALLBACK_TTL_MS,
            0,
            &mut warnings,
        );
        Config {
            disabled: flag(get("YASMIN_PRELOAD_DISABLE")),
            log: flag(get("YASMIN_PRELOAD_LOG")),
            strict: flag(get("YASMIN_PRELOAD_STRICT")),
            map_env,
            map_file,
            self_domid,
            connect_budget,
            fallback_ttl,
            warnings,
        }
    }
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// The process's configuration.
pub fn config() -> &'static Config {
    CONFIG.get_or_init(|| {
        let c = Config::from_lookup(|k| std::env::var(k).ok());
        if c.log && !c.disabled {
            for w in &c.warnings {
                crate::log::write(format_args!("{w}"));
            }
        }
        c
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Config {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]);
        assert!(!c.disabled && !c.log && !c.strict);
        assert!(c.map_env.is_none() && c.map_file.is_none() && c.self_domid.is_none());
        assert_eq!(c.connect_budget, Duration::from_millis(DEFAULT_CONNECT_MS));
        assert_eq!(
            c.fallback_ttl,
            Duration::from_millis(DEFAULT_FALLBACK_TTL_MS)
        );
    }

    #[test]
    fn durations() {
        let c = cfg(&[
            ("YASMIN_PRELOAD_CONNECT_MS", "250"),
            ("YASMIN_PRELOAD_FALLBACK_TTL_MS", "0"),
        ]);
        assert_eq!(c.connect_budget, Duration::from_millis(250));
        assert!(c.fallback_ttl.is_zero());
        assert!(c.warnings.is_empty());
        let c = cfg(&[
            ("YASMIN_PRELOAD_CONNECT_MS", "0"),
            ("YASMIN_PRELOAD_FALLBACK_TTL_MS", "soon"),
        ]);
        assert_eq!(c.connect_budget, Duration::from_millis(1), "never zero");
        assert_eq!(
            c.fallback_ttl,
            Duration::from_millis(DEFAULT_FALLBACK_TTL_MS)
        );
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    }

    #[test]
    fn flags() {
        let c = cfg(&[
            ("YASMIN_PRELOAD_DISABLE", "1"),
            ("YASMIN_PRELOAD_LOG", "yes"),
            ("YASMIN_PRELOAD_STRICT", "0"),
        ]);
        assert!(c.disabled && c.log && !c.strict);
        assert!(!cfg(&[("YASMIN_PRELOAD_LOG", "")]).log);
    }

    #[test]
    fn map_and_domid() {
        let c = cfg(&[
            ("YASMIN_PRELOAD_MAP", "198.18.0.11=1,198.18.0.12=2"),
            ("YASMIN_PRELOAD_SELF_DOMID", "1"),
        ]);
        let m = c.map_env.unwrap();
        assert_eq!(m.get([198, 18, 0, 12]), Some(2));
        assert_eq!(c.self_domid, Some(1));
        assert!(c.warnings.is_empty());

        let c = cfg(&[
            ("YASMIN_PRELOAD_MAP", "nonsense"),
            ("YASMIN_PRELOAD_SELF_DOMID", "x"),
            ("YASMIN_PRELOAD_MAP_FILE", "/tmp/m"),
        ]);
        assert!(c.map_env.unwrap().is_empty());
        assert_eq!(c.self_domid, None);
        assert_eq!(c.map_file, Some(PathBuf::from("/tmp/m")));
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    }
}
