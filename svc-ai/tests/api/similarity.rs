//! Similarity: how alike a text is to each candidate, on the real model.

use proto::formflow::ai::v1::SimilarityRequest;
use tonic::Code;

use crate::helpers::{MODEL, TestApp, bad_fields, expect_code};

fn request(text: &str, candidates: &[&str]) -> SimilarityRequest {
    SimilarityRequest {
        model: String::new(),
        text: text.to_owned(),
        candidates: candidates.iter().map(|text| (*text).to_owned()).collect(),
    }
}

#[tokio::test]
async fn a_paraphrase_scores_higher_than_an_unrelated_text() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let answer = client
        .similarity(request(
            "How do I reset my password?",
            &[
                "add a dark mode",
                "forgot my login password",
                "How do I reset my password?",
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model, MODEL);
    let [unrelated, paraphrase, same] = answer.scores[..] else {
        panic!("three scores expected: {answer:?}");
    };
    assert!(paraphrase > unrelated + 0.3, "{answer:?}");
    assert!((same - 1.0).abs() < 1e-3, "{answer:?}");
    assert!(!answer.truncated);
    assert_eq!(answer.candidates_truncated, [false, false, false]);

    let long = "word ".repeat(1_000);
    let answer = client
        .similarity(request(&long, &["short", &long]))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.truncated);
    assert_eq!(answer.candidates_truncated, [false, true]);
    app.stop().await;
}

#[tokio::test]
async fn bad_similarity_requests_are_refused_with_every_bad_field() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let status = expect_code(
        client.similarity(request("", &[])).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["text", "candidates"]);
    let many = vec!["x"; 64];
    let status = expect_code(
        client.similarity(request("text", &many)).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["candidates"]);
    let status = expect_code(
        client.similarity(request("text", &["fine", ""])).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["candidates[1]"]);
    let mut viewer = app.user(
        platform::context::TenantId::generate(),
        platform::context::Role::Viewer,
    );
    expect_code(
        viewer.similarity(request("a", &["b"])).await,
        Code::PermissionDenied,
    );
    app.stop().await;
}
