//! What benchmarks measure CPU with: the CPU used by the whole machine over a window, from
//! `/proc/stat`, and by each kind of process, from `/proc/<pid>/stat`: this process (the load
//! generator, the gateway and the services), Postgres, RabbitMQ, Redis and everything else.
//! A benchmark that runs its load generator on threads named [`LOAD_THREADS`] (a runtime of
//! its own) gets that share apart, from `/proc/self/task/<tid>/stat`.

use std::collections::HashMap;

/// Linux reports `/proc` CPU times in USER_HZ, 100 a second on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// The name of the threads of a benchmark's load generator.
pub const LOAD_THREADS: &str = "load-generator";

/// Who used the CPU, by process name.
const GROUPS: [&str; 6] = [
    "bench process (client, gateway, services)",
    "Postgres",
    "RabbitMQ",
    "Redis",
    "other processes",
    "load generator",
];

/// What the benchmark's process is called when its load generator is counted apart.
const SYSTEM_IN_PROCESS: &str = "gateway and services (bench process)";

fn group_of(pid: u32, own_pid: u32, command: &str) -> &'static str {
    if pid == own_pid {
        GROUPS[0]
    } else if command == "postgres" {
        GROUPS[1]
    } else if matches!(
        command,
        "beam.smp" | "erl_child_setup" | "epmd" | "inet_gethost"
    ) {
        GROUPS[2]
    } else if command == "redis-server" {
        GROUPS[3]
    } else {
        GROUPS[4]
    }
}

/// The machine's CPU counters and every process's, in ticks.
#[derive(Debug)]
pub struct CpuSnapshot {
    cores: u32,
    busy: u64,
    total: u64,
    processes: HashMap<u32, (&'static str, u64)>,
    /// This process's [`LOAD_THREADS`] threads (not in its entry of `processes`).
    load_generator: u64,
}

impl CpuSnapshot {
    /// Reads the counters now.
    pub fn take() -> CpuSnapshot {
        let stat = std::fs::read_to_string("/proc/stat").expect("reading /proc/stat");
        let mut lines = stat.lines();
        // cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is
        // counted in user already.
        let ticks: Vec<u64> = lines
            .next()
            .expect("the cpu line")
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().expect("a number of ticks"))
            .collect();
        let total: u64 = ticks.iter().take(8).sum();
        let idle = ticks[3] + ticks[4];
        let cores = lines.filter(|line| line.starts_with("cpu")).count();
        let own_pid = std::process::id();
        let mut processes = HashMap::new();
        for entry in std::fs::read_dir("/proc").expect("listing /proc").flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            // A process may end between the listing and the read.
            let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((command, used)) = parse_stat(&text) else {
                continue;
            };
            processes.insert(pid, (group_of(pid, own_pid, command), used));
        }
        let load_generator = load_generator_ticks();
        if let Some((_, used)) = processes.get_mut(&own_pid) {
            *used = used.saturating_sub(load_generator);
        }
        CpuSnapshot {
            cores: u32::try_from(cores).expect("a few cores"),
            busy: total - idle,
            total,
            processes,
            load_generator,
        }
    }

    /// What was used since `before`. A process started meanwhile counts from zero; one that
    /// ended meanwhile is lost from its group (but not from the machine's figure).
    pub fn since(&self, before: &CpuSnapshot) -> CpuUse {
        let mut by_group: Vec<(&'static str, u64)> =
            GROUPS.iter().map(|group| (*group, 0)).collect();
        for (pid, (group, used)) in &self.processes {
            let earlier = before.processes.get(pid).map_or(0, |(_, earlier)| *earlier);
            let slot = by_group
                .iter_mut()
                .find(|(name, _)| name == group)
                .expect("a known group");
            slot.1 += used.saturating_sub(earlier);
        }
        by_group[5].1 = self.load_generator.saturating_sub(before.load_generator);
        CpuUse {
            cores: self.cores,
            machine_busy: self.busy - before.busy,
            machine_total: self.total - before.total,
            by_group,
        }
    }
}

/// The command and the CPU ticks (user and system) of a `/proc/…/stat` line.
fn parse_stat(text: &str) -> Option<(&str, u64)> {
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let command = &text[open + 1..close];
    // After the command: state (field 3), …, utime (14) and stime (15).
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let (user, system) = (fields.get(11)?, fields.get(12)?);
    Some((
        command,
        user.parse::<u64>().unwrap_or(0) + system.parse::<u64>().unwrap_or(0),
    ))
}

/// The ticks of this process's [`LOAD_THREADS`] threads (those alive now).
fn load_generator_ticks() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|text| {
            parse_stat(&text)
                .filter(|(command, _)| *command == LOAD_THREADS)
                .map(|(_, used)| used)
        })
        .sum()
}

/// CPU time used between two snapshots, in ticks.
#[derive(Debug)]
pub struct CpuUse {
    cores: u32,
    machine_busy: u64,
    machine_total: u64,
    by_group: Vec<(&'static str, u64)>,
}

impl CpuUse {
    /// Two lines: how busy the machine was and its CPU time per `unit` (`count` of them done
    /// in the window), then that time by kind of process (what no process was charged with is
    /// interrupt handling).
    pub fn describe(&self, count: usize, unit: &str) -> String {
        let per_unit = |ticks: u64| {
            let seconds = ticks as f64 / TICKS_PER_SECOND;
            seconds * 1e3 / count.max(1) as f64
        };
        let attributed: u64 = self.by_group.iter().map(|(_, ticks)| ticks).sum();
        let load = self
            .by_group
            .iter()
            .find(|(group, _)| *group == GROUPS[5])
            .map_or(0, |(_, ticks)| *ticks);
        let apart = load > 0;
        let mut parts: Vec<String> = self
            .by_group
            .iter()
            .filter(|(group, _)| apart || *group != GROUPS[5])
            .map(|(group, ticks)| {
                let group = if apart && *group == GROUPS[0] {
                    SYSTEM_IN_PROCESS
                } else {
                    group
                };
                format!("{group} {:.2}", per_unit(*ticks))
            })
            .collect();
        parts.push(format!(
            "unattributed {:.2}",
            per_unit(self.machine_busy.saturating_sub(attributed))
        ));
        let without_load = if apart {
            format!(
                ", {:.2} ms without the load generator",
                per_unit(self.machine_busy.saturating_sub(load))
            )
        } else {
            String::new()
        };
        format!(
            "  CPU, whole machine: {:.0} % of {} cores busy, {:.2} ms per {unit}{without_load} \
             ({count} in {:.1} s)\n  by process, ms per {unit}: {}",
            100.0 * self.machine_busy as f64 / self.machine_total.max(1) as f64,
            self.cores,
            per_unit(self.machine_busy),
            self.machine_total as f64 / TICKS_PER_SECOND / f64::from(self.cores),
            parts.join(", "),
        )
    }
}
