//! Embed: real vectors from the real model, in request order, whatever the batching.

use proto::formflow::ai::v1::EmbedRequest;
use tonic::Code;

use crate::helpers::{MODEL, TestApp, bad_fields, cosine, embed, expect_code};

#[tokio::test]
async fn embeddings_are_normalised_and_rank_paraphrases_above_unrelated_texts() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let response = client
        .embed(EmbedRequest {
            model: MODEL.to_owned(),
            texts: vec![
                "How do I reset my password?".to_owned(),
                "forgot my login password".to_owned(),
                "please add a dark mode".to_owned(),
                "charged twice for my subscription".to_owned(),
                "duplicate payment for the monthly plan".to_owned(),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.model, MODEL);
    assert_eq!(response.dimensions, 384);
    let [reset, forgot, dark_mode, charged, duplicate] = response.embeddings.as_slice() else {
        panic!(
            "five embeddings expected, got {}",
            response.embeddings.len()
        );
    };
    for embedding in &response.embeddings {
        assert_eq!(embedding.values.len(), 384);
        let norm: f32 = embedding.values.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        assert!(!embedding.truncated);
    }
    // "How do I reset my password?" is 7 word pieces: how do i reset my password ?
    assert_eq!(reset.token_count, 7);
    // Related texts are close, unrelated ones far (measured: 0.77 vs 0.12, 0.58 vs 0.10).
    assert!(cosine(reset, forgot) > 0.6, "{}", cosine(reset, forgot));
    assert!(
        cosine(reset, dark_mode) < 0.3,
        "{}",
        cosine(reset, dark_mode)
    );
    assert!(
        cosine(charged, duplicate) > 0.45,
        "{}",
        cosine(charged, duplicate)
    );
    assert!(cosine(charged, reset) < 0.3, "{}", cosine(charged, reset));
    app.stop().await;
}

#[tokio::test]
async fn the_second_model_reads_its_prefix_and_other_languages() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let response = client
        .embed(EmbedRequest {
            model: "models/multilingual-e5-small".to_owned(),
            texts: vec![
                "How do I reset my password?".to_owned(),
                "Passwort vergessen: wie setze ich es zurück?".to_owned(),
                "please add a dark mode".to_owned(),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.model, "models/multilingual-e5-small");
    let [reset, german, dark_mode] = response.embeddings.as_slice() else {
        panic!("three embeddings expected: {response:?}");
    };
    // ▁How ▁do ▁I ▁reset ▁my ▁password ?: the model's "query: " prefix is not counted.
    assert_eq!(reset.token_count, 7);
    // The German question is closer to the English one than an unrelated English request
    // (measured: 0.90 against 0.81; e5's cosines sit high).
    assert!(
        cosine(reset, german) > cosine(reset, dark_mode) + 0.05,
        "{} vs {}",
        cosine(reset, german),
        cosine(reset, dark_mode)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_text_gets_the_same_vector_alone_and_batched_with_others() {
    let app = TestApp::spawn().await;
    let client = app.member();
    let texts = [
        "short",
        "the website is down and every customer sees a 502 bad gateway",
        "refund",
        "I would like to change the email address of my account please",
    ];
    let embed = |model: &str, texts: &[&str]| {
        let mut client = client.clone();
        let request = EmbedRequest {
            model: model.to_owned(),
            texts: texts.iter().map(|text| (*text).to_owned()).collect(),
        };
        async move { client.embed(request).await.unwrap().into_inner().embeddings }
    };
    // Both models: e5 (dynamic int8 activations) runs its texts one at a time to keep this.
    for model in [MODEL, "models/multilingual-e5-small"] {
        let alone = futures_util::future::join_all(
            texts
                .iter()
                .map(|text| async { embed(model, &[text]).await.remove(0) }),
        )
        .await;
        // Concurrent requests are batched together (sorted by length): same vectors, same order.
        let batched = embed(model, &texts).await;
        let reversed: Vec<&str> = texts.iter().rev().copied().collect();
        let mut reversed_batch = embed(model, &reversed).await;
        reversed_batch.reverse();
        for ((one, two), three) in alone.iter().zip(&batched).zip(&reversed_batch) {
            assert!(cosine(one, two) > 0.9999, "{model}: {}", cosine(one, two));
            assert!(
                cosine(one, three) > 0.9999,
                "{model}: {}",
                cosine(one, three)
            );
            assert_eq!(one.token_count, two.token_count);
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn long_texts_are_truncated_at_the_models_limit_and_say_so() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let long = "word ".repeat(1000);
    let embeddings = embed(&mut client, &[&long, "word word word"])
        .await
        .unwrap();
    assert!(embeddings[0].truncated);
    // 256 tokens in all, [CLS] and [SEP] included.
    assert_eq!(embeddings[0].token_count, 254);
    assert!(!embeddings[1].truncated);
    assert_eq!(embeddings[1].token_count, 3);
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_name_every_bad_field_and_run_nothing() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let request = |model: &str, texts: Vec<String>| EmbedRequest {
        model: model.to_owned(),
        texts,
    };
    let status = expect_code(
        client.embed(request("", vec![])).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["texts"]);

    let status = expect_code(
        client.embed(request("", vec!["ok".to_owned(); 65])).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["texts"]);

    let texts = vec![String::new(), "fine".to_owned(), "x".repeat(32_001)];
    let status = expect_code(
        client.embed(request("all-minilm-l6-v2", texts)).await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["model", "texts[0]", "texts[2]"]);

    // 32,000 characters is the limit, counted in characters (not bytes).
    let at_limit = "é".repeat(32_000);
    assert_eq!(embed(&mut client, &[&at_limit]).await.unwrap().len(), 1);

    let status = expect_code(
        client
            .embed(request("models/no-such-model", vec!["text".to_owned()]))
            .await,
        Code::NotFound,
    );
    assert!(status.message().contains("models/no-such-model"));
    app.stop().await;
}

#[tokio::test]
async fn a_missing_model_directory_runtime_or_sentiment_model_stops_the_start_with_the_reason() {
    let keys = platform::testing::TestKeys::new();
    type Configure = fn(&mut svc_ai::Config);
    let cases: [(Configure, &str); 3] = [
        (
            |config| {
                config.options.models.models_dir =
                    std::env::temp_dir().join(format!("no-models-{}", uuid::Uuid::new_v4()));
            },
            "fetch-ai-assets",
        ),
        (
            |config| {
                config.options.models.onnxruntime_library = "/nonexistent/libonnxruntime.so".into();
            },
            "ONNX Runtime library",
        ),
        (
            |config| config.options.ticket_sentiment_model = "no-such-model".to_owned(),
            "AI_TICKET_SENTIMENT_MODEL names no-such-model",
        ),
    ];
    for (configure, expected) in cases {
        let mut config = crate::helpers::config(&keys);
        configure(&mut config);
        let error = format!(
            "{:#}",
            svc_ai::build(
                config,
                platform::server::Listeners::loopback().await.unwrap()
            )
            .await
            .unwrap_err()
        );
        assert!(error.contains(expected), "{expected:?} not in {error}");
    }
}
