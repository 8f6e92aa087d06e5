//! The JSON Schema (draft 2020-12) a submission's data to a version satisfies: each field's
//! type and constraints. Conditional logic is left out: a field that logic may hide is never
//! listed as required.

use serde_json::{Map, Value, json};

use super::definition::Definition;
use super::field::{Field, FieldKind, HIDDEN_MAX, TEXT_MAX, TEXTAREA_MAX};

/// The schema of the answers to `definition`, a JSON object.
pub fn json_schema(definition: &Definition) -> Map<String, Value> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut section_conditional = false;
    for field in &definition.fields {
        if field.kind == FieldKind::Section {
            section_conditional = field.visible_when.is_some();
            continue;
        }
        properties.insert(field.id.to_string(), field_schema(field));
        let always_shown = field.visible_when.is_none() && !section_conditional;
        if field.required && always_shown {
            required.push(Value::from(field.id.as_str()));
        }
    }
    Map::from_iter([
        (
            "$schema".to_owned(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        ),
        ("title".to_owned(), json!(definition.title)),
        ("description".to_owned(), json!(definition.description)),
        ("type".to_owned(), json!("object")),
        ("additionalProperties".to_owned(), json!(false)),
        ("properties".to_owned(), Value::Object(properties)),
        ("required".to_owned(), Value::Array(required)),
    ])
}

fn field_schema(field: &Field) -> Value {
    let constraints = &field.constraints;
    let options: Vec<&str> = field
        .choices
        .iter()
        .map(|choice| choice.value.as_str())
        .collect();
    let mut schema = match field.kind {
        FieldKind::Text | FieldKind::TextArea => {
            let default_max = if field.kind == FieldKind::Text {
                TEXT_MAX
            } else {
                TEXTAREA_MAX
            };
            let mut schema = json!({
                "type": "string",
                "maxLength": constraints.max_length.unwrap_or(default_max),
            });
            if let Some(min) = constraints.min_length {
                schema["minLength"] = json!(min);
            }
            if let Some(pattern) = &constraints.pattern {
                schema["pattern"] = json!(format!("^(?:{})$", pattern.as_str()));
            }
            schema
        }
        FieldKind::Email => json!({"type": "string", "format": "email"}),
        FieldKind::Number | FieldKind::Integer => {
            let kind = if field.kind == FieldKind::Number {
                "number"
            } else {
                "integer"
            };
            let mut schema = json!({"type": kind});
            if let Some(min) = constraints.min {
                schema["minimum"] = json!(min);
            }
            if let Some(max) = constraints.max {
                schema["maximum"] = json!(max);
            }
            schema
        }
        FieldKind::Phone => json!({"type": "string", "pattern": "^\\+[1-9][0-9]{7,14}$"}),
        FieldKind::Url => json!({"type": "string", "format": "uri", "pattern": "^https?://"}),
        FieldKind::Date => json!({"type": "string", "format": "date"}),
        FieldKind::DateTime => json!({"type": "string", "format": "date-time"}),
        FieldKind::Select | FieldKind::Radio => json!({"type": "string", "enum": options}),
        FieldKind::MultiSelect => {
            let mut schema = json!({
                "type": "array",
                "items": {"type": "string", "enum": options},
                "uniqueItems": true,
            });
            if let Some(min) = constraints.min_selected {
                schema["minItems"] = json!(min);
            }
            if let Some(max) = constraints.max_selected {
                schema["maxItems"] = json!(max);
            }
            schema
        }
        FieldKind::Checkbox if field.required => json!({"type": "boolean", "const": true}),
        FieldKind::Checkbox => json!({"type": "boolean"}),
        FieldKind::Rating => {
            json!({"type": "integer", "minimum": 1, "maximum": field.rating_scale()})
        }
        FieldKind::Hidden => json!({"type": "string", "maxLength": HIDDEN_MAX}),
        FieldKind::Section => json!({}),
    };
    schema["title"] = json!(field.label);
    if !field.help_text.is_empty() {
        schema["description"] = json!(field.help_text);
    }
    if let Some(default) = &field.default {
        schema["default"] = default.clone();
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::condition::{Condition, Operator};
    use crate::domain::field::{Choice, Constraints, FieldId};

    fn field(id: &str, kind: FieldKind, required: bool) -> Field {
        Field {
            id: FieldId::parse(id).unwrap(),
            kind,
            label: id.to_uppercase(),
            help_text: String::new(),
            placeholder: String::new(),
            required,
            constraints: Constraints::default(),
            error_message: String::new(),
            choices: vec![Choice {
                value: "a".into(),
                label: "A".into(),
            }],
            default: None,
            visible_when: None,
            required_when: None,
        }
    }

    #[test]
    fn only_fields_always_shown_are_required() {
        let mut section = field("more", FieldKind::Section, false);
        section.visible_when = Some(Condition {
            field_id: FieldId::parse("choice").unwrap(),
            operator: Operator::Answered,
            value: None,
        });
        let definition = Definition {
            title: "T".into(),
            description: String::new(),
            fields: vec![
                field("choice", FieldKind::Select, true),
                field("agree", FieldKind::Checkbox, true),
                section,
                field("detail", FieldKind::Text, true),
            ],
        };
        let schema = json_schema(&definition);
        assert_eq!(schema["required"], json!(["choice", "agree"]));
        assert_eq!(schema["properties"]["choice"]["enum"], json!(["a"]));
        assert_eq!(schema["properties"]["agree"]["const"], json!(true));
        assert_eq!(schema["properties"]["detail"]["maxLength"], json!(1000));
        assert!(schema["properties"].get("more").is_none());
        assert_eq!(schema["additionalProperties"], json!(false));
    }
}
