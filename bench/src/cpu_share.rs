//! Lambda's CPU share: a measured process held to the fraction of one core a function of
//! a given memory size gets (Lambda allocates CPU in proportion to memory, one full vCPU
//! at 1,769 MB), with a CFS bandwidth quota of its own cgroup.
//!
//! Both cgroup layouts are handled: v1 (a `cpu` hierarchy: `cpu.cfs_period_us` and
//! `cpu.cfs_quota_us`) and v2 (`cpu.max` in a group under the root, whose
//! `cgroup.subtree_control` must enable `cpu`). Each group is made for one process and
//! removed when its [`CpuGroup`] drops. [`self_check`] shows a quota works on this
//! machine: a busy loop held to it must not get more than its share.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::peers::{self, Guard};
use crate::Result;

/// The memory size at which a Lambda function gets one full vCPU.
pub const FULL_VCPU_MB: u32 = 1_769;

/// The CFS period every quota is a fraction of (100 ms, the kernel's default).
pub const PERIOD_US: u64 = 100_000;

/// One Lambda memory size and the CPU share it gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub memory_mb: u32,
}

impl Share {
    /// The fraction of one core (memory ÷ 1,769 MB, at most 1).
    pub fn fraction(self) -> f64 {
        (f64::from(self.memory_mb) / f64::from(FULL_VCPU_MB)).min(1.0)
    }

    /// The CFS quota per [`PERIOD_US`], in µs.
    pub fn quota_us(self) -> u64 {
        (self.fraction() * PERIOD_US as f64).round() as u64
    }

    /// "128 MB (7.2 %)".
    pub fn label(self) -> String {
        format!("{} MB ({:.1} %)", self.memory_mb, self.fraction() * 100.0)
    }
}

/// The shares the bench runs at: the smallest function and a common larger one.
pub const SHARES: [Share; 2] = [Share { memory_mb: 128 }, Share { memory_mb: 1_024 }];

/// The cgroup hierarchy holding the CPU controller.
#[derive(Debug, Clone, PartialEq)]
pub enum Hierarchy {
    /// cgroup v1: the `cpu` controller's mount point.
    V1(PathBuf),
    /// cgroup v2: the unified hierarchy's mount point.
    V2(PathBuf),
}

/// Finds the CPU controller's hierarchy in a `/proc/self/mounts` text (v1 preferred: on a
/// hybrid layout the unified mount holds no controllers); `v2_has_cpu` tells whether a
/// cgroup2 mount point offers the `cpu` controller.
pub fn find_hierarchy(mounts: &str, v2_has_cpu: impl Fn(&Path) -> bool) -> Option<Hierarchy> {
    let mut v2 = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, mount_point, kind, options, ..] = fields[..] else {
            continue;
        };
        match kind {
            "cgroup" if options.split(',').any(|option| option == "cpu") => {
                return Some(Hierarchy::V1(PathBuf::from(mount_point)));
            }
            "cgroup2" if v2.is_none() && v2_has_cpu(Path::new(mount_point)) => {
                v2 = Some(Hierarchy::V2(PathBuf::from(mount_point)));
            }
            _ => {}
        }
    }
    v2
}

/// This machine's CPU controller hierarchy, or why there is none.
pub fn hierarchy() -> Result<Hierarchy> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .map_err(|e| format!("cannot read /proc/self/mounts: {e}"))?;
    find_hierarchy(&mounts, |mount_point| {
        std::fs::read_to_string(mount_point.join("cgroup.controllers"))
            .is_ok_and(|controllers| controllers.split_whitespace().any(|c| c == "cpu"))
    })
    .ok_or_else(|| {
        "no cgroup hierarchy with the cpu controller is mounted (neither a v1 `cpu` \
         hierarchy nor a cgroup2 mount offering `cpu`)"
            .to_owned()
    })
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value)
        .map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
}

/// A cgroup of its own with a CPU quota, removed when dropped (its processes moved back
/// to the root group first).
pub struct CpuGroup {
    path: PathBuf,
    root: PathBuf,
}

impl CpuGroup {
    /// Creates a group held to `share` in `hierarchy`.
    pub fn create(hierarchy: &Hierarchy, share: Share) -> Result<CpuGroup> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "wsgw-bench-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let root = match hierarchy {
            Hierarchy::V1(root) | Hierarchy::V2(root) => root.clone(),
        };
        if let Hierarchy::V2(_) = hierarchy {
            let control = root.join("cgroup.subtree_control");
            let enabled = std::fs::read_to_string(&control).unwrap_or_default();
            if !enabled.split_whitespace().any(|c| c == "cpu") {
                write(&control, "+cpu")?;
            }
        }
        let path = root.join(name);
        std::fs::create_dir(&path)
            .map_err(|e| format!("cannot create the cgroup {}: {e}", path.display()))?;
        let group = CpuGroup { path, root };
        match hierarchy {
            Hierarchy::V1(_) => {
                write(
                    &group.path.join("cpu.cfs_period_us"),
                    &PERIOD_US.to_string(),
                )?;
                write(
                    &group.path.join("cpu.cfs_quota_us"),
                    &share.quota_us().to_string(),
                )?;
            }
            Hierarchy::V2(_) => write(
                &group.path.join("cpu.max"),
                &format!("{} {PERIOD_US}", share.quota_us()),
            )?,
        }
        Ok(group)
    }

    /// Moves the process `pid` (every thread of it) into the group.
    pub fn add(&self, pid: u32) -> Result<()> {
        write(&self.path.join("cgroup.procs"), &pid.to_string())
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        // A group can only be removed empty: whatever still runs in it goes back to the
        // root group.
        if let Ok(pids) = std::fs::read_to_string(self.path.join("cgroup.procs")) {
            for pid in pids.split_whitespace() {
                let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
            }
        }
        if let Err(error) = std::fs::remove_dir(&self.path) {
            eprintln!(
                "wsgw-bench: cannot remove the cgroup {}: {error}",
                self.path.display()
            );
        }
    }
}

/// How long the self-check's busy loop runs.
const CHECK_WINDOW: Duration = Duration::from_millis(1_500);

/// Runs a busy loop held to `share` for [`CHECK_WINDOW`] and returns the fraction of a
/// core it got; fails when that exceeds the share (the quota does not hold), with room
/// for the 10 ms ticks CPU time is read in.
pub async fn self_check(hierarchy: &Hierarchy, share: Share) -> Result<f64> {
    let group = CpuGroup::create(hierarchy, share)?;
    let mut command = Command::new("sh");
    command.args(["-c", "while :; do :; done"]);
    let busy = Guard::spawn("busy loop", command)?;
    let pid = busy.pid()?;
    group.add(pid)?;
    let before = peers::cpu_seconds(pid);
    let started = Instant::now();
    tokio::time::sleep(CHECK_WINDOW).await;
    let got = (peers::cpu_seconds(pid) - before) / started.elapsed().as_secs_f64();
    drop(busy);
    let allowed = share.fraction() * 1.15 + 0.02;
    if got.is_nan() || got > allowed {
        return Err(format!(
            "the CPU quota does not hold: a busy loop held to {} got {:.1} % of a core \
             (at most {:.1} % allowed) in {}",
            share.label(),
            got * 100.0,
            allowed * 100.0,
            group.path.display()
        ));
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_lambdas_memory_to_cpu_rule() {
        assert_eq!(SHARES[0].quota_us(), 7_236);
        assert_eq!(SHARES[1].quota_us(), 57_886);
        assert_eq!(SHARES[0].label(), "128 MB (7.2 %)");
        assert_eq!(Share { memory_mb: 3_008 }.fraction(), 1.0);
    }

    #[test]
    fn v1_cpu_hierarchy_is_preferred_over_an_empty_unified_mount() {
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n\
            cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\n\
            cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0\n";
        assert_eq!(
            find_hierarchy(hybrid, |_| false),
            Some(Hierarchy::V1(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")))
        );
        let unified = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        assert_eq!(
            find_hierarchy(unified, |_| true),
            Some(Hierarchy::V2(PathBuf::from("/sys/fs/cgroup")))
        );
        assert_eq!(find_hierarchy(unified, |_| false), None);
        assert_eq!(
            find_hierarchy("cgroup /x cgroup rw,cpuset 0 0\n", |_| true),
            None
        );
    }

    /// The bench runs the same check before its CPU-share rows (and fails when it does
    /// not hold); this test needs what those rows need.
    #[tokio::test]
    #[ignore = "needs root and a cgroup cpu controller: cargo test -p wsgw-bench -- --ignored"]
    async fn a_busy_loop_is_held_to_each_share() {
        let hierarchy = hierarchy().expect("a cgroup cpu controller");
        for share in SHARES {
            let got = self_check(&hierarchy, share)
                .await
                .expect("the quota holds");
            eprintln!("{}: {:.1} % of a core", share.label(), got * 100.0);
        }
    }
}
