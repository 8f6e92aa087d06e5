//! Expressions over execution data are JMESPath (the `jmespath` crate), written either whole
//! (`logic.if`'s `condition`) or inside templates: a string whose `{{ expression }}`
//! placeholders are replaced by their values. A template that is exactly one placeholder takes
//! the value with its JSON type; otherwise values are written into the text.

/// Longest expression or template, in characters.
pub const MAX_LENGTH: usize = 4_000;

/// A compiled JMESPath expression.
pub type Expression = jmespath::Expression<'static>;

/// `text` as an expression, or why it is not one.
pub fn compile(text: &str) -> Result<Expression, String> {
    if text.trim().is_empty() {
        return Err("must be a JMESPath expression, not empty".to_owned());
    }
    if text.chars().count() > MAX_LENGTH {
        return Err(format!("must be at most {MAX_LENGTH} characters"));
    }
    jmespath::compile(text).map_err(|error| {
        format!(
            "is not a JMESPath expression: {} at character {}",
            error.reason, error.offset
        )
    })
}

/// One part of a template.
#[derive(Debug)]
pub enum Part<'a> {
    /// Text written as it is.
    Text(&'a str),
    /// A placeholder's expression.
    Placeholder(Expression),
}

/// The parts of `template`, or why it is not a template: an unclosed `{{`, or a placeholder
/// that is not an expression.
pub fn parse_template(template: &str) -> Result<Vec<Part<'_>>, String> {
    if template.chars().count() > MAX_LENGTH {
        return Err(format!("must be at most {MAX_LENGTH} characters"));
    }
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Text(&rest[..start]));
        }
        let inner = &rest[start + 2..];
        let end = inner
            .find("}}")
            .ok_or_else(|| "has a `{{` without its `}}`".to_owned())?;
        let expression = compile(inner[..end].trim())
            .map_err(|reason| format!("has a placeholder that {reason}"))?;
        parts.push(Part::Placeholder(expression));
        rest = &inner[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

/// Data that expressions search: a node's input, converted once for all its expressions.
pub type Data = jmespath::Rcvar;

/// `value` as expressions search it.
pub fn data(value: &serde_json::Value) -> Result<Data, String> {
    jmespath::Variable::try_from(value)
        .map(Data::new)
        .map_err(|error| error.to_string())
}

/// The value of `expression` over `data`, or why it has none (a function given the wrong
/// type of argument, ...).
pub fn search(expression: &Expression, data: &Data) -> Result<serde_json::Value, String> {
    let found = expression
        .search(data)
        .map_err(|error| format!("`{expression}` failed: {}", error.reason))?;
    serde_json::to_value(&*found).map_err(|error| error.to_string())
}

/// The value of `text`, an expression, over `data`.
pub fn evaluate(text: &str, data: &Data) -> Result<serde_json::Value, String> {
    search(&compile(text)?, data)
}

/// Whether `value` is true as JMESPath sees it: not null, false, an empty string, list or
/// object.
pub fn is_truthy(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null | serde_json::Value::Bool(false) => false,
        serde_json::Value::String(text) => !text.is_empty(),
        serde_json::Value::Array(items) => !items.is_empty(),
        serde_json::Value::Object(members) => !members.is_empty(),
        _ => true,
    }
}

/// `template` rendered over `data`: a template that is exactly one placeholder takes its
/// value's JSON type; otherwise each placeholder's value is written into the text (strings as
/// they are, null as nothing, other values as JSON).
pub fn render(template: &str, data: &Data) -> Result<serde_json::Value, String> {
    let parts = parse_template(template)?;
    if let [Part::Placeholder(expression)] = parts.as_slice() {
        return search(expression, data);
    }
    let mut text = String::with_capacity(template.len());
    for part in &parts {
        match part {
            Part::Text(literal) => text.push_str(literal),
            Part::Placeholder(expression) => match search(expression, data)? {
                serde_json::Value::String(value) => text.push_str(&value),
                serde_json::Value::Null => {}
                value => text.push_str(&value.to_string()),
            },
        }
    }
    Ok(serde_json::Value::String(text))
}

/// `template`, any JSON, with each of its strings rendered over `data` ([`render`]).
pub fn render_json(template: &serde_json::Value, data: &Data) -> Result<serde_json::Value, String> {
    Ok(match template {
        serde_json::Value::String(text) => render(text, data)?,
        serde_json::Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|item| render_json(item, data))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(members) => serde_json::Value::Object(
            members
                .iter()
                .map(|(key, member)| Ok((key.clone(), render_json(member, data)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Checks every string in `value` (a JSON template such as `transform.map`'s `output`) as a
/// template; lists each bad one as (JSON pointer, reason).
pub fn check_json_template(
    value: &serde_json::Value,
    pointer: &str,
    problems: &mut Vec<(String, String)>,
) {
    match value {
        serde_json::Value::String(text) => {
            if let Err(reason) = parse_template(text) {
                problems.push((pointer.to_owned(), reason));
            }
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check_json_template(item, &format!("{pointer}/{index}"), problems);
            }
        }
        serde_json::Value::Object(members) => {
            for (key, member) in members {
                check_json_template(member, &format!("{pointer}/{key}"), problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_compile_or_say_where_they_break() {
        assert!(compile("answers.email").is_ok());
        assert!(compile("items[?price > `10`].name | [0]").is_ok());
        let error = compile("answers.[").unwrap_err();
        assert!(error.starts_with("is not a JMESPath expression"), "{error}");
        assert_eq!(
            compile("  ").unwrap_err(),
            "must be a JMESPath expression, not empty"
        );
    }

    #[test]
    fn templates_split_into_text_and_placeholders() {
        let parts = parse_template("Hello {{ name }}, you owe {{amount}}.").unwrap();
        assert_eq!(parts.len(), 5);
        assert!(matches!(parts[0], Part::Text("Hello ")));
        assert!(matches!(parts[1], Part::Placeholder(_)));
        assert!(matches!(parts[4], Part::Text(".")));
        assert!(parse_template("plain text").unwrap().len() == 1);
        assert!(parse_template("").unwrap().is_empty());
        assert_eq!(
            parse_template("{{ name").unwrap_err(),
            "has a `{{` without its `}}`"
        );
        assert!(
            parse_template("{{ a.[ }}")
                .unwrap_err()
                .starts_with("has a placeholder that is not a JMESPath expression")
        );
    }

    proptest::proptest! {
        #[test]
        fn no_text_makes_the_parsers_panic(text in "\\PC{0,40}", inner in "[a-z.\\[\\]{}|&@`'0-9 ]{0,30}") {
            let _ = compile(&text);
            let _ = parse_template(&text);
            let _ = parse_template(&format!("x {{{{ {inner} }}}} y"));
        }
    }

    #[test]
    fn templates_render_typed_alone_and_as_text_among_text() {
        let input = data(&serde_json::json!({
            "name": "Ada", "age": 36, "tags": ["a", "b"], "none": null
        }))
        .unwrap();
        let render = |template: &str| render(template, &input).unwrap();
        assert_eq!(render("{{ age }}"), serde_json::json!(36));
        assert_eq!(render("{{ tags }}"), serde_json::json!(["a", "b"]));
        assert_eq!(
            render("{{name}} is {{ age }} [{{ none }}] {{ tags }}"),
            serde_json::json!("Ada is 36 [] [\"a\",\"b\"]")
        );
        assert_eq!(
            render("no placeholder"),
            serde_json::json!("no placeholder")
        );
        let template = serde_json::json!({"who": "{{ name }}", "n": 2, "list": ["{{ age }}"]});
        assert_eq!(
            render_json(&template, &input).unwrap(),
            serde_json::json!({"who": "Ada", "n": 2, "list": [36]})
        );
        let failed = super::render("{{ abs(name) }}", &input).unwrap_err();
        assert!(failed.starts_with("`abs(name)` failed"), "{failed}");
    }

    #[test]
    fn truthiness_follows_jmespath() {
        for falsy in [
            serde_json::json!(null),
            serde_json::json!(false),
            serde_json::json!(""),
            serde_json::json!([]),
            serde_json::json!({}),
        ] {
            assert!(!is_truthy(&falsy), "{falsy}");
        }
        for truthy in [
            serde_json::json!(0),
            serde_json::json!("x"),
            serde_json::json!([0]),
        ] {
            assert!(is_truthy(&truthy), "{truthy}");
        }
    }

    #[test]
    fn json_templates_report_each_bad_string_by_pointer() {
        let template = serde_json::json!({
            "name": "{{ answers.name }}",
            "tags": ["ok", "{{ broken.[ }}"],
            "nested": {"note": "{{ unclosed"},
            "count": 3
        });
        let mut problems = Vec::new();
        check_json_template(&template, "", &mut problems);
        let pointers: Vec<&str> = problems
            .iter()
            .map(|(pointer, _)| pointer.as_str())
            .collect();
        assert_eq!(pointers, ["/nested/note", "/tags/1"]);
    }
}
