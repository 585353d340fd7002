//! A fault-injecting TCP proxy on loopback, for the links `tc netem` cannot
//! slow down here: every connection to it is relayed to a target port, and
//! what flows back can be held up by a delay that is changed at any time,
//! every open connection can be cut at once (a cable pulled and put back),
//! or stalled both ways for a while (what packet loss does to TCP: silence,
//! then everything at once).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Proxy {
    pub port: u16,
    delay_ms: Arc<AtomicU64>,
    stall: Stall,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// While set, every connection is closed as it arrives.
    refusing: Arc<AtomicBool>,
}

impl Proxy {
    /// Relays connections on a new loopback port to `target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let stall = Stall::default();
        let refusing = Arc::new(AtomicBool::new(false));
        let refuse = Arc::clone(&refusing);
        let (delay, stopped, links) = (Arc::clone(&delay_ms), Arc::clone(&stop), Arc::clone(&open));
        let held = stall.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if refuse.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees its connection close
                }
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue; // the client sees its connection close
                };
                if let (Ok(a), Ok(b)) = (client.try_clone(), upstream.try_clone()) {
                    links.lock().unwrap_or_else(|e| e.into_inner()).extend([a, b]);
                }
                let none = Arc::new(AtomicU64::new(0));
                relay(&client, &upstream, none, held.clone());
                relay(&upstream, &client, Arc::clone(&delay), held.clone());
            }
        });
        Proxy {
            port,
            delay_ms,
            stall,
            stop,
            open,
            refusing,
        }
    }

    /// Takes the link down (every open connection cut, new ones closed at
    /// once: a line that is down) or puts it back up.
    pub fn down(&self, down: bool) {
        self.refusing.store(down, Ordering::SeqCst);
        if down {
            self.cut();
        }
    }

    /// Cuts every connection open now, both ways; new ones are relayed as before.
    pub fn cut(&self) {
        for link in self.open.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = link.shutdown(Shutdown::Both);
        }
    }

    /// Holds each answer from the target this long before passing it on.
    pub fn delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Passes nothing either way, on every connection, for `how_long` from
    /// now; then what was held goes through. Connections stay open.
    pub fn stall(&self, how_long: Duration) {
        let until = self.stall.since.elapsed() + how_long;
        self.stall
            .until_ms
            .fetch_max(until.as_millis() as u64, Ordering::SeqCst);
    }
}

/// Until when (ms after `since`) every relay holds what it read.
#[derive(Clone)]
struct Stall {
    since: Instant,
    until_ms: Arc<AtomicU64>,
}

impl Default for Stall {
    fn default() -> Stall {
        Stall {
            since: Instant::now(),
            until_ms: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Stall {
    fn wait(&self) {
        loop {
            let until = Duration::from_millis(self.until_ms.load(Ordering::SeqCst));
            let now = self.since.elapsed();
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }
}

/// Copies `from` to `to` on a thread of its own, each chunk after the delay
/// and any stall.
fn relay(from: &TcpStream, to: &TcpStream, delay_ms: Arc<AtomicU64>, stall: Stall) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            std::thread::sleep(Duration::from_millis(delay_ms.load(Ordering::SeqCst)));
            stall.wait();
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
