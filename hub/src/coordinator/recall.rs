//! "What became of this request?" from a terminal that restarted while it
//! waited: the stored outcome, or the id marked lost so a late copy of the
//! request can never charge.

use super::*;

impl<A: Acquirer> Coordinator<A> {
    /// "What became of this request?" from a terminal that restarted.
    pub(super) async fn recall(&self, terminal: &TerminalId, request_id: RequestId) -> Option<Response> {
        let _claim = self.claim(&request_id)?;
        let (rid, tid) = (request_id.clone(), terminal.clone());
        let found = self
            .store(move |s| {
                if let Some(txn) = s.by_request(rid.as_str())? {
                    return Ok(Some(txn));
                }
                s.mark_lost(&rid, &tid)?;
                Ok(None)
            })
            .await;
        match found {
            Ok(Some(txn)) if txn.terminal_id != terminal.as_str() => Some(Response::Error {
                request_id: Some(request_id.to_string()),
                code: ErrorCode::DuplicateRequestId,
                message: "this request id belongs to another terminal".into(),
            }),
            Ok(Some(txn)) => (txn.status != TxnStatus::Pending).then(|| self.outcome(&txn, None)),
            Ok(None) => {
                tracing::info!(terminal = %terminal, request_id = %request_id, "recalled request never arrived: marked lost, not charged");
                Some(Self::not_received(request_id, TxnKind::Sale))
            }
            Err(e) => Some(internal(&request_id, &e)),
        }
    }
}
