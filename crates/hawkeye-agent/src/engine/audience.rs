//! Who hears of a check, with inhibition across levels (`docs/alerts.md`,
//! "Inhibition"): a lower level mails only the recipients no firing higher
//! level mails. The state remembers who was told of the episode's firing
//! (`AlertState::told`), so that
//! - a recipient a higher level covered is told once that level stops
//!   firing while this one still fires (a firing mail to them alone),
//! - a resolved mail goes to those told of the firing, and only to them.

use std::collections::HashSet;

use crate::notification::Recipients;
use crate::state::{AlertState, Notice, Status, Step, UnixMillis};

/// What a check of an email trigger writes and mails, and to whom.
pub(crate) struct Addressed {
    pub next: Option<AlertState>,
    pub notice: Option<Notice>,
    pub recipients: Recipients,
}

/// Who was told of `prev`'s firing. States written before this was kept
/// say only whether anyone was: then every recipient was.
fn told(prev: &AlertState, own: &Recipients) -> HashSet<String> {
    if prev.told.is_empty() && prev.notified {
        return own.mailboxes().collect();
    }
    prev.told.iter().cloned().collect()
}

fn sorted(set: HashSet<String>) -> Vec<String> {
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort();
    v
}

/// Addresses the outcome of [`crate::state::step`] for an email trigger:
/// `own` are its recipients, `current` those left after inhibition,
/// `muted` whether the check mails nobody (silence, maintenance, fully
/// inhibited).
pub(crate) fn address(
    prev: &AlertState,
    step: Step,
    own: &Recipients,
    current: Recipients,
    muted: bool,
    slot: UnixMillis,
) -> Addressed {
    match (step.notice, step.next) {
        (Some(notice @ (Notice::Firing | Notice::Repeat)), Some(mut next)) => {
            let mut told = if notice == Notice::Firing && !prev.notified {
                HashSet::new()
            } else {
                told(prev, own)
            };
            told.extend(current.mailboxes());
            next.told = sorted(told);
            Addressed {
                next: Some(next),
                notice: Some(notice),
                recipients: current,
            }
        }
        (Some(Notice::Resolved), next) => {
            let recipients = own.only(&told(prev, own));
            Addressed {
                next,
                notice: (!recipients.is_empty()).then_some(Notice::Resolved),
                recipients,
            }
        }
        (None, next) => {
            let firing = next.as_ref().map_or(prev.status, |n| n.status) == Status::Firing;
            // The steady state of every trigger not firing ends here,
            // without parsing an address.
            if !firing || muted {
                return Addressed {
                    next,
                    notice: None,
                    recipients: current,
                };
            }
            let before = told(prev, own);
            let pending = current.without(&before);
            if pending.is_empty() {
                return Addressed {
                    next,
                    notice: None,
                    recipients: current,
                };
            }
            // Recipients a higher level covered until now (or added by a
            // reload): told that this level fires.
            let mut next = next.unwrap_or_else(|| prev.clone());
            next.check = slot;
            let mut told = before;
            told.extend(pending.mailboxes());
            next.told = sorted(told);
            Addressed {
                next: Some(next),
                notice: Some(Notice::Firing),
                recipients: pending,
            }
        }
        (notice, next) => Addressed {
            next,
            notice,
            recipients: current,
        },
    }
}
