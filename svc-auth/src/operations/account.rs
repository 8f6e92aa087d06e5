//! The calling user's own account.

use platform::context::{Permission, Principal, RequestContext, SessionId};

use super::Identity;
use super::sessions::session_of;
use crate::domain::{Member, User};
use crate::error::Error;
use crate::store;

/// What GetMe answers.
#[derive(Debug)]
pub struct Me {
    /// The user.
    pub user: User,
    /// Their membership in the token's tenant (none for platform administrators).
    pub member: Option<Member>,
    /// What their role allows.
    pub permissions: Vec<Permission>,
    /// The session.
    pub session_id: SessionId,
}

impl Identity {
    /// The calling user, their membership and permissions, if their session is live.
    #[tracing::instrument(skip_all)]
    pub async fn me(&self, context: &RequestContext) -> Result<Me, Error> {
        let (user_id, tenant, session_id) = session_of(context)?;
        self.require_live_session(session_id).await?;
        let mut transaction = self.transaction_for(tenant).await?;
        let user = store::get_user(&mut transaction, user_id, false)
            .await?
            .ok_or(Error::AccountGone)?;
        let member = match tenant {
            Some(tenant) => Some(
                store::get_member(&mut transaction, tenant, user_id, false)
                    .await?
                    .ok_or(Error::MembershipEnded)?,
            ),
            None => None,
        };
        transaction.commit().await?;
        let permissions = match (&member, context.principal()?) {
            (Some(member), _) => member.role.permissions(),
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
