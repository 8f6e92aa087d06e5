//! Deliveries: listing and reading them, retrying a failed one by hand.

use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::context::{Permission, RequestContext};
use serde_json::Value;

use super::Notify;
use crate::domain::{Attempt, Delivery, DeliveryId};
use crate::error::Error;
use crate::store::{self, DeliveryFilter};

/// A page of deliveries.
#[derive(Debug)]
pub struct DeliveryPage {
    /// The deliveries, newest first.
    pub deliveries: Vec<Delivery>,
    /// Where the next page starts, when there is one.
    pub next: Option<(DateTime<Utc>, DeliveryId)>,
}

impl Notify {
    /// A page of the tenant's deliveries matching `filter`, after `after`.
    pub async fn list_deliveries(
        &self,
        context: &RequestContext,
        filter: &DeliveryFilter,
        after: Option<(DateTime<Utc>, DeliveryId)>,
        page_size: usize,
    ) -> Result<DeliveryPage, Error> {
        let tenant = context.authorize(Permission::NotificationsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let rows = store::list_deliveries(
            &mut transaction,
            tenant,
            filter,
            after,
            platform::paging::fetch_limit(page_size),
        )
        .await?;
        transaction.commit().await?;
        let (deliveries, next) =
            platform::paging::split_page(rows, page_size, |last| (last.created_at, last.id));
        Ok(DeliveryPage { deliveries, next })
    }

    /// A delivery of the caller's tenant with its attempts.
    pub async fn get_delivery(
        &self,
        context: &RequestContext,
        id: DeliveryId,
    ) -> Result<(Delivery, Vec<Attempt>), Error> {
        let tenant = context.authorize(Permission::NotificationsRead)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let delivery = store::get_delivery(&mut transaction, tenant, id)
            .await?
            .ok_or_else(|| Error::DeliveryNotFound(name(id)))?;
        let attempts = store::attempts_of(&mut transaction, tenant, id).await?;
        transaction.commit().await?;
        Ok((delivery, attempts))
    }

    /// Queues a failed delivery again with a fresh attempt count (the replay of its dead
    /// letter) and answers it.
    pub async fn retry_delivery(
        &self,
        context: &RequestContext,
        id: DeliveryId,
    ) -> Result<Delivery, Error> {
        let tenant = context.authorize(Permission::NotificationsManage)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let now = self.clock.now();
        let Some(wake_token) = store::requeue_failed(&mut transaction, tenant, id, now).await?
        else {
            let delivery = store::get_delivery(&mut transaction, tenant, id)
                .await?
                .ok_or_else(|| Error::DeliveryNotFound(name(id)))?;
            return Err(Error::DeliveryNotFailed(delivery.state.as_str()));
        };
        self.audit
            .record_by(
                &mut transaction,
                context,
                tenant,
                "delivery.retry",
                name(id),
                Value::Null,
            )
            .await?;
        let delivery = store::get_delivery(&mut transaction, tenant, id)
            .await?
            .ok_or_else(|| Error::DeliveryNotFound(name(id)))?;
        transaction.commit().await?;
        self.worker
            .jobs()
            .wake(tenant, id, wake_token, Duration::ZERO)
            .await;
        Ok(delivery)
    }
}

/// A delivery's resource name.
fn name(id: DeliveryId) -> String {
    platform::wire::resource_name("deliveries", id)
}
