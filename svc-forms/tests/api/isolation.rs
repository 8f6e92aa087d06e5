//! Tenants: another tenant's forms, versions and submissions are NOT_FOUND on every RPC,
//! whatever the caller's role, by id or by slug; a token never acts in another tenant; rows
//! are out of reach even to SQL that forgets the tenant. And who may do what within a tenant.

use std::time::Duration;

use platform::auth::RevokedSessions;
use platform::context::{Role, TenantId};
use platform::db::Db;
use platform::testing::{CallMetadata, error_metadata, error_reason, expect_code};
use proto::formflow::forms::v1 as wire;
use proto::formflow::forms::v1::FieldType;
use serde_json::json;
use tonic::{Code, Status};

use crate::helpers::{Client, TestApp, field, public_form, submit_request};

/// Calls every RPC that names a form on `form` (a resource name, `forms/{id or slug}`), on
/// its version 1 and on its submission `submission_id`; each RPC's name and outcome.
async fn every_rpc_on(
    client: &Client,
    form: &str,
    submission_id: &str,
) -> Vec<(&'static str, Result<(), Status>)> {
    let mut client = client.clone();
    let version = format!("{form}/versions/1");
    let submission = format!("{form}/submissions/{submission_id}");
    let mut outcomes = submitter_rpcs_on(&client, form).await;
    outcomes.extend([
        (
            "GetForm",
            client
                .get_form(wire::GetFormRequest { name: form.into() })
                .await
                .map(drop),
        ),
        (
            "UpdateForm",
            client
                .update_form(wire::UpdateFormRequest {
                    form: Some(wire::Form {
                        name: form.into(),
                        title: "Hijacked".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(pbjson_types::FieldMask {
                        paths: vec!["title".into()],
                    }),
                })
                .await
                .map(drop),
        ),
        (
            "PublishForm",
            client
                .publish_form(wire::PublishFormRequest {
                    name: form.into(),
                    etag: String::new(),
                })
                .await
                .map(drop),
        ),
        (
            "ArchiveForm",
            client
                .archive_form(wire::ArchiveFormRequest { name: form.into() })
                .await
                .map(drop),
        ),
        (
            "UnarchiveForm",
            client
                .unarchive_form(wire::UnarchiveFormRequest { name: form.into() })
                .await
                .map(drop),
        ),
        (
            "ListFormVersions",
            client
                .list_form_versions(wire::ListFormVersionsRequest {
                    parent: form.into(),
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
        (
            "GetFormVersion",
            client
                .get_form_version(wire::GetFormVersionRequest {
                    name: version.clone(),
                })
                .await
                .map(drop),
        ),
        (
            "GetFormVersionJsonSchema",
            client
                .get_form_version_json_schema(wire::GetFormVersionJsonSchemaRequest {
                    name: version,
                })
                .await
                .map(drop),
        ),
        (
            "ListSubmissions",
            client
                .list_submissions(wire::ListSubmissionsRequest {
                    parent: form.into(),
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
        (
            "GetSubmission",
            client
                .get_submission(wire::GetSubmissionRequest {
                    name: submission.clone(),
                })
                .await
                .map(drop),
        ),
        (
            "DeleteSubmission",
            client
                .delete_submission(wire::DeleteSubmissionRequest { name: submission })
                .await
                .map(drop),
        ),
    ]);
    outcomes
}

/// Calls the RPCs a submitter uses, GetPublishedForm and SubmitForm, on `form`.
async fn submitter_rpcs_on(client: &Client, form: &str) -> Vec<(&'static str, Result<(), Status>)> {
    let mut client = client.clone();
    vec![
        (
            "GetPublishedForm",
            client
                .get_published_form(wire::GetPublishedFormRequest { name: form.into() })
                .await
                .map(drop),
        ),
        (
            "SubmitForm",
            client
                .submit_form(submit_request(
                    &wire::Form {
                        name: form.into(),
                        ..Default::default()
                    },
                    json!({"message": "spam"}),
                ))
                .await
                .map(drop),
        ),
    ]
}

async fn get_form(mut client: Client, name: &str) -> wire::Form {
    client
        .get_form(wire::GetFormRequest { name: name.into() })
        .await
        .unwrap_or_else(|status| panic!("reading {name}: {status:?}"))
        .into_inner()
}

/// The outcomes that `expected` does not accept, described.
fn unexpected(
    outcomes: Vec<(&'static str, Result<(), Status>)>,
    expected: impl Fn(&Status) -> bool,
) -> Vec<String> {
    outcomes
        .into_iter()
        .filter_map(|(rpc, outcome)| match outcome {
            Err(status) if expected(&status) => None,
            other => Some(format!("{rpc}: {other:?}")),
        })
        .collect()
}

/// A NOT_FOUND with `reason` that reveals none of `secrets`.
fn not_found<'a>(reason: &'a str, secrets: &'a [&'a str]) -> impl Fn(&Status) -> bool + 'a {
    move |status| {
        status.code() == Code::NotFound
            && error_reason(status) == reason
            && secrets
                .iter()
                .all(|secret| !status.message().contains(secret))
    }
}

fn ids(forms: &[wire::Form]) -> Vec<String> {
    forms.iter().map(|form| form.id.clone()).collect()
}

#[tokio::test]
async fn another_tenants_forms_versions_and_submissions_are_not_found_on_every_rpc() {
    // Arrange: Acme has a published public form with a submission; Globex has its own.
    let app = TestApp::spawn().await;
    let (acme, globex) = (TenantId::generate(), TenantId::generate());
    let secret_title = "Acme secret contact";
    let acme_form = app
        .published(
            acme,
            public_form(secret_title, vec![field("message", FieldType::Text)]),
        )
        .await;
    let acme_submission = app
        .submit(acme, &acme_form, json!({"message": "confidential"}))
        .await
        .unwrap();
    let globex_form = app
        .published(
            globex,
            public_form("Globex survey", vec![field("message", FieldType::Text)]),
        )
        .await;
    let globex_submission = app
        .submit(globex, &globex_form, json!({"message": "hello"}))
        .await
        .unwrap();
    let owner = app.user(globex, Role::Owner);
    let by_slug = format!("forms/{}", acme_form.slug);

    // Act and assert: by id and by slug, every RPC answers FORM_NOT_FOUND.
    for (name, secrets) in [
        (&acme_form.name, vec![secret_title]),
        (&by_slug, vec![secret_title, acme_form.id.as_str()]),
    ] {
        let wrong = unexpected(
            every_rpc_on(&owner, name, &acme_submission.id).await,
            not_found("FORM_NOT_FOUND", &secrets),
        );
        assert!(
            wrong.is_empty(),
            "a Globex owner on {name}: expected FORM_NOT_FOUND, got\n{}",
            wrong.join("\n")
        );
    }
    // Acme's submission under Globex's own form is no submission of Globex.
    let mixed = format!("{}/submissions/{}", globex_form.name, acme_submission.id);
    let outcomes = vec![
        (
            "GetSubmission",
            owner
                .clone()
                .get_submission(wire::GetSubmissionRequest {
                    name: mixed.clone(),
                })
                .await
                .map(drop),
        ),
        (
            "DeleteSubmission",
            owner
                .clone()
                .delete_submission(wire::DeleteSubmissionRequest { name: mixed })
                .await
                .map(drop),
        ),
    ];
    let wrong = unexpected(outcomes, not_found("SUBMISSION_NOT_FOUND", &[secret_title]));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Lists in Globex show Globex's resources only, whatever the filter.
    for (state, search, expected) in [
        (
            wire::FormState::Unspecified,
            "",
            vec![globex_form.id.clone()],
        ),
        (wire::FormState::Published, "", vec![globex_form.id.clone()]),
        (wire::FormState::Draft, "", vec![]),
        (wire::FormState::Archived, "", vec![]),
        (wire::FormState::Unspecified, "acme", vec![]),
    ] {
        let listed = owner
            .clone()
            .list_forms(wire::ListFormsRequest {
                state: state as i32,
                search: search.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ids(&listed.forms), expected, "{state:?} {search:?}");
    }
    let listed = owner
        .clone()
        .list_submissions(wire::ListSubmissionsRequest {
            parent: globex_form.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.submissions, [globex_submission]);

    // Anonymous callers routed to Globex neither see nor submit to Acme's public form.
    let anonymous = app.anonymous(globex);
    let mut outcomes = submitter_rpcs_on(&anonymous, &acme_form.name).await;
    outcomes.extend(submitter_rpcs_on(&anonymous, &by_slug).await);
    let wrong = unexpected(outcomes, not_found("FORM_NOT_FOUND", &[secret_title]));
    assert!(
        wrong.is_empty(),
        "anonymous in Globex: {}",
        wrong.join("\n")
    );
    // The same call routed to Acme finds it: the form is public.
    let seen = app
        .anonymous(acme)
        .get_published_form(wire::GetPublishedFormRequest {
            name: by_slug.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.name, acme_form.name);

    // CreateForm: Acme's slug is free in Globex and then names Globex's own form.
    let mut same_slug = public_form("Copycat", vec![field("message", FieldType::Text)]);
    same_slug.slug = acme_form.slug.clone();
    let copy = owner
        .clone()
        .create_form(wire::CreateFormRequest {
            form: Some(same_slug),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(copy.id, acme_form.id);
    assert_eq!(copy.slug, acme_form.slug);
    assert_eq!(get_form(owner.clone(), &by_slug).await.id, copy.id);
    let acme_read = get_form(app.member(acme), &by_slug).await;

    // Acme's form, version and submission are as they were: nothing above reached them.
    assert_eq!(acme_read.id, acme_form.id);
    assert_eq!(acme_read.title, secret_title);
    assert_eq!(acme_read.state, wire::FormState::Published as i32);
    assert_eq!(acme_read.published_version, 1);
    assert_eq!(acme_read.etag, acme_form.etag);
    let acme_member = app.member(acme);
    let versions = acme_member
        .clone()
        .list_form_versions(wire::ListFormVersionsRequest {
            parent: acme_form.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions.versions.len(), 1);
    let submissions = acme_member
        .clone()
        .list_submissions(wire::ListSubmissionsRequest {
            parent: acme_form.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(submissions.submissions, [acme_submission]);
}

#[tokio::test]
async fn a_token_of_one_tenant_routed_to_another_is_denied() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (TenantId::generate(), TenantId::generate());
    let form = app
        .published(
            acme,
            public_form("Acme contact", vec![field("message", FieldType::Text)]),
        )
        .await;
    let submission = app
        .submit(acme, &form, json!({"message": "hi"}))
        .await
        .unwrap();
    // An Acme owner's token, sent through the gateway routed to Globex, on either tenant's
    // resources.
    let crossed = app.client(Some(&app.keys.user_token(acme, Role::Owner)), Some(globex));

    let mut outcomes = every_rpc_on(&crossed, &form.name, &submission.id).await;
    outcomes.push((
        "CreateForm",
        crossed
            .clone()
            .create_form(wire::CreateFormRequest {
                form: Some(public_form("Sneaky", vec![field("x", FieldType::Text)])),
            })
            .await
            .map(drop),
    ));
    outcomes.push((
        "ListForms",
        crossed
            .clone()
            .list_forms(wire::ListFormsRequest::default())
            .await
            .map(drop),
    ));
    let wrong = unexpected(outcomes, |status| {
        status.code() == Code::PermissionDenied
            && status.message() == "the token belongs to another tenant than the request"
    });
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Nothing was created in either tenant.
    for tenant in [acme, globex] {
        let listed = app
            .member(tenant)
            .list_forms(wire::ListFormsRequest::default())
            .await
            .unwrap()
            .into_inner();
        let titles: Vec<&str> = listed
            .forms
            .iter()
            .map(|form| form.title.as_str())
            .collect();
        assert!(!titles.contains(&"Sneaky"), "{titles:?}");
    }
}

#[tokio::test]
async fn row_level_security_hides_every_row_of_another_tenant() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (TenantId::generate(), TenantId::generate());
    let form = app
        .published(
            acme,
            public_form("Acme contact", vec![field("message", FieldType::Text)]),
        )
        .await;
    app.submit(acme, &form, json!({"message": "hi"}))
        .await
        .unwrap();
    let db = Db::connect(&app.infra.db, &svc_forms::app::SCHEMA)
        .await
        .unwrap();
    let form_id = uuid::Uuid::parse_str(&form.id).unwrap();

    // Acme's own transaction sees its rows: a form, a version, a submission, and the audit
    // rows of its creation and publication.
    let tables = [
        ("forms.forms", 1),
        ("forms.form_versions", 1),
        ("forms.submissions", 1),
        ("forms.audit_log", 2),
    ];
    for (tenant, see_rows) in [(acme, true), (globex, false)] {
        let mut transaction = db.tenant_tx(tenant).await.unwrap();
        for (table, rows) in tables {
            let count: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut *transaction)
                    .await
                    .unwrap();
            let expected = if see_rows { rows } else { 0 };
            assert_eq!(count, expected, "{table} seen by {tenant}");
        }
        transaction.rollback().await.unwrap();
    }

    // Globex's transaction can neither change nor delete Acme's rows, nor write rows for it.
    let mut transaction = db.tenant_tx(globex).await.unwrap();
    let changed = sqlx::query("UPDATE forms.forms SET title = 'hijacked' WHERE id = $1")
        .bind(form_id)
        .execute(&mut *transaction)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0, "another tenant's form is out of reach");
    let deleted = sqlx::query("DELETE FROM forms.submissions WHERE form_id = $1")
        .bind(form_id)
        .execute(&mut *transaction)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0, "another tenant's submissions are out of reach");
    let planted = sqlx::query(
        "INSERT INTO forms.forms (id, tenant_id, slug, title, description, fields, settings, \
         state, creator) VALUES ($1, $2, 'planted', 'Planted', '', '[]', '{}', 'draft', '')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(acme.as_uuid())
    .execute(&mut *transaction)
    .await;
    assert!(
        planted.is_err(),
        "rows for another tenant cannot be written"
    );
    transaction.rollback().await.unwrap();

    // Without a tenant, nothing is visible.
    let unscoped: i64 = sqlx::query_scalar("SELECT count(*) FROM forms.forms")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(unscoped, 0);

    // And Acme still reads its form as published.
    let read = app
        .member(acme)
        .get_form(wire::GetFormRequest { name: form.name })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.title, "Acme contact");
}

#[tokio::test]
async fn roles_decide_who_writes_submits_privately_and_deletes_submissions() {
    // Arrange: a public and a private published form, each with a submission.
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let public = app
        .published(
            tenant,
            public_form("Open", vec![field("message", FieldType::Text)]),
        )
        .await;
    let mut private = public_form("Staff only", vec![field("message", FieldType::Text)]);
    private.settings = Some(wire::FormSettings::default());
    let private = app.published(tenant, private).await;
    let message = || json!({"message": "hi"});
    let viewer = app.user(tenant, Role::Viewer);
    let member = app.member(tenant);

    // Viewers read but neither write nor submit to private forms; nobody below admin deletes.
    let refused = vec![
        (
            "viewer CreateForm",
            viewer
                .clone()
                .create_form(wire::CreateFormRequest {
                    form: Some(public_form("Mine", vec![field("x", FieldType::Text)])),
                })
                .await
                .map(drop),
            "forms:write",
        ),
        (
            "viewer UpdateForm",
            viewer
                .clone()
                .update_form(wire::UpdateFormRequest {
                    form: Some(wire::Form {
                        name: public.name.clone(),
                        title: "Renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(pbjson_types::FieldMask {
                        paths: vec!["title".into()],
                    }),
                })
                .await
                .map(drop),
            "forms:write",
        ),
        (
            "viewer PublishForm",
            viewer
                .clone()
                .publish_form(wire::PublishFormRequest {
                    name: public.name.clone(),
                    etag: String::new(),
                })
                .await
                .map(drop),
            "forms:write",
        ),
        (
            "viewer ArchiveForm",
            viewer
                .clone()
                .archive_form(wire::ArchiveFormRequest {
                    name: public.name.clone(),
                })
                .await
                .map(drop),
            "forms:write",
        ),
        (
            "viewer SubmitForm (private)",
            viewer
                .clone()
                .submit_form(submit_request(&private, message()))
                .await
                .map(drop),
            "submissions:create",
        ),
    ];
    for (what, outcome, permission) in refused {
        let status = match outcome {
            Err(status) if status.code() == Code::PermissionDenied => status,
            other => panic!("{what}: expected PERMISSION_DENIED, got {other:?}"),
        };
        assert_eq!(error_reason(&status), "PERMISSION_DENIED", "{what}");
        assert_eq!(
            error_metadata(&status)
                .get("permission")
                .map(String::as_str),
            Some(permission),
            "{what}"
        );
    }

    // Submitting: anyone to the public form; members to the private one; anonymous callers
    // do not even find it.
    let by_viewer = viewer
        .clone()
        .submit_form(submit_request(&public, message()))
        .await
        .unwrap()
        .into_inner();
    assert!(by_viewer.submitter.starts_with("users/"));
    let first = member
        .clone()
        .submit_form(submit_request(&private, message()))
        .await
        .unwrap()
        .into_inner();
    let second = member
        .clone()
        .submit_form(submit_request(&private, message()))
        .await
        .unwrap()
        .into_inner();
    let hidden = expect_code(
        app.submit(tenant, &private, message()).await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&hidden), "FORM_NOT_FOUND");
    let hidden = expect_code(
        app.anonymous(tenant)
            .get_published_form(wire::GetPublishedFormRequest {
                name: private.name.clone(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&hidden), "FORM_NOT_FOUND");

    // Viewers read submissions.
    let read = viewer
        .clone()
        .get_submission(wire::GetSubmissionRequest {
            name: first.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, first);

    // Deleting needs submissions:delete: viewers and members are refused, admins and owners
    // may.
    for (role, client) in [("viewer", viewer.clone()), ("member", member.clone())] {
        let mut client = client;
        let status = expect_code(
            client
                .delete_submission(wire::DeleteSubmissionRequest {
                    name: first.name.clone(),
                })
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(
            error_metadata(&status)
                .get("permission")
                .map(String::as_str),
            Some("submissions:delete"),
            "{role}"
        );
    }
    for (role, submission) in [(Role::Admin, &first), (Role::Owner, &second)] {
        let mut client = app.user(tenant, role);
        client
            .delete_submission(wire::DeleteSubmissionRequest {
                name: submission.name.clone(),
            })
            .await
            .unwrap_or_else(|status| panic!("{role:?} deleting: {status:?}"));
        let gone = expect_code(
            client
                .get_submission(wire::GetSubmissionRequest {
                    name: submission.name.clone(),
                })
                .await,
            Code::NotFound,
        );
        assert_eq!(error_reason(&gone), "SUBMISSION_NOT_FOUND", "{role:?}");
    }
    let left = viewer
        .clone()
        .list_submissions(wire::ListSubmissionsRequest {
            parent: private.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(left.submissions.is_empty());
}

#[tokio::test]
async fn a_token_of_a_revoked_session_is_refused_unless_the_gateway_vouches_for_the_call() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut claims = app
        .keys
        .claims(&platform::context::UserId::generate().to_string());
    claims.tid = Some(tenant.to_string());
    claims.role = Some(Role::Admin.as_str().to_owned());
    let session: uuid::Uuid = claims.sid.as_deref().unwrap().parse().unwrap();
    let token = app.keys.sign(&claims);
    let list = || wire::ListFormsRequest::default();
    app.client(Some(&token), Some(tenant))
        .list_forms(list())
        .await
        .expect("a live session is served");

    // What svc-auth does when it ends the session (a logout, a removal, a role change).
    let redis = platform::redis::Redis::connect(&app.infra.redis).unwrap();
    RevokedSessions::new(redis, Duration::from_secs(60))
        .revoke(&[session])
        .await
        .unwrap();
    let refused = app
        .client(Some(&token), Some(tenant))
        .list_forms(list())
        .await;
    let refused = expect_code(refused, Code::Unauthenticated);
    assert_eq!(error_reason(&refused), "SESSION_ENDED");

    // The gateway checks the list itself, in its rate-limit round trip.
    let gateway = app.keys.service_token("gateway", None);
    app.client_with(CallMetadata::new(Some(&token), Some(tenant)).via_gateway(&gateway))
        .list_forms(list())
        .await
        .expect("the gateway vouches for its calls");
}
