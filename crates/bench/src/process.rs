//! Child processes (parley, the empty handler, the peer), their memory, and the machine.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Result;

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Starts `command` with stderr and stdout piped, and waits until one of its lines holds
    /// `marker` followed by the address it listens on (`http://ADDR`).
    pub fn start(name: &'static str, mut command: Command, marker: &str, wait: Duration) -> Result<Server> {
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = command.spawn().map_err(|e| format!("cannot start {name}: {e}"))?;
        let (found, address) = std::sync::mpsc::channel::<String>();
        let tail = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        for stream in [
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let found = found.clone();
            let marker = marker.to_owned();
            let tail = Arc::clone(&tail);
            // Reads the output to its end so that the child never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let mut searching = true;
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if searching {
                        if let Some(addr) = address_after(&line, &marker) {
                            let _ = found.send(addr);
                            searching = false;
                        } else if let Ok(mut tail) = tail.lock() {
                            tail.push(line.trim_end().to_owned());
                        }
                    }
                    line.clear();
                }
            });
        }
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(text) = address.recv_timeout(Duration::from_millis(200)) {
                let addr = text.parse().map_err(|e| format!("{name} logged an unreadable address '{text}': {e}"))?;
                return Ok(Server { addr, child });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let output = tail.lock().map(|t| t.join("\n")).unwrap_or_default();
                return Err(format!("{name} exited ({status}) before listening:\n{output}").into());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("{name} did not listen within {wait:?}").into());
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the process to stop and waits for it (at most 15 s, then kills it).
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: kill(2) on the id of a child this process started and has not yet reaped.
        #[allow(unsafe_code, reason = "std has no way to send SIGTERM; the benchmark needs a clean stop")]
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The address that follows `marker` and `http://` in a log line.
fn address_after(line: &str, marker: &str) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = &rest[rest.find("http://")? + "http://".len()..];
    let end = rest.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | '/')).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// The resident memory of a process in kB (VmRSS), if it runs.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples a process's resident memory every 100 ms until stopped; keeps the peak.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kb) = rss_kb(pid) {
                        peak.fetch_max(kb, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        RssSampler { stop, peak, thread: Some(thread) }
    }

    /// Stops sampling; the peak in MB.
    pub fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until the 1-minute load average is below `max` (at most `patience`), so that a phase
/// is not measured while other work runs on the machine. Returns the load when it starts.
pub fn wait_for_quiet(max: f64, patience: Duration, phase: &str) -> f64 {
    let deadline = Instant::now() + patience;
    let mut load = load_average();
    if max <= 0.0 {
        return load;
    }
    let mut told = false;
    while load >= max && Instant::now() < deadline {
        if !told {
            eprintln!("bench: load average {load:.2} ≥ {max}; waiting before {phase}");
            told = true;
        }
        std::thread::sleep(Duration::from_secs(5));
        load = load_average();
    }
    if load >= max {
        eprintln!("bench: load average still {load:.2} after {patience:?}; measuring {phase} anyway");
    }
    load
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_mb: u64,
    pub kernel: String,
    /// Latency of one 8 KiB write and fsync in the benchmark's directory: a durable commit
    /// costs at least this, whatever the software does.
    pub fsync_ms: Option<Fsync>,
}

/// fsync latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Fsync {
    pub p50: f64,
    pub p99: f64,
}

/// Times `rounds` overwrites of 8 KiB each followed by fsync, in a file under `dir`.
pub fn fsync_latency(dir: &std::path::Path, rounds: usize) -> Option<Fsync> {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).ok()?;
    file.write_all(&[0u8; 8192]).ok()?;
    file.sync_all().ok()?;
    let mut times: Vec<f64> = Vec::with_capacity(rounds);
    for round in 0..rounds {
        file.seek(SeekFrom::Start(0)).ok()?;
        let began = Instant::now();
        file.write_all(&[round as u8; 8192]).ok()?;
        file.sync_all().ok()?;
        times.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = std::fs::remove_file(&path);
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    Some(Fsync { p50: at(0.5), p99: at(0.99) })
}

impl Machine {
    /// The machine, with the fsync latency of the disk under `dir`.
    pub fn describe(dir: &std::path::Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, model)| model.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mb = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_mb,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
            fsync_ms: fsync_latency(dir, 200),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_json_and_text_logs() {
        let json =
            r#"{"level":"INFO","message":"parley listening on http://127.0.0.1:41234","address":"127.0.0.1:41234"}"#;
        assert_eq!(address_after(json, "parley listening on").as_deref(), Some("127.0.0.1:41234"));
        assert_eq!(
            address_after("[cds] - server listening on { url: 'http://127.0.0.1:4004' }", "server listening on")
                .as_deref(),
            Some("127.0.0.1:4004")
        );
        assert_eq!(address_after("nothing here", "listening on"), None);
    }
}
