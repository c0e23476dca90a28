//! Checks at start that refuse what cannot work, instead of starting and then failing
//! every request: a relay address the host does not have, and a port another ternd
//! already serves.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};

use crate::turn::RelayAddress;

/// What [`check_relays`] and [`ListenLocks::take`] refuse.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// A relay socket cannot bind to the relay address.
    #[error(
        "cannot relay from {addr} ({flag}): {source}. Relay sockets bind to this address, so every Allocate would fail with 508; give an address of this host{hint}"
    )]
    Relay {
        /// The address relay sockets would bind.
        addr: IpAddr,
        /// The setting it came from.
        flag: &'static str,
        /// Why it cannot.
        source: io::Error,
        /// What to do instead.
        hint: &'static str,
    },
    /// Another ternd serves the same address and port.
    #[error(
        "another ternd{pid} already serves {transport} {addr}: two processes on one port split its clients between them (random 401s and lost allocations). Stop the other one, or choose another --listen"
    )]
    Taken {
        /// `udp`, `tcp` or `tls`.
        transport: &'static str,
        /// The address as bound.
        addr: SocketAddr,
        /// ` (pid N)` when the other process said.
        pid: String,
    },
    /// The lock could not be taken for another reason.
    #[error("cannot take the listener lock for {transport} {addr}: {source}")]
    Lock {
        /// `udp`, `tcp` or `tls`.
        transport: &'static str,
        /// The address as bound.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
}

/// Binds a socket of each relay family on its relay address (port 0, closed at once):
/// an address the host does not have fails here, not at every Allocate.
/// `external_private` tells whether the address came from `--external-ip PUBLIC/PRIVATE`.
pub(crate) fn check_relays(
    relays: &[(RelayAddress, bool)],
    tcp_relay: bool,
) -> Result<(), PreflightError> {
    for &(relay, external_private) in relays {
        let addr = SocketAddr::new(relay.bind, 0);
        let (flag, hint) = if external_private {
            (
                "the private side of --external-ip PUBLIC/PRIVATE",
                ": PRIVATE must be an address of this host's interface behind the NAT (`ip -br addr`)",
            )
        } else {
            (
                "--relay-ip",
                " (`ip -br addr` lists them); behind a 1:1 NAT, advertise the public one with --external-ip PUBLIC/PRIVATE",
            )
        };
        let fail = |source| PreflightError::Relay {
            addr: relay.bind,
            flag,
            source,
            hint,
        };
        std::net::UdpSocket::bind(addr).map_err(fail)?;
        if tcp_relay {
            std::net::TcpListener::bind(addr).map_err(fail)?;
        }
    }
    Ok(())
}

/// One abstract Unix socket per listener (`@ternd:udp:IP:PORT`), held as long as the
/// listeners are. Listeners share their ports between workers with SO_REUSEPORT, which
/// would let a second ternd of the same user bind them too; the abstract name cannot be
/// bound twice in one network namespace, so the second one is refused. The socket
/// listens, so the second one learns the holder's PID from the connection's credentials.
#[derive(Debug)]
pub struct ListenLocks {
    _held: Vec<UnixListener>,
}

impl ListenLocks {
    /// Takes the lock of every listener, or says which one another ternd holds.
    pub(crate) fn take(
        listeners: &[(&'static str, SocketAddr)],
    ) -> Result<ListenLocks, PreflightError> {
        let mut held = Vec::new();
        for &(transport, addr) in listeners {
            let name = format!("ternd:{transport}:{addr}");
            let unix = UnixAddr::from_abstract_name(name.as_bytes()).map_err(|source| {
                PreflightError::Lock {
                    transport,
                    addr,
                    source,
                }
            })?;
            match UnixListener::bind_addr(&unix) {
                Ok(l) => held.push(l),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    return Err(PreflightError::Taken {
                        transport,
                        addr,
                        pid: holder_pid(&unix).map_or(String::new(), |p| format!(" (pid {p})")),
                    });
                }
                Err(source) => {
                    return Err(PreflightError::Lock {
                        transport,
                        addr,
                        source,
                    });
                }
            }
        }
        Ok(ListenLocks { _held: held })
    }
}

/// The PID of the process holding `unix` (its listening socket's credentials).
fn holder_pid(unix: &UnixAddr) -> Option<u32> {
    let s = UnixStream::connect_addr(unix).ok()?;
    ternd_io::unix_peer_pid(&s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_address_is_refused_with_the_holders_pid() {
        let addr: SocketAddr = ([127, 0, 0, 1], 1).into();
        let tag = format!("test{}", std::process::id());
        let transport: &'static str = Box::leak(tag.into_boxed_str());
        let first = ListenLocks::take(&[(transport, addr)]).expect("first");
        let err = ListenLocks::take(&[(transport, addr)]).expect_err("second refused");
        let text = err.to_string();
        assert!(
            text.contains(&format!("(pid {})", std::process::id())),
            "{text}"
        );
        assert!(text.contains("already serves"), "{text}");
        // Another port is fine, and a released lock can be taken again.
        ListenLocks::take(&[(transport, SocketAddr::from(([127, 0, 0, 1], 2)))]).expect("other");
        drop(first);
        ListenLocks::take(&[(transport, addr)]).expect("after release");
    }

    #[test]
    fn a_relay_address_of_another_host_is_refused_naming_the_flag() {
        let foreign = RelayAddress {
            bind: "198.51.100.7".parse().unwrap(),
            advertise: "198.51.100.7".parse().unwrap(),
        };
        let text = check_relays(&[(foreign, false)], false)
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with("cannot relay from 198.51.100.7 (--relay-ip): "),
            "{text}"
        );
        assert!(
            text.contains("every Allocate would fail with 508"),
            "{text}"
        );
        let text = check_relays(&[(foreign, true)], true)
            .unwrap_err()
            .to_string();
        assert!(text.contains("the private side of --external-ip"), "{text}");
        let local = RelayAddress {
            bind: "127.0.0.1".parse().unwrap(),
            advertise: "203.0.113.1".parse().unwrap(),
        };
        check_relays(&[(local, true)], true).expect("a local address");
    }
}
