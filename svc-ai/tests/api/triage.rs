//! ClassifyTicket on the real model: the shipped defaults with urgency cues, a tenant's own
//! label sets in their place (made from scratch or from a default), corrections of a ticket's
//! category, the cache, bad input and other tenants.

use platform::context::{Role, TenantId};
use platform::testing::error_reason;
use proto::formflow::ai::v1::classification::Outcome;
use proto::formflow::ai::v1::{
    Classification, ClassifyTicketRequest, CorrectClassificationRequest, CreateLabelSetRequest,
    GetModelRequest, LabelSet, ListClassificationsRequest, ListLabelExamplesRequest, Sentiment,
    TicketClassification, TicketField, TicketPriority, UpdateLabelSetRequest,
};
use tonic::Code;

use crate::helpers::{Client, MODEL, TestApp, bad_fields, create_label_set, expect_code, label};

fn ticket(subject: &str, body: &str) -> ClassifyTicketRequest {
    ClassifyTicketRequest {
        subject: subject.to_owned(),
        body: body.to_owned(),
        ..ClassifyTicketRequest::default()
    }
}

async fn triage(client: &mut Client, request: ClassifyTicketRequest) -> Classification {
    client
        .classify_ticket(request)
        .await
        .expect("the ticket is triaged")
        .into_inner()
}

fn triage_of(classification: &Classification) -> &TicketClassification {
    match &classification.outcome {
        Some(Outcome::Ticket(ticket)) => ticket,
        other => panic!("a ticket result expected: {other:?}"),
    }
}

#[tokio::test]
async fn tickets_are_triaged_with_the_shipped_defaults_and_urgency_cues() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let outage = triage(
        &mut client,
        ticket(
            "Forms down",
            "Since 9:00 all our forms are down and every customer sees a 503 error. Nobody can submit anything.",
        ),
    )
    .await;
    let result = triage_of(&outage);
    assert_eq!(result.category.as_ref().unwrap().label, "bug", "{result:?}");
    assert_eq!(result.priority(), TicketPriority::Urgent, "{result:?}");
    assert!(
        result.urgency_cues.contains(&"outage".to_owned()),
        "{result:?}"
    );
    assert_eq!(result.category_label_set, "", "the shipped default");
    assert_eq!(result.category_scores.len(), 5);
    let lowest = result
        .priority_confidence
        .min(result.sentiment_confidence)
        .min(result.category.as_ref().unwrap().score);
    assert_eq!(result.confidence, lowest);

    let thanks = triage(
        &mut client,
        ticket(
            "",
            "Thank you so much for the quick help yesterday, the new export works perfectly!",
        ),
    )
    .await;
    assert_eq!(
        triage_of(&thanks).sentiment(),
        Sentiment::Positive,
        "{thanks:?}"
    );

    let refund = triage(
        &mut client,
        ticket(
            "Charged twice",
            "I was charged twice for my subscription this month and I'm really annoyed. Please refund the second payment.",
        ),
    )
    .await;
    let result = triage_of(&refund);
    assert_eq!(
        result.category.as_ref().unwrap().label,
        "billing",
        "{result:?}"
    );
    assert_eq!(result.sentiment(), Sentiment::Negative, "{result:?}");

    let idea = triage(
        &mut client,
        ticket(
            "Idea",
            "It would be great if the form builder had a dark mode. No rush at all.",
        ),
    )
    .await;
    let result = triage_of(&idea);
    assert_eq!(
        result.category.as_ref().unwrap().label,
        "feature_request",
        "{result:?}"
    );
    assert_eq!(result.priority(), TicketPriority::Low, "{result:?}");

    // The subject and body are stored as the text; the same ticket again is cached.
    assert_eq!(
        idea.text,
        "Idea\nIt would be great if the form builder had a dark mode. No rush at all."
    );
    let again = triage(
        &mut client,
        ticket(
            "Idea",
            "It would be great if the form builder had a dark mode. No rush at all.",
        ),
    )
    .await;
    assert!(again.cached && !idea.cached);
    assert_eq!(triage_of(&again), triage_of(&idea));

    // A retry under the same Idempotency-Key answers the first triage, stored once; other
    // tickets under that key are refused.
    let keyed = |body: &str| {
        let mut request = tonic::Request::new(ticket("Export", body));
        request
            .metadata_mut()
            .insert("idempotency-key", "ticket-1".parse().unwrap());
        request
    };
    let first = client
        .classify_ticket(keyed("The CSV export is empty"))
        .await
        .unwrap()
        .into_inner();
    let retry = client
        .classify_ticket(keyed("The CSV export is empty"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first);
    let status = expect_code(
        client.classify_ticket(keyed("Another ticket")).await,
        Code::InvalidArgument,
    );
    assert_eq!(error_reason(&status), "IDEMPOTENCY_KEY_REUSED");
    let stored = client
        .list_classifications(ListClassificationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .classifications;
    assert_eq!(
        stored
            .iter()
            .filter(|stored| stored.text == first.text)
            .collect::<Vec<_>>(),
        [&first],
        "stored once"
    );
    app.stop().await;
}

/// Small label sets of `client`'s tenant for the three ticket fields, so that a triage
/// builds no prototypes of the shipped defaults (hundreds of examples per model).
async fn own_ticket_label_sets(client: &mut Client) {
    for (name, field, labels) in [
        (
            "Topics",
            TicketField::Category,
            vec![
                label("export", "exporting data, CSV files and downloads"),
                label("login", "signing in, passwords and accounts"),
            ],
        ),
        (
            "Urgency",
            TicketField::Priority,
            vec![
                label("low", "can wait"),
                label("medium", "normal handling"),
                label("high", "soon"),
                label("urgent", "now: an outage or data loss"),
            ],
        ),
        (
            "Moods",
            TicketField::Sentiment,
            vec![
                label("negative", "the writer is unhappy, annoyed or frustrated"),
                label("neutral", "the writer states facts calmly"),
                label("positive", "the writer is happy and thankful"),
            ],
        ),
    ] {
        client
            .create_label_set(CreateLabelSetRequest {
                label_set: Some(LabelSet {
                    display_name: name.to_owned(),
                    labels,
                    ticket_field: field as i32,
                    ..LabelSet::default()
                }),
                from_default: 0,
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_sentiment_is_read_by_the_sentiment_model_whatever_model_reads_the_rest() {
    const E5: &str = "models/multilingual-e5-small";
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut client = app.user(tenant, Role::Member);
    own_ticket_label_sets(&mut client).await;
    let e5_version = client
        .get_model(GetModelRequest {
            name: E5.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    let annoyed = ticket(
        "Still broken",
        "This is the third time I write about the same broken export. I am tired of waiting for a fix.",
    );
    let result = triage(&mut client, annoyed.clone()).await;
    assert_eq!(result.model, MODEL);
    let read = triage_of(&result);
    assert_eq!(read.sentiment_model, E5, "{read:?}");
    assert_eq!(read.sentiment_model_version, e5_version);

    // A call naming a model has its category and priority read by it; the sentiment still by
    // the sentiment model, to the same figures.
    let by_e5 = triage(
        &mut client,
        ClassifyTicketRequest {
            model: E5.to_owned(),
            ..annoyed.clone()
        },
    )
    .await;
    assert_eq!(by_e5.model, E5);
    let read_by_e5 = triage_of(&by_e5);
    assert_eq!(read_by_e5.sentiment_model, E5);
    assert_eq!(read_by_e5.sentiment(), read.sentiment());
    assert_eq!(read_by_e5.sentiment_confidence, read.sentiment_confidence);
    assert_ne!(
        read_by_e5.category_scores, read.category_scores,
        "another model read the category"
    );
    app.stop().await;

    // With no sentiment model set, the call's model reads all three.
    let app =
        TestApp::spawn_with(|config| config.options.ticket_sentiment_model = String::new()).await;
    let mut client = app.user(tenant, Role::Member);
    own_ticket_label_sets(&mut client).await;
    let result = triage(&mut client, annoyed).await;
    let read = triage_of(&result);
    assert_eq!(read.sentiment_model, MODEL, "{read:?}");
    assert_eq!(read.sentiment_model_version, result.model_version);
    app.stop().await;
}

#[tokio::test]
async fn a_tenants_own_label_sets_replace_the_defaults_and_learn_from_corrections() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut client = app.user(tenant, Role::Member);
    let shop = client
        .create_label_set(CreateLabelSetRequest {
            label_set: Some(LabelSet {
                display_name: "Shop categories".to_owned(),
                labels: vec![
                    label("shipping", "deliveries, parcels, tracking and couriers"),
                    label("returns", "returning products and exchanges"),
                ],
                ticket_field: TicketField::Category as i32,
                ..LabelSet::default()
            }),
            from_default: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shop.ticket_field, TicketField::Category as i32);
    let text = "My parcel has not arrived yet, the tracking number shows nothing";
    let first = triage(&mut client, ticket("", text)).await;
    let result = triage_of(&first);
    assert_eq!(result.category_label_set, shop.name);
    assert_eq!(result.category.as_ref().unwrap().label, "shipping");
    assert_eq!(result.priority_label_set, "", "the shipped priorities");

    // Its category can be corrected, and the label set learns.
    let corrected = client
        .correct_classification(CorrectClassificationRequest {
            name: first.name.clone(),
            label: "returns".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(corrected.outcome, Some(Outcome::Ticket(_))));
    let examples = client
        .list_label_examples(ListLabelExamplesRequest {
            parent: shop.name.clone(),
            ..ListLabelExamplesRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .examples;
    assert_eq!(examples.len(), 1);
    assert_eq!(examples[0].text, text);
    let again = triage(&mut client, ticket("", text)).await;
    assert_eq!(
        triage_of(&again).category.as_ref().unwrap().label,
        "returns",
        "{again:?}"
    );

    // One label set per field and tenant.
    let status = expect_code(
        client
            .create_label_set(CreateLabelSetRequest {
                label_set: Some(LabelSet {
                    display_name: "Other categories".to_owned(),
                    labels: vec![label("a", ""), label("b", "")],
                    ticket_field: TicketField::Category as i32,
                    ..LabelSet::default()
                }),
                from_default: 0,
            })
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(error_reason(&status), "TICKET_FIELD_TAKEN");
    // Priorities and sentiments keep their labels.
    let status = expect_code(
        client
            .create_label_set(CreateLabelSetRequest {
                label_set: Some(LabelSet {
                    display_name: "Priorities".to_owned(),
                    labels: vec![label("low", ""), label("high", "")],
                    ticket_field: TicketField::Priority as i32,
                    ..LabelSet::default()
                }),
                from_default: 0,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(bad_fields(&status), ["label_set.labels"]);

    // A sentiment set started from the shipped one, then used in its place.
    let moods = client
        .create_label_set(CreateLabelSetRequest {
            label_set: Some(LabelSet {
                display_name: "Our sentiments".to_owned(),
                ..LabelSet::default()
            }),
            from_default: TicketField::Sentiment as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let values: Vec<&str> = moods
        .labels
        .iter()
        .map(|label| label.value.as_str())
        .collect();
    assert_eq!(values, ["negative", "neutral", "positive"]);
    assert!(moods.example_count >= 30, "{moods:?}");
    assert_eq!(moods.ticket_field, TicketField::Unspecified as i32);
    let moods = client
        .update_label_set(UpdateLabelSetRequest {
            label_set: Some(LabelSet {
                name: moods.name.clone(),
                ticket_field: TicketField::Sentiment as i32,
                ..LabelSet::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["ticket_field".to_owned()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let used = triage(&mut client, ticket("", "Thanks a lot, you are amazing!")).await;
    assert_eq!(triage_of(&used).sentiment_label_set, moods.name);
    assert_eq!(triage_of(&used).sentiment(), Sentiment::Positive);

    // Another tenant's label sets are not its own, nor can it name them.
    let mut other = app.user(TenantId::generate(), Role::Member);
    let theirs = triage(&mut other, ticket("", text)).await;
    assert_eq!(triage_of(&theirs).category_label_set, "");
    assert_eq!(triage_of(&theirs).sentiment_label_set, "");
    let status = expect_code(
        other
            .classify_ticket(ClassifyTicketRequest {
                category_label_set: shop.name.clone(),
                ..ticket("", text)
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "LABEL_SET_NOT_FOUND");
    app.stop().await;
}

#[tokio::test]
async fn bad_tickets_are_refused_with_every_bad_field() {
    let app = TestApp::spawn().await;
    let mut client = app.member();
    let status = expect_code(
        client
            .classify_ticket(ClassifyTicketRequest {
                model: "x".to_owned(),
                subject: "s".repeat(501),
                body: String::new(),
                category_label_set: "labelSets/nope".to_owned(),
                source: "s".repeat(501),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&status),
        ["model", "subject", "body", "category_label_set", "source"]
    );
    let status = expect_code(
        client
            .classify_ticket(ClassifyTicketRequest {
                category_label_set: format!("labelSets/{}", uuid::Uuid::now_v7()),
                ..ticket("", "Where is my invoice?")
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "LABEL_SET_NOT_FOUND");
    // A category label set the caller names need not be its ticket field's.
    let named = create_label_set(
        &mut client,
        "Departments",
        vec![label("sales", "buying"), label("support", "problems")],
    )
    .await;
    let result = triage(
        &mut client,
        ClassifyTicketRequest {
            category_label_set: named.name.clone(),
            ..ticket("", "The export crashes")
        },
    )
    .await;
    assert_eq!(triage_of(&result).category_label_set, named.name);
    let mut viewer = app.user(TenantId::generate(), Role::Viewer);
    expect_code(
        viewer.classify_ticket(ticket("", "hello")).await,
        Code::PermissionDenied,
    );
    app.stop().await;
}
