//! svc-notify's API tests: the service over real Postgres, Redis and RabbitMQ, sending email to
//! a real SMTP server on loopback.

mod delivery;
mod helpers;
mod isolation;
mod send;
mod templates;
