//! Bad input on every RPC answers INVALID_ARGUMENT naming each bad field, never a crash.

use proto::formflow::tenant::v1::resolve_tenant_request::Key;
use proto::formflow::tenant::v1::{
    CreateTenantRequest, DeleteTenantRequest, GetTenantRequest, ListTenantsRequest, RateLimits,
    ReactivateTenantRequest, ResolveTenantRequest, SuspendTenantRequest, Tenant,
    UpdateTenantRequest,
};

use crate::helpers::{TestApp, violated_fields};

fn with_slug(slug: &str) -> CreateTenantRequest {
    CreateTenantRequest {
        tenant: Some(Tenant {
            slug: slug.into(),
            display_name: "Name".into(),
            ..Tenant::default()
        }),
    }
}

#[tokio::test]
async fn create_names_every_bad_field() {
    let app = TestApp::spawn().await;
    let client = app.platform_admin();
    let huge_settings: pbjson_types::Struct =
        serde_json::from_value(serde_json::json!({"blob": "x".repeat(20_000)})).unwrap();
    let cases: Vec<(CreateTenantRequest, Vec<&str>)> = vec![
        (CreateTenantRequest { tenant: None }, vec!["tenant"]),
        (with_slug(""), vec!["tenant.slug"]),
        (with_slug("ab"), vec!["tenant.slug"]),
        (with_slug("Upper"), vec!["tenant.slug"]),
        (with_slug("-dash"), vec!["tenant.slug"]),
        (with_slug("xn--punycode"), vec!["tenant.slug"]),
        (with_slug("admin"), vec!["tenant.slug"]),
        (with_slug(&"a".repeat(64)), vec!["tenant.slug"]),
        (with_slug("acme\u{0}"), vec!["tenant.slug"]),
        (
            CreateTenantRequest {
                tenant: Some(Tenant {
                    slug: "acme".into(),
                    display_name: "\t".into(),
                    domains: vec![
                        "localhost".into(),
                        "127.0.0.1".into(),
                        "acme.forms.test".into(),
                        "ok.example.com".into(),
                        "ok.example.com".into(),
                    ],
                    plan: 99,
                    settings: Some(huge_settings),
                    rate_limits: Some(RateLimits {
                        requests_per_minute: 5_000_000,
                        burst: 1,
                    }),
                    ..Tenant::default()
                }),
            },
            vec![
                "tenant.display_name",
                "tenant.domains[0]",
                "tenant.domains[1]",
                "tenant.domains[2]",
                "tenant.domains[4]",
                "tenant.plan",
                "tenant.settings",
                "tenant.rate_limits",
            ],
        ),
        (
            CreateTenantRequest {
                tenant: Some(Tenant {
                    slug: "acme".into(),
                    display_name: "Acme".into(),
                    domains: (0..21)
                        .map(|index| format!("d{index}.example.com"))
                        .collect(),
                    ..Tenant::default()
                }),
            },
            vec!["tenant.domains"],
        ),
    ];
    for (request, expected) in cases {
        let status = client
            .clone()
            .create_tenant(request.clone())
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), expected, "{request:?}");
    }
}

#[tokio::test]
async fn name_only_rpcs_refuse_malformed_names() {
    let app = TestApp::spawn().await;
    let client = app.platform_admin();
    for name in [
        "",
        "tenants/",
        "tenants/acme",
        "forms/01a20921-2bd9-7122-a32d-1584402f73fe",
        "01a20921-2bd9-7122-a32d-1584402f73fe",
    ] {
        let name = name.to_owned();
        let get = client
            .clone()
            .get_tenant(GetTenantRequest { name: name.clone() })
            .await;
        assert_eq!(violated_fields(&get.unwrap_err()), ["name"], "get {name:?}");
        let delete = client
            .clone()
            .delete_tenant(DeleteTenantRequest { name: name.clone() })
            .await;
        assert_eq!(
            violated_fields(&delete.unwrap_err()),
            ["name"],
            "delete {name:?}"
        );
        let reactivate = client
            .clone()
            .reactivate_tenant(ReactivateTenantRequest { name: name.clone() })
            .await;
        assert_eq!(
            violated_fields(&reactivate.unwrap_err()),
            ["name"],
            "reactivate {name:?}"
        );
        let suspend = client
            .clone()
            .suspend_tenant(SuspendTenantRequest {
                name: name.clone(),
                reason: String::new(),
            })
            .await;
        assert_eq!(
            violated_fields(&suspend.unwrap_err()),
            ["name", "reason"],
            "suspend {name:?}"
        );
    }
    let tenant = app.create_tenant("acme").await;
    let too_long = client
        .clone()
        .suspend_tenant(SuspendTenantRequest {
            name: tenant.name.clone(),
            reason: "x".repeat(501),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&too_long), ["reason"]);
}

#[tokio::test]
async fn update_refuses_bad_masks_and_values() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let client = app.platform_admin();
    let update = |tenant: Option<Tenant>, paths: &[&str]| UpdateTenantRequest {
        tenant,
        update_mask: Some(pbjson_types::FieldMask {
            paths: paths.iter().map(|path| (*path).to_owned()).collect(),
        }),
    };
    let named = |changes: Tenant| {
        Some(Tenant {
            name: tenant.name.clone(),
            ..changes
        })
    };
    let cases: Vec<(UpdateTenantRequest, Vec<&str>)> = vec![
        (update(None, &["display_name"]), vec!["tenant"]),
        (
            UpdateTenantRequest {
                tenant: named(Tenant::default()),
                update_mask: None,
            },
            vec!["update_mask"],
        ),
        (
            update(named(Tenant::default()), &["slug"]),
            vec!["update_mask"],
        ),
        (
            update(named(Tenant::default()), &["status"]),
            vec!["update_mask"],
        ),
        (
            update(named(Tenant::default()), &["nonsense"]),
            vec!["update_mask"],
        ),
        (
            update(named(Tenant::default()), &["display_name"]),
            vec!["tenant.display_name"],
        ),
        (
            update(named(Tenant::default()), &["plan"]),
            vec!["tenant.plan"],
        ),
        (
            update(
                named(Tenant {
                    domains: vec!["bad domain".into()],
                    etag: "not-an-etag".into(),
                    ..Tenant::default()
                }),
                &["domains"],
            ),
            vec!["tenant.etag", "tenant.domains[0]"],
        ),
        (
            update(
                Some(Tenant {
                    name: "tenants/acme".into(),
                    display_name: "Fine".into(),
                    ..Tenant::default()
                }),
                &["display_name"],
            ),
            vec!["tenant.name"],
        ),
    ];
    for (request, expected) in cases {
        let status = client
            .clone()
            .update_tenant(request.clone())
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), expected, "{request:?}");
    }
}

#[tokio::test]
async fn list_and_resolve_refuse_bad_parameters() {
    let app = TestApp::spawn().await;
    let client = app.platform_admin();
    let cases: Vec<(ListTenantsRequest, Vec<&str>)> = vec![
        (
            ListTenantsRequest {
                page_size: -1,
                ..Default::default()
            },
            vec!["page_size"],
        ),
        (
            ListTenantsRequest {
                page_size: 1000,
                ..Default::default()
            },
            vec!["page_size"],
        ),
        (
            ListTenantsRequest {
                page_token: "forged".into(),
                ..Default::default()
            },
            vec!["page_token"],
        ),
        (
            ListTenantsRequest {
                status: 17,
                ..Default::default()
            },
            vec!["status"],
        ),
    ];
    for (request, expected) in cases {
        let status = client
            .clone()
            .list_tenants(request.clone())
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), expected, "{request:?}");
    }

    let service = app.platform_service();
    let cases: Vec<(Option<Key>, &str)> = vec![
        (None, "key"),
        (Some(Key::Id("acme".into())), "id"),
        (Some(Key::Slug("Not A Slug".into())), "slug"),
        (Some(Key::Host(String::new())), "host"),
        (Some(Key::Host("x".repeat(300))), "host"),
    ];
    for (key, field) in cases {
        let status = service
            .clone()
            .resolve_tenant(ResolveTenantRequest { key: key.clone() })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), [field], "{key:?}");
    }
}
