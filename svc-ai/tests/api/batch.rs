//! Batch jobs on `jobs.ai`: created as queued, processed in the background chunk by chunk,
//! results by id, events, cancellation, a worker restart and a worker that died holding a job,
//! bad input and other tenants.

use std::time::Duration;

use platform::context::{Role, TenantId};
use platform::testing::{EventObserver, error_reason};
use proto::formflow::ai::v1::batch_result::Output;
use proto::formflow::ai::v1::{
    BatchItem, BatchJob, BatchJobState, BatchTask, CancelBatchJobRequest, CreateBatchJobRequest,
    GetBatchJobRequest, ListBatchJobsRequest, ListClassificationsRequest,
};
use tonic::Code;

use crate::helpers::{
    Client, TestApp, bad_fields, create_label_set, expect_code, labels_of, support_labels,
};

fn item(id: &str, text: &str) -> BatchItem {
    BatchItem {
        id: id.to_owned(),
        text: text.to_owned(),
        subject: String::new(),
        source: format!("tickets/{id}"),
    }
}

fn job(task: BatchTask, label_set: &str, items: Vec<BatchItem>) -> CreateBatchJobRequest {
    CreateBatchJobRequest {
        batch_job: Some(BatchJob {
            task: task as i32,
            label_set: label_set.to_owned(),
            items,
            ..BatchJob::default()
        }),
    }
}

async fn get(client: &mut Client, name: &str) -> BatchJob {
    client
        .get_batch_job(GetBatchJobRequest {
            name: name.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The job once it has ended (a ticket job's first item builds the shipped defaults'
/// prototypes and heads: long on a loaded machine).
async fn ended(client: &Client, name: &str) -> BatchJob {
    let mut client = client.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let job = get(&mut client, name).await;
        if job.state != BatchJobState::Queued as i32 && job.state != BatchJobState::Running as i32 {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the batch job did not end: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_classify_job_runs_in_the_background_and_announces_every_result_and_its_end() {
    let app = TestApp::spawn().await;
    let mut events = EventObserver::start(
        &app.infra.amqp,
        &[
            "ai.batch_job.completed.v1",
            "ai.classification.completed.v1",
        ],
    )
    .await;
    let mut client = app.member();
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    // 40 items: two chunks of work.
    let items: Vec<BatchItem> = (0..40)
        .map(|index| {
            let text = if index % 2 == 0 {
                format!("I was charged twice for invoice {index}, please refund me")
            } else {
                format!("The website shows a 502 error on page {index}")
            };
            item(&format!("t{index}"), &text)
        })
        .collect();
    let queued = client
        .create_batch_job(job(BatchTask::Classify, &set.name, items))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queued.state, BatchJobState::Queued as i32);
    assert_eq!(queued.total_count, 40);
    assert!(queued.results.is_empty() && queued.items.is_empty());

    let done = ended(&client, &queued.name).await;
    assert_eq!(done.state, BatchJobState::Succeeded as i32, "{done:?}");
    assert_eq!((done.processed_count, done.failed_count), (40, 0));
    assert!(done.start_time.is_some() && done.end_time.is_some() && done.expire_time.is_some());
    assert_eq!(done.results.len(), 40);
    for (index, result) in done.results.iter().enumerate() {
        assert_eq!(result.item_id, format!("t{index}"));
        let Some(Output::Classification(classification)) = &result.output else {
            panic!("a classification expected: {result:?}");
        };
        assert_eq!(classification.source, format!("tickets/t{index}"));
        let expected = if index % 2 == 0 { "billing" } else { "bug" };
        let top = &labels_of(classification).top_label;
        assert!(
            top == expected || top == "technical",
            "t{index}: {top} (expected {expected})"
        );
    }
    // Each result is a stored classification.
    let stored = client
        .list_classifications(ListClassificationsRequest {
            label_set: set.name.clone(),
            page_size: 100,
            ..ListClassificationsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.classifications.len(), 40);

    let received = events.receive(41, Duration::from_secs(20)).await;
    let ends: Vec<_> = received
        .iter()
        .filter(|event| event.routing_key == "ai.batch_job.completed.v1")
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].body["data"]["batch_job"]["name"], queued.name);
    assert_eq!(
        ends[0].body["data"]["batch_job"]["state"],
        "BATCH_JOB_STATE_SUCCEEDED"
    );
    assert!(
        received
            .iter()
            .filter(|event| event.routing_key == "ai.classification.completed.v1")
            .all(|event| event.body["data"]["batch_job"] == queued.name)
    );
    assert!(
        events
            .nothing_more_arrives(Duration::from_millis(500))
            .await
    );
    app.stop().await;
}

#[tokio::test]
async fn embed_and_ticket_jobs_answer_each_item_in_order() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let embedded = client
        .create_batch_job(job(
            BatchTask::Embed,
            "",
            vec![
                item("a", "forgot my password"),
                item("b", "reset my password"),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    let tickets = client
        .create_batch_job(job(
            BatchTask::ClassifyTicket,
            "",
            vec![BatchItem {
                subject: "Site down".to_owned(),
                ..item(
                    "x",
                    "All our forms are down for every customer since this morning",
                )
            }],
        ))
        .await
        .unwrap()
        .into_inner();
    let embedded = ended(&client, &embedded.name).await;
    let ids: Vec<&str> = embedded
        .results
        .iter()
        .map(|r| r.item_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    for result in &embedded.results {
        let Some(Output::Embedding(embedding)) = &result.output else {
            panic!("an embedding expected: {result:?}");
        };
        assert_eq!(embedding.values.len(), 384);
    }
    let tickets = ended(&client, &tickets.name).await;
    let Some(Output::Classification(triaged)) = &tickets.results[0].output else {
        panic!("a classification expected: {tickets:?}");
    };
    assert!(triaged.text.starts_with("Site down\n"));

    let listed = client
        .list_batch_jobs(ListBatchJobsRequest {
            state: BatchJobState::Succeeded as i32,
            ..ListBatchJobsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = listed
        .batch_jobs
        .iter()
        .map(|job| job.name.as_str())
        .collect();
    assert_eq!(
        names,
        [tickets.name.as_str(), embedded.name.as_str()],
        "newest first"
    );
    assert!(listed.batch_jobs.iter().all(|job| job.results.is_empty()));
    app.stop().await;
}

#[tokio::test]
async fn a_queued_job_survives_a_restart_and_a_cancelled_one_never_runs() {
    // A replica that only serves the API: jobs wait on the queue.
    let app = TestApp::spawn_with(|config| config.options.batch_concurrency = 0).await;
    let tenant = TenantId::generate();
    let mut client = app.user(tenant, Role::Member);
    let kept = client
        .create_batch_job(job(BatchTask::Embed, "", vec![item("a", "hello")]))
        .await
        .unwrap()
        .into_inner();
    let dropped = client
        .create_batch_job(job(BatchTask::Embed, "", vec![item("b", "bye")]))
        .await
        .unwrap()
        .into_inner();
    let cancelled = client
        .cancel_batch_job(CancelBatchJobRequest {
            name: dropped.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state, BatchJobState::Cancelled as i32);
    assert!(cancelled.end_time.is_some());
    // Cancelling an ended job answers it as it is.
    let again = client
        .cancel_batch_job(CancelBatchJobRequest {
            name: dropped.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, cancelled);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        get(&mut client, &kept.name).await.state,
        BatchJobState::Queued as i32
    );

    // Another replica with a worker takes the job: from its message, or, since no worker had
    // declared `jobs.ai` when it was sent, from the sweeper once a lease's time has passed.
    let (infra, keys) = app.stop_keeping().await;
    let app = TestApp::spawn_over(infra, keys, |config| {
        config.options.batch_lease = Duration::from_secs(2);
    })
    .await;
    let client = app.user(tenant, Role::Member);
    let done = ended(&client, &kept.name).await;
    assert_eq!(done.state, BatchJobState::Succeeded as i32);
    assert_eq!(done.results.len(), 1);
    let mut client = client;
    let still = get(&mut client, &dropped.name).await;
    assert_eq!(still.state, BatchJobState::Cancelled as i32);
    assert!(still.results.is_empty(), "nothing of a cancelled job ran");
    app.stop().await;
}

#[tokio::test]
async fn a_job_whose_worker_died_is_taken_over_once_its_lease_lapses() {
    let app = TestApp::spawn_with(|config| config.options.batch_concurrency = 0).await;
    let tenant = TenantId::generate();
    let mut client = app.user(tenant, Role::Member);
    let created = client
        .create_batch_job(job(
            BatchTask::Embed,
            "",
            vec![item("a", "one"), item("b", "two")],
        ))
        .await
        .unwrap()
        .into_inner();
    let id = uuid::Uuid::parse_str(&created.id).unwrap();
    // A worker took it, stored the first item's result, and died: its lease runs 2 s more.
    let mut admin = app.infra.admin_connection().await;
    sqlx::query(
        "UPDATE ai.batch_jobs SET state = 'running', lease_token = gen_random_uuid(), \
             lease_until = now() + interval '2 seconds', attempts = 1, started_at = now(), \
             processed_count = 1 \
         WHERE id = $1",
    )
    .bind(id)
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE ai.batch_items SET result = '{\"item_id\": \"a\", \"error\": \"done before\"}' \
         WHERE job_id = $1 AND position = 0",
    )
    .bind(id)
    .execute(&mut admin)
    .await
    .unwrap();

    let (infra, keys) = app.stop_keeping().await;
    let app = TestApp::spawn_over(infra, keys, |config| {
        config.options.batch_lease = Duration::from_secs(2);
    })
    .await;
    let client = app.user(tenant, Role::Member);
    let done = ended(&client, &created.name).await;
    assert_eq!(done.state, BatchJobState::Succeeded as i32, "{done:?}");
    assert_eq!(done.processed_count, 2);
    // The item the dead worker stored is not done again.
    assert_eq!(done.results.len(), 2);
    assert!(
        matches!(&done.results[0].output, Some(Output::Error(error)) if error == "done before")
    );
    assert!(matches!(
        &done.results[1].output,
        Some(Output::Embedding(_))
    ));
    app.stop().await;
}

#[tokio::test]
async fn bad_batch_jobs_are_refused_and_other_tenants_jobs_are_not_found() {
    let app = TestApp::spawn_with(|config| config.options.batch_concurrency = 0).await;
    let tenant = TenantId::generate();
    let mut client = app.user(tenant, Role::Member);
    let status = expect_code(
        client
            .create_batch_job(job(
                BatchTask::Classify,
                "",
                vec![item("a", ""), item("a", "fine"), item("", "fine")],
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        [
            "batch_job.label_set",
            "batch_job.items[0].text",
            "batch_job.items[1].id",
            "batch_job.items[2].id",
        ]
    );
    let status = expect_code(
        client
            .create_batch_job(job(BatchTask::Unspecified, "labelSets/x", vec![]))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["batch_job.task", "batch_job.label_set", "batch_job.items"]
    );
    let many: Vec<BatchItem> = (0..1_001)
        .map(|index| item(&index.to_string(), "x"))
        .collect();
    let status = expect_code(
        client
            .create_batch_job(job(BatchTask::Embed, "", many))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["batch_job.items"]);
    let big: Vec<BatchItem> = (0..30)
        .map(|index| item(&index.to_string(), &"x".repeat(31_000)))
        .collect();
    let status = expect_code(
        client
            .create_batch_job(job(BatchTask::Embed, "", big))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["batch_job.items"]);
    let status = expect_code(
        client
            .create_batch_job(job(
                BatchTask::Classify,
                &format!("labelSets/{}", uuid::Uuid::now_v7()),
                vec![item("a", "text")],
            ))
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "LABEL_SET_NOT_FOUND");

    let mine = client
        .create_batch_job(job(BatchTask::Embed, "", vec![item("a", "text")]))
        .await
        .unwrap()
        .into_inner();
    let mut other = app.user(TenantId::generate(), Role::Owner);
    for result in [
        other
            .get_batch_job(GetBatchJobRequest {
                name: mine.name.clone(),
            })
            .await
            .map(|_| ()),
        other
            .cancel_batch_job(CancelBatchJobRequest {
                name: mine.name.clone(),
            })
            .await
            .map(|_| ()),
    ] {
        let status = expect_code(result, Code::NotFound);
        assert_eq!(error_reason(&status), "BATCH_JOB_NOT_FOUND");
    }
    let listed = other
        .list_batch_jobs(ListBatchJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.batch_jobs.is_empty());
    assert_eq!(
        get(&mut client, &mine.name).await.state,
        BatchJobState::Queued as i32,
        "untouched"
    );
    let mut viewer = app.user(tenant, Role::Viewer);
    expect_code(
        viewer
            .create_batch_job(job(BatchTask::Embed, "", vec![item("a", "x")]))
            .await,
        Code::PermissionDenied,
    );
    get(&mut viewer, &mine.name).await;
    app.stop().await;
}
