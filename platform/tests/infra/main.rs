//! The platform's infrastructure pieces against the real servers.

mod amqp;
mod consumer;
mod outbox;
mod server;
mod testing;
