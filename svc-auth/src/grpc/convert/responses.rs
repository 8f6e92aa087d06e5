//! Domain -> wire: what the handlers answer. Users, members and invitations take the wire
//! form their events carry, built in `events`.

use chrono::Utc;
use jsonwebtoken::jwk::JwkSet;
use platform::context::{Permission, Role};
use platform::paging::encode_page_token;
use platform::wire::{resource_name, timestamp};
use proto::formflow::auth::v1 as wire;
use secrecy::ExposeSecret;

use super::{api_key_filter, invitation_filter, member_filter};
use crate::domain::{ApiKey, ApiKeyState, InvitationState};
use crate::keys::{ALGORITHM, SigningKeyInfo};
use crate::operations::{
    AcceptedInvitation, ApiKeyPage, CreatedApiKey, Enrolment, InvitationPage, IssuedToken,
    LoginOutcome, Me, MemberPage, MemberPosition, SessionTokens, SignedUp, VerifiedApiKey,
};

pub use crate::events::{invitation_to_proto, member_to_proto, role_to_proto, user_to_proto};

/// The key set on the wire; its proto3 JSON is the standard JWKS JSON.
pub fn jwks_to_proto(jwks: &JwkSet) -> anyhow::Result<wire::JsonWebKeySet> {
    let json = serde_json::to_value(jwks)?;
    Ok(serde_json::from_value(json)?)
}

/// A signing key on the wire.
pub fn signing_key_to_proto(key: &SigningKeyInfo) -> wire::SigningKey {
    let state = if key.active {
        wire::SigningKeyState::Active
    } else {
        wire::SigningKeyState::Retired
    };
    wire::SigningKey {
        name: resource_name("signingKeys", &key.kid),
        kid: key.kid.clone(),
        alg: ALGORITHM.to_owned(),
        state: state as i32,
        create_time: Some(timestamp(key.created_at)),
        retire_time: key.retired_at.map(timestamp),
    }
}

/// Session tokens on the wire.
pub fn tokens_to_proto(tokens: &SessionTokens) -> wire::AuthTokens {
    wire::AuthTokens {
        access_token: tokens.access_token.clone(),
        token_type: "Bearer".to_owned(),
        access_token_expire_time: Some(timestamp(tokens.access_expires_at)),
        refresh_token: tokens.refresh_token.expose_secret().to_owned(),
        refresh_token_expire_time: Some(timestamp(tokens.refresh_expires_at)),
        session_id: tokens.session_id.to_string(),
    }
}

/// What SignUp answers.
pub fn signed_up_to_proto(signed_up: SignedUp) -> wire::SignUpResponse {
    wire::SignUpResponse {
        user: Some(user_to_proto(&signed_up.user)),
        member: Some(member_to_proto(&signed_up.member)),
        tokens: Some(tokens_to_proto(&signed_up.tokens)),
        tenant: Some(signed_up.tenant),
    }
}

/// What Login answers: tokens, or the challenge of the second step.
pub fn login_to_proto(outcome: &LoginOutcome) -> wire::LoginResponse {
    match outcome {
        LoginOutcome::Tokens(tokens) => logged_in_to_proto(tokens),
        LoginOutcome::TwoFactor {
            challenge,
            expires_at,
        } => wire::LoginResponse {
            requires_two_factor: true,
            challenge: challenge.expose_secret().to_owned(),
            challenge_expire_time: Some(timestamp(*expires_at)),
            tokens: None,
        },
    }
}

/// What a completed login answers.
pub fn logged_in_to_proto(tokens: &SessionTokens) -> wire::LoginResponse {
    wire::LoginResponse {
        tokens: Some(tokens_to_proto(tokens)),
        ..wire::LoginResponse::default()
    }
}

/// What GetMe answers.
pub fn me_to_proto(me: &Me) -> wire::GetMeResponse {
    wire::GetMeResponse {
        user: Some(user_to_proto(&me.user)),
        tenant_id: me
            .member
            .as_ref()
            .map(|member| member.tenant_id.to_string())
            .unwrap_or_default(),
        member: me.member.as_ref().map(member_to_proto),
        permissions: permission_names(&me.permissions),
        session_id: me.session_id.to_string(),
    }
}

/// A count of revoked sessions on the wire.
pub fn session_count(revoked: usize) -> i32 {
    i32::try_from(revoked).unwrap_or(i32::MAX)
}

/// What EnrolTotp answers.
pub fn enrolment_to_proto(enrolment: &Enrolment) -> wire::EnrolTotpResponse {
    wire::EnrolTotpResponse {
        secret: enrolment.secret.expose_secret().to_owned(),
        otpauth_uri: enrolment.otpauth_uri.expose_secret().to_owned(),
        expire_time: Some(timestamp(enrolment.expires_at)),
    }
}

/// A page of invitations filtered by `state`.
pub fn invitation_page_to_proto(
    page: &InvitationPage,
    state: Option<InvitationState>,
) -> wire::ListInvitationsResponse {
    wire::ListInvitationsResponse {
        invitations: page.invitations.iter().map(invitation_to_proto).collect(),
        next_page_token: page
            .next_before
            .map(|last| encode_page_token(invitation_filter(state), &last.to_string()))
            .unwrap_or_default(),
    }
}

/// What AcceptInvitation answers.
pub fn accepted_to_proto(accepted: &AcceptedInvitation) -> wire::AcceptInvitationResponse {
    wire::AcceptInvitationResponse {
        user: Some(user_to_proto(&accepted.user)),
        member: Some(member_to_proto(&accepted.member)),
        new_user: accepted.new_user,
    }
}

/// A page of members filtered by `role`.
pub fn member_page_to_proto(page: &MemberPage, role: Option<Role>) -> wire::ListMembersResponse {
    wire::ListMembersResponse {
        members: page.members.iter().map(member_to_proto).collect(),
        next_page_token: member_page_token(role, page.next_after),
    }
}

/// The token of the page of members after `after`, bound to the role filter; empty at the end.
pub fn member_page_token(role: Option<Role>, after: Option<MemberPosition>) -> String {
    after
        .map(|after| {
            let position = format!("{}|{}", after.joined_at.to_rfc3339(), after.user_id);
            encode_page_token(member_filter(role), &position)
        })
        .unwrap_or_default()
}

/// An API key on the wire as it stands now (never its secret).
pub fn api_key_to_proto(key: &ApiKey) -> wire::ApiKey {
    let state = match key.state_at(Utc::now()) {
        ApiKeyState::Active => wire::ApiKeyState::Active,
        ApiKeyState::Revoked => wire::ApiKeyState::Revoked,
        ApiKeyState::Expired => wire::ApiKeyState::Expired,
    };
    wire::ApiKey {
        name: resource_name("apiKeys", key.id),
        id: key.id.to_string(),
        display_name: key.display_name.as_str().to_owned(),
        role: role_to_proto(key.role) as i32,
        scopes: permission_names(&key.scopes),
        secret_prefix: key.secret_prefix.clone(),
        state: state as i32,
        creator: resource_name("users", key.creator_id),
        expire_time: key.expires_at.map(timestamp),
        last_use_time: key.last_used_at.map(timestamp),
        create_time: Some(timestamp(key.created_at)),
        revoke_time: key.revoked_at.map(timestamp),
    }
}

/// What CreateApiKey answers: the key and, this once, its secret.
pub fn created_api_key_to_proto(created: &CreatedApiKey) -> wire::CreateApiKeyResponse {
    wire::CreateApiKeyResponse {
        api_key: Some(api_key_to_proto(&created.key)),
        secret: created.secret.expose_secret().to_owned(),
    }
}

/// A page of API keys filtered by `state`.
pub fn api_key_page_to_proto(
    page: &ApiKeyPage,
    state: Option<ApiKeyState>,
) -> wire::ListApiKeysResponse {
    wire::ListApiKeysResponse {
        api_keys: page.keys.iter().map(api_key_to_proto).collect(),
        next_page_token: page
            .next_before
            .map(|last| encode_page_token(api_key_filter(state), &last.to_string()))
            .unwrap_or_default(),
    }
}

/// What VerifyApiKey answers.
pub fn verified_api_key_to_proto(verified: &VerifiedApiKey) -> wire::VerifyApiKeyResponse {
    wire::VerifyApiKeyResponse {
        tenant_id: verified.key.tenant_id.to_string(),
        api_key: Some(api_key_to_proto(&verified.key)),
        permissions: permission_names(&verified.permissions),
        access_token: verified.token.token.clone(),
        access_token_expire_time: Some(timestamp(verified.token.expires_at)),
    }
}

/// What IssueServiceToken answers.
pub fn service_token_to_proto(issued: IssuedToken) -> wire::IssueServiceTokenResponse {
    wire::IssueServiceTokenResponse {
        access_token: issued.token,
        token_type: "Bearer".to_owned(),
        expire_time: Some(timestamp(issued.expires_at)),
    }
}

fn permission_names(permissions: &[Permission]) -> Vec<String> {
    permissions
        .iter()
        .map(|permission| permission.as_str().to_owned())
        .collect()
}
