//! (not yet implemented)

use super::Command;

pub const COMMANDS: &[Command] = &[];
