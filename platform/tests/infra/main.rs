//! The platform's infrastructure pieces against the real servers.

mod amqp;
mod server;
mod testing;
