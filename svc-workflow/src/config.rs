//! Configuration of svc-workflow: flags and environment variables (`svc-workflow --help`).

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use platform::config::{ServiceClientConfig, ServiceConfig, parse_duration, resolve_secret};
use platform::suite::Workflow;
use secrecy::SecretString;

/// svc-workflow's configuration: the kit's blocks and its own options.
pub type Config = ServiceConfig<Workflow, WorkflowOptions>;

/// What svc-workflow needs besides the kit's blocks.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkflowOptions {
    /// Keys sealing credentials at rest (AES-256-GCM): comma-separated `id:base64` pairs of
    /// 32-byte keys, the first one sealing new values. Keep retired keys in the list until
    /// every credential was updated under the new one.
    #[arg(long, env = "WORKFLOW_ENCRYPTION_KEYS", hide_env_values = true)]
    pub encryption_keys: Option<SecretString>,
    /// File holding WORKFLOW_ENCRYPTION_KEYS.
    #[arg(long, env = "WORKFLOW_ENCRYPTION_KEYS_FILE")]
    pub encryption_keys_file: Option<PathBuf>,
    /// Executions each replica works on at once (also the prefetch of its work queue); 0
    /// runs none: a replica that only serves the API.
    #[arg(long, env = "WORKFLOW_WORKER_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub worker_concurrency: u16,
    /// How long a worker holds an execution without renewing its lease; an execution whose
    /// worker died is taken over once this passes.
    #[arg(long, env = "WORKFLOW_LEASE", default_value = "30s", value_parser = positive_duration)]
    pub lease: Duration,
    /// How long an execution may stay due with no worker on it before its job is sent again
    /// (a job lost between a commit and its publish).
    #[arg(long, env = "WORKFLOW_OVERDUE_AFTER", default_value = "60s", value_parser = positive_duration)]
    pub overdue_after: Duration,
    /// Days an ended execution is kept (with its node runs and dead letters) when its tenant's
    /// `workflow_execution_retention_days` setting does not say.
    #[arg(long, env = "WORKFLOW_EXECUTION_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(i32).range(1..=3650))]
    pub execution_retention_days: i32,
    /// How often expired executions are deleted (in batches of 1,000).
    #[arg(long, env = "WORKFLOW_RETENTION_INTERVAL", default_value = "1h", value_parser = positive_duration)]
    pub retention_interval: Duration,
    /// Internal networks (comma-separated CIDRs, e.g. `10.20.0.0/16`) that `action.http` may
    /// reach; loopback, private, link-local and metadata addresses are refused otherwise.
    #[arg(long, env = "WORKFLOW_HTTP_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub http_allowed_networks: Vec<IpNet>,
    /// svc-ai's gRPC URL (`http://svc-ai:50055`), which `action.ai_classify` calls with
    /// svc-workflow's service token for the execution's tenant (it needs AUTH_CLIENT_ID and
    /// AUTH_URL). Unset, those nodes fail with SERVICE_NOT_CONFIGURED.
    #[arg(long, env = "WORKFLOW_AI_URL")]
    pub ai_url: Option<String>,
    /// svc-notify's gRPC URL (`http://svc-notify:50056`), which `action.notify` and
    /// `action.email` call as `action.ai_classify` calls svc-ai. Unset, those nodes fail with
    /// SERVICE_NOT_CONFIGURED.
    #[arg(long, env = "WORKFLOW_NOTIFY_URL")]
    pub notify_url: Option<String>,
    /// svc-workflow's client at svc-auth: the service tokens it calls svc-ai and svc-notify
    /// with.
    #[command(flatten)]
    pub service_client: ServiceClientConfig,
}

/// A duration of at least a second, as `30s` or `5m`.
fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < Duration::from_secs(1) {
        return Err("must be at least 1s".to_owned());
    }
    Ok(duration)
}

impl WorkflowOptions {
    /// WORKFLOW_ENCRYPTION_KEYS from the variable or its file.
    pub fn encryption_keys(&self) -> anyhow::Result<SecretString> {
        resolve_secret(
            self.encryption_keys.as_ref(),
            self.encryption_keys_file.as_ref(),
            "WORKFLOW_ENCRYPTION_KEYS",
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Config::command().debug_assert();
    }

    #[test]
    fn leases_and_sweeps_take_at_least_a_second() {
        assert_eq!(positive_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(positive_duration("0s").is_err());
        assert!(positive_duration("500ms").is_err());
    }
}
