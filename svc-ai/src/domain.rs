//! The ai domain: label sets, their examples and stored classifications, with the rules every
//! one of them follows whichever way it arrives.

use chrono::{DateTime, Utc};
use platform::context::TenantId;
use platform::error::FieldViolations;

use crate::triage::TicketField;

platform::id!(
    /// Id of a label set.
    LabelSetId,
    "label set id"
);
platform::id!(
    /// Id of an example of a label.
    ExampleId,
    "example id"
);
platform::id!(
    /// Id of a stored classification.
    ClassificationId,
    "classification id"
);
platform::id!(
    /// Id of a batch job.
    BatchJobId,
    "batch job id"
);

/// Most texts in one Embed call, and in one model run a label set's prototypes take.
pub const MAX_TEXTS: usize = 64;
/// Longest text to embed or classify, in characters.
pub const MAX_TEXT_CHARS: usize = 32_000;
/// Most texts in one Classify call.
pub const MAX_CLASSIFY_TEXTS: usize = 32;

/// Fewest and most labels of a label set (or of inline labels).
pub const LABELS: std::ops::RangeInclusive<usize> = 2..=100;
/// Longest label value, in characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// Longest label description, in characters.
pub const MAX_LABEL_DESCRIPTION_CHARS: usize = 500;
/// Longest display name of a label set, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// Longest description of a label set, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// Longest example text, in characters.
pub const MAX_EXAMPLE_CHARS: usize = 4_000;
/// Most examples of one label set: they are all read into a label set's prototypes.
pub const MAX_EXAMPLES: i64 = 1_000;
/// Longest `source` of a classification, in characters.
pub const MAX_SOURCE_CHARS: usize = 500;

/// A label: the value results name, and what it means in words the model reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Label {
    /// Value returned in results.
    pub value: String,
    /// What it means; empty uses the value.
    #[serde(default)]
    pub description: String,
}

impl Label {
    /// The text the model embeds for the label itself.
    pub fn prompt(&self) -> &str {
        if self.description.is_empty() {
            &self.value
        } else {
            &self.description
        }
    }
}

/// Every problem of `labels`, reported under `field` (`label_set.labels`).
pub fn check_labels(violations: &mut FieldViolations, field: &str, labels: &[Label]) {
    if !LABELS.contains(&labels.len()) {
        violations.add(
            field,
            format!("must hold {} to {} labels", LABELS.start(), LABELS.end()),
        );
    }
    for (index, label) in labels.iter().enumerate() {
        let at = format!("{field}[{index}]");
        let characters = label.value.chars().count();
        if label.value.trim().is_empty() || characters > MAX_LABEL_CHARS {
            violations.add(
                format!("{at}.value"),
                format!("must be 1 to {MAX_LABEL_CHARS} characters, not only spaces"),
            );
        } else if label.value.chars().any(char::is_control) {
            violations.add(format!("{at}.value"), "must not hold control characters");
        } else if labels[..index]
            .iter()
            .any(|earlier| earlier.value == label.value)
        {
            violations.add(
                format!("{at}.value"),
                format!("{:?} is already a label of the set", label.value),
            );
        }
        if label.description.chars().count() > MAX_LABEL_DESCRIPTION_CHARS {
            violations.add(
                format!("{at}.description"),
                format!("must be at most {MAX_LABEL_DESCRIPTION_CHARS} characters"),
            );
        }
    }
}

/// A tenant's named set of labels.
#[derive(Debug, Clone)]
pub struct LabelSet {
    /// Its id.
    pub id: LabelSetId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Human-readable name, unique in the tenant.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// The labels, values distinct.
    pub labels: Vec<Label>,
    /// Grows with every change of the set or its examples.
    pub version: i64,
    /// Number of examples.
    pub example_count: i64,
    /// What ClassifyTicket uses it for in its tenant, if anything.
    pub ticket_field: Option<TicketField>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl LabelSet {
    /// Whether `value` is one of its labels.
    pub fn has_label(&self, value: &str) -> bool {
        self.labels.iter().any(|label| label.value == value)
    }
}

/// Whether a label set's display name is 1 to 100 characters, not only spaces.
pub fn check_display_name(violations: &mut FieldViolations, display_name: &str) {
    if display_name.trim().is_empty() || display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        violations.add(
            "label_set.display_name",
            format!("must be 1 to {MAX_DISPLAY_NAME_CHARS} characters, not only spaces"),
        );
    }
}

/// Whether a label set's description is at most 1,000 characters.
pub fn check_description(violations: &mut FieldViolations, description: &str) {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        violations.add(
            "label_set.description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        );
    }
}

/// An example text of a label.
#[derive(Debug, Clone)]
pub struct Example {
    /// Its id.
    pub id: ExampleId,
    /// Its label set.
    pub label_set_id: LabelSetId,
    /// The label it is an example of.
    pub label: String,
    /// The text.
    pub text: String,
    /// The classification it corrects, if it is a correction.
    pub classification_id: Option<ClassificationId>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// A label's score in a result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// The label's value.
    pub label: String,
    /// Probability, 0 to 1.
    pub score: f32,
}

/// A stored classification.
#[derive(Debug, Clone)]
pub struct Classification {
    /// Its id.
    pub id: ClassificationId,
    /// Model id.
    pub model: String,
    /// Model version.
    pub model_version: String,
    /// What the text comes from.
    pub source: String,
    /// The cache key.
    pub content_hash: String,
    /// Whether the scores came from the cache.
    pub cached: bool,
    /// Time spent in inference.
    pub inference: std::time::Duration,
    /// The text.
    pub text: String,
    /// Whether the text was cut at the model's length.
    pub truncated: bool,
    /// The label set and its version, unless the labels were inline.
    pub label_set: Option<(LabelSetId, i64)>,
    /// Every label's score, highest first.
    pub scores: Vec<Score>,
    /// How they were made.
    pub method: Method,
    /// The label a user gave instead.
    pub corrected_label: Option<String>,
    /// For a ticket (whose `scores` and `label_set` are its category's), the rest of its
    /// triage.
    pub ticket: Option<TicketTriage>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// How a classification's scores were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// By the prototypes alone.
    Prototype,
    /// By the prototypes and the label set's linear head.
    PrototypeAndHead,
}

impl Method {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Prototype => "prototype",
            Method::PrototypeAndHead => "prototype_and_head",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Method> {
        [Method::Prototype, Method::PrototypeAndHead]
            .into_iter()
            .find(|method| method.as_str() == text)
    }
}

/// A ticket's priority and sentiment, beside its category.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TicketTriage {
    /// Every priority's score, highest first.
    pub priority: Vec<Score>,
    /// Every sentiment's score, highest first.
    pub sentiment: Vec<Score>,
    /// The urgency cues found.
    pub urgency_cues: Vec<String>,
    /// The tenant's priority label set, when it has one.
    pub priority_label_set: Option<LabelSetId>,
    /// The tenant's sentiment label set, when it has one.
    pub sentiment_label_set: Option<LabelSetId>,
    /// The id of the model that read the sentiment (empty in results stored before it was
    /// recorded: the classification's model read it).
    #[serde(default)]
    pub sentiment_model: String,
    /// That model's version.
    #[serde(default)]
    pub sentiment_model_version: String,
}

/// Most items of a batch job.
pub const MAX_BATCH_ITEMS: usize = 1_000;
/// Most characters of text of a batch job, all items together: a request fits the gateway's
/// 1 MiB body limit.
pub const MAX_BATCH_CHARS: usize = 900_000;
/// Longest item id, in characters.
pub const MAX_ITEM_ID_CHARS: usize = 128;
/// How long an ended job and its results are kept.
pub const BATCH_RETENTION_DAYS: i64 = 7;

/// What a batch job does with each item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchTask {
    /// Embeds its text.
    Embed,
    /// Classifies its text against a label set.
    Classify,
    /// Triages it as a ticket.
    ClassifyTicket,
}

/// Where a batch job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// Waiting for a worker.
    Queued,
    /// A worker is on it.
    Running,
    /// Every item was processed.
    Succeeded,
    /// Ended early: see its error.
    Failed,
    /// Cancelled before every item was processed.
    Cancelled,
}

macro_rules! names {
    ($type:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $type {
            /// The name stored.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }

            /// Parses a stored name.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($name => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

names!(BatchTask { Embed => "embed", Classify => "classify", ClassifyTicket => "classify_ticket" });
names!(BatchState {
    Queued => "queued",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl BatchState {
    /// Whether the job has ended.
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            BatchState::Succeeded | BatchState::Failed | BatchState::Cancelled
        )
    }
}

/// An input of a batch job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    /// The caller's id for it.
    pub id: String,
    /// Its text (a ticket's body).
    pub text: String,
    /// A ticket's subject.
    pub subject: String,
    /// What it comes from.
    pub source: String,
}

/// A batch job.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// Its id.
    pub id: BatchJobId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// What it does with each item.
    pub task: BatchTask,
    /// The model's id.
    pub model: String,
    /// The label set, for CLASSIFY (and, when given, CLASSIFY_TICKET's categories).
    pub label_set: Option<LabelSetId>,
    /// svc-notify's webhook endpoint told when it ends, `webhookEndpoints/{id}`, or empty.
    pub webhook_endpoint: String,
    /// Where it is.
    pub state: BatchState,
    /// Items in all.
    pub total: i32,
    /// Items processed, failed ones included.
    pub processed: i32,
    /// Items that failed.
    pub failed: i32,
    /// Why it failed as a whole.
    pub error: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a worker first took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// When it and its results are deleted.
    pub expire_at: Option<DateTime<Utc>>,
}

/// Whether `texts` are 1 to `max` texts of 1 to [`MAX_TEXT_CHARS`] characters each.
pub fn check_texts(violations: &mut FieldViolations, field: &str, texts: &[String], max: usize) {
    if texts.is_empty() || texts.len() > max {
        violations.add(field, format!("must hold 1 to {max} texts"));
    }
    for (index, text) in texts.iter().enumerate() {
        check_text(
            violations,
            &format!("{field}[{index}]"),
            text,
            MAX_TEXT_CHARS,
        );
    }
}

/// Whether `text` is 1 to `max` characters.
pub fn check_text(violations: &mut FieldViolations, field: &str, text: &str, max: usize) {
    let characters = text.chars().count();
    if characters == 0 || characters > max {
        violations.add(field, format!("must be 1 to {max} characters"));
    }
}

/// Most text answers an analysis reads.
pub const MAX_ANSWERS: usize = 50;
/// Longest label of an answer, in characters.
pub const MAX_ANSWER_LABEL_CHARS: usize = 200;
/// Longest answer, in characters.
pub const MAX_ANSWER_CHARS: usize = 10_000;
/// Longest text of an analysis, every answer together, in characters.
pub const MAX_ANALYSIS_CHARS: usize = 20_000;
/// Most results of a similar-submission search.
pub const MAX_SIMILAR: usize = 50;
/// Results of a similar-submission search when the request says none.
pub const DEFAULT_SIMILAR: usize = 10;

/// A text answer of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionText {
    /// The field's label.
    pub label: String,
    /// The answer.
    pub text: String,
}

/// The text an analysis reads: a single answer as it is, several each on a line of its own
/// after its label (a label alone would pull every submission of a form together).
pub fn submission_text(answers: &[SubmissionText]) -> String {
    match answers {
        [only] => only.text.trim().to_owned(),
        _ => answers
            .iter()
            .map(|answer| match answer.label.trim() {
                "" => answer.text.trim().to_owned(),
                label => format!("{label}: {}", answer.text.trim()),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// A submission's resource name, `forms/{form}/submissions/{id}`, split into its form's name
/// and its id.
pub fn parse_submission(name: &str) -> Option<(String, uuid::Uuid)> {
    let rest = name.strip_prefix("forms/")?;
    let (form, id) = rest.split_once("/submissions/")?;
    let form = uuid::Uuid::parse_str(form).ok()?;
    let id = uuid::Uuid::parse_str(id).ok()?;
    Some((format!("forms/{form}"), id))
}

/// What svc-ai made of a submission.
#[derive(Debug, Clone)]
pub struct SubmissionAnalysis {
    /// The submission's id, the analysis's too.
    pub id: uuid::Uuid,
    /// The submission, `forms/{form}/submissions/{id}`.
    pub submission: String,
    /// Its form, `forms/{id}`.
    pub form: String,
    /// The classification of its text (whose source is the submission).
    pub classification: Classification,
    /// The model that embedded it, `{id}@{version}`.
    pub embedding_model: String,
    /// First analyzed.
    pub created_at: DateTime<Utc>,
    /// Last analyzed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        let limits = |message: &str, field: &str| {
            proto::published_limits(&format!("formflow.ai.v1.{message}"), field)
        };
        for (message, field, most) in [
            ("EmbedRequest", "texts", MAX_TEXTS),
            ("SimilarityRequest", "candidates", MAX_TEXTS - 1),
            ("ClassifyRequest", "texts", MAX_CLASSIFY_TEXTS),
        ] {
            let published = limits(message, field);
            assert_eq!(
                (published.min_items, published.max_items as usize),
                (1, most),
                "{message}"
            );
            assert_eq!(
                (published.min_length, published.max_length as usize),
                (1, MAX_TEXT_CHARS),
                "{message}"
            );
        }
        let text = limits("SimilarityRequest", "text");
        assert_eq!(
            (text.min_length, text.max_length as usize),
            (1, MAX_TEXT_CHARS)
        );
        let name = limits("LabelSet", "display_name");
        assert_eq!(
            (name.min_length, name.max_length as usize),
            (1, MAX_DISPLAY_NAME_CHARS)
        );
        let description = limits("LabelSet", "description");
        assert_eq!(description.max_length as usize, MAX_DESCRIPTION_CHARS);
    }

    fn label(value: &str) -> Label {
        Label {
            value: value.to_owned(),
            description: String::new(),
        }
    }

    #[test]
    fn labels_are_counted_distinct_and_bounded() {
        let mut violations = FieldViolations::new();
        check_labels(&mut violations, "labels", &[label("billing")]);
        check_labels(
            &mut violations,
            "other",
            &[label("a"), label("a"), label(" "), label(&"x".repeat(65))],
        );
        assert_eq!(
            violations.fields(),
            [
                "labels",
                "other[1].value",
                "other[2].value",
                "other[3].value"
            ]
        );
    }

    #[test]
    fn a_submission_reads_as_its_one_answer_or_its_labelled_answers() {
        let answer = |label: &str, text: &str| SubmissionText {
            label: label.to_owned(),
            text: text.to_owned(),
        };
        assert_eq!(
            submission_text(&[answer("Your issue", " The export hangs ")]),
            "The export hangs"
        );
        assert_eq!(
            submission_text(&[answer("Subject", "Export"), answer(" ", "It hangs")]),
            "Subject: Export\nIt hangs"
        );
    }

    #[test]
    fn submission_names_are_a_form_and_an_id() {
        let form = uuid::Uuid::now_v7();
        let id = uuid::Uuid::now_v7();
        assert_eq!(
            parse_submission(&format!("forms/{form}/submissions/{id}")),
            Some((format!("forms/{form}"), id))
        );
        for bad in [
            format!("forms/{form}"),
            format!("forms/x/submissions/{id}"),
            format!("forms/{form}/submissions/{id}/more"),
            format!("labelSets/{form}/submissions/{id}"),
        ] {
            assert_eq!(parse_submission(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_label_without_description_is_read_as_its_value() {
        assert_eq!(label("billing").prompt(), "billing");
        let described = Label {
            value: "billing".to_owned(),
            description: "invoices and payments".to_owned(),
        };
        assert_eq!(described.prompt(), "invoices and payments");
    }
}
