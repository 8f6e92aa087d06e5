use proto::formflow::tenant::v1::{
    DeleteTenantRequest, ListTenantsRequest, SuspendTenantRequest, TenantStatus,
};
use tonic::Code;

use crate::helpers::{TestApp, violated_fields};

#[tokio::test]
async fn pages_cover_every_tenant_once_in_creation_order() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for index in 0..7 {
        created.push(app.create_tenant(&format!("tenant-{index}")).await.id);
    }

    let mut listed = Vec::new();
    let mut page_sizes = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .platform_admin()
            .list_tenants(ListTenantsRequest {
                page_size: 3,
                page_token: page_token.clone(),
                status: 0,
            })
            .await
            .unwrap()
            .into_inner();
        page_sizes.push(page.tenants.len());
        listed.extend(page.tenants.into_iter().map(|tenant| tenant.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(page_sizes, [3, 3, 1]);
    assert_eq!(listed, created);
}

#[tokio::test]
async fn the_status_filter_selects_tenants_and_binds_the_page_token() {
    let app = TestApp::spawn().await;
    let active = app.create_tenant("active-one").await;
    let suspended = app.create_tenant("suspended-one").await;
    let deleted = app.create_tenant("deleted-one").await;
    let admin = app.platform_admin();
    admin
        .clone()
        .suspend_tenant(SuspendTenantRequest {
            name: suspended.name.clone(),
            reason: "test".into(),
        })
        .await
        .unwrap();
    admin
        .clone()
        .delete_tenant(DeleteTenantRequest {
            name: deleted.name.clone(),
        })
        .await
        .unwrap();

    let list = |status: TenantStatus| {
        let admin = admin.clone();
        async move {
            admin
                .clone()
                .list_tenants(ListTenantsRequest {
                    page_size: 10,
                    page_token: String::new(),
                    status: status as i32,
                })
                .await
                .unwrap()
                .into_inner()
                .tenants
                .into_iter()
                .map(|tenant| tenant.slug)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(TenantStatus::Unspecified).await,
        [active.slug.clone(), suspended.slug.clone()]
    );
    assert_eq!(
        list(TenantStatus::Suspended).await,
        std::slice::from_ref(&suspended.slug)
    );
    assert_eq!(
        list(TenantStatus::Deleted).await,
        std::slice::from_ref(&deleted.slug)
    );

    let first_page = admin
        .clone()
        .list_tenants(ListTenantsRequest {
            page_size: 1,
            page_token: String::new(),
            status: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let reused = admin
        .clone()
        .list_tenants(ListTenantsRequest {
            page_size: 1,
            page_token: first_page.next_page_token,
            status: TenantStatus::Deleted as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&reused), ["page_token"]);
}
