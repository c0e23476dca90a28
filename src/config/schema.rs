//! The declaration table: every setting of the server, once.
//!
//! Each entry gives the field (with its documentation and type), its
//! default, its TOML key, its kind (parser and checks from
//! [`values`](super::values)) and, when it has one, its flag, environment
//! variable and `--help` text; see [`section!`](super::declare::section).
//! `[relay]` embeds the core's own [`Limits`]: its entries fill the core's
//! type directly. The `[auth]`, `[http]` and `[log]` sections are in
//! [`schema_http`](super::schema_http).
//!
//! # Adding a setting
//!
//! A new numeric relay limit, say `relay.max_foo`:
//!
//! 1. The declaration: one entry in `core limits: Limits { .. }` below
//!    (field of `turn::Limits`, type, default, TOML key, kind, flag,
//!    environment variable, help text). That is the TOML key, `--max-foo`,
//!    `TERND_MAX_FOO`, the default, the `--help` line, the error messages and
//!    the reload: `relay.limits` goes to the core as a whole, at start and on
//!    SIGHUP.
//! 2. The core's use: the field in `turn::Limits` and where the core checks
//!    it (a missing entry here is a compile error: the generated default
//!    builds a `Limits` literal). Until `turn::CoreConfig` holds a `Limits`
//!    instead of a copy of each field, that copy and its line in
//!    `net::start` are part of this step too.
//! 3. A test.
//!
//! `config/ternd.toml` documents every setting with its default, and two
//! tests hold it to that (`shipped_file_is_defaults`,
//! `shipped_file_mentions_every_flag`), so the new key gets its commented
//! line there too. Any other setting is the same, with the field in this
//! table (its section struct is generated from it) instead of in the core.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::declare::section;
use super::kind::{Bool, Dur, Int, List, PATH, Text};
use super::{
    AuthConfig, ClusterConfig, ExternalIp, HttpConfig, LogConfig, Origins, PortRange, values,
};
use crate::turn::Limits;

section! {
    /// The complete, validated server configuration.
    #[derive(Clone, PartialEq)]
    pub struct Config at [] prefix "" {
        /// Addresses the STUN/TURN listeners bind to (UDP and TCP).
        /// Default `["0.0.0.0:3478", "[::]:3478"]`; never empty.
        listen: Vec<SocketAddr> {
            default: vec![
                SocketAddr::from(([0, 0, 0, 0], 3478)),
                SocketAddr::from(([0u16; 8], 3478)),
            ],
            key: "listen",
            kind: List(values::listen),
            flag: "listen", "ADDR", "TERND_LISTEN",
            help: "Address to listen on for STUN/TURN over UDP and TCP; repeatable \
                   [default: 0.0.0.0:3478 and [::]:3478]",
        }
        /// REALM for long-term credentials. Default `"ternd"`; non-empty, fewer
        /// than 128 characters and at most 763 bytes (RFC 8489).
        realm: String {
            default: "ternd".to_owned(),
            key: "realm",
            kind: Text(values::realm),
            flag: "realm", "REALM", "TERND_REALM",
            help: "Authentication realm [default: ternd]",
        }
        /// A set of settings chosen together. Default [`Profile::None`].
        profile: super::Profile {
            default: super::Profile::None,
            key: "profile",
            kind: Text(values::profile),
            flag: "profile", "loadtest", "TERND_PROFILE",
            help: "loadtest: for benchmarking on loopback only (refused otherwise): no per-user, \
                   per-IP or unauthenticated limits, loopback peers allowed, RFC 5766 channel \
                   numbers accepted; settings given explicitly still win [default: none]",
        }
        /// Number of worker threads, already resolved: 0 in the file / on the
        /// command line means `std::thread::available_parallelism()`. Always in
        /// `1..=1024`.
        workers: usize {
            default: super::default_workers(),
            key: "workers",
            kind: Int::new(values::workers),
            flag: "workers", "N", "TERND_WORKERS",
            help: "Worker threads, 0 = one per CPU [default: 0]",
        }
        /// Send runs of same-size UDP datagrams for one destination as one GSO send
        /// (`UDP_SEGMENT`, Linux 4.18+; off by itself where the kernel lacks it).
        /// Default `true`.
        udp_gso: bool {
            default: true,
            key: "udp_gso",
            kind: Bool,
            flag: "udp-gso", "BOOL", "TERND_UDP_GSO",
            help: "Send bursts of same-size UDP datagrams for one destination as one GSO send \
                   (UDP_SEGMENT, Linux 4.18+); false sends every datagram with its own sendto \
                   [default: true]",
        }
        /// `SO_RCVBUF` asked for every UDP socket (listeners and relay sockets), in bytes;
        /// 0 = the kernel's default (net.core.rmem_default). The kernel caps it at
        /// net.core.rmem_max. Default 4 MiB.
        udp_recv_buffer: usize {
            default: values::DEFAULT_UDP_BUFFER,
            key: "udp_recv_buffer",
            kind: Int::new(values::udp_buffer),
            flag: "udp-recv-buffer", "BYTES", "TERND_UDP_RECV_BUFFER",
            help: "SO_RCVBUF for every UDP socket (listeners and relay sockets), in bytes; 0 = the \
                   kernel default. The kernel caps it at net.core.rmem_max (the granted size is \
                   logged at start) [default: 4194304]",
        }
        /// `SO_SNDBUF` asked for every UDP socket, in bytes; 0 = the kernel's default
        /// (net.core.wmem_default). The kernel caps it at net.core.wmem_max. Default 4 MiB.
        udp_send_buffer: usize {
            default: values::DEFAULT_UDP_BUFFER,
            key: "udp_send_buffer",
            kind: Int::new(values::udp_buffer),
            flag: "udp-send-buffer", "BYTES", "TERND_UDP_SEND_BUFFER",
            help: "SO_SNDBUF for every UDP socket, in bytes; 0 = the kernel default. The kernel \
                   caps it at net.core.wmem_max [default: 4194304]",
        }
        /// SOFTWARE attribute text. Default `None` (off: it leaks versions).
        software: Option<String> {
            default: None,
            key: "software",
            kind: Text(values::software),
            flag: "software", "TEXT", "TERND_SOFTWARE",
            help: "SOFTWARE attribute text; empty = off. Leaks versions [default: off]",
        }
        /// Answer RFC 3489 clients that send no magic cookie. Default `false`.
        stun_backward_compatibility: bool {
            default: false,
            key: "stun_backward_compatibility",
            kind: Bool,
            flag: "stun-backward-compatibility", "BOOL", "TERND_STUN_BACKWARD_COMPATIBILITY",
            help: "Answer RFC 3489 clients that send no magic cookie (amplification risk) \
                   [default: false]",
        }
        /// Largest STUN message or ChannelData frame accepted on a TCP or TLS
        /// stream, in bytes. Default 65 540; range `548..=65_540`.
        max_frame_size: usize {
            default: values::MAX_FRAME_SIZE,
            key: "max_frame_size",
            kind: Int::new(values::max_frame_size),
            flag: "max-frame-size", "BYTES", "TERND_MAX_FRAME_SIZE",
            help: "Largest STUN/ChannelData frame accepted on TCP and TLS, 548..=65540 \
                   [default: 65540]",
        }
        /// TCP and TLS connections idle for this long are closed, except those
        /// holding an allocation (the allocation's lifetime governs them).
        /// Default 5 minutes.
        tcp_idle_timeout: Duration {
            default: Duration::from_secs(5 * 60),
            key: "tcp_idle_timeout",
            kind: Dur::NONZERO,
            flag: "tcp-idle-timeout", "DUR", "TERND_TCP_IDLE_TIMEOUT",
            help: "Close TCP and TLS connections idle for this long; those holding an allocation \
                   are kept [default: 5m]",
        }
        /// Maximum number of concurrent TCP connections. Default 10 000; at least 1.
        max_tcp_connections: usize {
            default: 10_000,
            key: "max_tcp_connections",
            kind: Int::new(values::max_tcp_connections),
            flag: "max-tcp-connections", "N", "TERND_MAX_TCP_CONNECTIONS",
            help: "Maximum concurrent TCP connections [default: 10000]",
        }
        /// Addresses of the TURN-over-TLS listeners (`turns:`), TCP only.
        /// Default empty (off). `:PORT` in the file or on the command line stands
        /// for `0.0.0.0:PORT` and `[::]:PORT`. No address may also be in
        /// [`listen`](Self::listen) (nor overlap one through an unspecified IP).
        /// Needs [`tls_cert`](Self::tls_cert) and [`tls_key`](Self::tls_key).
        tls_listen: Vec<SocketAddr> {
            default: Vec::new(),
            key: "tls_listen",
            kind: List(values::listener_list),
            flag: "tls-listen", "ADDR", "TERND_TLS_LISTEN",
            help: "Address to listen on for TURN over TLS (turns:), e.g. 0.0.0.0:5349 or :443 (all \
                   interfaces); repeatable; needs --cert and --key [default: none, TLS off]",
        }
        /// PEM certificate chain of the TLS listeners. Default `None`; required
        /// (with [`tls_key`](Self::tls_key)) when
        /// [`tls_listen`](Self::tls_listen) is not empty; checked by
        /// [`Config::load_files`] with `crate::tls::server_config`.
        /// Reloaded on SIGHUP without dropping connections. TLS 1.2 and 1.3;
        /// ALPN `stun.turn` / `stun.nat-discovery` (RFC 7443) accepted, not
        /// required.
        tls_cert: Option<PathBuf> {
            default: None,
            key: "tls_cert",
            kind: PATH,
            flag: "cert", "FILE", "TERND_CERT",
            help: "PEM certificate chain for the TLS listeners; reloaded on SIGHUP [default: none]",
        }
        /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the TLS listeners.
        /// Default `None`; see [`tls_cert`](Self::tls_cert).
        tls_key: Option<PathBuf> {
            default: None,
            key: "tls_key",
            kind: PATH,
            flag: "key", "FILE", "TERND_KEY",
            help: "PEM private key for --cert; reloaded on SIGHUP [default: none]",
        }
        /// Time a client has to complete the TLS handshake. Default 10 s; nonzero.
        tls_handshake_timeout: Duration {
            default: Duration::from_secs(10),
            key: "tls_handshake_timeout",
            kind: Dur::NONZERO,
            flag: "tls-handshake-timeout", "DUR", "TERND_TLS_HANDSHAKE_TIMEOUT",
            help: "Time a client has to complete the TLS handshake [default: 10s]",
        }
        /// Allow RFC 6062 TCP allocations (REQUESTED-TRANSPORT=TCP over a TCP or
        /// TLS control connection). Default `false`, as hardening guides advise.
        tcp_relay: bool {
            default: false,
            key: "tcp_relay",
            kind: Bool,
            flag: "tcp-relay", "BOOL", "TERND_TCP_RELAY",
            help: "Allow RFC 6062 TCP allocations (REQUESTED-TRANSPORT=TCP) [default: false]",
        }
        /// TCP/TLS listener addresses (each one of [`listen`](Self::listen) or
        /// [`tls_listen`](Self::tls_listen)) that expect a PROXY protocol v1/v2
        /// header on every connection (behind an L4 load balancer); connections
        /// without a valid header there are refused. Default empty. The header
        /// is trusted: enable it only on listeners reachable solely through the
        /// load balancer.
        proxy_protocol: Vec<SocketAddr> {
            default: Vec::new(),
            key: "proxy_protocol",
            kind: List(values::listener_list),
            flag: "proxy-protocol", "ADDR", "TERND_PROXY_PROTOCOL",
            help: "TCP or TLS listener address (from --listen or --tls-listen) that expects a PROXY \
                   protocol v1/v2 header on every connection; only for listeners reachable solely \
                   through the load balancer; repeatable [default: none]",
        }
        /// Maximum concurrent TCP/TLS client connections per source IP address.
        /// Default 100; range `1..=1_000_000`.
        max_connections_per_ip: usize {
            default: 100,
            key: "max_connections_per_ip",
            kind: Int::new(values::max_connections_per_ip),
            flag: "max-connections-per-ip", "N", "TERND_MAX_CONNECTIONS_PER_IP",
            help: "Maximum concurrent TCP/TLS connections per client IP (IPv6: per /64), \
                   1..=1000000 [default: 100]",
        }
        /// Graceful-shutdown (drain) limit. On SIGTERM (or Ctrl-C) ternd stops
        /// accepting new allocations — a new Allocate gets 300 (Try Alternate)
        /// with ALTERNATE-SERVER when [`alternate_server`](Self::alternate_server)
        /// is set, else 508 (Insufficient Capacity) — and `/readyz` turns 503;
        /// it keeps relaying for the existing allocations until they have all
        /// ended or this much time has passed, then exits with status 0. A second
        /// signal stops it at once. Default 30 s; 0 = stop at once (no drain).
        drain_timeout: Duration {
            default: Duration::from_secs(30),
            key: "drain_timeout",
            kind: Dur::OR_ZERO,
            flag: "drain-timeout", "DUR", "TERND_DRAIN_TIMEOUT",
            help: "On SIGTERM / Ctrl-C, keep relaying for existing allocations (new ones refused, \
                   /readyz 503) until they end or this much time passes, then exit 0; a second \
                   signal stops at once; 0 = stop at once [default: 30s]",
        }
        /// Address sent in ALTERNATE-SERVER with 300 (Try Alternate) to new
        /// Allocate requests while draining (RFC 8489 §10, RFC 8656); used only
        /// while draining. A concrete `IP:PORT` (no unspecified or multicast IP,
        /// no port 0). Default `None`: new Allocates get 508 while draining.
        alternate_server: Option<SocketAddr> {
            default: None,
            key: "alternate_server",
            kind: Text(values::alternate_server),
            flag: "alternate-server", "ADDR", "TERND_ALTERNATE_SERVER",
            help: "IP:PORT sent in ALTERNATE-SERVER with 300 (Try Alternate) to new Allocates while \
                   draining; empty = none, they get 508 [default: none]",
        }
        /// Serve RFC 5780 NAT behaviour discovery (STUN Binding over UDP).
        ///
        /// Default `false`, for two reasons: it needs a second IP address on the
        /// host ([`alt_ip`](Self::alt_ip)), and it lets an unauthenticated
        /// packet make the server answer from another address and/or port
        /// (CHANGE-REQUEST) — the response is never larger than needed and goes
        /// only to the requester's IP address.
        ///
        /// With it on, Binding responses carry OTHER-ADDRESS and
        /// RESPONSE-ORIGIN, a CHANGE-REQUEST is answered from the alternate IP
        /// and/or the alternate port, and RESPONSE-PORT and PADDING are
        /// honoured. It is served over UDP on four sockets: primary IP / primary
        /// port, primary IP / alternate port, alternate IP / primary port and
        /// alternate IP / alternate port. The primary address is the first
        /// [`listen`](Self::listen) entry whose IP has `alt_ip`'s family and is
        /// not unspecified (see [`rfc5780_primary`](Self::rfc5780_primary));
        /// there must be one, and its IP must differ from `alt_ip`. Requires
        /// [`alt_ip`](Self::alt_ip).
        rfc5780: bool {
            default: false,
            key: "rfc5780",
            kind: Bool,
            flag: "rfc5780", "BOOL", "TERND_RFC5780",
            help: "Serve RFC 5780 NAT behaviour discovery over UDP (OTHER-ADDRESS, RESPONSE-ORIGIN, \
                   CHANGE-REQUEST, RESPONSE-PORT, PADDING); needs --alt-ip and a specific --listen \
                   address of its family [default: false]",
        }
        /// The alternate IP address of RFC 5780 (the one a change-IP
        /// CHANGE-REQUEST is answered from, and OTHER-ADDRESS names): a concrete
        /// unicast address (no unspecified or multicast IP), different from the
        /// primary IP and of its family. Default `None`. Required by, and only
        /// allowed with, [`rfc5780`](Self::rfc5780)` = true`.
        alt_ip: Option<IpAddr> {
            default: None,
            key: "alt_ip",
            kind: Text(values::alt_ip),
            flag: "alt-ip", "IP", "TERND_ALT_IP",
            help: "Second IP address for --rfc5780 (change-IP answers come from it); only with \
                   --rfc5780; empty = none [default: none]",
        }
        /// The alternate port of RFC 5780 (the one a change-port CHANGE-REQUEST
        /// is answered from). Default `None`: the primary listen port + 1 (0 in
        /// the file or on the command line also means that). When set it must
        /// differ from the primary port; only allowed with
        /// [`rfc5780`](Self::rfc5780)` = true`.
        alt_port: Option<u16> {
            default: None,
            key: "alt_port",
            kind: Int::with_text(values::alt_port, values::alt_port_text),
            flag: "alt-port", "PORT", "TERND_ALT_PORT",
            help: "Alternate port for --rfc5780 (change-port answers come from it); only with \
                   --rfc5780; 0 = the primary listen port + 1 [default: port + 1]",
        }
    }
    extra {
        /// TURN relay settings.
        relay: RelayConfig = RelayConfig::default();
        /// Authentication settings.
        auth: AuthConfig = AuthConfig::default();
        /// HTTP endpoint settings.
        http: HttpConfig = HttpConfig::default();
        /// Logging settings.
        log: LogConfig = LogConfig::default();
        /// Cluster settings.
        cluster: ClusterConfig = ClusterConfig::default();
        /// Keys that were explicitly set (file, env or CLI) for features this
        /// build does not implement yet (dotted TOML names, e.g. `http.listen`).
        not_yet_supported: Vec<&'static str> = Vec::new();
        /// Where each explicitly given value came from, for the errors of
        /// [`Config::load_files`] and of the checks across settings. Not part
        /// of the configuration's value: `==` ignores it.
        origins: Origins = Origins::default();
    }
}

section! {
    /// TURN relay settings (`[relay]`).
    #[derive(Clone, PartialEq)]
    pub struct RelayConfig at [.relay] prefix "relay." {
        /// Local addresses relayed transport addresses are allocated on; at most
        /// one per address family. Default: none (per family: the specific listen
        /// address, else the host's primary address; no IPv6 relay without one).
        relay_ips: Vec<IpAddr> {
            default: Vec::new(),
            key: "relay_ips",
            kind: List(values::relay_ips),
            flag: "relay-ip", "IP", "TERND_RELAY_IP",
            help: "Local address to allocate relayed addresses on; repeatable, at most one per \
                   address family [default: the specific listen address of each family, else the \
                   host's primary IPv4/IPv6 address]",
        }
        /// Public addresses advertised instead of the relay addresses (behind
        /// NAT); at most one per address family.
        external_ips: Vec<ExternalIp> {
            default: Vec::new(),
            key: "external_ips",
            kind: List(values::external_ips),
            flag: "external-ip", "IP|PUBLIC/PRIVATE", "TERND_EXTERNAL_IP",
            help: "Public address to advertise for relayed addresses (behind NAT): IP or \
                   PUBLIC/PRIVATE; repeatable, one per family [default: none]",
        }
        /// Relay port range. Default `49152-65535`.
        ports: PortRange {
            default: PortRange::default(),
            key: "ports",
            kind: Text(values::port_range),
            flag: "relay-ports", "LO-HI", "TERND_RELAY_PORTS",
            help: "Relay port range [default: 49152-65535]",
        }
        /// Peer networks explicitly allowed (overrides the built-in deny list). A
        /// `FIRST-LAST` range is stored as the fewest CIDRs covering it.
        allow_peer: Vec<IpNet> {
            default: Vec::new(),
            key: "allow_peer",
            kind: List(values::cidrs),
            flag: "allow-peer", "CIDR", "TERND_ALLOW_PEER",
            help: "Peer network to allow even if denied by default: a CIDR, an IP or a \
                   FIRST-LAST range (e.g. 10.0.0.0-10.0.255.255); repeatable [default: none]",
        }
        /// Peer networks explicitly denied (overrides everything).
        deny_peer: Vec<IpNet> {
            default: Vec::new(),
            key: "deny_peer",
            kind: List(values::cidrs),
            flag: "deny-peer", "CIDR", "TERND_DENY_PEER",
            help: "Peer network to deny, as for --allow-peer (CIDR, IP or FIRST-LAST range); beats \
                   --allow-peer; repeatable [default: none]",
        }
        /// Use the RFC 5766 channel number range (0x4000-0x7FFF) instead of
        /// RFC 8656's (0x4000-0x4FFF). Default `false`.
        rfc5766_channel_numbers: bool {
            default: false,
            key: "rfc5766_channel_numbers",
            kind: Bool,
            flag: "rfc5766-channel-numbers", "BOOL", "TERND_RFC5766_CHANNEL_NUMBERS",
            help: "Use the RFC 5766 channel number range 0x4000-0x7FFF [default: false]",
        }
        /// Allocation lifetime when the client asks for none. Default 600 s.
        default_allocation_lifetime: Duration {
            default: Duration::from_secs(600),
            key: "default_allocation_lifetime",
            kind: Dur::NONZERO,
            flag: "default-allocation-lifetime", "DUR", "TERND_DEFAULT_ALLOCATION_LIFETIME",
            help: "Allocation lifetime when the client requests none [default: 10m]",
        }
        /// Longest allocation lifetime granted. Default 3600 s; never shorter than
        /// [`default_allocation_lifetime`](Self::default_allocation_lifetime).
        max_allocation_lifetime: Duration {
            default: Duration::from_secs(3600),
            key: "max_allocation_lifetime",
            kind: Dur::NONZERO,
            flag: "max-allocation-lifetime", "DUR", "TERND_MAX_ALLOCATION_LIFETIME",
            help: "Longest allocation lifetime granted [default: 1h]",
        }
        /// Unauthenticated requests per second allowed per client source address
        /// (IPv4 address or IPv6 /64) and worker; 0 turns the limit off. Default
        /// 200. Counted: every request other than Binding that carries no
        /// MESSAGE-INTEGRITY(-SHA256), and every request answered 401 or 438.
        /// Over the limit they are dropped unanswered (no amplification).
        unauth_rate_limit: u32 {
            default: crate::turn::DEFAULT_UNAUTH_RATE_LIMIT,
            key: "unauth_rate_limit",
            kind: Int::new(values::any::<u32>),
            flag: "unauth-rate-limit", "N", "TERND_UNAUTH_RATE_LIMIT",
            help: "Unauthenticated requests (and 401/438 answers) per second per client IP (IPv6: \
                   per /64) and worker, 0 = no limit; over it they are dropped unanswered \
                   [default: 200]",
        }
        /// Burst of [`unauth_rate_limit`](Self::unauth_rate_limit), in requests;
        /// at least 1. Default 1000.
        unauth_rate_burst: u32 {
            default: crate::turn::DEFAULT_UNAUTH_RATE_BURST,
            key: "unauth_rate_burst",
            kind: Int::new(values::unauth_rate_burst),
            flag: "unauth-rate-burst", "N", "TERND_UNAUTH_RATE_BURST",
            help: "Burst of --unauth-rate-limit, in requests, at least 1 [default: 1000]",
        }
    }
    core
    /// Quotas and per-allocation limits: the core's own type, replaced as a
    /// whole on reload ([`Shared::replace_limits`](crate::turn::Shared::replace_limits)).
    /// Over `user_quota` and `max_allocations_per_ip` Allocate gets 486
    /// (Allocation Quota Reached), over `total_quota` 508 (Insufficient
    /// Capacity); 0 means unlimited for the three quotas and for `max_bps`
    /// (bytes per second per allocation and direction, coturn's unit; excess
    /// packets are dropped and counted, never queued; bursts of a quarter
    /// second of traffic, at least 3000 bytes, pass).
    limits: Limits {
        user_quota: u32 {
            default: crate::turn::Limits::default().user_quota,
            key: "user_quota",
            kind: Int::new(values::any::<u32>),
            flag: "user-quota", "N", "TERND_USER_QUOTA",
            help: "Maximum concurrent allocations per user, 0 = unlimited [default: 100]",
        }
        total_quota: u32 {
            default: crate::turn::Limits::default().total_quota,
            key: "total_quota",
            kind: Int::new(values::any::<u32>),
            flag: "total-quota", "N", "TERND_TOTAL_QUOTA",
            help: "Maximum concurrent allocations on the whole server, 0 = unlimited; over it \
                   Allocate gets 508 [default: 0]",
        }
        max_allocations_per_ip: u32 {
            default: crate::turn::Limits::default().max_allocations_per_ip,
            key: "max_allocations_per_ip",
            kind: Int::new(values::any::<u32>),
            flag: "max-allocations-per-ip", "N", "TERND_MAX_ALLOCATIONS_PER_IP",
            help: "Maximum concurrent allocations per client IP (IPv6: per /64), 0 = unlimited; \
                   over it Allocate gets 486 [default: 1000]",
        }
        max_permissions: usize {
            default: crate::turn::Limits::default().max_permissions,
            key: "max_permissions_per_allocation",
            kind: Int::new(values::max_permissions),
            flag: "max-permissions-per-allocation", "N", "TERND_MAX_PERMISSIONS_PER_ALLOCATION",
            help: "Most permissions per allocation, 1..=65535; CreatePermission and ChannelBind \
                   beyond it get 508 [default: 64]",
        }
        max_channels: usize {
            default: crate::turn::Limits::default().max_channels,
            key: "max_channels_per_allocation",
            kind: Int::new(values::max_channels),
            flag: "max-channels-per-allocation", "N", "TERND_MAX_CHANNELS_PER_ALLOCATION",
            help: "Most channels per allocation, 1..=16384; ChannelBind beyond it gets 508 \
                   [default: 64]",
        }
        max_bps: u64 {
            default: crate::turn::Limits::default().max_bps,
            key: "max_bps",
            kind: Int::new(values::any::<u64>),
            flag: "max-bps", "BYTES", "TERND_MAX_BPS",
            help: "Bandwidth limit per allocation and direction in BYTES per second, 0 = \
                   unlimited; excess packets are dropped [default: 0]",
        }
    }
}
