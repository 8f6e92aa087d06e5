//! Wire <-> domain conversions shared by the handlers.

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use platform::error::FieldViolations;
use proto::formflow::auth::v1 as wire;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{Email, check_entered_password, role_to_proto};
use crate::error::Error;
use crate::identity::{SessionTokens, api_key_state, invitation_state};
use crate::keys::{ALGORITHM, SigningKeyInfo};
use crate::store::{ApiKeyRow, InvitationRow, MemberRow, UserRow};

/// A timestamp on the wire.
pub fn timestamp(time: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The key set on the wire; its proto3 JSON is the standard JWKS JSON.
pub fn jwks_to_proto(jwks: &JwkSet) -> Result<wire::JsonWebKeySet, Error> {
    let json = serde_json::to_value(jwks).map_err(anyhow::Error::from)?;
    serde_json::from_value(json).map_err(|error| Error::Unexpected(error.into()))
}

/// A signing key on the wire.
pub fn signing_key_to_proto(key: &SigningKeyInfo) -> wire::SigningKey {
    wire::SigningKey {
        name: format!("signingKeys/{}", key.kid),
        kid: key.kid.clone(),
        alg: ALGORITHM.to_owned(),
        state: if key.active {
            wire::SigningKeyState::Active
        } else {
            wire::SigningKeyState::Retired
        } as i32,
        create_time: Some(timestamp(key.created_at)),
        retire_time: key.retired_at.map(timestamp),
    }
}

/// A user on the wire.
pub fn user_to_proto(user: &UserRow) -> wire::User {
    wire::User {
        name: format!("users/{}", user.id),
        id: user.id.to_string(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        two_factor_enabled: user.two_factor_enabled(),
        platform_admin: user.platform_admin,
        last_login_time: user.last_login_at.map(timestamp),
        create_time: Some(timestamp(user.created_at)),
        update_time: Some(timestamp(user.updated_at)),
    }
}

/// A membership on the wire.
pub fn member_to_proto(member: &MemberRow) -> wire::Member {
    wire::Member {
        name: format!("members/{}", member.user_id),
        user: format!("users/{}", member.user_id),
        email: member.email.clone(),
        display_name: member.display_name.clone(),
        role: role_to_proto(member.role()) as i32,
        create_time: Some(timestamp(member.created_at)),
        update_time: Some(timestamp(member.updated_at)),
        etag: member.version.to_string(),
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

/// Checks an email field.
pub fn email(violations: &mut FieldViolations, field: &str, text: &str) -> Option<Email> {
    violations.check(field, Email::parse(text))
}

/// Checks a password someone types to prove who they are.
pub fn entered_password(violations: &mut FieldViolations, field: &str, text: &str) -> SecretString {
    let password = SecretString::from(text.to_owned());
    if let Err(reason) = check_entered_password(&password) {
        violations.add(field, reason);
    }
    password
}

/// Checks a required secret token field (refresh token, challenge, invitation or reset token).
pub fn token(violations: &mut FieldViolations, field: &str, text: &str) -> SecretString {
    if text.is_empty() || text.len() > 200 {
        violations.add(field, "must be the token this service issued");
    }
    SecretString::from(text.to_owned())
}

/// An invitation on the wire (never its token).
pub fn invitation_to_proto(invitation: &InvitationRow) -> wire::Invitation {
    let state = match invitation_state(invitation) {
        "pending" => wire::InvitationState::Pending,
        "accepted" => wire::InvitationState::Accepted,
        "expired" => wire::InvitationState::Expired,
        _ => wire::InvitationState::Revoked,
    };
    wire::Invitation {
        name: format!("invitations/{}", invitation.id),
        id: invitation.id.to_string(),
        email: invitation.email.clone(),
        role: role_to_proto(invitation.role()) as i32,
        message: invitation.message.clone(),
        state: state as i32,
        inviter: format!("users/{}", invitation.inviter_id),
        ttl: None,
        expire_time: Some(timestamp(invitation.expires_at)),
        create_time: Some(timestamp(invitation.created_at)),
        close_time: invitation.closed_at.map(timestamp),
        accepted_by: invitation
            .accepted_by
            .map(|user| format!("users/{user}"))
            .unwrap_or_default(),
    }
}

/// An API key on the wire (never its secret).
pub fn api_key_to_proto(key: &ApiKeyRow) -> wire::ApiKey {
    let state = match api_key_state(key) {
        "revoked" => wire::ApiKeyState::Revoked,
        "expired" => wire::ApiKeyState::Expired,
        _ => wire::ApiKeyState::Active,
    };
    wire::ApiKey {
        name: format!("apiKeys/{}", key.id),
        id: key.id.to_string(),
        display_name: key.display_name.clone(),
        role: role_to_proto(key.role()) as i32,
        scopes: key.scopes.clone(),
        secret_prefix: key.secret_prefix.clone(),
        state: state as i32,
        creator: format!("users/{}", key.creator_id),
        expire_time: key.expires_at.map(timestamp),
        last_use_time: key.last_used_at.map(timestamp),
        create_time: Some(timestamp(key.created_at)),
        revoke_time: key.revoked_at.map(timestamp),
    }
}

/// The id of a resource name `{collection}/{uuid}`.
pub fn resource_id(
    violations: &mut FieldViolations,
    field: &str,
    name: &str,
    collection: &str,
) -> Option<uuid::Uuid> {
    let id = name
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|id| uuid::Uuid::try_parse(id).ok());
    if id.is_none() {
        violations.add(
            field,
            format!("must be a resource name, {collection}/{{uuid}}"),
        );
    }
    id
}

/// A timestamp from the wire.
pub fn from_timestamp(time: &pbjson_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).ok()?)
}
