//! Rate limits: shared by every gateway through Redis, per caller, per client address and per
//! tenant, with the standard headers, and kept in process while Redis is away.

use std::time::Duration;

use platform::testing::TcpProxy;
use serde_json::json;

use crate::helpers::TestSuite;

fn number(reply: &crate::helpers::Reply, header: &str) -> u64 {
    reply
        .header(header)
        .unwrap_or_else(|| panic!("no {header} header"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn callers_share_one_budget_across_gateway_replicas() {
    let limits = |config: &mut gateway::Config| {
        config.edge.caller_rate = 6; // one request every 10 s once the burst is spent
        config.edge.caller_burst = 5;
    };
    let suite = TestSuite::spawn_with(limits).await;
    let second = suite.start_gateway(limits).await;
    let acme = suite.create_tenant("acme").await;
    let token = suite.token(&acme);

    let mut remaining = Vec::new();
    for gateway in [
        &suite.gateway,
        &second,
        &suite.gateway,
        &second,
        &suite.gateway,
    ] {
        let reply = gateway.get("/v1/whoami").bearer(&token).send().await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(number(&reply, "ratelimit-limit"), 5);
        remaining.push(number(&reply, "ratelimit-remaining"));
        assert!(number(&reply, "ratelimit-reset") <= 50);
    }
    assert_eq!(
        remaining,
        [4, 3, 2, 1, 0],
        "one budget, whichever replica answers"
    );
    for gateway in [&second, &suite.gateway] {
        let reply = gateway.get("/v1/whoami").bearer(&token).send().await;
        assert_eq!(
            (reply.status, reply.error_reason()),
            (429, "RATE_LIMITED".to_owned())
        );
        let retry_after = number(&reply, "retry-after");
        assert!((1..=10).contains(&retry_after), "Retry-After {retry_after}");
    }
    // Another caller of the same tenant has a budget of its own.
    let reply = second
        .get("/v1/whoami")
        .bearer(&suite.token(&acme))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // Refusals are counted (both gateways share this process's metrics registry).
    let metrics = suite.gateway.get("/metrics").send().await.text();
    let refused: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("gateway_rate_limited_total "))
        .expect("a rate limit counter")
        .parse()
        .unwrap();
    assert_eq!(refused, 2.0, "{metrics}");
}

#[tokio::test]
async fn anonymous_calls_are_limited_per_client_address() {
    let suite = TestSuite::spawn_with(|config| {
        config.edge.anonymous_rate = 6;
        config.edge.anonymous_burst = 2;
        config.edge.trusted_proxies = 1;
    })
    .await;
    let acme = suite.create_tenant("acme").await;
    let from = |address: &str| {
        suite
            .gateway
            .get("/v1/public/whoami")
            .tenant(&acme)
            .header("x-forwarded-for", address)
    };
    assert_eq!(from("198.51.100.1").send().await.status, 200);
    assert_eq!(from("198.51.100.1").send().await.status, 200);
    let reply = from("198.51.100.1").send().await;
    assert_eq!(reply.status, 429);
    assert!(reply.header("retry-after").is_some());
    // Another address is not affected; neither is a caller with credentials.
    assert_eq!(from("198.51.100.2").send().await.status, 200);
    let reply = from("198.51.100.1")
        .bearer(&suite.token(&acme))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn a_tenants_own_limit_covers_all_its_callers() {
    let suite = TestSuite::spawn().await;
    let acme = suite
        .create_tenant_with(json!({
            "slug": "acme",
            "display_name": "Acme",
            "rate_limits": {"requests_per_minute": 6, "burst": 3},
        }))
        .await;
    let globex = suite.create_tenant("globex").await;
    for _ in 0..3 {
        // A different user each time: only the tenant's budget is shared.
        let reply = suite
            .gateway
            .get("/v1/whoami")
            .bearer(&suite.token(&acme))
            .send()
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let reply = suite
        .gateway
        .get("/v1/whoami")
        .bearer(&suite.token(&acme))
        .send()
        .await;
    assert_eq!(
        (reply.status, reply.error_reason()),
        (429, "RATE_LIMITED".to_owned())
    );
    assert_eq!(
        number(&reply, "ratelimit-limit"),
        3,
        "the tightest limit is reported"
    );
    // Other tenants are not affected.
    let reply = suite
        .gateway
        .get("/v1/whoami")
        .bearer(&suite.token(&globex))
        .send()
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn limits_hold_in_process_while_redis_is_unreachable() {
    let suite = TestSuite::spawn().await;
    let acme = suite.create_tenant("acme").await;
    let redis_addr = "127.0.0.1:6379".parse().unwrap();
    let proxy = TcpProxy::start(redis_addr).await;
    let gateway = suite
        .start_gateway(|config| {
            config.redis.redis_url = Some(format!("redis://{}", proxy.addr()).into());
            config.edge.caller_rate = 6;
            config.edge.caller_burst = 2;
        })
        .await;
    let token = suite.token(&acme);
    // Cache the tenant first; then Redis goes away.
    assert_eq!(
        gateway.get("/v1/whoami").bearer(&token).send().await.status,
        200
    );
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reply = gateway.get("/v1/whoami").bearer(&token).send().await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = gateway.get("/v1/whoami").bearer(&token).send().await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = gateway.get("/v1/whoami").bearer(&token).send().await;
    assert_eq!(
        (reply.status, reply.error_reason()),
        (429, "RATE_LIMITED".to_owned())
    );
    proxy.restore();
}
