//! Address ranges as CIDR sets: `A-B` ranges (coturn's peer lists) turned into the
//! fewest CIDRs that cover exactly `A..=B`, and the difference of two CIDR sets (so that
//! a coturn "allowed wins over denied" list pair can be said with ternd's "deny beats
//! allow").
//!
//! Addresses are handled as integers (`u32` for IPv4, `u128` for IPv6); each family is
//! computed on its own, and a range never mixes them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::ValueError;

/// The most CIDRs one `A-B` range can need: two per bit of an IPv6 address.
pub const MAX_CIDRS_PER_RANGE: usize = 2 * 128;

/// Parses `A-B` (two IP addresses of one family, `A <= B`, surrounding blanks allowed)
/// into its two ends. `None` when `text` has no `-` (not a range).
pub fn parse_range(text: &str) -> Option<Result<(IpAddr, IpAddr), ValueError>> {
    let (a, b) = text.trim().split_once('-')?;
    let end = |s: &str| {
        s.trim()
            .parse::<IpAddr>()
            .map_err(|_| ValueError::Malformed {
                what: "address range",
                text: text.to_owned(),
                expected: " (expected FIRST-LAST, e.g. 10.0.0.0-10.255.255.255, or a CIDR)",
            })
    };
    Some((|| {
        let (lo, hi) = (end(a)?, end(b)?);
        if lo.is_ipv4() != hi.is_ipv4() {
            return Err(ValueError::RangeFamilies(text.trim().to_owned()));
        }
        if bits(lo) > bits(hi) {
            return Err(ValueError::RangeReversed(text.trim().to_owned()));
        }
        Ok((lo, hi))
    })())
}

/// The address as an integer (IPv4 in the low 32 bits).
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Address width of the family.
fn width(v4: bool) -> u32 {
    if v4 { 32 } else { 128 }
}

fn net(v4: bool, start: u128, prefix: u32) -> IpNet {
    // `prefix` is at most the family's width and `start` fits it: both constructors hold.
    if v4 {
        let ip = Ipv4Addr::from(u32::try_from(start).unwrap_or(u32::MAX));
        IpNet::V4(Ipv4Net::new(ip, prefix as u8).unwrap_or_default())
    } else {
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(start), prefix as u8).unwrap_or_default())
    }
}

/// The fewest CIDRs covering exactly `lo..=hi` of one family (as integers).
fn cover(v4: bool, mut lo: u128, hi: u128) -> Vec<IpNet> {
    let w = width(v4);
    let mut out = Vec::new();
    loop {
        // The largest block of 2^k addresses aligned at `lo` that does not pass `hi`
        // (aligned, so `lo + 2^k - 1` cannot overflow).
        let mut k = if lo == 0 {
            w
        } else {
            lo.trailing_zeros().min(w)
        };
        let last = loop {
            let last = if k == 128 {
                u128::MAX
            } else {
                lo + ((1u128 << k) - 1)
            };
            if last <= hi {
                break last;
            }
            k -= 1;
        };
        out.push(net(v4, lo, w - k));
        if last >= hi {
            return out;
        }
        lo = last + 1;
    }
}

/// The fewest CIDRs covering exactly the addresses `lo..=hi` (one family, `lo <= hi`).
pub fn range_to_cidrs(lo: IpAddr, hi: IpAddr) -> Vec<IpNet> {
    cover(lo.is_ipv4(), bits(lo), bits(hi))
}

/// `net` as an integer interval of its family.
fn interval(net: &IpNet) -> (bool, u128, u128) {
    match net {
        IpNet::V4(n) => (
            true,
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (false, u128::from(n.network()), u128::from(n.broadcast())),
    }
}

/// The addresses of `from` that are in none of `minus`, as the fewest CIDRs (per
/// interval that remains), IPv4 first, in address order. Overlapping entries of `from`
/// are merged.
pub fn subtract(from: &[IpNet], minus: &[IpNet]) -> Vec<IpNet> {
    let mut out = Vec::new();
    for v4 in [true, false] {
        let pick = |nets: &[IpNet]| -> Vec<(u128, u128)> {
            let mut v: Vec<(u128, u128)> = nets
                .iter()
                .map(interval)
                .filter(|(f, _, _)| *f == v4)
                .map(|(_, a, b)| (a, b))
                .collect();
            v.sort_unstable();
            merge(v)
        };
        let (keep, cut) = (pick(from), pick(minus));
        for (mut lo, hi) in keep {
            let mut done = false;
            for &(clo, chi) in &cut {
                if chi < lo || clo > hi {
                    continue;
                }
                if clo > lo {
                    out.extend(cover(v4, lo, clo - 1));
                }
                if chi >= hi {
                    done = true;
                    break;
                }
                lo = chi + 1;
            }
            if !done {
                out.extend(cover(v4, lo, hi));
            }
        }
    }
    out
}

/// Sorted intervals, overlapping or adjacent ones joined.
fn merge(sorted: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(sorted.len());
    for (lo, hi) in sorted {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(lo: &str, hi: &str) -> Vec<String> {
        range_to_cidrs(lo.parse().unwrap(), hi.parse().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn ranges_become_minimal_cidrs() {
        assert_eq!(cidrs("10.0.0.0", "10.255.255.255"), ["10.0.0.0/8"]);
        assert_eq!(cidrs("10.0.0.5", "10.0.0.5"), ["10.0.0.5/32"]);
        assert_eq!(
            cidrs("10.0.0.1", "10.0.0.6"),
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
        assert_eq!(cidrs("0.0.0.0", "255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(
            cidrs("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["::/0"]
        );
        assert_eq!(cidrs("fd00::", "fd00::ff"), ["fd00::/120"]);
        assert_eq!(
            cidrs("255.255.255.254", "255.255.255.255"),
            ["255.255.255.254/31"]
        );
        let worst = range_to_cidrs(
            "::1".parse().unwrap(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe".parse().unwrap(),
        );
        assert!(worst.len() <= MAX_CIDRS_PER_RANGE, "{}", worst.len());
        assert_eq!(worst.len(), 254);
    }

    #[test]
    fn bad_ranges_are_errors() {
        assert!(parse_range("10.0.0.1").is_none());
        assert!(matches!(
            parse_range("10.0.0.9-10.0.0.1"),
            Some(Err(ValueError::RangeReversed(_)))
        ));
        assert!(matches!(
            parse_range("10.0.0.1-::1"),
            Some(Err(ValueError::RangeFamilies(_)))
        ));
        assert!(matches!(
            parse_range("10.0.0.1-x"),
            Some(Err(ValueError::Malformed { .. }))
        ));
        assert_eq!(
            parse_range(" 10.0.0.1 - 10.0.0.2 ").unwrap().unwrap(),
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
        );
    }

    #[test]
    fn subtraction_punches_holes() {
        let from: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
        let minus: Vec<IpNet> = vec!["10.0.1.5/32".parse().unwrap()];
        let left = subtract(&from, &minus);
        assert_eq!(left.len(), 24 + 1, "{left:?}");
        let has = |ip: &str| {
            left.iter()
                .any(|n| n.contains(&ip.parse::<IpAddr>().unwrap()))
        };
        assert!(!has("10.0.1.5"));
        assert!(has("10.0.1.4") && has("10.0.1.6") && has("10.255.255.255") && has("10.0.0.0"));
        assert!(has("fd00::1"));
        assert_eq!(subtract(&from[..1], &from[..1]), Vec::<IpNet>::new());
        let whole: Vec<IpNet> = vec!["0.0.0.0/0".parse().unwrap()];
        assert_eq!(subtract(&whole, &[]).len(), 1);
        let edge = subtract(
            &whole,
            &[
                "0.0.0.0/32".parse().unwrap(),
                "255.255.255.255/32".parse().unwrap(),
            ],
        );
        assert_eq!(edge.len(), 62, "{edge:?}");
    }
}
