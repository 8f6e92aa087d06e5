//! Anti-spam without third parties: start tokens (issued with the published form, minimum fill
//! time, expiry, one submission each) and a honeypot field.

use platform::context::{Role, TenantId};
use platform::testing::{error_reason, expect_code, violated_fields};
use proto::formflow::forms::v1::{self as wire, FieldType};
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, field, public_form, submit_request};

/// A published form whose anonymous submissions need a start token.
async fn guarded_form(app: &TestApp, tenant: TenantId) -> wire::Form {
    let mut form = public_form("Guarded", vec![field("name", FieldType::Text)]);
    form.settings.as_mut().unwrap().require_start_token = true;
    app.published(tenant, form).await
}

/// A start token of `form`, as GetPublishedForm hands it out.
async fn start_token(app: &TestApp, tenant: TenantId, form: &wire::Form) -> String {
    app.anonymous(tenant)
        .get_published_form(wire::GetPublishedFormRequest {
            name: form.name.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .start_token
}

/// Makes the view of `token` look `seconds` old.
async fn age(app: &TestApp, token: &str, seconds: i64) {
    let mut admin = app.infra.admin_connection().await;
    sqlx::query(
        "UPDATE forms.form_views SET created_at = now() - make_interval(secs => $2) WHERE id = $1",
    )
    .bind(uuid::Uuid::parse_str(token).unwrap())
    .bind(seconds as f64)
    .execute(&mut admin)
    .await
    .unwrap();
}

async fn submit_with(
    app: &TestApp,
    tenant: TenantId,
    form: &wire::Form,
    token: &str,
    honeypot: &str,
) -> Result<wire::Submission, tonic::Status> {
    let mut request = submit_request(form, json!({"name": "Ada"}));
    request.start_token = token.into();
    request.honeypot = honeypot.into();
    app.anonymous(tenant)
        .submit_form(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn stored(app: &TestApp) -> i64 {
    let mut admin = app.infra.admin_connection().await;
    sqlx::query_scalar("SELECT count(*) FROM forms.submissions")
        .fetch_one(&mut admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn start_tokens_are_required_timed_and_good_for_one_submission() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = guarded_form(&app, tenant).await;
    let refused = |result: Result<wire::Submission, tonic::Status>| {
        error_reason(&expect_code(result, Code::FailedPrecondition))
    };

    let status = expect_code(
        submit_with(&app, tenant, &form, "", "").await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["start_token"]);
    let status = expect_code(
        submit_with(&app, tenant, &form, "not-a-token", "").await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["start_token"]);

    // Sent straight back, faster than a person fills a form.
    let token = start_token(&app, tenant, &form).await;
    assert_eq!(
        refused(submit_with(&app, tenant, &form, &token, "").await),
        "SUBMITTED_TOO_FAST"
    );
    age(&app, &token, 5).await;
    submit_with(&app, tenant, &form, &token, "").await.unwrap();
    assert_eq!(
        refused(submit_with(&app, tenant, &form, &token, "").await),
        "START_TOKEN_USED"
    );

    // Unknown, expired, of another form or of another tenant: not a token of this form.
    let expired = start_token(&app, tenant, &form).await;
    age(&app, &expired, 25 * 3600).await;
    let other_form = guarded_form(&app, tenant).await;
    let elsewhere = start_token(&app, tenant, &other_form).await;
    age(&app, &elsewhere, 5).await;
    let other_tenant = TenantId::generate();
    let foreign_form = guarded_form(&app, other_tenant).await;
    let foreign = start_token(&app, other_tenant, &foreign_form).await;
    age(&app, &foreign, 5).await;
    for token in [
        uuid::Uuid::new_v4().to_string(),
        expired,
        elsewhere,
        foreign,
    ] {
        assert_eq!(
            refused(submit_with(&app, tenant, &form, &token, "").await),
            "START_TOKEN_INVALID",
            "{token}"
        );
    }

    // Signed-in callers and API clients need no token.
    app.user(tenant, Role::Member)
        .submit_form(submit_request(&form, json!({"name": "Grace"})))
        .await
        .unwrap();
    assert_eq!(stored(&app).await, 2);
}

#[tokio::test]
async fn a_filled_honeypot_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = app
        .published(
            tenant,
            public_form("Open", vec![field("name", FieldType::Text)]),
        )
        .await;
    assert_eq!(
        error_reason(&expect_code(
            submit_with(&app, tenant, &form, "", "http://spam.example").await,
            Code::FailedPrecondition,
        )),
        "SPAM_SUSPECTED"
    );
    assert_eq!(stored(&app).await, 0);
    // A form without the requirement takes submissions without a token.
    submit_with(&app, tenant, &form, "", "").await.unwrap();
    assert_eq!(stored(&app).await, 1);
}
