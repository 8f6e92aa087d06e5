//! `formflow`: runs the whole suite in one process for development and tests, and mints
//! development tokens.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = suite::Cli::parse();
    suite::main(cli).await
}
