//! The error codes the core answers with, each named once with its reason phrase
//! (RFC 8489 §14.8, RFC 8656 §19, RFC 6062 §6.3).

use crate::stun::ErrorCode;

/// An error code with its reason phrase, as the core sends it.
pub type Code = ErrorCode<'static>;

/// 300: draining, go to ALTERNATE-SERVER.
pub const TRY_ALTERNATE: Code = ErrorCode::new(300, "Try Alternate");
/// 400: malformed, or not allowed in this state.
pub const BAD_REQUEST: Code = ErrorCode::new(400, "Bad Request");
/// 401: no or wrong credentials (a challenge).
pub const UNAUTHORIZED: Code = ErrorCode::new(401, "Unauthorized");
/// 403: a peer the policy denies.
pub const FORBIDDEN: Code = ErrorCode::new(403, "Forbidden");
/// 420: unknown comprehension-required attributes (with UNKNOWN-ATTRIBUTES).
pub const UNKNOWN_ATTRIBUTE: Code = ErrorCode::new(420, "Unknown Attribute");
/// 437: an Allocate on a 5-tuple that has one, or another request on one that has none.
pub const ALLOCATION_MISMATCH: Code = ErrorCode::new(437, "Allocation Mismatch");
/// 438: the nonce is no longer valid (a challenge).
pub const STALE_NONCE: Code = ErrorCode::new(438, "Stale Nonce");
/// 440: no relay for the address family asked for.
pub const ADDRESS_FAMILY_NOT_SUPPORTED: Code = ErrorCode::new(440, "Address Family not Supported");
/// 441: authentic, but with other credentials than the allocation's.
pub const WRONG_CREDENTIALS: Code = ErrorCode::new(441, "Wrong Credentials");
/// 442: REQUESTED-TRANSPORT other than UDP (or TCP, with `tcp_relay`).
pub const UNSUPPORTED_TRANSPORT_PROTOCOL: Code =
    ErrorCode::new(442, "Unsupported Transport Protocol");
/// 443: a peer (or relayed address) of a family the allocation has no relay for.
pub const PEER_ADDRESS_FAMILY_MISMATCH: Code = ErrorCode::new(443, "Peer Address Family Mismatch");
/// 446: a Connect to a peer the allocation already has a connection with (RFC 6062).
pub const CONNECTION_ALREADY_EXISTS: Code = ErrorCode::new(446, "Connection Already Exists");
/// 447: the connection with the peer failed or timed out (RFC 6062).
pub const CONNECTION_TIMEOUT_OR_FAILURE: Code =
    ErrorCode::new(447, "Connection Timeout or Failure");
/// 486: the user's (or the source's) allocation quota is used up.
pub const ALLOCATION_QUOTA_REACHED: Code = ErrorCode::new(486, "Allocation Quota Reached");
/// 508: no port, no capacity, or a per-allocation limit reached.
pub const INSUFFICIENT_CAPACITY: Code = ErrorCode::new(508, "Insufficient Capacity");
