//! The admin API under `/admin/`: list sessions, end one, end a user's (bearer token
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
    let path = req.uri().path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method();
    match segments.as_slice() {
        ["admin", "sessions"] => {
            if method != Method::GET {
                return method_not_allowed("GET");
            }
            json(StatusCode::OK, &admin.sessions().await)
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
            if admin.kill_session(id).await {
                json(StatusCode::OK, &serde_json::json!({"killed": 1}))
            } else {
                error(StatusCode::NOT_FOUND, "not_found", "no such session")
            }
        }
        ["admin", "users", user, "sessions"] => {
            if method != Method::DELETE {
                return method_not_allowed("DELETE");
            }
            let Some(user) = percent_decode(user) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "user must be percent-encoded UTF-8",
                );
            };
            let n = admin.kill_user(user).await;
            json(StatusCode::OK, &serde_json::json!({"killed": n}))
        }
        _ => not_found(),
    }
}

/// Decodes `%XX` escapes; `None` on a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
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
