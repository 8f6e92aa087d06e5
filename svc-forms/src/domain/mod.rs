//! Forms, their fields and the rules their answers follow, without IO.
//!
//! - [`field`]: a field, its kind, constraints and choices; the answer it accepts.
//! - [`condition`]: conditional logic on earlier answers.
//! - [`definition`]: the rules of a whole form's fields (unique ids, logic that looks back).
//! - [`answers`]: a submission's data checked against a version's fields.
//! - [`form`]: forms, versions, settings and submissions.
//! - [`json_schema`]: the JSON Schema of a version's answers.
//! - [`slug`]: the short names of forms.

pub mod answers;
pub mod condition;
pub mod definition;
pub mod field;
pub mod form;
pub mod json_schema;
pub mod slug;

pub use answers::{Answers, check_answers};
pub use condition::{Condition, Operator};
pub use definition::{Definition, MAX_FIELDS, check_definition};
pub use field::{Choice, Constraints, Field, FieldId, FieldKind, Pattern};
pub use form::{
    Analysis, Form, FormState, FormVersion, Settings, SettingsPart, Submission, SubmissionRefusal,
};
pub use json_schema::json_schema;
pub use slug::FormSlug;

platform::id!(
    /// Id of a form.
    FormId,
    "form id"
);
platform::id!(
    /// Id of a submission.
    SubmissionId,
    "submission id"
);
platform::id!(
    /// Id of a view of a published form, which is also its start token.
    ViewId,
    "view id"
);
