//! A label set's linear head: multinomial logistic regression (linfa) trained on the
//! embeddings of its examples, once every label has enough of them. It learns which directions
//! of the embedding space separate the labels, where a prototype only knows their centres:
//! what priority and sentiment need, since their examples share topics with each other.

use linfa::prelude::*;
use linfa_logistic::{MultiFittedLogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2};

/// Examples every label needs before a head is trained.
pub const MIN_EXAMPLES_PER_LABEL: usize = 8;

/// L2 penalty of the regression: small, since embeddings are unit vectors whose useful
/// weights are large.
const ALPHA: f32 = 0.01;

/// A trained head.
#[derive(Debug)]
pub struct Head {
    model: MultiFittedLogisticRegression<f32, usize>,
    labels: usize,
}

impl Head {
    /// A head over `labels` labels trained on `rows` (a label's index and an embedding);
    /// `None` when a label has fewer than [`MIN_EXAMPLES_PER_LABEL`] rows.
    pub fn train(labels: usize, rows: &[(usize, &[f32])]) -> anyhow::Result<Option<Head>> {
        let mut counts = vec![0; labels];
        for (label, _) in rows {
            counts[*label] += 1;
        }
        if counts.iter().any(|&count| count < MIN_EXAMPLES_PER_LABEL) {
            return Ok(None);
        }
        let dimensions = rows[0].1.len();
        let records = Array2::from_shape_vec(
            (rows.len(), dimensions),
            rows.iter()
                .flat_map(|(_, vector)| vector.iter().copied())
                .collect(),
        )?;
        let targets = Array1::from_iter(rows.iter().map(|(label, _)| *label));
        let model = MultiLogisticRegression::default()
            .alpha(ALPHA)
            .max_iterations(200)
            .fit(&Dataset::new(records, targets))?;
        Ok(Some(Head { model, labels }))
    }

    /// The probability of each label (by index) for `embedding`.
    pub fn probabilities(&self, embedding: &[f32]) -> Vec<f32> {
        let record = Array2::from_shape_vec((1, embedding.len()), embedding.to_vec())
            .expect("one row of the embedding's length");
        let predicted = self.model.predict_probabilities(&record);
        let mut by_label = vec![0.0; self.labels];
        for (class, probability) in self.model.classes().iter().zip(predicted.row(0)) {
            by_label[*class] = *probability;
        }
        by_label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` unit vectors near axis `axis` of 4 dimensions.
    fn near(axis: usize, count: usize) -> Vec<Vec<f32>> {
        (0..count)
            .map(|index| {
                let mut vector = [0.1 * (index % 3) as f32; 4];
                vector[axis] = 1.0;
                let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
                vector.iter().map(|value| value / norm).collect()
            })
            .collect()
    }

    #[test]
    fn a_head_learns_which_label_a_direction_means() {
        let (first, second) = (near(0, 8), near(1, 8));
        let rows: Vec<(usize, &[f32])> = first
            .iter()
            .map(|vector| (0, vector.as_slice()))
            .chain(second.iter().map(|vector| (1, vector.as_slice())))
            .collect();
        let head = Head::train(2, &rows).unwrap().expect("enough examples");
        let probabilities = head.probabilities(&[0.0, 1.0, 0.0, 0.0]);
        assert!(probabilities[1] > 0.8, "{probabilities:?}");
        assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn too_few_examples_of_a_label_train_no_head() {
        let (first, second) = (near(0, 8), near(1, MIN_EXAMPLES_PER_LABEL - 1));
        let rows: Vec<(usize, &[f32])> = first
            .iter()
            .map(|vector| (0, vector.as_slice()))
            .chain(second.iter().map(|vector| (1, vector.as_slice())))
            .collect();
        assert!(Head::train(2, &rows).unwrap().is_none());
    }
}
