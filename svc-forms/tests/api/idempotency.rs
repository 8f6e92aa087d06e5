//! `Idempotency-Key` on SubmitForm: a retry answers the first submission again and never makes
//! a second one or a second event, however many retries race.

use std::collections::HashSet;
use std::time::Duration;

use platform::context::TenantId;
use platform::testing::{EventObserver, error_reason, expect_code};
use proto::formflow::forms::v1::{self as wire, FieldType};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{TestApp, field, public_form, submit_request};

async fn rows(app: &TestApp) -> i64 {
    let mut admin = app.infra.admin_connection().await;
    sqlx::query_scalar("SELECT count(*) FROM forms.submissions")
        .fetch_one(&mut admin)
        .await
        .unwrap()
}

async fn signup(app: &TestApp, tenant: TenantId) -> wire::Form {
    app.published(
        tenant,
        public_form(
            "Signup",
            vec![
                field("name", FieldType::Text),
                field("email", FieldType::Email),
            ],
        ),
    )
    .await
}

async fn submit_with_key(
    app: &TestApp,
    tenant: TenantId,
    key: &str,
    form: &wire::Form,
    data: Value,
) -> Result<wire::Submission, tonic::Status> {
    app.anonymous_with_key(tenant, key)
        .submit_form(submit_request(form, data))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_retry_with_the_same_key_answers_the_first_submission_and_stores_nothing_more() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = signup(&app, tenant).await;
    let mut observer = EventObserver::start(&app.infra.amqp, &["forms.submission.#"]).await;
    let data = json!({"name": "Ada", "email": "ADA@example.org"});

    let first = submit_with_key(&app, tenant, "order-1", &form, data.clone())
        .await
        .unwrap();
    let retry = submit_with_key(&app, tenant, "order-1", &form, data.clone())
        .await
        .unwrap();
    assert_eq!(retry, first);
    // The same answers with another key are another submission.
    let other = submit_with_key(&app, tenant, "order-2", &form, data)
        .await
        .unwrap();
    assert_ne!(other.id, first.id);

    assert_eq!(rows(&app).await, 2);
    let events = observer.receive(2, Duration::from_secs(30)).await;
    let submissions: HashSet<&str> = events
        .iter()
        .map(|event| event.body["data"]["submission"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        submissions,
        HashSet::from([first.id.as_str(), other.id.as_str()])
    );
    assert!(observer.nothing_more_arrives(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn racing_retries_make_one_submission_and_one_event() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = signup(&app, tenant).await;
    let mut observer = EventObserver::start(&app.infra.amqp, &["forms.submission.#"]).await;
    let data = json!({"name": "Ada", "email": "ada@example.org"});

    let attempts = (0..20).map(|_| submit_with_key(&app, tenant, "race", &form, data.clone()));
    let results = futures_util::future::join_all(attempts).await;

    // Each attempt either answers the one submission or is told that the key is in use.
    let mut answered = HashSet::new();
    for result in results {
        match result {
            Ok(submission) => {
                answered.insert(submission.id);
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "{status:?}");
                assert_eq!(error_reason(&status), "IDEMPOTENCY_KEY_IN_USE");
            }
        }
    }
    assert_eq!(answered.len(), 1, "{answered:?}");
    let retried = submit_with_key(&app, tenant, "race", &form, data)
        .await
        .unwrap();
    assert!(answered.contains(&retried.id));
    assert_eq!(rows(&app).await, 1);
    observer.receive(1, Duration::from_secs(30)).await;
    assert!(observer.nothing_more_arrives(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_key_reused_for_other_answers_is_refused_and_a_refused_attempt_can_be_corrected() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = signup(&app, tenant).await;

    // A refused submission keeps nothing: the same key then takes the corrected answers.
    let invalid = submit_with_key(
        &app,
        tenant,
        "k",
        &form,
        json!({"name": "Ada", "email": "not an email"}),
    )
    .await;
    expect_code(invalid, Code::InvalidArgument);
    let stored = submit_with_key(
        &app,
        tenant,
        "k",
        &form,
        json!({"name": "Ada", "email": "ada@example.org"}),
    )
    .await
    .unwrap();

    // Other answers under a key already used are a client bug, not a retry.
    let status = expect_code(
        submit_with_key(
            &app,
            tenant,
            "k",
            &form,
            json!({"name": "Bob", "email": "bob@example.org"}),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(error_reason(&status), "IDEMPOTENCY_KEY_REUSED");

    // Keys belong to their tenant: the same key elsewhere is unrelated.
    let other_tenant = TenantId::generate();
    let other_form = signup(&app, other_tenant).await;
    let elsewhere = submit_with_key(
        &app,
        other_tenant,
        "k",
        &other_form,
        json!({"name": "Bob", "email": "bob@example.org"}),
    )
    .await
    .unwrap();
    assert_ne!(elsewhere.id, stored.id);
    assert_eq!(rows(&app).await, 2);

    // Keys a client cannot have meant are refused before anything happens.
    for key in ["", &"x".repeat(256), "tab\there"] {
        let result = app
            .anonymous(tenant)
            .submit_form({
                let mut request = tonic::Request::new(submit_request(
                    &form,
                    json!({"name": "Eve", "email": "eve@example.org"}),
                ));
                if let Ok(value) = key.parse() {
                    request.metadata_mut().insert("idempotency-key", value);
                }
                request
            })
            .await;
        if key.is_empty() {
            // An empty header is no key at all: a plain submission.
            result.unwrap();
            continue;
        }
        let status = expect_code(result, Code::InvalidArgument);
        assert!(status.message().contains("idempotency key"), "{status:?}");
    }
}
