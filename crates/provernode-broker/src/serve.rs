//! Serving the API without letting clients exhaust the node.
//!
//! `axum::serve` has no read timeouts and no connection cap: 1,100 idle
//! connections used up the node's file descriptors, `/healthz` hung, and
//! workers could no longer be started ("Too many open files"), so queued
//! tasks failed for the machine's fault. Here:
//! - at most `max_connections` connections are served at once; a client
//!   beyond them is answered `503 overloaded` and disconnected within about
//!   a second, so the accept queue keeps moving and a health check never
//!   hangs behind idle connections. The answer waits for the client's
//!   request (an answer that arrives before the request is sent is, to an
//!   HTTP client, an unsolicited message: hyper reports it as a broken
//!   connection, which is what CI saw for half of the refused requests),
//!   and the connection is drained before it is closed (closing with the
//!   request unread resets it, which can discard the answer). At most
//!   `max_refusing` connections are refused that way at once; a newer one
//!   closes the oldest (under a flood of idle connections, the oldest is
//!   one of them, and the newest the health check that follows);
//! - a connection that does not send a request's headers within
//!   `header_timeout` (a slow client, or an idle keep-alive connection) is
//!   closed, and so is a request whose body takes longer than `body_timeout`;
//! - `accept` failing for lack of descriptors backs off instead of spinning.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Semaphore};
use tower_http::timeout::RequestBodyTimeoutLayer;

/// The default of [`ServeLimits::max_refusing`].
pub const MAX_REFUSING: usize = 32;

/// How long a refused client has to send its request's headers, and then
/// to read the answer.
const REFUSAL_WAIT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    pub max_connections: usize,
    /// Connections being answered `503 overloaded` at once (each holds a
    /// descriptor for up to about 2 s; a newer one closes the oldest): the
    /// descriptor reserve counts them.
    pub max_refusing: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// How long requests in flight may finish once stopping.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 1024,
            max_refusing: MAX_REFUSING,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves `app` on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, app: Router, limits: ServeLimits, mut stop: watch::Receiver<bool>) {
    let app = app.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut accept_backoff = Duration::from_millis(10);
    // The connections being refused, oldest first: dropping one's sender
    // ends its refusal, which then closes its connection and gives back
    // its permit (so the descriptors they hold stay bounded).
    let mut refusing: VecDeque<oneshot::Sender<()>> = VecDeque::new();
    let refusal_permits = Arc::new(Semaphore::new(limits.max_refusing.max(1)));
    let overloaded: Arc<str> = overloaded_response(limits.max_connections).into();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    accept_backoff = Duration::from_millis(10);
                    stream
                }
                Err(e) => {
                    // EMFILE/ENFILE/ENOMEM: the node is short of something; a
                    // tight loop would only make it worse.
                    metrics::counter!("provernode_http_accept_errors_total").increment(1);
                    tracing::warn!(error = %e, retry_in = ?accept_backoff, "cannot accept a connection");
                    tokio::time::sleep(accept_backoff).await;
                    accept_backoff = (accept_backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("provernode_http_connections_refused_total").increment(1);
            refusing.retain(|refusal| !refusal.is_closed());
            let permit = match refusal_permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    // The oldest is most likely an idle connection of a
                    // flood; the newest, a client about to send its
                    // request. The oldest is closed, and its permit
                    // awaited.
                    refusing.pop_front();
                    let freed = refusal_permits.clone().acquire_owned();
                    match tokio::time::timeout(REFUSAL_WAIT, freed).await {
                        Ok(Ok(permit)) => permit,
                        _ => continue,
                    }
                }
            };
            let (refusal, evicted) = oneshot::channel::<()>();
            refusing.push_back(refusal);
            let answer = overloaded.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = refuse(stream, &answer) => {}
                    _ = evicted => {}
                }
                drop(permit);
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            tower_service::Service::call(&mut app.clone(), request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Errors here are clients' (reset, timed out, malformed).
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the shutdown grace period; closing them");
    }
}

/// Answers a connection beyond the cap with `answer`: after the client's
/// request headers (or `REFUSAL_WAIT`), then waits up to `REFUSAL_WAIT`
/// for the client to close, reading what it still sends, so that the close
/// is a clean one.
async fn refuse(mut stream: TcpStream, answer: &str) {
    let mut buf = [0u8; 4096];
    // The last bytes seen, so a `\r\n\r\n` split across reads is found.
    let mut tail: Vec<u8> = Vec::with_capacity(buf.len() + 3);
    let _ = tokio::time::timeout(REFUSAL_WAIT, async {
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            tail.extend_from_slice(&buf[..n]);
            if tail.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
            let keep = tail.len().saturating_sub(3);
            tail.drain(..keep);
        }
    })
    .await;
    let _ = tokio::time::timeout(REFUSAL_WAIT, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        while stream.read(&mut buf).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

/// The whole answer to a connection beyond the cap.
fn overloaded_response(max_connections: usize) -> String {
    let body = serde_json::to_string(&provernode_api::ErrorBody {
        error: provernode_api::ErrorDetail {
            code: crate::ErrorCode::Overloaded,
            message: format!(
                "this node is serving its most connections at once ({max_connections}, --max-http-connections); retry shortly"
            ),
        },
    })
    .unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}
