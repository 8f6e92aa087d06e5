//! Submissions: when a form takes them, listing them with filters, order and pages, reading
//! one, and deleting one for good with its `forms.submission.deleted` event.

use std::time::Duration;

use chrono::Utc;
use platform::context::{Role, TenantId};
use platform::testing::{EventObserver, error_reason, expect_code, violated_fields};
use platform::wire::timestamp;
use proto::formflow::forms::v1 as wire;
use proto::formflow::forms::v1::FieldType;
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{TestApp, data_of, field, options, public_form};

/// A public form with one text field and `settings` changed by `adjust`.
fn form_with(adjust: impl FnOnce(&mut wire::FormSettings)) -> wire::Form {
    let mut form = public_form("Signup", vec![field("name", FieldType::Text)]);
    adjust(form.settings.as_mut().unwrap());
    form
}

#[tokio::test]
async fn a_form_takes_submissions_only_while_published_open_and_not_full() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let answer = || json!({"name": "Ada"});
    let refused = |result: Result<wire::Submission, tonic::Status>| {
        let status = expect_code(result, Code::FailedPrecondition);
        (error_reason(&status), status.message().to_owned())
    };

    let draft = app.create(tenant, form_with(|_| {})).await;
    assert_eq!(
        refused(app.submit(tenant, &draft, answer()).await),
        (
            "FORM_NOT_PUBLISHED".to_owned(),
            "the form is not published".to_owned()
        )
    );
    let closed = app.published(tenant, form_with(|s| s.closed = true)).await;
    assert_eq!(
        refused(app.submit(tenant, &closed, answer()).await).0,
        "FORM_CLOSED"
    );
    let hour = chrono::Duration::hours(1);
    let later = app
        .published(
            tenant,
            form_with(|s| s.open_time = Some(timestamp(Utc::now() + hour))),
        )
        .await;
    assert_eq!(
        refused(app.submit(tenant, &later, answer()).await).0,
        "FORM_NOT_OPEN"
    );
    let ended = app
        .published(
            tenant,
            form_with(|s| s.close_time = Some(timestamp(Utc::now() - hour))),
        )
        .await;
    assert_eq!(
        refused(app.submit(tenant, &ended, answer()).await).0,
        "FORM_ENDED"
    );
    let open_window = app
        .published(
            tenant,
            form_with(|s| {
                s.open_time = Some(timestamp(Utc::now() - hour));
                s.close_time = Some(timestamp(Utc::now() + hour));
            }),
        )
        .await;
    app.submit(tenant, &open_window, answer()).await.unwrap();

    let two = app
        .published(tenant, form_with(|s| s.max_submissions = 2))
        .await;
    app.submit(tenant, &two, answer()).await.unwrap();
    app.submit(tenant, &two, answer()).await.unwrap();
    assert_eq!(
        refused(app.submit(tenant, &two, answer()).await).0,
        "FORM_FULL"
    );

    let archived = app.published(tenant, form_with(|_| {})).await;
    app.member(tenant)
        .archive_form(wire::ArchiveFormRequest {
            name: archived.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        refused(app.submit(tenant, &archived, answer()).await).0,
        "FORM_ARCHIVED"
    );

    // Closing a form takes effect at once: settings are live, not versioned.
    let live = app.published(tenant, form_with(|_| {})).await;
    app.submit(tenant, &live, answer()).await.unwrap();
    app.member(tenant)
        .update_form(wire::UpdateFormRequest {
            form: Some(form_with(|s| s.closed = true)).map(|mut form| {
                form.name = live.name.clone();
                form
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["settings.closed".into()],
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        refused(app.submit(tenant, &live, answer()).await).0,
        "FORM_CLOSED"
    );
}

#[tokio::test]
async fn concurrent_submissions_never_exceed_the_maximum() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = app
        .published(tenant, form_with(|s| s.max_submissions = 5))
        .await;

    let attempts = (0..20).map(|index| {
        let client = app.anonymous(tenant);
        let request = crate::helpers::submit_request(&form, json!({"name": format!("n{index}")}));
        async move { client.clone().submit_form(request).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let accepted = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(accepted, 5, "{results:?}");
    for refused in results.into_iter().filter_map(Result::err) {
        assert_eq!(error_reason(&refused), "FORM_FULL", "{refused:?}");
    }
    let listed = app
        .member(tenant)
        .list_submissions(wire::ListSubmissionsRequest {
            parent: form.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.submissions.len(), 5);
}

/// Submits each of `answers` to `form` in order, returning the stored submissions.
async fn submit_all(
    app: &TestApp,
    tenant: TenantId,
    form: &wire::Form,
    answers: Vec<Value>,
) -> Vec<wire::Submission> {
    let mut submitted = Vec::new();
    for data in answers {
        submitted.push(app.submit(tenant, form, data).await.unwrap());
        // Distinct receipt times, so that the order is the order of submission.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    submitted
}

#[tokio::test]
async fn submissions_are_listed_by_answer_time_and_version_in_either_order_and_by_page() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut plan = field("plan", FieldType::Select);
    plan.options = options(&["free", "pro"]);
    let form = app
        .published(
            tenant,
            public_form("Plans", vec![plan, field("seats", FieldType::Integer)]),
        )
        .await;
    let submitted = submit_all(
        &app,
        tenant,
        &form,
        vec![
            json!({"plan": "free", "seats": 1}),
            json!({"plan": "pro", "seats": 3}),
            json!({"plan": "pro", "seats": "3"}),
            json!({"plan": "pro", "seats": 10}),
            json!({"plan": "free", "seats": 3}),
        ],
    )
    .await;
    let ids = |submissions: &[wire::Submission]| -> Vec<String> {
        submissions.iter().map(|s| s.id.clone()).collect()
    };
    let all = ids(&submitted);
    let list = |request: wire::ListSubmissionsRequest| {
        let client = app.member(tenant);
        async move { client.clone().list_submissions(request).await }
    };
    let request = |filter: &str, order_by: &str| wire::ListSubmissionsRequest {
        parent: form.name.clone(),
        filter: filter.into(),
        order_by: order_by.into(),
        ..Default::default()
    };

    // Newest first by default; oldest first on request.
    let newest = list(request("", "")).await.unwrap().into_inner();
    assert_eq!(
        ids(&newest.submissions),
        all.iter().rev().cloned().collect::<Vec<_>>()
    );
    assert!(newest.next_page_token.is_empty());
    let oldest = list(request("", "create_time")).await.unwrap().into_inner();
    assert_eq!(ids(&oldest.submissions), all);
    let explicit = list(request("", "create_time desc"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&explicit.submissions), ids(&newest.submissions));

    // Answer filters, one or several joined by AND; a number matches however it was typed.
    let pro = list(request(r#"data.plan = "pro""#, "create_time"))
        .await
        .unwrap();
    assert_eq!(ids(&pro.into_inner().submissions), all[1..4]);
    let pro_three = list(request(
        r#"data.plan = "pro" AND data.seats = 3"#,
        "create_time",
    ))
    .await
    .unwrap();
    assert_eq!(ids(&pro_three.into_inner().submissions), all[1..3]);
    let none = list(request(r#"data.plan = "enterprise""#, ""))
        .await
        .unwrap();
    assert!(none.into_inner().submissions.is_empty());

    // A time range: from the second submission's time, before the fourth's.
    let mut range = request("", "create_time");
    range.start_time = submitted[1].create_time;
    range.end_time = submitted[3].create_time;
    let ranged = list(range).await.unwrap().into_inner();
    assert_eq!(ids(&ranged.submissions), all[1..3]);

    // Pages of two, oldest first, with the filter kept in the token.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let mut page = request("", "create_time");
        page.page_size = 2;
        page.page_token = token;
        let page = list(page).await.unwrap().into_inner();
        assert!(page.submissions.len() <= 2);
        paged.extend(ids(&page.submissions));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, all);

    // A token used with other filters, and bad filters or orders, are refused by field.
    let mut first = request("", "create_time");
    first.page_size = 2;
    let token = list(first).await.unwrap().into_inner().next_page_token;
    let mut mismatched = request(r#"data.plan = "pro""#, "create_time");
    mismatched.page_token = token;
    let status = expect_code(list(mismatched).await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["page_token"]);
    for (filter, order_by, field) in [
        ("plan = pro", "", "filter"),
        (r#"data.plan ~ "pro""#, "", "filter"),
        ("", "title", "order_by"),
    ] {
        let status = expect_code(list(request(filter, order_by)).await, Code::InvalidArgument);
        assert_eq!(violated_fields(&status), [field], "{filter} {order_by}");
    }
    let mut bad_size = request("", "");
    bad_size.page_size = 101;
    let status = expect_code(list(bad_size).await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["page_size"]);
}

#[tokio::test]
async fn submissions_of_each_version_can_be_listed_apart() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = app.published(tenant, form_with(|_| {})).await;
    let first = app
        .submit(tenant, &form, json!({"name": "v1"}))
        .await
        .unwrap();
    app.member(tenant)
        .publish_form(wire::PublishFormRequest {
            name: form.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let second = app
        .submit(tenant, &form, json!({"name": "v2"}))
        .await
        .unwrap();
    assert_eq!((first.form_version, second.form_version), (1, 2));

    for (version, expected) in [(1, &first), (2, &second)] {
        let listed = app
            .member(tenant)
            .list_submissions(wire::ListSubmissionsRequest {
                parent: form.name.clone(),
                form_version: version,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.submissions, std::slice::from_ref(expected));
    }
}

#[tokio::test]
async fn a_submission_is_read_by_name_and_deleted_for_good_with_an_event() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = app.published(tenant, form_with(|_| {})).await;
    let kept = app
        .submit(tenant, &form, json!({"name": "Kept"}))
        .await
        .unwrap();
    let erased = app
        .submit(tenant, &form, json!({"name": "Erase me"}))
        .await
        .unwrap();
    let mut observer = EventObserver::start(&app.infra.amqp, &["forms.submission.deleted.#"]).await;

    let got = app
        .member(tenant)
        .get_submission(wire::GetSubmissionRequest {
            name: erased.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, erased);
    assert_eq!(data_of(&got), json!({"name": "Erase me"}));
    assert_eq!(got.name, format!("{}/submissions/{}", form.name, got.id));

    // Deleting needs submissions:delete (admins and owners).
    let status = expect_code(
        app.member(tenant)
            .delete_submission(wire::DeleteSubmissionRequest {
                name: erased.name.clone(),
            })
            .await,
        Code::PermissionDenied,
    );
    assert_eq!(error_reason(&status), "PERMISSION_DENIED");
    app.user(tenant, Role::Admin)
        .delete_submission(wire::DeleteSubmissionRequest {
            name: erased.name.clone(),
        })
        .await
        .unwrap();

    let events = observer.receive(1, Duration::from_secs(30)).await;
    assert_eq!(events[0].routing_key, "forms.submission.deleted.v1");
    assert_eq!(events[0].body["tenant_id"], tenant.to_string());
    assert_eq!(events[0].body["data"]["submission"], erased.name);
    assert_eq!(events[0].body["data"]["form"], form.name);

    // Gone for good: not found, not listed, no answer left in the database; the other stays.
    for call in [
        app.member(tenant)
            .get_submission(wire::GetSubmissionRequest {
                name: erased.name.clone(),
            })
            .await
            .map(|_| ()),
        app.user(tenant, Role::Admin)
            .delete_submission(wire::DeleteSubmissionRequest {
                name: erased.name.clone(),
            })
            .await
            .map(|_| ()),
    ] {
        let status = expect_code(call, Code::NotFound);
        assert_eq!(error_reason(&status), "SUBMISSION_NOT_FOUND");
    }
    let listed = app
        .member(tenant)
        .list_submissions(wire::ListSubmissionsRequest {
            parent: form.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.submissions, [kept]);
    let mut admin = app.infra.admin_connection().await;
    let traces: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM forms.submissions WHERE data::text LIKE '%Erase me%'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(traces, 0);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM forms.audit_log WHERE action = 'submission.delete'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    assert!(
        observer
            .nothing_more_arrives(Duration::from_millis(500))
            .await
    );
}

#[tokio::test]
async fn malformed_submission_names_are_refused_by_field() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = app.published(tenant, form_with(|_| {})).await;
    for name in [
        String::new(),
        "submissions/1".to_owned(),
        format!("{}/submissions/not-a-uuid", form.name),
        format!("{}/answers/{}", form.name, uuid::Uuid::now_v7()),
    ] {
        let status = expect_code(
            app.member(tenant)
                .get_submission(wire::GetSubmissionRequest { name: name.clone() })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["name"], "{name}");
    }
    let status = expect_code(
        app.anonymous(tenant)
            .submit_form(wire::SubmitFormRequest {
                parent: form.name.clone(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["submission.data"]);
}
