//! The few socket options the portable crates do not cover. All `unsafe` in ternd is here.
#![allow(unsafe_code)]

use std::io;
use std::net::UdpSocket;

/// Sets the don't-fragment behaviour on a relay socket (DONT-FRAGMENT, RFC 8656 §7.2):
/// `IP_MTU_DISCOVER = IP_PMTUDISC_DO` for IPv4, `IPV6_DONTFRAG = 1` for IPv6.
#[cfg(target_os = "linux")]
pub fn set_dont_fragment(sock: &UdpSocket, ipv6: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (level, name, value) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 1 as libc::c_int)
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        )
    };
    // SAFETY: the fd belongs to `sock`, which outlives the call; the value pointer and its
    // length describe a live `c_int` on this stack frame, as setsockopt(2) expects.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Not supported off Linux: the allocation is refused rather than silently fragmenting.
#[cfg(not(target_os = "linux"))]
pub fn set_dont_fragment(_sock: &UdpSocket, _ipv6: bool) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "DONT-FRAGMENT not supported on this platform",
    ))
}

/// Raises RLIMIT_NOFILE to its hard limit; returns the new soft limit.
#[cfg(unix)]
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit(2) to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit read above with only the soft limit raised.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// No file-descriptor limits to raise here.
#[cfg(not(unix))]
pub fn raise_fd_limit() -> io::Result<u64> {
    Ok(0)
}
