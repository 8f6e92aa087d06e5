//! What every response gets and the edge's own endpoints: streaming, gRPC-web, the OpenAPI
//! document, health and readiness, metrics, headers, CORS, compression, maintenance mode and
//! graceful shutdown.

use std::time::Duration;

use bytes::{Buf, Bytes};
use echo_service::pb::acme::echo::v1::{Book, GetBookRequest};
use http_body_util::BodyExt;
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::TestSuite;

#[tokio::test]
async fn server_streams_arrive_as_server_sent_events_or_ndjson() {
    let suite = TestSuite::spawn().await;
    let acme = suite.create_tenant("acme").await;
    let token = suite.token(&acme);
    let count = |query: &str| {
        suite
            .gateway
            .get(&format!("/v1/count?{query}"))
            .tenant(&acme)
            .bearer(&token)
    };

    let reply = count("count=3").send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let events: Vec<Value> = reply
        .text()
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(events, [json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]);

    // A stream that fails ends with an `error` event in the shared error shape.
    let reply = count("count=1&fail_with=5").send().await;
    let text = reply.text();
    let error_event = text
        .split("\n\n")
        .find(|event| event.contains("event: error"))
        .expect("an error event");
    let data: Value = serde_json::from_str(
        error_event
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["error"]["code"], "NOT_FOUND", "{text}");

    // NDJSON on request.
    let reply = count("count=2&fail_with=13")
        .header("accept", "application/x-ndjson")
        .send()
        .await;
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = reply
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines[..2], [json!({"n": 1}), json!({"n": 2})]);
    assert_eq!(lines[2]["error"]["code"], "INTERNAL");
    assert_eq!(lines[2]["error"]["message"], "internal error");

    // A stream refused before its first message is an ordinary error.
    let reply = count("count=-1").send().await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (400, "INVALID_ARGUMENT".to_owned())
    );

    // Events are relayed as they come, not when the stream ends.
    let response = count("count=2&interval=3s").send_streaming().await;
    let mut body = response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let frame = body.frame().await.expect("a frame").expect("no error");
            if let Ok(data) = frame.into_data()
                && String::from_utf8_lossy(&data).contains("data: ")
            {
                return String::from_utf8_lossy(&data).into_owned();
            }
        }
    })
    .await
    .expect("the first event arrives before the stream ends");
    assert!(first.contains(r#"{"n":1}"#), "{first}");
}

#[tokio::test]
async fn streams_of_raw_bodies_arrive_as_one_file() {
    let suite = TestSuite::spawn().await;
    let acme = suite.create_tenant("acme").await;
    let token = suite.token(&acme);
    let download = |query: &str| {
        suite
            .gateway
            .get(&format!("/v1/downloads/report:chunks?{query}"))
            .tenant(&acme)
            .bearer(&token)
    };

    let reply = download("chunks=3").send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/csv"));
    assert_eq!(reply.text(), "report,1\nreport,2\nreport,3\n");

    // Refused before the first chunk: an ordinary error.
    let reply = download("fail_with=5").send().await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (404, "NOT_FOUND".to_owned())
    );

    // Failing part way: the body is cut short, never ended as if complete.
    let response = download("chunks=2&fail_with=13&interval=0.2s")
        .send_streaming()
        .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = Vec::new();
    let ended = loop {
        match body.frame().await {
            Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().unwrap_or_default()),
            Some(Err(_)) => break false,
            None => break true,
        }
    };
    assert!(!ended, "a failed download must not end cleanly");
    assert_eq!(String::from_utf8_lossy(&received), "report,1\nreport,2\n");
}

/// A gRPC-web frame holding `message`.
fn grpc_web_frame(message: &impl Message) -> Bytes {
    let payload = message.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame.into()
}

/// The data frames and the trailers of a gRPC-web response body (trailers may also be headers).
fn grpc_web_parts(mut body: Bytes) -> (Vec<Bytes>, String) {
    let mut messages = Vec::new();
    let mut trailers = String::new();
    while body.remaining() >= 5 {
        let flag = body.get_u8();
        let length = body.get_u32() as usize;
        let payload = body.split_to(length);
        if flag & 0x80 != 0 {
            trailers = String::from_utf8_lossy(&payload).into_owned();
        } else {
            messages.push(payload);
        }
    }
    (messages, trailers.to_ascii_lowercase())
}

#[tokio::test]
async fn browsers_call_services_with_grpc_web() {
    let suite = TestSuite::spawn().await;
    let acme = suite.create_tenant("acme").await;
    let request = GetBookRequest {
        shelf: "web".into(),
        book: 3,
        with_author: true,
    };
    let call = |path: &str| {
        suite
            .gateway
            .post(path)
            .body("application/grpc-web+proto", grpc_web_frame(&request))
            .header("x-grpc-web", "1")
    };

    let reply = call("/acme.echo.v1.EchoService/GetBook")
        .tenant(&acme)
        .bearer(&suite.token(&acme))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/grpc-web")
    );
    let (messages, trailers) = grpc_web_parts(reply.body.clone());
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let book = Book::decode(messages[0].clone()).unwrap();
    assert_eq!(
        (book.name.as_str(), book.author.as_str()),
        ("shelves/web/books/3", "Ada")
    );

    // The same checks as REST: no credentials, another tenant's, an internal RPC.
    let status = |reply: &crate::helpers::Reply| {
        reply
            .header("grpc-status")
            .map(str::to_owned)
            .unwrap_or_else(|| grpc_web_parts(reply.body.clone()).1)
    };
    let reply = call("/acme.echo.v1.EchoService/GetBook")
        .tenant(&acme)
        .send()
        .await;
    assert_eq!(status(&reply), "16", "UNAUTHENTICATED");
    let globex = suite.create_tenant("globex").await;
    let reply = call("/acme.echo.v1.EchoService/GetBook")
        .tenant(&globex)
        .bearer(&suite.token(&acme))
        .send()
        .await;
    assert_eq!(status(&reply), "7", "PERMISSION_DENIED");
    let reply = call("/acme.echo.v1.EchoService/Internal")
        .tenant(&acme)
        .bearer(&suite.token(&acme))
        .send()
        .await;
    assert_eq!(status(&reply), "12", "UNIMPLEMENTED");
    let reply = call("/acme.echo.v1.EchoService/Nope")
        .tenant(&acme)
        .bearer(&suite.token(&acme))
        .send()
        .await;
    assert_eq!(status(&reply), "12", "UNIMPLEMENTED");

    // A suite service, by the platform administrator.
    let request = proto::formflow::tenant::v1::GetTenantRequest {
        name: format!("tenants/{}", acme.id),
    };
    let reply = suite
        .gateway
        .post("/formflow.tenant.v1.TenantService/GetTenant")
        .body("application/grpc-web+proto", grpc_web_frame(&request))
        .bearer(&suite.keys.platform_admin_token())
        .send()
        .await;
    let (messages, trailers) = grpc_web_parts(reply.body);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let tenant = proto::formflow::tenant::v1::Tenant::decode(messages[0].clone()).unwrap();
    assert_eq!(tenant.slug, "acme");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_is_valid() {
    let suite = TestSuite::spawn().await;
    let reply = suite.gateway.get("/openapi.json").send().await;
    assert_eq!(reply.status, 200);
    let document = reply.json();
    assert_eq!(document["openapi"], "3.0.3");
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/shelves/{shelf}/books/{book}", "get"),
        ("/v1/shelves/{shelf}/books/{book}:publish", "post"),
        ("/v1/projects/{project}/files/{file}", "get"),
        ("/v1/echo", "post"),
        ("/v1/echo", "get"),
        ("/v1/echo/{string_value}", "put"),
        ("/api/v1/tenants", "post"),
        ("/api/v1/auth:login", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|item| item.get(method)).is_some(),
            "{method} {path} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        paths.get("/v1/internal").is_none(),
        "internal RPCs are not documented"
    );
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for schema in [
        "acme.echo.v1.Everything",
        "formflow.tenant.v1.Tenant",
        "Error",
    ] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
    assert!(
        document["components"]["securitySchemes"]
            .as_object()
            .is_some_and(|schemes| !schemes.is_empty())
    );

    // Valid for standard tools.
    let validator = std::env::var("OPENAPI_SPEC_VALIDATOR").unwrap_or_else(|_| {
        format!(
            "{}/.cache/formflow/venv/bin/openapi-spec-validator",
            std::env::var("HOME").unwrap()
        )
    });
    let file = std::env::temp_dir().join(format!("ff-openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, &reply.body).unwrap();
    let output = tokio::process::Command::new(&validator)
        .arg(&file)
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!("cannot run {validator} ({error}); run scripts/setup.sh --infra-only")
        });
    std::fs::remove_file(&file).ok();
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // A client generator takes every operation, and the client it writes works.
    generated_client_reads_the_key_set(&suite, &reply.body).await;
}

/// Generates a Python client from `document` with openapi-python-client, without a warning,
/// imports each of its modules and reads the JWKS through it.
async fn generated_client_reads_the_key_set(suite: &TestSuite, document: &[u8]) {
    let tool = |name: &str, variable: &str| {
        std::env::var(variable).unwrap_or_else(|_| {
            format!(
                "{}/.cache/formflow/venv/bin/{name}",
                std::env::var("HOME").unwrap()
            )
        })
    };
    let generator = tool("openapi-python-client", "OPENAPI_PYTHON_CLIENT");
    let dir = std::env::temp_dir().join(format!("ff-client-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("openapi.json");
    std::fs::write(&file, document).unwrap();
    let output = tokio::process::Command::new(&generator)
        .args([
            "generate",
            "--meta",
            "none",
            "--output-path",
            "formflow_client",
            "--path",
        ])
        .arg(&file)
        .current_dir(&dir)
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!("cannot run {generator} ({error}); run scripts/setup.sh --infra-only")
        });
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    assert!(
        !said.contains("WARNING"),
        "the generator skipped something:\n{said}"
    );
    // The generator's own interpreter has what its clients need (httpx, attrs).
    let python = std::path::Path::new(&generator).with_file_name("python");
    let script = format!(
        r#"
import importlib, pkgutil
import formflow_client
for module in pkgutil.walk_packages(formflow_client.__path__, "formflow_client."):
    importlib.import_module(module.name)
from formflow_client import Client
from formflow_client.api.auth_service import auth_service_get_jwks
jwks = auth_service_get_jwks.sync(client=Client(base_url="http://{}"))
print(jwks.keys[0].kty, jwks.keys[0].crv)
"#,
        suite.gateway.addr
    );
    let output = tokio::process::Command::new(&python)
        .args(["-c", &script])
        .current_dir(&dir)
        .output()
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        output.status.success(),
        "the generated client failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "OKP Ed25519"
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_response_headers() {
    let suite = TestSuite::spawn_with(|config| {
        config.edge.cors_origins = vec!["https://app.example".into()]
    })
    .await;
    let reply = suite.gateway.get("/healthz").send().await;
    assert_eq!((reply.status, reply.json()), (200, json!({"status": "ok"})));
    // svc-forms and the others are not running in these tests: the gateway is ready all the
    // same (their routes answer 503), and says so; `?all` asks for every upstream.
    let reply = suite.gateway.get("/readyz").send().await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let upstreams = &reply.json()["upstreams"];
    assert_eq!(upstreams["svc-auth"], "serving", "{upstreams}");
    assert_eq!(upstreams["svc-tenant"], "serving", "{upstreams}");
    assert_eq!(upstreams["svc-forms"], "not serving", "{upstreams}");
    let reply = suite.gateway.get("/readyz?all").send().await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (503, "UNAVAILABLE".to_owned())
    );
    assert!(reply.text().contains("svc-forms"), "{}", reply.text());

    let acme = suite.create_tenant("acme").await;
    let reply = suite
        .gateway
        .get("/v1/whoami")
        .tenant(&acme)
        .bearer(&suite.token(&acme))
        .send()
        .await;
    for header in [
        "x-content-type-options",
        "x-frame-options",
        "strict-transport-security",
        "content-security-policy",
        "referrer-policy",
    ] {
        assert!(reply.header(header).is_some(), "{header} missing");
    }
    assert!(
        reply
            .header("x-response-time")
            .is_some_and(|time| time.ends_with("ms"))
    );
    assert!(reply.header("x-request-id").is_some());

    // CORS for the configured origin only.
    let preflight = |origin: &str| {
        suite
            .gateway
            .request(http::Method::OPTIONS, "/v1/whoami")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header(
                "access-control-request-headers",
                "authorization,x-tenant-id",
            )
            .send()
    };
    let reply = preflight("https://app.example").await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let reply = preflight("https://evil.example").await;
    assert_eq!(reply.header("access-control-allow-origin"), None);

    // gzip when asked.
    let reply = suite
        .gateway
        .get("/openapi.json")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(reply.header("content-encoding"), Some("gzip"));

    // Errors keep their route's label.
    let reply = suite
        .gateway
        .get("/v1/shelves/s/books/0")
        .tenant(&acme)
        .bearer(&suite.token(&acme))
        .send()
        .await;
    assert_eq!(reply.status, 404);

    let reply = suite.gateway.get("/metrics").send().await;
    assert_eq!(reply.status, 200);
    let metrics = reply.text();
    assert!(metrics.contains("gateway_requests_total"), "{metrics}");
    assert!(
        metrics.contains(r#"route="GET /v1/whoami""#),
        "per-route labels: {metrics}"
    );
    assert!(
        metrics.contains("gateway_request_duration_seconds_bucket"),
        "latency histograms"
    );
}

#[tokio::test]
async fn maintenance_mode_turns_everyone_but_operators_away() {
    let suite = TestSuite::spawn().await;
    let acme = suite.create_tenant("acme").await;
    let gateway = suite
        .start_gateway(|config| {
            config.edge.maintenance = true;
            config.edge.maintenance_retry_after = 120;
        })
        .await;
    let reply = gateway
        .get("/v1/whoami")
        .tenant(&acme)
        .bearer(&suite.token(&acme))
        .send()
        .await;
    assert_eq!(
        (reply.status, reply.error_reason()),
        (503, "MAINTENANCE".to_owned())
    );
    assert_eq!(reply.header("retry-after"), Some("120"));
    let reply = gateway.get("/v1/public/whoami").tenant(&acme).send().await;
    assert_eq!(reply.status, 503);
    assert_eq!(gateway.get("/healthz").send().await.status, 200);
    let reply = gateway
        .get(&format!("/api/v1/tenants/{}", acme.id))
        .bearer(&suite.keys.platform_admin_token())
        .send()
        .await;
    assert_eq!(
        reply.status,
        200,
        "platform administrators still work: {}",
        reply.text()
    );
}

#[tokio::test]
async fn shutting_down_finishes_requests_in_flight() {
    let suite = TestSuite::spawn().await;
    let acme = suite.create_tenant("acme").await;
    let gateway = suite.start_gateway(|_| {}).await;
    let slow = gateway
        .post("/v1/sleep")
        .tenant(&acme)
        .bearer(&suite.token(&acme))
        .json(&json!({"duration": "1s"}))
        .send();
    let in_flight = tokio::spawn(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway.stop();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(gateway.addr).await.is_err(),
        "no new connections"
    );
}
