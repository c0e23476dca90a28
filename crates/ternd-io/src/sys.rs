//! The few socket options the portable crates do not cover. All `unsafe` in ternd is here.

use std::io;
use std::net::UdpSocket;

/// Sets the don't-fragment behaviour on a relay socket (DONT-FRAGMENT, RFC 8656 §7.2):
/// `IP_MTU_DISCOVER = IP_PMTUDISC_DO` for IPv4, `IPV6_DONTFRAG = 1` for IPv6.
#[cfg(target_os = "linux")]
pub fn set_dont_fragment(sock: &UdpSocket, ipv6: bool) -> io::Result<()> {
    let (level, name, value) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 1 as libc::c_int)
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        )
    };
    setsockopt_int(sock, level, name, value)
}

/// `setsockopt(2)` with an `int` value.
#[cfg(target_os = "linux")]
fn setsockopt_int(
    sock: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
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

/// The PID of the process at the other end of a connected Unix stream socket (its
/// credentials as of `connect`/`listen`, SO_PEERCRED).
#[cfg(target_os = "linux")]
pub fn peer_pid(sock: &std::os::unix::net::UnixStream) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a valid, writable ucred of `len` bytes for getsockopt(2) to fill,
    // and the descriptor is the stream's own, open for the call.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    u32::try_from(cred.pid).map_err(|_| io::Error::other("no peer pid"))
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

/// `SO_RXQ_OVFL` and `SO_MEMINFO` (asm-generic values; SPARC numbers them differently).
/// The `libc` crate has them for Android only.
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "sparc", target_arch = "sparc64"))
))]
const SO_RXQ_OVFL: libc::c_int = 40;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "sparc", target_arch = "sparc64")
))]
const SO_RXQ_OVFL: libc::c_int = 0x0024;
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "sparc", target_arch = "sparc64"))
))]
const SO_MEMINFO: libc::c_int = 55;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "sparc", target_arch = "sparc64")
))]
const SO_MEMINFO: libc::c_int = 0x0039;

/// Asks the kernel to attach the socket's cumulative receive-queue drop count
/// (`SO_RXQ_OVFL`) to every datagram received after the first drop; [`RecvBatch::recv`]
/// reads it from the control message at no extra system call.
#[cfg(target_os = "linux")]
pub fn enable_rx_drop_count(sock: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    setsockopt_int(sock, libc::SOL_SOCKET, SO_RXQ_OVFL, 1)
}

/// No drop counts off Linux.
#[cfg(not(target_os = "linux"))]
pub fn enable_rx_drop_count<S>(_sock: &S) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Datagrams the kernel has dropped so far at `sock`'s receive queue (full buffer, or no
/// memory): `SK_MEMINFO_DROPS` of `SO_MEMINFO`, one system call. For reports at the end of
/// a run (`ternd bench`), not the packet path.
#[cfg(target_os = "linux")]
pub fn socket_rx_drops(sock: &impl std::os::fd::AsRawFd) -> io::Result<u32> {
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: the fd belongs to `sock`, alive for the call; `info` and `len` are live and
    // writable and `len` holds the size of `info`: the kernel writes at most that many bytes
    // and stores the number written in `len`.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let at = libc::SK_MEMINFO_DROPS as usize;
    if (len as usize) < (at + 1) * std::mem::size_of::<u32>() {
        return Err(io::ErrorKind::Unsupported.into());
    }
    Ok(info[at])
}

/// No drop counts off Linux.
#[cfg(not(target_os = "linux"))]
pub fn socket_rx_drops<S>(_sock: &S) -> io::Result<u32> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The last cumulative receive-queue drop count seen on one socket, turning each new
/// reading of [`RecvBatch::rx_drops`] into the number of datagrams dropped since.
#[derive(Debug, Default, Clone, Copy)]
pub struct RxDrops {
    last: u32,
}

impl RxDrops {
    /// Datagrams dropped since the previous reading (the kernel's count is a `u32` that
    /// wraps).
    #[inline]
    pub fn delta(&mut self, reading: Option<u32>) -> u64 {
        match reading {
            Some(now) if now != self.last => {
                let d = now.wrapping_sub(self.last);
                self.last = now;
                u64::from(d)
            }
            _ => 0,
        }
    }
}

/// Buffers for receiving up to `slots` datagrams with one `recvmmsg(2)`. Datagram `i` lands
/// at `slot(i)[offset..offset + len(i)]`; each slot has `offset` bytes of headroom in
/// front (room for a TURN header) and `tailroom` bytes after the largest datagram.
pub struct RecvBatch {
    buf: Vec<u8>,
    stride: usize,
    offset: usize,
    max_len: usize,
    addrs: Vec<libc::sockaddr_storage>,
    #[cfg(target_os = "linux")]
    iovs: Vec<libc::iovec>,
    #[cfg(target_os = "linux")]
    hdrs: Vec<libc::mmsghdr>,
    /// One control buffer per datagram, for the `SO_RXQ_OVFL` count.
    #[cfg(target_os = "linux")]
    controls: Vec<Control>,
    lens: Vec<usize>,
    sources: Vec<Option<std::net::SocketAddr>>,
    /// The socket's cumulative drop count as the last receive's latest datagram carried it.
    rx_drops: Option<u32>,
}

/// Room for the control messages of one received datagram: the `SO_RXQ_OVFL` one (a
/// `u32`) with space to spare, aligned as `cmsghdr` needs.
#[cfg(target_os = "linux")]
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Control([u8; 64]);

impl RecvBatch {
    /// Room for `slots` datagrams (at most [`MAX_BATCH`]) of up to `max_len` bytes, each
    /// with `offset` bytes of headroom and `tailroom` bytes of tailroom.
    pub fn new(slots: usize, offset: usize, max_len: usize, tailroom: usize) -> Self {
        let slots = slots.clamp(1, MAX_BATCH);
        let stride = offset + max_len + tailroom;
        Self {
            buf: vec![0u8; slots * stride],
            stride,
            offset,
            max_len,
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain old data (integers
            // and pointers): all zeroes is a valid value of each; the pointers are set
            // before every use.
            addrs: vec![unsafe { std::mem::zeroed() }; slots],
            #[cfg(target_os = "linux")]
            iovs: vec![unsafe { std::mem::zeroed() }; slots],
            #[cfg(target_os = "linux")]
            hdrs: vec![unsafe { std::mem::zeroed() }; slots],
            #[cfg(target_os = "linux")]
            controls: vec![Control([0; 64]); slots],
            lens: vec![0; slots],
            sources: vec![None; slots],
            rx_drops: None,
        }
    }

    /// How many datagrams one call can return.
    pub fn slots(&self) -> usize {
        self.lens.len()
    }

    /// Slot `i` (headroom, datagram, tailroom), for the core to write headers into.
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.buf[i * self.stride..(i + 1) * self.stride]
    }

    /// Slot `i`, read-only (to send what the core wrote there).
    pub fn slot(&self, i: usize) -> &[u8] {
        &self.buf[i * self.stride..(i + 1) * self.stride]
    }

    /// Length and source of datagram `i` of the last receive.
    pub fn meta(&self, i: usize) -> (usize, Option<std::net::SocketAddr>) {
        (self.lens[i], self.sources[i])
    }

    /// The socket's cumulative receive-queue drop count carried by the last receive's
    /// datagrams (the newest reading), if any carried one: only on a socket with
    /// [`enable_rx_drop_count`], and only once it has dropped something. A datagram carries
    /// the count as of when it was queued, so drops show with the next datagram queued.
    pub fn rx_drops(&self) -> Option<u32> {
        self.rx_drops
    }

    /// Receives what is queued on `sock`, up to [`RecvBatch::slots`] datagrams, without
    /// blocking (`WouldBlock` when nothing is). Returns the number received.
    #[cfg(target_os = "linux")]
    pub fn recv(&mut self, sock: &impl std::os::fd::AsRawFd) -> io::Result<usize> {
        let n = self.lens.len();
        let base = self.buf.as_mut_ptr();
        for i in 0..n {
            // SAFETY: slot i spans buf[i * stride..(i + 1) * stride] and offset + max_len
            // <= stride, so the pointer stays inside `buf`.
            self.iovs[i].iov_base = unsafe { base.add(i * self.stride + self.offset) }.cast();
            self.iovs[i].iov_len = self.max_len;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_control = self.controls[i].0.as_mut_ptr().cast();
            h.msg_controllen = std::mem::size_of::<Control>() as _;
            h.msg_flags = 0;
        }
        // SAFETY: `hdrs[..n]` point at live buffers owned by `self` (`iovs`, `buf`,
        // `addrs`, `controls`), not moved or resized during the call; the kernel writes at
        // most `iov_len` bytes per datagram, `msg_namelen` bytes per address and
        // `msg_controllen` bytes of control messages, and `n` is the length of `hdrs`.
        // MSG_DONTWAIT: never blocks.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = r as usize;
        self.rx_drops = None;
        for i in 0..got {
            self.lens[i] = self.hdrs[i].msg_len as usize;
            self.sources[i] = sockaddr_to_std(&self.addrs[i], self.hdrs[i].msg_hdr.msg_namelen);
            // Nothing to parse until the socket has dropped something (one branch).
            if self.hdrs[i].msg_hdr.msg_controllen > 0
                && let Some(d) = rx_drops_of(&self.hdrs[i].msg_hdr)
            {
                self.rx_drops = Some(d);
            }
        }
        Ok(got)
    }

    /// One datagram per call where `recvmmsg` does not exist.
    #[cfg(all(unix, not(target_os = "linux")))]
    pub fn recv(&mut self, sock: &impl std::os::fd::AsRawFd) -> io::Result<usize> {
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let start = self.offset;
        let dst = &mut self.buf[start..start + self.max_len];
        // SAFETY: `dst` and `addrs[0]` are live, writable and at least as long as the
        // lengths passed; MSG_DONTWAIT never blocks.
        let r = unsafe {
            libc::recvfrom(
                sock.as_raw_fd(),
                dst.as_mut_ptr().cast(),
                dst.len(),
                libc::MSG_DONTWAIT,
                (&mut self.addrs[0] as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.lens[0] = r as usize;
        self.sources[0] = sockaddr_to_std(&self.addrs[0], len);
        Ok(1)
    }
}

/// The `SO_RXQ_OVFL` count among the control messages the kernel wrote for `msg`.
#[cfg(target_os = "linux")]
fn rx_drops_of(msg: &libc::msghdr) -> Option<u32> {
    let mut found = None;
    // SAFETY: `msg` was just filled by recvmmsg: `msg_control` points at a live control
    // buffer of this batch and `msg_controllen` is the length the kernel wrote (at most
    // the buffer's size), so CMSG_FIRSTHDR/CMSG_NXTHDR return headers inside it or null.
    // The data of an SO_RXQ_OVFL message is a u32, read unaligned only after checking that
    // its cmsg_len covers it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_SOCKET
                && c.cmsg_type == SO_RXQ_OVFL
                && c.cmsg_len as usize >= libc::CMSG_LEN(std::mem::size_of::<u32>() as u32) as usize
            {
                found = Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(cmsg).cast::<u32>(),
                ));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    found
}

/// Most datagrams one GSO send carries (the kernel's `UDP_MAX_SEGMENTS` is 64 on older
/// kernels, 128 on newer ones).
pub const MAX_SEGMENTS: usize = 64;

/// Whether this kernel segments UDP sends (`UDP_SEGMENT`, Linux 4.18+): asked of `sock`.
#[cfg(target_os = "linux")]
pub fn gso_supported(sock: &impl std::os::fd::AsRawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the fd belongs to `sock`, alive for the call; `value` and `len` are live,
    // writable and `len` holds the size of `value`, as getsockopt(2) expects.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0
}

/// No UDP segmentation offload off Linux.
#[cfg(not(target_os = "linux"))]
pub fn gso_supported<S>(_sock: &S) -> bool {
    false
}

/// Sends `segments` to `to` as one UDP GSO send: one `sendmsg(2)` with a `UDP_SEGMENT`
/// control message, so the kernel takes one buffer down the stack and cuts it into
/// datagrams of `seg_len` bytes at the end. Every segment but the last must be exactly
/// `seg_len` bytes long, the last at most that (the kernel cuts the concatenation, it does
/// not see the slices); at most [`MAX_SEGMENTS`] of them. Never blocks.
#[cfg(target_os = "linux")]
pub fn send_segments(
    sock: &impl std::os::fd::AsRawFd,
    to: std::net::SocketAddr,
    segments: &[io::IoSlice<'_>],
    seg_len: u16,
) -> io::Result<usize> {
    if segments.is_empty() || segments.len() > MAX_SEGMENTS {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let addr = socket2::SockAddr::from(to);
    // Room for one cmsghdr carrying a u16, aligned as cmsghdr needs.
    #[repr(C, align(8))]
    struct Control([u8; 32]);
    let mut control = Control([0; 32]);
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
    debug_assert!(space <= control.0.len());
    // SAFETY: msghdr is plain old data; all zeroes is valid and every field used is set.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = addr.as_ptr() as *mut libc::c_void;
    msg.msg_namelen = addr.len();
    // IoSlice is ABI-compatible with iovec on Unix (documented by std); the kernel only
    // reads through these pointers.
    msg.msg_iov = segments.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = segments.len() as _;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `control`, at least `space` bytes and aligned for
    // cmsghdr, so CMSG_FIRSTHDR returns a pointer inside it (not null: controllen is
    // large enough for one header), and CMSG_DATA of that header has room for the u16
    // (CMSG_SPACE of a u16 was reserved).
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg_len);
    }
    // SAFETY: `msg` points at the address in `addr`, the slices in `segments` and
    // `control`, all alive and unmoved for the call; the kernel only reads them.
    // MSG_DONTWAIT: never blocks.
    let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// No UDP segmentation offload off Linux: the caller sends one by one.
#[cfg(not(target_os = "linux"))]
pub fn send_segments<S>(
    _sock: &S,
    _to: std::net::SocketAddr,
    _segments: &[io::IoSlice<'_>],
    _seg_len: u16,
) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Whether a failed GSO send means segmentation cannot work here at all (a device without
/// checksum offload answers `EIO`), so sending one by one from now on is right, rather than
/// something about this one run.
pub fn gso_unusable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
        )
}

/// Most datagrams one [`RecvBatch::recv`] takes.
pub const MAX_BATCH: usize = 64;

/// A source address the kernel wrote into `storage` (`len` bytes).
fn sockaddr_to_std(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<std::net::SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    match i32::from(storage.ss_family) {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says this storage holds a sockaddr_in, fully written
            // (length checked); sockaddr_storage is aligned for every sockaddr type.
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn gso_send_arrives_as_separate_datagrams_the_last_shorter() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(gso_supported(&tx), "this kernel has UDP_SEGMENT (4.18+)");
        let a = [1u8; 100];
        let b = [2u8; 100];
        let c = [3u8; 40];
        let segs = [
            io::IoSlice::new(&a),
            io::IoSlice::new(&b),
            io::IoSlice::new(&c),
        ];
        let sent = send_segments(&tx, rx.local_addr().unwrap(), &segs, 100).unwrap();
        assert_eq!(sent, 240);
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 2048];
        for (len, fill) in [(100, 1u8), (100, 2), (40, 3)] {
            let (n, from) = rx.recv_from(&mut buf).unwrap();
            assert_eq!((n, from), (len, tx.local_addr().unwrap()));
            assert!(buf[..n].iter().all(|&x| x == fill));
        }
        assert!(send_segments(&tx, rx.local_addr().unwrap(), &[], 100).is_err());
    }

    #[test]
    fn a_receive_queue_overflow_is_counted_from_the_next_batch() {
        let rx = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        // The smallest buffer the kernel grants (it doubles the request, with a floor).
        rx.set_recv_buffer_size(1).unwrap();
        rx.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let rx: std::net::UdpSocket = rx.into();
        enable_rx_drop_count(&rx).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut b = RecvBatch::new(MAX_BATCH, 0, 1500, 0);
        let mut drops = RxDrops::default();
        tx.send_to(&[0u8; 100], to).unwrap();
        assert_eq!(b.recv(&rx).unwrap(), 1);
        assert_eq!(
            b.rx_drops(),
            None,
            "nothing dropped yet: no control message"
        );
        assert_eq!(drops.delta(b.rx_drops()), 0);
        // Far more than a few KiB of buffer holds, unread: loopback delivers (or drops)
        // each datagram within send_to.
        const SENT: usize = 500;
        for _ in 0..SENT {
            tx.send_to(&[1u8; 100], to).unwrap();
        }
        let mut queued = 0;
        loop {
            match b.recv(&rx) {
                Ok(n) => queued += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(queued > 0 && queued < SENT, "{queued} of {SENT} queued");
        let dropped = socket_rx_drops(&rx).unwrap();
        assert_eq!(dropped as usize, SENT - queued, "SO_MEMINFO agrees");
        // The count rides on the next datagram queued after the drops.
        tx.send_to(&[2u8; 100], to).unwrap();
        assert_eq!(b.recv(&rx).unwrap(), 1);
        assert_eq!(b.rx_drops(), Some(dropped), "the cumulative count, parsed");
        assert_eq!(drops.delta(b.rx_drops()), u64::from(dropped));
        // Read again without new drops: the same count, no new delta.
        tx.send_to(&[3u8; 100], to).unwrap();
        assert_eq!(b.recv(&rx).unwrap(), 1);
        assert_eq!(b.rx_drops(), Some(dropped));
        assert_eq!(drops.delta(b.rx_drops()), 0);
    }

    #[test]
    fn rx_drop_deltas_wrap_with_the_kernels_u32() {
        let mut d = RxDrops { last: u32::MAX - 1 };
        assert_eq!(d.delta(Some(1)), 3);
        assert_eq!(d.delta(None), 0);
        assert_eq!(d.delta(Some(1)), 0);
        assert_eq!(d.delta(Some(11)), 10);
    }

    #[test]
    fn recv_batch_takes_what_is_queued_with_sources_and_headroom() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = RecvBatch::new(4, 36, 1500, 4);
        assert_eq!(
            b.recv(&rx).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing queued"
        );
        for i in 0..6u8 {
            tx.send_to(&vec![i; 10 + usize::from(i)], rx.local_addr().unwrap())
                .unwrap();
        }
        let got = b.recv(&rx).unwrap();
        assert_eq!(got, 4, "a full batch");
        for i in 0..got {
            let (len, from) = b.meta(i);
            assert_eq!(len, 10 + i);
            assert_eq!(from, Some(tx.local_addr().unwrap()));
            let slot = b.slot_mut(i);
            assert_eq!(slot.len(), 36 + 1500 + 4);
            assert!(slot[36..36 + len].iter().all(|&x| usize::from(x) == i));
        }
        assert_eq!(b.recv(&rx).unwrap(), 2, "the rest");
        let v6 = std::net::UdpSocket::bind("[::1]:0");
        if let Ok(v6) = v6 {
            let tx6 = std::net::UdpSocket::bind("[::1]:0").unwrap();
            tx6.send_to(b"six", v6.local_addr().unwrap()).unwrap();
            assert_eq!(b.recv(&v6).unwrap(), 1);
            assert_eq!(b.meta(0), (3, Some(tx6.local_addr().unwrap())));
        }
    }
}

/// Registers a UDP socket shared through an `Arc` with the current tokio runtime for
/// readiness (`ternd bench`'s receiver, while other threads send on the same socket).
pub fn register_shared_udp(
    sock: std::sync::Arc<std::net::UdpSocket>,
) -> io::Result<tokio::io::unix::AsyncFd<std::sync::Arc<std::net::UdpSocket>>> {
    // SAFETY: the Arc keeps the socket, and so its descriptor, open for as long as the
    // AsyncFd holds it, and `as_raw_fd` of an Arc<UdpSocket> always returns that same
    // descriptor: the conditions `register_with_interest` asks for.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(sock, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}
