//! Redis: one multiplexed connection per service that reconnects by itself, and the key prefix
//! every key is written under. Redis holds only what can be rebuilt (caches, counters, locks),
//! so callers treat its errors as cache misses rather than failing the request.

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use crate::config::RedisConfig;

/// A shared Redis connection with the deployment's key prefix. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    connection: ConnectionManager,
    key_prefix: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Redis")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Creates the connection. It is established lazily and re-established after failures, so
    /// a service starts, and keeps serving from Postgres, while Redis is down.
    pub fn connect(config: &RedisConfig) -> anyhow::Result<Redis> {
        const INVALID: &str =
            "REDIS_URL is not a valid Redis URL (or REDIS_CA_FILE not PEM certificates)";
        // Commands are small writes answered at once: without TCP_NODELAY, one written in two
        // segments waits for the server's delayed ACK (40 ms on Linux).
        let info = redis::IntoConnectionInfo::into_connection_info(config.url()?.expose_secret())
            .context(INVALID)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = match &config.redis_ca_file {
            None => redis::Client::open(info),
            Some(path) => {
                let root_cert = std::fs::read(path)
                    .with_context(|| format!("reading REDIS_CA_FILE {}", path.display()))?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                redis::Client::build_with_tls(info, certificates)
            }
        }
        .context(INVALID)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = client
            .get_connection_manager_lazy(manager_config)
            .context("creating the Redis connection")?;
        Ok(Redis {
            client,
            connection,
            key_prefix: config.redis_key_prefix.clone(),
        })
    }

    /// The connection, for commands. Clones share one multiplexed connection.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// The client, for connections of their own (pub/sub).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// `suffix` under the deployment's key prefix.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.key_prefix)
    }

    /// Whether Redis answers a PING.
    pub async fn ping(&self) -> bool {
        let mut connection = self.connection();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok()
    }
}
