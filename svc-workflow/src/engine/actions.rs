//! The nodes that act on the world. Each attempt of one node in one execution (and loop
//! item) carries the same idempotency key, so a target that honours it acts once however
//! often the attempt is made (a retry, or a worker that died before recording the outcome).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use platform::context::TenantId;
use platform::crypto::Sealer;
use platform::db::Db;
use platform::outbound::{self, NetworkPolicy};
use serde_json::{Map, Value, json};

use crate::domain::execution::{Failure, MAX_OUTPUT_BYTES};
use crate::domain::expression::{self, Data};
use crate::domain::{CredentialId, CredentialType, CredentialValue, Node};
use crate::engine::services::{CallError, SuiteServices};
use crate::operations::seal_context;
use crate::store;
use proto::formflow::ai::v1 as ai;
use proto::formflow::notify::v1 as notify;

/// Why an action failed, and whether another attempt may succeed.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionFailure {
    /// What happened.
    pub failure: Failure,
    /// Whether the node's retry policy applies (a timeout, a 5xx, a 429, an unreachable
    /// host), or the failure is final (a 4xx, a bad URL, a refused address).
    pub retryable: bool,
}

impl ActionFailure {
    fn retryable(code: &str, message: impl Into<String>) -> Self {
        ActionFailure {
            failure: Failure::new(code, message),
            retryable: true,
        }
    }

    fn last(code: &str, message: impl Into<String>) -> Self {
        ActionFailure {
            failure: Failure::new(code, message),
            retryable: false,
        }
    }
}

/// What actions need: HTTP clients that keep to the deployment's network policy, and the
/// credentials of the tenant, opened only while a request is made.
#[derive(Debug, Clone)]
pub struct Actions {
    policy: Arc<NetworkPolicy>,
    following: reqwest::Client,
    not_following: reqwest::Client,
    db: Db,
    sealer: Arc<Sealer>,
    services: Option<SuiteServices>,
}

impl Actions {
    /// Actions reaching what `policy` permits, reading credentials from `db` with `sealer`,
    /// calling svc-ai and svc-notify through `services` where the deployment reaches them.
    pub fn new(
        policy: NetworkPolicy,
        db: Db,
        sealer: Arc<Sealer>,
        services: Option<SuiteServices>,
    ) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let agent = concat!("FormFlow-Workflow/", env!("CARGO_PKG_VERSION"));
        Ok(Actions {
            following: outbound::client(policy.clone(), true, agent)?,
            not_following: outbound::client(policy.clone(), false, agent)?,
            policy,
            db,
            sealer,
            services,
        })
    }

    /// Runs action `node` of `tenant` on `input` with idempotency key `key`.
    pub async fn run(
        &self,
        tenant: TenantId,
        node: &Node,
        input: &Value,
        key: &str,
    ) -> Result<Value, ActionFailure> {
        match node.node_type.as_str() {
            "action.http" => self.http(tenant, node, input, key).await,
            "action.ai_classify" => self.ai_classify(tenant, node, input, key).await,
            "action.notify" => self.notify(tenant, node, input, key, notify_request).await,
            "action.email" => self.notify(tenant, node, input, key, email_request).await,
            other => Err(ActionFailure::last(
                "INTERNAL",
                format!("{other} is not an action"),
            )),
        }
    }

    /// `action.http`: the request its config describes, rendered over the input; its
    /// status, headers and body (JSON when the answer says so, else text).
    async fn http(
        &self,
        tenant: TenantId,
        node: &Node,
        input: &Value,
        key: &str,
    ) -> Result<Value, ActionFailure> {
        let config = &node.config;
        let data = expression::data(input).map_err(template_error)?;
        let url = text(&render(&config["url"], &data)?);
        let url: reqwest::Url = url
            .parse()
            .map_err(|_| ActionFailure::last("INVALID_URL", "the URL is not a valid URL"))?;
        self.policy_check(&url)?;
        let method = config
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .parse::<reqwest::Method>()
            .map_err(|_| ActionFailure::last("INTERNAL", "unknown method"))?;
        let follow = config
            .get("follow_redirects")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let client = if follow {
            &self.following
        } else {
            &self.not_following
        };
        let timeout = config
            .get("timeout_seconds")
            .and_then(Value::as_u64)
            .unwrap_or(30);
        let mut request = client
            .request(method, url)
            .timeout(Duration::from_secs(timeout))
            .header("idempotency-key", key);
        if let Some(Value::Object(query)) = config.get("query") {
            let mut pairs = Vec::with_capacity(query.len());
            for (name, template) in query {
                pairs.push((name.clone(), text(&render(template, &data)?)));
            }
            request = request.query(&pairs);
        }
        if let Some(Value::Object(headers)) = config.get("headers") {
            for (name, template) in headers {
                request = request.header(name.as_str(), text(&render(template, &data)?));
            }
        }
        match config.get("body") {
            None | Some(Value::Null) => {}
            Some(template) => match render(template, &data)? {
                Value::String(body) if template.is_string() => {
                    request = request
                        .header("content-type", "text/plain; charset=utf-8")
                        .body(body);
                }
                body => {
                    request = request
                        .header("content-type", "application/json")
                        .body(body.to_string());
                }
            },
        }
        if let Some(credential) = config.get("credential").and_then(Value::as_str) {
            let (name, value) = self.authentication(tenant, credential).await?;
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(request_failure)?;
        let status = response.status();
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            if let Ok(value) = value.to_str() {
                headers.insert(name.as_str().to_owned(), json!(value));
            }
        }
        let is_json = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("json"));
        let body = read_capped(response).await?;
        let body = if body.is_empty() {
            Value::Null
        } else if is_json {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        } else {
            Value::String(String::from_utf8_lossy(&body).into_owned())
        };
        let fail_on_error = config
            .get("fail_on_error_status")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        if fail_on_error && (status.is_client_error() || status.is_server_error()) {
            let message = format!("the server answered {status}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                ActionFailure::retryable("HTTP_ERROR", message)
            } else {
                ActionFailure::last("HTTP_ERROR", message)
            });
        }
        Ok(json!({"status": status.as_u16(), "headers": headers, "body": body}))
    }

    /// `action.ai_classify`: the text its config renders, classified against its label set by
    /// svc-ai; the label, its confidence, the runner-up, every score and the stored
    /// classification's name.
    async fn ai_classify(
        &self,
        tenant: TenantId,
        node: &Node,
        input: &Value,
        key: &str,
    ) -> Result<Value, ActionFailure> {
        let config = &node.config;
        let data = expression::data(input).map_err(template_error)?;
        let content = text(&render(&config["text"], &data)?);
        let source = match config.get("source") {
            Some(template) => text(&render(template, &data)?),
            None => String::new(),
        };
        let label_set = config["label_set"].as_str().unwrap_or_default().to_owned();
        let classification = self
            .services(node, "svc-ai (WORKFLOW_AI_URL)")?
            .classify(tenant, content, label_set, source, key)
            .await
            .map_err(|error| call_failure(node, "svc-ai (WORKFLOW_AI_URL)", "AI", error))?;
        let Some(ai::classification::Outcome::Labels(labels)) = classification.outcome else {
            return Err(ActionFailure::last(
                "INTERNAL",
                "svc-ai answered no label classification",
            ));
        };
        Ok(json!({
            "label": labels.top_label,
            "confidence": labels.confidence,
            "runner_up": labels.runner_up.map(|runner_up| json!({
                "label": runner_up.label,
                "confidence": runner_up.score,
            })),
            "scores": labels.scores.iter().map(|score| json!({
                "label": score.label,
                "confidence": score.score,
            })).collect::<Vec<_>>(),
            "classification": classification.name,
            "label_set_version": labels.label_set_version,
            "model_version": classification.model_version,
            "truncated": classification.truncated,
        }))
    }

    /// `action.notify` and `action.email`: the notification `request` renders from their
    /// config, sent by svc-notify once per attempt (the idempotency key is its transaction
    /// id); its name, its deliveries, and whether an earlier attempt had sent it.
    async fn notify(
        &self,
        tenant: TenantId,
        node: &Node,
        input: &Value,
        key: &str,
        request: NotificationRequest,
    ) -> Result<Value, ActionFailure> {
        let data = expression::data(input).map_err(template_error)?;
        let notification = request(&node.config, &data)?;
        let answer = self
            .services(node, "svc-notify (WORKFLOW_NOTIFY_URL)")?
            .send(tenant, notification, key)
            .await
            .map_err(|error| {
                call_failure(node, "svc-notify (WORKFLOW_NOTIFY_URL)", "NOTIFY", error)
            })?;
        let sent = answer.notification.unwrap_or_default();
        Ok(json!({
            "notification": sent.name,
            "duplicate": answer.duplicate,
            "deliveries": sent.deliveries.iter().map(|delivery| json!({
                "name": delivery.name,
                "channel": delivery.channel().as_str_name(),
                "state": delivery.state().as_str_name(),
            })).collect::<Vec<_>>(),
        }))
    }

    /// The suite services, or why `node` cannot run without `service`.
    fn services(&self, node: &Node, service: &str) -> Result<&SuiteServices, ActionFailure> {
        self.services
            .as_ref()
            .ok_or_else(|| not_configured(node, service))
    }

    /// Refuses a URL that is not http(s), or whose host is an address the policy refuses
    /// (the clients check names, once resolved, and redirects).
    fn policy_check(&self, url: &reqwest::Url) -> Result<(), ActionFailure> {
        match self.policy.check_url(url) {
            Ok(()) => Ok(()),
            Err(refused @ outbound::Refused::Internal(_)) => {
                Err(ActionFailure::last("SSRF_BLOCKED", refused.to_string()))
            }
            Err(refused) => Err(ActionFailure::last("INVALID_URL", refused.to_string())),
        }
    }

    /// The header that authenticates with credential `name` of `tenant`.
    async fn authentication(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<(String, String), ActionFailure> {
        let unusable = || {
            ActionFailure::last(
                "CREDENTIAL_NOT_FOUND",
                format!("{name} does not exist, or is not a credential for HTTP requests"),
            )
        };
        let id = name
            .strip_prefix("credentials/")
            .and_then(|id| CredentialId::parse(id).ok())
            .ok_or_else(unusable)?;
        let sealed = async {
            let mut transaction = self.db.tenant_tx(tenant).await?;
            let sealed = store::get_sealed_credential(&mut transaction, tenant, id).await?;
            transaction.commit().await?;
            anyhow::Ok(sealed)
        }
        .await
        .map_err(|error| {
            tracing::warn!(error = format!("{error:#}"), "reading a credential failed");
            ActionFailure::retryable("INTERNAL", "the credential could not be read")
        })?;
        let (kind, sealed) = sealed.ok_or_else(unusable)?;
        let opened = self
            .sealer
            .open(&seal_context(tenant, id), &sealed)
            .ok()
            .and_then(|json| serde_json::from_slice::<Map<String, Value>>(&json).ok())
            .and_then(|value| CredentialValue::parse(kind, value).ok())
            .ok_or_else(|| {
                ActionFailure::last(
                    "CREDENTIAL_UNREADABLE",
                    format!("{name} cannot be opened with this deployment's keys"),
                )
            })?;
        let secret = |key: &str| opened.get(key).unwrap_or_default().to_owned();
        match kind {
            CredentialType::BearerToken => Ok((
                "authorization".to_owned(),
                format!("Bearer {}", secret("token")),
            )),
            CredentialType::BasicAuth => {
                let pair = format!("{}:{}", secret("username"), secret("password"));
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                Ok(("authorization".to_owned(), format!("Basic {encoded}")))
            }
            CredentialType::Header => Ok((secret("header"), secret("value"))),
            CredentialType::WebhookSecret | CredentialType::Generic => Err(unusable()),
        }
    }
}

/// How a node's config and data make a notification.
type NotificationRequest =
    fn(&Map<String, Value>, &Data) -> Result<notify::SendNotificationRequest, ActionFailure>;

/// The request of an `action.notify` node: its recipients (`users/{id}`, an email address or
/// `webhookEndpoints/{id}` each), topic, template or subject and body, payload and priority.
fn notify_request(
    config: &Map<String, Value>,
    data: &Data,
) -> Result<notify::SendNotificationRequest, ActionFailure> {
    let mut recipients = Vec::new();
    for template in config["recipients"].as_array().into_iter().flatten() {
        recipients.push(recipient(&text(&render(template, data)?))?);
    }
    let content = match config.get("template") {
        Some(_) => None,
        None => Some(notify::InlineContent {
            subject: text(&render(&config["subject"], data)?),
            body: text(&render(&config["body"], data)?),
            link: String::new(),
        }),
    };
    let payload = match config.get("payload") {
        Some(template) => Some(
            serde_json::from_value(render(template, data)?)
                .map_err(|_| template_error("the payload is not an object".to_owned()))?,
        ),
        None => None,
    };
    let priority = match config.get("priority").and_then(Value::as_str) {
        Some("low") => notify::NotificationPriority::Low,
        Some("high") => notify::NotificationPriority::High,
        Some("urgent") => notify::NotificationPriority::Urgent,
        _ => notify::NotificationPriority::Normal,
    };
    Ok(notify::SendNotificationRequest {
        recipients,
        topic: config["topic"].as_str().unwrap_or_default().to_owned(),
        template: config
            .get("template")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        content,
        data: payload,
        priority: priority as i32,
        ..notify::SendNotificationRequest::default()
    })
}

/// The request of an `action.email` node: plain-text email to each address of `to`, on the
/// topic `workflow.email`.
fn email_request(
    config: &Map<String, Value>,
    data: &Data,
) -> Result<notify::SendNotificationRequest, ActionFailure> {
    let mut recipients = Vec::new();
    for template in config["to"].as_array().into_iter().flatten() {
        recipients.push(notify::Recipient {
            target: Some(notify::recipient::Target::Email(text(&render(
                template, data,
            )?))),
        });
    }
    Ok(notify::SendNotificationRequest {
        recipients,
        channels: vec![notify::DeliveryChannel::Email as i32],
        topic: "workflow.email".to_owned(),
        content: Some(notify::InlineContent {
            subject: text(&render(&config["subject"], data)?),
            body: text(&render(&config["text"], data)?),
            link: String::new(),
        }),
        ..notify::SendNotificationRequest::default()
    })
}

/// A rendered recipient: `users/{id}`, `webhookEndpoints/{id}`, or an email address.
fn recipient(rendered: &str) -> Result<notify::Recipient, ActionFailure> {
    use notify::recipient::Target;
    let target = if rendered.starts_with("users/") {
        Target::User(rendered.to_owned())
    } else if rendered.starts_with("webhookEndpoints/") {
        Target::WebhookEndpoint(rendered.to_owned())
    } else if rendered.contains('@') {
        Target::Email(rendered.to_owned())
    } else {
        return Err(ActionFailure::last(
            "RECIPIENT_INVALID",
            format!(
                "{rendered:?} is neither users/{{id}}, webhookEndpoints/{{id}} nor an email address"
            ),
        ));
    };
    Ok(notify::Recipient {
        target: Some(target),
    })
}

/// What a suite service's answer means for `node`: the service's own refusals (an unknown
/// label set, bad input) are final, prefixed by `prefix` (`AI_NOT_FOUND`); a busy or
/// unreachable service, or svc-auth giving no token, is retried.
fn call_failure(node: &Node, service: &str, prefix: &str, error: CallError) -> ActionFailure {
    use tonic::Code;
    let status = match error {
        CallError::NotConfigured => return not_configured(node, service),
        CallError::Token(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "no service token from svc-auth"
            );
            return ActionFailure::retryable(
                "SERVICE_UNAVAILABLE",
                "svc-auth gave no service token",
            );
        }
        CallError::Status(status) => status,
    };
    let message = format!(
        "{}: {}",
        service.split(' ').next().unwrap_or(service),
        status.message()
    );
    let code = format!("{prefix}_{}", platform::error::code_name(status.code()));
    match status.code() {
        Code::ResourceExhausted
        | Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::Internal
        | Code::Unknown
        | Code::Cancelled => ActionFailure::retryable(&code, message),
        _ => ActionFailure::last(&code, message),
    }
}

fn not_configured(node: &Node, service: &str) -> ActionFailure {
    ActionFailure::last(
        "SERVICE_NOT_CONFIGURED",
        format!(
            "{} needs {service}, which this deployment does not reach yet",
            node.node_type
        ),
    )
}

fn render(template: &Value, data: &Data) -> Result<Value, ActionFailure> {
    expression::render_json(template, data).map_err(template_error)
}

fn template_error(reason: String) -> ActionFailure {
    ActionFailure::last("TEMPLATE_ERROR", reason)
}

/// A rendered value as text: a string as it is, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Why a request got no answer; never the URL's query or the credential.
fn request_failure(error: reqwest::Error) -> ActionFailure {
    if let Some(refused) = outbound::refusal(&error) {
        return ActionFailure::last("SSRF_BLOCKED", refused.to_string());
    }
    if error.is_timeout() {
        return ActionFailure::retryable("HTTP_TIMEOUT", "the server did not answer in time");
    }
    if error.is_redirect() {
        return ActionFailure::last("HTTP_ERROR", "the redirects could not be followed");
    }
    let host = error
        .url()
        .and_then(|url| url.host_str())
        .unwrap_or("the server")
        .to_owned();
    ActionFailure::retryable("HTTP_UNREACHABLE", format!("{host} could not be reached"))
}

/// The body of `response`, failing past [`MAX_OUTPUT_BYTES`].
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, ActionFailure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request_failure)? {
        if body.len() + chunk.len() > MAX_OUTPUT_BYTES {
            return Err(ActionFailure::last(
                "OUTPUT_TOO_LARGE",
                format!(
                    "the response body is larger than {} KiB",
                    MAX_OUTPUT_BYTES / 1024
                ),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
