//! Facts about the machine a benchmark ran on, read from `/proc` and `/sys` (Linux); a
//! fact that cannot be read is reported as `"unknown"`.

use serde::Serialize;

/// Where a benchmark ran.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub nproc: usize,
    /// CPU model name (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// The kernel's clock source (`tsc` makes `Instant::now` a vDSO call with no syscall).
    pub clocksource: String,
    /// Load averages over 1, 5 and 15 minutes when the run started (`/proc/loadavg`).
    pub load_average: String,
    /// The core the benchmark thread was pinned to, if any.
    pub pinned_core: Option<usize>,
    /// `release` or `debug` (a debug build's figures mean nothing).
    pub build: &'static str,
}

impl Machine {
    /// Reads the facts of this machine.
    pub fn detect(pinned_core: Option<usize>) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let cpu_model = read("/proc/cpuinfo")
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let first_line = |path: &str| {
            read(path)
                .and_then(|t| t.lines().next().map(str::trim).map(str::to_string))
                .unwrap_or_else(|| "unknown".into())
        };
        let load = first_line("/proc/loadavg");
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            kernel: first_line("/proc/sys/kernel/osrelease"),
            clocksource: first_line("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            load_average: load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
            pinned_core,
            build: if cfg!(debug_assertions) { "debug" } else { "release" },
        }
    }

    /// The `machine:` line that heads every plain-text report; `pinned` names what
    /// [`Machine::pinned_core`] is the core of (`"pinned"`, `"client pinned"`).
    pub fn summary(&self, pinned: &str) -> String {
        format!(
            "machine: {} × {}, kernel {}, clocksource {}, load {}, {pinned} {}, {} build",
            self.nproc,
            self.cpu_model,
            self.kernel,
            self.clocksource,
            self.load_average,
            self.pinned_core.map_or_else(|| "no".to_string(), |c| format!("to core {c}")),
            self.build
        )
    }
}

/// Measures how busy the rest of the machine was over an interval: CPU time of everything
/// but this process (`/proc/stat` minus `/proc/self/stat`, steal time included), in cores.
/// On a shared machine this says whether a run was disturbed.
#[derive(Clone, Copy, Debug)]
pub struct CpuMeter {
    busy: u64,
    total: u64,
    own: u64,
    cpus: u64,
}

impl CpuMeter {
    /// Starts measuring (`None` where `/proc` cannot be read).
    pub fn start() -> Option<CpuMeter> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let mut lines = stat.lines();
        let all: Vec<u64> = lines.next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        let cpus = lines.filter(|l| l.starts_with("cpu")).count() as u64;
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let (busy, total) = match all.as_slice() {
            [user, nice, system, idle, iowait, irq, softirq, steal, ..] => {
                let busy = user + nice + system + irq + softirq + steal;
                (busy, busy + idle + iowait)
            }
            _ => return None,
        };
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name: state is the first, utime the 12th.
        let rest: Vec<&str> = own_stat.rsplit_once(')')?.1.split_whitespace().collect();
        let own = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
        Some(CpuMeter { busy, total, own, cpus: cpus.max(1) })
    }

    /// Mean number of cores busy with other work since `self` was taken (`None` if
    /// `/proc` cannot be read or no clock tick passed).
    pub fn other_cores(&self) -> Option<f64> {
        let now = CpuMeter::start()?;
        let elapsed_per_cpu = now.total.checked_sub(self.total)? as f64 / self.cpus as f64;
        if elapsed_per_cpu <= 0.0 {
            return None;
        }
        let others = (now.busy.saturating_sub(self.busy)).saturating_sub(now.own.saturating_sub(self.own));
        Some(others as f64 / elapsed_per_cpu)
    }
}
