//! A user: on/off, passwords, and its selectors (the root one and any `(…)` ones), with
//! the user-level rules of ACL SETUSER and the ACL LIST / ACL SAVE description.

use super::selector::{has_spaces, RuleError, Selector};

/// An ACL SETUSER failure: the modifier (as given, selectors whole) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetUserError {
    Rule {
        modifier: Vec<u8>,
        why: RuleError,
    },
    /// `(…` never closed: the argument it started at.
    Unmatched(Vec<u8>),
}

impl SetUserError {
    /// Redis's reply text for ACL SETUSER.
    pub fn reply_text(&self) -> Vec<u8> {
        let mut m = Vec::new();
        match self {
            SetUserError::Rule { modifier, why } => {
                m.extend_from_slice(b"ERR Error in ACL SETUSER modifier '");
                m.extend_from_slice(modifier);
                m.extend_from_slice(b"': ");
                m.extend_from_slice(why.text().as_bytes());
            }
            SetUserError::Unmatched(arg) => {
                m.extend_from_slice(b"ERR Unmatched parenthesis in acl selector starting at '");
                m.extend_from_slice(arg);
                m.extend_from_slice(b"'.");
            }
        }
        m
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: Vec<u8>,
    pub enabled: bool,
    pub nopass: bool,
    /// `skip-sanitize-payload` (else `sanitize-payload`, the default). hashd validates
    /// every RESTORE payload whatever this says.
    pub skip_sanitize: bool,
    /// SHA-256 digests, lower-case hex, in the order added.
    pub passwords: Vec<Vec<u8>>,
    pub root: Selector,
    pub extra: Vec<Selector>,
}

/// SHA-256 of a password as lower-case hex: how Redis stores and shows passwords.
pub fn hash_password(password: &[u8]) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, password);
    let mut hex = Vec::with_capacity(64);
    for b in digest.as_ref() {
        hex.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    hex
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Joins the arguments of a selector spread over several (`(+get` `~key)`) into one, as
/// Redis's `ACLMergeSelectorArguments`.
pub fn merge_selector_args(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, SetUserError> {
    let mut out = Vec::new();
    let mut open: Option<(Vec<u8>, &[u8])> = None;
    for &a in args {
        match open.as_mut() {
            Some((merged, _)) => {
                merged.push(b' ');
                merged.extend_from_slice(a);
                if a.ends_with(b")") {
                    out.push(open.take().map(|(m, _)| m).unwrap_or_default());
                }
            }
            None if a.starts_with(b"(") && !a.ends_with(b")") => open = Some((a.to_vec(), a)),
            None => out.push(a.to_vec()),
        }
    }
    match open {
        Some((_, start)) => Err(SetUserError::Unmatched(start.to_vec())),
        None => Ok(out),
    }
}

impl User {
    /// A new user as ACL SETUSER creates it: off, no password, nothing allowed.
    pub fn new(name: &[u8], all_channels_default: bool) -> Self {
        User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            skip_sanitize: false,
            passwords: Vec::new(),
            root: Selector::new(all_channels_default),
            extra: Vec::new(),
        }
    }

    /// The default user of a fresh server: `on nopass ~* &* +@all`.
    pub fn default_user() -> Self {
        User {
            name: super::DEFAULT_USER.to_vec(),
            enabled: true,
            nopass: true,
            skip_sanitize: false,
            passwords: Vec::new(),
            root: Selector::everything(),
            extra: Vec::new(),
        }
    }

    /// The root selector, then the others: the order Redis checks them in.
    pub fn selectors(&self) -> impl Iterator<Item = &Selector> {
        std::iter::once(&self.root).chain(self.extra.iter())
    }

    /// Whether `password` logs in as this user (it must be on).
    pub fn accepts(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hash = hash_password(password);
        // Compare every stored digest fully, so timing tells nothing about which or how
        // much matched (Redis's time_independent_strcmp).
        self.passwords.iter().fold(false, |found, p| {
            let same = p.len() == hash.len()
                && p.iter().zip(&hash).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
            found | same
        })
    }

    /// `requirepass`: this password only, or `nopass` without one.
    pub fn set_only_password(&mut self, password: Option<&[u8]>) {
        self.passwords.clear();
        match password {
            Some(p) => {
                self.nopass = false;
                self.passwords.push(hash_password(p));
            }
            None => self.nopass = true,
        }
    }

    /// Applies ACL SETUSER's modifiers (selector arguments already merged) to a copy;
    /// the user changes only if every one applies, as in Redis.
    pub fn with_rules(
        &self,
        ops: &[Vec<u8>],
        all_channels_default: bool,
    ) -> Result<User, SetUserError> {
        let mut u = self.clone();
        for op in ops {
            u.apply(op, all_channels_default)
                .map_err(|why| SetUserError::Rule {
                    modifier: op.clone(),
                    why,
                })?;
        }
        Ok(u)
    }

    /// One user-level modifier (Redis's `ACLSetUser`).
    pub fn apply(&mut self, op: &[u8], all_channels_default: bool) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_slice() {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"skip-sanitize-payload" => self.skip_sanitize = true,
            b"sanitize-payload" => self.skip_sanitize = false,
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"clearselectors" => self.extra.clear(),
            b"reset" => {
                for r in [
                    &b"resetpass"[..],
                    b"resetkeys",
                    b"resetchannels",
                    b"off",
                    b"clearselectors",
                    b"-@all",
                    b"sanitize-payload",
                ] {
                    self.apply(r, all_channels_default)?;
                }
                if all_channels_default {
                    self.apply(b"allchannels", all_channels_default)?;
                }
            }
            _ => match op.first() {
                Some(b'>') => {
                    let hash = hash_password(&op[1..]);
                    self.add_password(hash);
                }
                Some(b'#') => {
                    if !valid_hash(&op[1..]) {
                        return Err(RuleError::BadHash);
                    }
                    self.add_password(op[1..].to_vec());
                }
                Some(b'<') | Some(b'!') => {
                    let hash = if op[0] == b'<' {
                        hash_password(&op[1..])
                    } else if valid_hash(&op[1..]) {
                        op[1..].to_vec()
                    } else {
                        return Err(RuleError::BadHash);
                    };
                    let Some(at) = self.passwords.iter().position(|p| *p == hash) else {
                        return Err(RuleError::NoSuchPassword);
                    };
                    self.passwords.remove(at);
                }
                Some(b'(') if op.ends_with(b")") => {
                    let mut s = Selector::new(all_channels_default);
                    let inner = &op[1..op.len() - 1];
                    for rule in inner.split(|&b| b == b' ').filter(|r| !r.is_empty()) {
                        s.apply(rule)?;
                    }
                    self.extra.push(s);
                }
                _ => self.root.apply(op)?,
            },
        }
        Ok(())
    }

    fn add_password(&mut self, hash: Vec<u8>) {
        if !self.passwords.contains(&hash) {
            self.passwords.push(hash);
        }
        self.nopass = false;
    }

    /// The flags ACL GETUSER lists, in Redis's order.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        f.push(if self.skip_sanitize {
            "skip-sanitize-payload"
        } else {
            "sanitize-payload"
        });
        f
    }

    /// The rules that recreate this user, as ACL LIST and ACL SAVE write them (without
    /// the leading `user <name> `).
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.flags() {
            out.extend_from_slice(f.as_bytes());
            out.push(b' ');
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p);
            out.push(b' ');
        }
        out.extend_from_slice(&self.root.describe());
        for s in &self.extra {
            out.extend_from_slice(b" (");
            out.extend_from_slice(&s.describe());
            out.push(b')');
        }
        out
    }

    /// `user <name> <rules>`: one line of ACL LIST and of an ACL file.
    pub fn line(&self) -> Vec<u8> {
        let mut out = b"user ".to_vec();
        out.extend_from_slice(&self.name);
        out.push(b' ');
        out.extend_from_slice(&self.describe());
        out
    }
}

/// Whether a user name is acceptable (no white space or NUL, as Redis).
pub fn valid_name(name: &[u8]) -> bool {
    !has_spaces(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setuser(u: &User, rules: &[&str]) -> Result<User, SetUserError> {
        let args: Vec<&[u8]> = rules.iter().map(|r| r.as_bytes()).collect();
        let merged = merge_selector_args(&args)?;
        u.with_rules(&merged, false)
    }

    fn line(u: &User) -> String {
        String::from_utf8(u.line()).unwrap()
    }

    #[test]
    fn describes_users_as_redis() {
        // Each line is Redis 7.4.1's ACL LIST for the same ACL SETUSER.
        assert_eq!(
            line(&User::default_user()),
            "user default on nopass sanitize-payload ~* &* +@all"
        );
        let alice = setuser(
            &User::new(b"alice", false),
            &[
                "on",
                ">pw",
                "~cached:*",
                "+@hash",
                "-hdel",
                "&chan*",
                "%R~r*",
            ],
        )
        .unwrap();
        assert_eq!(
            line(&alice),
            "user alice on sanitize-payload \
             #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~cached:* %R~r* \
             resetchannels &chan* -@all +@hash -hdel"
        );
        assert_eq!(
            line(&User::new(b"bob", false)),
            "user bob off sanitize-payload resetchannels -@all"
        );
        let carol = setuser(
            &User::new(b"carol", false),
            &[
                "on",
                "nopass",
                "~k*",
                "+@read",
                "(+hset",
                "~s*)",
                "(+@write %W~w*)",
            ],
        )
        .unwrap();
        assert_eq!(
            line(&carol),
            "user carol on nopass sanitize-payload ~k* resetchannels -@all +@read \
             (~s* resetchannels -@all +hset) (%W~w* resetchannels -@all +@write)"
        );
        let reset = setuser(&carol, &["reset"]).unwrap();
        assert_eq!(
            line(&reset),
            "user carol off sanitize-payload resetchannels -@all"
        );
    }

    #[test]
    fn passwords() {
        let u = setuser(&User::new(b"e3", false), &["on", "nopass", "+hget", "~k"]).unwrap();
        assert!(u.accepts(b"anything"));
        let u = setuser(&u, &[">x"]).unwrap();
        assert_eq!(
            line(&u),
            "user e3 on sanitize-payload \
             #2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 ~k resetchannels \
             -@all +hget"
        );
        assert!(u.accepts(b"x"));
        assert!(!u.accepts(b"y"));
        let u2 = setuser(&u, &["off"]).unwrap();
        assert!(!u2.accepts(b"x"));
        let u = setuser(&u, &["<x"]).unwrap();
        assert!(!u.accepts(b"x"));
        assert_eq!(
            setuser(&u, &["<nopw"]).unwrap_err().reply_text(),
            b"ERR Error in ACL SETUSER modifier '<nopw': The password you are trying to remove \
              from the user does not exist"
                .to_vec()
        );
        assert_eq!(
            setuser(&u, &["#abc"]).unwrap_err().reply_text(),
            b"ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 \
              characters and contain only lowercase hexadecimal characters"
                .to_vec()
        );
        // An empty password is a password (Redis hashes "").
        let u = setuser(&u, &[">"]).unwrap();
        assert!(u.accepts(b""));
    }

    #[test]
    fn selector_errors() {
        let u = User::new(b"x", false);
        assert_eq!(
            setuser(&u, &["(+get"]).unwrap_err().reply_text(),
            b"ERR Unmatched parenthesis in acl selector starting at '(+get'.".to_vec()
        );
        assert_eq!(
            setuser(&u, &["(on)"]).unwrap_err().reply_text(),
            b"ERR Error in ACL SETUSER modifier '(on)': Syntax error".to_vec()
        );
        assert!(setuser(&u, &["(", "~a", ")", "()"]).is_ok());
    }
}
