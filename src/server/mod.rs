//! The HTTP transport: accept connections up to a limit, give each the deadlines of
//! [`deadline`], serve it with hyper and the API's router, and shut down gracefully.
//!
//! `axum::serve` has no connection limit and no header or idle timeouts, and hyper's
//! header timeout cannot tell an idle keep-alive connection from a stalled request
//! (see [`deadline`]), so the accept loop is our own; everything on the connection is
//! still hyper's.

mod deadline;
mod overload;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::HttpConfig;
use deadline::{ConnectionClock, Watched};
use overload::Overload;

/// How long shutdown lets open connections finish their requests before it drops them.
const DRAIN_CONNECTIONS: Duration = Duration::from_secs(5);
/// Over-limit connections being answered 503 at once; beyond that they are closed
/// unanswered (a flood must not turn into a flood of tasks).
const MAX_REJECTING: usize = 64;

/// The transport's limits, from `[http]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(http: &HttpConfig) -> Self {
        Self {
            header_timeout: Duration::from_secs(http.header_timeout_secs),
            idle_timeout: Duration::from_secs(http.idle_timeout_secs),
            max_connections: http.max_connections,
        }
    }
}

/// Serve `router` on `listener` until `shutdown` resolves; then stop accepting, let
/// requests in progress finish (within [`DRAIN_CONNECTIONS`]) and return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let rejecting = Arc::new(Semaphore::new(MAX_REJECTING));
    let overload = Arc::new(Overload::new(limits.max_connections));
    let stop = CancellationToken::new();
    let kill = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                connections.spawn(connection(
                    stream,
                    router.clone(),
                    limits,
                    (stop.clone(), kill.clone()),
                    permit,
                ));
            }
            Err(_) => {
                overload.refused();
                if let Ok(permit) = rejecting.clone().try_acquire_owned() {
                    connections.spawn(overload::reject(stream, permit));
                }
            }
        }
    }
    drop(listener);
    stop.cancel();
    connections.close();
    if tokio::time::timeout(DRAIN_CONNECTIONS, connections.wait())
        .await
        .is_err()
    {
        tracing::info!(
            open = connections.len(),
            "closing HTTP connections still open after {DRAIN_CONNECTIONS:?}"
        );
        kill.cancel();
        connections.wait().await;
    }
}

/// An accept error: a connection that died in the backlog is nothing; running out of
/// file descriptors (or memory) is waited out rather than spun on.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    ) {
        return;
    }
    tracing::warn!(%error, "cannot accept an HTTP connection; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One connection, from accept to close. `tokens` are (stop: finish the request in
/// progress, then close; kill: close now).
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    tokens: (CancellationToken, CancellationToken),
    _permit: OwnedSemaphorePermit,
) {
    let (stop, kill) = tokens;
    let _ = stream.set_nodelay(true);
    let clock = Arc::new(ConnectionClock::new(
        limits.header_timeout,
        limits.idle_timeout,
    ));
    let io = TokioIo::new(Watched::new(stream, clock.clone()));
    let service_clock = clock.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let clock = service_clock.clone();
        clock.request_started();
        let answer = router.clone().oneshot(request.map(Body::new));
        async move {
            let response = answer.await;
            clock.request_finished();
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our clock keeps the header deadline (see `deadline`); hyper's would also cut
    // idle keep-alive connections at the header timeout.
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let look = tokio::time::sleep_until(clock.next_look(tokio::time::Instant::now()));
    tokio::pin!(look);
    let mut draining = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%error, "HTTP connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = kill.cancelled() => return,
            () = &mut look => {
                let now = tokio::time::Instant::now();
                if let Some(why) = clock.expired(now) {
                    tracing::debug!(why, "closing an HTTP connection");
                    return;
                }
                look.as_mut().reset(clock.next_look(now));
            }
        }
    }
}
