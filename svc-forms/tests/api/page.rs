//! The hosted form page without JavaScript: rendered HTML, a urlencoded post, inline errors,
//! the success page, the honeypot, and forms that are not there.

use platform::context::TenantId;
use platform::testing::{error_reason, expect_code};
use proto::formflow::forms::v1::{self as wire, FieldType};
use proto::google::api::HttpBody;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, field, options, public_form, when};

async fn render(app: &TestApp, tenant: TenantId, slug: &str) -> Result<HttpBody, tonic::Status> {
    app.anonymous(tenant)
        .render_form_page(wire::RenderFormPageRequest { slug: slug.into() })
        .await
        .map(tonic::Response::into_inner)
}

async fn post(
    app: &TestApp,
    tenant: TenantId,
    slug: &str,
    body: &str,
) -> Result<String, tonic::Status> {
    let page = app
        .anonymous(tenant)
        .submit_form_page(wire::SubmitFormPageRequest {
            slug: slug.into(),
            body: Some(HttpBody {
                content_type: "application/x-www-form-urlencoded".into(),
                data: body.as_bytes().to_vec(),
                extensions: Vec::new(),
            }),
        })
        .await?
        .into_inner();
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    Ok(String::from_utf8(page.data).unwrap())
}

/// The `value` of the start token input of `html`.
fn start_token(html: &str) -> String {
    let marker = r#"name="_start_token" value=""#;
    let start = html.find(marker).expect("a start token input") + marker.len();
    html[start..start + 36].to_owned()
}

/// Makes the views of the tenant's forms look old enough to have been filled by a person.
async fn let_time_pass(app: &TestApp) {
    let mut admin = app.infra.admin_connection().await;
    sqlx::query("UPDATE forms.form_views SET created_at = created_at - interval '10 seconds'")
        .execute(&mut admin)
        .await
        .unwrap();
}

async fn stored(app: &TestApp) -> Vec<serde_json::Value> {
    let mut admin = app.infra.admin_connection().await;
    sqlx::query_scalar("SELECT data FROM forms.submissions ORDER BY created_at")
        .fetch_all(&mut admin)
        .await
        .unwrap()
}

/// A contact form with a choice that reveals a section.
fn contact_form() -> wire::Form {
    let mut topic = field("topic", FieldType::Radio);
    topic.options = options(&["sales", "support"]);
    topic.required = true;
    let mut email = field("email", FieldType::Email);
    email.required = true;
    email.help_text = "We answer within a day.".into();
    let mut plans = field("plans", FieldType::MultiSelect);
    plans.options = options(&["free", "pro"]);
    let mut section = field("details", FieldType::Section);
    section.label = "Support details".into();
    section.visible_when = when(
        "topic",
        wire::ConditionOperator::Equals,
        Some(json!("support")),
    );
    let mut label = field("note", FieldType::Textarea);
    label.label = "Anything <else>?".into();
    let mut form = public_form(
        "Contact <us>",
        vec![
            topic,
            email,
            plans,
            field("newsletter", FieldType::Checkbox),
            field("score", FieldType::Rating),
            section,
            label,
        ],
    );
    form.slug = "contact".into();
    form.settings.as_mut().unwrap().confirmation_message = "Thanks, we'll be in touch.".into();
    form
}

#[tokio::test]
async fn the_page_renders_every_field_accessibly_with_a_start_token_and_a_honeypot() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    app.published(tenant, contact_form()).await;

    let page = render(&app, tenant, "contact").await.unwrap();
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    let html = String::from_utf8(page.data).unwrap();
    // Escaped, never markup.
    assert!(html.contains("<title>Contact &lt;us&gt;</title>"), "{html}");
    assert!(html.contains("Anything &lt;else&gt;?"), "{html}");
    assert!(!html.contains("<us>") && !html.contains("<else>"));
    // Labels tied to inputs, help tied by aria-describedby, required marked.
    assert!(
        html.contains(r#"<label for="input-email">The email"#),
        "{html}"
    );
    assert!(html.contains(r#"aria-describedby="help-email""#), "{html}");
    assert!(
        html.contains(r#"<input type="email" id="input-email" name="email" required"#),
        "{html}"
    );
    assert!(
        html.contains(r#"type="radio" name="topic" value="support""#),
        "{html}"
    );
    assert!(
        html.contains(r#"type="checkbox" name="plans" value="pro" data-multi"#),
        "{html}"
    );
    assert!(
        html.contains(r#"type="radio" name="score" value="5""#),
        "{html}"
    );
    assert!(html.contains("<legend>Support details</legend>"), "{html}");
    assert!(
        html.contains("data-visible-when=\"{&quot;field_id&quot;:&quot;topic&quot;"),
        "{html}"
    );
    assert!(html.contains(r#"name="website""#), "the honeypot");
    // No external resources.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    // Each page load is a view with its own token.
    let token = start_token(&html);
    uuid::Uuid::parse_str(&token).unwrap();
    let again = String::from_utf8(render(&app, tenant, "contact").await.unwrap().data).unwrap();
    assert_ne!(start_token(&again), token);
}

#[tokio::test]
async fn a_plain_post_is_stored_or_shown_again_with_its_errors() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    app.published(tenant, contact_form()).await;
    let html = String::from_utf8(render(&app, tenant, "contact").await.unwrap().data).unwrap();
    let token = start_token(&html);
    let_time_pass(&app).await;

    // Wrong answers: the page again, with what was typed, each problem at its field.
    let refused = post(
        &app,
        tenant,
        "contact",
        &format!("_start_token={token}&topic=sales&email=not+an+email&plans=pro&website="),
    )
    .await
    .unwrap();
    assert!(refused.contains(r#"role="alert""#), "{refused}");
    assert!(
        refused.contains(r##"<a href="#field-email">The email</a>: Must be an email address"##),
        "{refused}"
    );
    assert!(
        refused.contains(r#"<p class="error" id="error-email">Must be an email address</p>"#),
        "{refused}"
    );
    assert!(refused.contains(r#"aria-invalid="true""#), "{refused}");
    assert!(
        refused.contains(r#"value="not an email""#),
        "what was typed stays: {refused}"
    );
    assert!(
        refused.contains(r#"value="pro" data-multi checked"#),
        "{refused}"
    );
    assert_eq!(start_token(&refused), token, "the same view goes on");
    assert!(stored(&app).await.is_empty());

    // Corrected: stored as typed answers become, and the confirmation shown.
    let done = post(
        &app,
        tenant,
        "contact",
        &format!(
            "_start_token={token}&topic=support&email=ada%40example.org&plans=free&plans=pro\
             &newsletter=true&score=4&note=Hello+%3Cthere%3E&website="
        ),
    )
    .await
    .unwrap();
    assert!(done.contains("Thanks, we&#x27;ll be in touch."), "{done}");
    assert_eq!(
        stored(&app).await,
        [json!({
            "topic": "support",
            "email": "ada@example.org",
            "plans": ["free", "pro"],
            "newsletter": true,
            "score": 4,
            "note": "Hello <there>",
        })]
    );
    // The note is in a section shown only for support: for sales it is ignored.
    let second = start_token(
        &String::from_utf8(render(&app, tenant, "contact").await.unwrap().data).unwrap(),
    );
    let_time_pass(&app).await;
    post(
        &app,
        tenant,
        "contact",
        &format!("_start_token={second}&topic=sales&email=bob%40example.org&note=ignored"),
    )
    .await
    .unwrap();
    assert_eq!(
        stored(&app).await[1],
        json!({"topic": "sales", "email": "bob@example.org"})
    );

    // The token was used: sent again, the page asks to submit again with a new one.
    let reused = post(
        &app,
        tenant,
        "contact",
        &format!("_start_token={token}&topic=sales&email=eve%40example.org"),
    )
    .await
    .unwrap();
    assert!(reused.contains("already used"), "{reused}");
    assert_ne!(start_token(&reused), token);
    assert_eq!(stored(&app).await.len(), 2);
}

#[tokio::test]
async fn robots_and_missing_or_closed_forms_get_nothing_stored() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    app.published(tenant, contact_form()).await;

    let trapped = post(
        &app,
        tenant,
        "contact",
        "topic=sales&email=bot%40example.org&website=http%3A%2F%2Fspam",
    )
    .await
    .unwrap();
    assert!(
        trapped.contains("The submission looks automated"),
        "{trapped}"
    );
    assert!(stored(&app).await.is_empty());

    // A private form, an unknown slug, another tenant's form: not found.
    let mut private = public_form("Private", vec![field("name", FieldType::Text)]);
    private.slug = "private".into();
    private.settings.as_mut().unwrap().public_submissions = false;
    app.published(tenant, private).await;
    for (tenant, slug) in [
        (tenant, "private"),
        (tenant, "nope"),
        (TenantId::generate(), "contact"),
    ] {
        let status = expect_code(render(&app, tenant, slug).await, Code::NotFound);
        assert_eq!(error_reason(&status), "FORM_NOT_FOUND");
        expect_code(post(&app, tenant, slug, "name=x").await, Code::NotFound);
    }

    // A closed form says so instead of offering a form.
    let mut closed = public_form("Closed", vec![field("name", FieldType::Text)]);
    closed.slug = "closed".into();
    closed.settings.as_mut().unwrap().closed = true;
    app.published(tenant, closed).await;
    let html = String::from_utf8(render(&app, tenant, "closed").await.unwrap().data).unwrap();
    assert!(html.contains("not taking submissions"), "{html}");
    assert!(!html.contains("<form"), "{html}");
    let refused = post(&app, tenant, "closed", "name=x").await.unwrap();
    assert!(refused.contains("The form is closed"), "{refused}");
    assert!(stored(&app).await.is_empty());
}
