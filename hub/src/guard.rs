//! Bounds on what a client on the shop's LAN can make the hub do, shared by
//! the MQTT gate, the MQTT link and the web page: a rate ([`Rate`]), a log
//! line said at most once per kind every ten seconds with a count
//! ([`Counted`]), and a cap on connections per address and in all
//! ([`Doors`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often one kind of line an outsider can trigger is logged in full.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// A token bucket: `per_second` on average, `burst` at once.
pub struct Rate {
    per_second: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Rate {
    pub fn new(per_second: f64, burst: f64) -> Rate {
        Rate {
            per_second,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
    }

    /// Takes one if there is one.
    pub fn allow(&mut self) -> bool {
        self.refill();
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// Takes one, owing it if there is none: how long to wait before using it.
    pub fn take(&mut self) -> Duration {
        self.refill();
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-self.tokens / self.per_second)
    }
}

/// Counts of what was refused or dropped, per kind, and when each kind was
/// last logged.
pub struct Counted<K> {
    kinds: HashMap<K, (Option<Instant>, u64)>,
    max_kinds: usize,
}

impl<K: Hash + Eq> Counted<K> {
    /// Remembers at most `max_kinds` kinds; one more starts the counts afresh.
    pub fn new(max_kinds: usize) -> Counted<K> {
        Counted {
            kinds: HashMap::new(),
            max_kinds,
        }
    }

    /// Counts one of `kind`; `Some(how many since start)` when it is to be
    /// logged (the first, then at most once every [`LOG_EVERY`]).
    pub fn one(&mut self, kind: K) -> Option<u64> {
        if self.kinds.len() >= self.max_kinds && !self.kinds.contains_key(&kind) {
            self.kinds.clear();
        }
        let (at, count) = self.kinds.entry(kind).or_insert((None, 0));
        *count += 1;
        let now = Instant::now();
        if at.is_some_and(|at| now.duration_since(at) < LOG_EVERY) {
            return None;
        }
        *at = Some(now);
        Some(*count)
    }
}

/// Connections open, per client address and in all, each capped.
pub struct Doors {
    per_address: usize,
    total: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`Doors`], given back when dropped.
pub struct Place {
    doors: Arc<Doors>,
    ip: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.doors.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Doors {
    pub fn new(per_address: usize, total: usize) -> Arc<Doors> {
        Arc::new(Doors {
            per_address,
            total,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection from `ip`, if both caps allow it.
    pub fn enter(self: &Arc<Doors>, ip: IpAddr) -> Option<Place> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = open.values().sum();
        let here = open.entry(ip).or_default();
        if *here >= self.per_address || total >= self.total {
            return None;
        }
        *here += 1;
        Some(Place {
            doors: Arc::clone(self),
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_allows_its_burst_then_makes_the_next_wait() {
        let mut rate = Rate::new(10.0, 3.0);
        assert!((0..3).all(|_| rate.allow()));
        assert!(!rate.allow());
        let wait = rate.take();
        assert!(
            wait > Duration::from_millis(50) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Owed: the next waits longer still.
        assert!(rate.take() > wait);
    }

    #[test]
    fn each_kind_is_logged_first_then_counted_quietly() {
        let mut counted = Counted::new(2);
        assert_eq!(counted.one("a"), Some(1));
        assert_eq!(counted.one("a"), None);
        assert_eq!(counted.one("b"), Some(1));
        assert_eq!(counted.one("a"), None);
        // A third kind starts afresh rather than growing without end.
        assert_eq!(counted.one("c"), Some(1));
        assert_eq!(counted.one("a"), Some(1));
    }

    #[test]
    fn doors_cap_each_address_and_the_total_and_give_places_back() {
        let doors = Doors::new(2, 3);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = doors.enter(a).unwrap();
        let _second = doors.enter(a).unwrap();
        assert!(doors.enter(a).is_none(), "a third from one address");
        let _third = doors.enter(b).unwrap();
        assert!(doors.enter(b).is_none(), "a fourth in all");
        drop(first);
        assert!(doors.enter(a).is_some(), "a place given back");
    }
}
