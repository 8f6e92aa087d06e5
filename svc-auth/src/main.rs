use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_auth::Config::parse();
    let _telemetry = platform::telemetry::init(svc_auth::app::SERVICE_NAME, &config.telemetry)?;
    svc_auth::run(config, platform::shutdown::signal()).await
}
