use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_tenant::Config::parse();
    let _telemetry = platform::telemetry::init(svc_tenant::SERVICE_NAME, &config.telemetry)?;
    let (schema, build) = (&svc_tenant::app::SCHEMA, svc_tenant::build);
    config
        .run(schema, build, platform::shutdown::signal())
        .await
}
