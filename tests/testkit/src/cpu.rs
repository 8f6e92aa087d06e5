//! What benchmarks measure CPU with: the CPU used by the whole machine over a window, from
//! `/proc/stat`, and by each kind of process, from `/proc/<pid>/stat`: this process (the load
//! generator, the gateway and the services), Postgres, RabbitMQ, Redis and everything else.

use std::collections::HashMap;

/// Linux reports `/proc` CPU times in USER_HZ, 100 a second on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// Who used the CPU, by process name.
const GROUPS: [&str; 5] = [
    "bench process (client, gateway, services)",
    "Postgres",
    "RabbitMQ",
    "Redis",
    "other processes",
];

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
            let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else {
                continue;
            };
            let command = &text[open + 1..close];
            // After the command: state (field 3), …, utime (14) and stime (15).
            let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
            let (Some(user), Some(system)) = (fields.get(11), fields.get(12)) else {
                continue;
            };
            let used = user.parse::<u64>().unwrap_or(0) + system.parse::<u64>().unwrap_or(0);
            processes.insert(pid, (group_of(pid, own_pid, command), used));
        }
        CpuSnapshot {
            cores: u32::try_from(cores).expect("a few cores"),
            busy: total - idle,
            total,
            processes,
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
        CpuUse {
            cores: self.cores,
            machine_busy: self.busy - before.busy,
            machine_total: self.total - before.total,
            by_group,
        }
    }
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
        let mut parts: Vec<String> = self
            .by_group
            .iter()
            .map(|(group, ticks)| format!("{group} {:.2}", per_unit(*ticks)))
            .collect();
        parts.push(format!(
            "unattributed {:.2}",
            per_unit(self.machine_busy.saturating_sub(attributed))
        ));
        format!(
            "  CPU, whole machine: {:.0} % of {} cores busy, {:.2} ms per {unit} ({count} in {:.1} s)\n  \
             by process, ms per {unit}: {}",
            100.0 * self.machine_busy as f64 / self.machine_total.max(1) as f64,
            self.cores,
            per_unit(self.machine_busy),
            self.machine_total as f64 / TICKS_PER_SECOND / f64::from(self.cores),
            parts.join(", "),
        )
    }
}
