//! Transaction kinds and the states a transaction goes through.

use serde::{Deserialize, Serialize};

/// Kind of money movement (settlement is a batch operation, not a transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnKind {
    Sale,
    Balance,
    /// 撤销: cancels a sale of the open batch, in full.
    Void,
    /// 退货: gives back part or all of an earlier sale.
    Refund,
}

impl TxnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnKind::Sale => "sale",
            TxnKind::Balance => "balance",
            TxnKind::Void => "void",
            TxnKind::Refund => "refund",
        }
    }
}

/// Life of a transaction: `pending` until the acquirer answered, then final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnStatus {
    Pending,
    Approved,
    Declined,
    /// Refused by the hub before reaching the acquirer (nothing charged).
    Failed,
    /// Sent, but not answered in time: reversed with the acquirer, not charged.
    Reversed,
}

impl TxnStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnStatus::Pending => "pending",
            TxnStatus::Approved => "approved",
            TxnStatus::Declined => "declined",
            TxnStatus::Failed => "failed",
            TxnStatus::Reversed => "reversed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            TxnStatus::Pending,
            TxnStatus::Approved,
            TxnStatus::Declined,
            TxnStatus::Failed,
            TxnStatus::Reversed,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}
