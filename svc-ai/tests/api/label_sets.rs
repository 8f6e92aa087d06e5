//! Label sets and their examples: create, read, list, update with etags, delete; examples
//! added, listed and deleted; validation; who may do what.

use platform::context::{Role, TenantId};
use platform::testing::error_reason;
use proto::formflow::ai::v1::{
    CreateLabelSetRequest, DeleteLabelExampleRequest, DeleteLabelSetRequest, GetLabelSetRequest,
    LabelSet, ListLabelExamplesRequest, ListLabelSetsRequest, UpdateLabelSetRequest,
};
use tonic::Code;

use crate::helpers::{
    TestApp, add_example, bad_fields, create_label_set, expect_code, label, support_labels,
};

fn mask(paths: &[&str]) -> Option<pbjson_types::FieldMask> {
    Some(pbjson_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

#[tokio::test]
async fn label_sets_are_created_read_listed_updated_and_deleted() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let created = create_label_set(&mut client, "Support", support_labels()).await;
    assert!(created.name.starts_with("labelSets/"));
    assert_eq!(created.labels, support_labels());
    assert_eq!((created.version, created.example_count), (1, 0));
    assert_eq!(created.etag, "1");
    let read = client
        .get_label_set(GetLabelSetRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created);

    let mood = create_label_set(
        &mut client,
        "Mood",
        vec![label("happy", ""), label("sad", "")],
    )
    .await;
    let status = expect_code(
        client
            .create_label_set(CreateLabelSetRequest {
                label_set: Some(LabelSet {
                    display_name: "Mood".to_owned(),
                    labels: vec![label("a", ""), label("b", "")],
                    ..LabelSet::default()
                }),
                from_default: 0,
            })
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(error_reason(&status), "LABEL_SET_NAME_TAKEN");

    // By display name, paged.
    let first = client
        .list_label_sets(ListLabelSetsRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.label_sets, std::slice::from_ref(&mood));
    let second = client
        .list_label_sets(ListLabelSetsRequest {
            page_size: 1,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.label_sets, std::slice::from_ref(&created));
    assert_eq!(second.next_page_token, "");

    let updated = client
        .update_label_set(UpdateLabelSetRequest {
            label_set: Some(LabelSet {
                name: mood.name.clone(),
                display_name: "Feelings".to_owned(),
                description: "ignored: not in the mask".to_owned(),
                etag: mood.etag.clone(),
                ..LabelSet::default()
            }),
            update_mask: mask(&["displayName"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.display_name, "Feelings");
    assert_eq!(updated.description, "");
    assert_eq!(updated.version, 2);
    // A stale etag loses nothing.
    let status = expect_code(
        client
            .update_label_set(UpdateLabelSetRequest {
                label_set: Some(LabelSet {
                    name: mood.name.clone(),
                    display_name: "Lost".to_owned(),
                    etag: mood.etag.clone(),
                    ..LabelSet::default()
                }),
                update_mask: mask(&["display_name"]),
            })
            .await,
        Code::Aborted,
    );
    assert_eq!(error_reason(&status), "ETAG_MISMATCH");
    let status = expect_code(
        client
            .update_label_set(UpdateLabelSetRequest {
                label_set: Some(LabelSet {
                    name: mood.name.clone(),
                    display_name: "Support".to_owned(),
                    ..LabelSet::default()
                }),
                update_mask: mask(&["display_name"]),
            })
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(error_reason(&status), "LABEL_SET_NAME_TAKEN");

    client
        .delete_label_set(DeleteLabelSetRequest {
            name: mood.name.clone(),
        })
        .await
        .unwrap();
    for result in [
        client
            .get_label_set(GetLabelSetRequest {
                name: mood.name.clone(),
            })
            .await
            .map(|_| ()),
        client
            .delete_label_set(DeleteLabelSetRequest {
                name: mood.name.clone(),
            })
            .await
            .map(|_| ()),
    ] {
        let status = expect_code(result, Code::NotFound);
        assert_eq!(error_reason(&status), "LABEL_SET_NOT_FOUND");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_label_sets_are_refused_with_every_bad_field() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let status = expect_code(
        client
            .create_label_set(CreateLabelSetRequest {
                label_set: Some(LabelSet {
                    display_name: "  ".to_owned(),
                    description: "d".repeat(1_001),
                    labels: vec![
                        label("dup", ""),
                        label("dup", ""),
                        label(&"x".repeat(65), ""),
                        label("fine", &"y".repeat(501)),
                    ],
                    ..LabelSet::default()
                }),
                from_default: 0,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        [
            "label_set.display_name",
            "label_set.description",
            "label_set.labels[1].value",
            "label_set.labels[2].value",
            "label_set.labels[3].description",
        ]
    );
    let status = expect_code(
        client
            .create_label_set(CreateLabelSetRequest {
                label_set: Some(LabelSet {
                    display_name: "One".to_owned(),
                    labels: vec![label("alone", "")],
                    ..LabelSet::default()
                }),
                from_default: 0,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["label_set.labels"]);

    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let status = expect_code(
        client
            .update_label_set(UpdateLabelSetRequest {
                label_set: Some(LabelSet {
                    name: set.name.clone(),
                    etag: "not-an-etag".to_owned(),
                    ..LabelSet::default()
                }),
                update_mask: mask(&["labels", "version"]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["label_set.etag", "label_set.labels", "update_mask"]
    );
    app.stop().await;
}

#[tokio::test]
async fn examples_are_added_listed_and_deleted_and_each_change_is_a_new_version() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let set = create_label_set(&mut client, "Support", support_labels()).await;
    let refund = add_example(&mut client, &set.name, "billing", "I want my money back")
        .await
        .unwrap();
    assert!(refund.name.starts_with(&format!("{}/examples/", set.name)));
    assert_eq!(refund.classification, "");
    let crash = add_example(
        &mut client,
        &set.name,
        "technical",
        "The app crashes on start",
    )
    .await
    .unwrap();
    let read = client
        .get_label_set(GetLabelSetRequest {
            name: set.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((read.version, read.example_count), (3, 2));

    let list = |label: &str, page_size: i32, page_token: &str| ListLabelExamplesRequest {
        parent: set.name.clone(),
        page_size,
        page_token: page_token.to_owned(),
        label: label.to_owned(),
    };
    let page = client
        .list_label_examples(list("", 1, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.examples, std::slice::from_ref(&refund));
    let rest = client
        .list_label_examples(list("", 1, &page.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.examples, std::slice::from_ref(&crash));
    let technical = client
        .list_label_examples(list("technical", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(technical.examples, std::slice::from_ref(&crash));

    let status = expect_code(
        add_example(&mut client, &set.name, "shipping", "Where is my parcel?").await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["example.label"]);
    let status = expect_code(
        add_example(&mut client, "labelSets/x", "", &"t".repeat(4_001)).await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["parent", "example.label", "example.text"]
    );

    client
        .delete_label_example(DeleteLabelExampleRequest {
            name: crash.name.clone(),
        })
        .await
        .unwrap();
    let status = expect_code(
        client
            .delete_label_example(DeleteLabelExampleRequest {
                name: crash.name.clone(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "EXAMPLE_NOT_FOUND");

    // Removing a label deletes its examples.
    let updated = client
        .update_label_set(UpdateLabelSetRequest {
            label_set: Some(LabelSet {
                name: set.name.clone(),
                labels: vec![label("refunds", ""), label("technical", "")],
                ..LabelSet::default()
            }),
            update_mask: mask(&["labels"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.version, updated.example_count), (5, 0));
    app.stop().await;
}

#[tokio::test]
async fn viewers_read_label_sets_and_members_change_them() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut member = app.user(tenant, Role::Member);
    let mut viewer = app.user(tenant, Role::Viewer);
    let set = create_label_set(&mut member, "Support", support_labels()).await;
    viewer
        .get_label_set(GetLabelSetRequest {
            name: set.name.clone(),
        })
        .await
        .expect("ai:read is enough to read");
    viewer
        .list_label_examples(ListLabelExamplesRequest {
            parent: set.name.clone(),
            ..ListLabelExamplesRequest::default()
        })
        .await
        .expect("ai:read is enough to list examples");
    let status = expect_code(
        viewer
            .create_label_set(CreateLabelSetRequest {
                label_set: Some(LabelSet {
                    display_name: "Mine".to_owned(),
                    labels: support_labels(),
                    ..LabelSet::default()
                }),
                from_default: 0,
            })
            .await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("ai:use"), "{status:?}");
    let status = expect_code(
        add_example(&mut viewer, &set.name, "billing", "refund please").await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("ai:use"), "{status:?}");
    let status = expect_code(
        crate::helpers::classify(&mut viewer, &set.name, &["text"]).await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("ai:use"), "{status:?}");
    app.stop().await;
}
