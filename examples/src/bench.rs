//! What the load and flood benchmarks share: the `files` binary they start, and a process's
//! memory as Linux reports it.

use std::path::PathBuf;

/// The `files` binary: `given`, or the one beside the running executable; an error says how
/// to build it.
pub fn files_binary(
    given: Option<&PathBuf>,
) -> Result<PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    let path = match given {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or("no parent directory")?
            .join("files"),
    };
    if !path.exists() {
        return Err(format!(
            "{} not found: cargo build --release -p mcp-guard-examples --bin files",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// A `/proc/PID/status` field in KiB (`"VmRSS:"`, `"VmHWM:"`), if the process exists.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}
