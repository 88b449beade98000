//! The deadlines one connection lives by, and the IO wrapper that tells them when a
//! request begins.
//!
//! hyper's own `header_read_timeout` starts as soon as hyper waits for a request head,
//! so on a keep-alive connection it cannot tell "idle between requests" (allowed for
//! `idle_timeout`) from "half a request line" (allowed for `header_timeout`). The first
//! byte read after a response is what tells them apart, and only the IO sees it.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for the rest of a request head that began (or a connection that
    /// opened) at this instant.
    Head(Instant),
    /// A request is being answered: its body has a deadline of its own (the API's
    /// body timeout), and the handler's work has none here.
    Busy,
    /// Answered; nothing of the next request since this instant.
    Idle(Instant),
}

/// Where a connection is in its request cycle, and when it has waited too long.
///
/// The connection's watcher is never woken by a change of phase (that would cost a
/// wake-up per request): it looks again at [`ConnectionClock::next_look`], which is
/// never later than any deadline a phase change can bring, because it is at most
/// `min(header, idle)` away.
#[derive(Debug)]
pub struct ConnectionClock {
    phase: Mutex<Phase>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl ConnectionClock {
    /// A connection just accepted: its first request head is due within the header
    /// timeout.
    pub fn new(header_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            phase: Mutex::new(Phase::Head(Instant::now())),
            header_timeout,
            idle_timeout,
        }
    }

    fn set(&self, phase: Phase) {
        // The lock guards a plain value: a poisoned one still holds a whole phase.
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
    }

    fn get(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// hyper handed a parsed request head to the service.
    pub fn request_started(&self) {
        self.set(Phase::Busy);
    }

    /// The service answered; the connection waits for the next request.
    pub fn request_finished(&self) {
        self.set(Phase::Idle(Instant::now()));
    }

    /// Bytes arrived: on an idle connection they begin the next request head.
    fn bytes_read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*phase, Phase::Idle(_)) {
            *phase = Phase::Head(Instant::now());
        }
    }

    /// When the connection is to be closed if nothing changes; `None` while a request
    /// is being answered.
    pub fn deadline(&self) -> Option<Instant> {
        match self.get() {
            Phase::Head(since) => Some(since + self.header_timeout),
            Phase::Busy => None,
            Phase::Idle(since) => Some(since + self.idle_timeout),
        }
    }

    /// When the watcher is to look again, seen at `now`: the deadline, or sooner. A
    /// request that begins later than `now` has its head deadline a header timeout
    /// after it, and one that ends later its idle deadline an idle timeout after it:
    /// neither can fall before `now + min(header, idle)`.
    pub fn next_look(&self, now: Instant) -> Instant {
        let soonest_new = now + self.header_timeout.min(self.idle_timeout);
        self.deadline().map_or(soonest_new, |d| d.min(soonest_new))
    }

    /// Why the connection is past its deadline at `now`, if it is.
    pub fn expired(&self, now: Instant) -> Option<&'static str> {
        match self.get() {
            Phase::Head(since) if now >= since + self.header_timeout => {
                Some("request headers not complete within header_timeout_secs")
            }
            Phase::Idle(since) if now >= since + self.idle_timeout => {
                Some("no request within idle_timeout_secs")
            }
            _ => None,
        }
    }
}

/// A byte stream that reports reads to its connection's clock.
pub struct Watched<S> {
    inner: S,
    clock: Arc<ConnectionClock>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, clock: Arc<ConnectionClock>) -> Self {
        Self { inner, clock }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn head_then_busy_then_idle_then_head_again() {
        let clock = ConnectionClock::new(Duration::from_secs(10), Duration::from_secs(60));
        let opened = Instant::now();
        assert_eq!(clock.deadline(), Some(opened + Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(clock.expired(Instant::now()).is_some());

        clock.request_started();
        assert_eq!(clock.deadline(), None);
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(
            clock.expired(Instant::now()),
            None,
            "a slow handler is not idle"
        );

        clock.request_finished();
        let answered = Instant::now();
        assert_eq!(clock.deadline(), Some(answered + Duration::from_secs(60)));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(clock.expired(Instant::now()), None);
        clock.bytes_read();
        let began = Instant::now();
        assert_eq!(clock.deadline(), Some(began + Duration::from_secs(10)));
        // More bytes of the same head do not extend it.
        tokio::time::advance(Duration::from_secs(5)).await;
        clock.bytes_read();
        assert_eq!(clock.deadline(), Some(began + Duration::from_secs(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_look_is_never_after_a_deadline_a_later_change_can_bring() {
        let clock = ConnectionClock::new(Duration::from_secs(10), Duration::from_secs(60));
        clock.request_started();
        clock.request_finished();
        let idle_since = Instant::now();
        // Idle: looked at now, then a request begins 1 s later and stalls.
        let look = clock.next_look(Instant::now());
        assert_eq!(look, idle_since + Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(1)).await;
        clock.bytes_read();
        let head_deadline = clock.deadline().unwrap();
        assert!(look <= head_deadline);
        // Busy: looked at now; the idle deadline after it ends is later still.
        clock.request_started();
        let look = clock.next_look(Instant::now());
        tokio::time::advance(Duration::from_secs(2)).await;
        clock.request_finished();
        assert!(look <= clock.deadline().unwrap());
    }
}
