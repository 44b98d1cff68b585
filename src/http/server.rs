//! The HTTP/1.1 server loop, with the limits axum::serve cannot set.
//!
//! axum::serve offers no header-read timeout, so a client that sends half a request line keeps
//! its connection (and a task) for as long as it likes. hyper's own connection builder has one:
//! connections are served by hyper's HTTP/1 builder with `header_read_timeout` (it also closes
//! idle keep-alive connections after that time), and hyper-util's `GracefulShutdown` drains them.
//! The whole-request timeout, body included, is tower-http's `TimeoutLayer` in [`super::router`].

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// the connections in progress to finish their current request.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors, usually: back off instead of spinning, as axum does.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts and clients that hang up land here; neither is creditd's fault.
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
