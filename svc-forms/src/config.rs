//! Configuration of svc-forms: flags and environment variables (`svc-forms --help`).

use platform::config::{NoOptions, ServiceConfig};
use platform::suite::Forms;

/// svc-forms's configuration: the kit's blocks; its own options come with its domain.
pub type Config = ServiceConfig<Forms, NoOptions>;

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Config::command().debug_assert();
    }
}
