//! The HTTP server loop: accepts connections up to `http.max_connections` (the
//! rest wait in the kernel's backlog), serves each with hyper's HTTP/1 and a
//! header timeout that is also the keep-alive idle timeout, and on shutdown stops
//! accepting and lets the requests in flight finish.
//!
//! `axum::serve` has neither a connection limit nor header timeouts, hence this
//! small loop over hyper-util, the pieces axum itself is built from.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::config::HttpLimits;

/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(30);

/// Serve the routes `app` holds on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<arc_swap::ArcSwap<axum::Router>>,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let idle = Duration::from_secs_f64(limits.idle_timeout_s);
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(idle).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // Wait for a free slot before accepting: past the limit, clients queue in
        // the backlog instead of costing memory and a task each.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The routes of the node's state now (a cluster node that was deposed
        // serves a rebuilt state on new connections).
        let service = TowerToHyperService::new(axum::Router::clone(&app.load()));
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => tracing::warn!("shutdown: requests still running after {DRAIN:?}; stopping anyway"),
    }
    Ok(())
}
