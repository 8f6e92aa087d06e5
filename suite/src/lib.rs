//! The one-process FormFlow suite: every service in one process, each on its own port, as
//! production runs them in separate pods. `formflow up` starts them (optionally with a demo
//! tenant); `formflow token` mints a development token signed by the local dev key;
//! `formflow dev-secrets` writes the development secrets for services run one per process.
//!
//! - [`dev_keys`]: the development signing key kept in the state directory.
//! - [`launcher`]: starting and stopping the services.
//! - [`demo`]: the demo tenant.

pub mod demo;
pub mod dev_keys;
pub mod launcher;

use std::path::PathBuf;
use std::time::Duration;

use platform::config::parse_duration;

/// The FormFlow suite in one process.
#[derive(Debug, clap::Parser)]
#[command(name = "formflow", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Runs every service and the gateway until Ctrl-C or SIGTERM.
    Up(Box<launcher::UpArgs>),
    /// Prints a development access token signed with the local dev key.
    Token(TokenArgs),
    /// Writes the development secrets `up` keeps in the state directory (signing key and JWKS,
    /// encryption keys, service clients), keeping those that exist: for services that run as
    /// processes of their own (docker-compose.yml).
    DevSecrets(DevSecretsArgs),
}

/// Arguments of `formflow dev-secrets`.
#[derive(Debug, clap::Args)]
pub struct DevSecretsArgs {
    /// Directory the secrets are kept in.
    #[arg(long, env = "FORMFLOW_STATE_DIR", default_value = ".formflow")]
    pub state_dir: PathBuf,
}

/// Arguments of `formflow token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Directory holding the development signing key (created by `formflow up`).
    #[arg(long, env = "FORMFLOW_STATE_DIR", default_value = ".formflow")]
    pub state_dir: PathBuf,
    /// A platform administrator's token (cross-tenant operations).
    #[arg(long, conflicts_with_all = ["tenant", "service"])]
    pub platform_admin: bool,
    /// Tenant id of a user token.
    #[arg(long, requires = "role")]
    pub tenant: Option<String>,
    /// Role of the user in the tenant: owner, admin, member or viewer.
    #[arg(long)]
    pub role: Option<String>,
    /// User id (a UUID) of the user token; the demo user when omitted.
    #[arg(long)]
    pub user: Option<String>,
    /// A service token for this client id (e.g. `svc-auth`), for the platform or `--tenant`.
    #[arg(long, conflicts_with = "role")]
    pub service: Option<String>,
    /// Lifetime of the token.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub ttl: Duration,
}

/// Runs the command.
pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => launcher::up(*args).await,
        Command::Token(args) => {
            let keys = dev_keys::DevKeys::load(&args.state_dir)?;
            println!("{}", keys.token(&args)?);
            Ok(())
        }
        Command::DevSecrets(args) => {
            let kid = dev_keys::write_all(&args.state_dir, launcher::CLIENTS)?;
            println!(
                "development secrets and JWKS ready in {} (signing key {kid})",
                args.state_dir.display()
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
