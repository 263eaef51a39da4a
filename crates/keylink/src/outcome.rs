//! Flow outcomes: the result of a completed browser sign-in, left in the data directory for
//! the process waiting on it (`<data dir>/outcomes/<flow id>.json`), since the redirect may
//! be completed by another process (`keylink open-url`, an app cold-started by the OS).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{Error, ErrorCode};
use crate::ids::FlowId;
use crate::store::Account;

/// What is written: the account id, or why it failed. Never a token.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Linked {
        account: String,
    },
    Failed {
        code: String,
        message: String,
        #[serde(default)]
        remedy: Option<String>,
    },
}

/// The outcome files of one data directory.
pub(crate) struct Outcomes {
    dir: PathBuf,
}

impl Outcomes {
    /// The outcomes directory, after checking that nobody else could have planted anything
    /// in it.
    pub(crate) fn new(ctx: &Context) -> Result<Outcomes, Error> {
        Ok(Outcomes {
            dir: ctx.trusted_dir("outcomes")?,
        })
    }

    fn path(&self, flow_id: &FlowId) -> PathBuf {
        self.dir.join(format!("{flow_id}.json"))
    }

    /// Leaves `result` for whoever waits on `flow_id`. Best effort: a waiter that never
    /// hears times out.
    pub(crate) fn record(&self, flow_id: &FlowId, result: &Result<Account, Error>) {
        let outcome = match result {
            Ok(account) => Outcome::Linked {
                account: account.id.to_string(),
            },
            Err(e) => Outcome::Failed {
                code: e.code().as_str().into(),
                message: e.to_string(),
                remedy: e.remedy(),
            },
        };
        if let Ok(bytes) = serde_json::to_vec(&outcome) {
            let _ = crate::store::create_private_dir(&self.dir);
            let _ = crate::store::write_atomic(&self.path(flow_id), &bytes);
        }
    }

    /// The result for `flow_id`, once it has arrived; it is removed as it is read.
    pub(crate) fn take(&self, ctx: &Context, flow_id: &FlowId) -> Option<Result<Account, Error>> {
        let path = self.path(flow_id);
        let bytes = crate::store::read_private(&path).ok()?;
        let _ = std::fs::remove_file(&path);
        Some(match serde_json::from_slice::<Outcome>(&bytes) {
            Ok(Outcome::Linked { account }) => ctx.account(&account),
            Ok(Outcome::Failed {
                code,
                message,
                remedy,
            }) => Err(Error::LinkFailed {
                code: ErrorCode::parse(&code).unwrap_or(ErrorCode::LinkFailed),
                message,
                remedy,
            }),
            Err(_) => Err(Error::LinkFailed {
                code: ErrorCode::LinkFailed,
                message: "the result could not be read".into(),
                remedy: None,
            }),
        })
    }

    /// Forgets the result for `flow_id`, if any.
    pub(crate) fn discard(&self, flow_id: &FlowId) {
        let _ = std::fs::remove_file(self.path(flow_id));
    }
}
