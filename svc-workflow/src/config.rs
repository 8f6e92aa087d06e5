//! Configuration of svc-workflow: flags and environment variables (`svc-workflow --help`).

use platform::config::{NoOptions, ServiceConfig};
use platform::suite::Workflow;

/// svc-workflow's configuration: the kit's blocks; its own options come with its domain.
pub type Config = ServiceConfig<Workflow, NoOptions>;

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Config::command().debug_assert();
    }
}
