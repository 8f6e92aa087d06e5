//! A real svc-ai on an ephemeral port, with clients for each kind of caller.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use platform::context::{Role, TenantId};
use platform::testing::{CallMetadata, TestInfra, TestKeys, TestServer};
use proto::formflow::ai::v1::ai_service_client::AiServiceClient;
use proto::formflow::ai::v1::classification::Outcome;
use proto::formflow::ai::v1::{
    Classification, ClassifyRequest, CreateLabelExampleRequest, CreateLabelSetRequest,
    EmbedRequest, Embedding, Label, LabelClassification, LabelExample, LabelSet,
};
use svc_ai::{Config, ModelsConfig};
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub(crate) use platform::testing::{expect_code, violated_fields as bad_fields};

/// The model `scripts/fetch-ai-assets.sh` installs.
pub(crate) const MODEL: &str = "models/all-minilm-l6-v2";

pub(crate) type Client = AiServiceClient<InterceptedService<Channel, CallMetadata>>;

/// The models the test environment installed.
pub(crate) fn models_config() -> ModelsConfig {
    let path = |name: &str| {
        PathBuf::from(std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with scripts/test.sh, or source .formflow/env")
        }))
    };
    ModelsConfig {
        models_dir: path("AI_MODELS_DIR"),
        onnxruntime_library: path("AI_ONNXRUNTIME_LIBRARY"),
        inference_threads: 2,
        queue_capacity: 64,
        max_batch: 32,
        queue_timeout: Duration::from_secs(30),
    }
}

/// svc-ai's defaults (`svc-ai --help`), with the installed models and `keys` trusted.
pub(crate) fn config(keys: &TestKeys) -> Config {
    let mut config = Config::try_parse_from(["svc-ai"]).expect("the defaults parse");
    config.options.models = models_config();
    config.auth = keys.auth_config();
    config
}

pub(crate) struct TestApp {
    pub(crate) infra: TestInfra,
    pub(crate) keys: TestKeys,
    server: TestServer,
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service after `configure` adjusted its config.
    pub(crate) async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_over(TestInfra::new().await, TestKeys::new(), configure).await
    }

    /// The service over `infra` (another's, to stand in for a restart), trusting `keys`.
    pub(crate) async fn spawn_over(
        infra: TestInfra,
        keys: TestKeys,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut config = config(&keys);
        config.infra = infra.config();
        configure(&mut config);
        let server = TestServer::start(|listeners| svc_ai::build(config, listeners)).await;
        TestApp {
            infra,
            keys,
            server,
        }
    }

    /// A client sending `token` (none: anonymous) and, when given, a routed tenant.
    pub(crate) fn client(&self, token: Option<&str>, routed: Option<TenantId>) -> Client {
        AiServiceClient::with_interceptor(self.server.channel(), CallMetadata::new(token, routed))
    }

    /// A client of a user with `role` in `tenant`.
    pub(crate) fn user(&self, tenant: TenantId, role: Role) -> Client {
        self.client(Some(&self.keys.user_token(tenant, role)), None)
    }

    /// A member of a fresh tenant.
    pub(crate) fn member(&self) -> Client {
        self.user(TenantId::generate(), Role::Member)
    }

    /// Stops the service and waits until it has drained.
    pub(crate) async fn stop(self) {
        self.server.stop().await;
    }

    /// Stops the service and answers what it ran over, to start another over the same.
    pub(crate) async fn stop_keeping(self) -> (TestInfra, TestKeys) {
        self.server.stop().await;
        (self.infra, self.keys)
    }
}

/// Embeds `texts` with the default model.
pub(crate) async fn embed(client: &mut Client, texts: &[&str]) -> Result<Vec<Embedding>, Status> {
    Ok(client
        .embed(EmbedRequest {
            model: String::new(),
            texts: texts.iter().map(|text| (*text).to_owned()).collect(),
        })
        .await?
        .into_inner()
        .embeddings)
}

pub(crate) fn cosine(a: &Embedding, b: &Embedding) -> f32 {
    a.values.iter().zip(&b.values).map(|(x, y)| x * y).sum()
}

/// A label with a description.
pub(crate) fn label(value: &str, description: &str) -> Label {
    Label {
        value: value.to_owned(),
        description: description.to_owned(),
    }
}

/// Support ticket categories, described.
pub(crate) fn support_labels() -> Vec<Label> {
    vec![
        label(
            "billing",
            "billing, invoices, payments, charges and refunds",
        ),
        label(
            "technical",
            "technical problems: errors, crashes, outages and the website not working",
        ),
        label(
            "account",
            "account access: logging in, passwords and signing in",
        ),
        label(
            "feature_request",
            "please add a new feature or option: a suggestion to improve the product",
        ),
    ]
}

/// Creates a label set named `display_name` with `labels`.
pub(crate) async fn create_label_set(
    client: &mut Client,
    display_name: &str,
    labels: Vec<Label>,
) -> LabelSet {
    client
        .create_label_set(CreateLabelSetRequest {
            label_set: Some(LabelSet {
                display_name: display_name.to_owned(),
                labels,
                ..LabelSet::default()
            }),
            from_default: 0,
        })
        .await
        .expect("the label set is created")
        .into_inner()
}

/// Classifies `texts` against the label set `label_set`.
pub(crate) async fn classify(
    client: &mut Client,
    label_set: &str,
    texts: &[&str],
) -> Result<Vec<Classification>, Status> {
    Ok(client
        .classify(ClassifyRequest {
            label_set: label_set.to_owned(),
            texts: texts.iter().map(|text| (*text).to_owned()).collect(),
            ..ClassifyRequest::default()
        })
        .await?
        .into_inner()
        .classifications)
}

/// The label result of a classification.
pub(crate) fn labels_of(classification: &Classification) -> &LabelClassification {
    match &classification.outcome {
        Some(Outcome::Labels(labels)) => labels,
        other => panic!("a label classification expected: {other:?}"),
    }
}

/// Adds an example of `label` to a label set.
pub(crate) async fn add_example(
    client: &mut Client,
    label_set: &str,
    label: &str,
    text: &str,
) -> Result<LabelExample, Status> {
    Ok(client
        .create_label_example(CreateLabelExampleRequest {
            parent: label_set.to_owned(),
            example: Some(LabelExample {
                label: label.to_owned(),
                text: text.to_owned(),
                ..LabelExample::default()
            }),
        })
        .await?
        .into_inner())
}
