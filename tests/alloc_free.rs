//! Zero-allocation checks, one test binary (one counting `#[global_allocator]`, which
//! `common/counting.rs` defines): the STUN/ChannelData parse path (`alloc_free/parse.rs`)
//! and the relay's forwarding paths through the core (`alloc_free/relay.rs`).

#![allow(unsafe_code)]

#[path = "common/counting.rs"]
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

#[path = "alloc_free/parse.rs"]
mod parse;
#[path = "alloc_free/relay.rs"]
mod relay;
