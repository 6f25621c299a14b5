//! The README's command list must name exactly the commands the server has.

use std::collections::BTreeSet;

fn readme_commands() -> BTreeSet<String> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("## Commands")
        .expect("README has a Commands section");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let table: String = section[..end]
        .lines()
        .filter(|l| l.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    table
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_lists_exactly_the_command_table() {
    let documented = readme_commands();
    let served: BTreeSet<String> = hashd::cmd::table()
        .commands
        .iter()
        .map(|c| c.name.to_uppercase())
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README Commands section out of date: missing {missing:?}, not served {extra:?}"
    );
}
