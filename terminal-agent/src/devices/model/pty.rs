//! The printer model behind a pseudo-terminal: the driver opens the pty's
//! path as if it were the Pi's serial port, so the whole path a real slip
//! takes — tty set-up, bytes through the kernel, status answers back — runs
//! in tests and on a laptop.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::escpos::SharedPrinter;

pub struct PtyPrinter {
    /// The path a driver opens (`/dev/pts/N`).
    pub path: PathBuf,
    pub model: SharedPrinter,
    stop: Arc<AtomicBool>,
    /// The device side, kept open so the pty stays up between drivers.
    _slave: File,
}

/// A new pseudo-terminal: its controlling side (the model's), its device
/// side, and the device's path, which a driver opens as a serial port.
pub fn open_pty() -> std::io::Result<(File, File, PathBuf)> {
    let (mut master_fd, mut slave_fd) = (0, 0);
    // SAFETY: openpty writes two descriptors; name, termios and winsize may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master_fd,
            &mut slave_fd,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned here from now on.
    let (master, slave) = unsafe { (File::from_raw_fd(master_fd), File::from_raw_fd(slave_fd)) };
    let path = std::fs::read_link(format!("/proc/self/fd/{slave_fd}"))?;
    Ok((master, slave, path))
}

impl PtyPrinter {
    pub fn start() -> std::io::Result<PtyPrinter> {
        let (master, slave, path) = open_pty()?;
        // The printer side is raw: no echo, no newline translation.
        // SAFETY: termios is filled by tcgetattr before use.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(slave.as_raw_fd(), &mut t) == 0 {
                libc::cfmakeraw(&mut t);
                libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t);
            }
        }
        let model = SharedPrinter::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (model.clone(), stop.clone());
        std::thread::Builder::new()
            .name("printer-pty".into())
            .spawn(move || serve(master, m, s))?;
        Ok(PtyPrinter {
            path,
            model,
            stop,
            _slave: slave,
        })
    }

    /// The connection string the driver takes.
    pub fn connection(&self) -> String {
        format!("uart:{}@9600", self.path.display())
    }
}

impl Drop for PtyPrinter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut master: File, model: SharedPrinter, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, 50) };
        if ready > 0 && pfd.revents & libc::POLLIN != 0 {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                Ok(n) => model.with(|m| m.receive(&buf[..n])),
            }
        }
        let replies: Vec<u8> = model.with(|m| std::iter::from_fn(|| m.take_reply()).collect());
        if !replies.is_empty() && master.write_all(&replies).is_err() {
            return;
        }
    }
}
