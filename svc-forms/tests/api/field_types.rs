//! Answers through the real API: what each field type takes (and stores, normalised) and
//! refuses, constraints, required fields, defaults, unknown keys; and logic: each operator
//! showing or hiding a field, required_when, sections, and the logic refused when a form is
//! saved.

use platform::context::TenantId;
use platform::testing::violated_fields;
use proto::formflow::forms::v1 as wire;
use proto::formflow::forms::v1::{ConditionOperator, FieldType};
use serde_json::{Value, json};
use tonic::{Code, Status};

use crate::helpers::{TestApp, data_of, field, options, public_form, when};

/// `value` as it comes back over gRPC, where every number is a double (`12` reads `12.0`).
fn over_the_wire(value: Value) -> Value {
    let wire: pbjson_types::Value = serde_json::from_value(value).expect("a JSON value");
    serde_json::to_value(wire).unwrap()
}

/// `data` submitted to `form`: the stored data, or the status.
async fn submitted(
    app: &TestApp,
    tenant: TenantId,
    form: &wire::Form,
    data: Value,
) -> Result<Value, Status> {
    app.submit(tenant, form, data)
        .await
        .map(|submission| data_of(&submission))
}

/// A field with `validation`.
fn constrained(id: &str, kind: FieldType, validation: wire::FieldValidation) -> wire::FormField {
    wire::FormField {
        validation: Some(validation),
        ..field(id, kind)
    }
}

/// Submits each case's data to `form` and describes every case whose outcome differs from
/// the one expected: the stored data, or refusal with the status message listing exactly
/// these violations.
async fn wrong_outcomes(
    app: &TestApp,
    tenant: TenantId,
    form: &wire::Form,
    cases: Vec<(Value, Result<Value, &str>)>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (data, expected) in cases {
        let outcome = submitted(app, tenant, form, data.clone()).await;
        match (outcome, expected) {
            (Ok(stored), Ok(expected)) if stored == over_the_wire(expected.clone()) => {}
            (Err(status), Err(message))
                if status.code() == Code::InvalidArgument
                    && status.message() == format!("invalid request: {message}") => {}
            (outcome, expected) => wrong.push(format!(
                "{}: {data}\n  expected {expected:?}\n  got      {outcome:?}",
                form.title
            )),
        }
    }
    wrong
}

#[tokio::test]
async fn each_field_type_stores_its_answers_normalised_and_refuses_others() {
    // A type, answers it takes with what is stored, and answers it refuses.
    type Case = (FieldType, Vec<(Value, Value)>, Vec<Value>);
    let cases: Vec<Case> = vec![
        (
            FieldType::Text,
            vec![
                (json!("hello"), json!("hello")),
                (json!(" spaced "), json!(" spaced ")),
                (json!(42), json!("42")),
                (json!("x".repeat(1000)), json!("x".repeat(1000))),
            ],
            vec![
                json!(true),
                json!(["a"]),
                json!({}),
                json!("x".repeat(1001)),
            ],
        ),
        (
            FieldType::Textarea,
            vec![(json!("line\nline"), json!("line\nline"))],
            vec![json!({}), json!(false), json!("x".repeat(10_001))],
        ),
        (
            FieldType::Email,
            vec![(json!(" ada@example.org "), json!("ada@example.org"))],
            vec![
                json!("ada"),
                json!("ada@localhost"),
                json!("a b@example.org"),
                json!("ada@.org"),
                json!(1),
            ],
        ),
        (
            FieldType::Number,
            vec![
                (json!(3.5), json!(3.5)),
                (json!("-2.25"), json!(-2.25)),
                (json!(" 7 "), json!(7)),
            ],
            vec![json!("seven"), json!("NaN"), json!("1e400"), json!(true)],
        ),
        (
            FieldType::Integer,
            vec![
                (json!(3), json!(3)),
                (json!(3.0), json!(3)),
                (json!("12"), json!(12)),
                (json!(-4), json!(-4)),
            ],
            vec![json!(3.5), json!("3.5"), json!("three"), json!(1e300)],
        ),
        (
            FieldType::Phone,
            vec![
                (json!("+33 1 23 45 67 89"), json!("+33123456789")),
                (json!("+1 (415) 555-0100"), json!("+14155550100")),
                (json!("+44.20.7946.0958"), json!("+442079460958")),
            ],
            vec![
                json!("0123456789"),
                json!("+12"),
                json!("+33 abc"),
                json!("+0123456789"),
                json!(33),
            ],
        ),
        (
            FieldType::Url,
            vec![
                (
                    json!("https://example.org/a?b=c"),
                    json!("https://example.org/a?b=c"),
                ),
                (json!(" http://example.org "), json!("http://example.org")),
            ],
            vec![
                json!("ftp://example.org"),
                json!("example.org"),
                json!("https://"),
                json!("javascript:alert(1)"),
            ],
        ),
        (
            FieldType::Date,
            vec![
                (json!("2026-02-28"), json!("2026-02-28")),
                (json!("2028-02-29"), json!("2028-02-29")),
            ],
            vec![
                json!("2026-02-30"),
                json!("2026-02-29"),
                json!("28/02/2026"),
                json!(20260228),
            ],
        ),
        (
            FieldType::DateTime,
            vec![
                (
                    json!("2026-12-05T10:00:00+01:00"),
                    json!("2026-12-05T10:00:00+01:00"),
                ),
                (
                    json!("2026-12-05T09:00:00Z"),
                    json!("2026-12-05T09:00:00+00:00"),
                ),
            ],
            vec![
                json!("2026-12-05 10:00"),
                json!("2026-12-05T10:00:00"),
                json!("2026-12-05"),
            ],
        ),
        (
            FieldType::Select,
            vec![(json!("red"), json!("red"))],
            vec![json!("purple"), json!("RED"), json!(["red"]), json!(1)],
        ),
        (
            FieldType::Radio,
            vec![(json!("blue"), json!("blue"))],
            vec![json!("RED"), json!(["blue"])],
        ),
        (
            FieldType::MultiSelect,
            vec![
                (json!(["red", "blue"]), json!(["red", "blue"])),
                (json!("green"), json!(["green"])),
                (json!([]), json!([])),
            ],
            vec![
                json!(["red", "red"]),
                json!(["purple"]),
                json!({"red": true}),
                json!(1),
            ],
        ),
        (
            FieldType::Checkbox,
            vec![
                (json!(true), json!(true)),
                (json!(false), json!(false)),
                (json!("on"), json!(true)),
                (json!("true"), json!(true)),
                (json!("false"), json!(false)),
            ],
            vec![json!("yes"), json!(1), json!(["on"])],
        ),
        (
            FieldType::Rating,
            vec![
                (json!(5), json!(5)),
                (json!("1"), json!(1)),
                (json!(4.0), json!(4)),
            ],
            vec![json!(0), json!(6), json!(2.5), json!("five")],
        ),
        (
            FieldType::Hidden,
            vec![
                (json!("campaign-42"), json!("campaign-42")),
                (json!("x".repeat(1000)), json!("x".repeat(1000))),
            ],
            vec![json!(42), json!(true), json!("x".repeat(1001))],
        ),
    ];
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let reader = app.member(tenant);
    let mut wrong = Vec::new();

    for (kind, accepted, refused) in cases {
        let mut answer = field("answer", kind);
        if matches!(
            kind,
            FieldType::Select | FieldType::Radio | FieldType::MultiSelect
        ) {
            answer.options = options(&["red", "green", "blue"]);
        }
        let form = app
            .published(tenant, public_form(&format!("{kind:?}"), vec![answer]))
            .await;
        for (sent, stored) in accepted {
            let submission = match app.submit(tenant, &form, json!({"answer": sent})).await {
                Ok(submission) => submission,
                Err(status) => {
                    wrong.push(format!("{kind:?} refused {sent}: {status:?}"));
                    continue;
                }
            };
            let expected = over_the_wire(json!({"answer": stored}));
            if data_of(&submission) != expected {
                wrong.push(format!(
                    "{kind:?} {sent}: stored {} instead of {expected}",
                    data_of(&submission)
                ));
            }
            // What is stored reads back as answered.
            let read = reader
                .clone()
                .get_submission(wire::GetSubmissionRequest {
                    name: submission.name.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(read, submission, "{kind:?} {sent}");
            assert_eq!(read.form_version, 1);
        }
        for sent in refused {
            match app.submit(tenant, &form, json!({"answer": sent})).await {
                Err(status)
                    if status.code() == Code::InvalidArgument
                        && violated_fields(&status) == ["submission.data.answer"] => {}
                other => wrong.push(format!(
                    "{kind:?} {sent}: expected a violation of submission.data.answer, got \
                     {other:?}"
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn constraints_bound_answers_with_the_fields_own_message_when_it_has_one() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut topics = constrained(
        "topics",
        FieldType::MultiSelect,
        wire::FieldValidation {
            min_selected: Some(1),
            max_selected: Some(2),
            ..Default::default()
        },
    );
    topics.options = options(&["a", "b", "c"]);
    let form = app
        .published(
            tenant,
            public_form(
                "Constraints",
                vec![
                    constrained(
                        "short",
                        FieldType::Text,
                        wire::FieldValidation {
                            min_length: Some(2),
                            max_length: Some(5),
                            ..Default::default()
                        },
                    ),
                    constrained(
                        "code",
                        FieldType::Text,
                        wire::FieldValidation {
                            pattern: "[A-Z]{3}-[0-9]{2}".into(),
                            error_message: "Use the form ABC-12".into(),
                            ..Default::default()
                        },
                    ),
                    constrained(
                        "bio",
                        FieldType::Textarea,
                        wire::FieldValidation {
                            max_length: Some(10),
                            ..Default::default()
                        },
                    ),
                    constrained(
                        "count",
                        FieldType::Integer,
                        wire::FieldValidation {
                            min: Some(1.0),
                            max: Some(10.0),
                            ..Default::default()
                        },
                    ),
                    constrained(
                        "price",
                        FieldType::Number,
                        wire::FieldValidation {
                            min: Some(0.5),
                            max: Some(99.5),
                            ..Default::default()
                        },
                    ),
                    topics,
                    constrained(
                        "score",
                        FieldType::Rating,
                        wire::FieldValidation {
                            max: Some(10.0),
                            ..Default::default()
                        },
                    ),
                    field("stars", FieldType::Rating),
                ],
            ),
        )
        .await;

    // What is sent, and what is stored or the message of the refusal.
    type Case = (Value, Result<Value, &'static str>);
    let cases: Vec<Case> = vec![
        (json!({"short": "ab"}), Ok(json!({"short": "ab"}))),
        (json!({"short": "abcde"}), Ok(json!({"short": "abcde"}))),
        // Lengths count characters, not bytes.
        (json!({"short": "ééééé"}), Ok(json!({"short": "ééééé"}))),
        (
            json!({"short": "a"}),
            Err("submission.data.short: must be at least 2 characters"),
        ),
        (
            json!({"short": "abcdef"}),
            Err("submission.data.short: must be at most 5 characters"),
        ),
        (json!({"code": "ABC-12"}), Ok(json!({"code": "ABC-12"}))),
        (
            json!({"code": "abc-12"}),
            Err("submission.data.code: Use the form ABC-12"),
        ),
        // The pattern matches the whole answer.
        (
            json!({"code": "XABC-12"}),
            Err("submission.data.code: Use the form ABC-12"),
        ),
        (
            json!({"code": "ABC-123"}),
            Err("submission.data.code: Use the form ABC-12"),
        ),
        (
            json!({"bio": "0123456789"}),
            Ok(json!({"bio": "0123456789"})),
        ),
        (
            json!({"bio": "0123456789a"}),
            Err("submission.data.bio: must be at most 10 characters"),
        ),
        (json!({"count": 1}), Ok(json!({"count": 1}))),
        (json!({"count": "10"}), Ok(json!({"count": 10}))),
        (
            json!({"count": 0}),
            Err("submission.data.count: must be at least 1"),
        ),
        (
            json!({"count": 11}),
            Err("submission.data.count: must be at most 10"),
        ),
        (json!({"price": 0.5}), Ok(json!({"price": 0.5}))),
        (json!({"price": "99.5"}), Ok(json!({"price": 99.5}))),
        (
            json!({"price": 0.25}),
            Err("submission.data.price: must be at least 0.5"),
        ),
        (
            json!({"price": 99.75}),
            Err("submission.data.price: must be at most 99.5"),
        ),
        (
            json!({"topics": ["a", "c"]}),
            Ok(json!({"topics": ["a", "c"]})),
        ),
        (
            json!({"topics": []}),
            Err("submission.data.topics: must have at least 1 options selected"),
        ),
        (
            json!({"topics": ["a", "b", "c"]}),
            Err("submission.data.topics: must have at most 2 options selected"),
        ),
        (json!({"score": 10}), Ok(json!({"score": 10}))),
        (
            json!({"score": 11}),
            Err("submission.data.score: must be a whole number from 1 to 10"),
        ),
        (
            json!({"score": 0}),
            Err("submission.data.score: must be a whole number from 1 to 10"),
        ),
        (json!({"stars": 5}), Ok(json!({"stars": 5}))),
        (
            json!({"stars": 6}),
            Err("submission.data.stars: must be a whole number from 1 to 5"),
        ),
        // Every bad answer is reported at once, in field order.
        (
            json!({"count": 0, "short": "a", "stars": 9}),
            Err("submission.data.short: must be at least 2 characters; \
                 submission.data.count: must be at least 1; \
                 submission.data.stars: must be a whole number from 1 to 5"),
        ),
    ];
    let wrong = wrong_outcomes(&app, tenant, &form, cases).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn required_fields_unknown_keys_and_defaults() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let required = |id: &str, kind| wire::FormField {
        required: true,
        ..field(id, kind)
    };
    let mut topics = required("topics", FieldType::MultiSelect);
    topics.options = options(&["a", "b"]);
    let with_default = |id: &str, kind, default: Value| wire::FormField {
        default_value: Some(serde_json::from_value(default).unwrap()),
        ..field(id, kind)
    };
    let mut plan = with_default("plan", FieldType::Select, json!("free"));
    plan.options = options(&["free", "pro"]);
    plan.required = true;
    let form = app
        .published(
            tenant,
            public_form(
                "Required",
                vec![
                    field("intro", FieldType::Section),
                    required("name", FieldType::Text),
                    required("agree", FieldType::Checkbox),
                    topics,
                    plan,
                    // A default sent as text is stored as the field's type.
                    with_default("seats", FieldType::Integer, json!("1")),
                    with_default("source", FieldType::Hidden, json!("web")),
                ],
            ),
        )
        .await;
    let defaults = json!({"plan": "free", "seats": 1, "source": "web"});
    let with = |answers: Value| {
        let mut data = defaults.clone();
        data.as_object_mut()
            .unwrap()
            .extend(answers.as_object().unwrap().clone());
        data
    };
    let all_required = "submission.data.name: is required; \
                        submission.data.agree: is required; \
                        submission.data.topics: is required";

    type Case = (Value, Result<Value, &'static str>);
    let cases: Vec<Case> = vec![
        (json!({}), Err(all_required)),
        // Blank text, an unticked box and no choice do not answer a required field.
        (
            json!({"name": "  ", "agree": false, "topics": []}),
            Err(all_required),
        ),
        (
            json!({"name": null, "agree": "false", "topics": null}),
            Err(all_required),
        ),
        (
            json!({"name": "Ada", "agree": "on", "topics": "a"}),
            Ok(with(json!({"name": "Ada", "agree": true, "topics": ["a"]}))),
        ),
        // Answers replace defaults; blank answers leave them.
        (
            json!({
                "name": "Ada", "agree": true, "topics": ["b"],
                "plan": "pro", "seats": "7", "source": "newsletter",
            }),
            Ok(json!({
                "name": "Ada", "agree": true, "topics": ["b"],
                "plan": "pro", "seats": 7, "source": "newsletter",
            })),
        ),
        (
            json!({
                "name": "Ada", "agree": true, "topics": ["a"],
                "plan": "", "seats": null, "source": " ",
            }),
            Ok(with(json!({"name": "Ada", "agree": true, "topics": ["a"]}))),
        ),
        // Keys that name no field (a section takes no answer) are refused, first and sorted.
        (
            json!({"nope": 1, "name": "Ada", "agree": true, "topics": ["a"], "intro": "x"}),
            Err("submission.data.intro: is not a field of this form; \
                 submission.data.nope: is not a field of this form"),
        ),
        (
            json!({"Name": "Ada", "agree": true, "topics": ["a"]}),
            Err("submission.data.Name: is not a field of this form; \
                 submission.data.name: is required"),
        ),
    ];
    let wrong = wrong_outcomes(&app, tenant, &form, cases).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A field `trigger` of `kind`, with options `a`, `b`, `c` when it has options.
fn trigger(kind: FieldType) -> wire::FormField {
    let mut trigger = field("trigger", kind);
    if matches!(
        kind,
        FieldType::Select | FieldType::Radio | FieldType::MultiSelect
    ) {
        trigger.options = options(&["a", "b", "c"]);
    }
    trigger
}

#[tokio::test]
async fn each_operator_shows_or_hides_a_required_field() {
    // The tested field's type, the operator and its value, answers to the tested field that
    // show the required field, and answers that hide it (None: unanswered).
    type Case = (
        FieldType,
        ConditionOperator,
        Option<Value>,
        Vec<Option<Value>>,
        Vec<Option<Value>>,
    );
    let cases: Vec<Case> = vec![
        (
            FieldType::Select,
            ConditionOperator::Equals,
            Some(json!("a")),
            vec![Some(json!("a"))],
            vec![Some(json!("b")), None],
        ),
        (
            FieldType::Checkbox,
            ConditionOperator::Equals,
            Some(json!(true)),
            vec![Some(json!("on"))],
            vec![Some(json!(false)), None],
        ),
        (
            FieldType::Integer,
            ConditionOperator::Equals,
            Some(json!("3")),
            vec![Some(json!(3)), Some(json!("3"))],
            vec![Some(json!(4))],
        ),
        (
            FieldType::Select,
            ConditionOperator::NotEquals,
            Some(json!("a")),
            vec![Some(json!("b")), None],
            vec![Some(json!("a"))],
        ),
        (
            FieldType::MultiSelect,
            ConditionOperator::Contains,
            Some(json!("a")),
            vec![Some(json!(["b", "a"])), Some(json!("a"))],
            vec![Some(json!(["b", "c"])), Some(json!([])), None],
        ),
        (
            FieldType::Integer,
            ConditionOperator::GreaterThan,
            Some(json!(3)),
            vec![Some(json!(4)), Some(json!("10"))],
            vec![Some(json!(3)), Some(json!(-5)), None],
        ),
        (
            FieldType::Number,
            ConditionOperator::LessThan,
            Some(json!(2.5)),
            vec![Some(json!(2.0)), Some(json!(-1))],
            vec![Some(json!(2.5)), Some(json!(3)), None],
        ),
        (
            FieldType::Rating,
            ConditionOperator::GreaterThan,
            Some(json!(3)),
            vec![Some(json!(4))],
            vec![Some(json!(3)), None],
        ),
        (
            FieldType::Date,
            ConditionOperator::GreaterThan,
            Some(json!("2026-01-31")),
            vec![Some(json!("2026-02-01"))],
            vec![Some(json!("2026-01-31")), Some(json!("2025-12-31")), None],
        ),
        (
            FieldType::DateTime,
            ConditionOperator::LessThan,
            Some(json!("2026-01-01T00:00:00Z")),
            // 00:30 in Paris is 23:30 UTC the day before.
            vec![Some(json!("2026-01-01T00:30:00+01:00"))],
            vec![Some(json!("2026-01-01T00:30:00+00:00")), None],
        ),
        (
            FieldType::Text,
            ConditionOperator::Answered,
            None,
            vec![Some(json!("x"))],
            vec![Some(json!("   ")), None],
        ),
        (
            FieldType::Checkbox,
            ConditionOperator::NotAnswered,
            None,
            vec![None, Some(json!(""))],
            vec![Some(json!(false)), Some(json!(true))],
        ),
    ];
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut wrong = Vec::new();

    for (index, (kind, operator, value, showing, hiding)) in cases.into_iter().enumerate() {
        let detail = wire::FormField {
            required: true,
            visible_when: when("trigger", operator, value.clone()),
            ..field("detail", FieldType::Text)
        };
        let form = app
            .published(
                tenant,
                public_form(
                    &format!("Case {index}: {kind:?} {operator:?} {value:?}"),
                    vec![trigger(kind), detail],
                ),
            )
            .await;
        let data = |answer: &Option<Value>, detail: Option<&str>| {
            let mut data = json!({});
            if let Some(answer) = answer {
                data["trigger"] = answer.clone();
            }
            if let Some(detail) = detail {
                data["detail"] = json!(detail);
            }
            data
        };
        for answer in &showing {
            // Shown: required applies, and the answer is stored.
            let without = submitted(&app, tenant, &form, data(answer, None)).await;
            if !matches!(&without, Err(status) if status.code() == Code::InvalidArgument
                && violated_fields(status) == ["submission.data.detail"])
            {
                wrong.push(format!(
                    "{}, trigger {answer:?}: shown, so detail is required; got {without:?}",
                    form.title
                ));
            }
            match submitted(&app, tenant, &form, data(answer, Some("seen"))).await {
                Ok(stored) if stored.get("detail") == Some(&json!("seen")) => {}
                other => wrong.push(format!(
                    "{}, trigger {answer:?}: shown, so detail is stored; got {other:?}",
                    form.title
                )),
            }
        }
        for answer in &hiding {
            // Hidden: required does not apply, and what was sent for it is not stored.
            for detail in [None, Some("ignored")] {
                match submitted(&app, tenant, &form, data(answer, detail)).await {
                    Ok(stored) if stored.get("detail").is_none() => {}
                    other => wrong.push(format!(
                        "{}, trigger {answer:?}, detail {detail:?}: hidden, so accepted without \
                         detail; got {other:?}",
                        form.title
                    )),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn required_when_requires_a_field_only_while_its_condition_holds() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut plan = field("plan", FieldType::Select);
    plan.options = options(&["free", "pro"]);
    let email = wire::FormField {
        required_when: when("plan", ConditionOperator::Equals, Some(json!("pro"))),
        ..field("email", FieldType::Email)
    };
    // Shown for big teams only, and then required for the pro plan.
    let mut seats = field("seats", FieldType::Integer);
    seats.required_when = when("plan", ConditionOperator::Equals, Some(json!("pro")));
    let mut size = field("size", FieldType::Radio);
    size.options = options(&["small", "big"]);
    seats.visible_when = when("size", ConditionOperator::Equals, Some(json!("big")));
    let form = app
        .published(
            tenant,
            public_form("Required when", vec![plan, email, size, seats]),
        )
        .await;

    type Case = (Value, Result<Value, &'static str>);
    let cases: Vec<Case> = vec![
        (json!({}), Ok(json!({}))),
        (json!({"plan": "free"}), Ok(json!({"plan": "free"}))),
        (
            json!({"plan": "free", "email": "a@b.co"}),
            Ok(json!({"plan": "free", "email": "a@b.co"})),
        ),
        (
            json!({"plan": "pro"}),
            Err("submission.data.email: is required"),
        ),
        (
            json!({"plan": "pro", "email": " "}),
            Err("submission.data.email: is required"),
        ),
        (
            json!({"plan": "pro", "email": "a@b.co"}),
            Ok(json!({"plan": "pro", "email": "a@b.co"})),
        ),
        // Hidden wins over required.
        (
            json!({"plan": "pro", "email": "a@b.co", "size": "small", "seats": 3}),
            Ok(json!({"plan": "pro", "email": "a@b.co", "size": "small"})),
        ),
        (
            json!({"plan": "pro", "email": "a@b.co", "size": "big"}),
            Err("submission.data.seats: is required"),
        ),
        (
            json!({"plan": "free", "size": "big"}),
            Ok(json!({"plan": "free", "size": "big"})),
        ),
        (
            json!({"plan": "pro", "email": "a@b.co", "size": "big", "seats": "3"}),
            Ok(json!({"plan": "pro", "email": "a@b.co", "size": "big", "seats": 3})),
        ),
    ];
    let wrong = wrong_outcomes(&app, tenant, &form, cases).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_hidden_section_hides_every_field_up_to_the_next_section() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let mut kind = field("kind", FieldType::Radio);
    kind.options = options(&["bug", "question"]);
    kind.required = true;
    let mut bug_section = field("bug_details", FieldType::Section);
    bug_section.visible_when = when("kind", ConditionOperator::Equals, Some(json!("bug")));
    let mut steps = field("steps", FieldType::Textarea);
    steps.required = true;
    let mut severity = field("severity", FieldType::Rating);
    severity.default_value = Some(serde_json::from_value(json!(3)).unwrap());
    let mut email = field("email", FieldType::Email);
    email.required = true;
    let form = app
        .published(
            tenant,
            public_form(
                "Support",
                vec![
                    kind,
                    bug_section,
                    steps,
                    field("version", FieldType::Text),
                    severity,
                    field("contact", FieldType::Section),
                    email,
                ],
            ),
        )
        .await;

    type Case = (Value, Result<Value, &'static str>);
    let cases: Vec<Case> = vec![
        // Hidden: its fields are not required, their answers and defaults are not stored, and
        // the next section is shown again.
        (
            json!({
                "kind": "question", "steps": "ignored", "version": "1.2", "severity": 5,
                "email": "a@b.co",
            }),
            Ok(json!({"kind": "question", "email": "a@b.co"})),
        ),
        (
            json!({"kind": "question"}),
            Err("submission.data.email: is required"),
        ),
        // Hidden while its condition's field is unanswered.
        (
            json!({"email": "a@b.co"}),
            Err("submission.data.kind: is required"),
        ),
        // Shown: its fields are checked, required and defaulted.
        (
            json!({"kind": "bug", "email": "a@b.co"}),
            Err("submission.data.steps: is required"),
        ),
        (
            json!({"kind": "bug", "steps": "1. open", "severity": 9, "email": "a@b.co"}),
            Err("submission.data.severity: must be a whole number from 1 to 5"),
        ),
        (
            json!({"kind": "bug", "steps": "1. open", "version": "1.2", "email": "a@b.co"}),
            Ok(json!({
                "kind": "bug", "steps": "1. open", "version": "1.2", "severity": 3,
                "email": "a@b.co",
            })),
        ),
    ];
    let wrong = wrong_outcomes(&app, tenant, &form, cases).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn logic_that_cannot_apply_is_refused_when_the_form_is_saved() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let text = |id: &str| field(id, FieldType::Text);
    let shown_when = |id: &str, on: &str, operator, value: Option<Value>| wire::FormField {
        visible_when: when(on, operator, value),
        ..text(id)
    };
    let mut plan = field("plan", FieldType::Select);
    plan.options = options(&["free", "pro"]);
    let answered = ConditionOperator::Answered;

    // What is wrong, the fields, and the one violation expected: its field and description.
    type Case = (
        &'static str,
        Vec<wire::FormField>,
        &'static str,
        &'static str,
    );
    const ORDERED_ONLY: &str =
        "GREATER_THAN and LESS_THAN test NUMBER, INTEGER, RATING, DATE and DATE_TIME fields only";
    let cases: Vec<Case> = vec![
        (
            "a condition on a later field",
            vec![
                shown_when("first", "second", answered, None),
                text("second"),
            ],
            "form.fields[0].visible_when.field_id",
            "second is not a field placed before this one",
        ),
        (
            "a condition on the field itself",
            vec![
                text("first"),
                shown_when("second", "second", answered, None),
            ],
            "form.fields[1].visible_when.field_id",
            "cannot test the field's own answer",
        ),
        (
            "a condition on a missing field",
            vec![text("first"), shown_when("second", "ghost", answered, None)],
            "form.fields[1].visible_when.field_id",
            "ghost is not a field placed before this one",
        ),
        (
            "a value that is not an option",
            vec![
                plan.clone(),
                shown_when(
                    "second",
                    "plan",
                    ConditionOperator::Equals,
                    Some(json!("enterprise")),
                ),
            ],
            "form.fields[1].visible_when.field_id",
            "value must be one of the field's options",
        ),
        (
            "GREATER_THAN on a TEXT field",
            vec![
                text("first"),
                shown_when(
                    "second",
                    "first",
                    ConditionOperator::GreaterThan,
                    Some(json!("m")),
                ),
            ],
            "form.fields[1].visible_when.field_id",
            ORDERED_ONLY,
        ),
        (
            "LESS_THAN on a SELECT field",
            vec![
                plan.clone(),
                shown_when(
                    "second",
                    "plan",
                    ConditionOperator::LessThan,
                    Some(json!("pro")),
                ),
            ],
            "form.fields[1].visible_when.field_id",
            ORDERED_ONLY,
        ),
        (
            "CONTAINS on a SELECT field",
            vec![
                plan.clone(),
                shown_when(
                    "second",
                    "plan",
                    ConditionOperator::Contains,
                    Some(json!("pro")),
                ),
            ],
            "form.fields[1].visible_when.field_id",
            "CONTAINS tests MULTI_SELECT fields only",
        ),
        (
            "a value of the wrong type",
            vec![
                field("seats", FieldType::Integer),
                shown_when(
                    "second",
                    "seats",
                    ConditionOperator::GreaterThan,
                    Some(json!("many")),
                ),
            ],
            "form.fields[1].visible_when.field_id",
            "value must be a whole number",
        ),
        (
            "a condition on a section",
            vec![
                field("intro", FieldType::Section),
                shown_when("second", "intro", answered, None),
            ],
            "form.fields[1].visible_when.field_id",
            "intro is a section, which has no answer",
        ),
        (
            "ANSWERED with a value",
            vec![
                text("first"),
                shown_when("second", "first", answered, Some(json!("x"))),
            ],
            "form.fields[1].visible_when.field_id",
            "takes no value",
        ),
        (
            "EQUALS without a value",
            vec![
                plan.clone(),
                shown_when("second", "plan", ConditionOperator::Equals, None),
            ],
            "form.fields[1].visible_when.field_id",
            "needs a value",
        ),
        (
            "required_when on a later field",
            vec![
                wire::FormField {
                    required_when: when("second", answered, None),
                    ..text("first")
                },
                text("second"),
            ],
            "form.fields[0].required_when.field_id",
            "second is not a field placed before this one",
        ),
    ];
    let member = app.member(tenant);
    let mut wrong = Vec::new();
    for (what, fields, path, description) in cases {
        let refused = member
            .clone()
            .create_form(wire::CreateFormRequest {
                form: Some(public_form(what, fields)),
            })
            .await;
        match refused {
            Err(status)
                if status.code() == Code::InvalidArgument
                    && violated_fields(&status) == [path]
                    && status.message() == format!("invalid request: {path}: {description}") => {}
            other => wrong.push(format!(
                "{what}: expected {path}: {description}\n  got {other:?}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Logic that fits is saved, its value normalised as an answer to the field it tests.
    let created = app
        .create(
            tenant,
            public_form(
                "Fits",
                vec![
                    field("seats", FieldType::Integer),
                    shown_when(
                        "note",
                        "seats",
                        ConditionOperator::GreaterThan,
                        Some(json!("10")),
                    ),
                ],
            ),
        )
        .await;
    assert_eq!(
        created.fields[1].visible_when,
        when("seats", ConditionOperator::GreaterThan, Some(json!(10)))
    );
    let listed = member
        .clone()
        .list_forms(wire::ListFormsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.forms.len(), 1, "no refused form was saved");
}
