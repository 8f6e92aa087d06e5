//! Converting between the wire (`formflow.ai.v1`) and the domain: requests are validated here,
//! every bad field listed at once.

use chrono::{DateTime, Utc};
use platform::error::FieldViolations;
use platform::paging::{self, Listing};
use platform::wire::{
    enum_field, enum_filter, etag, expected_version, mask_paths, parse_resource_name,
    resource_name, timestamp,
};
use proto::formflow::ai::v1 as wire;

use crate::domain::{
    self, BatchItem, BatchJob, BatchJobId, BatchState, BatchTask, ClassificationId,
    DEFAULT_SIMILAR, Example, ExampleId, Label, LabelSet, LabelSetId, MAX_ANALYSIS_CHARS,
    MAX_ANSWER_CHARS, MAX_ANSWER_LABEL_CHARS, MAX_ANSWERS, MAX_BATCH_CHARS, MAX_BATCH_ITEMS,
    MAX_CLASSIFY_TEXTS, MAX_EXAMPLE_CHARS, MAX_ITEM_ID_CHARS, MAX_SIMILAR, MAX_SOURCE_CHARS,
    MAX_TEXT_CHARS, SubmissionAnalysis, SubmissionText, check_description, check_display_name,
    check_labels, check_text, check_texts,
};
use crate::operations::{
    AnalyzeInput, ClassifyInput, LabelSetChanges, Labels, NewBatchJob, NewLabelSet, Page,
    SimilarQuery, SimilarSubmissions, SimilarTo, TicketInput,
};
use crate::store::ClassificationFilter;
use crate::triage::TicketField;

/// Longest ticket subject, in characters.
const MAX_SUBJECT_CHARS: usize = 500;

/// The label set `name` names (`labelSets/{id}`); `None` when it is empty.
fn optional_label_set(
    violations: &mut FieldViolations,
    field: &str,
    name: &str,
) -> Option<LabelSetId> {
    if name.is_empty() {
        return None;
    }
    parse_resource_name(violations, field, name, "labelSets")
}

/// The model id of `name` (`models/{id}`); `None` when it is empty (the default model).
pub fn model_id(violations: &mut FieldViolations, field: &str, name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    match name.strip_prefix("models/").filter(|id| !id.is_empty()) {
        Some(id) => Some(id.to_owned()),
        None => {
            violations.add(field, "must be `models/{id}`");
            None
        }
    }
}

/// The label set and example ids of `labelSets/{id}/examples/{id}`.
pub fn example_name(name: &str) -> Result<(LabelSetId, ExampleId), FieldViolations> {
    let parsed = name.strip_prefix("labelSets/").and_then(|rest| {
        let (set, example) = rest.split_once("/examples/")?;
        Some((
            LabelSetId::parse(set).ok()?,
            ExampleId::parse(example).ok()?,
        ))
    });
    parsed.ok_or_else(|| {
        FieldViolations::single(
            "name",
            "must be a resource name, labelSets/{uuid}/examples/{uuid}",
        )
    })
}

fn labels_from_wire(labels: &[wire::Label]) -> Vec<Label> {
    labels
        .iter()
        .map(|label| Label {
            value: label.value.clone(),
            description: label.description.clone(),
        })
        .collect()
}

fn labels_to_wire(labels: &[Label]) -> Vec<wire::Label> {
    labels
        .iter()
        .map(|label| wire::Label {
            value: label.value.clone(),
            description: label.description.clone(),
        })
        .collect()
}

/// Classify's request, checked.
pub fn classify_input(request: wire::ClassifyRequest) -> Result<ClassifyInput, FieldViolations> {
    let mut violations = FieldViolations::new();
    let model = model_id(&mut violations, "model", &request.model);
    check_texts(&mut violations, "texts", &request.texts, MAX_CLASSIFY_TEXTS);
    let labels = match (request.label_set.is_empty(), request.labels.is_empty()) {
        (false, true) => parse_resource_name(
            &mut violations,
            "label_set",
            &request.label_set,
            "labelSets",
        )
        .map(Labels::Set),
        (true, false) => {
            let labels = labels_from_wire(&request.labels);
            check_labels(&mut violations, "labels", &labels);
            Some(Labels::Inline(labels))
        }
        _ => {
            violations.add("label_set", "give exactly one of label_set and labels");
            None
        }
    };
    if request.source.chars().count() > MAX_SOURCE_CHARS {
        violations.add(
            "source",
            format!("must be at most {MAX_SOURCE_CHARS} characters"),
        );
    }
    violations.into_result()?;
    Ok(ClassifyInput {
        model,
        texts: request.texts,
        labels: labels.expect("checked"),
        source: request.source,
    })
}

fn ticket_field_from_wire(
    violations: &mut FieldViolations,
    field: &str,
    value: i32,
) -> Option<TicketField> {
    enum_filter(
        violations,
        field,
        value,
        |field: wire::TicketField| match field {
            wire::TicketField::Unspecified => None,
            wire::TicketField::Category => Some(TicketField::Category),
            wire::TicketField::Priority => Some(TicketField::Priority),
            wire::TicketField::Sentiment => Some(TicketField::Sentiment),
        },
    )
}

fn ticket_field_to_wire(field: Option<TicketField>) -> wire::TicketField {
    match field {
        None => wire::TicketField::Unspecified,
        Some(TicketField::Category) => wire::TicketField::Category,
        Some(TicketField::Priority) => wire::TicketField::Priority,
        Some(TicketField::Sentiment) => wire::TicketField::Sentiment,
    }
}

/// CreateLabelSet's request, checked.
pub fn new_label_set(request: wire::CreateLabelSetRequest) -> Result<NewLabelSet, FieldViolations> {
    let Some(set) = request.label_set else {
        return Err(FieldViolations::single("label_set", "is required"));
    };
    let mut violations = FieldViolations::new();
    check_display_name(&mut violations, &set.display_name);
    check_description(&mut violations, &set.description);
    let ticket_field =
        ticket_field_from_wire(&mut violations, "label_set.ticket_field", set.ticket_field);
    let from_default =
        ticket_field_from_wire(&mut violations, "from_default", request.from_default);
    let labels = labels_from_wire(&set.labels);
    match from_default {
        None => check_labels(&mut violations, "label_set.labels", &labels),
        Some(_) if !labels.is_empty() => violations.add(
            "label_set.labels",
            "must be empty with from_default, which gives the labels",
        ),
        Some(_) => {}
    }
    violations.into_result()?;
    Ok(NewLabelSet {
        display_name: set.display_name,
        description: set.description,
        labels,
        ticket_field,
        from_default,
    })
}

/// ClassifyTicket's request, checked.
pub fn ticket_input(request: wire::ClassifyTicketRequest) -> Result<TicketInput, FieldViolations> {
    let mut violations = FieldViolations::new();
    let model = model_id(&mut violations, "model", &request.model);
    if request.subject.chars().count() > MAX_SUBJECT_CHARS {
        violations.add(
            "subject",
            format!("must be at most {MAX_SUBJECT_CHARS} characters"),
        );
    }
    check_text(&mut violations, "body", &request.body, MAX_TEXT_CHARS);
    let category_label_set = optional_label_set(
        &mut violations,
        "category_label_set",
        &request.category_label_set,
    );
    if request.source.chars().count() > MAX_SOURCE_CHARS {
        violations.add(
            "source",
            format!("must be at most {MAX_SOURCE_CHARS} characters"),
        );
    }
    violations.into_result()?;
    Ok(TicketInput {
        model,
        subject: request.subject,
        body: request.body,
        category_label_set,
        source: request.source,
    })
}

/// UpdateLabelSet's request as the label set to change and its changes, checked.
pub fn label_set_changes(
    request: wire::UpdateLabelSetRequest,
) -> Result<(LabelSetId, LabelSetChanges), FieldViolations> {
    let Some(set) = request.label_set else {
        return Err(FieldViolations::single("label_set", "is required"));
    };
    let mut violations = FieldViolations::new();
    let id = parse_resource_name(&mut violations, "label_set.name", &set.name, "labelSets");
    let mut changes = LabelSetChanges {
        expected_version: expected_version(&mut violations, "label_set.etag", &set.etag),
        ..LabelSetChanges::default()
    };
    let paths = mask_paths(request.update_mask.as_ref());
    if paths.is_empty() {
        violations.add("update_mask", "must name at least one field");
    }
    for path in paths {
        match path.as_str() {
            "display_name" => {
                check_display_name(&mut violations, &set.display_name);
                changes.display_name = Some(set.display_name.clone());
            }
            "description" => {
                check_description(&mut violations, &set.description);
                changes.description = Some(set.description.clone());
            }
            "labels" => {
                let labels = labels_from_wire(&set.labels);
                check_labels(&mut violations, "label_set.labels", &labels);
                changes.labels = Some(labels);
            }
            "ticket_field" => {
                changes.ticket_field = Some(ticket_field_from_wire(
                    &mut violations,
                    "label_set.ticket_field",
                    set.ticket_field,
                ));
            }
            other => violations.add(
                "update_mask",
                format!("{other} is not a field UpdateLabelSet changes"),
            ),
        }
    }
    violations.into_result()?;
    Ok((id.expect("checked"), changes))
}

/// A label set.
pub fn label_set_to_proto(set: &LabelSet) -> wire::LabelSet {
    wire::LabelSet {
        name: resource_name("labelSets", set.id),
        id: set.id.to_string(),
        display_name: set.display_name.clone(),
        description: set.description.clone(),
        labels: labels_to_wire(&set.labels),
        create_time: Some(timestamp(set.created_at)),
        update_time: Some(timestamp(set.updated_at)),
        etag: etag(set.version),
        version: set.version,
        example_count: i32::try_from(set.example_count).unwrap_or(i32::MAX),
        ticket_field: ticket_field_to_wire(set.ticket_field) as i32,
    }
}

/// ListLabelSets' request: the display name the page starts after, and its size.
pub fn list_label_sets_request(
    request: &wire::ListLabelSetsRequest,
) -> Result<(Option<String>, usize), FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = paging::page_size(&mut violations, request.page_size);
    let after = paging::decode_page_token(&mut violations, &request.page_token, "labelSets");
    violations.into_result()?;
    Ok((after, size))
}

/// ListLabelSets' response.
pub fn label_sets_page(page: &Page<LabelSet, String>) -> wire::ListLabelSetsResponse {
    wire::ListLabelSetsResponse {
        label_sets: page.items.iter().map(label_set_to_proto).collect(),
        next_page_token: page
            .next_after
            .as_deref()
            .map(|after| paging::encode_page_token("labelSets", after))
            .unwrap_or_default(),
    }
}

/// CreateLabelExample's request: the label set, label and text, checked.
pub fn new_example(
    request: wire::CreateLabelExampleRequest,
) -> Result<(LabelSetId, String, String), FieldViolations> {
    let mut violations = FieldViolations::new();
    let set = parse_resource_name(&mut violations, "parent", &request.parent, "labelSets");
    let Some(example) = request.example else {
        violations.add("example", "is required");
        return Err(violations);
    };
    if example.label.is_empty() {
        violations.add("example.label", "is required");
    }
    check_text(
        &mut violations,
        "example.text",
        &example.text,
        MAX_EXAMPLE_CHARS,
    );
    violations.into_result()?;
    Ok((set.expect("checked"), example.label, example.text))
}

/// An example.
pub fn example_to_proto(example: &Example) -> wire::LabelExample {
    wire::LabelExample {
        name: format!("labelSets/{}/examples/{}", example.label_set_id, example.id),
        id: example.id.to_string(),
        label: example.label.clone(),
        text: example.text.clone(),
        classification: example
            .classification_id
            .map(|id| resource_name("classifications", id))
            .unwrap_or_default(),
        create_time: Some(timestamp(example.created_at)),
    }
}

/// ListLabelExamples' request: the label set, the label kept, the example the page starts
/// after, the page size, and the listing's key (for the next token).
#[derive(Debug)]
pub struct ExampleListing {
    /// The label set.
    pub label_set: LabelSetId,
    /// Only this label's examples.
    pub label: Option<String>,
    /// The example the page starts after.
    pub after: Option<ExampleId>,
    /// The page size.
    pub size: usize,
    /// What the page token is bound to.
    pub key: String,
}

/// ListLabelExamples' request, checked.
pub fn list_examples_request(
    request: &wire::ListLabelExamplesRequest,
) -> Result<ExampleListing, FieldViolations> {
    let mut violations = FieldViolations::new();
    let label_set = parse_resource_name(&mut violations, "parent", &request.parent, "labelSets");
    let size = paging::page_size(&mut violations, request.page_size);
    let key = format!("{}|{}", request.parent, request.label);
    let after = paging::decode_page_position(&mut violations, &request.page_token, &key, |id| {
        ExampleId::parse(id).ok()
    });
    violations.into_result()?;
    Ok(ExampleListing {
        label_set: label_set.expect("checked"),
        label: (!request.label.is_empty()).then(|| request.label.clone()),
        after,
        size,
        key,
    })
}

/// ListLabelExamples' response.
pub fn examples_page(
    page: &Page<Example, ExampleId>,
    key: &str,
) -> wire::ListLabelExamplesResponse {
    wire::ListLabelExamplesResponse {
        examples: page.items.iter().map(example_to_proto).collect(),
        next_page_token: page
            .next_after
            .map(|after| paging::encode_page_token(key, &after.to_string()))
            .unwrap_or_default(),
    }
}

/// ListClassifications' request: what is kept, the position the page starts after (newest
/// first), the page size, and the key of its page tokens.
pub type ClassificationListing = Listing<ClassificationFilter, (DateTime<Utc>, ClassificationId)>;

/// ListClassifications' request, checked.
pub fn list_classifications_request(
    request: &wire::ListClassificationsRequest,
) -> Result<ClassificationListing, FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = paging::page_size(&mut violations, request.page_size);
    let label_set = optional_label_set(&mut violations, "label_set", &request.label_set);
    let key = format!("{}|{}", request.label_set, request.source);
    let filter = ClassificationFilter {
        label_set,
        source: (!request.source.is_empty()).then(|| request.source.clone()),
    };
    Listing::by_time_and_id(violations, filter, key, size, &request.page_token)
}

/// ListClassifications' response.
pub fn classifications_page(
    page: &Page<domain::Classification, (chrono::DateTime<chrono::Utc>, ClassificationId)>,
    key: &str,
) -> wire::ListClassificationsResponse {
    wire::ListClassificationsResponse {
        classifications: page
            .items
            .iter()
            .map(crate::events::classification_to_proto)
            .collect(),
        next_page_token: paging::time_and_id_token(key, page.next_after),
    }
}

/// AnalyzeSubmission's request, checked.
pub fn analyze_input(
    request: wire::AnalyzeSubmissionRequest,
) -> Result<AnalyzeInput, FieldViolations> {
    let mut violations = FieldViolations::new();
    let submission = domain::parse_submission(&request.submission);
    if submission.is_none() {
        violations.add("submission", "must be `forms/{form}/submissions/{id}`");
    }
    let model = model_id(&mut violations, "model", &request.model);
    let label_set = optional_label_set(&mut violations, "label_set", &request.label_set);
    if request.answers.is_empty() || request.answers.len() > MAX_ANSWERS {
        violations.add("answers", format!("must hold 1 to {MAX_ANSWERS} answers"));
    }
    let mut total = 0;
    for (index, answer) in request.answers.iter().enumerate() {
        if answer.label.chars().count() > MAX_ANSWER_LABEL_CHARS {
            violations.add(
                format!("answers[{index}].label"),
                format!("must be at most {MAX_ANSWER_LABEL_CHARS} characters"),
            );
        }
        if answer.text.trim().is_empty() {
            violations.add(format!("answers[{index}].text"), "must not be blank");
        } else {
            check_text(
                &mut violations,
                &format!("answers[{index}].text"),
                &answer.text,
                MAX_ANSWER_CHARS,
            );
        }
        total += answer.text.chars().count();
    }
    if total > MAX_ANALYSIS_CHARS {
        violations.add(
            "answers",
            format!("must hold at most {MAX_ANALYSIS_CHARS} characters in all"),
        );
    }
    violations.into_result()?;
    let (form, id) = submission.expect("checked");
    Ok(AnalyzeInput {
        id,
        submission: request.submission,
        form,
        answers: request
            .answers
            .into_iter()
            .map(|answer| SubmissionText {
                label: answer.label,
                text: answer.text,
            })
            .collect(),
        label_set,
        model,
    })
}

/// SearchSimilarSubmissions' request, checked.
pub fn similar_query(
    request: wire::SearchSimilarSubmissionsRequest,
) -> Result<SimilarQuery, FieldViolations> {
    use wire::search_similar_submissions_request::Query;
    let mut violations = FieldViolations::new();
    let to = match request.query {
        Some(Query::Text(text)) => {
            check_text(&mut violations, "text", &text, MAX_TEXT_CHARS);
            Some(SimilarTo::Text(text))
        }
        Some(Query::Analysis(name)) => {
            parse_resource_name(&mut violations, "analysis", &name, "submissionAnalyses")
                .map(SimilarTo::Analysis)
        }
        None => {
            violations.add("text", "a text or an analysis is required");
            None
        }
    };
    let form = (!request.form.is_empty()).then(|| {
        parse_resource_name::<uuid::Uuid>(&mut violations, "form", &request.form, "forms")
            .map(|id| resource_name("forms", id))
    });
    let limit = match usize::try_from(request.limit) {
        Ok(0) => DEFAULT_SIMILAR,
        Ok(limit) if limit <= MAX_SIMILAR => limit,
        _ => {
            violations.add(
                "limit",
                format!("must be 1 to {MAX_SIMILAR}, or 0 for {DEFAULT_SIMILAR}"),
            );
            0
        }
    };
    if !(-1.0..=1.0).contains(&request.min_score) {
        violations.add("min_score", "must be from -1 to 1");
    }
    let model = model_id(&mut violations, "model", &request.model);
    violations.into_result()?;
    Ok(SimilarQuery {
        to: to.expect("checked"),
        form: form.flatten(),
        limit,
        min_score: (request.min_score != 0.0).then_some(request.min_score),
        model,
    })
}

/// The wire form of a submission's analysis.
pub fn analysis_to_proto(analysis: &SubmissionAnalysis) -> wire::SubmissionAnalysis {
    wire::SubmissionAnalysis {
        name: resource_name("submissionAnalyses", analysis.id),
        submission: analysis.submission.clone(),
        form: analysis.form.clone(),
        text: analysis.classification.text.clone(),
        classification: Some(crate::events::classification_to_proto(
            &analysis.classification,
        )),
        model: format!("models/{}", analysis.classification.model),
        model_version: analysis.classification.model_version.clone(),
        create_time: Some(timestamp(analysis.created_at)),
        update_time: Some(timestamp(analysis.updated_at)),
    }
}

/// SearchSimilarSubmissions' response.
pub fn similar_to_proto(found: &SimilarSubmissions) -> wire::SearchSimilarSubmissionsResponse {
    wire::SearchSimilarSubmissionsResponse {
        results: found
            .results
            .iter()
            .map(|(analysis, score)| wire::SimilarSubmission {
                analysis: Some(analysis_to_proto(analysis)),
                score: *score,
            })
            .collect(),
        scanned: i32::try_from(found.scanned).unwrap_or(i32::MAX),
        scan_truncated: found.scan_truncated,
    }
}

/// CreateBatchJob's request, checked.
pub fn new_batch_job(request: wire::CreateBatchJobRequest) -> Result<NewBatchJob, FieldViolations> {
    let Some(job) = request.batch_job else {
        return Err(FieldViolations::single("batch_job", "is required"));
    };
    let mut violations = FieldViolations::new();
    let task = enum_field(
        &mut violations,
        "batch_job.task",
        job.task,
        |task| match task {
            wire::BatchTask::Unspecified => None,
            wire::BatchTask::Embed => Some(BatchTask::Embed),
            wire::BatchTask::Classify => Some(BatchTask::Classify),
            wire::BatchTask::ClassifyTicket => Some(BatchTask::ClassifyTicket),
        },
    );
    let model = model_id(&mut violations, "batch_job.model", &job.model);
    let label_set = (!job.label_set.is_empty())
        .then(|| {
            parse_resource_name(
                &mut violations,
                "batch_job.label_set",
                &job.label_set,
                "labelSets",
            )
        })
        .flatten();
    match task {
        Some(BatchTask::Classify) if job.label_set.is_empty() => {
            violations.add("batch_job.label_set", "is required for CLASSIFY");
        }
        Some(BatchTask::Embed) if !job.label_set.is_empty() => {
            violations.add("batch_job.label_set", "must be empty for EMBED");
        }
        _ => {}
    }
    if !job.webhook_endpoint.is_empty() {
        parse_resource_name::<uuid::Uuid>(
            &mut violations,
            "batch_job.webhook_endpoint",
            &job.webhook_endpoint,
            "webhookEndpoints",
        );
    }
    if job.items.is_empty() || job.items.len() > MAX_BATCH_ITEMS {
        violations.add(
            "batch_job.items",
            format!("must hold 1 to {MAX_BATCH_ITEMS} items"),
        );
    }
    let mut characters = 0;
    let mut ids = std::collections::HashSet::new();
    for (index, item) in job.items.iter().enumerate() {
        let at = format!("batch_job.items[{index}]");
        if item.id.is_empty() || item.id.chars().count() > MAX_ITEM_ID_CHARS {
            violations.add(
                format!("{at}.id"),
                format!("must be 1 to {MAX_ITEM_ID_CHARS} characters"),
            );
        } else if !ids.insert(item.id.as_str()) {
            violations.add(format!("{at}.id"), "is the id of an earlier item");
        }
        check_text(
            &mut violations,
            &format!("{at}.text"),
            &item.text,
            MAX_TEXT_CHARS,
        );
        if item.subject.chars().count() > MAX_SUBJECT_CHARS {
            violations.add(
                format!("{at}.subject"),
                format!("must be at most {MAX_SUBJECT_CHARS} characters"),
            );
        }
        if item.source.chars().count() > MAX_SOURCE_CHARS {
            violations.add(
                format!("{at}.source"),
                format!("must be at most {MAX_SOURCE_CHARS} characters"),
            );
        }
        characters += item.text.chars().count() + item.subject.chars().count();
    }
    if characters > MAX_BATCH_CHARS {
        violations.add(
            "batch_job.items",
            format!("must hold at most {MAX_BATCH_CHARS} characters of text in all"),
        );
    }
    violations.into_result()?;
    Ok(NewBatchJob {
        task: task.expect("checked"),
        model,
        label_set,
        webhook_endpoint: job.webhook_endpoint,
        items: job
            .items
            .into_iter()
            .map(|item| BatchItem {
                id: item.id,
                text: item.text,
                subject: item.subject,
                source: item.source,
            })
            .collect(),
    })
}

/// ListBatchJobs' request: the state kept, the position the page starts after (newest
/// first), the page size, and the key of its page tokens.
pub type BatchListing = Listing<Option<BatchState>, (DateTime<Utc>, BatchJobId)>;

/// ListBatchJobs' request, checked.
pub fn list_batch_jobs_request(
    request: &wire::ListBatchJobsRequest,
) -> Result<BatchListing, FieldViolations> {
    let mut violations = FieldViolations::new();
    let size = paging::page_size(&mut violations, request.page_size);
    let state = enum_filter(
        &mut violations,
        "state",
        request.state,
        |state| match state {
            wire::BatchJobState::Unspecified => None,
            wire::BatchJobState::Queued => Some(BatchState::Queued),
            wire::BatchJobState::Running => Some(BatchState::Running),
            wire::BatchJobState::Succeeded => Some(BatchState::Succeeded),
            wire::BatchJobState::Failed => Some(BatchState::Failed),
            wire::BatchJobState::Cancelled => Some(BatchState::Cancelled),
        },
    );
    let key = format!("batchJobs|{}", request.state);
    Listing::by_time_and_id(violations, state, key, size, &request.page_token)
}

/// ListBatchJobs' response.
pub fn batch_jobs_page(
    page: &Page<BatchJob, (chrono::DateTime<chrono::Utc>, BatchJobId)>,
    key: &str,
) -> wire::ListBatchJobsResponse {
    wire::ListBatchJobsResponse {
        batch_jobs: page
            .items
            .iter()
            .map(|job| crate::events::batch_job_to_proto(job, Vec::new()))
            .collect(),
        next_page_token: paging::time_and_id_token(key, page.next_after),
    }
}
