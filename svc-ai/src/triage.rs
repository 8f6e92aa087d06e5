//! Ticket triage: the shipped default label sets (`svc-ai/triage/defaults.json`, written for
//! the project), and the cues that embeddings read poorly. A ticket's priority and sentiment
//! start from their label sets' scores; each cue found in the text adds to its label's logit
//! before the softmax is taken again, so that an outage report is urgent however calmly it is
//! written, and "thank you so much" is positive.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::{Label, Score};
use crate::prototypes::{ranked, softmax};

/// What a label set decides in triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketField {
    /// The category.
    Category,
    /// The priority.
    Priority,
    /// The sentiment.
    Sentiment,
}

impl TicketField {
    /// The name stored with a label set.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketField::Category => "category",
            TicketField::Priority => "priority",
            TicketField::Sentiment => "sentiment",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<TicketField> {
        [
            TicketField::Category,
            TicketField::Priority,
            TicketField::Sentiment,
        ]
        .into_iter()
        .find(|field| field.as_str() == text)
    }

    /// The labels a label set for this field must have exactly, if any.
    pub fn required_labels(self) -> Option<&'static [&'static str]> {
        match self {
            TicketField::Category => None,
            TicketField::Priority => Some(&PRIORITIES),
            TicketField::Sentiment => Some(&SENTIMENTS),
        }
    }

    /// Whether `labels` suit this field.
    pub fn accepts(self, labels: &[Label]) -> bool {
        self.required_labels().is_none_or(|required| {
            labels.len() == required.len()
                && required
                    .iter()
                    .all(|value| labels.iter().any(|label| label.value == *value))
        })
    }
}

/// Priority labels, least urgent first.
pub const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
/// Sentiment labels.
pub const SENTIMENTS: [&str; 3] = ["negative", "neutral", "positive"];

/// A shipped label set.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultSet {
    /// Its display name.
    pub display_name: String,
    /// Its labels, each with examples.
    pub labels: Vec<DefaultLabel>,
}

/// A label of a shipped label set.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultLabel {
    /// Its value.
    pub value: String,
    /// What it means.
    pub description: String,
    /// Example tickets.
    pub examples: Vec<String>,
}

impl DefaultSet {
    /// Its labels, without examples.
    pub fn labels(&self) -> Vec<Label> {
        self.labels
            .iter()
            .map(|label| Label {
                value: label.value.clone(),
                description: label.description.clone(),
            })
            .collect()
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    category: DefaultSet,
    priority: DefaultSet,
    sentiment: DefaultSet,
}

static DEFAULTS: LazyLock<Defaults> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../triage/defaults.json"))
        .expect("triage/defaults.json is valid (a unit test reads it)")
});

/// The shipped label set of `field`.
pub fn default_set(field: TicketField) -> &'static DefaultSet {
    match field {
        TicketField::Category => &DEFAULTS.category,
        TicketField::Priority => &DEFAULTS.priority,
        TicketField::Sentiment => &DEFAULTS.sentiment,
    }
}

/// The text of a ticket the model reads: its subject, then its body.
pub fn ticket_text(subject: &str, body: &str) -> String {
    if subject.trim().is_empty() {
        body.to_owned()
    } else {
        format!("{}\n{body}", subject.trim())
    }
}

/// The version of the cues below: it is part of cached results' keys, so bump it whenever a
/// cue changes.
pub const CUES_VERSION: &str = "1";

/// A phrase that says something about a ticket the embedding misses.
#[derive(Debug)]
struct Cue {
    /// What it is, as results name it.
    name: &'static str,
    /// The label it speaks for.
    label: &'static str,
    /// How much it adds to that label's logit.
    weight: f32,
    pattern: Regex,
}

fn cue(name: &'static str, label: &'static str, weight: f32, pattern: &str) -> Cue {
    Cue {
        name,
        label,
        weight,
        pattern: Regex::new(&format!("(?i){pattern}")).expect("cue patterns compile"),
    }
}

static PRIORITY_CUES: LazyLock<Vec<Cue>> = LazyLock::new(|| {
    vec![
        cue(
            "outage",
            "urgent",
            3.0,
            r"\b(outage|(is|are|went|completely|totally) down|down for (everyone|all)|not loading for (anyone|everyone)|5\d\d errors? for (everyone|all))\b",
        ),
        cue(
            "everyone affected",
            "urgent",
            2.0,
            r"\b(all (of )?(our|my|the) (users|customers|clients|forms|staff|applicants|students|patients|submissions|workflows)|every (customer|user|single)|everyone|nobody can|no one can|none of (our|the))\b",
        ),
        cue(
            "data loss",
            "urgent",
            3.0,
            r"\b(data (loss|lost|is gone|wiped|deleted)|(lost|deleted|wiped|disappeared)( all)? (our|the|my)? ?(data|submissions|responses|records)|submissions (are|have) (gone|vanished|disappeared))\b",
        ),
        cue(
            "security incident",
            "urgent",
            3.0,
            r"\b(breach|breached|hacked|compromised|leak(ed|ing)?|phishing|unauthori[sz]ed (access|login|logins)|someone (else )?(logged|got) in|security (incident|issue|hole|vulnerability))\b",
        ),
        cue(
            "production",
            "urgent",
            1.5,
            r"\b(production|live site|in prod)\b",
        ),
        cue(
            "deadline",
            "high",
            2.0,
            r"\b(today|tonight|tomorrow|this (morning|afternoon|evening)|deadline|by (monday|tuesday|wednesday|thursday|friday|noon|eod|end of (the )?day)|asap|as soon as possible|right now|immediately|urgent(ly)?)\b",
        ),
        cue(
            "blocked",
            "high",
            1.5,
            r"\b(no workaround|locked out|blocking|blocked|can(no|')?t work|cannot work|stopped working|charged (us )?twice|double[- ]charged|overcharged)\b",
        ),
        cue(
            "no hurry",
            "low",
            2.0,
            r"\b(no rush|no hurry|whenever you (can|have time)|when you get a chance|just (curious|wondering)|would be (nice|great|cool)|it would be great|feature request|suggestion|idea|typo|cosmetic|nice to have|small thing|minor)\b",
        ),
    ]
});

static SENTIMENT_CUES: LazyLock<Vec<Cue>> = LazyLock::new(|| {
    vec![
        cue(
            "praise",
            "positive",
            2.5,
            r"\b(thanks? (so|very) much|thank you( so much| very much)?|love (it|the|your|how|using)|great (job|work|product|service|support)|amazing|awesome|fantastic|brilliant|excellent|delighted|appreciate|big fans?|kudos|well done|really happy|so happy|lifesaver)\b",
        ),
        cue(
            "frustration",
            "negative",
            2.5,
            r"\b(frustrat(ed|ing)|annoy(ed|ing)|angry|furious|unacceptable|ridiculous|terrible|awful|horrible|worst|disappoint(ed|ing)|fed up|sick of|not happy|unhappy|(cancel|leave|switch)(ing)? (to|our|my|the) |again\?|still (no|not|broken|waiting)|third time|how many times|useless|joke|waste of)\b",
        ),
    ]
});

/// The names of the priority cues in `text`.
pub fn urgency_cues(text: &str) -> Vec<&'static str> {
    PRIORITY_CUES
        .iter()
        .filter(|cue| cue.pattern.is_match(text))
        .map(|cue| cue.name)
        .collect()
}

/// What a ticket's category says of its priority: feature requests and general questions
/// have no time pressure unless a cue says otherwise (the labels' definitions).
const LOW_CATEGORIES: [&str; 2] = ["feature_request", "other"];
/// How much a low-pressure category adds to `low`'s logit.
const LOW_CATEGORY_WEIGHT: f32 = 1.0;

/// `scores` (a softmax, highest first) with each cue of `field` found in `text` added to its
/// label's logit, and for a priority the ticket's `category`, as a softmax again, highest
/// first.
pub fn with_cues(
    field: TicketField,
    text: &str,
    category: Option<&str>,
    scores: &[Score],
) -> Vec<Score> {
    let cues: &[Cue] = match field {
        TicketField::Category => &[],
        TicketField::Priority => &PRIORITY_CUES,
        TicketField::Sentiment => &SENTIMENT_CUES,
    };
    let low_category = field == TicketField::Priority
        && category.is_some_and(|category| LOW_CATEGORIES.contains(&category));
    let logits: Vec<f32> = scores
        .iter()
        .map(|score| {
            let mut boost: f32 = cues
                .iter()
                .filter(|cue| cue.label == score.label && cue.pattern.is_match(text))
                .map(|cue| cue.weight)
                .sum();
            if low_category && score.label == "low" {
                boost += LOW_CATEGORY_WEIGHT;
            }
            score.score.max(f32::MIN_POSITIVE).ln() + boost
        })
        .collect();
    ranked(scores.iter().map(|score| &score.label), softmax(&logits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(pairs: &[(&str, f32)]) -> Vec<Score> {
        pairs
            .iter()
            .map(|(label, score)| Score {
                label: (*label).to_owned(),
                score: *score,
            })
            .collect()
    }

    #[test]
    fn the_shipped_defaults_have_the_fields_labels_and_examples() {
        for field in [
            TicketField::Category,
            TicketField::Priority,
            TicketField::Sentiment,
        ] {
            let set = default_set(field);
            assert!(field.accepts(&set.labels()), "{field:?}");
            let mut violations = platform::error::FieldViolations::new();
            crate::domain::check_labels(&mut violations, "labels", &set.labels());
            assert!(violations.is_empty(), "{field:?}: {violations:?}");
            for label in &set.labels {
                assert!(label.examples.len() >= 10, "{}", label.value);
            }
        }
        let values: Vec<String> = default_set(TicketField::Category)
            .labels
            .iter()
            .map(|label| label.value.clone())
            .collect();
        assert_eq!(
            values,
            ["billing", "bug", "account", "feature_request", "other"]
        );
    }

    #[test]
    fn priority_and_sentiment_sets_need_exactly_their_labels() {
        let labels = |values: &[&str]| -> Vec<Label> {
            values
                .iter()
                .map(|value| Label {
                    value: (*value).to_owned(),
                    description: String::new(),
                })
                .collect()
        };
        assert!(TicketField::Priority.accepts(&labels(&["urgent", "low", "high", "medium"])));
        assert!(!TicketField::Priority.accepts(&labels(&["low", "high"])));
        assert!(
            !TicketField::Sentiment.accepts(&labels(&["negative", "neutral", "positive", "mixed"]))
        );
        assert!(TicketField::Category.accepts(&labels(&["a", "b"])));
    }

    #[test]
    fn an_outage_told_calmly_becomes_urgent() {
        let text =
            "Hello, the site is down for everyone since 9:00 and all our customers see errors.";
        assert_eq!(urgency_cues(text), ["outage", "everyone affected"]);
        let calm = scores(&[
            ("medium", 0.5),
            ("low", 0.3),
            ("high", 0.15),
            ("urgent", 0.05),
        ]);
        let adjusted = with_cues(TicketField::Priority, text, Some("bug"), &calm);
        assert_eq!(adjusted[0].label, "urgent");
        let total: f32 = adjusted.iter().map(|score| score.score).sum();
        assert!((total - 1.0).abs() < 1e-5);
        // Without a cue, nothing moves.
        let plain = with_cues(
            TicketField::Priority,
            "Where is the export button?",
            Some("bug"),
            &calm,
        );
        assert_eq!(plain[0].label, "medium");
        assert!((plain[0].score - 0.5).abs() < 1e-5);
        // A general question leans to low.
        let question = with_cues(
            TicketField::Priority,
            "Where is the export button?",
            Some("other"),
            &calm,
        );
        assert_eq!(question[0].label, "low");
    }

    #[test]
    fn thanks_and_complaints_move_the_sentiment() {
        let neutral = scores(&[("neutral", 0.6), ("negative", 0.2), ("positive", 0.2)]);
        let thanks = with_cues(
            TicketField::Sentiment,
            "Thank you so much for the quick fix!",
            None,
            &neutral,
        );
        assert_eq!(thanks[0].label, "positive");
        let fed_up = with_cues(
            TicketField::Sentiment,
            "Still not fixed, I'm fed up.",
            None,
            &neutral,
        );
        assert_eq!(fed_up[0].label, "negative");
    }
}
