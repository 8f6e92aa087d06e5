//! Path templates of `google.api.http` rules, and matching request paths against them.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! `{name}` is `{name=*}`. `**` matches any number of segments (zero included) and may only
//! end the template. A variable binds the path segments it covers, joined by `/`.

use std::fmt;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Must equal this text.
    Literal(String),
    /// Any one segment.
    Single,
    /// Any number of segments.
    Multi,
}

/// A variable: which field it binds and which segments it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Dotted field path, e.g. `tenant.name`.
    pub field_path: String,
    /// Index of its first segment in [`PathTemplate::segments`].
    pub start: usize,
    /// Index after its last segment.
    pub end: usize,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// The segments, variables expanded to their segments.
    pub segments: Vec<Segment>,
    /// The variables.
    pub variables: Vec<Variable>,
    /// The custom verb (`publish` in `...:publish`), if any.
    pub verb: Option<String>,
    text: String,
    /// What every matching path starts with: its leading literal segments. A lookup tries
    /// every route, so most are ruled out by this comparison alone.
    prefix: String,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path template {template:?}: {reason}")]
pub struct TemplateError {
    template: String,
    reason: &'static str,
}

/// Variable bindings of a matched path: field path and value.
pub type Bindings = Vec<(String, String)>;

impl PathTemplate {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<PathTemplate, TemplateError> {
        let error = |reason| TemplateError {
            template: text.to_owned(),
            reason,
        };
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| error("must start with /"))?;
        if rest.is_empty() {
            return Err(error("has no segments"));
        }
        // The verb is the text after the last ':' that is outside braces.
        let mut depth = 0_i32;
        let mut verb_at = None;
        for (index, character) in rest.char_indices() {
            match character {
                '{' => depth += 1,
                '}' => depth -= 1,
                ':' if depth == 0 => verb_at = Some(index),
                _ => {}
            }
            if !(0..=1).contains(&depth) {
                return Err(error("has unbalanced braces"));
            }
        }
        if depth != 0 {
            return Err(error("has unbalanced braces"));
        }
        let (body, verb) = match verb_at {
            Some(index) => {
                let verb = &rest[index + 1..];
                if verb.is_empty() || verb.contains('/') {
                    return Err(error("has a malformed verb"));
                }
                (&rest[..index], Some(verb.to_owned()))
            }
            None => (rest, None),
        };

        let mut segments = Vec::new();
        let mut variables = Vec::new();
        for part in split_outside_braces(body) {
            if let Some(inner) = part.strip_prefix('{') {
                let inner = inner
                    .strip_suffix('}')
                    .ok_or_else(|| error("has a malformed variable"))?;
                let (field_path, pattern) = match inner.split_once('=') {
                    Some((field_path, pattern)) => (field_path, pattern),
                    None => (inner, "*"),
                };
                if field_path.is_empty()
                    || !field_path.split('.').all(|name| {
                        !name.is_empty()
                            && name
                                .bytes()
                                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
                    })
                {
                    return Err(error("has a malformed field path"));
                }
                if variables
                    .iter()
                    .any(|variable: &Variable| variable.field_path == field_path)
                {
                    return Err(error("binds a field twice"));
                }
                let start = segments.len();
                for piece in pattern.split('/') {
                    segments.push(
                        parse_plain_segment(piece)
                            .ok_or_else(|| error("has a malformed segment"))?,
                    );
                }
                variables.push(Variable {
                    field_path: field_path.to_owned(),
                    start,
                    end: segments.len(),
                });
            } else {
                segments.push(
                    parse_plain_segment(part).ok_or_else(|| error("has a malformed segment"))?,
                );
            }
        }
        if let Some(position) = segments
            .iter()
            .position(|segment| *segment == Segment::Multi)
            && position + 1 != segments.len()
        {
            return Err(error("has ** before its last segment"));
        }
        let mut prefix = String::from("/");
        let literals = segments
            .iter()
            .map_while(|segment| match segment {
                Segment::Literal(literal) => Some(literal.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>();
        prefix.push_str(&literals.join("/"));
        // A `**` after them may match no segment, so no `/` is certain to follow.
        if !literals.is_empty()
            && matches!(
                segments.get(literals.len()),
                Some(Segment::Literal(_) | Segment::Single)
            )
        {
            prefix.push('/');
        }
        Ok(PathTemplate {
            segments,
            variables,
            verb,
            text: text.to_owned(),
            prefix,
        })
    }

    /// Matches a request path (without query, not yet percent-decoded); answers the variable
    /// bindings, percent-decoded.
    pub fn matches(&self, path: &str) -> Option<Bindings> {
        if !path.starts_with(self.prefix.as_str()) {
            return None;
        }
        let rest = path.strip_prefix('/')?;
        let body = match &self.verb {
            Some(verb) => rest.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => rest,
        };
        let parts: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        let mut cursor = 0;
        // positions[i] = (start, end) of the parts segment i covered.
        let mut positions = Vec::with_capacity(self.segments.len());
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => {
                    if parts.get(cursor).is_none_or(|part| part != literal) {
                        return None;
                    }
                    positions.push((cursor, cursor + 1));
                    cursor += 1;
                }
                Segment::Single => {
                    let part = parts.get(cursor)?;
                    if part.is_empty() {
                        return None;
                    }
                    positions.push((cursor, cursor + 1));
                    cursor += 1;
                }
                Segment::Multi => {
                    if parts[cursor..].iter().any(|part| part.is_empty()) {
                        return None;
                    }
                    positions.push((cursor, parts.len()));
                    cursor = parts.len();
                }
            }
        }
        if cursor != parts.len() {
            return None;
        }
        // A ':' in the last segment introduces a verb (as in grpc-gateway): `/tenants/abc:suspend`
        // does not match `/tenants/{id}` by binding `abc:suspend`.
        if self.verb.is_none() && parts.last().is_some_and(|last| last.contains(':')) {
            return None;
        }
        let mut bindings = Vec::with_capacity(self.variables.len());
        for variable in &self.variables {
            let from = positions
                .get(variable.start)
                .map_or(parts.len(), |position| position.0);
            let to = if variable.end == 0 {
                from
            } else {
                positions
                    .get(variable.end - 1)
                    .map_or(parts.len(), |position| position.1)
            };
            let multi = self.segments[variable.start..variable.end].contains(&Segment::Multi);
            let value = parts[from..to]
                .iter()
                .map(|part| decode(part, multi))
                .collect::<Option<Vec<_>>>()?
                .join("/");
            bindings.push((variable.field_path.clone(), value));
        }
        Some(bindings)
    }

    /// How specific the template is: literal segments first, then fewer wildcards. Among
    /// templates matching one path, the most specific wins.
    pub fn specificity(&self) -> (usize, usize, bool) {
        let literals = self
            .segments
            .iter()
            .filter(|segment| matches!(segment, Segment::Literal(_)))
            .count();
        let singles = self
            .segments
            .iter()
            .filter(|segment| **segment == Segment::Single)
            .count();
        (literals, singles, self.verb.is_some())
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

fn parse_plain_segment(text: &str) -> Option<Segment> {
    match text {
        "*" => Some(Segment::Single),
        "**" => Some(Segment::Multi),
        "" => None,
        literal
            if literal
                .chars()
                .all(|character| !matches!(character, '{' | '}' | '*' | '=' | '/')) =>
        {
            Some(Segment::Literal(literal.to_owned()))
        }
        _ => None,
    }
}

fn split_outside_braces(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (index, character) in text.char_indices() {
        match character {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Percent-decodes one segment. A single-segment variable may hold an encoded `/`; a
/// multi-segment one keeps `%2F` as is (RFC 6570 reserved expansion, as the spec says).
fn decode(part: &str, multi_segment: bool) -> Option<String> {
    if multi_segment {
        let kept = part.replace("%2F", "%252F").replace("%2f", "%252f");
        return percent_encoding::percent_decode_str(&kept)
            .decode_utf8()
            .ok()
            .map(|text| text.into_owned());
    }
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bindings(template: &str, path: &str) -> Option<Vec<(String, String)>> {
        PathTemplate::parse(template).unwrap().matches(path)
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn literals_and_single_wildcards() {
        assert_eq!(bindings("/api/v1/tenants", "/api/v1/tenants"), pairs(&[]));
        assert_eq!(bindings("/api/v1/tenants", "/api/v1/tenants/x"), None);
        assert_eq!(
            bindings("/api/v1/{name=tenants/*}", "/api/v1/tenants/abc"),
            pairs(&[("name", "tenants/abc")])
        );
        assert_eq!(
            bindings("/api/v1/{name=tenants/*}", "/api/v1/tenants/"),
            None
        );
        assert_eq!(
            bindings("/api/v1/{name=tenants/*}", "/api/v1/forms/abc"),
            None
        );
        assert_eq!(bindings("/v1/{id}", "/v1/a%20b"), pairs(&[("id", "a b")]));
        assert_eq!(bindings("/v1/{id}", "/v1/a%2Fb"), pairs(&[("id", "a/b")]));
    }

    #[test]
    fn several_variables_and_nested_fields() {
        assert_eq!(
            bindings(
                "/v1/{parent=forms/*}/submissions/{submission.id}",
                "/v1/forms/f1/submissions/s9"
            ),
            pairs(&[("parent", "forms/f1"), ("submission.id", "s9")])
        );
        assert_eq!(
            bindings(
                "/api/v1/{name=forms/*/versions/*}",
                "/api/v1/forms/f/versions/3"
            ),
            pairs(&[("name", "forms/f/versions/3")])
        );
    }

    #[test]
    fn double_wildcards_take_the_rest() {
        assert_eq!(
            bindings("/files/{path=**}", "/files/a/b/c.txt"),
            pairs(&[("path", "a/b/c.txt")])
        );
        assert_eq!(
            bindings("/files/{path=**}", "/files"),
            pairs(&[("path", "")])
        );
        assert_eq!(
            bindings("/files/{path=**}", "/files/a%2Fb/c"),
            pairs(&[("path", "a%2Fb/c")])
        );
        assert!(PathTemplate::parse("/files/**/x").is_err());
    }

    #[test]
    fn custom_verbs() {
        assert_eq!(
            bindings(
                "/api/v1/{name=tenants/*}:suspend",
                "/api/v1/tenants/abc:suspend"
            ),
            pairs(&[("name", "tenants/abc")])
        );
        assert_eq!(
            bindings(
                "/api/v1/{name=tenants/*}:suspend",
                "/api/v1/tenants/abc:reactivate"
            ),
            None
        );
        assert_eq!(
            bindings("/api/v1/{name=tenants/*}", "/api/v1/tenants/abc:suspend"),
            None
        );
        assert_eq!(
            bindings("/api/v1/auth:login", "/api/v1/auth:login"),
            pairs(&[])
        );
        assert_eq!(bindings("/api/v1/tenants:resolve", "/api/v1/tenants"), None);
        assert_eq!(
            bindings(
                "/api/v1/{webhook=workflows/*/webhooks/*}:trigger",
                "/api/v1/workflows/w/webhooks/h:trigger"
            ),
            pairs(&[("webhook", "workflows/w/webhooks/h")])
        );
    }

    #[test]
    fn specificity_prefers_literals() {
        let literal = PathTemplate::parse("/v1/items/special").unwrap();
        let wildcard = PathTemplate::parse("/v1/items/{id}").unwrap();
        assert!(literal.specificity() > wildcard.specificity());
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in [
            "", "v1/x", "/", "/{", "/{}", "/{a=}", "/{a=b", "/x}", "/{a}/{a}", "/x:", "/{a.}",
            "/a//b", "/{a={b}}",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parsing_and_matching_never_panic(template in "\\PC{0,40}", path in "\\PC{0,60}") {
            if let Ok(parsed) = PathTemplate::parse(&template) {
                let _ = parsed.matches(&path);
            }
        }

        #[test]
        fn matching_never_panics_on_real_templates(path in "(/[a-z0-9:%*{}]{0,6}){0,6}") {
            for template in ["/api/v1/{name=tenants/*}:suspend", "/files/{path=**}", "/v1/{a}/{b.c=x/*}"] {
                let _ = PathTemplate::parse(template).unwrap().matches(&path);
            }
        }
    }
}
