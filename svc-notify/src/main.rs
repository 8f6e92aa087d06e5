use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_notify::Config::parse();
    let _telemetry = platform::telemetry::init(svc_notify::SERVICE_NAME, &config.telemetry)?;
    let (schema, build) = (&svc_notify::app::SCHEMA, svc_notify::build);
    config
        .run(schema, build, platform::shutdown::signal())
        .await
}
