//! Printing as the checkout runs it: slips go into the on-disk [`queue`]
//! first and the [`spool`] thread prints them, oldest first, each exactly
//! once, waiting out printer problems. The driver it prints through is
//! `crate::devices::printer`.

pub mod queue;
pub mod spool;
