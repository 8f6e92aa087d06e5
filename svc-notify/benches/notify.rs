//! What a notification costs (issue 14). svc-notify runs in this process on loopback (release
//! build) against the real Postgres, Redis and RabbitMQ, and a real SMTP server (aiosmtpd);
//! clients call its gRPC API directly.
//!
//! 1. **Accepted**: callers each send in-app notifications (inline content, one user of 64
//!    each) one after another for a while: notifications accepted per second, the send's
//!    latency (p50, p99), and the CPU the machine spent per notification, by process (the
//!    deliveries of those notifications run meanwhile and are counted in).
//! 2. **Live**: every user has StreamInbox open (one stream each); callers send to them: the
//!    time from the send's start to the message's arrival on the user's stream (p50, p99).
//! 3. **Email**: callers send notifications each with one email recipient as fast as they are
//!    accepted; emails per second from the first send to the last message stored by the SMTP
//!    server.
//!
//! Then it checks that nothing was lost or doubled: every in-app delivery delivered, one inbox
//! message each, every email stored once. Those checks panic; nothing about time is asserted.
//!
//! Run with `scripts/bench.sh notify`; the figures are recorded in docs/benchmarks.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use platform::context::{Role, TenantId, UserId};
use platform::testing::{CallMetadata, SmtpServer, TestInfra, TestKeys, TestServer};
use proto::formflow::notify::v1 as wire;
use proto::formflow::notify::v1::notify_service_client::NotifyServiceClient;
use secrecy::SecretString;
use testkit::bench::percentile;
use testkit::cpu::CpuSnapshot;
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Client = NotifyServiceClient<InterceptedService<Channel, CallMetadata>>;

const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);
/// Callers of the accepted and live runs.
const CALLERS: usize = 32;
/// Users notified (and, in the live run, streaming).
const USERS: usize = 64;
/// Emails sent in the email run.
const EMAILS: usize = 2_000;

fn inline(recipient: wire::Recipient, sequence: usize) -> wire::SendNotificationRequest {
    wire::SendNotificationRequest {
        recipients: vec![recipient],
        topic: "bench.notice".into(),
        content: Some(wire::InlineContent {
            subject: format!("Ticket T-{sequence} was assigned to you"),
            body: "Ticket {{ ticket }} needs an answer within the hour.".into(),
            link: String::new(),
        }),
        data: Some(
            serde_json::from_value(serde_json::json!({"ticket": format!("T-{sequence}")}))
                .expect("an object"),
        ),
        ..Default::default()
    }
}

fn user_recipient(user: UserId) -> wire::Recipient {
    wire::Recipient {
        target: Some(wire::recipient::Target::User(format!("users/{user}"))),
    }
}

/// Sends in-app notifications from `callers` callers for the warm-up and the measured window;
/// answers the latencies of the sends that started in the window and the names of all
/// notifications accepted.
async fn accepted(client: &Client, users: &[UserId]) -> (Vec<Duration>, usize, Vec<String>) {
    let warm_up_until = Instant::now() + WARM_UP;
    let until = warm_up_until + MEASURE;
    let sequence = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (mut client, users, sequence) = (client.clone(), users.to_vec(), sequence.clone());
        callers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut names = Vec::new();
            while Instant::now() < until {
                let n = sequence.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let started = Instant::now();
                let sent = client
                    .send_notification(inline(user_recipient(users[n % users.len()]), n))
                    .await
                    .expect("a notification accepted")
                    .into_inner();
                if started >= warm_up_until {
                    latencies.push(started.elapsed());
                }
                names.push(sent.notification.expect("the notification").name);
            }
            (latencies, names)
        }));
    }
    let mut latencies = Vec::new();
    let mut names = Vec::new();
    for caller in callers {
        let (mut some, mut named) = caller.await.expect("a caller");
        latencies.append(&mut some);
        names.append(&mut named);
    }
    latencies.sort();
    let measured = latencies.len();
    (latencies, measured, names)
}

/// When each notification reached its user's stream.
#[derive(Default)]
struct Arrivals {
    slots: Mutex<HashMap<String, Slot>>,
}

enum Slot {
    Waiting(oneshot::Sender<Instant>),
    Arrived(Instant),
}

impl Arrivals {
    fn arrived(&self, notification: String, at: Instant) {
        let mut slots = self.slots.lock().expect("not poisoned");
        if let Some(Slot::Waiting(waiter)) = slots.insert(notification, Slot::Arrived(at)) {
            let _ = waiter.send(at);
        }
    }

    async fn of(&self, notification: &str) -> Instant {
        let waiting = {
            let mut slots = self.slots.lock().expect("not poisoned");
            if let Some(Slot::Arrived(at)) = slots.get(notification) {
                return *at;
            }
            let (sender, receiver) = oneshot::channel();
            slots.insert(notification.to_owned(), Slot::Waiting(sender));
            receiver
        };
        tokio::time::timeout(Duration::from_secs(60), waiting)
            .await
            .expect("a message on the stream within 60 s")
            .expect("the stream's reader")
    }
}

/// Opens every user's stream, then sends to them: answers the send → stream latencies of the
/// measured window.
async fn live(client: &Client, streams: Vec<Client>, users: &[UserId]) -> Vec<Duration> {
    let arrivals = Arc::new(Arrivals::default());
    for mut stream_client in streams {
        let mut stream = stream_client
            .stream_inbox(wire::StreamInboxRequest {})
            .await
            .expect("a stream")
            .into_inner();
        stream.message().await.expect("the first message");
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Ok(Some(update)) = stream.message().await {
                if let Some(message) = update.message {
                    arrivals.arrived(message.notification, Instant::now());
                }
            }
        });
    }
    let warm_up_until = Instant::now() + WARM_UP;
    let until = warm_up_until + MEASURE;
    let mut callers = Vec::new();
    for caller in 0..CALLERS / 2 {
        let (mut client, users, arrivals) = (client.clone(), users.to_vec(), arrivals.clone());
        callers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = caller;
            while Instant::now() < until {
                let started = Instant::now();
                let sent = client
                    .send_notification(inline(user_recipient(users[n % users.len()]), n))
                    .await
                    .expect("a notification accepted")
                    .into_inner();
                let name = sent.notification.expect("the notification").name;
                let arrived = arrivals.of(&name).await;
                if started >= warm_up_until {
                    latencies.push(arrived - started);
                }
                n += CALLERS;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for caller in callers {
        latencies.append(&mut caller.await.expect("a caller"));
    }
    latencies.sort();
    latencies
}

/// Sends [`EMAILS`] emails and waits until the SMTP server stored them all: answers the time
/// from the first send to the last message.
async fn emails(client: &Client, smtp: &SmtpServer) -> Duration {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (mut client, next) = (client.clone(), next.clone());
        callers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= EMAILS {
                    return;
                }
                let recipient = wire::Recipient {
                    target: Some(wire::recipient::Target::Email(format!(
                        "user{n}@bench.example"
                    ))),
                };
                client
                    .send_notification(inline(recipient, n))
                    .await
                    .expect("an email accepted");
            }
        }));
    }
    for caller in callers {
        caller.await.expect("a caller");
    }
    loop {
        let stored = smtp.message_count();
        if stored >= EMAILS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {stored} of {EMAILS} emails stored after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

fn line(label: &str, latencies: &[Duration]) -> String {
    format!(
        "{label}: p50 {:.1} ms, p99 {:.1} ms ({} samples)",
        percentile(latencies, 0.50).as_secs_f64() * 1e3,
        percentile(latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len()
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "svc-notify benchmark: {MEASURE:?} per timed run after a {WARM_UP:?} warm-up, {CALLERS} callers, release build\n"
    );
    let infra = TestInfra::new().await;
    let keys = TestKeys::new();
    let smtp = SmtpServer::start().await;
    let mut config = svc_notify::Config::try_parse_from(["svc-notify"])?;
    config.infra = infra.config();
    config.auth = keys.auth_config();
    config.options.smtp_url = Some(SecretString::from(format!(
        "smtp://127.0.0.1:{}",
        smtp.port()
    )));
    config.options.worker_concurrency = 64;
    let server = TestServer::start(|listeners| svc_notify::build(config, listeners)).await;
    let tenant = TenantId::generate();
    let member = keys.user_token(tenant, Role::Member);
    let client = NotifyServiceClient::with_interceptor(
        server.channel(),
        CallMetadata::new(Some(&member), Some(tenant)),
    );
    let users: Vec<UserId> = (0..USERS).map(|_| UserId::generate()).collect();

    let before = CpuSnapshot::take();
    let (latencies, measured, accepted_names) = accepted(&client, &users).await;
    let cpu = CpuSnapshot::take().since(&before);
    let seconds = MEASURE.as_secs_f64();
    println!(
        "accepted: {:.0} notifications/s ({measured} in {seconds:.0} s); {}",
        measured as f64 / seconds,
        line("send latency", &latencies)
    );
    println!("{}", cpu.describe(accepted_names.len(), "notification"));

    let streams: Vec<Client> = users
        .iter()
        .map(|user| {
            let mut claims = keys.claims(&user.to_string());
            claims.tid = Some(tenant.to_string());
            claims.role = Some(Role::Member.as_str().to_owned());
            NotifyServiceClient::with_interceptor(
                server.channel(),
                CallMetadata::new(Some(&keys.sign(&claims)), Some(tenant)),
            )
        })
        .collect();
    let live_latencies = live(&client, streams, &users).await;
    println!(
        "live: {} with {} callers and {USERS} open streams",
        line("send → message on the stream", &live_latencies),
        CALLERS / 2
    );

    let elapsed = emails(&client, &smtp).await;
    println!(
        "email: {EMAILS} emails stored by the SMTP server in {:.1} s: {:.0} emails/s",
        elapsed.as_secs_f64(),
        EMAILS as f64 / elapsed.as_secs_f64()
    );

    // Nothing lost or doubled.
    let mut connection = infra.admin_connection().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (deliveries, messages) = loop {
        let (deliveries, delivered, messages): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE d.state = 'delivered'), \
                    (SELECT count(*) FROM notify.inbox_messages) \
             FROM notify.deliveries d WHERE d.channel = 'in_app'",
        )
        .fetch_one(&mut connection)
        .await?;
        if delivered == deliveries {
            break (deliveries, messages);
        }
        assert!(
            Instant::now() < deadline,
            "{delivered} of {deliveries} in-app deliveries delivered after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        messages, deliveries,
        "one inbox message per in-app delivery"
    );
    println!("checks: {deliveries} in-app deliveries delivered, {messages} inbox messages");
    let mails = smtp.messages();
    let distinct: std::collections::HashSet<&str> =
        mails.iter().map(|mail| mail.message_id.as_str()).collect();
    assert_eq!(mails.len(), EMAILS, "every email stored once");
    assert_eq!(distinct.len(), EMAILS, "no email twice");
    println!(
        "checks: {} emails, {} distinct Message-IDs",
        mails.len(),
        distinct.len()
    );
    server.stop().await;
    Ok(())
}
