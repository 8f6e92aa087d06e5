use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = svc_workflow::Config::parse();
    let _telemetry = platform::telemetry::init(svc_workflow::SERVICE_NAME, &config.telemetry)?;
    let (schema, build) = (&svc_workflow::app::SCHEMA, svc_workflow::build);
    config
        .run(schema, build, platform::shutdown::signal())
        .await
}
