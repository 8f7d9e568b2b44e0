//! What the bench reads about its own process and the machine: memory and
//! load from `/proc`, CPU time from the process's CPU clock (Linux; `None`
//! elsewhere).

use std::time::Duration;

/// A `kB` field of `/proc/self/status`, e.g. `VmRSS` or `VmHWM`.
pub(crate) fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// CPU time used so far by every thread this process has run, those that
/// have exited included (`CLOCK_PROCESS_CPUTIME_ID`), so work done on a
/// thread that ends with it (a baseline's writer thread) counts too.
#[cfg(target_os = "linux")]
pub(crate) fn cpu_time() -> Option<Duration> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let secs = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

/// Not measured off Linux.
#[cfg(not(target_os = "linux"))]
pub(crate) fn cpu_time() -> Option<Duration> {
    None
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
        let before = cpu_time().expect("CPU clock");
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert!(cpu_time().expect("CPU clock") > before);
        assert!(load_average().expect("loadavg") >= 0.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_time_keeps_what_an_exited_thread_spent() {
        let before = cpu_time().expect("CPU clock");
        let spent = std::thread::spawn(|| {
            let mut x = 0u64;
            for i in 0..5_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
            let own = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
            Duration::new(own.tv_sec as u64, own.tv_nsec as u32)
        })
        .join()
        .expect("thread");
        let after = cpu_time().expect("CPU clock");
        assert!(spent > Duration::ZERO);
        assert!(after - before >= spent, "{:?} < {spent:?}", after - before);
    }
}
