//! Forms: created with every kind of field and read back as sent, slugs, updates with masks
//! and etags, archiving, listing.

use platform::context::TenantId;
use platform::testing::{error_reason, expect_code, violated_fields};
use proto::formflow::forms::v1 as wire;
use proto::formflow::forms::v1::FieldType;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, field, options, public_form, when};

/// A form with a field of every kind, constraints, logic and a section.
pub(crate) fn every_kind() -> wire::Form {
    let mut plan = field("plan", FieldType::Select);
    plan.options = options(&["free", "pro"]);
    plan.required = true;
    let mut name = field("name", FieldType::Text);
    name.validation = Some(wire::FieldValidation {
        min_length: Some(2),
        max_length: Some(50),
        pattern: "[A-Za-z ]+".into(),
        error_message: "Letters only".into(),
        ..Default::default()
    });
    let mut seats = field("seats", FieldType::Integer);
    seats.validation = Some(wire::FieldValidation {
        min: Some(1.0),
        max: Some(500.0),
        ..Default::default()
    });
    seats.default_value = Some(serde_json::from_value(json!(1)).unwrap());
    seats.visible_when = when("plan", wire::ConditionOperator::Equals, Some(json!("pro")));
    let mut billing = field("billing", FieldType::Section);
    billing.visible_when = when(
        "seats",
        wire::ConditionOperator::GreaterThan,
        Some(json!(10)),
    );
    let mut topics = field("topics", FieldType::MultiSelect);
    topics.options = options(&["a", "b", "c"]);
    topics.validation = Some(wire::FieldValidation {
        max_selected: Some(2),
        ..Default::default()
    });
    let mut score = field("score", FieldType::Rating);
    score.validation = Some(wire::FieldValidation {
        max: Some(10.0),
        ..Default::default()
    });
    let mut email = field("email", FieldType::Email);
    email.required_when = when("plan", wire::ConditionOperator::Equals, Some(json!("pro")));
    let mut colour = field("colour", FieldType::Radio);
    colour.options = options(&["red", "blue"]);
    let mut form = public_form(
        "Every kind",
        vec![
            plan,
            name,
            seats,
            billing,
            field("vat", FieldType::Text),
            field("notes", FieldType::Textarea),
            email,
            field("price", FieldType::Number),
            field("phone", FieldType::Phone),
            field("site", FieldType::Url),
            field("day", FieldType::Date),
            field("moment", FieldType::DateTime),
            colour,
            topics,
            field("agree", FieldType::Checkbox),
            score,
            field("source", FieldType::Hidden),
        ],
    );
    form.description = "All of them".into();
    form
}

/// What the service answers for a field as sent: the validation block is always there.
fn as_answered(mut field: wire::FormField) -> wire::FormField {
    field.validation.get_or_insert_with(Default::default);
    field
}

#[tokio::test]
async fn a_form_with_every_kind_of_field_reads_back_as_sent() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let sent = every_kind();

    let created = app.create(tenant, sent.clone()).await;
    let read = app
        .member(tenant)
        .get_form(wire::GetFormRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    assert_eq!(read, created);
    let expected: Vec<wire::FormField> = sent.fields.into_iter().map(as_answered).collect();
    assert_eq!(read.fields, expected);
    assert_eq!(read.slug, "every-kind");
    assert_eq!(read.state, wire::FormState::Draft as i32);
    assert_eq!(read.published_version, 0);
    assert!(read.creator.starts_with("users/"));
    assert!(read.settings.unwrap().public_submissions);
}

#[tokio::test]
async fn slugs_are_unique_per_tenant_and_name_forms() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (TenantId::generate(), TenantId::generate());
    let mut named = public_form("Contact", vec![field("message", FieldType::Textarea)]);
    named.slug = "contact-us".into();

    let first = app.create(acme, named.clone()).await;
    assert_eq!(first.slug, "contact-us");
    let taken = expect_code(
        app.member(acme)
            .create_form(wire::CreateFormRequest {
                form: Some(named.clone()),
            })
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(error_reason(&taken), "SLUG_TAKEN");
    // Another tenant may use the same slug.
    assert_eq!(app.create(globex, named).await.slug, "contact-us");
    // Derived slugs take a number when taken.
    let derived = app
        .create(
            acme,
            public_form("Contact us", vec![field("x", FieldType::Text)]),
        )
        .await;
    assert_eq!(derived.slug, "contact-us-2");

    let by_slug = app
        .member(acme)
        .get_form(wire::GetFormRequest {
            name: "forms/contact-us".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_slug.id, first.id);
}

#[tokio::test]
async fn every_bad_field_of_a_definition_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut select = field("plan", FieldType::Select);
    select.options = Vec::new();
    let mut later = field("later", FieldType::Text);
    later.visible_when = when("plan", wire::ConditionOperator::Answered, None);
    let mut text = field("notes", FieldType::Text);
    text.validation = Some(wire::FieldValidation {
        pattern: "[".into(),
        ..Default::default()
    });
    let form = public_form(
        "",
        vec![
            select,
            field("Bad Id", FieldType::Text),
            field("dup", FieldType::Email),
            field("dup", FieldType::Email),
            text,
            field("nothing", FieldType::Unspecified),
        ],
    );
    let refused = app
        .member(tenant)
        .create_form(wire::CreateFormRequest { form: Some(form) })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&refused),
        [
            "form.title",
            "form.fields[0].options",
            "form.fields[1].id",
            "form.fields[4].validation.pattern",
            "form.fields[5].type",
        ]
    );

    // Once each field is valid, the rules between them: duplicates and logic.
    let form = public_form(
        "Logic",
        vec![
            later,
            field("dup", FieldType::Email),
            field("dup", FieldType::Email),
        ],
    );
    let refused = app
        .member(tenant)
        .create_form(wire::CreateFormRequest { form: Some(form) })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&refused),
        ["form.fields[0].visible_when.field_id", "form.fields[2].id"]
    );
}

#[tokio::test]
async fn updates_change_what_the_mask_names_and_refuse_stale_etags() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = app
        .create(
            tenant,
            public_form("Survey", vec![field("q1", FieldType::Text)]),
        )
        .await;
    let member = app.member(tenant);
    let update = |changes: wire::Form, paths: &[&str]| wire::UpdateFormRequest {
        form: Some(wire::Form {
            name: form.name.clone(),
            ..changes
        }),
        update_mask: Some(pbjson_types::FieldMask {
            paths: paths.iter().map(|path| (*path).to_owned()).collect(),
        }),
    };

    let renamed = member
        .clone()
        .update_form(update(
            wire::Form {
                title: "Survey 2026".into(),
                description: "ignored: not in the mask".into(),
                settings: Some(wire::FormSettings {
                    closed: true,
                    max_submissions: 99,
                    ..Default::default()
                }),
                etag: form.etag.clone(),
                ..Default::default()
            },
            &["title", "settings.closed"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.title, "Survey 2026");
    assert_eq!(renamed.description, "");
    let settings = renamed.settings.clone().unwrap();
    assert!(settings.closed && settings.public_submissions);
    assert_eq!(settings.max_submissions, 0);
    assert_ne!(renamed.etag, form.etag);

    let stale = expect_code(
        member
            .clone()
            .update_form(update(
                wire::Form {
                    title: "Lost update".into(),
                    etag: form.etag.clone(),
                    ..Default::default()
                },
                &["title"],
            ))
            .await,
        Code::Aborted,
    );
    assert_eq!(error_reason(&stale), "ETAG_MISMATCH");
    let refused = member
        .clone()
        .update_form(update(wire::Form::default(), &["slug", "colour"]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["update_mask", "update_mask"]);
}

#[tokio::test]
async fn archived_forms_freeze_and_unarchive_to_their_state() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = app
        .published(
            tenant,
            public_form("Poll", vec![field("vote", FieldType::Text)]),
        )
        .await;
    let member = app.member(tenant);
    let archived = member
        .clone()
        .archive_form(wire::ArchiveFormRequest {
            name: form.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(archived.state, wire::FormState::Archived as i32);
    assert!(archived.archive_time.is_some());

    let frozen = expect_code(
        member
            .clone()
            .publish_form(wire::PublishFormRequest {
                name: form.name.clone(),
                etag: String::new(),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&frozen), "FORM_ARCHIVED");
    let refused = expect_code(
        app.submit(tenant, &form, json!({"vote": "yes"})).await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&refused), "FORM_ARCHIVED");

    let restored = member
        .clone()
        .unarchive_form(wire::UnarchiveFormRequest {
            name: form.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restored.state, wire::FormState::Published as i32);
    assert!(
        app.submit(tenant, &form, json!({"vote": "yes"}))
            .await
            .is_ok()
    );
    let again = expect_code(
        member
            .clone()
            .unarchive_form(wire::UnarchiveFormRequest { name: form.name })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&again), "FORM_NOT_ARCHIVED");
}

#[tokio::test]
async fn listing_pages_through_forms_by_state_and_title() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    for index in 0..5 {
        app.create(
            tenant,
            public_form(
                &format!("Survey {index}"),
                vec![field("q", FieldType::Text)],
            ),
        )
        .await;
    }
    let contact = app
        .published(
            tenant,
            public_form("Contact", vec![field("q", FieldType::Text)]),
        )
        .await;
    let member = app.member(tenant);

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = member
            .clone()
            .list_forms(wire::ListFormsRequest {
                page_size: 2,
                page_token: page_token.clone(),
                search: "SURVEY".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.forms.into_iter().map(|form| form.title));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        seen,
        ["Survey 4", "Survey 3", "Survey 2", "Survey 1", "Survey 0"],
        "most recently updated first"
    );
    let published = member
        .clone()
        .list_forms(wire::ListFormsRequest {
            state: wire::FormState::Published as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(published.forms.len(), 1);
    assert_eq!(published.forms[0].id, contact.id);
}

#[tokio::test]
async fn every_change_of_a_form_is_audited_with_its_actor() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let member = app.member(tenant);
    let form = app
        .create(
            tenant,
            public_form("Audited", vec![field("name", FieldType::Text)]),
        )
        .await;
    let rename = |title: &str| wire::UpdateFormRequest {
        form: Some(wire::Form {
            name: form.name.clone(),
            title: title.into(),
            ..Default::default()
        }),
        update_mask: Some(pbjson_types::FieldMask {
            paths: vec!["title".into()],
        }),
    };
    member
        .clone()
        .update_form(rename("Audited 2"))
        .await
        .unwrap();
    // An update that changes nothing is no change.
    member
        .clone()
        .update_form(rename("Audited 2"))
        .await
        .unwrap();
    member
        .clone()
        .publish_form(wire::PublishFormRequest {
            name: form.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let name = || form.name.clone();
    member
        .clone()
        .archive_form(wire::ArchiveFormRequest { name: name() })
        .await
        .unwrap();
    member
        .clone()
        .unarchive_form(wire::UnarchiveFormRequest { name: name() })
        .await
        .unwrap();

    let mut admin = app.infra.admin_connection().await;
    let rows: Vec<(String, String, serde_json::Value, uuid::Uuid)> = sqlx::query_as(
        "SELECT action, actor, details, tenant_id FROM forms.audit_log WHERE target = $1 ORDER BY id",
    )
    .bind(&form.name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|row| row.0.as_str()).collect();
    assert_eq!(
        actions,
        ["create", "update", "publish", "archive", "unarchive"]
    );
    assert_eq!(rows[1].2, json!({"changed": ["title"]}));
    assert_eq!(rows[2].2, json!({"version": 1}));
    for (_, actor, _, tenant_id) in &rows {
        assert!(actor.starts_with("user:"), "{actor}");
        assert_eq!(*tenant_id, tenant.as_uuid());
    }
}
