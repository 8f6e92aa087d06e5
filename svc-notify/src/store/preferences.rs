//! Notification preferences: users' own and the tenant's defaults (under the nil user id).

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::{TenantId, UserId};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::Channel;
use crate::domain::preferences::{Preferences, QuietHours, TopicPreference, parse_local_time};

/// Whose preferences: a user's, or the tenant's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A user's own.
    User(UserId),
    /// The tenant's defaults.
    Tenant,
}

impl Owner {
    /// The resource name of these preferences.
    pub fn resource_name(self) -> String {
        match self {
            Owner::User(user) => format!("users/{user}/notificationPreferences"),
            Owner::Tenant => "notificationPreferences".to_owned(),
        }
    }

    fn id(self) -> Uuid {
        match self {
            Owner::User(user) => user.as_uuid(),
            Owner::Tenant => Uuid::nil(),
        }
    }
}

/// Preferences as stored, with their version and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPreferences {
    /// What is set.
    pub preferences: Preferences,
    /// Optimistic-concurrency version; 0 when never saved.
    pub version: i64,
    /// When they last changed; `None` when never saved.
    pub updated_at: Option<DateTime<Utc>>,
}

struct Row {
    user_id: Uuid,
    disabled_channels: Option<Vec<String>>,
    topics: Option<Value>,
    quiet_hours: Option<Value>,
    version: i64,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for StoredPreferences {
    type Error = anyhow::Error;

    fn try_from(row: Row) -> anyhow::Result<StoredPreferences> {
        let channel = |text: &str| Channel::parse(text).context("stored channel");
        let disabled_channels = row
            .disabled_channels
            .map(|channels| channels.iter().map(|text| channel(text)).collect())
            .transpose()?;
        let topics = row
            .topics
            .map(|stored| -> anyhow::Result<Vec<TopicPreference>> {
                let items = stored.as_array().context("stored topics")?;
                items
                    .iter()
                    .map(|item| {
                        Ok(TopicPreference {
                            topic: item["topic"].as_str().context("stored topic")?.to_owned(),
                            channels: item["channels"]
                                .as_array()
                                .context("stored topic channels")?
                                .iter()
                                .map(|text| channel(text.as_str().unwrap_or_default()))
                                .collect::<anyhow::Result<_>>()?,
                            digest_window: item["digest_seconds"]
                                .as_u64()
                                .map(std::time::Duration::from_secs),
                        })
                    })
                    .collect()
            })
            .transpose()?;
        let quiet_hours = row
            .quiet_hours
            .map(|stored| -> anyhow::Result<Vec<QuietHours>> {
                let items = stored.as_array().context("stored quiet hours")?;
                items
                    .iter()
                    .map(|item| {
                        let text = |key: &str| item[key].as_str().unwrap_or_default();
                        Ok(QuietHours {
                            channel: channel(text("channel"))?,
                            start: parse_local_time(text("start")).map_err(anyhow::Error::msg)?,
                            end: parse_local_time(text("end")).map_err(anyhow::Error::msg)?,
                            time_zone: text("time_zone")
                                .parse()
                                .map_err(|_| anyhow::anyhow!("stored time zone"))?,
                        })
                    })
                    .collect()
            })
            .transpose()?;
        Ok(StoredPreferences {
            preferences: Preferences {
                disabled_channels,
                topics,
                quiet_hours,
            },
            version: row.version,
            updated_at: Some(row.updated_at),
        })
    }
}

fn topics_json(topics: &[TopicPreference]) -> Value {
    topics
        .iter()
        .map(|preference| {
            json!({
                "topic": preference.topic,
                "channels": preference.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "digest_seconds": preference.digest_window.map(|window| window.as_secs()),
            })
        })
        .collect()
}

fn quiet_hours_json(quiet_hours: &[QuietHours]) -> Value {
    quiet_hours
        .iter()
        .map(|quiet| {
            json!({
                "channel": quiet.channel.as_str(),
                "start": quiet.start.format("%H:%M").to_string(),
                "end": quiet.end.format("%H:%M").to_string(),
                "time_zone": quiet.time_zone.name(),
            })
        })
        .collect()
}

/// The preferences of `owner` in `tenant`, locked for update; none set when never saved.
pub async fn get_preferences(
    connection: &mut PgConnection,
    tenant: TenantId,
    owner: Owner,
) -> anyhow::Result<StoredPreferences> {
    let row = sqlx::query_as!(
        Row,
        "SELECT user_id, disabled_channels, topics, quiet_hours, version, updated_at \
         FROM notify.preferences WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
        tenant.as_uuid(),
        owner.id(),
    )
    .fetch_optional(connection)
    .await?;
    match row {
        Some(row) => StoredPreferences::try_from(row),
        None => Ok(StoredPreferences {
            preferences: Preferences::default(),
            version: 0,
            updated_at: None,
        }),
    }
}

/// The tenant's defaults and the preferences of each of `users` that saved any.
pub async fn preferences_of(
    connection: &mut PgConnection,
    tenant: TenantId,
    users: &[UserId],
) -> anyhow::Result<(Preferences, Vec<(UserId, Preferences)>)> {
    let mut ids: Vec<Uuid> = users.iter().map(UserId::as_uuid).collect();
    ids.push(Uuid::nil());
    let rows = sqlx::query_as!(
        Row,
        "SELECT user_id, disabled_channels, topics, quiet_hours, version, updated_at \
         FROM notify.preferences WHERE tenant_id = $1 AND user_id = ANY($2)",
        tenant.as_uuid(),
        &ids,
    )
    .fetch_all(connection)
    .await?;
    let mut defaults = Preferences::default();
    let mut own = Vec::new();
    for row in rows {
        let user = row.user_id;
        let stored = StoredPreferences::try_from(row)?;
        if user.is_nil() {
            defaults = stored.preferences;
        } else {
            own.push((UserId::from(user), stored.preferences));
        }
    }
    Ok((defaults, own))
}

/// Saves the preferences of `owner` (read with [`get_preferences`]); answers their new
/// version and time.
pub async fn save_preferences(
    connection: &mut PgConnection,
    tenant: TenantId,
    owner: Owner,
    preferences: &Preferences,
) -> anyhow::Result<(i64, DateTime<Utc>)> {
    let disabled: Option<Vec<String>> = preferences
        .disabled_channels
        .as_ref()
        .map(|channels| channels.iter().map(|c| c.as_str().to_owned()).collect());
    let row = sqlx::query!(
        "INSERT INTO notify.preferences AS saved (tenant_id, user_id, disabled_channels, topics, \
             quiet_hours) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET disabled_channels = $3, topics = $4, \
             quiet_hours = $5, version = saved.version + 1, updated_at = now() \
         RETURNING version, updated_at",
        tenant.as_uuid(),
        owner.id(),
        disabled.as_deref(),
        preferences.topics.as_deref().map(topics_json),
        preferences.quiet_hours.as_deref().map(quiet_hours_json),
    )
    .fetch_one(connection)
    .await?;
    Ok((row.version, row.updated_at))
}
