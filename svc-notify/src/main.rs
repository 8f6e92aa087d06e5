use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_notify::Config::parse();
    let _telemetry = platform::telemetry::init(svc_notify::SERVICE_NAME, &config.telemetry)?;
    svc_notify::run(config, platform::shutdown::signal()).await
}
