//! The HTTP server the API runs on: hyper's HTTP/1 connection driver under an
//! accept loop that bounds what one client can hold, which `axum::serve` does
//! not. Three limits ([`Limits`]):
//!
//! - **Header read timeout.** A request's headers must be complete within it,
//!   counted from their first byte (on a new connection, from the accept). A
//!   client that trickles a header line every few seconds is cut off.
//! - **Body read timeout.** A request's body must be complete within it,
//!   counted from the end of its headers (a body sent a byte at a time is cut
//!   off).
//! - **Idle timeout.** A kept-alive connection that sends nothing for this long
//!   between requests is closed.
//! - **Connection cap.** At most this many connections are open. A new one
//!   that arrives at the cap is accepted and makes room: the connection slowest
//!   to send its request (headers, or a body its handler waits for; the
//!   longest-waiting first) is closed, or if there is none, the one idle
//!   longest. So a flood of slow or idle connections cannot lock out
//!   `/api/v1/health` or the API (a fresh client always gets in, and the
//!   flood's own newcomers close its older connections, not kept-alive
//!   clients between two requests). Only when every connection is busy in
//!   Herald does the new one wait for a place, and further ones in the
//!   kernel's accept queue. The cap is kept below the open-files limit (raised
//!   to its hard maximum at start-up, [`raise_open_files_limit`]), so
//!   accepting never fails with "Too many open files".
//!
//! Why not hyper's `header_read_timeout` alone: hyper (1.12) starts that clock
//! as soon as a connection is ready for a request, i.e. it also counts the idle
//! wait between two requests, so one setting cannot be both a short header
//! timeout and a longer keep-alive. Herald watches each connection itself (the
//! bytes it reads and writes, and whether a handler is running) and sets hyper's
//! timeout to the sum of the two as a backstop. Hyper has no body timeout.
//!
//! Graceful shutdown as before: no new connections, idle ones closed at once,
//! requests in flight answered, then the connections close.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// What one client connection may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time to send a request's headers, from their first byte.
    pub header_read_timeout: Duration,
    /// Time to send a request's body, from the end of its headers.
    pub body_read_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    /// The defaults of `HERALD_HEADER_READ_TIMEOUT_SECONDS`,
    /// `HERALD_BODY_READ_TIMEOUT_SECONDS`, `HERALD_IDLE_TIMEOUT_SECONDS` and
    /// `HERALD_MAX_CONNECTIONS`.
    fn default() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: crate::config::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// File descriptors kept for everything but client connections: the database,
/// log files, and the delivery client's sockets (two per in-flight delivery:
/// one in use, one idle in its pool).
pub fn reserved_descriptors(worker_concurrency: usize) -> u64 {
    256 + 2 * worker_concurrency as u64
}

/// Raises the soft open-files limit to the hard one (a process may always do
/// that) and returns the limit in force, or `None` where there is none to read.
pub fn raise_open_files_limit() -> Option<u64> {
    if !cfg!(unix) {
        return None;
    }
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The connection cap that fits under `open_files` with `reserved` kept aside
/// (at least 16: a server that cannot take a few connections is no server).
pub fn fit_connections(wanted: usize, open_files: Option<u64>, reserved: u64) -> usize {
    match open_files {
        None => wanted,
        Some(limit) => {
            let room = usize::try_from(limit.saturating_sub(reserved)).unwrap_or(usize::MAX);
            wanted.min(room).max(16)
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`, then stops
/// accepting, lets every request in flight finish, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let open = Arc::new(Open::default());
    let tasks = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout + limits.header_read_timeout);
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of descriptors or memory: wait for some to free.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // At the cap: make room, then wait the moment the closed
                // connection takes to go (or, when every connection is busy
                // in Herald, until one is done).
                open.evict_longest_waiting();
                tokio::select! {
                    permit = permits.clone().acquire_owned() => {
                        permit.expect("the connection semaphore is never closed")
                    }
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        next_id += 1;
        let id = next_id;
        let activity = Arc::new(Activity::new());
        open.insert(id, activity.clone());
        let conn = Connection {
            http: http.clone(),
            router: router.clone(),
            activity,
            limits,
            shutdown: shutdown.clone(),
        };
        let open = open.clone();
        tasks.spawn(async move {
            conn.run(stream).await;
            open.remove(id);
            drop(permit);
        });
    }
    // Refuse new connections at once rather than leave them in the queue.
    drop(listener);
    tasks.close();
    tasks.wait().await;
}

/// Errors of one connection that has gone before it was accepted: not the
/// listener's problem.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The open connections, so that one can be closed to make room at the cap.
#[derive(Default)]
struct Open {
    connections: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Open {
    fn insert(&self, id: u64, activity: Arc<Activity>) {
        self.lock().insert(id, activity);
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes the connection that has waited longest for the rest of a
    /// request, or if none does, the one idle longest. None is closed when
    /// every connection is busy in Herald. (Not the one nearest its deadline:
    /// a fresh connection, whose headers are due soonest, would then make room
    /// for the attack's.)
    fn evict_longest_waiting(&self) {
        let open = self.lock();
        let victim = open
            .values()
            .filter(|a| !a.evict.is_cancelled())
            .filter_map(|a| Some((a.waiting()?, a)))
            .min_by_key(|(waiting, _)| *waiting)
            .map(|(_, a)| a);
        if let Some(activity) = victim {
            activity.evict.cancel();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.connections.lock().expect("open connections lock")
    }
}

/// What a connection waits for from its client. The order is the order in
/// which the cap closes them: a request that is slow to come in is more likely
/// an attack's than a kept-alive connection between two requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Waiting {
    /// The rest of a request: headers, or a body its handler wants.
    Request,
    /// The next request.
    Idle,
}

/// Marks a time as "none" in the atomics below.
const NEVER: u64 = u64::MAX;

/// What one connection is doing, kept up to date by its I/O and its handlers.
/// Times are milliseconds since the connection was accepted.
struct Activity {
    accepted: Instant,
    /// The last read or write of at least one byte.
    last_io: AtomicU64,
    /// The first byte of a request whose headers are not complete yet
    /// (`NEVER`: none is being read).
    head_started: AtomicU64,
    /// Requests being handled (HTTP/1: zero or one).
    handling: AtomicUsize,
    /// The end of the headers of a request whose handler still waits for
    /// (part of) its body (`NEVER`: none).
    body_since: AtomicU64,
    /// Signalled when the deadline may have moved earlier, so the watchdog
    /// looks again.
    changed: tokio::sync::Notify,
    /// Cancelled to close the connection to make room for another.
    evict: CancellationToken,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            accepted: Instant::now(),
            last_io: AtomicU64::new(0),
            // A new connection owes its first request's headers from the start.
            head_started: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
            body_since: AtomicU64::new(NEVER),
            changed: tokio::sync::Notify::new(),
            evict: CancellationToken::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn age(&self) -> Duration {
        self.accepted.elapsed()
    }

    /// When the connection is to be closed, since it was accepted; `None`
    /// while a handler runs with the whole request in hand (handlers are
    /// bounded by their own timeouts).
    fn deadline(&self, limits: &Limits) -> Option<Duration> {
        if self.handling.load(Ordering::Acquire) > 0 {
            let body = self.body_since.load(Ordering::Acquire);
            return (body != NEVER).then(|| Duration::from_millis(body) + limits.body_read_timeout);
        }
        let head = self.head_started.load(Ordering::Acquire);
        Some(if head != NEVER {
            Duration::from_millis(head) + limits.header_read_timeout
        } else {
            Duration::from_millis(self.last_io.load(Ordering::Acquire)) + limits.idle_timeout
        })
    }

    /// What the connection waits for from its client, and since when: the
    /// rest of a request (its headers, or a body its handler wants), or its
    /// next request. `None` while Herald is busy with it.
    fn waiting(&self) -> Option<(Waiting, Instant)> {
        let (what, since) = if self.handling.load(Ordering::Acquire) > 0 {
            (Waiting::Request, self.body_since.load(Ordering::Acquire))
        } else {
            match self.head_started.load(Ordering::Acquire) {
                NEVER => (Waiting::Idle, self.last_io.load(Ordering::Acquire)),
                head => (Waiting::Request, head),
            }
        };
        (since != NEVER).then(|| (what, self.accepted + Duration::from_millis(since)))
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Release);
        // Outside a request, bytes read start the next request's headers.
        if self.handling.load(Ordering::Acquire) == 0
            && self
                .head_started
                .compare_exchange(NEVER, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Release);
    }

    /// A request's headers are in and its handler starts (`body`: with a
    /// body to come); the guard ends it.
    fn begin(self: &Arc<Self>, body: bool) -> Handling {
        self.handling.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NEVER, Ordering::Release);
        let since = if body { self.now() } else { NEVER };
        self.body_since.store(since, Ordering::Release);
        self.changed.notify_one();
        Handling(self.clone())
    }

    /// The body is all in, or no longer wanted.
    fn body_done(&self) {
        self.body_since.store(NEVER, Ordering::Release);
    }

    /// Resolves when the connection has overstayed its deadline.
    async fn overstayed(&self, limits: &Limits) {
        loop {
            let wait = match self.deadline(limits) {
                Some(deadline) => match deadline.checked_sub(self.age()) {
                    None => return,
                    Some(left) if left.is_zero() => return,
                    Some(left) => left,
                },
                // Until the handler ends or the request's state changes.
                None => limits.idle_timeout,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.changed.notified() => {}
            }
        }
    }
}

/// A handler running on a connection; dropped when its answer is ready or the
/// request is abandoned.
struct Handling(Arc<Activity>);

impl Drop for Handling {
    fn drop(&mut self) {
        // The idle clock starts when the answer is ready.
        self.0.wrote();
        self.0.handling.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// One accepted connection and what it needs to run.
struct Connection {
    http: hyper::server::conn::http1::Builder,
    router: Router,
    activity: Arc<Activity>,
    limits: Limits,
    shutdown: CancellationToken,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        let Connection {
            http,
            router,
            activity,
            limits,
            shutdown,
        } = self;
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let on_request = activity.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let handling = on_request.begin(!request.body().is_end_stream());
            let activity = on_request.clone();
            let request = request.map(|inner| {
                axum::body::Body::new(WatchedBody {
                    inner,
                    activity,
                    done: false,
                })
            });
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(handling);
                response
            }
        });
        let conn = http.serve_connection(io, service);
        tokio::pin!(conn);
        let mut draining = false;
        loop {
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                // Dropping the connection closes its socket.
                _ = activity.overstayed(&limits) => {
                    tracing::debug!("closed a connection that was idle or slow to send its headers");
                    break;
                }
                _ = activity.evict.cancelled() => {
                    tracing::debug!("closed a waiting connection to make room at the connection cap");
                    break;
                }
                _ = shutdown.cancelled(), if !draining => {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
        }
    }
}

/// A request's body that tells its connection's [`Activity`] when it is all
/// in, or dropped unread.
struct WatchedBody {
    inner: Incoming,
    activity: Arc<Activity>,
    done: bool,
}

impl WatchedBody {
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.activity.body_done();
        }
    }
}

impl http_body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_))))
            || self.inner.is_end_stream()
        {
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A client's socket that tells its connection's [`Activity`] when bytes go
/// in or out.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 100,
        }
    }

    #[test]
    fn deadlines_follow_what_the_connection_is_doing() {
        let a = Arc::new(Activity::new());
        // New: its first request's headers are due 10 s after the accept.
        assert_eq!(a.deadline(&limits()), Some(Duration::from_secs(10)));
        assert_eq!(a.waiting(), Some((Waiting::Request, a.accepted)));
        // In a handler with the whole request: no deadline, not waiting.
        let handling = a.begin(false);
        a.read(); // bytes read now do not start a new request's headers
        assert_eq!(a.deadline(&limits()), None);
        assert_eq!(a.waiting(), None);
        drop(handling);
        // In a handler that waits for the body: due 30 s after the headers.
        let handling = a.begin(true);
        let body_from = a.body_since.load(Ordering::Acquire);
        assert_eq!(
            a.deadline(&limits()),
            Some(Duration::from_millis(body_from) + Duration::from_secs(30))
        );
        a.body_done();
        assert_eq!(a.deadline(&limits()), None);
        drop(handling);
        // Answered: idle from then on.
        let idle_from = a.last_io.load(Ordering::Acquire);
        assert_eq!(
            a.deadline(&limits()),
            Some(Duration::from_millis(idle_from) + Duration::from_secs(60))
        );
        // The next request's first byte starts its header clock.
        a.read();
        let head = a.head_started.load(Ordering::Acquire);
        assert_ne!(head, NEVER);
        assert_eq!(
            a.deadline(&limits()),
            Some(Duration::from_millis(head) + Duration::from_secs(10))
        );
        // More bytes of the same headers do not push it back.
        a.read();
        assert_eq!(a.head_started.load(Ordering::Acquire), head);
    }

    #[test]
    fn the_cap_closes_a_slow_request_before_an_idle_connection() {
        let open = Open::default();
        let idle = Arc::new(Activity::new());
        drop(idle.begin(false)); // answered: idle from now on
        let slow = Arc::new(Activity::new()); // still owes its first request
        let busy = Arc::new(Activity::new());
        let _handling = busy.begin(false);
        for (id, a) in [(1, &idle), (2, &slow), (3, &busy)] {
            open.insert(id, (*a).clone());
        }
        open.evict_longest_waiting();
        assert!(slow.evict.is_cancelled() && !idle.evict.is_cancelled());
        open.evict_longest_waiting();
        assert!(idle.evict.is_cancelled());
        open.evict_longest_waiting();
        assert!(!busy.evict.is_cancelled());
    }

    #[test]
    fn the_cap_fits_under_the_open_files_limit() {
        let cases = [
            (10_000, None, 10_000),
            (10_000, Some(1_048_576), 10_000),
            (10_000, Some(20_000), 10_000),
            (10_000, Some(8_000), 7_000),
            (10_000, Some(1_024), 24),
            (10_000, Some(100), 16),
        ];
        for (wanted, limit, want) in cases {
            assert_eq!(fit_connections(wanted, limit, 1_000), want, "{limit:?}");
        }
    }
}
