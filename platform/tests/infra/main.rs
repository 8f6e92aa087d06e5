//! The platform's infrastructure pieces against the real servers.

mod amqp;
mod balance;
mod consumer;
mod jobs;
mod least_privilege;
mod live;
mod outbox;
mod server;
mod smtp;
mod testing;
mod tls;
