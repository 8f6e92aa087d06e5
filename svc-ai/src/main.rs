use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_ai::Config::parse();
    let _telemetry = platform::telemetry::init(svc_ai::SERVICE_NAME, &config.telemetry)?;
    let (schema, build) = (&svc_ai::app::SCHEMA, svc_ai::build);
    config
        .run(schema, build, platform::shutdown::signal())
        .await
}
