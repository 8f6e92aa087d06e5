use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_forms::Config::parse();
    let _telemetry = platform::telemetry::init(svc_forms::SERVICE_NAME, &config.telemetry)?;
    let (schema, build) = (&svc_forms::app::SCHEMA, svc_forms::build);
    config
        .run(schema, build, platform::shutdown::signal())
        .await
}
