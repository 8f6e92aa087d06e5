//! Configuration of svc-auth: flags and environment variables (`svc-auth --help`).

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use platform::config::{InfraConfig, ServeConfig, parse_duration, resolve_secret};
use platform::suite::Auth;
use platform::telemetry::TelemetryConfig;
use secrecy::SecretString;

/// svc-auth: users, memberships, sessions, tokens, two-factor authentication, invitations,
/// API keys and the keys that sign tokens.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "svc-auth", version, subcommand_negates_reqs = true)]
pub struct Config {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeConfig<Auth>,
    /// gRPC URL of svc-tenant (sign-up creates tenants there).
    #[arg(long, env = "AUTH_TENANT_URL", default_value_t = platform::suite::TENANT.local_url())]
    pub tenant_url: String,
    /// A JSON Web Key Set file whose keys svc-auth trusts besides its own (development keys,
    /// tests, break-glass access). Leave unset in production unless you mean it.
    #[arg(long, env = "AUTH_JWKS_FILE")]
    pub extra_jwks_file: Option<PathBuf>,
    /// Password reset requests waiting to be worked on (off the request path, so the answer
    /// takes as long for a member as for anyone); beyond it, requests are answered alike but
    /// dropped, and counted as `dropped` in auth_password_reset_requests_total.
    #[arg(long, env = "AUTH_PASSWORD_RESET_QUEUE", default_value = "1024")]
    pub password_reset_queue: NonZeroUsize,
    #[command(flatten)]
    pub tokens: TokenConfig,
    #[command(flatten)]
    pub security: SecurityConfig,
    #[command(flatten)]
    pub secrets: SecretsConfig,
    #[command(flatten)]
    pub infra: InfraConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

/// One-off administrative commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Checks the health of the svc-auth this host runs on AUTH_GRPC_ADDR and exits with 0
    /// when it serves, 1 otherwise: the container health check.
    Health,
    /// Creates a platform administrator (or makes an existing account one) and exits. The
    /// password is read from FORMFLOW_ADMIN_PASSWORD, or from the first line of standard input.
    CreatePlatformAdmin {
        /// Login email of the administrator.
        #[arg(long)]
        email: String,
        /// Name shown for the administrator.
        #[arg(long, default_value = "Platform administrator")]
        display_name: String,
    },
}

/// What tokens svc-auth issues.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenConfig {
    /// `iss` claim of the tokens issued.
    #[arg(long, env = "AUTH_ISSUER", default_value = "formflow")]
    pub issuer: String,
    /// `aud` claim of the tokens issued.
    #[arg(long, env = "AUTH_AUDIENCE", default_value = "formflow")]
    pub audience: String,
    /// Lifetime of access tokens.
    #[arg(long, env = "AUTH_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_duration)]
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (and the longest a session lives without a refresh).
    #[arg(long, env = "AUTH_REFRESH_TOKEN_TTL", default_value = "168h", value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,
    /// Lifetime of service tokens.
    #[arg(long, env = "AUTH_SERVICE_TOKEN_TTL", default_value = "5m", value_parser = parse_duration)]
    pub service_token_ttl: Duration,
}

/// Password hashing and brute-force protection.
#[derive(Debug, Clone, clap::Args)]
pub struct SecurityConfig {
    /// Argon2id memory cost in KiB (OWASP: 19456 with 2 iterations).
    #[arg(long, env = "AUTH_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    #[arg(long, env = "AUTH_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// Argon2id parallelism.
    #[arg(long, env = "AUTH_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,
    /// Shortest password accepted.
    #[arg(long, env = "AUTH_PASSWORD_MIN_LENGTH", default_value_t = 12, value_parser = clap::value_parser!(u32).range(8..=64))]
    pub password_min_length: u32,
    /// Consecutive failed logins that lock an account.
    #[arg(long, env = "AUTH_LOCKOUT_THRESHOLD", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub lockout_threshold: u32,
    /// How long the first lock lasts; each later lock doubles it, up to AUTH_LOCKOUT_MAX.
    #[arg(long, env = "AUTH_LOCKOUT_BASE", default_value = "1m", value_parser = parse_duration)]
    pub lockout_base: Duration,
    /// Longest lock.
    #[arg(long, env = "AUTH_LOCKOUT_MAX", default_value = "1h", value_parser = parse_duration)]
    pub lockout_max: Duration,
    /// Failed logins from one IP address within AUTH_IP_FAILURE_WINDOW before that address is
    /// refused for the rest of the window.
    #[arg(long, env = "AUTH_IP_FAILURE_LIMIT", default_value_t = 30)]
    pub ip_failure_limit: u32,
    /// Window of AUTH_IP_FAILURE_LIMIT.
    #[arg(long, env = "AUTH_IP_FAILURE_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub ip_failure_window: Duration,
}

/// Secrets: the keys sealing private data at rest, and the service clients.
#[derive(Debug, Clone, clap::Args)]
pub struct SecretsConfig {
    /// Keys sealing signing keys and TOTP secrets at rest (AES-256-GCM): comma-separated
    /// `id:base64` pairs of 32-byte keys, the first one sealing new data. Keep retired keys in
    /// the list until nothing sealed with them remains.
    #[arg(long, env = "AUTH_ENCRYPTION_KEYS", hide_env_values = true)]
    pub encryption_keys: Option<SecretString>,
    /// File holding AUTH_ENCRYPTION_KEYS.
    #[arg(long, env = "AUTH_ENCRYPTION_KEYS_FILE")]
    pub encryption_keys_file: Option<PathBuf>,
    /// Suite services allowed to obtain service tokens: comma-separated `client_id:secret`
    /// pairs (e.g. `gateway:…,svc-workflow:…`).
    #[arg(long, env = "AUTH_SERVICE_CLIENTS", hide_env_values = true)]
    pub service_clients: Option<SecretString>,
    /// File holding AUTH_SERVICE_CLIENTS.
    #[arg(long, env = "AUTH_SERVICE_CLIENTS_FILE")]
    pub service_clients_file: Option<PathBuf>,
}

impl SecretsConfig {
    /// AUTH_ENCRYPTION_KEYS from the variable or its file.
    pub fn encryption_keys(&self) -> anyhow::Result<SecretString> {
        resolve_secret(
            self.encryption_keys.as_ref(),
            self.encryption_keys_file.as_ref(),
            "AUTH_ENCRYPTION_KEYS",
            None,
        )
    }

    /// AUTH_SERVICE_CLIENTS from the variable or its file; none configured is allowed.
    pub fn service_clients(&self) -> anyhow::Result<SecretString> {
        resolve_secret(
            self.service_clients.as_ref(),
            self.service_clients_file.as_ref(),
            "AUTH_SERVICE_CLIENTS",
            Some(""),
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
}
