//! WebRTC `iceServers` configuration, as `RTCPeerConnection` takes it.

use serde::Serialize;

/// One entry of `iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    /// `stun:`, `turn:` and `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Formats a host for a URL: IPv6 literals go in brackets.
pub fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `iceServers` for a server reachable at `host:port` over UDP and TCP, with credentials.
pub fn ice_servers(host: &str, port: u16, username: &str, password: &str) -> Vec<IceServer> {
    let h = url_host(host);
    vec![
        IceServer {
            urls: vec![format!("stun:{h}:{port}")],
            username: None,
            credential: None,
        },
        IceServer {
            urls: vec![
                format!("turn:{h}:{port}?transport=udp"),
                format!("turn:{h}:{port}?transport=tcp"),
            ],
            username: Some(username.to_string()),
            credential: Some(password.to_string()),
        },
    ]
}

/// The JSON object `{"iceServers": [...]}`.
pub fn ice_servers_json(servers: &[IceServer]) -> String {
    #[derive(Serialize)]
    struct Wrapper<'a> {
        #[serde(rename = "iceServers")]
        ice_servers: &'a [IceServer],
    }
    serde_json::to_string(&Wrapper {
        ice_servers: servers,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let s = ice_servers("::1", 3478, "1:u", "p");
        let j = ice_servers_json(&s);
        assert_eq!(
            j,
            r#"{"iceServers":[{"urls":["stun:[::1]:3478"]},{"urls":["turn:[::1]:3478?transport=udp","turn:[::1]:3478?transport=tcp"],"username":"1:u","credential":"p"}]}"#
        );
    }
}
