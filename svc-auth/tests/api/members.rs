//! Invitations, members and roles, with the last-owner rule and cross-tenant attempts.

use std::time::Duration;

use platform::amqp::{Consumer, Outcome};
use platform::context::TenantId;
use platform::testing::{CallMetadata, error_reason};
use proto::formflow::auth::v1 as wire;
use tonic::Code;

use crate::helpers::{Auth, PASSWORD, TestApp, tenant_of};

fn invitation(email: &str, role: wire::Role) -> wire::CreateInvitationRequest {
    wire::CreateInvitationRequest {
        invitation: Some(wire::Invitation {
            email: email.into(),
            role: role as i32,
            message: "Welcome aboard".into(),
            ..Default::default()
        }),
    }
}

/// The invitation tokens the events carry, in order.
async fn invitation_tokens(consumer: &mut Consumer, count: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    while tokens.len() < count {
        tokio::time::timeout(
            Duration::from_secs(20),
            consumer.process_next(|delivery| {
                let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
                tokens.push(body["data"]["token"].as_str().unwrap().to_owned());
                async { Outcome::Done }
            }),
        )
        .await
        .expect("an invitation event")
        .unwrap();
    }
    tokens
}

fn member_name(response: &wire::SignUpResponse) -> String {
    response.member.as_ref().unwrap().name.clone()
}

#[tokio::test]
async fn invitations_add_new_and_existing_accounts_with_their_role() {
    let app = TestApp::spawn().await;
    let mut events = Consumer::start(
        &app.infra.amqp,
        "test",
        "test.invitations",
        &["auth.invitation.created.#"],
        10,
    )
    .await
    .unwrap();
    let owner = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&owner);
    let owner_client = app.auth_with(&owner.tokens.as_ref().unwrap().access_token);
    let grace_elsewhere = app.sign_up("globex", "grace@example.com").await;

    let new_person = owner_client
        .clone()
        .create_invitation(invitation("Linus@Example.com", wire::Role::Viewer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(new_person.email, "linus@example.com");
    assert_eq!(new_person.state(), wire::InvitationState::Pending);
    let duplicate = owner_client
        .clone()
        .create_invitation(invitation("linus@example.com", wire::Role::Admin))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    owner_client
        .clone()
        .create_invitation(invitation("grace@example.com", wire::Role::Admin))
        .await
        .unwrap();
    let tokens = invitation_tokens(&mut events, 2).await;

    // A new account registers with the token.
    let accepted = app
        .auth_public(Some(tenant))
        .accept_invitation(wire::AcceptInvitationRequest {
            token: tokens[0].clone(),
            display_name: "Linus".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(accepted.new_user);
    assert_eq!(accepted.member.unwrap().role(), wire::Role::Viewer);
    let linus = app
        .login(tenant, "linus@example.com", PASSWORD)
        .await
        .unwrap();
    assert!(linus.tokens.is_some());
    // A token works once.
    let again = app
        .auth_public(Some(tenant))
        .accept_invitation(wire::AcceptInvitationRequest {
            token: tokens[0].clone(),
            display_name: "Linus".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::Unauthenticated);

    // An existing account joins with its own password, not with a new one.
    let wrong = app
        .auth_public(Some(tenant))
        .accept_invitation(wire::AcceptInvitationRequest {
            token: tokens[1].clone(),
            display_name: String::new(),
            password: "another-Strong-pass-77".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);
    let joined = app
        .auth_public(Some(tenant))
        .accept_invitation(wire::AcceptInvitationRequest {
            token: tokens[1].clone(),
            display_name: String::new(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!joined.new_user);
    assert_eq!(joined.user.unwrap().id, grace_elsewhere.user.unwrap().id);

    let members = owner_client
        .clone()
        .list_members(wire::ListMembersRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members.members.len(), 2);
    let rest = owner_client
        .clone()
        .list_members(wire::ListMembersRequest {
            page_size: 2,
            page_token: members.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let emails: Vec<String> = members
        .members
        .iter()
        .chain(&rest.members)
        .map(|member| member.email.clone())
        .collect();
    assert_eq!(
        emails,
        ["ada@example.com", "linus@example.com", "grace@example.com"]
    );
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn only_admins_invite_and_only_owners_touch_owners() {
    let app = TestApp::spawn().await;
    let mut events = Consumer::start(
        &app.infra.amqp,
        "test",
        "test.invitations",
        &["auth.invitation.created.#"],
        10,
    )
    .await
    .unwrap();
    let owner = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&owner);
    let owner_client = app.auth_with(&owner.tokens.as_ref().unwrap().access_token);
    owner_client
        .clone()
        .create_invitation(invitation("admin@example.com", wire::Role::Admin))
        .await
        .unwrap();
    owner_client
        .clone()
        .create_invitation(invitation("member@example.com", wire::Role::Member))
        .await
        .unwrap();
    for token in invitation_tokens(&mut events, 2).await {
        app.auth_public(Some(tenant))
            .accept_invitation(wire::AcceptInvitationRequest {
                token,
                display_name: "Someone".into(),
                password: PASSWORD.into(),
            })
            .await
            .unwrap();
    }
    let admin = app.auth_with(
        &app.login(tenant, "admin@example.com", PASSWORD)
            .await
            .unwrap()
            .tokens
            .unwrap()
            .access_token,
    );
    let member = app.auth_with(
        &app.login(tenant, "member@example.com", PASSWORD)
            .await
            .unwrap()
            .tokens
            .unwrap()
            .access_token,
    );

    assert_eq!(
        member
            .clone()
            .create_invitation(invitation("x@example.com", wire::Role::Viewer))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        admin
            .clone()
            .create_invitation(invitation("x@example.com", wire::Role::Owner))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    admin
        .clone()
        .create_invitation(invitation("x@example.com", wire::Role::Viewer))
        .await
        .unwrap();

    let owner_member = member_name(&owner);
    let demote_owner = wire::UpdateMemberRequest {
        member: Some(wire::Member {
            name: owner_member.clone(),
            role: wire::Role::Admin as i32,
            ..Default::default()
        }),
        update_mask: Some(pbjson_types::FieldMask {
            paths: vec!["role".into()],
        }),
    };
    assert_eq!(
        admin
            .clone()
            .update_member(demote_owner.clone())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        owner_client
            .clone()
            .update_member(demote_owner.clone())
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition,
        "the last owner cannot be demoted"
    );
    assert_eq!(
        owner_client
            .clone()
            .remove_member(wire::RemoveMemberRequest {
                name: owner_member.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition,
        "nor removed"
    );

    // With a second owner, the first may step down.
    let members = owner_client
        .clone()
        .list_members(wire::ListMembersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .members;
    let admin_member = members
        .iter()
        .find(|member| member.email == "admin@example.com")
        .unwrap();
    let promoted = owner_client
        .clone()
        .update_member(wire::UpdateMemberRequest {
            member: Some(wire::Member {
                name: admin_member.name.clone(),
                role: wire::Role::Owner as i32,
                etag: admin_member.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["role".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(promoted.role(), wire::Role::Owner);
    let stale = owner_client
        .clone()
        .update_member(wire::UpdateMemberRequest {
            member: Some(wire::Member {
                name: admin_member.name.clone(),
                role: wire::Role::Viewer as i32,
                etag: admin_member.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["role".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    owner_client
        .clone()
        .update_member(demote_owner)
        .await
        .unwrap();
}

/// Ada's tenant, where Linus accepted an invitation with a role and logged in.
struct Team {
    app: TestApp,
    tenant: TenantId,
    /// Ada, the owner, through the gateway.
    owner_client: Auth,
    /// Linus's membership.
    member: wire::Member,
    /// Linus's session.
    tokens: wire::AuthTokens,
}

impl Team {
    async fn with_linus_as(role: wire::Role) -> Team {
        let app = TestApp::spawn().await;
        let mut events = Consumer::start(
            &app.infra.amqp,
            "test",
            "test.invitations",
            &["auth.invitation.created.#"],
            10,
        )
        .await
        .unwrap();
        let owner = app.sign_up("acme", "ada@example.com").await;
        let tenant = tenant_of(&owner);
        let owner_client = app.auth_with(&owner.tokens.as_ref().unwrap().access_token);
        owner_client
            .clone()
            .create_invitation(invitation("linus@example.com", role))
            .await
            .unwrap();
        let token = invitation_tokens(&mut events, 1).await.remove(0);
        let member = app
            .auth_public(Some(tenant))
            .accept_invitation(wire::AcceptInvitationRequest {
                token,
                display_name: "Linus".into(),
                password: PASSWORD.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .member
            .unwrap();
        let tokens = app
            .login(tenant, "linus@example.com", PASSWORD)
            .await
            .unwrap()
            .tokens
            .unwrap();
        Team {
            app,
            tenant,
            owner_client,
            member,
            tokens,
        }
    }
}

#[tokio::test]
async fn a_removed_member_loses_their_sessions() {
    let Team {
        app,
        tenant,
        owner_client,
        member,
        tokens: linus,
    } = Team::with_linus_as(wire::Role::Member).await;
    owner_client
        .clone()
        .remove_member(wire::RemoveMemberRequest { name: member.name })
        .await
        .unwrap();
    let refreshed = app
        .auth_public(Some(tenant))
        .refresh(wire::RefreshRequest {
            refresh_token: linus.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(refreshed.code(), Code::Unauthenticated);
    assert_eq!(
        app.login(tenant, "linus@example.com", PASSWORD)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn members_of_another_tenant_are_out_of_reach() {
    let app = TestApp::spawn().await;
    let acme = app.sign_up("acme", "ada@example.com").await;
    let globex = app.sign_up("globex", "grace@example.com").await;
    let acme_owner = app.auth_with(&acme.tokens.as_ref().unwrap().access_token);
    let grace = member_name(&globex);

    let read = acme_owner
        .clone()
        .get_member(wire::GetMemberRequest {
            name: grace.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::NotFound);
    let change = acme_owner
        .clone()
        .update_member(wire::UpdateMemberRequest {
            member: Some(wire::Member {
                name: grace.clone(),
                role: wire::Role::Viewer as i32,
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["role".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(change.code(), Code::NotFound);
    let remove = acme_owner
        .clone()
        .remove_member(wire::RemoveMemberRequest { name: grace })
        .await
        .unwrap_err();
    assert_eq!(remove.code(), Code::NotFound);
    let listed = acme_owner
        .clone()
        .list_members(wire::ListMembersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.members.len(), 1);
    // Grace is untouched.
    let mut grace_client = app.auth_with(&globex.tokens.unwrap().access_token);
    let me = grace_client
        .get_me(wire::GetMeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.member.unwrap().role(), wire::Role::Owner);
}

#[tokio::test]
async fn a_demoted_admin_loses_the_old_role_at_once() {
    let Team {
        app,
        tenant,
        owner_client,
        member: linus,
        tokens: admin,
    } = Team::with_linus_as(wire::Role::Admin).await;
    let invite = || invitation("grace@example.com", wire::Role::Member);
    let direct = |token: &str| app.auth_direct(CallMetadata::new(Some(token), Some(tenant)));
    let list_members = || wire::ListMembersRequest::default();
    direct(&admin.access_token)
        .list_members(list_members())
        .await
        .expect("an admin's token is served");

    let demoted = owner_client
        .clone()
        .update_member(wire::UpdateMemberRequest {
            member: Some(wire::Member {
                name: linus.name.clone(),
                role: wire::Role::Member as i32,
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["role".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(demoted.role(), wire::Role::Member);

    // The old token, unexpired, still says admin: refused at the context layer (the Redis
    // list), and by svc-auth's own check of the session where the gateway vouched for it.
    let refused = direct(&admin.access_token)
        .list_members(list_members())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert_eq!(error_reason(&refused), "SESSION_ENDED");
    let refused = app
        .auth_with(&admin.access_token)
        .create_invitation(invite())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert_eq!(error_reason(&refused), "SESSION_ENDED");
    let refreshed = app
        .auth_public(Some(tenant))
        .refresh(wire::RefreshRequest {
            refresh_token: admin.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(refreshed.code(), Code::Unauthenticated);

    // Signing in again yields the new role, which may not invite.
    let member = app
        .login(tenant, "linus@example.com", PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();
    let denied = app
        .auth_with(&member.access_token)
        .create_invitation(invite())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    // The owner's own sessions were not touched.
    owner_client
        .clone()
        .create_invitation(invite())
        .await
        .unwrap();
}
