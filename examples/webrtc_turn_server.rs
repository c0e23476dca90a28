//! The webrtc-rs `turn` 0.17 server as a benchmark subject for `benches/compare.sh` (a third
//! server row beside ternd and coturn). Not part of ternd: a dev-dependency example.
//!
//! ```sh
//! cargo run --release --example webrtc_turn_server -- 127.0.0.1:3578 bench=pass 20000-32000
//! ```
//!
//! Listens on UDP ADDR, relays on ADDR's IP with ports LO-HI, long-term credentials for the
//! static USER=PASS (realm "ternd"); stops by itself after 30 minutes at most.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use turn::auth::{AuthHandler, generate_auth_key};
use turn::relay::relay_range::RelayAddressGeneratorRanges;
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};

const REALM: &str = "ternd";

struct StaticUsers(HashMap<String, Vec<u8>>);

impl AuthHandler for StaticUsers {
    fn auth_handle(
        &self,
        username: &str,
        _realm: &str,
        _src: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        self.0
            .get(username)
            .cloned()
            .ok_or_else(|| turn::Error::Other(format!("unknown user {username}")))
    }
}

fn usage() -> ! {
    eprintln!("usage: webrtc_turn_server ADDR USER=PASS LO-HI");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, user, ports] = args.as_slice() else {
        usage()
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        usage()
    };
    let Some((name, pass)) = user.split_once('=') else {
        usage()
    };
    let Some((lo, hi)) = ports
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
    else {
        usage()
    };
    let conn = match tokio::net::UdpSocket::bind(addr).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("bind {addr}: {e}");
            std::process::exit(1)
        }
    };
    let users = StaticUsers(HashMap::from([(
        name.to_owned(),
        generate_auth_key(name, REALM, pass),
    )]));
    let server = Server::new(ServerConfig {
        conn_configs: vec![ConnConfig {
            conn,
            relay_addr_generator: Box::new(RelayAddressGeneratorRanges {
                relay_address: addr.ip(),
                min_port: lo,
                max_port: hi,
                max_retries: 10,
                address: addr.ip().to_string(),
                net: Arc::new(webrtc_util::vnet::net::Net::new(None)),
            }),
        }],
        realm: REALM.to_owned(),
        auth_handler: Arc::new(users),
        channel_bind_timeout: Duration::from_secs(0),
        alloc_close_notify: None,
    })
    .await;
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("webrtc-rs turn server: {e}");
            std::process::exit(1)
        }
    };
    eprintln!("webrtc-rs turn server on {addr}, relay ports {lo}-{hi}");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = tokio::time::sleep(Duration::from_secs(1800)) => {}
    }
    let _ = server.close().await;
}
