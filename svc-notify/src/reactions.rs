//! What svc-notify does when other services' events arrive: the notifications the product
//! sends by itself. Each reaction is a notification whose transaction id names what it is
//! about, so a redelivered event sends nothing twice; its content is the tenant's template of
//! the reaction's key when there is one, else the default here.
//!
//! - `forms.submission.created` → an email to each of the form's `notification_recipients`
//!   (template key `forms.submission`).
//! - `forms.submission.deleted` → the notifications about that submission are deleted with
//!   their deliveries and inbox messages: no copy of erased answers stays here.
//! - `workflow.execution.failed` → an in-app message to the workflow's owner, when a user owns
//!   it (template key `workflow.execution_failed`).
//! - `auth.invitation.created` → an email to the invitee with the acceptance link (template
//!   key `auth.invitation`); `auth.password_reset.requested` → an email to the user with the
//!   reset link (template key `auth.password_reset`). Their one-time tokens make the content
//!   secret: it is sealed at rest and erased once sent, and the event's data is not kept.
//!   Links point under NOTIFY_APP_URL.
//! - `ai.batch_job.completed` → a webhook to the job's `webhook_endpoint`, when it names one
//!   (topic `ai.batch_job.completed`; the job's counts and state as data).

use platform::amqp::Outcome;
use platform::consumer::{Audience, EventHandler, ReceivedEvent, Subscription};
use platform::context::{TenantId, UserId};
use platform::wire::value_from_proto;
use proto::formflow::ai::v1 as ai;
use proto::formflow::auth::v1 as auth;
use proto::formflow::events::v1 as events;
use serde_json::{Map, Value, json};
use url::Url;

use crate::domain::{
    Channel, Content, Priority, Recipient, Source, TemplateKey, WebhookEndpointId, check_email,
};
use crate::error::Error;
use crate::operations::{Body, NewNotification, Notify};

/// The queue svc-notify's reactions consume.
pub const REACTIONS: &str = "svc-notify.reactions";

/// The events svc-notify reacts to.
pub const REACTION_SUBSCRIPTION: Subscription = Subscription {
    audience: Audience::OneReplica(REACTIONS),
    bindings: &[
        "forms.submission.created.v1",
        "forms.submission.deleted.v1",
        "workflow.execution.failed.v1",
        "auth.invitation.created.v1",
        "auth.password_reset.requested.v1",
        "ai.batch_job.completed.v1",
    ],
    prefetch: 16,
};

/// svc-notify's reactions to events.
#[derive(Debug, Clone)]
pub struct Reactions {
    notify: Notify,
    app_url: Option<Url>,
}

impl Reactions {
    /// Reactions sending through `notify`, linking emails under `app_url` (none: invitation
    /// and password reset emails cannot be sent).
    pub fn new(notify: Notify, app_url: Option<Url>) -> Self {
        Self { notify, app_url }
    }

    /// NOTIFY_APP_URL, which the auth emails' links need.
    fn app_url(&self) -> Result<&Url, Reaction> {
        self.app_url.as_ref().ok_or_else(|| {
            Reaction::Reject(
                "NOTIFY_APP_URL is not set: the email's link cannot be built".to_owned(),
            )
        })
    }

    async fn react(&self, event: &ReceivedEvent, tenant: TenantId) -> Result<(), Reaction> {
        if let Some(created) = decoded::<events::SubmissionCreated>(event)? {
            return match submission_notice(&created) {
                Some(new) => self.send(event, tenant, "svc-forms", new).await,
                None => Ok(()),
            };
        }
        if let Some(deleted) = decoded::<events::SubmissionDeleted>(event)? {
            let transaction_id = format!("forms.submission.created:{}", deleted.submission);
            self.notify
                .forget_transaction(tenant, &transaction_id)
                .await
                .map_err(|error| Reaction::Retry(format!("{error:#}")))?;
            return Ok(());
        }
        if let Some(invited) = decoded::<events::InvitationCreated>(event)? {
            return match invitation_notice(&invited, self.app_url()?) {
                Some(new) => self.send(event, tenant, "svc-auth", new).await,
                None => Ok(()),
            };
        }
        if let Some(requested) = decoded::<events::PasswordResetRequested>(event)? {
            let new = reset_notice(&requested, self.app_url()?, &event.event_id.to_string());
            return match new {
                Some(new) => self.send(event, tenant, "svc-auth", new).await,
                None => Ok(()),
            };
        }
        if let Some(completed) = decoded::<events::BatchJobCompleted>(event)? {
            return match batch_job_notice(&completed) {
                Some(new) => self.send(event, tenant, "svc-ai", new).await,
                None => Ok(()),
            };
        }
        if let Some(failed) = decoded::<events::ExecutionFailed>(event)? {
            return match failure_notice(&failed) {
                Some(new) => self.send(event, tenant, "svc-workflow", new).await,
                None => Ok(()),
            };
        }
        Ok(())
    }

    async fn send(
        &self,
        event: &ReceivedEvent,
        tenant: TenantId,
        producer: &str,
        new: NewNotification,
    ) -> Result<(), Reaction> {
        let source = Source {
            principal: format!("services/{producer}"),
            event: format!("{}/{}", event.event_type, event.event_id),
        };
        match self.notify.accept(tenant, source, new, None).await {
            Ok(_) => Ok(()),
            // A tenant's template that cannot render this event, a channel or the sealing keys
            // not configured: sending again would fail alike.
            Err(
                error @ (Error::Common(platform::error::CommonError::InvalidArgument(_))
                | Error::ChannelOff(_)
                | Error::SealingOff),
            ) => Err(Reaction::Reject(error.to_string())),
            Err(error) => Err(Reaction::Retry(error.to_string())),
        }
    }
}

/// Why a reaction did not happen.
enum Reaction {
    /// It can never happen: dead-letter the event.
    Reject(String),
    /// It may happen later: retry the event.
    Retry(String),
}

/// The event as `T` when it is one; a malformed one is rejected.
fn decoded<T>(event: &ReceivedEvent) -> Result<Option<T>, Reaction>
where
    T: platform::events::Event + serde::de::DeserializeOwned,
{
    event.decode::<T>().transpose().map_err(Reaction::Reject)
}

impl EventHandler for Reactions {
    async fn handle(&self, event: ReceivedEvent) -> Outcome {
        let Some(tenant) = event.tenant_id else {
            return Outcome::Reject(format!("a {} event names no tenant", event.event_type));
        };
        match self.react(&event, tenant).await {
            Ok(()) => Outcome::Done,
            Err(Reaction::Reject(reason)) => {
                tracing::warn!(event = %event.event_id, event_type = %event.event_type, reason, "an event svc-notify cannot react to");
                Outcome::Reject(reason)
            }
            Err(Reaction::Retry(reason)) => Outcome::Retry(reason),
        }
    }
}

/// The email to a form's recipients about a submission; `None` when it has none.
fn submission_notice(created: &events::SubmissionCreated) -> Option<NewNotification> {
    let recipients: Vec<Recipient> = created
        .notification_recipients
        .iter()
        .filter(|address| check_email(address).is_ok())
        .map(|address| Recipient::Email(address.clone()))
        .collect();
    if recipients.is_empty() {
        return None;
    }
    let submission = created.submission.as_ref()?;
    let answers: Vec<Value> = created
        .answers
        .iter()
        .map(|answer| {
            json!({
                "field": answer.field_id,
                "label": answer.label,
                "value": answer.value.as_ref().map(value_from_proto).map(|value| shown(&value)).unwrap_or_default(),
            })
        })
        .collect();
    let data = object(json!({
        "form": created.form,
        "form_title": created.form_title,
        "form_slug": created.form_slug,
        "submission": submission.name,
        "answers": answers,
    }));
    Some(NewNotification {
        recipients,
        channels: vec![Channel::Email],
        topic: "forms.submission".to_owned(),
        body: Body::KeyedOrDefault(
            key("forms.submission"),
            Content::inline(
                "New submission to {{ form_title }}",
                "{{ form_title }} received a submission.\n\n\
                 {% for answer in answers %}{{ answer.label }}: {{ answer.value }}\n{% endfor %}",
                "",
            ),
        ),
        data,
        priority: Priority::Normal,
        transaction_id: Some(format!("forms.submission.created:{}", submission.name)),
        dedup: None,
        sealed: false,
    })
}

/// The in-app message to a failed execution's workflow owner; `None` when no user owns it.
fn failure_notice(failed: &events::ExecutionFailed) -> Option<NewNotification> {
    let workflow = failed.workflow.as_ref()?;
    let owner = workflow
        .owner
        .strip_prefix("users/")
        .and_then(|id| UserId::parse(id).ok())?;
    let execution = failed.execution.as_ref()?;
    let error = execution.error.as_ref();
    let data = object(json!({
        "workflow": workflow.name,
        "workflow_name": workflow.display_name,
        "execution": execution.name,
        "execution_id": execution.id,
        "error_code": error.map(|error| error.code.clone()).unwrap_or_default(),
        "error": error.map(|error| error.message.clone()).unwrap_or_default(),
        "node": error.map(|error| error.node_id.clone()).unwrap_or_default(),
    }));
    Some(NewNotification {
        recipients: vec![Recipient::User(owner)],
        channels: vec![Channel::InApp],
        topic: "workflow.execution_failed".to_owned(),
        body: Body::KeyedOrDefault(
            key("workflow.execution_failed"),
            Content::inline(
                "Workflow {{ workflow_name }} failed",
                "{% if node %}Node {{ node }}: {% endif %}{{ error }}",
                "/{{ execution }}",
            ),
        ),
        data,
        priority: Priority::High,
        transaction_id: Some(format!("workflow.execution.failed:{}", execution.name)),
        dedup: None,
        sealed: false,
    })
}

/// The invitation email, linking to `{app_url}/invitations/accept`; `None` without a valid
/// address.
fn invitation_notice(
    invited: &events::InvitationCreated,
    app_url: &Url,
) -> Option<NewNotification> {
    let invitation = invited.invitation.as_ref()?;
    check_email(&invitation.email).ok()?;
    let role = auth::Role::try_from(invitation.role)
        .map(|role| {
            role.as_str_name()
                .trim_start_matches("ROLE_")
                .to_lowercase()
        })
        .unwrap_or_default();
    let data = object(json!({
        "link": link(app_url, "invitations/accept", &invited.tenant_slug, &invited.token),
        "token": invited.token,
        "email": invitation.email,
        "role": role,
        "message": invitation.message,
        "inviter_name": invited.inviter_display_name,
        "tenant_name": invited.tenant_display_name,
        "tenant_slug": invited.tenant_slug,
        "expire_time": invitation.expire_time.as_ref().map(shown_time).unwrap_or_default(),
    }));
    Some(NewNotification {
        recipients: vec![Recipient::Email(invitation.email.clone())],
        channels: vec![Channel::Email],
        topic: "auth.invitation".to_owned(),
        body: Body::KeyedOrDefault(
            key("auth.invitation"),
            Content {
                email_subject: "{% if inviter_name %}{{ inviter_name }} invited you{% else %}\
                                You are invited{% endif %} to {{ tenant_name }}"
                    .to_owned(),
                email_text: "{% if inviter_name %}{{ inviter_name }}{% else %}Someone{% endif %} \
                             invited you to join {{ tenant_name }} on FormFlow as {{ role }}.\n\
                             {% if message %}\n\"{{ message }}\"\n{% endif %}\n\
                             Accept the invitation: {{ link }}\n\n\
                             It expires {{ expire_time }}. If you did not expect it, ignore \
                             this email.\n"
                    .to_owned(),
                email_html: "<p>{% if inviter_name %}{{ inviter_name }}{% else %}Someone\
                             {% endif %} invited you to join <b>{{ tenant_name }}</b> on FormFlow \
                             as {{ role }}.</p>{% if message %}<blockquote>{{ message }}\
                             </blockquote>{% endif %}<p><a href=\"{{ link }}\">Accept the \
                             invitation</a></p><p>It expires {{ expire_time }}. If you did not \
                             expect it, ignore this email.</p>"
                    .to_owned(),
                ..Content::default()
            },
        ),
        data,
        priority: Priority::High,
        transaction_id: Some(format!("auth.invitation.created:{}", invitation.name)),
        dedup: None,
        sealed: true,
    })
}

/// The password reset email, linking to `{app_url}/password-reset`; `None` without a valid
/// address. `event_id` tells requests apart: each sends its own.
fn reset_notice(
    requested: &events::PasswordResetRequested,
    app_url: &Url,
    event_id: &str,
) -> Option<NewNotification> {
    check_email(&requested.email).ok()?;
    let data = object(json!({
        "link": link(app_url, "password-reset", &requested.tenant_slug, &requested.token),
        "token": requested.token,
        "email": requested.email,
        "display_name": requested.display_name,
        "tenant_name": requested.tenant_display_name,
        "tenant_slug": requested.tenant_slug,
        "ip_address": requested.ip_address,
        "expire_time": requested.expire_time.as_ref().map(shown_time).unwrap_or_default(),
    }));
    Some(NewNotification {
        recipients: vec![Recipient::Email(requested.email.clone())],
        channels: vec![Channel::Email],
        topic: "auth.password_reset".to_owned(),
        body: Body::KeyedOrDefault(
            key("auth.password_reset"),
            Content {
                email_subject: "Reset your {{ tenant_name }} password".to_owned(),
                email_text: "Hello{% if display_name %} {{ display_name }}{% endif %},\n\n\
                             Someone{% if ip_address %} (from {{ ip_address }}){% endif %} asked \
                             to reset your password for {{ tenant_name }}. Choose a new one \
                             here: {{ link }}\n\n\
                             The link works once and expires {{ expire_time }}. If this wasn't \
                             you, ignore this email: your password stays as it is.\n"
                    .to_owned(),
                email_html: "<p>Hello{% if display_name %} {{ display_name }}{% endif %},</p>\
                             <p>Someone{% if ip_address %} (from {{ ip_address }}){% endif %} \
                             asked to reset your password for <b>{{ tenant_name }}</b>.</p>\
                             <p><a href=\"{{ link }}\">Choose a new password</a></p><p>The link \
                             works once and expires {{ expire_time }}. If this wasn't you, ignore \
                             this email: your password stays as it is.</p>"
                    .to_owned(),
                ..Content::default()
            },
        ),
        data,
        priority: Priority::High,
        transaction_id: Some(format!("auth.password_reset.requested:{event_id}")),
        dedup: None,
        sealed: true,
    })
}

/// The webhook to a batch job's endpoint that it ended; `None` when it names none.
fn batch_job_notice(completed: &events::BatchJobCompleted) -> Option<NewNotification> {
    let job = completed.batch_job.as_ref()?;
    let endpoint = job
        .webhook_endpoint
        .strip_prefix("webhookEndpoints/")
        .and_then(|id| WebhookEndpointId::parse(id).ok())?;
    let state = ai::BatchJobState::try_from(job.state)
        .map(|state| {
            state
                .as_str_name()
                .trim_start_matches("BATCH_JOB_STATE_")
                .to_lowercase()
        })
        .unwrap_or_default();
    let data = object(json!({
        "batch_job": job.name,
        "state": state,
        "total_count": job.total_count,
        "processed_count": job.processed_count,
        "failed_count": job.failed_count,
        "error": job.error,
        "end_time": job.end_time.as_ref().and_then(platform::wire::from_timestamp),
    }));
    Some(NewNotification {
        recipients: vec![Recipient::WebhookEndpoint(endpoint)],
        channels: vec![Channel::Webhook],
        topic: "ai.batch_job.completed".to_owned(),
        body: Body::Inline(Content::inline(
            "Batch job {{ batch_job }} {{ state }}",
            "{{ processed_count }} of {{ total_count }} items processed, {{ failed_count }} failed.\
             {% if error %} {{ error }}{% endif %}",
            "",
        )),
        data,
        priority: Priority::Normal,
        transaction_id: Some(format!("ai.batch_job.completed:{}", job.name)),
        dedup: None,
        sealed: false,
    })
}

/// `{app_url}/{path}?tenant={tenant_slug}&token={token}`.
fn link(app_url: &Url, path: &str, tenant_slug: &str, token: &str) -> String {
    let mut url = app_url.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(path.split('/'));
    }
    url.query_pairs_mut()
        .append_pair("tenant", tenant_slug)
        .append_pair("token", token);
    url.into()
}

/// A time as an email shows it: `2026-12-07 09:30 UTC`.
fn shown_time(time: &pbjson_types::Timestamp) -> String {
    platform::wire::from_timestamp(time)
        .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// An answer as a line of text shows it: lists joined, text as it is.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn key(text: &str) -> TemplateKey {
    TemplateKey::parse(text).expect("the reactions' keys are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_show_as_one_line_each() {
        assert_eq!(shown(&json!(["red", "blue"])), "red, blue");
        assert_eq!(shown(&json!(42.5)), "42.5");
        assert_eq!(shown(&json!("Ada")), "Ada");
        assert_eq!(shown(&Value::Null), "");
    }

    #[test]
    fn a_submission_without_valid_recipients_sends_nothing() {
        let created = events::SubmissionCreated {
            notification_recipients: vec!["not an address".to_owned()],
            submission: Some(Default::default()),
            ..Default::default()
        };
        assert!(submission_notice(&created).is_none());
    }

    #[test]
    fn only_a_user_owner_hears_of_a_failure() {
        let failed = |owner: &str| events::ExecutionFailed {
            execution: Some(Default::default()),
            workflow: Some(events::ExecutionWorkflow {
                owner: owner.to_owned(),
                ..Default::default()
            }),
        };
        assert!(failure_notice(&failed("apiKeys/0190")).is_none());
        let user = UserId::generate();
        let notice = failure_notice(&failed(&format!("users/{user}"))).unwrap();
        assert_eq!(notice.recipients, [Recipient::User(user)]);
    }
}
