//! The `AuthService` gRPC API: thin handlers that validate the request into domain types,
//! call [`Identity`], and convert the result back.

pub mod convert;

use platform::context::{RequestContext, TenantId};
use platform::error::FieldViolations;
use proto::formflow::auth::v1 as wire;
use proto::formflow::auth::v1::auth_service_server::AuthService;
use tonic::{Request, Response, Status};

use secrecy::ExposeSecret;

use platform::context::UserId;
use platform::paging::{decode_page_position, encode_page_token, page_size};

use crate::domain::{PersonName, role_from_proto};
use crate::identity::{
    Caller, Identity, LoginOutcome, NewApiKeyRequest, NewInvitationRequest, SignUp, check_ttl,
    parse_scopes,
};

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

/// The id a page token of lists ordered by id carries.
fn id_page_position(
    violations: &mut FieldViolations,
    token: &str,
    filter: &str,
) -> Option<uuid::Uuid> {
    decode_page_position(violations, token, filter, |position| {
        uuid::Uuid::try_parse(position).ok()
    })
}

/// The page token after `last`, the last id of a full page; empty at the end.
fn id_page_token(filter: &str, last: Option<uuid::Uuid>) -> String {
    last.map(|id| encode_page_token(filter, &id.to_string()))
        .unwrap_or_default()
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
        request: Request<wire::ChangePasswordRequest>,
    ) -> Result<Response<wire::ChangePasswordResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let current = convert::entered_password(
            &mut violations,
            "current_password",
            &message.current_password,
        );
        let new = convert::entered_password(&mut violations, "new_password", &message.new_password);
        violations.into_result()?;
        let revoked = self
            .identity
            .change_password(caller, &current, &new)
            .await?;
        Ok(Response::new(wire::ChangePasswordResponse {
            revoked_sessions: i32::try_from(revoked).unwrap_or(i32::MAX),
        }))
    }

    async fn request_password_reset(
        &self,
        request: Request<wire::RequestPasswordResetRequest>,
    ) -> Result<Response<wire::RequestPasswordResetResponse>, Status> {
        let caller = caller(&request)?;
        let mut violations = FieldViolations::new();
        let email = convert::email(&mut violations, "email", &request.get_ref().email);
        let Some(email) = email else {
            return Err(violations.into());
        };
        self.identity.request_password_reset(caller, &email).await?;
        Ok(Response::new(wire::RequestPasswordResetResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<wire::ResetPasswordRequest>,
    ) -> Result<Response<wire::ResetPasswordResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let token = convert::token(&mut violations, "token", &message.token);
        let new = convert::entered_password(&mut violations, "new_password", &message.new_password);
        violations.into_result()?;
        self.identity.reset_password(caller, &token, &new).await?;
        Ok(Response::new(wire::ResetPasswordResponse {}))
    }

    async fn enrol_totp(
        &self,
        request: Request<wire::EnrolTotpRequest>,
    ) -> Result<Response<wire::EnrolTotpResponse>, Status> {
        let caller = caller(&request)?;
        let mut violations = FieldViolations::new();
        let password =
            convert::entered_password(&mut violations, "password", &request.get_ref().password);
        violations.into_result()?;
        let enrolment = self.identity.enrol_totp(caller, &password).await?;
        Ok(Response::new(wire::EnrolTotpResponse {
            secret: enrolment.secret.expose_secret().to_owned(),
            otpauth_uri: enrolment.otpauth_uri.expose_secret().to_owned(),
            expire_time: Some(convert::timestamp(enrolment.expires_at)),
        }))
    }

    async fn confirm_totp(
        &self,
        request: Request<wire::ConfirmTotpRequest>,
    ) -> Result<Response<wire::ConfirmTotpResponse>, Status> {
        let caller = caller(&request)?;
        let code = request.get_ref().code.clone();
        if code.trim().is_empty() {
            return Err(FieldViolations::single("code", "is required").into());
        }
        let recovery_codes = self.identity.confirm_totp(caller, &code).await?;
        Ok(Response::new(wire::ConfirmTotpResponse { recovery_codes }))
    }

    async fn disable_totp(
        &self,
        request: Request<wire::DisableTotpRequest>,
    ) -> Result<Response<wire::DisableTotpResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let password = convert::entered_password(&mut violations, "password", &message.password);
        if message.code.trim().is_empty() || message.code.len() > 40 {
            violations.add("code", "must be a 6-digit code or a recovery code");
        }
        violations.into_result()?;
        self.identity
            .disable_totp(caller, &password, &message.code)
            .await?;
        Ok(Response::new(wire::DisableTotpResponse {}))
    }

    async fn regenerate_recovery_codes(
        &self,
        request: Request<wire::RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<wire::RegenerateRecoveryCodesResponse>, Status> {
        let caller = caller(&request)?;
        let code = request.get_ref().code.clone();
        if code.trim().is_empty() {
            return Err(FieldViolations::single("code", "is required").into());
        }
        let recovery_codes = self
            .identity
            .regenerate_recovery_codes(caller, &code)
            .await?;
        Ok(Response::new(wire::RegenerateRecoveryCodesResponse {
            recovery_codes,
        }))
    }

    async fn create_invitation(
        &self,
        request: Request<wire::CreateInvitationRequest>,
    ) -> Result<Response<wire::Invitation>, Status> {
        let caller = caller(&request)?;
        let Some(invitation) = request.get_ref().invitation.clone() else {
            return Err(FieldViolations::single("invitation", "is required").into());
        };
        let mut violations = FieldViolations::new();
        let email = convert::email(&mut violations, "invitation.email", &invitation.email);
        let role = role_from_proto(invitation.role);
        if role.is_none() {
            violations.add(
                "invitation.role",
                "is required: OWNER, ADMIN, MEMBER or VIEWER",
            );
        }
        if invitation.message.chars().count() > 500 {
            violations.add("invitation.message", "must be at most 500 characters");
        }
        let ttl = invitation
            .ttl
            .map(|ttl| chrono::Duration::seconds(ttl.seconds));
        let ttl = violations.check("invitation.ttl", check_ttl(ttl));
        let (Some(email), Some(role), Some(ttl)) = (email, role, ttl) else {
            return Err(violations.into());
        };
        violations.into_result()?;
        let created = self
            .identity
            .create_invitation(
                caller,
                NewInvitationRequest {
                    email,
                    role,
                    message: invitation.message.trim().to_owned(),
                    ttl,
                },
            )
            .await?;
        Ok(Response::new(convert::invitation_to_proto(&created)))
    }

    async fn list_invitations(
        &self,
        request: Request<wire::ListInvitationsRequest>,
    ) -> Result<Response<wire::ListInvitationsResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let page_size = page_size(&mut violations, message.page_size);
        let state = match wire::InvitationState::try_from(message.state) {
            Ok(wire::InvitationState::Unspecified) => None,
            Ok(wire::InvitationState::Pending) => Some("pending"),
            Ok(wire::InvitationState::Accepted) => Some("accepted"),
            Ok(wire::InvitationState::Revoked) => Some("revoked"),
            Ok(wire::InvitationState::Expired) => Some("expired"),
            Err(_) => {
                violations.add("state", "is not a known state");
                None
            }
        };
        let filter = state.unwrap_or("any");
        let before = id_page_position(&mut violations, &message.page_token, filter);
        violations.into_result()?;
        let (invitations, next) = self
            .identity
            .list_invitations(caller, page_size, before, state)
            .await?;
        let next_page_token = id_page_token(filter, next);
        Ok(Response::new(wire::ListInvitationsResponse {
            invitations: invitations
                .iter()
                .map(convert::invitation_to_proto)
                .collect(),
            next_page_token,
        }))
    }

    async fn revoke_invitation(
        &self,
        request: Request<wire::RevokeInvitationRequest>,
    ) -> Result<Response<wire::Invitation>, Status> {
        let caller = caller(&request)?;
        let mut violations = FieldViolations::new();
        let id = convert::resource_id(
            &mut violations,
            "name",
            &request.get_ref().name,
            "invitations",
        );
        let Some(id) = id else {
            return Err(violations.into());
        };
        let revoked = self.identity.revoke_invitation(caller, id).await?;
        Ok(Response::new(convert::invitation_to_proto(&revoked)))
    }

    async fn accept_invitation(
        &self,
        request: Request<wire::AcceptInvitationRequest>,
    ) -> Result<Response<wire::AcceptInvitationResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let token = convert::token(&mut violations, "token", &message.token);
        let password = convert::entered_password(&mut violations, "password", &message.password);
        let display_name = if message.display_name.trim().is_empty() {
            None
        } else {
            violations.check("display_name", PersonName::parse(&message.display_name))
        };
        violations.into_result()?;
        let accepted = self
            .identity
            .accept_invitation(caller, &token, display_name, &password)
            .await?;
        Ok(Response::new(wire::AcceptInvitationResponse {
            user: Some(convert::user_to_proto(&accepted.user)),
            member: Some(convert::member_to_proto(&accepted.member)),
            new_user: accepted.new_user,
        }))
    }

    async fn list_members(
        &self,
        request: Request<wire::ListMembersRequest>,
    ) -> Result<Response<wire::ListMembersResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let page_size = page_size(&mut violations, message.page_size);
        let role = match message.role {
            0 => None,
            value => {
                let role = role_from_proto(value);
                if role.is_none() {
                    violations.add("role", "is not a known role");
                }
                role
            }
        };
        let filter = role.map_or("any", |role| role.as_str());
        let after =
            decode_page_position(&mut violations, &message.page_token, filter, |position| {
                let (time, user) = position.split_once('|')?;
                Some((
                    chrono::DateTime::parse_from_rfc3339(time)
                        .ok()?
                        .with_timezone(&chrono::Utc),
                    uuid::Uuid::try_parse(user).ok()?,
                ))
            });
        violations.into_result()?;
        let (members, next) = self
            .identity
            .list_members(caller, page_size, after, role)
            .await?;
        let next_page_token = next
            .map(|(time, user)| encode_page_token(filter, &format!("{}|{user}", time.to_rfc3339())))
            .unwrap_or_default();
        Ok(Response::new(wire::ListMembersResponse {
            members: members.iter().map(convert::member_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_member(
        &self,
        request: Request<wire::GetMemberRequest>,
    ) -> Result<Response<wire::Member>, Status> {
        let caller = caller(&request)?;
        let mut violations = FieldViolations::new();
        let id = convert::resource_id(&mut violations, "name", &request.get_ref().name, "members");
        let Some(id) = id else {
            return Err(violations.into());
        };
        let member = self.identity.get_member(caller, UserId::from(id)).await?;
        Ok(Response::new(convert::member_to_proto(&member)))
    }

    async fn update_member(
        &self,
        request: Request<wire::UpdateMemberRequest>,
    ) -> Result<Response<wire::Member>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let Some(member) = &message.member else {
            return Err(FieldViolations::single("member", "is required").into());
        };
        let mut violations = FieldViolations::new();
        let id = convert::resource_id(&mut violations, "member.name", &member.name, "members");
        let paths = message
            .update_mask
            .as_ref()
            .map(|mask| mask.paths.clone())
            .unwrap_or_default();
        if paths != ["role"] {
            violations.add(
                "update_mask",
                "must be exactly [\"role\"], the one field that changes",
            );
        }
        let role = role_from_proto(member.role);
        if role.is_none() {
            violations.add("member.role", "is required: OWNER, ADMIN, MEMBER or VIEWER");
        }
        let expected_version = if member.etag.is_empty() {
            None
        } else {
            violations.check(
                "member.etag",
                member
                    .etag
                    .parse::<i64>()
                    .map_err(|_| "is not an etag this service issued"),
            )
        };
        let (Some(id), Some(role)) = (id, role) else {
            return Err(violations.into());
        };
        violations.into_result()?;
        let updated = self
            .identity
            .update_member_role(caller, UserId::from(id), role, expected_version)
            .await?;
        Ok(Response::new(convert::member_to_proto(&updated)))
    }

    async fn remove_member(
        &self,
        request: Request<wire::RemoveMemberRequest>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        let caller = caller(&request)?;
        let mut violations = FieldViolations::new();
        let id = convert::resource_id(&mut violations, "name", &request.get_ref().name, "members");
        let Some(id) = id else {
            return Err(violations.into());
        };
        self.identity
            .remove_member(caller, UserId::from(id))
            .await?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn create_api_key(
        &self,
        request: Request<wire::CreateApiKeyRequest>,
    ) -> Result<Response<wire::CreateApiKeyResponse>, Status> {
        let caller = caller(&request)?;
        let Some(key) = request.get_ref().api_key.clone() else {
            return Err(FieldViolations::single("api_key", "is required").into());
        };
        let mut violations = FieldViolations::new();
        let display_name = key.display_name.trim().to_owned();
        if display_name.is_empty()
            || display_name.chars().count() > 100
            || display_name.chars().any(char::is_control)
        {
            violations.add(
                "api_key.display_name",
                "must be 1 to 100 characters, without control characters",
            );
        }
        let role = match key.role {
            0 => None,
            value => {
                let role = role_from_proto(value);
                if role.is_none() {
                    violations.add("api_key.role", "is not a known role");
                }
                role
            }
        };
        let scopes = parse_scopes(&mut violations, &key.scopes);
        let expires_at = key.expire_time.as_ref().and_then(convert::from_timestamp);
        if key.expire_time.is_some()
            && expires_at.is_none_or(|expires_at| expires_at <= chrono::Utc::now())
        {
            violations.add("api_key.expire_time", "must be in the future");
        }
        violations.into_result()?;
        let (created, secret) = self
            .identity
            .create_api_key(
                caller,
                NewApiKeyRequest {
                    display_name,
                    role,
                    scopes,
                    expires_at,
                },
            )
            .await?;
        Ok(Response::new(wire::CreateApiKeyResponse {
            api_key: Some(convert::api_key_to_proto(&created)),
            secret: secret.expose_secret().to_owned(),
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<wire::ListApiKeysRequest>,
    ) -> Result<Response<wire::ListApiKeysResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let page_size = page_size(&mut violations, message.page_size);
        let state = match wire::ApiKeyState::try_from(message.state) {
            Ok(wire::ApiKeyState::Unspecified) => None,
            Ok(wire::ApiKeyState::Active) => Some("active"),
            Ok(wire::ApiKeyState::Revoked) => Some("revoked"),
            Ok(wire::ApiKeyState::Expired) => Some("expired"),
            Err(_) => {
                violations.add("state", "is not a known state");
                None
            }
        };
        let filter = state.unwrap_or("any");
        let before = id_page_position(&mut violations, &message.page_token, filter);
        violations.into_result()?;
        let (keys, next) = self
            .identity
            .list_api_keys(caller, page_size, before, state)
            .await?;
        let next_page_token = id_page_token(filter, next);
        Ok(Response::new(wire::ListApiKeysResponse {
            api_keys: keys.iter().map(convert::api_key_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_api_key(
        &self,
        request: Request<wire::GetApiKeyRequest>,
    ) -> Result<Response<wire::ApiKey>, Status> {
        let caller = caller(&request)?;
        let mut violations = FieldViolations::new();
        let id = convert::resource_id(&mut violations, "name", &request.get_ref().name, "apiKeys");
        let Some(id) = id else {
            return Err(violations.into());
        };
        let key = self.identity.get_api_key(caller, id).await?;
        Ok(Response::new(convert::api_key_to_proto(&key)))
    }

    async fn revoke_api_key(
        &self,
        request: Request<wire::RevokeApiKeyRequest>,
    ) -> Result<Response<wire::ApiKey>, Status> {
        let caller = caller(&request)?;
        let mut violations = FieldViolations::new();
        let id = convert::resource_id(&mut violations, "name", &request.get_ref().name, "apiKeys");
        let Some(id) = id else {
            return Err(violations.into());
        };
        let key = self.identity.revoke_api_key(caller, id).await?;
        Ok(Response::new(convert::api_key_to_proto(&key)))
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
        request: Request<wire::VerifyApiKeyRequest>,
    ) -> Result<Response<wire::VerifyApiKeyResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let mut violations = FieldViolations::new();
        let secret = convert::token(&mut violations, "secret", &message.secret);
        let tenant = if message.tenant_id.is_empty() {
            None
        } else {
            violations.check("tenant_id", TenantId::parse(&message.tenant_id))
        };
        violations.into_result()?;
        let verified = self
            .identity
            .verify_api_key(caller, &secret, tenant)
            .await?;
        Ok(Response::new(wire::VerifyApiKeyResponse {
            tenant_id: verified.key.tenant_id.to_string(),
            api_key: Some(convert::api_key_to_proto(&verified.key)),
            permissions: verified
                .permissions
                .iter()
                .map(|permission| permission.as_str().to_owned())
                .collect(),
            access_token: verified.token.token,
            access_token_expire_time: Some(convert::timestamp(verified.token.expires_at)),
        }))
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
