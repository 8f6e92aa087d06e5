//! What a form asks: its title, description and fields, and the rules that bind its fields
//! together: unique ids, logic that only looks back at fields placed before, a default that
//! is a valid answer.

use serde::{Deserialize, Serialize};

use super::field::{Field, FieldKind};

/// Most fields of a form (sections included).
pub const MAX_FIELDS: usize = 200;

/// A form's content: its draft, or a published version's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Plain text shown above the fields, at most 2,000 characters.
    pub description: String,
    /// Fields in display order, checked by [`check_definition`].
    pub fields: Vec<Field>,
}

/// Checks the fields of a form together, each already valid on its own, and normalises their
/// conditions' values; or lists every problem as (`fields[i].…` path, reason).
pub fn check_definition(mut fields: Vec<Field>) -> Result<Vec<Field>, Vec<(String, String)>> {
    let mut problems = Vec::new();
    if fields.len() > MAX_FIELDS {
        problems.push((
            "fields".to_owned(),
            format!("must have at most {MAX_FIELDS} fields"),
        ));
        return Err(problems);
    }
    for index in 0..fields.len() {
        let (before, rest) = fields.split_at_mut(index);
        let field = &mut rest[0];
        let path = format!("fields[{index}]");
        if before.iter().any(|earlier| earlier.id == field.id) {
            problems.push((format!("{path}.id"), format!("{} is used twice", field.id)));
        }
        if let Some(default) = &field.default {
            match field.check_answer(default) {
                Ok(normalised) => field.default = Some(normalised),
                Err(reason) => problems.push((format!("{path}.default_value"), reason)),
            }
        }
        for (name, condition) in [
            ("visible_when", &mut field.visible_when),
            ("required_when", &mut field.required_when),
        ] {
            let Some(given) = condition else { continue };
            let tested = before.iter().find(|earlier| earlier.id == given.field_id);
            let fitted = match tested {
                Some(tested) => given.fit(tested),
                None if field.id == given.field_id => {
                    Err("cannot test the field's own answer".to_owned())
                }
                None => Err(format!(
                    "{} is not a field placed before this one",
                    given.field_id
                )),
            };
            match fitted {
                Ok(fitted) => *given = fitted,
                Err(reason) => problems.push((format!("{path}.{name}.field_id"), reason)),
            }
        }
        if field.kind == FieldKind::Section && field.required_when.is_some() {
            problems.push((
                format!("{path}.required_when"),
                "a section takes no answer".to_owned(),
            ));
        }
    }
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::condition::{Condition, Operator};
    use crate::domain::field::{Choice, FieldId};

    fn field(id: &str, kind: FieldKind) -> Field {
        Field {
            choices: if kind.has_choices() {
                vec![Choice {
                    value: "yes".into(),
                    label: "Yes".into(),
                }]
            } else {
                Vec::new()
            },
            ..Field::new(FieldId::parse(id).unwrap(), kind, id)
        }
    }

    fn when(field_id: &str, operator: Operator, value: Option<serde_json::Value>) -> Condition {
        Condition {
            field_id: FieldId::parse(field_id).unwrap(),
            operator,
            value,
        }
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let mut later = field("later", FieldKind::Text);
        later.visible_when = Some(when("after", Operator::Answered, None));
        let mut own = field("own", FieldKind::Text);
        own.required_when = Some(when("own", Operator::Answered, None));
        let mut bad_default = field("count", FieldKind::Integer);
        bad_default.default = Some(json!("many"));
        let mut bad_value = field("choice_logic", FieldKind::Text);
        bad_value.visible_when = Some(when("plan", Operator::Equals, Some(json!("no"))));
        let fields = vec![
            field("plan", FieldKind::Select),
            later,
            own,
            field("plan", FieldKind::Text),
            bad_default,
            bad_value,
            field("after", FieldKind::Text),
        ];
        let problems = check_definition(fields).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "fields[1].visible_when.field_id",
                "fields[2].required_when.field_id",
                "fields[3].id",
                "fields[4].default_value",
                "fields[5].visible_when.field_id",
            ]
        );
    }

    #[test]
    fn conditions_and_defaults_are_normalised() {
        let mut seats = field("seats", FieldKind::Integer);
        seats.default = Some(json!("2"));
        let mut note = field("note", FieldKind::Text);
        note.visible_when = Some(when("seats", Operator::GreaterThan, Some(json!("10"))));
        let checked = check_definition(vec![seats, note]).unwrap();
        assert_eq!(checked[0].default, Some(json!(2)));
        assert_eq!(
            checked[1].visible_when.as_ref().unwrap().value,
            Some(json!(10))
        );
    }

    #[test]
    fn too_many_fields_are_refused() {
        let fields = (0..=MAX_FIELDS)
            .map(|index| field(&format!("f{index}"), FieldKind::Text))
            .collect();
        assert_eq!(check_definition(fields).unwrap_err()[0].0, "fields");
    }
}
