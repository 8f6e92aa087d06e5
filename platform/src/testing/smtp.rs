//! A real SMTP server for tests: aiosmtpd (installed from PyPI by `scripts/setup.sh`) on a
//! loopback port, storing what it receives in a maildir that the test reads back. It can be
//! stopped and started again on the same port, for "SMTP down, retries, back" tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use mailparse::{MailAddr, MailHeaderMap, ParsedMail};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use uuid::Uuid;

const AIOSMTPD_HINT: &str = "aiosmtpd is missing: `scripts/setup.sh --infra-only` installs it \
    from PyPI and `.formflow/env` (source it) sets AIOSMTPD";

/// How long aiosmtpd (a Python program) may take to listen, on a machine busy compiling.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// An aiosmtpd process on `127.0.0.1:<port>` with the `Mailbox` handler: every message it
/// accepts lands in a fresh temporary maildir. No TLS, no authentication. The process is killed
/// and the maildir removed when this is dropped.
#[derive(Debug)]
pub struct SmtpServer {
    addr: SocketAddr,
    program: PathBuf,
    /// Holds `maildir/` and `aiosmtpd.log` (the process's output, shown when it fails).
    root: PathBuf,
    maildir: PathBuf,
    child: Option<Child>,
}

impl SmtpServer {
    /// Starts aiosmtpd on a free loopback port and waits until it accepts connections.
    pub async fn start() -> SmtpServer {
        let program = aiosmtpd_program();
        let root = std::env::temp_dir().join(format!("ff-test-smtp-{}", Uuid::new_v4().simple()));
        let maildir = root.join("maildir");
        std::fs::create_dir_all(&root).expect("creating the SMTP server's directory");
        // The port is free when chosen but may be taken before aiosmtpd binds it: then another.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let addr = free_loopback_addr();
            match spawn(&program, addr, &maildir, &root).await {
                Ok(child) => {
                    return SmtpServer {
                        addr,
                        program,
                        root,
                        maildir,
                        child: Some(child),
                    };
                }
                Err(failure) => failures.push(failure),
            }
        }
        panic!("aiosmtpd did not start: {failures:#?}")
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on (its host is `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Kills the server and waits until it has exited: connections to its port are then
    /// refused. What it received stays readable.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            child.wait().await.expect("waiting for aiosmtpd to exit");
        }
    }

    /// Starts the server again on the same port and maildir (stopping it first if it runs).
    pub async fn restart(&mut self) {
        self.stop().await;
        let child = spawn(&self.program, self.addr, &self.maildir, &self.root)
            .await
            .unwrap_or_else(|failure| {
                panic!("aiosmtpd did not start again on {}: {failure}", self.addr)
            });
        self.child = Some(child);
    }

    /// How many messages were received so far (without reading them).
    pub fn message_count(&self) -> usize {
        ["new", "cur"]
            .iter()
            .filter_map(|folder| std::fs::read_dir(self.maildir.join(folder)).ok())
            .map(Iterator::count)
            .sum()
    }

    /// Every message received so far, in the order they arrived.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut files = Vec::new();
        for folder in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(folder)) else {
                continue; // created with the first message
            };
            for entry in entries {
                let entry = entry.expect("listing the maildir");
                let modified = entry
                    .metadata()
                    .and_then(|metadata| metadata.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((modified, entry.file_name(), entry.path()));
            }
        }
        // aiosmtpd stores one message at a time; file names break ties (they start with the
        // delivery time).
        files.sort();
        files
            .into_iter()
            .map(|(_, _, path)| {
                let raw = std::fs::read(&path).expect("reading a received message");
                ReceivedMail::parse(&raw)
                    .unwrap_or_else(|error| panic!("{} does not parse: {error}", path.display()))
            })
            .collect()
    }

    /// Polls until at least `count` messages have arrived and returns them all; fails the test
    /// with what did arrive after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if tokio::time::Instant::now() >= deadline {
                let subjects: Vec<&str> =
                    messages.iter().map(|mail| mail.subject.as_str()).collect();
                panic!(
                    "only {} of {count} mails arrived within {timeout:?}; subjects: {subjects:?}",
                    messages.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A message as the SMTP server stored it: the envelope, the main headers, the text and HTML
/// bodies (transfer encoding and charset undone) and every header.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`), Bcc included.
    pub rcpt_to: Vec<String>,
    /// The address of the `From` header, without its display name (see [`ReceivedMail::header`]).
    pub from: String,
    /// The addresses of the `To` header, without display names.
    pub to: Vec<String>,
    /// The decoded `Subject`; empty when missing.
    pub subject: String,
    /// The `Message-ID` as the header has it, angle brackets included; empty when missing.
    pub message_id: String,
    /// The first `text/plain` part that is not an attachment (or the body of a message without
    /// a content type).
    pub text: Option<String>,
    /// The first `text/html` part that is not an attachment.
    pub html: Option<String>,
    /// Every top-level header, decoded, in order; aiosmtpd adds `X-Peer`, `X-MailFrom` and
    /// `X-RcptTo`.
    pub headers: Vec<(String, String)>,
}

impl ReceivedMail {
    /// Parses a message as stored in the maildir.
    fn parse(raw: &[u8]) -> Result<ReceivedMail, mailparse::MailParseError> {
        let mail = mailparse::parse_mail(raw)?;
        let first_value = |name: &str| mail.headers.get_first_value(name).unwrap_or_default();
        let from = match mail.headers.get_first_header("From") {
            Some(header) => addresses(&mailparse::addrparse_header(header)?)
                .into_iter()
                .next()
                .unwrap_or_default(),
            None => String::new(),
        };
        let mut to = Vec::new();
        for header in mail.headers.get_all_headers("To") {
            to.extend(addresses(&mailparse::addrparse_header(header)?));
        }
        let rcpt_to = first_value("X-RcptTo")
            .split(',')
            .map(str::trim)
            .filter(|recipient| !recipient.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(ReceivedMail {
            mail_from: first_value("X-MailFrom"),
            rcpt_to,
            from,
            to,
            subject: first_value("Subject"),
            message_id: first_value("Message-ID").trim().to_owned(),
            text: first_body(&mail, "text/plain")?,
            html: first_body(&mail, "text/html")?,
            headers: mail
                .headers
                .iter()
                .map(|header| (header.get_key(), header.get_value()))
                .collect(),
        })
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The mailbox addresses of a header's address list, groups flattened.
fn addresses(list: &mailparse::MailAddrList) -> Vec<String> {
    list.iter()
        .flat_map(|address| match address {
            MailAddr::Single(single) => vec![single.addr.clone()],
            MailAddr::Group(group) => group
                .addrs
                .iter()
                .map(|single| single.addr.clone())
                .collect(),
        })
        .collect()
}

/// The decoded body of the first part of `mimetype` that is not an attachment, depth first.
fn first_body(
    part: &ParsedMail<'_>,
    mimetype: &str,
) -> Result<Option<String>, mailparse::MailParseError> {
    if part.subparts.is_empty() {
        let attachment =
            part.get_content_disposition().disposition == mailparse::DispositionType::Attachment;
        if part.ctype.mimetype.eq_ignore_ascii_case(mimetype) && !attachment {
            return part.get_body().map(Some);
        }
        return Ok(None);
    }
    for subpart in &part.subparts {
        if let Some(body) = first_body(subpart, mimetype)? {
            return Ok(Some(body));
        }
    }
    Ok(None)
}

/// `AIOSMTPD`, else where `scripts/setup.sh` installs it.
fn aiosmtpd_program() -> PathBuf {
    if let Some(program) = std::env::var_os("AIOSMTPD") {
        return PathBuf::from(program);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    cache
        .map(|cache| cache.join("formflow/venv/bin/aiosmtpd"))
        .filter(|program| program.is_file())
        .unwrap_or_else(|| panic!("AIOSMTPD is not set; {AIOSMTPD_HINT}"))
}

/// A loopback address with a port that was free a moment ago.
fn free_loopback_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding a loopback port")
}

/// Runs aiosmtpd on `addr` storing into `maildir`, its output appended to `root/aiosmtpd.log`;
/// returns once the port accepts connections, or why the process exited before.
async fn spawn(
    program: &Path,
    addr: SocketAddr,
    maildir: &Path,
    root: &Path,
) -> Result<Child, String> {
    let log_path = root.join("aiosmtpd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("opening the aiosmtpd log");
    let mut child = Command::new(program)
        // -n: stay the current user (it would setuid to `nobody` as root)
        .args([
            "-n",
            "-l",
            &addr.to_string(),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("sharing the aiosmtpd log"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("running {} ({error}); {AIOSMTPD_HINT}", program.display()));
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(child);
        }
        if let Some(status) = child.try_wait().expect("checking on aiosmtpd") {
            let output = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!("aiosmtpd on {addr} exited with {status}: {output}"));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "aiosmtpd did not listen on {addr} within {STARTUP_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_mail_is_parsed_with_its_envelope_addresses_and_decoded_parts() {
        let raw = concat!(
            "From: \"Form Flow\" <noreply@formflow.test>\n",
            "To: c@example.test, team: a@example.test, B <b@example.test>;\n",
            "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n",
            "Message-ID: <m1@formflow.test>\n",
            "Content-Type: multipart/mixed; boundary=outer\n",
            "X-MailFrom: bounce@formflow.test\n",
            "X-RcptTo: a@example.test, hidden@example.test\n",
            "\n",
            "--outer\n",
            "Content-Type: multipart/alternative; boundary=inner\n",
            "\n",
            "--inner\n",
            "Content-Type: text/plain; charset=utf-8\n",
            "Content-Transfer-Encoding: quoted-printable\n",
            "\n",
            "Gr=C3=BC=C3=9Fe\n",
            "--inner\n",
            "Content-Type: text/html; charset=utf-8\n",
            "Content-Transfer-Encoding: base64\n",
            "\n",
            "PHA+aGk8L3A+\n",
            "--inner--\n",
            "--outer\n",
            "Content-Type: text/plain\n",
            "Content-Disposition: attachment; filename=a.txt\n",
            "\n",
            "not the body\n",
            "--outer--\n",
        );

        let mail = ReceivedMail::parse(raw.as_bytes()).unwrap();

        assert_eq!(mail.mail_from, "bounce@formflow.test");
        assert_eq!(mail.rcpt_to, ["a@example.test", "hidden@example.test"]);
        assert_eq!(mail.from, "noreply@formflow.test");
        assert_eq!(
            mail.to,
            ["c@example.test", "a@example.test", "b@example.test"]
        );
        assert_eq!(mail.subject, "Grüße");
        assert_eq!(mail.message_id, "<m1@formflow.test>");
        assert_eq!(mail.text.as_deref(), Some("Grüße"));
        assert_eq!(mail.html.as_deref(), Some("<p>hi</p>"));
        assert_eq!(mail.header("message-id"), Some("<m1@formflow.test>"));
        assert_eq!(mail.header("Cc"), None);
    }
}
