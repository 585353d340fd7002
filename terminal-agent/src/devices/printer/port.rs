//! How the bytes reach the printer. Every connection a shop uses is a byte
//! stream: the Pi's UART and a Bluetooth RFCOMM link are serial ttys, a USB
//! printer is `/dev/usb/lp*`, a network printer listens on TCP 9100. One
//! small trait covers them all; the printer model implements it too.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub trait Port: Send {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// One byte, waiting at most `timeout`; `None` when nothing came.
    fn read_byte(&mut self, timeout: Duration) -> io::Result<Option<u8>>;
    /// Drops whatever the printer sent that nobody asked for.
    fn discard_input(&mut self) {
        while let Ok(Some(_)) = self.read_byte(Duration::ZERO) {}
    }
}

/// Where the printer is, as written in the config file:
/// `uart:/dev/serial0@9600`, `rfcomm:/dev/rfcomm0`, `usb:/dev/usb/lp0`, `tcp:HOST:9100`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrinterAddr {
    Uart { path: PathBuf, baud: u32 },
    Rfcomm { path: PathBuf },
    Usb { path: PathBuf },
    Tcp { addr: SocketAddr },
}

impl PrinterAddr {
    /// How the printer is reached: `uart`, `rfcomm` (Bluetooth), `usb` or `tcp`.
    pub fn link(&self) -> &'static str {
        match self {
            PrinterAddr::Uart { .. } => "uart",
            PrinterAddr::Rfcomm { .. } => "rfcomm",
            PrinterAddr::Usb { .. } => "usb",
            PrinterAddr::Tcp { .. } => "tcp",
        }
    }
}

impl FromStr for PrinterAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "printer '{s}' is not one of uart:/dev/serial0@9600, rfcomm:/dev/rfcomm0, usb:/dev/usb/lp0, tcp:HOST:9100"
            )
        };
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "uart" => {
                let (path, baud) = match rest.split_once('@') {
                    Some((p, b)) => (
                        p,
                        b.parse()
                            .map_err(|_| format!("printer baud rate '{b}' is not a number"))?,
                    ),
                    None => (rest, 9600),
                };
                Ok(PrinterAddr::Uart {
                    path: path.into(),
                    baud,
                })
            }
            "rfcomm" => Ok(PrinterAddr::Rfcomm { path: rest.into() }),
            "usb" => Ok(PrinterAddr::Usb { path: rest.into() }),
            "tcp" => rest
                .parse()
                .map(|addr| PrinterAddr::Tcp { addr })
                .map_err(|_| format!("printer address '{rest}' is not HOST:PORT (an IP address and port)")),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for PrinterAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrinterAddr::Uart { path, baud } => write!(f, "uart:{}@{baud}", path.display()),
            PrinterAddr::Rfcomm { path } => write!(f, "rfcomm:{}", path.display()),
            PrinterAddr::Usb { path } => write!(f, "usb:{}", path.display()),
            PrinterAddr::Tcp { addr } => write!(f, "tcp:{addr}"),
        }
    }
}

impl PrinterAddr {
    pub fn open(&self) -> io::Result<Box<dyn Port>> {
        Ok(match self {
            PrinterAddr::Uart { path, baud } => Box::new(FdPort::open_tty(path, *baud)?),
            // An RFCOMM tty ignores the baud rate; the Bluetooth link sets the pace.
            PrinterAddr::Rfcomm { path } => Box::new(FdPort::open_tty(path, 115_200)?),
            PrinterAddr::Usb { path } => Box::new(FdPort::open_file(path)?),
            PrinterAddr::Tcp { addr } => {
                let stream = TcpStream::connect_timeout(addr, Duration::from_secs(2))?;
                stream.set_nodelay(true)?;
                Box::new(TcpPort(stream))
            }
        })
    }
}

/// A tty or device file, read with `poll(2)` so a silent printer cannot block.
pub struct FdPort {
    file: File,
}

impl FdPort {
    /// Opens a serial tty raw (no echo, no line editing, 8N1) at `baud`.
    pub fn open_tty(path: &std::path::Path, baud: u32) -> io::Result<FdPort> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)?;
        let fd = file.as_raw_fd();
        let speed = match baud {
            9600 => libc::B9600,
            19200 => libc::B19200,
            38400 => libc::B38400,
            57600 => libc::B57600,
            115_200 => libc::B115200,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("baud rate {baud} is not one of 9600, 19200, 38400, 57600, 115200"),
                ))
            }
        };
        // SAFETY: `fd` is open for the life of `file`; `termios` is plain data
        // that tcgetattr fills in before it is read.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::cfmakeraw(&mut t);
            t.c_cflag |= libc::CLOCAL | libc::CREAD;
            libc::cfsetispeed(&mut t, speed);
            libc::cfsetospeed(&mut t, speed);
            if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(FdPort { file })
    }

    pub fn open_file(path: &std::path::Path) -> io::Result<FdPort> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(FdPort { file })
    }
}

impl Port for FdPort {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.flush()
    }

    fn read_byte(&mut self, timeout: Duration) -> io::Result<Option<u8>> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready < 0 {
            return Err(io::Error::last_os_error());
        }
        let hung_up = || io::Error::new(io::ErrorKind::BrokenPipe, "the device hung up (unplugged?)");
        if ready == 0 {
            return Ok(None);
        }
        // Gone (a USB serial device unplugged, a Bluetooth link dropped):
        // said, rather than polled again at once for ever.
        if pfd.revents & libc::POLLIN == 0 {
            return match pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) {
                0 => Ok(None),
                _ => Err(hung_up()),
            };
        }
        let mut b = [0u8; 1];
        match self.file.read(&mut b)? {
            0 => Err(hung_up()),
            _ => Ok(Some(b[0])),
        }
    }
}

pub struct TcpPort(TcpStream);

impl Port for TcpPort {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn read_byte(&mut self, timeout: Duration) -> io::Result<Option<u8>> {
        self.0
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        let mut b = [0u8; 1];
        match self.0.read(&mut b) {
            Ok(0) => Err(io::ErrorKind::ConnectionAborted.into()),
            Ok(_) => Ok(Some(b[0])),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_kind_parses_and_prints_back() {
        for s in [
            "uart:/dev/serial0@9600",
            "rfcomm:/dev/rfcomm0",
            "usb:/dev/usb/lp0",
            "tcp:127.0.0.1:9100",
        ] {
            let addr: PrinterAddr = s.parse().unwrap();
            let back = addr.to_string();
            assert_eq!(back.parse::<PrinterAddr>().unwrap(), addr);
        }
        assert_eq!(
            "uart:/dev/ttyAMA0".parse::<PrinterAddr>().unwrap(),
            PrinterAddr::Uart {
                path: "/dev/ttyAMA0".into(),
                baud: 9600
            }
        );
        assert!("lpt:1".parse::<PrinterAddr>().unwrap_err().contains("uart:"));
        assert!("uart:/dev/serial0@fast"
            .parse::<PrinterAddr>()
            .unwrap_err()
            .contains("baud"));
        assert!("tcp:printer".parse::<PrinterAddr>().is_err());
    }
}
