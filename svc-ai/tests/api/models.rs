//! ListModels and GetModel: what is installed, filtered by task, paged, with its version.

use platform::testing::error_reason;
use proto::formflow::ai::v1::{GetModelRequest, ListModelsRequest, ModelState, ModelTask};
use tonic::Code;

use crate::helpers::{MODEL, TestApp, bad_fields, expect_code};

#[tokio::test]
async fn installed_models_are_listed_with_what_they_serve() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let listed = client
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.next_page_token, "");
    let [model, e5] = listed.models.as_slice() else {
        panic!("two models expected: {:?}", listed.models);
    };
    assert_eq!(model.name, MODEL);
    assert_eq!(model.id, "all-minilm-l6-v2");
    // An embedding model classifies on its embeddings.
    let both = [
        ModelTask::Embedding as i32,
        ModelTask::Classification as i32,
    ];
    assert_eq!(model.tasks, both);
    assert_eq!(model.default_for, both);
    assert_eq!(model.version.len(), 16, "{model:?}");
    assert!(model.version.bytes().all(|byte| byte.is_ascii_hexdigit()));
    assert_eq!(model.dimensions, 384);
    assert_eq!(model.max_input_tokens, 256);
    assert_eq!(model.quantization, "int8");
    assert_eq!(model.state, ModelState::Ready as i32);
    // The second model, which reads tickets' sentiment, is the default for nothing.
    assert_eq!(e5.id, "multilingual-e5-small");
    assert_eq!(e5.tasks, both);
    assert!(e5.default_for.is_empty(), "{e5:?}");
    assert_eq!(e5.max_input_tokens, 512);
    assert_ne!(e5.version, model.version);

    let page = |task: ModelTask, page_size: i32, page_token: &str| ListModelsRequest {
        page_size,
        page_token: page_token.to_owned(),
        task: task as i32,
    };
    let embedding = client
        .list_models(page(ModelTask::Embedding, 1, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(embedding.models, std::slice::from_ref(model));
    let rest = client
        .list_models(page(ModelTask::Embedding, 1, &embedding.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.models, std::slice::from_ref(e5));
    assert_eq!(rest.next_page_token, "");
    let classification = client
        .list_models(page(ModelTask::Classification, 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(classification.models.len(), 2);

    let status = expect_code(
        client
            .list_models(page(ModelTask::Embedding, 101, "forged"))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["page_size", "page_token"]);
    let mut bad_task = page(ModelTask::Embedding, 0, "");
    bad_task.task = 99;
    let status = expect_code(client.list_models(bad_task).await, Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["task"]);
    app.stop().await;
}

#[tokio::test]
async fn a_model_is_read_by_name_with_the_same_description() {
    let app = TestApp::spawn().await;
    let mut client = app.user(
        platform::context::TenantId::generate(),
        platform::context::Role::Viewer,
    );
    let listed = client
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let model = client
        .get_model(GetModelRequest {
            name: MODEL.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.models[0], model);

    let status = expect_code(
        client
            .get_model(GetModelRequest {
                name: "models/no-such-model".to_owned(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "MODEL_NOT_FOUND");
    for name in ["", "all-minilm-l6-v2", "models/"] {
        let status = expect_code(
            client
                .get_model(GetModelRequest {
                    name: name.to_owned(),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_fields(&status), ["name"], "{name:?}");
    }
    app.stop().await;
}
