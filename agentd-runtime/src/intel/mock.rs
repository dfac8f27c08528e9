//! The scripted mock backend of the test harnesses (docs/cli.md "agentd test").
//!
//! A FIFO of canned turns, one per successive call. A turn with several
//! variants answers with the variant chosen for the trial:
//! `((trial × 0x9E3779B97F4A7C15) XOR (turn × 0xD1B54A32D192ED03)) mod n`
//! in wrapping u64 arithmetic (index 0 for single-variant turns). An
//! exhausted queue fails the call; `[faults] intel_error_on_call = N` fails
//! call N (1-based) without consuming a turn or billing anything.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::{Backend, ChatReply, ChatRequest};
use crate::error::Error;

/// One canned answer.
#[derive(Clone, Copy, Debug)]
pub struct MockVariant {
    /// The reply text.
    pub content: &'static str,
    /// Prompt tokens to bill.
    pub prompt_tokens: u32,
    /// Completion tokens to bill.
    pub completion_tokens: u32,
}

/// One `[[intel.turns]]` entry: a single answer or several variants.
#[derive(Clone, Copy, Debug)]
pub struct MockTurn {
    /// Never empty in well-formed input; an empty turn answers `""`.
    pub variants: &'static [MockVariant],
}

/// The variant index for `turn` (0-based) in `trial` (0-based) out of `n`.
#[must_use]
pub fn variant_index(trial: u64, turn: u64, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mixed =
        trial.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ turn.wrapping_mul(0xD1B5_4A32_D192_ED03);
    // `n` fits in u64 on every supported target, and the remainder is < n.
    usize::try_from(mixed % n as u64).unwrap_or(0)
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<ChatReply>,
    calls: u32,
    requests: Vec<ChatRequest>,
}

/// The scripted backend. Safe to share between threads.
#[derive(Debug)]
pub struct MockBackend {
    state: Mutex<State>,
    fault_on_call: Option<u32>,
}

impl MockBackend {
    /// A backend answering `turns` in order, variants chosen for `trial`,
    /// failing call `fault_on_call` (1-based) if set.
    #[must_use]
    pub fn new(turns: &[MockTurn], trial: u64, fault_on_call: Option<u32>) -> Self {
        let queue = turns
            .iter()
            .enumerate()
            .map(|(turn, t)| {
                let i = variant_index(trial, turn as u64, t.variants.len());
                t.variants
                    .get(i)
                    .map_or_else(ChatReply::default, |v| ChatReply {
                        content: v.content.to_owned(),
                        prompt_tokens: u64::from(v.prompt_tokens),
                        completion_tokens: u64::from(v.completion_tokens),
                    })
            })
            .collect();
        Self::from_replies(queue, fault_on_call)
    }

    /// A backend answering `replies` in order.
    #[must_use]
    pub fn from_replies(replies: VecDeque<ChatReply>, fault_on_call: Option<u32>) -> Self {
        Self {
            state: Mutex::new(State {
                queue: replies,
                ..State::default()
            }),
            fault_on_call,
        }
    }

    /// A backend answering `contents` in order with zero usage (fixtures'
    /// `[mocks] intel`).
    #[must_use]
    pub fn from_contents<S: Into<String>>(contents: impl IntoIterator<Item = S>) -> Self {
        let replies = contents
            .into_iter()
            .map(|c| ChatReply {
                content: c.into(),
                ..ChatReply::default()
            })
            .collect();
        Self::from_replies(replies, None)
    }

    /// Every request received so far, in order (faulted calls included).
    #[must_use]
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue torn.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Backend for MockBackend {
    fn complete(&self, req: &ChatRequest) -> Result<ChatReply, Error> {
        let mut state = self.lock();
        state.calls = state.calls.saturating_add(1);
        state.requests.push(req.clone());
        let call = state.calls;
        if self.fault_on_call == Some(call) {
            return Err(Error::Intelligence(format!(
                "injected transport fault on call {call}"
            )));
        }
        state.queue.pop_front().ok_or_else(|| {
            Error::Intelligence("MockClient: no canned response enqueued".to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::ChatMessage;

    fn req() -> ChatRequest {
        ChatRequest {
            model: "fast".into(),
            messages: vec![ChatMessage::user("x")],
            max_tokens: Some(1024),
            temperature: None,
        }
    }

    static V3: [MockVariant; 3] = [
        MockVariant {
            content: "a",
            prompt_tokens: 1,
            completion_tokens: 2,
        },
        MockVariant {
            content: "b",
            prompt_tokens: 3,
            completion_tokens: 4,
        },
        MockVariant {
            content: "c",
            prompt_tokens: 5,
            completion_tokens: 6,
        },
    ];
    static ONE: [MockVariant; 1] = [MockVariant {
        content: "solo",
        prompt_tokens: 7,
        completion_tokens: 8,
    }];

    #[test]
    fn variant_choice_matches_the_formula() {
        // Hand-computed: trial 1, turn 0: 0x9E3779B97F4A7C15 mod 3.
        assert_eq!(
            variant_index(1, 0, 3),
            (0x9E37_79B9_7F4A_7C15_u64 % 3) as usize
        );
        assert_eq!(variant_index(0, 0, 3), 0);
        let want = ((5_u64.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            ^ (2_u64.wrapping_mul(0xD1B5_4A32_D192_ED03)))
            % 7;
        assert_eq!(variant_index(5, 2, 7) as u64, want);
        // Single-variant (and empty) turns always pick index 0.
        for trial in 0..16 {
            assert_eq!(variant_index(trial, 3, 1), 0);
            assert_eq!(variant_index(trial, 3, 0), 0);
        }
        // Eight trials over three variants reach more than one variant.
        let picks: std::collections::BTreeSet<usize> =
            (0..8).map(|t| variant_index(t, 0, 3)).collect();
        assert!(picks.len() > 1, "{picks:?}");
    }

    #[test]
    fn turns_answer_in_order_then_the_queue_is_exhausted() {
        let turns = [MockTurn { variants: &ONE }, MockTurn { variants: &V3 }];
        let m = MockBackend::new(&turns, 1, None);
        let first = m.complete(&req()).ok();
        assert_eq!(
            first,
            Some(ChatReply {
                content: "solo".into(),
                prompt_tokens: 7,
                completion_tokens: 8
            })
        );
        let i = variant_index(1, 1, 3);
        assert_eq!(
            m.complete(&req()).ok().map(|r| r.content),
            Some(V3[i].content.to_owned())
        );
        assert_eq!(
            m.complete(&req()).err().map(|e| e.to_string()).as_deref(),
            Some("intelligence call failed: MockClient: no canned response enqueued")
        );
        assert_eq!(m.requests().len(), 3);
    }

    #[test]
    fn a_fault_consumes_no_turn() {
        let turns = [MockTurn { variants: &ONE }];
        let m = MockBackend::new(&turns, 0, Some(1));
        assert_eq!(
            m.complete(&req()).err().map(|e| e.to_string()).as_deref(),
            Some("intelligence call failed: injected transport fault on call 1")
        );
        assert_eq!(
            m.complete(&req()).ok().map(|r| r.content).as_deref(),
            Some("solo")
        );
    }

    #[test]
    fn fixture_contents_bill_nothing() {
        let m = MockBackend::from_contents(["positive"]);
        let r = m.complete(&req()).ok();
        assert_eq!(
            r.map(|r| (r.total_tokens(), r.content)),
            Some((0, "positive".into()))
        );
    }
}
