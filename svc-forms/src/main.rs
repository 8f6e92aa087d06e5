use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_forms::Config::parse();
    let _telemetry = platform::telemetry::init(svc_forms::SERVICE_NAME, &config.telemetry)?;
    svc_forms::run(config, platform::shutdown::signal()).await
}
