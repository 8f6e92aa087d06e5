//! Forms, their published versions, their live settings and their submissions.

use chrono::{DateTime, Utc};
use platform::context::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::definition::Definition;
use super::slug::FormSlug;
use super::{FormId, SubmissionId};

/// Most addresses told of each submission.
pub const MAX_RECIPIENTS: usize = 20;

/// Lifecycle state of a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormState {
    /// Never published; takes no submissions.
    Draft,
    /// Has a published version.
    Published,
    /// Takes no submissions and cannot be edited.
    Archived,
}

impl FormState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FormState::Draft => "draft",
            FormState::Published => "published",
            FormState::Archived => "archived",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "draft" => Some(FormState::Draft),
            "published" => Some(FormState::Published),
            "archived" => Some(FormState::Archived),
            _ => None,
        }
    }
}

/// Settings that apply at once, without publishing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Anyone may see the published form and submit it without credentials.
    #[serde(default)]
    pub public_submissions: bool,
    /// Refuses submissions while true.
    #[serde(default)]
    pub closed: bool,
    /// Refuses submissions before this time.
    #[serde(default)]
    pub open_time: Option<DateTime<Utc>>,
    /// Refuses submissions from this time.
    #[serde(default)]
    pub close_time: Option<DateTime<Utc>>,
    /// Refuses submissions once there are this many; 0: no limit.
    #[serde(default)]
    pub max_submissions: u32,
    /// Shown after a submission.
    #[serde(default)]
    pub confirmation_message: String,
    /// Where the browser goes after a submission.
    #[serde(default)]
    pub redirect_url: String,
    /// Addresses told of each submission (through svc-notify).
    #[serde(default)]
    pub notification_recipients: Vec<String>,
    /// Anonymous submissions need a start token.
    #[serde(default)]
    pub require_start_token: bool,
    /// Whether svc-ai analyzes each submission, and against which label set.
    #[serde(default)]
    pub analysis: Analysis,
}

/// How svc-ai analyzes a form's submissions (it reads this from `forms.submission.created`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Each new submission with a text answer is analyzed.
    #[serde(default)]
    pub enabled: bool,
    /// svc-ai's label set the answers are classified against, `labelSets/{id}`; empty: they
    /// are triaged as a support ticket.
    #[serde(default)]
    pub label_set: String,
}

/// Why a form takes no submission now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionRefusal {
    /// Never published.
    NotPublished,
    /// Archived.
    Archived,
    /// Closed by its owners.
    Closed,
    /// Before its opening time.
    NotOpenYet,
    /// Past its closing time.
    Ended,
    /// Its maximum of submissions is reached ([`Settings::is_full`]).
    Full,
}

impl SubmissionRefusal {
    /// What the submitter is told.
    pub fn message(self) -> &'static str {
        match self {
            SubmissionRefusal::NotPublished => "the form is not published",
            SubmissionRefusal::Archived => "the form is archived",
            SubmissionRefusal::Closed => "the form is closed",
            SubmissionRefusal::NotOpenYet => "the form is not open yet",
            SubmissionRefusal::Ended => "the form no longer takes submissions",
            SubmissionRefusal::Full => "the form has received all the submissions it takes",
        }
    }

    /// Its stable reason.
    pub fn reason(self) -> &'static str {
        match self {
            SubmissionRefusal::NotPublished => "FORM_NOT_PUBLISHED",
            SubmissionRefusal::Archived => "FORM_ARCHIVED",
            SubmissionRefusal::Closed => "FORM_CLOSED",
            SubmissionRefusal::NotOpenYet => "FORM_NOT_OPEN",
            SubmissionRefusal::Ended => "FORM_ENDED",
            SubmissionRefusal::Full => "FORM_FULL",
        }
    }
}

/// A form.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    /// Id.
    pub id: FormId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Short name, unique in the tenant.
    pub slug: FormSlug,
    /// The draft: edited freely, seen by submitters once published.
    pub draft: Definition,
    /// Live settings.
    pub settings: Settings,
    /// Lifecycle state.
    pub state: FormState,
    /// The state to return to when unarchived.
    pub state_before_archive: Option<FormState>,
    /// Latest published version; 0 when never published.
    pub published_version: i32,
    /// Whether the draft changed since the latest publication.
    pub draft_changed: bool,
    /// Who created it (`users/…`, `apiKeys/…`).
    pub creator: String,
    /// Row version, the etag.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Last published.
    pub published_at: Option<DateTime<Utc>>,
    /// Archived.
    pub archived_at: Option<DateTime<Utc>>,
}

/// What an update changes of the settings: all of them, or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsPart {
    /// Every setting.
    All,
    /// `public_submissions`.
    PublicSubmissions,
    /// `closed`.
    Closed,
    /// `open_time`.
    OpenTime,
    /// `close_time`.
    CloseTime,
    /// `max_submissions`.
    MaxSubmissions,
    /// `confirmation_message`.
    ConfirmationMessage,
    /// `redirect_url`.
    RedirectUrl,
    /// `notification_recipients`.
    NotificationRecipients,
    /// `require_start_token`.
    RequireStartToken,
    /// `analysis`.
    Analysis,
}

impl SettingsPart {
    /// The part an update mask path names (`settings`, `settings.closed`, …).
    pub fn from_path(path: &str) -> Option<Self> {
        Some(match path.strip_prefix("settings")? {
            "" => SettingsPart::All,
            ".public_submissions" => SettingsPart::PublicSubmissions,
            ".closed" => SettingsPart::Closed,
            ".open_time" => SettingsPart::OpenTime,
            ".close_time" => SettingsPart::CloseTime,
            ".max_submissions" => SettingsPart::MaxSubmissions,
            ".confirmation_message" => SettingsPart::ConfirmationMessage,
            ".redirect_url" => SettingsPart::RedirectUrl,
            ".notification_recipients" => SettingsPart::NotificationRecipients,
            ".require_start_token" => SettingsPart::RequireStartToken,
            ".analysis" => SettingsPart::Analysis,
            _ => return None,
        })
    }
}

impl Settings {
    /// Takes `part` from `new`.
    pub fn apply(&mut self, part: SettingsPart, new: &Settings) {
        match part {
            SettingsPart::All => *self = new.clone(),
            SettingsPart::PublicSubmissions => self.public_submissions = new.public_submissions,
            SettingsPart::Closed => self.closed = new.closed,
            SettingsPart::OpenTime => self.open_time = new.open_time,
            SettingsPart::CloseTime => self.close_time = new.close_time,
            SettingsPart::MaxSubmissions => self.max_submissions = new.max_submissions,
            SettingsPart::ConfirmationMessage => {
                self.confirmation_message
                    .clone_from(&new.confirmation_message);
            }
            SettingsPart::RedirectUrl => self.redirect_url.clone_from(&new.redirect_url),
            SettingsPart::NotificationRecipients => {
                self.notification_recipients
                    .clone_from(&new.notification_recipients);
            }
            SettingsPart::RequireStartToken => self.require_start_token = new.require_start_token,
            SettingsPart::Analysis => self.analysis.clone_from(&new.analysis),
        }
    }

    /// Why these settings cannot be together, if they cannot.
    pub fn conflict(&self) -> Option<(&'static str, &'static str)> {
        match (self.open_time, self.close_time) {
            (Some(open), Some(close)) if close <= open => {
                Some(("settings.close_time", "must be after open_time"))
            }
            _ => None,
        }
    }

    /// Whether a form with `submissions` already takes no more.
    pub fn is_full(&self, submissions: i64) -> bool {
        self.max_submissions > 0 && submissions >= i64::from(self.max_submissions)
    }
}

impl Form {
    /// Why it takes no submission at `now`, if it takes none (its maximum is checked apart,
    /// with [`Settings::is_full`], since only a form that has one needs counting).
    pub fn refuses_submissions(&self, now: DateTime<Utc>) -> Option<SubmissionRefusal> {
        let settings = &self.settings;
        match self.state {
            FormState::Draft => Some(SubmissionRefusal::NotPublished),
            FormState::Archived => Some(SubmissionRefusal::Archived),
            FormState::Published if settings.closed => Some(SubmissionRefusal::Closed),
            FormState::Published if settings.open_time.is_some_and(|open| now < open) => {
                Some(SubmissionRefusal::NotOpenYet)
            }
            FormState::Published if settings.close_time.is_some_and(|close| now >= close) => {
                Some(SubmissionRefusal::Ended)
            }
            FormState::Published => None,
        }
    }
}

/// An immutable snapshot of a form's draft, taken when it was published.
#[derive(Debug, Clone, PartialEq)]
pub struct FormVersion {
    /// The form.
    pub form_id: FormId,
    /// Number, from 1.
    pub version: i32,
    /// What it asks.
    pub definition: Definition,
    /// Who published it.
    pub publisher: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A set of answers to a published version.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// Id.
    pub id: SubmissionId,
    /// The form.
    pub form_id: FormId,
    /// The version it answers.
    pub form_version: i32,
    /// Answers by field id, normalised.
    pub data: Map<String, Value>,
    /// Who submitted (`users/…`, `apiKeys/…`); empty when anonymous.
    pub submitter: String,
    /// When it was received.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn published(settings: Settings) -> Form {
        let now = Utc::now();
        Form {
            id: FormId::generate(),
            tenant_id: TenantId::generate(),
            slug: FormSlug::parse("contact").unwrap(),
            draft: Definition {
                title: "Contact".into(),
                description: String::new(),
                fields: Vec::new(),
            },
            settings,
            state: FormState::Published,
            state_before_archive: None,
            published_version: 1,
            draft_changed: false,
            creator: "users/x".into(),
            version: 1,
            created_at: now,
            updated_at: now,
            published_at: Some(now),
            archived_at: None,
        }
    }

    #[test]
    fn submissions_are_refused_for_each_reason_and_taken_otherwise() {
        let now = Utc::now();
        let open = published(Settings::default());
        assert_eq!(open.refuses_submissions(now), None);
        let mut draft = open.clone();
        draft.state = FormState::Draft;
        assert_eq!(
            draft.refuses_submissions(now),
            Some(SubmissionRefusal::NotPublished)
        );
        let mut archived = open;
        archived.state = FormState::Archived;
        assert_eq!(
            archived.refuses_submissions(now),
            Some(SubmissionRefusal::Archived)
        );
        let cases = [
            (
                Settings {
                    closed: true,
                    ..Settings::default()
                },
                SubmissionRefusal::Closed,
            ),
            (
                Settings {
                    open_time: Some(now + Duration::hours(1)),
                    ..Settings::default()
                },
                SubmissionRefusal::NotOpenYet,
            ),
            (
                Settings {
                    close_time: Some(now),
                    ..Settings::default()
                },
                SubmissionRefusal::Ended,
            ),
        ];
        for (settings, refusal) in cases {
            assert_eq!(published(settings).refuses_submissions(now), Some(refusal));
        }
        let limited = Settings {
            max_submissions: 3,
            ..Settings::default()
        };
        assert!(!limited.is_full(2));
        assert!(limited.is_full(3));
        assert!(!Settings::default().is_full(1_000_000));
    }

    #[test]
    fn settings_change_whole_or_in_parts_and_windows_must_be_ordered() {
        let now = Utc::now();
        let mut settings = Settings::default();
        let new = Settings {
            closed: true,
            max_submissions: 9,
            open_time: Some(now),
            close_time: Some(now),
            ..Settings::default()
        };
        settings.apply(SettingsPart::from_path("settings.closed").unwrap(), &new);
        assert!(settings.closed);
        assert_eq!(settings.max_submissions, 0);
        assert_eq!(settings.conflict(), None);
        settings.apply(SettingsPart::from_path("settings").unwrap(), &new);
        assert_eq!(settings, new);
        assert_eq!(settings.conflict().unwrap().0, "settings.close_time");
        assert_eq!(SettingsPart::from_path("settings.colour"), None);
        assert_eq!(SettingsPart::from_path("title"), None);
    }
}
