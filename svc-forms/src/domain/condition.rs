//! Conditional logic: whether a field is shown or required depends on the answer to a field
//! placed before it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::field::{Field, FieldId, FieldKind};

/// How a condition tests an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// The answer equals the value.
    Equals,
    /// The field is unanswered or its answer differs from the value.
    NotEquals,
    /// A MULTI_SELECT answer includes the value.
    Contains,
    /// The answer is greater than the value.
    GreaterThan,
    /// The answer is less than the value.
    LessThan,
    /// The field has an answer.
    Answered,
    /// The field has no answer.
    NotAnswered,
}

impl Operator {
    /// Whether it compares with a value.
    pub fn takes_value(self) -> bool {
        !matches!(self, Operator::Answered | Operator::NotAnswered)
    }
}

/// A condition on the answer to an earlier field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// The field tested.
    pub field_id: FieldId,
    /// How.
    pub operator: Operator,
    /// Compared with; `None` for ANSWERED and NOT_ANSWERED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl Condition {
    /// Whether the condition can be evaluated on `tested`'s answers, and its value normalised
    /// as an answer to `tested` (so `"3"` compares as `3`); why not otherwise.
    pub fn fit(&self, tested: &Field) -> Result<Condition, String> {
        if !tested.kind.is_input() {
            return Err(format!("{} is a section, which has no answer", tested.id));
        }
        let value = match (self.operator, &self.value) {
            (Operator::Answered | Operator::NotAnswered, None) => None,
            (Operator::Answered | Operator::NotAnswered, Some(_)) => {
                return Err("takes no value".to_owned());
            }
            (_, None) => return Err("needs a value".to_owned()),
            (Operator::Contains, Some(value)) => {
                if tested.kind != FieldKind::MultiSelect {
                    return Err("CONTAINS tests MULTI_SELECT fields only".to_owned());
                }
                let option = tested
                    .check_answer(value)
                    .map_err(|reason| format!("value {reason}"))?;
                match option {
                    Value::Array(mut items) if items.len() == 1 => items.pop(),
                    _ => return Err("value must be one of the field's options".to_owned()),
                }
            }
            (Operator::GreaterThan | Operator::LessThan, Some(_)) if !tested.kind.is_ordered() => {
                return Err(
                    "GREATER_THAN and LESS_THAN test NUMBER, INTEGER, RATING, DATE and DATE_TIME fields only"
                        .to_owned(),
                );
            }
            (_, Some(value)) => Some(
                tested
                    .check_answer(value)
                    .map_err(|reason| format!("value {reason}"))?,
            ),
        };
        Ok(Condition {
            field_id: self.field_id.clone(),
            operator: self.operator,
            value,
        })
    }

    /// Whether it holds, given the answers accepted so far (normalised, by field id).
    pub fn holds(&self, answers: &HashMap<&str, Value>) -> bool {
        let answer = answers.get(self.field_id.as_str());
        match (self.operator, answer, &self.value) {
            (Operator::Answered, answer, _) => answer.is_some(),
            (Operator::NotAnswered, answer, _) => answer.is_none(),
            (Operator::Equals, Some(answer), Some(value)) => same(answer, value),
            (Operator::NotEquals, Some(answer), Some(value)) => !same(answer, value),
            (Operator::NotEquals, None, _) => true,
            (Operator::Contains, Some(Value::Array(items)), Some(value)) => items.contains(value),
            (Operator::GreaterThan, Some(answer), Some(value)) => {
                compare(answer, value) == Some(std::cmp::Ordering::Greater)
            }
            (Operator::LessThan, Some(answer), Some(value)) => {
                compare(answer, value) == Some(std::cmp::Ordering::Less)
            }
            // A value the operator needs is missing only in a condition `fit` never checked.
            (
                Operator::Equals
                | Operator::NotEquals
                | Operator::Contains
                | Operator::GreaterThan
                | Operator::LessThan,
                _,
                _,
            ) => false,
        }
    }
}

/// Equality of normalised answers: numbers by value (`7` equals `7.0`).
fn same(answer: &Value, value: &Value) -> bool {
    match (answer.as_f64(), value.as_f64()) {
        (Some(answer), Some(value)) => answer == value,
        _ => answer == value,
    }
}

/// Order of normalised answers: numbers by value, dates as written (`YYYY-MM-DD` sorts), times
/// as instants.
fn compare(answer: &Value, value: &Value) -> Option<std::cmp::Ordering> {
    if let (Some(answer), Some(value)) = (answer.as_f64(), value.as_f64()) {
        return answer.partial_cmp(&value);
    }
    let (answer, value) = (answer.as_str()?, value.as_str()?);
    match (
        chrono::DateTime::parse_from_rfc3339(answer),
        chrono::DateTime::parse_from_rfc3339(value),
    ) {
        (Ok(answer), Ok(value)) => Some(answer.cmp(&value)),
        _ => Some(answer.cmp(value)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::field::Choice;

    fn tested(kind: FieldKind) -> Field {
        Field {
            choices: ["a", "b"]
                .map(|value| Choice {
                    value: value.into(),
                    label: value.into(),
                })
                .to_vec(),
            ..Field::new(FieldId::parse("tested").unwrap(), kind, "Tested")
        }
    }

    fn condition(operator: Operator, value: Option<Value>) -> Condition {
        Condition {
            field_id: FieldId::parse("tested").unwrap(),
            operator,
            value,
        }
    }

    /// One row per operator: the condition, answers under which it holds, answers under
    /// which it does not (`None`: unanswered).
    #[test]
    fn each_operator_holds_exactly_when_it_should() {
        type Case = (
            FieldKind,
            Operator,
            Option<Value>,
            Vec<Option<Value>>,
            Vec<Option<Value>>,
        );
        let cases: Vec<Case> = vec![
            (
                FieldKind::Select,
                Operator::Equals,
                Some(json!("a")),
                vec![Some(json!("a"))],
                vec![Some(json!("b")), None],
            ),
            (
                FieldKind::Select,
                Operator::NotEquals,
                Some(json!("a")),
                vec![Some(json!("b")), None],
                vec![Some(json!("a"))],
            ),
            (
                FieldKind::MultiSelect,
                Operator::Contains,
                Some(json!("a")),
                vec![Some(json!(["b", "a"]))],
                vec![Some(json!(["b"])), None],
            ),
            (
                FieldKind::Integer,
                Operator::GreaterThan,
                Some(json!("3")),
                vec![Some(json!(4))],
                vec![Some(json!(3)), None],
            ),
            (
                FieldKind::Number,
                Operator::LessThan,
                Some(json!(2.5)),
                vec![Some(json!(2.0))],
                vec![Some(json!(2.5)), None],
            ),
            (
                FieldKind::Date,
                Operator::GreaterThan,
                Some(json!("2026-01-31")),
                vec![Some(json!("2026-02-01"))],
                vec![Some(json!("2025-12-31"))],
            ),
            (
                FieldKind::DateTime,
                Operator::LessThan,
                Some(json!("2026-01-01T00:00:00+00:00")),
                vec![Some(json!("2026-01-01T00:30:00+01:00"))],
                vec![Some(json!("2026-01-01T00:30:00+00:00"))],
            ),
            (
                FieldKind::Text,
                Operator::Answered,
                None,
                vec![Some(json!("x"))],
                vec![None],
            ),
            (
                FieldKind::Checkbox,
                Operator::NotAnswered,
                None,
                vec![None],
                vec![Some(json!(false))],
            ),
            (
                FieldKind::Checkbox,
                Operator::Equals,
                Some(json!("on")),
                vec![Some(json!(true))],
                vec![Some(json!(false))],
            ),
        ];
        for (kind, operator, value, holding, failing) in cases {
            let fitted = condition(operator, value.clone())
                .fit(&tested(kind))
                .unwrap();
            let answers = |answer: &Option<Value>| -> HashMap<&str, Value> {
                answer
                    .iter()
                    .map(|answer| ("tested", answer.clone()))
                    .collect()
            };
            for answer in &holding {
                assert!(
                    fitted.holds(&answers(answer)),
                    "{operator:?} {value:?} on {answer:?}"
                );
            }
            for answer in &failing {
                assert!(
                    !fitted.holds(&answers(answer)),
                    "{operator:?} {value:?} held on {answer:?}"
                );
            }
        }
    }

    #[test]
    fn conditions_that_cannot_apply_are_refused() {
        let refused = [
            (FieldKind::Text, Operator::Contains, Some(json!("a"))),
            (FieldKind::Text, Operator::GreaterThan, Some(json!("a"))),
            (FieldKind::Select, Operator::Equals, Some(json!("c"))),
            (FieldKind::Select, Operator::Equals, None),
            (FieldKind::Select, Operator::Answered, Some(json!("a"))),
            (FieldKind::Section, Operator::Answered, None),
            (FieldKind::Integer, Operator::Equals, Some(json!("many"))),
        ];
        for (kind, operator, value) in refused {
            assert!(
                condition(operator, value.clone())
                    .fit(&tested(kind))
                    .is_err(),
                "{kind:?} {operator:?} {value:?}"
            );
        }
    }
}
