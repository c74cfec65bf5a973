#![no_main]
//! Every parser of user input that runs before an engine call, on arbitrary text: compose files,
//! inventories (TOML and YAML), durations, placement constraints and preferences, byte sizes. Each must
//! return an error, never panic. The first byte picks the parser.

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    match which % 6 {
        0 | 1 => drop(dockfleet::parse_compose("fuzz", text, Path::new("/nonexistent/dockfleet-fuzz"))),
        2 => drop(dockfleet::Fleet::parse(text, dockfleet::InventoryFormat::Toml, None)),
        3 => drop(dockfleet::Fleet::parse(text, dockfleet::InventoryFormat::Yaml, None)),
        4 => {
            drop(dockfleet::parse_duration("f", text));
            drop(dockfleet::Constraint::parse("f", text));
            drop(dockfleet::parse_preference("f", text));
        }
        _ => {
            if let Ok(value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
                drop(dockfleet::parse_bytes("f", &value));
            }
        }
    }
});
