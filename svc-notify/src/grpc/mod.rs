//! The `NotifyService` gRPC API: thin handlers that validate the request into domain types,
//! call [`Notify`], and convert the result back.

pub mod convert;

use platform::context::RequestContext;
use platform::wire::{from_timestamp, id_of};
use proto::formflow::notify::v1 as wire;
use proto::formflow::notify::v1::notify_service_server::NotifyService;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use self::convert::webhooks;
use crate::operations::Notify;
use crate::store::Mark;
use crate::store::Owner;
use convert::preferences::{preference_changes, preferences_to_proto};

/// The `NotifyService` implementation.
#[derive(Debug, Clone)]
pub struct NotifyApi {
    notify: Notify,
}

impl NotifyApi {
    /// An API over `notify`.
    pub fn new(notify: Notify) -> Self {
        Self { notify }
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl NotifyService for NotifyApi {
    type StreamInboxStream = BoxStream<wire::StreamInboxResponse>;

    async fn send_notification(
        &self,
        request: Request<wire::SendNotificationRequest>,
    ) -> Answer<wire::SendNotificationResponse> {
        let context = RequestContext::of(&request)?;
        let new = convert::new_notification(request.get_ref().clone())?;
        Ok(Response::new(self.notify.send(context, new).await?))
    }

    async fn get_notification(
        &self,
        request: Request<wire::GetNotificationRequest>,
    ) -> Answer<wire::Notification> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "notifications")?;
        let (notification, deliveries) = self.notify.get_notification(context, id).await?;
        Ok(Response::new(convert::notification_to_proto(
            &notification,
            &deliveries,
        )))
    }

    async fn create_template(
        &self,
        request: Request<wire::CreateTemplateRequest>,
    ) -> Answer<wire::Template> {
        let context = RequestContext::of(&request)?;
        let new = convert::new_template(request.get_ref().clone())?;
        let template = self.notify.create_template(context, new).await?;
        Ok(Response::new(convert::template_to_proto(&template)))
    }

    async fn get_template(
        &self,
        request: Request<wire::GetTemplateRequest>,
    ) -> Answer<wire::Template> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "templates")?;
        let template = self.notify.get_template(context, id).await?;
        Ok(Response::new(convert::template_to_proto(&template)))
    }

    async fn list_templates(
        &self,
        request: Request<wire::ListTemplatesRequest>,
    ) -> Answer<wire::ListTemplatesResponse> {
        let context = RequestContext::of(&request)?;
        let (after, size) = convert::list_templates_request(request.get_ref())?;
        let page = self.notify.list_templates(context, after, size).await?;
        Ok(Response::new(convert::templates_page(&page)))
    }

    async fn update_template(
        &self,
        request: Request<wire::UpdateTemplateRequest>,
    ) -> Answer<wire::Template> {
        let context = RequestContext::of(&request)?;
        let (id, changes) = convert::template_changes(request.get_ref().clone())?;
        let template = self.notify.update_template(context, id, changes).await?;
        Ok(Response::new(convert::template_to_proto(&template)))
    }

    async fn delete_template(
        &self,
        request: Request<wire::DeleteTemplateRequest>,
    ) -> Answer<pbjson_types::Empty> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "templates")?;
        self.notify.delete_template(context, id).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn preview_template(
        &self,
        request: Request<wire::PreviewTemplateRequest>,
    ) -> Answer<wire::PreviewTemplateResponse> {
        let context = RequestContext::of(&request)?;
        let (source, data) = convert::preview_request(request.get_ref().clone())?;
        let rendered = self.notify.preview_template(context, source, &data).await?;
        Ok(Response::new(convert::preview_to_proto(rendered)))
    }

    async fn list_inbox_messages(
        &self,
        request: Request<wire::ListInboxMessagesRequest>,
    ) -> Answer<wire::ListInboxMessagesResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_inbox_request(request.get_ref())?;
        let page = self
            .notify
            .list_inbox(context, &listing.filter, listing.after, listing.size)
            .await?;
        Ok(Response::new(convert::inbox_page(page, &listing.key)))
    }

    async fn get_inbox_message(
        &self,
        request: Request<wire::GetInboxMessageRequest>,
    ) -> Answer<wire::InboxMessage> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "inboxMessages")?;
        let message = self.notify.get_inbox_message(context, id).await?;
        Ok(Response::new(convert::inbox_message_to_proto(&message)))
    }

    async fn mark_read(
        &self,
        request: Request<wire::MarkReadRequest>,
    ) -> Answer<wire::InboxMessage> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "inboxMessages")?;
        let message = self
            .notify
            .mark_inbox_message(context, id, Mark::Read)
            .await?;
        Ok(Response::new(convert::inbox_message_to_proto(&message)))
    }

    async fn mark_all_read(
        &self,
        request: Request<wire::MarkAllReadRequest>,
    ) -> Answer<wire::MarkAllReadResponse> {
        let context = RequestContext::of(&request)?;
        let before = request
            .get_ref()
            .before_time
            .as_ref()
            .and_then(from_timestamp);
        let marked = self.notify.mark_all_read(context, before).await?;
        Ok(Response::new(wire::MarkAllReadResponse {
            marked_count: i32::try_from(marked).unwrap_or(i32::MAX),
        }))
    }

    async fn stream_inbox(
        &self,
        request: Request<wire::StreamInboxRequest>,
    ) -> Answer<Self::StreamInboxStream> {
        let context = RequestContext::of(&request)?;
        let updates = self.notify.watch_inbox(context).await?;
        let updates = ReceiverStream::new(updates).map(|update| update.map_err(Status::from));
        Ok(Response::new(Box::pin(updates)))
    }

    async fn archive_inbox_message(
        &self,
        request: Request<wire::ArchiveInboxMessageRequest>,
    ) -> Answer<wire::InboxMessage> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "inboxMessages")?;
        let message = self
            .notify
            .mark_inbox_message(context, id, Mark::Archived)
            .await?;
        Ok(Response::new(convert::inbox_message_to_proto(&message)))
    }

    async fn get_preferences(
        &self,
        request: Request<wire::GetPreferencesRequest>,
    ) -> Answer<wire::NotificationPreferences> {
        let context = RequestContext::of(&request)?;
        let (owner, stored) = self.notify.get_preferences(context).await?;
        Ok(Response::new(preferences_to_proto(
            owner.resource_name(),
            &stored,
        )))
    }

    async fn update_preferences(
        &self,
        request: Request<wire::UpdatePreferencesRequest>,
    ) -> Answer<wire::NotificationPreferences> {
        let context = RequestContext::of(&request)?;
        let request = request.get_ref().clone();
        let changes = preference_changes(request.preferences, request.update_mask.as_ref())?;
        let (owner, stored) = self.notify.update_preferences(context, changes).await?;
        Ok(Response::new(preferences_to_proto(
            owner.resource_name(),
            &stored,
        )))
    }

    async fn get_tenant_preferences(
        &self,
        request: Request<wire::GetTenantPreferencesRequest>,
    ) -> Answer<wire::NotificationPreferences> {
        let context = RequestContext::of(&request)?;
        let stored = self.notify.get_tenant_preferences(context).await?;
        Ok(Response::new(preferences_to_proto(
            Owner::Tenant.resource_name(),
            &stored,
        )))
    }

    async fn update_tenant_preferences(
        &self,
        request: Request<wire::UpdateTenantPreferencesRequest>,
    ) -> Answer<wire::NotificationPreferences> {
        let context = RequestContext::of(&request)?;
        let request = request.get_ref().clone();
        let changes = preference_changes(request.preferences, request.update_mask.as_ref())?;
        let stored = self
            .notify
            .update_tenant_preferences(context, changes)
            .await?;
        Ok(Response::new(preferences_to_proto(
            Owner::Tenant.resource_name(),
            &stored,
        )))
    }

    async fn list_deliveries(
        &self,
        request: Request<wire::ListDeliveriesRequest>,
    ) -> Answer<wire::ListDeliveriesResponse> {
        let context = RequestContext::of(&request)?;
        let listing = convert::list_deliveries_request(request.get_ref())?;
        let page = self
            .notify
            .list_deliveries(context, &listing.filter, listing.after, listing.size)
            .await?;
        Ok(Response::new(convert::deliveries_page(page, &listing.key)))
    }

    async fn get_delivery(
        &self,
        request: Request<wire::GetDeliveryRequest>,
    ) -> Answer<wire::Delivery> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "deliveries")?;
        let (delivery, attempts) = self.notify.get_delivery(context, id).await?;
        Ok(Response::new(convert::delivery_to_proto(
            &delivery, attempts,
        )))
    }

    async fn retry_delivery(
        &self,
        request: Request<wire::RetryDeliveryRequest>,
    ) -> Answer<wire::Delivery> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "deliveries")?;
        let delivery = self.notify.retry_delivery(context, id).await?;
        Ok(Response::new(convert::delivery_to_proto(
            &delivery,
            Vec::new(),
        )))
    }

    async fn create_webhook_endpoint(
        &self,
        request: Request<wire::CreateWebhookEndpointRequest>,
    ) -> Answer<wire::CreateWebhookEndpointResponse> {
        let context = RequestContext::of(&request)?;
        let new = webhooks::new_webhook_endpoint(request.get_ref().clone())?;
        let (endpoint, secret) = self.notify.create_webhook_endpoint(context, new).await?;
        Ok(Response::new(wire::CreateWebhookEndpointResponse {
            webhook_endpoint: Some(webhooks::webhook_endpoint_to_proto(&endpoint)),
            secret,
        }))
    }

    async fn get_webhook_endpoint(
        &self,
        request: Request<wire::GetWebhookEndpointRequest>,
    ) -> Answer<wire::WebhookEndpoint> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "webhookEndpoints")?;
        let endpoint = self.notify.get_webhook_endpoint(context, id).await?;
        Ok(Response::new(webhooks::webhook_endpoint_to_proto(
            &endpoint,
        )))
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<wire::ListWebhookEndpointsRequest>,
    ) -> Answer<wire::ListWebhookEndpointsResponse> {
        let context = RequestContext::of(&request)?;
        let (after, size) = webhooks::list_webhook_endpoints_request(request.get_ref())?;
        let page = self
            .notify
            .list_webhook_endpoints(context, after, size)
            .await?;
        Ok(Response::new(webhooks::webhook_endpoints_page(&page)))
    }

    async fn update_webhook_endpoint(
        &self,
        request: Request<wire::UpdateWebhookEndpointRequest>,
    ) -> Answer<wire::WebhookEndpoint> {
        let context = RequestContext::of(&request)?;
        let (id, changes) = webhooks::webhook_endpoint_changes(request.get_ref().clone())?;
        let endpoint = self
            .notify
            .update_webhook_endpoint(context, id, changes)
            .await?;
        Ok(Response::new(webhooks::webhook_endpoint_to_proto(
            &endpoint,
        )))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<wire::DeleteWebhookEndpointRequest>,
    ) -> Answer<pbjson_types::Empty> {
        let context = RequestContext::of(&request)?;
        let id = id_of(&request.get_ref().name, "webhookEndpoints")?;
        self.notify.delete_webhook_endpoint(context, id).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn rotate_webhook_endpoint_secret(
        &self,
        request: Request<wire::RotateWebhookEndpointSecretRequest>,
    ) -> Answer<wire::RotateWebhookEndpointSecretResponse> {
        let context = RequestContext::of(&request)?;
        let (id, grace_period) = webhooks::rotate_request(request.get_ref())?;
        let (endpoint, secret) = self
            .notify
            .rotate_webhook_secret(context, id, grace_period)
            .await?;
        Ok(Response::new(wire::RotateWebhookEndpointSecretResponse {
            webhook_endpoint: Some(webhooks::webhook_endpoint_to_proto(&endpoint)),
            secret,
        }))
    }
}
