//! What an execution does next, from its definition and the node runs recorded so far: which
//! nodes are ready (with their input), which are skipped, what it waits for, and whether it
//! failed or completed. Pure, so a worker that takes an execution over after a crash sees
//! exactly what the crashed one left.
//!
//! The rules:
//! - The execution starts at its trigger node, with its input; other trigger nodes never run.
//! - A node runs once every node with an edge into it has settled (succeeded, failed for good
//!   or been skipped) and at least one of those edges was taken; when none was, it is skipped.
//! - An edge with an empty `when` is taken when its source succeeded, whatever output it
//!   chose; `error` when the source failed for good; any other `when` when the source
//!   succeeded through that output (`true`, a switch case).
//! - A node's input is what its one taken edge carries (the source's output; for `error`, the
//!   failure and the source's input); with several, an object of each source's, by node id.
//! - The nodes reachable from a `logic.foreach` run once per item of its output, each run
//!   with iteration `i` and, along the loop's own edges, item `i` as input.
//! - A node that failed for good with no `error` edge fails the execution.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::domain::execution::{Failure, NodeRunId, NodeRunState};
use crate::domain::{Definition, Edge, Node};

/// Iteration of a node outside any loop.
pub const NO_ITERATION: i32 = -1;

/// What the planner needs of a recorded node run: the latest attempt of a node in one
/// iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    /// The run's id.
    pub id: NodeRunId,
    /// Its attempt.
    pub attempt: i32,
    /// Its attempt group.
    pub attempt_group: i32,
    /// Its state.
    pub state: NodeRunState,
    /// What it received.
    pub input: Option<Value>,
    /// What it produced.
    pub output: Option<Value>,
    /// The output port chosen.
    pub port: String,
    /// Why it failed.
    pub error: Option<Failure>,
    /// When it is due, while waiting.
    pub wake_at: Option<DateTime<Utc>>,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// The latest run of each (node, iteration).
pub type Runs = HashMap<(String, i32), RunState>;

/// A definition prepared for planning: edges by target, loop membership, and an order in
/// which every node comes after its predecessors.
#[derive(Debug)]
pub struct Graph {
    definition: Definition,
    incoming: HashMap<String, Vec<usize>>,
    /// The `logic.foreach` whose body each node belongs to.
    loop_of: HashMap<String, String>,
    order: Vec<usize>,
    /// The compiled `payload_schema` of each webhook trigger that has one: compiled once per
    /// version, not once per delivery.
    payload_schemas: HashMap<String, jsonschema::Validator>,
}

impl Graph {
    /// `definition` (valid: acyclic, loops not nested) prepared for planning.
    pub fn new(definition: Definition) -> Graph {
        let mut incoming: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, edge) in definition.edges.iter().enumerate() {
            incoming.entry(edge.to.clone()).or_default().push(index);
        }
        let mut loop_of = HashMap::new();
        for node in &definition.nodes {
            if node.node_type == "logic.foreach" {
                for member in definition.reachable_from(&node.id) {
                    loop_of.insert(member.to_owned(), node.id.clone());
                }
            }
        }
        // Kahn's algorithm, stable in the order nodes are given.
        let mut waiting: Vec<usize> = definition
            .nodes
            .iter()
            .map(|node| incoming.get(&node.id).map_or(0, Vec::len))
            .collect();
        let position: HashMap<&str, usize> = definition
            .nodes
            .iter()
            .enumerate()
            .map(|(index, node)| (node.id.as_str(), index))
            .collect();
        let mut order = Vec::with_capacity(definition.nodes.len());
        let mut done = vec![false; definition.nodes.len()];
        while order.len() < definition.nodes.len() {
            let Some(next) = (0..waiting.len()).find(|&index| !done[index] && waiting[index] == 0)
            else {
                break; // a cycle: refused when the definition was saved
            };
            done[next] = true;
            order.push(next);
            for edge in &definition.edges {
                if edge.from == definition.nodes[next].id
                    && let Some(&target) = position.get(edge.to.as_str())
                {
                    waiting[target] -= 1;
                }
            }
        }
        // Saving checked that each compiles; one that no longer does is left out (and its
        // deliveries refused as an internal error).
        let payload_schemas = definition
            .nodes
            .iter()
            .filter(|node| node.node_type == "trigger.webhook")
            .filter_map(|node| {
                let schema = node.config.get("payload_schema")?;
                Some((node.id.clone(), jsonschema::validator_for(schema).ok()?))
            })
            .collect();
        Graph {
            definition,
            incoming,
            loop_of,
            order,
            payload_schemas,
        }
    }

    /// The compiled `payload_schema` of the webhook trigger `node_id`, if it has one.
    pub fn payload_schema(&self, node_id: &str) -> Option<&jsonschema::Validator> {
        self.payload_schemas.get(node_id)
    }

    /// The definition.
    pub fn definition(&self) -> &Definition {
        &self.definition
    }

    /// The node with id `id`.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.definition.node(id)
    }

    /// Whether node `id` has an `error` edge, which takes its final failure.
    pub fn handles_errors(&self, id: &str) -> bool {
        self.definition
            .edges
            .iter()
            .any(|edge| edge.from == id && edge.when == "error")
    }

    /// What to do next, for an execution started at `trigger` with `input`, given `runs`,
    /// at `now`.
    pub fn plan(&self, trigger: &str, input: &Value, runs: &Runs, now: DateTime<Utc>) -> Plan {
        let mut plan = Plan::default();
        for &index in &self.order {
            let node = &self.definition.nodes[index];
            if node.id != trigger && node.node_type.starts_with("trigger.") {
                continue; // another trigger: not part of this execution
            }
            for iteration in self.iterations(node, runs) {
                let key = (node.id.clone(), iteration);
                match runs.get(&key) {
                    Some(run) => match run.state {
                        NodeRunState::Succeeded
                        | NodeRunState::Skipped
                        | NodeRunState::Cancelled => {}
                        NodeRunState::Failed => {
                            if !self.handles_errors(&node.id) && plan.failure.is_none() {
                                plan.failure = Some(run.error.clone().unwrap_or_else(|| {
                                    Failure::new("INTERNAL", "the node failed").of_node(&node.id)
                                }));
                            }
                        }
                        NodeRunState::Waiting if run.wake_at.is_some_and(|at| at > now) => {
                            plan.wake = plan.wake.min(run.wake_at).or(run.wake_at);
                        }
                        // Due, or left running by a worker that died: run it (again).
                        NodeRunState::Waiting | NodeRunState::Running => {
                            plan.ready.push(Ready {
                                node_id: node.id.clone(),
                                iteration,
                                input: run.input.clone().unwrap_or(Value::Null),
                                resumed: Some(run.clone()),
                            });
                        }
                    },
                    None if node.id == trigger => plan.ready.push(Ready {
                        node_id: node.id.clone(),
                        iteration,
                        input: input.clone(),
                        resumed: None,
                    }),
                    None => match self.input_of(node, iteration, trigger, runs) {
                        Arrival::Pending => {}
                        Arrival::Skipped => plan.skipped.push((node.id.clone(), iteration)),
                        Arrival::Input(input) => plan.ready.push(Ready {
                            node_id: node.id.clone(),
                            iteration,
                            input,
                            resumed: None,
                        }),
                    },
                }
            }
        }
        plan
    }

    /// The iterations node `node` runs in: one per item of its loop's output, or
    /// [`NO_ITERATION`] outside a loop (and while the loop has not succeeded).
    fn iterations(&self, node: &Node, runs: &Runs) -> Vec<i32> {
        let Some(owner) = self.loop_of.get(&node.id) else {
            return vec![NO_ITERATION];
        };
        match runs.get(&(owner.clone(), NO_ITERATION)) {
            Some(run) if run.state == NodeRunState::Succeeded => {
                let count = run
                    .output
                    .as_ref()
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                (0..i32::try_from(count).unwrap_or(i32::MAX)).collect()
            }
            _ => vec![NO_ITERATION],
        }
    }

    /// Whether `node` (in `iteration`) can run, and with what input.
    fn input_of(&self, node: &Node, iteration: i32, trigger: &str, runs: &Runs) -> Arrival {
        let mut carried: Vec<(&Edge, Value)> = Vec::new();
        for &index in self
            .incoming
            .get(&node.id)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let edge = &self.definition.edges[index];
            let source = edge.from.as_str();
            let source_is_trigger = self
                .node(source)
                .is_some_and(|source| source.node_type.starts_with("trigger."));
            if source_is_trigger && source != trigger {
                continue; // another trigger: never runs in this execution
            }
            let in_same_loop = self.loop_of.contains_key(source)
                && self.loop_of.get(source) == self.loop_of.get(&node.id);
            let source_iteration = if in_same_loop {
                iteration
            } else {
                NO_ITERATION
            };
            let Some(run) = runs.get(&(source.to_owned(), source_iteration)) else {
                return Arrival::Pending;
            };
            match run.state {
                NodeRunState::Succeeded => {
                    if edge.when.is_empty() || edge.when == run.port {
                        let output = run.output.clone().unwrap_or(Value::Null);
                        let is_own_loop = self.loop_of.get(&node.id).map(String::as_str)
                            == Some(source)
                            && iteration != NO_ITERATION;
                        let value = if is_own_loop {
                            usize::try_from(iteration)
                                .ok()
                                .and_then(|item| output.get(item).cloned())
                                .unwrap_or(Value::Null)
                        } else {
                            output
                        };
                        carried.push((edge, value));
                    }
                }
                NodeRunState::Failed => {
                    if edge.when == "error" {
                        carried.push((
                            edge,
                            json!({
                                "error": run.error,
                                "input": run.input.clone().unwrap_or(Value::Null),
                            }),
                        ));
                    }
                }
                NodeRunState::Skipped | NodeRunState::Cancelled => {}
                NodeRunState::Running | NodeRunState::Waiting => return Arrival::Pending,
            }
        }
        match carried.len() {
            0 => Arrival::Skipped,
            1 => Arrival::Input(carried.pop().expect("one").1),
            _ => {
                let mut merged = Map::new();
                for (edge, value) in carried {
                    merged.insert(edge.from.clone(), value);
                }
                Arrival::Input(Value::Object(merged))
            }
        }
    }
}

enum Arrival {
    Pending,
    Skipped,
    Input(Value),
}

/// A node ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    /// The node.
    pub node_id: String,
    /// Its iteration.
    pub iteration: i32,
    /// Its input.
    pub input: Value,
    /// The run it continues: an attempt that came due, a timer that ended, or a run a dead
    /// worker left running.
    pub resumed: Option<RunState>,
}

/// What an execution does next.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Nodes to run now, in an order that respects the edges.
    pub ready: Vec<Ready>,
    /// Nodes none of whose incoming edges was taken.
    pub skipped: Vec<(String, i32)>,
    /// The earliest time a waiting node is due.
    pub wake: Option<DateTime<Utc>>,
    /// The failure that ends the execution.
    pub failure: Option<Failure>,
}

impl Plan {
    /// Whether nothing is left to run or wait for.
    pub fn is_complete(&self) -> bool {
        self.ready.is_empty() && self.skipped.is_empty() && self.wake.is_none()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{RetryPolicy, Settings};

    fn node(id: &str, node_type: &str) -> Node {
        Node {
            id: id.to_owned(),
            node_type: node_type.to_owned(),
            display_name: String::new(),
            config: Map::new(),
            retry: RetryPolicy::default(),
            timeout_ms: 1_000,
        }
    }

    fn edge(from: &str, to: &str, when: &str) -> Edge {
        Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            when: when.to_owned(),
        }
    }

    fn graph(nodes: Vec<Node>, edges: Vec<Edge>) -> Graph {
        Graph::new(Definition {
            nodes,
            edges,
            settings: Settings::default(),
        })
    }

    fn settled(state: NodeRunState, output: Value, port: &str) -> RunState {
        RunState {
            id: NodeRunId::generate(),
            attempt: 1,
            attempt_group: 1,
            state,
            input: Some(json!({"in": true})),
            output: Some(output),
            port: port.to_owned(),
            error: (state == NodeRunState::Failed)
                .then(|| Failure::new("HTTP_ERROR", "502").of_node("x")),
            wake_at: None,
            started_at: Utc::now(),
        }
    }

    fn ready(plan: &Plan) -> Vec<(&str, i32, &Value)> {
        plan.ready
            .iter()
            .map(|ready| (ready.node_id.as_str(), ready.iteration, &ready.input))
            .collect()
    }

    #[test]
    fn an_execution_starts_at_its_trigger_and_follows_the_taken_edges() {
        let graph = graph(
            vec![
                node("manual", "trigger.manual"),
                node("hook", "trigger.webhook"),
                node("check", "logic.if"),
                node("yes", "transform.map"),
                node("no", "transform.map"),
                node("after", "transform.map"),
            ],
            vec![
                edge("manual", "check", ""),
                edge("hook", "check", ""),
                edge("check", "yes", "true"),
                edge("check", "no", "false"),
                edge("yes", "after", ""),
                edge("no", "after", ""),
            ],
        );
        let input = json!({"n": 1});
        let now = Utc::now();
        let mut runs = Runs::new();
        let plan = graph.plan("manual", &input, &runs, now);
        assert_eq!(ready(&plan), [("manual", -1, &input)]);

        runs.insert(
            ("manual".into(), -1),
            settled(NodeRunState::Succeeded, input.clone(), ""),
        );
        let plan = graph.plan("manual", &input, &runs, now);
        assert_eq!(
            ready(&plan),
            [("check", -1, &input)],
            "the other trigger is not waited for"
        );

        runs.insert(
            ("check".into(), -1),
            settled(NodeRunState::Succeeded, input.clone(), "true"),
        );
        let plan = graph.plan("manual", &input, &runs, now);
        assert_eq!(ready(&plan), [("yes", -1, &input)]);
        assert_eq!(plan.skipped, [("no".to_owned(), -1)]);

        runs.insert(
            ("yes".into(), -1),
            settled(NodeRunState::Succeeded, json!("Y"), ""),
        );
        runs.insert(
            ("no".into(), -1),
            settled(NodeRunState::Skipped, Value::Null, ""),
        );
        let plan = graph.plan("manual", &input, &runs, now);
        assert_eq!(
            ready(&plan),
            [("after", -1, &json!("Y"))],
            "one taken edge: its value"
        );

        runs.insert(
            ("after".into(), -1),
            settled(NodeRunState::Succeeded, json!(1), ""),
        );
        let plan = graph.plan("manual", &input, &runs, now);
        assert!(plan.is_complete());
        assert_eq!(plan.failure, None);
    }

    #[test]
    fn joins_wait_for_every_branch_and_merge_their_outputs() {
        let graph = graph(
            vec![
                node("start", "trigger.manual"),
                node("a", "transform.map"),
                node("b", "transform.map"),
                node("join", "transform.map"),
            ],
            vec![
                edge("start", "a", ""),
                edge("start", "b", ""),
                edge("a", "join", ""),
                edge("b", "join", ""),
            ],
        );
        let now = Utc::now();
        let mut runs = Runs::new();
        runs.insert(
            ("start".into(), -1),
            settled(NodeRunState::Succeeded, json!({}), ""),
        );
        runs.insert(
            ("a".into(), -1),
            settled(NodeRunState::Succeeded, json!("A"), ""),
        );
        let plan = graph.plan("start", &json!({}), &runs, now);
        assert_eq!(ready(&plan), [("b", -1, &json!({}))], "join waits for b");
        runs.insert(
            ("b".into(), -1),
            settled(NodeRunState::Succeeded, json!("B"), ""),
        );
        let plan = graph.plan("start", &json!({}), &runs, now);
        assert_eq!(ready(&plan), [("join", -1, &json!({"a": "A", "b": "B"}))]);
    }

    #[test]
    fn failures_follow_error_edges_or_fail_the_execution() {
        let graph = graph(
            vec![
                node("start", "trigger.manual"),
                node("call", "action.http"),
                node("fallback", "transform.map"),
                node("next", "transform.map"),
            ],
            vec![
                edge("start", "call", ""),
                edge("call", "fallback", "error"),
                edge("call", "next", ""),
            ],
        );
        let now = Utc::now();
        let mut runs = Runs::new();
        runs.insert(
            ("start".into(), -1),
            settled(NodeRunState::Succeeded, json!({}), ""),
        );
        runs.insert(
            ("call".into(), -1),
            settled(NodeRunState::Failed, Value::Null, ""),
        );
        let plan = graph.plan("start", &json!({}), &runs, now);
        assert_eq!(plan.failure, None, "the error edge handles it");
        assert_eq!(plan.ready.len(), 1);
        assert_eq!(plan.ready[0].node_id, "fallback");
        assert_eq!(plan.ready[0].input["error"]["code"], "HTTP_ERROR");
        assert_eq!(plan.ready[0].input["input"], json!({"in": true}));
        assert_eq!(plan.skipped, [("next".to_owned(), -1)]);

        let unhandled = super::Graph::new(Definition {
            edges: vec![edge("start", "call", "")],
            nodes: graph.definition().nodes[..2].to_vec(),
            settings: Settings::default(),
        });
        let plan = unhandled.plan("start", &json!({}), &runs, now);
        assert_eq!(plan.failure.unwrap().code, "HTTP_ERROR");
    }

    #[test]
    fn a_loop_body_runs_once_per_item() {
        let graph = graph(
            vec![
                node("start", "trigger.manual"),
                node("each", "logic.foreach"),
                node("double", "transform.map"),
                node("save", "transform.map"),
            ],
            vec![
                edge("start", "each", ""),
                edge("each", "double", ""),
                edge("double", "save", ""),
            ],
        );
        let now = Utc::now();
        let mut runs = Runs::new();
        runs.insert(
            ("start".into(), -1),
            settled(NodeRunState::Succeeded, json!({}), ""),
        );
        runs.insert(
            ("each".into(), -1),
            settled(NodeRunState::Succeeded, json!([10, 20]), ""),
        );
        let plan = graph.plan("start", &json!({}), &runs, now);
        assert_eq!(
            ready(&plan),
            [("double", 0, &json!(10)), ("double", 1, &json!(20))]
        );
        runs.insert(
            ("double".into(), 1),
            settled(NodeRunState::Succeeded, json!(40), ""),
        );
        let plan = graph.plan("start", &json!({}), &runs, now);
        assert_eq!(
            ready(&plan),
            [("double", 0, &json!(10)), ("save", 1, &json!(40))]
        );
    }

    #[test]
    fn waiting_runs_wake_when_due_and_running_ones_are_taken_over() {
        let graph = graph(
            vec![node("start", "trigger.manual"), node("wait", "logic.delay")],
            vec![edge("start", "wait", "")],
        );
        let now = Utc::now();
        let mut runs = Runs::new();
        runs.insert(
            ("start".into(), -1),
            settled(NodeRunState::Succeeded, json!({}), ""),
        );
        let mut waiting = settled(NodeRunState::Waiting, Value::Null, "");
        waiting.wake_at = Some(now + chrono::Duration::seconds(5));
        runs.insert(("wait".into(), -1), waiting.clone());
        let plan = graph.plan("start", &json!({}), &runs, now);
        assert!(plan.ready.is_empty());
        assert_eq!(plan.wake, waiting.wake_at);
        assert!(!plan.is_complete());

        let later = now + chrono::Duration::seconds(6);
        let plan = graph.plan("start", &json!({}), &runs, later);
        assert_eq!(plan.ready[0].resumed.as_ref(), Some(&waiting));

        waiting.state = NodeRunState::Running;
        runs.insert(("wait".into(), -1), waiting.clone());
        let plan = graph.plan("start", &json!({}), &runs, now);
        assert_eq!(plan.ready[0].resumed.as_ref(), Some(&waiting));
    }
}
