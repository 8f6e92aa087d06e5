//! Classify, GetClassification, ListClassifications and CorrectClassification on the real
//! model: results from label descriptions, learning from examples and corrections, the result
//! cache, the event, and bad input.

use std::time::Duration;

use platform::testing::{EventObserver, error_reason};
use proto::formflow::ai::v1::{
    ClassificationMethod, ClassifyRequest, CorrectClassificationRequest, GetClassificationRequest,
    ListClassificationsRequest,
};
use tonic::Code;

use crate::helpers::{
    MODEL, TestApp, add_example, bad_fields, classify, create_label_set, expect_code, label,
    labels_of, support_labels,
};

#[tokio::test]
async fn tickets_are_classified_from_label_descriptions_stored_and_announced() {
    let app = TestApp::spawn().await;
    let mut events =
        EventObserver::start(&app.infra.amqp, &["ai.classification.completed.v1"]).await;
    let mut client = app.member();
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let tickets = [
        (
            "I was charged twice for my subscription this month, please refund me",
            "billing",
        ),
        (
            "The website is down and every page shows a 502 error",
            "technical",
        ),
        (
            "How do I reset my password? I cannot sign in anymore",
            "account",
        ),
        ("Please add a dark mode to the dashboard", "feature_request"),
    ];
    let texts: Vec<&str> = tickets.iter().map(|(text, _)| *text).collect();
    let results = classify(&mut client, &set.name, &texts).await.unwrap();
    assert_eq!(results.len(), tickets.len());
    for (result, (text, expected)) in results.iter().zip(tickets) {
        let labels = labels_of(result);
        assert_eq!(labels.top_label, expected, "{text}: {labels:?}");
        assert_eq!(result.text, text);
        assert_eq!(result.model, MODEL);
        assert_eq!(result.model_version.len(), 16);
        assert!(!result.cached && !result.truncated);
        assert_eq!(result.content_hash.len(), 64);
        assert_eq!(labels.label_set, set.name);
        assert_eq!(labels.label_set_version, 1);
        assert_eq!(labels.method, ClassificationMethod::Prototype as i32);
        assert_eq!(labels.scores.len(), 4);
        assert!(
            labels
                .scores
                .windows(2)
                .all(|pair| pair[0].score >= pair[1].score)
        );
        let total: f32 = labels.scores.iter().map(|score| score.score).sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        assert_eq!(labels.confidence, labels.scores[0].score);
        assert_eq!(labels.runner_up.as_ref(), Some(&labels.scores[1]));

        let stored = client
            .get_classification(GetClassificationRequest {
                name: result.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&stored, result);
    }

    let received = events.receive(4, Duration::from_secs(10)).await;
    let mut announced: Vec<&str> = received
        .iter()
        .map(|event| {
            event.body["data"]["classification"]["name"]
                .as_str()
                .unwrap()
        })
        .collect();
    let mut names: Vec<&str> = results.iter().map(|result| result.name.as_str()).collect();
    announced.sort_unstable();
    names.sort_unstable();
    assert_eq!(announced, names);
    let first = received
        .iter()
        .find(|event| event.body["data"]["classification"]["name"] == results[0].name)
        .unwrap();
    assert_eq!(
        first.body["data"]["classification"]["labels"]["top_label"],
        "billing"
    );
    assert!(first.body["tenant_id"].is_string(), "{}", first.body);
    app.stop().await;
}

#[tokio::test]
async fn inline_labels_classify_without_a_label_set() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let results = client
        .classify(ClassifyRequest {
            texts: vec!["My invoice shows the wrong amount".to_owned()],
            labels: vec![
                label("billing", "invoices and payments"),
                label("bug", "software errors and crashes"),
            ],
            source: "forms/1/submissions/2".to_owned(),
            ..ClassifyRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .classifications;
    let labels = labels_of(&results[0]);
    assert_eq!(labels.top_label, "billing");
    assert_eq!(labels.label_set, "");
    assert_eq!(labels.label_set_version, 0);
    assert_eq!(results[0].source, "forms/1/submissions/2");

    // Only a label set learns from corrections.
    let status = expect_code(
        client
            .correct_classification(CorrectClassificationRequest {
                name: results[0].name.clone(),
                label: "bug".to_owned(),
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(error_reason(&status), "CLASSIFICATION_WITHOUT_LABEL_SET");
    app.stop().await;
}

#[tokio::test]
async fn examples_and_a_correction_change_a_result_and_the_label_set_version() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    // Labels whose descriptions say little: the examples teach what they mean.
    let set = create_label_set(
        &mut client,
        "Teams",
        vec![label("team_a", "team A"), label("team_b", "team B")],
    )
    .await;
    let text = "The export to CSV leaves out the last column of every row";
    let before = classify(&mut client, &set.name, &[text]).await.unwrap();
    let score_of = |result: &proto::formflow::ai::v1::Classification, label: &str| {
        labels_of(result)
            .scores
            .iter()
            .find(|score| score.label == label)
            .unwrap()
            .score
    };
    let target = if labels_of(&before[0]).top_label == "team_a" {
        "team_b"
    } else {
        "team_a"
    };

    // Examples of the other label, about exports, move the text towards it.
    for example in [
        "Exported spreadsheets are missing data",
        "The CSV download has broken columns",
        "Exporting submissions to a file fails",
    ] {
        add_example(&mut client, &set.name, target, example)
            .await
            .unwrap();
    }
    let taught = classify(&mut client, &set.name, &[text]).await.unwrap();
    assert!(
        score_of(&taught[0], target) > score_of(&before[0], target),
        "{before:?} then {taught:?}"
    );
    assert_eq!(labels_of(&taught[0]).label_set_version, 4);
    assert!(!taught[0].cached, "a new version is a new cache key");

    // A correction: the text itself becomes an example of the label it should have had.
    let other = if target == "team_a" {
        "team_b"
    } else {
        "team_a"
    };
    let probe = "Someone from finance keeps getting the weekly digest twice";
    let first = classify(&mut client, &set.name, &[probe]).await.unwrap();
    let wrong = labels_of(&first[0]).top_label.clone();
    let right = if wrong == target { other } else { target };
    let corrected = client
        .correct_classification(CorrectClassificationRequest {
            name: first[0].name.clone(),
            label: right.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(labels_of(&corrected).corrected_label, right);
    assert_eq!(
        labels_of(&corrected).top_label,
        wrong,
        "the result stays as it was"
    );
    let again = classify(&mut client, &set.name, &[probe]).await.unwrap();
    assert_eq!(labels_of(&again[0]).top_label, right, "{again:?}");
    assert_eq!(labels_of(&again[0]).label_set_version, 5);

    // Correcting again replaces the correction instead of adding an example.
    client
        .correct_classification(CorrectClassificationRequest {
            name: first[0].name.clone(),
            label: wrong.clone(),
        })
        .await
        .unwrap();
    let examples = client
        .list_label_examples(proto::formflow::ai::v1::ListLabelExamplesRequest {
            parent: set.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .examples;
    assert_eq!(examples.len(), 4);
    let correction = examples
        .iter()
        .find(|example| example.classification == first[0].name)
        .unwrap();
    assert_eq!(correction.label, wrong);
    assert_eq!(correction.text, probe);

    let status = expect_code(
        client
            .correct_classification(CorrectClassificationRequest {
                name: first[0].name.clone(),
                label: "team_c".to_owned(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["label"]);
    app.stop().await;
}

#[tokio::test]
async fn the_same_text_is_answered_from_the_cache_until_the_label_set_changes() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let text = "My card was declined when paying the invoice";
    let first = classify(&mut client, &set.name, &[text]).await.unwrap();
    let second = classify(&mut client, &set.name, &[text, "A new text"])
        .await
        .unwrap();
    assert!(!first[0].cached);
    assert!(
        first[0].inference_duration.unwrap().nanos > 0
            || first[0].inference_duration.unwrap().seconds > 0
    );
    assert!(second[0].cached, "{second:?}");
    assert_eq!(second[0].inference_duration.unwrap(), Default::default());
    assert!(!second[1].cached);
    assert_eq!(second[0].content_hash, first[0].content_hash);
    assert_eq!(labels_of(&second[0]).scores, labels_of(&first[0]).scores);
    assert_ne!(
        second[0].name, first[0].name,
        "each call stores its own result"
    );

    // Another version of the label set is another key.
    add_example(&mut client, &set.name, "billing", "The payment failed")
        .await
        .unwrap();
    let third = classify(&mut client, &set.name, &[text]).await.unwrap();
    assert!(!third[0].cached);
    assert_ne!(third[0].content_hash, first[0].content_hash);
    app.stop().await;
}

#[tokio::test]
async fn with_the_cache_off_every_text_is_computed() {
    let app = TestApp::spawn_with(|config| config.options.cache_ttl = Duration::ZERO).await;
    let mut client = app.member();
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let text = "Where can I download my invoices?";
    classify(&mut client, &set.name, &[text]).await.unwrap();
    let again = classify(&mut client, &set.name, &[text]).await.unwrap();
    assert!(!again[0].cached);
    app.stop().await;
}

#[tokio::test]
async fn a_text_longer_than_the_model_reads_is_classified_and_flagged_truncated() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let long = format!(
        "I was charged twice for my subscription. {}",
        "Please look into it. ".repeat(300)
    );
    let short = classify(&mut client, &set.name, &["I was charged twice"])
        .await
        .unwrap();
    let results = classify(&mut client, &set.name, &[&long]).await.unwrap();
    assert!(results[0].truncated);
    assert!(!short[0].truncated);
    assert_eq!(results[0].text, long, "the whole text is stored");
    app.stop().await;
}

#[tokio::test]
async fn classifications_are_listed_newest_first_by_label_set_and_source() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let support = create_label_set(&mut client, "Support", support_labels()).await;
    let other = create_label_set(
        &mut client,
        "Mood",
        vec![label("happy", "happy"), label("sad", "sad")],
    )
    .await;
    let first = classify(&mut client, &support.name, &["one", "two"])
        .await
        .unwrap();
    let mood = client
        .classify(ClassifyRequest {
            label_set: other.name.clone(),
            texts: vec!["three".to_owned()],
            source: "executions/42".to_owned(),
            ..ClassifyRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .classifications;
    let list = |label_set: &str, source: &str, page_size: i32, page_token: &str| {
        ListClassificationsRequest {
            label_set: label_set.to_owned(),
            source: source.to_owned(),
            page_size,
            page_token: page_token.to_owned(),
        }
    };
    let all = client
        .list_classifications(list("", "", 0, ""))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = all
        .classifications
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let mut expected = vec![
        first[0].name.as_str(),
        first[1].name.as_str(),
        mood[0].name.as_str(),
    ];
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, expected, "newest first (ids are UUIDv7)");

    let page = client
        .list_classifications(list(&support.name, "", 1, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.classifications.len(), 1);
    let rest = client
        .list_classifications(list(&support.name, "", 1, &page.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.classifications.len(), 1);
    assert_eq!(rest.next_page_token, "");
    assert_ne!(rest.classifications[0].name, page.classifications[0].name);

    let by_source = client
        .list_classifications(list("", "executions/42", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_source.classifications, mood);

    // A token is bound to its filter.
    let status = expect_code(
        client
            .list_classifications(list(&other.name, "", 1, &page.next_page_token))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["page_token"]);
    app.stop().await;
}

#[tokio::test]
async fn bad_classify_requests_are_refused_with_every_bad_field() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let request = |texts: Vec<String>| ClassifyRequest {
        label_set: set.name.clone(),
        texts,
        ..ClassifyRequest::default()
    };

    let status = expect_code(
        client.classify(request(vec![])).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["texts"]);
    let status = expect_code(
        client.classify(request(vec!["a".to_owned(); 33])).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["texts"]);
    let status = expect_code(
        client
            .classify(ClassifyRequest {
                model: "nope".to_owned(),
                source: "s".repeat(501),
                ..request(vec![String::new(), "fine".to_owned(), "x".repeat(32_001)])
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["model", "texts[0]", "texts[2]", "source"]
    );
    // Exactly one of a label set and inline labels.
    let status = expect_code(
        client
            .classify(ClassifyRequest {
                labels: support_labels(),
                ..request(vec!["text".to_owned()])
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["label_set"]);
    let status = expect_code(
        client
            .classify(ClassifyRequest {
                texts: vec!["text".to_owned()],
                ..ClassifyRequest::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["label_set"]);
    let status = expect_code(
        client
            .classify(ClassifyRequest {
                texts: vec!["text".to_owned()],
                labels: vec![label("only", ""), label("", "blank")],
                ..ClassifyRequest::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["labels[1].value"]);
    let status = expect_code(
        client
            .classify(ClassifyRequest {
                label_set: "labelSets/not-a-uuid".to_owned(),
                ..request(vec!["text".to_owned()])
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["label_set"]);

    let status = expect_code(
        client
            .classify(ClassifyRequest {
                label_set: format!("labelSets/{}", uuid::Uuid::now_v7()),
                ..request(vec!["text".to_owned()])
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "LABEL_SET_NOT_FOUND");
    let status = expect_code(
        client
            .classify(ClassifyRequest {
                model: "models/no-such-model".to_owned(),
                ..request(vec!["text".to_owned()])
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "MODEL_NOT_FOUND");
    for name in ["classifications/nope", "labelSets/x"] {
        let status = expect_code(
            client
                .get_classification(GetClassificationRequest {
                    name: name.to_owned(),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_fields(&status), ["name"]);
    }
    let status = expect_code(
        client
            .get_classification(GetClassificationRequest {
                name: format!("classifications/{}", uuid::Uuid::now_v7()),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "CLASSIFICATION_NOT_FOUND");
    app.stop().await;
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_answers_the_first_results() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let request = |text: &str, key: &str| {
        let mut request = tonic::Request::new(ClassifyRequest {
            label_set: set.name.clone(),
            texts: vec![text.to_owned()],
            ..ClassifyRequest::default()
        });
        request
            .metadata_mut()
            .insert("idempotency-key", key.parse().unwrap());
        request
    };
    let first = client
        .classify(request("I was charged twice", "retry-1"))
        .await
        .unwrap()
        .into_inner();
    let retry = client
        .classify(request("I was charged twice", "retry-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first);
    let status = expect_code(
        client.classify(request("Another text", "retry-1")).await,
        Code::InvalidArgument,
    );
    assert_eq!(error_reason(&status), "IDEMPOTENCY_KEY_REUSED");
    let stored = client
        .list_classifications(ListClassificationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.classifications, first.classifications, "stored once");
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_submission_takes_its_classifications_and_the_examples_they_made() {
    use platform::amqp::Publisher;
    use platform::events::Envelope;
    use proto::formflow::events::v1::SubmissionDeleted;

    let app = TestApp::spawn().await;
    let tenant = platform::context::TenantId::generate();
    let mut client = app.user(tenant, platform::context::Role::Member);
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let classify_from = |source: &str| ClassifyRequest {
        label_set: set.name.clone(),
        texts: vec!["My card was charged twice, Jane Doe, +1 555 0100".to_owned()],
        source: source.to_owned(),
        ..ClassifyRequest::default()
    };
    let erased = client
        .classify(classify_from("forms/f1/submissions/s1"))
        .await
        .unwrap()
        .into_inner()
        .classifications
        .remove(0);
    let kept = client
        .classify(classify_from("forms/f1/submissions/s2"))
        .await
        .unwrap()
        .into_inner()
        .classifications
        .remove(0);
    client
        .correct_classification(CorrectClassificationRequest {
            name: erased.name.clone(),
            label: "technical".to_owned(),
        })
        .await
        .unwrap();
    let version = client
        .get_label_set(proto::formflow::ai::v1::GetLabelSetRequest {
            name: set.name.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .version;

    let publisher = Publisher::new(&app.infra.amqp, "test");
    let deleted = Envelope::new(
        Some(tenant),
        SubmissionDeleted {
            submission: "forms/f1/submissions/s1".to_owned(),
            form: "forms/f1".to_owned(),
        },
    );
    // The erasure queue exists once the service's consumer declared it: publish until erased.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        platform::testing::publish_envelope(&publisher, &deleted).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let gone = client
            .get_classification(GetClassificationRequest {
                name: erased.name.clone(),
            })
            .await
            .is_err();
        if gone {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never erased");
    }
    let examples = client
        .list_label_examples(proto::formflow::ai::v1::ListLabelExamplesRequest {
            parent: set.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .examples;
    assert!(examples.is_empty(), "the correction's example went too");
    let after = client
        .get_label_set(proto::formflow::ai::v1::GetLabelSetRequest {
            name: set.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.version, version + 1);
    client
        .get_classification(GetClassificationRequest {
            name: kept.name.clone(),
        })
        .await
        .expect("another submission's classification stays");
    // Nothing of the text is left in the schema.
    let mut admin = app.infra.admin_connection().await;
    let copies: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM ai.classifications WHERE text LIKE '%Jane Doe%' \
                 AND source = 'forms/f1/submissions/s1') \
              + (SELECT count(*) FROM ai.label_examples WHERE text LIKE '%Jane Doe%')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(copies, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_linear_head_joins_the_prototypes_once_every_label_has_eight_examples() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let set = create_label_set(
        &mut client,
        "Teams",
        vec![label("team_a", "team A"), label("team_b", "team B")],
    )
    .await;
    let text = "The CSV export leaves out the last column";
    let before = classify(&mut client, &set.name, &[text]).await.unwrap();
    assert_eq!(
        labels_of(&before[0]).method,
        ClassificationMethod::Prototype as i32
    );
    for index in 0..8 {
        add_example(
            &mut client,
            &set.name,
            "team_a",
            &format!("Exported spreadsheet number {index} is missing data"),
        )
        .await
        .unwrap();
        add_example(
            &mut client,
            &set.name,
            "team_b",
            &format!("I cannot log in to account number {index}"),
        )
        .await
        .unwrap();
    }
    let after = classify(&mut client, &set.name, &[text]).await.unwrap();
    let labels = labels_of(&after[0]);
    assert_eq!(
        labels.method,
        ClassificationMethod::PrototypeAndHead as i32,
        "{after:?}"
    );
    assert_eq!(labels.label_set_version, 17, "each example is a version");
    assert_eq!(labels.top_label, "team_a");
    // The stored result says how it was made.
    let stored = client
        .get_classification(GetClassificationRequest {
            name: after[0].name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        labels_of(&stored).method,
        ClassificationMethod::PrototypeAndHead as i32
    );
    app.stop().await;
}
