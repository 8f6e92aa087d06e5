//! Errors: the one JSON shape, the canonical gRPC to HTTP mapping, details carried, internal
//! detail hidden, unavailable upstreams and slow ones.

use std::time::Duration;

use platform::testing::TcpProxy;
use serde_json::json;

use crate::helpers::TestSuite;

#[tokio::test]
async fn every_grpc_code_maps_to_its_http_status() {
    let suite = TestSuite::spawn().await;
    let tenant = suite.create_tenant("acme").await;
    let token = suite.token(&tenant);
    let expected = [
        (1, 499, "CANCELLED"),
        (2, 500, "UNKNOWN"),
        (3, 400, "INVALID_ARGUMENT"),
        (4, 504, "DEADLINE_EXCEEDED"),
        (5, 404, "NOT_FOUND"),
        (6, 409, "ALREADY_EXISTS"),
        (7, 403, "PERMISSION_DENIED"),
        (8, 429, "RESOURCE_EXHAUSTED"),
        (9, 400, "FAILED_PRECONDITION"),
        (10, 409, "ABORTED"),
        (11, 400, "OUT_OF_RANGE"),
        (12, 501, "UNIMPLEMENTED"),
        (13, 500, "INTERNAL"),
        (14, 503, "UNAVAILABLE"),
        (15, 500, "DATA_LOSS"),
        (16, 401, "UNAUTHENTICATED"),
    ];
    for (code, status, name) in expected {
        let reply = suite
            .gateway
            .post("/v1/fail")
            .tenant(&tenant)
            .bearer(&token)
            .header("x-request-id", &format!("req-{code}"))
            .json(&json!({"code": code, "message": "the service says why"}))
            .send()
            .await;
        assert_eq!(reply.status, status, "code {code}: {}", reply.text());
        assert_eq!(reply.error_code(), name);
        let body = reply.json();
        assert_eq!(body["error"]["request_id"], format!("req-{code}"));
        assert_eq!(
            reply.header("x-request-id"),
            Some(format!("req-{code}").as_str())
        );
        let message = body["error"]["message"].as_str().unwrap();
        match code {
            // Internal failures never show the service's words.
            2 | 13 | 15 => assert_eq!(message, "internal error"),
            // The service's own DEADLINE_EXCEEDED and UNAVAILABLE too, unlike the gateway's.
            _ => assert_eq!(message, "the service says why"),
        }
    }
}

#[tokio::test]
async fn reasons_and_field_violations_reach_the_client_and_secrets_do_not() {
    let suite = TestSuite::spawn().await;
    let tenant = suite.create_tenant("acme").await;
    let token = suite.token(&tenant);
    let reply = suite
        .gateway
        .post("/v1/fail")
        .tenant(&tenant)
        .bearer(&token)
        .json(&json!({
            "code": 3,
            "message": "2 fields are invalid",
            "reason": "FORM_INVALID",
            "violations": {"form.title": "must not be empty", "form.fields[0].key": "is taken"},
        }))
        .send()
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error_code(), "INVALID_ARGUMENT");
    assert_eq!(reply.json()["error"]["reason"], "FORM_INVALID");
    let body = reply.json();
    let details = body["error"]["details"].as_array().unwrap();
    let violations = details
        .iter()
        .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .expect("field violations")["fieldViolations"]
        .clone();
    assert_eq!(
        violations,
        json!([
            {"field": "form.fields[0].key", "description": "is taken"},
            {"field": "form.title", "description": "must not be empty"},
        ])
    );
    let info = details
        .iter()
        .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .expect("error info");
    assert_eq!(
        (info["reason"].as_str(), info["domain"].as_str()),
        (Some("FORM_INVALID"), Some("acme.example"))
    );

    let reply = suite
        .gateway
        .post("/v1/fail")
        .tenant(&tenant)
        .bearer(&token)
        .json(&json!({"code": 13, "message": "connect postgres://app:hunter2@db:5432 failed"}))
        .send()
        .await;
    assert_eq!(reply.status, 500);
    assert!(!reply.text().contains("hunter2"), "{}", reply.text());
    assert!(!reply.text().contains("postgres"), "{}", reply.text());
}

#[tokio::test]
async fn every_standard_detail_the_service_gives_reaches_the_client_but_debug_info() {
    let suite = TestSuite::spawn().await;
    let tenant = suite.create_tenant("acme").await;
    let token = suite.token(&tenant);
    let fail = |body: serde_json::Value| {
        suite
            .gateway
            .post("/v1/fail")
            .tenant(&tenant)
            .bearer(&token)
            .json(&body)
            .send()
    };
    let reply = fail(json!({
        "code": 14,
        "message": "the shelf is being rebuilt",
        "reason": "SHELF_REBUILDING",
        "retry_delay": "7.5s",
        "resource_name": "shelves/s",
        "help_url": "https://acme.example/help",
        "debug_detail": "panic at shelf.rs:12 with password hunter2",
        "precondition_subject": "shelves/s",
        "quota_subject": "project:acme",
        "localized_message": "l'étagère est en reconstruction",
    }))
    .await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), Some("8"), "7.5 s rounded up");
    let body = reply.json();
    assert_eq!(body["error"]["code"], "UNAVAILABLE");
    assert_eq!(body["error"]["reason"], "SHELF_REBUILDING");
    assert_eq!(body["error"]["message"], "the shelf is being rebuilt");
    assert!(!reply.text().contains("hunter2"), "{body}");
    let detail = |name: &str| {
        let type_url = format!("type.googleapis.com/google.rpc.{name}");
        body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|detail| detail["@type"] == type_url.as_str())
            .unwrap_or_else(|| panic!("no {name} in {body}"))
            .clone()
    };
    assert_eq!(detail("ErrorInfo")["reason"], "SHELF_REBUILDING");
    assert_eq!(detail("RetryInfo")["retryDelay"], "7.5s");
    assert_eq!(detail("ResourceInfo")["resourceName"], "shelves/s");
    assert_eq!(detail("ResourceInfo")["owner"], "acme");
    assert_eq!(
        detail("Help")["links"],
        json!([{"description": "what to do", "url": "https://acme.example/help"}])
    );
    assert_eq!(
        detail("PreconditionFailure")["violations"],
        json!([{"type": "STATE", "subject": "shelves/s", "description": "is not ready"}])
    );
    assert_eq!(
        detail("QuotaFailure")["violations"],
        json!([{"subject": "project:acme", "description": "daily quota spent"}])
    );
    assert_eq!(
        detail("LocalizedMessage"),
        json!({
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "fr-FR",
            "message": "l'étagère est en reconstruction",
        })
    );
    assert_eq!(
        body["error"]["details"].as_array().unwrap().len(),
        7,
        "{body}"
    );

    // A quota answer's RetryInfo becomes Retry-After on the 429.
    let reply = fail(json!({"code": 8, "message": "slow down", "retry_delay": "30s"})).await;
    assert_eq!(
        (reply.status, reply.header("retry-after")),
        (429, Some("30"))
    );
    // Without one, an UNAVAILABLE still says when to come back; other codes do not.
    let reply = fail(json!({"code": 14, "message": "down"})).await;
    assert_eq!(
        (reply.status, reply.header("retry-after")),
        (503, Some("1"))
    );
    let reply = fail(json!({"code": 9, "message": "not now", "retry_delay": "5s"})).await;
    assert_eq!((reply.status, reply.header("retry-after")), (400, None));
    // An upstream's DEADLINE_EXCEEDED is the upstream's, not a gateway timeout.
    let reply = fail(json!({"code": 4, "message": "the index query timed out"})).await;
    assert_eq!(reply.status, 504);
    let body = reply.json();
    assert_eq!(body["error"]["message"], "the index query timed out");
    assert!(body["error"].get("reason").is_none(), "{body}");
}

#[tokio::test]
async fn slow_services_time_out_with_504() {
    let suite = TestSuite::spawn_with(|config| {
        config.edge.request_timeout = Duration::from_secs(1);
    })
    .await;
    let tenant = suite.create_tenant("acme").await;
    let sleep = |duration: &str| {
        suite
            .gateway
            .post("/v1/sleep")
            .tenant(&tenant)
            .bearer(&suite.token(&tenant))
            .json(&json!({"duration": duration}))
    };
    assert_eq!(sleep("0.010s").send().await.status, 200);
    let reply = sleep("3s").send().await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (504, "DEADLINE_EXCEEDED".to_owned())
    );
    // The gateway's own timeout, told apart from an upstream's DEADLINE_EXCEEDED.
    assert_eq!(reply.json()["error"]["reason"], "UPSTREAM_TIMEOUT");
}

#[tokio::test]
async fn unreachable_services_answer_503_and_recover() {
    let suite = TestSuite::spawn().await;
    let proxy = TcpProxy::start(suite.echo_addr).await;
    let gateway = suite
        .start_gateway(|config| {
            config.upstreams.package_routes = vec![format!("acme.echo.v1=http://{}", proxy.addr())];
        })
        .await;
    let tenant = suite.create_tenant("acme").await;
    let token = suite.token(&tenant);
    let echo = || {
        gateway
            .post("/v1/echo")
            .tenant(&tenant)
            .bearer(&token)
            .json(&json!({}))
    };
    assert_eq!(echo().send().await.status, 200);

    proxy.cut();
    let reply = echo().send().await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (503, "UNAVAILABLE".to_owned())
    );
    assert_eq!(reply.json()["error"]["reason"], "UPSTREAM_UNAVAILABLE");
    assert!(reply.header("retry-after").is_some());
    proxy.restore();
    platform::testing::wait_until(
        Duration::from_secs(10),
        "the service is reachable again",
        || async { echo().send().await.status == 200 },
    )
    .await;

    // A suite service that is not running at all.
    let reply = gateway
        .get("/api/v1/forms")
        .tenant(&tenant)
        .bearer(&token)
        .send()
        .await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (503, "UNAVAILABLE".to_owned())
    );
}

#[tokio::test]
async fn bodies_read_as_json_need_a_json_content_type() {
    let suite = TestSuite::spawn().await;
    let tenant = suite.create_tenant("acme").await;
    let token = suite.token(&tenant);
    let post = |path: &str| suite.gateway.post(path).tenant(&tenant).bearer(&token);
    let json = r#"{"string_value": "x"}"#;

    // A body whose content type is not JSON, or that has none, is refused with 415.
    for (path, content_type, body) in [
        ("/v1/echo", Some("text/plain"), json),
        ("/v1/echo", Some("text/plain; charset=utf-8"), json),
        (
            "/v1/echo",
            Some("application/x-www-form-urlencoded"),
            "string_value=x",
        ),
        ("/v1/echo", Some("multipart/form-data; boundary=b"), json),
        ("/v1/echo", None, json),
        // Other routes, and the suite's own.
        ("/v1/shelves/s/books/b:publish", Some("text/plain"), "{}"),
        (
            "/api/v1/auth:login",
            Some("text/plain"),
            r#"{"email": "a@b.c"}"#,
        ),
    ] {
        let request = post(path);
        let request = match content_type {
            Some(content_type) => request.body(content_type, body),
            None => request.untyped_body(body),
        };
        let reply = request.send().await;
        assert_eq!(
            (reply.status, reply.error_reason()),
            (415, "UNSUPPORTED_MEDIA_TYPE".to_owned()),
            "{path} as {content_type:?}: {}",
            reply.text()
        );
        assert!(
            reply.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    // A `body: "field"` route.
    let reply = suite
        .gateway
        .request(http::Method::PATCH, "/v1/shelves/s/books/b")
        .tenant(&tenant)
        .bearer(&token)
        .body("text/plain", r#"{"title": "x"}"#)
        .send()
        .await;
    assert_eq!(reply.status, 415, "{}", reply.text());

    // JSON in any of its spellings is read.
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/merge-patch+json",
    ] {
        let reply = post("/v1/echo").body(content_type, json).send().await;
        assert_eq!(reply.status, 200, "{content_type}: {}", reply.text());
        assert_eq!(reply.json()["stringValue"], "x");
    }
    // No body needs no content type; raw bodies take any.
    let reply = post("/v1/echo").body("text/plain", "").send().await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    for content_type in [
        "application/x-www-form-urlencoded",
        "image/png",
        "text/plain",
    ] {
        let reply = post("/v1/uploads/file")
            .body(content_type, "a=1&b=2")
            .send()
            .await;
        assert_eq!(reply.status, 200, "{content_type}: {}", reply.text());
        assert_eq!(reply.json()["contentType"], content_type);
    }
}
