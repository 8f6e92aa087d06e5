//! Verifying webhook requests as the Standard Webhooks specification says: the core (headers,
//! signatures over `{webhook-id}.{webhook-timestamp}.{body}`, the timestamp's tolerance) is
//! `platform::webhooks`, shared with svc-notify's signed deliveries; this module adds how long
//! a rotated secret keeps verifying.

pub use platform::webhooks::{Refusal, Signed, verify};

/// How long the previous secret of a rotated WEBHOOK_SECRET credential is still accepted.
pub const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);
