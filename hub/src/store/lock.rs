//! The data directory's lock: a running hub holds it for its whole life, so
//! a second hub on the same data, or `tallybox restore` under a running hub,
//! is refused instead of writing beside it. The kernel lets go of it when
//! the process ends, however it ends.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::StoreError;

const FILE: &str = "hub.lock";

/// Held while it lives.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

impl DataLock {
    /// Takes the lock of `dir` (created if need be), or says who holds it.
    pub fn take(dir: &Path) -> Result<DataLock, StoreError> {
        let data_dir = |error| StoreError::DataDir {
            dir: dir.display().to_string(),
            error,
        };
        std::fs::create_dir_all(dir).map_err(data_dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join(FILE))
            .map_err(data_dir)?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::WouldBlock {
                return Err(StoreError::InUse {
                    dir: dir.display().to_string(),
                });
            }
            return Err(data_dir(error));
        }
        Ok(DataLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_free_again_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataLock::take(dir.path()).unwrap();
        let second = DataLock::take(dir.path()).unwrap_err();
        assert!(second.to_string().contains("already running"), "{second}");
        drop(held);
        DataLock::take(dir.path()).unwrap();
    }
}
