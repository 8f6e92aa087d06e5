//! Request messages from path variables, query parameters and the JSON body, and responses
//! back to JSON, all through the proto3 JSON mapping: enums by name, 64-bit integers as
//! strings, well-known types in their JSON forms, proto or JSON (lowerCamelCase) field names
//! in, JSON names out.

use bytes::Bytes;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, SerializeOptions,
};
use serde_json::{Map, Value};

use super::routes::{BodyRule, Route, resolve_field_path};
use super::template::Bindings;

/// Name of google.api.HttpBody: a raw body on either side.
pub const HTTP_BODY: &str = "google.api.HttpBody";

/// Why a request could not become a message, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The field (or `body`, or the query parameter).
    pub field: String,
    /// What is wrong.
    pub description: String,
}

impl InputError {
    fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Builds the request message of `route`.
pub fn build_request(
    route: &Route,
    bindings: &Bindings,
    query: Option<&str>,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<DynamicMessage, InputError> {
    let input = route.rpc.input();
    let mut root = Map::new();
    match &route.body {
        BodyRule::None => {}
        BodyRule::Whole => match parse_json_body(&body)? {
            Some(Value::Object(object)) => root = object,
            Some(_) => return Err(InputError::new("body", "must be a JSON object")),
            None => {}
        },
        BodyRule::Field(field) => {
            let descriptor = input
                .get_field_by_name(field)
                .ok_or_else(|| InputError::new(field.clone(), "is not a field"))?;
            let value = match descriptor.kind() {
                Kind::Message(message) if message.full_name() == HTTP_BODY => {
                    Some(http_body_json(content_type, &body))
                }
                _ => parse_json_body(&body)?,
            };
            if let Some(value) = value {
                root.insert(field.clone(), value);
            }
        }
    }
    if route.body != BodyRule::Whole
        && let Some(query) = query
    {
        let mut repeated: Vec<(String, Vec<String>)> = Vec::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match repeated.iter_mut().find(|(existing, _)| *existing == key) {
                Some((_, values)) => values.push(value.into_owned()),
                None => repeated.push((key.into_owned(), vec![value.into_owned()])),
            }
        }
        for (key, values) in repeated {
            if let BodyRule::Field(body_field) = &route.body
                && (key == *body_field || key.starts_with(&format!("{body_field}.")))
            {
                return Err(InputError::new(key, "is set by the request body"));
            }
            let field = resolve_field_path(&input, &key)
                .ok_or_else(|| InputError::new(key.clone(), "is not a field of the request"))?;
            let value = if field.is_list() {
                Value::Array(
                    values
                        .iter()
                        .map(|value| scalar_json(&field.kind(), value, &key))
                        .collect::<Result<_, _>>()?,
                )
            } else {
                let [value] = values.as_slice() else {
                    return Err(InputError::new(key, "is given more than once"));
                };
                scalar_json(&field.kind(), value, &key)?
            };
            set_path(&mut root, &key, value);
        }
    }
    for (path, value) in bindings {
        let field = resolve_field_path(&input, path)
            .ok_or_else(|| InputError::new(path.clone(), "is not a field"))?;
        let value = scalar_json(&field.kind(), value, path)?;
        set_path(&mut root, path, value);
    }
    json_field_masks(&mut root, &input);
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(Value::Object(root), &mut track);
    DynamicMessage::deserialize_with_options(
        input,
        deserializer,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|error| {
        let path = track.path().to_string();
        let field = if path == "." || path.is_empty() {
            "body".to_owned()
        } else {
            path
        };
        InputError::new(field, clean_error(&error.to_string()))
    })
}

/// Rewrites the paths of every google.protobuf.FieldMask in `object` (a `message`) to the JSON
/// form the proto3 mapping reads (`displayName`), so that clients may also send the proto names
/// (`display_name`) that the docs and most tools write.
fn json_field_masks(object: &mut Map<String, Value>, message: &MessageDescriptor) {
    for (key, value) in object.iter_mut() {
        let Some(field) = message
            .get_field_by_json_name(key)
            .or_else(|| message.get_field_by_name(key))
        else {
            continue;
        };
        let Kind::Message(kind) = field.kind() else {
            continue;
        };
        if kind.full_name() == "google.protobuf.FieldMask" {
            if let Value::String(paths) = value {
                *paths = paths
                    .split(',')
                    .map(|path| path.split('.').map(json_name).collect::<Vec<_>>().join("."))
                    .collect::<Vec<_>>()
                    .join(",");
            }
            continue;
        }
        if kind.full_name().starts_with("google.protobuf.") {
            continue;
        }
        let kind = if field.is_map() {
            match kind.map_entry_value_field().kind() {
                Kind::Message(values) => values,
                _ => continue,
            }
        } else {
            kind
        };
        let nested: Vec<&mut Value> = match value {
            Value::Array(items) => items.iter_mut().collect(),
            Value::Object(entries) if field.is_map() => entries.values_mut().collect(),
            other => vec![other],
        };
        for item in nested {
            if let Value::Object(item) = item {
                json_field_masks(item, &kind);
            }
        }
    }
}

/// The JSON name of a field's proto name (`display_name` → `displayName`); a name already in
/// that form, or one the mapping cannot turn back, is left for the decoder to judge.
fn json_name(name: &str) -> String {
    let mut json = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(ch) = chars.next() {
        match chars.peek() {
            Some(next) if ch == '_' && next.is_ascii_lowercase() => {
                json.push(next.to_ascii_uppercase());
                chars.next();
            }
            _ => json.push(ch),
        }
    }
    json
}

/// Whether `route` reads its request body as JSON: it takes a body, and not as a
/// google.api.HttpBody field (a raw body of any content type).
pub fn takes_json_body(route: &Route) -> bool {
    match &route.body {
        BodyRule::None => false,
        BodyRule::Whole => true,
        BodyRule::Field(field) => !route.rpc.input().get_field_by_name(field).is_some_and(
            |descriptor| matches!(descriptor.kind(), Kind::Message(message) if message.full_name() == HTTP_BODY),
        ),
    }
}

/// Whether a body is no body at all: empty, or whitespace only (an empty message).
pub fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// Whether `content_type` names JSON: `application/json` or `application/<anything>+json`,
/// with or without parameters (`; charset=utf-8`).
pub fn is_json_content_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media_type == "application/json"
        || media_type
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.len() > "+json".len() && subtype.ends_with("+json"))
}

fn parse_json_body(body: &Bytes) -> Result<Option<Value>, InputError> {
    if is_blank(body) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|error| InputError::new("body", format!("is not valid JSON: {error}")))
}

fn http_body_json(content_type: Option<&str>, body: &Bytes) -> Value {
    use base64::Engine;
    serde_json::json!({
        "content_type": content_type.unwrap_or("application/octet-stream"),
        "data": base64::engine::general_purpose::STANDARD.encode(body),
    })
}

/// The JSON a query parameter or path variable stands for in field `kind`. Numbers travel as
/// strings (proto3 JSON accepts them so, and 64-bit ones need it); booleans must be literals.
fn scalar_json(kind: &Kind, value: &str, field: &str) -> Result<Value, InputError> {
    match kind {
        Kind::Bool => match value {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(InputError::new(field, "must be true or false")),
        },
        Kind::Enum(_) => match value.parse::<i64>() {
            Ok(number) => Ok(Value::from(number)),
            Err(_) => Ok(Value::String(value.to_owned())),
        },
        Kind::Message(message) => match message.full_name() {
            "google.protobuf.BoolValue" => scalar_json(&Kind::Bool, value, field),
            "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.Int32Value"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.FloatValue"
            | "google.protobuf.DoubleValue" => Ok(Value::String(value.to_owned())),
            other => Err(InputError::new(
                field,
                format!("is a {other}: set its fields (`{field}.name=…`) instead"),
            )),
        },
        _ => Ok(Value::String(value.to_owned())),
    }
}

fn set_path(root: &mut Map<String, Value>, path: &str, value: Value) {
    let mut steps: Vec<&str> = path.split('.').collect();
    let last = steps.pop().expect("a path has a step");
    let mut current = root;
    for step in steps {
        let entry = current
            .entry(step.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        current = entry.as_object_mut().expect("made an object above");
    }
    current.insert(last.to_owned(), value);
}

/// The options every response is serialised with, the proto3 JSON mapping as grpc-gateway and
/// Envoy apply it: each field under its JSON name (lowerCamelCase, or its `json_name`), in
/// nested messages, map values and `Any` alike; every field present (so clients see `false`,
/// `0` and empty lists); 64-bit integers as strings.
pub fn serialize_options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(false)
        .skip_default_fields(false)
        .stringify_64_bit_integers(true)
}

/// A response message (or its `response_body` field, named by its proto name) as JSON.
pub fn response_json(
    message: &DynamicMessage,
    response_body: Option<&str>,
) -> Result<Value, serde_json::Error> {
    let whole =
        message.serialize_with_options(serde_json::value::Serializer, &serialize_options())?;
    Ok(match response_body {
        Some(field) => message
            .descriptor()
            .get_field_by_name(field)
            .and_then(|field| whole.get(field.json_name()).cloned())
            .unwrap_or(Value::Null),
        None => whole,
    })
}

/// The raw body and content type of a google.api.HttpBody message.
pub fn http_body_parts(message: &DynamicMessage) -> (String, Vec<u8>) {
    let content_type = message
        .get_field_by_name("content_type")
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let data = message
        .get_field_by_name("data")
        .and_then(|value| value.as_bytes().map(|bytes| bytes.to_vec()))
        .unwrap_or_default();
    (content_type, data)
}

/// Whether responses of `message` are raw bodies.
pub fn is_http_body(message: &MessageDescriptor) -> bool {
    message.full_name() == HTTP_BODY
}

/// Keeps parser messages short and free of Rust type names.
fn clean_error(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;
    use prost_reflect::DescriptorPool;

    use super::*;
    use crate::transcode::routes::RouteTable;

    /// Every route of the suite's own protos.
    fn table() -> &'static RouteTable {
        static TABLE: OnceLock<RouteTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            let pool = DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
            let mut table = RouteTable::default();
            table.add_pool(&pool, |_| Some("any".to_owned())).unwrap();
            table
        })
    }

    /// Query parameters made of real field names (nested and camelCase too) and hostile values.
    fn query() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "page_size",
            "pageSize",
            "page_token",
            "filter",
            "name",
            "update_mask",
            "tenant.slug",
            "tenant.rate_limits.burst",
            "tenant.settings",
            "tenant.domains",
            "member.role",
            "show_deleted",
            "api_key.expire_time",
            "a.b.c",
            "",
            "tenant..slug",
            ".",
            "tenant.",
            "key",
        ]);
        let value = prop_oneof![
            "\\PC{0,12}",
            Just("-1".to_owned()),
            Just("99999999999999999999".to_owned()),
            Just("true".to_owned()),
            Just("ROLE_OWNER".to_owned()),
            Just("1970-01-01T00:00:00Z".to_owned()),
            Just("%ZZ".to_owned()),
        ];
        prop::collection::vec((key, value), 0..6).prop_map(|pairs| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (key, value) in pairs {
                query.append_pair(key, &value);
            }
            query.finish()
        })
    }

    proptest! {
        #[test]
        fn query_strings_map_or_are_refused_never_panic(
            index in any::<prop::sample::Index>(),
            query in query(),
            raw in "\\PC{0,40}",
        ) {
            let route = index.get(table().routes());
            let _ = build_request(route, &Vec::new(), Some(&query), None, Bytes::new());
            let _ = build_request(route, &Vec::new(), Some(&raw), None, Bytes::new());
        }

        #[test]
        fn bodies_and_path_values_map_or_are_refused_never_panic(
            index in any::<prop::sample::Index>(),
            body in "\\PC{0,60}",
            value in "\\PC{0,12}",
        ) {
            let route = index.get(table().routes());
            let bindings: Bindings = route
                .template
                .variables
                .iter()
                .map(|variable| (variable.field_path.clone(), value.clone()))
                .collect();
            let _ = build_request(route, &bindings, None, Some("application/json"), Bytes::from(body));
        }
    }

    #[test]
    fn repeated_and_nested_parameters_build_the_message() {
        let route = table()
            .routes()
            .iter()
            .find(|route| {
                route.grpc_path.as_str() == "/formflow.tenant.v1.TenantService/ListTenants"
            })
            .unwrap();
        let message = build_request(
            route,
            &Vec::new(),
            Some("page_size=5&pageToken=abc"),
            None,
            Bytes::new(),
        )
        .unwrap();
        let json = response_json(&message, None).unwrap();
        assert_eq!(
            (json["pageSize"].as_i64(), json["pageToken"].as_str()),
            (Some(5), Some("abc"))
        );
        let error = build_request(
            route,
            &Vec::new(),
            Some("page_size=5&page_size=6"),
            None,
            Bytes::new(),
        )
        .unwrap_err();
        assert_eq!(error.field, "page_size");
    }

    #[test]
    fn json_content_types_are_told_from_the_others() {
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            "application/merge-patch+json",
            "application/vnd.api+json ; charset=utf-8",
        ] {
            assert!(is_json_content_type(Some(json)), "{json}");
        }
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "application/+json",
            "text/json+xml",
            "application/xml; note=application/json",
            "",
        ] {
            assert!(!is_json_content_type(Some(other)), "{other}");
        }
        assert!(!is_json_content_type(None));
    }

    #[test]
    fn raw_body_routes_take_any_content_type_and_the_others_json() {
        let routes = table().routes();
        let submit_page = routes
            .iter()
            .find(|route| route.rpc.name() == "SubmitFormPage")
            .unwrap();
        assert!(!takes_json_body(submit_page));
        let login = routes
            .iter()
            .find(|route| route.rpc.name() == "Login")
            .unwrap();
        assert!(takes_json_body(login));
        let create_invitation = routes
            .iter()
            .find(|route| route.rpc.name() == "CreateInvitation")
            .unwrap();
        assert!(takes_json_body(create_invitation), "a body field");
    }
}
