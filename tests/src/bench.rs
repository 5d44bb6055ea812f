//! Shared pieces of the benchmarks (`tests/benches/`): machine facts, peak RSS, and the
//! BENCHMARKS.md section writer; [`controller`], what the ApplicationSet controller's
//! benchmarks share. Benchmarks report measurements; tests never time.

pub mod controller;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Peak resident set size of process `pid` (or `self`), from /proc (Linux), in MiB.
pub fn peak_rss_mib_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Peak RSS of this process, in MiB.
pub fn peak_rss_mib() -> f64 {
    peak_rss_mib_of("self")
}

/// Milliseconds as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median of non-empty samples.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// "Machine: CPU (N cores, M GiB RAM), kernel. Date: YYYY-MM-DD".
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| (kb + 512 * 1024) / (1024 * 1024));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "Machine: {cpu} ({cores} cores, {mem_gib} GiB RAM), Linux {}. Date: {date}",
        kernel.trim()
    )
}

/// The 1-minute load average when called (`?` if unknown): the machine is shared, so a
/// benchmark says how busy it was when it started.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// Replaces (or appends) the section between `<!-- bench:NAME -->` markers of the
/// workspace's BENCHMARKS.md.
pub fn update_benchmarks_md(name: &str, title: &str, body: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nMeasured, not estimated: each section is rewritten by the benchmark named in it.\n".to_owned()
    });
    let (start, end) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let block = format!("{start}\n## {title}\n\n{body}{end}");
    let new = match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{block}{}", &text[..a], &text[b + end.len()..]),
        _ => format!("{}\n\n{block}\n", text.trim_end()),
    };
    match std::fs::write(&path, new) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("writing {}: {e}", path.display()),
    }
}

/// CPU time (user + system) process `pid` has used so far, from /proc/PID/stat (Linux);
/// zero when the process is gone.
pub fn cpu_time_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces):
    // state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

/// `(busy, idle)` CPU time of the whole machine since boot, summed over all cores,
/// from /proc/stat (idle includes iowait).
pub fn machine_cpu_time() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let idle: u64 = ticks.iter().skip(3).take(2).sum();
    let busy: u64 = ticks.iter().take(8).sum::<u64>() - idle;
    let hz = clock_ticks_per_second();
    (
        Duration::from_secs_f64(busy as f64 / hz),
        Duration::from_secs_f64(idle as f64 / hz),
    )
}

/// USER_HZ, the unit of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_second() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU time used by a set of processes over one measured window: take a
/// [`CpuSnapshot`] before, and [`CpuSnapshot::used_since`] after.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    /// `(label, pid, CPU time so far)`.
    processes: Vec<(String, String, Duration)>,
    machine: (Duration, Duration),
}

/// What [`CpuSnapshot::used_since`] measured, in seconds of CPU.
#[derive(Debug, Clone)]
pub struct CpuUsed {
    /// `(label, CPU seconds)` per process, in the snapshot's order.
    pub processes: Vec<(String, f64)>,
    /// Busy CPU seconds of the whole machine (all processes, all cores).
    pub machine_busy: f64,
    /// Idle CPU seconds of the whole machine (all cores).
    pub machine_idle: f64,
}

impl CpuSnapshot {
    /// The CPU time of `(label, pid)` processes now, and the machine's.
    pub fn take(processes: &[(String, String)]) -> CpuSnapshot {
        CpuSnapshot {
            processes: processes
                .iter()
                .map(|(label, pid)| (label.clone(), pid.clone(), cpu_time_of(pid)))
                .collect(),
            machine: machine_cpu_time(),
        }
    }

    /// Adds a process that started after the snapshot: all its CPU time counts.
    pub fn add(&mut self, label: String, pid: String) {
        self.processes.push((label, pid, Duration::ZERO));
    }

    /// CPU used since this snapshot, per process and by the machine.
    pub fn used_since(&self) -> CpuUsed {
        let (busy, idle) = machine_cpu_time();
        CpuUsed {
            processes: self
                .processes
                .iter()
                .map(|(label, pid, before)| {
                    let used = cpu_time_of(pid).saturating_sub(*before);
                    (label.clone(), used.as_secs_f64())
                })
                .collect(),
            machine_busy: busy.saturating_sub(self.machine.0).as_secs_f64(),
            machine_idle: idle.saturating_sub(self.machine.1).as_secs_f64(),
        }
    }
}

impl CpuUsed {
    /// CPU seconds of the processes whose label starts with `prefix`.
    pub fn of(&self, prefix: &str) -> f64 {
        self.processes
            .iter()
            .filter(|(label, _)| label.starts_with(prefix))
            .map(|(_, s)| s)
            .sum()
    }

    /// "controller 3.1 s, kube-apiserver 20.4 s, etcd 5.0 s, other 1.2 s, idle 2.0 s".
    pub fn describe(&self, groups: &[&str]) -> String {
        let measured = |g: &&&str| {
            self.processes
                .iter()
                .any(|(label, _)| label.starts_with(**g))
        };
        let mut parts: Vec<String> = groups
            .iter()
            .filter(measured)
            .map(|g| format!("{g} {:.1} s", self.of(g)))
            .collect();
        let listed: f64 = groups.iter().map(|g| self.of(g)).sum();
        parts.push(format!(
            "other processes {:.1} s",
            (self.machine_busy - listed).max(0.0)
        ));
        parts.push(format!("idle {:.1} s", self.machine_idle));
        parts.join(", ")
    }
}

/// A command (words split at spaces) to run a benchmark's child controller under, e.g.
/// `heaptrack -o /tmp/controller`: the child's path is appended. Its peak RSS is then the
/// wrapper's, so only for profiling.
pub const CHILD_WRAPPER_ENV: &str = "ARGOSY_BENCH_CHILD_WRAPPER";

/// A controller run as a child process of a benchmark binary (the binary re-executed with
/// a settings file in an environment variable), with its `/metrics` listener on `port`.
pub struct ChildController {
    child: std::process::Child,
    /// The port of its listener on 127.0.0.1.
    pub port: u16,
    /// Its stderr.
    pub log: std::path::PathBuf,
    /// How long [`Self::settle`] and [`Self::wait_reconciles`] wait at most.
    pub timeout: Duration,
}

impl ChildController {
    /// Runs this executable with `env=settings` (its logs at `ARGOSY_LOG`, default info,
    /// into `log`), under the command in [`CHILD_WRAPPER_ENV`] when set (a profiler).
    pub fn spawn(
        env: &str,
        settings: &Path,
        log: std::path::PathBuf,
        port: u16,
        timeout: Duration,
    ) -> anyhow::Result<ChildController> {
        let exe = std::env::current_exe()?;
        let wrapper = std::env::var(CHILD_WRAPPER_ENV).unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(words).arg(&exe);
                command
            }
            None => Command::new(&exe),
        };
        let child = command
            .env(env, settings)
            .env(
                "ARGOSY_LOG",
                std::env::var("ARGOSY_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(ChildController {
            child,
            port,
            log,
            timeout,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Fails when the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("controller exited ({status}); see {}", self.log.display());
        }
        Ok(())
    }

    /// `GET /metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        http_request(self.port, "GET /metrics", &[], "").await
    }

    /// `(successful, failed)` Application reconciles, from `/metrics`.
    pub async fn reconciles(&self) -> anyhow::Result<(u64, u64)> {
        let text = self.metrics().await?;
        let (mut ok, mut failed) = (0, 0);
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("argosy_app_reconcile_duration_seconds_count{")
            else {
                continue;
            };
            let count: u64 = rest
                .rsplit(' ')
                .next()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
            if rest.starts_with("result=\"success\"") {
                ok += count;
            } else {
                failed += count;
            }
        }
        Ok((ok, failed))
    }

    /// Waits until the reconcile count has not moved for `quiet`; returns it.
    pub async fn settle(&mut self, quiet: Duration) -> anyhow::Result<(u64, u64)> {
        let start = std::time::Instant::now();
        let mut last = self.reconciles().await?;
        let mut since = std::time::Instant::now();
        while since.elapsed() < quiet {
            self.check_running()?;
            anyhow::ensure!(start.elapsed() < self.timeout, "reconciles never settled");
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.reconciles().await?;
            if now != last {
                last = now;
                since = std::time::Instant::now();
            }
        }
        Ok(last)
    }

    /// Waits until `target` reconciles (successful or not) have completed.
    pub async fn wait_reconciles(&mut self, target: u64) -> anyhow::Result<()> {
        let start = std::time::Instant::now();
        loop {
            let (ok, failed) = self.reconciles().await?;
            if ok + failed >= target {
                return Ok(());
            }
            self.check_running()?;
            anyhow::ensure!(
                start.elapsed() < self.timeout,
                "{} of {target} reconciles after {:?}",
                ok + failed,
                self.timeout
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `/metrics` answers (the process has started its listener).
    pub async fn wait_listening(&mut self) -> anyhow::Result<()> {
        let start = std::time::Instant::now();
        while self.reconciles().await.is_err() {
            self.check_running()?;
            anyhow::ensure!(start.elapsed() < Duration::from_secs(60), "no /metrics");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid()).status();
        self.child.wait()?;
        Ok(())
    }

    /// SIGKILL (a crash), then waits for the exit.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

/// A minimal HTTP/1.1 request to `127.0.0.1:port` (`request_line` like `GET /metrics`);
/// the body of a 2xx response.
pub async fn http_request(
    port: u16,
    request_line: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut request = format!(
        "{request_line} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, rest) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("malformed HTTP response"))?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    anyhow::ensure!(
        status.starts_with('2'),
        "{request_line}: HTTP {status}: {rest}"
    );
    Ok(rest.to_owned())
}

/// How many Applications say Synced, kept current by a watch (stopped when dropped).
pub struct SyncedCount {
    /// The count, changed on every watch event.
    pub count: tokio::sync::watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SyncedCount {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a [`SyncedCount`] over `apps` (counting those `synced` says are); returns once
/// the watch has listed them (so its initial list is not part of what follows).
pub async fn synced_count(
    apps: kube::Api<kube::api::DynamicObject>,
    synced: fn(&kube::api::DynamicObject) -> bool,
) -> anyhow::Result<SyncedCount> {
    use futures::StreamExt as _;
    use kube::runtime::WatchStreamExt as _;
    use kube::runtime::watcher::{self, Event};
    let (tx, rx) = tokio::sync::watch::channel(0);
    let (listed_tx, listed) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut listed_tx = Some(listed_tx);
        let mut seen: std::collections::BTreeMap<String, bool> = Default::default();
        let mut events = watcher::watcher(apps, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => seen.clear(),
                Ok(Event::Apply(app) | Event::InitApply(app)) => {
                    seen.insert(app.metadata.name.clone().unwrap_or_default(), synced(&app));
                }
                Ok(Event::Delete(app)) => {
                    seen.remove(app.metadata.name.as_deref().unwrap_or_default());
                }
                Ok(Event::InitDone) => {
                    if let Some(listed) = listed_tx.take() {
                        let _ = listed.send(());
                    }
                }
                Err(e) => eprintln!("watch of the Applications: {e}"),
            }
            if tx.send(seen.values().filter(|s| **s).count()).is_err() {
                return; // the receiver is gone
            }
        }
    });
    let count = SyncedCount { count: rx, task };
    tokio::time::timeout(Duration::from_secs(120), listed)
        .await
        .map_err(|_| anyhow::anyhow!("listing the Applications took over 2 minutes"))??;
    Ok(count)
}
