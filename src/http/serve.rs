//! The listener: accepting client connections and holding each to `[server]`'s limits
//! ([`ConnectionLimits`]), so that slow or hostile clients cannot exhaust the broker.
//! - At most `max_connections` connections are open at once, and at most
//!   `max_connections_per_client` from one peer address. One more is answered a fixed
//!   `503` with `Retry-After: 1` and closed, without reaching the router (and without
//!   holding a slot: a handful of such answers are written at once, the rest just closed).
//! - hyper reads each request head under `header_read_timeout` (its timer also runs while a
//!   connection waits for its next request); a slower connection is closed.
//! - A request body must arrive whole within `body_read_timeout` of its head
//!   ([`DeadlineBody`]); the edge then answers `408` ([`BodyDeadline`]).
//! - A connection with no request in flight for `keep_alive_timeout` is closed.
//!
//! On shutdown it stops accepting, asks every connection to close once its request is
//! answered, and returns when all have gone.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::settings::ConnectionLimits;

/// How many over-the-cap connections are answered at once; beyond that they are closed
/// without an answer.
const REFUSALS_AT_ONCE: usize = 32;

/// How long answering an over-the-cap connection may take.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

const BUSY_BODY: &str = "The broker has too many open connections; try again shortly.\n";

/// Serves `router` on `listener` until `shutdown` completes, then until every connection
/// has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(Clients {
        open: Mutex::new(HashMap::new()),
        cap: limits.max_connections_per_client,
    });
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let (stop, stopping) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait for some to be released.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        match admit(&open, &clients, peer.ip()) {
            Some(slot) => {
                tokio::spawn(connection(
                    stream,
                    peer,
                    router.clone(),
                    limits,
                    slot,
                    stopping.clone(),
                ));
            }
            None => refuse(stream, &refusals),
        }
    }
    drop(listener);
    drop(stopping);
    // Every connection holds a receiver: tell them, then wait for the last to drop it.
    let _ = stop.send(());
    stop.closed().await;
}

/// Errors that concern one connection only; the listener is fine.
fn is_per_connection(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Open connections per peer address, and how many one address may have.
struct Clients {
    open: Mutex<HashMap<IpAddr, usize>>,
    cap: usize,
}

/// A connection's place under both caps; dropping it frees both.
struct Slot {
    clients: Arc<Clients>,
    ip: IpAddr,
    _open: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self
            .clients
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// A slot for a connection from `ip`, unless either cap is reached.
fn admit(open: &Arc<Semaphore>, clients: &Arc<Clients>, ip: IpAddr) -> Option<Slot> {
    let permit = open.clone().try_acquire_owned().ok()?;
    let ip = ip.to_canonical();
    let mut map = clients.open.lock().unwrap_or_else(PoisonError::into_inner);
    let n = map.entry(ip).or_insert(0);
    if *n >= clients.cap {
        if *n == 0 {
            map.remove(&ip);
        }
        return None;
    }
    *n += 1;
    drop(map);
    Some(Slot {
        clients: clients.clone(),
        ip,
        _open: permit,
    })
}

/// Answers a connection over a cap with a fixed 503, if few such answers are under way;
/// else closes it at once.
fn refuse(mut stream: TcpStream, refusals: &Arc<Semaphore>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
             retry-after: 1\r\ncache-control: no-store\r\nconnection: close\r\n\
             content-length: {}\r\n\r\n{BUSY_BODY}",
            BUSY_BODY.len()
        );
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            // Answer after the request head (or what arrives of it): an HTTP client takes
            // an answer sent before its request for a broken connection.
            let mut head = Vec::with_capacity(1024);
            let mut chunk = [0u8; 1024];
            while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk).await? {
                    0 => break,
                    n => head.extend_from_slice(&chunk[..n]),
                }
            }
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
            // Read what the client sent until it closes, so that closing does not reset
            // the connection before the client has read the answer.
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
    });
}

/// Requests in flight on one connection, and a signal when that number changes.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    changed: Notify,
}

/// One request in flight on its connection, until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.changed.notify_one();
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_one();
    }
}

/// Completes once the connection has had no request in flight for `after`.
async fn idle(activity: &Activity, after: Duration) {
    loop {
        if activity.in_flight.load(Ordering::SeqCst) == 0 {
            if tokio::time::timeout(after, activity.changed.notified())
                .await
                .is_err()
            {
                return;
            }
        } else {
            activity.changed.notified().await;
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    slot: Slot,
    mut stopping: watch::Receiver<()>,
) {
    let _slot = slot;
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = InFlight::start(&activity);
            let expired = Arc::new(AtomicBool::new(false));
            let deadline = Instant::now() + limits.body_read_timeout;
            let mut request = request.map(|body| {
                Body::new(DeadlineBody {
                    inner: body,
                    deadline,
                    timer: None,
                    expired: expired.clone(),
                })
            });
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(BodyDeadline(expired));
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(in_flight);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
            return;
        }
        () = idle(&activity, limits.keep_alive_timeout) => {}
        _ = stopping.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Set on a request whose body missed its deadline, for the edge to answer 408.
#[derive(Clone)]
pub struct BodyDeadline(Arc<AtomicBool>);

impl BodyDeadline {
    pub fn missed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A request body that fails once its deadline passes before its end has arrived.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::SeqCst);
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.inner)
    }
}
