//! ExportSubmissions: CSV and NDJSON files of a form's submissions, streamed in chunks, with
//! the listing's filters, columns from every version, and constant memory for any size.

use platform::context::{Role, TenantId};
use platform::testing::{error_reason, expect_code, violated_fields};
use proto::formflow::forms::v1::{self as wire, FieldType};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{Client, TestApp, field, options, public_form};

/// The whole file an export answers, and its content type.
async fn export(
    client: &Client,
    request: wire::ExportSubmissionsRequest,
) -> Result<(String, String), tonic::Status> {
    let mut chunks = client
        .clone()
        .export_submissions(request)
        .await?
        .into_inner();
    let (mut content_type, mut data) = (String::new(), Vec::new());
    while let Some(chunk) = chunks.message().await? {
        content_type = chunk.content_type;
        data.extend(chunk.data);
    }
    Ok((content_type, String::from_utf8(data).unwrap()))
}

fn request(form: &wire::Form, format: wire::ExportFormat) -> wire::ExportSubmissionsRequest {
    wire::ExportSubmissionsRequest {
        parent: form.name.clone(),
        format: format as i32,
        ..Default::default()
    }
}

/// The cells of a CSV file, without the `id` and `create_time` columns.
fn table(csv: &str) -> Vec<Vec<String>> {
    csv.split("\r\n")
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut cells: Vec<String> = line.split(',').map(str::to_owned).collect();
            cells.drain(..2);
            cells
        })
        .collect()
}

#[tokio::test]
async fn exports_are_csv_or_ndjson_with_every_versions_fields_oldest_first() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let viewer = app.user(tenant, Role::Viewer);
    let mut plans = field("plans", FieldType::MultiSelect);
    plans.options = options(&["a", "b"]);
    let form = app
        .published(
            tenant,
            public_form(
                "Export",
                vec![field("name", FieldType::Text), plans.clone()],
            ),
        )
        .await;
    app.submit(tenant, &form, json!({"name": "Ada", "plans": ["a", "b"]}))
        .await
        .unwrap();
    app.submit(tenant, &form, json!({"name": "=cmd()"}))
        .await
        .unwrap();
    // Version 2 drops `plans` and adds `seats` before `name`.
    app.member(tenant)
        .update_form(wire::UpdateFormRequest {
            form: Some(wire::Form {
                name: form.name.clone(),
                fields: vec![
                    field("seats", FieldType::Integer),
                    field("name", FieldType::Text),
                ],
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["fields".into()],
            }),
        })
        .await
        .unwrap();
    app.member(tenant)
        .publish_form(wire::PublishFormRequest {
            name: form.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let last = app
        .submit(tenant, &form, json!({"name": "Grace", "seats": 3}))
        .await
        .unwrap();

    let (content_type, csv) = export(&viewer, request(&form, wire::ExportFormat::Csv))
        .await
        .unwrap();
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert!(csv.starts_with("id,create_time,form_version,"), "{csv}");
    assert_eq!(
        table(&csv),
        [
            vec!["form_version", "seats", "name", "plans"],
            vec!["1", "", "Ada", "a;b"],
            vec!["1", "", "'=cmd()", ""],
            vec!["2", "3", "Grace", ""],
        ]
    );
    let last_row = csv.trim_end().lines().last().unwrap();
    assert!(last_row.starts_with(&format!("{},", last.id)), "{csv}");

    // One version: its columns and submissions only; answer filters as in ListSubmissions.
    let mut first_version = request(&form, wire::ExportFormat::Csv);
    first_version.form_version = 1;
    let (_, csv) = export(&viewer, first_version).await.unwrap();
    assert_eq!(table(&csv)[0], ["form_version", "name", "plans"]);
    assert_eq!(table(&csv).len(), 3);
    let mut grace = request(&form, wire::ExportFormat::Ndjson);
    grace.filter = r#"data.name = "Grace""#.into();
    let (content_type, ndjson) = export(&viewer, grace).await.unwrap();
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["name"], last.name);
    assert_eq!(lines[0]["data"], json!({"name": "Grace", "seats": 3}));

    // Nothing to export is a header alone, or an empty file.
    let mut none = request(&form, wire::ExportFormat::Csv);
    none.filter = r#"data.name = "Nobody""#.into();
    let (_, csv) = export(&viewer, none.clone()).await.unwrap();
    assert_eq!(table(&csv).len(), 1);
    none.format = wire::ExportFormat::Ndjson as i32;
    assert_eq!(export(&viewer, none).await.unwrap().1, "");
}

#[tokio::test]
async fn exports_are_refused_for_bad_requests_strangers_and_other_tenants() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (TenantId::generate(), TenantId::generate());
    let form = app
        .published(
            acme,
            public_form("Private", vec![field("name", FieldType::Text)]),
        )
        .await;
    app.submit(acme, &form, json!({"name": "Ada"}))
        .await
        .unwrap();

    let mut unspecified = request(&form, wire::ExportFormat::Csv);
    unspecified.format = 0;
    unspecified.filter = "name = Ada".into();
    let status = expect_code(
        export(&app.member(acme), unspecified).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["filter", "format"]);
    let mut missing_version = request(&form, wire::ExportFormat::Csv);
    missing_version.form_version = 7;
    let status = expect_code(
        export(&app.member(acme), missing_version).await,
        Code::NotFound,
    );
    assert_eq!(error_reason(&status), "VERSION_NOT_FOUND");

    // Anonymous callers may submit to a public form, never read its submissions.
    expect_code(
        export(
            &app.anonymous(acme),
            request(&form, wire::ExportFormat::Csv),
        )
        .await,
        Code::Unauthenticated,
    );
    // Another tenant finds no such form, by id or by slug.
    let by_slug = wire::Form {
        name: format!("forms/{}", form.slug),
        ..Default::default()
    };
    for target in [&form, &by_slug] {
        let status = expect_code(
            export(
                &app.user(globex, Role::Owner),
                request(target, wire::ExportFormat::Ndjson),
            )
            .await,
            Code::NotFound,
        );
        assert_eq!(error_reason(&status), "FORM_NOT_FOUND");
        assert!(!status.message().contains("Ada"));
    }
}

/// The process's resident memory, in KiB.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[tokio::test]
async fn an_export_of_200k_rows_streams_in_bounded_memory() {
    const ROWS: i64 = 200_000;
    let app = TestApp::spawn().await;
    let tenant = TenantId::generate();
    let form = app
        .published(
            tenant,
            public_form("Big", vec![field("note", FieldType::Textarea)]),
        )
        .await;
    // 200k stored submissions of ~400 bytes each: an 80 MB file.
    let mut admin = app.infra.admin_connection().await;
    sqlx::query(
        "INSERT INTO forms.submissions (id, tenant_id, form_id, form_version, data, submitter, created_at) \
         SELECT gen_random_uuid(), $1, $2, 1, \
                jsonb_build_object('note', repeat('x', 400) || n), '', \
                now() - interval '1 hour' + n * interval '1 millisecond' \
         FROM generate_series(1, $3) AS n",
    )
    .bind(tenant.as_uuid())
    .bind(uuid::Uuid::parse_str(&form.id).unwrap())
    .bind(ROWS)
    .execute(&mut admin)
    .await
    .unwrap();

    // The service runs in this process: its memory is this process's.
    let before = resident_kib();
    let mut peak = before;
    let mut chunks = app
        .member(tenant)
        .export_submissions(request(&form, wire::ExportFormat::Csv))
        .await
        .unwrap()
        .into_inner();
    let (mut lines, mut bytes, mut count) = (0_i64, 0_usize, 0_usize);
    let mut last_line = String::new();
    while let Some(chunk) = chunks.message().await.unwrap() {
        lines += chunk.data.iter().filter(|byte| **byte == b'\n').count() as i64;
        bytes += chunk.data.len();
        count += 1;
        if chunk.data.len() > 1 {
            let text = String::from_utf8_lossy(&chunk.data);
            if let Some(line) = text.trim_end().rsplit("\r\n").next() {
                last_line = line.to_owned();
            }
        }
        if count % 64 == 0 {
            peak = peak.max(resident_kib());
        }
    }
    peak = peak.max(resident_kib());
    assert_eq!(lines, ROWS + 1, "a header and every row");
    assert!(bytes > 80_000_000, "{bytes} bytes");
    assert!(count > 1_000, "streamed in {count} chunks, not at once");
    assert!(
        last_line.ends_with(&format!("x{ROWS}")),
        "oldest first: {last_line}"
    );
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 48,
        "exporting {} MB grew memory by {grown_mib} MiB",
        bytes / 1_000_000
    );
}
