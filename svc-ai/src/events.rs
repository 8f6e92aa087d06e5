//! The wire forms of classifications that the `ai.classification.completed` event and the
//! responses share.

use platform::wire::{resource_name, timestamp};
use proto::formflow::ai::v1 as wire;

use crate::domain::{Classification, Score};

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
        outcome: Some(wire::classification::Outcome::Labels(
            wire::LabelClassification {
                label_set,
                label_set_version,
                scores: classification.scores.iter().map(score_to_proto).collect(),
                top_label: top.map(|score| score.label.clone()).unwrap_or_default(),
                confidence: top.map(|score| score.score).unwrap_or_default(),
                runner_up: classification.scores.get(1).map(score_to_proto),
                method: wire::ClassificationMethod::Prototype as i32,
                corrected_label: classification.corrected_label.clone().unwrap_or_default(),
            },
        )),
    }
}
