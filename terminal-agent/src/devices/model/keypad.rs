//! A 4×4 membrane keypad without diodes, as the GPIO lines see it: a column
//! reads low when a pressed key (or a chain of them, which is how ghost keys
//! happen) joins it to the row being driven low. Contacts bounce for a few
//! scans after each press and release.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

#[derive(Default)]
struct Matrix {
    pressed: [[bool; 4]; 4],
    /// Scans left in which a key's contact still chatters (counted each
    /// time its row is driven).
    bounce: [[u8; 4]; 4],
    row_low: [bool; 4],
    /// How many scans each contact bounces after it changes.
    bounce_reads: u8,
}

impl Matrix {
    fn contact(&self, r: usize, c: usize) -> bool {
        if self.bounce[r][c] > 0 {
            // Chatter: open and closed in turn, scan by scan.
            return self.bounce[r][c] % 2 == 1;
        }
        self.pressed[r][c]
    }

    /// Whether column `col` is pulled low through closed contacts.
    fn column_low(&self, col: usize) -> bool {
        let mut closed = [[false; 4]; 4];
        for (r, row) in closed.iter_mut().enumerate() {
            for (c, cell) in row.iter_mut().enumerate() {
                *cell = self.contact(r, c);
            }
        }
        // Rows and columns joined by closed contacts, starting from the column.
        let (mut rows, mut cols) = ([false; 4], [false; 4]);
        cols[col] = true;
        let mut changed = true;
        while changed {
            changed = false;
            for r in 0..4 {
                for c in 0..4 {
                    if closed[r][c] && rows[r] != cols[c] {
                        rows[r] = true;
                        cols[c] = true;
                        changed = true;
                    }
                }
            }
        }
        (0..4).any(|r| rows[r] && self.row_low[r])
    }
}

/// The keypad shared by its pins and whoever presses keys.
#[derive(Clone, Default)]
pub struct KeypadMatrix(Arc<Mutex<Matrix>>);

impl KeypadMatrix {
    pub fn with_bounce(reads: u8) -> KeypadMatrix {
        let m = KeypadMatrix::default();
        m.lock().bounce_reads = reads;
        m
    }

    fn lock(&self) -> MutexGuard<'_, Matrix> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self, row: usize, col: usize, down: bool) {
        let mut m = self.lock();
        if m.pressed[row][col] != down {
            m.pressed[row][col] = down;
            m.bounce[row][col] = m.bounce_reads;
        }
    }

    pub fn pins(&self) -> ([RowPin; 4], [ColumnPin; 4]) {
        (
            std::array::from_fn(|row| RowPin { m: self.clone(), row }),
            std::array::from_fn(|col| ColumnPin { m: self.clone(), col }),
        )
    }
}

pub struct RowPin {
    m: KeypadMatrix,
    row: usize,
}

pub struct ColumnPin {
    m: KeypadMatrix,
    col: usize,
}

impl ErrorType for RowPin {
    type Error = Infallible;
}

impl OutputPin for RowPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        let mut m = self.m.lock();
        m.row_low[self.row] = true;
        for b in &mut m.bounce[self.row] {
            *b = b.saturating_sub(1);
        }
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.m.lock().row_low[self.row] = false;
        Ok(())
    }
}

impl ErrorType for ColumnPin {
    type Error = Infallible;
}

impl InputPin for ColumnPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(!self.m.lock().column_low(self.col))
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(self.m.lock().column_low(self.col))
    }
}
