use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_tenant::Config::parse();
    let _telemetry = platform::telemetry::init(svc_tenant::app::SERVICE_NAME, &config.telemetry)?;
    svc_tenant::run(config, platform::shutdown::signal()).await
}
