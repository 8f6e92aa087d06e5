//! Configuration of svc-workflow: flags and environment variables (`svc-workflow --help`).

use std::path::PathBuf;

use platform::config::{ServiceConfig, resolve_secret};
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
}
