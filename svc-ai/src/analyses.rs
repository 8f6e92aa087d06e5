//! Submissions analyzed as they arrive: each `forms.submission.created` of a form whose
//! `settings.analysis.enabled` is set, with a text answer, is classified and embedded once.

use pbjson_types::value::Kind;
use platform::amqp::Outcome;
use platform::consumer::{Audience, EventHandler, ProcessedEvents, ReceivedEvent, Subscription};
use proto::formflow::events::v1::SubmissionCreated;
use proto::formflow::forms::v1::FieldType;

use crate::app::SCHEMA;
use crate::domain::{
    MAX_ANALYSIS_CHARS, MAX_ANSWER_CHARS, MAX_ANSWERS, SubmissionText, parse_submission,
};
use crate::error::Error;
use crate::operations::{Ai, AnalyzeInput};
use crate::pool::InferenceError;

/// The durable queue of submissions to analyze.
const ANALYSES: &str = "svc-ai.submission-analyses";

/// What svc-ai analyzes.
pub const ANALYSIS_SUBSCRIPTION: Subscription = Subscription {
    audience: Audience::OneReplica(ANALYSES),
    bindings: &["forms.submission.created.v1"],
    prefetch: 4,
};

/// Analyzes announced submissions.
#[derive(Debug, Clone)]
pub struct Analyses {
    ai: Ai,
    processed: ProcessedEvents,
}

impl Analyses {
    /// Analyses by `ai`.
    pub fn new(ai: Ai) -> Self {
        Self {
            ai,
            processed: ProcessedEvents::new(SCHEMA.name, ANALYSES),
        }
    }
}

impl EventHandler for Analyses {
    async fn handle(&self, event: ReceivedEvent) -> Outcome {
        let Some(tenant) = event.tenant_id else {
            return Outcome::Reject("a forms.submission.created event names no tenant".to_owned());
        };
        let created: SubmissionCreated = match event.decode() {
            Some(Ok(created)) => created,
            Some(Err(error)) => return Outcome::Reject(error),
            None => return Outcome::Reject(format!("not a submission: {}", event.event_type)),
        };
        let input = match analysis_input(created) {
            Ok(Some(input)) => input,
            Ok(None) => return Outcome::Done,
            Err(reason) => return Outcome::Reject(reason),
        };
        let submission = input.submission.clone();
        match self
            .ai
            .analyze_announced(&self.processed, &event, tenant, input)
            .await
        {
            Ok(()) => Outcome::Done,
            // The form names a label set that is gone: no retry mends that.
            Err(error @ Error::LabelSetNotFound(_)) => {
                tracing::warn!(%submission, %error, "a submission's analysis names no label set");
                Outcome::Reject(error.to_string())
            }
            Err(Error::Inference(InferenceError::Failed(error))) => {
                Outcome::Reject(format!("{error:#}"))
            }
            Err(error) => Outcome::Retry(error.to_string()),
        }
    }
}

/// What to analyze of a submission: `None` when its form asks for no analysis or it has no
/// text answer. Answers past the limits of AnalyzeSubmission are cut to them (the model reads
/// only their start anyway).
fn analysis_input(created: SubmissionCreated) -> Result<Option<AnalyzeInput>, String> {
    let Some(settings) = created.analysis.filter(|settings| settings.enabled) else {
        return Ok(None);
    };
    let name = created.submission.map(|submission| submission.name);
    let Some((form, id)) = name.as_deref().and_then(parse_submission) else {
        return Err(format!("{name:?} is not a submission"));
    };
    let label_set = match settings.label_set.as_str() {
        "" => None,
        label_set => Some(
            platform::wire::id_of(label_set, "labelSets")
                .map_err(|_| format!("{label_set:?} is not a label set"))?,
        ),
    };
    let mut left = MAX_ANALYSIS_CHARS;
    let answers: Vec<SubmissionText> = created
        .answers
        .into_iter()
        .filter(|answer| {
            matches!(
                FieldType::try_from(answer.r#type),
                Ok(FieldType::Text | FieldType::Textarea)
            )
        })
        .filter_map(|answer| match answer.value?.kind? {
            Kind::StringValue(text) if !text.trim().is_empty() => Some((answer.label, text)),
            _ => None,
        })
        .take(MAX_ANSWERS)
        .map_while(|(label, text)| {
            if left == 0 {
                return None;
            }
            let text: String = text.chars().take(MAX_ANSWER_CHARS.min(left)).collect();
            left -= text.chars().count();
            Some(SubmissionText { label, text })
        })
        .collect();
    if answers.is_empty() {
        return Ok(None);
    }
    Ok(Some(AnalyzeInput {
        id,
        submission: name.expect("parsed"),
        form,
        answers,
        label_set,
        model: None,
    }))
}
