//! Notification preferences: channels turned off, per-topic channels and digest windows,
//! per-channel quiet hours, a user's own over the tenant's defaults, and what they decide for
//! one delivery.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use platform::error::FieldViolations;

use super::{Channel, Priority};

/// Most per-topic preferences.
pub const MAX_TOPICS: usize = 200;
/// Shortest digest window.
pub const MIN_DIGEST_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest digest window.
pub const MAX_DIGEST_WINDOW: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Preferences as a user or a tenant set them; `None` fields are not set (a user's fall back
/// to the tenant's, the tenant's to "everything on, no quiet hours").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    /// Channels off for every topic.
    pub disabled_channels: Option<Vec<Channel>>,
    /// Per-topic channels.
    pub topics: Option<Vec<TopicPreference>>,
    /// Quiet hours, at most one per channel.
    pub quiet_hours: Option<Vec<QuietHours>>,
}

/// The channels wanted for one topic (none mutes it), and whether its notifications are
/// batched into digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPreference {
    /// The topic.
    pub topic: String,
    /// Its channels.
    pub channels: Vec<Channel>,
    /// How long a digest window stays open; `None` sends each notification at once.
    pub digest_window: Option<std::time::Duration>,
}

/// A daily window in a time zone during which a channel's deliveries wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// The channel held.
    pub channel: Channel,
    /// Local start.
    pub start: NaiveTime,
    /// Local end; before `start` means the window spans midnight.
    pub end: NaiveTime,
    /// The time zone of `start` and `end`.
    pub time_zone: Tz,
}

/// What preferences decide for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it now.
    Send,
    /// Hold it until then (the end of the recipient's quiet hours).
    Defer(DateTime<Utc>),
    /// Batch it into the recipient's open digest of the topic on the channel, or open one
    /// that ends then (the window's end, or the quiet hours' then).
    Digest(DateTime<Utc>),
    /// Do not send it: the recipient turned it off.
    Suppress,
}

impl Preferences {
    /// `self` (a user's) over `defaults` (the tenant's), field by field.
    pub fn over(&self, defaults: &Preferences) -> Preferences {
        Preferences {
            disabled_channels: self
                .disabled_channels
                .clone()
                .or_else(|| defaults.disabled_channels.clone()),
            topics: self.topics.clone().or_else(|| defaults.topics.clone()),
            quiet_hours: self
                .quiet_hours
                .clone()
                .or_else(|| defaults.quiet_hours.clone()),
        }
    }

    /// What these (effective) preferences decide for a delivery on `channel` of a `topic`
    /// notification of `priority` at `now`. URGENT goes through whatever they say.
    pub fn decide(
        &self,
        channel: Channel,
        topic: &str,
        priority: Priority,
        now: DateTime<Utc>,
    ) -> Decision {
        if priority == Priority::Urgent {
            return Decision::Send;
        }
        let preference = self
            .topics
            .iter()
            .flatten()
            .find(|preference| preference.topic == topic);
        let wanted = match preference {
            Some(preference) => preference.channels.contains(&channel),
            None => !self
                .disabled_channels
                .iter()
                .flatten()
                .any(|off| *off == channel),
        };
        if !wanted {
            return Decision::Suppress;
        }
        let quiet_end = |at: DateTime<Utc>| {
            self.quiet_hours
                .iter()
                .flatten()
                .find(|quiet| quiet.channel == channel)
                .and_then(|quiet| quiet.end_if_within(at))
        };
        if let Some(window) = preference.and_then(|preference| preference.digest_window) {
            let end = now + Duration::from_std(window).unwrap_or(Duration::MAX);
            return Decision::Digest(quiet_end(end).unwrap_or(end));
        }
        match quiet_end(now) {
            Some(end) => Decision::Defer(end),
            None => Decision::Send,
        }
    }

    /// Every problem of preferences given at `path` (`preferences`).
    pub fn check(&self, path: &str) -> FieldViolations {
        let mut violations = FieldViolations::new();
        if let Some(topics) = &self.topics {
            if topics.len() > MAX_TOPICS {
                violations.add(
                    format!("{path}.topics"),
                    format!("must be at most {MAX_TOPICS}"),
                );
            }
            for (index, preference) in topics.iter().enumerate() {
                if let Err(error) = super::template::check_topic_like(&preference.topic) {
                    violations.add(format!("{path}.topics[{index}].topic"), error.to_string());
                }
                if topics[..index]
                    .iter()
                    .any(|earlier| earlier.topic == preference.topic)
                {
                    violations.add(format!("{path}.topics[{index}].topic"), "is listed twice");
                }
                if let Some(window) = preference.digest_window
                    && (window < MIN_DIGEST_WINDOW
                        || window > MAX_DIGEST_WINDOW
                        || window.subsec_nanos() != 0)
                {
                    violations.add(
                        format!("{path}.topics[{index}].digest_window"),
                        "must be whole seconds from 5 seconds to 1 day",
                    );
                }
            }
        }
        if let Some(quiet_hours) = &self.quiet_hours {
            for (index, quiet) in quiet_hours.iter().enumerate() {
                if quiet_hours[..index]
                    .iter()
                    .any(|earlier| earlier.channel == quiet.channel)
                {
                    violations.add(
                        format!("{path}.quiet_hours[{index}].channel"),
                        "has quiet hours twice",
                    );
                }
                if quiet.start == quiet.end {
                    violations.add(
                        format!("{path}.quiet_hours[{index}].end_time"),
                        "must differ from start_time",
                    );
                }
            }
        }
        violations
    }
}

impl QuietHours {
    /// When the window holding `now` ends, if `now` is within one.
    pub fn end_if_within(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.time_zone);
        let time = local.time();
        let date = local.date_naive();
        let within = if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        };
        if !within {
            return None;
        }
        // The end is today, or tomorrow for a window that spans midnight and started today.
        let end_date = if self.start > self.end && time >= self.start {
            date.succ_opt()?
        } else {
            date
        };
        let naive = end_date.and_time(self.end);
        // A local end skipped by a DST change ends the window at the first instant after it.
        let end = self
            .time_zone
            .from_local_datetime(&naive)
            .earliest()
            .or_else(|| {
                self.time_zone
                    .from_local_datetime(&(naive + Duration::hours(1)))
                    .earliest()
            })?;
        Some(end.with_timezone(&Utc))
    }
}

/// Parses a local `HH:MM` (24-hour) time.
pub fn parse_local_time(text: &str) -> Result<NaiveTime, &'static str> {
    if text.len() != 5 {
        return Err("must be HH:MM (24-hour)");
    }
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| "must be HH:MM (24-hour)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn quiet(channel: Channel, start: &str, end: &str, zone: &str) -> QuietHours {
        QuietHours {
            channel,
            start: parse_local_time(start).unwrap(),
            end: parse_local_time(end).unwrap(),
            time_zone: zone.parse().unwrap(),
        }
    }

    #[test]
    fn quiet_hours_across_midnight_end_the_next_local_morning() {
        let paris = quiet(Channel::Email, "22:00", "07:00", "Europe/Paris");
        // 23:30 in Paris (CET, UTC+1) is 22:30 UTC: the window ends 07:00 Paris the next day.
        assert_eq!(
            paris.end_if_within(at("2026-12-06T22:30:00Z")),
            Some(at("2026-12-07T06:00:00Z"))
        );
        // 06:59 Paris, the next morning: still within, same end.
        assert_eq!(
            paris.end_if_within(at("2026-12-07T05:59:00Z")),
            Some(at("2026-12-07T06:00:00Z"))
        );
        // 07:00 Paris is out; so is 21:59.
        assert_eq!(paris.end_if_within(at("2026-12-07T06:00:00Z")), None);
        assert_eq!(paris.end_if_within(at("2026-12-07T20:59:00Z")), None);
    }

    #[test]
    fn the_same_instant_is_quiet_in_one_zone_and_not_in_another() {
        let instant = at("2026-12-06T23:30:00Z");
        let tokyo = quiet(Channel::InApp, "22:00", "07:00", "Asia/Tokyo");
        let new_york = quiet(Channel::InApp, "22:00", "07:00", "America/New_York");
        // 08:30 in Tokyo: after the window. 18:30 in New York: before it.
        assert_eq!(tokyo.end_if_within(instant), None);
        assert_eq!(new_york.end_if_within(instant), None);
        // 03:30 in Tokyo (UTC+9) at 18:30 UTC: within, ends 07:00 Tokyo = 22:00 UTC.
        assert_eq!(
            tokyo.end_if_within(at("2026-12-06T18:30:00Z")),
            Some(at("2026-12-06T22:00:00Z"))
        );
        let daytime = quiet(Channel::Email, "09:00", "17:00", "America/New_York");
        assert_eq!(
            daytime.end_if_within(at("2026-12-06T15:00:00Z")),
            Some(at("2026-12-06T22:00:00Z"))
        );
    }

    #[test]
    fn a_window_ending_in_a_skipped_hour_ends_after_it() {
        // 2027-03-28 02:00–03:00 does not exist in Paris (CET → CEST).
        let quiet = quiet(Channel::Email, "01:00", "02:30", "Europe/Paris");
        assert_eq!(
            quiet.end_if_within(at("2027-03-28T00:30:00Z")),
            Some(at("2027-03-28T01:30:00Z"))
        );
    }

    #[test]
    fn a_users_preferences_override_the_tenants_field_by_field() {
        let tenant = Preferences {
            disabled_channels: Some(vec![Channel::Email]),
            quiet_hours: Some(vec![quiet(Channel::InApp, "22:00", "07:00", "UTC")]),
            topics: None,
        };
        let user = Preferences {
            quiet_hours: Some(Vec::new()),
            ..Preferences::default()
        };
        let effective = user.over(&tenant);
        assert_eq!(effective.disabled_channels, Some(vec![Channel::Email]));
        assert_eq!(effective.quiet_hours, Some(Vec::new()));
        let now = at("2026-12-06T23:00:00Z");
        assert_eq!(
            effective.decide(Channel::InApp, "x", Priority::Normal, now),
            Decision::Send
        );
        assert_eq!(
            tenant.decide(Channel::InApp, "x", Priority::Normal, now),
            Decision::Defer(at("2026-12-07T07:00:00Z"))
        );
        assert_eq!(
            effective.decide(Channel::Email, "x", Priority::Normal, now),
            Decision::Suppress
        );
    }

    #[test]
    fn topics_choose_their_channels_and_urgent_goes_through() {
        let preferences = Preferences {
            disabled_channels: Some(vec![Channel::Email]),
            topics: Some(vec![
                TopicPreference {
                    topic: "billing.invoice".into(),
                    channels: vec![Channel::Email],
                    digest_window: None,
                },
                TopicPreference {
                    topic: "marketing".into(),
                    channels: Vec::new(),
                    digest_window: None,
                },
            ]),
            quiet_hours: Some(vec![quiet(Channel::Email, "00:00", "23:59", "UTC")]),
        };
        let now = at("2026-12-06T12:00:00Z");
        // A topic's own channels win over the channels turned off.
        assert_eq!(
            preferences.decide(Channel::Email, "billing.invoice", Priority::Normal, now),
            Decision::Defer(at("2026-12-06T23:59:00Z"))
        );
        assert_eq!(
            preferences.decide(Channel::InApp, "billing.invoice", Priority::Normal, now),
            Decision::Suppress
        );
        assert_eq!(
            preferences.decide(Channel::InApp, "marketing", Priority::High, now),
            Decision::Suppress
        );
        assert_eq!(
            preferences.decide(Channel::InApp, "marketing", Priority::Urgent, now),
            Decision::Send
        );
        assert_eq!(
            preferences.decide(Channel::Email, "other", Priority::Urgent, now),
            Decision::Send
        );
        assert_eq!(
            preferences.decide(Channel::InApp, "other", Priority::Low, now),
            Decision::Send
        );
    }

    #[test]
    fn a_digest_window_ends_after_it_or_after_the_quiet_hours_then() {
        let digest = |seconds| {
            Some(vec![TopicPreference {
                topic: "ticket.new".into(),
                channels: vec![Channel::InApp, Channel::Email],
                digest_window: Some(std::time::Duration::from_secs(seconds)),
            }])
        };
        let preferences = Preferences {
            topics: digest(600),
            quiet_hours: Some(vec![quiet(Channel::Email, "22:00", "07:00", "UTC")]),
            ..Preferences::default()
        };
        let now = at("2026-12-06T21:55:00Z");
        assert_eq!(
            preferences.decide(Channel::InApp, "ticket.new", Priority::Normal, now),
            Decision::Digest(at("2026-12-06T22:05:00Z"))
        );
        // The window ends at 22:05, inside the email's quiet hours: it waits for 07:00.
        assert_eq!(
            preferences.decide(Channel::Email, "ticket.new", Priority::Normal, now),
            Decision::Digest(at("2026-12-07T07:00:00Z"))
        );
        assert_eq!(
            preferences.decide(Channel::InApp, "ticket.new", Priority::Urgent, now),
            Decision::Send
        );
        assert_eq!(
            preferences.decide(Channel::InApp, "other", Priority::Normal, now),
            Decision::Send
        );
        for (seconds, fine) in [(4, false), (5, true), (86_400, true), (86_401, false)] {
            let checked = Preferences {
                topics: digest(seconds),
                ..Preferences::default()
            }
            .check("preferences");
            assert_eq!(checked.is_empty(), fine, "{seconds} s");
        }
    }

    #[test]
    fn preferences_are_checked_whole() {
        let preferences = Preferences {
            disabled_channels: None,
            topics: Some(vec![
                TopicPreference {
                    topic: "a".into(),
                    channels: Vec::new(),
                    digest_window: None,
                },
                TopicPreference {
                    topic: "a".into(),
                    channels: Vec::new(),
                    digest_window: None,
                },
                TopicPreference {
                    topic: "Bad Topic".into(),
                    channels: Vec::new(),
                    digest_window: None,
                },
            ]),
            quiet_hours: Some(vec![
                quiet(Channel::Email, "22:00", "07:00", "UTC"),
                quiet(Channel::Email, "10:00", "10:00", "UTC"),
            ]),
        };
        let violations = preferences.check("preferences");
        assert_eq!(
            violations.fields(),
            [
                "preferences.topics[1].topic",
                "preferences.topics[2].topic",
                "preferences.quiet_hours[1].channel",
                "preferences.quiet_hours[1].end_time",
            ]
        );
        assert_eq!(parse_local_time("7:00"), Err("must be HH:MM (24-hour)"));
        assert_eq!(parse_local_time("24:00"), Err("must be HH:MM (24-hour)"));
        assert!(parse_local_time("23:59").is_ok());
    }
}
