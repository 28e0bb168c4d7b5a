//! Model-based property tests: random sequences of operations on each
//! primitive, checked after every step against an obviously-correct model.
//! Seeds are fixed, so a failure names the seed that reproduces it.

use std::collections::BTreeMap;

use futures_lite::future::{block_on, poll_once};
use winddown::{DrainToken, Registry, WaitGroup};

const SEEDS: u64 = 200;
const STEPS: usize = 300;

#[test]
fn wait_group_count_and_wait_match_the_model() {
    for seed in 0..SEEDS {
        let mut rng = fastrand::Rng::with_seed(seed);
        let group = WaitGroup::new();
        let mut guards = Vec::new();
        for step in 0..STEPS {
            match rng.u8(0..3) {
                0 | 1 if rng.bool() || guards.is_empty() => guards.push(group.add()),
                0 => {
                    let clone = guards[rng.usize(0..guards.len())].add();
                    guards.push(clone);
                }
                _ => {
                    if !guards.is_empty() {
                        drop(guards.swap_remove(rng.usize(0..guards.len())));
                    }
                }
            }
            assert_eq!(group.count(), guards.len(), "seed {seed} step {step}");
            let ready = block_on(poll_once(group.wait())).is_some();
            assert_eq!(ready, guards.is_empty(), "seed {seed} step {step}");
        }
    }
}

#[test]
fn registry_contents_match_the_model() {
    for seed in 0..SEEDS {
        let mut rng = fastrand::Rng::with_seed(seed);
        let registry = Registry::new();
        let mut live = BTreeMap::new();
        let mut next = 0u32;
        for step in 0..STEPS {
            if rng.u8(0..5) < 3 || live.is_empty() {
                live.insert(next, registry.insert(next));
                next += 1;
            } else {
                let keys: Vec<u32> = live.keys().copied().collect();
                live.remove(&keys[rng.usize(0..keys.len())]);
            }
            assert_eq!(registry.len(), live.len(), "seed {seed} step {step}");
            let mut seen: Vec<u32> = registry.snapshot().iter().map(|e| **e).collect();
            seen.sort_unstable();
            let expected: Vec<u32> = live.keys().copied().collect();
            assert_eq!(seen, expected, "seed {seed} step {step}");
            let empty = block_on(poll_once(registry.wait_empty())).is_some();
            assert_eq!(empty, live.is_empty(), "seed {seed} step {step}");
        }
    }
}

/// A random tree of tokens; handles are dropped and nodes fired at random.
/// Only some nodes keep an observer handle, so nodes nobody can reach get
/// pruned. Every observed node must read fired exactly when it or an ancestor
/// was fired, whatever handles in between were dropped.
#[test]
fn drain_token_tree_fires_exactly_the_descendants() {
    for seed in 0..SEEDS {
        let mut rng = fastrand::Rng::with_seed(seed);
        let root = DrainToken::new();
        let mut parent: Vec<Option<usize>> = vec![None];
        let mut handles: Vec<Option<DrainToken>> = vec![Some(root.clone())];
        let mut observers: Vec<Option<DrainToken>> = vec![Some(root)];
        let mut fired_here: Vec<bool> = vec![false];

        for step in 0..STEPS {
            let choice = rng.u8(0..10);
            let held: Vec<usize> = (0..handles.len())
                .filter(|&i| handles[i].is_some())
                .collect();
            if choice < 6 && !held.is_empty() {
                let p = held[rng.usize(0..held.len())];
                let child = handles[p].as_ref().unwrap().child();
                observers.push(rng.u8(0..3).eq(&0).then(|| child.clone()));
                parent.push(Some(p));
                handles.push(Some(child));
                fired_here.push(false);
            } else if choice < 8 && !held.is_empty() {
                handles[held[rng.usize(0..held.len())]] = None;
            } else {
                let reachable: Vec<usize> = (0..handles.len())
                    .filter(|&i| handles[i].is_some() || observers[i].is_some())
                    .collect();
                let i = reachable[rng.usize(0..reachable.len())];
                let token = handles[i].clone().or_else(|| observers[i].clone()).unwrap();
                let was_fired = token.is_fired();
                assert_eq!(token.fire(), !was_fired, "seed {seed} step {step}");
                fired_here[i] = true;
            }
            for (i, observer) in observers.iter().enumerate() {
                let Some(observer) = observer else { continue };
                let mut expected = false;
                let mut at = Some(i);
                while let Some(n) = at {
                    expected |= fired_here[n];
                    at = parent[n];
                }
                assert_eq!(
                    observer.is_fired(),
                    expected,
                    "seed {seed} step {step} node {i}"
                );
            }
        }
    }
}
