//! REST/JSON to gRPC, driven by the `google.api.http` annotations of the descriptor sets the
//! gateway loads: the suite's own, embedded, and any others named in its configuration.
//!
//! - [`template`]: path templates and matching.
//! - [`routes`]: the route table built from the descriptors.
//! - [`message`]: request messages from path, query and body; responses to JSON.
//! - [`codec`]: calling any RPC with dynamic messages.

pub mod codec;
pub mod message;
pub mod routes;
pub mod template;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use futures_util::Stream;
use http::uri::PathAndQuery;
use platform::client::{BalanceOptions, Balanced};
use prost_reflect::{DescriptorPool, DynamicMessage};

use self::codec::DynamicCodec;
use self::routes::{Route, RouteTable};

/// The routes and the channels to the upstreams serving them.
#[derive(Debug)]
pub struct Transcoder {
    table: RouteTable,
    channels: HashMap<String, Balanced>,
    urls: HashMap<String, String>,
    packages: HashMap<String, String>,
    pools: Vec<DescriptorPool>,
}

/// An upstream: its name and gRPC URL.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Name, for logs and metrics.
    pub name: String,
    /// gRPC URL.
    pub url: String,
    /// Protobuf packages it serves (exact names).
    pub packages: Vec<String>,
}

impl Transcoder {
    /// Routes every annotated RPC of `descriptor_sets` whose package an upstream serves.
    pub fn new(
        descriptor_sets: &[Vec<u8>],
        upstreams: &[Upstream],
        connect_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut table = RouteTable::default();
        let mut pools = Vec::new();
        for (index, bytes) in descriptor_sets.iter().enumerate() {
            let pool = DescriptorPool::decode(bytes.as_slice())
                .with_context(|| format!("descriptor set {index} does not decode"))?;
            table.add_pool(&pool, |package| {
                upstreams
                    .iter()
                    .find(|upstream| upstream.packages.iter().any(|served| served == package))
                    .map(|upstream| upstream.name.clone())
            })?;
            pools.push(pool);
        }
        let mut channels = HashMap::new();
        let mut urls = HashMap::new();
        let mut packages = HashMap::new();
        for upstream in upstreams {
            urls.insert(upstream.name.clone(), upstream.url.clone());
            for package in &upstream.packages {
                packages.insert(package.clone(), upstream.name.clone());
            }
            let setting = format!("the URL of upstream {}", upstream.name);
            let channel = Balanced::new(
                &upstream.url,
                &setting,
                BalanceOptions::new(connect_timeout),
            )?;
            channels.insert(upstream.name.clone(), channel);
        }
        Ok(Self {
            table,
            channels,
            urls,
            packages,
            pools,
        })
    }

    /// The route table.
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// Every upstream and its channel (readiness checks).
    pub fn channels(&self) -> impl Iterator<Item = (&str, &Balanced)> {
        self.channels
            .iter()
            .map(|(name, channel)| (name.as_str(), channel))
    }

    /// The RPC a gRPC path names (`/package.Service/Method`), and the name and URL of its
    /// upstream, if an upstream serves its package.
    pub fn rpc_for_path(
        &self,
        path: &str,
    ) -> Option<(prost_reflect::MethodDescriptor, &str, &str)> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        self.pools.iter().find_map(|pool| {
            let service = pool.get_service_by_name(service)?;
            let upstream = self.packages.get(service.package_name())?;
            let rpc = service
                .methods()
                .find(|candidate| candidate.name() == method)?;
            Some((rpc, upstream.as_str(), self.urls.get(upstream)?.as_str()))
        })
    }

    /// A ready client for the route's upstream, the gRPC path and the codec of its RPC.
    async fn prepare(
        &self,
        route: &Route,
    ) -> Result<(tonic::client::Grpc<Balanced>, PathAndQuery, DynamicCodec), tonic::Status> {
        let channel = self
            .channels
            .get(route.upstream.as_ref())
            .ok_or_else(|| tonic::Status::unavailable("no upstream serves this API"))?;
        let mut client = tonic::client::Grpc::new(channel.clone());
        client.ready().await.map_err(|error| {
            tonic::Status::unavailable(format!("upstream unavailable: {error}"))
        })?;
        Ok((
            client,
            route.grpc_path.clone(),
            DynamicCodec::new(route.rpc.output()),
        ))
    }

    /// Calls a unary RPC.
    pub async fn unary(
        &self,
        route: &Route,
        request: tonic::Request<DynamicMessage>,
    ) -> Result<DynamicMessage, tonic::Status> {
        let (mut client, path, codec) = self.prepare(route).await?;
        client
            .unary(request, path, codec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(transport_unavailable)
    }

    /// Calls a server-streaming RPC.
    pub async fn server_streaming(
        &self,
        route: &Route,
        request: tonic::Request<DynamicMessage>,
    ) -> Result<impl Stream<Item = Result<DynamicMessage, tonic::Status>> + use<>, tonic::Status>
    {
        let (mut client, path, codec) = self.prepare(route).await?;
        client
            .server_streaming(request, path, codec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(transport_unavailable)
    }
}

/// A status that comes from the connection failing (it has an error source; statuses a service
/// answered have none) means the service is unavailable, whatever code the transport chose:
/// the gateway's own UNAVAILABLE, told apart from one the service answered by its reason
/// `UPSTREAM_UNAVAILABLE`. A status the service answered passes as it is.
fn transport_unavailable(status: tonic::Status) -> tonic::Status {
    if std::error::Error::source(&status).is_some() {
        tracing::warn!(error = %status, "upstream connection failed");
        platform::error::status_with_reason(
            tonic::Code::Unavailable,
            "UPSTREAM_UNAVAILABLE",
            "the service is unavailable; try again",
        )
    } else {
        status
    }
}
