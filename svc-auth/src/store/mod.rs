//! SQL of the auth schema, one function per query. Callers pass the transaction, which decides
//! whose rows row-level security shows (`Db::tenant_tx` or `Db::platform_tx`). Users and
//! recovery codes are global; everything else is tenant-owned.

mod api_keys;
mod audit;
mod invitations;
mod members;
mod sessions;
mod users;

pub use api_keys::*;
pub use audit::{AuditEntry, insert_audit};
pub use invitations::*;
pub use members::*;
pub use sessions::*;
pub use users::*;
