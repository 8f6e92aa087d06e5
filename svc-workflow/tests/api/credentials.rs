//! Credentials: sealed at rest, never returned or audited in clear, named by workflows only
//! when they exist and fit, and not deleted while an active workflow uses them.

use platform::context::{Role, TenantId};
use platform::crypto::Sealer;
use platform::db::Db;
use platform::testing::{error_reason, expect_code, violated_fields};
use proto::formflow::workflow::v1 as wire;
use secrecy::SecretString;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, credential, definition, edge, mask, node, webhook_secret, workflow};

#[tokio::test]
async fn values_are_sealed_at_rest_and_never_returned_or_audited() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let token = "tok_live_9f8e7d6c5b4a";
    let created = app
        .credential(
            tenant,
            "Billing API",
            wire::CredentialType::BearerToken,
            json!({"token": token}),
        )
        .await;
    assert_eq!(created.name, format!("credentials/{}", created.id));
    assert_eq!(created.r#type, wire::CredentialType::BearerToken as i32);
    assert!(created.value.is_none());
    let read = app
        .member(tenant)
        .get_credential(wire::GetCredentialRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created);
    let listed = app
        .member(tenant)
        .list_credentials(wire::ListCredentialsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.credentials, std::slice::from_ref(&created));

    // In the database: only the sealed value, which opens with the service's key for this
    // credential only; the audit trail names the credential, never its value.
    let db = Db::connect(&app.infra.db, &svc_workflow::app::SCHEMA)
        .await
        .unwrap();
    let mut transaction = db.tenant_tx(tenant).await.unwrap();
    let id = uuid::Uuid::parse_str(&created.id).unwrap();
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT sealed_value FROM workflow.credentials WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *transaction)
            .await
            .unwrap();
    let everything: String = sqlx::query_scalar(
        "SELECT concat((SELECT string_agg(c::text, '') FROM workflow.credentials c), \
                       (SELECT string_agg(a::text, '') FROM workflow.audit_log a))",
    )
    .fetch_one(&mut *transaction)
    .await
    .unwrap();
    transaction.rollback().await.unwrap();
    assert!(!everything.contains(token) && !everything.contains(&hex(token.as_bytes())));
    assert!(everything.contains("credential.create"));
    let sealer =
        Sealer::from_config("TEST", &SecretString::from(app.encryption_keys.clone())).unwrap();
    let opened = sealer
        .open(
            &format!("workflow-credential:{tenant}:{}", created.id),
            &sealed,
        )
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&opened).unwrap(),
        json!({"token": token})
    );
    assert!(
        sealer
            .open(
                &format!("workflow-credential:{tenant}:{}", uuid::Uuid::now_v7()),
                &sealed
            )
            .is_err()
    );

    // A value of the wrong shape is refused without being quoted.
    let refused = expect_code(
        app.admin(tenant)
            .create_credential(wire::CreateCredentialRequest {
                credential: Some(credential(
                    "Broken",
                    wire::CredentialType::Header,
                    json!({"header": "X-Api-Key", "value": "hunter2\n", "token": "hunter3"}),
                )),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&refused),
        ["credential.value.token", "credential.value.value"]
    );
    assert!(
        !refused.message().contains("hunter"),
        "{}",
        refused.message()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test]
async fn names_are_unique_per_tenant_and_values_rotate_in_place() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let first = app
        .credential(
            tenant,
            "Signing",
            wire::CredentialType::WebhookSecret,
            json!({"secret": webhook_secret()}),
        )
        .await;
    let other = app
        .credential(
            tenant,
            "Other",
            wire::CredentialType::Generic,
            json!({"anything": "goes"}),
        )
        .await;
    let taken = expect_code(
        app.admin(tenant)
            .create_credential(wire::CreateCredentialRequest {
                credential: Some(credential(
                    "Signing",
                    wire::CredentialType::Generic,
                    json!({"a": "b"}),
                )),
            })
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(error_reason(&taken), "CREDENTIAL_NAME_TAKEN");
    // The same name in another tenant is another credential.
    app.credential(
        TenantId::generate(),
        "Signing",
        wire::CredentialType::Generic,
        json!({"a": "b"}),
    )
    .await;

    let update = |credential: wire::Credential, paths: &[&str]| wire::UpdateCredentialRequest {
        credential: Some(credential),
        update_mask: mask(paths),
    };
    let renamed_to_taken = expect_code(
        app.admin(tenant)
            .update_credential(update(
                wire::Credential {
                    name: other.name.clone(),
                    display_name: "Signing".into(),
                    ..Default::default()
                },
                &["display_name"],
            ))
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(error_reason(&renamed_to_taken), "CREDENTIAL_NAME_TAKEN");

    let rotated = app
        .admin(tenant)
        .update_credential(update(
            wire::Credential {
                name: first.name.clone(),
                value: Some(crate::helpers::object(json!({"secret": webhook_secret()}))),
                etag: first.etag.clone(),
                ..Default::default()
            },
            &["value"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.etag, first.etag);
    assert_ne!(rotated.update_time, first.update_time);
    assert_eq!(rotated.display_name, "Signing");
    let stale = expect_code(
        app.admin(tenant)
            .update_credential(update(
                wire::Credential {
                    name: first.name.clone(),
                    display_name: "Late".into(),
                    etag: first.etag.clone(),
                    ..Default::default()
                },
                &["display_name"],
            ))
            .await,
        Code::Aborted,
    );
    assert_eq!(error_reason(&stale), "ETAG_MISMATCH");
    let wrong_shape = expect_code(
        app.admin(tenant)
            .update_credential(update(
                wire::Credential {
                    name: first.name.clone(),
                    value: Some(crate::helpers::object(
                        json!({"token": "not a webhook secret"}),
                    )),
                    ..Default::default()
                },
                &["value"],
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&wrong_shape),
        ["credential.value.token", "credential.value.secret"]
    );
    let retyped = expect_code(
        app.admin(tenant)
            .update_credential(update(
                wire::Credential {
                    name: first.name.clone(),
                    r#type: wire::CredentialType::Generic as i32,
                    ..Default::default()
                },
                &["type"],
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&retyped), ["update_mask"]);

    let by_type = app
        .member(tenant)
        .list_credentials(wire::ListCredentialsRequest {
            r#type: wire::CredentialType::Generic as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_type.credentials, [other]);
}

#[tokio::test]
async fn workflows_name_only_credentials_that_exist_and_fit_and_keep_them_while_active() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let secret = app
        .credential(
            tenant,
            "Signing",
            wire::CredentialType::WebhookSecret,
            json!({"secret": webhook_secret()}),
        )
        .await;
    let bearer = app
        .credential(
            tenant,
            "Token",
            wire::CredentialType::BearerToken,
            json!({"token": "t"}),
        )
        .await;
    let hooked = |hook_credential: &str, http_credential: &str| {
        definition(
            vec![
                node(
                    "incoming",
                    "trigger.webhook",
                    json!({"credential": hook_credential}),
                ),
                node(
                    "forward",
                    "action.http",
                    json!({"url": "https://example.com", "credential": http_credential}),
                ),
            ],
            vec![edge("incoming", "forward", "")],
        )
    };
    let missing = format!("credentials/{}", uuid::Uuid::now_v7());
    let refused = expect_code(
        app.member(tenant)
            .create_workflow(wire::CreateWorkflowRequest {
                workflow: Some(workflow("Misfit", hooked(&bearer.name, &missing))),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&refused),
        [
            "workflow.definition.nodes[0].config.credential",
            "workflow.definition.nodes[1].config.credential"
        ]
    );
    assert!(
        refused
            .message()
            .contains("is a BEARER_TOKEN credential, which a trigger.webhook node cannot use")
    );
    assert!(
        refused
            .message()
            .contains(&format!("{missing} does not exist"))
    );

    let created = app
        .create(
            tenant,
            workflow("Forwarder", hooked(&secret.name, &bearer.name)),
        )
        .await;
    app.member(tenant)
        .activate_workflow(wire::ActivateWorkflowRequest {
            name: created.name.clone(),
            version: 0,
        })
        .await
        .unwrap();
    let in_use = expect_code(
        app.admin(tenant)
            .delete_credential(wire::DeleteCredentialRequest {
                name: bearer.name.clone(),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&in_use), "CREDENTIAL_IN_USE");
    assert!(
        in_use.message().contains("Forwarder"),
        "{}",
        in_use.message()
    );

    app.member(tenant)
        .deactivate_workflow(wire::DeactivateWorkflowRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap();
    app.admin(tenant)
        .delete_credential(wire::DeleteCredentialRequest {
            name: bearer.name.clone(),
        })
        .await
        .unwrap();
    let gone = expect_code(
        app.member(tenant)
            .get_credential(wire::GetCredentialRequest {
                name: bearer.name.clone(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&gone), "CREDENTIAL_NOT_FOUND");
    let unusable = expect_code(
        app.member(tenant)
            .activate_workflow(wire::ActivateWorkflowRequest {
                name: created.name.clone(),
                version: 1,
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&unusable), "CREDENTIAL_UNUSABLE");
    assert!(
        unusable.message().contains("node forward of version 1"),
        "{}",
        unusable.message()
    );
}

#[tokio::test]
async fn roles_decide_who_reads_edits_and_manages_credentials() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let created = app
        .create(tenant, workflow("Shared", crate::helpers::manual_flow()))
        .await;
    let secret = app
        .credential(
            tenant,
            "Signing",
            wire::CredentialType::WebhookSecret,
            json!({"secret": webhook_secret()}),
        )
        .await;

    let mut viewer = app.user(tenant, Role::Viewer);
    viewer
        .get_workflow(wire::GetWorkflowRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap();
    viewer
        .list_workflow_versions(wire::ListWorkflowVersionsRequest {
            parent: created.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    for refused in [
        viewer
            .create_workflow(wire::CreateWorkflowRequest {
                workflow: Some(workflow("No", crate::helpers::manual_flow())),
            })
            .await
            .map(drop),
        viewer
            .activate_workflow(wire::ActivateWorkflowRequest {
                name: created.name.clone(),
                version: 0,
            })
            .await
            .map(drop),
        viewer
            .delete_workflow(wire::DeleteWorkflowRequest {
                name: created.name.clone(),
                etag: String::new(),
            })
            .await
            .map(drop),
        viewer
            .get_credential(wire::GetCredentialRequest {
                name: secret.name.clone(),
            })
            .await
            .map(drop),
    ] {
        let status = expect_code(refused, Code::PermissionDenied);
        assert_eq!(error_reason(&status), "PERMISSION_DENIED");
    }

    let mut member = app.member(tenant);
    member
        .get_credential(wire::GetCredentialRequest {
            name: secret.name.clone(),
        })
        .await
        .unwrap();
    for refused in [
        member
            .create_credential(wire::CreateCredentialRequest {
                credential: Some(credential(
                    "Mine",
                    wire::CredentialType::Generic,
                    json!({"a": "b"}),
                )),
            })
            .await
            .map(drop),
        member
            .update_credential(wire::UpdateCredentialRequest {
                credential: Some(wire::Credential {
                    name: secret.name.clone(),
                    display_name: "Taken over".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["display_name"]),
            })
            .await
            .map(drop),
        member
            .delete_credential(wire::DeleteCredentialRequest {
                name: secret.name.clone(),
            })
            .await
            .map(drop),
    ] {
        let status = expect_code(refused, Code::PermissionDenied);
        assert_eq!(error_reason(&status), "PERMISSION_DENIED");
    }
    app.user(tenant, Role::Owner)
        .delete_credential(wire::DeleteCredentialRequest {
            name: secret.name.clone(),
        })
        .await
        .unwrap();
}
