//! Requests to domain values, each bad field reported at once ([`FieldViolations`]), and domain
//! values back to the wire.

use std::time::Duration;

use platform::error::FieldViolations;
use platform::paging::{
    Listing, MAX_PAGE_SIZE, decode_page_position, encode_page_token, page_size, page_size_or,
};
use platform::wire::{
    enum_field, enum_filter, etag, expected_version, from_timestamp, mask_paths, object_from_proto,
    object_to_proto, parse_resource_name, resource_name, timestamp, value_to_proto,
};
use proto::formflow::workflow::v1 as wire;
use serde_json::Value;

use crate::domain::definition::{DEFAULT_NODE_TIMEOUT, MAX_ATTEMPTS, check_node_id, millis};
use crate::domain::execution::{
    DeadLetter, Execution, ExecutionId, ExecutionState, Failure, NodeRun, NodeRunId, NodeRunState,
    TriggerKind, json_size, shown,
};
use crate::domain::expression::parse_template;
use crate::domain::node_types::NODE_TYPES;
use crate::domain::{
    Credential, CredentialId, CredentialType, CredentialValue, Definition, Edge, Node,
    NodeCategory, NodeType, RetryPolicy, Settings, Workflow, WorkflowId, WorkflowState,
    WorkflowVersion,
};
use crate::operations::{
    CredentialChanges, MAX_BODY_BYTES, MAX_INPUT_BYTES, NewCredential, NewRun, NewWorkflow,
    WebhookCall, WorkflowChanges,
};
use crate::store::{
    CredentialPosition, DeadLetterPosition, ExecutionFilter, ExecutionPosition, WorkflowPosition,
};

/// The workflow a `workflows/{id}` name in `field` names.
pub fn workflow_id(
    violations: &mut FieldViolations,
    field: &str,
    name: &str,
) -> Option<WorkflowId> {
    parse_resource_name(violations, field, name, "workflows")
}

/// The workflow a request's `name` names, or the violation.
pub fn workflow_only(name: &str) -> Result<WorkflowId, FieldViolations> {
    let mut violations = FieldViolations::new();
    let id = workflow_id(&mut violations, "name", name);
    violations.into_result()?;
    Ok(id.expect("no violation means parsed"))
}

/// The credential a request's `name` names, or the violation.
pub fn credential_only(name: &str) -> Result<CredentialId, FieldViolations> {
    let mut violations = FieldViolations::new();
    let id = parse_resource_name(&mut violations, "name", name, "credentials");
    violations.into_result()?;
    Ok(id.expect("no violation means parsed"))
}

/// The workflow and version a `workflows/{id}/versions/{version}` name names.
pub fn version_name(name: &str) -> Result<(WorkflowId, i32), FieldViolations> {
    let parsed = name
        .rsplit_once("/versions/")
        .and_then(|(workflow, version)| {
            let mut ignored = FieldViolations::new();
            let id = workflow_id(&mut ignored, "name", workflow)?;
            let version = version
                .parse::<i32>()
                .ok()
                .filter(|version| *version >= 1)?;
            Some((id, version))
        });
    parsed.ok_or_else(|| {
        FieldViolations::single(
            "name",
            "must be a resource name, workflows/{uuid}/versions/{number}",
        )
    })
}

fn display_name(violations: &mut FieldViolations, field: &str, value: &str) -> Option<String> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > 100 {
        violations.add(field, "must be 1 to 100 characters");
        return None;
    }
    if trimmed.chars().any(char::is_control) {
        violations.add(field, "cannot contain control characters");
        return None;
    }
    Some(trimmed.to_owned())
}

fn description(violations: &mut FieldViolations, field: &str, value: &str) -> Option<String> {
    if value.chars().count() > 2_000 {
        violations.add(field, "must be at most 2,000 characters");
        return None;
    }
    Some(value.to_owned())
}

/// A duration on the wire in milliseconds, `None` (with a violation) when out of `range`.
fn duration(
    violations: &mut FieldViolations,
    field: &str,
    value: Option<&pbjson_types::Duration>,
    default: Duration,
    (min, max, described): (Duration, Duration, &str),
) -> Option<u64> {
    let Some(value) = value else {
        return Some(millis(default));
    };
    let parsed = u64::try_from(value.seconds)
        .ok()
        .zip(u32::try_from(value.nanos).ok())
        .map(|(seconds, nanos)| Duration::new(seconds, nanos));
    match parsed {
        Some(parsed) if parsed >= min && parsed <= max => Some(millis(parsed)),
        _ => {
            violations.add(field, format!("must be {described}"));
            None
        }
    }
}

fn retry_policy(
    violations: &mut FieldViolations,
    path: &str,
    policy: Option<&wire::RetryPolicy>,
) -> RetryPolicy {
    let defaults = RetryPolicy::default();
    let Some(policy) = policy else {
        return defaults;
    };
    let max_attempts = match u32::try_from(policy.max_attempts) {
        Ok(0) => defaults.max_attempts,
        Ok(attempts) if attempts <= MAX_ATTEMPTS => attempts,
        _ => {
            violations.add(
                format!("{path}.max_attempts"),
                format!("must be between 0 and {MAX_ATTEMPTS}"),
            );
            defaults.max_attempts
        }
    };
    let initial_backoff_ms = duration(
        violations,
        &format!("{path}.initial_backoff"),
        policy.initial_backoff.as_ref(),
        Duration::from_millis(defaults.initial_backoff_ms),
        (
            Duration::from_millis(100),
            Duration::from_secs(3600),
            "between 100 milliseconds and 1 hour",
        ),
    )
    .unwrap_or(defaults.initial_backoff_ms);
    let max_backoff_ms = duration(
        violations,
        &format!("{path}.max_backoff"),
        policy.max_backoff.as_ref(),
        Duration::from_millis(defaults.max_backoff_ms.max(initial_backoff_ms)),
        (
            Duration::from_millis(100),
            Duration::from_secs(86_400),
            "between 100 milliseconds and 1 day",
        ),
    )
    .unwrap_or(defaults.max_backoff_ms);
    if max_backoff_ms < initial_backoff_ms {
        violations.add(
            format!("{path}.max_backoff"),
            "must be at least initial_backoff",
        );
    }
    RetryPolicy {
        max_attempts,
        initial_backoff_ms,
        max_backoff_ms,
    }
}

/// A definition from the wire, checked as a whole; violations under `path`
/// (`workflow.definition`).
pub fn definition(
    violations: &mut FieldViolations,
    path: &str,
    definition: Option<&wire::WorkflowDefinition>,
) -> Option<Definition> {
    let Some(definition) = definition else {
        violations.add(path, "is required");
        return None;
    };
    let before = violations.violations().len();
    let nodes = definition
        .nodes
        .iter()
        .enumerate()
        .map(|(index, node)| {
            let node_path = format!("{path}.nodes[{index}]");
            if let Err(reason) = check_node_id(&node.id) {
                violations.add(format!("{node_path}.id"), reason);
            }
            if node.display_name.chars().count() > 100 {
                violations.add(
                    format!("{node_path}.display_name"),
                    "must be at most 100 characters",
                );
            }
            Node {
                id: node.id.clone(),
                node_type: node.r#type.clone(),
                display_name: node.display_name.clone(),
                config: node
                    .config
                    .as_ref()
                    .map(object_from_proto)
                    .unwrap_or_default(),
                retry: retry_policy(
                    violations,
                    &format!("{node_path}.retry"),
                    node.retry.as_ref(),
                ),
                timeout_ms: duration(
                    violations,
                    &format!("{node_path}.timeout"),
                    node.timeout.as_ref(),
                    DEFAULT_NODE_TIMEOUT,
                    (
                        Duration::from_secs(1),
                        Duration::from_secs(3600),
                        "between 1 second and 1 hour",
                    ),
                )
                .unwrap_or(0),
            }
        })
        .collect();
    let edges = definition
        .edges
        .iter()
        .map(|edge| Edge {
            from: edge.from.clone(),
            to: edge.to.clone(),
            when: edge.when.clone(),
        })
        .collect();
    let wire_settings = definition.settings.clone().unwrap_or_default();
    if wire_settings.lock_key.chars().count() > 500 {
        violations.add(
            format!("{path}.settings.lock_key"),
            "must be at most 500 characters",
        );
    } else if let Err(reason) = parse_template(&wire_settings.lock_key) {
        violations.add(format!("{path}.settings.lock_key"), reason);
    }
    let settings = Settings {
        lock_key: wire_settings.lock_key,
        timeout_ms: duration(
            violations,
            &format!("{path}.settings.timeout"),
            wire_settings.timeout.as_ref(),
            crate::domain::definition::DEFAULT_EXECUTION_TIMEOUT,
            (
                Duration::from_secs(1),
                Duration::from_secs(30 * 86_400),
                "between 1 second and 30 days",
            ),
        )
        .unwrap_or(0),
    };
    let definition = Definition {
        nodes,
        edges,
        settings,
    };
    if let Err(problems) = definition.check() {
        for (problem_path, reason) in problems {
            violations.add(format!("{path}.{problem_path}"), reason);
        }
    }
    (violations.violations().len() == before).then_some(definition)
}

/// Checks CreateWorkflow.
pub fn new_workflow(request: wire::CreateWorkflowRequest) -> Result<NewWorkflow, FieldViolations> {
    let mut violations = FieldViolations::new();
    let Some(workflow) = request.workflow else {
        return Err(FieldViolations::single("workflow", "is required"));
    };
    let display_name = display_name(
        &mut violations,
        "workflow.display_name",
        &workflow.display_name,
    );
    let description = description(
        &mut violations,
        "workflow.description",
        &workflow.description,
    );
    let definition = definition(
        &mut violations,
        "workflow.definition",
        workflow.definition.as_ref(),
    );
    violations.into_result()?;
    Ok(NewWorkflow {
        display_name: display_name.expect("checked"),
        description: description.expect("checked"),
        definition: definition.expect("checked"),
    })
}

/// Checks UpdateWorkflow: the workflow and the changes its mask names.
pub fn workflow_changes(
    request: wire::UpdateWorkflowRequest,
) -> Result<(WorkflowId, WorkflowChanges), FieldViolations> {
    let Some(workflow) = request.workflow else {
        return Err(FieldViolations::single("workflow", "is required"));
    };
    let mut violations = FieldViolations::new();
    let id = workflow_id(&mut violations, "workflow.name", &workflow.name);
    let paths = mask_paths(request.update_mask.as_ref());
    if paths.is_empty() {
        violations.add(
            "update_mask",
            "must name the fields to change: display_name, description, definition",
        );
    }
    let mut changes = WorkflowChanges {
        expected_version: expected_version(&mut violations, "workflow.etag", &workflow.etag),
        ..WorkflowChanges::default()
    };
    for path in &paths {
        match path.as_str() {
            "display_name" => {
                changes.display_name = display_name(
                    &mut violations,
                    "workflow.display_name",
                    &workflow.display_name,
                );
            }
            "description" => {
                changes.description = description(
                    &mut violations,
                    "workflow.description",
                    &workflow.description,
                );
            }
            "definition" => {
                changes.definition = definition(
                    &mut violations,
                    "workflow.definition",
                    workflow.definition.as_ref(),
                );
            }
            other => violations.add(
                "update_mask",
                format!(
                    "{other:?} is not an updatable field (display_name, description, definition)"
                ),
            ),
        }
    }
    violations.into_result()?;
    Ok((id.expect("checked"), changes))
}

/// Checks DeleteWorkflow.
pub fn delete_workflow(
    request: &wire::DeleteWorkflowRequest,
) -> Result<(WorkflowId, Option<i64>), FieldViolations> {
    let mut violations = FieldViolations::new();
    let id = workflow_id(&mut violations, "name", &request.name);
    let expected = expected_version(&mut violations, "etag", &request.etag);
    violations.into_result()?;
    Ok((id.expect("checked"), expected))
}

/// Checks ActivateWorkflow: the workflow and the version (`None`: the latest).
pub fn activate(
    request: &wire::ActivateWorkflowRequest,
) -> Result<(WorkflowId, Option<i32>), FieldViolations> {
    let mut violations = FieldViolations::new();
    let id = workflow_id(&mut violations, "name", &request.name);
    if request.version < 0 {
        violations.add("version", "must be a version number, or 0 for the latest");
    }
    violations.into_result()?;
    Ok((
        id.expect("checked"),
        (request.version > 0).then_some(request.version),
    ))
}

fn state_filter(state: wire::WorkflowState) -> Option<WorkflowState> {
    match state {
        wire::WorkflowState::Unspecified => None,
        wire::WorkflowState::Inactive => Some(WorkflowState::Inactive),
        wire::WorkflowState::Active => Some(WorkflowState::Active),
    }
}

/// What ListWorkflows lists.
#[derive(Debug)]
pub struct WorkflowFilter {
    /// Only workflows in this state.
    pub state: Option<WorkflowState>,
    /// Only workflows with a node of this type.
    pub node_type: Option<String>,
}

/// Checks ListWorkflows.
pub fn list_workflows(
    request: &wire::ListWorkflowsRequest,
) -> Result<Listing<WorkflowFilter, WorkflowPosition>, FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = page_size(&mut violations, request.page_size);
    let state = enum_filter(&mut violations, "state", request.state, state_filter);
    if !request.node_type.is_empty() && !NODE_TYPES.contains_key(request.node_type.as_str()) {
        violations.add("node_type", "is not a node type (ListNodeTypes lists them)");
    }
    let filter = WorkflowFilter {
        state,
        node_type: (!request.node_type.is_empty()).then(|| request.node_type.clone()),
    };
    let key = format!("state={}&node_type={}", request.state, request.node_type);
    Listing::by_time_and_id(violations, filter, key, size, &request.page_token)
}

/// Checks ListWorkflowVersions: the workflow, the version the page starts before, the size.
pub fn list_versions(
    request: &wire::ListWorkflowVersionsRequest,
) -> Result<Listing<WorkflowId, i32>, FieldViolations> {
    let mut violations = FieldViolations::new();
    let id = workflow_id(&mut violations, "parent", &request.parent);
    let size = page_size(&mut violations, request.page_size);
    Listing::of_versions(violations, id, &request.parent, size, &request.page_token)
}

fn credential_type(kind: wire::CredentialType) -> Option<CredentialType> {
    match kind {
        wire::CredentialType::Unspecified => None,
        wire::CredentialType::BearerToken => Some(CredentialType::BearerToken),
        wire::CredentialType::BasicAuth => Some(CredentialType::BasicAuth),
        wire::CredentialType::Header => Some(CredentialType::Header),
        wire::CredentialType::WebhookSecret => Some(CredentialType::WebhookSecret),
        wire::CredentialType::Generic => Some(CredentialType::Generic),
    }
}

fn credential_type_to_proto(kind: CredentialType) -> wire::CredentialType {
    match kind {
        CredentialType::BearerToken => wire::CredentialType::BearerToken,
        CredentialType::BasicAuth => wire::CredentialType::BasicAuth,
        CredentialType::Header => wire::CredentialType::Header,
        CredentialType::WebhookSecret => wire::CredentialType::WebhookSecret,
        CredentialType::Generic => wire::CredentialType::Generic,
    }
}

/// Checks CreateCredential.
pub fn new_credential(
    request: wire::CreateCredentialRequest,
) -> Result<NewCredential, FieldViolations> {
    let Some(credential) = request.credential else {
        return Err(FieldViolations::single("credential", "is required"));
    };
    let mut violations = FieldViolations::new();
    let display_name = display_name(
        &mut violations,
        "credential.display_name",
        &credential.display_name,
    );
    let kind = enum_field(
        &mut violations,
        "credential.type",
        credential.r#type,
        credential_type,
    );
    let value = match (credential.value.as_ref(), kind) {
        (None, _) => {
            violations.add("credential.value", "is required");
            None
        }
        (Some(value), Some(kind)) => match CredentialValue::parse(kind, object_from_proto(value)) {
            Ok(value) => Some(value),
            Err(problems) => {
                for (key, reason) in problems {
                    violations.add(crate::operations::value_path(&key), reason);
                }
                None
            }
        },
        (Some(_), None) => None,
    };
    violations.into_result()?;
    Ok(NewCredential {
        display_name: display_name.expect("checked"),
        kind: kind.expect("checked"),
        value: value.expect("checked"),
    })
}

/// Checks UpdateCredential: the credential and the changes its mask names.
pub fn credential_changes(
    request: wire::UpdateCredentialRequest,
) -> Result<(CredentialId, CredentialChanges), FieldViolations> {
    let Some(credential) = request.credential else {
        return Err(FieldViolations::single("credential", "is required"));
    };
    let mut violations = FieldViolations::new();
    let id = parse_resource_name(
        &mut violations,
        "credential.name",
        &credential.name,
        "credentials",
    );
    let paths = mask_paths(request.update_mask.as_ref());
    if paths.is_empty() {
        violations.add(
            "update_mask",
            "must name the fields to change: display_name, value",
        );
    }
    let mut changes = CredentialChanges {
        expected_version: expected_version(&mut violations, "credential.etag", &credential.etag),
        ..CredentialChanges::default()
    };
    for path in &paths {
        match path.as_str() {
            "display_name" => {
                changes.display_name = display_name(
                    &mut violations,
                    "credential.display_name",
                    &credential.display_name,
                );
            }
            "value" => match credential.value.as_ref() {
                Some(value) => changes.value = Some(object_from_proto(value)),
                None => violations.add("credential.value", "is required when the mask names it"),
            },
            "type" => violations.add(
                "update_mask",
                "a credential's type never changes: create another one",
            ),
            other => violations.add(
                "update_mask",
                format!("{other:?} is not an updatable field (display_name, value)"),
            ),
        }
    }
    violations.into_result()?;
    Ok((id.expect("checked"), changes))
}

/// The token of the credentials page after `next`, the last of a page of `listing`.
pub fn next_credentials_token(
    listing: &Listing<Option<CredentialType>, CredentialPosition>,
    next: Option<CredentialPosition>,
) -> String {
    next.map(|(display_name, id)| encode_page_token(&listing.key, &format!("{id}|{display_name}")))
        .unwrap_or_default()
}

/// Checks ListCredentials.
pub fn list_credentials(
    request: &wire::ListCredentialsRequest,
) -> Result<Listing<Option<CredentialType>, CredentialPosition>, FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = page_size(&mut violations, request.page_size);
    let kind = enum_filter(&mut violations, "type", request.r#type, credential_type);
    let key = format!("type={}", request.r#type);
    let after = decode_page_position(&mut violations, &request.page_token, &key, |position| {
        let (id, display_name) = position.split_once('|')?;
        Some((display_name.to_owned(), CredentialId::parse(id).ok()?))
    });
    violations.into_result()?;
    Ok(Listing {
        filter: kind,
        after,
        size,
        key,
    })
}

/// Checks ListNodeTypes: the page size, the type the page starts after, the family.
pub fn list_node_types(
    request: &wire::ListNodeTypesRequest,
) -> Result<(usize, Option<String>, Option<NodeCategory>), FieldViolations> {
    let mut violations = FieldViolations::new();
    let page_size = page_size_or(&mut violations, request.page_size, MAX_PAGE_SIZE);
    let category = enum_filter(
        &mut violations,
        "category",
        request.category,
        |category: wire::NodeCategory| match category {
            wire::NodeCategory::Unspecified => None,
            wire::NodeCategory::Trigger => Some(NodeCategory::Trigger),
            wire::NodeCategory::Transform => Some(NodeCategory::Transform),
            wire::NodeCategory::Logic => Some(NodeCategory::Logic),
            wire::NodeCategory::Action => Some(NodeCategory::Action),
        },
    );
    let filter = format!("category={}", request.category);
    let after = decode_page_position(&mut violations, &request.page_token, &filter, |position| {
        NODE_TYPES
            .contains_key(position)
            .then(|| position.to_owned())
    });
    violations.into_result()?;
    Ok((page_size, after, category))
}

/// The token of the page of node types after `last`, in the listing of `category`.
pub fn node_types_page_token(category: i32, last: &str) -> String {
    encode_page_token(&format!("category={category}"), last)
}

fn duration_to_proto(millis: u64) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: i64::try_from(millis / 1000).unwrap_or(i64::MAX),
        nanos: i32::try_from((millis % 1000) * 1_000_000).unwrap_or(0),
    }
}

/// A definition on the wire.
pub fn definition_to_proto(definition: &Definition) -> wire::WorkflowDefinition {
    wire::WorkflowDefinition {
        nodes: definition
            .nodes
            .iter()
            .map(|node| wire::Node {
                id: node.id.clone(),
                r#type: node.node_type.clone(),
                display_name: node.display_name.clone(),
                config: Some(object_to_proto(&node.config)),
                retry: Some(wire::RetryPolicy {
                    max_attempts: i32::try_from(node.retry.max_attempts).unwrap_or(i32::MAX),
                    initial_backoff: Some(duration_to_proto(node.retry.initial_backoff_ms)),
                    max_backoff: Some(duration_to_proto(node.retry.max_backoff_ms)),
                }),
                timeout: Some(duration_to_proto(node.timeout_ms)),
            })
            .collect(),
        edges: definition
            .edges
            .iter()
            .map(|edge| wire::Edge {
                from: edge.from.clone(),
                to: edge.to.clone(),
                when: edge.when.clone(),
            })
            .collect(),
        settings: Some(wire::WorkflowSettings {
            lock_key: definition.settings.lock_key.clone(),
            timeout: Some(duration_to_proto(definition.settings.timeout_ms)),
        }),
    }
}

/// A workflow on the wire.
pub fn workflow_to_proto(workflow: &Workflow) -> wire::Workflow {
    let name = format!("workflows/{}", workflow.id);
    let webhooks = workflow
        .running_definition()
        .map(|definition| {
            definition
                .webhook_nodes()
                .map(|node| wire::WebhookTrigger {
                    node_id: node.to_owned(),
                    webhook: format!("{name}/webhooks/{node}"),
                    path: format!(
                        "/t/{}/api/v1/{name}/webhooks/{node}:trigger",
                        workflow.tenant_id
                    ),
                })
                .collect()
        })
        .unwrap_or_default();
    wire::Workflow {
        id: workflow.id.to_string(),
        display_name: workflow.display_name.clone(),
        description: workflow.description.clone(),
        definition: Some(definition_to_proto(&workflow.definition)),
        version: workflow.latest_version,
        state: match workflow.state {
            WorkflowState::Inactive => wire::WorkflowState::Inactive,
            WorkflowState::Active => wire::WorkflowState::Active,
        } as i32,
        active_version: workflow.active_version,
        webhooks,
        creator: workflow.creator.clone(),
        create_time: Some(timestamp(workflow.created_at)),
        update_time: Some(timestamp(workflow.updated_at)),
        etag: etag(workflow.version),
        name,
    }
}

/// A version on the wire.
pub fn version_to_proto(version: &WorkflowVersion) -> wire::WorkflowVersion {
    wire::WorkflowVersion {
        name: format!(
            "workflows/{}/versions/{}",
            version.workflow_id, version.version
        ),
        version: version.version,
        definition: Some(definition_to_proto(&version.definition)),
        creator: version.creator.clone(),
        create_time: Some(timestamp(version.created_at)),
    }
}

/// A credential on the wire, without its value.
pub fn credential_to_proto(credential: &Credential) -> wire::Credential {
    wire::Credential {
        name: format!("credentials/{}", credential.id),
        id: credential.id.to_string(),
        display_name: credential.display_name.clone(),
        r#type: credential_type_to_proto(credential.kind) as i32,
        value: None,
        create_time: Some(timestamp(credential.created_at)),
        update_time: Some(timestamp(credential.updated_at)),
        etag: etag(credential.version),
    }
}

/// A node type on the wire.
pub fn node_type_to_proto(node_type: &NodeType) -> wire::NodeType {
    let Value::Object(schema) = &node_type.config_schema else {
        unreachable!("config schemas are objects")
    };
    wire::NodeType {
        r#type: node_type.name.to_owned(),
        category: match node_type.category {
            NodeCategory::Trigger => wire::NodeCategory::Trigger,
            NodeCategory::Transform => wire::NodeCategory::Transform,
            NodeCategory::Logic => wire::NodeCategory::Logic,
            NodeCategory::Action => wire::NodeCategory::Action,
        } as i32,
        display_name: node_type.display_name.to_owned(),
        description: node_type.description.to_owned(),
        config_schema: Some(object_to_proto(schema)),
        outputs: node_type
            .outputs
            .iter()
            .map(|output| (*output).to_owned())
            .collect(),
    }
}

fn failure_to_proto(failure: &Failure) -> wire::ExecutionError {
    wire::ExecutionError {
        code: failure.code.clone(),
        message: failure.message.clone(),
        node_id: failure.node_id.clone(),
    }
}

fn execution_state_to_proto(state: ExecutionState) -> wire::ExecutionState {
    match state {
        ExecutionState::Queued => wire::ExecutionState::Queued,
        ExecutionState::Running => wire::ExecutionState::Running,
        ExecutionState::Waiting => wire::ExecutionState::Waiting,
        ExecutionState::Succeeded => wire::ExecutionState::Succeeded,
        ExecutionState::Failed => wire::ExecutionState::Failed,
        ExecutionState::Cancelled => wire::ExecutionState::Cancelled,
    }
}

fn trigger_kind_to_proto(kind: TriggerKind) -> wire::TriggerKind {
    match kind {
        TriggerKind::Manual => wire::TriggerKind::Manual,
        TriggerKind::Form => wire::TriggerKind::Form,
        TriggerKind::Webhook => wire::TriggerKind::Webhook,
        TriggerKind::Schedule => wire::TriggerKind::Schedule,
        TriggerKind::Retry => wire::TriggerKind::Retry,
        TriggerKind::Replay => wire::TriggerKind::Replay,
    }
}

/// An execution on the wire; with `data`, its input and output too (capped as shown).
pub fn execution_to_proto(execution: &Execution, data: bool) -> wire::Execution {
    let (output, output_truncated) = if data {
        shown(execution.output.as_ref())
    } else {
        (None, false)
    };
    let input = match (&execution.input, data) {
        (Value::Object(input), true) => Some(object_to_proto(input)),
        _ => None,
    };
    wire::Execution {
        name: resource_name("executions", execution.id),
        id: execution.id.to_string(),
        workflow: resource_name("workflows", execution.workflow_id),
        workflow_version: execution.workflow_version,
        state: execution_state_to_proto(execution.state) as i32,
        trigger_kind: trigger_kind_to_proto(execution.trigger_kind) as i32,
        trigger_node: execution.trigger_node.clone(),
        trigger_ref: execution.trigger_ref.clone(),
        triggered_by: execution.triggered_by.clone(),
        input,
        output: output.as_ref().map(value_to_proto),
        output_truncated,
        error: execution.error.as_ref().map(failure_to_proto),
        retry_of: execution
            .retry_of
            .map(|id| resource_name("executions", id))
            .unwrap_or_default(),
        create_time: Some(timestamp(execution.created_at)),
        start_time: execution.started_at.map(timestamp),
        end_time: execution.ended_at.map(timestamp),
    }
}

/// A node run of execution `execution` on the wire.
pub fn node_run_to_proto(execution: ExecutionId, run: &NodeRun) -> wire::NodeExecution {
    let (input, input_truncated) = shown(run.input.as_ref());
    let (output, output_truncated) = shown(run.output.as_ref());
    wire::NodeExecution {
        name: format!("executions/{execution}/nodeExecutions/{}", run.id),
        id: run.id.to_string(),
        node_id: run.node_id.clone(),
        node_type: run.node_type.clone(),
        state: match run.state {
            NodeRunState::Running => wire::NodeExecutionState::Running,
            NodeRunState::Waiting => wire::NodeExecutionState::Waiting,
            NodeRunState::Succeeded => wire::NodeExecutionState::Succeeded,
            NodeRunState::Failed => wire::NodeExecutionState::Failed,
            NodeRunState::Skipped => wire::NodeExecutionState::Skipped,
            NodeRunState::Cancelled => wire::NodeExecutionState::Cancelled,
        } as i32,
        attempt: run.attempt,
        iteration: run.iteration,
        input: input.as_ref().map(value_to_proto),
        input_truncated,
        output: output.as_ref().map(value_to_proto),
        output_truncated,
        output_port: run.output_port.clone(),
        error: run.error.as_ref().map(failure_to_proto),
        start_time: Some(timestamp(run.started_at)),
        end_time: run.ended_at.map(timestamp),
    }
}

/// The execution a request's `field` names (`executions/{id}`), or the violation.
pub fn execution_only(field: &str, name: &str) -> Result<ExecutionId, FieldViolations> {
    let mut violations = FieldViolations::new();
    let id = parse_resource_name(&mut violations, field, name, "executions");
    violations.into_result()?;
    Ok(id.expect("no violation means parsed"))
}

/// Checks RunWorkflow.
pub fn new_run(request: &wire::RunWorkflowRequest) -> Result<NewRun, FieldViolations> {
    let mut violations = FieldViolations::new();
    let workflow = workflow_id(&mut violations, "name", &request.name);
    let input = request
        .input
        .as_ref()
        .map(object_from_proto)
        .unwrap_or_default();
    if json_size(&Value::Object(input.clone())) > MAX_INPUT_BYTES {
        violations.add(
            "input",
            format!("must be at most {} KiB of JSON", MAX_INPUT_BYTES / 1024),
        );
    }
    if request.version < 0 {
        violations.add(
            "version",
            "must be a version number, or 0 for the active one",
        );
    }
    if !request.trigger_node.is_empty()
        && let Err(reason) = check_node_id(&request.trigger_node)
    {
        violations.add("trigger_node", reason);
    }
    violations.into_result()?;
    Ok(NewRun {
        workflow: workflow.expect("checked"),
        input,
        version: (request.version > 0).then_some(request.version),
        trigger_node: (!request.trigger_node.is_empty()).then(|| request.trigger_node.clone()),
    })
}

/// Checks ListExecutions.
pub fn list_executions(
    request: &wire::ListExecutionsRequest,
) -> Result<Listing<ExecutionFilter, ExecutionPosition>, FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = page_size(&mut violations, request.page_size);
    let workflow = (!request.workflow.is_empty())
        .then(|| workflow_id(&mut violations, "workflow", &request.workflow))
        .flatten();
    let state = enum_filter(
        &mut violations,
        "state",
        request.state,
        |state: wire::ExecutionState| match state {
            wire::ExecutionState::Unspecified => None,
            wire::ExecutionState::Queued => Some(ExecutionState::Queued),
            wire::ExecutionState::Running => Some(ExecutionState::Running),
            wire::ExecutionState::Waiting => Some(ExecutionState::Waiting),
            wire::ExecutionState::Succeeded => Some(ExecutionState::Succeeded),
            wire::ExecutionState::Failed => Some(ExecutionState::Failed),
            wire::ExecutionState::Cancelled => Some(ExecutionState::Cancelled),
        },
    );
    let trigger_kind = enum_filter(
        &mut violations,
        "trigger_kind",
        request.trigger_kind,
        |kind: wire::TriggerKind| match kind {
            wire::TriggerKind::Unspecified => None,
            wire::TriggerKind::Manual => Some(TriggerKind::Manual),
            wire::TriggerKind::Form => Some(TriggerKind::Form),
            wire::TriggerKind::Webhook => Some(TriggerKind::Webhook),
            wire::TriggerKind::Schedule => Some(TriggerKind::Schedule),
            wire::TriggerKind::Retry => Some(TriggerKind::Retry),
            wire::TriggerKind::Replay => Some(TriggerKind::Replay),
        },
    );
    let mut time = |field: &str, value: Option<&pbjson_types::Timestamp>| {
        let value = value?;
        let parsed = from_timestamp(value);
        if parsed.is_none() {
            violations.add(field, "is not a valid time");
        }
        parsed
    };
    let since = time("start_time", request.start_time.as_ref());
    let until = time("end_time", request.end_time.as_ref());
    if let (Some(since), Some(until)) = (since, until)
        && since >= until
    {
        violations.add("end_time", "must be after start_time");
    }
    let key = format!(
        "workflow={}&state={}&trigger_kind={}&start={:?}&end={:?}",
        request.workflow,
        request.state,
        request.trigger_kind,
        since.map(|time| time.to_rfc3339()),
        until.map(|time| time.to_rfc3339()),
    );
    let filter = ExecutionFilter {
        workflow,
        state,
        trigger_kind,
        since,
        until,
    };
    Listing::by_time_and_id(violations, filter, key, size, &request.page_token)
}

/// Most node runs on one page of ListNodeExecutions.
const MAX_NODE_RUNS_PAGE: usize = 500;

/// Checks ListNodeExecutions: the execution, the node, the run the page starts after, the size.
pub fn list_node_runs(
    request: &wire::ListNodeExecutionsRequest,
) -> Result<(ExecutionId, Option<String>, Option<NodeRunId>, usize), FieldViolations> {
    let mut violations = FieldViolations::new();
    let execution = parse_resource_name(&mut violations, "parent", &request.parent, "executions");
    let page_size = if request.page_size == 0 {
        100
    } else {
        match usize::try_from(request.page_size) {
            Ok(size) if (1..=MAX_NODE_RUNS_PAGE).contains(&size) => size,
            _ => {
                violations.add(
                    "page_size",
                    format!("must be between 1 and {MAX_NODE_RUNS_PAGE}"),
                );
                100
            }
        }
    };
    if !request.node_id.is_empty()
        && let Err(reason) = check_node_id(&request.node_id)
    {
        violations.add("node_id", reason);
    }
    let filter = format!("{}&node_id={}", request.parent, request.node_id);
    let after = decode_page_position(&mut violations, &request.page_token, &filter, |position| {
        NodeRunId::parse(position).ok()
    });
    violations.into_result()?;
    Ok((
        execution.expect("checked"),
        (!request.node_id.is_empty()).then(|| request.node_id.clone()),
        after,
        page_size,
    ))
}

/// The token of the page of `parent`'s node runs (of `node_id`) after run `next`.
pub fn node_runs_page_token(parent: &str, node_id: &str, next: Option<NodeRunId>) -> String {
    next.map(|id| encode_page_token(&format!("{parent}&node_id={node_id}"), &id.to_string()))
        .unwrap_or_default()
}

/// Checks CancelExecution: the execution and the reason.
pub fn cancel_execution(
    request: &wire::CancelExecutionRequest,
) -> Result<(ExecutionId, String), FieldViolations> {
    let mut violations = FieldViolations::new();
    let execution = parse_resource_name(&mut violations, "name", &request.name, "executions");
    if request.reason.chars().count() > 500 {
        violations.add("reason", "must be at most 500 characters");
    }
    violations.into_result()?;
    Ok((
        execution.expect("checked"),
        request.reason.trim().to_owned(),
    ))
}

/// A dead letter on the wire.
pub fn dead_letter_to_proto(letter: &DeadLetter) -> wire::DeadLetter {
    let payload = match shown(Some(&letter.payload)) {
        (Some(Value::Object(payload)), _) => Some(object_to_proto(&payload)),
        _ => None,
    };
    wire::DeadLetter {
        name: resource_name("deadLetters", letter.id),
        id: letter.id.to_string(),
        queue: letter.queue.clone(),
        job_type: letter.job_type.clone(),
        workflow: letter
            .workflow_id
            .map(|id| resource_name("workflows", id))
            .unwrap_or_default(),
        execution: letter
            .execution_id
            .map(|id| resource_name("executions", id))
            .unwrap_or_default(),
        node_id: letter.node_id.clone(),
        payload,
        last_error: Some(failure_to_proto(&letter.last_error)),
        attempts: letter.attempts,
        state: if letter.replayed_at.is_some() {
            wire::DeadLetterState::Replayed
        } else {
            wire::DeadLetterState::Pending
        } as i32,
        first_failure_time: Some(timestamp(letter.first_failure_at)),
        create_time: Some(timestamp(letter.created_at)),
        replay_time: letter.replayed_at.map(timestamp),
    }
}

/// What ListDeadLetters lists.
#[derive(Debug)]
pub struct DeadLetterFilter {
    /// Replayed ones, or pending ones.
    pub replayed: bool,
    /// Only this workflow's.
    pub workflow: Option<WorkflowId>,
    /// Only from this queue.
    pub queue: Option<String>,
}

/// Checks ListDeadLetters.
pub fn list_dead_letters(
    request: &wire::ListDeadLettersRequest,
) -> Result<Listing<DeadLetterFilter, DeadLetterPosition>, FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = page_size(&mut violations, request.page_size);
    let replayed = enum_filter(
        &mut violations,
        "state",
        request.state,
        |state: wire::DeadLetterState| match state {
            wire::DeadLetterState::Unspecified | wire::DeadLetterState::Pending => Some(false),
            wire::DeadLetterState::Replayed => Some(true),
        },
    )
    .unwrap_or(false);
    let workflow = (!request.workflow.is_empty())
        .then(|| workflow_id(&mut violations, "workflow", &request.workflow))
        .flatten();
    if request.queue.chars().count() > 200 {
        violations.add("queue", "must be at most 200 characters");
    }
    let key = format!(
        "state={}&workflow={}&queue={}",
        request.state, request.workflow, request.queue
    );
    let filter = DeadLetterFilter {
        replayed,
        workflow,
        queue: (!request.queue.is_empty()).then(|| request.queue.clone()),
    };
    Listing::by_time_and_id(violations, filter, key, size, &request.page_token)
}

/// Checks TriggerWebhook: the webhook's name, its body, and its Standard Webhooks headers
/// (from the call's metadata; missing ones are left empty for the signature check to refuse).
pub fn webhook_call(
    metadata: &tonic::metadata::MetadataMap,
    request: &wire::TriggerWebhookRequest,
) -> Result<WebhookCall, FieldViolations> {
    let mut violations = FieldViolations::new();
    let parsed = request
        .webhook
        .rsplit_once("/webhooks/")
        .and_then(|(workflow, node)| {
            let mut ignored = FieldViolations::new();
            let id = workflow_id(&mut ignored, "webhook", workflow)?;
            check_node_id(node).ok()?;
            Some((id, node.to_owned()))
        });
    if parsed.is_none() {
        violations.add(
            "webhook",
            "must be a resource name, workflows/{uuid}/webhooks/{node id}",
        );
    }
    let body = request.body.clone().unwrap_or_default();
    if body.data.len() > MAX_BODY_BYTES {
        violations.add(
            "body",
            format!("must be at most {} KiB", MAX_BODY_BYTES / 1024),
        );
    }
    violations.into_result()?;
    let (workflow, node_id) = parsed.expect("checked");
    let header = |name: &str| {
        metadata
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(WebhookCall {
        workflow,
        node_id,
        webhook_id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: body.content_type,
        body: body.data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_page_size_of_node_runs_is_the_enforced_one() {
        let limits = proto::published_limits(
            "formflow.workflow.v1.ListNodeExecutionsRequest",
            "page_size",
        );
        assert_eq!(
            (limits.minimum, limits.maximum),
            (Some(0), Some(MAX_NODE_RUNS_PAGE as i64))
        );
        let request = |page_size| wire::ListNodeExecutionsRequest {
            parent: format!("executions/{}", uuid::Uuid::now_v7()),
            page_size,
            ..Default::default()
        };
        assert!(list_node_runs(&request(MAX_NODE_RUNS_PAGE as i32)).is_ok());
        assert!(list_node_runs(&request(MAX_NODE_RUNS_PAGE as i32 + 1)).is_err());
        assert!(list_node_runs(&request(0)).is_ok());
    }
}
