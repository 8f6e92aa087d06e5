//! The caller's in-app inbox: reading, marking read, archiving, streaming. Only a user signed
//! in to the tenant has one; another user's message is NOT_FOUND. Every change is published
//! to the user's live streams after its commit.

use chrono::{DateTime, SubsecRound, Utc};
use platform::context::{RequestContext, TenantId, UserId};
use proto::formflow::notify::v1 as wire;
use tokio::sync::mpsc;

use super::Notify;
use crate::domain::{InboxMessage, InboxMessageId};
use crate::error::Error;
use crate::store::{self, InboxFilter, Mark};

/// A page of an inbox.
#[derive(Debug)]
pub struct InboxPage {
    /// The messages, newest first.
    pub messages: Vec<InboxMessage>,
    /// Where the next page starts, when there is one.
    pub next: Option<(DateTime<Utc>, InboxMessageId)>,
    /// Unread messages in the whole inbox.
    pub unread_count: i64,
}

/// The caller's inbox: their user id and tenant.
fn owner(context: &RequestContext) -> Result<(UserId, TenantId), Error> {
    let (user, tenant, _) = context.user()?;
    Ok((user, tenant))
}

impl Notify {
    /// A page of the caller's inbox matching `filter`, after `after`, with the unread count.
    pub async fn list_inbox(
        &self,
        context: &RequestContext,
        filter: &InboxFilter,
        after: Option<(DateTime<Utc>, InboxMessageId)>,
        page_size: usize,
    ) -> Result<InboxPage, Error> {
        let (user, tenant) = owner(context)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let rows = store::list_inbox(
            &mut transaction,
            tenant,
            user,
            filter,
            after,
            platform::paging::fetch_limit(page_size),
        )
        .await?;
        let unread_count = store::unread_count(&mut transaction, tenant, user).await?;
        transaction.commit().await?;
        let (messages, next) =
            platform::paging::split_page(rows, page_size, |last| (last.created_at, last.id));
        Ok(InboxPage {
            messages,
            next,
            unread_count,
        })
    }

    /// A message of the caller's inbox.
    pub async fn get_inbox_message(
        &self,
        context: &RequestContext,
        id: InboxMessageId,
    ) -> Result<InboxMessage, Error> {
        let (user, tenant) = owner(context)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let message = store::get_inbox_message(&mut transaction, tenant, user, id).await?;
        transaction.commit().await?;
        message.ok_or_else(|| Error::InboxMessageNotFound(name(id)))
    }

    /// Marks a message of the caller's inbox read or archived (again: no change).
    pub async fn mark_inbox_message(
        &self,
        context: &RequestContext,
        id: InboxMessageId,
        mark: Mark,
    ) -> Result<InboxMessage, Error> {
        let (user, tenant) = owner(context)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let now = Utc::now().trunc_subsecs(6);
        let message = store::mark_message(&mut transaction, tenant, user, id, mark, now)
            .await?
            .ok_or_else(|| Error::InboxMessageNotFound(name(id)))?;
        transaction.commit().await?;
        self.inboxes.publish(tenant, user, Some(&message));
        Ok(message)
    }

    /// Marks every unread message of the caller's inbox that arrived before `before` read.
    pub async fn mark_all_read(
        &self,
        context: &RequestContext,
        before: Option<DateTime<Utc>>,
    ) -> Result<u64, Error> {
        let (user, tenant) = owner(context)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let now = Utc::now().trunc_subsecs(6);
        let marked = store::mark_all_read(&mut transaction, tenant, user, before, now).await?;
        transaction.commit().await?;
        if marked > 0 {
            self.inboxes.publish(tenant, user, None);
        }
        Ok(marked)
    }

    /// The caller's inbox, live: its unread count, then each new or changed message.
    pub async fn watch_inbox(
        &self,
        context: &RequestContext,
    ) -> Result<mpsc::Receiver<Result<wire::StreamInboxResponse, Error>>, Error> {
        let (user, tenant) = owner(context)?;
        let subscription = self.inboxes.subscribe(tenant, user).await;
        Ok(crate::live::watch(
            self.db.clone(),
            tenant,
            user,
            subscription,
        ))
    }
}

/// An inbox message's resource name.
fn name(id: InboxMessageId) -> String {
    platform::wire::resource_name("inboxMessages", id)
}
