//! Templates: saved only when every part parses and uses declared variables, each problem
//! listed; updated with etags; previewed as a send would render them; sends refused with the
//! reasons a template gives.

use platform::context::{Role, TenantId};
use platform::testing::violated_fields;
use proto::formflow::notify::v1 as wire;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, email, object};

fn variable(name: &str, required: bool) -> wire::TemplateVariable {
    wire::TemplateVariable {
        name: name.into(),
        required,
        ..Default::default()
    }
}

fn welcome() -> wire::Template {
    wire::Template {
        key: "welcome".into(),
        display_name: "Welcome".into(),
        email_subject: "Welcome, {{ name }}".into(),
        email_text: "Hello {{ name }}{% if team %} of {{ team }}{% endif %}.".into(),
        variables: vec![variable("name", true), variable("team", false)],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_template_is_refused_with_every_problem_listed() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let status = app
        .admin(tenant)
        .create_template(wire::CreateTemplateRequest {
            template: Some(wire::Template {
                key: "broken".into(),
                email_subject: "Hi {{ name".into(),
                email_text: "Order {{ order }} for {{ customer }}".into(),
                in_app_link: "{% for x in %}".into(),
                variables: vec![variable("name", true), variable("1bad", false)],
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&status);
    fields.sort();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "template.email_subject",
            "template.email_text",
            "template.in_app_link",
            "template.variables[1].name",
        ],
        "{status:?}"
    );
    assert!(status.message().contains("customer") || format!("{status:?}").contains("customer"));

    let bad_key = app
        .admin(tenant)
        .create_template(wire::CreateTemplateRequest {
            template: Some(wire::Template {
                key: "Not A Key".into(),
                ..welcome()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_key), ["template.key"]);
}

#[tokio::test]
async fn templates_are_created_listed_updated_with_etags_and_deleted() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut admin = app.admin(tenant);
    let created = admin
        .create_template(wire::CreateTemplateRequest {
            template: Some(welcome()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.key, "welcome");
    assert_eq!(created.variables.len(), 2);
    let taken = admin
        .create_template(wire::CreateTemplateRequest {
            template: Some(welcome()),
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    let member = app
        .member(tenant)
        .create_template(wire::CreateTemplateRequest {
            template: Some(wire::Template {
                key: "other".into(),
                ..welcome()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        member.code(),
        Code::PermissionDenied,
        "admins manage templates"
    );

    let updated = admin
        .update_template(wire::UpdateTemplateRequest {
            template: Some(wire::Template {
                name: created.name.clone(),
                etag: created.etag.clone(),
                email_subject: "Welcome aboard, {{ name }}".into(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["emailSubject".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.email_subject, "Welcome aboard, {{ name }}");
    assert_eq!(
        updated.email_text, created.email_text,
        "unmasked fields kept"
    );
    assert_ne!(updated.etag, created.etag);
    let stale = admin
        .update_template(wire::UpdateTemplateRequest {
            template: Some(wire::Template {
                name: created.name.clone(),
                etag: created.etag.clone(),
                display_name: "Stale".into(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let undeclared = admin
        .update_template(wire::UpdateTemplateRequest {
            template: Some(wire::Template {
                name: created.name.clone(),
                email_text: "{{ secret }}".into(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["email_text".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&undeclared), ["template.email_text"]);

    let listed = app
        .user(tenant, Role::Viewer)
        .list_templates(wire::ListTemplatesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.templates, [updated]);
    admin
        .delete_template(wire::DeleteTemplateRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap();
    let gone = admin
        .get_template(wire::GetTemplateRequest { name: created.name })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn a_preview_renders_as_a_send_and_a_send_needs_the_required_variables() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    app.admin(tenant)
        .create_template(wire::CreateTemplateRequest {
            template: Some(welcome()),
        })
        .await
        .unwrap();
    let preview = app
        .user(tenant, Role::Viewer)
        .preview_template(wire::PreviewTemplateRequest {
            source: Some(wire::preview_template_request::Source::Name(
                "welcome".into(),
            )),
            data: Some(object(json!({"name": "Ada", "team": "Analytics"}))),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(preview.email_subject, "Welcome, Ada");
    assert_eq!(preview.email_text, "Hello Ada of Analytics.");
    assert_eq!(
        preview.in_app_title, "Welcome, Ada",
        "falls back to the subject"
    );
    let unsaved = app
        .member(tenant)
        .preview_template(wire::PreviewTemplateRequest {
            source: Some(wire::preview_template_request::Source::Template(
                wire::Template {
                    in_app_title: "{{ count }} new".into(),
                    variables: vec![variable("count", false)],
                    ..Default::default()
                },
            )),
            data: Some(object(json!({"count": 3}))),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unsaved.in_app_title, "3 new");

    let missing = app
        .member(tenant)
        .send_notification(wire::SendNotificationRequest {
            recipients: vec![email("ada@example.com")],
            topic: "welcome".into(),
            template: "welcome".into(),
            data: Some(object(json!({"team": "Analytics"}))),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&missing), ["data.name"]);
    let unknown = app
        .member(tenant)
        .send_notification(wire::SendNotificationRequest {
            recipients: vec![email("ada@example.com")],
            topic: "welcome".into(),
            template: "no.such.template".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&unknown), ["template"]);
    let malformed = app
        .member(tenant)
        .send_notification(wire::SendNotificationRequest {
            recipients: vec![email("not an address"), wire::Recipient { target: None }],
            topic: "Bad Topic".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let mut fields = violated_fields(&malformed);
    fields.sort();
    assert_eq!(
        fields,
        ["recipients[0].email", "recipients[1]", "template", "topic"],
        "{malformed:?}"
    );
    assert!(app.smtp.messages().is_empty());
}
