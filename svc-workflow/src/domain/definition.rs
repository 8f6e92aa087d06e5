//! The DAG of a workflow version and the rules it must follow: known node types with valid
//! configs, unique node ids, edges that join existing nodes through outputs their source has,
//! triggers only at the start, no cycle, and every node reachable from a trigger.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::CredentialId;
use super::node_types::{CredentialUse, NodeType, node_type};

/// Most nodes of a definition.
pub const MAX_NODES: usize = 200;
/// Most edges of a definition.
pub const MAX_EDGES: usize = 500;
/// Largest config of a node, as JSON.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// Attempts of a node when its policy does not say.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// Most attempts of a node.
pub const MAX_ATTEMPTS: u32 = 10;
/// Wait before a node's second attempt when its policy does not say.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between attempts when a node's policy does not say.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Longest attempt of a node when it does not say.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest execution when the settings do not say.
pub const DEFAULT_EXECUTION_TIMEOUT: Duration = Duration::from_secs(3600);

/// A workflow version's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// Nodes, in the order given.
    pub nodes: Vec<Node>,
    /// Edges, in the order given.
    pub edges: Vec<Edge>,
    /// Execution settings.
    pub settings: Settings,
}

/// A step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Id, unique in the definition.
    pub id: String,
    /// Node type name.
    #[serde(rename = "type")]
    pub node_type: String,
    /// Label; empty shows the id.
    pub display_name: String,
    /// Configuration, valid for the type.
    pub config: Map<String, Value>,
    /// Retries after failures.
    pub retry: RetryPolicy,
    /// Longest attempt, in milliseconds.
    pub timeout_ms: u64,
}

/// How a failing node is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, from 1.
    pub max_attempts: u32,
    /// Wait before the second attempt, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts, in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_ATTEMPTS,
            initial_backoff_ms: millis(DEFAULT_INITIAL_BACKOFF),
            max_backoff_ms: millis(DEFAULT_MAX_BACKOFF),
        }
    }
}

/// A dependency: `to` runs after `from` completed through the output `when`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// Output followed; empty for the default one.
    pub when: String,
}

/// Execution settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Template whose value serialises executions; empty lets them run concurrently.
    pub lock_key: String,
    /// Longest execution, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lock_key: String::new(),
            timeout_ms: millis(DEFAULT_EXECUTION_TIMEOUT),
        }
    }
}

/// `duration` in whole milliseconds.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A credential a node's config names, and what it must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialRef {
    /// Index of the node.
    pub node: usize,
    /// The credential.
    pub id: CredentialId,
    /// What it must be.
    pub usage: CredentialUse,
}

impl Definition {
    /// The node with id `id`.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.id == id)
    }

    /// The types of its nodes, each once.
    pub fn node_types(&self) -> Vec<String> {
        let types: BTreeSet<&str> = self
            .nodes
            .iter()
            .map(|node| node.node_type.as_str())
            .collect();
        types.into_iter().map(str::to_owned).collect()
    }

    /// The ids of its `trigger.webhook` nodes.
    pub fn webhook_nodes(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .iter()
            .filter(|node| node.node_type == "trigger.webhook")
            .map(|node| node.id.as_str())
    }

    /// The credentials its nodes' configs name.
    pub fn credential_refs(&self) -> Vec<CredentialRef> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(index, node)| {
                let usage = node_type(&node.node_type)?.credential?;
                let name = node.config.get("credential")?.as_str()?;
                let id = CredentialId::parse(name.strip_prefix("credentials/")?).ok()?;
                Some(CredentialRef {
                    node: index,
                    id,
                    usage,
                })
            })
            .collect()
    }

    /// Checks the definition as a whole, each node already well-formed on its own (id,
    /// retry policy, timeout); lists every problem as (path under the definition, reason).
    pub fn check(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        if self.nodes.is_empty() {
            problems.push((
                "nodes".to_owned(),
                "must have at least one trigger node".to_owned(),
            ));
            return Err(problems);
        }
        if self.nodes.len() > MAX_NODES {
            problems.push((
                "nodes".to_owned(),
                format!("must have at most {MAX_NODES} nodes"),
            ));
        }
        if self.edges.len() > MAX_EDGES {
            problems.push((
                "edges".to_owned(),
                format!("must have at most {MAX_EDGES} edges"),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let types = self.check_nodes(&mut problems);
        let valid_edges = self.check_edges(&types, &mut problems);
        if !types
            .values()
            .any(|node_type| node_type.is_some_and(NodeType::is_trigger))
        {
            problems.push((
                "nodes".to_owned(),
                "must have at least one trigger node".to_owned(),
            ));
        }
        self.check_cycles(&valid_edges, &mut problems);
        self.check_reachable(&types, &valid_edges, &mut problems);
        if problems.is_empty() {
            self.check_loops(&mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Node types and configs; the type of each node by id (`None` for an unknown type).
    fn check_nodes(
        &self,
        problems: &mut Vec<(String, String)>,
    ) -> BTreeMap<&str, Option<&'static NodeType>> {
        let mut types = BTreeMap::new();
        for (index, node) in self.nodes.iter().enumerate() {
            let path = format!("nodes[{index}]");
            if types.contains_key(node.id.as_str()) {
                problems.push((
                    format!("{path}.id"),
                    format!("{} is the id of an earlier node", node.id),
                ));
                continue;
            }
            let found = node_type(&node.node_type);
            types.insert(node.id.as_str(), found);
            let Some(found) = found else {
                problems.push((
                    format!("{path}.type"),
                    "is not a node type (ListNodeTypes lists them)".to_owned(),
                ));
                continue;
            };
            let size = serde_json::to_vec(&node.config).map_or(usize::MAX, |json| json.len());
            if size > MAX_CONFIG_BYTES {
                problems.push((
                    format!("{path}.config"),
                    "must be at most 64 KiB of JSON".to_owned(),
                ));
                continue;
            }
            for (pointer, reason) in found.check_config(&node.config) {
                problems.push((format!("{path}.config{}", dotted(&pointer)), reason));
            }
        }
        types
    }

    /// Edges' ends and outputs; the indexes of the well-formed edges, the only ones the graph
    /// checks (cycles, reachability) follow.
    fn check_edges(
        &self,
        types: &BTreeMap<&str, Option<&'static NodeType>>,
        problems: &mut Vec<(String, String)>,
    ) -> Vec<usize> {
        let mut valid = Vec::new();
        let mut seen: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
        for (index, edge) in self.edges.iter().enumerate() {
            let path = format!("edges[{index}]");
            let reported = problems.len();
            let from = types.get(edge.from.as_str());
            let to = types.get(edge.to.as_str());
            if from.is_none() {
                problems.push((
                    format!("{path}.from"),
                    format!("{} is not a node of the workflow", edge.from),
                ));
            }
            match to {
                None => problems.push((
                    format!("{path}.to"),
                    format!("{} is not a node of the workflow", edge.to),
                )),
                Some(Some(target)) if target.is_trigger() => problems.push((
                    format!("{path}.to"),
                    format!(
                        "{} is a trigger node: triggers start executions and take no incoming edge",
                        edge.to
                    ),
                )),
                Some(_) => {}
            }
            if let Some(Some(source)) = from
                && !edge.when.is_empty()
                && edge.when != "error"
            {
                let config = &self.node(&edge.from).expect("known node").config;
                let outputs = source.outputs_of(config);
                if !outputs.contains(&edge.when) {
                    let valid = if outputs.is_empty() {
                        "it has only its default output (empty) and `error`".to_owned()
                    } else {
                        format!(
                            "its outputs are {}, the default one (empty) and `error`",
                            outputs.join(", ")
                        )
                    };
                    problems.push((
                        format!("{path}.when"),
                        format!(
                            "{} is not an output of node {} ({}): {valid}",
                            edge.when, edge.from, source.name
                        ),
                    ));
                }
            }
            if let Some(earlier) = seen.insert((&edge.from, &edge.to, &edge.when), index) {
                problems.push((path, format!("repeats edges[{earlier}]")));
                continue;
            }
            if problems.len() == reported {
                valid.push(index);
            }
        }
        valid
    }

    /// Reports each edge that closes a cycle, with the cycle.
    fn check_cycles(&self, edges: &[usize], problems: &mut Vec<(String, String)>) {
        let mut successors: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &index in edges {
            successors
                .entry(self.edges[index].from.as_str())
                .or_default()
                .push(index);
        }
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Open,
            Done,
        }
        let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
        for start in &self.nodes {
            if marks.contains_key(start.id.as_str()) {
                continue;
            }
            // Depth-first, iteratively: the path from `start` and, per node on it, the next
            // edge to follow.
            let mut path: Vec<(&str, usize)> = vec![(start.id.as_str(), 0)];
            marks.insert(start.id.as_str(), Mark::Open);
            while let Some((node, next)) = path.last_mut() {
                let outgoing = successors.get(*node).map(Vec::as_slice).unwrap_or_default();
                let Some(&edge) = outgoing.get(*next) else {
                    marks.insert(node, Mark::Done);
                    path.pop();
                    continue;
                };
                *next += 1;
                let target = self.edges[edge].to.as_str();
                match marks.get(target) {
                    Some(Mark::Open) => {
                        let at = path
                            .iter()
                            .position(|(id, _)| *id == target)
                            .expect("open nodes are on the path");
                        let mut cycle: Vec<&str> = path[at..].iter().map(|(id, _)| *id).collect();
                        cycle.push(target);
                        problems.push((
                            format!("edges[{edge}]"),
                            format!("closes a cycle: {}", cycle.join(" → ")),
                        ));
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(target, Mark::Open);
                        path.push((target, 0));
                    }
                }
            }
        }
    }

    /// The nodes a path from node `start` reaches, `start` excepted: the body of a
    /// `logic.foreach`, which runs once per item.
    pub fn reachable_from(&self, start: &str) -> BTreeSet<&str> {
        let mut reached = BTreeSet::new();
        let mut frontier = vec![start];
        while let Some(node) = frontier.pop() {
            for edge in &self.edges {
                if edge.from == node && reached.insert(edge.to.as_str()) {
                    frontier.push(edge.to.as_str());
                }
            }
        }
        reached
    }

    /// Reports each `logic.foreach` inside the body of another (loops do not nest).
    fn check_loops(&self, problems: &mut Vec<(String, String)>) {
        let is_loop = |node: &Node| node.node_type == "logic.foreach";
        for outer in self.nodes.iter().filter(|node| is_loop(node)) {
            let body = self.reachable_from(&outer.id);
            for (index, inner) in self.nodes.iter().enumerate() {
                if is_loop(inner) && body.contains(inner.id.as_str()) {
                    problems.push((
                        format!("nodes[{index}]"),
                        format!(
                            "{} runs once per item of {}: a logic.foreach cannot run inside another",
                            inner.id, outer.id
                        ),
                    ));
                }
            }
        }
    }

    /// Reports each node that no path from a trigger reaches.
    fn check_reachable(
        &self,
        types: &BTreeMap<&str, Option<&'static NodeType>>,
        edges: &[usize],
        problems: &mut Vec<(String, String)>,
    ) {
        let mut reached: BTreeSet<&str> = types
            .iter()
            .filter(|(_, node_type)| node_type.is_some_and(NodeType::is_trigger))
            .map(|(id, _)| *id)
            .collect();
        let mut frontier: Vec<&str> = reached.iter().copied().collect();
        while let Some(node) = frontier.pop() {
            for &index in edges {
                let edge = &self.edges[index];
                if edge.from == node && reached.insert(edge.to.as_str()) {
                    frontier.push(edge.to.as_str());
                }
            }
        }
        let mut reported = BTreeSet::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if !reached.contains(node.id.as_str()) && reported.insert(node.id.as_str()) {
                problems.push((
                    format!("nodes[{index}]"),
                    format!("{} is not reachable from a trigger node", node.id),
                ));
            }
        }
    }
}

/// A JSON pointer (`/headers/X-Token`) as a field path suffix (`.headers.X-Token`); array
/// indexes as `[i]`.
fn dotted(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|token| {
            let token = token.replace("~1", "/").replace("~0", "~");
            if !token.is_empty() && token.bytes().all(|byte| byte.is_ascii_digit()) {
                format!("[{token}]")
            } else {
                format!(".{token}")
            }
        })
        .collect()
}

/// Checks a node id: 1 to 64 lowercase letters, digits, `_` and `-`.
pub fn check_node_id(id: &str) -> Result<(), &'static str> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-'
        });
    if valid {
        Ok(())
    } else {
        Err("must be 1 to 64 lowercase letters, digits, _ and -")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        let limits =
            |field| proto::published_limits("formflow.workflow.v1.WorkflowDefinition", field);
        assert_eq!(limits("nodes").max_items as usize, MAX_NODES);
        assert_eq!(limits("edges").max_items as usize, MAX_EDGES);
    }

    fn node(id: &str, node_type: &str, config: Value) -> Node {
        let Value::Object(config) = config else {
            panic!("configs are objects")
        };
        Node {
            id: id.to_owned(),
            node_type: node_type.to_owned(),
            display_name: String::new(),
            config,
            retry: RetryPolicy::default(),
            timeout_ms: millis(DEFAULT_NODE_TIMEOUT),
        }
    }

    fn edge(from: &str, to: &str, when: &str) -> Edge {
        Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            when: when.to_owned(),
        }
    }

    fn definition(nodes: Vec<Node>, edges: Vec<Edge>) -> Definition {
        Definition {
            nodes,
            edges,
            settings: Settings::default(),
        }
    }

    fn problems(definition: &Definition) -> Vec<(String, String)> {
        definition.check().expect_err("the definition is refused")
    }

    fn paths(definition: &Definition) -> Vec<String> {
        problems(definition)
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    fn start() -> Node {
        node("start", "trigger.manual", json!({}))
    }

    fn map(id: &str) -> Node {
        node(id, "transform.map", json!({"output": {"id": "{{ id }}"}}))
    }

    #[test]
    fn a_well_formed_dag_with_branches_passes() {
        let definition = definition(
            vec![
                start(),
                node("check", "logic.if", json!({"condition": "amount > `100`"})),
                map("big"),
                map("small"),
                map("done"),
                map("on-error"),
            ],
            vec![
                edge("start", "check", ""),
                edge("check", "big", "true"),
                edge("check", "small", "false"),
                edge("big", "done", ""),
                edge("small", "done", ""),
                edge("big", "on-error", "error"),
            ],
        );
        assert_eq!(definition.check(), Ok(()));
        assert_eq!(
            definition.node_types(),
            ["logic.if", "transform.map", "trigger.manual"]
        );
    }

    #[test]
    fn every_problem_is_listed_at_its_path() {
        let definition = definition(
            vec![
                start(),
                node("start", "transform.map", json!({"output": 1})),
                node("mystery", "transform.magic", json!({})),
                node("bad-config", "logic.if", json!({"condition": 42})),
                map("a"),
            ],
            vec![
                edge("start", "ghost", ""),
                edge("nobody", "a", ""),
                edge("a", "start", ""),
                edge("start", "a", "maybe"),
                edge("start", "bad-config", ""),
                edge("start", "bad-config", ""),
                edge("start", "mystery", ""),
            ],
        );
        assert_eq!(
            problems(&definition),
            [
                ("nodes[1].id".to_owned(), "start is the id of an earlier node".to_owned()),
                ("nodes[2].type".to_owned(), "is not a node type (ListNodeTypes lists them)".to_owned()),
                ("nodes[3].config.condition".to_owned(), "value is not of type \"string\"".to_owned()),
                ("edges[0].to".to_owned(), "ghost is not a node of the workflow".to_owned()),
                ("edges[1].from".to_owned(), "nobody is not a node of the workflow".to_owned()),
                (
                    "edges[2].to".to_owned(),
                    "start is a trigger node: triggers start executions and take no incoming edge".to_owned()
                ),
                (
                    "edges[3].when".to_owned(),
                    "maybe is not an output of node start (trigger.manual): it has only its default output (empty) and `error`".to_owned()
                ),
                ("edges[5]".to_owned(), "repeats edges[4]".to_owned()),
                ("nodes[4]".to_owned(), "a is not reachable from a trigger node".to_owned()),
            ]
        );
    }

    #[test]
    fn cycles_are_named_by_the_edge_that_closes_them() {
        let definition = definition(
            vec![start(), map("a"), map("b"), map("c")],
            vec![
                edge("start", "a", ""),
                edge("a", "b", ""),
                edge("b", "c", ""),
                edge("c", "a", ""),
                edge("b", "b", "error"),
            ],
        );
        assert_eq!(
            problems(&definition),
            [
                (
                    "edges[3]".to_owned(),
                    "closes a cycle: a → b → c → a".to_owned()
                ),
                ("edges[4]".to_owned(), "closes a cycle: b → b".to_owned()),
            ]
        );
    }

    #[test]
    fn unreachable_islands_and_missing_triggers_are_refused() {
        let island = definition(
            vec![start(), map("a"), map("b"), map("c")],
            vec![
                edge("start", "a", ""),
                edge("b", "c", ""),
                edge("c", "b", ""),
            ],
        );
        let found = paths(&island);
        assert!(
            found.contains(&"nodes[2]".to_owned()) && found.contains(&"nodes[3]".to_owned()),
            "{found:?}"
        );
        assert_eq!(
            problems(&definition(vec![map("a")], vec![]))[0],
            (
                "nodes".to_owned(),
                "must have at least one trigger node".to_owned()
            )
        );
        assert_eq!(paths(&definition(vec![], vec![])), ["nodes"]);
    }

    #[test]
    fn a_switch_routes_by_its_case_names() {
        let switch = node(
            "route",
            "logic.switch",
            json!({"value": "kind", "cases": [{"name": "bug", "equals": "bug"}]}),
        );
        let mut definition = definition(
            vec![start(), switch, map("bugs"), map("others")],
            vec![
                edge("start", "route", ""),
                edge("route", "bugs", "bug"),
                edge("route", "others", "default"),
            ],
        );
        assert_eq!(definition.check(), Ok(()));
        definition.edges[1].when = "feature".to_owned();
        // The graph checks follow well-formed edges only: `bugs` is now out of reach.
        assert_eq!(paths(&definition), ["edges[1].when", "nodes[2]"]);
    }

    #[test]
    fn credentials_are_found_in_the_configs_that_take_them() {
        let id = CredentialId::generate();
        let definition = definition(
            vec![
                node(
                    "hook",
                    "trigger.webhook",
                    json!({"credential": format!("credentials/{id}")}),
                ),
                node(
                    "call",
                    "action.http",
                    json!({"url": "https://example.com", "credential": format!("credentials/{id}")}),
                ),
            ],
            vec![edge("hook", "call", "")],
        );
        assert_eq!(definition.check(), Ok(()));
        let refs = definition.credential_refs();
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].usage, CredentialUse::WebhookSecret);
        assert_eq!(
            refs[1],
            CredentialRef {
                node: 1,
                id,
                usage: CredentialUse::HttpAuthentication
            }
        );
        assert_eq!(definition.webhook_nodes().collect::<Vec<_>>(), ["hook"]);
    }

    #[test]
    fn node_ids_are_short_lowercase_words() {
        assert!(check_node_id("send-email_2").is_ok());
        for bad in ["", "Send", "a b", "é", &"a".repeat(65)] {
            assert!(check_node_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(dotted("/headers/X-Token"), ".headers.X-Token");
        assert_eq!(dotted("/cases/1/name"), ".cases[1].name");
        assert_eq!(dotted(""), "");
    }

    #[test]
    fn loops_do_not_nest() {
        let each = |id: &str| node(id, "logic.foreach", json!({"items": "rows"}));
        let nested = definition(
            vec![
                start(),
                each("outer"),
                map("step"),
                each("inner"),
                map("last"),
            ],
            vec![
                edge("start", "outer", ""),
                edge("outer", "step", ""),
                edge("step", "inner", ""),
                edge("inner", "last", ""),
            ],
        );
        assert_eq!(paths(&nested), ["nodes[3]"]);
        assert_eq!(
            nested
                .reachable_from("step")
                .into_iter()
                .collect::<Vec<_>>(),
            ["inner", "last"]
        );
        let in_turn = definition(
            vec![start(), each("first"), each("second")],
            vec![edge("start", "first", ""), edge("start", "second", "")],
        );
        assert!(in_turn.check().is_ok());
    }
}
