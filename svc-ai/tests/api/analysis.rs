//! Submission analysis: submissions analyzed on request or from `forms.submission.created`
//! (once, whatever the deliveries), the exact similar-submission search with its bound, bad
//! input, erasure and other tenants.

use std::time::Duration;

use platform::amqp::Publisher;
use platform::context::{Role, TenantId};
use platform::db::Db;
use platform::events::Envelope;
use platform::testing::{EventObserver, error_reason, publish_envelope};
use proto::formflow::ai::v1::classification::Outcome;
use proto::formflow::ai::v1::search_similar_submissions_request::Query;
use proto::formflow::ai::v1::{
    AnalyzeSubmissionRequest, GetSubmissionAnalysisRequest, ListClassificationsRequest,
    SearchSimilarSubmissionsRequest, SearchSimilarSubmissionsResponse, SubmissionAnalysis,
    SubmissionText,
};
use proto::formflow::events::v1::{SubmissionCreated, SubmissionDeleted, SubmittedAnswer};
use proto::formflow::forms::v1::{AnalysisSettings, FieldType, Submission};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{
    Client, TestApp, bad_fields, create_label_set, expect_code, labels_of, support_labels,
};

fn submission_of(form: &str) -> String {
    format!("{form}/submissions/{}", Uuid::now_v7())
}

fn new_form() -> String {
    format!("forms/{}", Uuid::now_v7())
}

fn answer(label: &str, text: &str) -> SubmissionText {
    SubmissionText {
        field_id: label.to_lowercase().replace(' ', "_"),
        label: label.to_owned(),
        text: text.to_owned(),
    }
}

async fn analyze(
    client: &mut Client,
    submission: &str,
    texts: &[&str],
    label_set: &str,
) -> Result<SubmissionAnalysis, tonic::Status> {
    Ok(client
        .analyze_submission(AnalyzeSubmissionRequest {
            submission: submission.to_owned(),
            answers: texts
                .iter()
                .map(|text| answer("Your issue", text))
                .collect(),
            label_set: label_set.to_owned(),
            model: String::new(),
        })
        .await?
        .into_inner())
}

async fn search(
    client: &mut Client,
    query: Query,
    form: &str,
) -> Result<SearchSimilarSubmissionsResponse, tonic::Status> {
    Ok(client
        .search_similar_submissions(SearchSimilarSubmissionsRequest {
            query: Some(query),
            form: form.to_owned(),
            ..SearchSimilarSubmissionsRequest::default()
        })
        .await?
        .into_inner())
}

fn found(response: &SearchSimilarSubmissionsResponse) -> Vec<&str> {
    response
        .results
        .iter()
        .map(|result| result.analysis.as_ref().unwrap().submission.as_str())
        .collect()
}

async fn get(client: &mut Client, name: &str) -> Result<SubmissionAnalysis, tonic::Status> {
    Ok(client
        .get_submission_analysis(GetSubmissionAnalysisRequest {
            name: name.to_owned(),
        })
        .await?
        .into_inner())
}

#[tokio::test]
async fn analyzed_submissions_are_classified_and_found_by_similar_text_or_submission() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let (support, sales) = (new_form(), new_form());
    let charged = submission_of(&support);
    let refund = submission_of(&support);
    let password = submission_of(&support);
    let crash = submission_of(&sales);

    // Without a label set, a submission is triaged as a ticket.
    let analysis = analyze(
        &mut client,
        &charged,
        &["My card was charged twice for the same invoice"],
        "",
    )
    .await
    .unwrap();
    let id = charged.rsplit('/').next().unwrap();
    assert_eq!(analysis.name, format!("submissionAnalyses/{id}"));
    assert_eq!(analysis.submission, charged);
    assert_eq!(analysis.form, support);
    assert_eq!(
        analysis.text,
        "My card was charged twice for the same invoice"
    );
    assert_eq!(analysis.model, crate::helpers::MODEL);
    assert!(!analysis.model_version.is_empty());
    let classification = analysis.classification.as_ref().unwrap();
    assert_eq!(classification.source, charged, "erased with the submission");
    let Some(Outcome::Ticket(ticket)) = &classification.outcome else {
        panic!("a ticket triage expected: {classification:?}");
    };
    assert_eq!(ticket.category.as_ref().unwrap().label, "billing");
    assert_eq!(get(&mut client, &analysis.name).await.unwrap(), analysis);

    // Against a label set, each answer on its own line after its label.
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let labelled = client
        .analyze_submission(AnalyzeSubmissionRequest {
            submission: refund.clone(),
            answers: vec![
                answer("Subject", "Refund"),
                answer(
                    "Details",
                    "Please refund the duplicate payment on my invoice",
                ),
            ],
            label_set: set.name.clone(),
            model: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        labelled.text,
        "Subject: Refund\nDetails: Please refund the duplicate payment on my invoice"
    );
    let labels = labels_of(labelled.classification.as_ref().unwrap());
    assert_eq!(labels.label_set, set.name);
    assert_eq!(labels.top_label, "billing");
    analyze(
        &mut client,
        &password,
        &["I forgot my password and cannot sign in to my account"],
        "",
    )
    .await
    .unwrap();
    analyze(
        &mut client,
        &crash,
        &["The app crashes with an error every time I open the dashboard"],
        "",
    )
    .await
    .unwrap();

    // By text: every analysis compared, the billing ones first, scores falling.
    let response = search(
        &mut client,
        Query::Text("I was billed two times, I want my money back".to_owned()),
        "",
    )
    .await
    .unwrap();
    assert_eq!(response.scanned, 4);
    assert!(!response.scan_truncated);
    let submissions = found(&response);
    assert_eq!(submissions.len(), 4);
    assert!(
        submissions[..2].contains(&charged.as_str()) && submissions[..2].contains(&refund.as_str()),
        "{submissions:?}"
    );
    let scores: Vec<f32> = response.results.iter().map(|result| result.score).collect();
    assert!(
        scores.windows(2).all(|pair| pair[0] >= pair[1]),
        "{scores:?}"
    );
    assert!(scores.iter().all(|score| (-1.0..=1.0).contains(score)));

    // By submission: itself left out, the other billing one first.
    let response = search(&mut client, Query::Analysis(analysis.name.clone()), "")
        .await
        .unwrap();
    let submissions = found(&response);
    assert_eq!(submissions.len(), 3);
    assert_eq!(submissions[0], refund);
    assert!(!submissions.contains(&charged.as_str()));

    // Of one form only, with a limit and a least score.
    let response = search(
        &mut client,
        Query::Text("the application crashed".to_owned()),
        &sales,
    )
    .await
    .unwrap();
    assert_eq!(found(&response), [crash.as_str()]);
    assert_eq!(response.scanned, 1);
    let limited = client
        .search_similar_submissions(SearchSimilarSubmissionsRequest {
            query: Some(Query::Text("refund".to_owned())),
            limit: 1,
            ..SearchSimilarSubmissionsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(limited.results.len(), 1);
    assert_eq!(limited.scanned, 4);
    let demanding = client
        .search_similar_submissions(SearchSimilarSubmissionsRequest {
            query: Some(Query::Text("the weather in Lisbon in spring".to_owned())),
            min_score: 0.9,
            ..SearchSimilarSubmissionsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(demanding.results.is_empty(), "{demanding:?}");

    // Analyzing again replaces the analysis: its name and creation stay.
    let again = analyze(
        &mut client,
        &charged,
        &["I cannot log in since the password reset"],
        "",
    )
    .await
    .unwrap();
    assert_eq!(again.name, analysis.name);
    assert_eq!(again.create_time, analysis.create_time);
    let seconds = |analysis: &SubmissionAnalysis| {
        let time = analysis.update_time.unwrap();
        (time.seconds, time.nanos)
    };
    assert!(seconds(&again) > seconds(&analysis));
    let Some(Outcome::Ticket(ticket)) = &again.classification.as_ref().unwrap().outcome else {
        panic!("a ticket triage expected");
    };
    assert_eq!(ticket.category.as_ref().unwrap().label, "account");
    assert_eq!(get(&mut client, &analysis.name).await.unwrap(), again);
    let response = search(&mut client, Query::Analysis(analysis.name.clone()), "")
        .await
        .unwrap();
    assert_eq!(found(&response)[0], password, "compared by its new text");
    app.stop().await;
}

#[tokio::test]
async fn bad_analyses_and_searches_are_refused_with_every_bad_field() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut client = app.user(tenant, Role::Member);
    let status = expect_code(
        client
            .analyze_submission(AnalyzeSubmissionRequest {
                submission: "forms/contact/submissions/1".to_owned(),
                answers: vec![
                    answer("Name", " "),
                    answer(&"l".repeat(201), "fine"),
                    answer("Long", &"x".repeat(10_001)),
                ],
                label_set: "support".to_owned(),
                model: "minilm".to_owned(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        [
            "submission",
            "model",
            "label_set",
            "answers[0].text",
            "answers[1].label",
            "answers[2].text"
        ]
    );
    let submission = submission_of(&new_form());
    let many: Vec<SubmissionText> = (0..51).map(|_| answer("A", "text")).collect();
    let too_long: Vec<SubmissionText> = (0..3).map(|_| answer("A", &"y".repeat(7_000))).collect();
    for answers in [Vec::new(), many, too_long] {
        let status = expect_code(
            client
                .analyze_submission(AnalyzeSubmissionRequest {
                    submission: submission.clone(),
                    answers,
                    ..AnalyzeSubmissionRequest::default()
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_fields(&status), ["answers"]);
    }
    let unknown_set = format!("labelSets/{}", Uuid::now_v7());
    let status = expect_code(
        analyze(&mut client, &submission, &["text"], &unknown_set).await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "LABEL_SET_NOT_FOUND");
    let status = expect_code(
        client
            .analyze_submission(AnalyzeSubmissionRequest {
                submission: submission.clone(),
                answers: vec![answer("A", "text")],
                model: "models/nope".to_owned(),
                ..AnalyzeSubmissionRequest::default()
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "MODEL_NOT_FOUND");
    // Nothing was stored by the refused calls.
    let status = expect_code(
        get(
            &mut client,
            &format!(
                "submissionAnalyses/{}",
                submission.rsplit('/').next().unwrap()
            ),
        )
        .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "SUBMISSION_ANALYSIS_NOT_FOUND");

    let status = expect_code(
        client
            .search_similar_submissions(SearchSimilarSubmissionsRequest {
                query: None,
                form: "contact".to_owned(),
                limit: 51,
                min_score: 1.5,
                model: "x".to_owned(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["text", "form", "limit", "min_score", "model"]
    );
    let status = expect_code(
        search(&mut client, Query::Text(String::new()), "").await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["text"]);
    let status = expect_code(
        search(&mut client, Query::Analysis("submissions/1".to_owned()), "").await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["analysis"]);
    let status = expect_code(
        search(
            &mut client,
            Query::Analysis(format!("submissionAnalyses/{}", Uuid::now_v7())),
            "",
        )
        .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "SUBMISSION_ANALYSIS_NOT_FOUND");

    // Viewers read and search; they do not analyze.
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    analyze(&mut client, &submission, &["The export is slow"], &set.name)
        .await
        .unwrap();
    let mut viewer = app.user(tenant, Role::Viewer);
    expect_code(
        analyze(&mut viewer, &submission, &["planted"], &set.name).await,
        Code::PermissionDenied,
    );
    let response = search(&mut viewer, Query::Text("slow export".to_owned()), "")
        .await
        .unwrap();
    assert_eq!(found(&response), [submission.as_str()]);
    app.stop().await;
}

#[tokio::test]
async fn the_scan_bound_limits_a_search_to_the_newest_analyses_and_says_so() {
    let app = TestApp::spawn_with(|config| config.options.similar_scan_limit = 3).await;
    let mut client = app.member();
    // Against a label set: the shipped ticket defaults take seconds to build.
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let form = new_form();
    let mut submissions = Vec::new();
    for text in [
        "refund my double charge",
        "the invoice total is wrong",
        "I cannot sign in",
        "the page does not load",
        "please add a dark mode",
    ] {
        let submission = submission_of(&form);
        analyze(&mut client, &submission, &[text], &set.name)
            .await
            .unwrap();
        submissions.push(submission);
    }
    let response = search(&mut client, Query::Text("billing problem".to_owned()), "")
        .await
        .unwrap();
    assert_eq!(response.scanned, 3);
    assert!(response.scan_truncated);
    let mut submitted: Vec<&str> = found(&response);
    submitted.sort_unstable();
    let mut newest: Vec<&str> = submissions[2..].iter().map(String::as_str).collect();
    newest.sort_unstable();
    assert_eq!(submitted, newest, "only the three newest are compared");
    app.stop().await;
}

/// `forms.submission.created` of a submission of `form` with `answers`, as svc-forms
/// announces it.
fn created(
    tenant: TenantId,
    form: &str,
    answers: Vec<SubmittedAnswer>,
    analysis: Option<AnalysisSettings>,
) -> Envelope<SubmissionCreated> {
    let name = submission_of(form);
    Envelope::new(
        Some(tenant),
        SubmissionCreated {
            submission: Some(Submission {
                id: name.rsplit('/').next().unwrap().to_owned(),
                name,
                ..Submission::default()
            }),
            form: form.to_owned(),
            form_title: "Support".to_owned(),
            answers,
            analysis,
            ..SubmissionCreated::default()
        },
    )
}

fn submitted(field: &str, kind: FieldType, value: serde_json::Value) -> SubmittedAnswer {
    SubmittedAnswer {
        field_id: field.to_owned(),
        label: field.to_owned(),
        r#type: kind as i32,
        value: Some(serde_json::from_value(value).unwrap()),
    }
}

fn analysis_name(envelope: &Envelope<SubmissionCreated>) -> String {
    format!(
        "submissionAnalyses/{}",
        envelope.data.submission.as_ref().unwrap().id
    )
}

#[tokio::test]
async fn a_form_that_asks_for_it_has_each_submission_analyzed_once_from_its_event() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut client = app.user(tenant, Role::Member);
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let mut classifications =
        EventObserver::start(&app.infra.amqp, &["ai.classification.completed.v1"]).await;
    let publisher = Publisher::new(&app.infra.amqp, "test");
    let form = new_form();
    let enabled = |label_set: &str| {
        Some(AnalysisSettings {
            enabled: true,
            label_set: label_set.to_owned(),
        })
    };
    let ticket = created(
        tenant,
        &form,
        vec![
            submitted("email", FieldType::Email, json!("ada@example.org")),
            submitted(
                "issue",
                FieldType::Textarea,
                json!("I was charged twice this month"),
            ),
            submitted("plan", FieldType::Select, json!("pro")),
        ],
        enabled(""),
    );
    let labelled = created(
        tenant,
        &form,
        vec![submitted(
            "issue",
            FieldType::Text,
            json!("I cannot sign in to my account"),
        )],
        enabled(&set.name),
    );
    let not_asked = created(
        tenant,
        &form,
        vec![submitted(
            "issue",
            FieldType::Text,
            json!("The page is blank"),
        )],
        None,
    );
    let no_text = created(
        tenant,
        &form,
        vec![submitted("rating", FieldType::Rating, json!(4))],
        enabled(""),
    );
    // The service's queue exists once its consumer declared it: publish the first until it
    // is analyzed (its triage first builds the shipped defaults: long on a loaded machine).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        publish_envelope(&publisher, &ticket).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        if get(&mut client, &analysis_name(&ticket)).await.is_ok() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never analyzed");
    }
    for envelope in [&labelled, &not_asked, &no_text, &ticket, &labelled] {
        publish_envelope(&publisher, envelope).await;
    }

    // Each analyzed submission has one classification and one event, however often its event
    // came; the others have none.
    let events = classifications.receive(2, Duration::from_secs(60)).await;
    let mut sources: Vec<String> = events
        .iter()
        .map(|event| {
            event.body["data"]["classification"]["source"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    sources.sort_unstable();
    let mut expected = vec![
        ticket.data.submission.as_ref().unwrap().name.clone(),
        labelled.data.submission.as_ref().unwrap().name.clone(),
    ];
    expected.sort_unstable();
    assert_eq!(sources, expected);
    assert!(
        classifications
            .nothing_more_arrives(Duration::from_secs(3))
            .await
    );
    let analysis = get(&mut client, &analysis_name(&ticket)).await.unwrap();
    // Only the text answer is read: it is alone.
    assert_eq!(analysis.text, "I was charged twice this month");
    assert!(matches!(
        analysis.classification.unwrap().outcome,
        Some(Outcome::Ticket(_))
    ));
    let analysis = get(&mut client, &analysis_name(&labelled)).await.unwrap();
    assert_eq!(analysis.text, "I cannot sign in to my account");
    let labels = labels_of(analysis.classification.as_ref().unwrap());
    assert_eq!(
        (labels.label_set.as_str(), labels.top_label.as_str()),
        (set.name.as_str(), "account")
    );
    for envelope in [&not_asked, &no_text] {
        expect_code(
            get(&mut client, &analysis_name(envelope)).await,
            Code::NotFound,
        );
    }
    for envelope in [&ticket, &labelled] {
        let stored = client
            .list_classifications(ListClassificationsRequest {
                source: envelope.data.submission.as_ref().unwrap().name.clone(),
                ..ListClassificationsRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .classifications;
        assert_eq!(stored.len(), 1);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_submission_takes_its_analysis_and_embedding() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut client = app.user(tenant, Role::Member);
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let form = new_form();
    let (erased, kept) = (submission_of(&form), submission_of(&form));
    let analysis = analyze(
        &mut client,
        &erased,
        &["Jane Doe, my card was charged twice"],
        &set.name,
    )
    .await
    .unwrap();
    analyze(
        &mut client,
        &kept,
        &["my card was charged twice"],
        &set.name,
    )
    .await
    .unwrap();
    let publisher = Publisher::new(&app.infra.amqp, "test");
    let deleted = Envelope::new(
        Some(tenant),
        SubmissionDeleted {
            submission: erased.clone(),
            form: form.clone(),
        },
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        publish_envelope(&publisher, &deleted).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if get(&mut client, &analysis.name).await.is_err() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never erased");
    }
    let response = search(&mut client, Query::Text("charged twice".to_owned()), "")
        .await
        .unwrap();
    assert_eq!(found(&response), [kept.as_str()]);
    let mut admin = app.infra.admin_connection().await;
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM ai.submission_analyses WHERE submission = $1) \
              + (SELECT count(*) FROM ai.classifications WHERE text LIKE '%Jane Doe%')",
    )
    .bind(&erased)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(left, 0);
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_analyses_are_neither_found_nor_compared() {
    let app = TestApp::spawn().await;
    let (acme_tenant, globex_tenant) = (TenantId::generate(), TenantId::generate());
    let mut acme = app.user(acme_tenant, Role::Owner);
    let mut globex = app.user(globex_tenant, Role::Owner);
    let acme_set = create_label_set(&mut acme, "Support", support_labels()).await;
    let globex_set = create_label_set(&mut globex, "Support", support_labels()).await;
    let submission = submission_of(&new_form());
    let analysis = analyze(
        &mut acme,
        &submission,
        &["Acme's card was charged twice"],
        &acme_set.name,
    )
    .await
    .unwrap();

    let status = expect_code(get(&mut globex, &analysis.name).await, Code::NotFound);
    assert_eq!(error_reason(&status), "SUBMISSION_ANALYSIS_NOT_FOUND");
    expect_code(
        search(&mut globex, Query::Analysis(analysis.name.clone()), "").await,
        Code::NotFound,
    );
    let response = search(
        &mut globex,
        Query::Text("card charged twice".to_owned()),
        "",
    )
    .await
    .unwrap();
    assert!(response.results.is_empty());
    assert_eq!(response.scanned, 0);
    let status = expect_code(
        analyze(&mut globex, &submission, &["planted"], &acme_set.name).await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "LABEL_SET_NOT_FOUND");
    // The same submission name in another tenant is that tenant's own analysis.
    let own = analyze(
        &mut globex,
        &submission,
        &["a password reset"],
        &globex_set.name,
    )
    .await
    .unwrap();
    assert_eq!(own.name, analysis.name);
    assert_eq!(get(&mut acme, &analysis.name).await.unwrap(), analysis);
    // A token of one tenant routed to another is denied.
    let mut routed = app.client(
        Some(&app.keys.user_token(acme_tenant, Role::Owner)),
        Some(globex_tenant),
    );
    expect_code(
        get(&mut routed, &analysis.name).await,
        Code::PermissionDenied,
    );

    let db = Db::connect(&app.infra.db, &svc_ai::app::SCHEMA)
        .await
        .unwrap();
    for tenant in [acme_tenant, globex_tenant] {
        let mut transaction = db.tenant_tx(tenant).await.unwrap();
        let texts: Vec<String> = sqlx::query_scalar(
            "SELECT c.text FROM ai.submission_analyses a \
             JOIN ai.classifications c ON c.id = a.classification_id",
        )
        .fetch_all(&mut *transaction)
        .await
        .unwrap();
        let expected = if tenant == acme_tenant {
            "Acme's card was charged twice"
        } else {
            "a password reset"
        };
        assert_eq!(texts, [expected]);
        let changed = sqlx::query("UPDATE ai.submission_analyses SET form = 'forms/hijacked'")
            .execute(&mut *transaction)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1, "only its own row");
        transaction.rollback().await.unwrap();
    }
    app.stop().await;
}
