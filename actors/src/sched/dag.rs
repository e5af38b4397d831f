//! One block's DAG: cycle detection at validation time and readiness at run time.
//! Items are numbered locally within the block, `0..len`.

use std::collections::VecDeque;

/// The dependency edges of one block, by local index.
#[derive(Debug, Clone, Default)]
pub(crate) struct BlockGraph {
    /// For each item, the items of this block it waits for.
    pub(crate) deps: Vec<Vec<u32>>,
    /// For each item, the items of this block that wait for it.
    pub(crate) dependents: Vec<Vec<u32>>,
}

impl BlockGraph {
    /// Builds the graph from each item's dependency list.
    pub(crate) fn new(deps: Vec<Vec<u32>>) -> Self {
        let mut dependents = vec![Vec::new(); deps.len()];
        for (item, item_deps) in deps.iter().enumerate() {
            for &dep in item_deps {
                dependents[dep as usize].push(item as u32);
            }
        }
        BlockGraph { deps, dependents }
    }

    /// Number of items.
    pub(crate) fn len(&self) -> usize {
        self.deps.len()
    }

    /// A cycle, if there is one: each item depends on the next, the first is repeated last.
    pub(crate) fn find_cycle(&self) -> Option<Vec<u32>> {
        // Kahn's algorithm removes every item not on or behind a cycle.
        let n = self.len();
        let mut waiting: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut queue: VecDeque<u32> = (0..n as u32)
            .filter(|&i| waiting[i as usize] == 0)
            .collect();
        let mut removed = vec![false; n];
        while let Some(item) = queue.pop_front() {
            removed[item as usize] = true;
            for &next in &self.dependents[item as usize] {
                waiting[next as usize] -= 1;
                if waiting[next as usize] == 0 {
                    queue.push_back(next);
                }
            }
        }
        // Every remaining item has a remaining dependency, so walking dependencies from any
        // of them must revisit an item: the walk from that item on is a cycle.
        let start = (0..n).find(|&i| !removed[i])? as u32;
        let mut position = vec![usize::MAX; n];
        let mut walk = Vec::new();
        let mut current = start;
        loop {
            if position[current as usize] != usize::MAX {
                let mut cycle = walk.split_off(position[current as usize]);
                cycle.push(current);
                return Some(cycle);
            }
            position[current as usize] = walk.len();
            walk.push(current);
            current = *self.deps[current as usize]
                .iter()
                .find(|&&d| !removed[d as usize])?;
        }
    }
}

/// How an item stood when its block was (re)started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Still to run (never started, or interrupted).
    Pending,
    /// Done: its dependents may start.
    Done,
    /// Failed or skipped: its dependents will be skipped.
    Blocked,
}

/// Which items of a block may start, as items finish.
#[derive(Debug)]
pub(crate) struct Readiness {
    waiting: Vec<u32>,
    ready: VecDeque<u32>,
    unsettled: usize,
    settled: Vec<bool>,
}

impl Readiness {
    /// A block with no items.
    pub(crate) fn empty() -> Self {
        Readiness {
            waiting: Vec::new(),
            ready: VecDeque::new(),
            unsettled: 0,
            settled: Vec::new(),
        }
    }

    /// How many items may start now.
    #[cfg(test)]
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// The state of a block whose items stand as `start` says.
    pub(crate) fn new(graph: &BlockGraph, start: impl Fn(u32) -> Start) -> (Self, Vec<u32>) {
        let n = graph.len();
        let mut this = Readiness {
            waiting: vec![0; n],
            ready: VecDeque::new(),
            unsettled: n,
            settled: vec![false; n],
        };
        let mut blocked = Vec::new();
        for item in 0..n as u32 {
            match start(item) {
                Start::Pending => {}
                Start::Done => this.settle(item),
                Start::Blocked => {
                    this.settle(item);
                    blocked.push(item);
                }
            }
        }
        for item in 0..n as u32 {
            if !this.settled[item as usize] {
                this.waiting[item as usize] = graph.deps[item as usize]
                    .iter()
                    .filter(|&&d| !(this.settled[d as usize] && start(d) == Start::Done))
                    .count() as u32;
                if this.waiting[item as usize] == 0 {
                    this.ready.push_back(item);
                }
            }
        }
        let mut skipped = Vec::new();
        for item in blocked {
            skipped.extend(this.fail(graph, item));
        }
        (this, skipped)
    }

    fn settle(&mut self, item: u32) {
        if !std::mem::replace(&mut self.settled[item as usize], true) {
            self.unsettled -= 1;
        }
    }

    /// The next item whose dependencies are all done.
    pub(crate) fn pop_ready(&mut self) -> Option<u32> {
        self.ready.pop_front()
    }

    /// `item` may start again (its retry wait is over); it stays unsettled meanwhile.
    pub(crate) fn again(&mut self, item: u32) {
        if !self.settled[item as usize] {
            self.ready.push_back(item);
        }
    }

    /// `item` is done: its dependents whose dependencies are now all done become ready.
    pub(crate) fn done(&mut self, graph: &BlockGraph, item: u32) {
        self.settle(item);
        for &next in &graph.dependents[item as usize] {
            let w = &mut self.waiting[next as usize];
            *w = w.saturating_sub(1);
            if *w == 0 && !self.settled[next as usize] {
                self.ready.push_back(next);
            }
        }
    }

    /// `item` failed: every item that depends on it, directly or not, is skipped.
    /// Returns the newly skipped items.
    pub(crate) fn fail(&mut self, graph: &BlockGraph, item: u32) -> Vec<u32> {
        self.settle(item);
        let mut skipped = Vec::new();
        let mut stack: Vec<u32> = graph.dependents[item as usize].clone();
        while let Some(next) = stack.pop() {
            if self.settled[next as usize] {
                continue;
            }
            self.settle(next);
            self.ready.retain(|&r| r != next);
            skipped.push(next);
            stack.extend_from_slice(&graph.dependents[next as usize]);
        }
        skipped
    }

    /// Whether every item is done, failed or skipped.
    pub(crate) fn is_settled(&self) -> bool {
        self.unsettled == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diamond() -> BlockGraph {
        // 0 -> 1, 0 -> 2, {1,2} -> 3
        BlockGraph::new(vec![vec![], vec![0], vec![0], vec![1, 2]])
    }

    fn drain(r: &mut Readiness) -> Vec<u32> {
        std::iter::from_fn(|| r.pop_ready()).collect()
    }

    #[test]
    fn dependents_become_ready_only_when_all_deps_are_done() {
        let g = diamond();
        let (mut r, skipped) = Readiness::new(&g, |_| Start::Pending);
        assert!(skipped.is_empty());
        assert_eq!(drain(&mut r), vec![0]);
        r.done(&g, 0);
        assert_eq!(drain(&mut r), vec![1, 2]);
        r.done(&g, 1);
        assert_eq!(drain(&mut r), Vec::<u32>::new());
        r.done(&g, 2);
        assert_eq!(drain(&mut r), vec![3]);
        assert!(!r.is_settled());
        r.done(&g, 3);
        assert!(r.is_settled());
    }

    #[test]
    fn restart_skips_done_items() {
        let g = diamond();
        let (mut r, _) = Readiness::new(&g, |i| if i <= 1 { Start::Done } else { Start::Pending });
        assert_eq!(drain(&mut r), vec![2]);
        r.done(&g, 2);
        assert_eq!(drain(&mut r), vec![3]);
    }

    #[test]
    fn failure_skips_transitive_dependents_only() {
        let g = BlockGraph::new(vec![vec![], vec![0], vec![1], vec![]]);
        let (mut r, _) = Readiness::new(&g, |_| Start::Pending);
        assert_eq!(drain(&mut r), vec![0, 3]);
        let mut skipped = r.fail(&g, 0);
        skipped.sort();
        assert_eq!(skipped, vec![1, 2]);
        assert!(!r.is_settled());
        r.done(&g, 3);
        assert!(r.is_settled());
    }

    #[test]
    fn blocked_items_at_restart_skip_their_dependents() {
        let g = diamond();
        let (mut r, mut skipped) = Readiness::new(&g, |i| {
            if i == 1 {
                Start::Blocked
            } else {
                Start::Done.min_for(i)
            }
        });
        skipped.sort();
        assert_eq!(skipped, vec![3]);
        assert_eq!(drain(&mut r), vec![2]);
        r.done(&g, 2);
        assert!(r.is_settled());
    }

    impl Start {
        fn min_for(self, i: u32) -> Start {
            if i == 0 { Start::Done } else { Start::Pending }
        }
    }

    #[test]
    fn finds_the_items_on_a_cycle() {
        // 0 <- 1 <- 2 <- 1 (1 and 2 form a cycle), 3 depends on the cycle.
        let g = BlockGraph::new(vec![vec![], vec![0, 2], vec![1], vec![2]]);
        let cycle = g.find_cycle().unwrap();
        assert_eq!(cycle.first(), cycle.last());
        let mut members = cycle[..cycle.len() - 1].to_vec();
        members.sort();
        assert_eq!(members, vec![1, 2]);
        assert_eq!(diamond().find_cycle(), None);
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let g = BlockGraph::new(vec![vec![0]]);
        assert_eq!(g.find_cycle(), Some(vec![0, 0]));
    }
}
