//! What the nodes that do no IO make of their input: triggers, transforms and logic.

use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value, json};

use crate::domain::Node;
use crate::domain::execution::{Failure, MAX_OUTPUT_BYTES, json_size};
use crate::domain::expression::{self, Data};

/// What a node did.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Completed with an output, through an output port (empty: the default one).
    Done {
        /// The output.
        output: Value,
        /// The port its successors follow.
        port: String,
    },
    /// `logic.delay`: completes at `until` with its input as output.
    Wait {
        /// When the wait ends.
        until: DateTime<Utc>,
    },
}

/// Whether nodes of type `node_type` are evaluated here (no IO, no retry needed).
pub fn is_pure(node_type: &str) -> bool {
    node_type.starts_with("trigger.")
        || node_type.starts_with("transform.")
        || node_type.starts_with("logic.")
}

/// Runs `node`, a pure one ([`is_pure`]), on `input` at `now`.
pub fn evaluate(node: &Node, input: &Value, now: DateTime<Utc>) -> Result<Step, Failure> {
    let config = &node.config;
    let step = match node.node_type.as_str() {
        "logic.delay" => {
            let until = match config.get("seconds").and_then(Value::as_i64) {
                Some(seconds) => now + chrono::Duration::seconds(seconds),
                None => {
                    let template = string(config, "until");
                    match expression::render(template, &data(input)?).map_err(expression_error)? {
                        Value::String(text) => DateTime::parse_from_rfc3339(&text)
                            .map_err(|_| {
                                Failure::new(
                                    "EXPRESSION_ERROR",
                                    "`until` must give an RFC 3339 time, such as 2026-12-24T18:00:00Z",
                                )
                            })?
                            .with_timezone(&Utc),
                        _ => {
                            return Err(Failure::new(
                                "EXPRESSION_ERROR",
                                "`until` must give an RFC 3339 time as a string",
                            ));
                        }
                    }
                }
            };
            Step::Wait { until }
        }
        "transform.map" => done(
            expression::render_json(&config["output"], &data(input)?).map_err(expression_error)?,
        ),
        "transform.filter" => {
            let data = data(input)?;
            let condition =
                expression::compile(string(config, "condition")).map_err(expression_error)?;
            let mut kept = Vec::new();
            for item in items(config, input, &data)? {
                let item_data = expression::data(&item).map_err(expression_error)?;
                let holds = expression::search(&condition, &item_data).map_err(expression_error)?;
                if expression::is_truthy(&holds) {
                    kept.push(item);
                }
            }
            done(Value::Array(kept))
        }
        "transform.aggregate" => done(aggregate(config, input)?),
        "logic.if" => {
            let holds = expression::evaluate(string(config, "condition"), &data(input)?)
                .map_err(expression_error)?;
            let port = if expression::is_truthy(&holds) {
                "true"
            } else {
                "false"
            };
            Step::Done {
                output: input.clone(),
                port: port.to_owned(),
            }
        }
        "logic.switch" => {
            let value = expression::evaluate(string(config, "value"), &data(input)?)
                .map_err(expression_error)?;
            let port = config["cases"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|case| same(&case["equals"], &value))
                .and_then(|case| case["name"].as_str())
                .unwrap_or("default");
            Step::Done {
                output: input.clone(),
                port: port.to_owned(),
            }
        }
        "logic.foreach" => {
            let data = data(input)?;
            let found =
                expression::evaluate(string(config, "items"), &data).map_err(expression_error)?;
            let Value::Array(list) = found else {
                return Err(Failure::new("EXPRESSION_ERROR", "`items` must give a list"));
            };
            let most = config
                .get("max_items")
                .and_then(Value::as_u64)
                .unwrap_or(1_000);
            if list.len() as u64 > most {
                return Err(Failure::new(
                    "TOO_MANY_ITEMS",
                    format!(
                        "`items` gave {} items; this node takes at most {most}",
                        list.len()
                    ),
                ));
            }
            done(Value::Array(list))
        }
        trigger if trigger.starts_with("trigger.") => done(input.clone()),
        other => {
            return Err(Failure::new(
                "INTERNAL",
                format!("{other} is not evaluated without IO"),
            ));
        }
    };
    if let Step::Done { output, .. } = &step
        && json_size(output) > MAX_OUTPUT_BYTES
    {
        return Err(Failure::new(
            "OUTPUT_TOO_LARGE",
            format!(
                "the output is larger than {} KiB of JSON",
                MAX_OUTPUT_BYTES / 1024
            ),
        ));
    }
    Ok(step)
}

fn done(output: Value) -> Step {
    Step::Done {
        output,
        port: String::new(),
    }
}

fn string<'a>(config: &'a Map<String, Value>, key: &str) -> &'a str {
    config.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn data(input: &Value) -> Result<Data, Failure> {
    expression::data(input).map_err(expression_error)
}

fn expression_error(reason: String) -> Failure {
    Failure::new("EXPRESSION_ERROR", reason)
}

/// The list `items` names in `config` (the input itself when unset).
fn items(config: &Map<String, Value>, input: &Value, data: &Data) -> Result<Vec<Value>, Failure> {
    let list = match config.get("items").and_then(Value::as_str) {
        Some(text) => expression::evaluate(text, data).map_err(expression_error)?,
        None => input.clone(),
    };
    match list {
        Value::Array(items) => Ok(items),
        _ => Err(Failure::new(
            "EXPRESSION_ERROR",
            if config.contains_key("items") {
                "`items` must give a list"
            } else {
                "the input must be a list when `items` is unset"
            },
        )),
    }
}

/// Whether two JSON values are equal, numbers by value (`1` equals `1.0`).
fn same(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => left.as_f64() == right.as_f64(),
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len() && left.iter().zip(right).all(|(l, r)| same(l, r))
        }
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .all(|(key, value)| right.get(key).is_some_and(|other| same(value, other)))
        }
        _ => left == right,
    }
}

/// `transform.aggregate`: the value of the operation over the items, or with `group_by` an
/// object of each group's value (groups named by their value as text).
fn aggregate(config: &Map<String, Value>, input: &Value) -> Result<Value, Failure> {
    let items = items(config, input, &data(input)?)?;
    let operation = string(config, "operation");
    let value_of = config
        .get("value")
        .and_then(Value::as_str)
        .map(expression::compile)
        .transpose()
        .map_err(expression_error)?;
    let group_of = config
        .get("group_by")
        .and_then(Value::as_str)
        .map(expression::compile)
        .transpose()
        .map_err(expression_error)?;
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for item in items {
        let item_data = expression::data(&item).map_err(expression_error)?;
        let group = match &group_of {
            Some(expression) => {
                match expression::search(expression, &item_data).map_err(expression_error)? {
                    Value::String(text) => text,
                    other => other.to_string(),
                }
            }
            None => String::new(),
        };
        let value = match &value_of {
            Some(expression) => {
                expression::search(expression, &item_data).map_err(expression_error)?
            }
            None => item,
        };
        match groups.iter_mut().find(|(name, _)| *name == group) {
            Some((_, values)) => values.push(value),
            None => groups.push((group, vec![value])),
        }
    }
    if group_of.is_none() {
        let values = groups.pop().map(|(_, values)| values).unwrap_or_default();
        return reduce(operation, values);
    }
    let mut result = Map::new();
    for (group, values) in groups {
        result.insert(group, reduce(operation, values)?);
    }
    Ok(Value::Object(result))
}

fn reduce(operation: &str, values: Vec<Value>) -> Result<Value, Failure> {
    if operation == "count" {
        return Ok(json!(values.len()));
    }
    if operation == "collect" {
        return Ok(Value::Array(values));
    }
    let mut numbers = Vec::with_capacity(values.len());
    for value in &values {
        match value.as_f64() {
            Some(number) => numbers.push(number),
            None if value.is_null() => {}
            None => {
                return Err(Failure::new(
                    "EXPRESSION_ERROR",
                    format!("{operation} needs numbers; one of the values is not a number"),
                ));
            }
        }
    }
    if numbers.is_empty() {
        return Ok(if operation == "sum" {
            json!(0)
        } else {
            Value::Null
        });
    }
    let result = match operation {
        "sum" => numbers.iter().sum(),
        "average" => numbers.iter().sum::<f64>() / numbers.len() as f64,
        "min" => numbers.iter().copied().fold(f64::INFINITY, f64::min),
        "max" => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        other => {
            return Err(Failure::new(
                "INTERNAL",
                format!("unknown operation {other}"),
            ));
        }
    };
    Ok(number(result))
}

/// `value` as JSON: a whole number as an integer (`3`, not `3.0`).
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        json!(value as i64)
    } else {
        Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::RetryPolicy;

    fn node(node_type: &str, config: Value) -> Node {
        Node {
            id: "n".to_owned(),
            node_type: node_type.to_owned(),
            display_name: String::new(),
            config: config.as_object().cloned().unwrap(),
            retry: RetryPolicy::default(),
            timeout_ms: 1_000,
        }
    }

    fn run(node_type: &str, config: Value, input: Value) -> Result<Step, Failure> {
        evaluate(&node(node_type, config), &input, Utc::now())
    }

    fn output(node_type: &str, config: Value, input: Value) -> (Value, String) {
        match run(node_type, config, input).unwrap() {
            Step::Done { output, port } => (output, port),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn map_renders_its_template_over_the_input() {
        let (mapped, port) = output(
            "transform.map",
            json!({"output": {"email": "{{ answers.email }}", "greeting": "Hi {{ answers.name }}"}}),
            json!({"answers": {"email": "a@example.com", "name": "Ada"}}),
        );
        assert_eq!(
            mapped,
            json!({"email": "a@example.com", "greeting": "Hi Ada"})
        );
        assert_eq!(port, "");
    }

    #[test]
    fn filter_keeps_the_items_whose_condition_holds() {
        let (kept, _) = output(
            "transform.filter",
            json!({"items": "orders", "condition": "total > `10`"}),
            json!({"orders": [{"total": 5}, {"total": 12}, {"total": 30}]}),
        );
        assert_eq!(kept, json!([{"total": 12}, {"total": 30}]));
        let failure = run(
            "transform.filter",
            json!({"condition": "@"}),
            json!({"not": "a list"}),
        )
        .unwrap_err();
        assert_eq!(failure.code, "EXPRESSION_ERROR");
    }

    #[test]
    fn aggregate_reduces_all_items_or_each_group() {
        let orders = json!([
            {"team": "a", "total": 5},
            {"team": "b", "total": 10},
            {"team": "a", "total": 2.5}
        ]);
        let aggregate = |config: Value| output("transform.aggregate", config, orders.clone()).0;
        assert_eq!(aggregate(json!({"operation": "count"})), json!(3));
        assert_eq!(
            aggregate(json!({"operation": "sum", "value": "total"})),
            json!(17.5)
        );
        assert_eq!(
            aggregate(json!({"operation": "max", "value": "total"})),
            json!(10)
        );
        assert_eq!(
            aggregate(json!({"operation": "sum", "value": "total", "group_by": "team"})),
            json!({"a": 7.5, "b": 10})
        );
        assert_eq!(
            aggregate(json!({"operation": "collect", "value": "team"})),
            json!(["a", "b", "a"])
        );
        assert_eq!(
            output(
                "transform.aggregate",
                json!({"operation": "average"}),
                json!([])
            )
            .0,
            Value::Null
        );
        let failure = run(
            "transform.aggregate",
            json!({"operation": "sum", "value": "team"}),
            orders.clone(),
        )
        .unwrap_err();
        assert!(failure.message.contains("needs numbers"), "{failure:?}");
    }

    #[test]
    fn if_and_switch_choose_their_port_and_pass_the_input_on() {
        let input = json!({"priority": "high", "score": 3});
        assert_eq!(
            output(
                "logic.if",
                json!({"condition": "score > `2`"}),
                input.clone()
            ),
            (input.clone(), "true".to_owned())
        );
        assert_eq!(
            output("logic.if", json!({"condition": "missing"}), input.clone()).1,
            "false"
        );
        let cases = json!([{"name": "urgent", "equals": "high"}, {"name": "three", "equals": 3.0}]);
        let switch = |value: &str| {
            output(
                "logic.switch",
                json!({"value": value, "cases": cases}),
                input.clone(),
            )
            .1
        };
        assert_eq!(switch("priority"), "urgent");
        assert_eq!(switch("score"), "three");
        assert_eq!(switch("nothing"), "default");
    }

    #[test]
    fn foreach_outputs_its_list_within_its_bound() {
        let (items, _) = output(
            "logic.foreach",
            json!({"items": "rows"}),
            json!({"rows": [1, 2, 3]}),
        );
        assert_eq!(items, json!([1, 2, 3]));
        let failure = run(
            "logic.foreach",
            json!({"items": "rows", "max_items": 2}),
            json!({"rows": [1, 2, 3]}),
        )
        .unwrap_err();
        assert_eq!(failure.code, "TOO_MANY_ITEMS");
    }

    #[test]
    fn delay_waits_for_seconds_or_until_a_time() {
        let now = Utc::now();
        let waited = evaluate(
            &node("logic.delay", json!({"seconds": 90})),
            &json!({}),
            now,
        );
        assert_eq!(
            waited.unwrap(),
            Step::Wait {
                until: now + chrono::Duration::seconds(90)
            }
        );
        let until = evaluate(
            &node("logic.delay", json!({"until": "{{ at }}"})),
            &json!({"at": "2030-01-02T03:04:05Z"}),
            now,
        );
        assert_eq!(
            until.unwrap(),
            Step::Wait {
                until: "2030-01-02T03:04:05Z".parse().unwrap()
            }
        );
        let failure = evaluate(
            &node("logic.delay", json!({"until": "{{ at }}"})),
            &json!({"at": "tomorrow"}),
            now,
        )
        .unwrap_err();
        assert_eq!(failure.code, "EXPRESSION_ERROR");
    }

    #[test]
    fn outputs_past_the_limit_fail_the_node() {
        let big = json!({"text": "x".repeat(MAX_OUTPUT_BYTES)});
        let failure = run("transform.map", json!({"output": "{{ @ }}"}), big).unwrap_err();
        assert_eq!(failure.code, "OUTPUT_TOO_LARGE");
    }
}
