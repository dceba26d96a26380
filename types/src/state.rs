//! The job lifecycle: one enum with its legal transitions, used by the contract (which
//! refuses any other move), the worker and the client.
//!
//! ```text
//!  Open ──bids, cleanup after the window──▶ Assigned ◀──accept_job── AwaitingAccept
//!   │  └─no bid─▶ Refunded                     │ │ │                       └─timeout─▶ Refunded
//!   ▲                                          │ │ └─report (inputs)─▶ InputCheck ─▶ Assigned | Unavailable | Refunded
//!   └────────── commit timeout (re-open once) ─┘ └─commit─▶ Committed ──seed (or silence)──┐
//!                   (a direct hire's provider may commit from AwaitingAccept: accept + commit)
//!                                                                                         ▼
//!                 unchecked: Reveal ─provider reveals─▶ Settled            checked: VerifierCommit ─commit─▶ Reveal
//!  Reveal (checked): answers equal ▶ Settled; differ ▶ VerifierCommit (round 2) ▶ Reveal ▶ Settled | Slashed | Refunded
//!  silence: provider ▶ Slashed; verifier ▶ slashed and replaced (VerifierCommit)
//!  no verifier to be had ▶ Unverified (the provider is paid only if the renter chose so)
//! ```
use parity_scale_codec::{Decode, Encode};
use scale_info::TypeInfo;

/// Where a job is. Every non-terminal state has a deadline (`phase_deadline`), after which
/// anyone may call `cleanup`; every job ends in a terminal state in bounded blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "ink-std", derive(ink::storage::traits::StorageLayout))]
pub enum JobState {
    /// Taking bids until the deadline (an auction).
    Open,
    /// Waiting for the hired offer's provider to accept.
    AwaitingAccept,
    /// The provider runs the job and must commit by the deadline.
    Assigned,
    /// The provider reported the inputs unavailable; a drawn verifier checks.
    InputCheck,
    /// The provider committed; the renter must reveal its seed.
    Committed,
    /// A verifier is (to be) drawn and must commit its own answer.
    VerifierCommit,
    /// Commitments are in; the answers must be revealed.
    Reveal,
    /// Paid out (terminal).
    Settled,
    /// Escrow returned to the renter (terminal).
    Refunded,
    /// The provider was slashed, the renter refunded (terminal).
    Slashed,
    /// A verifier confirmed the inputs unavailable: the renter paid those who tried (terminal).
    Unavailable,
    /// A decided check found no verifier: paid or refunded as the renter chose (terminal).
    Unverified,
}

impl JobState {
    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Settled | JobState::Refunded | JobState::Slashed | JobState::Unavailable | JobState::Unverified)
    }

    /// Whether the lifecycle allows moving from `self` to `to` (staying is always allowed).
    pub fn can_move_to(self, to: JobState) -> bool {
        use JobState::*;
        if self == to {
            return !self.is_terminal();
        }
        match self {
            Open => matches!(to, Assigned | Refunded),
            AwaitingAccept => matches!(to, Assigned | Refunded),
            Assigned => matches!(to, Committed | InputCheck | Open | Refunded),
            InputCheck => matches!(to, Assigned | Unavailable | Refunded),
            Committed => matches!(to, Reveal | VerifierCommit | Unverified),
            VerifierCommit => matches!(to, Reveal | Unverified | Refunded),
            Reveal => matches!(to, Settled | Slashed | Refunded | VerifierCommit | Unverified),
            Settled | Refunded | Slashed | Unavailable | Unverified => false,
        }
    }

    /// Every state, for exhaustive checks.
    pub const ALL: [JobState; 12] = [
        JobState::Open,
        JobState::AwaitingAccept,
        JobState::Assigned,
        JobState::InputCheck,
        JobState::Committed,
        JobState::VerifierCommit,
        JobState::Reveal,
        JobState::Settled,
        JobState::Refunded,
        JobState::Slashed,
        JobState::Unavailable,
        JobState::Unverified,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_go_nowhere_and_every_live_state_can_end() {
        for s in JobState::ALL {
            if s.is_terminal() {
                assert!(JobState::ALL.iter().all(|t| !s.can_move_to(*t)), "{s:?}");
            } else {
                // Some path of legal moves reaches a terminal state.
                let mut seen = [false; 12];
                let mut stack = alloc::vec![s];
                let mut ends = false;
                while let Some(x) = stack.pop() {
                    let i = JobState::ALL.iter().position(|y| *y == x).unwrap();
                    if seen[i] {
                        continue;
                    }
                    seen[i] = true;
                    ends |= x.is_terminal();
                    stack.extend(JobState::ALL.iter().filter(|t| x.can_move_to(**t) && **t != x));
                }
                assert!(ends, "{s:?} cannot end");
            }
        }
    }

    #[test]
    fn no_way_back_to_creation_states_except_the_reopen() {
        for s in JobState::ALL {
            if s != JobState::Assigned && s != JobState::Open {
                assert!(!s.can_move_to(JobState::Open), "{s:?}");
            }
            if s != JobState::AwaitingAccept {
                assert!(!s.can_move_to(JobState::AwaitingAccept), "{s:?}");
            }
        }
    }
}
