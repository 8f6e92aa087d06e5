//! The node types a definition may use: each with its family, its config's JSON Schema
//! (draft 2020-12, what ListNodeTypes publishes so clients can build editors), the named
//! outputs its edges may follow, and the checks a schema cannot express (expressions,
//! templates, cron schedules, time zones), made when a definition is saved.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use super::expression::{self, check_json_template};

/// Family of a node type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeCategory {
    /// Starts executions.
    Trigger,
    /// Reshapes data.
    Transform,
    /// Controls the flow.
    Logic,
    /// Acts on the outside world.
    Action,
}

/// What a credential referenced by a node's `credential` must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialUse {
    /// A `trigger.webhook`'s signing secret.
    WebhookSecret,
    /// Authentication of an outbound HTTP request.
    HttpAuthentication,
}

/// Problems found in a config: (JSON pointer into it, reason).
pub type Problems = Vec<(String, String)>;

/// The checks of a config that its schema cannot express.
type ConfigCheck = fn(&Map<String, Value>, &mut Problems);

/// A node type.
pub struct NodeType {
    /// Type name, `family.name`.
    pub name: &'static str,
    /// Family.
    pub category: NodeCategory,
    /// Human-readable name.
    pub display_name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// JSON Schema of its config.
    pub config_schema: Value,
    /// Named outputs besides the default one and `error`.
    pub outputs: &'static [&'static str],
    /// What its `credential`, when set, must be.
    pub credential: Option<CredentialUse>,
    validator: jsonschema::Validator,
    check: ConfigCheck,
}

impl std::fmt::Debug for NodeType {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NodeType")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NodeType {
    /// Whether nodes of this type start executions.
    pub fn is_trigger(&self) -> bool {
        self.category == NodeCategory::Trigger
    }

    /// The outputs an edge leaving a node of this type with `config` may follow, besides the
    /// default one (empty) and `error`.
    pub fn outputs_of(&self, config: &Map<String, Value>) -> Vec<String> {
        if self.name == "logic.switch" {
            let mut cases: Vec<String> = config
                .get("cases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|case| case.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
            cases.push("default".to_owned());
            return cases;
        }
        self.outputs
            .iter()
            .map(|output| (*output).to_owned())
            .collect()
    }

    /// Checks `config`: against the schema, then what the schema cannot say; lists each
    /// problem as (JSON pointer into the config, reason). Reasons never quote the config's
    /// values.
    pub fn check_config(&self, config: &Map<String, Value>) -> Problems {
        let instance = Value::Object(config.clone());
        let mut problems: Problems = self
            .validator
            .iter_errors(&instance)
            .map(|error| {
                (
                    error.instance_path().to_string(),
                    error.masked().to_string(),
                )
            })
            .collect();
        if problems.is_empty() {
            (self.check)(config, &mut problems);
        }
        problems
    }
}

/// Every node type, by name.
pub static NODE_TYPES: LazyLock<BTreeMap<&'static str, NodeType>> = LazyLock::new(|| {
    definitions()
        .into_iter()
        .map(|node_type| (node_type.name, node_type))
        .collect()
});

/// The node type named `name`.
pub fn node_type(name: &str) -> Option<&'static NodeType> {
    NODE_TYPES.get(name)
}

const RESOURCE_UUID: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

fn resource(collection: &str, description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": format!("^{collection}/{RESOURCE_UUID}$"),
        "description": description,
    })
}

fn expression_schema(description: &str) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": expression::MAX_LENGTH,
        "description": format!("{description} (a JMESPath expression over the node's input)"),
    })
}

fn template_schema(description: &str) -> Value {
    json!({
        "type": "string",
        "maxLength": expression::MAX_LENGTH,
        "description": format!("{description} (a template: `{{{{ expression }}}}` placeholders are JMESPath over the node's input)"),
    })
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

#[allow(clippy::too_many_arguments)]
fn define(
    name: &'static str,
    category: NodeCategory,
    display_name: &'static str,
    description: &'static str,
    config_schema: Value,
    outputs: &'static [&'static str],
    credential: Option<CredentialUse>,
    check: ConfigCheck,
) -> NodeType {
    let validator = jsonschema::validator_for(&config_schema)
        .unwrap_or_else(|error| panic!("the config schema of {name} is not valid: {error}"));
    NodeType {
        name,
        category,
        display_name,
        description,
        config_schema,
        outputs,
        credential,
        validator,
        check,
    }
}

/// Checks the expressions at `keys` of `config`, when present.
fn expressions(config: &Map<String, Value>, keys: &[&str], problems: &mut Problems) {
    for key in keys {
        if let Some(text) = config.get(*key).and_then(Value::as_str)
            && let Err(reason) = expression::compile(text)
        {
            problems.push((format!("/{key}"), reason));
        }
    }
}

/// Checks the templates at `keys` of `config` (strings, arrays and objects of strings, or any
/// JSON whose strings are templates), when present.
fn templates(config: &Map<String, Value>, keys: &[&str], problems: &mut Problems) {
    for key in keys {
        if let Some(value) = config.get(*key) {
            check_json_template(value, &format!("/{key}"), problems);
        }
    }
}

fn no_check(_: &Map<String, Value>, _: &mut Problems) {}

fn check_schedule(config: &Map<String, Value>, problems: &mut Problems) {
    if let Some(cron) = config.get("cron").and_then(Value::as_str)
        && let Err(error) = cron.parse::<croner::Cron>()
    {
        problems.push((
            "/cron".to_owned(),
            format!("is not a cron schedule: {error}"),
        ));
    }
    if let Some(zone) = config.get("time_zone").and_then(Value::as_str)
        && zone.parse::<chrono_tz::Tz>().is_err()
    {
        problems.push((
            "/time_zone".to_owned(),
            "is not an IANA time zone (such as Europe/Paris)".to_owned(),
        ));
    }
}

fn check_webhook(config: &Map<String, Value>, problems: &mut Problems) {
    if let Some(schema) = config.get("payload_schema")
        && let Err(error) = jsonschema::validator_for(schema)
    {
        problems.push((
            "/payload_schema".to_owned(),
            format!("is not a JSON Schema: {}", error.masked()),
        ));
    }
}

fn definitions() -> Vec<NodeType> {
    use NodeCategory::{Action, Logic, Transform, Trigger};
    vec![
        define(
            "trigger.manual",
            Trigger,
            "Manual",
            "Starts an execution from RunWorkflow, with the input of the call.",
            object(json!({}), &[]),
            &[],
            None,
            no_check,
        ),
        define(
            "trigger.form",
            Trigger,
            "Form submission",
            "Starts an execution for each submission to a form, with the submission (answers, form, version, time) as input; a re-delivered event never starts a second one.",
            object(
                json!({"form": resource("forms", "The form whose submissions start executions, `forms/{id}`")}),
                &["form"],
            ),
            &[],
            None,
            no_check,
        ),
        define(
            "trigger.webhook",
            Trigger,
            "Webhook",
            "Starts an execution for each request to its URL signed as the Standard Webhooks specification says, with the body as input; a repeated `webhook-id` never starts a second one.",
            object(
                json!({
                    "credential": resource("credentials", "The WEBHOOK_SECRET credential that signs requests, `credentials/{id}`"),
                    "tolerance_seconds": {
                        "type": "integer", "minimum": 1, "maximum": 3600, "default": 300,
                        "description": "Largest difference between `webhook-timestamp` and the time of receipt, in seconds",
                    },
                    "payload_schema": {
                        "type": "object",
                        "description": "JSON Schema the body must match; requests that do not are refused",
                    },
                }),
                &["credential"],
            ),
            &[],
            Some(CredentialUse::WebhookSecret),
            check_webhook,
        ),
        define(
            "trigger.schedule",
            Trigger,
            "Schedule",
            "Starts an execution at each tick of a cron schedule in a time zone, exactly once across replicas, with the scheduled time as input.",
            object(
                json!({
                    "cron": {
                        "type": "string", "minLength": 1, "maxLength": 200,
                        "description": "Cron schedule: 5 fields (minute to day of week), or 6 with seconds first",
                    },
                    "time_zone": {
                        "type": "string", "minLength": 1, "maxLength": 64, "default": "UTC",
                        "description": "IANA time zone the schedule is read in",
                    },
                    "input": {"type": "object", "description": "Data added to each execution's input"},
                }),
                &["cron"],
            ),
            &[],
            None,
            check_schedule,
        ),
        define(
            "transform.map",
            Transform,
            "Map",
            "Builds its output from a JSON template whose strings are templates over its input.",
            object(
                json!({"output": {"description": "The output: any JSON, each string of it a template over the node's input"}}),
                &["output"],
            ),
            &[],
            None,
            |config, problems| templates(config, &["output"], problems),
        ),
        define(
            "transform.filter",
            Transform,
            "Filter",
            "Keeps the items of a list for which a condition holds.",
            object(
                json!({
                    "items": expression_schema("The list to filter; the input itself when unset"),
                    "condition": expression_schema("Evaluated on each item; the item is kept when it is truthy"),
                }),
                &["condition"],
            ),
            &[],
            None,
            |config, problems| expressions(config, &["items", "condition"], problems),
        ),
        define(
            "transform.aggregate",
            Transform,
            "Aggregate",
            "Reduces a list to a count, sum, average, minimum, maximum or the list of values, optionally per group.",
            object(
                json!({
                    "items": expression_schema("The list to aggregate; the input itself when unset"),
                    "operation": {"enum": ["count", "sum", "average", "min", "max", "collect"]},
                    "value": expression_schema("Evaluated on each item to get the value aggregated; the item itself when unset"),
                    "group_by": expression_schema("Evaluated on each item to get its group; one group when unset"),
                }),
                &["operation"],
            ),
            &[],
            None,
            |config, problems| expressions(config, &["items", "value", "group_by"], problems),
        ),
        define(
            "logic.if",
            Logic,
            "If",
            "Follows its `true` or its `false` edges, as a condition over its input holds; passes its input on.",
            object(
                json!({"condition": expression_schema("The condition; JMESPath truthiness decides")}),
                &["condition"],
            ),
            &["true", "false"],
            None,
            |config, problems| expressions(config, &["condition"], problems),
        ),
        define(
            "logic.switch",
            Logic,
            "Switch",
            "Follows the edges of the first case whose value equals the evaluated value, else its `default` edges; passes its input on.",
            object(
                json!({
                    "value": expression_schema("The value compared with each case"),
                    "cases": {
                        "type": "array", "minItems": 1, "maxItems": 50,
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {
                                    "type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}$", "not": {"enum": ["default", "error"]},
                                    "description": "Name of the case, what edges' `when` follows",
                                },
                                "equals": {"description": "The value that selects the case"},
                            },
                            "required": ["name", "equals"],
                            "additionalProperties": false,
                        },
                    },
                }),
                &["value", "cases"],
            ),
            &[],
            None,
            |config, problems| {
                expressions(config, &["value"], problems);
                let names = config
                    .get("cases")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|case| case.get("name").and_then(Value::as_str));
                let mut seen = Vec::new();
                for (index, name) in names.enumerate() {
                    if seen.contains(&name) {
                        problems.push((
                            format!("/cases/{index}/name"),
                            "is used by an earlier case".to_owned(),
                        ));
                    }
                    seen.push(name);
                }
            },
        ),
        define(
            "logic.foreach",
            Logic,
            "For each",
            "Runs the nodes after it once per item of a list, each run with one item as input.",
            object(
                json!({
                    "items": expression_schema("The list"),
                    "max_items": {
                        "type": "integer", "minimum": 1, "maximum": 10000, "default": 1000,
                        "description": "Most items; a longer list fails the node",
                    },
                }),
                &["items"],
            ),
            &[],
            None,
            |config, problems| expressions(config, &["items"], problems),
        ),
        define(
            "logic.delay",
            Logic,
            "Delay",
            "Waits for a duration, or until a time, then passes its input on; the execution waits without holding a worker.",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {
                    "seconds": {"type": "integer", "minimum": 1, "maximum": 2_592_000, "description": "How long to wait, up to 30 days"},
                    "until": template_schema("When to go on, as an RFC 3339 time"),
                },
                "oneOf": [{"required": ["seconds"]}, {"required": ["until"]}],
                "additionalProperties": false,
            }),
            &[],
            None,
            |config, problems| templates(config, &["until"], problems),
        ),
        define(
            "action.http",
            Action,
            "HTTP request",
            "Sends an HTTP request and outputs its status, headers and body. Loopback, private, link-local and metadata addresses are refused unless the deployment allows them.",
            object(
                json!({
                    "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], "default": "GET"},
                    "url": template_schema("The http or https URL"),
                    "headers": {
                        "type": "object", "maxProperties": 50,
                        "propertyNames": {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$"},
                        "additionalProperties": template_schema("A header value"),
                    },
                    "query": {
                        "type": "object", "maxProperties": 50,
                        "additionalProperties": template_schema("A query parameter's value"),
                    },
                    "body": {"description": "The body: JSON sent as application/json, each string of it a template; a string alone is sent as text"},
                    "credential": resource("credentials", "A BEARER_TOKEN, BASIC_AUTH or HEADER credential authenticating the request, `credentials/{id}`"),
                    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 300, "default": 30},
                    "follow_redirects": {"type": "boolean", "default": true},
                    "fail_on_error_status": {
                        "type": "boolean", "default": true,
                        "description": "Whether a 4xx or 5xx answer fails the node (5xx and 429 are retried)",
                    },
                }),
                &["url"],
            ),
            &[],
            Some(CredentialUse::HttpAuthentication),
            |config, problems| templates(config, &["url", "headers", "query", "body"], problems),
        ),
        define(
            "action.ai_classify",
            Action,
            "Classify text",
            "Classifies a text with one of the tenant's label sets on svc-ai, and outputs the label, its confidence, the runner-up, every label's confidence and the stored classification's name.",
            object(
                json!({
                    "text": template_schema("The text to classify"),
                    "label_set": resource("labelSets", "The label set, `labelSets/{id}`"),
                    "source": template_schema("What the text comes from, e.g. `{{ submission }}` after a form trigger: svc-ai erases the classification when that submission is deleted"),
                }),
                &["text", "label_set"],
            ),
            &[],
            None,
            |config, problems| templates(config, &["text", "source"], problems),
        ),
        define(
            "action.notify",
            Action,
            "Notify",
            "Sends a notification through svc-notify to users, addresses or webhook endpoints, on a topic, with the recipients' preferences, and outputs the notification's name and deliveries.",
            object(
                json!({
                    "recipients": {
                        "type": "array", "minItems": 1, "maxItems": 100,
                        "items": template_schema("A recipient: `users/{id}`, an email address or `webhookEndpoints/{id}`"),
                    },
                    "topic": {"type": "string", "pattern": "^[a-z][a-z0-9_.-]{0,99}$"},
                    "template": resource("templates", "A notification template, `templates/{id}`; or give `subject` and `body`"),
                    "subject": template_schema("Subject, when no template is given"),
                    "body": template_schema("Body, when no template is given"),
                    "payload": {"type": "object", "description": "Variables of the template, each string of it a template"},
                    "priority": {"enum": ["low", "normal", "high", "urgent"], "default": "normal"},
                }),
                &["recipients", "topic"],
            ),
            &[],
            None,
            |config, problems| {
                templates(
                    config,
                    &["recipients", "subject", "body", "payload"],
                    problems,
                );
                let inline = config.contains_key("subject") && config.contains_key("body");
                if !(config.contains_key("template") || inline) {
                    problems.push((
                        String::new(),
                        "needs a `template`, or a `subject` and a `body`".to_owned(),
                    ));
                }
            },
        ),
        define(
            "action.email",
            Action,
            "Send email",
            "Sends a plain-text email through svc-notify's email channel (topic `workflow.email`), and outputs the notification's name and deliveries.",
            object(
                json!({
                    "to": {
                        "type": "array", "minItems": 1, "maxItems": 50,
                        "items": template_schema("An email address"),
                    },
                    "subject": template_schema("Subject"),
                    "text": template_schema("Plain-text body"),
                }),
                &["to", "subject", "text"],
            ),
            &[],
            None,
            |config, problems| templates(config, &["to", "subject", "text"], problems),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, config: Value) -> Problems {
        let Value::Object(config) = config else {
            panic!("configs are objects")
        };
        node_type(name).unwrap().check_config(&config)
    }

    #[test]
    fn every_type_compiles_its_schema_and_is_named_after_its_family() {
        assert_eq!(NODE_TYPES.len(), 15);
        for (name, node_type) in NODE_TYPES.iter() {
            let family = name.split('.').next().unwrap();
            let expected = match node_type.category {
                NodeCategory::Trigger => "trigger",
                NodeCategory::Transform => "transform",
                NodeCategory::Logic => "logic",
                NodeCategory::Action => "action",
            };
            assert_eq!(family, expected, "{name}");
        }
    }

    #[test]
    fn configs_are_checked_against_the_schema_without_quoting_values() {
        assert!(
            check(
                "action.http",
                json!({"url": "https://example.com/{{ id }}"})
            )
            .is_empty()
        );
        let problems = check(
            "action.http",
            json!({"url": "https://example.com", "method": "SECRET-VERB", "extra": 1}),
        );
        let pointers: Vec<&str> = problems
            .iter()
            .map(|(pointer, _)| pointer.as_str())
            .collect();
        assert!(pointers.contains(&"/method"), "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|(_, reason)| !reason.contains("SECRET-VERB")),
            "{problems:?}"
        );
        assert_eq!(check("trigger.form", json!({}))[0].0, "");
        assert_eq!(
            check("trigger.form", json!({"form": "forms/nope"}))[0].0,
            "/form"
        );
    }

    #[test]
    fn what_a_schema_cannot_say_is_checked_after_it() {
        assert_eq!(
            check("trigger.schedule", json!({"cron": "61 * * * *"}))[0].0,
            "/cron"
        );
        assert_eq!(
            check(
                "trigger.schedule",
                json!({"cron": "0 9 * * MON-FRI", "time_zone": "Mars/Olympus"})
            )[0]
            .0,
            "/time_zone"
        );
        assert!(
            check(
                "trigger.schedule",
                json!({"cron": "0 9 * * MON-FRI", "time_zone": "Europe/Paris"})
            )
            .is_empty()
        );
        assert_eq!(
            check("logic.if", json!({"condition": "a.["}))[0].0,
            "/condition"
        );
        assert_eq!(
            check("transform.map", json!({"output": {"a": ["{{ x.[ }}"]}}))[0].0,
            "/output/a/0"
        );
        let duplicate = check(
            "logic.switch",
            json!({"value": "kind", "cases": [{"name": "a", "equals": 1}, {"name": "a", "equals": 2}]}),
        );
        assert_eq!(duplicate[0].0, "/cases/1/name");
        assert_eq!(
            check(
                "action.notify",
                json!({"recipients": ["a@example.com"], "topic": "t"})
            )[0]
            .1,
            "needs a `template`, or a `subject` and a `body`"
        );
        assert_eq!(
            check(
                "trigger.webhook",
                json!({
                    "credential": "credentials/0193a0c8-0000-7000-8000-000000000000",
                    "payload_schema": {"type": 12}
                })
            )[0]
            .0,
            "/payload_schema"
        );
    }

    #[test]
    fn a_switch_takes_its_outputs_from_its_cases() {
        let Value::Object(config) =
            json!({"value": "kind", "cases": [{"name": "bug", "equals": "bug"}]})
        else {
            unreachable!()
        };
        assert_eq!(
            node_type("logic.switch").unwrap().outputs_of(&config),
            ["bug", "default"]
        );
        assert_eq!(
            node_type("logic.if").unwrap().outputs_of(&Map::new()),
            ["true", "false"]
        );
    }
}
