//! Replays every committed input of every fuzz target (the seed corpus and
//! every input that ever crashed, under `fuzz/corpus/<target>/`) through
//! the same target functions the fuzzer runs.

use std::fs;
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fuzz")
        .join("corpus")
}

#[test]
fn every_target_has_a_seed_corpus() {
    for (name, _) in fuzz_targets::TARGETS {
        let dir = corpus_dir().join(name);
        let n = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .count();
        assert!(n > 0, "no seed input for {name}");
    }
}

#[test]
fn every_corpus_input_passes_its_target() {
    let mut ran = 0;
    for entry in fs::read_dir(corpus_dir()).expect("fuzz/corpus") {
        let dir = entry.expect("corpus entry").path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a target name")
            .to_owned();
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .expect("a target's corpus")
            .map(|e| e.expect("corpus file").path())
            .collect();
        files.sort();
        for file in files {
            let data = fs::read(&file).expect("readable corpus file");
            assert!(
                fuzz_targets::run(&name, &data),
                "corpus folder {name} names no target"
            );
            ran += 1;
        }
    }
    assert!(ran >= fuzz_targets::TARGETS.len(), "only {ran} inputs");
}
