//! Classification on embeddings: each label's prototype is the mean of the embeddings of its
//! description and examples, and a text's scores are a softmax over its cosine similarity to
//! each prototype. Embeddings are L2-normalised, so cosine is a dot product.

use crate::domain::{Method, Score};
use crate::head::Head;

/// Sharpness of the softmax over cosine similarities: the scale sentence-embedding models of
/// the MiniLM family are trained with (a contrastive loss at temperature 0.05). A label 0.1
/// closer to the text than another is then 7.4 times as likely.
pub const SCALE: f32 = 20.0;

/// The prototype of every label of a label set (or of inline labels), for one model, and its
/// linear head once the examples are enough to train one.
#[derive(Debug)]
pub struct Prototypes {
    labels: Vec<String>,
    vectors: Vec<Vec<f32>>,
    head: Option<Head>,
}

/// How much of a score the head gives when there is one (the prototypes give the rest).
const HEAD_WEIGHT: f32 = 0.5;

impl Prototypes {
    /// The prototypes of `labels`, each the normalised mean of the embeddings in `members`
    /// (the same order as the labels: its description's first, then its examples').
    pub fn new(labels: Vec<String>, members: Vec<Vec<Vec<f32>>>) -> Self {
        debug_assert_eq!(labels.len(), members.len());
        let vectors = members
            .iter()
            .map(|embeddings| {
                let mut sum = vec![0.0; embeddings.first().map_or(0, Vec::len)];
                for embedding in embeddings {
                    for (total, value) in sum.iter_mut().zip(embedding) {
                        *total += value;
                    }
                }
                normalised(sum)
            })
            .collect();
        Self {
            labels,
            vectors,
            head: None,
        }
    }

    /// The prototypes of [`Prototypes::new`] with a linear head trained on the examples in
    /// `members` (each label's embeddings after its description's), when every label has
    /// enough ([`MIN_EXAMPLES_PER_LABEL`](crate::head::MIN_EXAMPLES_PER_LABEL)).
    pub fn trained(labels: Vec<String>, members: Vec<Vec<Vec<f32>>>) -> anyhow::Result<Self> {
        let head = {
            let rows: Vec<(usize, &[f32])> = members
                .iter()
                .enumerate()
                .flat_map(|(label, embeddings)| {
                    embeddings
                        .iter()
                        .skip(1)
                        .map(move |embedding| (label, embedding.as_slice()))
                })
                .collect();
            Head::train(labels.len(), &rows)?
        };
        let mut prototypes = Self::new(labels, members);
        prototypes.head = head;
        Ok(prototypes)
    }

    /// How its scores are made.
    pub fn method(&self) -> Method {
        if self.head.is_some() {
            Method::PrototypeAndHead
        } else {
            Method::Prototype
        }
    }

    /// Every label's score for the text embedded as `embedding`, highest first; the scores add
    /// up to 1.
    pub fn scores(&self, embedding: &[f32]) -> Vec<Score> {
        let logits: Vec<f32> = self
            .vectors
            .iter()
            .map(|prototype| SCALE * dot(prototype, embedding))
            .collect();
        let mut probabilities = softmax(&logits);
        if let Some(head) = &self.head {
            for (probability, learned) in
                probabilities.iter_mut().zip(head.probabilities(embedding))
            {
                *probability = (1.0 - HEAD_WEIGHT) * *probability + HEAD_WEIGHT * learned;
            }
        }
        ranked(self.labels.iter(), probabilities)
    }
}

/// The probabilities `logits` stand for: their softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exponentials: Vec<f32> = logits.iter().map(|logit| (logit - max).exp()).collect();
    let total: f32 = exponentials.iter().sum();
    exponentials
        .iter()
        .map(|exponential| exponential / total)
        .collect()
}

/// `labels` with their `probabilities` (in the same order), highest first.
pub fn ranked<'a>(labels: impl Iterator<Item = &'a String>, probabilities: Vec<f32>) -> Vec<Score> {
    let mut scores: Vec<Score> = labels
        .zip(probabilities)
        .map(|(label, score)| Score {
            label: label.clone(),
            score,
        })
        .collect();
    scores.sort_by(|a, b| b.score.total_cmp(&a.score));
    scores
}

/// The dot product of two vectors (their cosine when both are normalised).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn normalised(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = dot(&vector, &vector).sqrt();
    if norm > 0.0 {
        for value in &mut vector {
            *value /= norm;
        }
    }
    vector
}

/// Hex SHA-256 of what decides a classification: the model and its version, the labels (a
/// label set's id and version, or the inline labels) and the text. Parts are length-prefixed,
/// so that no two different inputs share a hash.
pub fn content_hash(model: &str, labels: &str, text: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [model, labels, text] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part.as_bytes());
    }
    context
        .finish()
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(values: &[f32]) -> Vec<f32> {
        normalised(values.to_vec())
    }

    #[test]
    fn the_nearest_prototype_wins_and_scores_add_up_to_one() {
        let prototypes = Prototypes::new(
            vec!["x".into(), "y".into(), "z".into()],
            vec![
                vec![unit(&[1.0, 0.0, 0.0])],
                vec![unit(&[0.0, 1.0, 0.0])],
                vec![unit(&[0.0, 0.0, 1.0])],
            ],
        );
        let scores = prototypes.scores(&unit(&[0.2, 0.9, 0.1]));
        assert_eq!(scores[0].label, "y");
        assert_eq!(scores[1].label, "x");
        let total: f32 = scores.iter().map(|score| score.score).sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        assert!(scores[0].score > 0.99, "{scores:?}");
    }

    #[test]
    fn examples_move_a_prototype_towards_them() {
        let description = unit(&[1.0, 0.0]);
        let text = unit(&[0.6, 0.8]);
        let alone = Prototypes::new(
            vec!["a".into(), "b".into()],
            vec![vec![description.clone()], vec![unit(&[0.0, 1.0])]],
        );
        assert_eq!(alone.scores(&text)[0].label, "b");
        let taught = Prototypes::new(
            vec!["a".into(), "b".into()],
            vec![
                vec![description, text.clone(), text.clone()],
                vec![unit(&[0.0, 1.0])],
            ],
        );
        assert_eq!(taught.scores(&text)[0].label, "a");
    }

    #[test]
    fn the_hash_changes_with_every_part() {
        let base = content_hash("m@1", "labelSets/a@1", "text");
        assert_eq!(base.len(), 64);
        assert_eq!(base, content_hash("m@1", "labelSets/a@1", "text"));
        assert_ne!(base, content_hash("m@2", "labelSets/a@1", "text"));
        assert_ne!(base, content_hash("m@1", "labelSets/a@2", "text"));
        assert_ne!(base, content_hash("m@1", "labelSets/a@1", "text."));
        // Length prefixes keep the parts apart.
        assert_ne!(content_hash("ab", "c", "d"), content_hash("a", "bc", "d"));
    }
}
