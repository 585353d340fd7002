//! An I2C bus with model chips on it, implementing embedded-hal's `I2c` like
//! the Pi's bus does: a transaction to an address nobody answers is a NACK.
//! It also counts the bits on the wire, so the time a frame takes at 400 kHz
//! can be measured rather than guessed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation, SevenBitAddress};

/// A chip on the bus.
pub trait I2cDevice: Send {
    /// The master wrote `bytes` in one transaction.
    fn write(&mut self, bytes: &[u8]);
    /// The master reads `buf.len()` bytes.
    fn read(&mut self, buf: &mut [u8]);
}

#[derive(Default)]
struct Bus {
    devices: BTreeMap<u8, Box<dyn I2cDevice>>,
    /// Clock cycles so far: 9 per byte (8 bits + ACK), plus start and stop.
    clocks: u64,
}

/// A shared handle to the bus; clone it for each driver.
#[derive(Clone, Default)]
pub struct I2cBus {
    bus: Arc<Mutex<Bus>>,
}

impl I2cBus {
    pub fn attach(&self, address: u8, device: Box<dyn I2cDevice>) {
        self.lock().devices.insert(address, device);
    }

    pub fn detach(&self, address: u8) -> Option<Box<dyn I2cDevice>> {
        self.lock().devices.remove(&address)
    }

    /// Clock cycles on the wire since the bus was made.
    pub fn clocks(&self) -> u64 {
        self.lock().clocks
    }

    fn lock(&self) -> MutexGuard<'_, Bus> {
        self.bus.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ErrorType for I2cBus {
    type Error = ErrorKind;
}

impl I2c<SevenBitAddress> for I2cBus {
    fn transaction(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), Self::Error> {
        let mut bus = self.lock();
        let bus = &mut *bus;
        let Some(device) = bus.devices.get_mut(&address) else {
            bus.clocks += 9 + 2;
            return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        };
        for op in operations {
            // A (repeated) start, the address byte, the data, and a stop.
            match op {
                Operation::Write(bytes) => {
                    bus.clocks += 2 + 9 * (1 + bytes.len() as u64);
                    device.write(bytes);
                }
                Operation::Read(buf) => {
                    bus.clocks += 2 + 9 * (1 + buf.len() as u64);
                    device.read(buf);
                }
            }
        }
        Ok(())
    }
}
