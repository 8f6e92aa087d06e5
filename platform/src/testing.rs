//! Helpers for integration tests against the real Postgres, Redis and RabbitMQ (feature
//! `test-util`). Each [`TestInfra`] gets its own database, Redis key prefix and RabbitMQ
//! exchange/queue prefix, so tests run in parallel and can be repeated. Unreachable servers
//! fail the test with a message saying how to start them: a skipped integration test is a test
//! that did not run.
//!
//! [`TestServer`] runs any suite service in process on a loopback port, the way production
//! runs it; the status helpers read what a failed call said. [`SmtpServer`] is a real local SMTP
//! server (aiosmtpd) whose mail a test reads back.
//!
//! Reads `DATABASE_URL` (any database on the server; default
//! `postgres://postgres@127.0.0.1:5432/postgres`), `REDIS_URL` and `AMQP_URL` (local defaults).
//! Test databases are named `ff_test_<seconds since 1970>_<uuid>`; `scripts/test.sh` drops them
//! after a run, and each new test drops those older than a day (left by other ways of running).
//! Each test connects to Redis as a user of its own, named like its database, so what it does to
//! its connections touches no other test; users older than a day are dropped the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::amqp::{Consumer, Outcome, OutgoingMessage, Publisher};
use crate::auth::{Claims, JwtSigner};
use crate::config::{AmqpConfig, AuthConfig, DbConfig, InfraConfig, RedisConfig};
use crate::context::{Role, TenantId, UserId};
use crate::events::{Envelope, Event};
use crate::runtime::Runtime;
use crate::server::Listeners;

mod smtp;

pub use smtp::{ReceivedMail, SmtpServer};

const SETUP_HINT: &str = "start the local servers with `scripts/setup.sh --infra-only`";

/// Connection settings for one test's private slice of the real servers.
#[derive(Debug, Clone)]
pub struct TestInfra {
    /// A fresh, empty database.
    pub db: DbConfig,
    /// Redis with a private key prefix.
    pub redis: RedisConfig,
    /// RabbitMQ with a private exchange/queue prefix and quick retries.
    pub amqp: AmqpConfig,
    /// Name of the database, and of the Redis user the test connects as (an ACL user of its
    /// own, so its connections can be told from those of tests running alongside).
    pub database_name: String,
}

impl TestInfra {
    /// Creates the database and checks that Redis and RabbitMQ answer.
    pub async fn new() -> TestInfra {
        init_test_logs();
        let unique = Uuid::new_v4().simple().to_string();
        let server_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        let database_name = format!("ff_test_{created}_{unique}");
        let mut admin = sqlx::PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|error| {
                panic!("Postgres is unreachable at DATABASE_URL ({error}); {SETUP_HINT}")
            });
        drop_stale_databases(&mut admin, created).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {database_name}"
        )))
        .execute(&mut admin)
        .await
        .expect("creating the test database");
        admin.close().await.ok();

        let redis = RedisConfig::for_url(
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
            format!("test:{unique}:"),
        );
        let redis_client = ::redis::Client::open(redis.url().unwrap().expose_secret())
            .expect("REDIS_URL is a valid URL");
        let mut redis_connection = tokio::time::timeout(
            Duration::from_secs(5),
            redis_client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| "timed out".to_owned())
        .and_then(|result| result.map_err(|error| error.to_string()))
        .unwrap_or_else(|error| {
            panic!("Redis is unreachable at REDIS_URL ({error}); {SETUP_HINT}")
        });
        ::redis::cmd("PING")
            .query_async::<String>(&mut redis_connection)
            .await
            .unwrap_or_else(|error| panic!("Redis does not answer PING ({error}); {SETUP_HINT}"));
        let redis = own_redis_user(&mut redis_connection, redis, &database_name, created).await;

        let mut amqp = AmqpConfig::for_url(
            std::env::var("AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
            format!("test.{unique}"),
        );
        amqp.amqp_retry_base = Duration::from_millis(200);
        let connection = crate::amqp::connect(&amqp, "test-probe")
            .await
            .unwrap_or_else(|error| {
                panic!("RabbitMQ is unreachable at AMQP_URL ({error:#}); {SETUP_HINT}")
            });
        connection.close(200, "probe done".into()).await.ok();

        TestInfra {
            db: DbConfig::for_url(with_database(&server_url, &database_name)),
            redis,
            amqp,
            database_name,
        }
    }

    /// Cuts this test's pub/sub connections to Redis (those of the services it started with
    /// [`TestInfra::config`]), as a Redis restart or a network failure would, and answers how
    /// many were cut. Other tests' connections are left alone.
    pub async fn cut_redis_pubsub_connections(&self) -> i64 {
        let client = ::redis::Client::open(self.redis.url().unwrap().expose_secret())
            .expect("REDIS_URL is a valid URL");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connecting to Redis");
        ::redis::cmd("CLIENT")
            .arg(&[
                "KILL",
                "USER",
                self.database_name.as_str(),
                "TYPE",
                "pubsub",
            ])
            .query_async(&mut connection)
            .await
            .expect("cutting the pub/sub connections")
    }

    /// The settings a service connects to this infrastructure with.
    pub fn config(&self) -> InfraConfig {
        InfraConfig {
            db: self.db.clone(),
            redis: self.redis.clone(),
            amqp: self.amqp.clone(),
        }
    }

    /// A connection to the test database that sees every tenant's rows (`app.platform` on,
    /// past row-level security), to inspect what services wrote.
    pub async fn admin_connection(&self) -> sqlx::PgConnection {
        let mut connection = sqlx::PgConnection::connect(self.db.url().unwrap().expose_secret())
            .await
            .expect("connecting to the test database");
        sqlx::query("SELECT set_config('app.platform', 'on', false)")
            .execute(&mut connection)
            .await
            .expect("seeing every tenant's rows");
        connection
    }
}

/// Creates the Redis user `user` (every command, key and channel, as the user of `REDIS_URL`
/// may) and answers `redis` connecting as it. Drops the test users created more than a day
/// before `now`, as [`drop_stale_databases`] does with databases.
async fn own_redis_user(
    connection: &mut ::redis::aio::MultiplexedConnection,
    redis: RedisConfig,
    user: &str,
    now: u64,
) -> RedisConfig {
    let users: Vec<String> = ::redis::cmd("ACL")
        .arg("USERS")
        .query_async(&mut *connection)
        .await
        .unwrap_or_default();
    for stale in users.iter().filter(|name| created_a_day_before(name, now)) {
        let _: Result<i64, _> = ::redis::cmd("ACL")
            .arg(&["DELUSER", stale.as_str()])
            .query_async(&mut *connection)
            .await;
    }
    let password = Uuid::new_v4().simple().to_string();
    let with_password = format!(">{password}");
    ::redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            user,
            "on",
            with_password.as_str(),
            "~*",
            "&*",
            "+@all",
        ])
        .query_async::<()>(&mut *connection)
        .await
        .unwrap_or_else(|error| {
            panic!("the Redis user of REDIS_URL cannot create a test user ({error})")
        });
    let mut url =
        url::Url::parse(redis.url().unwrap().expose_secret()).expect("REDIS_URL is a valid URL");
    url.set_username(user).expect("a Redis URL has a user");
    url.set_password(Some(&password))
        .expect("a Redis URL has a password");
    RedisConfig::for_url(String::from(url), redis.redis_key_prefix)
}

/// Drops the test databases created more than a day before `now` (seconds since 1970): those
/// of runs that did not go through `scripts/test.sh`, which drops them all when it ends. No test
/// runs for a day, so none of them is in use; another test dropping the same one meanwhile is
/// fine.
async fn drop_stale_databases(admin: &mut sqlx::PgConnection, now: u64) {
    let names: Vec<String> = sqlx::query_scalar(
        r"SELECT datname FROM pg_database WHERE datname ~ '^ff_test_[0-9]+_[0-9a-f]{32}$'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    for name in names {
        if created_a_day_before(&name, now) {
            // The name matched the pattern above: digits, hex and underscores only.
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await;
        }
    }
}

/// Whether `name` (`ff_test_<seconds since 1970>_<uuid>`, a test's database or Redis user) was
/// created more than a day before `now`.
fn created_a_day_before(name: &str, now: u64) -> bool {
    name.strip_prefix("ff_test_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|seconds| seconds.parse::<u64>().ok())
        .is_some_and(|created| created + 24 * 3600 < now)
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = without_query.find("://").map_or(0, |index| index + 3);
    let base = match without_query[authority_start..].find('/') {
        Some(slash) => &without_query[..authority_start + slash],
        None => without_query,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// A signing key that tests use to mint tokens, and the JWKS file services verify them with.
#[derive(Debug)]
pub struct TestKeys {
    signer: JwtSigner,
    jwks_file: PathBuf,
}

impl TestKeys {
    /// A fresh key, with its public JWKS written to a temporary file.
    pub fn new() -> TestKeys {
        let signer = JwtSigner::generate().expect("generating a signing key");
        let jwks_file = std::env::temp_dir().join(format!("ff-test-jwks-{}.json", Uuid::new_v4()));
        std::fs::write(
            &jwks_file,
            serde_json::to_vec(&signer.jwks()).expect("serialising the JWKS"),
        )
        .expect("writing the test JWKS");
        TestKeys { signer, jwks_file }
    }

    /// Auth settings trusting this key.
    pub fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            auth_url: None,
            auth_jwks_file: Some(self.jwks_file.clone()),
            auth_issuer: "formflow".to_owned(),
            auth_audience: "formflow".to_owned(),
        }
    }

    /// Signs arbitrary claims: [`Claims`], or JSON with members `Claims` lacks (`nbf`).
    pub fn sign(&self, claims: &impl serde::Serialize) -> String {
        self.signer.sign(claims).expect("signing test claims")
    }

    /// Claims valid for 15 minutes, for `subject`.
    pub fn claims(&self, subject: &str) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "formflow".to_owned(),
            aud: "formflow".to_owned(),
            sub: subject.to_owned(),
            tid: None,
            role: None,
            sid: Some(Uuid::new_v4().to_string()),
            prole: None,
            typ: None,
            scope: None,
            jti: Uuid::new_v4().to_string(),
            iat: now,
            exp: now + 900,
        }
    }

    /// A token of a user with `role` in `tenant`.
    pub fn user_token(&self, tenant: TenantId, role: Role) -> String {
        let mut claims = self.claims(&UserId::generate().to_string());
        claims.tid = Some(tenant.to_string());
        claims.role = Some(role.as_str().to_owned());
        self.sign(&claims)
    }

    /// A token of a platform administrator.
    pub fn platform_admin_token(&self) -> String {
        let mut claims = self.claims(&UserId::generate().to_string());
        claims.prole = Some("admin".to_owned());
        self.sign(&claims)
    }

    /// A token of suite service `name`, acting for `tenant` or for the platform.
    pub fn service_token(&self, name: &str, tenant: Option<TenantId>) -> String {
        let mut claims = self.claims(name);
        claims.typ = Some("service".to_owned());
        claims.sid = None;
        claims.tid = tenant.map(|tenant| tenant.to_string());
        self.sign(&claims)
    }
}

impl Default for TestKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestKeys {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.jwks_file);
    }
}

/// What the gateway adds to every call it forwards, for a test's client to send straight to a
/// service: a bearer token, the routed tenant (`x-tenant-id`), the client's address
/// (`x-client-ip`) and the gateway's own token (`x-gateway-token`) that makes the service
/// believe the address; each optional.
#[derive(Debug, Clone, Default)]
pub struct CallMetadata {
    authorization: Option<MetadataValue<Ascii>>,
    tenant: Option<MetadataValue<Ascii>>,
    client_ip: Option<MetadataValue<Ascii>>,
    gateway_token: Option<MetadataValue<Ascii>>,
}

impl CallMetadata {
    /// Sends `token` as a bearer token (none: anonymous) and `tenant` as the routed tenant.
    pub fn new(token: Option<&str>, tenant: Option<TenantId>) -> CallMetadata {
        CallMetadata {
            authorization: token
                .map(|token| format!("Bearer {token}").parse().expect("a token is ASCII")),
            tenant: tenant.map(|tenant| tenant.to_string().parse().expect("a tenant id is ASCII")),
            client_ip: None,
            gateway_token: None,
        }
    }

    /// Also sends `ip` as the client's address, which services ignore unless the call comes
    /// [`CallMetadata::via_gateway`].
    pub fn from_client_ip(mut self, ip: &str) -> CallMetadata {
        self.client_ip = Some(ip.parse().expect("an address is ASCII"));
        self
    }

    /// Also sends `gateway_token` (a service token, e.g. [`TestKeys::service_token`]) as the
    /// gateway's, as the gateway does.
    pub fn via_gateway(mut self, gateway_token: &str) -> CallMetadata {
        self.gateway_token = Some(gateway_token.parse().expect("a token is ASCII"));
        self
    }
}

impl tonic::service::Interceptor for CallMetadata {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let metadata = request.metadata_mut();
        if let Some(value) = &self.authorization {
            metadata.insert("authorization", value.clone());
        }
        if let Some(value) = &self.tenant {
            metadata.insert(crate::context::TENANT_ID_HEADER, value.clone());
        }
        if let Some(value) = &self.client_ip {
            metadata.insert(crate::context::CLIENT_IP_HEADER, value.clone());
        }
        if let Some(value) = &self.gateway_token {
            metadata.insert(crate::context::GATEWAY_TOKEN_HEADER, value.clone());
        }
        Ok(request)
    }
}

/// A service running in this process on a loopback port, as production runs it (the same
/// [`Runtime`]), with a channel to it. It stops when dropped, or gracefully with
/// [`TestServer::stop`].
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Builds a service with `build` on a free loopback port and runs it: the one way tests
    /// start a suite service, e.g. `TestServer::start(|listeners| svc_tenant::build(config,
    /// listeners))`.
    pub async fn start<F, Fut>(build: F) -> TestServer
    where
        F: FnOnce(Listeners) -> Fut,
        Fut: Future<Output = anyhow::Result<Runtime>>,
    {
        let listeners = Listeners::loopback()
            .await
            .expect("binding a loopback port");
        let runtime = build(listeners).await.expect("the service starts");
        Self::run(runtime).await
    }

    /// Runs a service built already (on listeners the test bound itself).
    pub async fn run(runtime: Runtime) -> TestServer {
        init_test_logs();
        let addr = runtime.grpc_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(runtime.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("a valid URL")
            .connect()
            .await
            .expect("connecting to the service under test");
        TestServer {
            addr,
            channel,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A channel to it (clones share one connection).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Asks it to stop and waits until it has drained; fails the test unless it stopped
    /// cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("the service task did not panic")
                .expect("the service stopped cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A message as a test received it: routing key, AMQP message id and type, and the JSON body.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// The routing key it was published with.
    pub routing_key: String,
    /// Its message id (an event's id).
    pub message_id: String,
    /// Its type (an event's type).
    pub kind: String,
    /// Its body.
    pub body: serde_json::Value,
}

/// A queue of the test's own, bound to the events exchange, declared at once so that nothing
/// published afterwards is missed.
#[derive(Debug)]
pub struct EventObserver {
    consumer: Consumer,
}

impl EventObserver {
    /// Observes the events matching `bindings` (`forms.#`).
    pub async fn start(amqp: &AmqpConfig, bindings: &[&str]) -> EventObserver {
        let queue = format!("test-observer-{}", Uuid::new_v4().simple());
        let consumer = Consumer::start(amqp, "test-observer", &queue, bindings, 500)
            .await
            .expect("starting the event observer");
        EventObserver { consumer }
    }

    /// The next `count` messages, acknowledged; fails the test after `timeout`.
    pub async fn receive(&mut self, count: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let mut received = Vec::new();
        tokio::time::timeout(timeout, async {
            while received.len() < count {
                self.consumer
                    .process_next(|delivery| {
                        let text = |value: Option<&lapin::types::ShortString>| {
                            value.map(ToString::to_string).unwrap_or_default()
                        };
                        received.push(ReceivedMessage {
                            routing_key: delivery.routing_key.to_string(),
                            message_id: text(delivery.properties.message_id().as_ref()),
                            kind: text(delivery.properties.kind().as_ref()),
                            body: serde_json::from_slice(&delivery.data).expect("a JSON body"),
                        });
                        async { Outcome::Done }
                    })
                    .await
                    .expect("receiving an event");
            }
        })
        .await
        .unwrap_or_else(|_| panic!("only {} of {count} events arrived", received.len()));
        received
    }

    /// Whether no other message arrives within `window`.
    pub async fn nothing_more_arrives(&mut self, window: Duration) -> bool {
        tokio::time::timeout(
            window,
            self.consumer.process_next(|_| async { Outcome::Done }),
        )
        .await
        .is_err()
    }
}

impl TestInfra {
    /// Where this test's RabbitMQ listens, to put a [`TcpProxy`] in front of it.
    pub async fn broker_addr(&self) -> SocketAddr {
        let url = self.amqp.url().expect("an AMQP URL");
        let authority = url
            .expose_secret()
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(|authority| authority.rsplit('@').next().unwrap_or(authority).to_owned())
            .expect("AMQP_URL has a host");
        let authority = if authority.contains(':') {
            authority
        } else {
            format!("{authority}:5672")
        };
        tokio::net::lookup_host(authority)
            .await
            .expect("resolving the broker")
            .next()
            .expect("the broker's address")
    }

    /// This test's AMQP URL, through `proxy` instead of straight to the broker.
    pub fn amqp_url_through(&self, proxy: SocketAddr) -> String {
        let url = self.amqp.url().expect("an AMQP URL");
        let (scheme, rest) = url
            .expose_secret()
            .split_once("://")
            .map(|(scheme, rest)| (scheme.to_owned(), rest.to_owned()))
            .expect("AMQP_URL has a scheme");
        let (authority, path) = rest.split_once('/').unwrap_or((&rest, ""));
        match authority.rsplit_once('@') {
            Some((credentials, _)) => format!("{scheme}://{credentials}@{proxy}/{path}"),
            None => format!("{scheme}://{proxy}/{path}"),
        }
    }
}

/// Shows the services' logs when `TEST_LOG` is set (`RUST_LOG` filters them).
pub fn init_test_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Fails unless `result` is an error with `code`; returns its status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// Checks that the `pattern` a handle field publishes (`formflow.api.v1.limits`) matches a
/// sample exactly when `accepts` (the service's own parser) takes it, over handle-like samples
/// on both sides of the rules (hyphens, case, other characters, non-ASCII).
pub fn assert_pattern_agrees(pattern: &str, accepts: impl Fn(&str) -> bool) {
    let pattern = regex::Regex::new(pattern).expect("a published pattern compiles");
    for sample in [
        "acme",
        "a1b",
        "acme-corp",
        "x9-y8-z7",
        "a--b",
        "-ab",
        "ab-",
        "Abc",
        "a_b",
        "ab c",
        "ab.c",
        "über",
    ] {
        assert_eq!(pattern.is_match(sample), accepts(sample), "{sample}");
    }
}

/// The fields an INVALID_ARGUMENT status names in its `BadRequest` details, in order.
#[track_caller]
pub fn violated_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("a BadRequest detail")
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

/// The `ErrorInfo` reason of a status; empty when it has none.
pub fn error_reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The `ErrorInfo` metadata of a status; empty when it has none.
pub fn error_metadata(status: &Status) -> std::collections::HashMap<String, String> {
    status
        .get_details_error_info()
        .map(|info| info.metadata)
        .unwrap_or_default()
}

/// User and system CPU time this process has used, for benchmarks' CPU per operation.
pub fn process_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("/proc/self/stat names the command in parentheses")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Publishes `envelope` on the events exchange as a service's outbox would (its id as the
/// message id, its type as the kind, under its routing key), standing in for the service
/// that owns the event.
pub async fn publish_envelope<T: Event>(publisher: &Publisher, envelope: &Envelope<T>) {
    let message = OutgoingMessage {
        message_id: envelope.event_id.to_string(),
        kind: T::TYPE.to_owned(),
        body: serde_json::to_vec(envelope).expect("an event serialises"),
        ..OutgoingMessage::default()
    };
    publisher
        .publish_event(&T::routing_key(), &message)
        .await
        .expect("publishing an event");
}

/// Polls `condition` every 25 ms until it holds; panics after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A TCP proxy in front of a real server, which a test can cut and restore to make that server
/// unreachable for whoever connects through it, without disturbing other tests.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl TcpProxy {
    /// Starts forwarding `127.0.0.1:<random port>` to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("a bound listener");
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0_u64);
        let accepting_up = up.clone();
        let accepting_cuts = cuts.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting_up.load(Ordering::SeqCst) {
                    drop(client); // refused: closed at once
                    continue;
                }
                let mut cut = accepting_cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        TcpProxy { addr, up, cuts }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|generation| *generation += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }
}
