//! The server-side state of one connection's session as far as its replies prove it, and the reply
//! accounting built on it: for each command, in the order the server runs them, how many frames
//! the server will send back ([`Session::expect`]).
//!
//! State is assumed on the safe side and cleared only on the server's word: a MULTI counts as open
//! once answered `+OK` and ends only when EXEC or DISCARD is answered without error; a WATCH
//! counts as active from the moment it is sent until EXEC, DISCARD or UNWATCH is answered.

use std::collections::HashSet;

use redis::Value;

use super::{Effect, Facts, Family, ReplyMode, Shape};

/// What the server will send for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Nothing: replies are off (`CLIENT REPLY OFF|SKIP`).
    Nothing,
    /// One reply.
    One,
    /// `count` confirmations of the SUBSCRIBE family (or one error in place of the first, when
    /// the server refused the command as a whole).
    Confirmations {
        /// Which subscriptions they count.
        family: Family,
        /// True for SUBSCRIBE-like commands.
        subscribes: bool,
        /// How many.
        count: u32,
    },
}

/// The session state of one connection (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// MULTI was answered `+OK` and no EXEC or DISCARD was answered since.
    in_transaction: bool,
    /// A WATCH may be active.
    watching: bool,
    /// A command changed the connection for good: close it rather than reuse it.
    tainted: bool,
    /// MONITOR was answered: the server streams, and no request may follow.
    streaming: bool,
    /// `CLIENT REPLY OFF` ran: nothing is answered until `CLIENT REPLY ON` (or RESET).
    replies_off: bool,
    /// `CLIENT REPLY SKIP` ran: the next command is not answered.
    skip_next: bool,
    /// Current subscriptions, from the server's confirmations (none on almost every connection).
    subscriptions: Option<Box<Subscriptions>>,
}

#[derive(Debug, Default)]
struct Subscriptions {
    channels: HashSet<Vec<u8>>,
    patterns: HashSet<Vec<u8>>,
    shard_channels: HashSet<Vec<u8>>,
}

impl Subscriptions {
    fn of(&mut self, family: Family) -> &mut HashSet<Vec<u8>> {
        match family {
            Family::Channels => &mut self.channels,
            Family::Patterns => &mut self.patterns,
            Family::ShardChannels => &mut self.shard_channels,
        }
    }

    fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty()
    }
}

impl Session {
    /// The frames the server sends for the next command, whose facts are `facts`; call it for
    /// every command in the order they were written, as their replies are read (so every earlier
    /// reply has been seen). Applies what the command does to the session when it is run.
    pub fn expect(&mut self, facts: &Facts) -> Expect {
        let skipped = std::mem::take(&mut self.skip_next);
        if matches!(facts.effect, Effect::Session { .. } | Effect::Closes) {
            self.tainted = true;
        }
        match facts.shape {
            // These two clear the reply flags before answering, so they answer even when off.
            Shape::ReplyMode(ReplyMode::On) => {
                self.replies_off = false;
                return Expect::One;
            }
            Shape::Reset => {
                *self = Session {
                    tainted: true,
                    ..Session::default()
                };
                return Expect::One;
            }
            Shape::ReplyMode(ReplyMode::Off) => {
                self.replies_off = true;
                return Expect::Nothing;
            }
            Shape::ReplyMode(ReplyMode::Skip) => {
                self.skip_next = !self.replies_off;
                return Expect::Nothing;
            }
            _ => {}
        }
        if self.replies_off || skipped {
            return Expect::Nothing;
        }
        if self.in_transaction && !matches!(facts.effect, Effect::Multi | Effect::EndTransaction) {
            // Queued: answered `+QUEUED` (or an error), whatever the command.
            return Expect::One;
        }
        match facts.shape {
            Shape::Confirmations {
                family,
                subscribes,
                names,
            } => {
                let count = match (names, subscribes) {
                    (0, true) => return Expect::One, // no name: an arity error
                    (0, false) => self.subscription_count(family).max(1),
                    (names, _) => names,
                };
                Expect::Confirmations {
                    family,
                    subscribes,
                    count,
                }
            }
            _ => Expect::One,
        }
    }

    /// Updates the session with the reply to a command whose facts are `facts` (after
    /// [`Session::expect`] for it). Not called for confirmations, see [`Session::confirmed`].
    pub fn answered(&mut self, facts: &Facts, reply: &Value) {
        let refused = |reply: &Value| matches!(reply, Value::ServerError(_));
        match facts.effect {
            Effect::Multi if matches!(reply, Value::Okay) => self.in_transaction = true,
            Effect::EndTransaction if !refused(reply) || is_exec_abort(reply) => {
                self.in_transaction = false;
                self.watching = false;
            }
            Effect::Watch => self.watching = true,
            Effect::Unwatch if !self.in_transaction && matches!(reply, Value::Okay) => {
                self.watching = false;
            }
            _ => {}
        }
        if facts.shape == Shape::Stream && !refused(reply) && !self.in_transaction {
            self.streaming = true;
        }
    }

    /// Records one confirmation of `family` (`[kind, name, count]`): the subscription set it names
    /// grows or shrinks.
    pub fn confirmed(&mut self, family: Family, subscribes: bool, confirmation: &[Value]) {
        let Some(Value::BulkString(name)) = confirmation.get(1) else {
            return; // `unsubscribe nil 0`: there was nothing to unsubscribe from
        };
        let subscriptions = self.subscriptions.get_or_insert_with(Box::default);
        if subscribes {
            subscriptions.of(family).insert(name.clone());
        } else {
            subscriptions.of(family).remove(name);
        }
        if subscriptions.is_empty() {
            self.subscriptions = None;
        }
    }

    /// A WATCH is marked before it is sent (a failed one leaves the mark, which only costs an
    /// UNWATCH on return).
    pub fn watch_sent(&mut self) {
        self.watching = true;
    }

    /// True when an ordinary command (one reply, no effect) is answered with exactly one frame
    /// and changes nothing here: replies are on. The fast path of the reply accounting.
    pub fn answers_ordinary_commands(&self) -> bool {
        !self.replies_off && !self.skip_next
    }

    /// True when the server delivers published messages to this connection (RESP2 sends them as
    /// arrays, so they must be told from replies).
    pub fn subscribed(&self) -> bool {
        self.subscriptions.is_some()
    }

    /// True while a MULTI is open.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// True when a MULTI or WATCH may be open (returning the connection must end them).
    pub fn needs_settling(&self) -> bool {
        self.in_transaction || self.watching
    }

    /// True when the connection was changed for good and must be closed rather than reused.
    pub fn is_tainted(&self) -> bool {
        self.tainted
    }

    /// True once MONITOR was answered: the connection carries a stream, not replies.
    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    fn subscription_count(&self, family: Family) -> u32 {
        let count = match &self.subscriptions {
            None => 0,
            Some(subscriptions) => match family {
                Family::Channels => subscriptions.channels.len(),
                Family::Patterns => subscriptions.patterns.len(),
                Family::ShardChannels => subscriptions.shard_channels.len(),
            },
        };
        u32::try_from(count).unwrap_or(u32::MAX)
    }
}

/// `-EXECABORT`: the server discarded the transaction (and its WATCHes) itself.
fn is_exec_abort(reply: &Value) -> bool {
    matches!(reply, Value::ServerError(err) if err.code() == "EXECABORT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{command_of, facts};

    fn facts_of(words: &[&str]) -> Facts {
        facts(&command_of(words))
    }

    fn error(text: &str) -> Value {
        redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).expect("an error reply")
    }

    fn run(session: &mut Session, args: &[&str]) -> Expect {
        session.expect(&facts_of(args))
    }

    #[test]
    fn client_reply_off_and_skip_silence_what_the_server_silences() {
        let mut s = Session::default();
        assert_eq!(run(&mut s, &["GET", "k"]), Expect::One);
        assert_eq!(run(&mut s, &["CLIENT", "REPLY", "SKIP"]), Expect::Nothing);
        assert_eq!(run(&mut s, &["GET", "k"]), Expect::Nothing);
        assert_eq!(run(&mut s, &["GET", "k"]), Expect::One);
        assert_eq!(run(&mut s, &["CLIENT", "REPLY", "OFF"]), Expect::Nothing);
        assert_eq!(run(&mut s, &["SET", "k", "v"]), Expect::Nothing);
        assert_eq!(run(&mut s, &["CLIENT", "REPLY", "SKIP"]), Expect::Nothing);
        assert_eq!(run(&mut s, &["GET", "k"]), Expect::Nothing);
        assert_eq!(run(&mut s, &["CLIENT", "REPLY", "ON"]), Expect::One);
        assert_eq!(run(&mut s, &["GET", "k"]), Expect::One);
        // SKIP then ON: ON clears the skip before answering.
        assert_eq!(run(&mut s, &["CLIENT", "REPLY", "SKIP"]), Expect::Nothing);
        assert_eq!(run(&mut s, &["CLIENT", "REPLY", "ON"]), Expect::One);
        assert!(s.is_tainted());
    }

    #[test]
    fn unsubscribe_without_names_expects_one_per_subscription() {
        let mut s = Session::default();
        assert_eq!(
            run(&mut s, &["UNSUBSCRIBE"]),
            Expect::Confirmations {
                family: Family::Channels,
                subscribes: false,
                count: 1
            }
        );
        for channel in ["a", "b", "a"] {
            let reply = [
                Value::BulkString(b"subscribe".to_vec()),
                Value::BulkString(channel.as_bytes().to_vec()),
                Value::Int(1),
            ];
            s.confirmed(Family::Channels, true, &reply);
        }
        assert!(s.subscribed());
        assert_eq!(
            run(&mut s, &["UNSUBSCRIBE"]),
            Expect::Confirmations {
                family: Family::Channels,
                subscribes: false,
                count: 2
            }
        );
        assert_eq!(
            run(&mut s, &["PUNSUBSCRIBE"]),
            Expect::Confirmations {
                family: Family::Patterns,
                subscribes: false,
                count: 1
            }
        );
        assert_eq!(run(&mut s, &["SUBSCRIBE"]), Expect::One);
    }

    #[test]
    fn a_transaction_is_open_only_once_the_server_said_so() {
        let mut s = Session::default();
        let multi = facts_of(&["MULTI"]);
        s.expect(&multi);
        s.answered(&multi, &error("NOPERM no permission"));
        assert!(!s.in_transaction());
        s.answered(&multi, &Value::Okay);
        assert!(s.in_transaction());
        // Queued commands are answered once, whatever their shape.
        assert_eq!(run(&mut s, &["UNSUBSCRIBE", "a", "b"]), Expect::One);
        let exec = facts_of(&["EXEC"]);
        s.answered(&exec, &Value::Array(vec![]));
        assert!(!s.in_transaction() && !s.needs_settling());
    }

    #[test]
    fn a_watch_ends_only_when_the_server_confirms_it() {
        let mut s = Session::default();
        let (watch, discard) = (facts_of(&["WATCH", "k"]), facts_of(&["DISCARD"]));
        s.answered(&watch, &Value::Okay);
        s.answered(&discard, &error("ERR DISCARD without MULTI"));
        assert!(
            s.needs_settling(),
            "DISCARD without MULTI leaves the WATCH in place"
        );
        s.answered(&facts_of(&["UNWATCH"]), &Value::Okay);
        assert!(!s.needs_settling());
    }

    #[test]
    fn reset_clears_everything_but_the_taint() {
        let mut s = Session::default();
        run(&mut s, &["CLIENT", "REPLY", "OFF"]);
        assert_eq!(run(&mut s, &["RESET"]), Expect::One);
        assert_eq!(run(&mut s, &["GET", "k"]), Expect::One);
        assert!(s.is_tainted() && !s.needs_settling());
    }
}
