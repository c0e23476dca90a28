//! What the coturn options ternd has no equivalent for are, and what the options it
//! needs nothing for are: the reasons printed next to them.

/// Why coturn option `name` is not translated, if it is one of those ternd cannot do.
pub(super) fn reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "listening-device" | "relay-device" => {
            "ternd does not bind to a network device; use listen / relay_ips addresses"
        }
        "alt-tls-listening-port" => "ternd's RFC 5780 discovery is over UDP only",
        "cpus" => "ternd counts the CPUs itself (workers = 0 means one worker per CPU)",
        "no-auth" => "ternd never relays without authentication (every Allocate needs credentials)",
        "userdb" | "db" | "psql-userdb" | "sql-userdb" | "mysql-userdb" | "mongo-userdb"
        | "redis-userdb" => {
            "ternd keeps no user database: use REST secrets (auth.secrets), static users \
             ([[auth.users]]) or the credentials endpoint (/v1/ice-servers)"
        }
        "redis-statsdb" => "ternd publishes no statistics to Redis; scrape /metrics instead",
        "prometheus-username-labels" => {
            "ternd's metrics have no per-user labels (unbounded cardinality); \
             GET /admin/sessions lists sessions by user"
        }
        "no-auth-pings" | "no-dynamic-ip-list" | "no-dynamic-realms" => {
            "ternd reads nothing from a database at run time"
        }
        "server-name" => "ternd has no server name; the realm is `realm`",
        "oauth" => {
            "ternd has no third-party authorization (RFC 7635); its credentials endpoint \
             takes access tokens (http.token_*) and returns TURN credentials"
        }
        "bps-capacity" => {
            "ternd has no server-wide bandwidth cap; relay.max_bps limits each allocation"
        }
        "daemon" => "ternd runs in the foreground: use a service manager (deploy/ternd.service)",
        "check-origin-consistency" => "ternd does not check the ORIGIN attribute",
        "no-udp" => "ternd serves UDP and TCP on every listen address; one cannot be turned off",
        "no-tcp" => "ternd serves UDP and TCP on every listen address; one cannot be turned off",
        "no-udp-relay" => "ternd always relays UDP",
        "dtls" => "ternd has no DTLS",
        "channel-lifetime" | "permission-lifetime" => {
            "ternd uses RFC 8656's fixed lifetimes (channels 10 min, permissions 5 min)"
        }
        "stun-only" => "ternd has no STUN-only mode",
        "no-stun" => "ternd always answers STUN Binding requests",
        "raw-public-keys" => "ternd's TLS uses X.509 certificates only",
        "pkey-pwd" => "ternd reads unencrypted PEM private keys only: decrypt the key file",
        "log-file" | "syslog" | "no-stdout-log" | "syslog-facility" => {
            "ternd logs to stderr (text or JSON, log.format): let the service manager or \
             journald keep the log"
        }
        "simple-log" | "new-log-timestamp" | "new-log-timestamp-format" => {
            "ternd's log lines have their own timestamps (log.format = \"text\" or \"json\")"
        }
        "log-binding" => "ternd does not log Binding requests",
        "udp-self-balance" => "ternd has no self-balancing: use [cluster] redirects",
        "tcp-alternate-server" | "udp-alternate-server" => {
            "ternd has one alternate_server for every transport"
        }
        "max-allocate-timeout" => "ternd has no setting for the allocation timeout",
        "drain-min-allocations" => "ternd drains until its allocations end or drain_timeout passes",
        "cipher-list" | "ec-curve-name" | "dh-file" | "dh566" | "dh1066" => {
            "ternd's TLS (rustls) picks its own modern cipher suites and groups"
        }
        "tlsv1" | "tlsv1_1" => "ternd never offers TLS 1.0 or 1.1 (RFC 8996)",
        "no-tlsv1_2" => "ternd offers TLS 1.2 and 1.3; TLS 1.2 cannot be turned off",
        "CA-file" => "ternd does not ask TURN clients for certificates",
        "pidfile" | "proc-user" | "proc-group" => {
            "run ternd under a service manager as the user it should be (deploy/ternd.service)"
        }
        "secure-stun" => "ternd answers Binding requests without authentication",
        "mobility" => "ternd has no ICE mobility (RFC 8016)",
        "cli" | "cli-ip" | "cli-port" | "cli-password" | "cli-max-output-sessions" => {
            "ternd has no telnet CLI: its admin API is HTTP (http.admin_token, /admin/sessions)"
        }
        "web-admin" | "web-admin-ip" | "web-admin-port" | "web-admin-listen-on-workers" => {
            "ternd has no web admin: its admin API is HTTP (http.admin_token, /admin/sessions)"
        }
        "server-relay" => "ternd has no server relay mode",
        "secret-key-file" => {
            "ternd stores no encrypted passwords; static users take a password or an MD5 key"
        }
        "keep-address-family" | "allocation-default-address-family" => {
            "ternd follows RFC 8656: IPv4 unless REQUESTED-ADDRESS-FAMILY asks for IPv6"
        }
        "acme-redirect" => "ternd does not redirect ACME requests: serve them elsewhere",
        "response-origin-only-with-rfc5780" => {
            "ternd sends RESPONSE-ORIGIN only with RFC 5780 on already"
        }
        "respond-http-unsupported" => "ternd does not answer HTTP on its TURN listeners",
        "drop-invalid-packets" | "drop-invalid-packets-log" => {
            "ternd drops invalid packets and counts them (ternd_dropped_total)"
        }
        "udp-recvmmsg-log" | "udp-sendmmsg-log" => "ternd has no such logging",
        "include-reason-string" => "ternd's error responses carry their reason phrase already",
        "multiplex-peer" | "multiplex-peer-port" | "multiplex-peer-max-peers" => {
            "ternd has no peer multiplexing"
        }
        "stateless-nonce-secret" => {
            "ternd's nonces are stateless with a secret drawn at start (per process)"
        }
        "version" => "not a setting",
        "stun-backward-compatibility" => {
            "ternd sends MAPPED-ADDRESS only to RFC 3489 clients (stun_backward_compatibility, \
             coturn's rfc3489-compatibility) and with RFC 5780"
        }
        _ => return None,
    })
}

/// Why coturn option `name` needs no setting in ternd, if it is one ternd does already.
pub(super) fn implied(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt-cred-mech" => "ternd always uses long-term credentials",
        "fingerprint" => "ternd adds FINGERPRINT to the answers of requests that carry one",
        "no-cli" => "ternd has no telnet CLI",
        "no-dtls" => "ternd has no DTLS",
        "no-tcp-relay" => "ternd's RFC 6062 TCP relaying is off by default (tcp_relay = false)",
        "no-multicast-peers" => "ternd refuses multicast peers by default",
        "no-software-attribute" => "ternd sends no SOFTWARE attribute by default",
        "no-tls" => "ternd serves TLS only on tls_listen addresses (none by default)",
        "no-tlsv1" | "no-tlsv1_1" => "ternd never offers TLS 1.0 or 1.1 (RFC 8996)",
        "no-rfc5780" => "ternd's RFC 5780 discovery is off by default",
        "udp-recvmmsg" => "ternd always receives in batches (recvmmsg)",
        "stateless-nonce" => "ternd's nonces are always stateless",
        "unauthorized-ratelimit" => {
            "ternd rate-limits unauthenticated requests by default (relay.unauth_rate_limit = 200)"
        }
        _ => return None,
    })
}
