//! Which of a worker's UDP sockets are readable, for the worker's one task.
//!
//! Each socket has its own [`Waker`] that, when tokio's I/O driver sees the socket readable,
//! puts the socket's [`Token`] in the worker's [`ReadySet`] and wakes the worker. So the
//! worker visits only the sockets that have datagrams, however many relay sockets it has,
//! and nothing is allocated per wake-up (a waker is made once per socket).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use tokio::net::UdpSocket;

/// A UDP socket of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    /// The client-facing listener at this index.
    Listener(usize),
    /// The relay socket bound at this address.
    Relay(SocketAddr),
}

/// The sockets that became readable since the worker last looked.
#[derive(Debug, Default)]
pub(super) struct ReadySet {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    tokens: Vec<Token>,
    /// The worker's task, while it sleeps.
    task: Option<Waker>,
}

impl ReadySet {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // One thread touches it (the worker's runtime wakes from the same thread); a
        // poisoned lock only means a panic elsewhere, and the list is still sound.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `token` readable (or to be visited again) and wakes the worker.
    pub(super) fn push(&self, token: Token) {
        let mut g = self.lock();
        g.tokens.push(token);
        let task = g.task.take();
        drop(g);
        if let Some(t) = task {
            t.wake();
        }
    }

    /// Moves the tokens marked so far into `into` (emptied first): the two vectors swap, so
    /// neither allocates once both have grown.
    pub(super) fn take(&self, into: &mut Vec<Token>) {
        into.clear();
        std::mem::swap(&mut self.lock().tokens, into);
    }

    /// Whether any token is marked.
    pub(super) fn is_empty(&self) -> bool {
        self.lock().tokens.is_empty()
    }

    /// Ready once a token is marked; until then the worker's task is woken by the next mark.
    pub(super) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = self.lock();
        if !g.tokens.is_empty() {
            return Poll::Ready(());
        }
        match &g.task {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => g.task = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The waker that marks `token` (made once per socket).
    pub(super) fn waker(self: &Arc<Self>, token: Token) -> Waker {
        Waker::from(Arc::new(SocketWaker {
            set: self.clone(),
            token,
        }))
    }

    /// After the worker took what it would from `sock`: if it stopped before the queue was
    /// empty (its budget), or a datagram came meanwhile, the socket is visited again on the
    /// next turn; otherwise `waker` is armed for the next datagram.
    pub(super) fn rearm(&self, token: Token, sock: &UdpSocket, waker: &Waker, drained: bool) {
        if !drained
            || sock
                .poll_recv_ready(&mut Context::from_waker(waker))
                .is_ready()
        {
            self.push(token);
        }
    }
}

/// Marks one socket in its worker's [`ReadySet`].
struct SocketWaker {
    set: Arc<ReadySet>,
    token: Token,
}

impl Wake for SocketWaker {
    fn wake(self: Arc<Self>) {
        self.set.push(self.token);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.set.push(self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_waker_marks_its_token_and_wakes_the_worker() {
        let set = Arc::new(ReadySet::default());
        let a = set.waker(Token::Listener(0));
        let b = set.waker(Token::Relay("127.0.0.1:9".parse().unwrap()));
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        struct Count(Arc<std::sync::atomic::AtomicUsize>);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let task = Waker::from(Arc::new(Count(woken.clone())));
        assert!(set.poll_ready(&mut Context::from_waker(&task)).is_pending());
        b.wake_by_ref();
        a.wake();
        assert_eq!(woken.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(set.poll_ready(&mut Context::from_waker(&task)).is_ready());
        let mut got = Vec::new();
        set.take(&mut got);
        assert_eq!(
            got,
            [
                Token::Relay("127.0.0.1:9".parse().unwrap()),
                Token::Listener(0)
            ]
        );
        assert!(set.is_empty());
    }
}
