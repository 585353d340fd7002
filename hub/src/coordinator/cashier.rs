//! Cashiers signing on at a checkout: the PIN checked against its argon2
//! hash off the store thread, the attempt recorded, a lock after five
//! wrong ones.

use super::*;

impl<A: Acquirer> Coordinator<A> {
    /// A cashier signs on: the PIN is checked against its argon2 hash off
    /// the store thread, then the attempt is recorded (and counted towards
    /// the lock when wrong). Unknown, removed and wrong all answer alike.
    pub(super) async fn sign_on(
        &self,
        terminal: &TerminalId,
        request_id: RequestId,
        no: String,
        pin: Secret<String>,
    ) -> Response {
        let n = no.clone();
        let found = match self.store(move |s| s.cashier_pin_hash(&n)).await {
            Ok(found) => found,
            Err(e) => return internal(&request_id, &e),
        };
        let pin_ok = match found {
            Some((hash, false)) => {
                tokio::task::spawn_blocking(move || crate::passwords::verify(pin.expose(), &hash))
                    .await
                    .unwrap_or(false)
            }
            _ => false,
        };
        let t = terminal.clone();
        let refused = |code: ReasonCode| Response::Cashier {
            request_id: request_id.clone(),
            cashier: None,
            refused: Some(code),
        };
        match self.store(move |s| s.sign_on(&t, &no, pin_ok)).await {
            Ok(SignOn::Done(cashier)) => {
                tracing::info!(terminal = %terminal, cashier = %cashier.no, "cashier signed on");
                Response::Cashier {
                    request_id,
                    cashier: Some(cashier),
                    refused: None,
                }
            }
            Ok(SignOn::Wrong) => {
                tracing::warn!(terminal = %terminal, "cashier sign-on refused: wrong number or PIN");
                refused(reason::CASHIER_WRONG)
            }
            Ok(SignOn::Locked) => {
                tracing::warn!(terminal = %terminal, "cashier sign-on refused: locked");
                refused(reason::CASHIER_LOCKED)
            }
            Err(e) => internal(&request_id, &e),
        }
    }
}
