//! TriggerWebhook: requests signed by an independent Standard Webhooks implementation (the
//! `standardwebhooks` crate) start one execution each; wrong signatures, stale or future
//! timestamps, missing headers and bodies outside the payload schema are refused; a repeated
//! `webhook-id` answers the first execution; a rotated secret's old value is accepted during
//! the overlap; another tenant's webhook does not exist.

use platform::context::TenantId;
use platform::testing::{error_reason, expect_code, violated_fields};
use proto::formflow::workflow::v1 as wire;
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{
    Client, TestApp, definition, edge, json_of, mask, node, wait_for, webhook_secret, workflow,
};

/// A request to `webhook` with `body`, signed with `secret` at `timestamp` under `id`.
fn signed(
    webhook: &str,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &Value,
) -> tonic::Request<wire::TriggerWebhookRequest> {
    let bytes = body.to_string().into_bytes();
    let signature = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign(id, timestamp, &bytes)
        .unwrap();
    let mut request = tonic::Request::new(wire::TriggerWebhookRequest {
        webhook: webhook.to_owned(),
        body: Some(proto::google::api::HttpBody {
            content_type: "application/json".into(),
            data: bytes,
            extensions: Vec::new(),
        }),
    });
    let metadata = request.metadata_mut();
    metadata.insert("webhook-id", id.parse().unwrap());
    metadata.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
    metadata.insert("webhook-signature", signature.parse().unwrap());
    request
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

struct Hook {
    /// `workflows/{id}/webhooks/incoming`.
    webhook: String,
    credential: wire::Credential,
    secret: String,
}

/// An active workflow of `tenant` whose `incoming` webhook needs `{"ticket": {"id": string}}`.
async fn hook(app: &TestApp, tenant: TenantId) -> Hook {
    let secret = webhook_secret();
    let credential = app
        .credential(
            tenant,
            "Signing",
            wire::CredentialType::WebhookSecret,
            json!({"secret": secret}),
        )
        .await;
    let flow = definition(
        vec![
            node(
                "incoming",
                "trigger.webhook",
                json!({
                    "credential": credential.name,
                    "payload_schema": {
                        "type": "object",
                        "properties": {"ticket": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}},
                        "required": ["ticket"],
                    },
                }),
            ),
            node(
                "record",
                "transform.map",
                json!({"output": {"ticket": "{{ ticket.id }}"}}),
            ),
        ],
        vec![edge("incoming", "record", "")],
    );
    let created = app.create(tenant, workflow("Hooked", flow)).await;
    app.member(tenant)
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: created.name.clone(),
            version: 0,
        })
        .await
        .unwrap();
    Hook {
        webhook: format!("{}/webhooks/incoming", created.name),
        credential,
        secret,
    }
}

async fn count(client: &Client) -> usize {
    client
        .clone()
        .list_executions(wire::ListExecutionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .executions
        .len()
}

#[tokio::test]
async fn a_signed_request_starts_one_execution_per_webhook_id() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let hook = hook(&app, tenant).await;
    let anonymous = app.client(None, Some(tenant));
    let member = app.member(tenant);
    let body = json!({"ticket": {"id": "T-9"}});

    let first = anonymous
        .clone()
        .trigger_webhook(signed(&hook.webhook, &hook.secret, "msg_1", now(), &body))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    assert_eq!(
        first.execution,
        format!("executions/{}", first.execution_id)
    );
    let done = wait_for(&member, &first.execution, wire::ExecutionState::Succeeded).await;
    assert_eq!(json_of(done.output.as_ref()), json!({"ticket": "T-9"}));
    assert_eq!(done.trigger_kind(), wire::TriggerKind::Webhook);
    assert_eq!(
        (done.trigger_node.as_str(), done.trigger_ref.as_str()),
        ("incoming", "msg_1")
    );

    // The sender retries the same message (a new timestamp, signed again): nothing new runs.
    let again = anonymous
        .clone()
        .trigger_webhook(signed(&hook.webhook, &hook.secret, "msg_1", now(), &body))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.execution_id, first.execution_id);
    assert_eq!(count(&member).await, 1);
}

#[tokio::test]
async fn unsigned_wrongly_signed_stale_and_malformed_requests_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let hook = hook(&app, tenant).await;
    let anonymous = app.client(None, Some(tenant));
    let body = json!({"ticket": {"id": "T-1"}});
    let refused = |request| {
        let mut client = anonymous.clone();
        async move { client.trigger_webhook(request).await }
    };

    let wrong = refused(signed(
        &hook.webhook,
        &webhook_secret(),
        "msg_a",
        now(),
        &body,
    ))
    .await;
    assert_eq!(
        error_reason(&expect_code(wrong, Code::Unauthenticated)),
        "WEBHOOK_SIGNATURE_INVALID"
    );
    let stale = refused(signed(
        &hook.webhook,
        &hook.secret,
        "msg_b",
        now() - 301,
        &body,
    ))
    .await;
    assert_eq!(
        error_reason(&expect_code(stale, Code::Unauthenticated)),
        "WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE"
    );
    let future = refused(signed(
        &hook.webhook,
        &hook.secret,
        "msg_c",
        // Past the 300 s tolerance by more than the time the call takes (the server's clock
        // reads later than `now()`, which brings a future timestamp closer).
        now() + 330,
        &body,
    ))
    .await;
    expect_code(future, Code::Unauthenticated);
    let mut unsigned = signed(&hook.webhook, &hook.secret, "msg_d", now(), &body);
    unsigned.metadata_mut().remove("webhook-signature");
    let unsigned = refused(unsigned).await;
    assert_eq!(
        error_reason(&expect_code(unsigned, Code::Unauthenticated)),
        "WEBHOOK_HEADERS_INVALID"
    );
    // A body changed after signing.
    let mut tampered = signed(&hook.webhook, &hook.secret, "msg_e", now(), &body);
    tampered.get_mut().body.as_mut().unwrap().data =
        json!({"ticket": {"id": "T-2"}}).to_string().into_bytes();
    expect_code(refused(tampered).await, Code::Unauthenticated);
    // Signed, but outside the payload schema.
    let outside = refused(signed(
        &hook.webhook,
        &hook.secret,
        "msg_f",
        now(),
        &json!({"ticket": {}}),
    ))
    .await;
    assert_eq!(
        violated_fields(&expect_code(outside, Code::InvalidArgument)),
        ["body.ticket"]
    );
    // Unknown nodes, inactive workflows and bad names.
    let unknown = format!(
        "{}/webhooks/nope",
        hook.webhook.rsplit_once("/webhooks/").unwrap().0
    );
    let missing = refused(signed(&unknown, &hook.secret, "msg_g", now(), &body)).await;
    assert_eq!(
        error_reason(&expect_code(missing, Code::NotFound)),
        "WEBHOOK_NOT_FOUND"
    );
    let bad = refused(signed("workflows/x", &hook.secret, "msg_h", now(), &body)).await;
    assert_eq!(
        violated_fields(&expect_code(bad, Code::InvalidArgument)),
        ["webhook"]
    );
    assert_eq!(count(&app.member(tenant)).await, 0, "nothing ran");
}

#[tokio::test]
async fn the_old_secret_is_accepted_while_a_rotation_overlaps() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let hook = hook(&app, tenant).await;
    let anonymous = app.client(None, Some(tenant));
    let rotated = webhook_secret();
    app.admin(tenant)
        .update_credential(wire::UpdateCredentialRequest {
            credential: Some(wire::Credential {
                name: hook.credential.name.clone(),
                value: Some(crate::helpers::object(json!({"secret": rotated}))),
                ..Default::default()
            }),
            update_mask: mask(&["value"]),
        })
        .await
        .unwrap();
    let body = json!({"ticket": {"id": "T-3"}});
    for (id, secret) in [("by-new", &rotated), ("by-old", &hook.secret)] {
        let accepted = anonymous
            .clone()
            .trigger_webhook(signed(&hook.webhook, secret, id, now(), &body))
            .await;
        assert!(accepted.is_ok(), "{id}: {accepted:?}");
    }
    let stranger = anonymous
        .clone()
        .trigger_webhook(signed(
            &hook.webhook,
            &webhook_secret(),
            "by-stranger",
            now(),
            &body,
        ))
        .await;
    expect_code(stranger, Code::Unauthenticated);
}

#[tokio::test]
async fn another_tenants_webhook_does_not_exist() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (TenantId::generate(), TenantId::generate());
    let hook = hook(&app, acme).await;
    let body = json!({"ticket": {"id": "T-4"}});
    let routed_elsewhere = app
        .client(None, Some(globex))
        .trigger_webhook(signed(&hook.webhook, &hook.secret, "msg_x", now(), &body))
        .await;
    assert_eq!(
        error_reason(&expect_code(routed_elsewhere, Code::NotFound)),
        "WEBHOOK_NOT_FOUND"
    );
    let unrouted = app
        .client(None, None)
        .trigger_webhook(signed(&hook.webhook, &hook.secret, "msg_y", now(), &body))
        .await;
    assert!(unrouted.is_err());
    assert_eq!(count(&app.member(acme)).await, 0);
}
