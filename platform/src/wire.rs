//! What every service's `grpc/convert.rs` does to and from the wire the same way: timestamps,
//! AIP resource names (`tenants/{id}`), etags (a row's version), update-mask paths and enum
//! fields. Parsers record a field violation and return `None`, so a request's every bad field
//! is reported at once ([`FieldViolations`]).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::FieldViolations;

/// A time on the wire.
pub fn timestamp(time: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A time from the wire; `None` when it is out of range.
pub fn from_timestamp(time: &pbjson_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).ok()?)
}

/// A JSON object on the wire (`google.protobuf.Struct`).
pub fn object_to_proto(
    object: &serde_json::Map<String, serde_json::Value>,
) -> pbjson_types::Struct {
    serde_json::from_value(serde_json::Value::Object(object.clone()))
        .expect("a JSON object is a Struct")
}

/// A `google.protobuf.Struct` from the wire as a JSON object. Protobuf carries every number as
/// a double; whole ones become integers again (`42`, not `42.0`), as the sender wrote them.
pub fn object_from_proto(
    object: &pbjson_types::Struct,
) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(object) {
        Ok(serde_json::Value::Object(mut object)) => {
            object.values_mut().for_each(whole_numbers);
            object
        }
        _ => serde_json::Map::new(),
    }
}

/// A JSON value on the wire (`google.protobuf.Value`).
pub fn value_to_proto(value: &serde_json::Value) -> pbjson_types::Value {
    serde_json::from_value(value.clone()).expect("a JSON value is a Value")
}

/// A `google.protobuf.Value` from the wire as JSON, whole numbers as integers.
pub fn value_from_proto(value: &pbjson_types::Value) -> serde_json::Value {
    let mut value = serde_json::to_value(value).unwrap_or_default();
    whole_numbers(&mut value);
    value
}

/// Turns the whole doubles in `value` into integers.
fn whole_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) => {
            if let Some(double) = number.as_f64()
                && number.is_f64()
                && double.fract() == 0.0
                && double.abs() < 9_007_199_254_740_992.0
            {
                #[allow(clippy::cast_possible_truncation)]
                let whole = double as i64;
                *number = whole.into();
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        serde_json::Value::Object(members) => members.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// The resource name `{collection}/{id}`.
pub fn resource_name(collection: &str, id: impl std::fmt::Display) -> String {
    format!("{collection}/{id}")
}

/// The id in a resource name `{collection}/{uuid}`, or a violation of `field`.
pub fn parse_resource_name<T: From<Uuid>>(
    violations: &mut FieldViolations,
    field: &str,
    name: &str,
    collection: &str,
) -> Option<T> {
    let id = name
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|id| Uuid::try_parse(id).ok());
    if id.is_none() {
        violations.add(
            field,
            format!("must be a resource name, {collection}/{{uuid}}"),
        );
    }
    id.map(T::from)
}

/// The id in `name`, a request's own `name` field naming a resource of `collection` (Get,
/// Delete); a violation of `name` otherwise.
pub fn id_of<T: From<Uuid>>(name: &str, collection: &str) -> Result<T, FieldViolations> {
    let mut violations = FieldViolations::new();
    let id = parse_resource_name(&mut violations, "name", name, collection);
    violations.into_result()?;
    Ok(id.expect("checked"))
}

/// The etag of a resource at `version`: the version, opaque to clients.
pub fn etag(version: i64) -> String {
    version.to_string()
}

/// The version an update's etag names; `None` when the client sent none (no check), or when
/// it is not an etag this service issued (a violation of `field`).
pub fn expected_version(violations: &mut FieldViolations, field: &str, etag: &str) -> Option<i64> {
    if etag.is_empty() {
        return None;
    }
    violations.check(
        field,
        etag.parse::<i64>()
            .map_err(|_| "is not an etag this service issued"),
    )
}

/// The paths of an update mask, in snake_case whichever case they came in (REST clients send
/// the JSON form, `displayName`).
pub fn mask_paths(mask: Option<&pbjson_types::FieldMask>) -> Vec<String> {
    mask.map(|mask| mask.paths.iter().map(|path| snake_case(path)).collect())
        .unwrap_or_default()
}

fn snake_case(path: &str) -> String {
    let mut snake = String::with_capacity(path.len() + 4);
    for character in path.chars() {
        if character.is_ascii_uppercase() {
            snake.push('_');
            snake.push(character.to_ascii_lowercase());
        } else {
            snake.push(character);
        }
    }
    snake
}

/// The value of an enum field (`i32` on the wire) mapped by `domain`, which answers `None` for
/// values the request may not use (`UNSPECIFIED` where one is required); a violation of
/// `field` for those and for numbers the enum does not know.
pub fn enum_field<W: TryFrom<i32>, T>(
    violations: &mut FieldViolations,
    field: &str,
    value: i32,
    domain: impl FnOnce(W) -> Option<T>,
) -> Option<T> {
    let parsed = W::try_from(value).ok().and_then(domain);
    if parsed.is_none() {
        violations.add(field, "is not a known value");
    }
    parsed
}

/// An optional filter on an enum field: `None` for the `UNSPECIFIED` value 0 (no filter),
/// otherwise as [`enum_field`].
pub fn enum_filter<W: TryFrom<i32>, T>(
    violations: &mut FieldViolations,
    field: &str,
    value: i32,
    domain: impl FnOnce(W) -> Option<T>,
) -> Option<T> {
    if value == 0 {
        return None;
    }
    enum_field(violations, field, value, domain)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::context::TenantId;

    #[test]
    fn timestamps_round_trip_to_the_nanosecond() {
        let time = DateTime::from_timestamp(1_764_921_600, 123_456_789).unwrap();
        assert_eq!(from_timestamp(&timestamp(time)), Some(time));
        let out_of_range = pbjson_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(from_timestamp(&out_of_range), None);
    }

    #[test]
    fn structs_keep_whole_numbers_whole() {
        let sent = serde_json::json!({"n": 42, "x": 2.5, "list": [1, {"deep": 7}], "s": "42"});
        let object = sent.as_object().unwrap();
        let wire = object_to_proto(object);
        let received = object_from_proto(&wire);
        assert_eq!(serde_json::Value::Object(received), sent);
        assert_eq!(
            serde_json::to_string(&object_from_proto(&wire)["n"]).unwrap(),
            "42"
        );
    }

    #[test]
    fn resource_names_name_their_collection() {
        let id = TenantId::generate();
        let name = resource_name("tenants", id);
        let mut violations = FieldViolations::new();
        assert_eq!(
            parse_resource_name::<TenantId>(&mut violations, "name", &name, "tenants"),
            Some(id)
        );
        assert!(violations.is_empty());
        for wrong in [
            format!("forms/{id}"),
            format!("tenants{id}"),
            "tenants/acme".to_owned(),
            String::new(),
        ] {
            assert_eq!(
                parse_resource_name::<TenantId>(&mut violations, "name", &wrong, "tenants"),
                None,
                "{wrong}"
            );
        }
        assert_eq!(violations.violations().len(), 4);
        assert_eq!(
            violations.violations()[0].1,
            "must be a resource name, tenants/{uuid}"
        );
    }

    #[test]
    fn etags_are_versions_and_may_be_left_out() {
        let mut violations = FieldViolations::new();
        assert_eq!(expected_version(&mut violations, "etag", &etag(7)), Some(7));
        assert_eq!(expected_version(&mut violations, "etag", ""), None);
        assert!(violations.is_empty());
        assert_eq!(expected_version(&mut violations, "etag", "W/\"7\""), None);
        assert_eq!(violations.violations()[0].0, "etag");
    }

    #[test]
    fn mask_paths_accept_both_cases() {
        let mask = pbjson_types::FieldMask {
            paths: vec!["displayName".into(), "rate_limits".into(), "plan".into()],
        };
        assert_eq!(
            mask_paths(Some(&mask)),
            ["display_name", "rate_limits", "plan"]
        );
        assert!(mask_paths(None).is_empty());
    }

    #[test]
    fn enum_fields_refuse_unknown_and_unwanted_values() {
        #[derive(Debug, PartialEq)]
        enum Colour {
            Red,
        }
        let domain = |value: proto::formflow::tenant::v1::Plan| match value {
            proto::formflow::tenant::v1::Plan::Free => Some(Colour::Red),
            _ => None,
        };
        let mut violations = FieldViolations::new();
        assert_eq!(
            enum_field(&mut violations, "plan", 1, domain),
            Some(Colour::Red)
        );
        assert_eq!(enum_filter(&mut violations, "plan", 0, domain), None);
        assert!(violations.is_empty());
        assert_eq!(enum_field(&mut violations, "plan", 0, domain), None);
        assert_eq!(enum_field(&mut violations, "plan", 99, domain), None);
        assert_eq!(violations.violations().len(), 2);
    }

    proptest! {
        #[test]
        fn parsing_names_never_panics(name in "\\PC{0,80}") {
            let _ = parse_resource_name::<TenantId>(&mut FieldViolations::new(), "name", &name, "tenants");
        }
    }
}
