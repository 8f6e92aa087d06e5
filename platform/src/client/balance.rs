//! Per-call load balancing over every address a service's name resolves to (a Kubernetes
//! headless Service lists one per ready pod), refreshed from DNS, so replicas an autoscaler adds
//! receive calls and replicas that go away stop receiving them.
//!
//! Each address has its own lazily connected [`Channel`]; calls go round-robin over the
//! addresses that have not just failed. An address whose call fails is set aside for a backoff
//! (growing while it keeps failing) and the call moves on to the next address — but only when
//! nothing of the request's body has been sent (the connection could not be made, the usual way
//! a killed replica fails), so a call that may have reached a server is never sent twice. This is
//! what tonic's own balancer does not do (grpc/grpc-rust#2839: it picks endpoints that fail to
//! connect and hands their error to the caller).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::Uri;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tower::{Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How often the addresses are resolved again by default (Kubernetes' DNS answers for 5 s).
pub const DNS_REFRESH: Duration = Duration::from_secs(5);
/// The first backoff of an address whose call failed; it doubles while it keeps failing.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Resolves a host name to addresses.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`, each with `port`.
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>>;
}

/// The system's resolver (`getaddrinfo`, so `/etc/hosts` and the cluster's DNS).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        let host = host.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Settings of a [`Balanced`] channel.
#[derive(Clone)]
pub struct BalanceOptions {
    /// Longest wait for a connection to one address.
    pub connect_timeout: Duration,
    /// Longest wait for an answer, per address tried (none: the caller's own deadline).
    pub timeout: Option<Duration>,
    /// How often the name is resolved again.
    pub refresh: Duration,
    /// What resolves the name.
    pub resolver: Arc<dyn Resolve>,
}

impl std::fmt::Debug for BalanceOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BalanceOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl BalanceOptions {
    /// The system resolver, [`DNS_REFRESH`], `connect_timeout` and no timeout of its own.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            timeout: None,
            refresh: DNS_REFRESH,
            resolver: Arc::new(SystemResolver),
        }
    }
}

/// A channel that spreads calls over every address of a service: use it wherever a tonic
/// [`Channel`] would go (`FooServiceClient::new(balanced)`). Clones share the addresses.
#[derive(Clone)]
pub struct Balanced {
    inner: Arc<Inner>,
}

struct Inner {
    /// The URL's scheme, host and port, and the URL itself (each address's `:authority`).
    scheme: String,
    host: String,
    port: u16,
    origin: Uri,
    options: BalanceOptions,
    replicas: RwLock<Arc<[Arc<Replica>]>>,
    next: AtomicUsize,
}

struct Replica {
    addr: SocketAddr,
    channel: Channel,
    failures: AtomicU32,
    set_aside_until: Mutex<Option<Instant>>,
}

impl Balanced {
    /// A channel to every address `url`'s host resolves to (`setting` names where the URL came
    /// from, for errors). An IP address is one replica and is never resolved; a name is resolved
    /// in the background every `options.refresh` while a clone of the channel lives.
    pub fn new(url: &str, setting: &str, options: BalanceOptions) -> anyhow::Result<Self> {
        let origin: Uri = url
            .parse()
            .with_context(|| format!("{setting} is not a valid URL"))?;
        let scheme = origin.scheme_str().unwrap_or("http").to_owned();
        let host = origin
            .host()
            .with_context(|| format!("{setting} names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = origin
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let inner = Arc::new(Inner {
            scheme,
            host,
            port,
            origin,
            options,
            replicas: RwLock::new(Arc::new([])),
            next: AtomicUsize::new(0),
        });
        if let Ok(ip) = inner.host.parse::<IpAddr>() {
            let replica = inner.replica(SocketAddr::new(ip, inner.port))?;
            *inner.replicas.write().expect("replicas lock") = Arc::new([replica]);
        } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(keep_resolving(Arc::downgrade(&inner)));
        }
        Ok(Self { inner })
    }

    /// The addresses calls are spread over now.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.inner
            .snapshot()
            .iter()
            .map(|replica| replica.addr)
            .collect()
    }
}

impl std::fmt::Debug for Balanced {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Balanced")
            .field("origin", &self.inner.origin)
            .field("addresses", &self.addresses())
            .finish()
    }
}

/// Resolves the name now and then every `refresh`, until the last clone of the channel is gone.
async fn keep_resolving(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if let Err(error) = strong.resolve().await {
            tracing::warn!(host = %strong.host, error = format!("{error:#}"), "resolving an upstream failed; keeping its last addresses");
        }
        let refresh = strong.options.refresh;
        drop(strong);
        tokio::time::sleep(refresh).await;
    }
}

impl Inner {
    fn snapshot(&self) -> Arc<[Arc<Replica>]> {
        self.replicas.read().expect("replicas lock").clone()
    }

    fn replica(&self, addr: SocketAddr) -> anyhow::Result<Arc<Replica>> {
        let mut endpoint = Endpoint::from_shared(format!("{}://{addr}", self.scheme))
            .context("an address is a valid URL")?
            .origin(self.origin.clone())
            .connect_timeout(self.options.connect_timeout);
        if let Some(timeout) = self.options.timeout {
            endpoint = endpoint.timeout(timeout);
        }
        Ok(Arc::new(Replica {
            addr,
            channel: endpoint.connect_lazy(),
            failures: AtomicU32::new(0),
            set_aside_until: Mutex::new(None),
        }))
    }

    /// Replaces the addresses with what the name resolves to now, keeping the channels (and
    /// their connections and backoffs) of addresses that stay. An empty answer changes nothing.
    async fn resolve(&self) -> anyhow::Result<()> {
        let mut addrs = self
            .options
            .resolver
            .resolve(&self.host, self.port)
            .await
            .with_context(|| format!("resolving {}", self.host))?;
        addrs.sort();
        addrs.dedup();
        anyhow::ensure!(!addrs.is_empty(), "{} has no address", self.host);
        let current = self.snapshot();
        if current
            .iter()
            .map(|replica| replica.addr)
            .eq(addrs.iter().copied())
        {
            return Ok(());
        }
        let mut replicas = Vec::with_capacity(addrs.len());
        for addr in addrs {
            match current.iter().find(|replica| replica.addr == addr) {
                Some(replica) => replicas.push(replica.clone()),
                None => replicas.push(self.replica(addr)?),
            }
        }
        tracing::debug!(host = %self.host, addresses = ?replicas.iter().map(|replica| replica.addr).collect::<Vec<_>>(), "upstream addresses");
        *self.replicas.write().expect("replicas lock") = replicas.into();
        Ok(())
    }

    /// The replicas in the order this call tries them: round-robin over those not set aside,
    /// then those set aside, soonest back first (a call still goes somewhere when all failed).
    async fn order(&self) -> Result<Vec<Arc<Replica>>, BoxError> {
        let mut replicas = self.snapshot();
        if replicas.is_empty() {
            self.resolve().await.map_err(|error| {
                Box::new(tonic::Status::unavailable(format!("{error:#}"))) as BoxError
            })?;
            replicas = self.snapshot();
        }
        let count = replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut order: Vec<Arc<Replica>> = (0..count)
            .map(|offset| replicas[(start + offset) % count].clone())
            .collect();
        order.sort_by_key(|replica| replica.set_aside_until(now));
        Ok(order)
    }
}

impl Replica {
    fn set_aside_until(&self, now: Instant) -> Option<Instant> {
        self.set_aside_until
            .lock()
            .expect("backoff lock")
            .filter(|until| *until > now)
    }

    fn succeeded(&self) {
        if self.failures.swap(0, Ordering::Relaxed) > 0 {
            *self.set_aside_until.lock().expect("backoff lock") = None;
        }
    }

    fn failed(&self) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed);
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << failures.min(16))
            .min(MAX_BACKOFF);
        *self.set_aside_until.lock().expect("backoff lock") = Some(Instant::now() + backoff);
    }
}

impl Service<http::Request<Body>> for Balanced {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<Result<http::Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call waits for the channel of the address it picks.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let order = inner.order().await?;
            let (parts, body) = request.into_parts();
            let body = Replayable::new(body);
            let last = order.len() - 1;
            for (index, replica) in order.into_iter().enumerate() {
                let request = http::Request::from_parts(parts.clone(), body.attempt());
                let answer = async {
                    let mut channel = replica.channel.clone();
                    channel.ready().await?;
                    channel.call(request).await
                }
                .await;
                match answer {
                    Ok(response) => {
                        replica.succeeded();
                        return Ok(response);
                    }
                    Err(error) => {
                        replica.failed();
                        if index == last || !body.unsent() {
                            return Err(Box::new(error) as BoxError);
                        }
                        tracing::debug!(address = %replica.addr, error = %error, "an upstream address failed before the call was sent; trying the next");
                    }
                }
            }
            unreachable!("the last address answers or fails the call")
        })
    }
}

/// A request body that one attempt at a time may take: while no attempt has read from it, the
/// next attempt gets it whole.
struct Replayable {
    slot: Option<Arc<Mutex<Option<Body>>>>,
}

impl Replayable {
    fn new(body: Body) -> Self {
        use http_body::Body as _;
        Self {
            slot: (!body.is_end_stream()).then(|| Arc::new(Mutex::new(Some(body)))),
        }
    }

    fn attempt(&self) -> Body {
        match &self.slot {
            None => Body::empty(),
            Some(slot) => Body::new(Attempt {
                slot: slot.clone(),
                taken: None,
            }),
        }
    }

    /// Whether no attempt has read the body yet.
    fn unsent(&self) -> bool {
        self.slot
            .as_ref()
            .is_none_or(|slot| slot.lock().expect("body lock").is_some())
    }
}

struct Attempt {
    slot: Arc<Mutex<Option<Body>>>,
    taken: Option<Body>,
}

impl http_body::Body for Attempt {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        if this.taken.is_none() {
            this.taken = this.slot.lock().expect("body lock").take();
        }
        match &mut this.taken {
            Some(body) => Pin::new(body).poll_frame(context),
            None => Poll::Ready(None),
        }
    }
}
