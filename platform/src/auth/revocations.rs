//! Revoked sessions, shared through Redis so that the gateway refuses their access tokens
//! within seconds instead of at expiry. svc-auth's database stays the authority (it refuses
//! refresh tokens of revoked sessions whatever Redis holds); losing Redis only means revoked
//! access tokens live until they expire (15 minutes by default).

use std::time::Duration;

use redis::AsyncCommands;
use uuid::Uuid;

use crate::redis::Redis;

/// The revocation list.
#[derive(Debug, Clone)]
pub struct RevokedSessions {
    redis: Redis,
    /// How long an entry is kept: the access token lifetime plus leeway.
    ttl: Duration,
}

impl RevokedSessions {
    /// A list whose entries outlive access tokens of `access_token_ttl`.
    pub fn new(redis: Redis, access_token_ttl: Duration) -> Self {
        Self {
            redis,
            ttl: access_token_ttl + Duration::from_secs(60),
        }
    }

    /// The Redis key that marks `session` revoked, for callers that check it inside a script
    /// of their own (the gateway, in its rate limit round trip).
    pub fn key(&self, session: Uuid) -> String {
        self.redis.key(&format!("auth:revoked-session:{session}"))
    }

    /// Adds sessions to the list.
    pub async fn revoke(&self, sessions: &[Uuid]) -> anyhow::Result<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        let mut pipeline = redis::pipe();
        for session in sessions {
            pipeline
                .set_ex(self.key(*session), 1, self.ttl.as_secs())
                .ignore();
        }
        let mut connection = self.redis.connection();
        pipeline.query_async::<()>(&mut connection).await?;
        Ok(())
    }

    /// Whether the session was revoked.
    pub async fn is_revoked(&self, session: Uuid) -> anyhow::Result<bool> {
        let mut connection = self.redis.connection();
        Ok(connection.exists(self.key(session)).await?)
    }
}
