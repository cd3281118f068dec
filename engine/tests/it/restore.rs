//! A state restored from its canonical encoding (what a snapshot holds) behaves exactly like
//! the original: the same events for every later command, the same hash.

use l2x_engine::{CanonicalState, StateMachine};
use l2x_risk::Ledger;
use l2x_types::Event;

#[test]
fn a_restored_state_behaves_exactly_like_the_original() {
    let cmds = l2x_engine::testing::risk::stream(21, 3_000);
    for k in [50usize, 1_000, 2_200] {
        let mut original = StateMachine::new();
        let mut out = Vec::new();
        for c in &cmds[..k] {
            out.clear();
            original.apply(c, &mut out);
        }
        let encoded = original.canonical().encode();
        let decoded = CanonicalState::decode(&encoded).unwrap();
        let mut restored = StateMachine::restore(&decoded, Ledger::default()).unwrap();
        let (mut a, mut b): (Vec<Event>, Vec<Event>) = (Vec::new(), Vec::new());
        for c in &cmds[k..] {
            a.clear();
            b.clear();
            original.apply(c, &mut a);
            restored.apply(c, &mut b);
            assert_eq!(a, b, "after restoring at {k}, seq {}", c.seq.0);
        }
        assert_eq!(original.canonical().hash(), restored.canonical().hash());
    }
}
