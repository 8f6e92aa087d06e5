//! GetFormAnalytics against known data: views, starts, submissions, conversion, completion
//! times, buckets, per-field statistics, the cache, and refusals.

use chrono::{Duration, DurationRound, Utc};
use platform::context::{Role, TenantId};
use platform::testing::{error_reason, expect_code, violated_fields};
use platform::wire::timestamp;
use proto::formflow::forms::v1::{self as wire, FieldType};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{Client, TestApp, field, options, public_form, submit_request};

async fn analytics(
    client: &Client,
    request: wire::GetFormAnalyticsRequest,
) -> Result<wire::FormAnalytics, tonic::Status> {
    client
        .clone()
        .get_form_analytics(request)
        .await
        .map(tonic::Response::into_inner)
}

fn request(form: &wire::Form) -> wire::GetFormAnalyticsRequest {
    wire::GetFormAnalyticsRequest {
        name: format!("{}/analytics", form.name),
        ..Default::default()
    }
}

fn counts(field: &wire::FieldAnalytics) -> Vec<(&str, i64)> {
    field
        .value_counts
        .iter()
        .map(|count| (count.value.as_str(), count.count))
        .collect()
}

#[tokio::test]
async fn figures_match_known_views_starts_submissions_and_answers() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut plan = field("plan", FieldType::Select);
    plan.options = options(&["free", "pro", "team"]);
    let score = field("score", FieldType::Rating);
    let form = app
        .published(
            tenant,
            public_form(
                "Survey",
                vec![
                    plan,
                    field("seats", FieldType::Integer),
                    field("agree", FieldType::Checkbox),
                    score,
                    field("note", FieldType::Text),
                ],
            ),
        )
        .await;

    // Four views; two submitted after 30 s and 90 s, one attempted and refused, one left.
    let mut tokens = Vec::new();
    for _ in 0..4 {
        let published = app
            .anonymous(tenant)
            .get_published_form(wire::GetPublishedFormRequest {
                name: form.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        tokens.push(published.start_token);
    }
    let mut admin = app.infra.admin_connection().await;
    for (token, seconds) in [(&tokens[0], 30.0), (&tokens[1], 90.0), (&tokens[2], 10.0)] {
        sqlx::query(
            "UPDATE forms.form_views SET created_at = now() - make_interval(secs => $2) WHERE id = $1",
        )
        .bind(uuid::Uuid::parse_str(token).unwrap())
        .bind(seconds)
        .execute(&mut admin)
        .await
        .unwrap();
    }
    let submit = |data: Value, token: &str| {
        let mut request = submit_request(&form, data);
        request.start_token = token.to_owned();
        let client = app.anonymous(tenant);
        async move { client.clone().submit_form(request).await }
    };
    submit(
        json!({"plan": "pro", "seats": 3, "agree": true, "score": 5}),
        &tokens[0],
    )
    .await
    .unwrap();
    submit(
        json!({"plan": "pro", "seats": 10, "agree": false, "score": 2}),
        &tokens[1],
    )
    .await
    .unwrap();
    submit(json!({"plan": "nope"}), &tokens[2])
        .await
        .unwrap_err();
    submit(json!({"plan": "free", "note": "hi"}), "")
        .await
        .unwrap();

    let viewer = app.user(tenant, Role::Viewer);
    let figures = analytics(&viewer, request(&form)).await.unwrap();
    assert_eq!(figures.name, format!("forms/{}/analytics", form.id));
    assert_eq!(
        (
            figures.view_count,
            figures.start_count,
            figures.submission_count
        ),
        (4, 3, 3)
    );
    assert!((figures.conversion_rate - 0.75).abs() < 1e-9);
    let median = figures.median_completion_seconds.unwrap();
    let mean = figures.mean_completion_seconds.unwrap();
    assert!((59.0..65.0).contains(&median), "{median}");
    assert!((59.0..65.0).contains(&mean), "{mean}");
    // 30 days up to now, in days, oldest first: the buckets add up to the totals.
    let end = figures.end_time.unwrap();
    let start = figures.start_time.unwrap();
    assert_eq!(end.seconds - start.seconds, 30 * 86_400);
    assert_eq!(
        figures.buckets.len(),
        31,
        "the first one starts at midnight"
    );
    let sum =
        |count: fn(&wire::AnalyticsBucket) -> i64| figures.buckets.iter().map(count).sum::<i64>();
    assert_eq!(sum(|b| b.view_count), 4);
    assert_eq!(sum(|b| b.start_count), 3);
    assert_eq!(sum(|b| b.submission_count), 3);
    assert!(figures.buckets.windows(2).all(|pair| {
        pair[1].start_time.unwrap().seconds - pair[0].start_time.unwrap().seconds == 86_400
    }));

    let fields: Vec<&str> = figures.fields.iter().map(|f| f.field_id.as_str()).collect();
    assert_eq!(fields, ["plan", "seats", "agree", "score", "note"]);
    let [plan, seats, agree, score, note] = &figures.fields[..] else {
        unreachable!()
    };
    assert_eq!(counts(plan), [("pro", 2), ("free", 1)]);
    assert_eq!(plan.answer_count, 3);
    assert_eq!((plan.min, plan.max, plan.mean), (None, None, None));
    assert_eq!(
        (seats.answer_count, seats.min, seats.max, seats.mean),
        (2, Some(3.0), Some(10.0), Some(6.5))
    );
    assert!((seats.answer_rate - 2.0 / 3.0).abs() < 1e-9);
    assert!(seats.value_counts.is_empty());
    assert_eq!(counts(agree), [("false", 1), ("true", 1)]);
    assert_eq!(counts(score), [("2", 1), ("5", 1)]);
    assert_eq!(
        (score.min, score.max, score.mean),
        (Some(2.0), Some(5.0), Some(3.5))
    );
    assert_eq!((note.answer_count, note.value_counts.len()), (1, 0));

    // Hours over a period of three: the buckets cover it, and the totals hold.
    let hour_start = (Utc::now() - Duration::hours(2))
        .duration_trunc(Duration::hours(1))
        .unwrap();
    let mut hours = request(&form);
    hours.interval = wire::AnalyticsInterval::Hour as i32;
    hours.start_time = Some(timestamp(hour_start));
    hours.end_time = Some(timestamp(hour_start + Duration::hours(3)));
    let by_hour = analytics(&viewer, hours.clone()).await.unwrap();
    assert_eq!(by_hour.buckets.len(), 3);
    assert_eq!(by_hour.buckets.iter().map(|b| b.view_count).sum::<i64>(), 4);
    // Kolkata is 5:30 ahead: its hours start on the half hour in UTC, so four of them cover
    // the same three UTC hours.
    hours.time_zone = "Asia/Kolkata".into();
    let by_kolkata_hour = analytics(&viewer, hours).await.unwrap();
    assert_eq!(by_kolkata_hour.buckets.len(), 4);
    assert_eq!(
        by_kolkata_hour.buckets[0].start_time.unwrap().seconds,
        hour_start.timestamp() - 1800
    );
    assert_eq!(
        by_kolkata_hour
            .buckets
            .iter()
            .map(|b| b.submission_count)
            .sum::<i64>(),
        3
    );

    // Fresh within a minute: the same question is answered from the cache meanwhile.
    submit(json!({"plan": "team"}), "").await.unwrap();
    let cached = analytics(&viewer, request(&form)).await.unwrap();
    assert_eq!(cached.submission_count, 3);
    let mut other_question = request(&form);
    other_question.time_zone = "Europe/Paris".into();
    let fresh = analytics(&viewer, other_question).await.unwrap();
    assert_eq!(fresh.submission_count, 4);
}

#[tokio::test]
async fn bad_periods_strangers_and_other_tenants_are_refused() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (TenantId::generate(), TenantId::generate());
    let form = app
        .published(
            acme,
            public_form("Survey", vec![field("name", FieldType::Text)]),
        )
        .await;
    let member = app.user(acme, Role::Member);
    let now = Utc::now();
    let cases: Vec<(wire::GetFormAnalyticsRequest, &str)> = vec![
        (
            wire::GetFormAnalyticsRequest {
                name: form.name.clone(),
                ..Default::default()
            },
            "name",
        ),
        (
            wire::GetFormAnalyticsRequest {
                start_time: Some(timestamp(now)),
                end_time: Some(timestamp(now - Duration::hours(1))),
                ..request(&form)
            },
            "start_time",
        ),
        (
            wire::GetFormAnalyticsRequest {
                start_time: Some(timestamp(now - Duration::days(401))),
                ..request(&form)
            },
            "end_time",
        ),
        (
            wire::GetFormAnalyticsRequest {
                interval: wire::AnalyticsInterval::Hour as i32,
                start_time: Some(timestamp(now - Duration::days(60))),
                ..request(&form)
            },
            "interval",
        ),
        (
            wire::GetFormAnalyticsRequest {
                interval: 42,
                ..request(&form)
            },
            "interval",
        ),
        (
            wire::GetFormAnalyticsRequest {
                time_zone: "Mars/Olympus_Mons".into(),
                ..request(&form)
            },
            "time_zone",
        ),
        (
            wire::GetFormAnalyticsRequest {
                time_zone: "Europe/Paris'; --".into(),
                ..request(&form)
            },
            "time_zone",
        ),
    ];
    for (request, field) in cases {
        let status = expect_code(
            analytics(&member, request.clone()).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field], "{request:?}");
    }

    expect_code(
        analytics(&app.anonymous(acme), request(&form)).await,
        Code::Unauthenticated,
    );
    let status = expect_code(
        analytics(&app.user(globex, Role::Owner), request(&form)).await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "FORM_NOT_FOUND");
}
