//! Embeds every schema file named in `registry.toml`, so the binary carries its contracts.
use std::{env, fs, path::Path};

fn main() {
    let registry = fs::read_to_string("registry.toml").expect("schemas/registry.toml");
    let files: Vec<&str> = registry
        .lines()
        .filter_map(|line| line.trim().strip_prefix("file = "))
        .map(|quoted| quoted.trim_matches('"'))
        .collect();
    let mut out = String::from("pub(crate) static SCHEMA_FILES: &[(&str, &str)] = &[\n");
    for file in &files {
        // Resolved when the crate compiles, not here: the output then stays right when the same
        // target directory serves another checkout (CI's fresh clone).
        out.push_str(&format!(
            "    ({file:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/\", {file:?}))),\n"
        ));
        println!("cargo:rerun-if-changed={file}");
    }
    out.push_str("];\n");
    println!("cargo:rerun-if-changed=registry.toml");
    fs::write(Path::new(&env::var("OUT_DIR").unwrap()).join("schema_files.rs"), out).unwrap();
}
