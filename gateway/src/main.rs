use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = gateway::Config::parse();
    let _telemetry = platform::telemetry::init("gateway", &config.telemetry)?;
    gateway::run(config, platform::shutdown::signal()).await
}
