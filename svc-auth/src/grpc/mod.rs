//! The `AuthService` gRPC API: thin handlers that validate the request into domain types,
//! call [`Identity`], and convert the result back.

pub mod convert;

use platform::context::{RequestContext, TenantId};
use platform::error::FieldViolations;
use proto::formflow::auth::v1 as wire;
use proto::formflow::auth::v1::auth_service_server::AuthService;
use tonic::{Request, Response, Status};

use secrecy::ExposeSecret;

use crate::domain::PersonName;
use crate::identity::{Caller, Identity, LoginOutcome, SignUp};

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

fn caller<T>(request: &Request<T>) -> Result<Caller<'_>, Status> {
    Ok(Caller {
        context: RequestContext::of(request)?,
    })
}

fn login_response(outcome: LoginOutcome) -> wire::LoginResponse {
    match outcome {
        LoginOutcome::Tokens(tokens) => wire::LoginResponse {
            tokens: Some(convert::tokens_to_proto(&tokens)),
            ..wire::LoginResponse::default()
        },
        LoginOutcome::TwoFactor {
            challenge,
            expires_at,
        } => wire::LoginResponse {
            requires_two_factor: true,
            challenge: challenge.expose_secret().to_owned(),
            challenge_expire_time: Some(convert::timestamp(expires_at)),
            tokens: None,
        },
    }
}

fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not available yet"))
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn sign_up(
        &self,
        request: Request<wire::SignUpRequest>,
    ) -> Result<Response<wire::SignUpResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let email = convert::email(&mut violations, "email", &message.email);
        let display_name =
            violations.check("display_name", PersonName::parse(&message.display_name));
        let password = convert::entered_password(&mut violations, "password", &message.password);
        if message.tenant_slug.is_empty() {
            violations.add("tenant_slug", "is required");
        }
        if message.tenant_display_name.trim().is_empty() {
            violations.add("tenant_display_name", "is required");
        }
        let (Some(email), Some(display_name)) = (email, display_name) else {
            return Err(violations.into());
        };
        violations.into_result()?;
        let signed_up = self
            .identity
            .sign_up(
                caller,
                SignUp {
                    tenant_slug: message.tenant_slug.clone(),
                    tenant_display_name: message.tenant_display_name.clone(),
                    email,
                    password,
                    display_name,
                },
            )
            .await?;
        Ok(Response::new(wire::SignUpResponse {
            tenant: Some(signed_up.tenant),
            user: Some(convert::user_to_proto(&signed_up.user)),
            member: Some(convert::member_to_proto(&signed_up.member)),
            tokens: Some(convert::tokens_to_proto(&signed_up.tokens)),
        }))
    }

    async fn login(
        &self,
        request: Request<wire::LoginRequest>,
    ) -> Result<Response<wire::LoginResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let email = convert::email(&mut violations, "email", &message.email);
        let password = convert::entered_password(&mut violations, "password", &message.password);
        let Some(email) = email else {
            return Err(violations.into());
        };
        violations.into_result()?;
        let outcome = self.identity.login(caller, &email, &password).await?;
        Ok(Response::new(login_response(outcome)))
    }

    async fn verify_totp(
        &self,
        request: Request<wire::VerifyTotpRequest>,
    ) -> Result<Response<wire::LoginResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let challenge = convert::token(&mut violations, "challenge", &message.challenge);
        if message.code.trim().is_empty() || message.code.len() > 40 {
            violations.add("code", "must be a 6-digit code or a recovery code");
        }
        violations.into_result()?;
        let tokens = self
            .identity
            .verify_totp(caller, &challenge, &message.code)
            .await?;
        Ok(Response::new(wire::LoginResponse {
            tokens: Some(convert::tokens_to_proto(&tokens)),
            ..wire::LoginResponse::default()
        }))
    }

    async fn refresh(
        &self,
        request: Request<wire::RefreshRequest>,
    ) -> Result<Response<wire::AuthTokens>, Status> {
        let caller = caller(&request)?;
        let mut violations = FieldViolations::new();
        let refresh_token = convert::token(
            &mut violations,
            "refresh_token",
            &request.get_ref().refresh_token,
        );
        violations.into_result()?;
        let tokens = self.identity.refresh(caller, &refresh_token).await?;
        Ok(Response::new(convert::tokens_to_proto(&tokens)))
    }

    async fn logout(
        &self,
        request: Request<wire::LogoutRequest>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        self.identity.logout(caller(&request)?).await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn logout_all(
        &self,
        request: Request<wire::LogoutAllRequest>,
    ) -> Result<Response<wire::LogoutAllResponse>, Status> {
        let revoked = self.identity.logout_all(caller(&request)?).await?;
        Ok(Response::new(wire::LogoutAllResponse {
            revoked_sessions: i32::try_from(revoked).unwrap_or(i32::MAX),
        }))
    }

    async fn get_me(
        &self,
        request: Request<wire::GetMeRequest>,
    ) -> Result<Response<wire::GetMeResponse>, Status> {
        let me = self.identity.me(caller(&request)?).await?;
        Ok(Response::new(wire::GetMeResponse {
            user: Some(convert::user_to_proto(&me.user)),
            tenant_id: me
                .member
                .as_ref()
                .map(|member| member.tenant_id.to_string())
                .unwrap_or_default(),
            member: me.member.as_ref().map(convert::member_to_proto),
            permissions: me
                .permissions
                .iter()
                .map(|permission| permission.as_str().to_owned())
                .collect(),
            session_id: me.session_id.to_string(),
        }))
    }

    async fn change_password(
        &self,
        _request: Request<wire::ChangePasswordRequest>,
    ) -> Result<Response<wire::ChangePasswordResponse>, Status> {
        Err(not_yet("ChangePassword"))
    }

    async fn request_password_reset(
        &self,
        _request: Request<wire::RequestPasswordResetRequest>,
    ) -> Result<Response<wire::RequestPasswordResetResponse>, Status> {
        Err(not_yet("RequestPasswordReset"))
    }

    async fn reset_password(
        &self,
        _request: Request<wire::ResetPasswordRequest>,
    ) -> Result<Response<wire::ResetPasswordResponse>, Status> {
        Err(not_yet("ResetPassword"))
    }

    async fn enrol_totp(
        &self,
        _request: Request<wire::EnrolTotpRequest>,
    ) -> Result<Response<wire::EnrolTotpResponse>, Status> {
        Err(not_yet("EnrolTotp"))
    }

    async fn confirm_totp(
        &self,
        _request: Request<wire::ConfirmTotpRequest>,
    ) -> Result<Response<wire::ConfirmTotpResponse>, Status> {
        Err(not_yet("ConfirmTotp"))
    }

    async fn disable_totp(
        &self,
        _request: Request<wire::DisableTotpRequest>,
    ) -> Result<Response<wire::DisableTotpResponse>, Status> {
        Err(not_yet("DisableTotp"))
    }

    async fn regenerate_recovery_codes(
        &self,
        _request: Request<wire::RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<wire::RegenerateRecoveryCodesResponse>, Status> {
        Err(not_yet("RegenerateRecoveryCodes"))
    }

    async fn create_invitation(
        &self,
        _request: Request<wire::CreateInvitationRequest>,
    ) -> Result<Response<wire::Invitation>, Status> {
        Err(not_yet("CreateInvitation"))
    }

    async fn list_invitations(
        &self,
        _request: Request<wire::ListInvitationsRequest>,
    ) -> Result<Response<wire::ListInvitationsResponse>, Status> {
        Err(not_yet("ListInvitations"))
    }

    async fn revoke_invitation(
        &self,
        _request: Request<wire::RevokeInvitationRequest>,
    ) -> Result<Response<wire::Invitation>, Status> {
        Err(not_yet("RevokeInvitation"))
    }

    async fn accept_invitation(
        &self,
        _request: Request<wire::AcceptInvitationRequest>,
    ) -> Result<Response<wire::AcceptInvitationResponse>, Status> {
        Err(not_yet("AcceptInvitation"))
    }

    async fn list_members(
        &self,
        _request: Request<wire::ListMembersRequest>,
    ) -> Result<Response<wire::ListMembersResponse>, Status> {
        Err(not_yet("ListMembers"))
    }

    async fn get_member(
        &self,
        _request: Request<wire::GetMemberRequest>,
    ) -> Result<Response<wire::Member>, Status> {
        Err(not_yet("GetMember"))
    }

    async fn update_member(
        &self,
        _request: Request<wire::UpdateMemberRequest>,
    ) -> Result<Response<wire::Member>, Status> {
        Err(not_yet("UpdateMember"))
    }

    async fn remove_member(
        &self,
        _request: Request<wire::RemoveMemberRequest>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        Err(not_yet("RemoveMember"))
    }

    async fn create_api_key(
        &self,
        _request: Request<wire::CreateApiKeyRequest>,
    ) -> Result<Response<wire::CreateApiKeyResponse>, Status> {
        Err(not_yet("CreateApiKey"))
    }

    async fn list_api_keys(
        &self,
        _request: Request<wire::ListApiKeysRequest>,
    ) -> Result<Response<wire::ListApiKeysResponse>, Status> {
        Err(not_yet("ListApiKeys"))
    }

    async fn get_api_key(
        &self,
        _request: Request<wire::GetApiKeyRequest>,
    ) -> Result<Response<wire::ApiKey>, Status> {
        Err(not_yet("GetApiKey"))
    }

    async fn revoke_api_key(
        &self,
        _request: Request<wire::RevokeApiKeyRequest>,
    ) -> Result<Response<wire::ApiKey>, Status> {
        Err(not_yet("RevokeApiKey"))
    }

    async fn get_jwks(
        &self,
        _request: Request<wire::GetJwksRequest>,
    ) -> Result<Response<wire::JsonWebKeySet>, Status> {
        Ok(Response::new(convert::jwks_to_proto(
            &self.identity.jwks(),
        )?))
    }

    async fn verify_api_key(
        &self,
        _request: Request<wire::VerifyApiKeyRequest>,
    ) -> Result<Response<wire::VerifyApiKeyResponse>, Status> {
        Err(not_yet("VerifyApiKey"))
    }

    async fn issue_service_token(
        &self,
        request: Request<wire::IssueServiceTokenRequest>,
    ) -> Result<Response<wire::IssueServiceTokenResponse>, Status> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        if request.client_id.is_empty() || request.client_id.len() > 64 {
            violations.add("client_id", "must be 1 to 64 characters");
        }
        if request.client_secret.is_empty() || request.client_secret.len() > 256 {
            violations.add("client_secret", "must be 1 to 256 characters");
        }
        let tenant = if request.tenant_id.is_empty() {
            None
        } else {
            violations.check("tenant_id", TenantId::parse(&request.tenant_id))
        };
        violations.into_result()?;
        let issued = self
            .identity
            .issue_service_token(&request.client_id, &request.client_secret, tenant)
            .await?;
        Ok(Response::new(wire::IssueServiceTokenResponse {
            access_token: issued.token,
            token_type: "Bearer".to_owned(),
            expire_time: Some(convert::timestamp(issued.expires_at)),
        }))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<wire::RotateSigningKeyRequest>,
    ) -> Result<Response<wire::SigningKey>, Status> {
        let caller = caller(&request)?;
        let key = self.identity.rotate_signing_key(caller).await?;
        Ok(Response::new(convert::signing_key_to_proto(&key)))
    }
}
