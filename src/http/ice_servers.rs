//! `POST|GET /v1/ice-servers`: an access token in, WebRTC `iceServers` with short-lived TURN
//! credentials out.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde::Serialize;

use super::respond::{
    Resp, bearer_error, bearer_token, drain_body, error, method_not_allowed, response,
};
use super::token::TokenError;
use super::{IceSettings, State};
use crate::ice::{IceServer, url_host};

/// The response shape of `/v1/ice-servers`.
#[derive(Serialize)]
struct IceResponse {
    #[serde(rename = "iceServers")]
    ice_servers: Vec<IceServer>,
    #[serde(rename = "expiresOn")]
    expires_on: String,
    ttl: u64,
}

pub(super) async fn ice_servers(state: &State, caller: IpAddr, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    if method == Method::OPTIONS {
        // CORS preflight; the allow headers are added only for listed origins.
        let listed = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| state.cors.iter().any(|c| c == o));
        let mut r = response(StatusCode::NO_CONTENT, "text/plain", Bytes::new());
        r.headers_mut().remove(header::CONTENT_TYPE);
        if listed {
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        return r;
    }
    if method != Method::GET && method != Method::POST {
        return method_not_allowed("GET, POST, OPTIONS");
    }
    if state.verifier.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the credentials endpoint is not configured (no token keys)",
        );
    }
    // With a cluster: the nodes to name, picked before the body is read.
    let nodes = state.ice.cluster.as_ref().map(|c| {
        let named = query_param(req.uri().query().unwrap_or(""), "region");
        let header = |h: &str| {
            req.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let region = c.region_of(named.as_deref(), &header, caller);
        c.ice_urls(region.as_deref())
    });
    let token = match bearer_token(req.headers()) {
        Ok(t) => t.to_owned(),
        Err(e) => return bearer_error(&e, None),
    };
    if method == Method::POST
        && let Err(r) = drain_body(req).await
    {
        return r;
    }
    let verified = match state.verifier.verify(&token) {
        Ok(v) => v,
        Err(e) => return bearer_error(&e, state.verifier.scope()),
    };
    if state.ice.secret.is_empty() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "no REST secret configured",
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = verified.exp.saturating_sub(now);
    if left == 0 {
        return bearer_error(&TokenError::Invalid("token expired"), None);
    }
    let ttl = state.ice.ttl.as_secs().max(1).min(left);
    let expiry = now + ttl;
    let (username, credential) = crate::auth::rest::credentials(
        &state.ice.secret,
        &verified.sub,
        expiry,
        state.ice.separator,
    );
    let ice_servers = match nodes {
        None => ice_server_list(&state.ice, username, credential),
        Some((_, turn)) if turn.is_empty() => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "no relay of the cluster takes new allocations now",
            );
        }
        Some((stun, turn)) => pair(stun, turn, username, credential),
    };
    let body = IceResponse {
        ice_servers,
        expires_on: humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(expiry))
            .to_string(),
        ttl,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut r = response(StatusCode::OK, "application/json", bytes);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The value of query parameter `name` (percent-decoded), if given.
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| super::admin::percent_decode(v))
}

/// `stun:` URLs, then `turn:` (UDP, TCP) and `turns:` URLs with credentials.
pub(super) fn ice_server_list(
    ice: &IceSettings,
    username: String,
    credential: String,
) -> Vec<IceServer> {
    let hosts: Vec<String> = if ice.hosts.is_empty() {
        vec!["127.0.0.1".to_owned()]
    } else {
        ice.hosts.iter().map(|h| url_host(h)).collect()
    };
    let port = ice.udp_tcp_port;
    let stun = hosts.iter().map(|h| format!("stun:{h}:{port}")).collect();
    let mut turn = Vec::new();
    for h in &hosts {
        turn.push(format!("turn:{h}:{port}?transport=udp"));
        turn.push(format!("turn:{h}:{port}?transport=tcp"));
    }
    if let Some(tls_port) = ice.tls_port {
        for h in &hosts {
            turn.push(format!("turns:{h}:{tls_port}?transport=tcp"));
        }
    }
    pair(stun, turn, username, credential)
}

/// The `iceServers` pair: the `stun:` URLs, then the `turn:`/`turns:` ones with the
/// credentials.
fn pair(
    stun: Vec<String>,
    turn: Vec<String>,
    username: String,
    credential: String,
) -> Vec<IceServer> {
    vec![
        IceServer {
            urls: stun,
            username: None,
            credential: None,
        },
        IceServer {
            urls: turn,
            username: Some(username),
            credential: Some(credential),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ice = IceSettings {
            hosts: vec!["turn.example.org".into(), "2001:db8::1".into()],
            udp_tcp_port: 3478,
            tls_port: Some(5349),
            secret: "s".into(),
            separator: ':',
            ttl: Duration::from_secs(60),
            cluster: None,
        };
        let list = ice_server_list(&ice, "u".into(), "p".into());
        assert_eq!(
            list[0].urls,
            vec!["stun:turn.example.org:3478", "stun:[2001:db8::1]:3478"]
        );
        assert_eq!(list[1].urls.len(), 6);
        assert_eq!(list[1].urls[4], "turns:turn.example.org:5349?transport=tcp");
        let ice = IceSettings {
            tls_port: None,
            ..ice
        };
        let list = ice_server_list(&ice, "u".into(), "p".into());
        assert!(list[1].urls.iter().all(|u| u.starts_with("turn:")));
    }
}
