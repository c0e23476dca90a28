//! The client's error type.

use std::fmt;

use ternd_proto::stun::{BuildError, Class, Method, ParseError};

/// Why a request did not succeed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The socket or stream failed.
    Io(std::io::Error),
    /// No answer to the request within the transport's timing.
    Timeout {
        /// The request's method.
        method: Method,
    },
    /// The answer is not a STUN message.
    Malformed(ParseError),
    /// The request does not fit the buffer, or a value cannot be encoded.
    Build(BuildError),
    /// The server answered with an error (after any retries the session made).
    Failure {
        /// The request's method.
        method: Method,
        /// The STUN error code (0 if the error response carried none).
        code: u16,
        /// The reason phrase.
        reason: String,
    },
    /// The answer's MESSAGE-INTEGRITY is missing (on a success) or does not verify.
    Integrity {
        /// The request's method.
        method: Method,
    },
    /// A response class other than success or error.
    Unexpected {
        /// The request's method.
        method: Method,
        /// What came back.
        class: Class,
    },
    /// A 401 or 438 without the REALM or NONCE needed to retry.
    NoChallenge {
        /// The error code.
        code: u16,
        /// The missing attribute.
        missing: &'static str,
    },
    /// The username, realm or password cannot be prepared (OpaqueString).
    Credentials(ternd_proto::auth::PrepError),
    /// A success response without an attribute it must carry.
    Missing {
        /// The request's method.
        method: Method,
        /// The attribute's name.
        attribute: &'static str,
    },
    /// The answer belongs to no request this session has outstanding.
    UnknownTransaction,
    /// A stream carried something that is neither STUN nor ChannelData.
    Framing(ternd_proto::stun::stream::FramingError),
    /// There is no allocation (not yet, or no longer), or the operation does not apply to
    /// its relayed transport.
    NotAllocated,
    /// The allocation expired: its Refresh did not succeed in time.
    Expired,
    /// 300 Try Alternate named a loopback, private or link-local address, which is only
    /// followed when allowed.
    RefusedAlternate(std::net::SocketAddr),
    /// The server's nonce announces PASSWORD-ALGORITHMS but the list is missing or
    /// changed: an attacker on the path may be downgrading the password algorithm
    /// (RFC 8489 §9.2.4).
    Downgrade,
    /// Every channel number (0x4000-0x4FFF) is in use.
    ChannelsExhausted,
    /// The server URL cannot be used (bad syntax, unknown host, unsupported scheme).
    Url(String),
    /// TLS setup failed (bad server name, no trusted roots, handshake).
    Tls(String),
    /// The allocation's driver stopped (the client was closed or its task ended).
    Closed,
    /// An HTTP exchange failed: the answer is not HTTP/1.1, the connection closed before
    /// the answer was complete, or the request cannot be made (an access token that is not
    /// a header value).
    Http(String),
    /// The HTTP server answered with a status other than 2xx (redirects are not followed).
    HttpStatus {
        /// The status code: 401 for a bad or expired access token, 403 for one without the
        /// required scope, 404 when the endpoint has no token keys, 429 when rate-limited.
        status: u16,
        /// The `error` of an OAuth-style JSON error body (`invalid_token`), if there was one.
        error: Option<String>,
        /// Its `error_description`.
        description: Option<String>,
    },
    /// The HTTP exchange took longer than its timeout (name resolution, connect, TLS,
    /// request and the whole body together).
    HttpTimeout {
        /// The timeout.
        after: std::time::Duration,
    },
    /// The HTTP answer's body (declared or received) is larger than allowed.
    HttpTooLarge {
        /// The largest body accepted, in bytes.
        limit: usize,
    },
    /// The HTTP answer's body is not the `{"iceServers": [...]}` JSON expected.
    IceServers(String),
}

impl Error {
    /// A copy of this error for a second listener (I/O errors keep their kind and text).
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Io(e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
            Error::Timeout { method } => Error::Timeout { method: *method },
            Error::Malformed(e) => Error::Malformed(*e),
            Error::Build(e) => Error::Build(*e),
            Error::Failure {
                method,
                code,
                reason,
            } => Error::Failure {
                method: *method,
                code: *code,
                reason: reason.clone(),
            },
            Error::Integrity { method } => Error::Integrity { method: *method },
            Error::Unexpected { method, class } => Error::Unexpected {
                method: *method,
                class: *class,
            },
            Error::NoChallenge { code, missing } => Error::NoChallenge {
                code: *code,
                missing,
            },
            Error::Credentials(e) => Error::Credentials(e.clone()),
            Error::Missing { method, attribute } => Error::Missing {
                method: *method,
                attribute,
            },
            Error::UnknownTransaction => Error::UnknownTransaction,
            Error::Framing(e) => Error::Framing(*e),
            Error::NotAllocated => Error::NotAllocated,
            Error::Expired => Error::Expired,
            Error::RefusedAlternate(a) => Error::RefusedAlternate(*a),
            Error::Downgrade => Error::Downgrade,
            Error::ChannelsExhausted => Error::ChannelsExhausted,
            Error::Url(s) => Error::Url(s.clone()),
            Error::Tls(s) => Error::Tls(s.clone()),
            Error::Closed => Error::Closed,
            Error::Http(s) => Error::Http(s.clone()),
            Error::HttpStatus {
                status,
                error,
                description,
            } => Error::HttpStatus {
                status: *status,
                error: error.clone(),
                description: description.clone(),
            },
            Error::HttpTimeout { after } => Error::HttpTimeout { after: *after },
            Error::HttpTooLarge { limit } => Error::HttpTooLarge { limit: *limit },
            Error::IceServers(s) => Error::IceServers(s.clone()),
        }
    }

    /// The STUN error code, when the server sent one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Failure { code, .. } | Error::NoChallenge { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status code, for [`Error::HttpStatus`].
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::HttpStatus { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A method's name as its RFC spells it ("request" for others): [`Method::name`].
pub fn method_name(m: Method) -> &'static str {
    m.name()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Timeout { method } => {
                write!(f, "no answer to {} from the server", method_name(*method))
            }
            Error::Malformed(e) => write!(f, "bad answer: {e}"),
            Error::Build(e) => write!(f, "{e}"),
            Error::Failure {
                method,
                code,
                reason,
            } => write!(f, "{}: error {code} {reason}", method_name(*method)),
            Error::Integrity { method } => write!(
                f,
                "{}: the answer's MESSAGE-INTEGRITY does not verify",
                method_name(*method)
            ),
            Error::Unexpected { method, class } => {
                write!(f, "{}: unexpected {class:?}", method_name(*method))
            }
            Error::NoChallenge { code, missing } => write!(f, "error {code} without a {missing}"),
            Error::Credentials(e) => write!(f, "{e}"),
            Error::Missing { method, attribute } => {
                write!(f, "{} success without {attribute}", method_name(*method))
            }
            Error::UnknownTransaction => write!(f, "an answer to no outstanding request"),
            Error::Framing(e) => write!(f, "{e}"),
            Error::NotAllocated => write!(f, "no allocation for this operation"),
            Error::Expired => write!(f, "the allocation expired (no Refresh succeeded)"),
            Error::RefusedAlternate(a) => write!(
                f,
                "300 Try Alternate to {a}, a private address (allow_private_alternates is off)"
            ),
            Error::Downgrade => write!(
                f,
                "the server's PASSWORD-ALGORITHMS is missing or changed (possible downgrade)"
            ),
            Error::ChannelsExhausted => write!(f, "all 4096 channel numbers are in use"),
            Error::Url(s) => write!(f, "server URL: {s}"),
            Error::Tls(s) => write!(f, "TLS: {s}"),
            Error::Closed => write!(f, "the TURN client is closed"),
            Error::Http(s) => write!(f, "HTTP: {s}"),
            Error::HttpStatus {
                status,
                error,
                description,
            } => {
                write!(f, "HTTP status {status}")?;
                if let Some(e) = error {
                    write!(f, ": {e}")?;
                }
                if let Some(d) = description {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
            Error::HttpTimeout { after } => write!(f, "HTTP: no complete answer within {after:?}"),
            Error::HttpTooLarge { limit } => {
                write!(f, "HTTP: the answer's body is larger than {limit} bytes")
            }
            Error::IceServers(s) => write!(f, "not an iceServers answer: {s}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Malformed(e) => Some(e),
            Error::Build(e) => Some(e),
            Error::Credentials(e) => Some(e),
            Error::Framing(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<BuildError> for Error {
    fn from(e: BuildError) -> Error {
        Error::Build(e)
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Error {
        Error::Malformed(e)
    }
}
