//! Rate limits with the generic cell rate algorithm (GCRA): per tenant (its plan's limits), per
//! caller (user, API key or service) and per client address for anonymous calls. The state
//! lives in Redis and is updated atomically by one Lua script for every key of a request, so
//! every gateway replica shares it; while Redis is unreachable the same algorithm runs in
//! process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use platform::redis::Redis;

/// A sustained rate with a burst on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Requests allowed at once (at least 1).
    pub burst: u32,
}

impl Limit {
    fn emission_ms(self) -> u64 {
        (60_000 / u64::from(self.per_minute.max(1))).max(1)
    }

    fn tolerance_ms(self) -> u64 {
        self.emission_ms() * u64::from(self.burst.max(1) - 1)
    }
}

/// The outcome of a check, with what the `RateLimit-*` headers report (of the tightest key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// `RateLimit-Limit`: the burst capacity of the tightest key.
    pub limit: u32,
    /// `RateLimit-Remaining`.
    pub remaining: u32,
    /// `RateLimit-Reset`: seconds until that key's burst is whole again.
    pub reset_seconds: u64,
    /// `Retry-After` when refused.
    pub retry_after_seconds: u64,
    /// The caller's session was revoked: refused, and nothing charged.
    pub revoked: bool,
}

/// Checks all keys, then charges all of them if every one allows: a refused request costs
/// nothing. KEYS are the counters; ARGV holds emission and tolerance in ms for each. When
/// there is one KEY more than ARGV pairs, it is the caller's session revocation marker: if it
/// exists the answer is {-1} and nothing is charged (one round trip for both checks).
const SCRIPT: &str = r#"
local counters = #ARGV / 2
if #KEYS > counters and redis.call('EXISTS', KEYS[#KEYS]) == 1 then
  return {-1}
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local results = {}
local allowed = 1
for i = 1, counters do
  local key = KEYS[i]
  local emission = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  if now < tat - tolerance then
    allowed = 0
    results[i] = {0, tat - tolerance - now, tat}
  else
    results[i] = {1, 0, tat}
  end
end
local out = {allowed}
for i = 1, counters do
  local key = KEYS[i]
  local emission = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = results[i][3]
  local new_tat = tat
  if allowed == 1 then
    new_tat = tat + emission
    redis.call('SET', key, new_tat, 'PX', new_tat - now + 1000)
  end
  local remaining = math.floor((tolerance - (new_tat - now)) / emission) + 1
  if remaining < 0 then remaining = 0 end
  table.insert(out, remaining)
  table.insert(out, new_tat - now)
  table.insert(out, results[i][2])
end
return out
"#;

/// The limiter.
pub struct RateLimiter {
    redis: Redis,
    script: redis::Script,
    /// Theoretical arrival times (ms since the epoch), for when Redis is unreachable.
    local: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RateLimiter")
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter keeping its counters in `redis`.
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            script: redis::Script::new(SCRIPT),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Checks (and, if allowed, charges) every `(key, limit)`; with `revocation_key` (a
    /// full Redis key), first refuses a revoked session without charging anything.
    pub async fn check(
        &self,
        keys: &[(String, Limit)],
        revocation_key: Option<String>,
    ) -> Decision {
        if keys.is_empty() {
            return Decision {
                allowed: true,
                limit: 0,
                remaining: 0,
                reset_seconds: 0,
                retry_after_seconds: 0,
                revoked: false,
            };
        }
        let mut invocation = self.script.prepare_invoke();
        for (key, limit) in keys {
            invocation
                .key(self.redis.key(&format!("ratelimit:{key}")))
                .arg(limit.emission_ms())
                .arg(limit.tolerance_ms());
        }
        if let Some(revocation_key) = revocation_key {
            invocation.key(revocation_key);
        }
        let mut connection = self.redis.connection();
        let answer: redis::RedisResult<Vec<i64>> = invocation.invoke_async(&mut connection).await;
        let (allowed, per_key) = match answer {
            Ok(values) if values.first() == Some(&-1) => {
                return Decision {
                    allowed: false,
                    limit: 0,
                    remaining: 0,
                    reset_seconds: 0,
                    retry_after_seconds: 0,
                    revoked: true,
                };
            }
            Ok(values) if values.len() == 1 + 3 * keys.len() => {
                let per_key: Vec<(u64, u64, u64)> = values[1..]
                    .chunks(3)
                    .map(|chunk| {
                        (
                            u64::try_from(chunk[0]).unwrap_or(0),
                            u64::try_from(chunk[1]).unwrap_or(0),
                            u64::try_from(chunk[2]).unwrap_or(0),
                        )
                    })
                    .collect();
                (values[0] == 1, per_key)
            }
            // Redis unreachable: the limits hold in process; revocations are not known, and
            // revoked tokens live until they expire (15 minutes).
            Ok(_) | Err(_) => {
                crate::metrics::rate_limit_fallback();
                self.check_locally(keys)
            }
        };
        summarise(allowed, keys, &per_key)
    }

    fn check_locally(&self, keys: &[(String, Limit)]) -> (bool, Vec<(u64, u64, u64)>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as u64;
        let mut local = self
            .local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if local.len() > 100_000 {
            local.retain(|_, tat| *tat > now);
        }
        let arrival_times: Vec<u64> = keys
            .iter()
            .map(|(key, _)| local.get(key).copied().unwrap_or(now).max(now))
            .collect();
        let allowed = keys
            .iter()
            .zip(&arrival_times)
            .all(|((_, limit), tat)| now + limit.tolerance_ms() >= *tat);
        let mut per_key = Vec::with_capacity(keys.len());
        for ((key, limit), tat) in keys.iter().zip(arrival_times) {
            let retry_after = (tat.saturating_sub(limit.tolerance_ms())).saturating_sub(now);
            let new_tat = if allowed {
                tat + limit.emission_ms()
            } else {
                tat
            };
            if allowed {
                local.insert(key.clone(), new_tat);
            }
            let remaining = (limit.tolerance_ms() as i64 - (new_tat - now) as i64)
                .div_euclid(limit.emission_ms() as i64)
                + 1;
            per_key.push((
                u64::try_from(remaining).unwrap_or(0),
                new_tat - now,
                if allowed { 0 } else { retry_after },
            ));
        }
        (allowed, per_key)
    }
}

fn summarise(allowed: bool, keys: &[(String, Limit)], per_key: &[(u64, u64, u64)]) -> Decision {
    // Report the key with the fewest requests left.
    let (index, (remaining, reset_ms, _)) = per_key
        .iter()
        .enumerate()
        .min_by_key(|(_, (remaining, _, _))| *remaining)
        .map(|(index, values)| (index, *values))
        .unwrap_or((0, (0, 0, 0)));
    let retry_after_ms = per_key
        .iter()
        .map(|(_, _, retry)| *retry)
        .max()
        .unwrap_or(0);
    Decision {
        allowed,
        limit: keys[index].1.burst.max(1),
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        reset_seconds: reset_ms.div_ceil(1000),
        retry_after_seconds: retry_after_ms.div_ceil(1000).max(u64::from(!allowed)),
        revoked: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter_without_redis() -> RateLimiter {
        RateLimiter::new(
            Redis::connect(&platform::config::RedisConfig::for_url(
                "redis://127.0.0.1:1",
                "x:",
            ))
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn the_in_process_fallback_allows_the_burst_then_refuses() {
        let limiter = limiter_without_redis();
        let keys = [(
            "ip:1".to_owned(),
            Limit {
                per_minute: 60,
                burst: 3,
            },
        )];
        for expected_remaining in [2, 1, 0] {
            let decision = limiter.check(&keys, None).await;
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected_remaining);
            assert_eq!(decision.limit, 3);
        }
        let refused = limiter.check(&keys, None).await;
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_seconds, 1);
        // Another key is unaffected.
        assert!(
            limiter
                .check(
                    &[(
                        "ip:2".to_owned(),
                        Limit {
                            per_minute: 60,
                            burst: 3
                        }
                    )],
                    None
                )
                .await
                .allowed
        );
    }

    #[tokio::test]
    async fn a_refused_request_charges_no_key() {
        let limiter = limiter_without_redis();
        let tight = (
            "user:1".to_owned(),
            Limit {
                per_minute: 60,
                burst: 1,
            },
        );
        let loose = (
            "tenant:1".to_owned(),
            Limit {
                per_minute: 6000,
                burst: 2,
            },
        );
        assert!(
            limiter
                .check(&[tight.clone(), loose.clone()], None)
                .await
                .allowed
        );
        assert!(!limiter.check(&[tight, loose.clone()], None).await.allowed);
        // The loose key was charged once only: one more request fits.
        assert!(limiter.check(&[loose], None).await.allowed);
    }
}
