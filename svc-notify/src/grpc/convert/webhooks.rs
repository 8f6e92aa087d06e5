//! Webhook endpoints on the wire: requests checked (URL syntax, description, topics, masks,
//! etags, grace periods), endpoints answered without their secrets.

use std::time::Duration;

use platform::error::FieldViolations;
use platform::paging;
use platform::wire::{expected_version, mask_paths, parse_resource_name, resource_name, timestamp};
use proto::formflow::notify::v1 as wire;

use crate::domain::WebhookEndpointId;
use crate::domain::endpoint::{
    self, DEFAULT_GRACE_PERIOD, MAX_GRACE_PERIOD, WebhookEndpoint, check_description, check_topics,
};
use crate::operations::{NewWebhookEndpoint, WebhookEndpointChanges, WebhookEndpointPage};

/// The collection of endpoints' resource names, and of their page tokens.
const COLLECTION: &str = "webhookEndpoints";

/// A URL as given (trimmed), or a violation of `field` when it is not one an endpoint takes.
fn url_from_wire(violations: &mut FieldViolations, field: &str, url: &str) -> String {
    let url = url.trim();
    if let Err(reason) = endpoint::check_url(url) {
        violations.add(field, reason);
    }
    url.to_owned()
}

/// CreateWebhookEndpoint's request as an endpoint to create.
pub fn new_webhook_endpoint(
    request: wire::CreateWebhookEndpointRequest,
) -> Result<NewWebhookEndpoint, FieldViolations> {
    let Some(given) = request.webhook_endpoint else {
        return Err(FieldViolations::single("webhook_endpoint", "is required"));
    };
    let mut violations = FieldViolations::new();
    let url = url_from_wire(&mut violations, "webhook_endpoint.url", &given.url);
    check_description(
        &mut violations,
        "webhook_endpoint.description",
        &given.description,
    );
    check_topics(&mut violations, "webhook_endpoint.topics", &given.topics);
    violations.into_result()?;
    Ok(NewWebhookEndpoint {
        url,
        description: given.description,
        topics: given.topics,
        disabled: given.disabled,
    })
}

/// UpdateWebhookEndpoint's request as the endpoint to change and its changes.
pub fn webhook_endpoint_changes(
    request: wire::UpdateWebhookEndpointRequest,
) -> Result<(WebhookEndpointId, WebhookEndpointChanges), FieldViolations> {
    let Some(given) = request.webhook_endpoint else {
        return Err(FieldViolations::single("webhook_endpoint", "is required"));
    };
    let mut violations = FieldViolations::new();
    let id = parse_resource_name(
        &mut violations,
        "webhook_endpoint.name",
        &given.name,
        COLLECTION,
    );
    let mut changes = WebhookEndpointChanges {
        expected_version: expected_version(&mut violations, "webhook_endpoint.etag", &given.etag),
        ..WebhookEndpointChanges::default()
    };
    let paths = mask_paths(request.update_mask.as_ref());
    if paths.is_empty() {
        violations.add("update_mask", "must name at least one field");
    }
    for path in paths {
        match path.as_str() {
            "url" => {
                changes.url = Some(url_from_wire(
                    &mut violations,
                    "webhook_endpoint.url",
                    &given.url,
                ));
            }
            "description" => {
                check_description(
                    &mut violations,
                    "webhook_endpoint.description",
                    &given.description,
                );
                changes.description = Some(given.description.clone());
            }
            "topics" => {
                check_topics(&mut violations, "webhook_endpoint.topics", &given.topics);
                changes.topics = Some(given.topics.clone());
            }
            "disabled" => changes.disabled = Some(given.disabled),
            other => violations.add(
                "update_mask",
                format!("{other} is not a field UpdateWebhookEndpoint changes"),
            ),
        }
    }
    violations.into_result()?;
    Ok((id.expect("checked"), changes))
}

/// ListWebhookEndpoints' request: the endpoint after which the page starts, and its size.
pub fn list_webhook_endpoints_request(
    request: &wire::ListWebhookEndpointsRequest,
) -> Result<(Option<WebhookEndpointId>, usize), FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = paging::page_size(&mut violations, request.page_size);
    let after = paging::decode_page_position(
        &mut violations,
        &request.page_token,
        COLLECTION,
        |position| WebhookEndpointId::parse(position).ok(),
    );
    violations.into_result()?;
    Ok((after, size))
}

/// ListWebhookEndpoints' response.
pub fn webhook_endpoints_page(page: &WebhookEndpointPage) -> wire::ListWebhookEndpointsResponse {
    wire::ListWebhookEndpointsResponse {
        webhook_endpoints: page
            .endpoints
            .iter()
            .map(webhook_endpoint_to_proto)
            .collect(),
        next_page_token: page
            .next_after
            .map(|after| paging::encode_page_token(COLLECTION, &after.to_string()))
            .unwrap_or_default(),
    }
}

/// RotateWebhookEndpointSecret's request: the endpoint, and how long its old secret keeps
/// signing (24 hours when unset, at most 7 days).
pub fn rotate_request(
    request: &wire::RotateWebhookEndpointSecretRequest,
) -> Result<(WebhookEndpointId, Duration), FieldViolations> {
    let mut violations = FieldViolations::new();
    let id = parse_resource_name(&mut violations, "name", &request.name, COLLECTION);
    let grace_period = match &request.grace_period {
        None => DEFAULT_GRACE_PERIOD,
        Some(given) => {
            let grace_period = u64::try_from(given.seconds)
                .ok()
                .filter(|_| given.nanos >= 0)
                .map(|seconds| Duration::new(seconds, given.nanos.unsigned_abs()))
                .filter(|grace_period| *grace_period <= MAX_GRACE_PERIOD);
            if grace_period.is_none() {
                violations.add("grace_period", "must be 0 to 7 days");
            }
            grace_period.unwrap_or_default()
        }
    };
    violations.into_result()?;
    Ok((id.expect("checked"), grace_period))
}

/// An endpoint, never with its secret.
pub fn webhook_endpoint_to_proto(endpoint: &WebhookEndpoint) -> wire::WebhookEndpoint {
    wire::WebhookEndpoint {
        name: resource_name(COLLECTION, endpoint.id),
        id: endpoint.id.to_string(),
        url: endpoint.url.clone(),
        description: endpoint.description.clone(),
        topics: endpoint.topics.clone(),
        disabled: endpoint.disabled,
        secret_prefix: endpoint.secret_prefix.clone(),
        secret_rotate_time: endpoint.secret_rotated_at.map(timestamp),
        create_time: Some(timestamp(endpoint.created_at)),
        update_time: Some(timestamp(endpoint.updated_at)),
        etag: platform::wire::etag(endpoint.version),
    }
}
