//! The bounded queue: a full queue refuses at once, stale requests do not run, and stopping
//! drains what was accepted.

use std::time::Duration;

use tonic::Code;

use crate::helpers::{TestApp, embed};

/// 16 texts of the longest input: one request keeps the model busy for a second or so.
fn heavy() -> Vec<String> {
    vec!["lorem ipsum dolor sit amet ".repeat(60); 16]
}

#[tokio::test]
async fn a_full_queue_answers_resource_exhausted_and_serves_what_it_accepted() {
    let app = TestApp::spawn_with(|config| {
        config.options.models.queue_capacity = 1;
        config.options.models.max_batch = 8;
    })
    .await;
    let client = app.member();
    let calls = (0..8).map(|_| {
        let mut client = client.clone();
        async move {
            let heavy = heavy();
            let refs: Vec<&str> = heavy.iter().map(String::as_str).collect();
            embed(&mut client, &refs).await
        }
    });
    let outcomes = futures_util::future::join_all(calls).await;
    let served = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let refused: Vec<_> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().err())
        .collect();
    // One running, one waiting; the others arrive while both are taken.
    assert!(served >= 1, "{served} served");
    assert!(!refused.is_empty(), "none refused");
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("retry later"));
    }
    for embeddings in outcomes.iter().flatten() {
        assert_eq!(embeddings.len(), 16);
    }
    app.stop().await;
}

#[tokio::test]
async fn requests_that_waited_past_the_queue_timeout_do_not_run() {
    let app =
        TestApp::spawn_with(|config| config.options.models.queue_timeout = Duration::ZERO).await;
    let mut client = app.member();
    let status = embed(&mut client, &["hello"]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    app.stop().await;
}

#[tokio::test]
async fn stopping_finishes_the_accepted_requests_first() {
    // Accepted requests must finish however long they queue: on a loaded machine (the parallel
    // suite runs other models) three heavy ones waited past the default 30 s.
    let app = TestApp::spawn_with(|config| {
        config.options.models.queue_timeout = Duration::from_secs(600);
    })
    .await;
    let client = app.member();
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let heavy = heavy();
                let refs: Vec<&str> = heavy.iter().map(String::as_str).collect();
                embed(&mut client, &refs).await
            })
        })
        .collect();
    // Let them reach the queue, then stop while they run.
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.stop().await;
    for call in calls {
        let embeddings = call.await.unwrap().expect("accepted before the stop");
        assert_eq!(embeddings.len(), 16);
    }
}

#[tokio::test]
async fn a_classification_that_cannot_run_in_time_is_neither_computed_nor_stored() {
    use proto::formflow::ai::v1::{ClassifyRequest, Label, ListClassificationsRequest};

    let app =
        TestApp::spawn_with(|config| config.options.models.queue_timeout = Duration::ZERO).await;
    let mut client = app.member();
    let request = || ClassifyRequest {
        texts: vec!["My invoice is wrong".to_owned()],
        labels: vec![
            Label {
                value: "billing".to_owned(),
                description: "invoices".to_owned(),
            },
            Label {
                value: "bug".to_owned(),
                description: "errors".to_owned(),
            },
        ],
        ..ClassifyRequest::default()
    };
    let status = client.classify(request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    app.stop().await;

    // A caller whose deadline passes while the model works gives up (its client says so first,
    // or the server's deadline), and the result it no longer waits for is not stored either.
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let mut hurried = tonic::Request::new(request());
    hurried.set_timeout(Duration::from_millis(1));
    let status = client.classify(hurried).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored = client
        .list_classifications(ListClassificationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(stored.classifications.is_empty(), "{stored:?}");
    app.stop().await;
}
