//! The files of ExportSubmissions: CSV with a column per field, or NDJSON with a submission
//! per line, encoded row by row so that an export of any size needs constant memory.

use serde_json::{Value, json};

use crate::domain::{FieldId, FormVersion, Submission};

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 with a header row.
    Csv,
    /// One proto3 JSON submission per line.
    Ndjson,
}

impl Format {
    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }
}

/// The CSV columns after `id`, `create_time` and `form_version`: the fields of `versions`
/// (newest first) that take answers, each once, the newest version's order first.
pub fn columns(versions: &[FormVersion]) -> Vec<FieldId> {
    let mut columns: Vec<FieldId> = Vec::new();
    for version in versions {
        for field in &version.definition.fields {
            if field.kind.is_input() && !columns.contains(&field.id) {
                columns.push(field.id.clone());
            }
        }
    }
    columns
}

/// Writes submissions in a format, one at a time, into a buffer the caller drains.
#[derive(Debug)]
pub struct Encoder {
    format: Format,
    columns: Vec<FieldId>,
    buffer: Vec<u8>,
}

impl Encoder {
    /// An encoder; a CSV one starts with its header row.
    pub fn new(format: Format, columns: Vec<FieldId>) -> Encoder {
        let mut encoder = Encoder {
            format,
            columns,
            buffer: Vec::new(),
        };
        if format == Format::Csv {
            let header = ["id", "create_time", "form_version"]
                .into_iter()
                .map(str::to_owned)
                .chain(encoder.columns.iter().map(ToString::to_string))
                .collect::<Vec<_>>();
            encoder.write_record(&header);
        }
        encoder
    }

    /// Appends `submission`.
    pub fn push(&mut self, submission: &Submission) {
        match self.format {
            Format::Csv => {
                let mut record = vec![
                    submission.id.to_string(),
                    submission
                        .created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    submission.form_version.to_string(),
                ];
                record.extend(
                    self.columns
                        .iter()
                        .map(|column| cell(submission.data.get(column.as_str()))),
                );
                self.write_record(&record);
            }
            Format::Ndjson => {
                // The Submission's proto3 JSON, with answers as stored: a whole number stays
                // `3`, where a protobuf Struct would make it the double `3.0`.
                let line = json!({
                    "name": format!("forms/{}/submissions/{}", submission.form_id, submission.id),
                    "id": submission.id.to_string(),
                    "form_version": submission.form_version,
                    "data": submission.data,
                    "submitter": submission.submitter,
                    "create_time": submission
                        .created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                });
                serde_json::to_writer(&mut self.buffer, &line).expect("a submission is JSON");
                self.buffer.push(b'\n');
            }
        }
    }

    /// How many bytes wait in the buffer.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The bytes written since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }

    fn write_record(&mut self, record: &[String]) {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut self.buffer);
        writer
            .write_record(record)
            .and_then(|()| writer.flush().map_err(Into::into))
            .expect("writing to memory cannot fail");
    }
}

/// An answer as a CSV cell.
fn cell(answer: Option<&Value>) -> String {
    match answer {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => guard_formula(text),
        Some(Value::Number(number)) => match (number.as_i64(), number.as_f64()) {
            (Some(whole), _) => whole.to_string(),
            (None, Some(float)) => float.to_string(),
            (None, None) => number.to_string(),
        },
        Some(Value::Bool(yes)) => yes.to_string(),
        Some(Value::Array(choices)) => guard_formula(
            &choices
                .iter()
                .map(|choice| match choice {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(";"),
        ),
        Some(other @ Value::Object(_)) => guard_formula(&other.to_string()),
    }
}

/// Text a spreadsheet would run as a formula, made inert with a leading `'` (OWASP's advice
/// against CSV injection).
fn guard_formula(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::{FormId, SubmissionId};

    fn submission(data: Value) -> Submission {
        Submission {
            id: SubmissionId::parse("0192f0c0-0000-7000-8000-000000000001").unwrap(),
            form_id: FormId::generate(),
            form_version: 2,
            data: data.as_object().unwrap().clone(),
            submitter: String::new(),
            created_at: chrono::Utc
                .with_ymd_and_hms(2026, 12, 5, 10, 30, 0)
                .unwrap(),
        }
    }

    fn ids(names: &[&str]) -> Vec<FieldId> {
        names
            .iter()
            .map(|name| FieldId::parse(name).unwrap())
            .collect()
    }

    #[test]
    fn csv_has_a_header_and_a_cell_per_column_quoted_and_guarded() {
        let mut encoder = Encoder::new(
            Format::Csv,
            ids(&["name", "seats", "plans", "agree", "missing", "note"]),
        );
        encoder.push(&submission(json!({
            "name": "Ada, \"the\" first",
            "seats": 3.0,
            "plans": ["a", "b"],
            "agree": true,
            "note": "=HYPERLINK(\"http://evil\")",
        })));
        encoder.push(&submission(
            json!({"name": "line\nbreak", "seats": 2.5, "note": "-1"}),
        ));
        let text = String::from_utf8(encoder.take()).unwrap();
        assert_eq!(
            text,
            "id,create_time,form_version,name,seats,plans,agree,missing,note\r\n\
             0192f0c0-0000-7000-8000-000000000001,2026-12-05T10:30:00.000000Z,2,\
             \"Ada, \"\"the\"\" first\",3,a;b,true,,\"'=HYPERLINK(\"\"http://evil\"\")\"\r\n\
             0192f0c0-0000-7000-8000-000000000001,2026-12-05T10:30:00.000000Z,2,\
             \"line\nbreak\",2.5,,,,'-1\r\n"
        );
        assert_eq!(encoder.buffered(), 0);
    }

    #[test]
    fn ndjson_has_one_submission_per_line() {
        let mut encoder = Encoder::new(Format::Ndjson, ids(&["name"]));
        assert_eq!(encoder.buffered(), 0, "no header");
        encoder.push(&submission(json!({"name": "Ada"})));
        encoder.push(&submission(json!({"name": "Grace"})));
        let text = String::from_utf8(encoder.take()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["data"], json!({"name": "Grace"}));
        assert_eq!(lines[1]["form_version"], 2);
        assert_eq!(lines[1]["create_time"], "2026-12-05T10:30:00Z");
        assert_eq!(
            lines[1]["name"].as_str().unwrap().rsplit('/').next(),
            lines[1]["id"].as_str()
        );
        assert!(text.ends_with('\n'));
    }
}
