//! Configuration of svc-notify: flags and environment variables (`svc-notify --help`).

use platform::config::{NoOptions, ServiceConfig};
use platform::suite::Notify;

/// svc-notify's configuration: the kit's blocks; its own options come with its domain.
pub type Config = ServiceConfig<Notify, NoOptions>;

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Config::command().debug_assert();
    }
}
