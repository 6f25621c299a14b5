//! Users from the configuration (`user` directives) and from the ACL file (`aclfile`):
//! parsing them into a table, with Redis's error texts, and ACL SAVE's atomic rewrite.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::selector::RuleError;
use super::user::{merge_selector_args, valid_name, User};

/// The user of one `user` line's words (name first): Redis's `ACLSetUser` on a fresh
/// user (`user default …` redefines the default user from nothing, as Redis's reset).
fn user_from_words(words: &[&[u8]], all_channels_default: bool) -> Result<User, String> {
    let Some((&name, rules)) = words.split_first() else {
        return Err("missing user name".into());
    };
    let base = User::new(name, all_channels_default);
    let merged = merge_selector_args(rules)
        .map_err(|_| "Unmatched parenthesis in selector definition.".to_string())?;
    base.with_rules(&merged, all_channels_default)
        .map_err(|e| match e {
            super::SetUserError::Rule { modifier, why } => {
                if why == RuleError::UnknownName {
                    format!(
                        "Error in applying operation '{}': {}",
                        String::from_utf8_lossy(&modifier),
                        why.text()
                    )
                } else {
                    why.text().to_string()
                }
            }
            super::SetUserError::Unmatched(_) => {
                "Unmatched parenthesis in selector definition.".to_string()
            }
        })
}

/// The users of the `user` directives, or the first error (start-up refuses it, naming
/// the line, as Redis's "Error in user declaration").
pub fn from_directives(
    lines: &[String],
    all_channels_default: bool,
) -> Result<BTreeMap<Vec<u8>, User>, String> {
    let mut table = BTreeMap::new();
    for line in lines {
        let words: Vec<&[u8]> = line
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::as_bytes)
            .collect();
        let name = words.first().copied().unwrap_or_default();
        if !valid_name(name) || name.is_empty() {
            return Err(format!("Error in user declaration '{line}': bad user name"));
        }
        if table.contains_key(name) {
            return Err(format!(
                "Error in user declaration '{line}': Duplicate user found. A user can only be \
                 defined once in config files"
            ));
        }
        let user = user_from_words(&words, all_channels_default)
            .map_err(|why| format!("Error in user declaration '{line}': {why}"))?;
        table.insert(name.to_vec(), user);
    }
    Ok(table)
}

/// Parses an ACL file: `user <name> <rules…>` lines, blank lines skipped. Errors are
/// gathered for every line, as Redis's `ACLLoadFromFile`, and the text ends with its
/// warning that nothing changed.
pub fn parse(
    path: &Path,
    text: &[u8],
    all_channels_default: bool,
) -> Result<BTreeMap<Vec<u8>, User>, String> {
    let shown = path.display();
    let mut errors = String::new();
    let mut table = BTreeMap::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = raw.trim_ascii();
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let words: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .collect();
        if words.len() < 2 || words[0] != b"user" {
            errors.push_str(&format!(
                "{shown}:{n} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = words[1];
        if !valid_name(name) {
            errors.push_str(&format!(
                "'{shown}:{n}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        if table.contains_key(name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {n}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        match user_from_words(&words[1..], all_channels_default) {
            Ok(u) => {
                table.insert(name.to_vec(), u);
            }
            Err(why) => errors.push_str(&format!("{shown}:{n}: {why}. ")),
        }
    }
    if errors.is_empty() {
        Ok(table)
    } else {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was \
             performed",
        );
        Err(errors)
    }
}

/// Reads and parses the ACL file.
pub fn load(path: &Path, all_channels_default: bool) -> Result<BTreeMap<Vec<u8>, User>, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("Error loading ACLs, opening file '{}': {e}", path.display()))?;
    parse(path, &text, all_channels_default)
}

/// ACL SAVE: every user's line, written to a temporary file, synced, and renamed over
/// the ACL file, so a crash leaves the old file or the new one.
pub fn save(path: &Path, users: &[std::sync::Arc<User>]) -> std::io::Result<()> {
    let mut text = Vec::new();
    for u in users {
        text.extend_from_slice(&u.line());
        text.push(b'\n');
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(d) = dir {
            std::fs::File::open(d)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_as_redis() {
        let p = Path::new("/tmp/users.acl");
        let err = parse(
            p,
            b"user default on nopass ~* &* +@all\n# comment\nuser bob on >pw ~* +@all\n",
            false,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "/tmp/users.acl:2 should start with user keyword followed by the username. \
             WARNING: ACL errors detected, no change to the previously active ACL rules was \
             performed"
        );
        let err = parse(p, b"user bob on >pw\n\nuser bob on\n", false).unwrap_err();
        assert!(err.starts_with("WARNING: Duplicate user 'bob' found on line 3. "));
        let err = parse(
            p,
            b"user bob on >pw ~* +@all\n  \nuser carol bogus\nfoo bar\n",
            false,
        )
        .unwrap_err();
        assert!(err.starts_with(
            "/tmp/users.acl:3: Syntax error. /tmp/users.acl:4 should start with user keyword"
        ));
        let err = parse(p, b"user carol +nosuch\n", false).unwrap_err();
        assert!(err.starts_with(
            "/tmp/users.acl:1: Error in applying operation '+nosuch': Unknown command or \
             category name in ACL. "
        ));
    }

    #[test]
    fn saved_files_load_back() {
        let t = parse(
            Path::new("x"),
            b"user al on nopass ~a* resetchannels +hget\nuser bob on >pw ~* +@all (+hset ~s*)\n",
            false,
        )
        .unwrap();
        let users: Vec<_> = t.values().cloned().map(std::sync::Arc::new).collect();
        let dir = std::env::temp_dir().join(format!("hashd-acl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.acl");
        save(&path, &users).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "user al on nopass sanitize-payload ~a* resetchannels -@all +hget\n\
             user bob on sanitize-payload \
             #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~* resetchannels \
             +@all (~s* resetchannels -@all +hset)\n"
        );
        assert_eq!(load(&path, false).unwrap(), t);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directives() {
        let t = from_directives(
            &[
                "default on >secret ~* &* +@all".into(),
                "app on >pw ~app:* +@hash".into(),
            ],
            false,
        )
        .unwrap();
        assert!(t[&b"default"[..]].accepts(b"secret"));
        assert!(!t[&b"default"[..]].accepts(b"x"));
        assert!(from_directives(&["a on".into(), "a off".into()], false).is_err());
        assert!(from_directives(&["a bogus".into()], false).is_err());
    }
}
