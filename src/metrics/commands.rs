//! Per-command counters and durations, indexed by the fixed command table of
//! [`crate::command::KNOWN_COMMANDS`] (plus one `other` group), so label sets stay bounded and an
//! update is an index plus relaxed atomic adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::histogram::{COMMAND_BUCKETS, Histogram, HistogramSnapshot};
use crate::command::{KNOWN_COMMANDS, OTHER_COMMAND};

/// What a duration observation was: one command (by table index), or a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timed {
    /// One command; its index from [`crate::command::command_index`].
    Command(usize),
    /// A pipeline, timed as a whole.
    Pipeline,
    /// A MULTI/EXEC transaction, timed as a whole.
    Transaction,
}

/// The `command` label of pipelines and transactions in the duration histogram.
const BATCH_LABELS: [&str; 2] = ["pipeline", "transaction"];

/// Counters per command name and outcome, and a duration histogram per command name.
pub(crate) struct CommandMetrics {
    /// `[ok, error]` per command (table order, then `other`).
    outcomes: Box<[[AtomicU64; 2]]>,
    /// Per command, then pipeline, then transaction.
    durations: Box<[Histogram]>,
}

/// One command's figures in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSnapshot {
    /// The label: a lower-case command name, `other`, `pipeline` or `transaction`.
    pub command: &'static str,
    /// Commands that got a reply that is not an error.
    pub ok: u64,
    /// Commands that failed or got an error reply.
    pub errors: u64,
    /// How long single commands (or whole pipelines / transactions) took, reply included.
    pub duration: HistogramSnapshot,
}

impl Default for CommandMetrics {
    fn default() -> Self {
        let names = KNOWN_COMMANDS.len() + 1;
        CommandMetrics {
            outcomes: (0..names).map(|_| Default::default()).collect(),
            durations: (0..names + BATCH_LABELS.len())
                .map(|_| Histogram::default())
                .collect(),
        }
    }
}

impl CommandMetrics {
    /// Counts `ok` successful and `errors` failed commands of one name (by table index).
    pub fn count(&self, index: usize, ok: u64, errors: u64) {
        let slot = &self.outcomes[index.min(self.outcomes.len() - 1)];
        for (counter, n) in slot.iter().zip([ok, errors]) {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Records how long a command or batch took.
    pub fn time(&self, what: Timed, elapsed: Duration) {
        let names = self.outcomes.len();
        let slot = match what {
            Timed::Command(index) => index.min(names - 1),
            Timed::Pipeline => names,
            Timed::Transaction => names + 1,
        };
        self.durations[slot].observe(COMMAND_BUCKETS, elapsed);
    }

    /// Every command with at least one count or observation.
    pub fn snapshot(&self) -> Vec<CommandSnapshot> {
        let labels = KNOWN_COMMANDS
            .iter()
            .copied()
            .chain([OTHER_COMMAND])
            .chain(BATCH_LABELS);
        labels
            .zip(self.durations.iter())
            .enumerate()
            .filter_map(|(i, (command, duration))| {
                let [ok, errors] = self
                    .outcomes
                    .get(i)
                    .map_or([0, 0], |o| o.each_ref().map(|c| c.load(Ordering::Relaxed)));
                let duration = duration.snapshot(COMMAND_BUCKETS);
                (ok + errors + duration.count > 0).then_some(CommandSnapshot {
                    command,
                    ok,
                    errors,
                    duration,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::command_index;

    #[test]
    fn counts_by_name_and_groups_the_rest() {
        let m = CommandMetrics::default();
        m.count(command_index(b"GET"), 1, 0);
        m.count(command_index(b"get"), 0, 1);
        m.count(command_index(b"FROBNICATE"), 1, 0);
        m.time(
            Timed::Command(command_index(b"GET")),
            Duration::from_micros(50),
        );
        m.time(Timed::Pipeline, Duration::from_millis(2));
        let snap = m.snapshot();
        let get = snap.iter().find(|c| c.command == "get").unwrap();
        assert_eq!((get.ok, get.errors, get.duration.count), (1, 1, 1));
        let other = snap.iter().find(|c| c.command == "other").unwrap();
        assert_eq!((other.ok, other.duration.count), (1, 0));
        let pipeline = snap.iter().find(|c| c.command == "pipeline").unwrap();
        assert_eq!((pipeline.ok, pipeline.duration.count), (0, 1));
        assert_eq!(snap.len(), 3, "untouched commands are left out: {snap:?}");
    }
}
