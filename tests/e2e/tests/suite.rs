//! The one-process suite, as `scripts/setup.sh` starts it: every service answers, the demo
//! tenant exists once, errors have the documented shape, and SIGTERM stops it cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use platform::testing::{SmtpServer, TestInfra, wait_until};
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MapKey, MessageDescriptor, MethodDescriptor, Value,
};
use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The `formflow` binary next to this test's executable, or `FORMFLOW_BIN`.
fn formflow_binary() -> PathBuf {
    if let Ok(path) = std::env::var("FORMFLOW_BIN") {
        return path.into();
    }
    let test_binary = std::env::current_exe().unwrap();
    let profile_dir = test_binary.parent().unwrap().parent().unwrap();
    let binary = profile_dir.join("formflow");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build --bin formflow` (scripts/test.sh does)",
        binary.display()
    );
    binary
}

struct Suite {
    child: Child,
    gateway: SocketAddr,
    output: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// A suite left running by a failed test is killed, not left behind to load the machine.
impl Drop for Suite {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Suite {
    async fn start(infra: &TestInfra, state_dir: &std::path::Path) -> Suite {
        Self::start_with(infra, state_dir, &[]).await
    }

    /// The suite with extra environment variables (`NOTIFY_SMTP_URL`…).
    async fn start_with(
        infra: &TestInfra,
        state_dir: &std::path::Path,
        env: &[(&str, String)],
    ) -> Suite {
        // Port 0 everywhere: the suite binds free ports and its banner says which.
        let mut child = Command::new(formflow_binary())
            .args(["up", "--demo", "--host", "127.0.0.1"])
            .args(["--grpc-base-port", "0", "--gateway-port", "0"])
            .arg("--state-dir")
            .arg(state_dir)
            .env("DATABASE_URL", infra.db.url().unwrap().expose_secret())
            .env("REDIS_URL", infra.redis.url().unwrap().expose_secret())
            .env("REDIS_KEY_PREFIX", &infra.redis.redis_key_prefix)
            .env("AMQP_URL", infra.amqp.url().unwrap().expose_secret())
            .env("AMQP_PREFIX", &infra.amqp.amqp_prefix)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting formflow");
        let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().unwrap()).unwrap();
        let (lines, output) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut suite = Suite {
            child,
            gateway: SocketAddr::from(([127, 0, 0, 1], 0)),
            output,
        };
        let gateway_line = suite.banner_line("  gateway ").await;
        suite.gateway = gateway_line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no gateway address in {gateway_line:?}"));
        wait_until(
            Duration::from_secs(60),
            "the gateway reports ready",
            || async {
                get(suite.gateway, "/readyz?all", &[])
                    .await
                    .is_some_and(|(status, _)| status == 200)
            },
        )
        .await;
        suite
    }

    /// The next line of the banner that starts with `prefix`.
    async fn banner_line(&mut self, prefix: &str) -> String {
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let line = self.output.recv().await.expect("the banner is printed");
                if line.starts_with(prefix) {
                    return line;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the banner has a line starting with {prefix:?}"))
    }

    /// The id printed on the "Demo tenant" line of the banner.
    async fn demo_tenant_id(&mut self) -> String {
        let line = self.banner_line("Demo tenant").await;
        line.split(", id ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .expect("an id on the demo tenant line")
            .to_owned()
    }

    /// Sends SIGTERM and waits for a clean exit (a test that fails before drops the suite,
    /// which kills it).
    async fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status = tokio::task::spawn_blocking(move || self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(
            status.success(),
            "formflow exited with {status} after SIGTERM"
        );
    }
}

/// A GET over HTTP/1.1; `None` when nothing listens yet.
async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, serde_json::Value)> {
    request(addr, "GET", path, headers, "").await
}

/// A request over HTTP/1.1 with a JSON body; `None` when nothing listens yet.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, serde_json::Value)> {
    let (status, _, body) = request_raw(addr, method, path, headers, body).await?;
    Some((
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    ))
}

/// A request over HTTP/1.1: the status, the response head and the body as text.
async fn request_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(name, _)| *name == "content-type") {
        request.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8(response).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head.to_owned(), body.to_owned()))
}

/// The demo owner's access token, logged in over REST with the password the suite wrote.
async fn demo_owner_token(gateway: SocketAddr, state_dir: &std::path::Path) -> String {
    let password = std::fs::read_to_string(state_dir.join("demo-owner-password")).unwrap();
    let login =
        serde_json::json!({"email": "owner@demo.formflow.test", "password": password.trim()});
    let (status, session) = request(
        gateway,
        "POST",
        "/api/v1/auth:login",
        &[("x-tenant-id", "demo")],
        &login.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{session}");
    session["tokens"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Creates `form` over REST with the caller's `auth` and publishes it by its slug: the
/// published form.
async fn create_and_publish(
    gateway: SocketAddr,
    auth: &[(&str, &str)],
    form: &serde_json::Value,
) -> serde_json::Value {
    let (status, created) = request(gateway, "POST", "/api/v1/forms", auth, &form.to_string())
        .await
        .unwrap();
    assert_eq!(status, 200, "{created}");
    // By slug, as people write it.
    let publish = format!(
        "/api/v1/forms/{}:publish",
        created["slug"].as_str().unwrap()
    );
    let (status, published) = request(gateway, "POST", &publish, auth, "{}")
        .await
        .unwrap();
    assert_eq!(status, 200, "{published}");
    published
}

#[tokio::test]
async fn the_suite_starts_serves_and_stops_cleanly() {
    let infra = TestInfra::new().await;
    let state_dir = std::env::temp_dir().join(format!("ff-e2e-{}", uuid::Uuid::new_v4()));

    // With a mail server: svc-notify emails users (their addresses read from svc-auth with
    // its service client) and sends svc-auth's invitations.
    let smtp = SmtpServer::start().await;
    let mail_env = [
        (
            "NOTIFY_SMTP_URL",
            format!("smtp://127.0.0.1:{}", smtp.port()),
        ),
        ("NOTIFY_APP_URL", "https://app.formflow.test/".to_owned()),
    ];
    let mut suite = Suite::start_with(&infra, &state_dir, &mail_env).await;
    let demo_tenant = suite.demo_tenant_id().await;

    let (status, ready) = get(suite.gateway, "/readyz?all", &[]).await.unwrap();
    assert_eq!(status, 200);
    for service in platform::suite::SERVICES {
        assert_eq!(ready["upstreams"][service.name], "serving", "{ready}");
    }
    let (status, health) = get(suite.gateway, "/healthz", &[]).await.unwrap();
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let (status, error) = get(
        suite.gateway,
        "/api/v1/no-such-thing",
        &[("x-request-id", "e2e-42")],
    )
    .await
    .unwrap();
    assert_eq!(status, 404);
    assert_eq!(error["error"]["code"], "NOT_FOUND");
    assert_eq!(error["error"]["request_id"], "e2e-42");
    assert!(error["error"]["details"].is_array());

    // The demo owner logs in over REST, as the banner says, and reads who they are.
    let token = &demo_owner_token(suite.gateway, &state_dir).await;
    let (status, me) = get(
        suite.gateway,
        "/api/v1/users/me",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["tenantId"], demo_tenant);
    assert_eq!(me["member"]["role"], "ROLE_OWNER");

    // svc-ai embeds with the model setup.sh installed, through the gateway.
    let bearer = format!("Bearer {token}");
    // A batch job over REST: accepted at once (202), done in the background.
    let job = serde_json::json!({
        "task": "BATCH_TASK_EMBED",
        "items": [{"id": "a", "text": "forgot my password"}, {"id": "b", "text": "reset my password"}],
    });
    let (status, queued) = request(
        suite.gateway,
        "POST",
        "/api/v1/batchJobs",
        &[("authorization", &bearer)],
        &job.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{queued}");
    let job_path = format!("/api/v1/{}", queued["name"].as_str().unwrap());
    let mut done = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, read) = get(suite.gateway, &job_path, &[("authorization", &bearer)])
            .await
            .unwrap();
        assert_eq!(status, 200, "{read}");
        if read["state"] == "BATCH_JOB_STATE_SUCCEEDED" {
            done = read;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(done["results"].as_array().map(Vec::len), Some(2), "{done}");
    // A label set, and a ticket classified against it over REST.
    let label_set = serde_json::json!({
        "displayName": "Support",
        "labels": [
            {"value": "billing", "description": "invoices, payments, charges and refunds"},
            {"value": "technical", "description": "errors, crashes and the website not working"},
        ],
    });
    let (status, created) = request(
        suite.gateway,
        "POST",
        "/api/v1/labelSets",
        &[("authorization", &bearer)],
        &label_set.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{created}");
    let support_set = created["name"].clone();
    let classify = serde_json::json!({
        "labelSet": created["name"],
        "texts": ["I was charged twice this month"],
    });
    let (status, classified) = request(
        suite.gateway,
        "POST",
        "/api/v1/ai:classify",
        &[("authorization", &bearer)],
        &classify.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{classified}");
    let result = &classified["classifications"][0];
    assert_eq!(result["labels"]["topLabel"], "billing", "{classified}");
    let (status, stored) = get(
        suite.gateway,
        &format!("/api/v1/{}", result["name"].as_str().unwrap()),
        &[("authorization", &bearer)],
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["labels"]["topLabel"], "billing");
    let embed = serde_json::json!({"texts": ["forgot my password", "reset my password"]});
    let (status, embedded) = request(
        suite.gateway,
        "POST",
        "/api/v1/ai:embed",
        &[("authorization", &bearer)],
        &embed.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{embedded}");
    assert_eq!(embedded["model"], "models/all-minilm-l6-v2");
    let vectors = embedded["embeddings"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0]["values"].as_array().unwrap().len(), 384);
    let (status, error) = request(
        suite.gateway,
        "POST",
        "/api/v1/ai:embed",
        &[("authorization", &bearer)],
        r#"{"texts": []}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 400, "{error}");
    let violation = &error["error"]["details"][0]["fieldViolations"][0];
    assert_eq!(violation["field"], "texts", "{error}");
    let (status, models) = get(
        suite.gateway,
        "/api/v1/models",
        &[("authorization", &bearer)],
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{models}");
    assert_eq!(models["models"][0]["defaultFor"][0], "MODEL_TASK_EMBEDDING");

    // A form that asks for analysis: svc-ai classifies and embeds each submission's text from
    // `forms.submission.created`, and a similar-submission search finds it.
    let auth = [("authorization", bearer.as_str())];
    let support = serde_json::json!({
        "title": "Support request",
        "fields": [{"id": "issue", "type": "FIELD_TYPE_TEXTAREA", "label": "Your issue", "required": true}],
        "settings": {"publicSubmissions": true, "analysis": {"enabled": true}},
    });
    let support = create_and_publish(suite.gateway, &auth, &support).await;
    assert_eq!(
        support["settings"]["analysis"]["enabled"], true,
        "{support}"
    );
    let (status, submitted) = request(
        suite.gateway,
        "POST",
        &format!("/api/v1/{}/submissions", support["name"].as_str().unwrap()),
        &[("x-tenant-id", "demo")],
        r#"{"data": {"issue": "I was charged twice for my subscription this month"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{submitted}");
    let analysis_path = format!(
        "/api/v1/submissionAnalyses/{}",
        submitted["id"].as_str().unwrap()
    );
    let mut analysis = serde_json::Value::Null;
    for _ in 0..300 {
        let (status, read) = get(suite.gateway, &analysis_path, &auth).await.unwrap();
        if status == 200 {
            analysis = read;
            break;
        }
        assert_eq!(status, 404, "{read}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(analysis["submission"], submitted["name"], "{analysis}");
    assert_eq!(
        analysis["classification"]["ticket"]["category"]["label"], "billing",
        "{analysis}"
    );
    let (status, similar) = request(
        suite.gateway,
        "POST",
        "/api/v1/submissionAnalyses:searchSimilar",
        &auth,
        r#"{"text": "a double charge on my bill"}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{similar}");
    assert_eq!(similar["scanned"], 1, "{similar}");
    assert_eq!(
        similar["results"][0]["analysis"]["submission"], submitted["name"],
        "{similar}"
    );

    // A workflow over REST: JSON names, durations as strings, configs as JSON; a bad definition
    // is refused with every problem at its path.
    let workflow = serde_json::json!({
        "displayName": "Greeter",
        "definition": {
            "nodes": [
                {"id": "start", "type": "trigger.manual", "config": {}},
                {"id": "greet", "type": "transform.map", "config": {"output": {"hi": "{{ name }}"}},
                 "retry": {"maxAttempts": 5, "initialBackoff": "0.5s"}, "timeout": "10s"},
            ],
            "edges": [{"from": "start", "to": "greet"}],
        },
    });
    let (status, created) = request(
        suite.gateway,
        "POST",
        "/api/v1/workflows",
        &[("authorization", &bearer)],
        &workflow.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["state"], "WORKFLOW_STATE_INACTIVE");
    let greet = &created["definition"]["nodes"][1];
    assert_eq!(greet["retry"]["initialBackoff"], "0.500s", "{greet}");
    assert_eq!(greet["retry"]["maxBackoff"], "60s", "{greet}");
    assert_eq!(greet["timeout"], "10s", "{greet}");
    let refused = serde_json::json!({
        "displayName": "Loop",
        "definition": {
            "nodes": [{"id": "a", "type": "transform.map", "config": {"output": 1}}],
            "edges": [{"from": "a", "to": "a"}],
        },
    });
    let (status, error) = request(
        suite.gateway,
        "POST",
        "/api/v1/workflows",
        &[("authorization", &bearer)],
        &refused.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 400, "{error}");
    let fields: Vec<&str> = error["error"]["details"][0]["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|violation| violation["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "workflow.definition.nodes",
            "workflow.definition.edges[0]",
            "workflow.definition.nodes[0]"
        ],
        "{error}"
    );

    // A form made and published over REST takes anonymous submissions through the gateway;
    // a retry with the same Idempotency-Key answers the same submission, other answers under
    // that key are 422.
    let form = serde_json::json!({
        "title": "Contact us",
        "fields": [{"id": "email", "type": "FIELD_TYPE_EMAIL", "label": "Email", "required": true}],
        "settings": {"public_submissions": true},
    });
    let auth = [("authorization", bearer.as_str())];
    let form = create_and_publish(suite.gateway, &auth, &form).await;
    assert_eq!(form["slug"], "contact-us");
    assert_eq!(form["publishedVersion"], 1);
    let submissions = format!("/api/v1/{}/submissions", form["name"].as_str().unwrap());
    // A workflow listening to the form: every submission runs it.
    let listener = serde_json::json!({
        "displayName": "Contact follow-up",
        "definition": {
            "nodes": [
                {"id": "submitted", "type": "trigger.form", "config": {"form": form["name"]}},
                {"id": "reply", "type": "transform.map", "config": {"output": {"to": "{{ answers.email }}"}}},
            ],
            "edges": [{"from": "submitted", "to": "reply"}],
        },
    });
    let (status, listener) = request(
        suite.gateway,
        "POST",
        "/api/v1/workflows",
        &auth,
        &listener.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{listener}");
    let listener_name = listener["name"].as_str().unwrap();
    let (status, activated) = request(
        suite.gateway,
        "POST",
        &format!("/api/v1/{listener_name}:activate"),
        &auth,
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{activated}");
    let anonymous = |key: &'static str| [("x-tenant-id", "demo"), ("idempotency-key", key)];
    let answer = r#"{"data": {"email": "ada@example.org"}}"#;
    let (status, first) = request(
        suite.gateway,
        "POST",
        &submissions,
        &anonymous("e2e-1"),
        answer,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{first}");
    let (status, retried) = request(
        suite.gateway,
        "POST",
        &submissions,
        &anonymous("e2e-1"),
        answer,
    )
    .await
    .unwrap();
    assert_eq!((status, &retried["id"]), (200, &first["id"]));
    let (status, error) = request(
        suite.gateway,
        "POST",
        &submissions,
        &anonymous("e2e-1"),
        r#"{"data": {"email": "bob@example.org"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(error["error"]["reason"], "IDEMPOTENCY_KEY_REUSED");
    let (status, error) = request(
        suite.gateway,
        "POST",
        &submissions,
        &anonymous("e2e-2"),
        r#"{"data": {"email": "nope"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 400, "{error}");
    let violation = &error["error"]["details"][0]["fieldViolations"][0];
    assert_eq!(violation["field"], "submission.data.email", "{error}");
    let (status, listed) = get(suite.gateway, &submissions, &auth).await.unwrap();
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["submissions"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    // The export arrives as one CSV download.
    let (status, head, csv) = request_raw(
        suite.gateway,
        "GET",
        &format!("{submissions}:export?format=EXPORT_FORMAT_CSV"),
        &auth,
        "",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{head}{csv}");
    assert!(
        head.to_lowercase().contains("content-type: text/csv"),
        "{head}"
    );
    assert!(csv.contains("id,create_time,form_version,email"), "{csv}");
    assert!(csv.contains("ada@example.org"), "{csv}");

    // The submission ran the listening workflow once (svc-forms' event, through RabbitMQ).
    let executions = format!("/api/v1/{listener_name}/executions");
    let mut ran = serde_json::Value::Null;
    for _ in 0..200 {
        let (status, listed) = get(suite.gateway, &executions, &auth).await.unwrap();
        assert_eq!(status, 200, "{listed}");
        if listed["executions"][0]["state"] == "EXECUTION_STATE_SUCCEEDED" {
            ran = listed;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ran["executions"].as_array().map(Vec::len), Some(1), "{ran}");
    assert_eq!(ran["executions"][0]["triggerKind"], "TRIGGER_KIND_FORM");
    let (status, execution) = get(
        suite.gateway,
        &format!("/api/v1/{}", ran["executions"][0]["name"].as_str().unwrap()),
        &auth,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{execution}");
    assert_eq!(
        execution["output"],
        serde_json::json!({"to": "ada@example.org"})
    );

    // A manual run answers 202; its nodes are all pure, so it ran at once and the answer is
    // the succeeded execution.
    let (status, ran) = request(
        suite.gateway,
        "POST",
        &format!("/api/v1/{}:run", created["name"].as_str().unwrap()),
        &auth,
        r#"{"input": {"name": "Ada"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{ran}");
    assert_eq!(ran["state"], "EXECUTION_STATE_SUCCEEDED");
    // Its progress as Server-Sent Events: for an ended execution, its node runs and then the
    // execution, and the stream ends.
    let (status, head, events) = request_raw(
        suite.gateway,
        "GET",
        &format!("/api/v1/{}:stream", ran["name"].as_str().unwrap()),
        &auth,
        "",
    )
    .await
    .expect("the stream ends with the execution");
    assert_eq!(status, 200, "{head}\n{events}");
    assert!(head.contains("text/event-stream"), "{head}");
    let updates: Vec<serde_json::Value> = events
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert!(
        updates
            .iter()
            .any(|update| update["nodeExecution"]["nodeId"] == "greet"),
        "{events}"
    );
    assert_eq!(
        updates.last().map(|update| &update["execution"]["state"]),
        Some(&serde_json::json!("EXECUTION_STATE_SUCCEEDED")),
        "{events}"
    );

    // A workflow node classifies with svc-ai (svc-workflow's service token from svc-auth).
    let classifier = serde_json::json!({
        "displayName": "Classifier",
        "definition": {
            "nodes": [
                {"id": "start", "type": "trigger.manual", "config": {}},
                {"id": "classify", "type": "action.ai_classify",
                 "config": {"text": "{{ text }}", "label_set": support_set}},
            ],
            "edges": [{"from": "start", "to": "classify"}],
        },
    });
    let (status, classifier) = request(
        suite.gateway,
        "POST",
        "/api/v1/workflows",
        &auth,
        &classifier.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{classifier}");
    let (status, queued) = request(
        suite.gateway,
        "POST",
        &format!("/api/v1/{}:run", classifier["name"].as_str().unwrap()),
        &auth,
        r#"{"input": {"text": "Please refund the duplicate charge on my invoice"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{queued}");
    let execution_path = format!("/api/v1/{}", queued["name"].as_str().unwrap());
    let mut classified = serde_json::Value::Null;
    for _ in 0..300 {
        let (status, read) = get(suite.gateway, &execution_path, &auth).await.unwrap();
        assert_eq!(status, 200, "{read}");
        if read["state"] != "EXECUTION_STATE_QUEUED" && read["state"] != "EXECUTION_STATE_RUNNING" {
            classified = read;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        classified["state"], "EXECUTION_STATE_SUCCEEDED",
        "{classified}"
    );
    assert_eq!(classified["output"]["label"], "billing", "{classified}");

    // The owner notifies themself in-app over REST (202): the message arrives in their inbox
    // and is marked read, all through the gateway.
    let (status, sent) = request(
        suite.gateway,
        "POST",
        "/api/v1/notifications:send",
        &auth,
        &serde_json::json!({
            "recipients": [{"user": me["user"]["name"]}],
            "topic": "e2e.hello",
            "content": {"subject": "Hello {{ name }}", "body": "From the e2e suite"},
            "data": {"name": "Ada"},
        })
        .to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["notification"]["subject"], "Hello Ada", "{sent}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let message = loop {
        let (status, inbox) = get(suite.gateway, "/api/v1/inboxMessages", &auth)
            .await
            .unwrap();
        assert_eq!(status, 200, "{inbox}");
        if let Some(message) = inbox["messages"].as_array().and_then(|all| all.first()) {
            assert_eq!(inbox["unreadCount"], 1, "{inbox}");
            break message.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no inbox message: {inbox}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(message["title"], "Hello Ada", "{message}");
    let (status, read) = request(
        suite.gateway,
        "POST",
        &format!("/api/v1/{}:markRead", message["name"].as_str().unwrap()),
        &auth,
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["read"], true, "{read}");
    // The same send emailed them too (no channels named: in-app and email), at their address.
    let mails = smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails[0].to, ["owner@demo.formflow.test"]);
    assert_eq!(mails[0].subject, "Hello Ada");

    // An invitation is emailed with its link, whose token accepts it over REST.
    let (status, invitation) = request(
        suite.gateway,
        "POST",
        "/api/v1/invitations",
        &auth,
        &serde_json::json!({"email": "grace@example.com", "role": "ROLE_MEMBER"}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{invitation}");
    let mails = smtp.wait_for(2, Duration::from_secs(20)).await;
    let invited = mails
        .iter()
        .find(|mail| mail.to == ["grace@example.com"])
        .expect("the invitation email");
    let text = invited.text.as_deref().unwrap();
    let token = text
        .split_whitespace()
        .find_map(|word| {
            word.strip_prefix("https://app.formflow.test/invitations/accept?tenant=demo&token=")
        })
        .unwrap_or_else(|| panic!("no acceptance link in {text}"));
    let (status, accepted) = request(
        suite.gateway,
        "POST",
        "/api/v1/invitations:accept",
        &[("x-tenant-id", "demo")],
        &serde_json::json!({
            "token": token,
            "displayName": "Grace Hopper",
            "password": "correct horse battery staple",
        })
        .to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{accepted}");

    // A signed webhook through the gateway: the published path names the tenant, the raw
    // body and the Standard Webhooks headers reach svc-workflow, a repeat is a duplicate.
    use base64::Engine as _;
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let (status, credential) = request(
        suite.gateway,
        "POST",
        "/api/v1/credentials",
        &auth,
        &serde_json::json!({"displayName": "Hook secret", "type": "CREDENTIAL_TYPE_WEBHOOK_SECRET", "value": {"secret": secret}}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{credential}");
    let hooked = serde_json::json!({
        "displayName": "Hooked",
        "definition": {
            "nodes": [
                {"id": "incoming", "type": "trigger.webhook", "config": {"credential": credential["name"]}},
                {"id": "record", "type": "transform.map", "config": {"output": {"order": "{{ order }}"}}},
            ],
            "edges": [{"from": "incoming", "to": "record"}],
        },
    });
    let (status, hooked) = request(
        suite.gateway,
        "POST",
        "/api/v1/workflows",
        &auth,
        &hooked.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{hooked}");
    let (status, hooked) = request(
        suite.gateway,
        "POST",
        &format!("/api/v1/{}:activate", hooked["name"].as_str().unwrap()),
        &auth,
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{hooked}");
    let path = hooked["webhooks"][0]["path"].as_str().unwrap().to_owned();
    assert!(path.starts_with("/t/"), "{path}");
    let body = r#"{"order": 42}"#;
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signature = standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .sign("delivery-1", timestamp, body.as_bytes())
        .unwrap();
    let timestamp = timestamp.to_string();
    let webhook_headers = [
        ("content-type", "application/json"),
        ("webhook-id", "delivery-1"),
        ("webhook-timestamp", timestamp.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    let (status, accepted) = request(suite.gateway, "POST", &path, &webhook_headers, body)
        .await
        .unwrap();
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["duplicate"], false, "{accepted}");
    let (status, repeated) = request(suite.gateway, "POST", &path, &webhook_headers, body)
        .await
        .unwrap();
    assert_eq!(
        (status, &repeated["executionId"]),
        (202, &accepted["executionId"])
    );
    assert_eq!(repeated["duplicate"], true, "{repeated}");
    let (status, refused) = request(
        suite.gateway,
        "POST",
        &path,
        &webhook_headers,
        r#"{"order": 43}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["error"]["reason"], "WEBHOOK_SIGNATURE_INVALID");

    // The hosted page, tenant in the path, posted as a browser without JavaScript would.
    let (status, head, page) = request_raw(suite.gateway, "GET", "/t/demo/f/contact-us", &[], "")
        .await
        .unwrap();
    assert_eq!(status, 200, "{head}{page}");
    assert!(
        head.to_lowercase().contains("content-type: text/html"),
        "{head}"
    );
    assert!(page.contains("<h1>Contact us</h1>"), "{page}");
    let marker = r#"name="_start_token" value=""#;
    let at = page.find(marker).unwrap() + marker.len();
    let token = &page[at..at + 36];
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (status, head, done) = request_raw(
        suite.gateway,
        "POST",
        "/t/demo/f/contact-us",
        &form,
        &format!("_start_token={token}&email=grace%40example.org&website="),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{head}{done}");
    assert!(done.contains("Your answers were recorded"), "{done}");
    let (_, listed) = get(suite.gateway, &submissions, &auth).await.unwrap();
    assert_eq!(
        listed["submissions"].as_array().unwrap().len(),
        2,
        "{listed}"
    );

    // A workflow node emails through svc-notify (svc-workflow's service token from svc-auth).
    let mailer = serde_json::json!({
        "displayName": "Mailer",
        "definition": {
            "nodes": [
                {"id": "start", "type": "trigger.manual", "config": {}},
                {"id": "mail", "type": "action.email",
                 "config": {"to": ["ops@example.org"], "subject": "E2E {{ n }}", "text": "Sent by a workflow"}},
            ],
            "edges": [{"from": "start", "to": "mail"}],
        },
    });
    let (status, mailer) = request(
        suite.gateway,
        "POST",
        "/api/v1/workflows",
        &auth,
        &mailer.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{mailer}");
    let (status, queued) = request(
        suite.gateway,
        "POST",
        &format!("/api/v1/{}:run", mailer["name"].as_str().unwrap()),
        &auth,
        r#"{"input": {"n": 7}}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{queued}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !smtp
        .messages()
        .iter()
        .any(|mail| mail.to == ["ops@example.org"] && mail.subject == "E2E 7")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the workflow's email never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    suite.terminate().await;

    // A second start over the same database finds the demo tenant instead of making another.
    let mut again = Suite::start(&infra, &state_dir).await;
    assert_eq!(again.demo_tenant_id().await, demo_tenant);
    again.terminate().await;
    let _ = std::fs::remove_dir_all(state_dir);
}

/// A headless Chromium driven over WebDriver by a chromedriver of its own.
struct Browser {
    client: fantoccini::Client,
    _driver: tokio::process::Child,
}

impl Browser {
    async fn start(javascript: bool) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new(
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned()),
        )
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting chromedriver (scripts/setup.sh installs Debian's chromium-driver)");
        let mut prefs = serde_json::Map::new();
        if !javascript {
            prefs.insert(
                "profile.managed_default_content_settings.javascript".into(),
                2.into(),
            );
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1000,1400"],
                "prefs": prefs,
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut attempts = 0;
        let client = loop {
            match fantoccini::ClientBuilder::native()
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                // chromedriver is still starting.
                Err(_) if attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("chromedriver did not start a session: {error}"),
            }
        };
        Browser {
            client,
            _driver: driver,
        }
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{css}: {error}"))
    }

    async fn shown(&self, css: &str) -> bool {
        self.find(css).await.is_displayed().await.unwrap()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Clicks Submit and waits for the next page.
    async fn submit(&self) {
        let button = self.find("button[type=submit]").await;
        button.click().await.unwrap();
        self.client
            .wait()
            .for_element(fantoccini::Locator::Css("[role=status], [role=alert]"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_hosted_form_page_works_in_chromium_with_and_without_javascript() {
    let infra = TestInfra::new().await;
    let state_dir = std::env::temp_dir().join(format!("ff-e2e-{}", uuid::Uuid::new_v4()));
    let mut suite = Suite::start(&infra, &state_dir).await;
    suite.demo_tenant_id().await;
    let token = demo_owner_token(suite.gateway, &state_dir).await;
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];

    // A support form: the details section shows only for support requests.
    let form = serde_json::json!({
        "title": "Help desk",
        "slug": "help",
        "fields": [
            {"id": "topic", "type": "FIELD_TYPE_RADIO", "label": "Topic", "required": true,
             "options": [{"value": "sales", "label": "Sales"}, {"value": "support", "label": "Support"}]},
            {"id": "email", "type": "FIELD_TYPE_EMAIL", "label": "Email", "required": true},
            {"id": "details", "type": "FIELD_TYPE_SECTION", "label": "Support details",
             "visible_when": {"field_id": "topic", "operator": "CONDITION_OPERATOR_EQUALS", "value": "support"}},
            {"id": "steps", "type": "FIELD_TYPE_TEXTAREA", "label": "What happened?", "required": true},
        ],
        "settings": {"public_submissions": true, "confirmation_message": "Ticket received."},
    });
    let created = create_and_publish(suite.gateway, &auth, &form).await;
    let page = format!("http://{}/t/demo/f/help", suite.gateway);
    let submissions = format!("/api/v1/{}/submissions", created["name"].as_str().unwrap());

    // With JavaScript: logic shows the section as the submitter answers.
    let browser = Browser::start(true).await;
    browser.client.goto(&page).await.unwrap();
    assert_eq!(browser.client.title().await.unwrap(), "Help desk");
    assert!(
        !browser.shown("#section-details").await,
        "hidden until support is chosen"
    );
    browser
        .find("input[name=topic][value=support]")
        .await
        .click()
        .await
        .unwrap();
    assert!(browser.shown("#section-details").await);
    browser.type_into("#input-email", "not an email").await;
    browser
        .type_into("#input-steps", "The export stopped")
        .await;
    // A person takes a moment: the start token refuses anything faster than 2 s.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    browser.submit().await;
    let error = browser.find("#error-email").await.text().await.unwrap();
    assert_eq!(error, "Must be an email address");
    assert!(
        browser.shown("#section-details").await,
        "the answers are kept"
    );
    browser.type_into("#input-email", "ada@example.org").await;
    browser.submit().await;
    let done = browser.find("[role=status]").await.text().await.unwrap();
    assert_eq!(done, "Ticket received.");
    browser.client.close().await.unwrap();

    // Without JavaScript: everything shows, and the server applies the logic.
    let browser = Browser::start(false).await;
    browser.client.goto(&page).await.unwrap();
    assert!(browser.shown("#section-details").await);
    browser
        .find("input[name=topic][value=sales]")
        .await
        .click()
        .await
        .unwrap();
    browser.type_into("#input-email", "grace@example.org").await;
    browser
        .type_into("#input-steps", "not asked for sales")
        .await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    browser.submit().await;
    let done = browser.find("[role=status]").await.text().await.unwrap();
    assert_eq!(done, "Ticket received.");
    browser.client.close().await.unwrap();

    // Both arrived, as the API shows them.
    let (status, listed) = get(
        suite.gateway,
        &format!("{submissions}?order_by=create_time"),
        &auth,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{listed}");
    let data: Vec<&serde_json::Value> = listed["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|submission| &submission["data"])
        .collect();
    assert_eq!(
        data,
        [
            &serde_json::json!({"topic": "support", "email": "ada@example.org", "steps": "The export stopped"}),
            &serde_json::json!({"topic": "sales", "email": "grace@example.org"}),
        ]
    );
    suite.terminate().await;
    let _ = std::fs::remove_dir_all(state_dir);
}

/// The hostile strings sent to every string field: a NUL character (which Postgres cannot
/// store) inside text and alone, and characters that trip careless code — a string longer
/// than a B-tree index row, quotes and SQL, direction overrides, emoji, a byte order mark,
/// paths and escapes.
fn hostile_strings() -> Vec<(&'static str, String)> {
    vec![
        ("NUL inside", "ab\u{0}cd".to_owned()),
        ("NUL alone", "\u{0}".to_owned()),
        ("3,000 two-byte characters", "é".repeat(3000)),
        (
            "quotes, SQL and odd characters",
            "'; DROP TABLE users; -- \"\\ \u{202e}😀\u{feff} ../../etc/passwd %00 ${x} {{x}} <script>"
                .to_owned(),
        ),
    ]
}

/// Every place a string goes in `message` (`tenant.settings`, `form.fields.label`), down to
/// `depth` nested messages: string fields, repeated strings, maps with string keys, and
/// `google.protobuf.Struct` (a JSON object).
fn string_leaves(message: &MessageDescriptor, prefix: &str, depth: usize) -> Vec<String> {
    let mut leaves = Vec::new();
    for field in message.fields() {
        let path = if prefix.is_empty() {
            field.name().to_owned()
        } else {
            format!("{prefix}.{}", field.name())
        };
        match field.kind() {
            Kind::String => leaves.push(path),
            Kind::Message(entry) if field.is_map() => {
                if matches!(entry.map_entry_key_field().kind(), Kind::String) {
                    leaves.push(path);
                }
            }
            Kind::Message(nested) if nested.full_name() == "google.protobuf.Struct" => {
                leaves.push(path);
            }
            Kind::Message(nested)
                if depth > 0 && !nested.full_name().starts_with("google.protobuf.") =>
            {
                leaves.extend(string_leaves(&nested, &path, depth - 1));
            }
            _ => {}
        }
    }
    leaves
}

/// A `message` with `hostile` in each of `leaves` (paths from [`string_leaves`]).
fn hostile_message(
    message: &MessageDescriptor,
    prefix: &str,
    leaves: &[String],
    hostile: &str,
) -> DynamicMessage {
    let mut built = DynamicMessage::new(message.clone());
    for field in message.fields() {
        let path = if prefix.is_empty() {
            field.name().to_owned()
        } else {
            format!("{prefix}.{}", field.name())
        };
        let chosen = leaves.contains(&path);
        let inside = leaves
            .iter()
            .any(|leaf| leaf.starts_with(&format!("{path}.")));
        let text = || Value::String(hostile.to_owned());
        let value = match field.kind() {
            Kind::String if chosen => text(),
            Kind::Message(entry) if chosen && field.is_map() => {
                let value = match entry.map_entry_value_field().kind() {
                    Kind::String => text(),
                    Kind::Message(value) => Value::Message(DynamicMessage::new(value)),
                    _ => entry.map_entry_value_field().default_value(),
                };
                Value::Map([(MapKey::String(hostile.to_owned()), value)].into())
            }
            Kind::Message(structure) if chosen => {
                // A google.protobuf.Struct: `{hostile: hostile}`.
                use proto::pbjson_types::{Struct, Value as JsonValue, value::Kind as JsonKind};
                use proto::prost::Message;
                let object = Struct {
                    fields: [(
                        hostile.to_owned(),
                        JsonValue {
                            kind: Some(JsonKind::StringValue(hostile.to_owned())),
                        },
                    )]
                    .into(),
                };
                Value::Message(
                    DynamicMessage::decode(structure, object.encode_to_vec().as_slice()).unwrap(),
                )
            }
            Kind::Message(nested) if inside => {
                Value::Message(hostile_message(&nested, &path, leaves, hostile))
            }
            _ => continue,
        };
        let value = match value {
            Value::String(_) | Value::Message(_) if field.is_list() => Value::List(vec![value]),
            value => value,
        };
        built.set_field(&field, value);
    }
    built
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_openapi_document() {
    let infra = TestInfra::new().await;
    let state_dir = std::env::temp_dir().join(format!("ff-e2e-{}", uuid::Uuid::new_v4()));
    let suite = Suite::start(&infra, &state_dir).await;
    let token = demo_owner_token(suite.gateway, &state_dir).await;
    let schemathesis = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/formflow/venv/bin/schemathesis",
            std::env::var("HOME").unwrap()
        )
    });
    let report = state_dir.join("schemathesis");
    // The examples and coverage phases, bounded in time and seeded, as the demo owner; not
    // the RPCs that end the session or take the demo tenant away. Under the tenant's rate
    // limit, so that answers are the API's, not 429s.
    let output = tokio::process::Command::new(&schemathesis)
        .arg("run")
        .arg(format!("http://{}/openapi.json", suite.gateway))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--header", "x-tenant-id: demo"])
        .args(["--phases", "examples,coverage"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args([
            "--exclude-path-regex",
            "logout|changePassword|signingKeys|totp|suspend|^/api/v1/tenants/",
        ])
        .args(["--max-time", "90", "--seed", "20261205", "--workers", "1"])
        // Longer than the gateway's own bound on a request (30 s, then it answers 504): a slow
        // answer under the parallel suite's load (a label set copied from the defaults embeds
        // every example) is the gateway's to time out, not a network error.
        .args(["--request-timeout", "35"])
        .args(["--rate-limit", "40/s", "--no-color"])
        .arg("--report-dir")
        .arg(&report)
        // It keeps a cache of what it found in its working directory.
        .current_dir(&state_dir)
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!("cannot run {schemathesis} ({error}); run scripts/setup.sh --infra-only")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Tested:"), "{stdout}");
    suite.terminate().await;
    std::fs::remove_dir_all(&state_dir).ok();
}

/// What an RPC answered to one hostile request: its status code, or OK.
async fn call_hostile(
    channel: &tonic::transport::Channel,
    method: &MethodDescriptor,
    request: DynamicMessage,
    token: &str,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path).unwrap();
    let mut request = tonic::Request::new(request);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request.set_timeout(Duration::from_secs(30));
    // The answer's content does not matter: Empty skips every field of it.
    let codec = tonic_prost::ProstCodec::<DynamicMessage, proto::pbjson_types::Empty>::default();
    if method.is_server_streaming() {
        let mut stream = grpc
            .server_streaming(request, path, codec)
            .await?
            .into_inner();
        stream.message().await?;
    } else {
        grpc.unary(request, path, codec).await?;
    }
    Ok(())
}

#[tokio::test]
async fn hostile_strings_in_every_field_of_every_rpc_never_cause_a_server_error() {
    use tonic::Code;

    let infra = TestInfra::new().await;
    let state_dir = std::env::temp_dir().join(format!("ff-e2e-{}", uuid::Uuid::new_v4()));
    let mut suite = Suite::start(&infra, &state_dir).await;
    let mut channels = Vec::new();
    for service in platform::suite::SERVICES {
        let line = suite.banner_line(&format!("  {:<13} ", service.name)).await;
        let addr = line
            .split_whitespace()
            .nth(1)
            .expect("an address")
            .to_owned();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap_or_else(|error| panic!("connecting to {}: {error}", service.name));
        channels.push((service.package, channel));
    }
    let token = demo_owner_token(suite.gateway, &state_dir).await;
    let pool = DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).unwrap();

    let mut calls = 0;
    let mut failures = Vec::new();
    for service in pool.services() {
        let channel = &channels
            .iter()
            .find(|(package, _)| *package == service.package_name())
            .unwrap_or_else(|| panic!("{} is served by no service", service.full_name()))
            .1;
        for method in service.methods() {
            let leaves = string_leaves(&method.input(), "", 3);
            // All of them at once: the codec and every service's validation see each string.
            let selections = [leaves.clone()];
            if leaves.is_empty() {
                continue;
            }
            for (what, hostile) in hostile_strings() {
                for selection in &selections {
                    let request = hostile_message(&method.input(), "", selection, &hostile);
                    let answer = call_hostile(channel, &method, request, &token).await;
                    calls += 1;
                    let code = answer.as_ref().err().map_or(Code::Ok, tonic::Status::code);
                    let refused_nul = !what.starts_with("NUL") || code == Code::InvalidArgument;
                    let server_error = matches!(
                        code,
                        Code::Internal
                            | Code::Unknown
                            | Code::DataLoss
                            | Code::Unavailable
                            | Code::DeadlineExceeded
                    );
                    if server_error || !refused_nul {
                        failures.push(format!(
                            "{}/{} with {what} in {selection:?}: {answer:?}",
                            service.name(),
                            method.name()
                        ));
                    }
                }
            }
        }
    }
    assert!(calls > 300, "only {calls} calls");

    // An RPC answers UNIMPLEMENTED exactly when its proto marks it unbuilt (the mark the
    // gateway's OpenAPI document follows), naming itself.
    let mut wrong_marks = Vec::new();
    let mut token = token.clone();
    for service in pool.services() {
        let channel = &channels
            .iter()
            .find(|(package, _)| *package == service.package_name())
            .unwrap()
            .1;
        for method in service.methods() {
            let request = DynamicMessage::new(method.input());
            let answer = call_hostile(channel, &method, request, &token).await;
            if method.name().starts_with("Logout") {
                // It ended the session of the token.
                token = demo_owner_token(suite.gateway, &state_dir).await;
            }
            let unimplemented = answer
                .as_ref()
                .is_err_and(|status| status.code() == Code::Unimplemented);
            // Read as the gateway reads it for its OpenAPI document.
            let marked = gateway::transcode::routes::policy_of(&method).0.unbuilt;
            let named = answer.as_ref().is_err_and(|status| {
                status.message()
                    == format!("{}.{} is not built yet", service.full_name(), method.name())
            });
            if unimplemented != marked || (marked && !named) {
                wrong_marks.push(format!(
                    "{}: marked unbuilt {marked}, answered {answer:?}",
                    method.full_name()
                ));
            }
        }
    }
    assert!(
        wrong_marks.is_empty(),
        "RPCs whose unbuilt mark is wrong:\n{}",
        wrong_marks.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {calls} hostile calls failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Through the gateway, the refusal names the field, as the shared error shape does.
    let auth = [("authorization", format!("Bearer {token}"))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let invitation = r#"{"email":"linus@example.com","role":"ROLE_MEMBER","message":"a\u0000b"}"#;
    let (status, error) = request(
        suite.gateway,
        "POST",
        "/api/v1/invitations",
        &auth,
        invitation,
    )
    .await
    .unwrap();
    assert_eq!(status, 400, "{error}");
    assert!(error.to_string().contains("invitation.message"), "{error}");
    let demo_tenant = suite.demo_tenant_id().await;
    let settings = r#"{"settings":{"the\u0000key":"the\u0000value"}}"#;
    let (status, error) = request(
        suite.gateway,
        "PATCH",
        &format!("/api/v1/tenants/{demo_tenant}?update_mask=settings"),
        &auth,
        settings,
    )
    .await
    .unwrap();
    assert_eq!(status, 400, "{error}");
    assert!(
        error
            .to_string()
            .contains("tenant.settings.the\\\\u0000key"),
        "{error}"
    );

    suite.terminate().await;
    let _ = std::fs::remove_dir_all(&state_dir);
}
