//! The outgoing queue of one TCP/TLS client.

use std::cell::RefCell;
use std::rc::Rc;

/// Bytes queued for one TCP/TLS client that does not read: past it, the oldest relayed
/// data is dropped (and counted). Answers count too (see [`TCP_ANSWER_BYTES`]).
pub(super) const TCP_QUEUE_BYTES: usize = 256 * 1024;
/// Answers queued for one TCP/TLS client that does not read: at this many bytes the
/// connection stops reading requests (backpressure through TCP) until the client takes
/// some; a client that takes none for `tcp_idle_timeout` is closed by its writer. Answers
/// are never dropped, so this is what bounds a pipelining client's memory.
const TCP_ANSWER_BYTES: usize = 64 * 1024;

/// The outgoing queue of one stream client: answers and relayed frames in order, bounded
/// in bytes, dropping the oldest relayed frame first when full.
#[derive(Default)]
pub(super) struct StreamQueue {
    frames: RefCell<std::collections::VecDeque<(Vec<u8>, bool)>>,
    /// Bytes of every queued frame.
    bytes: std::cell::Cell<usize>,
    /// Bytes of the queued answers (a part of `bytes`).
    answer_bytes: std::cell::Cell<usize>,
    closed: std::cell::Cell<bool>,
    /// Set by the writer when it stops (the client stopped reading or the write failed).
    pub(super) writer_gone: std::cell::Cell<bool>,
    /// Wakes the writer: something was queued.
    pub(super) wake: tokio::sync::Notify,
    /// Wakes the reader: an answer left the queue, or the writer stopped.
    pub(super) room: tokio::sync::Notify,
}

impl StreamQueue {
    /// Queues relayed data; false if something had to be dropped to make room (or the
    /// frame alone is too big).
    pub(super) fn push_data(&self, frame: Vec<u8>) -> bool {
        let mut frames = self.frames.borrow_mut();
        let mut dropped_any = false;
        while self.bytes.get() + frame.len() > TCP_QUEUE_BYTES {
            let Some(pos) = frames.iter().position(|(_, data)| *data) else {
                return false;
            };
            if let Some((f, _)) = frames.remove(pos) {
                self.bytes.set(self.bytes.get() - f.len());
            }
            dropped_any = true;
        }
        self.bytes.set(self.bytes.get() + frame.len());
        frames.push_back((frame, true));
        self.wake.notify_one();
        !dropped_any
    }

    /// Queues an answer. Answers are never dropped; the reader stops taking requests while
    /// [`StreamQueue::answers_full`] (one answer can go past the budget, no more).
    pub(super) fn push_answer(&self, frame: Vec<u8>) {
        self.bytes.set(self.bytes.get() + frame.len());
        self.answer_bytes.set(self.answer_bytes.get() + frame.len());
        self.frames.borrow_mut().push_back((frame, false));
        self.wake.notify_one();
    }

    /// True while the queued answers fill their budget: read no more requests.
    pub(super) fn answers_full(&self) -> bool {
        self.answer_bytes.get() >= TCP_ANSWER_BYTES
    }

    /// The next frame to write, `Err(())` once closed and empty.
    pub(super) fn pop(&self) -> Result<Option<Vec<u8>>, ()> {
        match self.frames.borrow_mut().pop_front() {
            Some((f, data)) => {
                self.bytes.set(self.bytes.get() - f.len());
                if !data {
                    self.answer_bytes.set(self.answer_bytes.get() - f.len());
                    self.room.notify_one();
                }
                Ok(Some(f))
            }
            None if self.closed.get() => Err(()),
            None => Ok(None),
        }
    }

    /// The writer stopped: wake a reader waiting for room.
    pub(super) fn writer_stopped(&self) {
        self.writer_gone.set(true);
        self.room.notify_one();
    }

    pub(super) fn close(&self) {
        self.closed.set(true);
        self.wake.notify_one();
    }
}

pub(super) type SharedQueue = Rc<StreamQueue>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_queue_drops_the_oldest_data_and_never_answers() {
        let q = StreamQueue::default();
        q.push_answer(vec![0; 10]);
        let chunk = (TCP_QUEUE_BYTES - 10) / 4;
        for i in 0..4u8 {
            assert!(q.push_data(vec![i + 1; chunk]), "fits");
        }
        // Full: the next frame evicts the oldest data frame, not the answer.
        assert!(!q.push_data(vec![9; chunk]));
        assert!(q.bytes.get() <= TCP_QUEUE_BYTES);
        let order: Vec<u8> = std::iter::from_fn(|| q.pop().ok().flatten())
            .map(|f| f[0])
            .collect();
        assert_eq!(order, vec![0, 2, 3, 4, 9]);
        assert_eq!(q.bytes.get(), 0);
        // A frame bigger than the whole queue is refused outright.
        assert!(!q.push_data(vec![0; TCP_QUEUE_BYTES + 1]));
        q.close();
        assert_eq!(q.pop(), Err(()));
    }

    #[test]
    fn stream_queue_answers_fill_their_budget_and_leave_room_when_taken() {
        let q = StreamQueue::default();
        let answer = 100;
        let mut queued = 0;
        while !q.answers_full() {
            q.push_answer(vec![1; answer]);
            queued += 1;
        }
        assert_eq!(queued, TCP_ANSWER_BYTES.div_ceil(answer));
        assert!(q.bytes.get() <= TCP_ANSWER_BYTES + answer);
        // Relayed data still fits beside a full answer budget, and never evicts answers.
        assert!(q.push_data(vec![2; TCP_QUEUE_BYTES - q.bytes.get()]));
        assert!(!q.push_data(vec![3; 10]));
        assert!(q.answers_full());
        // Taking one answer makes room for the reader again.
        assert_eq!(q.pop().unwrap().unwrap()[0], 1);
        assert!(!q.answers_full());
        assert_eq!(q.answer_bytes.get(), (queued - 1) * answer);
    }
}
