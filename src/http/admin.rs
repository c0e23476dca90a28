//! The admin API under `/admin/`: list sessions, end one, end a user's; with a cluster,
//! across nodes: list, end on any node, revoke a user, list nodes, drain (bearer token
//! checked against the configured admin token's SHA-256, in constant time).

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use subtle::ConstantTimeEq as _;

use super::State;
use super::respond::{Resp, bearer_token, error, json, method_not_allowed, not_found};
use super::sha256;

pub(super) async fn admin(state: &State, req: Request<Incoming>) -> Resp {
    let Some(expected) = &state.admin_hash else {
        return not_found();
    };
    let authorized = bearer_token(req.headers())
        .is_ok_and(|t| bool::from(sha256(t).as_slice().ct_eq(expected.as_slice())));
    if !authorized {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin API: missing or wrong bearer token",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"ternd-admin\""),
        );
        return r;
    }
    let backend = state.backend.clone();
    let Some(admin) = backend.admin() else {
        return not_found();
    };
    let cluster = state.ice.cluster.as_ref();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    // A query parameter, percent-decoded; `Err` for a bad escape.
    let param = |name: &str| -> Result<Option<String>, ()> {
        match query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
        {
            None => Ok(None),
            Some((_, v)) => percent_decode(v).map(Some).ok_or(()),
        }
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method();
    match segments.as_slice() {
        ["admin", "sessions"] => {
            if method != Method::GET {
                return method_not_allowed("GET");
            }
            let (Ok(user), Ok(node)) = (param("user"), param("node")) else {
                return bad_query();
            };
            match cluster {
                // The cluster's sessions, from its registry.
                Some(c) => match c.sessions(user.as_deref(), node.as_deref()).await {
                    Ok(list) => json(StatusCode::OK, &list),
                    Err(e) => cluster_unavailable(&e),
                },
                None => {
                    let mut all = admin.sessions().await;
                    if let (Some(u), Some(list)) = (&user, all.as_array_mut()) {
                        list.retain(|s| s.get("user").and_then(|v| v.as_str()) == Some(u));
                    }
                    json(StatusCode::OK, &all)
                }
            }
        }
        ["admin", "sessions", id] => {
            if method != Method::DELETE {
                return method_not_allowed("DELETE");
            }
            let Ok(id) = id.parse::<u64>() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "session id must be a number",
                );
            };
            let Ok(node) = param("node") else {
                return bad_query();
            };
            match (cluster, node) {
                (Some(c), Some(node)) if node != c.node_id() => {
                    // Another node's session: it ends it when it reads the command.
                    match c.end_session(&node, id).await {
                        Ok(_) => json(
                            StatusCode::ACCEPTED,
                            &serde_json::json!({"requested": 1, "node": node, "id": id}),
                        ),
                        Err(e) => cluster_unavailable(&e),
                    }
                }
                (None, Some(_)) => error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no cluster: sessions of other nodes are not known here",
                ),
                _ => {
                    if admin.kill_session(id).await {
                        json(StatusCode::OK, &serde_json::json!({"killed": 1}))
                    } else {
                        error(StatusCode::NOT_FOUND, "not_found", "no such session")
                    }
                }
            }
        }
        ["admin", "users", user, "sessions"] => {
            if method != Method::DELETE {
                return method_not_allowed("DELETE");
            }
            let Some(user) = percent_decode(user) else {
                return bad_user();
            };
            let n = admin.kill_user(user).await;
            json(StatusCode::OK, &serde_json::json!({"killed": n}))
        }
        ["admin", "users", user, "revoke"] => {
            if method != Method::POST {
                return method_not_allowed("POST");
            }
            let Some(user) = percent_decode(user) else {
                return bad_user();
            };
            let Some(c) = cluster else {
                return no_cluster();
            };
            match c.revoke(&user).await {
                Ok(at_ms) => json(
                    StatusCode::OK,
                    &serde_json::json!({"revoked": user, "at_ms": at_ms}),
                ),
                Err(e) => cluster_unavailable(&e),
            }
        }
        ["admin", "nodes"] => {
            if method != Method::GET {
                return method_not_allowed("GET");
            }
            let Some(c) = cluster else {
                return no_cluster();
            };
            json(StatusCode::OK, &c.nodes())
        }
        ["admin", "drain"] | ["admin", "nodes", _, "drain"] => {
            if method != Method::POST {
                return method_not_allowed("POST");
            }
            let Some(c) = cluster else {
                return no_cluster();
            };
            let node = match segments.as_slice() {
                ["admin", "nodes", node, "drain"] => match percent_decode(node) {
                    Some(n) => n,
                    None => return bad_user(),
                },
                _ => c.node_id().to_owned(),
            };
            match c.drain(&node).await {
                Ok(()) => json(StatusCode::ACCEPTED, &serde_json::json!({"draining": node})),
                Err(e) => cluster_unavailable(&e),
            }
        }
        _ => not_found(),
    }
}

fn bad_query() -> Resp {
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "query values must be percent-encoded UTF-8",
    )
}

fn bad_user() -> Resp {
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "path segments must be percent-encoded UTF-8",
    )
}

fn no_cluster() -> Resp {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "this needs a cluster ([cluster] redis_url)",
    )
}

fn cluster_unavailable(e: &dyn std::fmt::Display) -> Resp {
    tracing::warn!(error = %e, "admin API: cluster unavailable");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "cluster_unavailable",
        "the cluster's Redis is unavailable; try again",
    )
}

/// Decodes `%XX` escapes; `None` on a bad escape or invalid UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("alice").as_deref(), Some("alice"));
        assert_eq!(percent_decode("a%20b%3A1").as_deref(), Some("a b:1"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
