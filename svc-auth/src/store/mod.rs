//! SQL of the auth schema, one function per query. Callers pass the transaction, which decides
//! whose rows row-level security shows (`Db::tenant_tx` or `Db::platform_tx`). Users and
//! recovery codes are global; everything else is tenant-owned. Failed logins count per scope:
//! on the membership for logins to a tenant, on the user for logins without one.
//!
//! Rows stay private: reads answer domain types, built with `TryFrom<Row>`, which refuses
//! stored data that no longer validates (a corrupt row is an internal error, never a guess).
//! The audit trail is written with `platform::audit`.

mod api_keys;
mod invitations;
mod logins;
mod members;
mod sessions;
mod users;

pub use api_keys::*;
pub use invitations::*;
pub use logins::*;
pub use members::*;
pub use sessions::*;
pub use users::*;
