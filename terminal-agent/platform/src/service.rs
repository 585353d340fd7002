//! Telling systemd how the program is doing (`sd_notify`): `READY=1` once it
//! serves, then `WATCHDOG=1` at half the unit's `WatchdogSec`, so a program
//! that hangs — alive but no longer answering — is restarted (and, while an
//! update is on trial, rolled back by the launcher). Outside systemd
//! (`NOTIFY_SOCKET` unset) it does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification; false when not under systemd or it failed.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return false;
    };
    let bytes = path.as_encoded_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        // An abstract socket name.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
        }
        None => socket.send_to(state.as_bytes(), &path),
    };
    sent.is_ok()
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, if systemd set
/// it for this process.
pub fn watchdog_every() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    {
        if pid != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Says `READY=1` and, when systemd watches this process, pings its
/// watchdog from a task on the current runtime each time `alive` answers
/// true in time: a part that stopped working starves the watchdog, and
/// systemd restarts the program.
pub fn started<F, Fut>(alive: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    notify("READY=1");
    if let Some(every) = watchdog_every() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match tokio::time::timeout(every, alive()).await {
                    Ok(true) => {
                        notify("WATCHDOG=1");
                    }
                    _ => tracing::error!("a part of the program stopped working: the watchdog is not fed"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket_named_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        // The environment is the process's: set and read in this one test only.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(notify("READY=1"));
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::env::set_var("WATCHDOG_USEC", "30000000");
        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
        assert_eq!(watchdog_every(), Some(Duration::from_secs(15)));
        std::env::set_var("WATCHDOG_PID", "1");
        assert_eq!(watchdog_every(), None, "another process's watchdog");

        // Fed while the program says it is alive, and not once it is not.
        std::env::set_var("WATCHDOG_USEC", "40000");
        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
        listener
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let told = alive.clone();
        runtime.block_on(async move {
            started(move || std::future::ready(told.load(std::sync::atomic::Ordering::Relaxed)));
        });
        let mut heard = Vec::new();
        while let Ok(n) = listener.recv(&mut buf) {
            heard.push(String::from_utf8_lossy(&buf[..n]).to_string());
            if heard.len() == 3 {
                break;
            }
        }
        assert_eq!(heard, ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]);
        alive.store(false, std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
        while listener.recv(&mut buf).is_ok() {}
        assert!(listener.recv(&mut buf).is_err(), "fed while not alive");
        drop(runtime);

        std::env::remove_var("WATCHDOG_USEC");
        std::env::remove_var("NOTIFY_SOCKET");
        assert!(!notify("READY=1"));
    }
}
