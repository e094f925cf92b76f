// SPDX-License-Identifier: GPL-2.0
//! Byte sizes on the command line: `1`, `64`, `4K`, `64K`, `1M`, `4M` (binary multiples,
//! as ring sizes are), and comma-separated lists of them.

use anyhow::{bail, Context, Result};

/// Parses one size: a decimal number with an optional `K`, `M` or `G` suffix (powers of
/// 1024; `KiB`/`KB` spellings are accepted too, case-insensitive).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let digits_end = upper
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(upper.len());
    let (num, suffix) = upper.split_at(digits_end);
    if num.is_empty() {
        bail!("bad size {s:?}: want a number with an optional K, M or G suffix");
    }
    let shift = match suffix {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => bail!("bad size {s:?}: unknown suffix {suffix:?} (want K, M or G)"),
    };
    let n: u64 = num.parse().with_context(|| format!("bad size {s:?}"))?;
    n.checked_mul(1 << shift)
        .with_context(|| format!("size {s:?} is too large"))
}

/// Parses a comma-separated list of sizes; an empty list is an error.
pub fn parse_size_list(s: &str) -> Result<Vec<u64>> {
    let sizes = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(parse_size)
        .collect::<Result<Vec<_>>>()?;
    if sizes.is_empty() {
        bail!("empty size list {s:?}");
    }
    Ok(sizes)
}

/// The inverse of [`parse_size`] for exact multiples, for labels: `4096` -> `4K`.
pub fn format_size(n: u64) -> String {
    for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{}{suffix}", n >> shift);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("1").unwrap(), 1);
        assert_eq!(parse_size("64").unwrap(), 64);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("1M").unwrap(), 1 << 20);
        assert_eq!(parse_size("4MiB").unwrap(), 4 << 20);
        assert_eq!(parse_size(" 2G ").unwrap(), 2 << 30);
        for bad in [
            "",
            "K",
            "4X",
            "-1",
            "1.5M",
            "99999999999999999999",
            "17179869184G",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_lists() {
        assert_eq!(
            parse_size_list("1,64,4K,64K,1M,4M").unwrap(),
            vec![1, 64, 4096, 65536, 1 << 20, 4 << 20]
        );
        assert_eq!(parse_size_list("4K,").unwrap(), vec![4096]);
        assert!(parse_size_list("").is_err());
        assert!(parse_size_list("1,x").is_err());
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(1), "1");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_size(4096), "4K");
        assert_eq!(format_size(4 << 20), "4M");
        assert_eq!(format_size(1536), "1536");
    }
}
