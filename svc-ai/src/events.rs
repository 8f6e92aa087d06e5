//! The wire forms of classifications and batch jobs that the `ai.classification.completed`
//! and `ai.batch_job.completed` events and the responses share.

use platform::wire::{resource_name, timestamp};
use proto::formflow::ai::v1 as wire;

use crate::domain::{
    BatchJob, BatchState, BatchTask, Classification, LabelSetId, Method, Score, TicketTriage,
};

fn score_to_proto(score: &Score) -> wire::LabelScore {
    wire::LabelScore {
        label: score.label.clone(),
        score: score.score,
    }
}

/// The wire form of a classification.
pub fn classification_to_proto(classification: &Classification) -> wire::Classification {
    let (label_set, label_set_version) = classification
        .label_set
        .map(|(id, version)| (resource_name("labelSets", id), version))
        .unwrap_or_default();
    let top = classification.scores.first();
    let outcome = match &classification.ticket {
        None => wire::classification::Outcome::Labels(wire::LabelClassification {
            label_set,
            label_set_version,
            scores: classification.scores.iter().map(score_to_proto).collect(),
            top_label: top.map(|score| score.label.clone()).unwrap_or_default(),
            confidence: top.map(|score| score.score).unwrap_or_default(),
            runner_up: classification.scores.get(1).map(score_to_proto),
            method: match classification.method {
                Method::Prototype => wire::ClassificationMethod::Prototype,
                Method::PrototypeAndHead => wire::ClassificationMethod::PrototypeAndHead,
            } as i32,
            corrected_label: classification.corrected_label.clone().unwrap_or_default(),
        }),
        Some(ticket) => wire::classification::Outcome::Ticket(ticket_to_proto(
            ticket,
            classification,
            label_set,
        )),
    };
    wire::Classification {
        name: resource_name("classifications", classification.id),
        id: classification.id.to_string(),
        model: format!("models/{}", classification.model),
        model_version: classification.model_version.clone(),
        source: classification.source.clone(),
        content_hash: classification.content_hash.clone(),
        cached: classification.cached,
        inference_duration: Some(pbjson_types::Duration {
            seconds: i64::try_from(classification.inference.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(classification.inference.subsec_nanos()).unwrap_or_default(),
        }),
        create_time: Some(timestamp(classification.created_at)),
        text: classification.text.clone(),
        truncated: classification.truncated,
        outcome: Some(outcome),
    }
}

fn ticket_to_proto(
    ticket: &TicketTriage,
    classification: &Classification,
    category_label_set: String,
) -> wire::TicketClassification {
    let category = classification.scores.as_slice();
    // Results stored before the sentiment's model was recorded: the classification's read it.
    let (sentiment_model, sentiment_model_version) = if ticket.sentiment_model.is_empty() {
        (&classification.model, &classification.model_version)
    } else {
        (&ticket.sentiment_model, &ticket.sentiment_model_version)
    };
    let top = |scores: &[Score]| {
        scores
            .first()
            .map(|score| (score.label.clone(), score.score))
            .unwrap_or_default()
    };
    let (priority, priority_confidence) = top(&ticket.priority);
    let (sentiment, sentiment_confidence) = top(&ticket.sentiment);
    let category_confidence = category.first().map_or(0.0, |score| score.score);
    let name = |id: Option<LabelSetId>| {
        id.map(|id| resource_name("labelSets", id))
            .unwrap_or_default()
    };
    wire::TicketClassification {
        category: category.first().map(score_to_proto),
        category_scores: category.iter().map(score_to_proto).collect(),
        priority: match priority.as_str() {
            "low" => wire::TicketPriority::Low,
            "medium" => wire::TicketPriority::Medium,
            "high" => wire::TicketPriority::High,
            "urgent" => wire::TicketPriority::Urgent,
            _ => wire::TicketPriority::Unspecified,
        } as i32,
        priority_confidence,
        sentiment: match sentiment.as_str() {
            "negative" => wire::Sentiment::Negative,
            "neutral" => wire::Sentiment::Neutral,
            "positive" => wire::Sentiment::Positive,
            _ => wire::Sentiment::Unspecified,
        } as i32,
        sentiment_confidence,
        confidence: category_confidence
            .min(priority_confidence)
            .min(sentiment_confidence),
        urgency_cues: ticket.urgency_cues.clone(),
        category_label_set,
        priority_label_set: name(ticket.priority_label_set),
        sentiment_label_set: name(ticket.sentiment_label_set),
        sentiment_model: format!("models/{sentiment_model}"),
        sentiment_model_version: sentiment_model_version.clone(),
    }
}

/// The wire form of a batch job, with `results` (empty while it runs, and in events).
pub fn batch_job_to_proto(job: &BatchJob, results: Vec<wire::BatchResult>) -> wire::BatchJob {
    wire::BatchJob {
        name: resource_name("batchJobs", job.id),
        id: job.id.to_string(),
        task: match job.task {
            BatchTask::Embed => wire::BatchTask::Embed,
            BatchTask::Classify => wire::BatchTask::Classify,
            BatchTask::ClassifyTicket => wire::BatchTask::ClassifyTicket,
        } as i32,
        model: format!("models/{}", job.model),
        label_set: job
            .label_set
            .map(|id| resource_name("labelSets", id))
            .unwrap_or_default(),
        items: Vec::new(),
        state: batch_state_to_proto(job.state) as i32,
        total_count: job.total,
        processed_count: job.processed,
        failed_count: job.failed,
        results,
        error: job.error.clone(),
        create_time: Some(timestamp(job.created_at)),
        start_time: job.started_at.map(timestamp),
        end_time: job.ended_at.map(timestamp),
        expire_time: job.expire_at.map(timestamp),
        webhook_endpoint: job.webhook_endpoint.clone(),
    }
}

/// The wire form of a batch job's state.
pub fn batch_state_to_proto(state: BatchState) -> wire::BatchJobState {
    match state {
        BatchState::Queued => wire::BatchJobState::Queued,
        BatchState::Running => wire::BatchJobState::Running,
        BatchState::Succeeded => wire::BatchJobState::Succeeded,
        BatchState::Failed => wire::BatchJobState::Failed,
        BatchState::Cancelled => wire::BatchJobState::Cancelled,
    }
}
