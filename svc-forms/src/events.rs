//! The `forms.*` events, and the wire forms of forms, versions and submissions that events and
//! responses share. A submission's event carries what its consumers need (the answers with
//! their fields' labels and types, the version, the recipients), so that none calls back.

use platform::wire::{etag, object_to_proto, resource_name, timestamp};
use proto::formflow::events::v1 as events;
use proto::formflow::forms::v1 as wire;
use serde_json::Value;

use anyhow::Context;

use crate::domain::{
    Analysis, Answers, Condition, Field, FieldKind, Form, FormId, FormState, FormVersion, Operator,
    Settings, Submission, SubmissionId,
};

/// `forms/{id}`.
pub fn form_name(form: &Form) -> String {
    resource_name("forms", form.id)
}

/// A JSON value on the wire (`google.protobuf.Value`).
pub fn value_to_proto(value: &Value) -> pbjson_types::Value {
    serde_json::from_value(value.clone()).expect("any JSON value is a protobuf Value")
}

/// The wire form of a form.
pub fn form_to_proto(form: &Form) -> wire::Form {
    wire::Form {
        name: form_name(form),
        id: form.id.to_string(),
        slug: form.slug.to_string(),
        title: form.draft.title.clone(),
        description: form.draft.description.clone(),
        fields: form.draft.fields.iter().map(field_to_proto).collect(),
        settings: Some(settings_to_proto(&form.settings)),
        state: state_to_proto(form.state) as i32,
        published_version: form.published_version,
        has_unpublished_changes: form.published_version > 0 && form.draft_changed,
        creator: form.creator.clone(),
        create_time: Some(timestamp(form.created_at)),
        update_time: Some(timestamp(form.updated_at)),
        publish_time: form.published_at.map(timestamp),
        archive_time: form.archived_at.map(timestamp),
        etag: etag(form.version),
    }
}

fn state_to_proto(state: FormState) -> wire::FormState {
    match state {
        FormState::Draft => wire::FormState::Draft,
        FormState::Published => wire::FormState::Published,
        FormState::Archived => wire::FormState::Archived,
    }
}

/// The wire form of settings.
pub fn settings_to_proto(settings: &Settings) -> wire::FormSettings {
    wire::FormSettings {
        public_submissions: settings.public_submissions,
        closed: settings.closed,
        open_time: settings.open_time.map(timestamp),
        close_time: settings.close_time.map(timestamp),
        max_submissions: i32::try_from(settings.max_submissions).unwrap_or(i32::MAX),
        confirmation_message: settings.confirmation_message.clone(),
        redirect_url: settings.redirect_url.clone(),
        notification_recipients: settings.notification_recipients.clone(),
        require_start_token: settings.require_start_token,
        analysis: Some(analysis_to_proto(&settings.analysis)),
    }
}

/// The wire form of the analysis settings.
pub fn analysis_to_proto(analysis: &Analysis) -> wire::AnalysisSettings {
    wire::AnalysisSettings {
        enabled: analysis.enabled,
        label_set: analysis.label_set.clone(),
    }
}

/// The wire type of a field kind.
pub fn kind_to_proto(kind: FieldKind) -> wire::FieldType {
    match kind {
        FieldKind::Text => wire::FieldType::Text,
        FieldKind::TextArea => wire::FieldType::Textarea,
        FieldKind::Email => wire::FieldType::Email,
        FieldKind::Number => wire::FieldType::Number,
        FieldKind::Integer => wire::FieldType::Integer,
        FieldKind::Phone => wire::FieldType::Phone,
        FieldKind::Url => wire::FieldType::Url,
        FieldKind::Date => wire::FieldType::Date,
        FieldKind::DateTime => wire::FieldType::DateTime,
        FieldKind::Select => wire::FieldType::Select,
        FieldKind::Radio => wire::FieldType::Radio,
        FieldKind::MultiSelect => wire::FieldType::MultiSelect,
        FieldKind::Checkbox => wire::FieldType::Checkbox,
        FieldKind::Rating => wire::FieldType::Rating,
        FieldKind::Hidden => wire::FieldType::Hidden,
        FieldKind::Section => wire::FieldType::Section,
    }
}

/// The wire form of a field.
pub fn field_to_proto(field: &Field) -> wire::FormField {
    let constraints = &field.constraints;
    wire::FormField {
        id: field.id.to_string(),
        r#type: kind_to_proto(field.kind) as i32,
        label: field.label.clone(),
        help_text: field.help_text.clone(),
        placeholder: field.placeholder.clone(),
        required: field.required,
        validation: Some(wire::FieldValidation {
            min_length: constraints.min_length,
            max_length: constraints.max_length,
            min: constraints.min,
            max: constraints.max,
            pattern: constraints
                .pattern
                .as_ref()
                .map(|pattern| pattern.as_str().to_owned())
                .unwrap_or_default(),
            min_selected: constraints.min_selected,
            max_selected: constraints.max_selected,
            error_message: field.error_message.clone(),
        }),
        options: field
            .choices
            .iter()
            .map(|choice| wire::FieldOption {
                value: choice.value.clone(),
                label: choice.label.clone(),
            })
            .collect(),
        default_value: field.default.as_ref().map(value_to_proto),
        visible_when: field.visible_when.as_ref().map(condition_to_proto),
        required_when: field.required_when.as_ref().map(condition_to_proto),
    }
}

fn condition_to_proto(condition: &Condition) -> wire::FieldCondition {
    let operator = match condition.operator {
        Operator::Equals => wire::ConditionOperator::Equals,
        Operator::NotEquals => wire::ConditionOperator::NotEquals,
        Operator::Contains => wire::ConditionOperator::Contains,
        Operator::GreaterThan => wire::ConditionOperator::GreaterThan,
        Operator::LessThan => wire::ConditionOperator::LessThan,
        Operator::Answered => wire::ConditionOperator::Answered,
        Operator::NotAnswered => wire::ConditionOperator::NotAnswered,
    };
    wire::FieldCondition {
        field_id: condition.field_id.to_string(),
        operator: operator as i32,
        value: condition.value.as_ref().map(value_to_proto),
    }
}

/// The wire form of a published version.
pub fn version_to_proto(version: &FormVersion) -> wire::FormVersion {
    wire::FormVersion {
        name: format!("forms/{}/versions/{}", version.form_id, version.version),
        version: version.version,
        title: version.definition.title.clone(),
        description: version.definition.description.clone(),
        fields: version
            .definition
            .fields
            .iter()
            .map(field_to_proto)
            .collect(),
        publisher: version.publisher.clone(),
        create_time: Some(timestamp(version.created_at)),
    }
}

/// The wire form of a submission.
pub fn submission_to_proto(submission: &Submission) -> wire::Submission {
    wire::Submission {
        name: format!("forms/{}/submissions/{}", submission.form_id, submission.id),
        id: submission.id.to_string(),
        form_version: submission.form_version,
        data: Some(object_to_proto(&submission.data)),
        submitter: submission.submitter.clone(),
        create_time: Some(timestamp(submission.created_at)),
    }
}

/// A submission from its wire form (as an idempotency key stored its answer).
pub fn submission_from_proto(submission: wire::Submission) -> anyhow::Result<Submission> {
    let data = serde_json::to_value(submission.data.unwrap_or_default())?;
    let Value::Object(data) = data else {
        anyhow::bail!("a stored submission's data is not an object");
    };
    let (form, id) = submission
        .name
        .strip_prefix("forms/")
        .and_then(|rest| rest.split_once("/submissions/"))
        .context("a stored submission's name")?;
    Ok(Submission {
        id: SubmissionId::parse(id)?,
        form_id: FormId::parse(form)?,
        form_version: submission.form_version,
        data,
        submitter: submission.submitter,
        created_at: submission
            .create_time
            .as_ref()
            .and_then(platform::wire::from_timestamp)
            .context("a stored submission's time")?,
    })
}

/// `forms.form.published`.
pub fn published(form: &Form, version: &FormVersion) -> events::FormPublished {
    events::FormPublished {
        form: Some(form_to_proto(form)),
        version: Some(version_to_proto(version)),
    }
}

/// `forms.submission.created`: the submission, and its answers described by the fields of
/// the version answered.
pub fn submission_created(
    form: &Form,
    version: &FormVersion,
    submission: &Submission,
    answers: &Answers,
) -> events::SubmissionCreated {
    let described = version
        .definition
        .fields
        .iter()
        .filter_map(|field| {
            let value = answers.get(&field.id)?;
            Some(events::SubmittedAnswer {
                field_id: field.id.to_string(),
                label: field.label.clone(),
                r#type: kind_to_proto(field.kind) as i32,
                value: Some(value_to_proto(value)),
            })
        })
        .collect();
    events::SubmissionCreated {
        submission: Some(submission_to_proto(submission)),
        form: form_name(form),
        form_title: version.definition.title.clone(),
        answers: described,
        notification_recipients: form.settings.notification_recipients.clone(),
        form_slug: form.slug.to_string(),
        analysis: Some(analysis_to_proto(&form.settings.analysis)),
    }
}

/// `forms.submission.deleted`.
pub fn submission_deleted(submission: &Submission) -> events::SubmissionDeleted {
    events::SubmissionDeleted {
        submission: format!("forms/{}/submissions/{}", submission.form_id, submission.id),
        form: resource_name("forms", submission.form_id),
    }
}
