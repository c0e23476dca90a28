//! What a reload (SIGHUP) cannot apply: the settings that shape sockets, workers, the
//! HTTP endpoint, logging and the cluster task, which are fixed at start.
//! [`Config::needs_restart`] names the ones that changed, so that the reload says so
//! instead of keeping the old values silently.

use super::Config;

impl Config {
    /// The TOML keys whose values differ between `self` (running) and `new` (re-read)
    /// and that only a restart applies. Secrets, users, the realm, the peer lists, the
    /// quotas and limits, and the TLS certificate's files are reloaded, so they are
    /// never named.
    pub fn needs_restart(&self, new: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        macro_rules! compare {
            ($($key:literal => $($field:ident).+;)*) => {
                $( if self.$($field).+ != new.$($field).+ { changed.push($key); } )*
            };
        }
        compare! {
            "listen" => listen;
            "workers" => workers;
            "udp_gso" => udp_gso;
            "udp_recv_buffer" => udp_recv_buffer;
            "udp_send_buffer" => udp_send_buffer;
            "software" => software;
            "stun_backward_compatibility" => stun_backward_compatibility;
            "max_frame_size" => max_frame_size;
            "tcp_idle_timeout" => tcp_idle_timeout;
            "max_tcp_connections" => max_tcp_connections;
            "max_connections_per_ip" => max_connections_per_ip;
            "tls_listen" => tls_listen;
            "tls_handshake_timeout" => tls_handshake_timeout;
            "tcp_relay" => tcp_relay;
            "proxy_protocol" => proxy_protocol;
            "drain_timeout" => drain_timeout;
            "alternate_server" => alternate_server;
            "rfc5780" => rfc5780;
            "alt_ip" => alt_ip;
            "alt_port" => alt_port;
            "relay.relay_ips" => relay.relay_ips;
            "relay.external_ips" => relay.external_ips;
            "relay.ports" => relay.ports;
            "relay.rfc5766_channel_numbers" => relay.rfc5766_channel_numbers;
            "relay.default_allocation_lifetime" => relay.default_allocation_lifetime;
            "relay.max_allocation_lifetime" => relay.max_allocation_lifetime;
            "relay.unauth_rate_limit" => relay.unauth_rate_limit;
            "relay.unauth_rate_burst" => relay.unauth_rate_burst;
            "auth.rest_separator" => auth.rest_separator;
            "auth.nonce_lifetime" => auth.nonce_lifetime;
            "http" => http;
            "log" => log;
            "cluster" => cluster;
        }
        // A certificate switched on or off (not just renewed) changes the listeners.
        if self.tls_cert.is_some() != new.tls_cert.is_some() {
            changed.push("tls_cert");
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::from_toml_str(text, "test.toml").expect("valid")
    }

    #[test]
    fn names_what_needs_a_restart_and_nothing_that_reloads() {
        let old = parse("listen = [\"127.0.0.1:3478\"]\n[relay]\nuser_quota = 5\n");
        let same = parse(
            "listen = [\"127.0.0.1:3478\"]\nrealm = \"other\"\n[relay]\nuser_quota = 9\n\
             deny_peer = [\"203.0.113.0/24\"]\n[auth]\nsecrets = [\"s3cret\"]\n",
        );
        assert!(
            old.needs_restart(&same).is_empty(),
            "{:?}",
            old.needs_restart(&same)
        );
        let moved = parse(
            "listen = [\"127.0.0.1:3479\"]\nworkers = 3\n[relay]\nuser_quota = 5\n\
             ports = \"40000-40999\"\n[http]\nlisten = \"\"\n",
        );
        assert_eq!(
            old.needs_restart(&moved),
            ["listen", "workers", "relay.ports", "http"]
        );
    }
}
