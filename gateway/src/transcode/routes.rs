//! The route table: one route per `google.api.http` binding (additional bindings included) of
//! every RPC in the descriptor sets the gateway serves, read with prost-reflect because
//! prost-generated types drop custom options.

use std::sync::Arc;

use anyhow::Context;
use http::Method;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};

use super::template::{Bindings, PathTemplate};

/// Where the request body goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRule {
    /// No body: every field not in the path comes from the query string.
    None,
    /// `body: "*"`: the body is the request message (minus path fields).
    Whole,
    /// `body: "field"`: the body is that field; the rest comes from the query string.
    Field(String),
}

/// What the proto says about exposing an RPC (`formflow.api.v1.policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Callable without credentials.
    pub public: bool,
    /// Served without a resolved tenant.
    pub tenant_optional: bool,
    /// HTTP status of success, when not 200.
    pub success_status: Option<u16>,
    /// Declared but not built yet: its service answers UNIMPLEMENTED.
    pub unbuilt: bool,
}

/// One REST binding of an RPC.
#[derive(Debug, Clone)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template.
    pub template: PathTemplate,
    /// Body rule.
    pub body: BodyRule,
    /// Field of the response that is the HTTP body, when not the whole response.
    pub response_body: Option<String>,
    /// The RPC.
    pub rpc: MethodDescriptor,
    /// gRPC path, `/package.Service/Method`.
    pub grpc_path: http::uri::PathAndQuery,
    /// Name of the upstream that serves the RPC's package.
    pub upstream: Arc<str>,
    /// Exposure policy.
    pub policy: Policy,
    /// `METHOD /template`, the route's metrics label.
    pub label: Arc<str>,
}

/// The outcome of looking a request up.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A route and its variable bindings.
    Found(&'a Route, Bindings),
    /// The path exists, not with this method.
    MethodNotAllowed(Vec<Method>),
    /// No route has this path.
    NotFound,
}

/// Every route the gateway serves.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Adds the routes of every annotated RPC in `pool` whose package `upstream_for` maps to an
    /// upstream. RPCs marked internal are never routed.
    pub fn add_pool(
        &mut self,
        pool: &DescriptorPool,
        upstream_for: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        let Some(http_extension) = pool.get_extension_by_name("google.api.http") else {
            return Ok(());
        };
        for service in pool.services() {
            let Some(upstream) = upstream_for(service.package_name()) else {
                continue;
            };
            let upstream: Arc<str> = upstream.into();
            for rpc in service.methods() {
                let options = rpc.options();
                let (policy, internal) = policy_of(&rpc);
                if internal || !options.has_extension(&http_extension) {
                    continue;
                }
                let Value::Message(rule) = options.get_extension(&http_extension).as_ref().clone()
                else {
                    continue;
                };
                let grpc_path = http::uri::PathAndQuery::try_from(format!(
                    "/{}/{}",
                    service.full_name(),
                    rpc.name()
                ))
                .with_context(|| format!("the gRPC path of {}", rpc.full_name()))?;
                let mut rules = vec![rule.clone()];
                if let Value::List(additional) = rule
                    .get_field_by_name("additional_bindings")
                    .map(|value| value.into_owned())
                    .unwrap_or(Value::List(Vec::new()))
                {
                    rules.extend(additional.into_iter().filter_map(|value| match value {
                        Value::Message(message) => Some(message),
                        _ => None,
                    }));
                }
                for rule in rules {
                    let route = read_rule(&rule, &rpc, grpc_path.clone(), upstream.clone(), policy)
                        .with_context(|| format!("the http rule of {}", rpc.full_name()))?;
                    self.routes.push(route);
                }
            }
        }
        Ok(())
    }

    /// Looks a request up. Among the routes matching the path, the most specific wins.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        let mut best: Option<(&Route, Bindings)> = None;
        let mut other_methods = Vec::new();
        for route in &self.routes {
            let Some(bindings) = route.template.matches(path) else {
                continue;
            };
            if route.method != *method {
                if !other_methods.contains(&route.method) {
                    other_methods.push(route.method.clone());
                }
                continue;
            }
            if best.as_ref().is_none_or(|(current, _)| {
                route.template.specificity() > current.template.specificity()
            }) {
                best = Some((route, bindings));
            }
        }
        match best {
            Some((route, bindings)) => Lookup::Found(route, bindings),
            None if !other_methods.is_empty() => Lookup::MethodNotAllowed(other_methods),
            None => Lookup::NotFound,
        }
    }

    /// Every route, for the OpenAPI document.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The routes, to change in tests.
    #[cfg(test)]
    pub(crate) fn routes_mut(&mut self) -> &mut [Route] {
        &mut self.routes
    }
}

/// The policy of an RPC, and whether it is internal.
pub fn policy_of(rpc: &MethodDescriptor) -> (Policy, bool) {
    let options = rpc.options();
    match rpc
        .parent_pool()
        .get_extension_by_name("formflow.api.v1.policy")
    {
        Some(extension) if options.has_extension(&extension) => {
            match options.get_extension(&extension).as_ref() {
                Value::Message(policy) => read_policy(policy),
                _ => (Policy::default(), false),
            }
        }
        _ => (Policy::default(), false),
    }
}

/// The policy, and whether the RPC is internal.
fn read_policy(policy: &DynamicMessage) -> (Policy, bool) {
    let boolean = |name: &str| {
        policy
            .get_field_by_name(name)
            .and_then(|value| value.as_bool())
            .unwrap_or(false)
    };
    let success_status = policy
        .get_field_by_name("success_status")
        .and_then(|value| value.as_i32())
        .filter(|status| (200..300).contains(status))
        .and_then(|status| u16::try_from(status).ok());
    (
        Policy {
            public: boolean("public"),
            tenant_optional: boolean("tenant_optional"),
            success_status,
            unbuilt: boolean("unbuilt"),
        },
        boolean("internal"),
    )
}

fn read_rule(
    rule: &DynamicMessage,
    rpc: &MethodDescriptor,
    grpc_path: http::uri::PathAndQuery,
    upstream: Arc<str>,
    policy: Policy,
) -> anyhow::Result<Route> {
    let text = |name: &str| {
        rule.get_field_by_name(name)
            .and_then(|value| value.as_str().map(str::to_owned))
            .filter(|text| !text.is_empty())
    };
    let (method, path) = if let Some(path) = text("get") {
        (Method::GET, path)
    } else if let Some(path) = text("post") {
        (Method::POST, path)
    } else if let Some(path) = text("put") {
        (Method::PUT, path)
    } else if let Some(path) = text("patch") {
        (Method::PATCH, path)
    } else if let Some(path) = text("delete") {
        (Method::DELETE, path)
    } else if let Some(Value::Message(custom)) = rule
        .get_field_by_name("custom")
        .map(|value| value.into_owned())
    {
        let kind = custom
            .get_field_by_name("kind")
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        let path = custom
            .get_field_by_name("path")
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        (
            Method::from_bytes(kind.as_bytes()).context("custom method")?,
            path,
        )
    } else {
        anyhow::bail!("the rule has no pattern");
    };
    let template = PathTemplate::parse(&path)?;
    let input = rpc.input();
    for variable in &template.variables {
        anyhow::ensure!(
            resolve_field_path(&input, &variable.field_path).is_some(),
            "path variable {} is not a field of {}",
            variable.field_path,
            input.full_name()
        );
    }
    let body = match text("body").as_deref() {
        None => BodyRule::None,
        Some("*") => BodyRule::Whole,
        Some(field) => {
            anyhow::ensure!(
                input.get_field_by_name(field).is_some(),
                "body field {field} is not a field of {}",
                input.full_name()
            );
            BodyRule::Field(field.to_owned())
        }
    };
    let response_body = text("response_body");
    if let Some(field) = &response_body {
        anyhow::ensure!(
            rpc.output().get_field_by_name(field).is_some(),
            "response_body {field} is not a field of {}",
            rpc.output().full_name()
        );
    }
    Ok(Route {
        label: format!("{method} {template}").into(),
        method,
        template,
        body,
        response_body,
        rpc: rpc.clone(),
        grpc_path,
        upstream,
        policy,
    })
}

/// The field a dotted path names, following message fields; `None` when a step is missing or
/// not a message.
pub fn resolve_field_path(
    message: &prost_reflect::MessageDescriptor,
    path: &str,
) -> Option<prost_reflect::FieldDescriptor> {
    let mut current = message.clone();
    let mut steps = path.split('.').peekable();
    while let Some(step) = steps.next() {
        let field = current
            .get_field_by_name(step)
            .or_else(|| current.get_field_by_json_name(step))?;
        if steps.peek().is_none() {
            return Some(field);
        }
        match field.kind() {
            prost_reflect::Kind::Message(inner) if !field.is_list() && !field.is_map() => {
                current = inner
            }
            _ => return None,
        }
    }
    None
}
