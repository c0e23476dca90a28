//! Values of the `[cluster]` section.

use super::{Result, malformed};
use crate::config::{OnUnavailable, ValueError};

/// The Redis URL: `redis://` or `rediss://` (TLS), with optional user, password and
/// database (`redis://user:password@host:6379/2`); empty = no cluster. Never echoed in
/// errors (it may hold a password).
pub(crate) fn redis_url(s: &str) -> Result<Option<String>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ValueError::Text(
            "the Redis URL must not contain spaces or control characters",
        ));
    }
    let rest = s
        .strip_prefix("redis://")
        .or_else(|| s.strip_prefix("rediss://"))
        .ok_or(ValueError::Text(
            "the Redis URL must start with redis:// or rediss:// (TLS)",
        ))?;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if host.is_empty() || host.starts_with('/') || host.starts_with(':') {
        return Err(ValueError::Text("the Redis URL names no host"));
    }
    Ok(Some(s.to_owned()))
}

/// Longest node id, region or zone label.
pub(crate) const MAX_LABEL: usize = 64;

/// A node id, region or zone: 1 to 64 of `A-Z a-z 0-9 . _ -`; empty = none.
pub(crate) fn label(s: &str) -> Result<Option<String>> {
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > MAX_LABEL
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(malformed(
            "label",
            &s.escape_default().to_string(),
            " (1 to 64 of A-Z, a-z, 0-9, `.`, `_` and `-`)",
        ));
    }
    Ok(Some(s.to_owned()))
}

/// The key prefix: a non-empty label.
pub(crate) fn key_prefix(s: &str) -> Result<String> {
    label(s)?.ok_or(ValueError::Empty("the key prefix"))
}

/// `open` or `closed`.
pub(crate) fn on_unavailable(s: &str) -> Result<OnUnavailable> {
    match s {
        "open" => Ok(OnUnavailable::Open),
        "closed" => Ok(OnUnavailable::Closed),
        _ => Err(malformed(
            "on_unavailable",
            &s.escape_default().to_string(),
            " (expected open or closed)",
        )),
    }
}

/// How many nodes `/v1/ice-servers` names: 1 to 16.
pub(crate) fn ice_nodes(n: usize) -> Result<usize> {
    if (1..=16).contains(&n) {
        Ok(n)
    } else {
        Err(ValueError::OutOfRange {
            value: n as u64,
            allowed: "1..=16".into(),
        })
    }
}

/// An HTTP header name (RFC 9110 token), lower-cased; empty = none.
pub(crate) fn header_name(s: &str) -> Result<Option<String>> {
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(malformed(
            "header name",
            &s.escape_default().to_string(),
            " (an HTTP header name such as X-Region)",
        ));
    }
    Ok(Some(s.to_ascii_lowercase()))
}

/// `CIDR=region` entries: which region a caller's address is in.
pub(crate) fn region_prefixes(items: &[&str]) -> Result<Vec<(ipnet::IpNet, String)>> {
    items
        .iter()
        .map(|item| {
            let (net, region) = item.split_once('=').ok_or_else(|| {
                malformed(
                    "region prefix",
                    &item.escape_default().to_string(),
                    " (expected CIDR=REGION, e.g. 10.1.0.0/16=eu-west)",
                )
            })?;
            let net: ipnet::IpNet = net.trim().parse().map_err(|_| {
                malformed(
                    "region prefix",
                    &item.escape_default().to_string(),
                    " (expected CIDR=REGION, e.g. 10.1.0.0/16=eu-west)",
                )
            })?;
            let region = label(region.trim())?.ok_or(ValueError::Empty("the region"))?;
            Ok((net.trunc(), region))
        })
        .collect()
}
