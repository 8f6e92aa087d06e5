//! The `AuthService` gRPC API: thin handlers that validate the request into domain types
//! ([`convert`]), call [`Identity`] with the call's context, and convert the result back.

pub mod convert;

use platform::context::RequestContext;
use proto::formflow::auth::v1 as wire;
use proto::formflow::auth::v1::auth_service_server::AuthService;
use secrecy::ExposeSecret;
use tonic::{Request, Response, Status};

use crate::operations::Identity;

/// The `AuthService` implementation.
#[derive(Debug, Clone)]
pub struct AuthApi {
    identity: Identity,
}

impl AuthApi {
    /// An API over `identity`.
    pub fn new(identity: Identity) -> Self {
        Self { identity }
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn sign_up(&self, request: Request<wire::SignUpRequest>) -> Answer<wire::SignUpResponse> {
        let context = RequestContext::of(&request)?;
        let sign_up = convert::sign_up(request.get_ref())?;
        let signed_up = self.identity.sign_up(context, sign_up).await?;
        Ok(Response::new(convert::signed_up_to_proto(signed_up)))
    }

    async fn login(&self, request: Request<wire::LoginRequest>) -> Answer<wire::LoginResponse> {
        let context = RequestContext::of(&request)?;
        let (email, password) = convert::login(request.get_ref())?;
        let outcome = self.identity.login(context, &email, &password).await?;
        Ok(Response::new(convert::login_to_proto(&outcome)))
    }

    async fn verify_totp(
        &self,
        request: Request<wire::VerifyTotpRequest>,
    ) -> Answer<wire::LoginResponse> {
        let context = RequestContext::of(&request)?;
        let (challenge, code) = convert::verify_totp(request.get_ref())?;
        let tokens = self
            .identity
            .verify_totp(context, &challenge, &code)
            .await?;
        Ok(Response::new(convert::logged_in_to_proto(&tokens)))
    }

    async fn refresh(&self, request: Request<wire::RefreshRequest>) -> Answer<wire::AuthTokens> {
        let context = RequestContext::of(&request)?;
        let refresh_token = convert::refresh(request.get_ref())?;
        let tokens = self.identity.refresh(context, &refresh_token).await?;
        Ok(Response::new(convert::tokens_to_proto(&tokens)))
    }

    async fn logout(&self, request: Request<wire::LogoutRequest>) -> Answer<pbjson_types::Empty> {
        let context = RequestContext::of(&request)?;
        self.identity.logout(context).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn logout_all(
        &self,
        request: Request<wire::LogoutAllRequest>,
    ) -> Answer<wire::LogoutAllResponse> {
        let context = RequestContext::of(&request)?;
        let revoked = self.identity.logout_all(context).await?;
        Ok(Response::new(wire::LogoutAllResponse {
            revoked_sessions: convert::session_count(revoked),
        }))
    }

    async fn get_me(&self, request: Request<wire::GetMeRequest>) -> Answer<wire::GetMeResponse> {
        let context = RequestContext::of(&request)?;
        let me = self.identity.me(context).await?;
        Ok(Response::new(convert::me_to_proto(&me)))
    }

    async fn change_password(
        &self,
        request: Request<wire::ChangePasswordRequest>,
    ) -> Answer<wire::ChangePasswordResponse> {
        let context = RequestContext::of(&request)?;
        let (current, new) = convert::change_password(request.get_ref())?;
        let revoked = self
            .identity
            .change_password(context, &current, &new)
            .await?;
        Ok(Response::new(wire::ChangePasswordResponse {
            revoked_sessions: convert::session_count(revoked),
        }))
    }

    async fn request_password_reset(
        &self,
        request: Request<wire::RequestPasswordResetRequest>,
    ) -> Answer<wire::RequestPasswordResetResponse> {
        let context = RequestContext::of(&request)?;
        let email = convert::request_password_reset(request.get_ref())?;
        self.identity
            .request_password_reset(context, &email)
            .await?;
        Ok(Response::new(wire::RequestPasswordResetResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<wire::ResetPasswordRequest>,
    ) -> Answer<wire::ResetPasswordResponse> {
        let context = RequestContext::of(&request)?;
        let (token, new) = convert::reset_password(request.get_ref())?;
        self.identity.reset_password(context, &token, &new).await?;
        Ok(Response::new(wire::ResetPasswordResponse {}))
    }

    async fn enrol_totp(
        &self,
        request: Request<wire::EnrolTotpRequest>,
    ) -> Answer<wire::EnrolTotpResponse> {
        let context = RequestContext::of(&request)?;
        let password = convert::enrol_totp(request.get_ref())?;
        let enrolment = self.identity.enrol_totp(context, &password).await?;
        Ok(Response::new(convert::enrolment_to_proto(&enrolment)))
    }

    async fn confirm_totp(
        &self,
        request: Request<wire::ConfirmTotpRequest>,
    ) -> Answer<wire::ConfirmTotpResponse> {
        let context = RequestContext::of(&request)?;
        let code = convert::required_code(&request.get_ref().code)?;
        let recovery_codes = self.identity.confirm_totp(context, &code).await?;
        Ok(Response::new(wire::ConfirmTotpResponse { recovery_codes }))
    }

    async fn disable_totp(
        &self,
        request: Request<wire::DisableTotpRequest>,
    ) -> Answer<wire::DisableTotpResponse> {
        let context = RequestContext::of(&request)?;
        let (password, code) = convert::disable_totp(request.get_ref())?;
        self.identity
            .disable_totp(context, &password, &code)
            .await?;
        Ok(Response::new(wire::DisableTotpResponse {}))
    }

    async fn regenerate_recovery_codes(
        &self,
        request: Request<wire::RegenerateRecoveryCodesRequest>,
    ) -> Answer<wire::RegenerateRecoveryCodesResponse> {
        let context = RequestContext::of(&request)?;
        let code = convert::required_code(&request.get_ref().code)?;
        let recovery_codes = self
            .identity
            .regenerate_recovery_codes(context, &code)
            .await?;
        Ok(Response::new(wire::RegenerateRecoveryCodesResponse {
            recovery_codes,
        }))
    }

    async fn create_invitation(
        &self,
        request: Request<wire::CreateInvitationRequest>,
    ) -> Answer<wire::Invitation> {
        let context = RequestContext::of(&request)?;
        let new_invitation = convert::new_invitation(request.get_ref())?;
        let created = self
            .identity
            .create_invitation(context, new_invitation)
            .await?;
        Ok(Response::new(convert::invitation_to_proto(&created)))
    }

    async fn list_invitations(
        &self,
        request: Request<wire::ListInvitationsRequest>,
    ) -> Answer<wire::ListInvitationsResponse> {
        let context = RequestContext::of(&request)?;
        let (page_size, before, state) = convert::invitation_listing(request.get_ref())?;
        let page = self
            .identity
            .list_invitations(context, page_size, before, state)
            .await?;
        Ok(Response::new(convert::invitation_page_to_proto(
            &page, state,
        )))
    }

    async fn revoke_invitation(
        &self,
        request: Request<wire::RevokeInvitationRequest>,
    ) -> Answer<wire::Invitation> {
        let context = RequestContext::of(&request)?;
        let id = convert::invitation_name_only(&request.get_ref().name)?;
        let revoked = self.identity.revoke_invitation(context, id).await?;
        Ok(Response::new(convert::invitation_to_proto(&revoked)))
    }

    async fn accept_invitation(
        &self,
        request: Request<wire::AcceptInvitationRequest>,
    ) -> Answer<wire::AcceptInvitationResponse> {
        let context = RequestContext::of(&request)?;
        let (token, display_name, password) = convert::accept_invitation(request.get_ref())?;
        let accepted = self
            .identity
            .accept_invitation(context, &token, display_name, &password)
            .await?;
        Ok(Response::new(convert::accepted_to_proto(&accepted)))
    }

    async fn list_members(
        &self,
        request: Request<wire::ListMembersRequest>,
    ) -> Answer<wire::ListMembersResponse> {
        let context = RequestContext::of(&request)?;
        let (page_size, after, role) = convert::member_listing(request.get_ref())?;
        let page = self
            .identity
            .list_members(context, page_size, after, role)
            .await?;
        Ok(Response::new(convert::member_page_to_proto(&page, role)))
    }

    async fn get_member(&self, request: Request<wire::GetMemberRequest>) -> Answer<wire::Member> {
        let context = RequestContext::of(&request)?;
        let user = convert::member_name_only(&request.get_ref().name)?;
        let member = self.identity.get_member(context, user).await?;
        Ok(Response::new(convert::member_to_proto(&member)))
    }

    async fn update_member(
        &self,
        request: Request<wire::UpdateMemberRequest>,
    ) -> Answer<wire::Member> {
        let context = RequestContext::of(&request)?;
        let (user, role, expected_version) = convert::member_update(request.get_ref())?;
        let updated = self
            .identity
            .update_member_role(context, user, role, expected_version)
            .await?;
        Ok(Response::new(convert::member_to_proto(&updated)))
    }

    async fn remove_member(
        &self,
        request: Request<wire::RemoveMemberRequest>,
    ) -> Answer<pbjson_types::Empty> {
        let context = RequestContext::of(&request)?;
        let user = convert::member_name_only(&request.get_ref().name)?;
        self.identity.remove_member(context, user).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn create_api_key(
        &self,
        request: Request<wire::CreateApiKeyRequest>,
    ) -> Answer<wire::CreateApiKeyResponse> {
        let context = RequestContext::of(&request)?;
        let new_key = convert::new_api_key(request.get_ref())?;
        let created = self.identity.create_api_key(context, new_key).await?;
        Ok(Response::new(convert::created_api_key_to_proto(&created)))
    }

    async fn list_api_keys(
        &self,
        request: Request<wire::ListApiKeysRequest>,
    ) -> Answer<wire::ListApiKeysResponse> {
        let context = RequestContext::of(&request)?;
        let (page_size, before, state) = convert::api_key_listing(request.get_ref())?;
        let page = self
            .identity
            .list_api_keys(context, page_size, before, state)
            .await?;
        Ok(Response::new(convert::api_key_page_to_proto(&page, state)))
    }

    async fn get_api_key(&self, request: Request<wire::GetApiKeyRequest>) -> Answer<wire::ApiKey> {
        let context = RequestContext::of(&request)?;
        let id = convert::api_key_name_only(&request.get_ref().name)?;
        let key = self.identity.get_api_key(context, id).await?;
        Ok(Response::new(convert::api_key_to_proto(&key)))
    }

    async fn revoke_api_key(
        &self,
        request: Request<wire::RevokeApiKeyRequest>,
    ) -> Answer<wire::ApiKey> {
        let context = RequestContext::of(&request)?;
        let id = convert::api_key_name_only(&request.get_ref().name)?;
        let key = self.identity.revoke_api_key(context, id).await?;
        Ok(Response::new(convert::api_key_to_proto(&key)))
    }

    async fn get_jwks(
        &self,
        _request: Request<wire::GetJwksRequest>,
    ) -> Answer<wire::JsonWebKeySet> {
        let jwks =
            convert::jwks_to_proto(&self.identity.jwks()).map_err(platform::error::internal)?;
        Ok(Response::new(jwks))
    }

    async fn verify_api_key(
        &self,
        request: Request<wire::VerifyApiKeyRequest>,
    ) -> Answer<wire::VerifyApiKeyResponse> {
        let context = RequestContext::of(&request)?;
        let (secret, tenant) = convert::verify_api_key(request.get_ref())?;
        let verified = self
            .identity
            .verify_api_key(context, &secret, tenant)
            .await?;
        Ok(Response::new(convert::verified_api_key_to_proto(&verified)))
    }

    async fn issue_service_token(
        &self,
        request: Request<wire::IssueServiceTokenRequest>,
    ) -> Answer<wire::IssueServiceTokenResponse> {
        let client = convert::service_token(request.into_inner())?;
        let issued = self
            .identity
            .issue_service_token(
                &client.client_id,
                client.client_secret.expose_secret(),
                client.tenant,
            )
            .await?;
        Ok(Response::new(convert::service_token_to_proto(issued)))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<wire::RotateSigningKeyRequest>,
    ) -> Answer<wire::SigningKey> {
        let context = RequestContext::of(&request)?;
        let key = self.identity.rotate_signing_key(context).await?;
        Ok(Response::new(convert::signing_key_to_proto(&key)))
    }
}
