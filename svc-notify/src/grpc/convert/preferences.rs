//! Converting notification preferences between the wire and the domain.

use platform::error::FieldViolations;
use platform::wire::{enum_field, expected_version, mask_paths, timestamp};
use proto::formflow::notify::v1 as wire;

use super::{channel_from_wire, channel_to_wire};
use crate::domain::Channel;
use crate::domain::preferences::{QuietHours, TopicPreference, parse_local_time};
use crate::operations::PreferenceChanges;
use crate::store::StoredPreferences;

/// A channel preferences may name: email or in-app.
fn preference_channel(
    violations: &mut FieldViolations,
    field: &str,
    value: i32,
) -> Option<Channel> {
    let channel = enum_field(violations, field, value, channel_from_wire)?;
    if !matches!(channel, Channel::Email | Channel::InApp) {
        violations.add(field, "must be email or in-app");
        return None;
    }
    Some(channel)
}

/// UpdatePreferences' or UpdateTenantPreferences' request as the changes it asks for.
pub fn preference_changes(
    preferences: Option<wire::NotificationPreferences>,
    mask: Option<&pbjson_types::FieldMask>,
) -> Result<PreferenceChanges, FieldViolations> {
    let mut violations = FieldViolations::new();
    let Some(given) = preferences else {
        return Err(FieldViolations::single("preferences", "is required"));
    };
    let mut changes = PreferenceChanges {
        expected_version: expected_version(&mut violations, "preferences.etag", &given.etag),
        ..PreferenceChanges::default()
    };
    let paths = mask_paths(mask);
    if paths.is_empty() {
        violations.add("update_mask", "must name at least one field");
    }
    for path in paths {
        match path.as_str() {
            "disabled_channels" => {
                changes.preferences.disabled_channels = Some(
                    given
                        .disabled_channels
                        .iter()
                        .enumerate()
                        .filter_map(|(index, value)| {
                            preference_channel(
                                &mut violations,
                                &format!("preferences.disabled_channels[{index}]"),
                                *value,
                            )
                        })
                        .collect(),
                );
            }
            "topics" => {
                let topics = given
                    .topics
                    .iter()
                    .enumerate()
                    .map(|(index, topic)| {
                        let field = format!("preferences.topics[{index}]");
                        TopicPreference {
                            digest_window: topic.digest_window.as_ref().map(|window| {
                                // Out of range or fractional: kept so that the check says so.
                                u64::try_from(window.seconds)
                                    .map(|seconds| {
                                        std::time::Duration::new(
                                            seconds,
                                            u32::try_from(window.nanos).unwrap_or(1),
                                        )
                                    })
                                    .unwrap_or_default()
                            }),
                            topic: topic.topic.clone(),
                            channels: topic
                                .channels
                                .iter()
                                .enumerate()
                                .filter_map(|(position, value)| {
                                    preference_channel(
                                        &mut violations,
                                        &format!("{field}.channels[{position}]"),
                                        *value,
                                    )
                                })
                                .collect(),
                        }
                    })
                    .collect();
                changes.preferences.topics = Some(topics);
            }
            "quiet_hours" => {
                let quiet_hours = given
                    .quiet_hours
                    .iter()
                    .enumerate()
                    .filter_map(|(index, quiet)| {
                        let field = format!("preferences.quiet_hours[{index}]");
                        let channel = preference_channel(
                            &mut violations,
                            &format!("{field}.channel"),
                            quiet.channel,
                        );
                        let start = violations.check(
                            &format!("{field}.start_time"),
                            parse_local_time(&quiet.start_time),
                        );
                        let end = violations.check(
                            &format!("{field}.end_time"),
                            parse_local_time(&quiet.end_time),
                        );
                        let time_zone = violations.check(
                            &format!("{field}.time_zone"),
                            quiet
                                .time_zone
                                .parse::<chrono_tz::Tz>()
                                .map_err(|_| "must be an IANA time zone, e.g. Europe/Paris"),
                        );
                        Some(QuietHours {
                            channel: channel?,
                            start: start?,
                            end: end?,
                            time_zone: time_zone?,
                        })
                    })
                    .collect();
                changes.preferences.quiet_hours = Some(quiet_hours);
            }
            other => violations.add(
                "update_mask",
                format!("{other} is not a field of notification preferences"),
            ),
        }
    }
    violations.into_result()?;
    Ok(changes)
}

/// Preferences as the wire shows them, named `name`.
pub fn preferences_to_proto(
    name: String,
    stored: &StoredPreferences,
) -> wire::NotificationPreferences {
    let preferences = &stored.preferences;
    wire::NotificationPreferences {
        name,
        disabled_channels: preferences
            .disabled_channels
            .iter()
            .flatten()
            .map(|channel| channel_to_wire(*channel) as i32)
            .collect(),
        topics: preferences
            .topics
            .iter()
            .flatten()
            .map(|topic| wire::TopicPreference {
                topic: topic.topic.clone(),
                channels: topic
                    .channels
                    .iter()
                    .map(|channel| channel_to_wire(*channel) as i32)
                    .collect(),
                digest_window: topic.digest_window.map(|window| pbjson_types::Duration {
                    seconds: i64::try_from(window.as_secs()).unwrap_or(i64::MAX),
                    nanos: 0,
                }),
            })
            .collect(),
        quiet_hours: preferences
            .quiet_hours
            .iter()
            .flatten()
            .map(|quiet| wire::QuietHours {
                channel: channel_to_wire(quiet.channel) as i32,
                start_time: quiet.start.format("%H:%M").to_string(),
                end_time: quiet.end.format("%H:%M").to_string(),
                time_zone: quiet.time_zone.name().to_owned(),
            })
            .collect(),
        update_time: stored.updated_at.map(timestamp),
        etag: platform::wire::etag(stored.version),
    }
}
