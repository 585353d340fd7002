//! What the sealed link keeps on disk: the pairing key and the sender's
//! message counter. The sealing itself is pure and lives in
//! `tallybox_core::seal`.

use std::sync::atomic::{AtomicU64, Ordering};

use tallybox_core::seal::Key;

use crate::fsync::write_synced;

/// A sender's counter: the clock in microseconds, always above the last —
/// also across restarts, when it is kept in a file ([`Counter::kept_in`]): a
/// Raspberry Pi has no clock battery and may start with its clock behind the
/// last counter it sent, and a receiver drops a counter it has passed.
///
/// The file holds a floor no counter has reached yet; when one would, the
/// floor moves [`Counter::RESERVE`] ahead first (one small synced write every
/// ten minutes of sealing), and a restart starts from it.
#[derive(Debug, Default)]
pub struct Counter {
    last: AtomicU64,
    kept: Option<std::sync::Mutex<Kept>>,
}

#[derive(Debug)]
struct Kept {
    path: std::path::PathBuf,
    floor: u64,
}

impl Counter {
    /// How far ahead the kept floor moves: ten minutes of microseconds.
    pub const RESERVE: u64 = 600_000_000;

    /// How far ahead of the clock a counter whose file was damaged starts:
    /// receivers accept any counter above the last they saw, so a day ahead
    /// covers a clock up to a day behind at no cost.
    pub const DAMAGED_AHEAD: u64 = 86_400_000_000;

    /// A counter whose floor is kept in `path`; it starts above every
    /// counter issued before under the same file. A damaged file (only a
    /// damaged disk makes one: it is written whole) is logged, and the
    /// counter starts a day ahead of the clock rather than refusing to run.
    pub fn kept_in(path: &std::path::Path) -> std::io::Result<Counter> {
        let floor = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().parse().unwrap_or_else(|_| {
                tracing::error!(path = %path.display(), "the message counter file is damaged; counting on from a day ahead of the clock");
                now_micros() + Self::DAMAGED_AHEAD
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(Counter {
            last: AtomicU64::new(floor),
            kept: Some(std::sync::Mutex::new(Kept {
                path: path.to_path_buf(),
                floor,
            })),
        })
    }

    pub fn next(&self) -> u64 {
        let now = now_micros();
        let mut last = self.last.load(Ordering::Relaxed);
        let next = loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break next,
                Err(seen) => last = seen,
            }
        };
        if let Some(kept) = &self.kept {
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            if next >= kept.floor {
                let floor = next + Self::RESERVE;
                match write_synced(&kept.path, floor.to_string().as_bytes()) {
                    Ok(()) => kept.floor = floor,
                    Err(e) => {
                        tracing::error!(path = %kept.path.display(), error = %e, "cannot keep the message counter")
                    }
                }
            }
        }
        next
    }
}

/// The clock, in microseconds since 1970.
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Reads a key file (64 hex digits).
pub fn read_key(path: &std::path::Path) -> std::io::Result<Option<Key>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let key: Key = bytes.try_into().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "a key file holds 64 hex digits")
            })?;
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a key file readable by its owner alone (mode 0600), durably.
pub fn write_key(path: &std::path::Path, key: &Key) -> std::io::Result<()> {
    write_synced(path, hex::encode(key).as_bytes())
}

/// Reads the highest counter a receiver accepted (its replay mark, kept
/// across a restart so that a message captured once is never taken again);
/// 0 when none was kept. A damaged file is logged and read as 0.
pub fn read_seen(path: &std::path::Path) -> std::io::Result<u64> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().unwrap_or_else(|_| {
            tracing::error!(path = %path.display(), "the replay mark file is damaged; messages seen before this start may be taken once more");
            0
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Keeps a receiver's replay mark, durably.
pub fn write_seen(path: &std::path::Path, seen: u64) -> std::io::Result<()> {
    write_synced(path, seen.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_counter_starts_above_all_it_issued_even_with_the_clock_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal-counter");
        // A counter that ran a day ahead of this clock (the clock then went back).
        let day = 86_400_000_000u64;
        let ahead = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64
            + day;
        std::fs::write(&path, ahead.to_string()).unwrap();
        let counter = Counter::kept_in(&path).unwrap();
        let issued: Vec<u64> = (0..3).map(|_| counter.next()).collect();
        assert!(issued[0] > ahead && issued[1] > issued[0] && issued[2] > issued[1]);
        let floor: u64 = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        assert!(floor > issued[2], "the floor moved ahead before it was reached");
        // A restart (same file): above everything issued before.
        let again = Counter::kept_in(&path).unwrap();
        assert!(again.next() > issued[2]);
        // A damaged file is not a silent restart from zero: a day ahead.
        std::fs::write(&path, "garbage").unwrap();
        let damaged = Counter::kept_in(&path).unwrap();
        assert!(damaged.next() > now_micros() + Counter::DAMAGED_AHEAD - 60_000_000);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .trim()
                .parse::<u64>()
                .is_ok(),
            "rewritten whole"
        );
    }

    #[test]
    fn counters_grow() {
        let counter = Counter::default();
        let (a, b) = (counter.next(), counter.next());
        assert!(b > a);
    }

    #[test]
    fn a_key_file_is_private_and_reads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.key");
        assert_eq!(read_key(&path).unwrap(), None);
        let key: Key = rand::random();
        write_key(&path, &key).unwrap();
        assert_eq!(read_key(&path).unwrap(), Some(key));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
