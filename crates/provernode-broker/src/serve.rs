//! Serving the API without letting clients exhaust the node.
//!
//! `axum::serve` has no read timeouts and no connection cap: 1,100 idle
//! connections used up the node's file descriptors, `/healthz` hung, and
//! workers could no longer be started ("Too many open files"), so queued
//! tasks failed for the machine's fault. Here:
//! - at most `max_connections` connections are served at once; a client
//!   beyond them is answered `503 overloaded` at once and disconnected, so
//!   the accept queue keeps moving and a health check never hangs behind
//!   idle connections;
//! - a connection that does not send a request's headers within
//!   `header_timeout` (a slow client, or an idle keep-alive connection) is
//!   closed, and so is a request whose body takes longer than `body_timeout`;
//! - `accept` failing for lack of descriptors backs off instead of spinning.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower_http::timeout::RequestBodyTimeoutLayer;

#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// How long requests in flight may finish once stopping.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 1024,
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
    let overloaded = overloaded_response(limits.max_connections);
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
            // A fresh socket's send buffer is empty: this never blocks.
            metrics::counter!("provernode_http_connections_refused_total").increment(1);
            let _ = stream.try_write(overloaded.as_bytes());
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
