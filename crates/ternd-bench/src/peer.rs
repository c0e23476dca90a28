//! The built-in echo peer.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The built-in echo peer: reflects every datagram to its sender until stopped.
pub(crate) struct EchoPeer {
    pub(crate) addr: SocketAddr,
    sock: Arc<UdpSocket>,
    pub(crate) received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoPeer {
    /// An echo peer on `at` (port 0: any free port).
    pub(crate) fn start(at: SocketAddr) -> Result<EchoPeer, String> {
        let s = socket2::Socket::new(socket2::Domain::for_address(at), socket2::Type::DGRAM, None)
            .map_err(|e| format!("socket: {e}"))?;
        let _ = s.set_recv_buffer_size(8 << 20);
        let _ = s.set_send_buffer_size(8 << 20);
        s.bind(&at.into())
            .map_err(|e| format!("cannot bind the echo peer on {at}: {e}"))?;
        let sock: Arc<UdpSocket> = Arc::new(s.into());
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let addr = sock.local_addr().map_err(|e| e.to_string())?;
        let peer_sock = sock.clone();
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, st) = (received.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("bench-peer".into())
            .spawn(move || {
                let sock = peer_sock;
                let mut buf = vec![0u8; 65536];
                while !st.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        r.fetch_add(1, Ordering::Relaxed);
                        let _ = sock.send_to(&buf[..n], from);
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(EchoPeer {
            addr,
            sock,
            received,
            stop,
            thread: Some(thread),
        })
    }
}

impl EchoPeer {
    /// Datagrams the kernel dropped at the peer's receive queue so far.
    pub(crate) fn rx_drops(&self) -> Option<u64> {
        ternd_io::socket_rx_drops(&self.sock).ok().map(u64::from)
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
