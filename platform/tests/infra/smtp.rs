//! The test SMTP server: mail sent with a real client (lettre) is read back with its envelope,
//! headers and parts; while the server is stopped sending fails to connect, and after a restart
//! on the same port it succeeds again.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use platform::testing::SmtpServer;

const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);

fn mailbox(address: &str) -> Mailbox {
    address.parse().expect("a valid mailbox")
}

fn transport(server: &SmtpServer) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.port())
        .timeout(Some(Duration::from_secs(5)))
        .build()
}

fn plain_message(subject: &str) -> Message {
    Message::builder()
        .from(mailbox("FormFlow <noreply@formflow.test>"))
        .to(mailbox("alice@example.test"))
        .subject(subject)
        .body("Your form has a new submission.".to_owned())
        .expect("a valid message")
}

/// Whether `error` or one of its causes is a refused TCP connection.
fn connection_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if current
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io_error| io_error.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cause = current.source();
    }
    false
}

#[tokio::test]
async fn sent_mail_is_read_back_and_sending_fails_while_the_server_is_stopped() {
    let mut server = SmtpServer::start().await;
    let transport = transport(&server);

    // Arrange / Act: a plain message, then a multipart one with a custom header, a Message-ID,
    // a Bcc recipient and non-ASCII text (encoded on the wire, decoded when read back).
    transport
        .send(plain_message("New submission"))
        .await
        .expect("sending the plain message");
    let multipart = Message::builder()
        .from(mailbox("FormFlow <noreply@formflow.test>"))
        .to(mailbox("Bob <bob@example.test>"))
        .to(mailbox("carol@example.test"))
        .bcc(mailbox("audit@example.test"))
        .subject("Grüße from FormFlow")
        .message_id(Some("<welcome-1@formflow.test>".to_owned()))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-FormFlow-Tenant"),
            "acme".to_owned(),
        ))
        .multipart(MultiPart::alternative_plain_html(
            "Grüße, Bob.".to_owned(),
            "<p>Grüße, <b>Bob</b>.</p>".to_owned(),
        ))
        .expect("a valid message");
    transport
        .send(multipart)
        .await
        .expect("sending the multipart message");

    // Assert
    let received = server.wait_for(2, ARRIVAL_TIMEOUT).await;
    assert_eq!(received.len(), 2, "{received:#?}");
    let plain = &received[0];
    assert_eq!(plain.from, "noreply@formflow.test");
    assert_eq!(
        plain.header("From"),
        Some("FormFlow <noreply@formflow.test>")
    );
    assert_eq!(plain.to, ["alice@example.test"]);
    assert_eq!(plain.mail_from, "noreply@formflow.test");
    assert_eq!(plain.rcpt_to, ["alice@example.test"]);
    assert_eq!(plain.subject, "New submission");
    assert_eq!(
        plain.message_id, "",
        "lettre adds a Message-ID only when asked to"
    );
    assert_eq!(
        plain.text.as_deref().map(str::trim_end),
        Some("Your form has a new submission.")
    );
    assert_eq!(plain.html, None);

    let multipart = &received[1];
    assert_eq!(multipart.from, "noreply@formflow.test");
    assert_eq!(multipart.to, ["bob@example.test", "carol@example.test"]);
    assert_eq!(
        multipart.rcpt_to,
        [
            "bob@example.test",
            "carol@example.test",
            "audit@example.test"
        ],
        "Bcc recipients are in the envelope"
    );
    assert_eq!(multipart.header("Bcc"), None, "Bcc is not in the headers");
    assert_eq!(multipart.subject, "Grüße from FormFlow");
    assert_eq!(multipart.message_id, "<welcome-1@formflow.test>");
    assert_eq!(multipart.header("x-formflow-tenant"), Some("acme"));
    assert_eq!(
        multipart.text.as_deref().map(str::trim_end),
        Some("Grüße, Bob.")
    );
    assert_eq!(
        multipart.html.as_deref().map(str::trim_end),
        Some("<p>Grüße, <b>Bob</b>.</p>")
    );

    // Act / Assert: down, then back on the same port with the same mailbox.
    server.stop().await;
    let error = transport
        .send(plain_message("While down"))
        .await
        .expect_err("sending to a stopped server fails");
    assert!(connection_refused(&error), "{error:?}");

    server.restart().await;
    transport
        .send(plain_message("After restart"))
        .await
        .expect("sending after the restart");
    let received = server.wait_for(3, ARRIVAL_TIMEOUT).await;
    let subjects: Vec<&str> = received.iter().map(|mail| mail.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["New submission", "Grüße from FormFlow", "After restart"]
    );
}
