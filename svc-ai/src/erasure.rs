//! The right to erasure: when svc-forms deletes a submission for good
//! (`forms.submission.deleted`), every copy svc-ai keeps of its text goes too: the
//! classifications whose source is the submission, the examples their corrections made (their
//! label sets take a new version), and the batch items that came from it.

use platform::amqp::Outcome;
use platform::consumer::{Audience, EventHandler, ReceivedEvent, Subscription};
use proto::formflow::events::v1::SubmissionDeleted;

use crate::operations::Ai;

/// The durable queue of erasures.
const ERASURES: &str = "svc-ai.erasures";

/// What svc-ai erases on.
pub const ERASURE_SUBSCRIPTION: Subscription = Subscription {
    audience: Audience::OneReplica(ERASURES),
    bindings: &["forms.submission.deleted.v1"],
    prefetch: 8,
};

/// Erases what a deleted submission left in svc-ai.
#[derive(Debug, Clone)]
pub struct Erasures {
    ai: Ai,
}

impl Erasures {
    /// Erasures over `ai`.
    pub fn new(ai: Ai) -> Self {
        Self { ai }
    }
}

impl EventHandler for Erasures {
    async fn handle(&self, event: ReceivedEvent) -> Outcome {
        let Some(tenant) = event.tenant_id else {
            return Outcome::Reject("a forms.submission.deleted event names no tenant".to_owned());
        };
        let deleted: SubmissionDeleted = match event.decode() {
            Some(Ok(deleted)) => deleted,
            Some(Err(error)) => return Outcome::Reject(error),
            None => return Outcome::Reject(format!("not an erasure: {}", event.event_type)),
        };
        if !deleted.submission.starts_with("forms/") {
            return Outcome::Reject(format!("{:?} is not a submission", deleted.submission));
        }
        // Deleting what is already gone deletes nothing: a redelivered event is harmless.
        match self.ai.erase_source(tenant, &deleted.submission).await {
            Ok(erased) => {
                if erased > 0 {
                    tracing::info!(submission = %deleted.submission, erased, "erased a deleted submission's copies");
                }
                Outcome::Done
            }
            Err(error) => Outcome::Retry(format!("{error:#}")),
        }
    }
}
