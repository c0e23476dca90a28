//! Response builders and request helpers shared by the endpoint's handlers.

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::token::TokenError;
use super::{IO_TIMEOUT, MAX_BODY_BYTES, MAX_TOKEN_BYTES};

pub(super) type Resp = Response<Full<Bytes>>;

pub(super) fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(super) fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    response(status, "application/json", body)
}

pub(super) fn error(status: StatusCode, code: &str, description: &str) -> Resp {
    json(
        status,
        &serde_json::json!({"error": code, "error_description": description}),
    )
}

pub(super) fn not_found() -> Resp {
    error(StatusCode::NOT_FOUND, "not_found", "no such resource")
}

pub(super) fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// RFC 6750 §3.1 error: 401 `invalid_token` or 403 `insufficient_scope`.
pub(super) fn bearer_error(err: &TokenError, scope: Option<&str>) -> Resp {
    let (status, code, description) = match err {
        TokenError::Invalid(d) => (StatusCode::UNAUTHORIZED, "invalid_token", *d),
        TokenError::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token lacks the required scope",
        ),
    };
    let mut r = error(status, code, description);
    let mut challenge =
        format!("Bearer realm=\"ternd\", error=\"{code}\", error_description=\"{description}\"");
    if let (TokenError::InsufficientScope, Some(scope)) = (err, scope) {
        challenge.push_str(&format!(", scope=\"{scope}\""));
    }
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

// ---------------------------------------------------------------------------
// Routing

pub(super) fn cors_headers(h: &mut HeaderMap, allowed_origin: Option<&str>) {
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(v) = allowed_origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate"),
        );
    }
}

/// The bearer token of the `Authorization` header.
pub(super) fn bearer_token(headers: &HeaderMap) -> Result<&str, TokenError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values
        .next()
        .ok_or(TokenError::Invalid("missing bearer token"))?;
    if values.next().is_some() {
        return Err(TokenError::Invalid("more than one Authorization header"));
    }
    if value.len() > MAX_TOKEN_BYTES + 16 {
        return Err(TokenError::Invalid("token too large"));
    }
    let value = value
        .to_str()
        .map_err(|_| TokenError::Invalid("malformed Authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(TokenError::Invalid(
        "expected Authorization: Bearer <token>",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Invalid(
            "expected Authorization: Bearer <token>",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Invalid("missing bearer token"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Invalid("token too large"));
    }
    Ok(token)
}

/// Reads (and discards) a request body of at most [`MAX_BODY_BYTES`].
pub(super) async fn drain_body(req: Request<Incoming>) -> Result<(), Resp> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body too large",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES);
    match tokio::time::timeout(IO_TIMEOUT, body.collect()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "request body timed out",
        )),
    }
}

// ---------------------------------------------------------------------------
// Admin API

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert!(bearer_token(&h).is_err());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&h), Ok("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&h), Ok("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer_token(&h).is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert!(bearer_token(&h).is_err());
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(bearer_token(&h).is_err());
    }
}
