//! What the benchmarks through the gateway share: a gateway in process in front of
//! [`Services`], with the per-address limit for anonymous calls lifted (every caller of a
//! benchmark comes from 127.0.0.1), a tenant signed up with its rate limits lifted, its owner's
//! token, and an HTTP/1.1 client that keeps a connection per caller alive, as browsers and
//! curl do.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use platform::testing::{TestInfra, TestKeys};
use serde_json::Value;

use crate::Services;

/// The client benchmarks send HTTP/1.1 requests with.
pub type Http = Client<HttpConnector, Full<Bytes>>;

/// The tenant `bench` behind a running gateway.
#[derive(Debug)]
pub struct BenchTenant {
    /// Where the gateway listens.
    pub gateway: SocketAddr,
    /// The tenant's id.
    pub tenant_id: String,
    /// `Bearer …` with the owner's access token.
    pub authorization: String,
    /// A client keeping up to as many connections alive as the benchmark has callers.
    pub http: Http,
}

impl Services {
    /// Starts a gateway in front of these services and signs up the tenant `bench`, for up to
    /// `callers` callers at once.
    pub async fn bench_tenant(
        &self,
        infra: &TestInfra,
        keys: &TestKeys,
        callers: usize,
    ) -> anyhow::Result<BenchTenant> {
        let mut config = self.gateway_config(infra, keys);
        config.edge.anonymous_rate = 100_000_000;
        config.edge.anonymous_burst = 10_000_000;
        let gateway = gateway::App::build(config).await?;
        let gateway_addr = gateway.http_addr();
        tokio::spawn(gateway.run_until_stopped(std::future::pending()));

        let signed_up = self
            .sign_up("bench", "bench@example.com", "violet-Kettle-drums-9-orbit")
            .await?;
        let tenant_id = signed_up.tenant.expect("a tenant").id;
        let authorization = format!("Bearer {}", signed_up.tokens.expect("tokens").access_token);
        // Its plan's limits would refuse nearly all of a run.
        self.lift_rate_limits(keys, &tenant_id).await?;

        let http = http_client(callers);
        Ok(BenchTenant {
            gateway: gateway_addr,
            tenant_id,
            authorization,
            http,
        })
    }
}

impl BenchTenant {
    /// POSTs `body` to `path` on the gateway as the owner; panics unless it answers 200.
    pub async fn owner_post(&self, path: &str, body: &Value) -> Value {
        let request = http::Request::post(format!("http://{}{path}", self.gateway))
            .header("authorization", &self.authorization)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a request");
        let response = self
            .http
            .request(request)
            .await
            .expect("the gateway answers");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).expect("a JSON answer");
        assert_eq!(status, 200, "POST {path}: {answer}");
        answer
    }
}

/// An HTTP/1.1 client keeping up to `callers` connections alive, without Nagle's delay.
pub fn http_client(callers: usize) -> Http {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(callers)
        .build::<_, Full<Bytes>>(connector)
}

/// The numbers of callers given after `--` (`cargo bench … -- 32`, to profile one run), or
/// `defaults`.
pub fn concurrencies(defaults: &[usize]) -> Vec<usize> {
    let chosen: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|argument| argument.parse().ok())
        .collect();
    if chosen.is_empty() {
        defaults.to_vec()
    } else {
        chosen
    }
}

/// The element at `fraction` of sorted `values`.
pub fn percentile<T: Copy>(values: &[T], fraction: f64) -> T {
    values[((values.len() - 1) as f64 * fraction).round() as usize]
}
