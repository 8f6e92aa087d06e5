//! A form's field: its kind, label, constraints and choices, and the one rule that matters
//! most: which answers it accepts ([`Field::check_answer`]), converting only where nothing is
//! lost (`"42"` for a NUMBER, `"true"` for a CHECKBOX: what an HTML form posts).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::condition::Condition;

/// Longest TEXT answer unless `max_length` says less.
pub const TEXT_MAX: u32 = 1_000;
/// Longest TEXTAREA answer unless `max_length` says less; the most `max_length` may be.
pub const TEXTAREA_MAX: u32 = 10_000;
/// Longest HIDDEN answer.
pub const HIDDEN_MAX: usize = 1_000;
/// Highest RATING scale.
pub const RATING_MAX: u32 = 10;
/// Most choices of a field.
pub const MAX_CHOICES: usize = 200;

/// The key of a field's answer: 1 to 64 characters, a lowercase letter then lowercase letters,
/// digits and underscores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldId(String);

impl FieldId {
    /// Parses a field id.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let mut characters = text.chars();
        let valid = (1..=64).contains(&text.len())
            && characters
                .next()
                .is_some_and(|first| first.is_ascii_lowercase())
            && characters.all(|character| {
                character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_'
            });
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(
                "must be 1 to 64 characters: a lowercase letter, then lowercase letters, digits and underscores",
            )
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FieldId {
    type Error = &'static str;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<FieldId> for String {
    fn from(id: FieldId) -> Self {
        id.0
    }
}

impl fmt::Display for FieldId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// The kind of input of a field, which decides the JSON type of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// Several lines of text.
    TextArea,
    /// An email address.
    Email,
    /// A number.
    Number,
    /// A whole number.
    Integer,
    /// A phone number, stored in E.164 form.
    Phone,
    /// An absolute http(s) URL.
    Url,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A point in time, RFC 3339.
    DateTime,
    /// One choice from a drop-down.
    Select,
    /// One choice from radio buttons.
    Radio,
    /// Several choices.
    MultiSelect,
    /// A yes/no box.
    Checkbox,
    /// An integer from 1 to the scale's maximum.
    Rating,
    /// Set by the page that embeds the form, not shown.
    Hidden,
    /// Starts a section; takes no answer.
    Section,
}

impl FieldKind {
    /// Whether its answer is one of its field's choices.
    pub fn has_choices(self) -> bool {
        matches!(
            self,
            FieldKind::Select | FieldKind::Radio | FieldKind::MultiSelect
        )
    }

    /// Whether it takes an answer.
    pub fn is_input(self) -> bool {
        self != FieldKind::Section
    }

    /// Whether answers of this kind are ordered (for GREATER_THAN and LESS_THAN).
    pub fn is_ordered(self) -> bool {
        matches!(
            self,
            FieldKind::Number
                | FieldKind::Integer
                | FieldKind::Rating
                | FieldKind::Date
                | FieldKind::DateTime
        )
    }

    /// Whether `min_length`, `max_length` and `pattern` apply.
    pub fn has_length(self) -> bool {
        matches!(self, FieldKind::Text | FieldKind::TextArea)
    }

    /// Whether `min` and `max` apply (RATING takes only `max`).
    pub fn has_range(self) -> bool {
        matches!(self, FieldKind::Number | FieldKind::Integer)
    }
}

/// A choice of a SELECT, RADIO or MULTI_SELECT field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// Stored in the answer.
    pub value: String,
    /// Shown.
    pub label: String,
}

/// A regular expression a whole answer must match.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    anchored: regex::Regex,
}

impl Pattern {
    /// Compiles `source` (Rust `regex` syntax, at most 500 characters).
    pub fn parse(source: &str) -> Result<Self, String> {
        if source.chars().count() > 500 {
            return Err("must be at most 500 characters".to_owned());
        }
        let anchored = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|error| format!("is not a valid regular expression: {error}"))?;
        Ok(Self {
            source: source.to_owned(),
            anchored,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `text` matches it whole.
    pub fn matches(&self, text: &str) -> bool {
        self.anchored.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Pattern::parse(&source).map_err(serde::de::Error::custom)
    }
}

/// Constraints on an answer beyond its kind; each applies only to the kinds its comment names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// Fewest characters (TEXT, TEXTAREA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Most characters (TEXT, TEXTAREA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Least value (NUMBER, INTEGER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Greatest value (NUMBER, INTEGER; RATING: the scale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// What the whole answer must match (TEXT, TEXTAREA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Pattern>,
    /// Fewest choices (MULTI_SELECT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_selected: Option<u32>,
    /// Most choices (MULTI_SELECT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_selected: Option<u32>,
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// Key of its answer.
    pub id: FieldId,
    /// Kind of input.
    pub kind: FieldKind,
    /// Shown to the submitter (a section's title).
    pub label: String,
    /// Shown under the label (a section's description).
    #[serde(default)]
    pub help_text: String,
    /// Shown in an empty input.
    #[serde(default)]
    pub placeholder: String,
    /// Whether an answer is required.
    #[serde(default)]
    pub required: bool,
    /// Constraints beyond the kind.
    #[serde(default)]
    pub constraints: Constraints,
    /// Shown when an answer breaks a constraint; empty uses a specific message.
    #[serde(default)]
    pub error_message: String,
    /// Choices of a choice field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    /// Answer used when none is given; a valid answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Shown only when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_when: Option<Condition>,
    /// Required when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_when: Option<Condition>,
}

impl Field {
    /// A field of `kind` with only its id and label: no help, constraints, choices, default
    /// or logic, not required.
    pub fn new(id: FieldId, kind: FieldKind, label: impl Into<String>) -> Field {
        Field {
            id,
            kind,
            label: label.into(),
            help_text: String::new(),
            placeholder: String::new(),
            required: false,
            constraints: Constraints::default(),
            error_message: String::new(),
            choices: Vec::new(),
            default: None,
            visible_when: None,
            required_when: None,
        }
    }

    /// The largest rating of a RATING field.
    pub fn rating_scale(&self) -> u32 {
        self.constraints.max.map_or(5, |max| max as u32)
    }

    /// The answer `value` normalised (`"42"` → `42` for a NUMBER, a phone number in E.164), or
    /// why it is not a valid answer. A required CHECKBOX answered `false` is the caller's
    /// business (it is valid, only not enough).
    pub fn check_answer(&self, value: &Value) -> Result<Value, String> {
        // The API's codec refuses NUL before this; a hosted page's form post arrives as bytes.
        if holds_nul(value) {
            return Err(proto::codec::NUL_REFUSED.to_owned());
        }
        let answer = match self.kind {
            FieldKind::Text | FieldKind::TextArea => self.text(value),
            FieldKind::Email => email(value),
            FieldKind::Number => self.number(value, false),
            FieldKind::Integer => self.number(value, true),
            FieldKind::Phone => phone(value),
            FieldKind::Url => url(value),
            FieldKind::Date => date(value),
            FieldKind::DateTime => date_time(value),
            FieldKind::Select | FieldKind::Radio => self.choice(value),
            FieldKind::MultiSelect => self.choices(value),
            FieldKind::Checkbox => checkbox(value),
            FieldKind::Rating => self.rating(value),
            FieldKind::Hidden => hidden(value),
            FieldKind::Section => Err("a section takes no answer".to_owned()),
        };
        answer.map_err(|reason| {
            if self.error_message.is_empty() {
                reason
            } else {
                self.error_message.clone()
            }
        })
    }

    fn text(&self, value: &Value) -> Result<Value, String> {
        let text = match value {
            Value::String(text) => text.clone(),
            // Protobuf's Struct carries every number as a double: 42 arrives as 42.0 and is
            // still typed as "42".
            Value::Number(number) => match (number.as_i64(), number.as_f64()) {
                (Some(whole), _) => whole.to_string(),
                (None, Some(float)) => float.to_string(),
                (None, None) => number.to_string(),
            },
            _ => return Err("must be text".to_owned()),
        };
        let length = text.chars().count();
        let default_max = if self.kind == FieldKind::Text {
            TEXT_MAX
        } else {
            TEXTAREA_MAX
        };
        let max = self.constraints.max_length.unwrap_or(default_max);
        if length > max as usize {
            return Err(format!("must be at most {max} characters"));
        }
        if let Some(min) = self.constraints.min_length
            && length < min as usize
        {
            return Err(format!("must be at least {min} characters"));
        }
        if let Some(pattern) = &self.constraints.pattern
            && !pattern.matches(&text)
        {
            return Err("does not have the expected format".to_owned());
        }
        Ok(Value::String(text))
    }

    fn number(&self, value: &Value, whole: bool) -> Result<Value, String> {
        let what = if whole { "a whole number" } else { "a number" };
        let number = match value {
            Value::Number(number) => number.as_f64(),
            Value::String(text) => text.trim().parse::<f64>().ok().filter(|number| {
                // Lossless only: "1e400" and "nan" are no numbers.
                number.is_finite()
            }),
            _ => None,
        }
        .ok_or_else(|| format!("must be {what}"))?;
        if whole && number.fract() != 0.0 {
            return Err(format!("must be {what}"));
        }
        if let Some(min) = self.constraints.min
            && number < min
        {
            return Err(format!("must be at least {min}"));
        }
        if let Some(max) = self.constraints.max
            && number > max
        {
            return Err(format!("must be at most {max}"));
        }
        if whole {
            if number.abs() > 9_007_199_254_740_991.0 {
                return Err("is too large".to_owned());
            }
            return Ok(Value::from(number as i64));
        }
        serde_json::Number::from_f64(number)
            .map(Value::Number)
            .ok_or_else(|| format!("must be {what}"))
    }

    fn choice(&self, value: &Value) -> Result<Value, String> {
        match value {
            Value::String(text) if self.choices.iter().any(|choice| choice.value == *text) => {
                Ok(value.clone())
            }
            _ => Err("must be one of the field's options".to_owned()),
        }
    }

    fn choices(&self, value: &Value) -> Result<Value, String> {
        let chosen: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::String(_) => vec![value],
            _ => return Err("must be a list of the field's options".to_owned()),
        };
        let mut picked: Vec<Value> = Vec::with_capacity(chosen.len());
        for item in chosen {
            let item = self.choice(item)?;
            if picked.contains(&item) {
                return Err("must not list an option twice".to_owned());
            }
            picked.push(item);
        }
        if let Some(min) = self.constraints.min_selected
            && picked.len() < min as usize
        {
            return Err(format!("must have at least {min} options selected"));
        }
        if let Some(max) = self.constraints.max_selected
            && picked.len() > max as usize
        {
            return Err(format!("must have at most {max} options selected"));
        }
        Ok(Value::Array(picked))
    }

    fn rating(&self, value: &Value) -> Result<Value, String> {
        let scale = self.rating_scale();
        let rating = match value {
            Value::Number(number) => number.as_f64(),
            Value::String(text) => text.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|rating| rating.fract() == 0.0 && (1.0..=f64::from(scale)).contains(rating));
        rating
            .map(|rating| Value::from(rating as i64))
            .ok_or_else(|| format!("must be a whole number from 1 to {scale}"))
    }
}

/// Whether a string in `value` holds a NUL character, which Postgres cannot store.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(values) => values.iter().any(holds_nul),
        Value::Object(entries) => entries
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

fn text_of(value: &Value) -> Option<&str> {
    match value {
        Value::String(text) => Some(text),
        _ => None,
    }
}

/// `text` as an email address, trimmed; `None` when it is not one.
pub fn normalise_email(text: &str) -> Option<String> {
    email(&Value::String(text.to_owned()))
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
}

fn email(value: &Value) -> Result<Value, String> {
    let invalid = || "must be an email address".to_owned();
    let text = text_of(value).ok_or_else(invalid)?.trim();
    let (local, domain) = text.rsplit_once('@').ok_or_else(invalid)?;
    let valid = !local.is_empty()
        && local.len() <= 64
        && text.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
        && !local.contains('@');
    if valid {
        Ok(Value::String(text.to_owned()))
    } else {
        Err(invalid())
    }
}

fn phone(value: &Value) -> Result<Value, String> {
    let invalid = || "must be a phone number in international form, +<country><number>".to_owned();
    let text = text_of(value).ok_or_else(invalid)?.trim();
    let digits: String = text
        .chars()
        .filter(|character| !matches!(character, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let number = digits.strip_prefix('+').ok_or_else(invalid)?;
    let valid = (8..=15).contains(&number.len())
        && number.chars().all(|digit| digit.is_ascii_digit())
        && !number.starts_with('0');
    if valid {
        Ok(Value::String(format!("+{number}")))
    } else {
        Err(invalid())
    }
}

fn url(value: &Value) -> Result<Value, String> {
    let invalid = || "must be an absolute http or https URL".to_owned();
    let text = text_of(value).ok_or_else(invalid)?.trim();
    if text.len() > 2_048 {
        return Err("must be at most 2048 characters".to_owned());
    }
    let parsed = ::url::Url::parse(text).map_err(|_| invalid())?;
    if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() {
        Ok(Value::String(text.to_owned()))
    } else {
        Err(invalid())
    }
}

fn date(value: &Value) -> Result<Value, String> {
    let text = text_of(value).unwrap_or_default().trim();
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|date| Value::String(date.format("%Y-%m-%d").to_string()))
        .map_err(|_| "must be a date, YYYY-MM-DD".to_owned())
}

fn date_time(value: &Value) -> Result<Value, String> {
    let text = text_of(value).unwrap_or_default().trim();
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| Value::String(time.to_rfc3339()))
        .map_err(|_| "must be a date and time with its offset, RFC 3339".to_owned())
}

fn checkbox(value: &Value) -> Result<Value, String> {
    match value {
        Value::Bool(checked) => Ok(Value::Bool(*checked)),
        // What HTML forms post for a ticked box, and their explicit text forms.
        Value::String(text) if matches!(text.as_str(), "true" | "on") => Ok(Value::Bool(true)),
        Value::String(text) if text == "false" => Ok(Value::Bool(false)),
        _ => Err("must be true or false".to_owned()),
    }
}

fn hidden(value: &Value) -> Result<Value, String> {
    match value {
        Value::String(text) if text.chars().count() <= HIDDEN_MAX => Ok(value.clone()),
        Value::String(_) => Err(format!("must be at most {HIDDEN_MAX} characters")),
        _ => Err("must be text".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(kind: FieldKind) -> Field {
        Field {
            id: FieldId::parse("answer").unwrap(),
            kind,
            label: "Answer".into(),
            help_text: String::new(),
            placeholder: String::new(),
            required: false,
            constraints: Constraints::default(),
            error_message: String::new(),
            choices: if kind.has_choices() {
                ["red", "green", "blue"]
                    .map(|value| Choice {
                        value: value.into(),
                        label: value.to_uppercase(),
                    })
                    .to_vec()
            } else {
                Vec::new()
            },
            default: None,
            visible_when: None,
            required_when: None,
        }
    }

    /// Every kind with answers it takes (and what they become) and answers it refuses.
    #[test]
    fn each_kind_takes_its_answers_and_refuses_others() {
        // A kind, the answers it takes with what they become, and answers it refuses.
        type Case = (FieldKind, Vec<(Value, Value)>, Vec<Value>);
        let cases: Vec<Case> = vec![
            (
                FieldKind::Text,
                vec![
                    (json!("hello"), json!("hello")),
                    (json!(42), json!("42")),
                    (json!(42.0), json!("42")),
                    (json!(1.5), json!("1.5")),
                ],
                vec![
                    json!(true),
                    json!(["a"]),
                    json!("x".repeat(1001)),
                    json!("a\u{0}b"),
                ],
            ),
            (
                FieldKind::TextArea,
                vec![(json!("line\nline"), json!("line\nline"))],
                vec![json!({}), json!("x".repeat(10_001))],
            ),
            (
                FieldKind::Email,
                vec![(json!(" ada@example.org "), json!("ada@example.org"))],
                vec![
                    json!("ada"),
                    json!("ada@localhost"),
                    json!("a b@example.org"),
                    json!(1),
                ],
            ),
            (
                FieldKind::Number,
                vec![
                    (json!(3.5), json!(3.5)),
                    (json!("-2.25"), json!(-2.25)),
                    (json!(7), json!(7.0)),
                ],
                vec![json!("seven"), json!("NaN"), json!("1e400"), json!(true)],
            ),
            (
                FieldKind::Integer,
                vec![
                    (json!(3), json!(3)),
                    (json!(3.0), json!(3)),
                    (json!("12"), json!(12)),
                ],
                vec![json!(3.5), json!("3.5"), json!("three"), json!(1e300)],
            ),
            (
                FieldKind::Phone,
                vec![(json!("+33 1 23 45 67 89"), json!("+33123456789"))],
                vec![
                    json!("0123456789"),
                    json!("+12"),
                    json!("+33 abc"),
                    json!(33),
                ],
            ),
            (
                FieldKind::Url,
                vec![(
                    json!("https://example.org/a?b=c"),
                    json!("https://example.org/a?b=c"),
                )],
                vec![
                    json!("ftp://example.org"),
                    json!("example.org"),
                    json!("https://"),
                ],
            ),
            (
                FieldKind::Date,
                vec![(json!("2026-02-28"), json!("2026-02-28"))],
                vec![json!("2026-02-30"), json!("28/02/2026"), json!(20260228)],
            ),
            (
                FieldKind::DateTime,
                vec![(
                    json!("2026-12-05T10:00:00+01:00"),
                    json!("2026-12-05T10:00:00+01:00"),
                )],
                vec![json!("2026-12-05 10:00"), json!("2026-12-05")],
            ),
            (
                FieldKind::Select,
                vec![(json!("red"), json!("red"))],
                vec![json!("purple"), json!(["red"]), json!(1)],
            ),
            (
                FieldKind::Radio,
                vec![(json!("blue"), json!("blue"))],
                vec![json!("RED")],
            ),
            (
                FieldKind::MultiSelect,
                vec![
                    (json!(["red", "blue"]), json!(["red", "blue"])),
                    (json!("green"), json!(["green"])),
                    (json!([]), json!([])),
                ],
                vec![
                    json!(["red", "red"]),
                    json!(["purple"]),
                    json!({"red": true}),
                ],
            ),
            (
                FieldKind::Checkbox,
                vec![
                    (json!(true), json!(true)),
                    (json!("on"), json!(true)),
                    (json!("false"), json!(false)),
                ],
                vec![json!("yes"), json!(1)],
            ),
            (
                FieldKind::Rating,
                vec![(json!(5), json!(5)), (json!("1"), json!(1))],
                vec![json!(0), json!(6), json!(2.5)],
            ),
            (
                FieldKind::Hidden,
                vec![(json!("campaign-42"), json!("campaign-42"))],
                vec![json!(42), json!("x".repeat(1001))],
            ),
            (FieldKind::Section, vec![], vec![json!("anything")]),
        ];
        for (kind, accepted, refused) in cases {
            let field = field(kind);
            for (answer, normalised) in accepted {
                assert_eq!(
                    field.check_answer(&answer),
                    Ok(normalised),
                    "{kind:?} {answer}"
                );
            }
            for answer in refused {
                assert!(
                    field.check_answer(&answer).is_err(),
                    "{kind:?} took {answer}"
                );
            }
        }
    }

    #[test]
    fn constraints_bound_answers() {
        let mut text = field(FieldKind::Text);
        text.constraints = Constraints {
            min_length: Some(2),
            max_length: Some(4),
            pattern: Some(Pattern::parse("[a-z]+").unwrap()),
            ..Constraints::default()
        };
        assert!(text.check_answer(&json!("abc")).is_ok());
        for refused in ["a", "abcde", "ab1"] {
            assert!(text.check_answer(&json!(refused)).is_err(), "{refused}");
        }
        let mut number = field(FieldKind::Integer);
        number.constraints.min = Some(1.0);
        number.constraints.max = Some(10.0);
        assert!(number.check_answer(&json!(10)).is_ok());
        assert!(number.check_answer(&json!(11)).is_err());
        assert!(number.check_answer(&json!(0)).is_err());
        let mut many = field(FieldKind::MultiSelect);
        many.constraints.min_selected = Some(1);
        many.constraints.max_selected = Some(2);
        assert!(many.check_answer(&json!([])).is_err());
        assert!(many.check_answer(&json!(["red", "green", "blue"])).is_err());
        let mut rating = field(FieldKind::Rating);
        rating.constraints.max = Some(10.0);
        assert_eq!(rating.check_answer(&json!(10)), Ok(json!(10)));
    }

    #[test]
    fn a_fields_own_message_replaces_the_generic_one() {
        let mut email = field(FieldKind::Email);
        email.error_message = "Your work email, please".into();
        assert_eq!(
            email.check_answer(&json!("nope")),
            Err("Your work email, please".to_owned())
        );
    }

    #[test]
    fn patterns_match_whole_answers_and_bad_ones_are_refused() {
        let pattern = Pattern::parse("[0-9]{3}").unwrap();
        assert!(pattern.matches("123"));
        assert!(!pattern.matches("1234"));
        assert!(Pattern::parse("(").is_err());
        assert!(Pattern::parse(&"a".repeat(501)).is_err());
    }

    #[test]
    fn field_ids_are_snake_case() {
        assert!(FieldId::parse("full_name2").is_ok());
        for bad in ["", "Name", "2nd", "full-name", &"a".repeat(65)] {
            assert!(FieldId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fields_round_trip_through_their_stored_form() {
        let mut stored = field(FieldKind::Text);
        stored.constraints.pattern = Some(Pattern::parse("[a-z]+").unwrap());
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(json["kind"], "text");
        assert_eq!(serde_json::from_value::<Field>(json).unwrap(), stored);
    }
}
