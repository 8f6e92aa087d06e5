//! Malformed input on every RPC answers INVALID_ARGUMENT naming the bad fields: never a crash,
//! never an internal error.

use proto::formflow::auth::v1 as wire;

use crate::helpers::{TestApp, tenant_of, violated_fields};

#[tokio::test]
async fn public_rpcs_name_their_bad_fields() {
    let app = TestApp::spawn().await;
    let tenant = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let public = app.auth_public(Some(tenant));
    let too_long = "x".repeat(300);

    let login = public
        .clone()
        .login(wire::LoginRequest {
            email: "@".into(),
            password: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&login), ["email", "password"]);
    let login = public
        .clone()
        .login(wire::LoginRequest {
            email: "ada@example.com".into(),
            password: too_long.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&login), ["password"]);
    let verify = public
        .clone()
        .verify_totp(wire::VerifyTotpRequest {
            challenge: String::new(),
            code: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&verify), ["challenge", "code"]);
    let refresh = public
        .clone()
        .refresh(wire::RefreshRequest {
            refresh_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refresh), ["refresh_token"]);
    let request_reset = public
        .clone()
        .request_password_reset(wire::RequestPasswordResetRequest { email: "no".into() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&request_reset), ["email"]);
    let reset = public
        .clone()
        .reset_password(wire::ResetPasswordRequest {
            token: too_long.clone(),
            new_password: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&reset), ["token", "new_password"]);
    let accept = public
        .clone()
        .accept_invitation(wire::AcceptInvitationRequest {
            token: String::new(),
            display_name: "\u{7}".into(),
            password: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&accept),
        ["token", "password", "display_name"]
    );
    let issue = public
        .clone()
        .issue_service_token(wire::IssueServiceTokenRequest {
            client_id: String::new(),
            client_secret: String::new(),
            tenant_id: "acme".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&issue),
        ["client_id", "client_secret", "tenant_id"]
    );
}

#[tokio::test]
async fn authenticated_rpcs_name_their_bad_fields() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("acme", "ada@example.com").await;
    let client = app.auth_with(&owner.tokens.unwrap().access_token);

    let cases: Vec<(tonic::Status, Vec<&str>)> = vec![
        (
            client
                .clone()
                .change_password(wire::ChangePasswordRequest::default())
                .await
                .unwrap_err(),
            vec!["current_password", "new_password"],
        ),
        (
            client
                .clone()
                .enrol_totp(wire::EnrolTotpRequest::default())
                .await
                .unwrap_err(),
            vec!["password"],
        ),
        (
            client
                .clone()
                .confirm_totp(wire::ConfirmTotpRequest::default())
                .await
                .unwrap_err(),
            vec!["code"],
        ),
        (
            client
                .clone()
                .disable_totp(wire::DisableTotpRequest::default())
                .await
                .unwrap_err(),
            vec!["password", "code"],
        ),
        (
            client
                .clone()
                .regenerate_recovery_codes(wire::RegenerateRecoveryCodesRequest::default())
                .await
                .unwrap_err(),
            vec!["code"],
        ),
        (
            client
                .clone()
                .create_invitation(wire::CreateInvitationRequest { invitation: None })
                .await
                .unwrap_err(),
            vec!["invitation"],
        ),
        (
            client
                .clone()
                .create_invitation(wire::CreateInvitationRequest {
                    invitation: Some(wire::Invitation {
                        email: "not an email".into(),
                        role: 0,
                        message: "m".repeat(501),
                        ttl: Some(pbjson_types::Duration {
                            seconds: 60,
                            nanos: 0,
                        }),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap_err(),
            vec![
                "invitation.email",
                "invitation.role",
                "invitation.message",
                "invitation.ttl",
            ],
        ),
        (
            client
                .clone()
                .list_invitations(wire::ListInvitationsRequest {
                    page_size: -1,
                    page_token: String::new(),
                    state: 99,
                })
                .await
                .unwrap_err(),
            vec!["page_size", "state"],
        ),
        (
            client
                .clone()
                .revoke_invitation(wire::RevokeInvitationRequest {
                    name: "invitations/x".into(),
                })
                .await
                .unwrap_err(),
            vec!["name"],
        ),
        (
            client
                .clone()
                .list_members(wire::ListMembersRequest {
                    page_size: 1000,
                    page_token: "forged".into(),
                    role: 42,
                })
                .await
                .unwrap_err(),
            vec!["page_size", "role", "page_token"],
        ),
        (
            client
                .clone()
                .get_member(wire::GetMemberRequest {
                    name: "users/1".into(),
                })
                .await
                .unwrap_err(),
            vec!["name"],
        ),
        (
            client
                .clone()
                .update_member(wire::UpdateMemberRequest {
                    member: Some(wire::Member {
                        name: "members/".into(),
                        role: 0,
                        etag: "e".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(pbjson_types::FieldMask {
                        paths: vec!["email".into()],
                    }),
                })
                .await
                .unwrap_err(),
            vec!["member.name", "update_mask", "member.role", "member.etag"],
        ),
        (
            client
                .clone()
                .remove_member(wire::RemoveMemberRequest {
                    name: String::new(),
                })
                .await
                .unwrap_err(),
            vec!["name"],
        ),
        (
            client
                .clone()
                .create_api_key(wire::CreateApiKeyRequest { api_key: None })
                .await
                .unwrap_err(),
            vec!["api_key"],
        ),
        (
            client
                .clone()
                .create_api_key(wire::CreateApiKeyRequest {
                    api_key: Some(wire::ApiKey {
                        display_name: " ".into(),
                        role: 17,
                        expire_time: Some(pbjson_types::Timestamp {
                            seconds: 1,
                            nanos: 0,
                        }),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap_err(),
            vec![
                "api_key.display_name",
                "api_key.role",
                "api_key.expire_time",
            ],
        ),
        (
            client
                .clone()
                .list_api_keys(wire::ListApiKeysRequest {
                    page_size: 0,
                    page_token: String::new(),
                    state: 7,
                })
                .await
                .unwrap_err(),
            vec!["state"],
        ),
        (
            client
                .clone()
                .get_api_key(wire::GetApiKeyRequest {
                    name: "apiKeys/abc".into(),
                })
                .await
                .unwrap_err(),
            vec!["name"],
        ),
        (
            client
                .clone()
                .revoke_api_key(wire::RevokeApiKeyRequest {
                    name: "keys/abc".into(),
                })
                .await
                .unwrap_err(),
            vec!["name"],
        ),
        (
            client
                .clone()
                .verify_api_key(wire::VerifyApiKeyRequest {
                    secret: String::new(),
                    tenant_id: "x".into(),
                })
                .await
                .unwrap_err(),
            vec!["secret", "tenant_id"],
        ),
    ];
    for (status, expected) in cases {
        assert_eq!(violated_fields(&status), expected, "{status:?}");
    }
}
