//! The processes a path runs on, measured from `/proc`: CPU time (`utime + stime` of
//! `/proc/<pid>/stat`, in clock ticks) and memory (`VmRSS` and `VmHWM` of `/proc/<pid>/status`), summed
//! over each root process and its descendants (nginx's workers, LiteLLM's children). Also starts the
//! two comparison proxies: nginx with its own configuration under `target/`, and the LiteLLM proxy from
//! the venv `make bench` installs.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 when unknown).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// `(ppid, utime + stime)` of a process.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// `roots` and all their descendants that are alive now.
pub fn tree(roots: &[u32]) -> Vec<u32> {
    let mut parent = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                if let Some((ppid, _)) = stat(pid) {
                    parent.insert(pid, ppid);
                }
            }
        }
    }
    let mut all: Vec<u32> = roots.iter().copied().filter(|p| parent.contains_key(p)).collect();
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        all.extend(parent.iter().filter(|(_, &pp)| pp == p).map(|(&c, _)| c).filter(|c| !roots.contains(c)));
        i += 1;
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// CPU seconds used so far by `roots` and their descendants.
pub fn cpu_seconds(roots: &[u32], ticks: u64) -> f64 {
    let total: u64 = tree(roots).iter().filter_map(|&p| stat(p)).map(|(_, t)| t).sum();
    total as f64 / ticks as f64
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Resident memory now, KiB, of `roots` and their descendants.
pub fn rss_kb(roots: &[u32]) -> u64 {
    tree(roots).iter().filter_map(|&p| status_kb(p, "VmRSS")).sum()
}

/// Peak resident memory, KiB: the sum of each process's `VmHWM`.
pub fn peak_rss_kb(roots: &[u32]) -> u64 {
    tree(roots).iter().filter_map(|&p| status_kb(p, "VmHWM")).sum()
}

/// Resets the peak RSS (`VmHWM`) of `roots` and their descendants to their RSS now (writes `5` to
/// `/proc/<pid>/clear_refs`; needs to own the processes). Answers whether every reset worked.
pub fn reset_peak_rss(roots: &[u32]) -> bool {
    tree(roots).iter().all(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
}

/// The soft limit of open files of this process (children inherit it).
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts TCP connections on `addr`, while `child` runs.
fn wait_for_port(child: &mut Child, addr: SocketAddr, limit: Duration, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited during start-up ({status})");
        }
        if Instant::now() > deadline {
            bail!("{what} did not listen on {addr} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A process started for the benchmark: terminated (then killed, with its descendants) on drop.
#[derive(Debug)]
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
}

impl Service {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).stderr(Stdio::null()).status();
}

impl Drop for Service {
    fn drop(&mut self) {
        let pids = tree(&[self.child.id()]);
        signal(self.child.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in pids {
            signal(pid, "-KILL");
        }
        let _ = self.child.wait();
    }
}

/// The nginx binary: `NGINX` or Debian's `/usr/sbin/nginx`.
pub fn nginx_binary() -> PathBuf {
    std::env::var_os("NGINX").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// Starts nginx (not the system service: its own configuration and prefix in `dir`) as a plain one-hop
/// reverse proxy to `backend` on a free loopback port: one worker per core, keep-alive both ways, no
/// buffering of answers (streams pass as they come), no access log.
pub fn start_nginx(dir: &Path, backend: SocketAddr) -> anyhow::Result<Service> {
    std::fs::create_dir_all(dir.join("logs"))?;
    let port = free_port()?;
    let prefix = dir.display();
    let conf = format!(
        "worker_processes auto;\n\
         daemon off;\n\
         pid {prefix}/nginx.pid;\n\
         error_log {prefix}/logs/error.log warn;\n\
         worker_rlimit_nofile 65536;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 client_body_temp_path {prefix}/body;\n\
         \x20 proxy_temp_path {prefix}/proxy;\n\
         \x20 fastcgi_temp_path {prefix}/fastcgi;\n\
         \x20 uwsgi_temp_path {prefix}/uwsgi;\n\
         \x20 scgi_temp_path {prefix}/scgi;\n\
         \x20 keepalive_requests 1000000;\n\
         \x20 upstream backend {{ server {backend}; keepalive 512; keepalive_requests 1000000; }}\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{port};\n\
         \x20   location / {{\n\
         \x20     proxy_pass http://backend;\n\
         \x20     proxy_http_version 1.1;\n\
         \x20     proxy_set_header Connection \"\";\n\
         \x20     proxy_buffering off;\n\
         \x20     proxy_read_timeout 300s;\n\
         \x20   }}\n\
         \x20 }}\n\
         }}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let binary = nginx_binary();
    let mut child = Command::new(&binary)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("start {}", binary.display()))?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    if let Err(e) = wait_for_port(&mut child, addr, Duration::from_secs(20), "nginx") {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(Service { child, base_url: format!("http://{addr}") })
}

/// The LiteLLM proxy's command: `LITELLM` or `target/bench-venv/bin/litellm`.
pub fn litellm_binary() -> PathBuf {
    std::env::var_os("LITELLM")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target").join("bench-venv").join("bin").join("litellm"))
}

/// Starts the LiteLLM proxy on a free loopback port with one model, [`super::backend::MODEL`], served by
/// `backend` as an OpenAI-compatible endpoint (`openai/<model>` with `api_base`). No database, no
/// master key, its cost map read from the package (no download), one worker.
pub fn start_litellm(dir: &Path, backend_base_url: &str) -> anyhow::Result<Service> {
    std::fs::create_dir_all(dir)?;
    let port = free_port()?;
    let model = super::backend::MODEL;
    let conf = format!(
        "model_list:\n\
         \x20 - model_name: {model}\n\
         \x20   litellm_params:\n\
         \x20     model: openai/{model}\n\
         \x20     api_base: {backend_base_url}/v1\n\
         \x20     api_key: sk-bench\n\
         litellm_settings:\n\
         \x20 telemetry: false\n\
         \x20 request_timeout: 120\n"
    );
    let conf_path = dir.join("litellm.yaml");
    std::fs::write(&conf_path, conf)?;
    let binary = litellm_binary();
    anyhow::ensure!(
        binary.exists(),
        "{} not found: `make bench` installs it (bench/requirements.txt)",
        binary.display()
    );
    let log = std::fs::File::create(dir.join("litellm.log"))?;
    let mut child = Command::new(&binary)
        .args(["--config"])
        .arg(&conf_path)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--num_workers", "1"])
        .current_dir(dir)
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_LOG", "ERROR")
        .env("LITELLM_TELEMETRY", "False")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {}", binary.display()))?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    if let Err(e) = wait_for_port(&mut child, addr, Duration::from_secs(180), "litellm") {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(dir.join("litellm.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        bail!("{e}; its log ends:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    Ok(Service { child, base_url: format!("http://{addr}") })
}
