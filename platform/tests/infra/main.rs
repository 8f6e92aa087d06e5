//! The platform's infrastructure pieces against the real servers.

mod amqp;
mod consumer;
mod server;
mod testing;
