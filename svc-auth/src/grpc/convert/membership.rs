//! Wire -> domain for who belongs to a tenant: invitations and members, their roles, and the
//! positions their page tokens carry.

use chrono::{DateTime, Utc};
use platform::context::{Role, UserId};
use platform::error::FieldViolations;
use platform::paging::{decode_page_position, page_size};
use platform::wire as wire_helpers;
use proto::formflow::auth::v1 as wire;
use secrecy::SecretString;

use super::requests::{email, entered_password, id_position, token};
use super::{invitation_filter, member_filter};
use crate::domain::{InvitationId, InvitationState, PersonName, invitation_ttl};
use crate::operations::{MemberPosition, NewInvitationRequest};

/// Longest invitation note.
const MAX_INVITATION_MESSAGE: usize = 500;

/// Validates CreateInvitation.
pub fn new_invitation(
    request: &wire::CreateInvitationRequest,
) -> Result<NewInvitationRequest, FieldViolations> {
    let Some(invitation) = &request.invitation else {
        return Err(FieldViolations::single("invitation", "is required"));
    };
    let mut violations = FieldViolations::new();
    let email = email(&mut violations, "invitation.email", &invitation.email);
    let role = required_role(&mut violations, "invitation.role", invitation.role);
    if invitation.message.chars().count() > MAX_INVITATION_MESSAGE {
        violations.add(
            "invitation.message",
            format!("must be at most {MAX_INVITATION_MESSAGE} characters"),
        );
    }
    let ttl = match &invitation.ttl {
        Some(ttl) => match chrono::Duration::try_seconds(ttl.seconds) {
            Some(ttl) => violations.check("invitation.ttl", invitation_ttl(Some(ttl))),
            None => {
                violations.add("invitation.ttl", "must be between 1 hour and 30 days");
                None
            }
        },
        None => violations.check("invitation.ttl", invitation_ttl(None)),
    };
    match (email, role, ttl) {
        (Some(email), Some(role), Some(ttl)) if violations.is_empty() => Ok(NewInvitationRequest {
            email,
            role,
            message: invitation.message.trim().to_owned(),
            ttl,
        }),
        _ => Err(violations),
    }
}

/// Validates ListInvitations into (page size, before, state).
pub fn invitation_listing(
    request: &wire::ListInvitationsRequest,
) -> Result<(usize, Option<InvitationId>, Option<InvitationState>), FieldViolations> {
    let mut violations = FieldViolations::new();
    let page_size = page_size(&mut violations, request.page_size);
    let state = wire_helpers::enum_filter(
        &mut violations,
        "state",
        request.state,
        invitation_state_from_proto,
    );
    let before = id_position(
        &mut violations,
        &request.page_token,
        invitation_filter(state),
    );
    violations.into_result()?;
    Ok((page_size, before, state))
}

/// Validates AcceptInvitation into the token, the name for a new account and the password.
pub fn accept_invitation(
    request: &wire::AcceptInvitationRequest,
) -> Result<(SecretString, Option<PersonName>, SecretString), FieldViolations> {
    let mut violations = FieldViolations::new();
    let invitation_token = token(&mut violations, "token", &request.token);
    let password = entered_password(&mut violations, "password", &request.password);
    let display_name = if request.display_name.trim().is_empty() {
        None
    } else {
        violations.check("display_name", PersonName::parse(&request.display_name))
    };
    violations.into_result()?;
    Ok((invitation_token, display_name, password))
}

/// Validates ListMembers into (page size, after, role).
pub fn member_listing(
    request: &wire::ListMembersRequest,
) -> Result<(usize, Option<MemberPosition>, Option<Role>), FieldViolations> {
    let mut violations = FieldViolations::new();
    let page_size = page_size(&mut violations, request.page_size);
    let role = wire_helpers::enum_filter(&mut violations, "role", request.role, role_from_proto);
    let after = decode_page_position(
        &mut violations,
        &request.page_token,
        member_filter(role),
        parse_member_position,
    );
    violations.into_result()?;
    Ok((page_size, after, role))
}

/// Validates UpdateMember into (member, new role, expected version). The role is the one
/// field that changes.
pub fn member_update(
    request: &wire::UpdateMemberRequest,
) -> Result<(UserId, Role, Option<i64>), FieldViolations> {
    let Some(member) = &request.member else {
        return Err(FieldViolations::single("member", "is required"));
    };
    let mut violations = FieldViolations::new();
    let user = member_name(&mut violations, "member.name", &member.name);
    if wire_helpers::mask_paths(request.update_mask.as_ref()) != ["role"] {
        violations.add(
            "update_mask",
            "must be exactly [\"role\"], the one field that changes",
        );
    }
    let role = required_role(&mut violations, "member.role", member.role);
    let expected_version =
        wire_helpers::expected_version(&mut violations, "member.etag", &member.etag);
    match (user, role) {
        (Some(user), Some(role)) if violations.is_empty() => Ok((user, role, expected_version)),
        _ => Err(violations),
    }
}

/// Validates a request that names a member, `members/{user}`.
pub fn member_name_only(name: &str) -> Result<UserId, FieldViolations> {
    let mut violations = FieldViolations::new();
    member_name(&mut violations, "name", name).ok_or(violations)
}

/// Validates a request that names an invitation, `invitations/{id}`.
pub fn invitation_name_only(name: &str) -> Result<InvitationId, FieldViolations> {
    let mut violations = FieldViolations::new();
    wire_helpers::parse_resource_name(&mut violations, "name", name, "invitations")
        .ok_or(violations)
}

/// A role from the wire; `None` for UNSPECIFIED.
pub fn role_from_proto(role: wire::Role) -> Option<Role> {
    match role {
        wire::Role::Owner => Some(Role::Owner),
        wire::Role::Admin => Some(Role::Admin),
        wire::Role::Member => Some(Role::Member),
        wire::Role::Viewer => Some(Role::Viewer),
        wire::Role::Unspecified => None,
    }
}

fn invitation_state_from_proto(state: wire::InvitationState) -> Option<InvitationState> {
    match state {
        wire::InvitationState::Unspecified => None,
        wire::InvitationState::Pending => Some(InvitationState::Pending),
        wire::InvitationState::Accepted => Some(InvitationState::Accepted),
        wire::InvitationState::Revoked => Some(InvitationState::Revoked),
        wire::InvitationState::Expired => Some(InvitationState::Expired),
    }
}

/// A required role field: a violation for UNSPECIFIED and unknown values.
fn required_role(violations: &mut FieldViolations, field: &str, value: i32) -> Option<Role> {
    let role = wire::Role::try_from(value).ok().and_then(role_from_proto);
    if role.is_none() {
        violations.add(field, "is required: OWNER, ADMIN, MEMBER or VIEWER");
    }
    role
}

/// The user a resource name `members/{user}` names.
fn member_name(violations: &mut FieldViolations, field: &str, name: &str) -> Option<UserId> {
    wire_helpers::parse_resource_name(violations, field, name, "members")
}

/// The position `{joined_at}|{user}` a page token of members carries.
fn parse_member_position(position: &str) -> Option<MemberPosition> {
    let (time, user) = position.split_once('|')?;
    Some(MemberPosition {
        joined_at: DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc),
        user_id: UserId::parse(user).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::events::role_to_proto;

    #[test]
    fn the_published_limits_are_the_enforced_ones() {
        let limits = proto::published_limits("formflow.auth.v1.Invitation", "message");
        assert_eq!(limits.max_length as usize, MAX_INVITATION_MESSAGE);
    }

    #[test]
    fn roles_round_trip_through_the_wire() {
        for role in [Role::Owner, Role::Admin, Role::Member, Role::Viewer] {
            assert_eq!(role_from_proto(role_to_proto(role)), Some(role));
        }
        let mut violations = FieldViolations::new();
        assert_eq!(required_role(&mut violations, "role", 0), None);
        assert_eq!(required_role(&mut violations, "role", 42), None);
        assert_eq!(violations.violations().len(), 2);
    }

    #[test]
    fn invitation_lifetimes_out_of_any_range_are_violations_not_panics() {
        let request = wire::CreateInvitationRequest {
            invitation: Some(wire::Invitation {
                email: "linus@example.com".into(),
                role: wire::Role::Viewer as i32,
                ttl: Some(pbjson_types::Duration {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                ..Default::default()
            }),
        };
        assert_eq!(
            new_invitation(&request).unwrap_err().fields(),
            ["invitation.ttl"]
        );
    }

    #[test]
    fn member_page_tokens_round_trip_within_their_role_filter() {
        let position = MemberPosition {
            joined_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            user_id: UserId::generate(),
        };
        let token = crate::grpc::convert::member_page_token(Some(Role::Admin), Some(position));
        let request = |role: wire::Role| wire::ListMembersRequest {
            page_size: 10,
            page_token: token.clone(),
            role: role as i32,
        };
        let (_, after, role) = member_listing(&request(wire::Role::Admin)).unwrap();
        assert_eq!((after, role), (Some(position), Some(Role::Admin)));
        let violations = member_listing(&request(wire::Role::Viewer)).unwrap_err();
        assert_eq!(violations.fields(), ["page_token"]);
    }

    #[test]
    fn update_masks_name_the_role_and_nothing_else() {
        let request = |paths: &[&str]| wire::UpdateMemberRequest {
            member: Some(wire::Member {
                name: format!("members/{}", UserId::generate()),
                role: wire::Role::Admin as i32,
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: paths.iter().map(|path| (*path).to_owned()).collect(),
            }),
        };
        assert!(member_update(&request(&["role"])).is_ok());
        for paths in [&[][..], &["role", "email"], &["email"]] {
            let violations = member_update(&request(paths)).unwrap_err();
            assert_eq!(violations.fields(), ["update_mask"], "{paths:?}");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,300}", number in proptest::num::i32::ANY) {
            let _ = member_listing(&wire::ListMembersRequest {
                page_size: number,
                page_token: text.clone(),
                role: number,
            });
            let _ = invitation_listing(&wire::ListInvitationsRequest {
                page_size: number,
                page_token: text.clone(),
                state: number,
            });
            let _ = member_name_only(&text);
            let _ = invitation_name_only(&text);
        }
    }
}
