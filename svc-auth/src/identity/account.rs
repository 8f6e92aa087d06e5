//! The calling user's own account.

use platform::context::{Permission, Principal};

use super::{Caller, Identity};
use crate::error::Error;
use crate::store::{self, MemberRow, UserRow};

/// What GetMe answers.
#[derive(Debug)]
pub struct Me {
    /// The user.
    pub user: UserRow,
    /// Their membership in the token's tenant (none for platform administrators).
    pub member: Option<MemberRow>,
    /// What their role allows.
    pub permissions: Vec<Permission>,
    /// The session.
    pub session_id: uuid::Uuid,
}

impl Identity {
    /// The calling user, their membership and permissions, if their session is live.
    pub async fn me(&self, caller: Caller<'_>) -> Result<Me, Error> {
        let (user_id, tenant, session_id) = self.session_of(caller)?;
        self.require_live_session(session_id).await?;
        let mut transaction = self.transaction_for(tenant).await?;
        let user = store::get_user(&mut transaction, user_id, false)
            .await?
            .ok_or(Error::Unauthenticated("the user no longer exists"))?;
        let member = match tenant {
            Some(tenant) => Some(
                store::get_member(&mut transaction, tenant, user_id, false)
                    .await?
                    .ok_or(Error::Unauthenticated("no longer a member of this tenant"))?,
            ),
            None => None,
        };
        transaction.commit().await?;
        let permissions = match (&member, caller.principal()?) {
            (Some(member), _) => member.role().permissions(),
            (None, Principal::PlatformAdmin { .. }) => Permission::ALL.to_vec(),
            (None, _) => Vec::new(),
        };
        Ok(Me {
            user,
            member,
            permissions,
            session_id,
        })
    }
}
