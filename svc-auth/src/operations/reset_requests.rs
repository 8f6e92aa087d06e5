//! Password reset requests, worked off the request path. `RequestPasswordReset` answers once
//! its request is queued; a worker beside the server looks the email up and, for a member,
//! creates the token and emits its event. How long the answer takes thus never depends on
//! whether the email belongs to a member.

use std::future::Future;
use std::num::NonZeroUsize;

use platform::context::RequestContext;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::Identity;
use crate::domain::Email;

/// A reset request waiting for the worker.
#[derive(Debug)]
struct ResetRequest {
    context: RequestContext,
    email: Email,
}

/// Where requests are queued: bounded, and never waited on.
#[derive(Debug, Clone)]
pub(crate) struct ResetRequests {
    sender: mpsc::Sender<ResetRequest>,
}

/// The worker's end of the queue ([`ResetWorker::run`]).
#[derive(Debug)]
pub(crate) struct ResetWorker {
    receiver: mpsc::Receiver<ResetRequest>,
}

/// A queue holding up to `capacity` requests, and the worker that empties it.
pub(crate) fn reset_queue(capacity: NonZeroUsize) -> (ResetRequests, ResetWorker) {
    let (sender, receiver) = mpsc::channel(capacity.get());
    (ResetRequests { sender }, ResetWorker { receiver })
}

impl ResetRequests {
    /// Queues a reset of `email` for the caller of `context`, without waiting. A full queue
    /// drops the request: the caller is answered the same either way, so a flood of requests
    /// learns nothing, and the drop is logged and counted.
    pub(crate) fn submit(&self, context: &RequestContext, email: &Email) {
        let request = ResetRequest {
            context: context.clone(),
            email: email.clone(),
        };
        let (request, why) = match self.sender.try_send(request) {
            Ok(()) => {
                crate::metrics::password_reset_request("queued");
                return;
            }
            Err(TrySendError::Full(request)) => (request, "the queue is full"),
            Err(TrySendError::Closed(request)) => (request, "the worker has stopped"),
        };
        crate::metrics::password_reset_request("dropped");
        tracing::warn!(
            request_id = %request.context.request_id,
            tenant_id = ?request.context.tenant_id,
            why,
            "password reset request dropped"
        );
    }
}

impl ResetWorker {
    /// Works the queued requests one at a time as `identity` until `stopped` completes (the
    /// server has drained by then), then those still queued, and returns.
    pub(crate) async fn run(mut self, identity: Identity, stopped: impl Future<Output = ()>) {
        let mut stopped = std::pin::pin!(stopped);
        loop {
            let next = tokio::select! {
                next = self.receiver.recv() => next,
                () = &mut stopped => break,
            };
            // Every sender gone: nothing more can come.
            let Some(request) = next else {
                return;
            };
            work(&identity, request).await;
        }
        self.receiver.close();
        while let Some(request) = self.receiver.recv().await {
            work(&identity, request).await;
        }
    }
}

async fn work(identity: &Identity, request: ResetRequest) {
    let ResetRequest { context, email } = request;
    if let Err(error) = identity.send_password_reset(&context, &email).await {
        // Nobody waits for the answer: the failure is only logged and counted.
        crate::metrics::password_reset_request("failed");
        tracing::error!(
            request_id = %context.request_id,
            tenant_id = ?context.tenant_id,
            error = ?error,
            "password reset request failed"
        );
    }
}

#[cfg(test)]
mod tests {
    use platform::context::{Principal, UserId};

    use super::*;

    fn context(request_id: &str) -> RequestContext {
        let principal = Principal::PlatformAdmin {
            user_id: UserId::generate(),
        };
        RequestContext::internal(principal, request_id)
    }

    #[test]
    fn a_full_queue_drops_further_requests_without_waiting() {
        let (requests, mut worker) = reset_queue(NonZeroUsize::MIN);
        let email = Email::parse("ada@example.com").unwrap();
        requests.submit(&context("first"), &email);
        requests.submit(&context("second"), &email);
        let queued = worker.receiver.try_recv().unwrap();
        assert_eq!(queued.context.request_id, "first");
        assert_eq!(queued.email, email);
        assert!(worker.receiver.try_recv().is_err());
    }
}
