//! svc-notify's API tests: the service over real Postgres, Redis and RabbitMQ, sending email to
//! a real SMTP server on loopback and webhooks to HTTP receivers on loopback.

mod delivery;
mod digests;
mod helpers;
mod isolation;
mod live;
mod preferences;
mod reactions;
mod retention;
mod send;
mod templates;
mod user_email;
mod webhooks;
