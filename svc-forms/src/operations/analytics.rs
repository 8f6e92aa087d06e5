//! Form analytics: views, starts, submissions and conversion over time, completion times and
//! per-field answer statistics, computed in SQL and cached in Redis for a minute.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use platform::context::{Permission, RequestContext};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Forms, load};
use crate::domain::{FieldId, FieldKind, FormId};
use crate::error::Error;
use crate::store::{self, AnswerStats, BucketCounts, FormRef};

/// How long computed analytics are served from the cache: how stale they may be.
const CACHE_SECONDS: u64 = 60;

/// The size of analytics buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interval {
    /// An hour.
    Hour,
    /// A day, from midnight in the time zone.
    Day,
    /// A week, from Monday's midnight in the time zone.
    Week,
}

impl Interval {
    /// Its length.
    pub fn length(self) -> chrono::Duration {
        match self {
            Interval::Hour => chrono::Duration::hours(1),
            Interval::Day => chrono::Duration::days(1),
            Interval::Week => chrono::Duration::weeks(1),
        }
    }

    /// Its unit in Postgres's `date_trunc`.
    fn unit(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
        }
    }
}

/// What analytics cover.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyticsQuery {
    /// Start of the period, inclusive.
    pub start: DateTime<Utc>,
    /// End of the period, exclusive.
    pub end: DateTime<Utc>,
    /// Bucket size.
    pub interval: Interval,
    /// IANA time zone of the buckets' boundaries.
    pub time_zone: String,
}

/// The analytics of a form over a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analytics {
    /// The form.
    pub form_id: FormId,
    /// Start of the period.
    pub start: DateTime<Utc>,
    /// End of the period.
    pub end: DateTime<Utc>,
    /// Counts per bucket, oldest first.
    pub buckets: Vec<BucketCounts>,
    /// Median seconds from view to submission.
    pub median_completion_seconds: Option<f64>,
    /// Mean seconds from view to submission.
    pub mean_completion_seconds: Option<f64>,
    /// Statistics per field of the latest version, in its order, with the field's kind.
    pub fields: Vec<(FieldId, FieldKind, AnswerStats)>,
}

impl Analytics {
    /// Views in the period.
    pub fn views(&self) -> i64 {
        self.buckets.iter().map(|bucket| bucket.views).sum()
    }

    /// Started views in the period.
    pub fn starts(&self) -> i64 {
        self.buckets.iter().map(|bucket| bucket.starts).sum()
    }

    /// Submissions in the period.
    pub fn submissions(&self) -> i64 {
        self.buckets.iter().map(|bucket| bucket.submissions).sum()
    }
}

impl Forms {
    /// The analytics of `form` over `query`'s period, at most a minute old.
    #[tracing::instrument(skip_all)]
    pub async fn analytics(
        &self,
        context: &RequestContext,
        form: &FormRef,
        query: AnalyticsQuery,
        cache_key: &str,
    ) -> Result<Analytics, Error> {
        let tenant = context.authorize(Permission::SubmissionsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let form = load(&mut transaction, tenant, form, false).await?;
        let key = self.redis.key(&format!(
            "forms:analytics:v1:{tenant}:{}:{cache_key}",
            form.id
        ));
        if let Some(cached) = self.cached(&key).await {
            return Ok(cached);
        }
        if !store::time_zone_exists(&mut transaction, &query.time_zone).await? {
            return Err(platform::error::FieldViolations::single(
                "time_zone",
                "is not an IANA time zone (`Europe/Paris`)",
            )
            .into());
        }
        let period = (query.start, query.end);
        let buckets = store::bucket_counts(
            &mut transaction,
            tenant,
            form.id,
            period,
            query.interval.unit(),
            &query.time_zone,
        )
        .await?;
        let (median, mean) =
            store::completion_times(&mut transaction, tenant, form.id, period).await?;
        let fields = match form.published_version {
            0 => Vec::new(),
            version => store::get_version(&mut transaction, tenant, form.id, version)
                .await?
                .map(|version| version.definition.fields)
                .unwrap_or_default(),
        };
        let fields: Vec<_> = fields
            .into_iter()
            .filter(|field| field.kind.is_input())
            .collect();
        let counted: Vec<String> = fields
            .iter()
            .filter(|field| counts_values(field.kind))
            .map(|field| field.id.to_string())
            .collect();
        let mut stats: BTreeMap<String, AnswerStats> =
            store::answer_stats(&mut transaction, tenant, form.id, period, &counted).await?;
        transaction.commit().await?;
        let analytics = Analytics {
            form_id: form.id,
            start: query.start,
            end: query.end,
            buckets,
            median_completion_seconds: median,
            mean_completion_seconds: mean,
            fields: fields
                .into_iter()
                .map(|field| {
                    let mut stats = stats.remove(field.id.as_str()).unwrap_or_default();
                    if !is_numeric(field.kind) {
                        (stats.min, stats.max, stats.mean) = (None, None, None);
                    }
                    (field.id, field.kind, stats)
                })
                .collect(),
        };
        self.cache(&key, &analytics).await;
        Ok(analytics)
    }

    async fn cached(&self, key: &str) -> Option<Analytics> {
        let cached: redis::RedisResult<Option<String>> = self.redis.connection().get(key).await;
        match cached {
            Ok(json) => json.and_then(|json| {
                serde_json::from_str(&json)
                    .inspect_err(|error| tracing::warn!(%error, "dropping unreadable analytics"))
                    .ok()
            }),
            Err(error) => {
                tracing::warn!(%error, "analytics cache unavailable, computing");
                None
            }
        }
    }

    async fn cache(&self, key: &str, analytics: &Analytics) {
        let json = serde_json::to_string(analytics).expect("analytics are JSON");
        let stored: redis::RedisResult<()> = self
            .redis
            .connection()
            .set_ex(key, json, CACHE_SECONDS)
            .await;
        if let Err(error) = stored {
            tracing::warn!(%error, "cannot write the analytics cache");
        }
    }
}

/// Whether answers of `kind` are counted per value.
fn counts_values(kind: FieldKind) -> bool {
    kind.has_choices() || matches!(kind, FieldKind::Checkbox | FieldKind::Rating)
}

/// Whether answers of `kind` get a minimum, maximum and mean.
fn is_numeric(kind: FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::Number | FieldKind::Integer | FieldKind::Rating
    )
}
