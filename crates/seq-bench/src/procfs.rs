//! What the bench reads about its own process and the machine from
//! `/proc` (Linux; `None` elsewhere).

use std::time::Duration;

/// A `kB` field of `/proc/self/status`, e.g. `VmRSS` or `VmHWM`.
pub(crate) fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// CPU time used so far by every live thread of this process (the first
/// field of each `/proc/self/task/*/schedstat`, in nanoseconds). Threads
/// that exited no longer count: compare readings taken around work whose
/// threads outlive it.
pub(crate) fn cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(task) = task else { continue };
        // A thread may exit between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// The machine's 1-minute load average.
pub(crate) fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_this_process_and_the_machine() {
        if !std::path::Path::new("/proc/self/status").exists() {
            return;
        }
        let rss = status_kib("VmRSS").expect("VmRSS");
        let hwm = status_kib("VmHWM").expect("VmHWM");
        assert!(rss > 0 && hwm >= rss / 2);
        assert_eq!(status_kib("NoSuchField"), None);
        let before = cpu_time().expect("schedstat");
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert!(cpu_time().expect("schedstat") >= before);
        assert!(load_average().expect("loadavg") >= 0.0);
    }
}
