//! Tenant resolution: each source, in order, their conflicts, unknown and suspended tenants,
//! tokens of another tenant, and what reaches the services.

use std::time::Duration;

use platform::testing::wait_until;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestSuite};

/// The tenant id a `WhoAmI` call reached the service with.
fn routed_tenant(reply: &Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["metadata"]["x-tenant-id"].clone()
}

#[tokio::test]
async fn each_source_names_the_tenant() {
    let suite = TestSuite::spawn().await;
    let acme = suite
        .create_tenant_with(
            json!({"slug": "acme", "display_name": "Acme", "domains": ["forms.acme.example"]}),
        )
        .await;
    let token = suite.token(&acme);
    let id = json!(acme.id.to_string());
    let whoami = |path: &str| suite.gateway.get(path).bearer(&token);

    // X-Tenant-ID with the id or the slug.
    let reply = whoami("/v1/whoami")
        .header("x-tenant-id", &acme.id.to_string())
        .send()
        .await;
    assert_eq!(routed_tenant(&reply), id);
    let reply = whoami("/v1/whoami")
        .header("x-tenant-id", "acme")
        .send()
        .await;
    assert_eq!(routed_tenant(&reply), id);
    // The /t/{slug}/ prefix.
    let reply = whoami("/t/acme/v1/whoami").send().await;
    assert_eq!(routed_tenant(&reply), id);
    // The tenant's subdomain, with or without a port, in any case.
    for host in [
        acme.host(),
        format!("{}:8080", acme.host()),
        acme.host().to_uppercase(),
    ] {
        let reply = whoami("/v1/whoami").header("host", &host).send().await;
        assert_eq!(routed_tenant(&reply), id, "{host}");
    }
    // A custom domain.
    let reply = whoami("/v1/whoami")
        .header("host", "forms.acme.example")
        .send()
        .await;
    assert_eq!(routed_tenant(&reply), id);
    // Nothing but the token's `tid`.
    let reply = whoami("/v1/whoami").send().await;
    assert_eq!(routed_tenant(&reply), id);
    // Several sources that agree.
    let reply = whoami("/t/acme/v1/whoami")
        .header("x-tenant-id", &acme.id.to_string())
        .header("host", &acme.host())
        .send()
        .await;
    assert_eq!(routed_tenant(&reply), id);
    // A host that is not a tenant's (the API's own name) is no tenant indication.
    let reply = whoami("/v1/whoami")
        .header("host", "api.example.org")
        .send()
        .await;
    assert_eq!(routed_tenant(&reply), id);
}

#[tokio::test]
async fn a_default_tenant_serves_requests_that_name_none() {
    let suite =
        TestSuite::spawn_with(|config| config.edge.default_tenant = Some("house".into())).await;
    let house = suite.create_tenant("house").await;
    let other = suite.create_tenant("other").await;
    // Creating the tenant looked the default up before it existed; the tenant.created event
    // drops that answer.
    wait_until(
        Duration::from_secs(5),
        "the default tenant resolves",
        || async { suite.gateway.get("/v1/public/whoami").send().await.status == 200 },
    )
    .await;
    let reply = suite.gateway.get("/v1/public/whoami").send().await;
    assert_eq!(routed_tenant(&reply), json!(house.id.to_string()));
    // Any explicit indication wins over the default.
    let reply = suite
        .gateway
        .get("/v1/public/whoami")
        .header("x-tenant-id", "other")
        .send()
        .await;
    assert_eq!(routed_tenant(&reply), json!(other.id.to_string()));
    // So does the token's tenant.
    let reply = suite
        .gateway
        .get("/v1/whoami")
        .bearer(&suite.token(&other))
        .send()
        .await;
    assert_eq!(routed_tenant(&reply), json!(other.id.to_string()));
}

#[tokio::test]
async fn conflicting_unknown_and_missing_tenants_are_refused() {
    let suite = TestSuite::spawn().await;
    let acme = suite.create_tenant("acme").await;
    let globex = suite.create_tenant("globex").await;
    let admin = suite.keys.platform_admin_token();

    // Two sources naming different tenants.
    for reply in [
        suite
            .gateway
            .get("/t/globex/v1/public/whoami")
            .header("x-tenant-id", "acme")
            .send()
            .await,
        suite
            .gateway
            .get("/v1/public/whoami")
            .header("x-tenant-id", "acme")
            .header("host", &globex.host())
            .send()
            .await,
        suite
            .gateway
            .get("/t/acme/v1/public/whoami")
            .header("host", &globex.host())
            .send()
            .await,
    ] {
        assert_eq!(
            (reply.status, reply.error_reason()),
            (400, "TENANT_CONFLICT".to_owned())
        );
    }

    // Unknown tenants, by each source.
    for reply in [
        suite
            .gateway
            .get("/v1/public/whoami")
            .header("x-tenant-id", "nobody")
            .send()
            .await,
        suite
            .gateway
            .get("/v1/public/whoami")
            .header("x-tenant-id", "01a20000-0000-7000-8000-000000000000")
            .send()
            .await,
        suite
            .gateway
            .get("/v1/public/whoami")
            .header("x-tenant-id", "NOT a slug!")
            .send()
            .await,
        suite.gateway.get("/t/nobody/v1/public/whoami").send().await,
        suite
            .gateway
            .get("/v1/public/whoami")
            .header("host", &format!("nobody.{}", crate::helpers::BASE_DOMAIN))
            .send()
            .await,
    ] {
        assert_eq!(
            (reply.status, reply.error_reason()),
            (404, "TENANT_NOT_FOUND".to_owned()),
            "{}",
            reply.text()
        );
    }

    // No tenant at all: refused where the RPC needs one, served where it does not.
    let reply = suite.gateway.get("/v1/public/whoami").send().await;
    assert_eq!(
        (reply.status, reply.error_reason()),
        (404, "TENANT_NOT_FOUND".to_owned())
    );
    let reply = suite.gateway.get("/v1/whoami").bearer(&admin).send().await;
    assert_eq!(
        (reply.status, reply.error_reason()),
        (404, "TENANT_NOT_FOUND".to_owned())
    );
    let reply = suite
        .gateway
        .get("/v1/global/whoami")
        .bearer(&admin)
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.json()["metadata"].get("x-tenant-id").is_none());

    // A token of one tenant used for another.
    for reply in [
        suite
            .gateway
            .get("/v1/whoami")
            .bearer(&suite.token(&acme))
            .header("x-tenant-id", "globex")
            .send()
            .await,
        suite
            .gateway
            .get("/t/globex/v1/whoami")
            .bearer(&suite.token(&acme))
            .send()
            .await,
        suite
            .gateway
            .get("/v1/whoami")
            .bearer(&suite.token(&acme))
            .header("host", &globex.host())
            .send()
            .await,
    ] {
        assert_eq!(
            (reply.status, reply.error_code()),
            (403, "PERMISSION_DENIED".to_owned()),
            "{}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn suspension_takes_effect_at_once_through_the_tenant_events() {
    let suite = TestSuite::spawn().await;
    let acme = suite.create_tenant("acme").await;
    let token = suite.token(&acme);
    let whoami = || {
        suite
            .gateway
            .get("/v1/whoami")
            .bearer(&token)
            .header("x-tenant-id", "acme")
    };
    // Resolved once: now cached in the gateway (for 5 minutes in these tests) and in Redis.
    assert_eq!(whoami().send().await.status, 200);

    suite.suspend(&acme).await;
    wait_until(
        Duration::from_secs(5),
        "the gateway sees the suspension",
        || async { whoami().send().await.status == 403 },
    )
    .await;
    let reply = whoami().send().await;
    assert_eq!(reply.error_reason(), "TENANT_SUSPENDED");
    // Platform operators still reach a suspended tenant.
    let reply = suite
        .gateway
        .get("/v1/whoami")
        .bearer(&suite.keys.platform_admin_token())
        .header("x-tenant-id", "acme")
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let reactivated = suite
        .gateway
        .post(&format!("/api/v1/tenants/{}:reactivate", acme.id))
        .bearer(&suite.keys.platform_admin_token())
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.text());
    wait_until(
        Duration::from_secs(5),
        "the gateway sees the reactivation",
        || async { whoami().send().await.status == 200 },
    )
    .await;
}

#[tokio::test]
async fn services_receive_the_tenant_the_caller_and_the_trace() {
    let suite = TestSuite::spawn_with(|config| config.edge.trusted_proxies = 1).await;
    let acme = suite.create_tenant("acme").await;
    let token = suite.token(&acme);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let reply = suite
        .gateway
        .get("/t/acme/v1/whoami")
        .bearer(&token)
        .header("x-request-id", "trace-me-1")
        .header("traceparent", traceparent)
        .header("tracestate", "vendor=1")
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
        .header("user-agent", "tests/1.0")
        .header("x-client-ip", "6.6.6.6")
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let metadata = reply.json()["metadata"].clone();
    assert_eq!(metadata["x-tenant-id"], acme.id.to_string());
    assert_eq!(metadata["authorization"], format!("Bearer {token}"));
    assert_eq!(metadata["x-request-id"], "trace-me-1");
    assert_eq!(metadata["traceparent"], traceparent);
    assert_eq!(metadata["tracestate"], "vendor=1");
    assert_eq!(
        metadata["x-client-ip"], "203.0.113.9",
        "the address the trusted proxy saw, not the client's claim"
    );
    assert_eq!(metadata["x-client-user-agent"], "tests/1.0");

    // An anonymous call carries no credentials on.
    let reply = suite
        .gateway
        .get("/t/acme/v1/public/whoami")
        .header("authorization", "")
        .send()
        .await;
    assert_eq!(
        reply.status, 401,
        "an empty Authorization header is malformed credentials"
    );
    let reply = suite.gateway.get("/t/acme/v1/public/whoami").send().await;
    assert_eq!(reply.status, 200);
    let metadata = reply.json()["metadata"].clone();
    assert!(metadata.get("authorization").is_none(), "{metadata}");
    // A request id is made up when the client sends none.
    assert!(
        metadata["x-request-id"]
            .as_str()
            .is_some_and(|id| id.len() >= 32),
        "{metadata}"
    );
    assert_eq!(
        reply.header("x-request-id"),
        metadata["x-request-id"].as_str()
    );
}
