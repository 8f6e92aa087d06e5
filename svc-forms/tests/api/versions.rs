//! Publishing: each publication is a new immutable version; drafts change freely; submitters
//! see the latest version; every version has a JSON Schema.

use platform::context::TenantId;
use platform::testing::{error_reason, expect_code};
use proto::formflow::forms::v1 as wire;
use proto::formflow::forms::v1::FieldType;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, field, options, public_form};

fn mask(paths: &[&str]) -> Option<pbjson_types::FieldMask> {
    Some(pbjson_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

#[tokio::test]
async fn each_publication_is_a_new_version_that_never_changes() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let form = app
        .published(
            tenant,
            public_form("Signup", vec![field("name", FieldType::Text)]),
        )
        .await;
    assert_eq!(form.published_version, 1);
    assert!(!form.has_unpublished_changes);

    // Editing the draft leaves version 1 as it was, for submitters too.
    let edited = member
        .clone()
        .update_form(wire::UpdateFormRequest {
            form: Some(wire::Form {
                name: form.name.clone(),
                title: "Signup 2".into(),
                fields: vec![
                    field("name", FieldType::Text),
                    field("email", FieldType::Email),
                ],
                ..Default::default()
            }),
            update_mask: mask(&["title", "fields"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(edited.has_unpublished_changes);
    let refused = app
        .submit(
            tenant,
            &form,
            json!({"name": "Ada", "email": "ada@example.org"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

    let republished = member
        .clone()
        .publish_form(wire::PublishFormRequest {
            name: form.name.clone(),
            etag: edited.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(republished.published_version, 2);
    assert!(!republished.has_unpublished_changes);
    let submission = app
        .submit(
            tenant,
            &form,
            json!({"name": "Ada", "email": "ada@example.org"}),
        )
        .await
        .unwrap();
    assert_eq!(submission.form_version, 2);

    let versions = member
        .clone()
        .list_form_versions(wire::ListFormVersionsRequest {
            parent: form.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .versions;
    let titles: Vec<(i32, &str, usize)> = versions
        .iter()
        .map(|version| {
            (
                version.version,
                version.title.as_str(),
                version.fields.len(),
            )
        })
        .collect();
    assert_eq!(titles, [(2, "Signup 2", 2), (1, "Signup", 1)]);
    let first = member
        .clone()
        .get_form_version(wire::GetFormVersionRequest {
            name: format!("{}/versions/1", form.name),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, versions[1]);
    assert!(first.publisher.starts_with("users/"));
    let missing = expect_code(
        member
            .clone()
            .get_form_version(wire::GetFormVersionRequest {
                name: format!("{}/versions/3", form.name),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&missing), "VERSION_NOT_FOUND");
}

#[tokio::test]
async fn publishing_needs_a_field_and_the_etag_read() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let empty = app
        .create(
            tenant,
            public_form("Empty", vec![field("intro", FieldType::Section)]),
        )
        .await;
    let refused = expect_code(
        member
            .clone()
            .publish_form(wire::PublishFormRequest {
                name: empty.name.clone(),
                etag: String::new(),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&refused), "FORM_EMPTY");
    let form = app
        .create(tenant, public_form("Ok", vec![field("q", FieldType::Text)]))
        .await;
    let stale = expect_code(
        member
            .clone()
            .publish_form(wire::PublishFormRequest {
                name: form.name.clone(),
                etag: "0".into(),
            })
            .await,
        Code::Aborted,
    );
    assert_eq!(error_reason(&stale), "ETAG_MISMATCH");
}

#[tokio::test]
async fn submitters_see_the_latest_version_and_private_forms_stay_hidden() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut private = public_form("Internal", vec![field("q", FieldType::Text)]);
    private.settings = Some(wire::FormSettings {
        confirmation_message: "Thanks".into(),
        ..Default::default()
    });
    let private = app.published(tenant, private).await;
    let public = app
        .published(
            tenant,
            public_form("Open", vec![field("q", FieldType::Text)]),
        )
        .await;

    let seen = app
        .anonymous(tenant)
        .get_published_form(wire::GetPublishedFormRequest {
            name: format!("forms/{}", public.slug),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((seen.version, seen.title.as_str()), (1, "Open"));
    assert!(seen.accepting_submissions);
    assert_eq!(seen.fields.len(), 1);

    for name in [private.name.clone(), format!("forms/{}", private.slug)] {
        let hidden = expect_code(
            app.anonymous(tenant)
                .get_published_form(wire::GetPublishedFormRequest { name })
                .await,
            Code::NotFound,
        );
        assert_eq!(error_reason(&hidden), "FORM_NOT_FOUND");
    }
    let hidden = expect_code(
        app.submit(tenant, &private, json!({"q": "x"})).await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&hidden), "FORM_NOT_FOUND");
    let for_members = app
        .member(tenant)
        .get_published_form(wire::GetPublishedFormRequest {
            name: private.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(for_members.confirmation_message, "Thanks");
    assert!(
        app.member(tenant)
            .submit_form(crate::helpers::submit_request(&private, json!({"q": "x"})))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_version_has_the_json_schema_of_its_answers() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut plan = field("plan", FieldType::Select);
    plan.options = options(&["free", "pro"]);
    plan.required = true;
    let mut seats = field("seats", FieldType::Integer);
    seats.validation = Some(wire::FieldValidation {
        min: Some(1.0),
        ..Default::default()
    });
    let form = app
        .published(tenant, public_form("Order", vec![plan, seats]))
        .await;
    let schema = app
        .member(tenant)
        .get_form_version_json_schema(wire::GetFormVersionJsonSchemaRequest {
            name: format!("{}/versions/1", form.name),
        })
        .await
        .unwrap()
        .into_inner();
    let schema = serde_json::to_value(schema).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["required"], json!(["plan"]));
    assert_eq!(schema["properties"]["plan"]["enum"], json!(["free", "pro"]));
    assert_eq!(schema["properties"]["seats"]["type"], "integer");
    assert_eq!(schema["properties"]["seats"]["minimum"], json!(1.0));
    assert_eq!(schema["additionalProperties"], json!(false));
}
