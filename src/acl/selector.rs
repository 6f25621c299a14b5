//! A selector: what commands, keys and channels one set of ACL rules allows, built by
//! applying Redis's rules (`+hget`, `-@dangerous`, `~cache:*`, `%R~ro:*`, `&news.*`…) in
//! order, as `ACLSetSelector` in Redis 7.4 does.
//!
//! Commands are one bit per entry of the command table (subcommands have their own). The
//! rules that shaped the bits are kept too, as Redis keeps them, so that ACL LIST gives
//! back what was set rather than a recomputed approximation: a rule replaces an earlier
//! one for the same command or category (and a command's rule drops its subcommands').
//!
//! Rules may name Redis commands that hashd does not serve (`+get`, `-set`): they are
//! accepted and kept, so that a Redis ACL file loads unchanged, and they allow nothing,
//! as there is nothing to allow.

use crate::cmd::{self, Command};
use crate::glob;

/// Why a rule was refused; [`RuleError::text`] is Redis's wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    Syntax,
    UnknownName,
    NoSuchPassword,
    BadHash,
    KeyAfterAll,
    ChannelAfterAll,
    SubcommandFirstArg,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::UnknownName => "Unknown command or category name in ACL",
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase \
                 hexadecimal characters"
            }
            RuleError::KeyAfterAll => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and \
                 does not have any effect. Try 'resetkeys' to start with an empty list of \
                 patterns"
            }
            RuleError::ChannelAfterAll => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid \
                 and does not have any effect. Try 'resetchannels' to start with an empty list \
                 of channels"
            }
            RuleError::SubcommandFirstArg => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// A key pattern and what it allows: `~p` both, `%R~p` reads, `%W~p` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub read: bool,
    pub write: bool,
}

/// What a command does to one of its keys, for `%R~` / `%W~` patterns: Redis's key-spec
/// `access` makes it a read; `insert`, `update` and `delete` make it a write; a key the
/// command only looks at (EXISTS, HLEN) is neither and any pattern covers it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyAccess {
    pub read: bool,
    pub write: bool,
}

/// What a check found wrong, in Redis's order of relevance (a key or channel error is
/// more telling than a command one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Command,
    /// The argument position of the key.
    Key(usize),
    /// The argument position of the channel.
    Channel(usize),
}

impl Denied {
    fn rank(self) -> (u8, usize) {
        match self {
            Denied::Command => (1, 0),
            Denied::Key(p) => (2, p),
            Denied::Channel(p) => (4, p),
        }
    }

    /// The more relevant of two denials (Redis keeps the highest reason, then the last
    /// position).
    pub fn most_relevant(self, other: Denied) -> Denied {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// One selector (the user's root one, or a `(…)` one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// One bit per command-table entry.
    allowed: Vec<u64>,
    /// Every command, so no bit needs testing (`+@all` and nothing taken away since).
    all_commands: bool,
    /// `+@all` / `allcommands` was the base: ACL LIST starts with `+@all` (Redis's
    /// reserved "future commands" bit), until `-@all` / `nocommands`.
    future: bool,
    /// First arguments allowed for a command whose bit is clear (`+select|0`).
    first_args: Vec<(usize, Vec<Vec<u8>>)>,
    /// The command rules in force, lower-cased, each `+name` or `-name`.
    rules: Vec<Vec<u8>>,
    pub keys: Vec<KeyPattern>,
    pub all_keys: bool,
    pub channels: Vec<Vec<u8>>,
    pub all_channels: bool,
}

fn table_len() -> usize {
    cmd::table().all.len()
}

impl Selector {
    /// A selector that allows nothing (`all_channels` from `acl-pubsub-default`).
    pub fn new(all_channels: bool) -> Self {
        Selector {
            allowed: vec![0; table_len().div_ceil(64)],
            all_commands: false,
            future: false,
            first_args: Vec::new(),
            rules: Vec::new(),
            keys: Vec::new(),
            all_keys: false,
            channels: Vec::new(),
            all_channels,
        }
    }

    /// Allows every command, key and channel (the default user, `+@all ~* &*`).
    pub fn everything() -> Self {
        let mut s = Selector::new(true);
        s.set_all_commands(true);
        s.all_keys = true;
        s
    }

    /// Nothing can be refused by this selector: the fast path of every check.
    pub fn unrestricted(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }

    fn bit(&self, index: usize) -> bool {
        self.allowed
            .get(index / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    fn set_bit(&mut self, index: usize, on: bool) {
        if let Some(w) = self.allowed.get_mut(index / 64) {
            if on {
                *w |= 1 << (index % 64);
            } else {
                *w &= !(1 << (index % 64));
                self.all_commands = false;
            }
        }
    }

    fn set_all_commands(&mut self, on: bool) {
        let fill = if on { u64::MAX } else { 0 };
        self.allowed.iter_mut().for_each(|w| *w = fill);
        self.all_commands = on;
        self.future = on;
        self.first_args.clear();
        self.rules.clear();
    }

    /// Redis's `ACLChangeSelectorPerm`: the command's bit, and its subcommands' if it is
    /// a container; its allowed first arguments are forgotten.
    fn change(&mut self, index: usize, allow: bool) {
        self.set_bit(index, allow);
        self.first_args.retain(|(i, _)| *i != index);
        let c = cmd::table().all[index];
        for sub in 0..c.subcommands.len() {
            self.set_bit(index + 1 + sub, allow);
        }
    }

    /// Records `name` (a command, `cmd|sub`, `cmd|firstarg` or `@category`) as the latest
    /// rule for it, as Redis's `ACLUpdateCommandRules`.
    fn note_rule(&mut self, name: &[u8], allow: bool) {
        let name = name.to_ascii_lowercase();
        let is_command = !name.starts_with(b"@") && !name.contains(&b'|');
        self.rules.retain(|r| {
            let existing = &r[1..];
            let same = existing == name.as_slice();
            let sub_of = is_command
                && existing.len() > name.len()
                && existing.starts_with(&name)
                && existing[name.len()] == b'|';
            !(same || sub_of)
        });
        let mut rule = vec![if allow { b'+' } else { b'-' }];
        rule.extend_from_slice(&name);
        self.rules.push(rule);
    }

    /// Applies one selector-level rule (commands, keys, channels).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_slice() {
            b"allkeys" => {
                self.all_keys = true;
                self.keys.clear();
                return Ok(());
            }
            b"resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
                return Ok(());
            }
            b"allchannels" => {
                self.all_channels = true;
                self.channels.clear();
                return Ok(());
            }
            b"resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
                return Ok(());
            }
            b"allcommands" | b"+@all" => {
                self.set_all_commands(true);
                return Ok(());
            }
            b"nocommands" | b"-@all" => {
                self.set_all_commands(false);
                return Ok(());
            }
            _ => {}
        }
        match op.first() {
            Some(b'~') | Some(b'%') => self.add_key_pattern(op),
            Some(b'&') => self.add_channel(&op[1..]),
            Some(b'+') | Some(b'-') => self.apply_command_rule(&op[1..], op[0] == b'+'),
            _ => Err(RuleError::Syntax),
        }
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::KeyAfterAll);
        }
        let (read, write, pattern) = if op[0] == b'%' {
            let (mut read, mut write) = (false, false);
            let mut offset = 1;
            while offset < op.len() {
                match op[offset].to_ascii_uppercase() {
                    b'R' if !read => read = true,
                    b'W' if !write => write = true,
                    b'~' => {
                        offset += 1;
                        break;
                    }
                    _ => return Err(RuleError::Syntax),
                }
                offset += 1;
            }
            if !read && !write {
                return Err(RuleError::Syntax);
            }
            (read, write, &op[offset.min(op.len())..])
        } else {
            (true, true, &op[1..])
        };
        if pattern == b"*" && read && write {
            self.all_keys = true;
            self.keys.clear();
            return Ok(());
        }
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern {
                pattern: pattern.to_vec(),
                read,
                write,
            }),
        }
        Ok(())
    }

    fn add_channel(&mut self, pattern: &[u8]) -> Result<(), RuleError> {
        if self.all_channels {
            return Err(RuleError::ChannelAfterAll);
        }
        if pattern == b"*" {
            self.all_channels = true;
            self.channels.clear();
            return Ok(());
        }
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        if !self.channels.iter().any(|c| c == pattern) {
            self.channels.push(pattern.to_vec());
        }
        Ok(())
    }

    fn apply_command_rule(&mut self, name: &[u8], allow: bool) -> Result<(), RuleError> {
        if let Some(category) = name.strip_prefix(b"@") {
            let cat = category_index(category).ok_or(RuleError::UnknownName)?;
            let masks = category_masks();
            for (i, mask) in masks.iter().enumerate() {
                if mask & (1 << cat) != 0 {
                    self.change(i, allow);
                }
            }
            self.note_rule(name, allow);
            return Ok(());
        }
        let table = cmd::table();
        let Some(bar) = name.iter().position(|&b| b == b'|') else {
            match table.lookup(name) {
                Some((i, _)) => self.change(i, allow),
                None if is_redis_command(name) => {}
                None => return Err(RuleError::UnknownName),
            }
            self.note_rule(name, allow);
            return Ok(());
        };
        let (parent, rest) = (&name[..bar], &name[bar + 1..]);
        let found = table.lookup(parent);
        if let Some((pi, pc)) = found {
            if let Some((si, _)) = table.lookup_sub(pi, rest) {
                self.change(si, allow);
                self.note_rule(name, allow);
                return Ok(());
            }
            if !pc.subcommands.is_empty() {
                // `config|get|maxmemory`: a first argument of a subcommand.
                let sub = rest.split(|&b| b == b'|').next().unwrap_or_default();
                if rest.contains(&b'|') && table.lookup_sub(pi, sub).is_some() {
                    return Err(RuleError::SubcommandFirstArg);
                }
                return Err(RuleError::UnknownName);
            }
        } else if is_redis_command(name) {
            // A subcommand of a Redis command hashd does not have (`+xinfo|stream`).
            self.note_rule(name, allow);
            return Ok(());
        } else if !is_redis_command(parent) {
            return Err(RuleError::UnknownName);
        }
        // A first argument (`+select|0`): only allowing, never of a nested name.
        if !allow || rest.contains(&b'|') || rest.is_empty() {
            return Err(RuleError::UnknownName);
        }
        if let Some((pi, _)) = found {
            match self.first_args.iter_mut().find(|(i, _)| *i == pi) {
                Some((_, list)) => {
                    if !list.iter().any(|a| a.eq_ignore_ascii_case(rest)) {
                        list.push(rest.to_vec());
                    }
                }
                None => self.first_args.push((pi, vec![rest.to_vec()])),
            }
        }
        self.note_rule(name, allow);
        Ok(())
    }

    /// Whether this selector allows running the command at table `index` with `args`
    /// (Redis's `ACLSelectorCheckCmd`).
    pub fn check(
        &self,
        index: usize,
        command: &Command,
        args: cmd::Args<'_>,
        keys: &[(usize, KeyAccess)],
        channels: &[(usize, bool)],
    ) -> Result<(), Denied> {
        if !self.all_commands && !command.has(cmd::flags::NO_AUTH) && !self.bit(index) {
            let arg = if command.container_name().is_some() {
                2
            } else {
                1
            };
            let allowed = args.len() > arg
                && self
                    .first_args
                    .iter()
                    .find(|(i, _)| *i == index)
                    .is_some_and(|(_, list)| {
                        list.iter().any(|a| a.eq_ignore_ascii_case(args.get(arg)))
                    });
            if !allowed {
                return Err(Denied::Command);
            }
        }
        if !self.all_keys {
            for &(pos, access) in keys {
                if !self.key_allowed(args.get(pos), access) {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.all_channels {
            for &(pos, is_pattern) in channels {
                if !self.channel_allowed(args.get(pos), is_pattern) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }

    /// Redis's `ACLSelectorCheckKey`.
    pub fn key_allowed(&self, key: &[u8], access: KeyAccess) -> bool {
        self.all_keys
            || self.keys.iter().any(|k| {
                (k.read || !access.read)
                    && (k.write || !access.write)
                    && glob::matches(&k.pattern, key, false)
            })
    }

    /// Redis's `ACLCheckChannelAgainstList`: a channel is matched against the patterns, a
    /// pattern subscription (PSUBSCRIBE) must be one of them literally.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p == channel
                } else {
                    glob::matches(p, channel, false)
                }
            })
    }

    /// The command rules as ACL LIST shows them: `+@all` or `-@all`, then the rules.
    pub fn describe_commands(&self) -> Vec<u8> {
        let mut out = if self.future {
            b"+@all".to_vec()
        } else {
            b"-@all".to_vec()
        };
        for r in &self.rules {
            out.push(b' ');
            out.extend_from_slice(r);
        }
        out
    }

    /// The key patterns, space-separated (`~*` for every key; empty for none).
    pub fn describe_keys(&self) -> Vec<u8> {
        if self.all_keys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for k in &self.keys {
            if !out.is_empty() {
                out.push(b' ');
            }
            out.extend_from_slice(match (k.read, k.write) {
                (true, true) => b"~",
                (true, false) => b"%R~",
                _ => b"%W~",
            });
            out.extend_from_slice(&k.pattern);
        }
        out
    }

    /// The channel patterns, space-separated (`&*` for every channel; empty for none).
    pub fn describe_channels(&self) -> Vec<u8> {
        if self.all_channels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for c in &self.channels {
            if !out.is_empty() {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }

    /// The whole selector in ACL SETUSER syntax: keys, channels, commands.
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let keys = self.describe_keys();
        if !keys.is_empty() {
            out.extend_from_slice(&keys);
            out.push(b' ');
        }
        if self.all_channels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            let channels = self.describe_channels();
            if !channels.is_empty() {
                out.extend_from_slice(&channels);
                out.push(b' ');
            }
        }
        out.extend_from_slice(&self.describe_commands());
        out
    }
}

/// Redis's `ACLStringHasSpaces`: patterns and names with white space or NUL are refused.
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&b| b.is_ascii_whitespace() || b == 0 || b == 0x0b)
}

/// The position of a category (`hash`, `dangerous`…) in Redis's list, case-insensitive.
pub fn category_index(name: &[u8]) -> Option<usize> {
    cmd::command::CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
}

/// Each command-table entry's categories as a bit mask over [`cmd::command::CATEGORIES`].
pub fn category_masks() -> &'static [u32] {
    static MASKS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    MASKS.get_or_init(|| {
        cmd::table()
            .all
            .iter()
            .map(|c| {
                cmd::command::categories(c)
                    .iter()
                    .filter_map(|name| category_index(name.as_bytes()))
                    .fold(0, |m, i| m | (1 << i))
            })
            .collect()
    })
}

/// Whether `name` (lower- or upper-case) is a command or `command|subcommand` of Redis
/// 7.4, so that rules naming commands hashd does not serve still load.
pub fn is_redis_command(name: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    super::redis_commands::NAMES
        .binary_search_by(|n| n.as_bytes().cmp(lower.as_slice()))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(rules: &[&str]) -> Result<Selector, RuleError> {
        let mut s = Selector::new(false);
        for r in rules {
            s.apply(r.as_bytes())?;
        }
        Ok(s)
    }

    fn described(rules: &[&str]) -> String {
        String::from_utf8(sel(rules).unwrap().describe()).unwrap()
    }

    #[test]
    fn rules_replace_earlier_ones_as_in_redis() {
        // Each expectation is what Redis 7.4.1 answers in ACL LIST for the same rules.
        assert_eq!(
            described(&["+@all", "-hdel", "+hset", "-@hash", "+hget", "+hget", "-@hash", "+hget"]),
            "resetchannels +@all -hdel +hset -@hash +hget"
        );
        assert_eq!(
            described(&[
                "+client",
                "-client|kill",
                "+client|kill",
                "-client",
                "+client|list",
                "+select",
                "+select|0"
            ]),
            "resetchannels -@all -client +client|list +select +select|0"
        );
        assert_eq!(
            described(&["+select|0", "+select|1", "-select", "+select|2"]),
            "resetchannels -@all -select +select|2"
        );
        assert_eq!(described(&["+@all", "-@all"]), "resetchannels -@all");
        assert_eq!(
            described(&["+@all", "-@hash", "+@hash"]),
            "resetchannels +@all +@hash"
        );
        assert_eq!(
            described(&["+HGET", "+@HASH", "~A", "&B"]),
            "~A resetchannels &B -@all +hget +@hash"
        );
        assert_eq!(
            described(&["resetkeys", "%R~x", "%W~x", "%RW~y", "~y"]),
            "~x ~y resetchannels -@all"
        );
        assert_eq!(described(&["%R~a", "%R"]), "%R~a %R~ resetchannels -@all");
        // Redis commands hashd does not serve are kept, and allow nothing.
        assert_eq!(
            described(&["+get", "-set", "+xinfo|stream"]),
            "resetchannels -@all +get -set +xinfo|stream"
        );
    }

    #[test]
    fn refused_rules_name_redis_reasons() {
        let e = |rules: &[&str]| sel(rules).unwrap_err();
        assert_eq!(e(&["~*", "~foo"]), RuleError::KeyAfterAll);
        assert_eq!(e(&["allkeys", "%R~x"]), RuleError::KeyAfterAll);
        assert_eq!(e(&["&*", "&x"]), RuleError::ChannelAfterAll);
        assert_eq!(e(&["+@nosuch"]), RuleError::UnknownName);
        assert_eq!(e(&["+nosuch"]), RuleError::UnknownName);
        assert_eq!(e(&["-select|0"]), RuleError::UnknownName);
        assert_eq!(e(&["+client|nosub"]), RuleError::UnknownName);
        assert_eq!(e(&["+hget|x|y"]), RuleError::UnknownName);
        assert_eq!(e(&["+config|get|maxmemory"]), RuleError::SubcommandFirstArg);
        assert_eq!(e(&["bogus"]), RuleError::Syntax);
        assert_eq!(e(&["%X~a"]), RuleError::Syntax);
        assert_eq!(e(&["%~a"]), RuleError::Syntax);
        assert_eq!(e(&["%RR~a"]), RuleError::Syntax);
    }

    fn run(s: &Selector, line: &str) -> Result<(), Denied> {
        let parts: Vec<&str> = line.split(' ').collect();
        let owned = cmd::OwnedArgs::from_slices(&parts);
        let args = owned.as_args();
        let (index, command) = super::super::resolve_command(args).unwrap();
        let keys = super::super::key_refs(index, command, args);
        let channels = super::super::channel_refs(command, args);
        s.check(index, command, args, &keys, &channels)
    }

    #[test]
    fn checks_commands_keys_and_channels() {
        let s = sel(&["~k*", "%R~r*", "+@hash", "-hdel", "&chan*", "+@pubsub"]).unwrap();
        assert_eq!(run(&s, "HGET k1 f"), Ok(()));
        assert_eq!(run(&s, "HGET other f"), Err(Denied::Key(1)));
        assert_eq!(run(&s, "HDEL k1 f"), Err(Denied::Command));
        assert_eq!(run(&s, "HGET r1 f"), Ok(()));
        assert_eq!(run(&s, "HSET r1 f v"), Err(Denied::Key(1)));
        // HLEN only looks at its key: any pattern covers it, read-only ones too.
        assert_eq!(run(&s, "HLEN r1"), Ok(()));
        assert_eq!(run(&s, "PUBLISH chan1 m"), Ok(()));
        assert_eq!(run(&s, "PUBLISH other m"), Err(Denied::Channel(1)));
        assert_eq!(run(&s, "SUBSCRIBE chan1 other"), Err(Denied::Channel(2)));
        assert_eq!(run(&s, "PSUBSCRIBE ch*"), Err(Denied::Channel(1)));
        assert_eq!(run(&s, "PSUBSCRIBE chan*"), Ok(()));
        assert_eq!(run(&s, "UNSUBSCRIBE other"), Ok(()));
        // AUTH and HELLO are never refused.
        assert_eq!(run(&s, "AUTH a b"), Ok(()));
        let s = sel(&["+config|get", "+select|0", "+client", "-client|kill"]).unwrap();
        assert_eq!(run(&s, "CONFIG GET x"), Ok(()));
        assert_eq!(run(&s, "CONFIG SET x y"), Err(Denied::Command));
        assert_eq!(run(&s, "SELECT 0"), Ok(()));
        assert_eq!(run(&s, "SELECT 1"), Err(Denied::Command));
        assert_eq!(run(&s, "CLIENT ID"), Ok(()));
        assert_eq!(run(&s, "CLIENT KILL ID 1"), Err(Denied::Command));
    }

    #[test]
    fn categories_reach_subcommands_through_their_container() {
        // Redis's ACLSetSelectorCommandBitsForCategory: CLIENT is @slow, so +@slow allows
        // all of its subcommands.
        let s = sel(&["+@slow"]).unwrap();
        assert_eq!(run(&s, "CLIENT ID"), Ok(()));
        let s = sel(&["+@slow", "-@connection"]).unwrap();
        assert_eq!(run(&s, "CLIENT LIST"), Err(Denied::Command));
    }

    #[test]
    fn relevance_prefers_keys_and_channels() {
        assert_eq!(
            Denied::Command.most_relevant(Denied::Key(1)),
            Denied::Key(1)
        );
        assert_eq!(Denied::Key(2).most_relevant(Denied::Key(1)), Denied::Key(2));
        assert_eq!(
            Denied::Channel(1).most_relevant(Denied::Key(3)),
            Denied::Channel(1)
        );
    }
}
