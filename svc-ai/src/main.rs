use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_ai::Config::parse();
    let _telemetry = platform::telemetry::init(svc_ai::SERVICE_NAME, &config.telemetry)?;
    svc_ai::run(config, platform::shutdown::signal()).await
}
