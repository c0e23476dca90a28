//! Which peers a client may relay to.
//!
//! A TURN relay that forwards to any address is a proxy into the operator's private network
//! and the cloud metadata service (coturn CVE-2020-26262 reached loopback through `0.0.0.0`
//! and `::`; CVE-2026-27624 through `::ffff:127.0.0.1`). [`PeerPolicy`] decides, for every
//! CreatePermission ([`PeerPolicy::check_ip`]) and every ChannelBind / Send / Connect
//! ([`PeerPolicy::check`]), whether a peer may be reached.
//!
//! # Canonicalisation
//!
//! Every check first rewrites the peer with [`canonical`]: an IPv6 address that carries an
//! IPv4 address is judged as that IPv4 address. The forms recognised are
//!
//! | form | prefix | embedded IPv4 |
//! |---|---|---|
//! | IPv4-mapped | `::ffff:0:0/96` | last 32 bits |
//! | IPv4-translated (SIIT, RFC 6145) | `::ffff:0:0:0/96` | last 32 bits |
//! | IPv4-compatible (deprecated) | `::/96`, except `::` and `::1` | last 32 bits |
//! | NAT64 well-known prefix (RFC 6052) | `64:ff9b::/96` | last 32 bits |
//! | NAT64 local-use prefix (RFC 8215) | `64:ff9b:1::/48` | last 32 bits (and see below) |
//! | 6to4 (RFC 3056) | `2002::/16` | bits 16..48 |
//! | Teredo (RFC 4380) | `2001::/32` | client: last 32 bits XOR `0xffff_ffff`; server: bits 32..64 |
//!
//! [`embedded`] lists every address a check considers: the address as given, its canonical
//! form and, for Teredo, the server IPv4 as well. An address is denied if **any** of them is
//! denied, so an embedding can never reach what its IPv4 could not.
//!
//! The NAT64 local-use prefix is the exception where the IPv6 form is judged too: where a
//! translator puts the IPv4 address inside `64:ff9b:1::/48` depends on the prefix length it
//! uses (RFC 6052 §2.2: /48 to /96), so the last 32 bits are only one reading. The prefix is
//! therefore in [`DEFAULT_DENY`] itself (not globally reachable, says the IANA registry): it
//! takes an `--allow-peer` entry covering the IPv6 address, and then its last-32-bit IPv4
//! must still pass like any other embedding.
//!
//! # Precedence
//!
//! 1. **Explicit deny** (`--deny-peer`): denied if the address as given, its canonical form or
//!    any embedded IPv4 lies in a deny entry ([`Denied::Explicit`]). Nothing overrides this.
//! 2. **Explicit allow** (`--allow-peer`): an allow entry exempts a *canonical* address from the
//!    built-in defaults (so allowing `127.0.0.1/32` also allows `::ffff:127.0.0.1`, but allowing
//!    `2002::/16` does not let 6to4 addresses bypass the check of the IPv4 they carry). With
//!    Teredo, the client and the server IPv4 must each be allowed or not default-denied; with
//!    the NAT64 local-use prefix, the IPv6 address must be allowed and its IPv4 allowed or not
//!    default-denied.
//! 3. **Built-in defaults** ([`DEFAULT_DENY`], from the IANA IPv4 and IPv6 special-purpose
//!    registries): every canonical address and embedded IPv4 not explicitly allowed is looked up
//!    there ([`Denied::Default`]). `0.0.0.0` and `::` are in it, so they are always denied unless
//!    explicitly allowed.
//! 4. Anything else is allowed.
//!
//! [`PeerPolicy::check`] adds the **service-port rule** on top: the server's own listeners and
//! HTTP endpoint are never reachable through the relay, whatever the allow list says
//! ([`Denied::ServicePort`]).
//!
//! Deny and allow entries written as IPv4-mapped or -translated networks
//! (`::ffff:10.0.0.0/104`, `::ffff:0:10.0.0.0/104`) are converted to the IPv4 network they
//! denote (`10.0.0.0/8`) so that they match canonical addresses. All checks are
//! allocation-free.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

#[cfg(test)]
mod tests;

/// Canonical form for policy checks.
///
/// IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d` (SIIT, RFC 6145),
/// IPv4-compatible `::a.b.c.d` (but not `::` and `::1` themselves), NAT64 `64:ff9b::/96` (last
/// 32 bits) and `64:ff9b:1::/48` (RFC 8215; the embedded IPv4 is taken from the last 32 bits,
/// too, and the prefix is default-denied as well), 6to4 `2002::/16` (bits 16..48) and Teredo
/// `2001::/32` (client IPv4 = last 32 bits XOR `0xffff_ffff`) all become the IPv4 address they
/// carry. Every other address, including every IPv4 address, is returned unchanged.
///
/// A translated address is treated like a mapped one: on a network with an SIIT translator
/// it *is* that IPv4 address, so it gets exactly that address's verdict (a public one is
/// allowed, as `::ffff:8.8.8.8` is, and as the IPv4 itself is).
///
/// ```
/// use std::net::IpAddr;
/// use ternd_proto::policy::canonical;
///
/// let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
/// assert_eq!(canonical(mapped), "127.0.0.1".parse::<IpAddr>().unwrap());
/// let nat64: IpAddr = "64:ff9b::a9fe:a9fe".parse().unwrap();
/// assert_eq!(canonical(nat64), "169.254.169.254".parse::<IpAddr>().unwrap());
/// ```
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match embedded_v6(v6) {
            Some((client, _)) => IpAddr::V4(client),
            None => ip,
        },
    }
}

/// The IPv4 address an IPv6 address carries (see [`canonical`]) and, for Teredo, the server
/// IPv4 address as well.
fn embedded_v6(v6: Ipv6Addr) -> Option<(Ipv4Addr, Option<Ipv4Addr>)> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let last32 = v4(s[6], s[7]);
    match s {
        // IPv4-mapped ::ffff:0:0/96.
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some((last32, None)),
        // IPv4-translated ::ffff:0:0:0/96 (SIIT, RFC 6145).
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some((last32, None)),
        // IPv4-compatible ::/96, except the unspecified address and loopback.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, _, _] => Some((last32, None)),
        // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((last32, None)),
        // NAT64 local-use prefix 64:ff9b:1::/48 (RFC 8215).
        [0x64, 0xff9b, 1, ..] => Some((last32, None)),
        // 6to4 2002::/16 (RFC 3056): 2002:AABB:CCDD::/48.
        [0x2002, hi, lo, ..] => Some((v4(hi, lo), None)),
        // Teredo 2001::/32 (RFC 4380): server in bits 32..64, client obfuscated in the last 32.
        [0x2001, 0, srv_hi, srv_lo, ..] => Some((
            Ipv4Addr::from(u32::from(last32) ^ 0xffff_ffff),
            Some(v4(srv_hi, srv_lo)),
        )),
        _ => None,
    }
}

/// Every address a policy check considers for `ip`: `ip` itself, then (if different) its
/// [`canonical`] IPv4 form, then (for Teredo) the Teredo server IPv4 address.
///
/// At most three addresses, without duplicates; no heap allocation. A check denies `ip` if any
/// of them is denied, so an embedding is denied whenever an address it carries is.
///
/// ```
/// use std::net::IpAddr;
/// use ternd_proto::policy::embedded;
///
/// // Teredo: server 65.54.227.120, client 192.0.2.45.
/// let teredo: IpAddr = "2001:0:4136:e378:8000:63bf:3fff:fdd2".parse().unwrap();
/// let all: Vec<IpAddr> = embedded(teredo).collect();
/// assert_eq!(all, [teredo, "192.0.2.45".parse().unwrap(), "65.54.227.120".parse().unwrap()]);
/// ```
pub fn embedded(ip: IpAddr) -> Embedded {
    let mut out = Embedded {
        addrs: [ip; 3],
        len: 1,
        pos: 0,
    };
    if let IpAddr::V6(v6) = ip
        && let Some((client, server)) = embedded_v6(v6)
    {
        out.push(IpAddr::V4(client));
        if let Some(server) = server {
            out.push(IpAddr::V4(server));
        }
    }
    out
}

/// Iterator over the addresses returned by [`embedded`]: a fixed array of at most three, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    addrs: [IpAddr; 3],
    len: u8,
    pos: u8,
}

impl Embedded {
    fn push(&mut self, ip: IpAddr) {
        if !self.as_slice().contains(&ip) {
            self.addrs[usize::from(self.len)] = ip;
            self.len += 1;
        }
    }

    /// The addresses not yet yielded: `ip` itself first, then the embedded IPv4 addresses.
    pub fn as_slice(&self) -> &[IpAddr] {
        &self.addrs[usize::from(self.pos)..usize::from(self.len)]
    }
}

impl Iterator for Embedded {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        let ip = *self.as_slice().first()?;
        self.pos += 1;
        Some(ip)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.as_slice().len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Embedded {}

impl std::iter::FusedIterator for Embedded {}

const fn v4net(a: u8, b: u8, c: u8, d: u8, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len))
}

const fn v6net(segments: [u16; 8], len: u8) -> IpNet {
    let [a, b, c, d, e, f, g, h] = segments;
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(a, b, c, d, e, f, g, h),
        len,
    ))
}

/// The built-in default deny list, from the IANA IPv4 and IPv6 special-purpose address
/// registries, as `(network, name)`.
///
/// Looked up in order, first match wins, so more specific entries with a more useful name
/// (cloud metadata) come before the range that contains them. Only canonical addresses are
/// looked up: IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4
/// (`2002::/16`) and Teredo (`2001::/32`) addresses are judged by the IPv4 addresses they
/// carry, which is why those prefixes are absent and why neither the embedding parts of `::/8`
/// nor the Teredo part of `2001::/23` ever match. The NAT64 local-use prefix `64:ff9b:1::/48`
/// is the exception (see the [module documentation](self)): it is looked up as given, too.
pub const DEFAULT_DENY: &[(IpNet, &str)] = &[
    // IPv4 (RFC 6890 and the IANA IPv4 special-purpose address registry).
    (v4net(0, 0, 0, 0, 8), "this network"),
    (v4net(10, 0, 0, 0, 8), "private (RFC 1918)"),
    (
        v4net(100, 100, 100, 200, 32),
        "cloud metadata (Alibaba Cloud)",
    ),
    (
        v4net(100, 64, 0, 0, 10),
        "shared address space (CGNAT, RFC 6598)",
    ),
    (v4net(127, 0, 0, 0, 8), "loopback"),
    (v4net(169, 254, 169, 254, 32), "cloud metadata"),
    (v4net(169, 254, 0, 0, 16), "link-local"),
    (v4net(172, 16, 0, 0, 12), "private (RFC 1918)"),
    (v4net(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (v4net(192, 0, 2, 0, 24), "documentation (TEST-NET-1)"),
    (v4net(192, 88, 99, 0, 24), "6to4 relay anycast (deprecated)"),
    (v4net(192, 168, 0, 0, 16), "private (RFC 1918)"),
    (v4net(198, 18, 0, 0, 15), "benchmarking"),
    (v4net(198, 51, 100, 0, 24), "documentation (TEST-NET-2)"),
    (v4net(203, 0, 113, 0, 24), "documentation (TEST-NET-3)"),
    (v4net(224, 0, 0, 0, 4), "multicast"),
    (v4net(255, 255, 255, 255, 32), "limited broadcast"),
    (v4net(240, 0, 0, 0, 4), "reserved"),
    // IPv6 (RFC 6890 and the IANA IPv6 special-purpose address registry).
    (v6net([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6net([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (
        v6net([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "NAT64 local-use prefix (RFC 8215)",
    ),
    // The rest of ::/8 (::ffff:1:0/96, ::fffe:0:0/96, 64:ff9b::/32 outside the NAT64
    // prefixes, ...): the IANA address space registry reserves it, and no routable address
    // lives there.
    (v6net([0, 0, 0, 0, 0, 0, 0, 0], 8), "reserved (IETF)"),
    (v6net([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6net([0x100, 0, 0, 1, 0, 0, 0, 0], 64), "dummy IPv6 prefix"),
    (
        v6net([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments",
    ),
    (
        v6net([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "documentation",
    ),
    (
        v6net([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "documentation (RFC 9637)",
    ),
    (
        v6net([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "segment routing SIDs (RFC 9602)",
    ),
    (
        v6net([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
        "cloud metadata (AWS IPv6)",
    ),
    (v6net([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique local"),
    (v6net([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (
        v6net([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated)",
    ),
    (v6net([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// Whether `ip` is in the NAT64 local-use prefix `64:ff9b:1::/48` (RFC 8215), whose IPv6
/// form is judged as well as the IPv4 of its last 32 bits.
fn is_nat64_local_use(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if matches!(v6.segments(), [0x64, 0xff9b, 1, ..]))
}

/// The name of the [`DEFAULT_DENY`] range containing `ip` as given (not canonicalised).
fn default_range(ip: IpAddr) -> Option<&'static str> {
    DEFAULT_DENY
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|&(_, name)| name)
}

/// Why a peer address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denied {
    /// In the built-in default deny list ([`DEFAULT_DENY`]); the string names the range, e.g.
    /// `"loopback"`, `"private (RFC 1918)"`, `"cloud metadata"`.
    Default(&'static str),
    /// Matched an explicit `--deny-peer` entry (as the operator wrote it).
    Explicit(IpNet),
    /// The server's own service port (a listener or the HTTP endpoint): never reachable,
    /// whatever the allow list says.
    ServicePort,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Default(name) => {
                write!(f, "peer address is in a default-denied range ({name})")
            }
            Denied::Explicit(net) => write!(f, "peer address matches --deny-peer {net}"),
            Denied::ServicePort => f.write_str("peer is one of the server's own service ports"),
        }
    }
}

impl std::error::Error for Denied {}

/// An operator-supplied network: what it matches (IPv4-mapped and -translated networks
/// converted to IPv4) and how the operator wrote it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    matches: IpNet,
    written: IpNet,
}

impl Entry {
    fn new(written: IpNet) -> Self {
        let matches = match written {
            IpNet::V6(net) if net.prefix_len() >= 96 => match net.network().segments() {
                [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0xffff, 0, hi, lo] => {
                    let ip = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
                    IpNet::V4(Ipv4Net::new_assert(ip, net.prefix_len() - 96))
                }
                _ => written,
            },
            _ => written,
        };
        Entry { matches, written }
    }
}

/// The peer policy of the relay: explicit allow and deny lists, the built-in defaults and the
/// server's own service ports. See the [module documentation](self) for the rules.
///
/// ```
/// use std::net::SocketAddr;
/// use ternd_proto::policy::{Denied, PeerPolicy};
///
/// let policy = PeerPolicy::new(
///     vec!["127.0.0.1/32".parse().unwrap()],
///     vec![],
///     vec!["0.0.0.0:3478".parse().unwrap()],
/// );
/// assert_eq!(policy.check("8.8.8.8:53".parse().unwrap()), Ok(()));
/// assert_eq!(policy.check("[::ffff:127.0.0.1]:8080".parse().unwrap()), Ok(()));
/// assert_eq!(policy.check("127.0.0.1:3478".parse().unwrap()), Err(Denied::ServicePort));
/// assert_eq!(policy.check("10.0.0.1:80".parse().unwrap()), Err(Denied::Default("private (RFC 1918)")));
/// ```
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    allow: Vec<Entry>,
    deny: Vec<Entry>,
    /// Service socket addresses, IP canonicalised.
    service: Vec<SocketAddr>,
    /// Addresses of this host, canonicalised.
    local_ips: Vec<IpAddr>,
}

impl PeerPolicy {
    /// A policy from the operator's `--allow-peer` (`allow`) and `--deny-peer` (`deny`) CIDRs
    /// and the server's own listening socket addresses (`service`: STUN/TURN listeners, HTTP).
    ///
    /// A service address with an unspecified IP (`0.0.0.0` / `::`) means that port on any
    /// address of the host *of the same family*: ternd sets `IPV6_V6ONLY`, so `[::]:3478`
    /// does not receive IPv4 traffic and does not protect `127.0.0.1:3478`. Specified service
    /// IPs also count as addresses of this host (see [`with_local_ips`](Self::with_local_ips)).
    pub fn new(allow: Vec<IpNet>, deny: Vec<IpNet>, service: Vec<SocketAddr>) -> Self {
        let service: Vec<SocketAddr> = service
            .into_iter()
            .map(|sa| SocketAddr::new(canonical(sa.ip()), sa.port()))
            .collect();
        let local_ips = service
            .iter()
            .map(SocketAddr::ip)
            .filter(|ip| !ip.is_unspecified())
            .collect();
        PeerPolicy {
            allow: allow.into_iter().map(Entry::new).collect(),
            deny: deny.into_iter().map(Entry::new).collect(),
            service,
            local_ips,
        }
    }

    /// Adds addresses of this host (relay IPs, external IPs, listener IPs) that also count as
    /// "the server itself" for the service-port rule of [`check`](Self::check). May be called
    /// more than once; the lists accumulate.
    pub fn with_local_ips(mut self, ips: Vec<IpAddr>) -> Self {
        for ip in ips.into_iter().map(canonical) {
            if !self.local_ips.contains(&ip) {
                self.local_ips.push(ip);
            }
        }
        self
    }

    /// IP-only check (CreatePermission).
    ///
    /// Precedence: explicit deny > explicit allow > built-in defaults; allowed if in no list.
    /// Every address of [`embedded`]`(ip)` is considered: `ip` is denied if any of them lies in
    /// an explicit deny entry, or if any canonical one (the canonical form and each embedded
    /// IPv4) is in [`DEFAULT_DENY`] without being in an explicit allow entry (for the NAT64
    /// local-use prefix, the address as given is looked up as well). Allow entries match
    /// canonical addresses, so allowing `127.0.0.1/32` also allows `::ffff:127.0.0.1`.
    /// Allocation-free.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Denied> {
        let candidates = embedded(ip);
        for c in candidates {
            if let Some(e) = self.deny.iter().find(|e| e.matches.contains(&c)) {
                return Err(Denied::Explicit(e.written));
            }
        }
        for c in candidates {
            if (canonical(c) != c && !is_nat64_local_use(c))
                || self.allow.iter().any(|e| e.matches.contains(&c))
            {
                // An embedding is judged by the IPv4 addresses it carries, which follow (the
                // NAT64 local-use prefix by its IPv6 form as well).
                continue;
            }
            if let Some(name) = default_range(c) {
                return Err(Denied::Default(name));
            }
        }
        Ok(())
    }

    /// Full check for a transport address (ChannelBind, Send, Connect).
    ///
    /// First [`check_ip`](Self::check_ip); then the service-port rule, which no allow entry
    /// overrides: `peer` is denied with [`Denied::ServicePort`] if its port equals a service
    /// port and either the service IP equals the canonical peer IP, or the service IP is
    /// unspecified and the canonical peer IP, of the same family, is loopback, unspecified, a
    /// specified service IP or one of the [local IPs](Self::with_local_ips). Allocation-free.
    pub fn check(&self, peer: SocketAddr) -> Result<(), Denied> {
        self.check_ip(peer.ip())?;
        let ip = canonical(peer.ip());
        let port = peer.port();
        let mut is_local = None;
        for service in self.service.iter().filter(|s| s.port() == port) {
            let sip = service.ip();
            if sip == ip {
                return Err(Denied::ServicePort);
            }
            if sip.is_unspecified()
                && sip.is_ipv4() == ip.is_ipv4()
                && *is_local.get_or_insert_with(|| {
                    ip.is_loopback() || ip.is_unspecified() || self.local_ips.contains(&ip)
                })
            {
                return Err(Denied::ServicePort);
            }
        }
        Ok(())
    }
}
