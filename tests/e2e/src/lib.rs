//! End-to-end tests of the FormFlow suite live in `tests/`: they start the real `formflow`
//! binary over a private database, Redis prefix and RabbitMQ prefix, and talk to it the way
//! users do, over HTTP. They never link a service crate.
