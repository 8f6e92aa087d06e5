//! A real svc-forms on a loopback port, over its own database, Redis prefix and RabbitMQ
//! prefix, with clients for each kind of caller and builders of forms.

use clap::Parser;
use platform::context::{Role, TenantId};
use platform::testing::{CallMetadata, TestInfra, TestKeys, TestServer};
use proto::formflow::forms::v1 as wire;
use proto::formflow::forms::v1::form_service_client::FormServiceClient;
use serde_json::Value;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub(crate) type Client = FormServiceClient<InterceptedService<Channel, IdempotentCall>>;

pub(crate) struct TestApp {
    pub(crate) infra: TestInfra,
    pub(crate) keys: TestKeys,
    server: TestServer,
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        Self::spawn_with(TestInfra::new().await, |_| {}).await
    }

    /// Starts svc-forms over `infra` after `configure` adjusted its defaults.
    pub(crate) async fn spawn_with(
        infra: TestInfra,
        configure: impl FnOnce(&mut svc_forms::Config),
    ) -> TestApp {
        let keys = TestKeys::new();
        let mut config = svc_forms::Config::try_parse_from(["svc-forms"]).unwrap();
        config.infra = infra.config();
        config.auth = keys.auth_config();
        configure(&mut config);
        let server = TestServer::start(|listeners| svc_forms::build(config, listeners)).await;
        TestApp {
            infra,
            keys,
            server,
        }
    }

    /// A client sending `token` (none: anonymous), routed to `tenant` as the gateway would.
    pub(crate) fn client(&self, token: Option<&str>, routed: Option<TenantId>) -> Client {
        self.client_with(CallMetadata::new(token, routed))
    }

    /// A client sending `metadata` with each call.
    pub(crate) fn client_with(&self, metadata: CallMetadata) -> Client {
        FormServiceClient::with_interceptor(
            self.server.channel(),
            IdempotentCall {
                metadata,
                key: None,
            },
        )
    }

    /// A user with `role` in `tenant`, routed there.
    pub(crate) fn user(&self, tenant: TenantId, role: Role) -> Client {
        self.client(Some(&self.keys.user_token(tenant, role)), Some(tenant))
    }

    /// A member of `tenant`.
    pub(crate) fn member(&self, tenant: TenantId) -> Client {
        self.user(tenant, Role::Member)
    }

    /// Anyone, through the gateway routed to `tenant`.
    pub(crate) fn anonymous(&self, tenant: TenantId) -> Client {
        self.client(None, Some(tenant))
    }

    /// Anyone, sending `key` as its `Idempotency-Key`.
    pub(crate) fn anonymous_with_key(&self, tenant: TenantId, key: &str) -> Client {
        FormServiceClient::with_interceptor(
            self.server.channel(),
            IdempotentCall {
                metadata: CallMetadata::new(None, Some(tenant)),
                key: Some(key.parse().unwrap()),
            },
        )
    }

    /// Creates `form` in `tenant` as a member.
    pub(crate) async fn create(&self, tenant: TenantId, form: wire::Form) -> wire::Form {
        self.member(tenant)
            .create_form(wire::CreateFormRequest { form: Some(form) })
            .await
            .expect("creating a form")
            .into_inner()
    }

    /// Creates `form` in `tenant` and publishes it.
    pub(crate) async fn published(&self, tenant: TenantId, form: wire::Form) -> wire::Form {
        let created = self.create(tenant, form).await;
        self.member(tenant)
            .publish_form(wire::PublishFormRequest {
                name: created.name,
                etag: String::new(),
            })
            .await
            .expect("publishing a form")
            .into_inner()
    }

    /// Submits `data` to `form` anonymously.
    pub(crate) async fn submit(
        &self,
        tenant: TenantId,
        form: &wire::Form,
        data: Value,
    ) -> Result<wire::Submission, tonic::Status> {
        self.anonymous(tenant)
            .submit_form(submit_request(form, data))
            .await
            .map(tonic::Response::into_inner)
    }
}

/// What the gateway sends, plus an `idempotency-key`.
#[derive(Debug, Clone)]
pub(crate) struct IdempotentCall {
    metadata: CallMetadata,
    key: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl tonic::service::Interceptor for IdempotentCall {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut request = self.metadata.call(request)?;
        if let Some(key) = &self.key {
            request
                .metadata_mut()
                .insert("idempotency-key", key.clone());
        }
        Ok(request)
    }
}

pub(crate) fn submit_request(form: &wire::Form, data: Value) -> wire::SubmitFormRequest {
    wire::SubmitFormRequest {
        parent: form.name.clone(),
        submission: Some(wire::Submission {
            data: Some(serde_json::from_value(data).expect("a JSON object")),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A field of `kind`.
pub(crate) fn field(id: &str, kind: wire::FieldType) -> wire::FormField {
    wire::FormField {
        id: id.into(),
        r#type: kind as i32,
        label: format!("The {id}"),
        ..Default::default()
    }
}

/// `options` as a field's options.
pub(crate) fn options(values: &[&str]) -> Vec<wire::FieldOption> {
    values
        .iter()
        .map(|value| wire::FieldOption {
            value: (*value).into(),
            label: value.to_uppercase(),
        })
        .collect()
}

/// A form titled `title` with `fields`, taking public submissions.
pub(crate) fn public_form(title: &str, fields: Vec<wire::FormField>) -> wire::Form {
    wire::Form {
        title: title.into(),
        fields,
        settings: Some(wire::FormSettings {
            public_submissions: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A condition on `field_id`.
pub(crate) fn when(
    field_id: &str,
    operator: wire::ConditionOperator,
    value: Option<Value>,
) -> Option<wire::FieldCondition> {
    Some(wire::FieldCondition {
        field_id: field_id.into(),
        operator: operator as i32,
        value: value.map(|value| serde_json::from_value(value).unwrap()),
    })
}

/// A submission's data as JSON.
pub(crate) fn data_of(submission: &wire::Submission) -> Value {
    serde_json::to_value(submission.data.as_ref().unwrap()).unwrap()
}
