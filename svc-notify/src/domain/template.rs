//! Templates: what a notification says, in up to six parts (an email's subject, text and HTML,
//! an in-app entry's title, body and link), each a minijinja template over the data its sender
//! gives. A template declares its variables; [`check`] refuses one that uses others, and
//! [`render`] refuses data that lacks a required one. Senders may also give the text inline
//! ([`Content::inline`]), with no declared variables: [`check_inline`] and [`render_inline`].
//!
//! Template text comes from tenants, so rendering is bounded: a fuel limit on instructions, a
//! recursion limit, and a cap on each part's output.

use std::{
    collections::{BTreeSet, HashSet},
    fmt, io,
    sync::LazyLock,
};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use platform::error::FieldViolations;
use serde_json::{Map, Value as Json};

/// Longest template key or topic, in characters.
pub const MAX_KEY_CHARS: usize = 100;
/// Longest variable name, in characters.
pub const MAX_VARIABLE_NAME_CHARS: usize = 64;
/// Longest variable description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Longest template text of an email's text or HTML, or an in-app body, in characters.
pub const MAX_BODY_CHARS: usize = 20_000;
/// Longest template text of a subject, in-app title or link, in characters.
pub const MAX_LINE_CHARS: usize = 1_000;
/// Most bytes of a whole template: its six parts and its variables' names and descriptions.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Longest subject or in-app title once rendered, in characters.
pub const MAX_RENDERED_LINE_CHARS: usize = 200;
/// Longest link once rendered (or given inline), in characters.
pub const MAX_LINK_CHARS: usize = 2_048;
/// Most bytes one part may render to: a template's text is bounded, but a loop is not.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;
/// Instructions one part may execute when rendered (minijinja's fuel, about one per
/// instruction): a loop over a few thousand items is fine, a runaway one stops.
pub const FUEL: u64 = 100_000;
/// How deep rendering may nest (loops, conditions, macro calls); minijinja allows 500.
pub const RECURSION_LIMIT: usize = 100;

/// The engine every part is rendered with: undefined values render empty, even their
/// attributes (a missing optional `customer` makes `{{ customer.name }}` empty), and so do
/// nulls; only the `email_html` part is HTML-escaped. Templates are compiled per render, by
/// name ([`Part::name`]), which selects the escaping.
static ENGINE: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut engine = Environment::new();
    engine.set_undefined_behavior(UndefinedBehavior::Chainable);
    engine.set_auto_escape_callback(|name| {
        if name == Part::EmailHtml.name() {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    engine.set_formatter(|output, state, value| {
        let value = if value.is_none() {
            &Value::UNDEFINED
        } else {
            value
        };
        minijinja::escape_formatter(output, state, value)
    });
    // `debug()` would print the whole context into a notification.
    engine.remove_global("debug");
    engine.set_keep_trailing_newline(true);
    engine.set_debug(false);
    engine.set_fuel(Some(FUEL));
    engine.set_recursion_limit(RECURSION_LIMIT);
    engine
});

/// Names the engine defines (`range`, `dict`, `namespace`): templates use them undeclared.
static GLOBALS: LazyLock<HashSet<String>> =
    LazyLock::new(|| ENGINE.globals().map(|(name, _)| name.to_owned()).collect());

/// Why a template key or topic was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Empty or too long.
    #[error("must be 1 to 100 characters long")]
    Length,
    /// A character outside `a-z`, `0-9`, `.`, `_` and `-`.
    #[error("may contain only lowercase letters a-z, digits, '.', '_' and '-'")]
    Characters,
    /// Starts with something other than a letter.
    #[error("must start with a lowercase letter")]
    Start,
}

/// Checks `text` as a template key or a notification topic (the same rule): 1 to 100
/// lowercase ASCII letters, digits, `.`, `_` and `-`, starting with a letter
/// (`auth.invitation`, `ticket.assigned`).
pub fn check_topic_like(text: &str) -> Result<(), KeyError> {
    if !(1..=MAX_KEY_CHARS).contains(&text.chars().count()) {
        return Err(KeyError::Length);
    }
    if !text.bytes().all(|byte| {
        byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-')
    }) {
        return Err(KeyError::Characters);
    }
    if !text.starts_with(|first: char| first.is_ascii_lowercase()) {
        return Err(KeyError::Start);
    }
    Ok(())
}

/// What a template is known by within a tenant (`auth.invitation`): see [`check_topic_like`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateKey(String);

impl TemplateKey {
    /// Validates `text` as it is, with no trimming or lower-casing.
    pub fn parse(text: &str) -> Result<TemplateKey, KeyError> {
        check_topic_like(text)?;
        Ok(TemplateKey(text.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TemplateKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A variable a template declares: its parts may use it, and senders give its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// `[A-Za-z_][A-Za-z0-9_]{0,63}`.
    pub name: String,
    /// For people writing templates and senders; at most 500 characters.
    pub description: String,
    /// Whether rendering refuses data without it (or with it null).
    pub required: bool,
}

/// Whether `name` can be a variable: `[A-Za-z_][A-Za-z0-9_]{0,63}`.
fn is_variable_name(name: &str) -> bool {
    name.len() <= MAX_VARIABLE_NAME_CHARS
        && name.starts_with(|first: char| first.is_ascii_alphabetic() || first == '_')
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// The six parts of a template as minijinja text; each may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content {
    /// The email's subject.
    pub email_subject: String,
    /// The email's plain text.
    pub email_text: String,
    /// The email's HTML alternative; values are HTML-escaped.
    pub email_html: String,
    /// The in-app entry's title; the email subject when empty.
    pub in_app_title: String,
    /// The in-app entry's body; the email text when empty.
    pub in_app_body: String,
    /// Where the in-app entry leads: a path (`/forms/42`) or an `https://` URL.
    pub in_app_link: String,
}

impl Content {
    /// The content of a notification sent without a template: `subject` is the email subject
    /// and, by fallback, the in-app title; `body` is the email text and the in-app body.
    pub fn inline(
        subject: impl Into<String>,
        body: impl Into<String>,
        link: impl Into<String>,
    ) -> Content {
        Content {
            email_subject: subject.into(),
            email_text: body.into(),
            in_app_link: link.into(),
            ..Content::default()
        }
    }
}

/// A notification's text, rendered for one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rendered {
    /// One line, 1 to 200 characters when there is an email.
    pub email_subject: String,
    /// The plain text.
    pub email_text: String,
    /// The HTML alternative, empty when the template has none.
    pub email_html: String,
    /// One line, 1 to 200 characters when there is an in-app entry.
    pub in_app_title: String,
    /// The in-app body.
    pub in_app_body: String,
    /// Empty, a path starting with `/`, or an `https://` URL.
    pub in_app_link: String,
}

impl Rendered {
    /// Whether there is an email to send: a subject and a text.
    pub fn has_email(&self) -> bool {
        !self.email_subject.is_empty() && !self.email_text.is_empty()
    }

    /// Whether there is an in-app entry to show: a title or a body.
    pub fn has_in_app(&self) -> bool {
        !self.in_app_title.is_empty() || !self.in_app_body.is_empty()
    }
}

/// One of the six parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    EmailSubject,
    EmailText,
    EmailHtml,
    InAppTitle,
    InAppBody,
    InAppLink,
}

impl Part {
    const ALL: [Part; 6] = [
        Part::EmailSubject,
        Part::EmailText,
        Part::EmailHtml,
        Part::InAppTitle,
        Part::InAppBody,
        Part::InAppLink,
    ];

    /// The field's name, also the name its template is compiled under.
    fn name(self) -> &'static str {
        match self {
            Part::EmailSubject => "email_subject",
            Part::EmailText => "email_text",
            Part::EmailHtml => "email_html",
            Part::InAppTitle => "in_app_title",
            Part::InAppBody => "in_app_body",
            Part::InAppLink => "in_app_link",
        }
    }

    fn source(self, content: &Content) -> &str {
        match self {
            Part::EmailSubject => &content.email_subject,
            Part::EmailText => &content.email_text,
            Part::EmailHtml => &content.email_html,
            Part::InAppTitle => &content.in_app_title,
            Part::InAppBody => &content.in_app_body,
            Part::InAppLink => &content.in_app_link,
        }
    }

    /// Longest template text, in characters.
    fn max_chars(self) -> usize {
        match self {
            Part::EmailSubject | Part::InAppTitle | Part::InAppLink => MAX_LINE_CHARS,
            Part::EmailText | Part::EmailHtml | Part::InAppBody => MAX_BODY_CHARS,
        }
    }
}

/// Where content came from, which names the fields its problems are reported at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A stored template: `template.email_subject`, ...
    Template,
    /// A sender's inline subject, body and link: `content.subject`, ...
    Inline,
}

impl Origin {
    fn path(self, part: Part) -> &'static str {
        match (self, part) {
            (Origin::Template, Part::EmailSubject) => "template.email_subject",
            (Origin::Template, Part::EmailText) => "template.email_text",
            (Origin::Template, Part::EmailHtml) => "template.email_html",
            (Origin::Template, Part::InAppTitle) => "template.in_app_title",
            (Origin::Template, Part::InAppBody) => "template.in_app_body",
            (Origin::Template, Part::InAppLink) => "template.in_app_link",
            (Origin::Inline, Part::EmailSubject | Part::InAppTitle) => "content.subject",
            (Origin::Inline, Part::EmailText | Part::EmailHtml | Part::InAppBody) => "content.body",
            (Origin::Inline, Part::InAppLink) => "content.link",
        }
    }
}

/// `error` for people: "syntax error on line 2: unexpected end of input, ...".
fn describe(error: &minijinja::Error) -> String {
    let mut described = error.kind().to_string();
    if let Some(line) = error.line() {
        described.push_str(&format!(" on line {line}"));
    }
    if let Some(detail) = error.detail() {
        described.push_str(&format!(": {detail}"));
    }
    described
}

/// Checks a template's content and variables, reporting every problem at its field under
/// `template.`: syntax errors, variables used but not declared, malformed or repeated
/// variables, sizes, and missing parts.
pub fn check(content: &Content, variables: &[Variable]) -> FieldViolations {
    let mut violations = FieldViolations::new();
    let mut declared = HashSet::new();
    for (index, variable) in variables.iter().enumerate() {
        let field = format!("template.variables[{index}].name");
        if !is_variable_name(&variable.name) {
            violations.add(
                field,
                "must be 1 to 64 letters, digits or underscores, not starting with a digit",
            );
        } else if !declared.insert(variable.name.as_str()) {
            violations.add(field, format!("`{}` is declared twice", variable.name));
        }
        if variable.description.chars().count() > MAX_DESCRIPTION_CHARS {
            violations.add(
                format!("template.variables[{index}].description"),
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            );
        }
    }

    for part in Part::ALL {
        let source = part.source(content);
        let path = Origin::Template.path(part);
        if source.chars().count() > part.max_chars() {
            violations.add(
                path,
                format!("must be at most {} characters", part.max_chars()),
            );
            continue;
        }
        let template = match ENGINE.template_from_named_str(part.name(), source) {
            Ok(template) => template,
            Err(error) => {
                violations.add(path, describe(&error));
                continue;
            }
        };
        let undeclared: BTreeSet<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|name| !declared.contains(name.as_str()) && !GLOBALS.contains(name))
            .collect();
        for name in undeclared {
            violations.add(
                path,
                format!("uses `{name}`, which is not declared in variables"),
            );
        }
    }

    let bytes = Part::ALL
        .iter()
        .map(|part| part.source(content).len())
        .chain(
            variables
                .iter()
                .map(|variable| variable.name.len() + variable.description.len()),
        )
        .sum::<usize>();
    if bytes > MAX_TEMPLATE_BYTES {
        violations.add(
            "template",
            format!("is {bytes} bytes; at most {MAX_TEMPLATE_BYTES} (64 KiB)"),
        );
    }

    let has = |text: &str| !text.is_empty();
    let (subject, text, html) = (
        has(&content.email_subject),
        has(&content.email_text),
        has(&content.email_html),
    );
    if !subject && !text && !has(&content.in_app_title) && !has(&content.in_app_body) {
        violations.add(
            "template",
            "a template needs email content (email_subject and email_text) or in-app content",
        );
    } else if subject && !text {
        violations.add("template.email_text", "required when email_subject is set");
    } else if text && !subject {
        violations.add("template.email_subject", "required when email_text is set");
    } else if html && !subject && !text {
        violations.add("template.email_subject", "required when email_html is set");
        violations.add("template.email_text", "required when email_html is set");
    }
    violations
}

/// Checks inline content ([`Content::inline`]): a subject of 1 to 200 characters, a body of 1
/// to 20,000, a link of at most 2,048, each valid template text. Any name may be used: the
/// sender's data is all there is.
pub fn check_inline(content: &Content) -> FieldViolations {
    let mut violations = FieldViolations::new();
    let limits = [
        (Part::EmailSubject, 1, MAX_RENDERED_LINE_CHARS),
        (Part::EmailText, 1, MAX_BODY_CHARS),
        (Part::InAppLink, 0, MAX_LINK_CHARS),
    ];
    for (part, min_chars, max_chars) in limits {
        let source = part.source(content);
        let path = Origin::Inline.path(part);
        if !(min_chars..=max_chars).contains(&source.chars().count()) {
            violations.add(
                path,
                format!("must be {min_chars} to {max_chars} characters long"),
            );
        } else if let Err(error) = ENGINE.template_from_named_str(part.name(), source) {
            violations.add(path, describe(&error));
        }
    }
    violations
}

/// Renders a template's parts with a sender's `data`: every required variable must be there
/// (and not null), others render empty when missing. The in-app title and body fall back to
/// the email subject and text when their parts are empty.
pub fn render(
    content: &Content,
    variables: &[Variable],
    data: &Map<String, Json>,
) -> Result<Rendered, FieldViolations> {
    let mut violations = FieldViolations::new();
    for variable in variables.iter().filter(|variable| variable.required) {
        if data.get(&variable.name).is_none_or(Json::is_null) {
            violations.add(
                format!("data.{}", variable.name),
                "required by the template, missing",
            );
        }
    }
    let rendered = render_parts(content, data, Origin::Template, &mut violations);
    violations.into_result().map(|()| rendered)
}

/// Renders inline content ([`Content::inline`]) with a sender's `data`: names missing from it
/// render empty.
pub fn render_inline(
    content: &Content,
    data: &Map<String, Json>,
) -> Result<Rendered, FieldViolations> {
    let mut violations = FieldViolations::new();
    let rendered = render_parts(content, data, Origin::Inline, &mut violations);
    violations.into_result().map(|()| rendered)
}

fn render_parts(
    content: &Content,
    data: &Map<String, Json>,
    origin: Origin,
    violations: &mut FieldViolations,
) -> Rendered {
    let context = Value::from_serialize(data);
    let mut render = |part: Part| match render_part(part, part.source(content), &context) {
        Ok(text) => text,
        Err(problem) => {
            violations.add(origin.path(part), problem);
            String::new()
        }
    };
    let mut rendered = Rendered {
        email_subject: one_line(&render(Part::EmailSubject)),
        email_text: render(Part::EmailText),
        email_html: render(Part::EmailHtml),
        in_app_title: one_line(&render(Part::InAppTitle)),
        in_app_body: render(Part::InAppBody),
        in_app_link: render(Part::InAppLink).trim().to_owned(),
    };

    for (part, line) in [
        (Part::EmailSubject, &rendered.email_subject),
        (Part::InAppTitle, &rendered.in_app_title),
    ] {
        if part.source(content).is_empty() {
            continue;
        }
        let chars = line.chars().count();
        if chars == 0 {
            violations.add(origin.path(part), "is empty after rendering");
        } else if chars > MAX_RENDERED_LINE_CHARS {
            violations.add(
                origin.path(part),
                format!("is {chars} characters after rendering; at most {MAX_RENDERED_LINE_CHARS}"),
            );
        }
    }
    if let Err(problem) = check_link(&rendered.in_app_link) {
        violations.add(origin.path(Part::InAppLink), problem);
    }

    if content.in_app_title.is_empty() {
        rendered.in_app_title = rendered.email_subject.clone();
    }
    if content.in_app_body.is_empty() {
        rendered.in_app_body = rendered.email_text.clone();
    }
    rendered
}

/// `source` rendered, or why it could not be.
fn render_part(part: Part, source: &str, context: &Value) -> Result<String, String> {
    if source.is_empty() {
        return Ok(String::new());
    }
    let template = ENGINE
        .template_from_named_str(part.name(), source)
        .map_err(|error| describe(&error))?;
    let mut output = CappedOutput::default();
    match template.render_captured_to(context, &mut output) {
        Ok(_) => Ok(String::from_utf8(output.bytes).expect("minijinja writes UTF-8 text")),
        Err(_) if output.exceeded => Err(format!(
            "could not render: the output is longer than {MAX_RENDERED_BYTES} bytes"
        )),
        Err(error) => Err(format!("could not render: {}", describe(&error))),
    }
}

/// A part's output, refusing to grow past [`MAX_RENDERED_BYTES`].
#[derive(Default)]
struct CappedOutput {
    bytes: Vec<u8>,
    exceeded: bool,
}

impl io::Write for CappedOutput {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buffer.len() > MAX_RENDERED_BYTES {
            self.exceeded = true;
            return Err(io::Error::other("rendered output too long"));
        }
        self.bytes.extend_from_slice(buffer);
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `text` on one line: runs of whitespace, newlines included, become one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks a rendered link: empty, a path on the suite's own site (`/forms/42`, not the
/// protocol-relative `//elsewhere`), or an absolute `https://` URL.
fn check_link(link: &str) -> Result<(), String> {
    const INVALID: &str =
        "must be empty, a path starting with `/` or an https:// URL after rendering";
    if link.is_empty() {
        return Ok(());
    }
    let chars = link.chars().count();
    if chars > MAX_LINK_CHARS {
        return Err(format!(
            "is {chars} characters after rendering; at most {MAX_LINK_CHARS}"
        ));
    }
    if link
        .chars()
        .any(|character| character.is_whitespace() || character.is_control())
    {
        return Err(INVALID.to_owned());
    }
    if link.starts_with('/') {
        // Joined to a base, a path stays on the base's host; `//host` and `/\host` do not.
        let base = url::Url::parse("https://base.invalid/").expect("the base is a URL");
        return match base.join(link) {
            Ok(joined) if joined.host_str() == Some("base.invalid") => Ok(()),
            _ => Err(INVALID.to_owned()),
        };
    }
    match url::Url::parse(link) {
        Ok(url)
            if url.scheme() == "https" && url.host_str().is_some_and(|host| !host.is_empty()) =>
        {
            Ok(())
        }
        _ => Err(INVALID.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn variable(name: &str, required: bool) -> Variable {
        Variable {
            name: name.to_owned(),
            description: String::new(),
            required,
        }
    }

    fn email(subject: &str, text: &str) -> Content {
        Content {
            email_subject: subject.to_owned(),
            email_text: text.to_owned(),
            ..Content::default()
        }
    }

    fn data(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn problems(violations: &FieldViolations) -> Vec<(&str, &str)> {
        violations
            .violations()
            .iter()
            .map(|(field, description)| (field.as_str(), description.as_str()))
            .collect()
    }

    #[test]
    fn keys_and_topics_follow_one_rule() {
        for good in [
            "auth.invitation",
            "ticket.assigned",
            "a",
            "a1_b-c.d",
            &"a".repeat(100),
        ] {
            assert_eq!(TemplateKey::parse(good).unwrap().as_str(), good);
            assert_eq!(TemplateKey::parse(good).unwrap().to_string(), good);
            assert_eq!(check_topic_like(good), Ok(()));
        }
        assert_eq!(TemplateKey::parse(""), Err(KeyError::Length));
        assert_eq!(TemplateKey::parse(&"a".repeat(101)), Err(KeyError::Length));
        assert_eq!(
            TemplateKey::parse("Auth.invitation"),
            Err(KeyError::Characters)
        );
        assert_eq!(
            TemplateKey::parse("auth invitation"),
            Err(KeyError::Characters)
        );
        assert_eq!(
            TemplateKey::parse("auth/invitation"),
            Err(KeyError::Characters)
        );
        assert_eq!(TemplateKey::parse("authé"), Err(KeyError::Characters));
        assert_eq!(TemplateKey::parse("1auth"), Err(KeyError::Start));
        assert_eq!(TemplateKey::parse(".auth"), Err(KeyError::Start));
        assert_eq!(check_topic_like("_topic"), Err(KeyError::Start));
    }

    #[test]
    fn variable_names_are_identifiers() {
        for good in ["a", "_", "customer_name", "Name2", &"x".repeat(64)] {
            assert!(is_variable_name(good), "{good}");
        }
        for bad in ["", "2x", "a-b", "a.b", "é", "a b", &"x".repeat(65)] {
            assert!(!is_variable_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_valid_template_has_no_violations() {
        let content = Content {
            email_subject: "Hello {{ name }}".to_owned(),
            email_text: "{% for item in items %}{{ loop.index }}. {{ item }}\n{% endfor %}"
                .to_owned(),
            email_html: "{% set greeting = 'Hi' %}<p>{{ greeting }} {{ name }}</p>".to_owned(),
            in_app_title: String::new(),
            in_app_body: "{% for i in range(3) %}{{ i }}{% endfor %}".to_owned(),
            in_app_link: "/forms/{{ form_id }}".to_owned(),
        };
        let variables = [
            variable("name", true),
            variable("items", false),
            variable("form_id", false),
        ];
        assert_eq!(problems(&check(&content, &variables)), []);
    }

    #[test]
    fn syntax_errors_are_reported_with_their_line() {
        let content = Content {
            email_subject: "Hi".to_owned(),
            email_text: "Hello\n{{ name".to_owned(),
            in_app_body: "{% if %}".to_owned(),
            ..Content::default()
        };
        let violations = check(&content, &[variable("name", false)]);
        assert_eq!(
            problems(&violations),
            [
                (
                    "template.email_text",
                    "syntax error on line 2: unexpected end of input, expected end of variable \
                     block"
                ),
                (
                    "template.in_app_body",
                    "syntax error on line 1: unexpected end of block"
                ),
            ]
        );
    }

    #[test]
    fn undeclared_variables_are_reported_once_each_sorted() {
        let content = Content {
            email_subject: "{{ zeta }} {{ customer.name }} {{ customer.email }}".to_owned(),
            email_text: "{{ alpha }}{% set local = 1 %}{{ local }}{{ declared }}".to_owned(),
            in_app_title: "{{ debug() }}".to_owned(),
            ..Content::default()
        };
        let violations = check(&content, &[variable("declared", false)]);
        assert_eq!(
            problems(&violations),
            [
                (
                    "template.email_subject",
                    "uses `customer`, which is not declared in variables"
                ),
                (
                    "template.email_subject",
                    "uses `zeta`, which is not declared in variables"
                ),
                (
                    "template.email_text",
                    "uses `alpha`, which is not declared in variables"
                ),
                (
                    "template.in_app_title",
                    "uses `debug`, which is not declared in variables"
                ),
            ]
        );
    }

    #[test]
    fn names_a_template_defines_or_the_engine_provides_need_no_declaration() {
        let content = email(
            "{% set ns = namespace(count=0) %}{{ ns.count }}",
            "{% for key, value in dict(a=1)|items %}{{ key }}{{ value }}{{ loop.index }}\
             {% endfor %}{% macro greet(who) %}hi {{ who }}{% endmacro %}{{ greet('x') }}\
             {% with y = 2 %}{{ y }}{% endwith %}",
        );
        assert_eq!(problems(&check(&content, &[])), []);
    }

    #[test]
    fn malformed_and_repeated_variables_are_reported_at_their_index() {
        let variables = [
            variable("name", true),
            variable("2nd", false),
            variable("name", false),
            Variable {
                name: "ok".to_owned(),
                description: "d".repeat(501),
                required: false,
            },
            Variable {
                name: "fine".to_owned(),
                description: "d".repeat(500),
                required: false,
            },
        ];
        let violations = check(&email("s", "t"), &variables);
        assert_eq!(
            problems(&violations),
            [
                (
                    "template.variables[1].name",
                    "must be 1 to 64 letters, digits or underscores, not starting with a digit"
                ),
                ("template.variables[2].name", "`name` is declared twice"),
                (
                    "template.variables[3].description",
                    "must be at most 500 characters"
                ),
            ]
        );
    }

    #[test]
    fn parts_and_the_whole_are_bounded() {
        let at_limit = email(&"s".repeat(1_000), &"t".repeat(20_000));
        assert_eq!(problems(&check(&at_limit, &[])), []);

        let over = Content {
            email_subject: "s".repeat(1_001),
            email_text: "t".repeat(20_001),
            in_app_link: "/".repeat(1_001),
            ..Content::default()
        };
        assert_eq!(
            check(&over, &[]).fields(),
            [
                "template.email_subject",
                "template.email_text",
                "template.in_app_link"
            ]
        );

        let big = Content {
            email_subject: "s".to_owned(),
            email_text: "t".repeat(20_000),
            email_html: "h".repeat(20_000),
            in_app_body: "b".repeat(20_000),
            in_app_link: "/".repeat(1_000),
            ..Content::default()
        };
        let variables: Vec<Variable> = (0..10)
            .map(|index| Variable {
                name: format!("v{index}"),
                description: "d".repeat(500),
                required: false,
            })
            .collect();
        assert_eq!(
            problems(&check(&big, &variables)),
            [("template", "is 66021 bytes; at most 65536 (64 KiB)")]
        );
    }

    #[test]
    fn a_template_needs_email_or_in_app_content() {
        let needs =
            "a template needs email content (email_subject and email_text) or in-app content";
        assert_eq!(
            problems(&check(&Content::default(), &[])),
            [("template", needs)]
        );
        let link_only = Content {
            in_app_link: "/x".to_owned(),
            ..Content::default()
        };
        assert_eq!(problems(&check(&link_only, &[])), [("template", needs)]);

        assert_eq!(
            problems(&check(&email("s", ""), &[])),
            [("template.email_text", "required when email_subject is set")]
        );
        assert_eq!(
            problems(&check(&email("", "t"), &[])),
            [("template.email_subject", "required when email_text is set")]
        );
        let html_and_in_app = Content {
            email_html: "<p>x</p>".to_owned(),
            in_app_title: "t".to_owned(),
            ..Content::default()
        };
        assert_eq!(
            problems(&check(&html_and_in_app, &[])),
            [
                ("template.email_subject", "required when email_html is set"),
                ("template.email_text", "required when email_html is set"),
            ]
        );
        for in_app_only in [
            Content {
                in_app_title: "t".to_owned(),
                ..Content::default()
            },
            Content {
                in_app_body: "b".to_owned(),
                ..Content::default()
            },
        ] {
            assert_eq!(problems(&check(&in_app_only, &[])), []);
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let content = Content {
            email_html: "<p>{{ x }}</p>".to_owned(),
            ..email("{{ x }}", "{{ x }}")
        };
        let rendered = render(
            &content,
            &[variable("x", true)],
            &data(json!({"x": "<b>&"})),
        )
        .unwrap();
        assert_eq!(rendered.email_html, "<p>&lt;b&gt;&amp;</p>");
        assert_eq!(rendered.email_text, "<b>&");
        assert_eq!(rendered.email_subject, "<b>&");
        assert_eq!(rendered.in_app_body, "<b>&");
    }

    #[test]
    fn required_variables_must_be_given_and_not_null() {
        let content = email("{{ a }}{{ b }}", "{{ c }}");
        let variables = [
            variable("a", true),
            variable("b", true),
            variable("c", false),
        ];
        let violations = render(&content, &variables, &data(json!({"b": null}))).unwrap_err();
        assert_eq!(
            problems(&violations),
            [
                ("data.a", "required by the template, missing"),
                ("data.b", "required by the template, missing"),
                ("template.email_subject", "is empty after rendering"),
            ]
        );
        let rendered = render(&content, &variables, &data(json!({"a": 1, "b": false}))).unwrap();
        assert_eq!(rendered.email_subject, "1False");
    }

    #[test]
    fn missing_optional_variables_render_empty_even_their_attributes() {
        let content = email(
            "Hi {{ customer.name }}{{ customer.address.city }}!",
            "[{{ note }}][{{ nested.none_here }}][{{ customer['x'] }}]\
             {% if customer %}never{% endif %}",
        );
        let variables = [
            variable("customer", false),
            variable("note", false),
            variable("nested", false),
        ];
        let rendered = render(
            &content,
            &variables,
            &data(json!({"note": null, "nested": {"none_here": null}})),
        )
        .unwrap();
        assert_eq!(rendered.email_subject, "Hi !");
        assert_eq!(rendered.email_text, "[][][]");
    }

    #[test]
    fn render_errors_are_reported_at_their_part() {
        let content = Content {
            in_app_body: "{{ items|join(1, 2, 3) }}".to_owned(),
            ..email("ok", "{{ 'a' - 1 }}")
        };
        let violations = render(&content, &[variable("items", false)], &Map::new()).unwrap_err();
        assert_eq!(
            violations.fields(),
            ["template.email_text", "template.in_app_body"]
        );
        for (_, description) in violations.violations() {
            assert!(
                description.starts_with("could not render: "),
                "{description}"
            );
        }
    }

    #[test]
    fn in_app_parts_fall_back_to_the_email() {
        let rendered = render(&email("Sub\n  ject ", "Text\n"), &[], &Map::new()).unwrap();
        assert_eq!(
            rendered,
            Rendered {
                email_subject: "Sub ject".to_owned(),
                email_text: "Text\n".to_owned(),
                email_html: String::new(),
                in_app_title: "Sub ject".to_owned(),
                in_app_body: "Text\n".to_owned(),
                in_app_link: String::new(),
            }
        );
        assert!(rendered.has_email() && rendered.has_in_app());

        let in_app = Content {
            in_app_title: " Title\t{{ n }} ".to_owned(),
            in_app_body: "Body".to_owned(),
            ..email("Subject", "Text")
        };
        let rendered = render(&in_app, &[variable("n", true)], &data(json!({"n": 2}))).unwrap();
        assert_eq!(rendered.in_app_title, "Title 2");
        assert_eq!(rendered.in_app_body, "Body");

        let only_in_app = Content {
            in_app_body: "Body".to_owned(),
            ..Content::default()
        };
        let rendered = render(&only_in_app, &[], &Map::new()).unwrap();
        assert!(!rendered.has_email() && rendered.has_in_app());
    }

    #[test]
    fn rendered_subject_and_title_are_one_line_of_at_most_200_characters() {
        let variables = [variable("x", true)];
        let at_limit = data(json!({"x": "y".repeat(200)}));
        assert!(render(&email("{{ x }}", "t"), &variables, &at_limit).is_ok());

        let over = data(json!({"x": "y".repeat(201)}));
        let content = Content {
            in_app_title: "{{ x }}".to_owned(),
            ..email("\n {{ x }}\n", "t")
        };
        let violations = render(&content, &variables, &over).unwrap_err();
        assert_eq!(
            problems(&violations),
            [
                (
                    "template.email_subject",
                    "is 201 characters after rendering; at most 200"
                ),
                (
                    "template.in_app_title",
                    "is 201 characters after rendering; at most 200"
                ),
            ]
        );
        let blank = data(json!({"x": " \n "}));
        assert_eq!(
            render(&content, &variables, &blank).unwrap_err().fields(),
            ["template.email_subject", "template.in_app_title"]
        );
    }

    #[test]
    fn rendered_links_are_paths_or_https_urls() {
        let variables = [variable("link", true)];
        let link = |value: &str| {
            let content = Content {
                in_app_link: "{{ link }}".to_owned(),
                ..email("s", "t")
            };
            render(&content, &variables, &data(json!({ "link": value })))
                .map(|rendered| rendered.in_app_link)
        };
        for good in [
            "/forms/42",
            " /inbox?x=1#top ",
            "https://example.com",
            "https://example.com/a?b=c",
            "",
        ] {
            assert_eq!(link(good).unwrap(), good.trim(), "{good}");
        }
        for bad in [
            "http://example.com",
            "javascript:alert(1)",
            "//evil.example",
            "/\\evil.example",
            "forms/42",
            "/a b",
            "https://",
            &format!("/{}", "a".repeat(2_048)),
        ] {
            let violations = link(bad).unwrap_err();
            assert_eq!(violations.fields(), ["template.in_app_link"], "{bad}");
        }
    }

    #[test]
    fn runaway_templates_stop() {
        let content = email(
            "s",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        );
        let violations = render(&content, &[], &Map::new()).unwrap_err();
        assert_eq!(
            problems(&violations),
            [(
                "template.email_text",
                "could not render: engine ran out of fuel on line 1"
            )]
        );

        let huge = email(
            "s",
            "{% for i in range(20) %}{{ 'x' * 100000 }}{% endfor %}",
        );
        let violations = render(&huge, &[], &Map::new()).unwrap_err();
        assert_eq!(
            problems(&violations),
            [(
                "template.email_text",
                "could not render: the output is longer than 1048576 bytes"
            )]
        );

        let deep = email(
            "s",
            "{% macro down(n) %}{{ down(n + 1) }}{% endmacro %}{{ down(0) }}",
        );
        let violations = render(&deep, &[], &Map::new()).unwrap_err();
        assert_eq!(
            problems(&violations),
            [(
                "template.email_text",
                "could not render: invalid operation on line 1: recursion limit exceeded"
            )]
        );
    }

    #[test]
    fn inline_content_is_checked_at_content_fields() {
        assert_eq!(
            problems(&check_inline(&Content::inline(
                "Hi {{ anyone }}",
                "Body",
                "/x"
            ))),
            []
        );
        assert_eq!(
            check_inline(&Content::inline("", "", "")).fields(),
            ["content.subject", "content.body"]
        );
        let too_long = Content::inline("s".repeat(201), "b".repeat(20_001), "l".repeat(2_049));
        assert_eq!(
            problems(&check_inline(&too_long)),
            [
                ("content.subject", "must be 1 to 200 characters long"),
                ("content.body", "must be 1 to 20000 characters long"),
                ("content.link", "must be 0 to 2048 characters long"),
            ]
        );
        let broken = Content::inline("{{", "{% if x %}", "{{ }}");
        assert_eq!(
            check_inline(&broken).fields(),
            ["content.subject", "content.body", "content.link"]
        );
    }

    #[test]
    fn inline_content_renders_any_data_and_missing_names_empty() {
        let content = Content::inline(
            "Hi {{ name }}{{ missing }}",
            "{{ body.text }}",
            "/t/{{ id }}",
        );
        let rendered = render_inline(
            &content,
            &data(json!({"name": "Ann", "body": {"text": "<ok>"}, "id": 7})),
        )
        .unwrap();
        assert_eq!(
            rendered,
            Rendered {
                email_subject: "Hi Ann".to_owned(),
                email_text: "<ok>".to_owned(),
                email_html: String::new(),
                in_app_title: "Hi Ann".to_owned(),
                in_app_body: "<ok>".to_owned(),
                in_app_link: "/t/7".to_owned(),
            }
        );
        let violations = render_inline(
            &Content::inline("{{ x }}", "b", "{{ l }}"),
            &data(json!({"l": "http://plain"})),
        )
        .unwrap_err();
        assert_eq!(violations.fields(), ["content.subject", "content.link"]);
    }
}
