//! Which process holds a received message, and whether that process still exists.
//!
//! A receipt handle ends with its holder: `<token>@<pid>:<start>:<boot id>`, where `<start>` is
//! the process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22) and the
//! boot id tells boots apart. A process id alone is not enough: after a crash the id may be
//! reused by an unrelated process. When a process opens the data directory, messages whose
//! holder is gone (`kill -9`, a crash, a reboot) are made visible at once instead of after
//! their visibility timeout (see `queue::release_orphans`). A holder that cannot be checked
//! (no `/proc`) counts as alive: a message is never taken from a process that may still run it.

use std::sync::OnceLock;

/// One process, told apart from any later process with the same id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub pid: u32,
    /// Start time, clock ticks after boot.
    pub start_ticks: u64,
    pub boot_id: String,
}

/// What can be said about a recorded holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Gone,
    /// This system does not say (no `/proc`): treated as alive.
    Unknown,
}

impl ProcessIdentity {
    /// This process (`None` where `/proc` is not available).
    pub fn current() -> Option<&'static ProcessIdentity> {
        static CURRENT: OnceLock<Option<ProcessIdentity>> = OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let pid = std::process::id();
                Some(ProcessIdentity {
                    pid,
                    start_ticks: start_ticks(pid)?,
                    boot_id: boot_id()?,
                })
            })
            .as_ref()
    }

    /// `<pid>:<start>:<boot id>`.
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.pid, self.start_ticks, self.boot_id)
    }

    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.splitn(3, ':');
        let pid = parts.next()?.parse().ok()?;
        let start_ticks = parts.next()?.parse().ok()?;
        let boot_id = parts.next()?.to_string();
        (!boot_id.is_empty()).then_some(ProcessIdentity {
            pid,
            start_ticks,
            boot_id,
        })
    }

    pub fn liveness(&self) -> Liveness {
        let Some(boot) = boot_id() else {
            return Liveness::Unknown;
        };
        if boot != self.boot_id {
            return Liveness::Gone;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => match parse_start_ticks(&stat) {
                Some(t) if t == self.start_ticks => Liveness::Alive,
                Some(_) => Liveness::Gone,
                None => Liveness::Unknown,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Liveness::Gone,
            Err(_) => Liveness::Unknown,
        }
    }
}

/// The receipt handle for a message received by this process: `token`, then the holder.
pub(crate) fn receipt(token: String) -> String {
    match ProcessIdentity::current() {
        Some(me) => format!("{token}@{}", me.encode()),
        None => token,
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

fn start_ticks(pid: u32) -> Option<u64> {
    parse_start_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of `/proc/<pid>/stat`; the command name (field 2) may hold spaces and
/// parentheses, so count from the last `)`.
fn parse_start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields 3.. follow: the start time is the 20th of them.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_read_past_a_command_name_with_spaces() {
        let stat =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_ticks(stat), Some(987654));
        assert_eq!(parse_start_ticks("garbage"), None);
    }

    #[test]
    fn identities_round_trip_and_this_process_is_alive() {
        let id = ProcessIdentity {
            pid: 7,
            start_ticks: 99,
            boot_id: "0b1f-aa".into(),
        };
        assert_eq!(ProcessIdentity::parse(&id.encode()), Some(id.clone()));
        assert_eq!(ProcessIdentity::parse("7:x:b"), None);
        if let Some(me) = ProcessIdentity::current() {
            assert_eq!(receipt("tok".into()), format!("tok@{}", me.encode()));
        }
        if let Some(me) = ProcessIdentity::current() {
            assert_eq!(me.liveness(), Liveness::Alive);
            let reused = ProcessIdentity {
                start_ticks: me.start_ticks + 1,
                ..me.clone()
            };
            assert_eq!(reused.liveness(), Liveness::Gone, "same pid, other process");
            let rebooted = ProcessIdentity {
                boot_id: "another-boot".into(),
                ..me.clone()
            };
            assert_eq!(rebooted.liveness(), Liveness::Gone);
        }
    }
}
