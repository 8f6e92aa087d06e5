//! Wire -> domain: every request is checked here into domain types, collecting one field
//! violation per bad field, named by its path in the request (`form.fields[2].options`).

use chrono::{DateTime, Utc};
use platform::error::FieldViolations;
use platform::paging::{Listing, decode_page_position, page_size, time_and_id, time_and_id_token};
use platform::wire::{enum_field, enum_filter, expected_version, from_timestamp, mask_paths};
use proto::formflow::forms::v1 as wire;
use serde_json::{Map, Value};

use crate::domain::ViewId;
use crate::domain::answers::MAX_DATA_BYTES;
use crate::domain::field::{MAX_CHOICES, RATING_MAX, TEXTAREA_MAX, normalise_email};
use crate::domain::form::MAX_RECIPIENTS;
use crate::domain::{
    Analysis, Choice, Condition, Constraints, Definition, Field, FieldId, FieldKind, FormId,
    FormSlug, FormState, Operator, Pattern, Settings, SettingsPart, SubmissionId, check_definition,
};
use crate::export::Format;
use crate::operations::{
    AnalyticsQuery, FormChanges, Interval, NewForm, NewSubmission, SubmissionQuery,
};
use crate::store::{FormPosition, FormRef, SubmissionFilter, SubmissionPosition};

/// The form a resource name `forms/{id or slug}` names.
pub fn form_ref(violations: &mut FieldViolations, field: &str, name: &str) -> Option<FormRef> {
    let parsed = name
        .strip_prefix("forms/")
        .and_then(|rest| match FormId::parse(rest) {
            Ok(id) => Some(FormRef::Id(id)),
            Err(_) => FormSlug::parse(rest).ok().map(FormRef::Slug),
        });
    if parsed.is_none() {
        violations.add(
            field,
            "must be a form resource name, forms/{id} or forms/{slug}",
        );
    }
    parsed
}

/// Checks a request that only names a form.
pub fn form_only(name: &str) -> Result<FormRef, FieldViolations> {
    let mut violations = FieldViolations::new();
    form_ref(&mut violations, "name", name).ok_or(violations)
}

/// The form a hosted page names by its slug.
pub fn page_form(slug: &str) -> Result<FormRef, FieldViolations> {
    FormSlug::parse(slug)
        .map(FormRef::Slug)
        .map_err(|reason| FieldViolations::single("slug", reason))
}

/// The form and child id a name `forms/{form}/{collection}/{child}` names.
fn child_name<'a>(
    violations: &mut FieldViolations,
    field: &str,
    name: &'a str,
    collection: &str,
) -> Option<(FormRef, &'a str)> {
    let parsed = name.strip_prefix("forms/").and_then(|rest| {
        let (form, child) = rest.split_once(&format!("/{collection}/"))?;
        let form = match FormId::parse(form) {
            Ok(id) => FormRef::Id(id),
            Err(_) => FormRef::Slug(FormSlug::parse(form).ok()?),
        };
        Some((form, child))
    });
    if parsed.is_none() {
        violations.add(
            field,
            format!("must be a resource name, forms/{{form}}/{collection}/{{id}}"),
        );
    }
    parsed
}

/// The form and version a name `forms/{form}/versions/{version}` names.
pub fn version_name(name: &str) -> Result<(FormRef, i32), FieldViolations> {
    let mut violations = FieldViolations::new();
    let parsed = child_name(&mut violations, "name", name, "versions")
        .and_then(|(form, version)| Some((form, version.parse::<i32>().ok().filter(|v| *v > 0)?)));
    match parsed {
        Some(parsed) => Ok(parsed),
        None if violations.is_empty() => Err(FieldViolations::single(
            "name",
            "must name a version number from 1, forms/{form}/versions/{version}",
        )),
        None => Err(violations),
    }
}

/// The form and submission a name `forms/{form}/submissions/{id}` names.
pub fn submission_name(name: &str) -> Result<(FormRef, SubmissionId), FieldViolations> {
    let mut violations = FieldViolations::new();
    let parsed = child_name(&mut violations, "name", name, "submissions")
        .and_then(|(form, id)| Some((form, SubmissionId::parse(id).ok()?)));
    match parsed {
        Some(parsed) => Ok(parsed),
        None if violations.is_empty() => Err(FieldViolations::single(
            "name",
            "must name a submission id, forms/{form}/submissions/{uuid}",
        )),
        None => Err(violations),
    }
}

/// Checks CreateForm. Output-only fields are ignored, as AIP-203 says.
pub fn new_form(request: wire::CreateFormRequest) -> Result<NewForm, FieldViolations> {
    let Some(form) = request.form else {
        return Err(FieldViolations::single("form", "is required"));
    };
    let mut violations = FieldViolations::new();
    let slug = if form.slug.is_empty() {
        Some(None)
    } else {
        violations
            .check("form.slug", FormSlug::parse(&form.slug))
            .map(Some)
    };
    let title = title(&mut violations, &form.title);
    let description = description(&mut violations, &form.description);
    let fields = fields(&mut violations, &form.fields);
    let settings = settings(&mut violations, form.settings);
    match (slug, title, description, fields, settings) {
        (Some(slug), Some(title), Some(description), Some(fields), Some(settings))
            if violations.is_empty() =>
        {
            Ok(NewForm {
                slug,
                draft: Definition {
                    title,
                    description,
                    fields,
                },
                settings,
            })
        }
        _ => Err(violations),
    }
}

/// Checks UpdateForm: the form's name and the fields its mask names.
pub fn form_changes(
    request: wire::UpdateFormRequest,
) -> Result<(FormRef, FormChanges), FieldViolations> {
    let Some(form) = request.form else {
        return Err(FieldViolations::single("form", "is required"));
    };
    let mut violations = FieldViolations::new();
    let target = form_ref(&mut violations, "form.name", &form.name);
    let paths = mask_paths(request.update_mask.as_ref());
    if paths.is_empty() {
        violations.add(
            "update_mask",
            "must name the fields to change: title, description, fields, settings (or settings.<name>)",
        );
    }
    let mut changes = FormChanges {
        expected_version: expected_version(&mut violations, "form.etag", &form.etag),
        ..FormChanges::default()
    };
    let mut settings_parts = Vec::new();
    for path in &paths {
        match path.as_str() {
            "title" => changes.title = title(&mut violations, &form.title),
            "description" => changes.description = description(&mut violations, &form.description),
            "fields" => changes.fields = fields(&mut violations, &form.fields),
            "slug" => violations.add("update_mask", "slug never changes"),
            other => match SettingsPart::from_path(other) {
                Some(part) => settings_parts.push(part),
                None => violations.add(
                    "update_mask",
                    format!("{other:?} is not an updatable field (title, description, fields, settings, settings.<name>)"),
                ),
            },
        }
    }
    if !settings_parts.is_empty() {
        changes.settings =
            settings(&mut violations, form.settings).map(|new| (new, settings_parts));
    }
    match target {
        Some(target) if violations.is_empty() => Ok((target, changes)),
        _ => Err(violations),
    }
}

/// Checks PublishForm.
pub fn publish(
    request: &wire::PublishFormRequest,
) -> Result<(FormRef, Option<i64>), FieldViolations> {
    let mut violations = FieldViolations::new();
    let form = form_ref(&mut violations, "name", &request.name);
    let version = expected_version(&mut violations, "etag", &request.etag);
    match form {
        Some(form) if violations.is_empty() => Ok((form, version)),
        _ => Err(violations),
    }
}

fn title(violations: &mut FieldViolations, text: &str) -> Option<String> {
    let title = text.trim();
    let length = title.chars().count();
    if !(1..=200).contains(&length) || title.chars().any(char::is_control) {
        violations.add(
            "form.title",
            "must be 1 to 200 characters, without control characters",
        );
        return None;
    }
    Some(title.to_owned())
}

fn description(violations: &mut FieldViolations, text: &str) -> Option<String> {
    if text.chars().count() > 2_000 {
        violations.add("form.description", "must be at most 2000 characters");
        return None;
    }
    Some(text.to_owned())
}

fn fields(violations: &mut FieldViolations, fields: &[wire::FormField]) -> Option<Vec<Field>> {
    let parsed: Vec<Option<Field>> = fields
        .iter()
        .enumerate()
        .map(|(index, field)| self::field(violations, &format!("form.fields[{index}]"), field))
        .collect();
    let parsed: Vec<Field> = parsed.into_iter().collect::<Option<_>>()?;
    match check_definition(parsed) {
        Ok(checked) => Some(checked),
        Err(problems) => {
            for (path, reason) in problems {
                violations.add(format!("form.{path}"), reason);
            }
            None
        }
    }
}

fn kind_from_proto(kind: wire::FieldType) -> Option<FieldKind> {
    Some(match kind {
        wire::FieldType::Unspecified => return None,
        wire::FieldType::Text => FieldKind::Text,
        wire::FieldType::Textarea => FieldKind::TextArea,
        wire::FieldType::Email => FieldKind::Email,
        wire::FieldType::Number => FieldKind::Number,
        wire::FieldType::Integer => FieldKind::Integer,
        wire::FieldType::Phone => FieldKind::Phone,
        wire::FieldType::Url => FieldKind::Url,
        wire::FieldType::Date => FieldKind::Date,
        wire::FieldType::DateTime => FieldKind::DateTime,
        wire::FieldType::Select => FieldKind::Select,
        wire::FieldType::Radio => FieldKind::Radio,
        wire::FieldType::MultiSelect => FieldKind::MultiSelect,
        wire::FieldType::Checkbox => FieldKind::Checkbox,
        wire::FieldType::Rating => FieldKind::Rating,
        wire::FieldType::Hidden => FieldKind::Hidden,
        wire::FieldType::Section => FieldKind::Section,
    })
}

/// Checks one field on its own; [`check_definition`] checks them together.
fn field(violations: &mut FieldViolations, path: &str, field: &wire::FormField) -> Option<Field> {
    let before = violations.violations().len();
    let id = violations.check(&format!("{path}.id"), FieldId::parse(&field.id));
    let kind = enum_field(
        violations,
        &format!("{path}.type"),
        field.r#type,
        kind_from_proto,
    );
    let label = field.label.trim();
    if !(1..=200).contains(&label.chars().count()) {
        violations.add(format!("{path}.label"), "must be 1 to 200 characters");
    }
    if field.help_text.chars().count() > 1_000 {
        violations.add(
            format!("{path}.help_text"),
            "must be at most 1000 characters",
        );
    }
    if field.placeholder.chars().count() > 200 {
        violations.add(
            format!("{path}.placeholder"),
            "must be at most 200 characters",
        );
    }
    let (Some(id), Some(kind)) = (id, kind) else {
        return None;
    };
    if kind == FieldKind::Section && field.required {
        violations.add(format!("{path}.required"), "a section takes no answer");
    }
    let validation = field.validation.clone().unwrap_or_default();
    let constraints = constraints(violations, &format!("{path}.validation"), kind, &validation);
    if validation.error_message.chars().count() > 200 {
        violations.add(
            format!("{path}.validation.error_message"),
            "must be at most 200 characters",
        );
    }
    let choices = choices(violations, &format!("{path}.options"), kind, &field.options);
    let default = json_value(field.default_value.as_ref());
    if default.is_some() && kind == FieldKind::Section {
        violations.add(format!("{path}.default_value"), "a section takes no answer");
    }
    let visible_when = condition(
        violations,
        &format!("{path}.visible_when"),
        field.visible_when.as_ref(),
    );
    let required_when = condition(
        violations,
        &format!("{path}.required_when"),
        field.required_when.as_ref(),
    );
    if violations.violations().len() > before {
        return None;
    }
    Some(Field {
        id,
        kind,
        label: label.to_owned(),
        help_text: field.help_text.clone(),
        placeholder: field.placeholder.clone(),
        required: field.required,
        constraints: constraints?,
        error_message: validation.error_message,
        choices: choices?,
        default,
        visible_when: visible_when?,
        required_when: required_when?,
    })
}

fn constraints(
    violations: &mut FieldViolations,
    path: &str,
    kind: FieldKind,
    validation: &wire::FieldValidation,
) -> Option<Constraints> {
    let before = violations.violations().len();
    let mut refuse = |name: &str, given: bool, applies: bool| {
        if given && !applies {
            violations.add(
                format!("{path}.{name}"),
                format!("does not apply to {kind:?} fields"),
            );
        }
    };
    refuse(
        "min_length",
        validation.min_length.is_some(),
        kind.has_length(),
    );
    refuse(
        "max_length",
        validation.max_length.is_some(),
        kind.has_length(),
    );
    refuse("pattern", !validation.pattern.is_empty(), kind.has_length());
    refuse("min", validation.min.is_some(), kind.has_range());
    refuse(
        "max",
        validation.max.is_some(),
        kind.has_range() || kind == FieldKind::Rating,
    );
    refuse(
        "min_selected",
        validation.min_selected.is_some(),
        kind == FieldKind::MultiSelect,
    );
    refuse(
        "max_selected",
        validation.max_selected.is_some(),
        kind == FieldKind::MultiSelect,
    );
    if validation
        .max_length
        .is_some_and(|max| max == 0 || max > TEXTAREA_MAX)
    {
        violations.add(
            format!("{path}.max_length"),
            format!("must be 1 to {TEXTAREA_MAX}"),
        );
    }
    if let (Some(min), Some(max)) = (validation.min_length, validation.max_length)
        && min > max
    {
        violations.add(format!("{path}.min_length"), "must not exceed max_length");
    }
    if [validation.min, validation.max]
        .iter()
        .flatten()
        .any(|bound| !bound.is_finite())
    {
        violations.add(format!("{path}.min"), "bounds must be finite numbers");
    }
    if let (Some(min), Some(max)) = (validation.min, validation.max)
        && min > max
    {
        violations.add(format!("{path}.min"), "must not exceed max");
    }
    if kind == FieldKind::Rating
        && let Some(max) = validation.max
        && !(max.fract() == 0.0 && (2.0..=f64::from(RATING_MAX)).contains(&max))
    {
        violations.add(
            format!("{path}.max"),
            format!("must be a whole number from 2 to {RATING_MAX}"),
        );
    }
    if let (Some(min), Some(max)) = (validation.min_selected, validation.max_selected)
        && min > max
    {
        violations.add(
            format!("{path}.min_selected"),
            "must not exceed max_selected",
        );
    }
    let pattern = if validation.pattern.is_empty() {
        None
    } else {
        violations.check(
            &format!("{path}.pattern"),
            Pattern::parse(&validation.pattern),
        )
    };
    if violations.violations().len() > before {
        return None;
    }
    Some(Constraints {
        min_length: validation.min_length,
        max_length: validation.max_length,
        min: validation.min,
        max: validation.max,
        pattern,
        min_selected: validation.min_selected,
        max_selected: validation.max_selected,
    })
}

fn choices(
    violations: &mut FieldViolations,
    path: &str,
    kind: FieldKind,
    options: &[wire::FieldOption],
) -> Option<Vec<Choice>> {
    if !kind.has_choices() {
        if !options.is_empty() {
            violations.add(
                path,
                "only SELECT, RADIO and MULTI_SELECT fields have options",
            );
            return None;
        }
        return Some(Vec::new());
    }
    if options.is_empty() || options.len() > MAX_CHOICES {
        violations.add(path, format!("must have 1 to {MAX_CHOICES} options"));
        return None;
    }
    let before = violations.violations().len();
    let mut choices: Vec<Choice> = Vec::with_capacity(options.len());
    for (index, option) in options.iter().enumerate() {
        if !(1..=100).contains(&option.value.chars().count()) {
            violations.add(
                format!("{path}[{index}].value"),
                "must be 1 to 100 characters",
            );
        } else if choices.iter().any(|choice| choice.value == option.value) {
            violations.add(format!("{path}[{index}].value"), "is used twice");
        }
        if !(1..=200).contains(&option.label.trim().chars().count()) {
            violations.add(
                format!("{path}[{index}].label"),
                "must be 1 to 200 characters",
            );
        }
        choices.push(Choice {
            value: option.value.clone(),
            label: option.label.trim().to_owned(),
        });
    }
    (violations.violations().len() == before).then_some(choices)
}

fn operator_from_proto(operator: wire::ConditionOperator) -> Option<Operator> {
    Some(match operator {
        wire::ConditionOperator::Unspecified => return None,
        wire::ConditionOperator::Equals => Operator::Equals,
        wire::ConditionOperator::NotEquals => Operator::NotEquals,
        wire::ConditionOperator::Contains => Operator::Contains,
        wire::ConditionOperator::GreaterThan => Operator::GreaterThan,
        wire::ConditionOperator::LessThan => Operator::LessThan,
        wire::ConditionOperator::Answered => Operator::Answered,
        wire::ConditionOperator::NotAnswered => Operator::NotAnswered,
    })
}

/// A condition as sent; whether it fits the field it tests is checked with the whole form.
/// `Some(None)` when there is none.
fn condition(
    violations: &mut FieldViolations,
    path: &str,
    condition: Option<&wire::FieldCondition>,
) -> Option<Option<Condition>> {
    let Some(condition) = condition else {
        return Some(None);
    };
    let field_id = violations.check(
        &format!("{path}.field_id"),
        FieldId::parse(&condition.field_id),
    );
    let operator = enum_field(
        violations,
        &format!("{path}.operator"),
        condition.operator,
        operator_from_proto,
    );
    Some(Some(Condition {
        field_id: field_id?,
        operator: operator?,
        value: json_value(condition.value.as_ref()),
    }))
}

/// A `google.protobuf.Value` as JSON; `None` for an unset or null value.
fn json_value(value: Option<&pbjson_types::Value>) -> Option<Value> {
    serde_json::to_value(value?)
        .ok()
        .filter(|value| !value.is_null())
}

fn time(
    violations: &mut FieldViolations,
    path: &str,
    time: Option<&pbjson_types::Timestamp>,
) -> Option<Option<DateTime<Utc>>> {
    let Some(time) = time else {
        return Some(None);
    };
    let parsed = from_timestamp(time);
    if parsed.is_none() {
        violations.add(path, "is not a valid time");
    }
    parsed.map(Some)
}

fn settings(
    violations: &mut FieldViolations,
    settings: Option<wire::FormSettings>,
) -> Option<Settings> {
    let settings = settings.unwrap_or_default();
    let before = violations.violations().len();
    let open_time = time(
        violations,
        "form.settings.open_time",
        settings.open_time.as_ref(),
    );
    let close_time = time(
        violations,
        "form.settings.close_time",
        settings.close_time.as_ref(),
    );
    let max_submissions = u32::try_from(settings.max_submissions).ok();
    if max_submissions.is_none() {
        violations.add("form.settings.max_submissions", "must not be negative");
    }
    if settings.confirmation_message.chars().count() > 2_000 {
        violations.add(
            "form.settings.confirmation_message",
            "must be at most 2000 characters",
        );
    }
    let redirect = &settings.redirect_url;
    let valid_redirect = redirect.is_empty()
        || (redirect.len() <= 2_048
            && url::Url::parse(redirect)
                .is_ok_and(|url| url.scheme() == "https" && url.host_str().is_some()));
    if !valid_redirect {
        violations.add(
            "form.settings.redirect_url",
            "must be an absolute https URL of at most 2048 characters",
        );
    }
    if settings.notification_recipients.len() > MAX_RECIPIENTS {
        violations.add(
            "form.settings.notification_recipients",
            format!("must list at most {MAX_RECIPIENTS} addresses"),
        );
    }
    let mut recipients = Vec::new();
    for (index, recipient) in settings.notification_recipients.iter().enumerate() {
        match normalise_email(recipient) {
            Some(email) => recipients.push(email),
            None => violations.add(
                format!("form.settings.notification_recipients[{index}]"),
                "must be an email address",
            ),
        }
    }
    let analysis = settings.analysis.unwrap_or_default();
    if !analysis.label_set.is_empty() {
        platform::wire::parse_resource_name::<uuid::Uuid>(
            violations,
            "form.settings.analysis.label_set",
            &analysis.label_set,
            "labelSets",
        );
    }
    if violations.violations().len() > before {
        return None;
    }
    let parsed = Settings {
        public_submissions: settings.public_submissions,
        closed: settings.closed,
        open_time: open_time?,
        close_time: close_time?,
        max_submissions: max_submissions?,
        confirmation_message: settings.confirmation_message,
        redirect_url: settings.redirect_url,
        notification_recipients: recipients,
        require_start_token: settings.require_start_token,
        analysis: Analysis {
            enabled: analysis.enabled,
            label_set: analysis.label_set,
        },
    };
    if let Some((field, reason)) = parsed.conflict() {
        violations.add(format!("form.{field}"), reason);
        return None;
    }
    Some(parsed)
}

fn state_filter(state: wire::FormState) -> Option<FormState> {
    match state {
        wire::FormState::Unspecified => None,
        wire::FormState::Draft => Some(FormState::Draft),
        wire::FormState::Published => Some(FormState::Published),
        wire::FormState::Archived => Some(FormState::Archived),
    }
}

/// What ListForms lists.
#[derive(Debug)]
pub struct FormFilter {
    /// Only forms in this state.
    pub state: Option<FormState>,
    /// Only forms whose title contains this.
    pub search: Option<String>,
}

/// Checks ListForms.
pub fn list_forms(
    request: &wire::ListFormsRequest,
) -> Result<Listing<FormFilter, FormPosition>, FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = page_size(&mut violations, request.page_size);
    let state = enum_filter(&mut violations, "state", request.state, state_filter);
    if request.search.chars().count() > 100 {
        violations.add("search", "must be at most 100 characters");
    }
    let filter = FormFilter {
        state,
        search: (!request.search.is_empty()).then(|| request.search.clone()),
    };
    let key = format!("state={}&search={}", request.state, request.search);
    Listing::by_time_and_id(violations, filter, key, size, &request.page_token)
}

/// Checks ListFormVersions: the form, the version the page starts before, the page size.
pub fn list_versions(
    request: &wire::ListFormVersionsRequest,
) -> Result<Listing<FormRef, i32>, FieldViolations> {
    let mut violations = FieldViolations::new();
    let form = form_ref(&mut violations, "parent", &request.parent);
    let size = page_size(&mut violations, request.page_size);
    Listing::of_versions(violations, form, &request.parent, size, &request.page_token)
}

/// Checks SubmitForm.
pub fn submit(request: wire::SubmitFormRequest) -> Result<NewSubmission, FieldViolations> {
    let mut violations = FieldViolations::new();
    let form = form_ref(&mut violations, "parent", &request.parent);
    let start_token = match request.start_token.as_str() {
        "" => Some(None),
        token => {
            let parsed = uuid::Uuid::try_parse(token).ok().map(ViewId::from);
            if parsed.is_none() {
                violations.add("start_token", "is not a start token from GetPublishedForm");
            }
            parsed.map(Some)
        }
    };
    let data = match request.submission.and_then(|submission| submission.data) {
        None => {
            violations.add("submission.data", "is required");
            None
        }
        Some(data) => match serde_json::to_value(&data) {
            Ok(Value::Object(data))
                if serde_json::to_vec(&data).map_or(0, |bytes| bytes.len()) <= MAX_DATA_BYTES =>
            {
                Some(data)
            }
            _ => {
                violations.add(
                    "submission.data",
                    format!("must be a JSON object of at most {MAX_DATA_BYTES} bytes"),
                );
                None
            }
        },
    };
    match (form, data, start_token) {
        (Some(form), Some(data), Some(start_token)) => Ok(NewSubmission {
            form,
            data,
            start_token,
            honeypot_filled: !request.honeypot.is_empty(),
        }),
        _ => Err(violations),
    }
}

/// What a page of ListSubmissions asks for, and how its next page token is made.
#[derive(Debug)]
pub struct SubmissionListing {
    /// The form.
    pub form: FormRef,
    /// The page.
    pub query: SubmissionQuery,
    filter: String,
}

impl SubmissionListing {
    /// The token of the page after `next`.
    pub fn next_page_token(&self, next: Option<SubmissionPosition>) -> String {
        time_and_id_token(&self.filter, next)
    }
}

/// Checks ListSubmissions, with its AIP-160 `filter` (`data.<field> = <JSON value>` joined by
/// `AND`) and `order_by`.
pub fn list_submissions(
    request: &wire::ListSubmissionsRequest,
) -> Result<SubmissionListing, FieldViolations> {
    let mut violations = FieldViolations::new();
    let form = form_ref(&mut violations, "parent", &request.parent);
    let page_size = page_size(&mut violations, request.page_size);
    let filter = submission_filter(
        &mut violations,
        request.form_version,
        request.start_time.as_ref(),
        request.end_time.as_ref(),
        &request.filter,
    );
    let oldest_first = match request.order_by.trim() {
        "" | "create_time desc" => false,
        "create_time" | "create_time asc" => true,
        _ => {
            violations.add(
                "order_by",
                "must be `create_time desc` (the default) or `create_time`",
            );
            false
        }
    };
    let token_filter = format!(
        "{}|{}|{:?}|{:?}|{}|{oldest_first}",
        request.parent, request.form_version, request.start_time, request.end_time, request.filter
    );
    let after = decode_page_position(
        &mut violations,
        &request.page_token,
        &token_filter,
        time_and_id::<SubmissionId>,
    );
    let (Some(form), Some(filter)) = (form, filter) else {
        return Err(violations);
    };
    violations.into_result()?;
    Ok(SubmissionListing {
        form,
        query: SubmissionQuery {
            filter,
            oldest_first,
            after,
            page_size,
        },
        filter: token_filter,
    })
}

/// Checks ExportSubmissions: the form, the file format and the same filters as
/// ListSubmissions.
pub fn export_submissions(
    request: &wire::ExportSubmissionsRequest,
) -> Result<(FormRef, SubmissionFilter, Format), FieldViolations> {
    let mut violations = FieldViolations::new();
    let form = form_ref(&mut violations, "parent", &request.parent);
    let filter = submission_filter(
        &mut violations,
        request.form_version,
        request.start_time.as_ref(),
        request.end_time.as_ref(),
        &request.filter,
    );
    let format = enum_field(
        &mut violations,
        "format",
        request.format,
        |format| match format {
            wire::ExportFormat::Csv => Some(Format::Csv),
            wire::ExportFormat::Ndjson => Some(Format::Ndjson),
            wire::ExportFormat::Unspecified => None,
        },
    );
    match (form, filter, format) {
        (Some(form), Some(filter), Some(format)) => {
            violations.into_result()?;
            Ok((form, filter, format))
        }
        _ => Err(violations),
    }
}

/// Longest period of GetFormAnalytics.
const MAX_ANALYTICS_DAYS: i64 = 400;
/// Most buckets of GetFormAnalytics.
const MAX_ANALYTICS_BUCKETS: i64 = 1_000;

/// Checks GetFormAnalytics: the form, the period (30 days up to `now` unless it says
/// otherwise), the interval and the time zone. Also the key its answer is cached under, made
/// of the request as sent, so that a period ending "now" is served from the cache for a
/// minute.
pub fn analytics(
    request: &wire::GetFormAnalyticsRequest,
    now: DateTime<Utc>,
) -> Result<(FormRef, AnalyticsQuery, String), FieldViolations> {
    let mut violations = FieldViolations::new();
    let form = match request.name.strip_suffix("/analytics") {
        Some(form) => form_ref(&mut violations, "name", form),
        None => {
            violations.add("name", "must be forms/{form}/analytics");
            None
        }
    };
    let end = time(&mut violations, "end_time", request.end_time.as_ref());
    let start = time(&mut violations, "start_time", request.start_time.as_ref());
    let interval = enum_field(&mut violations, "interval", request.interval, |interval| {
        Some(match interval {
            wire::AnalyticsInterval::Hour => Interval::Hour,
            wire::AnalyticsInterval::Unspecified | wire::AnalyticsInterval::Day => Interval::Day,
            wire::AnalyticsInterval::Week => Interval::Week,
        })
    });
    let time_zone = match request.time_zone.as_str() {
        "" => "UTC".to_owned(),
        zone => zone.to_owned(),
    };
    let plausible_zone = time_zone.len() <= 64
        && time_zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-'));
    if !plausible_zone {
        violations.add("time_zone", "is not an IANA time zone (`Europe/Paris`)");
    }
    let (Some(form), Some(end), Some(start), Some(interval)) = (form, end, start, interval) else {
        return Err(violations);
    };
    let end = end.unwrap_or(now);
    let start = start.unwrap_or(end - chrono::Duration::days(30));
    if start >= end {
        violations.add("start_time", "must be before end_time");
    } else if end - start > chrono::Duration::days(MAX_ANALYTICS_DAYS) {
        violations.add(
            "end_time",
            format!("must be at most {MAX_ANALYTICS_DAYS} days after start_time"),
        );
    } else if (end - start).num_seconds() / interval.length().num_seconds() >= MAX_ANALYTICS_BUCKETS
    {
        violations.add(
            "interval",
            format!(
                "makes more than {MAX_ANALYTICS_BUCKETS} buckets: choose a longer interval or a shorter period"
            ),
        );
    }
    violations.into_result()?;
    let cache_key = format!(
        "{:?}|{:?}|{interval:?}|{time_zone}",
        request.start_time.as_ref().map(|t| (t.seconds, t.nanos)),
        request.end_time.as_ref().map(|t| (t.seconds, t.nanos)),
    );
    Ok((
        form,
        AnalyticsQuery {
            start,
            end,
            interval,
            time_zone,
        },
        cache_key,
    ))
}

/// The submissions a listing or an export takes: by version, receipt time and answers.
fn submission_filter(
    violations: &mut FieldViolations,
    form_version: i32,
    start_time: Option<&pbjson_types::Timestamp>,
    end_time: Option<&pbjson_types::Timestamp>,
    filter: &str,
) -> Option<SubmissionFilter> {
    if form_version < 0 {
        violations.add("form_version", "must not be negative");
    }
    let start_time = time(violations, "start_time", start_time);
    let end_time = time(violations, "end_time", end_time);
    let answers = answer_filter(violations, filter);
    Some(SubmissionFilter {
        form_version: (form_version > 0).then_some(form_version),
        start_time: start_time?,
        end_time: end_time?,
        answers: answers?,
    })
}

/// The longest `filter` taken: conditions on a few answers, not documents.
const FILTER_MAX: usize = 2000;

fn answer_filter(violations: &mut FieldViolations, filter: &str) -> Option<Map<String, Value>> {
    let mut answers = Map::new();
    if filter.trim().is_empty() {
        return Some(answers);
    }
    if filter.chars().count() > FILTER_MAX {
        violations.add("filter", format!("must be at most {FILTER_MAX} characters"));
        return None;
    }
    for condition in filter.split(" AND ") {
        let parsed = condition.split_once('=').and_then(|(field, value)| {
            let field = FieldId::parse(field.trim().strip_prefix("data.")?).ok()?;
            let value: Value = serde_json::from_str(value.trim()).ok()?;
            Some((field, value))
        });
        match parsed {
            Some((field, value)) => {
                answers.insert(field.to_string(), value);
            }
            None => {
                violations.add(
                    "filter",
                    format!(
                        "{:?} is not `data.<field_id> = <JSON value>`",
                        condition.trim().chars().take(100).collect::<String>()
                    ),
                );
                return None;
            }
        }
    }
    Some(answers)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        let form = |field| proto::published_limits("formflow.forms.v1.Form", field);
        let mut violations = FieldViolations::new();
        let titles = form("title");
        assert!(title(&mut violations, &"t".repeat(titles.max_length as usize)).is_some());
        assert!(title(&mut violations, &"t".repeat(titles.min_length as usize)).is_some());
        assert!(
            description(
                &mut violations,
                &"d".repeat(form("description").max_length as usize)
            )
            .is_some()
        );
        assert!(violations.is_empty(), "{violations:?}");
        assert!(title(&mut violations, &"t".repeat(titles.max_length as usize + 1)).is_none());
        assert!(
            description(
                &mut violations,
                &"d".repeat(form("description").max_length as usize + 1)
            )
            .is_none()
        );
        assert_eq!(
            form("fields").max_items as usize,
            crate::domain::definition::MAX_FIELDS
        );
        let options = proto::published_limits("formflow.forms.v1.FormField", "options");
        assert_eq!(options.max_items as usize, MAX_CHOICES);
        let recipients =
            proto::published_limits("formflow.forms.v1.FormSettings", "notification_recipients");
        assert_eq!(recipients.max_items as usize, MAX_RECIPIENTS);
    }

    fn field(id: &str, kind: wire::FieldType) -> wire::FormField {
        wire::FormField {
            id: id.into(),
            r#type: kind as i32,
            label: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn every_bad_part_of_a_definition_is_reported() {
        let mut select = field("plan", wire::FieldType::Select);
        select.options = vec![
            wire::FieldOption {
                value: "a".into(),
                label: "A".into(),
            },
            wire::FieldOption {
                value: "a".into(),
                label: String::new(),
            },
        ];
        let mut text = field("notes", wire::FieldType::Text);
        text.validation = Some(wire::FieldValidation {
            pattern: "(".into(),
            min_selected: Some(1),
            ..Default::default()
        });
        let mut logic = field("later", wire::FieldType::Text);
        logic.visible_when = Some(wire::FieldCondition {
            field_id: "missing".into(),
            operator: wire::ConditionOperator::Answered as i32,
            value: None,
        });
        let request = wire::CreateFormRequest {
            form: Some(wire::Form {
                title: " ".into(),
                slug: "Bad Slug".into(),
                fields: vec![
                    select,
                    text,
                    field("bad id", wire::FieldType::Text),
                    field("x", wire::FieldType::Unspecified),
                ],
                settings: Some(wire::FormSettings {
                    redirect_url: "http://example.org".into(),
                    notification_recipients: vec!["nope".into()],
                    analysis: Some(wire::AnalysisSettings {
                        enabled: true,
                        label_set: "labelSets/support".into(),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        let violations = new_form(request).unwrap_err();
        assert_eq!(
            violations.fields(),
            [
                "form.slug",
                "form.title",
                "form.fields[0].options[1].value",
                "form.fields[0].options[1].label",
                "form.fields[1].validation.min_selected",
                "form.fields[1].validation.pattern",
                "form.fields[2].id",
                "form.fields[3].type",
                "form.settings.redirect_url",
                "form.settings.notification_recipients[0]",
                "form.settings.analysis.label_set",
            ]
        );
        // Logic is checked once every field is valid on its own.
        let request = wire::CreateFormRequest {
            form: Some(wire::Form {
                title: "Support".into(),
                fields: vec![logic],
                ..Default::default()
            }),
        };
        assert_eq!(
            new_form(request).unwrap_err().fields(),
            ["form.fields[0].visible_when.field_id"]
        );
    }

    #[test]
    fn names_take_ids_and_slugs() {
        let id = FormId::generate();
        assert_eq!(form_only(&format!("forms/{id}")).unwrap(), FormRef::Id(id));
        assert_eq!(
            form_only("forms/contact-us").unwrap(),
            FormRef::Slug(FormSlug::parse("contact-us").unwrap())
        );
        for bad in ["contact-us", "forms/", "forms/a/b", "tenants/x"] {
            assert!(form_only(bad).is_err(), "{bad}");
        }
        assert_eq!(
            version_name(&format!("forms/{id}/versions/3")).unwrap(),
            (FormRef::Id(id), 3)
        );
        assert!(version_name(&format!("forms/{id}/versions/0")).is_err());
        let submission = SubmissionId::generate();
        assert_eq!(
            submission_name(&format!("forms/contact-us/submissions/{submission}"))
                .unwrap()
                .1,
            submission
        );
    }

    #[test]
    fn submission_filters_read_answers_and_order() {
        let request = |filter: &str, order_by: &str| wire::ListSubmissionsRequest {
            parent: "forms/contact".into(),
            filter: filter.into(),
            order_by: order_by.into(),
            ..Default::default()
        };
        let listing = list_submissions(&request(
            r#"data.plan = "pro" AND data.seats=3"#,
            "create_time",
        ))
        .unwrap();
        assert_eq!(
            Value::Object(listing.query.filter.answers),
            json!({"plan": "pro", "seats": 3})
        );
        assert!(listing.query.oldest_first);
        assert_eq!(
            list_submissions(&request("plan = pro", ""))
                .unwrap_err()
                .fields(),
            ["filter"]
        );
        assert_eq!(
            list_submissions(&request("", "title"))
                .unwrap_err()
                .fields(),
            ["order_by"]
        );
    }

    #[test]
    fn update_masks_name_settings_parts_and_refuse_the_slug() {
        let request = |paths: &[&str]| wire::UpdateFormRequest {
            form: Some(wire::Form {
                name: "forms/contact".into(),
                settings: Some(wire::FormSettings {
                    closed: true,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: paths.iter().map(|path| (*path).to_owned()).collect(),
            }),
        };
        let (_, changes) = form_changes(request(&["settings.closed"])).unwrap();
        assert_eq!(changes.settings.unwrap().1, [SettingsPart::Closed]);
        assert_eq!(
            form_changes(request(&["slug"])).unwrap_err().fields(),
            ["update_mask"]
        );
        assert_eq!(
            form_changes(request(&[])).unwrap_err().fields(),
            ["update_mask"]
        );
    }
}
