//! Converting between the wire (`formflow.notify.v1`) and the domain: requests are validated
//! here, every bad field listed at once. Webhook endpoints' conversions are in [`webhooks`].

pub mod preferences;
pub mod webhooks;

use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::context::UserId;
use platform::error::FieldViolations;
use platform::paging::{self, Listing};
use platform::wire::{
    enum_field, enum_filter, expected_version, from_timestamp, mask_paths, object_from_proto,
    parse_resource_name, resource_name, timestamp,
};
use proto::formflow::notify::v1 as wire;
use serde_json::{Map, Value};

use crate::domain::template::check_topic_like;
use crate::domain::{
    Attempt, Channel, Content, Delivery, DeliveryId, DeliveryState, InboxMessage, InboxMessageId,
    Notification, Priority, Recipient, Rendered, Sealing, Source, Template, TemplateId,
    TemplateKey, Variable, check_email,
};
use crate::operations::{
    Body, DeliveryPage, InboxPage, NewNotification, NewTemplate, PreviewSource, TemplateChanges,
    TemplatePage, TemplateRef,
};
use crate::store::{DeliveryFilter, InboxFilter};

/// Most recipients of one notification.
const MAX_RECIPIENTS: usize = 100;
/// Largest `data`, as JSON.
const MAX_DATA_BYTES: usize = 64 * 1024;
/// Longest transaction id and dedup key, in characters.
const MAX_KEY_CHARS: usize = 200;
/// Dedup window when the request gives none, and its bounds.
const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(3600);
const MAX_DEDUP_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

fn channel_from_wire(channel: wire::DeliveryChannel) -> Option<Channel> {
    match channel {
        wire::DeliveryChannel::Email => Some(Channel::Email),
        wire::DeliveryChannel::InApp => Some(Channel::InApp),
        wire::DeliveryChannel::Webhook => Some(Channel::Webhook),
        wire::DeliveryChannel::Unspecified => None,
    }
}

fn channel_to_wire(channel: Channel) -> wire::DeliveryChannel {
    match channel {
        Channel::Email => wire::DeliveryChannel::Email,
        Channel::InApp => wire::DeliveryChannel::InApp,
        Channel::Webhook => wire::DeliveryChannel::Webhook,
    }
}

fn priority_from_wire(priority: wire::NotificationPriority) -> Option<Priority> {
    Some(match priority {
        wire::NotificationPriority::Unspecified | wire::NotificationPriority::Normal => {
            Priority::Normal
        }
        wire::NotificationPriority::Low => Priority::Low,
        wire::NotificationPriority::High => Priority::High,
        wire::NotificationPriority::Urgent => Priority::Urgent,
    })
}

fn priority_to_wire(priority: Priority) -> wire::NotificationPriority {
    match priority {
        Priority::Low => wire::NotificationPriority::Low,
        Priority::Normal => wire::NotificationPriority::Normal,
        Priority::High => wire::NotificationPriority::High,
        Priority::Urgent => wire::NotificationPriority::Urgent,
    }
}

fn state_from_wire(state: wire::DeliveryState) -> Option<DeliveryState> {
    match state {
        wire::DeliveryState::Unspecified => None,
        wire::DeliveryState::Pending => Some(DeliveryState::Pending),
        wire::DeliveryState::Deferred => Some(DeliveryState::Deferred),
        wire::DeliveryState::Delivered => Some(DeliveryState::Delivered),
        wire::DeliveryState::Failed => Some(DeliveryState::Failed),
        wire::DeliveryState::Suppressed => Some(DeliveryState::Suppressed),
        wire::DeliveryState::Cancelled => Some(DeliveryState::Cancelled),
        wire::DeliveryState::Batched => Some(DeliveryState::Batched),
    }
}

fn state_to_wire(state: DeliveryState) -> wire::DeliveryState {
    match state {
        DeliveryState::Pending => wire::DeliveryState::Pending,
        DeliveryState::Deferred => wire::DeliveryState::Deferred,
        DeliveryState::Delivered => wire::DeliveryState::Delivered,
        DeliveryState::Failed => wire::DeliveryState::Failed,
        DeliveryState::Suppressed => wire::DeliveryState::Suppressed,
        DeliveryState::Cancelled => wire::DeliveryState::Cancelled,
        DeliveryState::Batched => wire::DeliveryState::Batched,
    }
}

/// A recipient of a request, or a violation of `field`.
fn recipient_from_wire(
    violations: &mut FieldViolations,
    field: &str,
    recipient: &wire::Recipient,
) -> Option<Recipient> {
    use wire::recipient::Target;
    match &recipient.target {
        Some(Target::User(name)) => {
            parse_resource_name::<UserId>(violations, &format!("{field}.user"), name, "users")
                .map(Recipient::User)
        }
        Some(Target::Email(address)) => {
            let address = address.trim();
            violations
                .check(&format!("{field}.email"), check_email(address))
                .map(|()| Recipient::Email(address.to_owned()))
        }
        Some(Target::WebhookEndpoint(name)) => parse_resource_name(
            violations,
            &format!("{field}.webhook_endpoint"),
            name,
            "webhookEndpoints",
        )
        .map(Recipient::WebhookEndpoint),
        None => {
            violations.add(
                field,
                "must name a user, an email address or a webhook endpoint",
            );
            None
        }
    }
}

fn recipient_to_wire(recipient: &Recipient) -> wire::Recipient {
    use wire::recipient::Target;
    wire::Recipient {
        target: Some(match recipient {
            Recipient::User(user) => Target::User(resource_name("users", user)),
            Recipient::Email(address) => Target::Email(address.clone()),
            Recipient::WebhookEndpoint(endpoint) => {
                Target::WebhookEndpoint(resource_name("webhookEndpoints", endpoint))
            }
        }),
    }
}

/// The object `data` of a request (empty when unset), at most 64 KiB of JSON.
fn data_from_wire(
    violations: &mut FieldViolations,
    field: &str,
    data: Option<&pbjson_types::Struct>,
) -> Map<String, Value> {
    let data = data.map(object_from_proto).unwrap_or_default();
    if serde_json::to_vec(&data).map_or(0, |json| json.len()) > MAX_DATA_BYTES {
        violations.add(field, "must be at most 64 KiB of JSON");
    }
    data
}

/// A template of a request: by `templates/{id}` or by key.
fn template_ref(violations: &mut FieldViolations, field: &str, text: &str) -> Option<TemplateRef> {
    if text.starts_with("templates/") {
        parse_resource_name(violations, field, text, "templates").map(TemplateRef::Id)
    } else {
        violations
            .check(field, TemplateKey::parse(text))
            .map(TemplateRef::Key)
    }
}

/// A key of at most 200 characters, empty meaning none.
fn optional_key(violations: &mut FieldViolations, field: &str, text: &str) -> Option<String> {
    if text.chars().count() > MAX_KEY_CHARS {
        violations.add(field, format!("must be at most {MAX_KEY_CHARS} characters"));
    }
    (!text.is_empty()).then(|| text.to_owned())
}

/// SendNotification's request as a notification to accept.
pub fn new_notification(
    request: wire::SendNotificationRequest,
) -> Result<NewNotification, FieldViolations> {
    let mut violations = FieldViolations::new();
    if request.recipients.is_empty() || request.recipients.len() > MAX_RECIPIENTS {
        violations.add(
            "recipients",
            format!("must name 1 to {MAX_RECIPIENTS} recipients"),
        );
    }
    let recipients: Vec<Recipient> = request
        .recipients
        .iter()
        .enumerate()
        .filter_map(|(index, recipient)| {
            recipient_from_wire(&mut violations, &format!("recipients[{index}]"), recipient)
        })
        .collect();
    let channels: Vec<Channel> = request
        .channels
        .iter()
        .enumerate()
        .filter_map(|(index, channel)| {
            enum_field(
                &mut violations,
                &format!("channels[{index}]"),
                *channel,
                channel_from_wire,
            )
        })
        .collect();
    violations.check("topic", check_topic_like(&request.topic));
    let body = match (request.template.is_empty(), request.content) {
        (false, None) => {
            template_ref(&mut violations, "template", &request.template).map(Body::Template)
        }
        (true, Some(content)) => {
            let content = Content::inline(content.subject, content.body, content.link);
            let checked = crate::domain::template::check_inline(&content);
            for (field, description) in checked.violations() {
                violations.add(field.clone(), description.clone());
            }
            Some(Body::Inline(content))
        }
        _ => {
            violations.add("template", "give exactly one of template and content");
            None
        }
    };
    let data = data_from_wire(&mut violations, "data", request.data.as_ref());
    let priority = enum_field(
        &mut violations,
        "priority",
        request.priority,
        priority_from_wire,
    );
    let transaction_id = optional_key(&mut violations, "transaction_id", &request.transaction_id);
    let dedup_key = optional_key(&mut violations, "dedup_key", &request.dedup_key);
    let window = match &request.dedup_window {
        None => DEFAULT_DEDUP_WINDOW,
        Some(window) => {
            let window = u64::try_from(window.seconds)
                .ok()
                .map(Duration::from_secs)
                .filter(|window| (Duration::from_secs(1)..=MAX_DEDUP_WINDOW).contains(window));
            if window.is_none() || dedup_key.is_none() {
                violations.add(
                    "dedup_window",
                    "must be 1 second to 7 days, with a dedup_key",
                );
            }
            window.unwrap_or(DEFAULT_DEDUP_WINDOW)
        }
    };
    violations.into_result()?;
    Ok(NewNotification {
        recipients,
        channels,
        topic: request.topic,
        body: body.expect("checked"),
        data,
        priority: priority.expect("checked"),
        transaction_id,
        dedup: dedup_key.map(|key| (key, window)),
        sealed: false,
    })
}

/// A notification, with its deliveries (without their attempts).
pub fn notification_to_proto(
    notification: &Notification,
    deliveries: &[Delivery],
) -> wire::Notification {
    wire::Notification {
        name: resource_name("notifications", notification.id),
        id: notification.id.to_string(),
        topic: notification.topic.clone(),
        priority: priority_to_wire(notification.priority) as i32,
        template: notification
            .template_id
            .map(|id| resource_name("templates", id))
            .unwrap_or_default(),
        source: Some(source_to_proto(&notification.source)),
        transaction_id: notification.transaction_id.clone().unwrap_or_default(),
        dedup_key: notification.dedup_key.clone().unwrap_or_default(),
        subject: notification.content.email_subject.clone(),
        deliveries: deliveries
            .iter()
            .map(|delivery| delivery_to_proto(delivery, Vec::new()))
            .collect(),
        create_time: Some(timestamp(notification.created_at)),
        sealed: notification.sealing != Sealing::Clear,
    }
}

/// Who or what sent a notification.
pub fn source_to_proto(source: &Source) -> wire::NotificationSource {
    wire::NotificationSource {
        principal: source.principal.clone(),
        event: source.event.clone(),
    }
}

/// A delivery, with `attempts` (empty outside GetDelivery).
pub fn delivery_to_proto(delivery: &Delivery, attempts: Vec<Attempt>) -> wire::Delivery {
    wire::Delivery {
        name: resource_name("deliveries", delivery.id),
        id: delivery.id.to_string(),
        notification: resource_name("notifications", delivery.notification_id),
        topic: delivery.topic.clone(),
        channel: channel_to_wire(delivery.channel) as i32,
        recipient: Some(recipient_to_wire(&delivery.recipient)),
        address: delivery.address.clone(),
        state: state_to_wire(delivery.state) as i32,
        attempt_count: delivery.attempt_count,
        last_error: delivery.last_error.clone(),
        last_response_code: delivery.last_response_code,
        next_attempt_time: delivery
            .next_attempt_at
            .filter(|_| {
                matches!(
                    delivery.state,
                    DeliveryState::Pending | DeliveryState::Deferred
                )
            })
            .map(timestamp),
        create_time: Some(timestamp(delivery.created_at)),
        deliver_time: delivery.delivered_at.map(timestamp),
        suppression_reason: delivery.suppression_reason.clone(),
        priority: priority_to_wire(delivery.priority) as i32,
        attempts: attempts
            .into_iter()
            .map(|attempt| wire::DeliveryAttempt {
                number: attempt.number,
                start_time: Some(timestamp(attempt.started_at)),
                end_time: attempt.ended_at.map(timestamp),
                delivered: attempt.delivered,
                error: attempt.error,
                response_code: attempt.response_code,
            })
            .collect(),
        digest: delivery.digest,
        digest_delivery: delivery
            .digest_id
            .map(|id| resource_name("deliveries", id))
            .unwrap_or_default(),
    }
}

fn variables_from_wire(variables: &[wire::TemplateVariable]) -> Vec<Variable> {
    variables
        .iter()
        .map(|variable| Variable {
            name: variable.name.clone(),
            description: variable.description.clone(),
            required: variable.required,
        })
        .collect()
}

fn content_from_wire(template: &wire::Template) -> Content {
    Content {
        email_subject: template.email_subject.clone(),
        email_text: template.email_text.clone(),
        email_html: template.email_html.clone(),
        in_app_title: template.in_app_title.clone(),
        in_app_body: template.in_app_body.clone(),
        in_app_link: template.in_app_link.clone(),
    }
}

/// CreateTemplate's request as a template to create (its parts are checked by the operation).
pub fn new_template(request: wire::CreateTemplateRequest) -> Result<NewTemplate, FieldViolations> {
    let mut violations = FieldViolations::new();
    let Some(template) = request.template else {
        return Err(FieldViolations::single("template", "is required"));
    };
    let key = violations.check("template.key", TemplateKey::parse(&template.key));
    violations.into_result()?;
    Ok(NewTemplate {
        key: key.expect("checked"),
        display_name: template.display_name.clone(),
        variables: variables_from_wire(&template.variables),
        content: content_from_wire(&template),
    })
}

/// UpdateTemplate's request as the template to change and its changes.
pub fn template_changes(
    request: wire::UpdateTemplateRequest,
) -> Result<(TemplateId, TemplateChanges), FieldViolations> {
    let mut violations = FieldViolations::new();
    let Some(template) = request.template else {
        return Err(FieldViolations::single("template", "is required"));
    };
    let id = parse_resource_name(
        &mut violations,
        "template.name",
        &template.name,
        "templates",
    );
    let mut changes = TemplateChanges {
        expected_version: expected_version(&mut violations, "template.etag", &template.etag),
        ..TemplateChanges::default()
    };
    let paths = mask_paths(request.update_mask.as_ref());
    if paths.is_empty() {
        violations.add("update_mask", "must name at least one field");
    }
    for path in paths {
        match path.as_str() {
            "display_name" => changes.display_name = Some(template.display_name.clone()),
            "variables" => changes.variables = Some(variables_from_wire(&template.variables)),
            "email_subject" => changes
                .parts
                .push(("email_subject", template.email_subject.clone())),
            "email_text" => changes
                .parts
                .push(("email_text", template.email_text.clone())),
            "email_html" => changes
                .parts
                .push(("email_html", template.email_html.clone())),
            "in_app_title" => changes
                .parts
                .push(("in_app_title", template.in_app_title.clone())),
            "in_app_body" => changes
                .parts
                .push(("in_app_body", template.in_app_body.clone())),
            "in_app_link" => changes
                .parts
                .push(("in_app_link", template.in_app_link.clone())),
            other => violations.add(
                "update_mask",
                format!("{other} is not a field UpdateTemplate changes"),
            ),
        }
    }
    violations.into_result()?;
    Ok((id.expect("checked"), changes))
}

/// A template.
pub fn template_to_proto(template: &Template) -> wire::Template {
    let content = &template.content;
    wire::Template {
        name: resource_name("templates", template.id),
        id: template.id.to_string(),
        key: template.key.to_string(),
        display_name: template.display_name.clone(),
        email_subject: content.email_subject.clone(),
        email_text: content.email_text.clone(),
        email_html: content.email_html.clone(),
        in_app_title: content.in_app_title.clone(),
        in_app_body: content.in_app_body.clone(),
        in_app_link: content.in_app_link.clone(),
        variables: template
            .variables
            .iter()
            .map(|variable| wire::TemplateVariable {
                name: variable.name.clone(),
                description: variable.description.clone(),
                required: variable.required,
            })
            .collect(),
        create_time: Some(timestamp(template.created_at)),
        update_time: Some(timestamp(template.updated_at)),
        etag: platform::wire::etag(template.version),
    }
}

/// ListTemplates' request: the key after which the page starts, and its size.
pub fn list_templates_request(
    request: &wire::ListTemplatesRequest,
) -> Result<(Option<String>, usize), FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = paging::page_size(&mut violations, request.page_size);
    let after = paging::decode_page_token(&mut violations, &request.page_token, "templates");
    violations.into_result()?;
    Ok((after, size))
}

/// ListTemplates' response.
pub fn templates_page(page: &TemplatePage) -> wire::ListTemplatesResponse {
    wire::ListTemplatesResponse {
        templates: page.templates.iter().map(template_to_proto).collect(),
        next_page_token: page
            .next_after
            .as_deref()
            .map(|after| paging::encode_page_token("templates", after))
            .unwrap_or_default(),
    }
}

/// PreviewTemplate's request: what to render, with what data.
pub fn preview_request(
    request: wire::PreviewTemplateRequest,
) -> Result<(PreviewSource, Map<String, Value>), FieldViolations> {
    use wire::preview_template_request::Source as Wanted;
    let mut violations = FieldViolations::new();
    let source = match request.source {
        Some(Wanted::Name(name)) => {
            template_ref(&mut violations, "name", &name).map(PreviewSource::Saved)
        }
        Some(Wanted::Template(template)) => Some(PreviewSource::Unsaved {
            variables: variables_from_wire(&template.variables),
            content: content_from_wire(&template),
        }),
        None => {
            violations.add("name", "give a template's name or key, or a template");
            None
        }
    };
    let data = data_from_wire(&mut violations, "data", request.data.as_ref());
    violations.into_result()?;
    Ok((source.expect("checked"), data))
}

/// PreviewTemplate's response.
pub fn preview_to_proto(rendered: Rendered) -> wire::PreviewTemplateResponse {
    wire::PreviewTemplateResponse {
        email_subject: rendered.email_subject,
        email_text: rendered.email_text,
        email_html: rendered.email_html,
        in_app_title: rendered.in_app_title,
        in_app_body: rendered.in_app_body,
        in_app_link: rendered.in_app_link,
    }
}

/// The listing of `filter` in pages of `size` (its page token decoded), or every violation
/// found, `violations` included.
fn listing<F: std::fmt::Debug, I: From<uuid::Uuid> + std::fmt::Display>(
    violations: FieldViolations,
    filter: F,
    size: usize,
    page_token: &str,
) -> Result<Listing<F, (DateTime<Utc>, I)>, FieldViolations> {
    let key = format!("{filter:?}");
    Listing::by_time_and_id(violations, filter, key, size, page_token)
}

/// Where a page of deliveries starts: after this time and id.
pub type DeliveryPosition = (DateTime<Utc>, DeliveryId);

/// Where a page of inbox messages starts: after this time and id.
pub type InboxPosition = (DateTime<Utc>, InboxMessageId);

/// ListDeliveries' request.
pub fn list_deliveries_request(
    request: &wire::ListDeliveriesRequest,
) -> Result<Listing<DeliveryFilter, DeliveryPosition>, FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = paging::page_size(&mut violations, request.page_size);
    let filter = DeliveryFilter {
        notification: (!request.notification.is_empty())
            .then(|| {
                parse_resource_name(
                    &mut violations,
                    "notification",
                    &request.notification,
                    "notifications",
                )
            })
            .flatten(),
        channel: enum_filter(
            &mut violations,
            "channel",
            request.channel,
            channel_from_wire,
        ),
        state: enum_filter(&mut violations, "state", request.state, state_from_wire),
        recipient: request
            .recipient
            .as_ref()
            .filter(|recipient| recipient.target.is_some())
            .and_then(|recipient| recipient_from_wire(&mut violations, "recipient", recipient)),
        topic: (!request.topic.is_empty()).then(|| request.topic.clone()),
        from: request.start_time.as_ref().and_then(from_timestamp),
        until: request.end_time.as_ref().and_then(from_timestamp),
    };
    listing(violations, filter, size, &request.page_token)
}

/// ListDeliveries' response.
pub fn deliveries_page(page: DeliveryPage, filter_key: &str) -> wire::ListDeliveriesResponse {
    wire::ListDeliveriesResponse {
        deliveries: page
            .deliveries
            .iter()
            .map(|delivery| delivery_to_proto(delivery, Vec::new()))
            .collect(),
        next_page_token: paging::time_and_id_token(filter_key, page.next),
    }
}

/// An inbox message.
pub fn inbox_message_to_proto(message: &InboxMessage) -> wire::InboxMessage {
    wire::InboxMessage {
        name: resource_name("inboxMessages", message.id),
        id: message.id.to_string(),
        notification: resource_name("notifications", message.notification_id),
        topic: message.topic.clone(),
        title: message.title.clone(),
        body: message.body.clone(),
        link: message.link.clone(),
        priority: priority_to_wire(message.priority) as i32,
        read: message.read_at.is_some(),
        read_time: message.read_at.map(timestamp),
        create_time: Some(timestamp(message.created_at)),
        archived: message.archived_at.is_some(),
        archive_time: message.archived_at.map(timestamp),
    }
}

/// ListInboxMessages' request.
pub fn list_inbox_request(
    request: &wire::ListInboxMessagesRequest,
) -> Result<Listing<InboxFilter, InboxPosition>, FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = paging::page_size(&mut violations, request.page_size);
    let filter = InboxFilter {
        unread_only: request.unread_only,
        topic: (!request.topic.is_empty()).then(|| request.topic.clone()),
        show_archived: request.show_archived,
    };
    listing(violations, filter, size, &request.page_token)
}

/// ListInboxMessages' response.
pub fn inbox_page(page: InboxPage, filter_key: &str) -> wire::ListInboxMessagesResponse {
    wire::ListInboxMessagesResponse {
        messages: page.messages.iter().map(inbox_message_to_proto).collect(),
        next_page_token: paging::time_and_id_token(filter_key, page.next),
        unread_count: i32::try_from(page.unread_count).unwrap_or(i32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        let limits =
            |field| proto::published_limits("formflow.notify.v1.SendNotificationRequest", field);
        assert_eq!(
            (
                limits("recipients").min_items,
                limits("recipients").max_items as usize
            ),
            (1, MAX_RECIPIENTS)
        );
        for field in ["transaction_id", "dedup_key"] {
            assert_eq!(limits(field).max_length as usize, MAX_KEY_CHARS, "{field}");
        }
    }
}
