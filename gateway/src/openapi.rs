//! The OpenAPI 3.0 document of every route, generated from the same descriptors the gateway
//! routes with: paths and parameters from the templates, schemas from the messages, the
//! comments of the protos as descriptions, the error shape, and the security schemes.

use std::collections::{BTreeMap, HashSet};

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use crate::transcode::message::HTTP_BODY;
use crate::transcode::routes::{BodyRule, Route, RouteTable, resolve_field_path};
use crate::transcode::template::Segment;

/// The document.
pub fn document(table: &RouteTable) -> Value {
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut schemas = BTreeMap::new();
    let mut pending: Vec<MessageDescriptor> = Vec::new();
    let routes: Vec<&Route> = table
        .routes()
        .iter()
        // An RPC not built yet is not advertised: it could only answer 501.
        .filter(|route| !route.policy.unbuilt)
        .collect();
    let ids = operation_ids(&routes);
    for (route, id) in routes.into_iter().zip(ids) {
        let (path, path_parameters, bound) = openapi_path(route);
        let mut operation = operation(route, path_parameters, &bound, &mut pending);
        operation.insert("operationId".into(), json!(id));
        paths.entry(path).or_default().insert(
            route.method.as_str().to_ascii_lowercase(),
            Value::Object(operation),
        );
    }
    let mut seen = HashSet::new();
    while let Some(message) = pending.pop() {
        if !seen.insert(message.full_name().to_owned()) {
            continue;
        }
        schemas.insert(
            message.full_name().to_owned(),
            message_schema(&message, &mut pending),
        );
    }
    schemas.insert(
        "Error".to_owned(),
        json!({
            "type": "object",
            "description": "The error shape of every failed call.",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message", "details", "request_id"],
                "properties": {
                    "code": {"type": "string", "description": "The gRPC code's name (NOT_FOUND, PERMISSION_DENIED, …)."},
                    "reason": {"type": "string", "description": "The ErrorInfo reason, when there is one (TENANT_NOT_FOUND, ACCOUNT_LOCKED, …)."},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object", "additionalProperties": true}, "description": "google.rpc details, each with its @type: BadRequest, ErrorInfo, RetryInfo, QuotaFailure, PreconditionFailure, RequestInfo, ResourceInfo, Help, LocalizedMessage."},
                    "request_id": {"type": "string"}
                }
            }}
        }),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "FormFlow API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST/JSON interface of the FormFlow suite, transcoded to gRPC from the protos' google.api.http annotations. The tenant comes from the X-Tenant-ID header, a /t/{slug}/ prefix, the host, or the token."
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
            },
            "responses": {
                "Error": {"description": "An error.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        },
        "security": [{"bearer": []}, {"apiKey": []}]
    })
}

/// Each route's operation id, as grpc-gateway's generator writes them: `Service_Method`, or
/// the RPC's full name (`acme_echo_v1_Service_Method`) where two packages have a service of
/// the same name; an RPC's additional bindings get `_2`, `_3`, …
fn operation_ids(routes: &[&Route]) -> Vec<String> {
    let mut services: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for route in routes {
        let service = route.rpc.parent_service();
        services
            .entry(service.name())
            .or_default()
            .insert(service.package_name());
    }
    let mut bindings_seen: BTreeMap<&str, usize> = BTreeMap::new();
    routes
        .iter()
        .map(|route| {
            let service = route.rpc.parent_service();
            let id = if services[service.name()].len() > 1 {
                route.rpc.full_name().replace('.', "_")
            } else {
                format!("{}_{}", service.name(), route.rpc.name())
            };
            let seen = bindings_seen.entry(route.rpc.full_name()).or_default();
            *seen += 1;
            if *seen > 1 {
                format!("{id}_{seen}")
            } else {
                id
            }
        })
        .collect()
}

/// A path parameter of the document: its name, and what it matches.
struct PathParameter {
    name: String,
    description: String,
}

/// The OpenAPI path of a route, one per resource pattern as grpc-gateway's generator writes
/// it: a variable `{name=forms/*/versions/*}` becomes `/forms/{form}/versions/{version}` (each
/// `*` a parameter named after the collection before it, in the singular), and a plain
/// `{field}` stays `{field}`. Also the fields the path sets, which are no query parameters.
fn openapi_path(route: &Route) -> (String, Vec<PathParameter>, Vec<String>) {
    let template = &route.template;
    let mut path = String::new();
    let mut parameters: Vec<PathParameter> = Vec::new();
    let mut bound = Vec::new();
    let add = |parameters: &mut Vec<PathParameter>, base: &str, description: String| {
        let mut name = base.to_owned();
        let mut suffix = 1;
        while parameters.iter().any(|parameter| parameter.name == name) {
            suffix += 1;
            name = format!("{base}{suffix}");
        }
        parameters.push(PathParameter {
            name: name.clone(),
            description,
        });
        name
    };
    let mut index = 0;
    while index < template.segments.len() {
        let Some(variable) = template
            .variables
            .iter()
            .find(|variable| variable.start == index)
        else {
            match &template.segments[index] {
                Segment::Literal(text) => path.push_str(&format!("/{text}")),
                Segment::Single | Segment::Multi => {
                    let name = add(&mut parameters, "_", "Any one segment.".to_owned());
                    path.push_str(&format!("/{{{name}}}"));
                }
            }
            index += 1;
            continue;
        };
        let field = variable.field_path.clone();
        bound.push(field.clone());
        let segments = &template.segments[variable.start..variable.end];
        let has_literal = segments
            .iter()
            .any(|segment| matches!(segment, Segment::Literal(_)));
        if !has_literal {
            let description = match segments {
                [Segment::Multi] => format!("Sets `{field}`; may contain `/`."),
                _ => format!("Sets `{field}`."),
            };
            // Generators take no dots in a parameter's name.
            let name = add(&mut parameters, &field.replace('.', "_"), description);
            path.push_str(&format!("/{{{name}}}"));
        } else {
            let mut collection = None;
            for segment in segments {
                match segment {
                    Segment::Literal(text) => {
                        path.push_str(&format!("/{text}"));
                        collection = Some(text.as_str());
                    }
                    Segment::Single | Segment::Multi => {
                        let base = collection.map_or_else(|| field.replace('.', "_"), singular);
                        let description = if matches!(segment, Segment::Multi) {
                            format!("Part of `{field}`; may contain `/`.")
                        } else {
                            format!("Part of `{field}`: one segment, without `/`.")
                        };
                        let name = add(&mut parameters, &base, description);
                        path.push_str(&format!("/{{{name}}}"));
                    }
                }
            }
        }
        index = variable.end.max(index + 1);
    }
    if let Some(verb) = &template.verb {
        path.push(':');
        path.push_str(verb);
    }
    (path, parameters, bound)
}

/// One of a collection (`forms` → `form`, `deliveries` → `delivery`, `shelves` → `shelf`); a
/// collection name not in
/// the plural gets `Id` (`data` → `dataId`).
fn singular(collection: &str) -> String {
    if let Some(stem) = collection.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = collection.strip_suffix("lves") {
        format!("{stem}lf")
    } else if let Some(stem) = collection.strip_suffix('s') {
        stem.to_owned()
    } else {
        format!("{collection}Id")
    }
}

fn operation(
    route: &Route,
    path_parameters: Vec<PathParameter>,
    bound: &[String],
    pending: &mut Vec<MessageDescriptor>,
) -> Map<String, Value> {
    let input = route.rpc.input();
    let output = route.rpc.output();
    let mut parameters: Vec<Value> = path_parameters
        .iter()
        .map(|parameter| {
            json!({
                "name": parameter.name,
                "in": "path",
                "required": true,
                "description": parameter.description,
                "schema": {"type": "string"},
            })
        })
        .collect();
    let bound: HashSet<&str> = bound.iter().map(String::as_str).collect();
    if route.body != BodyRule::Whole {
        for field in input.fields() {
            let body_field = matches!(&route.body, BodyRule::Field(name) if name == field.name());
            if body_field
                || bound.contains(field.name())
                || resolve_field_path(&input, field.name()).is_none()
            {
                continue;
            }
            if let Some(schema) = query_schema(&field) {
                parameters.push(json!({
                    "name": field.name(),
                    "in": "query",
                    "required": false,
                    "description": comment_of_field(&field),
                    "schema": schema,
                }));
            }
        }
    }
    let mut operation = Map::new();
    operation.insert("tags".into(), json!([route.rpc.parent_service().name()]));
    let summary = comment_of_method(route);
    if !summary.is_empty() {
        operation.insert("description".into(), json!(summary));
    }
    operation.insert("parameters".into(), Value::Array(parameters));
    let body_schema = match &route.body {
        BodyRule::None => None,
        BodyRule::Whole => Some(schema_ref(&input, pending)),
        BodyRule::Field(name) => input
            .get_field_by_name(name)
            .map(|field| field_schema(&field, pending)),
    };
    if let Some(schema) = body_schema {
        let raw = matches!(&route.body, BodyRule::Field(name) if input.get_field_by_name(name).is_some_and(|field| matches!(field.kind(), Kind::Message(message) if message.full_name() == HTTP_BODY)));
        let content = if raw {
            // Any content type is relayed as it is; octet-stream is what generators handle.
            json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}})
        } else {
            json!({"application/json": {"schema": schema}})
        };
        operation.insert(
            "requestBody".into(),
            json!({"required": true, "content": content}),
        );
    }
    let status = route.policy.success_status.unwrap_or(200).to_string();
    let success = if output.full_name() == HTTP_BODY {
        json!({"description": "The raw response body; its Content-Type says what it holds.", "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "*/*": {"schema": {"type": "string", "format": "binary"}}
        }})
    } else if route.rpc.is_server_streaming() {
        json!({"description": "A stream of messages: Server-Sent Events, or NDJSON with `Accept: application/x-ndjson`.", "content": {
            // One Server-Sent Event, as the OpenAPI specification's generic schema for the media
            // type (schemathesis checks each event against it): `data` holds one message as JSON.
            "text/event-stream": {"schema": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "string",
                        "description": format!("One `{}` as JSON.", output.name())
                    },
                    "event": {"type": "string"},
                    "id": {"type": "string"},
                    "retry": {"type": "integer", "minimum": 0}
                }
            }},
            "application/x-ndjson": {"schema": schema_ref(&output, pending)}
        }})
    } else {
        let schema = match &route.response_body {
            Some(field) => output
                .get_field_by_name(field)
                .map(|field| field_schema(&field, pending))
                .unwrap_or_else(|| json!({})),
            None => schema_ref(&output, pending),
        };
        json!({"description": "Success.", "content": {"application/json": {"schema": schema}}})
    };
    operation.insert(
        "responses".into(),
        json!({status: success, "default": {"$ref": "#/components/responses/Error"}}),
    );
    if route.policy.public {
        operation.insert("security".into(), json!([]));
    }
    operation
}

fn schema_ref(message: &MessageDescriptor, pending: &mut Vec<MessageDescriptor>) -> Value {
    if let Some(schema) = well_known(message.full_name()) {
        return schema;
    }
    pending.push(message.clone());
    json!({"$ref": format!("#/components/schemas/{}", message.full_name())})
}

fn well_known(name: &str) -> Option<Value> {
    Some(match name {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => json!({"type": "string", "example": "1.5s"}),
        "google.protobuf.FieldMask" => {
            json!({"type": "string", "example": "display_name,settings"})
        }
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Any" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.StringValue" => json!({"type": "string", "nullable": true}),
        "google.protobuf.BytesValue" => {
            json!({"type": "string", "format": "byte", "nullable": true})
        }
        "google.protobuf.BoolValue" => json!({"type": "boolean", "nullable": true}),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            json!({"type": "integer", "nullable": true})
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({"type": "string", "format": "int64", "nullable": true})
        }
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => {
            json!({"type": "number", "nullable": true})
        }
        _ => return None,
    })
}

fn scalar_schema(kind: &Kind, pending: &mut Vec<MessageDescriptor>) -> Value {
    match kind {
        Kind::Double | Kind::Float => json!({"type": "number"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int64", "minimum": 0}),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            json!({"type": "string", "format": "int64"})
        }
        Kind::Bool => json!({"type": "boolean"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Enum(enumeration) => {
            json!({"type": "string", "enum": enumeration.values().map(|value| value.name().to_owned()).collect::<Vec<_>>()})
        }
        Kind::Message(message) => schema_ref(message, pending),
    }
}

fn field_schema(field: &FieldDescriptor, pending: &mut Vec<MessageDescriptor>) -> Value {
    if field.is_map() {
        if let Kind::Message(entry) = field.kind()
            && let Some(value) = entry.get_field_by_name("value")
        {
            return json!({"type": "object", "additionalProperties": scalar_schema(&value.kind(), pending)});
        }
        return json!({"type": "object"});
    }
    let item = scalar_schema(&field.kind(), pending);
    with_limits(field, item)
}

/// The schema of `field` from its values' `item`: an array of them when it is repeated, with the
/// limits its proto publishes (`formflow.api.v1.limits`) as JSON Schema keywords.
fn with_limits(field: &FieldDescriptor, mut item: Value) -> Value {
    let limits = proto::field_limits(field).unwrap_or_default();
    if let Value::Object(object) = &mut item
        && !object.contains_key("$ref")
    {
        let mut set = |keyword: &str, value: Value| {
            object.insert(keyword.to_owned(), value);
        };
        if limits.min_length > 0 {
            set("minLength", json!(limits.min_length));
        }
        if limits.max_length > 0 {
            set("maxLength", json!(limits.max_length));
        }
        if !limits.pattern.is_empty() {
            set("pattern", json!(limits.pattern));
        }
        if let Some(minimum) = limits.minimum {
            set("minimum", json!(minimum));
        }
        if let Some(maximum) = limits.maximum {
            set("maximum", json!(maximum));
        }
    }
    if !field.is_list() {
        return item;
    }
    let mut array = json!({"type": "array", "items": item});
    if limits.min_items > 0 {
        array["minItems"] = json!(limits.min_items);
    }
    if limits.max_items > 0 {
        array["maxItems"] = json!(limits.max_items);
    }
    array
}

/// `google.api.FieldBehavior.REQUIRED`.
const FIELD_BEHAVIOR_REQUIRED: i32 = 2;
/// `google.api.FieldBehavior.OUTPUT_ONLY`.
const FIELD_BEHAVIOR_OUTPUT_ONLY: i32 = 3;

/// The `google.api.field_behavior` values of a field (AIP-203).
fn field_behaviors(field: &FieldDescriptor) -> Vec<i32> {
    let Some(extension) = field
        .parent_pool()
        .get_extension_by_name("google.api.field_behavior")
    else {
        return Vec::new();
    };
    let options = field.options();
    if !options.has_extension(&extension) {
        return Vec::new();
    }
    options
        .get_extension(&extension)
        .as_list()
        .map(|values| {
            values
                .iter()
                .filter_map(|value| value.as_enum_number())
                .collect()
        })
        .unwrap_or_default()
}

fn query_schema(field: &FieldDescriptor) -> Option<Value> {
    if field.is_map() {
        return None;
    }
    let mut ignored = Vec::new();
    let item = match field.kind() {
        Kind::Message(message) => well_known(message.full_name())?,
        kind => scalar_schema(&kind, &mut ignored),
    };
    Some(with_limits(field, item))
}

fn message_schema(message: &MessageDescriptor, pending: &mut Vec<MessageDescriptor>) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in message.fields() {
        let mut schema = field_schema(&field, pending);
        let behaviors = field_behaviors(&field);
        if behaviors.contains(&FIELD_BEHAVIOR_REQUIRED) {
            required.push(field.json_name().to_owned());
        }
        if let Value::Object(object) = &mut schema
            && !object.contains_key("$ref")
        {
            let description = comment_of_field(&field);
            if !description.is_empty() {
                object.insert("description".into(), json!(description));
            }
            if behaviors.contains(&FIELD_BEHAVIOR_OUTPUT_ONLY) {
                object.insert("readOnly".into(), json!(true));
            }
        }
        properties.insert(field.json_name().to_owned(), schema);
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    let description = comment_at(message.parent_file_descriptor_proto(), message.path());
    if !description.is_empty() {
        schema["description"] = json!(description);
    }
    schema
}

fn comment_at(file: &prost_reflect::prost_types::FileDescriptorProto, path: &[i32]) -> String {
    file.source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|location| location.path == path))
        .and_then(|location| location.leading_comments.clone())
        .map(|comment| comment.trim().to_owned())
        .unwrap_or_default()
}

fn comment_of_field(field: &FieldDescriptor) -> String {
    let message = field.parent_message();
    let Some(index) = message
        .descriptor_proto()
        .field
        .iter()
        .position(|proto| proto.number() == i32::try_from(field.number()).unwrap_or(-1))
    else {
        return String::new();
    };
    let mut path = message.path().to_vec();
    path.extend([2, i32::try_from(index).unwrap_or(0)]);
    comment_at(message.parent_file_descriptor_proto(), &path)
}

fn comment_of_method(route: &Route) -> String {
    let file = route.rpc.parent_file();
    comment_at(file.file_descriptor_proto(), route.rpc.path())
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;

    use super::*;

    fn suite_document() -> (Value, usize) {
        let pool = DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut table = RouteTable::default();
        table.add_pool(&pool, |_| Some("any".to_owned())).unwrap();
        let advertised = table
            .routes()
            .iter()
            .filter(|route| !route.policy.unbuilt)
            .count();
        (document(&table), advertised)
    }

    #[test]
    fn every_route_is_one_operation_with_its_own_id_and_declared_path_parameters() {
        let (document, routes) = suite_document();
        let paths = document["paths"].as_object().unwrap();
        let mut ids = HashSet::new();
        let mut operations = 0;
        for (path, item) in paths {
            let in_path: HashSet<&str> = path
                .split('/')
                .filter_map(|segment| segment.strip_prefix('{'))
                .map(|segment| segment.split('}').next().unwrap())
                .collect();
            for (method, operation) in item.as_object().unwrap() {
                operations += 1;
                let id = operation["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_owned()), "{id} twice");
                let declared: HashSet<&str> = operation["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|parameter| parameter["in"] == "path")
                    .map(|parameter| parameter["name"].as_str().unwrap())
                    .collect();
                assert_eq!(declared, in_path, "{method} {path}");
                assert!(
                    operation["responses"]["default"].is_object(),
                    "{method} {path} documents no error"
                );
            }
        }
        assert_eq!(operations, routes, "no two routes share a path and method");
    }

    #[test]
    fn resource_names_are_published_one_path_per_pattern() {
        let (document, _) = suite_document();
        let paths = document["paths"].as_object().unwrap();
        for (path, method) in [
            ("/api/v1/forms/{form}", "get"),
            ("/api/v1/forms/{form}/versions/{version}", "get"),
            ("/api/v1/forms/{form}/submissions/{submission}", "delete"),
            ("/api/v1/members/{member}", "patch"),
            ("/api/v1/tenants/{tenant}", "get"),
        ] {
            assert!(
                paths.get(path).and_then(|item| item.get(method)).is_some(),
                "{method} {path} missing from {:?}",
                paths.keys().collect::<Vec<_>>()
            );
        }
        assert!(
            !paths.keys().any(|path| path.starts_with("/api/v1/{name}")),
            "a shared /api/v1/{{name}} path"
        );
        let member = &paths["/api/v1/members/{member}"]["patch"]["parameters"][0];
        assert_eq!(member["name"], "member");
        assert!(
            member["description"]
                .as_str()
                .unwrap()
                .contains("member.name")
        );
    }

    #[test]
    fn field_behaviors_mark_required_and_read_only_fields() {
        let (document, _) = suite_document();
        let form = &document["components"]["schemas"]["formflow.forms.v1.Form"];
        let required: Vec<&str> = form["required"]
            .as_array()
            .unwrap_or_else(|| panic!("no required fields in {form}"))
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        assert!(required.contains(&"title"), "{required:?}");
        assert!(!required.contains(&"etag"), "{required:?}");
        assert_eq!(form["properties"]["createTime"]["readOnly"], true, "{form}");
        assert!(form["properties"]["title"].get("readOnly").is_none());
    }

    #[test]
    fn published_limits_become_json_schema_keywords() {
        let (document, _) = suite_document();
        let tenant = &document["components"]["schemas"]["formflow.tenant.v1.Tenant"]["properties"];
        assert_eq!(tenant["slug"]["minLength"], 3, "{tenant}");
        assert_eq!(tenant["slug"]["maxLength"], 63);
        assert_eq!(tenant["slug"]["pattern"], "^[a-z0-9]+(-[a-z0-9]+)*$");
        assert_eq!(tenant["domains"]["maxItems"], 20);
        assert_eq!(tenant["domains"]["items"], json!({"type": "string"}));
        assert!(tenant["name"].get("maxLength").is_none(), "{tenant}");
        let page_size = document["paths"]["/api/v1/tenants"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == "page_size")
            .unwrap_or_else(|| panic!("no page_size parameter"));
        assert_eq!(page_size["schema"]["minimum"], 0, "{page_size}");
        assert_eq!(page_size["schema"]["maximum"], 100, "{page_size}");
    }

    #[test]
    fn a_server_sent_event_is_described_as_an_event_with_its_message_as_data() {
        let (document, _) = suite_document();
        let stream = &document["paths"]["/api/v1/inboxMessages:stream"]["get"]["responses"]["200"]
            ["content"]["text/event-stream"]["schema"];
        assert_eq!(stream["type"], "object", "{stream}");
        assert_eq!(stream["required"], json!(["data"]));
        assert_eq!(stream["properties"]["data"]["type"], "string");
    }

    #[test]
    fn unbuilt_rpcs_are_not_advertised() {
        let pool = DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut table = RouteTable::default();
        table.add_pool(&pool, |_| Some("any".to_owned())).unwrap();
        // Every RPC of the suite is built: mark the batch jobs' as a draft would be.
        for route in table.routes_mut() {
            if route.rpc.name().ends_with("BatchJobs") || route.rpc.name() == "CreateBatchJob" {
                route.policy.unbuilt = true;
            }
        }
        let document = document(&table);
        let paths = document["paths"].as_object().unwrap();
        assert!(paths.get("/api/v1/batchJobs").is_none());
        assert!(paths["/api/v1/labelSets"]["post"].is_object());
        assert!(paths["/api/v1/executions"]["get"].is_object());
        assert!(paths["/api/v1/workflows"]["post"].is_object());
        assert!(paths["/api/v1/notifications:send"]["post"].is_object());
        assert!(paths["/api/v1/forms"]["get"]["responses"]["200"].is_object());
    }

    #[test]
    fn collections_are_named_in_the_singular() {
        for (collection, one) in [
            ("forms", "form"),
            ("deliveries", "delivery"),
            ("shelves", "shelf"),
            ("apiKeys", "apiKey"),
            ("settings", "setting"),
            ("data", "dataId"),
        ] {
            assert_eq!(singular(collection), one);
        }
    }
}
