//! Tenant isolation: another tenant's label sets, examples and classifications are not found
//! through any RPC, its cached results are not served, and row-level security hides its rows.

use platform::context::{Role, TenantId};
use platform::db::Db;
use platform::testing::error_reason;
use proto::formflow::ai::v1::{
    ClassifyRequest, CorrectClassificationRequest, DeleteLabelExampleRequest,
    DeleteLabelSetRequest, GetClassificationRequest, GetLabelSetRequest, LabelSet,
    ListClassificationsRequest, ListLabelExamplesRequest, ListLabelSetsRequest,
    UpdateLabelSetRequest,
};
use tonic::Code;

use crate::helpers::{
    TestApp, add_example, classify, create_label_set, expect_code, labels_of, support_labels,
};

#[tokio::test]
async fn another_tenants_label_sets_examples_and_classifications_are_not_found() {
    let app = TestApp::spawn().await;
    let (acme_tenant, globex_tenant) = (TenantId::generate(), TenantId::generate());
    let mut acme = app.user(acme_tenant, Role::Owner);
    let mut globex = app.user(globex_tenant, Role::Owner);
    let set = create_label_set(&mut acme, "Support", support_labels()).await;
    let example = add_example(&mut acme, &set.name, "billing", "refund my order")
        .await
        .unwrap();
    let text = "I was charged twice";
    let result = classify(&mut acme, &set.name, &[text])
        .await
        .unwrap()
        .remove(0);

    let not_found = |result: Result<(), tonic::Status>, reason: &str| {
        let status = expect_code(result, Code::NotFound);
        assert_eq!(error_reason(&status), reason);
        assert!(!status.message().contains("Support"), "{status:?}");
    };
    not_found(
        globex
            .get_label_set(GetLabelSetRequest {
                name: set.name.clone(),
            })
            .await
            .map(|_| ()),
        "LABEL_SET_NOT_FOUND",
    );
    not_found(
        globex
            .update_label_set(UpdateLabelSetRequest {
                label_set: Some(LabelSet {
                    name: set.name.clone(),
                    display_name: "Hijacked".to_owned(),
                    ..LabelSet::default()
                }),
                update_mask: Some(pbjson_types::FieldMask {
                    paths: vec!["display_name".to_owned()],
                }),
            })
            .await
            .map(|_| ()),
        "LABEL_SET_NOT_FOUND",
    );
    not_found(
        add_example(&mut globex, &set.name, "billing", "planted")
            .await
            .map(|_| ()),
        "LABEL_SET_NOT_FOUND",
    );
    not_found(
        globex
            .list_label_examples(ListLabelExamplesRequest {
                parent: set.name.clone(),
                ..ListLabelExamplesRequest::default()
            })
            .await
            .map(|_| ()),
        "LABEL_SET_NOT_FOUND",
    );
    not_found(
        globex
            .delete_label_example(DeleteLabelExampleRequest {
                name: example.name.clone(),
            })
            .await
            .map(|_| ()),
        "EXAMPLE_NOT_FOUND",
    );
    not_found(
        classify(&mut globex, &set.name, &[text]).await.map(|_| ()),
        "LABEL_SET_NOT_FOUND",
    );
    not_found(
        globex
            .get_classification(GetClassificationRequest {
                name: result.name.clone(),
            })
            .await
            .map(|_| ()),
        "CLASSIFICATION_NOT_FOUND",
    );
    not_found(
        globex
            .correct_classification(CorrectClassificationRequest {
                name: result.name.clone(),
                label: "technical".to_owned(),
            })
            .await
            .map(|_| ()),
        "CLASSIFICATION_NOT_FOUND",
    );
    not_found(
        globex
            .delete_label_set(DeleteLabelSetRequest {
                name: set.name.clone(),
            })
            .await
            .map(|_| ()),
        "LABEL_SET_NOT_FOUND",
    );
    let listed = globex
        .list_label_sets(ListLabelSetsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.label_sets.is_empty());
    let listed = globex
        .list_classifications(ListClassificationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.classifications.is_empty());

    // The same display name is free in another tenant.
    create_label_set(&mut globex, "Support", support_labels()).await;

    // The same text against the same inline labels: each tenant's result is its own.
    let inline = |client_text: &str| ClassifyRequest {
        texts: vec![client_text.to_owned()],
        labels: support_labels(),
        ..ClassifyRequest::default()
    };
    let acme_inline = acme.classify(inline(text)).await.unwrap().into_inner();
    let acme_again = acme.classify(inline(text)).await.unwrap().into_inner();
    let globex_inline = globex.classify(inline(text)).await.unwrap().into_inner();
    assert!(!acme_inline.classifications[0].cached);
    assert!(acme_again.classifications[0].cached);
    assert!(
        !globex_inline.classifications[0].cached,
        "another tenant's cache entry is not served"
    );

    // Acme's data is untouched.
    let read = acme
        .get_label_set(GetLabelSetRequest {
            name: set.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (read.display_name.as_str(), read.example_count),
        ("Support", 1)
    );
    let stored = acme
        .get_classification(GetClassificationRequest {
            name: result.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(labels_of(&stored).corrected_label, "");
    app.stop().await;
}

#[tokio::test]
async fn a_token_of_one_tenant_routed_to_another_is_denied() {
    let app = TestApp::spawn().await;
    let token = app.keys.user_token(TenantId::generate(), Role::Owner);
    let mut crossing = app.client(Some(&token), Some(TenantId::generate()));
    let status = expect_code(
        crossing
            .list_label_sets(ListLabelSetsRequest::default())
            .await,
        Code::PermissionDenied,
    );
    assert!(!status.message().is_empty());
    expect_code(
        classify(
            &mut crossing,
            &format!("labelSets/{}", uuid::Uuid::now_v7()),
            &["text"],
        )
        .await,
        Code::PermissionDenied,
    );
    app.stop().await;
}

#[tokio::test]
async fn row_level_security_hides_every_row_of_another_tenant() {
    let app = TestApp::spawn().await;
    let (acme_tenant, globex) = (TenantId::generate(), TenantId::generate());
    let mut acme = app.user(acme_tenant, Role::Owner);
    let set = create_label_set(&mut acme, "Support", support_labels()).await;
    add_example(&mut acme, &set.name, "billing", "refund my order")
        .await
        .unwrap();
    classify(&mut acme, &set.name, &["I was charged twice"])
        .await
        .unwrap();
    let db = Db::connect(&app.infra.db, &svc_ai::app::SCHEMA)
        .await
        .unwrap();
    // Acme's rows: a label set, its example, a classification, the audit rows of the set's
    // creation and the example's.
    let tables = [
        ("ai.label_sets", 1),
        ("ai.label_examples", 1),
        ("ai.classifications", 1),
        ("ai.audit_log", 2),
    ];
    for (tenant, sees) in [(acme_tenant, true), (globex, false)] {
        let mut transaction = db.tenant_tx(tenant).await.unwrap();
        for (table, rows) in tables {
            let count: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut *transaction)
                    .await
                    .unwrap();
            assert_eq!(
                count,
                if sees { rows } else { 0 },
                "{table} seen by {tenant}"
            );
        }
        transaction.rollback().await.unwrap();
    }
    let mut transaction = db.tenant_tx(globex).await.unwrap();
    let changed = sqlx::query("UPDATE ai.label_sets SET display_name = 'hijacked'")
        .execute(&mut *transaction)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 0);
    let deleted = sqlx::query("DELETE FROM ai.classifications")
        .execute(&mut *transaction)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 0);
    let planted = sqlx::query(
        "INSERT INTO ai.label_sets (id, tenant_id, display_name, labels) \
         VALUES ($1, $2, 'planted', '[]')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(acme_tenant.as_uuid())
    .execute(&mut *transaction)
    .await;
    assert!(planted.is_err(), "a row for another tenant is refused");
}
