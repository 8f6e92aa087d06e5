//! The hosted form page: a published form as accessible HTML that works without JavaScript
//! (a plain `application/x-www-form-urlencoded` POST), with a little script that applies
//! conditional logic as the submitter answers. Templates are minijinja's, HTML-escaped.

use std::sync::LazyLock;

use minijinja::Environment;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{Field, FieldKind, Form, FormVersion, ViewId};

/// Name of the honeypot input: people leave it empty, robots fill it.
pub const HONEYPOT: &str = "website";
/// Name of the start token input.
pub const START_TOKEN: &str = "_start_token";
/// Media type of the pages.
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("layout.html")),
        ("form.html", include_str!("form.html")),
        ("done.html", include_str!("done.html")),
    ] {
        environment
            .add_template(name, source)
            .expect("the page templates are valid");
    }
    environment
});

/// A form as posted: its values in order, repeated names kept.
#[derive(Debug, Clone, Default)]
pub struct Posted {
    values: Vec<(String, String)>,
}

impl Posted {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Posted {
        Posted {
            values: url::form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.values
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn first(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    /// The start token sent back, if any.
    pub fn start_token(&self) -> Option<&str> {
        self.first(START_TOKEN).filter(|token| !token.is_empty())
    }

    /// Whether the honeypot was filled.
    pub fn honeypot_filled(&self) -> bool {
        self.first(HONEYPOT).is_some_and(|value| !value.is_empty())
    }

    /// The answers to `fields`, as a submission's data: a list for MULTI_SELECT, `true` for a
    /// ticked CHECKBOX, a `datetime-local` value taken as UTC, text for the rest (which the
    /// field's lossless conversions then check). Other names are left out.
    pub fn answers(&self, fields: &[Field]) -> Map<String, Value> {
        let mut data = Map::new();
        for field in fields.iter().filter(|field| field.kind.is_input()) {
            let id = field.id.as_str();
            let answer = match field.kind {
                FieldKind::MultiSelect => {
                    let chosen: Vec<Value> = self.all(id).map(Value::from).collect();
                    (!chosen.is_empty()).then_some(Value::Array(chosen))
                }
                FieldKind::Checkbox => self.first(id).map(|_| Value::Bool(true)),
                FieldKind::DateTime => self.first(id).map(|text| {
                    let local = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
                        .or_else(|_| {
                            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                        });
                    match local {
                        Ok(local) => Value::from(local.and_utc().to_rfc3339()),
                        Err(_) => Value::from(text),
                    }
                }),
                _ => self.first(id).map(Value::from),
            };
            if let Some(answer) = answer {
                data.insert(id.to_owned(), answer);
            }
        }
        data
    }
}

/// A problem shown on the page: of a field, or of the whole form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field, when it is one field's.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

#[derive(Serialize)]
struct PageOption {
    value: String,
    label: String,
    checked: bool,
}

#[derive(Serialize)]
struct PageField {
    id: String,
    kind: &'static str,
    input_type: &'static str,
    label: String,
    help: String,
    placeholder: String,
    required: bool,
    value: String,
    options: Vec<PageOption>,
    error: Option<String>,
    visible_when: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
    step: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Section {
    id: String,
    title: String,
    help: String,
    visible_when: Option<String>,
    fields: Vec<PageField>,
}

#[derive(Serialize)]
struct PageProblem {
    field: Option<String>,
    label: String,
    message: String,
}

/// The page of `version`, with `token` as its start token; after a refused post, with what
/// was posted and each problem next to its field.
pub fn render_form(
    form: &Form,
    version: &FormVersion,
    accepting: bool,
    token: ViewId,
    posted: Option<&Posted>,
    problems: &[Problem],
) -> String {
    let mut sections = vec![Section::default()];
    for field in &version.definition.fields {
        if field.kind == FieldKind::Section {
            sections.push(Section {
                id: field.id.to_string(),
                title: field.label.clone(),
                help: field.help_text.clone(),
                visible_when: condition_json(field),
                fields: Vec::new(),
            });
            continue;
        }
        let error = problems
            .iter()
            .find(|problem| problem.field.as_deref() == Some(field.id.as_str()))
            .map(|problem| problem.message.clone());
        let page_field = page_field(field, posted, error);
        sections
            .last_mut()
            .expect("there is always a section")
            .fields
            .push(page_field);
    }
    let label_of = |id: &str| {
        version
            .definition
            .fields
            .iter()
            .find(|field| field.id.as_str() == id)
            .map_or_else(|| id.to_owned(), |field| field.label.clone())
    };
    let problems: Vec<PageProblem> = problems
        .iter()
        .map(|problem| PageProblem {
            field: problem.field.clone(),
            label: problem.field.as_deref().map(label_of).unwrap_or_default(),
            message: problem.message.clone(),
        })
        .collect();
    TEMPLATES
        .get_template("form.html")
        .and_then(|template| {
            template.render(minijinja::context! {
                title => version.definition.title,
                description => version.definition.description,
                accepting => accepting,
                start_token => token.to_string(),
                sections => sections,
                problems => problems,
                slug => form.slug.as_str(),
            })
        })
        .expect("the form page renders")
}

/// The page shown after an accepted submission.
pub fn render_done(form: &Form, version: &FormVersion) -> String {
    let message = match form.settings.confirmation_message.as_str() {
        "" => "Thank you! Your answers were recorded.",
        message => message,
    };
    TEMPLATES
        .get_template("done.html")
        .and_then(|template| {
            template.render(minijinja::context! {
                title => version.definition.title,
                message => message,
                redirect_url => form.settings.redirect_url,
            })
        })
        .expect("the done page renders")
}

fn condition_json(field: &Field) -> Option<String> {
    field
        .visible_when
        .as_ref()
        .map(|condition| serde_json::to_string(condition).expect("a condition is JSON"))
}

fn page_field(field: &Field, posted: Option<&Posted>, error: Option<String>) -> PageField {
    let (kind, input_type, step) = match field.kind {
        FieldKind::Text => ("text", "text", None),
        FieldKind::TextArea => ("textarea", "text", None),
        FieldKind::Email => ("email", "email", None),
        FieldKind::Url => ("url", "url", None),
        FieldKind::Phone => ("phone", "tel", None),
        FieldKind::Number => ("number", "number", Some("any")),
        FieldKind::Integer => ("integer", "number", Some("1")),
        FieldKind::Select => ("select", "text", None),
        FieldKind::Radio => ("radio", "radio", None),
        FieldKind::MultiSelect => ("multi", "checkbox", None),
        FieldKind::Checkbox => ("checkbox", "checkbox", None),
        FieldKind::Date => ("date", "date", None),
        FieldKind::DateTime => ("datetime", "datetime-local", None),
        FieldKind::Rating => ("rating", "radio", None),
        FieldKind::Hidden => ("hidden", "hidden", None),
        FieldKind::Section => ("section", "text", None),
    };
    // What the input shows: what was posted, else the default.
    let posted_values: Vec<String> = posted
        .map(|posted| posted.all(field.id.as_str()).map(str::to_owned).collect())
        .unwrap_or_default();
    let shown: Vec<String> = match (posted, &field.default) {
        (Some(_), _) => posted_values,
        (None, Some(Value::Array(values))) => values.iter().map(text_of).collect(),
        (None, Some(value)) => vec![text_of(value)],
        (None, None) => Vec::new(),
    };
    let choices: Vec<(String, String)> = if field.kind == FieldKind::Rating {
        (1..=field.rating_scale())
            .map(|n| (n.to_string(), n.to_string()))
            .collect()
    } else {
        field
            .choices
            .iter()
            .map(|choice| (choice.value.clone(), choice.label.clone()))
            .collect()
    };
    let value = match field.kind {
        FieldKind::Checkbox => {
            if shown.iter().any(|value| value == "true") {
                "true".to_owned()
            } else {
                String::new()
            }
        }
        FieldKind::DateTime => shown
            .first()
            .map(|text| {
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(|time| time.naive_utc().format("%Y-%m-%dT%H:%M").to_string())
                    .unwrap_or_else(|_| text.clone())
            })
            .unwrap_or_default(),
        _ => shown.first().cloned().unwrap_or_default(),
    };
    let numeric = matches!(field.kind, FieldKind::Number | FieldKind::Integer);
    PageField {
        id: field.id.to_string(),
        kind,
        input_type,
        label: field.label.clone(),
        help: field.help_text.clone(),
        placeholder: field.placeholder.clone(),
        required: field.required,
        options: choices
            .into_iter()
            .map(|(value, label)| PageOption {
                checked: shown.contains(&value),
                value,
                label,
            })
            .collect(),
        value,
        error,
        visible_when: condition_json(field),
        min: field.constraints.min.filter(|_| numeric),
        max: field.constraints.max.filter(|_| numeric),
        step,
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::FieldId;

    fn field(id: &str, kind: FieldKind) -> Field {
        Field::new(FieldId::parse(id).unwrap(), kind, format!("The {id}"))
    }

    #[test]
    fn posted_forms_become_answers_of_each_kind() {
        let posted = Posted::parse(
            b"name=Ada+L%C3%B6w&plans=a&plans=b&agree=true&when=2026-12-05T10%3A30&seats=3&empty=&other=x&website=",
        );
        let fields = [
            field("name", FieldKind::Text),
            field("plans", FieldKind::MultiSelect),
            field("agree", FieldKind::Checkbox),
            field("unticked", FieldKind::Checkbox),
            field("when", FieldKind::DateTime),
            field("seats", FieldKind::Integer),
            field("empty", FieldKind::Text),
            field("none", FieldKind::MultiSelect),
        ];
        assert_eq!(
            Value::Object(posted.answers(&fields)),
            json!({
                "name": "Ada Löw",
                "plans": ["a", "b"],
                "agree": true,
                "when": "2026-12-05T10:30:00+00:00",
                "seats": "3",
                "empty": "",
            })
        );
        assert!(!posted.honeypot_filled());
        assert!(Posted::parse(b"website=x").honeypot_filled());
        assert_eq!(
            Posted::parse(b"_start_token=abc").start_token(),
            Some("abc")
        );
    }
}
