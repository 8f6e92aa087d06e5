//! The `forms.*` events: what they carry, so that consumers never call back, and that every
//! acknowledged submission has exactly one event even while RabbitMQ is unreachable.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use platform::context::TenantId;
use platform::testing::{EventObserver, TcpProxy, TestInfra};
use proto::formflow::forms::v1::{AnalysisSettings, FieldType};
use serde_json::json;

use crate::helpers::{TestApp, field, options, public_form};

#[tokio::test]
async fn publishing_and_submitting_emit_events_that_carry_what_consumers_need() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut observer = EventObserver::start(&app.infra.amqp, &["forms.#"]).await;
    let mut plan = field("plan", FieldType::Select);
    plan.options = options(&["free", "pro"]);
    let mut form = public_form(
        "Contact us",
        vec![
            field("email", FieldType::Email),
            plan,
            field("note", FieldType::Textarea),
        ],
    );
    form.slug = "contact".into();
    form.settings.as_mut().unwrap().notification_recipients =
        vec!["owner@example.org".into(), "Sales@Example.org".into()];
    let label_set = format!("labelSets/{}", uuid::Uuid::now_v7());
    form.settings.as_mut().unwrap().analysis = Some(AnalysisSettings {
        enabled: true,
        label_set: label_set.clone(),
    });
    let form = app.published(tenant, form).await;
    let submission = app
        .submit(
            tenant,
            &form,
            json!({"email": "ada@example.org", "plan": "pro"}),
        )
        .await
        .unwrap();

    let events = observer.receive(2, Duration::from_secs(30)).await;
    let published = &events[0];
    assert_eq!(published.routing_key, "forms.form.published.v1");
    assert_eq!(published.kind, "forms.form.published");
    assert_eq!(published.body["tenant_id"], tenant.to_string());
    assert_eq!(published.body["data"]["form"]["name"], form.name);
    assert_eq!(published.body["data"]["version"]["version"], 1);
    assert_eq!(
        published.body["data"]["version"]["fields"][0]["id"],
        "email"
    );

    let created = &events[1];
    assert_eq!(created.routing_key, "forms.submission.created.v1");
    assert_eq!(created.kind, "forms.submission.created");
    assert_eq!(created.body["tenant_id"], tenant.to_string());
    let data = &created.body["data"];
    assert_eq!(data["submission"]["name"], submission.name);
    assert_eq!(data["submission"]["form_version"], 1);
    assert_eq!(
        data["submission"]["data"],
        json!({"email": "ada@example.org", "plan": "pro"})
    );
    assert_eq!(data["form"], form.name);
    assert_eq!(data["form_title"], "Contact us");
    assert_eq!(data["form_slug"], "contact");
    assert_eq!(
        data["notification_recipients"],
        json!(["owner@example.org", "Sales@Example.org"])
    );
    // What svc-ai reads to analyze the submission.
    assert_eq!(
        data["analysis"],
        json!({"enabled": true, "label_set": label_set})
    );
    // Answers in the form's order, with their labels and types; unanswered fields are absent.
    assert_eq!(
        data["answers"],
        json!([
            {"field_id": "email", "label": "The email", "type": "FIELD_TYPE_EMAIL",
             "value": "ada@example.org"},
            {"field_id": "plan", "label": "The plan", "type": "FIELD_TYPE_SELECT",
             "value": "pro"},
        ])
    );
    // The envelope's id is the AMQP message id, which consumers deduplicate on.
    assert_eq!(created.body["event_id"], created.message_id);
    assert!(
        observer
            .nothing_more_arrives(Duration::from_millis(500))
            .await
    );
}

#[tokio::test]
async fn every_acknowledged_submission_has_exactly_one_event_across_a_broker_outage() {
    // The service reaches RabbitMQ through a proxy the test cuts and restores; the observer
    // reads straight from the broker.
    let infra = TestInfra::new().await;
    let proxy = TcpProxy::start(infra.broker_addr().await).await;
    let proxied = infra.amqp_url_through(proxy.addr());
    let app = TestApp::spawn_with(infra, |config| {
        config.infra.amqp.amqp_url = Some(proxied.into());
    })
    .await;
    let tenant = TenantId::generate();
    let mut observer = EventObserver::start(&app.infra.amqp, &["forms.submission.created.#"]).await;
    let form = app
        .published(
            tenant,
            public_form("Burst", vec![field("n", FieldType::Integer)]),
        )
        .await;

    // A burst of concurrent submissions, with the broker cut part way through.
    let submit = |n: usize| {
        let client = app.anonymous(tenant);
        let request = crate::helpers::submit_request(&form, json!({ "n": n }));
        async move { client.clone().submit_form(request).await }
    };
    let mut acknowledged: HashSet<String> = HashSet::new();
    let first = futures_util::future::join_all((0..40).map(submit)).await;
    proxy.cut();
    let during = futures_util::future::join_all((40..80).map(submit)).await;
    proxy.restore();
    let after = futures_util::future::join_all((80..100).map(submit)).await;
    for result in first.into_iter().chain(during).chain(after) {
        acknowledged.insert(
            result
                .expect("submissions do not wait for the broker")
                .into_inner()
                .id,
        );
    }
    assert_eq!(acknowledged.len(), 100);

    // One event per submission: a message the relay sent again after a cut confirmation
    // keeps its event id, which consumers deduplicate on.
    let mut events_of: HashMap<String, HashSet<String>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while events_of.len() < acknowledged.len() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        for event in observer.receive(1, left).await {
            let submission = event.body["data"]["submission"]["id"].as_str().unwrap();
            events_of
                .entry(submission.to_owned())
                .or_default()
                .insert(event.message_id);
        }
    }
    assert_eq!(
        events_of.keys().cloned().collect::<HashSet<_>>(),
        acknowledged
    );
    for (submission, ids) in &events_of {
        assert_eq!(ids.len(), 1, "{submission} has events {ids:?}");
    }
    let mut admin = app.infra.admin_connection().await;
    let outbox: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM forms.outbox WHERE event_type = 'forms.submission.created'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(outbox, 100);
}
