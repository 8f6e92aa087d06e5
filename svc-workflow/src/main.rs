use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_workflow::Config::parse();
    let _telemetry = platform::telemetry::init(svc_workflow::SERVICE_NAME, &config.telemetry)?;
    svc_workflow::run(config, platform::shutdown::signal()).await
}
