//! A submission's data checked against the fields of the version it answers: in field order,
//! so conditions see the answers before them; fields hidden by logic (or inside a hidden
//! section) are ignored, whatever was sent for them; defaults fill what is left unanswered;
//! keys that name no field are refused.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::field::{Field, FieldId, FieldKind};

/// Most bytes of a submission's data, as JSON.
pub const MAX_DATA_BYTES: usize = 256 * 1024;

/// The accepted answers of a submission, normalised, in field order: only visible fields
/// with an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers(Vec<(FieldId, Value)>);

impl Answers {
    /// The answers in field order.
    pub fn iter(&self) -> impl Iterator<Item = (&FieldId, &Value)> {
        self.0.iter().map(|(id, value)| (id, value))
    }

    /// The answers as a JSON object (what is stored and returned).
    pub fn to_json(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(id, value)| (id.as_str().to_owned(), value.clone()))
            .collect()
    }

    /// The answer to `field`, if it has one.
    pub fn get(&self, field: &FieldId) -> Option<&Value> {
        self.0
            .iter()
            .find(|(id, _)| id == field)
            .map(|(_, value)| value)
    }
}

/// Checks `data` against `fields`; the accepted answers, or every problem as (field id or
/// key, reason).
pub fn check_answers(
    fields: &[Field],
    data: &Map<String, Value>,
) -> Result<Answers, Vec<(String, String)>> {
    let mut unknown: Vec<&String> = data
        .keys()
        .filter(|key| {
            !fields
                .iter()
                .any(|field| field.kind.is_input() && field.id.as_str() == key.as_str())
        })
        .collect();
    unknown.sort();
    let mut problems: Vec<(String, String)> = unknown
        .into_iter()
        .map(|key| (key.clone(), "is not a field of this form".to_owned()))
        .collect();
    let mut accepted: HashMap<&str, Value> = HashMap::new();
    let mut answers = Vec::new();
    let mut section_visible = true;
    for field in fields {
        let visible = field
            .visible_when
            .as_ref()
            .is_none_or(|condition| condition.holds(&accepted));
        if field.kind == FieldKind::Section {
            section_visible = visible;
            continue;
        }
        if !(visible && section_visible) {
            continue;
        }
        let given = data.get(field.id.as_str()).filter(|value| !is_blank(value));
        let required = field.required
            || field
                .required_when
                .as_ref()
                .is_some_and(|condition| condition.holds(&accepted));
        let answer = match given.or(field.default.as_ref()) {
            None => None,
            Some(value) => match field.check_answer(value) {
                Ok(answer) => Some(answer),
                Err(reason) => {
                    problems.push((field.id.to_string(), reason));
                    continue;
                }
            },
        };
        let answered = match &answer {
            None => false,
            // A required box must be ticked; a required multiple choice needs one choice.
            Some(Value::Bool(checked)) => *checked || !required,
            Some(Value::Array(items)) => !items.is_empty() || !required,
            Some(_) => true,
        };
        if required && !answered {
            problems.push((field.id.to_string(), "is required".to_owned()));
            continue;
        }
        if let Some(answer) = answer {
            accepted.insert(field.id.as_str(), answer.clone());
            answers.push((field.id.clone(), answer));
        }
    }
    if problems.is_empty() {
        Ok(Answers(answers))
    } else {
        Err(problems)
    }
}

/// What a form posts for a field left empty.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.trim().is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::condition::{Condition, Operator};
    use crate::domain::field::Choice;

    fn field(id: &str, kind: FieldKind) -> Field {
        Field {
            choices: ["bug", "question"]
                .map(|value| Choice {
                    value: value.into(),
                    label: value.into(),
                })
                .to_vec(),
            ..Field::new(FieldId::parse(id).unwrap(), kind, id)
        }
    }

    fn equals(field_id: &str, value: Value) -> Option<Condition> {
        Some(Condition {
            field_id: FieldId::parse(field_id).unwrap(),
            operator: Operator::Equals,
            value: Some(value),
        })
    }

    /// A support form: the kind of request, then a section about bugs shown only for bugs,
    /// whose steps are required, and an email required only for questions.
    fn support_form() -> Vec<Field> {
        let mut kind = field("kind", FieldKind::Radio);
        kind.required = true;
        let mut bug_section = field("bug_details", FieldKind::Section);
        bug_section.visible_when = equals("kind", json!("bug"));
        let mut steps = field("steps", FieldKind::TextArea);
        steps.required = true;
        let mut contact = field("contact", FieldKind::Section);
        contact.visible_when = None;
        let mut email = field("email", FieldKind::Email);
        email.required_when = equals("kind", json!("question"));
        let mut terms = field("terms", FieldKind::Checkbox);
        terms.required = true;
        vec![kind, bug_section, steps, contact, email, terms]
    }

    fn data(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn problem_fields(result: Result<Answers, Vec<(String, String)>>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|(field, _)| field)
            .collect()
    }

    #[test]
    fn a_hidden_section_hides_its_fields_and_their_answers_are_ignored() {
        let answers = check_answers(
            &support_form(),
            &data(
                json!({"kind": "question", "steps": "ignored", "email": "a@b.co", "terms": true}),
            ),
        )
        .unwrap();
        assert_eq!(
            answers.to_json(),
            data(json!({"kind": "question", "email": "a@b.co", "terms": true}))
        );
    }

    #[test]
    fn a_shown_section_requires_its_required_fields() {
        let result = check_answers(
            &support_form(),
            &data(json!({"kind": "bug", "terms": true})),
        );
        assert_eq!(problem_fields(result), ["steps"]);
        let answers = check_answers(
            &support_form(),
            &data(json!({"kind": "bug", "steps": "1. open", "terms": "on"})),
        )
        .unwrap();
        assert_eq!(
            answers.get(&FieldId::parse("terms").unwrap()),
            Some(&json!(true))
        );
    }

    #[test]
    fn required_when_applies_only_when_its_condition_holds() {
        let result = check_answers(
            &support_form(),
            &data(json!({"kind": "question", "terms": true})),
        );
        assert_eq!(problem_fields(result), ["email"]);
        assert!(
            check_answers(
                &support_form(),
                &data(json!({"kind": "bug", "steps": "x", "terms": true}))
            )
            .is_ok()
        );
    }

    #[test]
    fn every_problem_is_reported_unknown_keys_first() {
        let result = check_answers(
            &support_form(),
            &data(json!({"kind": "feature", "nope": 1, "bug_details": "x", "terms": false})),
        );
        assert_eq!(
            problem_fields(result),
            ["bug_details", "nope", "kind", "terms"]
        );
    }

    #[test]
    fn blanks_count_as_unanswered_and_defaults_fill_them() {
        let mut seats = field("seats", FieldKind::Integer);
        seats.default = Some(json!(1));
        let mut name = field("name", FieldKind::Text);
        name.required = true;
        let result = check_answers(&[seats.clone(), name.clone()], &data(json!({"name": "  "})));
        assert_eq!(problem_fields(result), ["name"]);
        let answers =
            check_answers(&[seats, name], &data(json!({"seats": null, "name": "Ada"}))).unwrap();
        assert_eq!(answers.to_json(), data(json!({"seats": 1, "name": "Ada"})));
    }
}
