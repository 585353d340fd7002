//! "What became of this request?" from a terminal that restarted while it
//! waited: the stored outcome, or the id marked lost so a late copy of the
//! request can never charge. While the history is lost below the database,
//! an id it does not hold may have been charged and answered before the
//! loss: the hub then cannot tell, and says so (the sale stays unconfirmed
//! at the checkout) instead of "not charged".

use super::*;

enum Recalled {
    Found(Box<Txn>),
    NeverArrived,
    CannotTell,
}

impl<A: Acquirer> Coordinator<A> {
    /// "What became of this request?" from a terminal that restarted.
    pub(super) async fn recall(&self, terminal: &TerminalId, request_id: RequestId) -> Option<Response> {
        let _claim = self.claim(&request_id)?;
        let (rid, tid) = (request_id.clone(), terminal.clone());
        let found = self
            .store(move |s| {
                if let Some(txn) = s.by_request(rid.as_str())? {
                    return Ok(Recalled::Found(Box::new(txn)));
                }
                if s.history_lost()?.is_some() {
                    return Ok(Recalled::CannotTell);
                }
                s.mark_lost(&rid, &tid)?;
                Ok(Recalled::NeverArrived)
            })
            .await;
        match found {
            Ok(Recalled::Found(txn)) if txn.terminal_id != terminal.as_str() => Some(Response::Error {
                request_id: Some(request_id.to_string()),
                code: ErrorCode::DuplicateRequestId,
                message: "this request id belongs to another terminal".into(),
            }),
            Ok(Recalled::Found(txn)) => (txn.status != TxnStatus::Pending).then(|| self.outcome(&txn, None)),
            Ok(Recalled::NeverArrived) => {
                tracing::info!(terminal = %terminal, request_id = %request_id, "recalled request never arrived: marked lost, not charged");
                Some(Self::not_received(request_id, TxnKind::Sale))
            }
            Ok(Recalled::CannotTell) => {
                tracing::warn!(terminal = %terminal, request_id = %request_id, "a recalled request the hub's records lack while history is lost: it may have been charged, so it is not answered");
                None
            }
            Err(e) => Some(internal(&request_id, &e)),
        }
    }
}
